"""The Training setup's device field: each GPU by number with its name and memory, from a child Python."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from designer.device import DeviceCombo, DeviceProbe
from designer.document import Document
from designer.training.config_panel import TrainingConfigPanel
from engine.devices import DeviceInfo
from engine.templates import load_template

GPUS = [DeviceInfo("cpu", "CPU"), DeviceInfo("cuda:0", "NVIDIA A100", 40 * 2**30),
        DeviceInfo("cuda:1", "NVIDIA H100 <b>80GB</b>", 80 * 2**30)]


class LateProbe(QObject):
    """A probe whose child has not answered yet; :meth:`answer` is that answer arriving."""

    answered = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.devices: list[DeviceInfo] = []

    def ask(self):
        return None

    def answer(self, devices):
        self.devices = devices
        self.answered.emit("CUDA: NVIDIA A100")


def items(combo) -> list[tuple[str, str]]:
    return [(combo.itemData(i), combo.itemText(i)) for i in range(combo.count())]


def test_each_gpu_is_listed_by_number_with_name_and_memory_when_the_answer_comes(qtbot):
    probe = LateProbe()
    combo = DeviceCombo(probe)
    qtbot.addWidget(combo)
    assert [v for v, _ in items(combo)] == ["auto", "cpu", "cuda"]  # at once, before any answer
    combo.set_value("cuda:1")  # the project's choice, before the machine's GPUs are known
    assert combo.currentData() == "cuda:1" and combo.currentText() == "cuda:1"
    probe.answer(GPUS)
    assert items(combo)[3:] == [("cuda:0", "GPU 0: NVIDIA A100 (40.0 GiB)"),
                                ("cuda:1", "GPU 1: NVIDIA H100 <b>80GB</b> (80.0 GiB)")]
    assert combo.currentData() == "cuda:1"  # the same choice, now with its name
    combo.set_value("cuda:3")
    assert combo.currentText() == "cuda:3 (not on this machine)"
    with qtbot.waitSignal(combo.chosen) as chosen:
        combo.activated.emit(combo.findData("cuda:0"))
    assert chosen.args == ["cuda:0"]


def test_the_setup_stores_the_gpu_chosen_as_one_undoable_edit(qtbot):
    doc = Document(load_template("mlp"))
    panel = TrainingConfigPanel(doc)
    qtbot.addWidget(panel)
    combo = panel.fields[("training", "device")]
    assert isinstance(combo, DeviceCombo)
    combo.show_devices(GPUS)
    combo.activated.emit(combo.findData("cuda:1"))
    assert doc.project.training.device == "cuda:1"
    doc.undo_stack.undo()
    assert doc.project.training.device == "auto" and combo.currentData() == "auto"
    doc.undo_stack.redo()
    assert combo.currentData() == "cuda:1"


def test_the_child_python_answers_with_the_devices_too(qtbot):
    probe = DeviceProbe()
    try:
        with qtbot.waitSignal(probe.answered, timeout=120_000):
            probe.ask_child()
        from engine.devices import list_devices

        assert probe.devices == list_devices()  # here the CPU alone
    finally:
        probe.stop()
        probe.deleteLater()

"""Which devices training can use, in words: the status bar's label and the Training setup's device field.

NOTE: finding out needs PyTorch, and importing it takes the window a second or more. So the
window asks a child Python (:func:`device_probe`: it prints the label and :mod:`engine.devices`'s
list of GPUs as JSON) and never imports PyTorch for it; one answer serves every window of the process.
:class:`DeviceCombo` lists ``auto``, ``cpu`` and ``cuda`` at once and each GPU (``cuda:0``, ``cuda:1``...,
with its name and memory) when the answer comes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QProcess, Qt, Signal
from PySide6.QtWidgets import QComboBox

from designer.fields import NoWheelCombo
from designer.training.options import DEVICE_TITLES
from engine.devices import DeviceInfo

__all__ = ["UNKNOWN", "DeviceCombo", "DeviceProbe", "device_probe", "training_device_label"]

#: shown when the child could not say (it crashed, or Python could not start)
UNKNOWN = "unknown"
#: what the child runs: the label, then the devices as JSON, one line each
_CHILD = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
    "from designer.device import training_device_label; print(training_device_label()); "
    "from engine.devices import main; main()"
)


def training_device_label() -> str:
    """``"CUDA: <device name>"`` when PyTorch sees a GPU, else ``"CPU"``."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"CUDA: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    except Exception:  # noqa: BLE001 - a broken CUDA setup still trains on the CPU
        pass
    return "CPU"


def _parse_devices(text: str) -> list[DeviceInfo] | None:
    """The child's JSON list of devices, or None when it is not one."""
    try:
        items = json.loads(text)
        return [DeviceInfo(str(d["id"]), str(d["name"]), d.get("memory")) for d in items]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


class DeviceProbe(QObject):
    """The answer to "which device?", asked once per process. Signal: ``answered(label)``.

    After the answer, :attr:`devices` lists the CPU and each GPU (an empty list when the child could not say).
    """

    answered = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label: str | None = None
        self.devices: list[DeviceInfo] = []
        self._process: QProcess | None = None

    def ask(self) -> str | None:
        """The label when known (then no signal follows), else None and ``answered`` comes later."""
        if self.label is None and "torch" in sys.modules:
            from engine.devices import list_devices

            self.devices = list_devices()  # NOTE: PyTorch is here already: asking costs nothing
            self.label = training_device_label()
        if self.label is None and self._process is None:
            self.ask_child()
        return self.label

    def ask_child(self) -> None:
        """Start the child Python that answers; ``answered`` follows when it has."""
        process = QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(["-c", _CHILD])
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        process.start()

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        process = self._process
        text = bytes(process.readAllStandardOutput().data()).decode("utf-8", "replace").strip() if process else ""
        lines = text.splitlines()
        ok = status == QProcess.ExitStatus.NormalExit and code == 0 and len(lines) >= 2
        devices = _parse_devices(lines[-1]) if ok else None
        if devices is not None:
            self.devices = devices
        self._answer(lines[-2] if devices is not None else UNKNOWN)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._answer(UNKNOWN)

    def _answer(self, label: str) -> None:
        if self.label is None:
            self.label = label
            self.answered.emit(label)

    def stop(self) -> None:
        """End the child if it still runs (the program quits)."""
        if self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning:
            self._process.kill()
            self._process.waitForFinished(2000)


_PROBE: DeviceProbe | None = None


def device_probe() -> DeviceProbe:
    """The process's one :class:`DeviceProbe`, owned by the application (made on first use)."""
    global _PROBE
    if _PROBE is None:
        app = QCoreApplication.instance()
        _PROBE = DeviceProbe(app)
        app.aboutToQuit.connect(_PROBE.stop)
    return _PROBE


class DeviceCombo(NoWheelCombo):
    """The device field: auto, cpu and cuda, then each GPU by number with its name and memory once they are known.

    A device the project names that this machine lacks (``cuda:3``) is shown as such rather than as another
    choice; training then refuses it with a message. Signal: ``chosen(value)``, the person's choices only.
    """

    chosen = Signal(object)

    def __init__(self, probe: DeviceProbe | None = None) -> None:
        super().__init__()
        self._gpus: list[DeviceInfo] = []
        self._known = False
        for value, (text, tip) in DEVICE_TITLES.items():
            self._add(value, text, tip)
        self.activated.connect(lambda i: self.chosen.emit(self.itemData(i)))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # NOTE: the wheel edits only when focused
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(10)
        self._probe = probe if probe is not None else device_probe()
        if self._probe.ask() is not None:
            self.show_devices(self._probe.devices)
        else:
            self._probe.answered.connect(self._on_answered)

    def _on_answered(self, _label: str) -> None:
        self.show_devices(self._probe.devices)

    def show_devices(self, devices: list[DeviceInfo]) -> None:
        """List each GPU of ``devices`` (after the fixed choices), keeping the value shown."""
        current = self.currentData()
        self._known = True
        self._gpus = [d for d in devices if d.id.startswith("cuda:")]
        for i in reversed(range(self.count())):
            if str(self.itemData(i)).startswith("cuda:"):
                self.removeItem(i)
        for d in self._gpus:
            size = f" ({d.memory / 2**30:.1f} GiB)" if d.memory else ""
            self._add(d.id, f"GPU {d.id.split(':')[1]}: {d.name}{size}", f"Train on {d.id}, {d.name}{size}.")
        if current is not None:
            self.set_value(current)

    def set_value(self, value: Any) -> None:
        """Show ``value``; one this machine does not have (or not yet known) gets an entry of its own."""
        if self.findData(value) < 0 and isinstance(value, str):
            missing = " (not on this machine)" if self._known else ""
            self._add(value, f"{value}{missing}", "The project asks for this GPU" + (
                ", which this computer does not have: training will say so; choose another device."
                if self._known else "."))
        self.setCurrentIndex(max(self.findData(value), 0))

    def _add(self, value: str, text: str, tip: str) -> None:
        self.addItem(text, value)
        self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

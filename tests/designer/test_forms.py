"""The Inspector and Training setup forms as a person uses them: the wheel, Ctrl+Z, the lock, what is shown.

Every check here drives the forms with real input events (wheel events sent to the field, key
clicks, mouse clicks, the tooltip event a pause of the pointer sends).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QHelpEvent, QPalette, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QFileDialog, QToolTip, QWidget

from designer.document import Document
from designer.fields import LOCK_REASON
from designer.inspector import InspectorWidget
from designer.main_window import MainWindow
from designer.training.config_panel import TrainingConfigPanel
from engine.config import REGRESSION_FUNCTIONS
from designer.training.options import IMAGE_AUGMENTS
from engine.templates import load_template

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(light_window):
    return light_window


def _panel(qtbot, template: str = "lenet5", height: int = 320) -> tuple[TrainingConfigPanel, Document]:
    doc = Document()
    doc.replace(load_template(template), None)
    panel = TrainingConfigPanel(doc)
    qtbot.addWidget(panel)
    panel.resize(380, height)  # NOTE: short, so the form scrolls
    panel.show()
    qtbot.waitExposed(panel)
    with qtbot.waitActive(panel):
        panel.activateWindow()
    return panel, doc


def _wheel(widget: QWidget, notches: int = -1) -> None:
    """One turn of the mouse wheel over the middle of ``widget`` (negative: towards the person)."""
    at = QPointF(widget.rect().center())
    event = QWheelEvent(at, QPointF(widget.mapToGlobal(at.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def _value(widget: QWidget):
    """What a field shows: a spin box's number, a combo box's text, a check box's tick, a text box's text."""
    if isinstance(widget, QAbstractSpinBox):
        return widget.value()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    return widget.isChecked() if hasattr(widget, "isChecked") else widget.text()


def _hover_tip(widget: QWidget) -> str:
    """The tooltip a pause of the pointer over ``widget`` shows."""
    QToolTip.hideText()
    at = widget.rect().center()
    QApplication.sendEvent(widget, QHelpEvent(QEvent.Type.ToolTip, at, widget.mapToGlobal(at)))
    return QToolTip.text() if QToolTip.isVisible() else ""


# ---------------------------------------------------------------------- the mouse wheel
def test_wheel_over_the_batch_size_scrolls_the_form_and_changes_nothing(qtbot):
    panel, doc = _panel(qtbot)
    batch = panel.fields[("training", "batch_size")]
    panel.scroll.ensureWidgetVisible(batch)
    bar = panel.scroll.verticalScrollBar()
    bar.setValue(bar.minimum() + (bar.maximum() - bar.minimum()) // 3)
    before, start = doc.project.training.batch_size, bar.value()
    assert before == 64 and not batch.hasFocus()
    _wheel(batch, -1)
    assert batch.value() == before and doc.project.training.batch_size == before
    assert doc.undo_stack.count() == 0
    assert bar.value() > start  # the form scrolled instead
    # clicked, the field has focus: now the wheel is for it
    panel.scroll.ensureWidgetVisible(batch)
    QTest.mouseClick(batch, LEFT, pos=batch.rect().center())
    assert batch.hasFocus()
    _wheel(batch, 1)
    assert doc.project.training.batch_size == before + 1
    assert doc.undo_stack.count() == 1


def test_no_spin_or_combo_box_of_either_form_takes_the_wheel_without_focus(qtbot):
    panel, doc = _panel(qtbot)
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show()
    fields = [w for w in panel.fields.values() if isinstance(w, (QAbstractSpinBox, QComboBox))]
    for nid in doc.graph.nodes:  # every block type of the template: each kind of parameter editor
        inspector.set_selection([nid])
        form = inspector.form
        fields += [f.widget for f in form.fields.values() if isinstance(f.widget, (QAbstractSpinBox, QComboBox))]
        for w in [f.widget for f in form.fields.values()]:
            assert w.focusPolicy() == Qt.FocusPolicy.StrongFocus  # NOTE: Qt.WheelFocus took focus from the wheel
            before = _value(w)
            _wheel(w, -1)
            _wheel(w, 1)
            assert _value(w) == before, w.objectName()
    for w in panel.fields.values():
        if isinstance(w, (QAbstractSpinBox, QComboBox)):
            assert w.focusPolicy() == Qt.FocusPolicy.StrongFocus
            before = _value(w)
            _wheel(w, -1)
            _wheel(w, 1)
            assert _value(w) == before
    assert len(fields) > 20
    assert doc.undo_stack.count() == 0


# ---------------------------------------------------------------------- undo and redo from a field
def test_ctrl_z_in_an_inspector_field_undoes_and_redoes(window, qtbot):
    window.new_from_template("lenet5")
    conv = next(nid for nid, n in window.document.graph.nodes.items() if n.name == "conv1")
    window.scene.select_nodes([conv])
    spin = window.inspector.field("filters")
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "12")
    QTest.keyClick(spin, Qt.Key.Key_Return)
    assert window.document.graph.nodes[conv].params["filters"] == 12
    assert spin.hasFocus()
    QTest.keyClick(spin, Qt.Key.Key_Z, CTRL)
    assert window.document.graph.nodes[conv].params["filters"] == 6
    assert spin.value() == 6 and spin.text() == "6"
    QTest.keyClick(spin, Qt.Key.Key_Z, CTRL | SHIFT)
    assert window.document.graph.nodes[conv].params["filters"] == 12
    QTest.keyClick(spin, Qt.Key.Key_Z, CTRL)
    QTest.keyClick(spin, Qt.Key.Key_Y, CTRL)
    assert window.document.graph.nodes[conv].params["filters"] == 12 and spin.value() == 12

    name = window.inspector.form.name_edit
    name.setFocus()
    name.selectAll()
    QTest.keyClicks(name, "first_conv")
    QTest.keyClick(name, Qt.Key.Key_Return)
    assert window.document.graph.nodes[conv].name == "first_conv"
    QTest.keyClick(name, Qt.Key.Key_Z, CTRL)
    assert window.document.graph.nodes[conv].name == "conv1"
    assert name.text() == "conv1"  # the field shows the name again, though it has focus


def test_ctrl_z_in_a_training_setup_field_undoes(window, qtbot):
    window.new_from_template("lenet5")
    window.training.show_setup()
    batch = window.training.config_panel.fields[("training", "batch_size")]
    window.training.config_panel.scroll.ensureWidgetVisible(batch)
    batch.setFocus()
    batch.selectAll()
    QTest.keyClicks(batch, "32")
    QTest.keyClick(batch, Qt.Key.Key_Return)
    assert window.document.project.training.batch_size == 32
    QTest.keyClick(batch, Qt.Key.Key_Z, CTRL)
    assert window.document.project.training.batch_size == 64 and batch.value() == 64
    QTest.keyClick(batch, Qt.Key.Key_Y, CTRL)
    assert window.document.project.training.batch_size == 32


# ---------------------------------------------------------------------- the lock during a run
def test_locked_fields_look_locked_and_say_why(window, qtbot):
    window.new_from_template("lenet5")
    conv = next(nid for nid, n in window.document.graph.nodes.items() if n.name == "conv1")
    window.scene.select_nodes([conv])
    spin = window.inspector.field("filters")
    unlocked = spin.grab().toImage()
    assert "Filters" in _hover_tip(spin) and LOCK_REASON not in _hover_tip(spin)  # its own tooltip only
    window.training._lock(True)  # NOTE: what the controller does when a run starts, and keeps while it pauses
    try:
        panels = (window.inspector, window.training.config_panel)
        for panel in panels:
            assert not panel.isEnabled() and panel.lock_note.isVisibleTo(panel)
        # disabled fields are drawn on another ground than editable ones
        pal = spin.palette()
        assert pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base) != pal.color(
            QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
        locked = spin.grab().toImage()
        x, y = 3, locked.height() // 2  # inside the frame, left of the digits
        assert locked.pixelColor(x, y) != unlocked.pixelColor(x, y)
        # a pause of the pointer says why, before the field's own explanation
        tip = _hover_tip(spin)
        assert LOCK_REASON in tip and "Filters" in tip
        batch = window.training.config_panel.fields[("training", "batch_size")]
        assert LOCK_REASON in _hover_tip(batch)
        # typing does nothing, and the canvas refuses Ctrl+Z too
        QTest.keyClicks(spin, "99")
        assert window.document.graph.nodes[conv].params["filters"] == 6
    finally:
        window.training._lock(False)
    assert window.inspector.isEnabled() and not window.inspector.lock_note.isVisibleTo(window.inspector)
    assert LOCK_REASON not in _hover_tip(spin)


def test_a_field_waiting_for_another_says_what_it_waits_for(qtbot):
    panel, doc = _panel(qtbot)
    momentum = panel.fields[("training", "momentum")]
    assert doc.project.training.optimizer != "sgd" and not momentum.isEnabled()
    assert "SGD" in _hover_tip(momentum)


# ---------------------------------------------------------------------- what does not apply is hidden
def test_input_shows_the_sizes_of_its_kind_only(qtbot):
    doc = Document()
    doc.replace(load_template("lenet5"), None)
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.resize(420, 700)
    inspector.show()
    qtbot.waitExposed(inspector)
    nid = next(nid for nid, n in doc.graph.nodes.items() if n.type == "Input")
    inspector.set_selection([nid])
    form = inspector.form
    shown = {name for name in form.fields if form.is_shown(name)}
    assert {"kind", "channels", "height", "width"} <= shown and "features" not in shown
    assert not form.labels["features"].isVisibleTo(inspector)
    kind = inspector.field("kind")
    kind.setFocus()
    QTest.keyClick(kind, Qt.Key.Key_Down)  # image -> vector
    assert doc.graph.nodes[nid].params["kind"] == "vector"
    shown = {name for name in form.fields if form.is_shown(name)}
    assert "features" in shown and not {"channels", "height", "width"} & shown
    doc.undo_stack.undo()
    assert inspector.form.is_shown("height") and not inspector.form.is_shown("features")


def test_image_augmentations_are_hidden_for_points(qtbot):
    points, _ = _panel(qtbot, "mlp")  # spiral: 2-D points into a vector Input
    images, _ = _panel(qtbot, "lenet5")
    assert {"vflip", "cutout", "elastic"} <= set(IMAGE_AUGMENTS)
    for name in IMAGE_AUGMENTS:
        assert not points.fields[("augment", name)].isVisibleTo(points)
        assert images.fields[("augment", name)].isVisibleTo(images)
    for name in ("noise", "mixup"):
        assert points.fields[("augment", name)].isVisibleTo(points)
    assert points.augment_note.isVisibleTo(points) and not images.augment_note.isVisibleTo(images)


def test_an_image_augmentation_that_is_on_stays_shown_for_points(qtbot):
    doc = Document()
    project = load_template("mlp")
    project.data.augment = {"flip": True}
    doc.replace(project, None)
    panel = TrainingConfigPanel(doc)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.fields[("augment", "flip")].isVisibleTo(panel)  # so that it can be turned off
    assert not panel.fields[("augment", "rotation")].isVisibleTo(panel)


# ---------------------------------------------------------------------- file dialogs
class _Dialogs:
    """Stands in for the file dialogs: records the folder each opened in, and cancels."""

    def __init__(self, monkeypatch) -> None:
        self.folders: list[str] = []
        for name in ("getOpenFileName", "getSaveFileName"):
            monkeypatch.setattr(QFileDialog, name, staticmethod(self._file))
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(self._dir))

    def _file(self, parent, caption="", folder="", *args, **kwargs):
        self.folders.append(folder)
        return "", ""

    def _dir(self, parent, caption="", folder="", *args, **kwargs):
        self.folders.append(folder)
        return ""


def _every_file_dialog(window: MainWindow) -> None:
    window.act.open.trigger()
    window.act.save_as.trigger()
    window.files.export_code(None, ask=False)
    window.files.export_package(None, ask=False)
    window.training.config_panel._browse()
    window.training.runs.choose_folder()


def test_file_dialogs_open_in_the_project_folder_or_the_documents_folder(window, monkeypatch, tmp_path):
    docs = tmp_path / "Documents"
    docs.mkdir()
    monkeypatch.setattr("designer.file_ops.QStandardPaths.writableLocation", lambda _where: str(docs))
    dialogs = _Dialogs(monkeypatch)
    window.new_from_template("mlp")
    window.document.undo_stack.setClean()
    _every_file_dialog(window)
    assert len(dialogs.folders) == 6
    assert all(Path(f) == docs or Path(f).parent == docs for f in dialogs.folders), dialogs.folders

    project = tmp_path / "work" / "net.json"
    project.parent.mkdir()
    assert window.files.save_to(project)
    dialogs.folders.clear()
    _every_file_dialog(window)
    expected = (project.parent, project.parent / "net.runs")
    assert all(Path(f) in expected or Path(f).parent == project.parent for f in dialogs.folders), dialogs.folders


def test_the_curve_of_the_1d_set_and_the_spiral_arms_are_set_where_they_apply(qtbot):
    panel, doc = _panel(qtbot, "mlp", height=900)  # the spiral: its arms show, the curve does not
    function, arms = panel.fields[("data", "function")], panel.fields[("data", "classes")]
    assert arms.isVisibleTo(panel) and not function.isVisibleTo(panel) and arms.value() == 2
    arms.setValue(4)
    assert doc.project.data.extra["classes"] == 4
    doc.undo_stack.undo()
    assert "classes" not in doc.project.data.extra and arms.value() == 2
    dataset = panel.fields[("data", "dataset")]
    dataset.activated.emit(dataset.findData("regression1d"))
    assert doc.project.data.dataset == "regression1d"
    assert function.isVisibleTo(panel) and not arms.isVisibleTo(panel)
    assert function.currentData() == "sin"  # unset: the set samples sin x
    assert [function.itemData(i) for i in range(function.count())] == list(REGRESSION_FUNCTIONS)
    function.activated.emit(function.findData("step"))
    assert doc.project.data.extra["function"] == "step" and doc.project.data.to_dict()["function"] == "step"
    doc.undo_stack.undo()
    assert "function" not in doc.project.data.extra and function.currentData() == "sin"
    for name in ("function", "classes"):  # a picture of digits has neither
        dataset.activated.emit(dataset.findData("digits"))
        assert not panel.fields[("data", name)].isVisibleTo(panel)

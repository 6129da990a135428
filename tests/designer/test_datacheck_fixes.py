"""Network against data in the window: the problem shows before Train, its Fix is one undo step.

Each case opens a project whose network does not fit its data (too few class scores, an Input
the data cannot fill, an output block the data has no targets for, one the task does not train,
no output block at all) and does what a person does: reads the Problems entry, sees the block
red, presses Train (nothing starts, the dashboard says why), selects the entry, presses Fix,
then Ctrl+Z.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu

from designer import theme
from designer.commands import fix_command
from designer.document import Document
from designer.main_window import MainWindow
from designer.problems import FIX_ROLE
from engine.layout import DEFAULT_SPACING, auto_layout
from engine.project import Project
from engine.templates import load_template
from tests.designer.conftest import training_window

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def _named(p: Project, name: str) -> str:
    return next(nid for nid, n in p.graph.nodes.items() if n.name == name)


def _head(p: Project) -> str:
    return next(nid for nid, n in p.graph.nodes.items() if n.spec.role == "head")


def too_few_scores() -> Project:
    p = load_template("lenet5")
    p.graph.set_params(_named(p, "fc3"), {"units": 7})
    return p


def two_channel_input() -> Project:
    p = load_template("lenet5")
    p.graph.set_params(_named(p, "input"), {"channels": 2})
    return p


def binary_output_on_digits() -> Project:
    p = load_template("lenet5")
    p.graph.remove_node(_head(p))
    out = p.graph.add_node("BinaryOutput", name="out", pos=(2000.0, 0.0)).id
    p.graph.connect(_named(p, "fc3"), 0, out, 0)
    return p


def task_does_not_match() -> Project:
    p = load_template("lenet5")
    p.data.task = "regression"
    return p


def no_output() -> Project:
    p = load_template("lenet5")
    p.graph.remove_node(_head(p))
    for nid, pos in auto_layout(p.graph, fit=None).items():  # NOTE: one band: the spot after fc3 is free
        p.graph.move(nid, pos)
    return p


#: case -> (project, name of the block marked, rule, fix label, what the message says)
CASES = {
    "class count": (too_few_scores, "fc3", "class_count", "Set fc3 to 10 units",
                    "'fc3' gives 7 class scores but the digits data set has 10 classes"),
    "input shape": (two_channel_input, "input", "input_data", "Set input to 1×32×32",
                    "'input' has 2 channels but the digits data set holds 8×8 grayscale images"),
    "head vs data": (binary_output_on_digits, "out", "head_data", "Replace out with a Class output",
                     "'out' is a Binary output, which needs a data set of exactly 2 classes"),
    "head vs task": (task_does_not_match, "output", "head_task", "Set the task to classification",
                     "'output' is a Class output, but the regression task trains on numbers to predict"),
    "no output": (no_output, "fc3", "no_output", "Add a Class output after fc3",
                  "the network has no output block: add one after 'fc3'"),
}


def entry(w: MainWindow, rule_text: str):
    """The Problems entry whose text holds ``rule_text`` (None when there is none)."""
    lst = w.problems.list
    return next((lst.item(i) for i in range(lst.count()) if rule_text in lst.item(i).text()), None)


def click(w: MainWindow, item) -> None:
    w.problems_dock.raise_()
    lst = w.problems.list
    lst.scrollToItem(item)
    QTest.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=lst.visualItemRect(item).center())


def undo(qtbot, w: MainWindow) -> None:
    with qtbot.waitSignal(w.document.analysis_changed):
        QTest.keyClick(w.view, Qt.Key.Key_Z, CTRL)


@pytest.mark.parametrize("case", list(CASES))
def test_problem_shows_fix_clears_it_and_undo_brings_it_back(qtbot, case):
    make, name, rule, label, says = CASES[case]
    project = make()
    nid = _named(project, name)
    with training_window(qtbot, project) as w:
        w.document.analyze_now()
        item = entry(w, says)
        assert item is not None, [w.problems.list.item(i).text() for i in range(w.problems.list.count())]
        assert item.text().endswith(f"— click Fix to {label[0].lower()}{label[1:]}")
        assert item.data(FIX_ROLE).label == label
        assert w.scene.node_item(nid).severity == "error"
        assert says in w.scene.node_item(nid).tooltip_text()
        assert w.validity_label.text().startswith("✗")

        click(w, item)
        assert w.scene.selected_node_ids() == [nid]
        button = w.problems.fix_button
        assert button.isVisible() and button.isEnabled() and button.text().startswith("Fix: ")
        assert button.toolTip().startswith(f"Fix: {label} as one step")  # the whole label, however narrow the dock
        steps = w.document.undo_stack.count()
        with qtbot.waitSignal(w.document.analysis_changed):
            QTest.mouseClick(button, Qt.MouseButton.LeftButton)
        assert w.document.undo_stack.count() == steps + 1  # one undo step
        assert w.document.undo_stack.text(steps) == label
        assert entry(w, says) is None
        assert not [p for p in w.document.analysis.all_problems() if p.rule == rule]
        assert w.document.analysis.valid and w.validity_label.text() == "✓ Valid network"
        assert not button.isVisible()

        undo(qtbot, w)
        assert entry(w, says) is not None
        assert w.scene.node_item(nid).severity == "error"
        assert w.validity_label.text().startswith("✗")
        with qtbot.waitSignal(w.document.analysis_changed):
            w.act.redo.trigger()
        assert entry(w, says) is None and w.document.analysis.valid


@pytest.mark.parametrize("case", list(CASES))
def test_train_with_the_mismatch_does_not_start_and_says_why(qtbot, case):
    make, *_, says = CASES[case]
    with training_window(qtbot, make()) as w:
        w.training.show_dashboard()
        dashboard = w.training.dashboard
        assert dashboard.message_text() == ""
        QTest.mouseClick(dashboard.train_button, Qt.MouseButton.LeftButton)
        assert w.training.session is None and not w.training.is_running()
        message = dashboard.message_text()
        assert "error" in message and "Problems" in message
        assert not w.view.is_read_only()
        assert entry(w, says) is not None


def test_the_context_menu_offers_the_fix(qtbot, monkeypatch):
    shown: list[QMenu] = []
    monkeypatch.setattr(QMenu, "popup", lambda self, *a: shown.append(self))
    with training_window(qtbot, too_few_scores()) as w:
        w.document.analyze_now()
        w.problems_dock.raise_()
        item = entry(w, "gives 7 class scores")
        lst = w.problems.list
        at = lst.visualItemRect(item).center()
        # NOTE: what Qt sends on a right-click (the offscreen platform makes none from QTest's clicks)
        QApplication.sendEvent(lst.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, at, lst.viewport().mapToGlobal(at)))
        (menu,) = shown
        texts = [a.text() for a in menu.actions()]
        assert texts == ["Fix: Set fc3 to 10 units", "Show the block"]
        with qtbot.waitSignal(w.document.analysis_changed):
            menu.actions()[0].trigger()
        assert w.document.graph.node(_named(w.document.project, "fc3")).params["units"] == 10
        assert entry(w, "gives 7 class scores") is None


def test_the_fix_button_without_a_selection_fixes_the_first_listed(qtbot):
    with training_window(qtbot, too_few_scores()) as w:
        w.document.analyze_now()
        w.problems_dock.raise_()
        assert w.problems.list.selectedItems() == []
        assert w.problems.fix_button.toolTip().startswith("Fix: Set fc3 to 10 units")
        with qtbot.waitSignal(w.document.analysis_changed):
            QTest.mouseClick(w.problems.fix_button, Qt.MouseButton.LeftButton)
        assert w.document.analysis.valid


def test_a_data_settings_edit_rechecks_the_network(qtbot):
    with training_window(qtbot, load_template("lenet5")) as w:
        w.document.analyze_now()
        assert w.document.analysis.valid
        w.training.show_setup()
        combo = w.training.config_panel.fields[("data", "task")]
        combo.setFocus()
        with qtbot.waitSignal(w.document.analysis_changed):
            QTest.keyClick(combo, Qt.Key.Key_Down)  # classification -> the next task
        assert w.document.project.data.task != "classification"
        assert not w.document.analysis.valid
        assert entry(w, "the output block must match the task") is not None
        undo(qtbot, w)
        assert w.document.project.data.task == "classification"
        assert w.document.analysis.valid and entry(w, "must match the task") is None


def test_no_fix_while_a_run_locks_the_network(qtbot):
    with training_window(qtbot, too_few_scores()) as w:
        w.document.analyze_now()
        fix = w.problems.fix_target()
        w.view.set_read_only(True)
        w.apply_fix(fix)
        assert w.document.undo_stack.count() == 0
        assert "locked" in w.statusBar().currentMessage()
        w.view.set_read_only(False)


@pytest.mark.parametrize(("flow", "step"), [("lr", (DEFAULT_SPACING[0], 0.0)), ("tb", (0.0, DEFAULT_SPACING[1]))])
def test_an_added_output_goes_one_step_along_the_flow_and_a_replacement_takes_its_place(qtbot, flow, step):
    doc = Document(no_output())
    doc.graph.set_flow(flow)
    fc = doc.graph.node(_named(doc.project, "fc3"))
    (problem,) = [p for p in doc.analyze_now().all_problems() if p.rule == "no_output"]
    doc.push(fix_command(doc, problem.fix))
    (head,) = [n for n in doc.graph.nodes.values() if n.spec.role == "head"]
    assert head.pos == (fc.pos[0] + step[0], fc.pos[1] + step[1])
    doc.undo_stack.undo()
    assert not [n for n in doc.graph.nodes.values() if n.spec.role == "head"]
    doc.deleteLater()

    doc = Document(binary_output_on_digits())
    old = doc.graph.node(_named(doc.project, "out"))
    fc = doc.graph.node(_named(doc.project, "fc3"))
    (problem,) = [p for p in doc.analyze_now().all_problems() if p.rule == "head_data"]
    doc.push(fix_command(doc, problem.fix))
    (head,) = [n for n in doc.graph.nodes.values() if n.spec.role == "head"]
    assert head.type == "ClassificationOutput" and head.pos == old.pos and old.id not in doc.graph.nodes
    doc.undo_stack.undo()
    assert doc.graph.node(old.id).type == "BinaryOutput" and doc.graph.inputs_of(old.id)[0].src == fc.id
    doc.deleteLater()

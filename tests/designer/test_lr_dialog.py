"""Train → Find learning rate…: the search runs off the window's thread, draws, and one click sets the rate undoably."""

from __future__ import annotations

from PySide6.QtCore import Qt

from designer.training.lr_dialog import LrFinderDialog
from engine.templates import load_template
from tests.designer.conftest import training_window


def small_mlp():
    p = load_template("mlp")
    p.data.samples = 300
    p.training.device = "cpu"
    return p


def test_the_finder_plots_its_suggestions_and_use_sets_the_rate_as_one_undo_step(qtbot):
    with training_window(qtbot, small_mlp()) as w:
        doc = w.document
        before = doc.project.training.lr
        w.training.lr_action.trigger()  # Train → Find Learning Rate…
        dialog = w.findChild(LrFinderDialog, "lr_finder")
        # NOTE: the search's end reaches the dialog as a queued signal, handled inside this wait
        with qtbot.waitSignal(dialog.searched, timeout=120_000) as ended:
            pass
        assert ended.args == ["done"] and dialog.result is not None
        valley = dialog.result.valley
        assert valley is not None and "Use valley (" in dialog.buttons["valley"].text()
        assert doc.project.training.lr == before  # nothing applied silently
        qtbot.mouseClick(dialog.buttons["valley"], Qt.MouseButton.LeftButton)
        assert doc.project.training.lr == float(f"{valley:.2g}") != before
        assert doc.undo_stack.undoText().startswith("Set the learning rate")
        doc.undo_stack.undo()
        assert doc.project.training.lr == before


def test_closing_the_dialog_while_it_searches_stops_it_and_leaves_no_thread(qtbot):
    with training_window(qtbot, small_mlp()) as w:
        dialog = w.training.find_learning_rate()
        assert dialog is not None and dialog.is_searching()
        dialog.reject()
        assert not dialog.is_searching()

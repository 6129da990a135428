"""State that follows the project: after New or Open, no panel shows the previous project's run, and
Explore says what it waits for while the first run trains.

New is pressed as Ctrl+N and Open as Ctrl+O (the file dialog answers with a path); runs start with F5.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from designer import theme
from designer.insight.explore import EMPTY_TEXT
from designer.main_window import MainWindow
from engine.project import save_project
from engine.templates import load_template
from tests.designer.conftest import small_cnn, training_window

CTRL = Qt.KeyboardModifier.ControlModifier
TIMEOUT = 60_000
CONV2 = "n5"  # in the LeNet-5 template


@pytest.fixture(autouse=True)
def _isolated(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def small_mlp(epochs: int = 2):
    p = load_template("mlp")
    p.data.samples = 300
    p.training.epochs = epochs
    p.training.device = "cpu"
    return p


def press(qtbot, w: MainWindow, key: Qt.Key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A key press in the window, with the canvas focused (a window's shortcuts need it active)."""
    if QApplication.activeWindow() is not w:
        with qtbot.waitActive(w):
            w.activateWindow()
    w.view.setFocus()
    QTest.keyClick(w, key, modifiers)


def train(qtbot, w: MainWindow) -> str:
    """Press F5 and wait for the run's end; returns its outcome."""
    with qtbot.waitSignal(w.training.run_ended, timeout=TIMEOUT) as ended:
        press(qtbot, w, Qt.Key.Key_F5)
    return ended.args[0]


def assert_no_run_shown(w: MainWindow) -> None:
    """The Training dock, the Runs dock and Explore as they are before a project's first run."""
    ctl = w.training
    dash, explore = ctl.dashboard, ctl.insight.explore
    assert dash.is_empty() and dash.message_text() == "" and dash.batch.n == 0 and len(dash.val_epochs) == 0
    assert "ailed" not in dash.progress_bar.text()
    assert ctl.runs.entries == []
    assert explore.entry is None and explore.result is None and explore.plot.image.image is None
    assert explore.header.text() == EMPTY_TEXT and not explore.patches_button.isEnabled()
    assert ctl.probe_layer is None  # NOTE: a block id of the previous project may name another block here


def test_new_shows_nothing_of_the_previous_project_s_run_or_its_patches(qtbot):
    with training_window(qtbot, small_cnn(samples=64, epochs=1, every_batches=1000)) as w:
        ctl = w.training
        explore = ctl.insight.explore
        w.scene.select_nodes([CONV2])
        assert train(qtbot, w) == "finished"
        assert len(ctl.runs.entries) == 1 and not ctl.dashboard.is_empty()
        with qtbot.waitSignal(explore.ended, timeout=TIMEOUT) as found:
            qtbot.mouseClick(explore.patches_button, Qt.MouseButton.LeftButton)
        assert found.args == ["patches"] and explore.plot.image.image is not None
        w.document.undo_stack.setClean()
        press(qtbot, w, Qt.Key.Key_N, CTRL)
        assert len(w.document.graph) == 0
        assert_no_run_shown(w)


def test_opening_another_project_clears_the_previous_failure(qtbot, tmp_path, monkeypatch):
    broken = small_mlp()
    broken.data.dataset, broken.data.path = "csv", "missing.csv"
    save_project(broken, tmp_path / "broken.json")
    other = tmp_path / "other.json"
    save_project(small_mlp(), other)
    with training_window(qtbot, small_mlp()) as w:
        assert w.open_path(tmp_path / "broken.json")
        assert train(qtbot, w) == "failed"
        assert "Training failed" in w.training.dashboard.message_text()
        monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(other), "")))
        press(qtbot, w, Qt.Key.Key_O, CTRL)
        assert w.document.path == other
        assert_no_run_shown(w)
        assert train(qtbot, w) == "finished"  # the project's own run is listed, alone
        assert [e.path.parent.name for e in w.training.runs.entries] == ["other.runs"]


def test_explore_says_it_waits_for_the_first_run_while_it_trains(qtbot):
    with training_window(qtbot, small_mlp(epochs=500)) as w:
        explore = w.training.insight.explore
        assert explore.header.text() == EMPTY_TEXT
        with qtbot.waitSignal(w.training.run_started):
            press(qtbot, w, Qt.Key.Key_F5)
        try:
            text = explore.header.text()
            assert text != EMPTY_TEXT and "first" not in text.lower() and "Training" in text
            assert not explore.patches_button.isEnabled()
            qtbot.waitUntil(lambda: w.training.dashboard.batch.n > 0, timeout=TIMEOUT)
            assert explore.header.text() == text
        finally:
            with qtbot.waitSignal(w.training.run_ended, timeout=TIMEOUT):
                press(qtbot, w, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)
        assert explore.entry is not None and explore.header.text() != EMPTY_TEXT  # the stopped run kept its weights


def test_the_masks_and_boxes_tab_shows_for_a_segmentation_network_only(qtbot, tmp_path, monkeypatch):
    unet = tmp_path / "unet.json"
    save_project(load_template("unet"), unet)
    with training_window(qtbot, small_mlp()) as w:
        panel = w.training.insight
        tab = panel.tabs.indexOf(panel.predictions)

        def shown() -> bool:
            return panel.tabs.isTabVisible(tab)

        assert not shown()  # a classifier of 2-D points
        monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(unet), "")))
        w.document.undo_stack.setClean()
        press(qtbot, w, Qt.Key.Key_O, CTRL)
        qtbot.waitUntil(shown)
        w.document.undo_stack.setClean()
        press(qtbot, w, Qt.Key.Key_N, CTRL)
        qtbot.waitUntil(lambda: not shown())

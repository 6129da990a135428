"""State that follows the project: after New or Open, no panel shows the previous project's run, and
Explore says what it waits for while the first run trains.

New is pressed as Ctrl+N and Open as Ctrl+O (the file dialog answers with a path); runs start with F5.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QFileDialog, QLabel

from designer import theme
from designer.insight.explore import EMPTY_TEXT
from designer.insight.panel import START_TEXT, InsightPanel
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


# ---------------------------------------------------------------------- Insight follows the project


def boxes_net(epochs: int = 1):
    """The localization template on 64 shape images: every Insight view but the decision regions has results."""
    p = load_template("localization")
    p.data.samples = 64
    p.data.val_fraction = 0.25
    p.training.epochs = epochs
    p.training.batch_size = 32
    p.training.device = "cpu"
    p.probes.every_batches = 1
    return p


def held(panel: InsightPanel) -> set[str]:
    """What the Insight views hold of a run: their drawn items, tables, recorded frames and offered choices."""
    a, f, c, g, h, d, p = (panel.activations, panel.filters, panel.cam, panel.gradients, panel.histograms,
                           panel.decisions, panel.predictions)
    found = {
        "activations.image": a.plot.image.image is not None,
        "activations.samples": a.sample_box.count() > 0,
        "activations.dead": bool(a.dead_label.text()),
        "filters.image": f.plot.image.image is not None,
        "cam.image": c.plot.image.image is not None,
        "cam.captions": bool(c.plot.texts),
        "cam.film": c.film.image.image is not None or bool(c.film.texts),
        "cam.frames": bool(c.frames),
        "cam.classes": c.class_box.count() > 1,
        "cam.film_samples": c.film_box.count() > 1,
        "gradients.bars": len(g.grad.bars.opts["x"]) > 0 or len(g.ratio.bars.opts["x"]) > 0,
        "histograms.image": h.weights.image.image is not None or h.activations.image.image is not None,
        "histograms.ranges": bool(h.ranges.text()),
        "decisions.matrix": d.confusion.image.image is not None or bool(d.confusion.texts),
        "decisions.accuracy": d.accuracy.rowCount() > 0,
        "decisions.hardest": d.hardest.rowCount() > 0,
        "decisions.regions": d.region_image.image is not None or len(d.points.data) > 0,
        "decisions.curve": len(d.fit.getData()[0] if d.fit.getData()[0] is not None else ()) > 0,
        "decisions.gallery": d.gallery.plot.image.image is not None or bool(d.gallery.plot.texts),
        "predictions.image": p.plot.image.image is not None or bool(p.plot.texts),
        "predictions.boxes": len(p.boxes.getData()[0] if p.boxes.getData()[0] is not None else ()) > 0,
        "predictions.legend": bool(p.legend.text()),
    }
    return {name for name, holds in found.items() if holds}


def texts(panel: InsightPanel) -> list[list[str]]:
    """Every label's text and every chooser's entries in the views Insight fills, view by view."""
    return [[label.text() for label in view.findChildren(QLabel)]
            + [box.itemText(i) for box in view.findChildren(QComboBox) for i in range(box.count())]
            for view in panel.probe_views + panel.insight_views]


def assert_insight_empty(panel: InsightPanel) -> None:
    """Every view as in a panel just made, once each has been shown (a hidden view draws when shown)."""
    look_at_every_view(panel)
    assert held(panel) == set()
    fresh = InsightPanel()
    try:
        assert texts(panel) == texts(fresh)
        assert panel.status.text() == fresh.status.text() == START_TEXT
        d = panel.decisions
        assert not d.regions.isVisibleTo(d) and not d.gallery.isVisibleTo(d) and d.confusion.isVisibleTo(d)
        assert panel.cam.class_box.currentData() is None  # "Predicted class", as the controller's cam_class
    finally:
        fresh.deleteLater()


def look_at_every_view(panel: InsightPanel) -> None:
    """Show each tab that the project offers, as a person looking through them does."""
    for i in range(panel.tabs.count()):
        if panel.tabs.isTabVisible(i):
            panel.tabs.setCurrentIndex(i)


def train_and_look(qtbot, w: MainWindow) -> set[str]:
    """Train (F5), with the Insight dock in front, then look at every view; returns what they hold."""
    assert train(qtbot, w) == "finished"
    w.training.show_insight()
    look_at_every_view(w.training.insight)
    return held(w.training.insight)


BOXES_HELD = {"activations.image", "activations.samples", "filters.image", "cam.image", "cam.captions", "cam.film",
              "cam.frames", "cam.classes", "cam.film_samples", "gradients.bars", "histograms.image",
              "histograms.ranges", "decisions.matrix", "decisions.accuracy", "decisions.hardest",
              "decisions.gallery", "predictions.image", "predictions.boxes", "predictions.legend"}


def test_new_and_open_return_every_insight_view_to_its_empty_state_and_a_new_run_fills_them(
        qtbot, tmp_path, monkeypatch):
    other = tmp_path / "other.json"
    save_project(boxes_net(), other)
    with training_window(qtbot, boxes_net()) as w:
        panel = w.training.insight
        w.scene.select_nodes(["n6"])
        assert train_and_look(qtbot, w) >= BOXES_HELD
        panel.cam.choose_class(2)
        assert w.training.cam_class == 2
        w.document.undo_stack.setClean()
        monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(other), "")))
        press(qtbot, w, Qt.Key.Key_O, CTRL)
        assert w.document.path == other
        assert_insight_empty(panel)
        assert w.training.cam_class is None

        w.scene.select_nodes(["n9"])
        assert train_and_look(qtbot, w) >= BOXES_HELD  # the new project's run fills them again
        assert panel.activations.data["node_id"] == "n9" and list(panel.cam.data["classes"]) != [2] * 8
        w.document.undo_stack.setClean()
        press(qtbot, w, Qt.Key.Key_N, CTRL)
        assert len(w.document.graph) == 0
        assert_insight_empty(panel)


def test_forget_empties_views_fed_masks_regions_and_curves(qtbot):
    from tests.designer.test_insight import (
        feed_insight,
        feed_probes,
        gallery_dict,
        insight_dict,
        masks_dict,
        probe_dict,
    )

    panel = InsightPanel()
    qtbot.addWidget(panel)
    panel.show()
    curve = insight_dict() | {"regression_curve": {"xs": np.linspace(0, 1, 5), "ys": np.linspace(1, 2, 5),
                                                   "x": np.zeros(3), "y": np.ones(3)}}
    del curve["decision_grid"]
    for epoch in (insight_dict(), curve, masks_dict(), gallery_dict()):
        feed_probes(panel, probe_dict())
        feed_insight(panel, epoch)
        panel.tabs.setTabVisible(panel.tabs.indexOf(panel.predictions), True)
        look_at_every_view(panel)
        assert held(panel)
        panel.forget()
        assert_insight_empty(panel)
    panel.show_insight(masks_dict())  # results that arrive while their view is hidden are dropped as well
    panel.show_probes(probe_dict())
    panel.forget()
    assert_insight_empty(panel)


def replayed(qtbot, w: MainWindow) -> str:
    """Wait until Insight shows the stored run picked in the Runs dock, computed again; returns the status line."""
    ctl = w.training
    qtbot.waitUntil(lambda: ctl._replay_job is None and "computed again" in ctl.insight.status.text(), timeout=TIMEOUT)
    return ctl.insight.status.text()


def test_a_stored_run_picked_after_open_is_one_of_the_new_project_s(qtbot, tmp_path, monkeypatch):
    cnn, points = tmp_path / "cnn.json", tmp_path / "points.json"
    save_project(small_cnn(samples=64, epochs=1, every_batches=1000), cnn)
    save_project(small_mlp(epochs=1), points)
    opened = {"path": cnn}
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(opened["path"]), "")))

    def open_(path) -> None:
        opened["path"] = path
        w.document.undo_stack.setClean()
        press(qtbot, w, Qt.Key.Key_O, CTRL)
        assert w.document.path == path

    with training_window(qtbot, small_mlp()) as w:
        ctl, panel = w.training, w.training.insight
        open_(cnn)
        assert train(qtbot, w) == "finished"
        open_(points)
        assert train(qtbot, w) == "finished" and train(qtbot, w) == "finished"
        open_(cnn)  # its run is listed, picked and computed again ...
        assert [e.path.parent.name for e in ctl.runs.entries] == ["cnn.runs"]
        open_(points)  # ... but the points project is opened before that ends, or just after
        assert [e.path.parent.name for e in ctl.runs.entries] == ["points.runs"] * 2
        assert replayed(qtbot, w).startswith("Run 2")  # the newest run of this project is picked
        look_at_every_view(panel)
        assert ctl._insight_of.parent.name == "points.runs"
        assert ctl.insight.explore.entry.path.parent.name == "points.runs"
        assert "decisions.regions" in held(panel)  # the points project's decision regions ...
        assert not held(panel) & {"filters.image", "cam.image", "cam.frames", "decisions.gallery"}  # none of the CNN's

        first = ctl.runs.list.item(0)  # the person picks the older run of this project
        ctl.runs.list.scrollToItem(first)
        qtbot.mouseClick(ctl.runs.list.viewport(), Qt.MouseButton.LeftButton,
                         pos=ctl.runs.list.visualItemRect(first).center())
        assert ctl.runs.current() is ctl.runs.entries[0]
        assert replayed(qtbot, w).startswith("Run 1")
        assert ctl._insight_of == ctl.runs.entries[0].path and ctl.insight.explore.entry is ctl.runs.entries[0]
        assert not held(panel) & {"filters.image", "cam.image", "decisions.gallery"}


def drop_file(w: MainWindow, path) -> None:
    """Drag a file from a file manager over the window and drop it (enter, move, drop)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPoint(400, 300)
    rest = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, QDragEnterEvent(pos, *rest))
    QApplication.sendEvent(w, QDragMoveEvent(pos, *rest))
    QApplication.sendEvent(w, QDropEvent(QPointF(pos), *rest))


def test_a_project_dropped_while_a_run_trains_gets_none_of_that_run_s_late_results(qtbot, tmp_path):
    other = tmp_path / "other.json"
    save_project(small_mlp(), other)
    with training_window(qtbot, boxes_net(epochs=500)) as w:
        ctl, panel = w.training, w.training.insight
        with qtbot.waitSignal(ctl.run_started):
            press(qtbot, w, Qt.Key.Key_F5)
        session = ctl.session
        with qtbot.waitSignal(session.insight_done, timeout=TIMEOUT) as epoch:
            pass  # NOTE: an epoch ended: every view has results to drop
        with qtbot.waitSignal(session.probes_done, timeout=TIMEOUT) as probes:
            pass
        w.document.undo_stack.setClean()
        with qtbot.waitSignal(w.document.project_replaced, timeout=TIMEOUT):
            drop_file(w, other)
        assert w.document.path == other and ctl.session is session  # stopping: it ends after its current batch
        # NOTE: results the run sent before it stopped may reach the window after the drop; that order, made sure of
        session.probes_done.emit(*probes.args)
        session.insight_done.emit(*epoch.args)
        with qtbot.waitSignal(ctl.run_ended, timeout=TIMEOUT) as ended:
            pass
        assert ended.args[0] == "stopped"
        assert_insight_empty(panel)
        # NOTE: the stopped run stays in its own project's runs folder, not in the list of the project dropped
        assert session.run_dir not in [e.path for e in ctl.runs.entries] and panel.explore.entry is None
        assert ctl.dashboard.message_text() == "" and (session.run_dir / "summary.json").is_file()

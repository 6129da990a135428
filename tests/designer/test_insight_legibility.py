"""The Insight views use their space: they grow with it, their numbers stay legible, and they say what they show.

Sizes are measured offscreen from the items' geometry in scene coordinates (a plot's scene is its
widget's pixels) and from the metrics of the fonts the items actually use.
"""

from __future__ import annotations

import csv

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRectF, QSettings, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.insight.confusion import per_class_accuracy
from designer.insight.images import WRONG
from designer.insight.maps import FILM_FRAMES, class_name
from designer.training.dashboard import TrainingDashboard
from designer.training.plots import make_plot
from engine.templates import load_template
from engine.training.events import EpochDone, Finished
from tests.designer.conftest import training_window
from tests.designer.test_insight import gallery_dict, insight_dict, probe_dict, tiny_run

RUN_TIMEOUT = 60_000
#: The Insight dock's content in a 1366×768 window's training layout: half the width, beside the training
#: plots, and the lower half of the 768 px less the menu, tool and status bars and the dock's title.
DOCK_1366 = (670, 330)
DIGITS = "0123456789"


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def settle():
    app = QApplication.instance()
    for _ in range(3):
        app.processEvents()


def show(panel, view, size=DOCK_1366):
    panel.resize(*size)
    panel.tabs.setCurrentWidget(view)
    settle()


def confusion_of(true: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (true, predicted), 1)
    return m


def labels(k: int, n: int, right: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` true classes of ``k`` (the last class left empty when k > 2) and predictions ``right`` of the time."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k - 1 if k > 2 else k, n)
    predicted = np.where(rng.random(n) < right, true, rng.integers(0, k, n))
    return true, predicted


def insight_with(m: np.ndarray, names=None) -> dict:
    data = insight_dict()
    data["confusion"] = {"matrix": m, "per_class_accuracy": per_class_accuracy(m), "classes": names}
    return data


# ---------------------------------------------------------------------- per-class accuracy


@pytest.mark.parametrize("k, n, seed", [(2, 40, 0), (3, 19, 1), (5, 300, 2), (10, 270, 3), (17, 900, 4)])
def test_per_class_accuracy_is_each_true_class_share_predicted_right(panel, k, n, seed, tmp_path):
    true, predicted = labels(k, n, right=0.7, seed=seed)
    m = confusion_of(true, predicted, k)
    panel.show_insight(insight_with(m))
    show(panel, panel.decisions)
    table = panel.decisions.accuracy
    for c in range(k):  # NOTE: counted from the labels themselves, not from the matrix
        mine = true == c
        expected = "–" if not mine.any() else f"{(predicted[mine] == c).mean():.1%}"
        assert table.item(c, 2).text() == expected, c
        assert table.item(c, 1).text() == f"{int((predicted[mine] == c).sum())}/{int(mine.sum())}"
    assert table.item(k, 0).text() == "all" and table.item(k, 2).text() == f"{(true == predicted).mean():.1%}"
    with np.errstate(invalid="ignore"):
        by_numpy = np.array([m[c, c] / m[c].sum() if m[c].sum() else np.nan for c in range(k)])
    np.testing.assert_allclose(per_class_accuracy(m), by_numpy, equal_nan=True)
    rows = list(csv.reader(open(panel.save_csv(tmp_path / "d.csv"), encoding="utf-8")))
    saved = [float(r[-1]) for r in rows[1: k + 1]]
    np.testing.assert_allclose(saved, by_numpy, equal_nan=True)


def test_unused_outputs_are_cropped_from_the_matrix_and_the_table(panel):
    m = np.zeros((5, 5), int)
    m[:3, :3] = [[5, 1, 0], [0, 4, 2], [1, 0, 6]]
    panel.show_insight(insight_with(m, ["circle", "square", "triangle"]))
    show(panel, panel.decisions)
    d = panel.decisions
    assert d.accuracy.rowCount() == 4 and d.accuracy.accuracies() == ["83.3%", "66.7%", "85.7%"]
    assert d.confusion.image.image.shape == (3, 3)


# ---------------------------------------------------------------------- legible counts


def cell_rect(matrix, row: int, col: int) -> QRectF:
    vb = matrix.getPlotItem().getViewBox()
    return vb.mapViewToScene(QRectF(col, row, 1, 1)).boundingRect()


def glyph_rect(t: pg.TextItem) -> QRectF:
    """Where a count's text is drawn, in scene pixels: its item's box less the document's margin."""
    margin = t.textItem.document().documentMargin()
    box = t.textItem.mapRectToScene(t.textItem.boundingRect())
    return box.adjusted(margin, margin, -margin, -margin)


@pytest.mark.parametrize("names, n", [(["circle", "square", "triangle"], 600),  # shapes: 3-digit counts
                                      ([str(i) for i in range(10)], 270)])  # digits' validation split: 2 digits
def test_confusion_counts_are_legible_in_a_1366x768_dock(panel, names, n):
    k = len(names)
    true, predicted = labels(k + 1, n, right=0.8, seed=k)  # NOTE: k + 1 with the last class empty: k used
    m = confusion_of(true, predicted, k + 1)[:k, :k]
    panel.show_insight(insight_with(m, names))
    show(panel, panel.decisions)
    matrix = panel.decisions.confusion
    assert matrix.numbers_shown and len(matrix.texts) == k * k
    for idx, t in enumerate(matrix.texts):
        r, c = divmod(idx, k)
        assert t.isVisible() and t.textItem.toPlainText() == str(m[r, c])
        metrics = QFontMetrics(t.textItem.font())
        assert metrics.tightBoundingRect(DIGITS).height() >= 9  # the digits' height on screen
        assert t.textItem.font().pixelSize() >= QFontMetrics(matrix.font()).height() - 2  # never below the default
        cell, glyphs = cell_rect(matrix, r, c), glyph_rect(t)
        assert glyphs.width() >= metrics.horizontalAdvance(t.textItem.toPlainText()) - 1
        assert cell.contains(glyphs), (r, c, cell, glyphs)  # inside its own cell: no overlap with a neighbour


def test_the_insight_dock_of_a_1366x768_training_layout_fills_its_dock_with_legible_counts(qtbot):
    """The real window's training layout: the Insight panel is at least the size tested above and takes the
    dock's whole height (it does not scroll), and a digits run's counts are legible there."""
    with training_window(qtbot, load_template("lenet5")) as w:
        w.resize(1366, 768)
        settle()
        w.show_layout("training")
        settle()
        panel, area = w.training.insight, w.training.insight_dock.widget()
        assert panel.width() >= DOCK_1366[0] and panel.height() >= DOCK_1366[1]
        assert panel.size() == area.viewport().size()  # NOTE: filled, not scrolled
        names = [str(i) for i in range(10)]
        true, predicted = labels(10, 270, right=0.8, seed=3)
        panel.show_insight(insight_with(confusion_of(true, predicted, 10), names))
        panel.tabs.setCurrentWidget(panel.decisions)
        settle()
        matrix = panel.decisions.confusion
        assert matrix.numbers_shown
        for idx, t in enumerate(matrix.texts):
            assert QFontMetrics(t.textItem.font()).tightBoundingRect(DIGITS).height() >= 9
            assert cell_rect(matrix, *divmod(idx, 10)).contains(glyph_rect(t))


def test_counts_are_hidden_not_overlapped_when_the_cells_are_too_small_and_come_back(panel):
    m = np.full((12, 12), 3) + np.diag(np.full(12, 990))
    panel.show_insight(insight_with(m))
    show(panel, panel.decisions, size=(620, 240))
    matrix = panel.decisions.confusion
    assert not matrix.numbers_shown and not any(t.isVisible() for t in matrix.texts)
    assert "hidden" in matrix.getPlotItem().titleLabel.text and "hidden" in matrix.toolTip()
    show(panel, panel.decisions, size=(1500, 900))
    assert matrix.numbers_shown and all(t.isVisible() for t in matrix.texts)
    for idx, t in enumerate(matrix.texts):
        assert cell_rect(matrix, *divmod(idx, 12)).contains(glyph_rect(t))


# ---------------------------------------------------------------------- views grow with their space


def image_on_screen(plot) -> QRectF:
    return plot.image.mapRectToScene(plot.image.boundingRect())


def test_views_grow_with_their_space(panel):
    for step in range(1, 6):
        panel.show_probes(probe_dict(step))
    panel.show_insight(gallery_dict() | {"probe_labels": np.array([0, 1, 2, 0])})
    d = panel.decisions
    parts = [(panel.activations, panel.activations.plot), (panel.filters, panel.filters.plot),
             (panel.cam, panel.cam.plot), (panel.cam, panel.cam.film), (d, d.confusion), (d, d.gallery.plot),
             (panel.histograms, panel.histograms.weights)]
    small = {}
    for view, plot in parts:
        show(panel, view)
        small[id(plot)] = image_on_screen(plot)
    for view, plot in parts:
        show(panel, view, size=(2 * DOCK_1366[0], 2 * DOCK_1366[1]))
        big, before = image_on_screen(plot), small[id(plot)]
        grown = max(big.width() / before.width(), big.height() / before.height())
        assert grown >= 1.5, (view.title, before, big)


# ---------------------------------------------------------------------- film strip and class maps


def test_the_film_strip_labels_each_frame_with_its_step(panel):
    show(panel, panel.cam)
    steps = [7 * i for i in range(1, FILM_FRAMES + 6)]
    for step in steps:
        panel.show_probes(probe_dict(step))
    film = panel.cam.film
    labels_shown = [t.textItem.toPlainText() for t in film.texts]
    assert labels_shown == [f"step {s}" for s in steps[-FILM_FRAMES:]]  # the latest frames, oldest first
    for i, t in enumerate(film.texts):  # each label right under its own frame
        x, y = film.origin(i)
        _, _, h, w, _ = film.grid
        assert t.pos().x() == pytest.approx(x + w / 2) and t.pos().y() == pytest.approx(y + h)
    panel.show_stored("Run 1", {"probes": probe_dict(3) | {"step": None}, "insight": insight_dict()})
    show(panel, panel.cam)
    assert [t.textItem.toPlainText() for t in film.texts] == ["trained"]


def tile_frames(plot) -> list[QRectF]:
    """The red rectangles drawn round tiles, one per NaN-separated polyline."""
    xs, ys = plot.frames.getData()
    if xs is None or not len(xs):
        return []
    breaks = np.flatnonzero(np.isnan(xs))
    out, start = [], 0
    for end in breaks:
        x, y = xs[start:end], ys[start:end]
        out.append(QRectF(x.min(), y.min(), x.max() - x.min(), y.max() - y.min()))
        start = end + 1
    return out


def test_class_map_tiles_say_true_to_predicted_and_frame_the_wrong_ones(panel):
    show(panel, panel.cam)
    panel.show_probes(probe_dict(1))  # predicted: 0, 1, 2, 0
    cam = panel.cam
    assert [t.textItem.toPlainText() for t in cam.plot.texts] == ["class 0", "class 1", "class 2", "class 0"]
    assert tile_frames(cam.plot) == []  # the truth is not known before an epoch has ended
    panel.show_insight(insight_dict() | {"probe_labels": np.array([0, 2, 2, 1])})
    settle()
    captions = [t.textItem.toPlainText() for t in cam.plot.texts]
    assert captions == ["circle → circle", "✗ triangle → square", "triangle → triangle", "✗ square → circle"]
    for t, wrong in zip(cam.plot.texts, (False, True, False, True)):
        assert (WRONG in t.textItem.toHtml()) == wrong
    _, _, h, w, _ = cam.plot.grid
    framed = tile_frames(cam.plot)
    assert len(framed) == 2
    for rect, i in zip(framed, (1, 3)):
        x, y = cam.plot.origin(i)
        assert rect.contains(QRectF(x, y, w, h)) and rect.width() <= w + 2 and rect.height() <= h + 2
    assert "true → predicted" in cam.header.text()


def test_the_hardest_samples_gallery_frames_the_wrong_ones(panel):
    show(panel, panel.decisions)
    panel.show_insight(gallery_dict())  # true 0, 1, 2; predicted 1, 1, 0
    settle()
    gallery = panel.decisions.gallery.plot
    framed = tile_frames(gallery)
    _, _, h, w, _ = gallery.grid
    assert len(framed) == 2
    for rect, i in zip(framed, (0, 2)):
        x, y = gallery.origin(i)
        assert rect.contains(QRectF(x, y, w, h))


def test_a_real_run_names_the_probe_images_true_classes(qtbot):
    from engine.compile import compile_graph
    from engine.data import split_dataset
    from engine.probes.explain import load_project_data

    project = tiny_run("lenet5")
    project.data.dataset = "shapes"
    with training_window(qtbot, project) as w:
        ctl, panel = w.training, w.training.insight
        with qtbot.waitSignal(ctl.run_ended, timeout=RUN_TIMEOUT) as ended:
            ctl.start()
        assert ended.args[0] == "finished" and panel.insight_runs == 1
        panel.tabs.setCurrentWidget(panel.cam)
        cam = panel.cam
        assert cam.true_classes is not None and len(cam.true_classes) == len(cam.images)
        cfg = project.data  # NOTE: the probe images are the first of the validation split, as the trainer splits
        data = load_project_data(project, tuple(compile_graph(project.graph).code.input_shapes[0]), None)
        _, val, _ = split_dataset(data, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        expected = val.targets["label"].reshape(len(val), -1)[: len(cam.images), 0].numpy()
        np.testing.assert_array_equal(cam.true_classes, expected)
        names, predicted = data.classes, cam.predicted
        for t, true, pred in zip(cam.plot.texts, expected, predicted):
            mark = "" if true == pred else "✗ "
            assert t.textItem.toPlainText() == f"{mark}{names[true]} → {class_name(int(pred), names)}"


# ---------------------------------------------------------------------- the hardest samples and the decision plot


def test_selecting_a_hardest_sample_rings_its_point_in_the_decision_plot(panel, qtbot):
    data = insight_dict()
    rng = np.random.default_rng(5)
    data["decision_grid"]["x"] = rng.normal(size=(10, 2)).astype(np.float32)
    panel.show_insight(data)
    show(panel, panel.decisions)
    d = panel.decisions
    assert len(d.highlight.data) == 0
    for row in (1, 0, 2):
        rect = d.hardest.visualItemRect(d.hardest.item(row, 0))
        qtbot.mouseClick(d.hardest.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        sample = int(d.hardest.item(row, 0).text())
        assert d.selected_sample() == sample
        x, y = d.highlight.getData()
        assert (x.tolist(), y.tolist()) == ([float(data["decision_grid"]["x"][sample, 0])],
                                            [float(data["decision_grid"]["x"][sample, 1])])
    later = insight_dict()  # the next epoch: the row stays selected and rings its new sample
    later["decision_grid"]["x"] = rng.normal(size=(10, 2)).astype(np.float32)
    later["hardest"] = {"indices": np.array([4, 8, 1]), "losses": np.array([2.0, 1.5, 1.0])}
    panel.show_insight(later)
    x, y = d.highlight.getData()
    assert (x[0], y[0]) == pytest.approx(tuple(later["decision_grid"]["x"][1]))
    d.hardest.clearSelection()
    assert len(d.highlight.data) == 0


def test_a_regression_sample_is_ringed_on_the_fitted_curve_plot(panel, qtbot):
    xs = np.linspace(-3, 3, 20)
    data = {"epoch": 2, "problems": {},
            "regression_curve": {"xs": xs, "ys": np.sin(xs)[:, None], "x": np.arange(6.0), "y": np.arange(6.0)[:, None] ** 2},
            "hardest": {"indices": np.array([5, 3]), "losses": np.array([9.0, 4.0])}}
    panel.show_insight(data)
    show(panel, panel.decisions)
    d = panel.decisions
    rect = d.hardest.visualItemRect(d.hardest.item(1, 0))
    qtbot.mouseClick(d.hardest.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    x, y = d.highlight.getData()
    assert (x.tolist(), y.tolist()) == ([3.0], [9.0])


# ---------------------------------------------------------------------- legends outside the data


def legend_clear_of_data(plot: pg.PlotWidget) -> tuple[QRectF, QRectF]:
    item = plot.getPlotItem()
    return item.legend.sceneBoundingRect(), item.getViewBox().sceneBoundingRect()


@pytest.mark.parametrize("where", ["below", "beside"])
def test_a_plot_legend_sits_outside_the_view_box(qtbot, where):
    plot = make_plot("Loss", "loss", legend=where)
    qtbot.addWidget(plot)
    for i, name in enumerate(["training, per batch", "training, smoothed", "training, per epoch", "validation"]):
        plot.getPlotItem().plot(np.arange(50.0), np.linspace(1, 0, 50) + i, name=name)
    plot.resize(520, 300)
    plot.show()
    settle()
    legend, data = legend_clear_of_data(plot)
    assert legend.width() > 50 and legend.height() > 10 and not legend.intersects(data), (legend, data)
    assert plot.rect().contains(legend.toRect())  # whole, inside the widget


@pytest.mark.parametrize("size", [(DOCK_1366[0] + 13, DOCK_1366[1]), (1200, 420)])
def test_the_training_dashboard_legends_stay_outside_the_data(qtbot, size):
    dash = TrainingDashboard()
    qtbot.addWidget(dash)
    dash.resize(*size)
    dash.show()
    dash.begin_run(epochs=5, main_metric="val_accuracy")
    for epoch in range(1, 4):
        scores = {"val_accuracy": 0.5 + 0.1 * epoch, "val_macro_f1": 0.4 + 0.1 * epoch}
        dash.on_epoch_done(EpochDone(epoch=epoch, step=epoch * 10, train_loss=1.0 / epoch, val_loss=1.2 / epoch,
                                     scores=scores))
    dash.redraw()
    settle()
    for plot in (dash.loss_plot, dash.metric_plot):
        legend, data = legend_clear_of_data(plot)
        assert plot.getPlotItem().legend.isVisible() and not legend.intersects(data), (legend, data)
        assert plot.rect().contains(legend.toRect())
    dash.on_finished(Finished(stopped=True, epochs_run=3))


def test_the_decision_plots_fit_inside_their_widgets(panel):
    """pyqtgraph makes a plot item at least as wide as its title: the titles stay short enough."""
    panel.show_insight(insight_dict())
    show(panel, panel.decisions)
    for plot in (panel.decisions.confusion, panel.decisions.regions):
        assert plot.getPlotItem().sceneBoundingRect().width() <= plot.width() + 1, plot


def test_true_to_predicted_captions_show_class_names_literally(panel):
    evil = "<b>bold</b>&amp;"
    names = [f"cat{evil}", "dog", "eel"]
    data = insight_dict() | {"probe_labels": np.array([1, 1, 2, 0])}
    data["confusion"] = dict(data["confusion"], classes=names)
    show(panel, panel.cam)
    panel.show_probes(probe_dict(1))  # predicted: 0, 1, 2, 0
    panel.show_insight(data)
    settle()
    captions = [t.textItem.toPlainText() for t in panel.cam.plot.texts]
    assert captions == [f"✗ dog → cat{evil}", "dog → dog", "eel → eel", f"cat{evil} → cat{evil}"]

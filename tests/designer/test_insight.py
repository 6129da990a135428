"""The Insight dock: synthetic probe dicts fill each view; a real run through the window fills them too."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.insight import InsightPanel
from designer.insight.images import tile
from designer.insight.maps import FILM_FRAMES
from designer.main_window import MainWindow
from engine.templates import load_template
from tests.designer.conftest import training_window

RUN_TIMEOUT = 60_000


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def probe_dict(step: int = 1, n: int = 4, kind: str = "maps") -> dict:
    rng = np.random.default_rng(step)
    values = rng.normal(size=(6, 8, 8)).astype(np.float32) if kind == "maps" else rng.random(40).astype(np.float32)
    return {
        "step": step, "seconds": 0.01, "problems": {},
        "images": rng.random((n, 16, 16)).astype(np.float32),
        "activations": {"node_id": "n3", "name": "relu1", "kind": kind, "values": values,
                        "min": float(values.min()), "max": float(values.max()),
                        "dead": np.zeros(6, bool), "dead_fraction": 0.125},
        "filters": {"node_id": "n2", "name": "conv1", "tiles": rng.random((6, 1, 5, 5)).astype(np.float32), "rgb": None},
        "cam": {"method": "gradcam", "node_id": "n5", "name": "conv2",
                "maps": rng.random((n, 16, 16)).astype(np.float32), "classes": np.arange(n) % 3},
        "predictions": {"scores": rng.random((n, 3)).astype(np.float32), "classes": np.arange(n) % 3},
        "gradients": {"layers": ["conv1", "conv2", "fc"], "node_ids": ["n2", "n5", "n9"],
                      "grad_norm": np.array([1e-3, 1e-2, 0.5]), "weight_norm": np.array([1.0, 2.0, 3.0]),
                      "update_ratio": np.array([1e-4, 1e-3, 1e-2])},
        "weight_histograms": {"layers": ["conv1", "fc"], "node_ids": ["n2", "n9"],
                              "counts": np.array([[0, 2, 6, 2], [1, 1, 1, 1]]),
                              "edges": np.array([[-1.0, -0.5, 0.0, 0.5, 1.0], [-2.0, -1.0, 0.0, 1.0, 2.0]])},
        "activation_histograms": {"layers": ["relu1"], "node_ids": ["n3"], "counts": np.array([[8, 0, 0, 2]]),
                                  "edges": np.array([[0.0, 0.25, 0.5, 0.75, 1.0]])},
    }


def insight_dict() -> dict:
    m = np.array([[5, 1, 0], [0, 4, 2], [1, 0, 6]])
    return {
        "epoch": 1, "problems": {},
        "confusion": {"matrix": m, "per_class_accuracy": m.diagonal() / m.sum(1), "classes": ["circle", "square", "triangle"]},
        "hardest": {"indices": np.array([7, 2, 9]), "losses": np.array([3.0, 2.0, 1.0])},
        "decision_grid": {"probs": np.random.default_rng(0).dirichlet([1, 1, 1], size=(20, 20)).astype(np.float32),
                          "x_range": (-1.0, 1.0), "y_range": (-2.0, 2.0),
                          "x": np.zeros((10, 2), np.float32), "labels": np.arange(10) % 3},
    }


@pytest.fixture
def panel(qtbot):
    p = InsightPanel()
    p.resize(900, 500)
    qtbot.addWidget(p)
    p.show()
    return p


def test_tile_lays_maps_out_in_a_grid():
    out = tile(np.ones((5, 4, 3)), pad=1)
    assert out.shape == (2 * 5 - 1, 3 * 4 - 1) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.isnan(out[4, 0]) and out[0, 0] == 1
    assert tile(np.ones((2, 4, 4, 3)), cols=2).shape == (4, 9, 3)


def test_synthetic_probes_fill_every_view_in_place(panel):
    data = probe_dict()
    panel.on_probes(data)
    act = panel.activations.plot.image
    assert act.image.shape == (2 * 9 - 1, 3 * 9 - 1)  # 6 maps of 8x8 in 2 rows of 3
    lo, hi = act.getLevels()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(max(-data["activations"]["min"], data["activations"]["max"]))
    assert "12% of units dead" in panel.activations.dead_label.text()
    assert panel.activations.sample_box.count() == 4
    assert panel.filters.plot.image.image.shape == (2 * 6 - 1, 3 * 6 - 1)
    assert tuple(panel.filters.plot.image.getLevels()) == (0.0, 1.0)
    cam = panel.cam.plot.image
    assert cam.image.shape == (16, 4 * 21 - 5, 3)  # 4 images in a row, 5 px apart
    assert len(panel.cam._texts) == 4 and panel.cam._texts[1].textItem.toPlainText() == "class 1"
    assert len(panel.gradients.grad.bars.opts["x"]) == 3

    items = (act, cam, panel.filters.plot.image, panel.gradients.grad.bars)
    for step in range(2, 2 + FILM_FRAMES + 3):
        panel.on_probes(probe_dict(step, kind="vector" if step == 3 else "maps"))
    assert items == (panel.activations.plot.image, panel.cam.plot.image, panel.filters.plot.image,
                     panel.gradients.grad.bars)  # NOTE: updated in place, never recreated
    assert len(panel.cam.frames) == FILM_FRAMES
    assert panel.cam.film.image.image.shape[1] == FILM_FRAMES * 18 - 2
    before = panel.cam.plot.image.image.copy()
    panel.cam.opacity.setValue(0)
    assert not np.allclose(before, panel.cam.plot.image.image)


def test_histograms_show_each_layer_as_a_row_of_shares(panel, tmp_path):
    panel.on_probes(probe_dict())
    weights = panel.histograms.weights.image.image
    assert weights.shape == (2, 4)
    np.testing.assert_allclose(weights.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(panel.histograms.activations.image.image, [[0.8, 0, 0, 0.2]], rtol=1e-6)
    assert "relu1 0…1" in panel.histograms.ranges.text()
    panel.tabs.setCurrentWidget(panel.histograms)
    rows = list(csv.reader(open(panel.save_csv(tmp_path / "h.csv"))))
    assert rows[0] == ["kind", "layer", "bin_low", "bin_high", "count"] and len(rows) == 1 + 4 + 4 + 4


def test_vector_activations_show_as_a_strip(panel):
    panel.on_probes(probe_dict(kind="vector"))
    assert panel.activations.plot.image.image.shape == (2, 32)
    assert "40 units" in panel.activations.header.text()


def test_insight_shows_confusion_regions_and_hardest(panel):
    panel.on_insight(insight_dict())
    d = panel.decisions
    assert d.confusion.image.image.shape == (3, 3) and len(d._texts) == 9
    assert d._texts[0].textItem.toPlainText() == "5"
    assert "circle 83%" in d.accuracy.text()
    assert d.region_image.image.shape == (20, 20, 4) and d.region_image.image.dtype == np.uint8
    assert d.hardest.rowCount() == 3 and d.hardest.item(0, 0).text() == "7"
    assert panel.cam.class_names == ["circle", "square", "triangle"]
    wide = insight_dict()
    m = np.zeros((5, 5), int)
    m[:3, :3] = wide["confusion"]["matrix"]
    wide["confusion"]["matrix"] = m  # a net with 5 outputs on 3 classes: the unused ones are cropped
    panel.on_insight(wide)
    assert d.confusion.image.image.shape == (3, 3) and len(d._texts) == 9


def test_save_png_and_csv_of_each_view(panel, tmp_path):
    assert panel.save_csv(tmp_path / "empty.csv") is None
    panel.on_probes(probe_dict())
    panel.on_insight(insight_dict())
    for i, view in enumerate(panel.views):
        panel.tabs.setCurrentIndex(i)
        png = panel.save_png(tmp_path / f"{i}.png")
        assert png is not None and png.stat().st_size > 500
        rows = list(csv.reader(open(panel.save_csv(tmp_path / f"{i}.csv"))))
        assert len(rows) > 2, view.title
    confusion = list(csv.reader(open(tmp_path / "5.csv")))
    assert confusion[0] == ["true \\ predicted", "circle", "square", "triangle", "accuracy"]


# ---------------------------------------------------------------------- a real run in the window
def small_cnn():
    """LeNet-5 on 200 shape images, three epochs, probes every 2 batches."""
    p = load_template("lenet5")
    p.data.dataset = "shapes"
    p.data.samples = 200
    p.data.augment = {}
    p.training.epochs = 3
    p.training.batch_size = 32
    p.training.device = "cpu"
    p.probes.every_batches = 2
    return p


@pytest.fixture
def window(qtbot):
    with training_window(qtbot, small_cnn()) as w:
        yield w


def test_training_in_the_window_fills_the_insight_dock(window, qtbot, tmp_path):
    ctl, panel = window.training, window.training.insight
    window.scene.select_nodes(["n3"])  # relu1: shown from the start
    assert ctl.probe_layer == "n3"
    window.scene.select_nodes(["n14"])  # the output head has no activations
    assert ctl.probe_layer == "n3" and "no activations" in panel.status.text()
    ctl.show_insight()
    with qtbot.waitSignal(ctl.run_ended, timeout=RUN_TIMEOUT) as ended:
        session = ctl.start()
        assert session is not None and ctl._snapshot["probes"]["layer"] == "n3"
        qtbot.waitUntil(lambda: panel.probe_runs >= 1, timeout=RUN_TIMEOUT)
        assert panel.activations.data["node_id"] == "n3"
        ctl.pause()  # NOTE: paused, the run cannot end before the next probe sees the choice
        window.scene.select_nodes(["n6"])  # relu2, during the run
        ctl.resume()
        qtbot.waitUntil(lambda: panel.activations.data["node_id"] == "n6", timeout=RUN_TIMEOUT)
    assert ended.args[0] == "finished"
    assert panel.probe_runs >= 2 and panel.insight_runs == 3
    assert panel.activations.data["node_id"] == "n6"
    assert panel.activations.plot.image.image.ndim == 2
    assert panel.filters.data["name"] == "conv1" and panel.filters.plot.image.image is not None
    assert panel.histograms.weights.image.image.shape[0] == 5  # conv1, conv2, fc1, fc2, fc3
    assert panel.cam.plot.image.image.shape[2] == 3 and len(panel.cam.frames) == panel.probe_runs
    k = panel.decisions.confusion.image.image.shape
    assert k[0] == k[1] >= 3 and panel.decisions.hardest.rowCount() > 0
    panel.tabs.setCurrentWidget(panel.cam)
    assert panel.save_png(tmp_path / "cam.png").stat().st_size > 1000
    assert panel.save_csv(tmp_path / "cam.csv").stat().st_size > 1000

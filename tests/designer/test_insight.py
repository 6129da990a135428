"""The Insight dock: synthetic probe dicts fill each view; a real run through the window fills them too."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.insight.images import tile
from designer.insight.maps import FILM_FRAMES
from engine.probes.cam import overlay
from engine.templates import load_template
from tests.designer.conftest import small_cnn, training_window

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
        "hardest": {"indices": np.array([7, 2, 9]), "losses": np.array([3.0, 2.0, 1.0])},  # no pictures: a table
        "decision_grid": {"probs": np.random.default_rng(0).dirichlet([1, 1, 1], size=(20, 20)).astype(np.float32),
                          "x_range": (-1.0, 1.0), "y_range": (-2.0, 2.0),
                          "x": np.zeros((10, 2), np.float32), "labels": np.arange(10) % 3},
    }


def gallery_dict() -> dict:
    """An epoch of a localization net: the hardest samples with pictures and class maps, boxes on the probe images."""
    rng = np.random.default_rng(1)
    data = insight_dict()
    del data["decision_grid"]
    data["hardest"] |= {
        "images": rng.random((3, 16, 16)).astype(np.float32), "true": np.array([0, 1, 2]),
        "predicted": np.array([1, 1, 0]), "classes": ["circle", "square", "triangle"],
        "cam": {"method": "gradcam", "node_id": "n5", "name": "conv2", "class_index": None,
                "maps": rng.random((3, 16, 16)).astype(np.float32), "classes": np.array([1, 1, 0])},
    }
    data["probe_images"] = rng.random((4, 16, 16)).astype(np.float32)
    data["boxes"] = np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.4, 0.4], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.2, 0.2]])
    data["true_boxes"] = data["boxes"][[0, 2, 1, 3]]
    return data


def masks_dict() -> dict:
    """An epoch of a segmentation net: no classes, masks on the probe images, hardest samples without maps."""
    rng = np.random.default_rng(2)
    masks = rng.integers(0, 4, (4, 16, 16))
    return {"epoch": 1, "problems": {}, "probe_images": rng.random((4, 16, 16, 3)).astype(np.float32),
            "masks": masks, "true_masks": np.where(rng.random((4, 16, 16)) < 0.8, masks, 0),
            "mask_classes": ["background", "circle", "square", "triangle"],
            "hardest": {"indices": np.array([5, 1]), "losses": np.array([0.9, 0.4]), "head": "n29",
                        "images": rng.random((2, 16, 16, 3)).astype(np.float32), "true": None, "predicted": None,
                        "classes": None}}


def feed_probes(panel, data):
    """One probe run, drawn in every view (the panel itself draws only the view on show)."""
    panel.show_probes(data)
    panel.refresh(everything=True)


def feed_insight(panel, data):
    panel.show_insight(data)
    panel.refresh(everything=True)


def test_only_the_view_on_show_draws_and_the_others_draw_when_shown(panel):
    panel.tabs.setCurrentWidget(panel.activations)
    for step in (1, 2, 3):
        panel.show_probes(probe_dict(step))
    assert panel.activations.data is not None  # on show: drawn at once
    assert panel.filters.data is None and panel.gradients.data is None  # hidden: not drawn yet
    assert len(panel.cam.frames[0]) == 3  # the film strip records every run, hidden or not
    panel.tabs.setCurrentWidget(panel.filters)
    assert panel.filters.data is not None and panel.gradients.data is None
    panel.show_insight(insight_dict())
    assert panel.decisions.data is None
    panel.hide()
    panel.show_probes(probe_dict(4))
    assert panel.filters.header.text().count("filters") and panel.activations.data is not None
    panel.refresh(everything=True)
    assert panel.gradients.data is not None and panel.decisions.data is not None
    assert panel.cam.data is not None and len(panel.cam.frames[0]) == 4


def test_tile_lays_maps_out_in_a_grid():
    out = tile(np.ones((5, 4, 3)), pad=1)
    assert out.shape == (2 * 5 - 1, 3 * 4 - 1) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.isnan(out[4, 0]) and out[0, 0] == 1
    assert tile(np.ones((2, 4, 4, 3)), cols=2).shape == (4, 9, 3)


def test_synthetic_probes_fill_every_view_in_place(panel):
    panel.tabs.setCurrentWidget(panel.cam)  # NOTE: the class maps lay their tiles out for the size they are shown at
    data = probe_dict()
    feed_probes(panel, data)
    act = panel.activations.plot.image
    assert act.image.shape == (2 * 9 - 1, 3 * 9 - 1)  # 6 maps of 8x8 in 2 rows of 3
    lo, hi = act.getLevels()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(max(-data["activations"]["min"], data["activations"]["max"]))
    assert "12% of units dead" in panel.activations.dead_label.text()
    assert panel.activations.sample_box.count() == 4
    assert panel.filters.plot.image.image.shape == (2 * 6 - 1, 3 * 6 - 1)
    assert tuple(panel.filters.plot.image.getLevels()) == (0.0, 1.0)
    cam = panel.cam.plot.image
    n, cols, h, w, gap = panel.cam.plot.grid
    rows = -(-n // cols)
    assert (n, h, w, gap) == (4, 16, 16, 5)  # 4 images laid out for the view's size, 5 px apart
    assert cam.image.shape == (rows * (h + gap) - gap, cols * (w + gap) - gap, 3)
    assert len(panel.cam.plot.texts) == 4 and panel.cam.plot.texts[1].textItem.toPlainText() == "class 1"
    assert len(panel.gradients.grad.bars.opts["x"]) == 3

    items = (act, cam, panel.filters.plot.image, panel.gradients.grad.bars)
    for step in range(2, 2 + FILM_FRAMES + 3):
        feed_probes(panel, probe_dict(step, kind="vector" if step == 3 else "maps"))
    assert items == (panel.activations.plot.image, panel.cam.plot.image, panel.filters.plot.image,
                     panel.gradients.grad.bars)  # NOTE: updated in place, never recreated
    assert sorted(panel.cam.frames) == [0, 1, 2, 3] and all(len(f) == FILM_FRAMES for f in panel.cam.frames.values())
    film = panel.cam.film
    assert film.grid[0] == FILM_FRAMES and len(film.texts) == FILM_FRAMES  # the latest frames, each labelled
    assert film.texts[-1].textItem.toPlainText() == f"step {1 + FILM_FRAMES + 3}"
    before = panel.cam.plot.image.image.copy()
    panel.cam.opacity.setValue(0)
    assert not np.allclose(before, panel.cam.plot.image.image)


def test_histograms_show_each_layer_as_a_row_of_shares(panel, tmp_path):
    feed_probes(panel, probe_dict())
    weights = panel.histograms.weights.image.image
    assert weights.shape == (2, 4)
    np.testing.assert_allclose(weights.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(panel.histograms.activations.image.image, [[0.8, 0, 0, 0.2]], rtol=1e-6)
    assert "relu1 0…1" in panel.histograms.ranges.text()
    panel.tabs.setCurrentWidget(panel.histograms)
    rows = list(csv.reader(open(panel.save_csv(tmp_path / "h.csv"))))
    assert rows[0] == ["kind", "layer", "bin_low", "bin_high", "count"] and len(rows) == 1 + 4 + 4 + 4


def test_vector_activations_show_as_a_strip(panel):
    feed_probes(panel, probe_dict(kind="vector"))
    assert panel.activations.plot.image.image.shape == (2, 32)
    assert "40 units" in panel.activations.header.text()


def test_insight_shows_confusion_regions_and_hardest(panel):
    feed_insight(panel, insight_dict())
    d = panel.decisions
    assert d.confusion.image.image.shape == (3, 3) and len(d.confusion.texts) == 9
    assert d.confusion.texts[0].textItem.toPlainText() == "5"
    assert d.accuracy.item(0, 0).text() == "circle" and d.accuracy.accuracies()[0] == "83.3%"
    assert d.region_image.image.shape == (20, 20, 4) and d.region_image.image.dtype == np.uint8
    assert d.hardest.rowCount() == 3 and d.hardest.item(0, 0).text() == "7"
    assert d.hardest.isVisibleTo(d) and not d.gallery.isVisibleTo(d) and panel.predictions.data is None
    assert panel.cam.class_names == ["circle", "square", "triangle"]
    wide = insight_dict()
    m = np.zeros((5, 5), int)
    m[:3, :3] = wide["confusion"]["matrix"]
    wide["confusion"]["matrix"] = m  # a net with 5 outputs on 3 classes: the unused ones are cropped
    feed_insight(panel, wide)
    assert d.confusion.image.image.shape == (3, 3) and len(d.confusion.texts) == 9


def test_gallery_of_the_hardest_samples_and_boxes_on_the_probe_images(panel, tmp_path):
    panel.tabs.setCurrentWidget(panel.decisions)
    feed_insight(panel, gallery_dict())
    d = panel.decisions
    assert d.gallery.isVisibleTo(d) and not d.hardest.isVisibleTo(d)
    n, _, h, w, gap = d.gallery.plot.grid
    assert (n, h, w, gap) == (3, 16, 16, 10)  # room for two caption lines under each
    h0 = gallery_dict()["hardest"]
    expected = overlay(h0["images"][0], h0["cam"]["maps"][0], d.gallery.OPACITY) / 255.0
    np.testing.assert_allclose(d.gallery.plot.image.image[:16, :16], expected, atol=1e-6)
    captions = [t.textItem.toPlainText() for t in d.gallery.plot.texts]
    assert captions == ["✗ circle → square\nloss 3", "square → square\nloss 2", "✗ triangle → circle\nloss 1"]
    assert "Grad-CAM of conv2" in d.gallery.title.text()
    panel.tabs.setCurrentWidget(d)
    rows = list(csv.reader(open(panel.save_csv(tmp_path / "d.csv"), encoding="utf-8")))
    assert rows[5] == ["validation_sample", "loss", "true", "predicted"]
    assert rows[6] == ["7", "3.0", "circle", "square"]

    boxes = panel.predictions
    assert boxes.plot.image.image.shape[:2] == (16, 4 * 21 - 5)
    x, y = boxes.boxes.getData()
    assert len(x) == 4 * 6 and np.nanmin(x) == pytest.approx(0.1 * 16) and np.nanmax(y) == pytest.approx(16 * 1.0)
    assert len(boxes.true_boxes.getData()[0]) == 4 * 6 and "true box" in boxes.legend.text()
    assert boxes.plot.texts[0].textItem.toPlainText() == "IoU 1.00"
    panel.tabs.setCurrentWidget(boxes)
    rows = list(csv.reader(open(panel.save_csv(tmp_path / "b.csv"), encoding="utf-8")))
    assert rows[0][-1] == "iou" and rows[1] == ["0", "0.1", "0.1", "0.5", "0.5", "0.1", "0.1", "0.5", "0.5", "1.0"]
    assert panel.save_png(tmp_path / "b.png").stat().st_size > 1000


def test_mask_overlays_on_the_probe_images(panel, tmp_path):
    feed_insight(panel, masks_dict())
    d, view = panel.decisions, panel.predictions
    assert not d.confusion.isVisibleTo(d) and d.gallery.isVisibleTo(d)
    assert d.gallery.plot.texts[0].textItem.toPlainText() == "#5\nloss 0.9"
    shown = view.plot.image.image
    assert shown.shape == (2 * 16 + 2, 4 * (16 + 11) - 11, 3)  # a tile per sample: true mask above, predicted below
    img, mask = masks_dict()["probe_images"][0], masks_dict()["masks"][0]
    below = shown[18:34, :16]
    np.testing.assert_allclose(below[mask == 0], img[mask == 0], atol=1e-6)  # background left clear
    assert not np.allclose(below[mask == 1], img[mask == 1])
    assert "circle" in view.legend.text() and "background" not in view.legend.text()
    right = (masks_dict()["masks"][0] == masks_dict()["true_masks"][0]).mean()
    assert view.plot.texts[0].textItem.toPlainText() == f"{right:.0%}"
    assert "pixels classed right" in view.header.text()
    panel.tabs.setCurrentWidget(view)
    rows = list(csv.reader(open(panel.save_csv(tmp_path / "m.csv"), encoding="utf-8")))
    assert rows[0] == ["probe_sample", "pixels_background", "pixels_circle", "pixels_square", "pixels_triangle",
                       "pixel_accuracy"] and len(rows) == 1 + 4


def test_class_chooser_layer_buttons_and_film_sample(panel, qtbot):
    feed_probes(panel, probe_dict(1))
    cam = panel.cam
    assert [cam.class_box.itemText(i) for i in range(cam.class_box.count())] == ["Predicted class", "class 0",
                                                                                "class 1", "class 2"]
    feed_insight(panel, insight_dict())  # the class names arrive with the first epoch; the choice stays
    assert cam.class_box.itemText(3) == "triangle"
    with qtbot.waitSignal(panel.cam_class_requested) as chosen:
        cam.choose_class(2)
    assert chosen.args == [2]
    with qtbot.waitSignal(panel.cam_class_requested) as chosen:
        cam.choose_class(None)
    assert chosen.args == [None]
    with qtbot.waitSignal(panel.cam_layer_requested) as asked:
        cam.layer_button.click()
    assert asked.args == [True]
    with qtbot.waitSignal(panel.cam_layer_requested) as asked:
        cam.default_button.click()
    assert asked.args == [False]

    for step in range(2, 5):
        feed_probes(panel, probe_dict(step))
    film = cam.film.image
    first = film.image.copy()
    cam.film_box.setCurrentIndex(2)  # history of sample 2 at once, no new probe run needed
    assert cam.film_sample == 2 and not np.allclose(first, film.image)
    maps = [probe_dict(step)["cam"]["maps"][2] for step in range(1, 5)]
    images = probe_dict(4)["images"]
    for frame, step in ((0, 1), (3, 4)):
        x, y = (int(v) for v in cam.film.origin(frame))
        np.testing.assert_allclose(film.image[y: y + 16, x: x + 16], overlay(images[2], maps[step - 1], 0.5) / 255.0,
                                   atol=2 / 255)
        assert cam.film.texts[frame].textItem.toPlainText() == f"step {step}"
    chosen = probe_dict(5)
    chosen["cam"]["class_index"] = 1
    feed_probes(panel, chosen)
    assert "for class 'square'" in cam.header.text()


def test_save_png_and_csv_of_each_view(panel, tmp_path):
    assert panel.save_csv(tmp_path / "empty.csv") is None
    feed_probes(panel, probe_dict())
    feed_insight(panel, insight_dict())
    feed_insight(panel, masks_dict())  # fills the masks view, the decisions view keeps its confusion matrix
    feed_insight(panel, insight_dict())
    for i, view in enumerate(panel.views):
        if view is panel.explore:
            continue  # NOTE: computed on demand from a finished run: see test_insight_explore.py
        panel.tabs.setCurrentIndex(i)
        png = panel.save_png(tmp_path / f"{i}.png")
        assert png is not None and png.stat().st_size > 500
        rows = list(csv.reader(open(panel.save_csv(tmp_path / f"{i}.csv"))))
        assert len(rows) > 2, view.title
    confusion = list(csv.reader(open(tmp_path / "5.csv")))
    assert confusion[0] == ["true \\ predicted", "circle", "square", "triangle", "accuracy"]


# ---------------------------------------------------------------------- a real run in the window


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
    panel.cam.layer_button.click()  # ... and no feature maps for Grad-CAM
    assert ctl.cam_layer is None and "no feature maps" in panel.cam.note_label.text()
    ctl.show_insight()
    window.document.project.training.epochs = 500  # NOTE: the run lasts until the test has seen what it waits for
    with qtbot.waitSignal(ctl.run_ended, timeout=RUN_TIMEOUT) as ended:
        session = ctl.start()
        assert session is not None and ctl._snapshot["probes"]["layer"] == "n3"
        with qtbot.waitSignal(session.probes_done, timeout=RUN_TIMEOUT):
            pass
        assert panel.activations.data["node_id"] == "n3"
        with qtbot.waitSignal(session.paused, timeout=RUN_TIMEOUT):
            ctl.pause()  # NOTE: once paused, no probe runs before the choices below reach the run
        window.scene.select_nodes(["n6"])  # relu2, during the run
        panel.cam.layer_button.click()  # ... also the block Grad-CAM weighs (by default pool2)
        panel.cam.choose_class(1)  # maps of class 1 ("square") for every image
        panel.cam.film_box.setCurrentIndex(3)
        ctl.resume()
        with qtbot.waitSignal(session.probes_done, timeout=RUN_TIMEOUT) as probed:
            pass  # NOTE: the first probe run after the pause: the choices reached the run before it
        results = probed.args[0].results
        assert results["activations"]["node_id"] == "n6" and results["cam"]["node_id"] == "n6"
        assert panel.activations.data["node_id"] == "n6"
        panel.tabs.setCurrentWidget(panel.cam)  # NOTE: a hidden tab draws when it is shown
        assert panel.cam.data["node_id"] == "n6"
        assert list(panel.cam.data["classes"]) == [1] * 8 and "for class" in panel.cam.header.text()
        qtbot.waitUntil(lambda: panel.insight_runs >= 1, timeout=RUN_TIMEOUT)
        ctl.stop()
    assert ended.args[0] == "stopped"
    assert (ctl.cam_layer, ctl.cam_class) == ("n6", 1)  # remembered for the next run
    assert panel.cam.film_sample == 3 and len(panel.cam.frames[3]) == panel.probe_runs
    assert panel.probe_runs >= 2 and panel.insight_runs >= 1
    assert panel.activations.data["node_id"] == "n6"
    assert panel.activations.plot.image.image.ndim == 2
    look_at(panel, panel.filters, panel.histograms, panel.decisions)
    assert panel.filters.data["name"] == "conv1" and panel.filters.plot.image.image is not None
    assert panel.histograms.weights.image.image.shape[0] == 5  # conv1, conv2, fc1, fc2, fc3
    assert panel.cam.plot.image.image.shape[2] == 3 and len(panel.cam.frames[0]) == panel.probe_runs
    k = panel.decisions.confusion.image.image.shape
    assert k[0] == k[1] >= 3 and panel.decisions.hardest.rowCount() > 0
    gallery = panel.decisions.gallery
    assert gallery.isVisibleTo(panel.decisions) and len(gallery.plot.texts) == 8
    assert gallery.plot.image.image.shape[2] == 3 and "→" in gallery.plot.texts[0].textItem.toPlainText()
    panel.tabs.setCurrentWidget(panel.cam)
    assert panel.save_png(tmp_path / "cam.png").stat().st_size > 1000
    assert panel.save_csv(tmp_path / "cam.csv").stat().st_size > 1000


def look_at(panel, *views):
    """Show each view's tab in turn, as a person does after a run: a hidden view draws when shown."""
    for view in views:
        panel.tabs.setCurrentWidget(view)


def tiny_run(template: str):
    """A template on 64 shape images for one epoch (a few seconds on a CPU)."""
    p = load_template(template)
    p.data.samples = 64
    p.data.val_fraction = 0.2
    p.training.epochs = 1
    p.training.batch_size = 32
    p.training.device = "cpu"
    p.probes.every_batches = 50  # one probe run, at the first step
    p.probes.extra["histograms"] = False
    return p


def test_a_segmentation_run_draws_masks_over_the_probe_images(qtbot):
    with training_window(qtbot, tiny_run("unet")) as w:
        ctl, panel = w.training, w.training.insight
        with qtbot.waitSignal(ctl.run_ended, timeout=RUN_TIMEOUT) as ended:
            ctl.start()
        assert ended.args[0] == "finished" and panel.insight_runs == 1
        d, view = panel.decisions, panel.predictions
        look_at(panel, d, view)
        assert not d.confusion.isVisibleTo(d) and d.gallery.isVisibleTo(d) and d.gallery.plot.image.image.shape[2] == 3
        shown = view.plot.image.image
        assert shown.shape[:2] == (2 * 66 + 22, 4 * (32 + 22) - 22)  # 8 pairs (true above predicted) in 2 rows
        assert "square" in view.legend.text() and len(view.plot.texts) == 8


def test_a_localization_run_draws_boxes_and_keeps_the_chosen_class(qtbot):
    with training_window(qtbot, tiny_run("localization")) as w:
        ctl, panel = w.training, w.training.insight
        panel.cam_class_requested.emit(2)  # chosen after an earlier run: remembered for this one
        with qtbot.waitSignal(ctl.run_ended, timeout=RUN_TIMEOUT) as ended:
            ctl.start()
            assert ctl._snapshot["probes"]["class_index"] == 2
        assert ended.args[0] == "finished"
        d, view = panel.decisions, panel.predictions
        look_at(panel, panel.cam, d, view)
        assert list(panel.cam.data["classes"]) == [2] * 8
        assert d.gallery.isVisibleTo(d) and d.confusion.isVisibleTo(d)
        x, _ = view.boxes.getData()
        assert len(x) == 8 * 6 and len(view.true_boxes.getData()[0]) == 8 * 6
        assert list(d.gallery.plot.texts) and panel.decisions.data["hardest"]["cam"]["class_index"] == 2

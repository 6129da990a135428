"""The Filters view of a linear classifier: its weight rows as class templates, coloured about 0 and captioned by class."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.insight.images import DIVERGING
from designer.insight.maps import template_pictures
from engine.templates import load_template
from tests.designer.conftest import training_window
from tests.designer.test_insight import (
    feed_insight,
    feed_probes,
    insight_dict,
    probe_dict,
)

RUN_TIMEOUT = 60_000


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def templates(k: int, c: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(k, c, h, w)).astype(np.float32)


def with_templates(t: np.ndarray, classes: bool = True, units: int | None = None) -> dict:
    data = probe_dict()
    data["filters"] = {"kind": "templates", "node_id": "n3", "name": "linear", "templates": t,
                       "units": units or len(t), "classes": classes}
    return data


def captions(plot) -> list[str]:
    return [t.textItem.toPlainText() for t in plot.texts]


# ---------------------------------------------------------------------- colours
def test_one_channel_goes_through_the_diverging_map_scaled_by_each_template_largest_weight():
    t = templates(3, 1, 5, 4)
    t[1] *= 100.0  # NOTE: each template has its own scale: a large one does not wash the others out
    shown = template_pictures(t)
    assert shown.shape == (3, 5, 4, 3) and shown.dtype == np.float32
    for k in range(3):
        scaled = t[k, 0] / np.abs(t[k]).max()
        expected = DIVERGING.map((scaled + 1) / 2, mode="float")[..., :3]  # linear interpolation of the map
        np.testing.assert_allclose(shown[k], expected.reshape(5, 4, 3), atol=2.5 / 255 * 2)
    top = np.unravel_index(np.abs(t[0, 0]).argmax(), (5, 4))
    end = DIVERGING.map(1.0 if t[0, 0][top] > 0 else 0.0, mode="float")[:3]
    np.testing.assert_allclose(shown[0][top], end, atol=1e-6)  # the largest weight reaches the end of the map


def test_zero_weights_are_the_middle_of_the_map_and_a_zero_template_is_blank():
    t = np.zeros((2, 1, 3, 3), np.float32)
    t[0, 0, 1, 1] = -2.0
    shown = template_pictures(t)
    middle = DIVERGING.map(0.5, mode="float")[:3]
    np.testing.assert_allclose(shown[1], np.broadcast_to(middle, (3, 3, 3)), atol=2 / 255)
    np.testing.assert_allclose(shown[0][1, 1], DIVERGING.map(0.0, mode="float")[:3], atol=1e-6)


def test_three_channels_are_rgb_symmetric_about_grey():
    t = templates(4, 3, 6, 6, seed=2)
    shown = template_pictures(t)
    assert shown.shape == (4, 6, 6, 3)
    for k in range(4):
        np.testing.assert_allclose(shown[k], 0.5 + 0.5 * t[k].transpose(1, 2, 0) / np.abs(t[k]).max(), atol=1e-6)
    assert shown.min() >= 0.0 and shown.max() <= 1.0


def test_other_channel_counts_sit_side_by_side_one_pixel_apart_on_their_template_scale():
    t = templates(2, 4, 5, 5, seed=3)
    shown = template_pictures(t)
    assert shown.shape == (2, 5, 4 * 6 - 1, 3)
    gaps = shown[:, :, [5, 11, 17]]
    assert np.isnan(gaps).all() and np.isnan(shown).sum() == gaps.size
    for k in range(2):
        peak = np.abs(t[k]).max()  # NOTE: one scale for all of a template's channels
        for c in range(4):
            expected = DIVERGING.map((t[k, c] / peak + 1) / 2, mode="float")[..., :3].reshape(5, 5, 3)
            np.testing.assert_allclose(shown[k, :, 6 * c: 6 * c + 5], expected, atol=5 / 255)
    assert template_pictures(t, max_channels=2).shape == (2, 5, 2 * 6 - 1, 3)


# ---------------------------------------------------------------------- the view
def test_templates_are_captioned_by_class_then_by_the_names_an_epoch_gives(panel):
    panel.tabs.setCurrentWidget(panel.filters)
    t = templates(3, 1, 8, 8)
    feed_probes(panel, with_templates(t))
    view = panel.filters
    assert view.tiles.isVisibleTo(view) and not view.plot.isVisibleTo(view)
    assert captions(view.tiles) == ["class 0", "class 1", "class 2"]
    assert "3 class templates of 1×8×8" in view.header.text()
    n, _, h, w, _ = view.tiles.grid
    assert (n, h, w) == (3, 8, 8)
    shown = view.tiles.image.image
    for k in range(3):
        x, y = view.tiles.origin(k)
        np.testing.assert_allclose(shown[int(y): int(y) + 8, int(x): int(x) + 8], template_pictures(t)[k], atol=1e-6)
    names = insight_dict()  # circle, square, triangle
    names["confusion"]["classes"] = ["circle", "<b>square</b>", "triangle"]
    feed_insight(panel, names)
    assert captions(view.tiles) == ["circle", "<b>square</b>", "triangle"]  # a name is shown as it is written


def test_units_that_score_no_classes_are_captioned_units_and_a_wide_layer_says_so(panel):
    panel.tabs.setCurrentWidget(panel.filters)
    feed_probes(panel, with_templates(templates(5, 3, 4, 4), classes=False, units=70))
    view = panel.filters
    assert captions(view.tiles) == [f"unit {k}" for k in range(5)]
    text = view.header.text()
    assert "70 unit templates of 3×4×4 (the first 5)" in text and "Grey is a weight of 0" in text
    assert view.tiles.image.image.shape[-1] == 3


def test_a_convolution_after_templates_shows_kernels_again_and_csv_holds_the_raw_weights(panel, tmp_path):
    panel.tabs.setCurrentWidget(panel.filters)
    t = templates(2, 2, 3, 3, seed=5)
    feed_probes(panel, with_templates(t))
    with open(panel.save_csv(tmp_path / "t.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["unit", "channel", "y", "x", "weight"] and len(rows) == 1 + t.size
    for unit, channel, y, x, weight in rows[1:]:
        assert float(weight) == pytest.approx(float(t[int(unit), int(channel), int(y), int(x)]), rel=1e-6)
    feed_probes(panel, probe_dict(2))  # a convolution's kernels
    view = panel.filters
    assert view.plot.isVisibleTo(view) and not view.tiles.isVisibleTo(view) and "filters of 5×5" in view.header.text()
    panel.forget()
    assert view.data is None and view.class_names is None and view.header.text() == view.empty_text


# ---------------------------------------------------------------------- a real run
def test_the_linear_classifier_template_trains_and_shows_its_ten_digit_templates(qtbot):
    project = load_template("linear_classifier")
    project.training.epochs = 1
    project.training.device = "cpu"
    with training_window(qtbot, project) as w:
        ctl, panel = w.training, w.training.insight
        with qtbot.waitSignal(ctl.run_ended, timeout=RUN_TIMEOUT) as ended:
            ctl.start()
        assert ended.args[0] == "finished" and panel.insight_runs == 1
        panel.tabs.setCurrentWidget(panel.filters)
        view = panel.filters
        assert view.data["kind"] == "templates" and view.data["templates"].shape == (10, 1, 8, 8)
        assert captions(view.tiles) == [str(d) for d in range(10)]  # the digits' class names
        assert view.tiles.grid[0] == 10 and "10 class templates of 1×8×8" in view.header.text()

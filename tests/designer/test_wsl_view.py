"""The Class maps view's weakly supervised localization: each map's box and the true box drawn on its
tile, the IoU under it and the mean IoU in the header, from the engine's own localization payload."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from designer import theme
from engine.probes.wsl import localization

N = 5


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def blob_maps(rng) -> np.ndarray:
    ys, xs = np.mgrid[0:16, 0:20]
    centres = rng.uniform(3, 13, (N, 2))
    return np.stack([np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 8.0) for cy, cx in centres]).astype(np.float32)


def probes(with_truth: bool, step: int = 1) -> dict:
    """A probe run of five 16×20 images with blob class maps and, ``with_truth``, their true boxes."""
    rng = np.random.default_rng(step)
    maps = blob_maps(rng)
    truth = np.column_stack([rng.uniform(0, 0.4, (N, 2)), rng.uniform(0.2, 0.5, (N, 2))]).astype(np.float32)
    return {
        "step": step, "seconds": 0.01, "problems": {},
        "images": rng.random((N, 16, 20)).astype(np.float32),
        "cam": {"method": "cam", "node_id": "n5", "name": "<b>relu2</b>", "maps": maps,
                "classes": np.arange(N) % 3, "class_index": None},
        "predictions": {"scores": rng.random((N, 3)).astype(np.float32), "classes": np.arange(N) % 3},
        "localization": localization(maps, truth if with_truth else None, 0.2),
    }


def outline_corners(item) -> list[tuple[float, float, float, float]]:
    """(left, top, right, bottom) of each rectangle of a NaN-broken polyline."""
    x, y = item.getData()
    x, y = np.asarray(x).reshape(-1, 6)[:, :5], np.asarray(y).reshape(-1, 6)[:, :5]
    return [(xs.min(), ys.min(), xs.max(), ys.max()) for xs, ys in zip(x, y)]


def expected_corners(view, boxes) -> list[tuple[float, float, float, float]]:
    _, _, h, w, _ = view.plot.grid
    out = []
    for i, (bx, by, bw, bh) in enumerate(boxes):
        x0, y0 = view.plot.origin(i)
        out.append((x0 + bx * w, y0 + by * h, x0 + (bx + bw) * w, y0 + (by + bh) * h))
    return out


def show(panel, data) -> None:
    panel.show_probes(data)
    panel.refresh(everything=True)


def test_the_class_maps_show_their_boxes_the_true_ones_and_the_iou(panel, tmp_path):
    view = panel.cam
    panel.tabs.setCurrentWidget(view)
    data = probes(with_truth=True)
    loc = data["localization"]
    show(panel, data)
    captions = [t.textItem.toPlainText() for t in view.plot.texts]
    assert captions == [f"class {i % 3}\nIoU {u:.2f}" for i, u in enumerate(loc["iou"])]
    header = view.header.text()
    assert f"mean IoU <b>{loc['mean_iou']:.2f}</b>" in header and "at 20 % of their peak" in header
    assert "&lt;b&gt;relu2&lt;/b&gt;" in header  # the block's name as plain text, never markup
    assert "true box" in header and "box from the class map" in header
    for kind, boxes in (("cam", loc["cam_boxes"]), ("true", loc["true_boxes"])):
        np.testing.assert_allclose(outline_corners(view.plot.outlines[kind]), expected_corners(view, boxes), atol=1e-4)

    cols = view.plot.grid[1]
    panel.resize(1600, 300)  # NOTE: a wide, low view lays the tiles out in more columns
    QApplication.processEvents()
    assert view.plot.grid[1] > cols  # laid out again: the boxes went with their tiles
    np.testing.assert_allclose(outline_corners(view.plot.outlines["cam"]), expected_corners(view, loc["cam_boxes"]),
                               atol=1e-4)
    assert panel.save_png(tmp_path / "wsl.png").stat().st_size > 1000


def test_before_the_true_boxes_are_known_no_box_is_drawn(panel):
    view = panel.cam
    panel.tabs.setCurrentWidget(view)
    show(panel, probes(with_truth=True))
    show(panel, probes(with_truth=False, step=2))
    assert [t.textItem.toPlainText() for t in view.plot.texts] == [f"class {i % 3}" for i in range(N)]
    assert "IoU" not in view.header.text()
    assert all(len(item.getData()[0] if item.getData()[0] is not None else []) == 0
               for item in view.plot.outlines.values())
    show(panel, probes(with_truth=True, step=3))
    view.clear()
    assert view.plot.texts == [] and all(b is None for b in view.plot.boxes.values())

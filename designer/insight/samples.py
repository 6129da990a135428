"""Pictures of single samples: the hardest validation samples with their class maps (part of the
Decisions view), and the Masks & boxes view: the probe images with the masks or boxes the network
predicts for them, beside or over the true ones.

Both take the epoch's insight dict (:meth:`engine.probes.runner.ProbeRunner.evaluate`).
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from designer.insight.images import PALETTE, TilePlot
from designer.insight.maps import TRUE_BOX, class_name, verdict
from engine.colormap import overlay

__all__ = ["HardestGallery", "PredictionsView", "box_iou", "mask_overlay"]

PREDICTED_BOX = (232, 115, 12)
MASK_OPACITY = 0.55


def _rgb(image: np.ndarray) -> np.ndarray:
    img = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def mask_overlay(image: np.ndarray, mask: np.ndarray, opacity: float = MASK_OPACITY) -> np.ndarray:
    """Mask classes 1, 2, … blended over the image in the class colours; background (0) left clear.

    Returns (H, W, 3) float32 in [0, 1].
    """
    img = _rgb(image)
    m = np.asarray(mask, dtype=np.int64)
    colours = PALETTE[m % len(PALETTE)].astype(np.float32) / 255.0
    a = np.where(m > 0, opacity, 0.0).astype(np.float32)[:, :, None]
    return (1.0 - a) * img + a * colours


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes (N, 4) given as x, y, width, height."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x0, y0 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x1 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y1 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = np.abs(a[:, 2] * a[:, 3]) + np.abs(b[:, 2] * b[:, 3]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _label(text: str = "") -> QLabel:
    """A wrapping label for HTML this view writes (user text in it escaped): always rich, never guessed.

    NOTE: a guess would show escaped text such as ``a &amp; b`` literally when nothing else looks like markup.
    """
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    return label


def _swatch(rgb, text: str) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"<span style='color:rgb({r},{g},{b})'>■</span> {html.escape(text)}"


class HardestGallery(QWidget):
    """The hardest validation samples, hardest first, each with its class map (or predicted mask)
    and "true → predicted" (a wrong one red, marked ✗ and framed) and its loss underneath."""

    OPACITY = 0.45
    EMPTY_TITLE = "Hardest validation samples"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = _label(self.EMPTY_TITLE)
        self.plot = TilePlot(lines=2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)

    def show_hardest(self, h: dict[str, Any]) -> None:
        """Draw the samples that come with pictures (``images``)."""
        images = h["images"]
        cam, masks = h.get("cam"), h.get("masks")
        if cam is not None:
            tiles = [overlay(img, m, self.OPACITY).astype(np.float32) / 255.0 for img, m in zip(images, cam["maps"])]
            what = f"{'Grad-CAM' if cam['method'] == 'gradcam' else 'CAM'} of {html.escape(cam['name'])}"
        elif masks is not None:
            tiles, what = [mask_overlay(img, m) for img, m in zip(images, masks)], "with the predicted masks"
        else:
            tiles, what = [_rgb(img) for img in images], "no class maps"
        true, pred, names = h.get("true"), h.get("predicted"), h.get("classes")
        labelled = true is not None and pred is not None
        captions = []
        for i in range(len(images)):
            loss = f"loss {float(h['losses'][i]):.3g}"
            if not labelled:
                captions.append(f"#{int(h['indices'][i])}<br>{loss}")
                continue
            captions.append(f"{verdict(int(true[i]), int(pred[i]), names)}<br>{loss}")
        wrong = [i for i in range(len(images)) if labelled and true[i] != pred[i]]
        self.plot.show_tiles(np.stack(tiles), captions, marked=wrong)
        under = "true → predicted class, loss" if labelled else "sample number, loss"
        self.title.setText(f"{len(images)} hardest validation samples ({what}): {under}")
        self.title.setToolTip("The validation samples with the highest loss, hardest first; a wrong prediction "
                              "is red, marked ✗ and framed")

    def clear(self) -> None:
        """No samples, as at the start."""
        self.plot.clear_image()
        self.title.setText(self.EMPTY_TITLE)
        self.title.setToolTip("")


class PredictionsView(QWidget):
    """The probe images with the masks the network predicts (under the true ones when known) or its boxes
    (with the true ones when known)."""

    title = "Masks and boxes"
    empty_text = ("For a network with a Segmentation or Box output: the masks or boxes it predicts "
                  "for the probe images appear here after each epoch.")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = _label(self.empty_text)
        self.plot = TilePlot()
        self.legend = _label()
        self.true_boxes = pg.PlotDataItem(pen=pg.mkPen(TRUE_BOX, width=2), connect="finite")
        self.boxes = pg.PlotDataItem(pen=pg.mkPen(PREDICTED_BOX, width=2), connect="finite")
        for item in (self.true_boxes, self.boxes):
            self.plot.addItem(item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)
        self.data: dict[str, Any] | None = None

    def update_insight(self, d: dict[str, Any]) -> None:
        images = d.get("probe_images")
        if images is None or ("masks" not in d and "boxes" not in d):
            return
        self.data = d
        truth = d.get("true_masks")
        pairs = truth is not None and "masks" in d
        if "masks" in d:
            predicted = [mask_overlay(img, m) for img, m in zip(images, d["masks"])]
            if pairs:  # NOTE: one tile per sample: the true mask above the predicted one
                gap = np.full((2,) + predicted[0].shape[1:], np.nan, np.float32)
                tiles = [np.concatenate([mask_overlay(img, t), gap, p]) for img, t, p in zip(images, truth, predicted)]
            else:
                tiles = predicted
        else:
            tiles = [_rgb(img) for img in images]
        n = len(tiles)  # NOTE: a fixed grid (up to 4 in a row, else 2 rows), so the boxes can follow it
        self.plot.show_tiles(np.stack(tiles), self._captions(d), cols=n if n <= 4 else -(-n // 2))
        h, w = np.shape(images)[1:3]
        self.boxes.setData(*self._outline(d.get("boxes"), h, w, h + 2 if pairs else 0))
        self.true_boxes.setData(*self._outline(d.get("true_boxes"), h, w, 0))
        self.legend.setText(self._legend(d, pairs))
        step = f" after epoch {d['epoch']}" if d.get("epoch") is not None else ""
        self.header.setText(f"The {'masks' if 'masks' in d else 'boxes'} the network predicts for the probe "
                            f"images{step}" + (": in each pair the true mask is above the predicted one, "
                                               "and under it the share of pixels classed right" if pairs else ""))

    def clear(self) -> None:
        """Back to the empty view of the start: no images, masks, boxes or legend."""
        self.data = None
        self.plot.clear_image()
        for item in (self.boxes, self.true_boxes):
            item.setData(np.zeros(0), np.zeros(0))
        self.legend.setText("")
        self.header.setText(self.empty_text)

    def _captions(self, d: dict[str, Any]) -> list[str]:
        n = len(d["probe_images"])
        if "masks" in d and d.get("true_masks") is not None:
            acc = [(np.asarray(m) == np.asarray(t)).mean() for m, t in zip(d["masks"], d["true_masks"])]
            return [f"{a:.0%}" for a in acc]
        if "boxes" in d and d.get("true_boxes") is not None:
            return [f"IoU {u:.2f}" for u in box_iou(d["boxes"], d["true_boxes"])]
        return [f"sample {i}" for i in range(n)]

    def _legend(self, d: dict[str, Any], pairs: bool) -> str:
        parts = []
        if "masks" in d:
            names = d.get("mask_classes")
            seen = [np.max(d["masks"])] + ([np.max(d["true_masks"])] if pairs else [])
            k = max(int(max(seen)), len(names or ()) - 1)
            parts.append("Mask classes: " + "  ".join(
                _swatch(PALETTE[c % len(PALETTE)], class_name(c, names)) for c in range(1, k + 1)))
        if "boxes" in d:
            parts.append(_swatch(PREDICTED_BOX, "predicted box")
                         + ("  " + _swatch(TRUE_BOX, "true box") if d.get("true_boxes") is not None else "")
                         + ("; IoU: how much the two boxes overlap (1 is perfect)" if d.get("true_boxes") is not None
                            else ""))
        return ";  ".join(parts)

    def _outline(self, boxes, h: int, w: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
        """Rectangles as one polyline with NaN breaks, in the tiles' coordinates (``dy`` down in each tile)."""
        if boxes is None or not len(boxes):
            return np.zeros(0), np.zeros(0)
        xs, ys = [], []
        for i, (bx, by, bw, bh) in enumerate(np.asarray(boxes, dtype=np.float64)):
            x0, y0 = self.plot.origin(i)
            left, top = x0 + bx * w, y0 + dy + by * h
            right, bottom = left + bw * w, top + bh * h
            xs += [left, right, right, left, left, np.nan]
            ys += [top, top, bottom, bottom, top, np.nan]
        return np.array(xs), np.array(ys)

    def csv(self) -> tuple[list[str], list] | None:
        """Per probe image: predicted pixels per mask class and pixel accuracy, or the boxes and their IoU."""
        d = self.data
        if d is None:
            return None
        rows = _mask_rows(d) or _box_rows(d)
        if "masks" in d and "boxes" in d:
            rows += [[]] + _box_rows(d)
        return rows[0], rows[1:]


def _mask_rows(d: dict[str, Any]) -> list[list]:
    if "masks" not in d:
        return []
    masks, truth = np.asarray(d["masks"]), d.get("true_masks")
    k = int(max(masks.max(), np.max(truth) if truth is not None else 0)) + 1
    names = [class_name(c, d.get("mask_classes")) for c in range(k)]
    rows: list[list] = [["probe_sample", *[f"pixels_{n}" for n in names], "pixel_accuracy"]]
    for i, m in enumerate(masks):
        acc = float((m == np.asarray(truth[i])).mean()) if truth is not None else math.nan
        rows.append([i, *np.bincount(m.reshape(-1), minlength=k).tolist(), acc])
    return rows


def _box_rows(d: dict[str, Any]) -> list[list]:
    if "boxes" not in d:
        return []
    boxes, truth = np.asarray(d["boxes"]), d.get("true_boxes")
    head = ["probe_sample", "x", "y", "width", "height"]
    if truth is None:
        return [head] + [[i, *b.tolist()] for i, b in enumerate(boxes)]
    iou = box_iou(boxes, truth)
    return [head + ["true_x", "true_y", "true_width", "true_height", "iou"]] + [
        [i, *b.tolist(), *np.asarray(t).tolist(), float(u)] for i, (b, t, u) in enumerate(zip(boxes, truth, iou))]

"""Weakly supervised localization: a box cut from a classifier's class map, compared with the true box.

A network trained only on class labels still says where it looks: threshold the class map of the
predicted class at a fraction of its peak (20 % in the CAM paper), keep the largest connected
region and take its bounding box. Boxes are (x, y, width, height) fractions of the image with
(x, y) the top-left corner and pixel-aligned edges, as the shapes set's ``box`` target and the
Box output (:func:`engine.probes.views.predicted_boxes`) have them.

The probes cut the maps they show: a CAM scaled into [0, 1] by its range (so the cut lies that
share of the way from its lowest to its highest value, as CAM evaluations commonly normalize),
a Grad-CAM after its ReLU scaled by its peak.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage

from engine.probes.base import ProbeError
from engine.training.objectives import box_iou

__all__ = ["CAM_BOX_THRESHOLD", "cam_box", "cam_boxes", "localization"]

#: the share of its peak at which a class map is cut, as the CAM paper does
CAM_BOX_THRESHOLD = 0.2


def cam_box(cam_map: np.ndarray, threshold: float = CAM_BOX_THRESHOLD) -> tuple[float, float, float, float]:
    """The box (x, y, w, h fractions) around the largest 4-connected region at or above ``threshold`` × peak.

    A flat map is all one region: the whole image. Of two regions of the same size the first in
    reading order (top row first) wins.

    Raises:
        ProbeError: the map is not 2-D, is empty or holds a value that is not finite.
    """
    m = np.asarray(cam_map, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ProbeError(f"a class map to cut a box from must be one 2-D picture, not shape {m.shape}")
    if not np.isfinite(m).all():
        raise ProbeError("the class map holds values that are not finite numbers")
    # NOTE: the peak is always at or above its own cut, so the region below is never empty.
    inside = m >= threshold * m.max()
    regions, _ = ndimage.label(inside)  # NOTE: scipy's default 2-D structure is the 4-neighbour cross
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0  # label 0 is what lies below the cut
    ys, xs = np.nonzero(regions == int(sizes.argmax()))
    h, w = m.shape
    return (xs.min() / w, ys.min() / h, (xs.max() + 1 - xs.min()) / w, (ys.max() + 1 - ys.min()) / h)


def cam_boxes(maps: np.ndarray, threshold: float = CAM_BOX_THRESHOLD) -> np.ndarray:
    """One :func:`cam_box` per map of ``maps`` (N, H, W): (N, 4) float32."""
    boxes = [cam_box(m, threshold) for m in np.asarray(maps)]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def localization(
    maps: np.ndarray, true_boxes: np.ndarray | None, threshold: float = CAM_BOX_THRESHOLD
) -> dict[str, Any]:
    """The class maps' boxes and, with the true boxes (N, 4), each one's IoU with its box and their mean.

    Returns ``cam_boxes`` (N, 4) float32 and ``threshold``; with ``true_boxes`` also ``true_boxes``
    (N, 4) float32, ``iou`` (N,) float64 and ``mean_iou`` (a float).
    """
    boxes = cam_boxes(maps, threshold)
    out: dict[str, Any] = {"cam_boxes": boxes, "threshold": float(threshold)}
    if true_boxes is None:
        return out
    truth = np.asarray(true_boxes, dtype=np.float32).reshape(-1, 4)
    if len(truth) != len(boxes):
        raise ProbeError(f"{len(boxes)} class maps but {len(truth)} true boxes")
    iou = box_iou(torch.from_numpy(boxes).double(), torch.from_numpy(truth).double()).numpy()
    out.update(true_boxes=truth, iou=iou, mean_iou=float(iou.mean()) if len(iou) else float("nan"))
    return out

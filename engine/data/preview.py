"""A few samples of a data set as plain arrays with their label text, for a samples view.

Only the samples shown are read: a data set streamed from disk (:mod:`engine.data.streaming`)
is never loaded whole for a preview.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.data.base import Dataset
from engine.data.streaming import StreamDataset, is_streamed

__all__ = ["PreviewSample", "preview", "preview_samples"]


@dataclass(frozen=True)
class PreviewSample:
    """One sample of a preview: its position in the data set, its values as loaded, what to draw, its label."""

    index: int
    raw: np.ndarray
    array: np.ndarray
    text: str


def _unit(a: np.ndarray) -> np.ndarray:
    """Values already in [0, 1] stay; anything else (normalized data) is stretched to [0, 1]."""
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0.0 and hi <= 1.0:
        return a.astype(np.float32)
    return ((a - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def _picture(sample: np.ndarray) -> np.ndarray:
    """HxW or HxWx3 in [0, 1] from (C, H, W), or from a flattened square image."""
    if sample.ndim == 1:
        side = math.isqrt(sample.size)
        if side * side == sample.size:
            return _unit(sample.reshape(side, side))
        if sample.size % 3 == 0 and (side := math.isqrt(sample.size // 3)) ** 2 * 3 == sample.size:
            return _unit(sample.reshape(3, side, side).transpose(1, 2, 0))
        return _unit(sample[None, :])  # a strip of feature values
    if sample.shape[0] == 3:
        return _unit(sample.transpose(1, 2, 0))
    return _unit(sample[0])


def _text(ds: Dataset | StreamDataset, i: int) -> str:
    t = ds.targets
    if "label" in t:
        k = int(t["label"][i])
        return ds.classes[k] if ds.classes and k < len(ds.classes) else str(k)
    if "binary" in t:
        return " ".join(str(int(v)) for v in t["binary"][i].tolist())
    if "value" in t:
        return ", ".join(f"{v:.3g}" for v in t["value"][i].tolist())
    return ""


def _samples(ds: Dataset | StreamDataset, idx: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(index, raw sample) of each of ``idx``; a streamed set reads only these from disk, leaving out an unreadable one."""
    if is_streamed(ds):
        x, kept, _ = ds.read(idx.tolist())
        return list(zip(kept, x.numpy()))
    x = ds.x.detach().cpu().numpy()
    return [(int(i), x[i]) for i in idx]


def preview_samples(ds: Dataset | StreamDataset, n: int = 16) -> list[PreviewSample]:
    """Up to ``n`` samples spread evenly over the data set (a streamed one's unreadable samples left out).

    ``array`` is an image (H×W, or H×W×3 for RGB, floats in [0, 1]) for image data and for
    vectors that are flattened square images (more than 16 values); a point (x, y) for 2-D
    data, or (x, value) for 1-D regression; otherwise the feature values as a 1×F strip.
    """
    if len(ds) == 0 or n <= 0:
        return []
    idx = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(np.int64))
    out = []
    for i, sample in _samples(ds, idx):
        if ds.is_image or (sample.ndim == 1 and sample.size > 16):
            array = _picture(sample)
        elif sample.size == 2:
            array = sample.astype(np.float32)
        elif sample.size == 1 and "value" in ds.targets:
            array = np.array([sample[0], float(ds.targets["value"][i, 0])], np.float32)
        else:
            array = _unit(sample[None, :])
        out.append(PreviewSample(i, sample, array, _text(ds, i)))
    return out


def preview(ds: Dataset | StreamDataset, n: int = 16) -> list[tuple[np.ndarray, str]]:
    """Up to ``n`` samples spread over the data set, each as (array, label text): see :func:`preview_samples`."""
    return [(s.array, s.text) for s in preview_samples(ds, n)]

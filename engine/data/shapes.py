"""Procedurally drawn circles, squares and triangles: classification, segmentation, localization.

Each image holds one shape of random size (35–65 % of the image side), position and colour on a
noisy background (dark shapes on light ground or light on dark). Targets:

* ``label``: 0 circle, 1 square, 2 triangle;
* ``mask``: per pixel 0 = background, 1 = circle, 2 = square, 3 = triangle, so a segmentation
  network needs **4** output classes (``Dataset.mask_classes``);
* ``box``: x, y (top-left corner), width, height as fractions of the image: the smallest
  pixel-aligned rectangle around the shape's pixels, so every mask pixel lies inside it.

Drawing is vectorized numpy over blocks of images (2000 images of 32×32 take a few tens of ms).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.data.base import DataError, Dataset, labels_and_binary, rgb_or_gray_shape
from engine.data.sets import MIN_SIDE, SHAPE_CLASSES

__all__ = ["SHAPE_CLASSES", "make_shapes"]

BLOCK = 256  # images drawn at once: bounds the memory of the (block, H, W) arrays


def _image_shape(input_shape: tuple[int, ...], image_size: int | None) -> tuple[int, int, int]:
    c, h, w = rgb_or_gray_shape(input_shape, image_size, "shapes")
    if min(h, w) < MIN_SIDE:
        raise DataError(f"shapes needs images of at least {MIN_SIDE}×{MIN_SIDE} pixels, not {h}×{w}")
    return c, h, w


def _inside(labels: np.ndarray, size: np.ndarray, cx: np.ndarray, cy: np.ndarray, h: int, w: int) -> np.ndarray:
    """(n, h, w) booleans: which pixel centres lie inside each image's shape."""
    ys = (np.arange(h, dtype=np.float32) + 0.5)[None, :, None]
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, None, :]
    dx = xs - cx[:, None, None]
    dy = ys - cy[:, None, None]
    half = (size / 2)[:, None, None]
    circle = dx * dx + dy * dy <= half * half
    square = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    # NOTE: an upright triangle, apex at the top; its half-width grows from 0 to half over its height.
    triangle = (dy <= half) & (np.abs(dx) <= (dy + half) / 2)
    kind = labels[:, None, None]
    return np.where(kind == 0, circle, np.where(kind == 1, square, triangle))


def _boxes(inside: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, width, height fractions of the pixel extent of each mask."""
    n, h, w = inside.shape
    cols = inside.any(axis=1)
    rows = inside.any(axis=2)
    x0 = cols.argmax(axis=1)
    x1 = w - cols[:, ::-1].argmax(axis=1)
    y0 = rows.argmax(axis=1)
    y1 = h - rows[:, ::-1].argmax(axis=1)
    return np.stack([x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h], axis=1).astype(np.float32)


def make_shapes(
    samples: int, noise: float, seed: int, input_shape: tuple[int, ...], image_size: int | None = None
) -> Dataset:
    """``samples`` shape images fitted to the Input (classes balanced, order shuffled)."""
    c, h, w = _image_shape(input_shape, image_size)
    rng = np.random.default_rng(seed)
    n = samples
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    size = (rng.uniform(0.35, 0.65, n) * min(h, w)).astype(np.float32)
    cx = rng.uniform(size / 2, w - size / 2).astype(np.float32)
    cy = rng.uniform(size / 2, h - size / 2).astype(np.float32)
    dark = rng.random(n) < 0.5  # dark ground, light shape; else the other way round
    ground = np.where(dark[:, None], rng.uniform(0.0, 0.35, (n, c)), rng.uniform(0.65, 1.0, (n, c)))
    colour = np.where(dark[:, None], rng.uniform(0.6, 1.0, (n, c)), rng.uniform(0.0, 0.4, (n, c)))
    ground, colour = ground.astype(np.float32), colour.astype(np.float32)

    images = np.empty((n, c, h, w), np.float32)
    masks = np.empty((n, h, w), np.int64)
    boxes = np.empty((n, 4), np.float32)
    for start in range(0, n, BLOCK):
        part = slice(start, min(start + BLOCK, n))
        inside = _inside(labels[part], size[part], cx[part], cy[part], h, w)
        img = np.where(inside[:, None], colour[part, :, None, None], ground[part, :, None, None])
        img += rng.normal(0.0, noise, img.shape).astype(np.float32)
        images[part] = np.clip(img, 0.0, 1.0)
        masks[part] = inside * (labels[part, None, None] + 1)
        boxes[part] = _boxes(inside)

    x = torch.from_numpy(images)
    if len(input_shape) == 1:
        x = x.reshape(n, -1)  # a vector Input of C·s·s features takes the image flattened
    targets = labels_and_binary(labels, len(SHAPE_CLASSES))
    targets["mask"] = torch.from_numpy(masks)
    targets["box"] = torch.from_numpy(boxes)
    return Dataset(x, targets, list(SHAPE_CLASSES), "shapes", mask_classes=["background", *SHAPE_CLASSES])

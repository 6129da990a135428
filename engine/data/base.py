"""The in-memory data set and the helpers that fit raw data to a network's Input shape.

Every source (generated, bundled with scikit-learn, or read from files) ends as one
:class:`Dataset`: plain tensors, small enough to keep in memory whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import NetDesignerError

__all__ = ["DataError", "Dataset", "TARGET_KEYS", "TARGET_WORDS", "fit_images", "fit_vectors", "shape_text"]

#: target name -> (dtype, what it holds); the output heads train against these.
TARGET_KEYS = {
    "label": (torch.int64, "(N,) class indices, for a class output"),
    "binary": (torch.float32, "(N, k) 0/1 floats, for a binary output"),
    "value": (torch.float32, "(N, k) floats, for a regression output"),
    "mask": (torch.int64, "(N, H, W) class index per pixel, for a segmentation output"),
    "box": (torch.float32, "(N, 4) x, y (top-left corner), width, height as fractions of the image"),
}

#: target name -> what it is, in a learner's words (for messages such as "has no class labels")
TARGET_WORDS = {
    "label": "class labels",
    "binary": "0/1 targets",
    "value": "numbers to predict",
    "mask": "per-pixel masks",
    "box": "bounding boxes",
}


class DataError(NetDesignerError):
    """Data could not be loaded, split, normalized or augmented; the message says why."""


def shape_text(shape: Sequence[int]) -> str:
    """``(1, 28, 28)`` -> ``'1×28×28'``."""
    return "×".join(str(int(s)) for s in shape)


IndexLike = Sequence[int] | np.ndarray | Tensor


@dataclass
class Dataset:
    """Samples ``x`` (N, *input_shape) float32 with their targets, all as tensors in memory.

    Attributes:
        x: the inputs, float32.
        targets: some of ``TARGET_KEYS``, each with N rows.
        classes: names of the class indices in ``label`` (None without classes).
        name: the source, for messages and titles.
        warnings: things the loader noticed and worked around (a skipped corrupt file).
        mask_classes: names of the class indices in ``mask`` (index 0 is "background").
    """

    x: Tensor
    targets: dict[str, Tensor]
    classes: list[str] | None
    name: str
    warnings: list[str] = field(default_factory=list)
    mask_classes: list[str] | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        for key, t in self.targets.items():
            if key not in TARGET_KEYS:
                raise DataError(f"{self.name}: unknown target {key!r}; known targets are {', '.join(TARGET_KEYS)}")
            if t.shape[0] != n:
                raise DataError(f"{self.name}: target {key!r} has {t.shape[0]} rows but there are {n} samples")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    def subset(self, indices: IndexLike) -> Dataset:
        """The samples at ``indices`` (copied), with every target alongside."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64) if not isinstance(indices, Tensor) else indices)
        idx = idx.to(torch.int64).reshape(-1)
        return replace(
            self,
            x=self.x[idx],
            targets={k: v[idx] for k, v in self.targets.items()},
            warnings=list(self.warnings),
        )

    def with_x(self, x: Tensor) -> Dataset:
        """The same samples and targets with other inputs (normalized ones, say)."""
        return replace(self, x=x, targets=dict(self.targets), warnings=list(self.warnings))


# ------------------------------------------------------------------------ fitting to the Input
def _square_side(n: int) -> int | None:
    s = math.isqrt(n)
    return s if s > 0 and s * s == n else None


def vector_image_shape(features: int, src_channels: int, image_size: int | None) -> tuple[int, int] | None:
    """(channels, side) of a square image whose flattened length is ``features``."""
    channels = list(dict.fromkeys((src_channels, 1, 3)))
    if image_size:
        for c in channels:
            if c * image_size * image_size == features:
                return c, image_size
    for c in channels:
        if features % c == 0 and (s := _square_side(features // c)):
            return c, s
    return None



def rgb_or_gray_shape(input_shape: tuple[int, ...], image_size: int | None, what: str) -> tuple[int, int, int]:
    """(C, H, W) of the images ``what`` must produce for this Input: its own image shape, or a
    square grayscale/RGB image whose flattened length matches a vector Input."""
    if len(input_shape) == 3:
        c, h, w = input_shape
    else:
        found = vector_image_shape(int(input_shape[0]), 1, image_size)
        if found is None:
            raise DataError(
                f"{what} makes square images: a vector Input needs a square number of features "
                f"(784 for 28×28 grayscale, 3072 for 32×32 RGB), not {input_shape[0]}"
            )
        c, h = found
        w = h
    if c not in (1, 3):
        raise DataError(f"{what} makes grayscale (1 channel) or RGB (3 channels) images; the Input has {c} channels")
    return c, h, w

def _convert_channels(x: Tensor, channels: int, name: str) -> Tensor:
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    raise DataError(
        f"{name} has {have}-channel images but the Input has {channels} channels: "
        "set the Input's channels to 1 (grayscale) or 3 (RGB)"
    )


def resize_images(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (N, C, H, W) floats; antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def resize_masks(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of (N, H, W) class-index masks."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask[:, None].float(), size=size, mode="nearest")[:, 0].round().to(torch.int64)


def fit_images(x: Tensor, input_shape: tuple[int, ...], name: str, image_size: int | None = None) -> Tensor:
    """Fit (N, C, H, W) images in [0, 1] to an image Input (C, H, W) or a vector Input (F,).

    A vector Input takes the image flattened: as it is when F = C·H·W, else resized to a square
    side s with F = s², or 3·s² for RGB (``image_size`` picks s when given).
    """
    if len(input_shape) == 3:
        c, h, w = input_shape
        x = _convert_channels(resize_images(x, (h, w)), c, name)
        return x.clamp(0.0, 1.0).contiguous()
    if len(input_shape) == 1:
        (features,) = input_shape
        n, c, h, w = x.shape
        if features == c * h * w:
            return x.reshape(n, -1).contiguous()
        found = vector_image_shape(features, c, image_size)
        if found is None:
            raise DataError(
                f"{name} holds {shape_text(x.shape[1:])} images: a vector Input needs {c * h * w} features "
                f"(the image flattened) or a square number of pixels such as {28 * 28} for 28×28, "
                f"not {features}; or use an image Input"
            )
        c2, s = found
        x = _convert_channels(resize_images(x, (s, s)), c2, name).clamp(0.0, 1.0)
        return x.reshape(n, -1).contiguous()
    raise DataError(f"{name}: the Input shape {shape_text(input_shape)} is neither an image (C×H×W) nor a vector")


def fit_vectors(x: Tensor, input_shape: tuple[int, ...], name: str, what: str, reshape: bool = False) -> Tensor:
    """Check (N, F) feature rows against the Input; ``reshape`` lets F values fill any Input shape.

    Args:
        what: how the data is described in messages ("4 features (the flower's measurements)").
    """
    n, features = x.shape[0], int(np.prod(x.shape[1:]))
    want = int(np.prod(input_shape))
    if len(input_shape) == 1 and features == want:
        return x.reshape(n, want).contiguous()
    if reshape and features == want:
        return x.reshape(n, *input_shape).contiguous()
    if len(input_shape) == 1:
        raise DataError(f"{name} has {what} but the Input expects {want} features: set the Input's features to {features}")
    raise DataError(
        f"{name} has {what} but the Input expects {shape_text(input_shape)} images: "
        f"use a vector Input with {features} features"
    )


def as_float(a: Any) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)


def labels_and_binary(labels: np.ndarray, n_classes: int) -> dict[str, Tensor]:
    """The ``label`` target, and ``binary`` beside it when there are exactly two classes."""
    label = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    out = {"label": label}
    if n_classes == 2:
        out["binary"] = label.to(torch.float32)[:, None]
    return out

"""The part of the data layer that needs no PyTorch: its error, the target words, shapes as text
and the rule that folds a feature vector into a square image.

NOTE: the window reads these (the data checks run after every edit) without importing PyTorch,
which takes a second or more; :mod:`engine.data.base` re-exports them for the loaders.
"""

from __future__ import annotations

import math
from typing import Sequence

from engine.errors import NetDesignerError

__all__ = ["TARGET_WORDS", "DataError", "shape_text", "vector_image_shape"]

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

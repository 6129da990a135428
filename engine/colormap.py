"""The heat colour ramp and overlays: class maps and masks as pictures, with numpy alone.

NOTE: no PyTorch here: the window colours the maps that arrive from the training process
without importing it; :mod:`engine.probes.cam` re-exports these for the probes.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ProbeError

__all__ = ["COLOR_TABLE", "colorize", "overlay"]

# A dark-to-light ramp through violet, red and amber, chosen by hand so that brightness rises
# steadily: hot regions read as bright even in grayscale. (position, (r, g, b))
_RAMP = (
    (0.00, (12, 8, 38)),
    (0.20, (64, 18, 104)),
    (0.40, (136, 34, 106)),
    (0.60, (206, 66, 70)),
    (0.80, (246, 140, 40)),
    (1.00, (252, 240, 150)),
)


def _lut() -> np.ndarray:
    pos = np.array([p for p, _ in _RAMP])
    rgb = np.array([c for _, c in _RAMP], dtype=np.float64)
    t = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(t, pos, rgb[:, i]) for i in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


COLOR_TABLE = _lut()  # (256, 3) uint8


def colorize(heat: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape) as RGB uint8 through the heat colour ramp (shape + (3,))."""
    idx = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    return COLOR_TABLE[np.round(idx * 255).astype(np.intp)]


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """The heat map coloured and blended over the image: (H, W, 3) uint8.

    Args:
        image: (H, W) grayscale or (H, W, 3) RGB, values in [0, 1].
        heat: (H, W) values in [0, 1].
        opacity: 0 shows only the image, 1 only the heat map.
    """
    img = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ProbeError(f"overlay needs an (H, W) or (H, W, 3) image, not shape {img.shape}")
    if np.shape(heat) != img.shape[:2]:
        raise ProbeError(f"overlay: the heat map is {np.shape(heat)} but the image is {img.shape[:2]}")
    a = float(np.clip(opacity, 0.0, 1.0))
    mixed = (1.0 - a) * img + a * (colorize(heat).astype(np.float32) / 255.0)
    return np.round(mixed * 255.0).clip(0, 255).astype(np.uint8)

"""Pictures for the Insight views: numpy tiling and one pyqtgraph ImageItem per view.

:class:`ImagePlot` owns exactly one :class:`pyqtgraph.ImageItem`; :meth:`ImagePlot.show`
updates it in place with explicit levels, so a live run never creates items per update.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from designer import theme

__all__ = ["ImagePlot", "grid_shape", "save_csv", "save_png", "tile"]

GRAY = pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
VIRIDIS = pg.colormap.get("viridis")
DIVERGING = pg.ColorMap([0.0, 0.5, 1.0], [(40, 90, 200), (245, 245, 245), (200, 50, 40)])


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``n`` tiles: nearly square unless ``cols`` is given."""
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def tile(images: np.ndarray, cols: int | None = None, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """``(N, H, W)`` or ``(N, H, W, 3)`` as one contiguous float32 image of tiles, ``pad`` pixels apart.

    The gaps hold ``fill`` (NaN draws transparent in an ImageItem).
    """
    a = np.asarray(images, dtype=np.float32)
    n, h, w = a.shape[:3]
    rows, cols = grid_shape(n, cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad) + a.shape[3:], fill, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = a[i]
    return np.ascontiguousarray(out)


class ImagePlot(pg.PlotWidget):
    """A plot holding one row-major ImageItem, y down, square pixels, no axes unless asked."""

    def __init__(self, title: str = "", axes: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        if title:
            item.setTitle(title, size="9pt")
        for name in ("left", "bottom"):
            item.showAxis(name, axes)
        self.setBackground(theme.colors()["base"])
        vb = item.getViewBox()
        vb.invertY(True)
        vb.setAspectLocked(True)
        vb.setMouseEnabled(False, False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.data: np.ndarray | None = None
        self.setMinimumSize(120, 100)

    def show_image(self, data: np.ndarray, levels: tuple[float, float] | None = None,
                   cmap: pg.ColorMap | None = None) -> None:
        """Show ``(H, W)`` values with ``levels`` through ``cmap``, or ``(H, W, 3|4)`` colours as they are."""
        data = np.ascontiguousarray(data)
        colour = data.ndim == 3
        if levels is None:
            levels = (0, 255) if data.dtype == np.uint8 else (0.0, 1.0)
        lo, hi = float(levels[0]), float(levels[1])
        if not hi > lo:
            hi = lo + 1e-6
        self.image.setLookupTable(None if colour else (cmap or GRAY).getLookupTable(nPts=256))
        self.image.setImage(data if colour or data.dtype == np.uint8 else data.astype(np.float32, copy=False),
                            levels=(lo, hi), autoLevels=False)
        if self.data is None or self.data.shape[:2] != data.shape[:2]:
            self.getPlotItem().getViewBox().autoRange(padding=0.02)
        self.data = data

    def clear_image(self) -> None:
        self.image.clear()
        self.data = None


def save_png(widget: QWidget, path: str | Path) -> bool:
    """Write what the widget shows as a PNG (``QWidget.grab``). True when written."""
    return widget.grab().save(str(path), "PNG")


def save_csv(path: str | Path, header: list[str], rows) -> None:
    """Write rows of numbers (or text) under a header line."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)

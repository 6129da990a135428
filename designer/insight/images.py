"""Pictures for the Insight views: numpy tiling and one pyqtgraph ImageItem per view.

:class:`ImagePlot` owns exactly one :class:`pyqtgraph.ImageItem`; :meth:`ImagePlot.show`
updates it in place with explicit levels, so a live run never creates items per update.
:class:`TilePlot` lays colour images out as captioned tiles in one such item.
"""

from __future__ import annotations

import csv
import html
import math
import re
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QWidget

from designer import theme

__all__ = ["PALETTE", "WRONG", "ImagePlot", "TilePlot", "grid_shape", "save_csv", "save_png", "tile"]

GRAY = pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
VIRIDIS = pg.colormap.get("viridis")
DIVERGING = pg.ColorMap([0.0, 0.5, 1.0], [(40, 90, 200), (245, 245, 245), (200, 50, 40)])
#: one colour per class (decision regions, points, mask classes)
PALETTE = np.array([(47, 111, 222), (232, 115, 12), (46, 160, 67), (200, 50, 60), (140, 86, 200),
                    (140, 90, 70), (220, 100, 180), (120, 120, 120), (180, 180, 40), (30, 180, 190)], dtype=np.uint8)
CAPTION = "#808080"
WRONG = "#d04040"  # a wrong prediction: its caption and the frame around its tile
MIN_CAPTION_PT = 7.0


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``n`` tiles: nearly square unless ``cols`` is given."""
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def tile(images: np.ndarray, cols: int | None = None, pad: int = 1, fill: float = np.nan,
         pad_y: int | None = None) -> np.ndarray:
    """``(N, H, W)`` or ``(N, H, W, 3)`` as one contiguous float32 image of tiles, ``pad`` pixels apart
    (``pad_y`` between rows, when it differs).

    The gaps hold ``fill`` (NaN draws transparent in an ImageItem).
    """
    a = np.asarray(images, dtype=np.float32)
    n, h, w = a.shape[:3]
    rows, cols = grid_shape(n, cols)
    py = pad if pad_y is None else pad_y
    out = np.full((rows * (h + py) - py, cols * (w + pad) - pad) + a.shape[3:], fill, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + py): r * (h + py) + h, c * (w + pad): c * (w + pad) + w] = a[i]
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
            # NOTE: the image alone: text items (a pixel size whatever the zoom) would stretch the range
            self.getPlotItem().getViewBox().autoRange(padding=0.02, items=[self.image])
        self.data = data

    def clear_image(self) -> None:
        self.image.clear()
        self.data = None


class TilePlot(ImagePlot):
    """Colour images as a grid of tiles with a caption (HTML, ``lines`` lines high) under each.

    Without a given number of columns the grid takes the one that shows the tiles largest at the
    widget's size while their captions still fit side by side, again after each resize. The
    caption items are made when the number or layout of the tiles changes, never per update.
    Marked tiles (wrong predictions, say) get a red frame, one polyline for all of them.
    """

    def __init__(self, title: str = "", lines: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(title, parent=parent)
        self.lines = lines
        self.texts: list[pg.TextItem] = []
        self.grid: tuple[int, int, int, int, int] = (0, 1, 0, 0, 0)  # n, cols, h, w, gap
        self.frames = pg.PlotDataItem(pen=pg.mkPen(WRONG, width=2), connect="finite")
        self.addItem(self.frames)
        self.marked: list[int] = []
        self._shown: tuple[np.ndarray, list[str], int | None] | None = None

    def show_tiles(self, images: np.ndarray, captions: list[str], cols: int | None = None,
                   marked: list[int] | None = None) -> None:
        """``images`` (N, H, W, 3) in [0, 1] (or uint8), ``cols`` per row (None: the best fit); the tiles
        numbered in ``marked`` are framed in red."""
        a = np.asarray(images)
        a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32, copy=False)
        self._shown = (a, list(captions), cols)
        self.marked = sorted(int(i) for i in (marked or ()) if 0 <= int(i) < len(a))
        self._lay_out()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        shown = getattr(self, "_shown", None)  # NOTE: Qt may resize the view before __init__ has finished
        if shown is not None and shown[2] is None:
            self._lay_out()

    def _lay_out(self) -> None:
        a, captions, cols = self._shown
        n, h, w = a.shape[:3]
        gap = max(2, h * self.lines // 3) if captions else 2
        font = QFont(self.font())
        if cols is None:
            cols, pitch = self._best_cols(n, h, w, gap, captions)
            need = _caption_width(captions, font)
            if need > pitch and font.pointSizeF() > 0:  # NOTE: no layout leaves the captions room: smaller type
                font.setPointSizeF(max(MIN_CAPTION_PT, font.pointSizeF() * pitch / need))
        self.show_image(tile(a, cols=cols, pad=gap, fill=np.nan), levels=(0.0, 1.0))
        grid = (n, cols, h, w, gap)
        if grid != self.grid or len(self.texts) != len(captions):
            for t in self.texts:
                self.removeItem(t)
            self.texts = [pg.TextItem(anchor=(0.5, 0.0)) for _ in captions]
            for t in self.texts:
                self.addItem(t)
            rows = -(-n // cols)
            # NOTE: half a gap beside the outer tiles, where their captions may reach as between tiles
            self.getPlotItem().getViewBox().setRange(
                yRange=(0, rows * (h + gap)), xRange=(-gap / 2, cols * (w + gap) - gap / 2), padding=0.02)
            self.grid = grid
        for i, (t, text) in enumerate(zip(self.texts, captions)):
            x, y = self.origin(i)
            t.textItem.setFont(font)
            t.setHtml(f"<div align='center' style='color:{CAPTION}'>{text}</div>")
            t.textItem.setTextWidth(-1)
            t.textItem.setTextWidth(t.textItem.document().idealWidth())  # NOTE: lines centre within the widest
            t.updateTextPos()
            t.setPos(x + w / 2, y + h)
        self.frames.setData(*self._outlines(h, w))

    def _outlines(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Rectangles round the marked tiles, half a pixel outside them, as one polyline with NaN breaks."""
        xs: list[float] = []
        ys: list[float] = []
        for i in self.marked:
            x, y = self.origin(i)
            left, top, right, bottom = x - 0.5, y - 0.5, x + w + 0.5, y + h + 0.5
            xs += [left, right, right, left, left, np.nan]
            ys += [top, top, bottom, bottom, top, np.nan]
        return np.array(xs), np.array(ys)

    def _best_cols(self, n: int, h: int, w: int, gap: int, captions: list[str]) -> tuple[int, float]:
        """The columns (rows filled evenly) that show the tiles largest, preferring those that leave the
        captions room side by side; and the tile pitch they give on screen, in pixels."""
        need = _caption_width(captions, self.font())
        # NOTE: the widget's size (its view box follows only later), less the range's padding of 2 % a side
        width, height = max(1.0, (self.width() - 4) * 0.96), max(1.0, (self.height() - 4) * 0.96)
        best = (False, 0.0, n)
        for cols in sorted({-(-n // rows) for rows in range(1, n + 1)}):
            rows = -(-n // cols)
            scale = min(width / (cols * (w + gap)), height / (rows * (h + gap)))
            best = max(best, (scale * (w + gap) >= need, scale, cols))
        return best[2], best[1] * (w + gap)

    def clear_image(self) -> None:
        """No tiles, captions or frames, as before the first :meth:`show_tiles`."""
        super().clear_image()
        for t in self.texts:
            self.removeItem(t)
        self.texts = []
        self.frames.setData([], [])
        self.marked = []
        self.grid = (0, 1, 0, 0, 0)
        self._shown = None

    def origin(self, i: int) -> tuple[float, float]:
        """The top-left corner of tile ``i`` in the plot's coordinates (image pixels)."""
        _, cols, h, w, gap = self.grid
        r, c = divmod(i, cols)
        return c * (w + gap), r * (h + gap)


def _caption_width(captions: list[str], font: QFont) -> float:
    """Pixels the widest line of the HTML captions needs (``<br>`` breaks, tags and entities removed)."""
    metrics = QFontMetrics(font)
    lines = [html.unescape(re.sub(r"<[^>]+>", "", part)) for c in captions for part in re.split(r"<br\s*/?>", c)]
    return max((metrics.horizontalAdvance(line) for line in lines), default=0) + 8


def save_png(widget: QWidget, path: str | Path) -> bool:
    """Write what the widget shows as a PNG (``QWidget.grab``). True when written."""
    return widget.grab().save(str(path), "PNG")


def save_csv(path: str | Path, header: list[str], rows) -> None:
    """Write rows of numbers (or text) under a header line."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)

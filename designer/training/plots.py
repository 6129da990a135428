"""What the training plots share: growing curve buffers, themed plot widgets and run colours."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QSizePolicy

from designer import theme

__all__ = ["RUN_COLORS", "CurveBuffer", "TimedPlotWidget", "make_plot", "style_plot"]

#: One colour per compared run (Tableau's 10, which stay apart for most colour vision).
RUN_COLORS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)


class CurveBuffer:
    """x/y points in preallocated arrays that double when full, so appending stays cheap.

    ``dirty`` says points arrived since the last draw; :meth:`draw` hands the filled part to
    a curve and clears it.
    """

    def __init__(self, capacity: int = 256) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0
        self.dirty = False

    def __len__(self) -> int:
        return self.n

    @property
    def capacity(self) -> int:
        return self._x.size

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    def extend(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64).ravel()
        ys = np.asarray(ys, dtype=np.float64).ravel()
        need = self.n + xs.size
        if need > self._x.size:
            size = self._x.size
            while size < need:
                size *= 2
            for name in ("_x", "_y"):
                grown = np.empty(size, dtype=np.float64)
                grown[: self.n] = getattr(self, name)[: self.n]
                setattr(self, name, grown)
        self._x[self.n : need] = xs
        self._y[self.n : need] = ys
        self.n = need
        self.dirty = True

    def append(self, x: float, y: float) -> None:
        self.extend([x], [y])

    def clear(self) -> None:
        self.n = 0
        self.dirty = True

    def draw(self, curve: pg.PlotDataItem) -> bool:
        """Give the points to ``curve`` if any arrived; True when it drew."""
        if not self.dirty:
            return False
        self.dirty = False
        curve.setData(self.x, self.y)
        return True


class TimedPlotWidget(pg.PlotWidget):
    """A plot widget that adds up the time its paints take, so a caller can keep drawing within a budget."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._paint_seconds = 0.0

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        t0 = time.perf_counter()
        super().paintEvent(event)
        self._paint_seconds += time.perf_counter() - t0

    def take_paint_seconds(self) -> float:
        """Seconds spent painting since the last call."""
        spent, self._paint_seconds = self._paint_seconds, 0.0
        return spent


def style_plot(widget: pg.PlotWidget) -> None:
    """Background, axes and grid in the colours of the current theme."""
    c = theme.colors()
    widget.setBackground(c["base"])
    item = widget.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(c["border"]))
        axis.setTextPen(pg.mkPen(c["muted"]))
    item.titleLabel.setText(item.titleLabel.text, color=c["text"])
    legend = item.legend
    if legend is not None:
        legend.setLabelTextColor(QColor(c["text"]))
        fill = QColor(c["base"])
        fill.setAlpha(200)
        legend.setBrush(pg.mkBrush(fill))
        legend.setPen(pg.mkPen(c["border"]))


def make_plot(title: str, y_label: str, x_label: str = "epoch", legend: str | None = "top") -> TimedPlotWidget:
    """A plot for long runs: peak downsampling, clipped to view, a light grid and an optional legend."""
    widget = TimedPlotWidget()
    item = widget.getPlotItem()
    item.setTitle(title, size="10pt")
    item.setLabel("left", y_label)
    item.setLabel("bottom", x_label)
    item.showGrid(x=False, y=True, alpha=0.15)  # NOTE: x grid lines cost a fifth of a frame
    for name in ("left", "bottom"):
        item.getAxis(name).enableAutoSIPrefix(False)  # NOTE: no "accuracy (x0.001)"
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    item.hideButtons()
    widget.setMinimumHeight(140)
    if legend == "beside":  # NOTE: right of the axes, in the plot's own grid, so it never hides a curve
        item.legend = pg.LegendItem(labelTextSize="8pt", verSpacing=-6)
        item.legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        item.layout.addItem(item.legend, 2, 3)
        item.layout.setAlignment(item.legend, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    elif legend:  # "top" or "bottom" right corner: where a falling or a rising curve is not
        item.addLegend(offset=(-8, 8 if legend == "top" else -8), labelTextSize="8pt")
    style_plot(widget)
    return widget

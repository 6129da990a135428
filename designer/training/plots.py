"""What the training plots share: growing curve buffers, themed plot widgets and run colours."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QSizePolicy

from designer import theme

__all__ = ["RUN_COLORS", "CurveBuffer", "RowLegend", "StillView", "make_plot", "style_plot"]

#: One colour per compared run (Tableau's 10, which stay apart for most colour vision).
RUN_COLORS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)
LEGEND_GAP = 4  # pixels between a legend and the axis or view box next to it


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


class StillView:
    """Keeps a live plot's view still while points arrive, instead of re-fitting it on every frame.

    The x range is the whole run from the start; the y range changes only when the data leave
    it or fill less than :attr:`FILL` of it. Where the values have known bounds (a loss is never
    below 0, an accuracy lies in 0..1), the range reaches exactly to the bound on that side, as
    MATLAB's training plot does: an accuracy plot keeps 0..1 for the whole run and never moves.
    A still view lets pyqtgraph reuse its cached axis pictures and skip re-clipping every curve,
    which is most of a frame's cost (measured: a frame that moves the range costs 3-5 times one
    that does not). Once the person zooms or pans by hand, the view is theirs, also after the run;
    otherwise :meth:`end` fits the whole run.
    """

    FILL = 0.25  # below this share of the y range, the range shrinks to the data
    MARGIN = 0.08  # room above and below the data, as a share of their span
    EDGE = 0.03  # room beyond a known bound, so points on it stay whole
    HEADROOM = 0.3  # extra room on a side the data just outgrew: a rising score needs fewer changes

    def __init__(self, widget: pg.PlotWidget) -> None:
        self.view = widget.getPlotItem().getViewBox()
        self.item = widget.getPlotItem()
        self.active = False
        self.changes = 0  # y-range changes, for tests
        self.floor: float | None = None
        self.ceiling: float | None = None
        self._y: tuple[float, float] | None = None
        self.view.sigRangeChangedManually.connect(self._taken_over)

    def begin(self, x_max: float, floor: float | None = None, ceiling: float | None = None) -> None:
        """A run starts: x shows 0 to ``x_max`` (the run's length), y follows the data.

        ``floor`` and ``ceiling``: the bounds the values cannot pass, where known (see :meth:`set_bounds`).
        """
        self.active = True
        self._y = None
        self.set_bounds(floor, ceiling)
        self.view.disableAutoRange()
        self.view.setXRange(0.0, max(float(x_max), 1e-9), padding=0.02)

    def set_bounds(self, floor: float | None, ceiling: float | None) -> None:
        """The lowest and highest values the data can take (None: no bound on that side)."""
        self.floor, self.ceiling = floor, ceiling

    def follow(self, *arrays: np.ndarray) -> None:
        """Widen or narrow the y range to the finite values of ``arrays`` when they no longer fit it."""
        if not self.active:
            return
        values = [a[np.isfinite(a)] for a in arrays if len(a)]
        values = [v for v in values if v.size]
        if not values:
            return
        lo = min(float(v.min()) for v in values)
        hi = max(float(v.max()) for v in values)
        floor, ceiling = self.floor, self.ceiling
        if self.item.ctrl.logYCheck.isChecked():
            if hi <= 0:
                return
            positive = [v[v > 0] for v in values]
            lo = min(float(v.min()) for v in positive if v.size)
            lo, hi = np.log10(lo), np.log10(hi)
            floor = ceiling = None  # NOTE: a log axis has no 0, and its 1 is no edge
        # NOTE: a bound is used only while the data keep to it (an R² can fall below any floor)
        floor = floor if floor is not None and lo >= floor else None
        ceiling = ceiling if ceiling is not None and hi <= ceiling else None
        lo, hi = (floor if floor is not None else lo), (ceiling if ceiling is not None else hi)
        below = self.EDGE if floor is not None else self.MARGIN
        above = self.EDGE if ceiling is not None else self.MARGIN
        if self._y is not None:
            y0, y1 = self._y
            if y0 <= lo and hi <= y1 and (hi - lo) >= self.FILL * (y1 - y0):
                return
            # NOTE: every change repaints the plot twice (its axis is redrawn), so leave room to grow
            below = self.HEADROOM if lo < y0 and floor is None else below
            above = self.HEADROOM if hi > y1 and ceiling is None else above
        span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
        self._y = (lo - below * span, hi + above * span)
        self.changes += 1
        self.view.setYRange(*self._y, padding=0)

    def end(self) -> None:
        """The run is over: fit everything, and follow the data again (pyqtgraph's auto range)."""
        if self.active:
            self.active = False
            self.view.enableAutoRange()

    def _taken_over(self, *_) -> None:
        self.active = False


class RowLegend(pg.LegendItem):
    """A legend under a plot: its entries side by side, as many to a row as the plot's width takes."""

    SAMPLE = 30  # pixels of an entry's line sample and the gap after it

    def __init__(self, view: pg.ViewBox, **options) -> None:
        super().__init__(**options)
        self._view = view
        # NOTE: never wider than the plot lets it be (a wider legend would widen the plot past its widget and
        # the view box with it); fit() keeps its entries within the view box's width instead
        self.setMinimumWidth(0)
        view.sigResized.connect(self.fit)

    def addItem(self, item, name) -> None:  # noqa: N802 - pyqtgraph's name
        super().addItem(item, name)
        self.fit()

    def removeItem(self, item) -> None:  # noqa: N802 - pyqtgraph's name
        super().removeItem(item)
        self.fit()

    def fit(self, *_) -> None:
        """As many columns as entries of the widest one's width fit the view box's width (one at least)."""
        if not self.items:
            return
        widest = max(label.item.boundingRect().width() for _, label in self.items) + self.SAMPLE
        columns = max(1, min(len(self.items), int(self._view.width() // widest)))
        if columns != self.columnCount:
            self.setColumnCount(columns)
            self.updateGeometry()  # NOTE: pyqtgraph moved it to (0, 0) of the plot: the plot's grid places it again

    def updateSize(self) -> None:  # noqa: N802 - pyqtgraph's name
        super().updateSize()
        self.updateGeometry()  # NOTE: as in fit


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


def make_plot(title: str, y_label: str, x_label: str = "epoch", legend: str | None = "below") -> pg.PlotWidget:
    """A plot for long runs: peak downsampling, clipped to view, a light grid and an optional legend.

    ``legend``: "below" (under the x axis, its entries side by side), "beside" (right of the plot)
    or None. Either way the legend sits in the plot's own grid, outside the data, so it never hides a curve.
    """
    widget = pg.PlotWidget()
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
    # NOTE: the axes (with the grid lines they draw) and the title change only with the view
    # range, but every curve update repaints the area they cover: keep each as a pixmap
    # instead of replaying its drawing (measured: a live frame 7.1 ms -> 5.9 ms).
    for part in (item.getAxis("left"), item.getAxis("bottom"), item.titleLabel):
        part.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    widget.setMinimumHeight(140)
    if legend is not None:
        _add_legend(item, legend)
    style_plot(widget)
    return widget


def _add_legend(item: pg.PlotItem, where: str) -> None:
    """A legend in a cell of the plot item's grid: right of the axes ("beside") or under the x axis ("below").

    NOTE: PlotItem's grid has the title in row 0, the axes and view box in rows 1-3 and columns 0-2;
    row 4 and column 3 are free, and a cell there never overlaps the view box.
    """
    if where not in ("below", "beside"):
        raise ValueError(f"legend must be 'below', 'beside' or None, not {where!r}")
    below = where == "below"
    options = {"labelTextSize": "8pt", "verSpacing": -6}
    item.legend = RowLegend(item.getViewBox(), **options) if below else pg.LegendItem(**options)
    # NOTE: one under the plot may get less than its width (RowLegend.fit then puts fewer entries in a row)
    across = QSizePolicy.Policy.Maximum if below else QSizePolicy.Policy.Fixed
    item.legend.setSizePolicy(across, QSizePolicy.Policy.Fixed)
    item.layout.addItem(item.legend, *((4, 1) if below else (2, 3)))
    if below:
        item.layout.setRowSpacing(3, LEGEND_GAP)
    else:
        item.layout.setColumnSpacing(2, LEGEND_GAP)
    align = Qt.AlignmentFlag.AlignHCenter if below else Qt.AlignmentFlag.AlignLeft
    item.layout.setAlignment(item.legend, Qt.AlignmentFlag.AlignTop | align)

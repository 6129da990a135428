"""A sweep's results: the score against the swept value(s), the chosen point, a table of points, the refit.

Shown in the Runs dock in place of the comparison plots while a sweep is the selected run: a sweep
is one of the project's run folders (made by Train → Sweep… or ``main.py sweep``), so it is where
a person finds it, beside the point runs it opens and the refit it lists. One setting is a plot of
the validation score against the value (a log axis when the values span decades; error bars of the
spread over folds); two are a heat map with each cell's score written in it; more are the table
alone. Every number comes from the sweep's folder (:func:`engine.training.sweep.read_sweep`).
Double-clicking a point asks for its run (or cross-validation) folder to be opened
(:attr:`SweepView.open_requested`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGraphicsRectItem,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.plaintext import escape_rich
from designer.training.dashboard import format_metric, metric_title
from designer.training.plots import make_plot, style_plot
from engine.colormap import colorize
from engine.errors import NetDesignerError
from engine.tasks import score_metric
from engine.training.events import PointDone
from engine.training.sweep import SweepResults, read_sweep
from engine.training.sweep_plan import value_text

__all__ = ["CELL_FONT_PX", "SweepView", "axis_positions", "sweep_about", "sweep_texts"]

#: the heat map's cell text size, in pixels (legible: at least 9)
CELL_FONT_PX = 11
LOG_SPAN = 100.0  # values whose largest / smallest (above 0) reach this get a log axis
_CHOSEN = "#d62728"
_POINT = "#4e79a7"
_ROLE_PATH = Qt.ItemDataRole.UserRole


# ---------------------------------------------------------------------- words
def _score_text(p: PointDone) -> str:
    if p.score is None:
        return "–"
    return f"{p.score:.3f}" + (f" ± {p.spread:.3f}" if p.spread is not None else "")


def title_of(results: SweepResults) -> str:
    """``Sweep: weight_decay (4 points, 5 folds)``; ``Sweep: lr × batch_size (10 of 16 points)``."""
    names = " × ".join(s.short for s in results.settings) or "no settings"
    grid = math.prod(len(s.values) for s in results.settings) if results.settings else 0
    points = f"{results.planned} of {grid} points" if results.planned < grid else (
        f"{results.planned} point{'s' if results.planned != 1 else ''}")
    folds = f", {results.folds} folds" if results.folds else ""
    return f"Sweep: {names} ({points}{folds})"


def _refit_text(results: SweepResults) -> str:
    test = (results.refit or {}).get("test") or {}
    return " · ".join(f"test {metric_title(k)} {format_metric(k, v)}" for k, v in test.items() if v is not None)


def chosen_text(results: SweepResults) -> str:
    """``chosen weight_decay=0.001: val accuracy 0.953 ± 0.012; refit test accuracy 95.0 %``."""
    chosen = results.chosen
    if chosen is None:
        done = len(results.points)
        return "no point finished with a score" if done else "no point has finished yet"
    text = f"chosen {chosen.label}: val {metric_title(results.metric)} {_score_text(chosen)}"
    refit = _refit_text(results)
    return text + (f"; refit {refit}" if refit else "")


def sweep_texts(record) -> tuple[str, str] | None:
    """A run record's title and score line in the Runs dock when it is a sweep; None otherwise."""
    if record.kind != "sweep":
        return None
    try:
        results = read_sweep(record)
    except NetDesignerError as exc:
        return "Sweep", f"its results cannot be read: {exc}"
    return title_of(results), chosen_text(results)


def sweep_about(record) -> list[str]:
    """The details lines of a sweep: one per point, the choice and the refit."""
    try:
        results = read_sweep(record)
    except NetDesignerError as exc:
        return [str(exc)]
    metric = metric_title(results.metric)
    lines = [f"{title_of(results)}: validation {metric}" + (" (mean ± spread over folds)" if results.folds else "")]
    for p in results.points:
        mark = "* " if p.index == results.best else ""
        why = f" ({p.status}{': ' + p.message if p.message else ''})" if p.status != "finished" else ""
        lines.append(f"{mark}point {p.index}: {p.label}: {_score_text(p)}{why}")
    lines.append(chosen_text(results))
    return lines


def axis_positions(values: Sequence[Any]) -> tuple[list[float], list[str], bool]:
    """Where each swept value sits on the x axis, its tick label, and whether the axis is logarithmic.

    Numbers spanning :data:`LOG_SPAN` or more sit at their log10 (a 0 one decade below the smallest
    value above it, labelled 0); other numbers at themselves; anything else (words, true/false) at
    0, 1, 2... in the order given.
    """
    labels = [value_text(v) for v in values]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numbers:
        return [float(i) for i in range(len(values))], labels, False
    above = [float(v) for v in values if v > 0]
    if above and all(v >= 0 for v in values) and max(above) / min(above) >= LOG_SPAN:
        zero = math.log10(min(above)) - 1.0
        return [math.log10(v) if v > 0 else zero for v in values], labels, True
    return [float(v) for v in values], labels, False


# ---------------------------------------------------------------------- the view
class SweepView(QWidget):
    """One sweep's results (see the module docstring); :meth:`show_sweep` fills it from a run record.

    Signals:
        open_requested(object): the Path of a point's run (or cross-validation) folder, or the refit's,
            double-clicked in the table.
    """

    open_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweep_view")
        self.results: SweepResults | None = None
        self.points_item: pg.ScatterPlotItem | None = None
        self.error_bars: pg.ErrorBarItem | None = None
        self.chosen_item: pg.ScatterPlotItem | None = None
        self.heat: pg.ImageItem | None = None
        self.cells: dict[tuple[int, int], pg.TextItem] = {}  # (row, column) of the heat map -> its text
        self.chosen_cell: QGraphicsRectItem | None = None
        self.x_log = False
        self._build()

    def _build(self) -> None:
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plot = make_plot("Validation score", "score", x_label="value", legend=None)  # NOTE: it would hide points
        item = self.plot.getPlotItem()
        item.setMouseEnabled(x=False, y=False)
        item.setDownsampling(auto=False)
        item.setClipToView(False)
        self.note = QLabel()
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setWordWrap(True)
        self.note.setProperty("role", "muted")
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("Double-click a point to open its run (or its folds) in the Runs list")
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_row(row))
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plot)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(split, 1)
        layout.addWidget(self.note)

    # ------------------------------------------------------------------ filling
    def show_sweep(self, record) -> SweepResults | None:
        """Show the sweep in ``record`` (a run record of kind ``sweep``), read from its folder's files."""
        try:
            self.results = results = read_sweep(record)
        except NetDesignerError as exc:
            self.results = None
            self._clear_plot()
            self.table.setRowCount(0)
            self.header.setText(f"This sweep's results cannot be read: {exc}")
            return None
        status = "" if results.status == "finished" else f" · {results.status}"
        self.header.setText(f"{title_of(results)}{status} · {chosen_text(results)}")
        self._clear_plot()
        if len(results.settings) == 1:
            self._draw_line(results)
        elif len(results.settings) == 2:
            self._draw_heat(results)
        self.plot.setVisible(len(results.settings) in (1, 2))
        self._fill_table(results)
        self.note.setText(self._note(results))
        return results

    def _note(self, results: SweepResults) -> str:
        parts = []
        if len(results.settings) > 2:
            parts.append(f"A plot shows one or two settings; this sweep has {len(results.settings)}: see the table.")
        if results.folds:
            parts.append(f"Each score is the mean over {results.folds} folds; ± and the bars are the spread "
                         "(standard deviation) of the folds' scores.")
        else:
            parts.append("Each score is the validation split's, after the last epoch.")
        parts.append("Double-click a point to open its run in the Runs list.")
        return " ".join(parts)

    def _clear_plot(self) -> None:
        item = self.plot.getPlotItem()
        item.clear()
        self.points_item = self.error_bars = self.chosen_item = self.heat = self.chosen_cell = None
        self.cells = {}
        self.x_log = False
        for name in ("left", "bottom"):
            item.getAxis(name).setTicks(None)
        item.showGrid(x=False, y=True, alpha=0.15)
        item.enableAutoRange()

    def _draw_line(self, results: SweepResults) -> None:
        """One setting: each point's score at its value, error bars over folds, the chosen point starred."""
        setting = results.settings[0]
        xs, labels, self.x_log = axis_positions(setting.values)
        where = {_key(v): x for v, x in zip(setting.values, xs)}
        shown = [p for p in results.points if p.score is not None and _key(p.values.get(setting.key)) in where]
        x = np.array([where[_key(p.values[setting.key])] for p in shown], dtype=float)
        y = np.array([p.score for p in shown], dtype=float)
        item = self.plot.getPlotItem()
        order = np.argsort(x)
        if len(x) > 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in setting.values):
            item.plot(x[order], y[order], pen=pg.mkPen(_POINT, width=1.5))
        self.points_item = pg.ScatterPlotItem(x, y, size=9, brush=pg.mkBrush(_POINT), pen=pg.mkPen(None))
        item.addItem(self.points_item)
        spread = np.array([p.spread if p.spread is not None else 0.0 for p in shown], dtype=float)
        if results.folds and len(shown):
            self.error_bars = pg.ErrorBarItem(x=x, y=y, top=spread, bottom=spread, beam=_beam(xs),
                                              pen=pg.mkPen(_POINT, width=1.5))
            item.addItem(self.error_bars)
        chosen = results.chosen
        if chosen is not None and _key(chosen.values.get(setting.key)) in where:
            self.chosen_item = pg.ScatterPlotItem([where[_key(chosen.values[setting.key])]], [chosen.score],
                                                  symbol="star", size=20, brush=pg.mkBrush(_CHOSEN),
                                                  pen=pg.mkPen(None))
            item.addItem(self.chosen_item)
        item.getAxis("bottom").setTicks([list(zip(xs, labels))])
        item.setLabel("bottom", escape_rich(setting.short + (" (log scale)" if self.x_log else "")))
        item.setLabel("left", escape_rich(f"validation {metric_title(results.metric)}"))
        item.setTitle(escape_rich(f"Validation {metric_title(results.metric)} against {setting.short}")
                      + f" (<span style='color:{_CHOSEN}'>★</span> chosen)", size="10pt")
        pad = _beam(xs) * 2.5 if len(xs) > 1 else 0.5  # NOTE: half the smallest gap between values
        item.setXRange(min(xs) - pad, max(xs) + pad, padding=0)
        if len(shown):  # NOTE: the error bars' ends inside the view too
            item.setYRange(float((y - spread).min()), float((y + spread).max()), padding=0.1)
        style_plot(self.plot)

    def _draw_heat(self, results: SweepResults) -> None:
        """Two settings: a cell per pair of values (first setting across, second up), its score written in it."""
        across, up = results.settings
        grid = np.full((len(up.values), len(across.values)), np.nan)
        points: dict[tuple[int, int], PointDone] = {}
        cols = {_key(v): j for j, v in enumerate(across.values)}
        rows = {_key(v): i for i, v in enumerate(up.values)}
        for p in results.points:
            cell = (rows.get(_key(p.values.get(up.key))), cols.get(_key(p.values.get(across.key))))
            if None not in cell:
                points[cell] = p
                if p.score is not None:
                    grid[cell] = p.score
        shade = _shades(grid, score_metric(results.metric).higher_is_better)
        self.heat = pg.ImageItem(self._colours(grid, shade), axisOrder="row-major")
        item = self.plot.getPlotItem()
        item.addItem(self.heat)
        item.showGrid(x=False, y=False)
        font = QFont()
        font.setPixelSize(CELL_FONT_PX)
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                p = points.get((i, j))
                text = _score_text(p) if p is not None and p.score is not None else (p.status if p else "not run")
                bright = np.isfinite(grid[i, j]) and shade[i, j] > 0.55  # NOTE: the ramp brightens as it rises
                cell = pg.TextItem(text.replace(" ± ", "\n± "), color="#111111" if bright else "#ffffff",
                                   anchor=(0.5, 0.5))
                cell.setFont(font)
                cell.setPos(j + 0.5, i + 0.5)
                item.addItem(cell)
                self.cells[(i, j)] = cell
        chosen = results.chosen
        where = next((c for c, p in points.items() if chosen is not None and p.index == chosen.index), None)
        if where is not None:
            self.chosen_cell = QGraphicsRectItem(QRectF(where[1], where[0], 1, 1))
            pen = QPen(QColor(_CHOSEN), 3)
            pen.setCosmetic(True)
            self.chosen_cell.setPen(pen)
            self.chosen_cell.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            item.addItem(self.chosen_cell)
        item.getAxis("bottom").setTicks([[(j + 0.5, value_text(v)) for j, v in enumerate(across.values)]])
        item.getAxis("left").setTicks([[(i + 0.5, value_text(v)) for i, v in enumerate(up.values)]])
        item.setLabel("bottom", escape_rich(across.short))
        item.setLabel("left", escape_rich(up.short))
        item.setTitle(escape_rich(f"Validation {metric_title(results.metric)}: {across.short} × {up.short} "
                                  "(brighter is better, the chosen cell outlined)"), size="10pt")
        item.setXRange(0, grid.shape[1], padding=0.02)
        item.setYRange(0, grid.shape[0], padding=0.02)
        style_plot(self.plot)

    @staticmethod
    def _colours(grid: np.ndarray, shade: np.ndarray) -> np.ndarray:
        """The cells as RGBA through the heat ramp (worst to best shown); no score is the theme's border grey."""
        rgb = colorize(shade)
        out = np.empty(grid.shape + (4,), dtype=np.uint8)
        out[..., :3] = rgb
        out[..., 3] = 255
        grey = QColor(theme.colors()["border"])
        out[~np.isfinite(grid)] = (grey.red(), grey.green(), grey.blue(), 255)
        return out

    def _fill_table(self, results: SweepResults) -> None:
        """A row per point (value(s), score ± spread, status), then the refit; the chosen point starred."""
        names = [s.short for s in results.settings]
        columns = ["point", *names, f"validation {metric_title(results.metric)}", "status"]
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        refit = results.refit_folder()
        self.table.setRowCount(len(results.points) + (1 if refit is not None else 0))
        for row, p in enumerate(results.points):
            chosen = p.index == results.best
            status = p.status + (f": {p.message}" if p.message and p.status != "finished" else "")
            cells = [f"★ {p.index}" if chosen else str(p.index),
                     *[value_text(p.values.get(s.key)) for s in results.settings], _score_text(p), status]
            self._set_row(row, cells, results.point_folder(p), bold=chosen)
        if refit is not None:
            chosen = results.chosen
            cells = ["refit", *[value_text(chosen.values.get(s.key)) if chosen else "" for s in results.settings],
                     _refit_text(results) or "no test score", "trained on training + validation data"]
            self._set_row(len(results.points), cells, refit)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def _set_row(self, row: int, cells: list[str], folder: Path | None, bold: bool = False) -> None:
        for col, text in enumerate(cells):
            cell = QTableWidgetItem(text)
            cell.setData(_ROLE_PATH, str(folder) if folder is not None else None)
            if bold:
                font = cell.font()
                font.setBold(True)
                cell.setFont(font)
            self.table.setItem(row, col, cell)

    # ------------------------------------------------------------------ reading it back (tests) and opening
    def row_texts(self) -> list[list[str]]:
        """The table as shown: a list of rows of cell texts."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def open_row(self, row: int) -> Path | None:
        """Ask for the folder of the table's ``row`` to be opened (a point's run, or the refit)."""
        cell = self.table.item(row, 0)
        folder = cell.data(_ROLE_PATH) if cell is not None else None
        if folder is None:
            return None
        self.open_requested.emit(Path(folder))
        return Path(folder)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.ApplicationPaletteChange:
            style_plot(self.plot)


def _key(value: Any) -> Any:
    """A swept value as a dictionary key: 1 and 1.0 are one, true is not 1."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("number", float(value))
    return (type(value).__name__, value)


def _beam(xs: Sequence[float]) -> float:
    """The error bars' cap width: a fifth of the smallest gap between values."""
    gaps = np.diff(np.sort(np.asarray(xs, dtype=float)))
    gaps = gaps[gaps > 0]
    return float(gaps.min()) / 5 if gaps.size else 0.2


def _shades(grid: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Where each score lies between the worst and the best shown, 0..1 (0.5 when all are equal; 0 for none)."""
    finite = grid[np.isfinite(grid)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    shade = (grid - low) / (high - low) if high > low else np.full_like(grid, 0.5)
    if not higher_is_better:
        shade = 1.0 - shade
    return np.where(np.isfinite(grid), shade, 0.0)

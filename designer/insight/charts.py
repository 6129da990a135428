"""The chart views of the Insight dock: gradient flow per layer, and the epoch's decisions.

Bars, images and text items are made once and updated in place (``setOpts`` / ``setImage``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer.insight.confusion import (
    QWIDGETSIZE_MAX,
    AccuracyTable,
    ConfusionMatrix,
    cropped,
    per_class_accuracy,
)
from designer.insight.images import PALETTE, WRONG
from designer.insight.maps import class_name
from designer.insight.samples import HardestGallery
from designer.training.plots import make_plot

__all__ = ["DecisionsView", "GradientView", "region_colours"]


def _log10(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(v) & (v > 0), np.log10(np.where(v > 0, v, 1.0)), np.nan)


class _Bars:
    """One bar chart on a log scale (bars from the lowest value up), updated in place."""

    def __init__(self, title: str, y_label: str, colour: str) -> None:
        self.widget = make_plot(title, y_label, "", legend=None)
        self.widget.getPlotItem().setClipToView(False)
        self.bars = pg.BarGraphItem(x=[], height=[], y0=[], width=0.7, brush=colour, pen=None)
        self.widget.addItem(self.bars)
        self._names: list[str] = []

    def show(self, names: list[str], values) -> None:
        logs = _log10(values)
        finite = logs[np.isfinite(logs)]
        base = math.floor(finite.min()) - 0.5 if finite.size else 0.0
        logs = np.where(np.isfinite(logs), logs, base)
        x = np.arange(len(names), dtype=float)
        self.bars.setOpts(x=x, height=logs - base, y0=np.full(len(names), base))
        if names != self._names:
            self._names = list(names)
            self.widget.getPlotItem().getAxis("bottom").setTicks([list(enumerate(names))])
        self.widget.getPlotItem().getViewBox().autoRange(padding=0.05)

    def clear(self) -> None:
        """No bars and no layer names, as at the start."""
        self.bars.setOpts(x=[], height=[], y0=[])
        self._names = []
        self.widget.getPlotItem().getAxis("bottom").setTicks(None)


class GradientView(QWidget):
    """Per-layer gradient norm and update/weight ratio: vanishing or exploding gradients show at once."""

    title = "Gradient flow"
    empty_text = "Gradient size per layer, from the input side (left) to the output (right)."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel(self.empty_text)
        self.header.setWordWrap(True)
        self.grad = _Bars("Gradient norm", "log10 ‖grad‖", "#2f6fde")
        self.ratio = _Bars("Update / weight (healthy near 1e-3)", "log10 ratio", "#e8730c")
        row = QHBoxLayout()
        row.addWidget(self.grad.widget)
        row.addWidget(self.ratio.widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addLayout(row, 1)
        self.data: dict[str, Any] | None = None

    def update_probes(self, data: dict[str, Any]) -> None:
        g = data.get("gradients")
        if g is None or not len(g["layers"]):
            return
        self.data = g
        self.grad.show(g["layers"], g["grad_norm"])
        if g.get("update_ratio") is not None:
            self.ratio.show(g["layers"], g["update_ratio"])
        frozen = " ❄ frozen: not trained, so no gradient." if any(g.get("frozen", ())) else ""
        self.header.setText(f"Gradient size per layer at step {data.get('step')}, input side left (log scale).{frozen}")

    def clear(self) -> None:
        """Back to the empty charts of the start."""
        self.data = None
        self.grad.clear()
        self.ratio.clear()
        self.header.setText(self.empty_text)

    def csv(self) -> tuple[list[str], list] | None:
        g = self.data
        if g is None:
            return None
        ratio = g.get("update_ratio")
        ratio = ratio if ratio is not None else [math.nan] * len(g["layers"])
        return ["layer", "grad_norm", "weight_norm", "update_ratio"], zip(g["layers"], g["grad_norm"], g["weight_norm"], ratio)


OTHERS = 0.42  # the least share of the Decisions view's width left to the decision plot or the hardest samples


def region_colours(probs: np.ndarray) -> np.ndarray:
    """(S, S, K) class probabilities as RGBA uint8: the winner's colour, more opaque when surer."""
    p = np.asarray(probs, dtype=np.float32)
    if p.shape[-1] == 1:
        p = np.concatenate([1.0 - p, p], axis=-1)
    k = p.shape[-1]
    win = p.argmax(-1)
    sure = (p.max(-1) - 1.0 / k) / (1.0 - 1.0 / k)
    rgba = np.empty(p.shape[:2] + (4,), dtype=np.uint8)
    rgba[..., :3] = PALETTE[win % len(PALETTE)]
    rgba[..., 3] = (40 + 200 * np.clip(sure, 0, 1)).astype(np.uint8)
    return rgba


class DecisionsView(QWidget):
    """After each epoch: the confusion matrix with the accuracy per class, the decision regions or fitted
    curve, and the hardest validation samples.

    Selecting a row of the hardest samples' table rings that sample's point in the decision plot.
    """

    title = "Decisions"
    empty_text = "How the network decides on the validation data appears here after each epoch."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel(self.empty_text)
        self.header.setWordWrap(True)
        self.confusion = ConfusionMatrix()
        self.accuracy = AccuracyTable()
        self.regions = make_plot("Decision regions", "x2", "x1", legend=None)
        self.region_image = pg.ImageItem(axisOrder="row-major")
        self.points = pg.ScatterPlotItem(size=5, pen=pg.mkPen("k", width=0.5))
        self.fit = pg.PlotDataItem(pen=pg.mkPen("#e8730c", width=2))
        # NOTE: above the points; a ring, so the point's own class colour still shows inside it
        self.highlight = pg.ScatterPlotItem(size=16, pen=pg.mkPen(WRONG, width=2.5), brush=None)
        for item in (self.region_image, self.points, self.fit, self.highlight):
            self.regions.addItem(item)
        self.hardest = QTableWidget(0, 2)
        self.hardest.setHorizontalHeaderLabels(["sample", "loss"])
        self.hardest.setToolTip("The validation samples with the highest loss, hardest first: "
                                "select one to find it in the decision plot")
        self.hardest.verticalHeader().setVisible(False)
        self.hardest.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.hardest.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.hardest.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.hardest.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.hardest.horizontalHeader().setStretchLastSection(True)
        self.hardest.setMaximumWidth(150)
        self.hardest.itemSelectionChanged.connect(self._on_hardest_selected)
        self.gallery = HardestGallery()
        self.tables = QWidget()  # the accuracy per class above the hardest samples' table
        column = QVBoxLayout(self.tables)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.accuracy, 1)
        column.addWidget(self.hardest, 1)
        column.addStretch(0)
        row = QHBoxLayout()
        row.addWidget(self.confusion, 10)  # NOTE: as wide as the matrix needs (see _fit_confusion), the rest shared
        row.addWidget(self.tables)
        row.addWidget(self.regions, 3)
        row.addWidget(self.gallery, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addLayout(row, 1)
        self.data: dict[str, Any] | None = None
        self._points_xy: np.ndarray | None = None  # (N, 2): each validation sample's point in the decision plot
        for part in (self.regions, self.gallery):
            part.hide()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_confusion()

    def _fit_confusion(self) -> None:
        """The matrix no wider than it needs at this height, leaving the parts beside it OTHERS of the width
        unless the counts need more: the rest goes to them."""
        if self.confusion.counts is None:
            return
        others = self.regions.isVisibleTo(self) or self.gallery.isVisibleTo(self)
        room = int(self.width() * (1.0 - OTHERS)) - self.tables.width() if others else self.width()
        # NOTE: the counts' room first (legible numbers), then the others' share, then square cells
        self.confusion.setMaximumWidth(max(self.confusion.least_width(),
                                           min(room, self.confusion.wanted_width(self.confusion.height()))))

    def update_insight(self, data: dict[str, Any]) -> None:
        self.data = data
        self.header.setText(f"How the network decides on the validation data after epoch {data.get('epoch')}.")
        if "confusion" in data:
            names = data["confusion"].get("classes")
            counts = cropped(data["confusion"]["matrix"], names)
            self.confusion.show_counts(counts, names)
            self.accuracy.show_counts(counts, names)
        for part in (self.confusion, self.accuracy):
            part.setVisible("confusion" in data)
        self._points_xy = None
        if "decision_grid" in data:
            self._show_grid(data["decision_grid"])
        elif "regression_curve" in data:
            self._show_curve(data["regression_curve"])
        h = data.get("hardest")
        pictures = h is not None and h.get("images") is not None and len(h["images"]) > 0
        listed = h is not None and not pictures
        self.gallery.setVisible(pictures)
        self.hardest.setVisible(listed)
        self.tables.setVisible(listed or "confusion" in data)
        if pictures:
            self.layout().activate()  # NOTE: the gallery lays its tiles out for the size it has now
            self.gallery.show_hardest(h)
        if h is not None:
            self._fill_hardest(h)
        self._fit_confusion()

    def clear(self) -> None:
        """Back to the view of the start: an empty matrix and tables, no decision plot or hardest samples."""
        self.data = None
        self._points_xy = None
        self.header.setText(self.empty_text)
        self.confusion.clear_counts()
        self.confusion.setMaximumWidth(QWIDGETSIZE_MAX)  # NOTE: the width _fit_confusion gave the old counts
        self.accuracy.clear_counts()
        self.region_image.clear()
        for item in (self.points, self.fit, self.highlight):
            item.clear()
        self.hardest.setRowCount(0)
        self.gallery.clear()
        for part in (self.confusion, self.accuracy, self.hardest, self.tables):
            part.show()
        for part in (self.regions, self.gallery):
            part.hide()

    def _fill_hardest(self, h: dict[str, Any]) -> None:
        """The hardest samples' table; the row selected stays selected and its (new) sample ringed."""
        self.hardest.blockSignals(True)
        self.hardest.setRowCount(len(h["indices"]))
        for r, (i, loss) in enumerate(zip(h["indices"], h["losses"])):
            self.hardest.setItem(r, 0, QTableWidgetItem(str(int(i))))
            self.hardest.setItem(r, 1, QTableWidgetItem(f"{float(loss):.4g}"))
        self.hardest.blockSignals(False)
        self._on_hardest_selected()

    def selected_sample(self) -> int | None:
        """The validation sample of the hardest samples' row selected, or None."""
        rows = self.hardest.selectionModel().selectedRows()
        if not rows or self.data is None or self.data.get("hardest") is None:
            return None
        indices = self.data["hardest"]["indices"]
        r = rows[0].row()
        return int(indices[r]) if r < len(indices) else None

    def _on_hardest_selected(self) -> None:
        """Ring the selected sample's point in the decision plot (nothing when there is no such plot)."""
        i = self.selected_sample()
        xy = self._points_xy
        if i is None or xy is None or not 0 <= i < len(xy):
            self.highlight.setData(pos=np.zeros((0, 2)))
            return
        self.highlight.setData(pos=xy[i: i + 1])

    def _show_grid(self, g: dict[str, Any]) -> None:
        (x0, x1), (y0, y1) = g["x_range"], g["y_range"]
        self.region_image.setImage(region_colours(g["probs"]), autoLevels=False, levels=(0, 255))
        self.region_image.setRect(x0, y0, x1 - x0, y1 - y0)
        if g.get("x") is not None:
            labels = g.get("labels")
            labels = np.zeros(len(g["x"]), int) if labels is None else np.asarray(labels, int)
            brushes = [pg.mkBrush(*PALETTE[i % len(PALETTE)]) for i in labels]
            self._points_xy = np.asarray(g["x"], dtype=float)[:, :2]
            self.points.setData(pos=self._points_xy, brush=brushes)
        # NOTE: short titles: a plot is never narrower than its title
        self.regions.getPlotItem().setTitle("Decision regions", size="10pt")
        self.regions.setToolTip("The class the network picks at each point of the plane (stronger colour: surer); "
                                "the points are the validation data")
        self.regions.show()

    def _show_curve(self, c: dict[str, Any]) -> None:
        ys = np.asarray(c["ys"])
        self.fit.setData(np.asarray(c["xs"]), ys[:, 0] if ys.ndim == 2 else ys)
        if c.get("y") is not None:
            y = np.asarray(c["y"]).reshape(len(c["y"]), -1)[:, 0]
            self._points_xy = np.column_stack([np.asarray(c["x"], dtype=float).reshape(-1), y.astype(float)])
            self.points.setData(pos=self._points_xy, brush=pg.mkBrush(47, 111, 222, 160))
        self.regions.getPlotItem().setTitle("Fitted curve", size="10pt")
        self.regions.setToolTip("The network's output across the input's range; the points are the validation data")
        self.regions.show()

    def csv(self) -> tuple[list[str], list] | None:
        """The confusion matrix or fitted curve, then the hardest samples: one table per part, the
        first one's header as the file's header and the next one after a blank row."""
        d = self.data
        if d is None:
            return None
        parts = [t for t in (_confusion_rows(d), _curve_rows(d), _hardest_rows(d)) if t]
        if not parts:
            return ["validation_sample", "loss"], []
        rows: list[list] = list(parts[0][1:])
        for part in parts[1:]:
            rows += [[], *part]
        return parts[0][0], rows


def _confusion_rows(d: dict[str, Any]) -> list[list]:
    if "confusion" not in d:
        return []
    c = d["confusion"]
    m = np.asarray(c["matrix"])
    names = [class_name(i, c.get("classes")) for i in range(len(m))]
    acc = per_class_accuracy(m)
    return [["true \\ predicted", *names, "accuracy"]] + [
        [names[i], *m[i].tolist(), float(acc[i])] for i in range(len(m))]


def _curve_rows(d: dict[str, Any]) -> list[list]:
    if "regression_curve" not in d or "confusion" in d:
        return []
    c = d["regression_curve"]
    ys = np.asarray(c["ys"]).reshape(len(c["xs"]), -1)[:, 0]
    return [["x", "fitted_y"]] + [[x, y] for x, y in zip(c["xs"], ys)]


def _hardest_rows(d: dict[str, Any]) -> list[list]:
    """The hardest samples with their loss, and the true and predicted class of those with pictures."""
    h = d.get("hardest")
    if h is None:
        return []
    names = h.get("classes")
    labels = [[class_name(int(c), names) for c in h[k]] for k in ("true", "predicted") if h.get(k) is not None]
    rows = [["validation_sample", "loss"] + (["true", "predicted"] if len(labels) == 2 else [])]
    for r, (i, loss) in enumerate(zip(h["indices"], h["losses"])):
        extra = [lab[r] if r < len(lab) else "" for lab in labels] if len(labels) == 2 else []
        rows.append([int(i), float(loss), *extra])
    return rows

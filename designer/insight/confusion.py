"""The confusion matrix of the Decisions view: counts legible in their cells, and accuracy per class.

The counts are drawn in the widget's own font or larger, never smaller: their size follows the
cells' size on screen (again after every resize), and when the cells are too small even for the
widget's font the counts are hidden and the matrix says so, rather than drawing them overlapped.
Per-class accuracy is a table beside the matrix, computed from the very counts the matrix shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontInfo, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from designer.insight.images import ImagePlot
from designer.insight.maps import class_name

__all__ = ["AccuracyTable", "ConfusionMatrix", "cropped", "per_class_accuracy"]

GROWTH = 1.6  # the counts grow with their cells up to this many times the widget's font
FILL = 0.45  # a count's height as a share of its cell's height, when the cells are large
WIDEST = 1.6  # cells are at most this many times wider than tall
PAD = 2  # pixels left free round a count inside its cell
QWIDGETSIZE_MAX = 16_777_215  # Qt's "no limit" for a widget's size
SCROLL_ROWS = 8  # an accuracy table longer than this may need its scroll bar in a small dock
TITLE = "Confusion matrix"
TOOLTIP = ("Confusion matrix: each row is a true class, each column the class predicted; "
           "a cell's colour is its share of the row")


def per_class_accuracy(matrix) -> np.ndarray:
    """Each class's share of its samples predicted right: the diagonal over each row's sum (row = true class).

    NaN for a class with no samples (an empty row): it has no accuracy, not 0 %.
    """
    m = np.asarray(matrix, dtype=np.float64)
    totals = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diagonal(m) / np.where(totals > 0, totals, 1.0), np.nan)


def cropped(matrix, names: list[str] | None) -> np.ndarray:
    """The matrix without the rows and columns of outputs beyond the data's classes, when none of them is used."""
    m = np.asarray(matrix)
    k = len(names or ())
    if k and k < len(m) and not m[k:].any() and not m[:, k:].any():
        return m[:k, :k]  # NOTE: a network with more outputs than the data has classes
    return m


class ConfusionMatrix(ImagePlot):
    """Row-normalized colours (the share of each true class predicted as each class) with the counts written in.

    The count items are made when the number of classes changes, never per epoch.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(TITLE, axes=True, parent=parent)
        item = self.getPlotItem()
        item.setLabel("left", "true class")
        item.setLabel("bottom", "predicted class")
        # NOTE: cells may be wider than tall (a table, not a picture): the counts then fit in fewer rows of pixels
        item.getViewBox().setAspectLocked(False)
        self.setMinimumWidth(180)  # NOTE: the plot item's own least width (axis and title): it would overflow
        self.setToolTip(TOOLTIP)
        self.texts: list[pg.TextItem] = []
        self.counts: np.ndarray | None = None
        self.numbers_shown = True
        self.names: list[str] = []  # on the axes
        item.getViewBox().sigTransformChanged.connect(self.fit_numbers)

    def show_counts(self, counts: np.ndarray, names: list[str] | None) -> None:
        """Draw ``counts`` (K, K), row = true class, with class ``names`` (or numbers) on the axes."""
        m = np.asarray(counts)
        k = m.shape[0]
        rows = m / np.maximum(m.sum(1, keepdims=True), 1)
        self.show_image(rows.astype(np.float32), levels=(0.0, 1.0), cmap=pg.colormap.get("viridis"))
        if len(self.texts) != k * k:
            for t in self.texts:
                self.removeItem(t)
            self.texts = [pg.TextItem(anchor=(0.5, 0.5)) for _ in range(k * k)]
            for t in self.texts:
                self.addItem(t)
        self.names = [class_name(i, names) for i in range(k)]
        for axis in ("left", "bottom"):
            self.getPlotItem().getAxis(axis).setTicks([[(i + 0.5, name) for i, name in enumerate(self.names)]])
        for idx, t in enumerate(self.texts):
            r, col = divmod(idx, k)
            t.setText(str(int(m[r, col])))
            t.setColor((0, 0, 0) if rows[r, col] > 0.6 else (255, 255, 255))
            t.setPos(col + 0.5, r + 0.5)
        self.counts = m
        self.fit_numbers()

    def clear_counts(self) -> None:
        """No matrix, as before the first :meth:`show_counts`: no colours, counts or class names."""
        self.clear_image()
        for t in self.texts:
            self.removeItem(t)
        self.texts = []
        self.counts = None
        self.names = []
        for axis in ("left", "bottom"):
            self.getPlotItem().getAxis(axis).setTicks(None)
        self.numbers_shown = True
        self.getPlotItem().setTitle(TITLE, size="9pt")
        self.setToolTip(TOOLTIP)

    def least_width(self) -> int:
        """The width at which the counts just fit their cells side by side in the widget's font."""
        if self.counts is None:
            return self.minimumWidth()
        widest = max((str(int(v)) for v in self.counts.reshape(-1)), key=len)
        cell = QFontMetrics(self.font()).horizontalAdvance(widest) + 2 * PAD + 2
        return max(self.minimumWidth(), int(len(self.counts) * cell + self.getPlotItem().getAxis("left").width() + 8))

    def wanted_width(self, height: int) -> int:
        """The width that gives square cells at ``height`` pixels, or cells just wide enough for the counts
        in the widget's font when those are wider (up to WIDEST times their height)."""
        if self.counts is None:
            return self.minimumWidth()
        item = self.getPlotItem()
        k = len(self.counts)
        cell_h = max(height - item.getAxis("bottom").height() - item.titleLabel.height() - 8, 20) / k
        metrics = QFontMetrics(self.font())
        widest = max((str(int(v)) for v in self.counts.reshape(-1)), key=len)
        names = max((metrics.horizontalAdvance(name) for name in self.names), default=0)
        need = max(metrics.horizontalAdvance(widest) + 2 * PAD, names + 6) + 2
        cell_w = min(max(cell_h, need), WIDEST * cell_h)
        return max(self.minimumWidth(), int(k * cell_w + item.getAxis("left").width() + 8))

    def cell_pixels(self) -> tuple[float, float]:
        """The width and height of one cell on screen, in pixels."""
        px, py = self.getPlotItem().getViewBox().viewPixelSize()
        return 1.0 / max(px, 1e-9), 1.0 / max(py, 1e-9)

    def fit_numbers(self, *_: Any) -> None:
        """Size the counts' font to the cells: from the widget's font up to GROWTH times it; hide them if none fits."""
        if self.counts is None or not self.texts:
            return
        cell = self.cell_pixels()
        widest = max((t.textItem.toPlainText() for t in self.texts), key=len)
        base = QFont(self.font())
        base_px = QFontInfo(base).pixelSize()
        font = QFont(base)
        font.setPixelSize(int(np.clip(min(cell) * FILL, base_px, base_px * GROWTH)))
        while font.pixelSize() > base_px and not _fits(font, widest, *cell):
            font.setPixelSize(font.pixelSize() - 1)
        shown = _fits(font, widest, *cell)
        for t in self.texts:
            t.setFont(font)
            t.setVisible(shown)
        if shown == self.numbers_shown:
            return
        self.numbers_shown = shown
        # NOTE: the title row stays (same height either way), so hiding the counts cannot change the cells' size;
        # its text stays short, since a plot item is never narrower than its title
        self.getPlotItem().setTitle(TITLE if shown else "counts hidden", size="9pt")
        self.setToolTip(TOOLTIP if shown else TOOLTIP + ". The counts are hidden: their cells are too small to "
                                                      "hold them; make the view larger, or save the CSV.")


def _fits(font: QFont, text: str, width: float, height: float) -> bool:
    """Whether ``text`` in ``font`` fits inside a cell of ``width`` × ``height`` pixels with PAD to spare round it."""
    metrics = QFontMetrics(font)
    return metrics.horizontalAdvance(text) + 2 * PAD <= width and metrics.height() + PAD <= height


class AccuracyTable(QTableWidget):
    """Per class: samples predicted right out of its samples, and their share; the last row is every class together."""

    HEADER = ("class", "right", "accuracy")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.HEADER), parent)
        self.setHorizontalHeaderLabels(list(self.HEADER))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 4)  # NOTE: rows as tight as text
        self.setToolTip("Accuracy per true class: how many of its validation samples were predicted right, "
                        "out of how many, and their share")

    def show_counts(self, counts: np.ndarray, names: list[str] | None) -> None:
        m = np.asarray(counts)
        acc = per_class_accuracy(m)
        total = float(m.sum())
        rows = [(class_name(i, names), int(m[i, i]), int(m[i].sum()), acc[i]) for i in range(len(m))]
        rows.append(("all", int(np.trace(m)), int(total), np.trace(m) / total if total else np.nan))
        self.setRowCount(len(rows))
        for r, (name, right, of, share) in enumerate(rows):
            cells = (name, f"{right}/{of}", "–" if not np.isfinite(share) else f"{share:.1%}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)  # NOTE: a table item shows its text as plain text
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 2 and np.isfinite(share):
                    item.setBackground(QBrush(_share_colour(share)))
                self.setItem(r, c, item)
        bold = self.font()
        bold.setBold(True)
        for c in range(len(self.HEADER)):
            self.item(len(rows) - 1, c).setFont(bold)
        self.fit_width()

    def clear_counts(self) -> None:
        """No rows, and the size of the start (no width fitted to columns that are gone)."""
        self.setRowCount(0)
        self.setMinimumWidth(0)
        self.setMaximumWidth(QWIDGETSIZE_MAX)
        self.setMaximumHeight(QWIDGETSIZE_MAX)

    def fit_width(self) -> None:
        """As wide as its columns (and a scroll bar, with many classes), and as tall as its rows."""
        self.resizeColumnsToContents()
        frame = 2 * self.frameWidth()
        bar = self.verticalScrollBar().sizeHint().width() if self.rowCount() > SCROLL_ROWS else 0
        self.setFixedWidth(self.horizontalHeader().length() + frame + bar)
        self.setMaximumHeight(self.horizontalHeader().height() + self.verticalHeader().length() + frame)

    def accuracies(self) -> list[str]:
        """The accuracy column as shown, one entry per class (the "all" row left out)."""
        return [self.item(r, 2).text() for r in range(self.rowCount() - 1)]


def _share_colour(share: float) -> QColor:
    """A pale red-to-green wash for an accuracy cell (the text stays readable on it)."""
    colour = QColor.fromHsvF(max(0.0, min(1.0, share)) / 3.0, 0.35, 1.0)
    colour.setAlpha(110)
    return colour

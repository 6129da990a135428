"""The Histograms view of the Insight dock: how weights and activations are spread, per layer.

Each row is one layer (input side at the top) and each column one bin of that layer's own
range; brightness is the share of the layer's values in the bin. A saturating Sigmoid stack
shows its activations piling up at the ends, a dying ReLU layer a single bright bin at 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from designer.insight.images import VIRIDIS, ImagePlot
from designer.plaintext import as_plain, plain_label

__all__ = ["HistogramsView", "row_shares"]


def row_shares(counts: np.ndarray) -> np.ndarray:
    """Counts (L, bins) -> each row divided by its total (rows of zeros stay zero)."""
    counts = np.asarray(counts, dtype=np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


class HistogramsView(QWidget):
    """Weight and activation histograms of every layer, updated with each probe run."""

    title = "Histograms"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel("Rows are layers (input side at the top); each row spans that layer's own "
                             "range, from its smallest value (left) to its largest (right).")
        self.header.setWordWrap(True)
        self.weights = ImagePlot("Weights", axes=True)
        self.activations = ImagePlot("Activations", axes=True)
        for plot in (self.weights, self.activations):
            item = plot.getPlotItem()
            item.hideAxis("bottom")
            item.getViewBox().setAspectLocked(False)
        self.ranges = plain_label()  # NOTE: block names
        self.ranges.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.weights)
        row.addWidget(self.activations)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addLayout(row, 1)
        layout.addWidget(self.ranges)
        self.data: dict[str, dict[str, Any]] = {}

    def update_probes(self, data: dict[str, Any]) -> None:
        for key, plot in (("weight_histograms", self.weights), ("activation_histograms", self.activations)):
            h = data.get(key)
            if h is None or not len(h["layers"]):
                continue
            self.data[key] = h
            shares = row_shares(h["counts"])
            plot.show_image(shares, levels=(0.0, float(max(shares.max(), 1e-6))), cmap=VIRIDIS)
            ticks = [(i + 0.5, name) for i, name in enumerate(h["layers"])]
            plot.getPlotItem().getAxis("left").setTicks([ticks])
            plot.setToolTip(as_plain("\n".join(
                f"{name}: {edges[0]:.3g} … {edges[-1]:.3g}" for name, edges in zip(h["layers"], h["edges"])
            )))
        acts = self.data.get("activation_histograms")
        if acts is not None:
            self.ranges.setText("Activation ranges: " + ", ".join(
                f"{name} {edges[0]:.2g}…{edges[-1]:.2g}" for name, edges in zip(acts["layers"], acts["edges"])
            ))

    def clear(self) -> None:
        """Back to the empty view of the start: no histograms, layer names or ranges."""
        self.data = {}
        for plot in (self.weights, self.activations):
            plot.clear_image()
            plot.getPlotItem().getAxis("left").setTicks(None)
            plot.setToolTip("")
        self.ranges.setText("")

    def csv(self) -> tuple[list[str], list] | None:
        if not self.data:
            return None
        rows = []
        for key, h in self.data.items():
            kind = key.split("_")[0]
            for name, counts, edges in zip(h["layers"], h["counts"], h["edges"]):
                rows += [(kind, name, edges[i], edges[i + 1], int(c)) for i, c in enumerate(counts)]
        return ["kind", "layer", "bin_low", "bin_high", "count"], rows

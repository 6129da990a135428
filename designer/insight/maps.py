"""The picture views of the Insight dock: a block's activations, the first filters, CAM overlays.

Each view takes the probe dict of :meth:`engine.probes.runner.ProbeRunner.run` (plus the
worker's ``images``) in :meth:`update_probes` and offers its numbers through :meth:`csv`.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from designer.insight.images import DIVERGING, VIRIDIS, ImagePlot, tile
from engine.probes.cam import overlay

__all__ = ["ActivationsView", "CamView", "FiltersView", "FILM_FRAMES", "class_name"]

FILM_FRAMES = 20  # overlays of probe sample 0 kept over time
VECTOR_COLS = 32  # a long vector wraps into rows of this many units


def class_name(index: int, names: list[str] | None) -> str:
    return names[index] if names and 0 <= index < len(names) else f"class {index}"


def _label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ActivationsView(QWidget):
    """The chosen block's output for one probe sample: feature maps as tiles, or a vector strip.

    Signals:
        sample_changed(int): the person picked another probe sample.
    """

    title = "Activations"
    sample_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = _label("Click a block on the canvas, then train, to see what it outputs.")
        self.sample_box = QComboBox()
        self.sample_box.setToolTip("The probe image whose activations are shown")
        self.sample_box.currentIndexChanged.connect(self._on_sample)
        self.plot = ImagePlot()
        self.dead_label = _label()
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(QLabel("Sample"))
        top.addWidget(self.sample_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.dead_label)
        self.data: dict[str, Any] | None = None

    def _on_sample(self, index: int) -> None:
        if index >= 0:
            self.sample_changed.emit(index)

    def set_sample_count(self, n: int) -> None:
        if self.sample_box.count() != n:
            self.sample_box.blockSignals(True)
            current = max(0, self.sample_box.currentIndex())
            self.sample_box.clear()
            self.sample_box.addItems([str(i) for i in range(n)])
            self.sample_box.setCurrentIndex(min(current, n - 1))
            self.sample_box.blockSignals(False)

    def update_probes(self, data: dict[str, Any]) -> None:
        act = data.get("activations")
        n = len(data["predictions"]["classes"]) if "predictions" in data else 0
        if data.get("images") is not None:
            n = len(data["images"])
        if n:
            self.set_sample_count(n)
        why = (data.get("problems") or {}).get("activations")
        if act is None:
            self.header.setText(why or "No activations in this probe run.")
            return
        self.data = act
        lo, hi = float(act["min"]), float(act["max"])
        values = np.asarray(act["values"], dtype=np.float32)
        if act["kind"] == "maps":
            shown = tile(values)
            what = f"{values.shape[0]} feature maps of {values.shape[1]}×{values.shape[2]}"
        else:
            cols = min(len(values), VECTOR_COLS)
            rows = -(-len(values) // cols)
            shown = np.full(rows * cols, np.nan, dtype=np.float32)
            shown[: len(values)] = values
            shown = shown.reshape(rows, cols)
            what = f"a vector of {len(values)} units"
        cmap = DIVERGING if lo < 0 < hi else VIRIDIS
        if cmap is DIVERGING:
            lo, hi = -max(-lo, hi), max(-lo, hi)
        self.plot.show_image(shown, levels=(lo, hi), cmap=cmap)
        text = f"<b>{act['name']}</b>: {what}, values {act['min']:.3g} to {act['max']:.3g}"
        self.header.setText(text + (f"<br><span style='color:#c0392b'>{why}</span>" if why else ""))
        frac = act.get("dead_fraction")
        self.dead_label.setText("" if frac is None else f"{frac:.0%} of units dead: zero for every probe sample")

    def csv(self) -> tuple[list[str], list] | None:
        if self.data is None:
            return None
        v = np.asarray(self.data["values"])
        if v.ndim == 3:
            c, y, x = np.indices(v.shape).reshape(3, -1)
            return ["channel", "y", "x", "value"], zip(c, y, x, v.reshape(-1))
        return ["unit", "value"], enumerate(v)


class FiltersView(QWidget):
    """The kernels of the first convolution (or the chosen one), as tiles: colour when they read RGB."""

    title = "Filters"
    MAX_OUT, MAX_IN = 64, 16

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = _label("The first convolution's kernels appear here while training runs.")
        self.plot = ImagePlot()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.plot, 1)
        self.data: dict[str, Any] | None = None

    def update_probes(self, data: dict[str, Any]) -> None:
        f = data.get("filters")
        if f is None:
            self.header.setText((data.get("problems") or {}).get("filters", "There is no convolution to show."))
            return
        self.data = f
        tiles = np.asarray(f["tiles"], dtype=np.float32)
        out, cin, k = tiles.shape[0], tiles.shape[1], tiles.shape[2]
        if f.get("rgb") is not None:
            shown = tile(np.asarray(f["rgb"])[: self.MAX_OUT], fill=1.0)
            how = "in colour (they read red, green and blue)"
        else:
            sub = tiles[: self.MAX_OUT, : self.MAX_IN]
            shown = tile(sub.reshape(-1, k, k), cols=sub.shape[1] if cin > 1 else None)
            how = "one row per filter, one column per input channel" if cin > 1 else "one tile per filter"
        self.plot.show_image(shown, levels=(0.0, 1.0))
        more = f" (the first {min(out, self.MAX_OUT)})" if out > self.MAX_OUT or cin > self.MAX_IN else ""
        self.header.setText(f"<b>{f['name']}</b>: {out} filters of {k}×{k}{more}, {how}")

    def csv(self) -> tuple[list[str], list] | None:
        if self.data is None:
            return None
        t = np.asarray(self.data["tiles"])
        o, i, y, x = np.indices(t.shape).reshape(4, -1)
        return ["filter", "input", "y", "x", "weight_scaled"], zip(o, i, y, x, t.reshape(-1))


class CamView(QWidget):
    """The probe images with the class-activation heat map over them, and sample 0 over time."""

    title = "Class maps"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = _label("Where the network looks: class-activation maps appear here while training runs.")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setToolTip("How strongly the heat map covers the image")
        self.opacity.valueChanged.connect(self._redraw)
        self.plot = ImagePlot()
        self.film = ImagePlot()
        self.film.setMaximumHeight(110)
        self.film_label = _label("Sample 0 over time (oldest left)")
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(QLabel("Opacity"))
        top.addWidget(self.opacity)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.film_label)
        layout.addWidget(self.film)
        self.frames: deque[np.ndarray] = deque(maxlen=FILM_FRAMES)
        self.class_names: list[str] | None = None
        self.images: np.ndarray | None = None
        self.data: dict[str, Any] | None = None
        self._texts: list[pg.TextItem] = []

    def update_probes(self, data: dict[str, Any]) -> None:
        cam = data.get("cam")
        if data.get("images") is not None:
            self.images = np.asarray(data["images"])
        if cam is None or self.images is None:
            why = (data.get("problems") or {}).get("cam")
            self.header.setText(why or "No class map in this probe run (the data are not images).")
            return
        self.data = cam
        self.frames.append(overlay(self.images[0], cam["maps"][0], 0.5))
        self._redraw()
        self.film.show_image(tile(np.stack(self.frames).astype(np.float32) / 255.0, cols=FILM_FRAMES, pad=2, fill=1.0))
        method = "Grad-CAM" if cam["method"] == "gradcam" else "CAM"
        self.header.setText(f"<b>{method}</b> of <b>{cam['name']}</b> for the predicted class (step {data.get('step')})")

    def overlays(self) -> np.ndarray:
        a = self.opacity.value() / 100.0
        return np.stack([overlay(img, heat, a) for img, heat in zip(self.images, self.data["maps"])])

    def _redraw(self) -> None:
        if self.data is None or self.images is None:
            return
        shown = self.overlays().astype(np.float32) / 255.0
        n, h, w = shown.shape[:3]
        cols = n if n <= 4 else -(-n // 2)  # NOTE: two rows from 5 images on, so each is larger
        gap = max(2, h // 3)  # room for the caption under each image
        self.plot.show_image(tile(shown, cols=cols, pad=gap, fill=1.0))
        self._place_texts(n, cols, w, h, gap)

    def _place_texts(self, n: int, cols: int, w: int, h: int, gap: int) -> None:
        """One caption under each image, created when the number of images changes (never per update)."""
        if len(self._texts) != n:
            for t in self._texts:
                self.plot.removeItem(t)
            self._texts = [pg.TextItem(anchor=(0.5, 0.0), color=(110, 110, 110)) for _ in range(n)]
            for t in self._texts:
                self.plot.addItem(t)
            rows = -(-n // cols)
            self.plot.getPlotItem().getViewBox().setRange(
                yRange=(0, rows * (h + gap)), xRange=(0, cols * (w + gap) - gap), padding=0.02)
        classes = self.data["classes"]
        for i, t in enumerate(self._texts):
            r, c = divmod(i, cols)
            t.setText(class_name(int(classes[i]), self.class_names))
            t.setPos(c * (w + gap) + w / 2, r * (h + gap) + h)

    def csv(self) -> tuple[list[str], list] | None:
        if self.data is None:
            return None
        maps = np.asarray(self.data["maps"])
        s, y, x = np.indices(maps.shape).reshape(3, -1)
        cls = np.asarray(self.data["classes"])[s]
        return ["sample", "predicted_class", "y", "x", "heat"], zip(s, cls, y, x, maps.reshape(-1))

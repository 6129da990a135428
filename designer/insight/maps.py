"""The picture views of the Insight dock: a block's activations, the first filters (or a linear
classifier's class templates), CAM overlays with the boxes cut from them (weakly supervised
localization) beside the true boxes.

Each view takes the probe dict of :meth:`engine.probes.runner.ProbeRunner.run` (plus the
worker's ``images``) in :meth:`update_probes` and offers its numbers through :meth:`csv`.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter, QVBoxLayout, QWidget

from designer.insight.images import DIVERGING, VIRIDIS, WRONG, ImagePlot, TilePlot, tile
from designer.plaintext import escape_rich
from engine.colormap import overlay

__all__ = [
    "CAM_BOX", "FILM_FRAMES", "TRUE_BOX", "ActivationsView", "BoxTilePlot", "CamView", "FiltersView", "box_outlines",
    "class_name", "frame_caption", "localization_header", "template_captions", "template_pictures", "verdict",
]

FILM_FRAMES = 20  # class maps kept over time, per probe sample
VECTOR_COLS = 32  # a long vector wraps into rows of this many units
WIDE = 1.4  # a class-maps view this many times wider than tall puts the film strip beside the images
TRUE_BOX = (46, 160, 67)  # green: a true box, here and in the Masks and boxes view
CAM_BOX = (0, 200, 255)  # cyan: a box cut from a class map (the heat ramp has no cyan)


def class_name(index: int, names: list[str] | None) -> str:
    return names[index] if names and 0 <= index < len(names) else f"class {index}"


def frame_caption(step: int | None) -> str:
    """The label under a film-strip frame: the training step of its probe run (a stored run's has none)."""
    return "trained" if step is None else f"step {int(step)}"


def verdict(true: int, predicted: int, names: list[str] | None) -> str:
    """HTML "true → predicted" for a tile's caption; a wrong one starts with ✗ and is red (names escaped)."""
    text = escape_rich(f"{class_name(true, names)} → {class_name(predicted, names)}")
    return text if true == predicted else f"<span style='color:{WRONG}'>✗ {text}</span>"


def swatch(rgb, text: str) -> str:
    """HTML: a square in colour ``rgb`` and ``text`` (escaped) beside it, for a legend."""
    r, g, b = (int(v) for v in rgb)
    return f"<span style='color:rgb({r},{g},{b})'>■</span> {escape_rich(text)}"


def localization_header(loc: dict[str, Any]) -> str:
    """HTML: the mean IoU of the boxes cut from the class maps against the true boxes, and a legend."""
    share = f"{float(loc['threshold']) * 100:g} %"
    return (f"Weakly supervised localization: mean IoU <b>{float(loc['mean_iou']):.2f}</b> of boxes cut from the "
            f"class maps at {share} of their peak, against the true boxes &nbsp; "
            + swatch(CAM_BOX, "box from the class map") + " &nbsp; " + swatch(TRUE_BOX, "true box"))


def box_outlines(boxes, origins: list[tuple[float, float]], h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x, y, w, h fractions of a tile) as one polyline with NaN breaks, each on its tile's origin."""
    xs: list[float] = []
    ys: list[float] = []
    for (bx, by, bw, bh), (x0, y0) in zip(np.asarray(boxes, dtype=np.float64), origins):
        left, top = x0 + bx * w, y0 + by * h
        right, bottom = left + bw * w, top + bh * h
        xs += [left, right, right, left, left, np.nan]
        ys += [top, top, bottom, bottom, top, np.nan]
    return np.array(xs), np.array(ys)


class BoxTilePlot(TilePlot):
    """Tiles with a box over each, one colour per kind of box, kept on their tiles through every re-layout."""

    def __init__(self, colours: dict[str, tuple[int, int, int]], parent: QWidget | None = None) -> None:
        self.outlines: dict[str, pg.PlotDataItem] = {}
        self.boxes: dict[str, np.ndarray | None] = {}
        super().__init__(parent=parent)
        for kind, rgb in colours.items():
            self.outlines[kind] = pg.PlotDataItem(pen=pg.mkPen(rgb, width=2), connect="finite")
            self.boxes[kind] = None
            self.addItem(self.outlines[kind])

    def set_boxes(self, kind: str, boxes) -> None:
        """The boxes (N, 4) drawn over the tiles from the next layout on (None: none)."""
        self.boxes[kind] = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def _lay_out(self) -> None:
        super()._lay_out()
        n, _, h, w, _ = self.grid
        for kind, item in self.outlines.items():
            boxes = self.boxes[kind]
            shown = boxes[:n] if boxes is not None else np.zeros((0, 4))
            item.setData(*box_outlines(shown, [self.origin(i) for i in range(len(shown))], h, w))

    def clear_image(self) -> None:
        super().clear_image()
        for kind, item in self.outlines.items():
            self.boxes[kind] = None
            item.setData([], [])


def _label(text: str = "", rich: bool = False) -> QLabel:
    """A wrapping label; ``rich`` ones show HTML the view writes (user text in it escaped), others plain text."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ActivationsView(QWidget):
    """The chosen block's output for one probe sample: feature maps as tiles, or a vector strip.

    Signals:
        sample_changed(int): the person picked another probe sample.
    """

    title = "Activations"
    empty_text = "Click a block on the canvas, then train, to see what it outputs."
    sample_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = _label(self.empty_text, rich=True)
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
        _offer_indices(self.sample_box, n)

    def clear(self) -> None:
        """Back to the empty view of the start: no picture, no samples to pick, the start's text."""
        self.data = None
        self.plot.clear_image()
        self.header.setText(self.empty_text)
        self.dead_label.setText("")
        _offer_indices(self.sample_box, 0)

    def update_probes(self, data: dict[str, Any]) -> None:
        act = data.get("activations")
        n = len(data["predictions"]["classes"]) if "predictions" in data else 0
        if data.get("images") is not None:
            n = len(data["images"])
        if n:
            self.set_sample_count(n)
        why = (data.get("problems") or {}).get("activations")
        if act is None:
            self.header.setText(escape_rich(why) if why else "No activations in this probe run.")
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
        text = f"<b>{escape_rich(act['name'])}</b>: {what}, values {act['min']:.3g} to {act['max']:.3g}"
        self.header.setText(text + (f"<br><span style='color:#c0392b'>{escape_rich(why)}</span>" if why else ""))
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


def template_pictures(templates: np.ndarray, max_channels: int | None = None) -> np.ndarray:
    """Class templates (K, C, H, W) as colour tiles (K, H, W', 3) in [0, 1], each scaled by its largest |weight|.

    Three channels read as an RGB picture, 0 mid-grey (0.5 + 0.5 · w / max|w|); any other count goes
    through the diverging map (white 0, red positive, blue negative), channel beside channel one
    pixel apart (NaN, drawn transparent). ``max_channels``: show at most that many channels.
    """
    t = np.asarray(templates, dtype=np.float32)
    peak = np.abs(t).reshape(len(t), -1).max(1, initial=0.0)
    scaled = t / np.where(peak > 0, peak, 1.0)[:, None, None, None]  # NOTE: symmetric, so 0 is always mid-scale
    if t.shape[1] == 3:
        return np.ascontiguousarray(0.5 + 0.5 * scaled.transpose(0, 2, 3, 1))
    scaled = scaled[:, :max_channels]
    lut = DIVERGING.getLookupTable(nPts=256).astype(np.float32) / 255.0
    colours = lut[np.clip(((scaled + 1.0) * 128.0).astype(np.int64), 0, 255)]  # (K, C, H, W, 3)
    k, c, h, w = scaled.shape
    out = np.full((k, h, c * (w + 1) - 1, 3), np.nan, dtype=np.float32)
    for i in range(c):
        out[:, :, i * (w + 1): i * (w + 1) + w] = colours[:, i]
    return out


def template_captions(f: dict[str, Any], names: list[str] | None) -> list[str]:
    """One caption per template (HTML, names escaped): the class it scores, or "unit k"."""
    n = len(f["templates"])
    if f.get("classes"):
        return [escape_rich(class_name(k, names)) for k in range(n)]
    return [f"unit {k}" for k in range(n)]


class FiltersView(QWidget):
    """The kernels of the first convolution (or the chosen one), as tiles: colour when they read RGB.

    A network without convolutions that flattens an image into a Dense layer (a linear classifier)
    shows that layer's weight rows instead, each reshaped to the image: the template its unit matches
    the image against, captioned with the class it scores (names from :attr:`class_names`).
    """

    title = "Filters"
    empty_text = ("The first convolution's kernels (or a linear classifier's class templates) "
                  "appear here while training runs.")
    MAX_OUT, MAX_IN = 64, 16

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = _label(self.empty_text, rich=True)
        self.plot = ImagePlot()
        self.tiles = TilePlot()
        self.tiles.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.tiles, 1)
        self.data: dict[str, Any] | None = None
        self.class_names: list[str] | None = None  # NOTE: set by the panel once an epoch has named the classes

    def update_probes(self, data: dict[str, Any]) -> None:
        f = data.get("filters")
        if f is None:
            why = (data.get("problems") or {}).get("filters", "There is no convolution or linear classifier to show.")
            self.header.setText(escape_rich(why))
            return
        self.data = f
        if f.get("kind") == "templates":
            self._show_templates(f)
        else:
            self._show_kernels(f)

    def _show_kernels(self, f: dict[str, Any]) -> None:
        self.tiles.hide()
        self.plot.show()
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
        self.header.setText(f"<b>{escape_rich(f['name'])}</b>: {out} filters of {k}×{k}{more}, {how}")

    def _show_templates(self, f: dict[str, Any]) -> None:
        self.plot.hide()
        self.tiles.show()
        t = np.asarray(f["templates"], dtype=np.float32)
        c, h, w = t.shape[1:]
        self.tiles.show_tiles(template_pictures(t, self.MAX_IN), template_captions(f, self.class_names))
        units = int(f.get("units", len(t)))
        what = "class templates" if f.get("classes") else "unit templates"
        more = f" (the first {len(t)})" if units > len(t) else ""
        if c == 3:
            how = "Grey is a weight of 0, more of a colour a positive weight on that channel, less a negative one"
        else:
            beside = f"; a template's {c} channels side by side" if c > 1 else ""
            how = f"Red: the pixel raises the score, blue: it lowers it, white: no effect{beside}"
        self.header.setText(f"<b>{escape_rich(f['name'])}</b>: {units} {what} of {c}×{h}×{w}{more}, each a weight "
                            f"row reshaped to the image, on its own scale. {how}.")

    def clear(self) -> None:
        """Back to the empty view of the start (no class names either: another project may have others)."""
        self.data = self.class_names = None
        self.plot.clear_image()
        self.tiles.clear_image()
        self.tiles.hide()
        self.plot.show()
        self.header.setText(self.empty_text)

    def csv(self) -> tuple[list[str], list] | None:
        if self.data is None:
            return None
        if self.data.get("kind") == "templates":
            t = np.asarray(self.data["templates"])
            u, c, y, x = np.indices(t.shape).reshape(4, -1)
            return ["unit", "channel", "y", "x", "weight"], zip(u, c, y, x, t.reshape(-1))
        t = np.asarray(self.data["tiles"])
        o, i, y, x = np.indices(t.shape).reshape(4, -1)
        return ["filter", "input", "y", "x", "weight_scaled"], zip(o, i, y, x, t.reshape(-1))


class CamView(QWidget):
    """The probe images with the class-activation heat map over them, and one sample's maps over time.

    Under each image: "true → predicted" once an epoch has told the probe images' classes (a wrong
    one red, marked ✗ and framed), else its predicted class. Where the data have true boxes, each
    image also shows the box cut from its map (cyan) and the true box (green), their IoU under it
    and the mean IoU in the header (weakly supervised localization). The film strip labels each frame with
    its step; it sits beside the images in a wide view and under them in a tall one, both growing.

    Signals:
        class_chosen(object): the class the maps should explain: None for each image's
            predicted class, else a class index.
        layer_requested(bool): Grad-CAM should weigh the block selected on the canvas (True)
            or the default block (False).
    """

    title = "Class maps"
    empty_text = "Where the network looks: class-activation maps appear here while training runs."
    class_chosen = Signal(object)
    layer_requested = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = _label(self.empty_text, rich=True)
        self.note_label = _label()
        self.note_label.hide()
        self.class_box = QComboBox()
        self.class_box.setToolTip("The class whose evidence the maps show")
        self.class_box.addItem("Predicted class", None)
        self.class_box.currentIndexChanged.connect(self._on_class)
        self.layer_button = QPushButton("Use selected block")
        self.layer_button.setToolTip("Grad-CAM weighs the maps of the block selected on the canvas "
                                     "(a convolution, activation or pooling block that feeds the class output)")
        self.layer_button.clicked.connect(lambda: self.layer_requested.emit(True))
        self.default_button = QPushButton("Default block")
        self.default_button.setToolTip("Grad-CAM weighs the last spatial block before the class output")
        self.default_button.clicked.connect(lambda: self.layer_requested.emit(False))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setMaximumWidth(140)
        self.opacity.setToolTip("How strongly the heat map covers the image")
        self.opacity.valueChanged.connect(self._redraw)
        self.plot = BoxTilePlot({"cam": CAM_BOX, "true": TRUE_BOX})
        self.film = TilePlot()
        self.film_box = QComboBox()
        self.film_box.setToolTip("The probe image whose maps the film strip follows")
        self.film_box.addItem("0")
        self.film_box.currentIndexChanged.connect(self._show_film)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Explain"))
        controls.addWidget(self.class_box)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Grad-CAM block"))
        controls.addWidget(self.layer_button)
        controls.addWidget(self.default_button)
        controls.addStretch(1)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity)
        film_part = QWidget()
        film_row = QHBoxLayout()
        film_row.addWidget(QLabel("Over time: probe sample"))
        film_row.addWidget(self.film_box)
        film_row.addWidget(QLabel("(oldest first)"), 1)
        film_layout = QVBoxLayout(film_part)
        film_layout.setContentsMargins(0, 0, 0, 0)
        film_layout.addLayout(film_row)
        film_layout.addWidget(self.film, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.plot)
        self.split.addWidget(film_part)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.note_label)
        layout.addLayout(controls)
        layout.addWidget(self.split, 1)
        # NOTE: (step, heat map as uint8), FILM_FRAMES per probe sample, so switching samples shows history at once.
        self.frames: dict[int, deque[tuple[int | None, np.ndarray]]] = {}
        self._class_names: list[str] | None = None
        self._classes = 0
        self.images: np.ndarray | None = None
        self.data: dict[str, Any] | None = None
        self.localization: dict[str, Any] | None = None  # the boxes cut from self.data's maps
        self._probe: dict[str, Any] | None = None  # the latest probe run recorded
        self.predicted: np.ndarray | None = None
        self.true_classes: np.ndarray | None = None  # the probe images' classes, once an epoch told them

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        split = getattr(self, "split", None)  # NOTE: Qt may resize the view before __init__ has finished
        if split is not None:  # the film strip beside the images in a wide view, under them in a tall one
            wide = event.size().width() > WIDE * event.size().height()
            split.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)

    # ------------------------------------------------------------------ choices
    @property
    def class_names(self) -> list[str] | None:
        return self._class_names

    @class_names.setter
    def class_names(self, names: list[str] | None) -> None:
        self._class_names = list(names) if names else None
        self._fill_classes(self._classes)

    def _fill_classes(self, k: int) -> None:
        """One entry per class (a single binary score has none to choose), keeping the choice."""
        self._classes = k
        names = ["Predicted class"] + [class_name(i, self._class_names) for i in range(k if k > 1 else 0)]
        if [self.class_box.itemText(i) for i in range(self.class_box.count())] == names:
            return
        current = self.class_box.currentData()
        self.class_box.blockSignals(True)
        self.class_box.clear()
        for i, text in enumerate(names):
            self.class_box.addItem(text, None if i == 0 else i - 1)
        self.class_box.setCurrentIndex(max(0, self.class_box.findData(current)) if current is not None else 0)
        self.class_box.blockSignals(False)

    def _on_class(self, index: int) -> None:
        if index >= 0:
            self.class_chosen.emit(self.class_box.itemData(index))

    def choose_class(self, class_index: int | None) -> None:
        """Pick a class in the chooser (None: the predicted one), as the person would."""
        self.class_box.setCurrentIndex(0 if class_index is None else self.class_box.findData(class_index))

    def note(self, text: str) -> None:
        """A line under the header (a choice that takes effect later, say)."""
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    # ------------------------------------------------------------------ updates
    def update_probes(self, data: dict[str, Any]) -> None:
        self.record(data)
        self.draw()

    def clear(self) -> None:
        """Back to the empty view of the start: no maps, no film strip, no classes, "Predicted class" chosen.

        NOTE: no signal: whoever clears the view resets the choice it relays (the controller's ``cam_class``).
        The opacity is the person's taste, not the project's, so it stays.
        """
        self.frames.clear()
        self.images = self.data = self.localization = self._probe = self.predicted = self.true_classes = None
        self._class_names = None
        self._fill_classes(0)
        self.plot.clear_image()
        self.film.clear_image()
        _offer_indices(self.film_box, 1)  # NOTE: as at the start: sample 0, the only one offered
        self.header.setText(self.empty_text)
        self.note("")

    def record(self, data: dict[str, Any]) -> None:
        """Keep a probe run's maps and add them to the film strips, without drawing (cheap, every run)."""
        cam = data.get("cam")
        if data.get("images") is not None:
            self.images = np.asarray(data["images"])
        pred = data.get("predictions")
        if pred is not None:
            self._fill_classes(np.shape(pred["scores"])[1])
        self._probe = data
        step = data.get("step")
        if cam is None or self.images is None:
            return
        self.data = cam
        self.localization = data.get("localization")
        self.predicted = np.asarray(pred["classes"]) if pred is not None else None
        heat = np.round(np.clip(cam["maps"], 0.0, 1.0) * 255).astype(np.uint8)
        for i, h in enumerate(heat):
            self.frames.setdefault(i, deque(maxlen=FILM_FRAMES)).append((step, h))
        self._set_film_count(len(heat))  # NOTE: the sample can be chosen before the view is first drawn

    def draw(self) -> None:
        """Show the latest recorded probe run: maps over the images, the film strip and the header."""
        data = self._probe
        if data is None:
            return
        cam = data.get("cam")
        why = (data.get("problems") or {}).get("cam")
        if cam is None or self.images is None:
            self.header.setText(escape_rich(why) if why else "No class map in this probe run (the data are not images).")
            return
        self.note("")  # NOTE: a choice announced there has now been applied (or its problem is in the header)
        self._redraw()
        self._show_film()
        method = "Grad-CAM" if cam["method"] == "gradcam" else "CAM"
        ci = cam.get("class_index")
        if ci is None:
            target = "the predicted class"
        else:
            named = self._class_names is not None and 0 <= int(ci) < len(self._class_names)
            chosen = f"class '{escape_rich(self._class_names[int(ci)])}'" if named else f"class {int(ci)}"
            target = chosen
        under = "true → predicted class" if self._knows_truth() else "its predicted class"
        text = (f"<b>{method}</b> of <b>{escape_rich(cam['name'])}</b> for {target} (step {data.get('step')}); "
                f"under each image: {under}")
        if self._boxes_known():
            text += "<br>" + localization_header(self.localization)
        self.header.setText(text + (f"<br><span style='color:#c0392b'>{escape_rich(why)}</span>" if why else ""))

    def _set_film_count(self, n: int) -> None:
        _offer_indices(self.film_box, n)

    @property
    def film_sample(self) -> int:
        return max(0, self.film_box.currentIndex())

    def _show_film(self) -> None:
        i = self.film_sample
        frames = self.frames.get(i)
        if not frames or self.images is None or i >= len(self.images):
            return
        shown = np.stack([overlay(self.images[i], h.astype(np.float32) / 255.0, 0.5) for _, h in frames])
        self.film.show_tiles(shown, [frame_caption(step) for step, _ in frames])

    def overlays(self) -> np.ndarray:
        a = self.opacity.value() / 100.0
        return np.stack([overlay(img, heat, a) for img, heat in zip(self.images, self.data["maps"])])

    def _redraw(self) -> None:
        if self.data is None or self.images is None:
            return
        classes = self.predicted if self.predicted is not None else self.data["classes"]
        if self._knows_truth():
            truth = self.true_classes
            captions = [verdict(int(t), int(c), self._class_names) for t, c in zip(truth, classes)]
            wrong = [i for i, (t, c) in enumerate(zip(truth, classes)) if int(t) != int(c)]
        else:
            captions, wrong = [escape_rich(class_name(int(c), self._class_names)) for c in classes], []
        boxed = self._boxes_known()
        if boxed:
            captions = [f"{c}<br>IoU {float(u):.2f}" for c, u in zip(captions, self.localization["iou"])]
        # NOTE: boxes before tiles: each layout of the tiles (a resize too) draws the boxes on them
        self.plot.set_boxes("cam", self.localization["cam_boxes"] if boxed else None)
        self.plot.set_boxes("true", self.localization["true_boxes"] if boxed else None)
        self.plot.lines = 2 if boxed else 1
        self.plot.show_tiles(self.overlays(), captions, marked=wrong)

    def _boxes_known(self) -> bool:
        """Whether the latest maps come with their boxes and the true ones (data with true boxes, after an epoch)."""
        loc, n = self.localization, len(self.data["maps"]) if self.data is not None else 0
        return loc is not None and "iou" in loc and len(loc["iou"]) == n > 0

    def set_true_classes(self, labels) -> None:
        """The probe images' true classes (from an epoch's insight): the next draw shows "true → predicted"."""
        self.true_classes = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)

    def _knows_truth(self) -> bool:
        n = len(self.data["maps"]) if self.data is not None else 0
        return self.true_classes is not None and len(self.true_classes) == n and n > 0

    def csv(self) -> tuple[list[str], list] | None:
        if self.data is None:
            return None
        maps = np.asarray(self.data["maps"])
        s, y, x = np.indices(maps.shape).reshape(3, -1)
        explained = np.asarray(self.data["classes"])[s]
        predicted = self.predicted[s] if self.predicted is not None else explained
        header = ["sample", "explained_class", "predicted_class", "y", "x", "heat"]
        return header, zip(s, explained, predicted, y, x, maps.reshape(-1))


def _offer_indices(box: QComboBox, n: int) -> None:
    """Let ``box`` offer the sample numbers 0..n-1 (none for 0), keeping the choice where it can; no signal."""
    if box.count() == n:
        return
    box.blockSignals(True)
    current = max(0, box.currentIndex())
    box.clear()
    box.addItems([str(i) for i in range(n)])
    box.setCurrentIndex(min(current, n - 1))
    box.blockSignals(False)

"""The Explore view of the Insight dock: what one unit of the trained network responds to, on demand.

It works on the latest run that kept its trained weights (finished or stopped) and the block
last clicked on the canvas. **Top patches** searches the run's data set for the images where
the chosen channel responds most and shows the window of input pixels it sees there (its
receptive field), with the response under each; **Dream** grows an input from noise that
excites the channel (activation maximization); **Nearest images** retrieves the images whose
output at the block (its latent space) lies closest to one sample's. All are computed by
:mod:`engine.probes.explore` in a plain Python thread, never on the UI thread.

NOTE: no Qt object is made, used or deleted in that thread: see :mod:`designer.workers`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal, Slot
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from designer.insight.images import ImagePlot, tile
from designer.plaintext import escape_rich, plain
from designer.workers import WORKERS, Job, next_number, running_workers
from engine.analysis import analyze
from engine.errors import NetDesignerError
from engine.project import project_from_dict

if TYPE_CHECKING:  # pragma: no cover
    from engine.probes.explore import Dream, Neighbours, TopPatches

__all__ = ["EMPTY_TEXT", "ExploreView", "rgba", "running_workers"]


def _probes():
    """:mod:`engine.probes.explore`, imported when first needed: it imports PyTorch (a second or more)."""
    from engine.probes import explore

    return explore


EMPTY_TEXT = "Train the network first: these views use the trained weights of the latest run."
TRAINING_TEXT = "Training… these views use the weights of a finished run: they are ready again when it ends."
FIRST_RUN_TEXT = "Training… these views use the trained weights: they are ready when this run ends."
QUEUED_TEXT = "It starts when the computation now running ends (its result is dropped)."
TOP = 9  # patches shown
NEAREST = 8  # nearest images shown beside the sample asked about
CAPTION_PX = 34  # room under each tile for its two caption lines, in screen pixels
MIN_CELL_PX = 84  # the narrowest a tile and its gap may be on screen, so captions do not overlap
CAPTION = (128, 128, 128)
CAPTION_WIDTH_PX = 200
OUTLINE = (230, 120, 20)  # the frame around the window a channel sees


def _sample(index: int, label: str | None) -> str:
    """``#12 circle``; a numeric class name reads ``#12 class 3``."""
    if label is None:
        return f"#{index}"
    return f"#{index} {'class ' if label.isdigit() else ''}{escape_rich(label)}"


def rgba(images: np.ndarray, inside: np.ndarray | None = None, levels: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``(N, C, H, W)`` images as ``(N, H, W, 4)`` floats in [0, 1]: grey for 1 channel, colour for 3
    (others: their mean); transparent where ``inside`` (N, H, W) is False."""
    a = np.asarray(images, dtype=np.float32)
    lo, hi = levels
    a = np.clip((a - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    rgb = a.transpose(0, 2, 3, 1) if a.shape[1] == 3 else np.repeat(a.mean(1)[..., None], 3, axis=3)
    alpha = np.ones(rgb.shape[:3] + (1,), np.float32) if inside is None else np.asarray(inside, np.float32)[..., None]
    return np.concatenate([rgb * alpha, alpha], axis=3)


class ExploreView(QWidget):
    """Top patches and activation maximization of one channel of the clicked block, for the latest run.

    A request while a computation runs waits for it and then starts; the running one's result is
    dropped (the newest request wins), and so is a waiting request that a newer one replaces.

    Signals:
        ended(str): a request has ended (its thread, if it had started one, is gone): "patches",
            "dream", "failed", or "outdated" (a newer request or a newer run came first, so its
            result was dropped). Every request that started or waited ends exactly once.
    """

    title = "Explore"
    ended = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel(EMPTY_TEXT)
        self.header.setTextFormat(Qt.TextFormat.RichText)  # NOTE: HTML this view writes; names in it escaped
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.unit_label = QLabel("Channel")
        self.channel = QSpinBox()
        self.channel.setToolTip("Which channel (feature map) of the block to explore")
        self.patches_button = QPushButton("Top patches")
        self.patches_button.setToolTip(
            f"Find the {TOP} images where this channel responds most, and show the part of each it sees"
        )
        self.patches_button.clicked.connect(lambda: self.find_patches())
        self.steps = QSpinBox()
        self.steps.setRange(1, 5000)
        self.steps.setValue(100)
        self.steps.setToolTip("Gradient-ascent steps of activation maximization")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(3)
        self.lr.setRange(0.001, 5.0)
        self.lr.setSingleStep(0.01)
        self.lr.setValue(0.1)
        self.lr.setToolTip("How far each step moves the image (in units of the normalized input)")
        self.dream_button = QPushButton("Dream")  # NOTE: a short name, so the row fits half a small screen
        self.dream_button.setToolTip("Activation maximization: grow an image from noise that makes this channel "
                                     "respond as strongly as it can")
        self.dream_button.clicked.connect(lambda: self.dream())
        self.sample = QSpinBox()
        self.sample.setRange(0, 999_999)  # NOTE: the data set's size is known once a run is loaded
        self.sample.setToolTip("Which sample of the data set to compare with all the others (its number, as the "
                               "captions of Top patches and the data preview show it)")
        self.nearest_button = QPushButton("Nearest images")
        self.nearest_button.setToolTip(
            f"Image retrieval: the {NEAREST} images whose output at this block is closest to this sample's "
            "(Euclidean distance in the network's latent space)"
        )
        self.nearest_button.clicked.connect(lambda: self.find_nearest())
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # NOTE: no maximum: an indeterminate "working" bar
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.message = plain(QLabel(""))  # NOTE: quotes the block's name and the engine's messages
        self.message.setWordWrap(True)
        self.plot = ImagePlot()
        self.plot.setToolTip("Click an image to find the images nearest to its sample at this block")
        self.caption = plain(QLabel(""))  # NOTE: quotes the block's name
        self.caption.setWordWrap(True)
        self.caption.setProperty("role", "muted")
        row = QHBoxLayout()
        for w in (self.unit_label, self.channel, self.patches_button):
            row.addWidget(w)
        row.addSpacing(8)
        for w in (QLabel("Steps"), self.steps, QLabel("Learning rate"), self.lr, self.dream_button):
            row.addWidget(w)
        row.addStretch(1)
        # NOTE: a second row, so that each fits half of a 1366-pixel screen
        second = QHBoxLayout()
        for w in (QLabel("Sample"), self.sample, self.nearest_button):
            second.addWidget(w)
        second.addSpacing(8)
        second.addWidget(self.busy)
        second.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addLayout(row)
        layout.addLayout(second)
        layout.addWidget(self.message)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.caption)

        self.entry: Any = None  # the latest RunEntry with weights
        self.base_dir: Path | None = None
        self.node_id: str | None = None
        self.training = False
        self.result: TopPatches | Dream | Neighbours | None = None
        self._graph = None
        self._analysis = None
        self._trained = None  # the entry's TrainedRun, once a job has built it
        self._job: Job | None = None  # the computation running
        self._waiting: tuple[str, str, Callable[[Any], Any]] | None = None  # the request made while it runs
        self._texts: list[pg.TextItem] = []  # the captions on show: the first of _pool
        self._pool: list[pg.TextItem] = []
        self._frame: QGraphicsRectItem | None = None
        self._tiles: tuple[int, int, int, int, int, int, list[int]] | None = None  # the grid on show, its samples
        self.plot.scene().sigMouseClicked.connect(self._on_plot_click)
        WORKERS.joined.connect(self._on_joined)
        self._update_controls()

    # ------------------------------------------------------------------ what it works on
    def set_run(self, entry: Any, base_dir: str | Path | None = None) -> None:
        """Work on ``entry`` (a :class:`~designer.training.runs.RunEntry` with ``weights``) from now on."""
        if entry is None or getattr(entry, "weights", None) is None:
            return
        project = project_from_dict(entry.record.project, source="<run snapshot>")
        self.entry, self.base_dir = entry, Path(base_dir) if base_dir else None
        self._graph, self._analysis, self._trained = project.graph, analyze(project.graph), None
        self._drop_waiting()  # NOTE: it was asked of the previous run; a running one ends "outdated"
        if self.node_id not in self._graph.nodes:
            self.node_id = self._default_block(project.probes.layer)
        self._clear_result()
        self._say("")
        self._update_controls()

    def show_block(self, node_id: str) -> None:
        """Explore the block ``node_id`` (clicked on the canvas)."""
        if node_id == self.node_id:
            return
        self.node_id = node_id
        self.channel.setValue(0)
        self._update_controls()

    def forget_run(self) -> None:
        """Another project was opened: nothing to explore until it has a run (a computation running ends "outdated")."""
        self.entry = self._graph = self._analysis = self._trained = self.node_id = None
        self._drop_waiting()
        self._clear_result()
        self._say("")
        self._update_controls()

    def set_training(self, running: bool) -> None:
        """A run started (the buttons wait for it to end; a waiting request is dropped) or ended."""
        self.training = running
        if running:
            self._drop_waiting()
        if running and self.entry is not None:
            self._say(TRAINING_TEXT)
        elif not running and self.message.text() == TRAINING_TEXT:
            self._say("")
        self._update_controls()

    def _default_block(self, chosen: str | None) -> str | None:
        """The block the run probed, else its last block with feature maps, else its last layer."""
        usable = [nid for nid in self._analysis.order if self._units(nid) is not None]
        if chosen in usable:
            return chosen
        maps = [nid for nid in usable if self._units(nid)[0] == "channel"]
        return (maps or usable or [None])[-1]

    def _units(self, node_id: str | None) -> tuple[str, int] | None:
        try:
            return _probes().units_of(self._graph, self._analysis, node_id) if self._graph is not None else None
        except NetDesignerError:
            return None

    def _update_controls(self) -> None:
        """Header, channel range and buttons from the run, the block and whether something runs."""
        why, units = "", None
        if self.entry is None:
            why = FIRST_RUN_TEXT if self.training else EMPTY_TEXT
        else:
            try:
                units = _probes().units_of(self._graph, self._analysis, self.node_id) if self.node_id else None
            except NetDesignerError as exc:
                why = f"{self.entry.name}: {exc}"
            if units is None and not why:
                why = f"{self.entry.name}: click a layer block on the canvas to explore it."
        if units is not None:
            kind, count = units
            self.unit_label.setText(kind.capitalize())
            self.channel.setRange(0, count - 1)
            name = escape_rich(self._graph.nodes[self.node_id].name)
            rf = self._analysis.nodes[self.node_id].rf
            sees = f"each sees {rf} input pixels" if rf is not None else "each sees the whole image"
            self.header.setText(f"{escape_rich(self.entry.name)} · <b>{name}</b>: {count} {kind}s, {sees}")
        else:
            self.header.setText(escape_rich(why))
        ready = units is not None and not self.training
        self.patches_button.setEnabled(ready)
        self.dream_button.setEnabled(ready)
        self.nearest_button.setEnabled(ready)
        self.channel.setEnabled(units is not None)

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if self.message.property("role") != ("error" if error else "muted"):
            self.message.setProperty("role", "error" if error else "muted")
            self.message.style().unpolish(self.message)
            self.message.style().polish(self.message)

    # ------------------------------------------------------------------ computing
    def find_patches(self) -> bool:
        """Start Top patches for the chosen channel. False when it cannot start now."""
        if not self.patches_button.isEnabled():
            return False
        node, ch, top_patches = self.node_id, self.channel.value(), _probes().top_patches
        return self._start("patches", f"Searching the data for the images where {self._unit_text()} responds most…",
                           lambda run: top_patches(run, node, ch, TOP))

    def dream(self) -> bool:
        """Start activation maximization for the chosen channel. False when it cannot start now."""
        if not self.dream_button.isEnabled():
            return False
        node, ch, steps, lr = self.node_id, self.channel.value(), self.steps.value(), self.lr.value()
        dream = _probes().dream
        return self._start("dream", f"Dreaming up an image for {self._unit_text()} ({steps} steps)…",
                           lambda run: dream(run, node, ch, steps, lr))

    def find_nearest(self) -> bool:
        """Start Nearest images for the chosen sample at the clicked block. False when it cannot start now."""
        if not self.nearest_button.isEnabled():
            return False
        node, sample, nearest = self.node_id, self.sample.value(), _probes().nearest
        name = self._graph.nodes[node].name
        return self._start("nearest", f"Comparing every image with sample #{sample} at '{name}'…",
                           lambda run: nearest(run, node, sample, NEAREST))

    def _unit_text(self) -> str:
        name = self._graph.nodes[self.node_id].name
        return f"{self.unit_label.text().lower()} {self.channel.value()} of '{name}'"

    def _start(self, what: str, busy_text: str, compute: Callable[[Any], Any]) -> bool:
        """Run ``compute(trained_run)`` in a worker thread, or after the one running (see the class)."""
        if self._job is not None:
            self._drop_waiting()
            self._job.superseded = True
            self._waiting = (what, busy_text, compute)
            self._say(f"{busy_text} {QUEUED_TEXT}")
            return True
        self._launch(what, busy_text, compute)
        return True

    def _launch(self, what: str, busy_text: str, compute: Callable[[Any], Any]) -> None:
        entry, base_dir, trained = self.entry, self.base_dir, self._trained
        load_run = _probes().load_run  # NOTE: imported here, on the window's thread, not in the worker
        snapshot = weights = None
        if trained is None:
            # NOTE: copies, so the worker shares nothing the window may change or free meanwhile.
            snapshot, weights = copy.deepcopy(entry.record.project), copy.deepcopy(entry.weights)

        def work():  # NOTE: captures plain data only (no widget, no Qt object)
            run = trained or load_run(snapshot, weights, base_dir)
            return run, compute(run)

        self._job = Job(next_number(), what, entry, work)
        self._say(busy_text)
        self.busy.show()
        WORKERS.start(self._job)

    def _drop_waiting(self) -> None:
        """Forget the request waiting for the running one; it ends "outdated"."""
        if self._waiting is not None:
            self._waiting = None
            self.ended.emit("outdated")

    def is_busy(self) -> bool:
        """True while a computation runs (or one waits for it)."""
        return self._job is not None

    def shutdown(self) -> None:
        """Drop a waiting request and wait for the running one (the window is closing). Safe to call twice."""
        self._drop_waiting()
        if self._job is not None:
            WORKERS.join(self._job.number)

    @Slot(int)
    def _on_joined(self, number: int) -> None:
        """A worker thread has ended: show its result or its error, then start the request waiting."""
        job = self._job
        if job is None or job.number != number:
            return
        self._job = None
        what = self._take(job)
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            self._launch(*waiting)
        else:
            self.busy.hide()
        self.ended.emit(what)

    def _take(self, job: Job) -> str:
        """Show what ``job`` found (or its error); how it ended, for :attr:`ended`."""
        kind, value = job.outcome or ("failed", "the computation stopped without a result")
        if job.entry is not self.entry:
            return "outdated"  # NOTE: a newer run arrived meanwhile; these are not its weights
        if kind == "done":
            self._trained = value[0]  # NOTE: the next request reuses the loaded run
            if value[0].sample_count():
                self.sample.setMaximum(value[0].sample_count() - 1)
        if job.superseded:
            return "outdated"
        if kind == "failed":
            self._say(value[:1].upper() + value[1:], error=True)
            return "failed"
        self.result = value[1]
        self._say(TRAINING_TEXT if self.training else "")
        try:
            self._draw()
        except Exception as exc:  # noqa: BLE001 - the view stays usable and says what went wrong
            self._clear_result()
            self._say(f"The result could not be drawn: {type(exc).__name__}: {exc}", error=True)
            return "failed"
        return job.what

    # ------------------------------------------------------------------ drawing
    def _clear_result(self) -> None:
        self.result = None
        self._tiles = None
        self.plot.clear_image()
        self._set_texts(0)
        self._outline(None)
        self.caption.setText("")

    def _draw(self) -> None:
        if self.result is None:
            return
        if isinstance(self.result, _probes().TopPatches):
            self._draw_patches(self.result)
        elif isinstance(self.result, _probes().Dream):
            self._draw_dream(self.result)
        elif isinstance(self.result, _probes().Neighbours):
            self._draw_nearest(self.result)

    def _show_tiles(self, images: np.ndarray, inside: np.ndarray | None, captions: list[str], samples: list[int]) -> None:
        """``images`` (N, C, h, w) of data-set ``samples`` in a grid that fills the view, each with its caption
        (rich text) below it; one contrast for all: [0, 1] when the pixels lie in it, else their range. A click
        on one looks for the images nearest to its sample (:meth:`_on_plot_click`)."""
        n = len(images)
        mask = np.ones(images.shape[:1] + images.shape[2:], bool) if inside is None else inside
        values = images[np.broadcast_to(mask[:, None], images.shape)]
        lo, hi = (0.0, 1.0) if values.min() >= 0 and values.max() <= 1 else (float(values.min()), float(values.max()))
        tiles = rgba(images, inside, (lo, hi))
        h, w = tiles.shape[1:3]
        self._set_texts(n)
        cols, gx, gy, py = self._grid(n, w, h, self._caption_width(captions))
        self._tiles = (cols, w, h, gx, gy, py, [int(i) for i in samples])
        # NOTE: each tile gets gy transparent rows below it, where its caption goes.
        tiles = np.concatenate([tiles, np.zeros((n, gy, w, 4), np.float32)], axis=1)
        self.plot.show_image(tile(tiles, cols=cols, pad=gx, fill=0.0, pad_y=py))
        self._outline(None)
        for i, (t, text) in enumerate(zip(self._texts, captions)):
            r, c = divmod(i, cols)
            self._caption(t, text, c * (w + gx) + w / 2, r * (h + gy + py) + h)
        self._fit(cols * (w + gx) - gx, math.ceil(n / cols) * (h + gy + py) - py)

    def _draw_patches(self, found: TopPatches) -> None:
        n = len(found.crops)
        if n == 0:
            self._clear_result()
            self._say("The data set has no images to search.", error=True)
            return
        self._show_tiles(np.stack(found.crops), np.stack(found.inside),
                         [f"<b>{found.scores[i]:.3g}</b><br>{_sample(found.indices[i], found.labels[i])}"
                          for i in range(n)], list(found.indices))
        u = found.unit
        where = (f"the {found.rf_size}×{found.rf_size} window of input pixels it sees at its strongest position"
                 if found.rf_size is not None else "the whole image (a vector unit sees all of it)")
        self.caption.setText(
            f"Top {n} of {found.searched:,} images for {u.kind} {u.index} of '{u.name}': each tile is {where}; "
            "under it, the response and the sample's number and class. Transparent: outside the image."
        )

    def _draw_nearest(self, near: Neighbours) -> None:
        """The sample asked about (outlined), then its nearest images, closest first, each with its distance."""
        images = np.stack([near.query_image, *near.images])
        captions = [f"<b>sample</b><br>{_sample(near.query, near.query_label)}"]
        captions += [f"<b>{d:.3g}</b><br>{_sample(i, label)}"
                     for d, i, label in zip(near.distances, near.indices, near.labels)]
        self._show_tiles(images, None, captions, [near.query, *near.indices])
        self._outline((0, 0, *images.shape[2:]))
        shared = ""
        if near.same_class is not None and len(near.indices):
            shared = f"; {near.same_class} of these {len(near.indices)} share its class ({near.query_label})"
        self.caption.setText(
            f"The {len(near.indices)} images nearest to sample #{near.query} (outlined) among the {near.searched:,} "
            f"others, by the distance between their {near.features:,} output values at '{near.name}'{shared}. "
            "Under each: the distance and the sample's number and class."
        )

    def _draw_dream(self, made: Dream) -> None:
        """The dreamt input with its window outlined, and beside it (for a channel) the window enlarged."""
        self._tiles = None  # NOTE: no sample of the data set to click on
        img = made.image
        region = made.window[:, made.inside] if made.window is not None else img.reshape(img.shape[0], -1)
        lo, hi = (float(v) for v in np.percentile(region, [1, 99]))
        whole = rgba(img[None], None, (lo, hi))[0]
        h, w = whole.shape[:2]
        panels = [whole]
        captions = [f"<b>response {made.response:.3g}</b>"]
        if made.window is not None:
            s = made.window.shape[-1]
            k = max(1, h // s)  # NOTE: enlarged by a whole factor, so its pixels stay square and sharp
            zoom = rgba(made.window[None], made.inside[None], (lo, hi))[0].repeat(k, axis=0).repeat(k, axis=1)
            panels.append(zoom)
            captions.append(f"its window, ×{k}")
        widths = sum(p.shape[1] for p in panels)
        scale = min(max(self.plot.width(), 100) / (widths * 1.25), max(self.plot.height() - CAPTION_PX, 40) / h)
        gap = max(2, math.ceil(48 / scale))  # NOTE: 48 screen pixels apart, so the captions stay apart too
        gy = max(1, math.ceil(CAPTION_PX / scale))
        canvas = np.zeros((h + gy, sum(p.shape[1] for p in panels) + gap * (len(panels) - 1), 4), np.float32)
        x = 0
        self._set_texts(len(panels))
        for p, text, t in zip(panels, captions, self._texts):
            canvas[: p.shape[0], x : x + p.shape[1]] = p
            self._caption(t, text, x + p.shape[1] / 2, h)
            x += p.shape[1] + gap
        self.plot.show_image(canvas)
        self._fit(canvas.shape[1], canvas.shape[0])
        self._outline(made.box)
        u = made.unit
        self.caption.setText(
            f"An input grown from noise by {made.steps} steps (learning rate {made.lr:g}) to make {u.kind} "
            f"{u.index} of '{u.name}' respond strongly"
            + (" at the centre of its map: only the outlined window can change it" if made.box else "")
            + f". Contrast stretched to {lo:.2g} … {hi:.2g} (the data's pixel scale)."
        )

    def _outline(self, box: tuple[int, int, int, int] | None) -> None:
        """A frame around ``box`` (top, left, height, width) on the first image; hidden for None."""
        if self._frame is None:
            self._frame = QGraphicsRectItem()
            self._frame.setPen(pg.mkPen(OUTLINE, width=2))
            self.plot.addItem(self._frame)
        self._frame.setVisible(box is not None)
        if box is not None:
            top, left, bh, bw = box
            self._frame.setRect(QRectF(left, top, bw, bh))

    def tile_at(self, x: float, y: float) -> int | None:
        """The data-set sample of the tile at image coordinates (x, y), or None off the tiles."""
        if self._tiles is None:
            return None
        cols, w, h, gx, gy, py, samples = self._tiles
        col, dx = divmod(x, w + gx)
        row, dy = divmod(y, h + gy + py)
        i = int(row) * cols + int(col)
        if x < 0 or y < 0 or col >= cols or dx >= w or dy >= h + gy or i >= len(samples):
            return None  # NOTE: a tile's caption counts as the tile; the gaps do not
        return samples[i]

    def _on_plot_click(self, event) -> None:
        """A click on a tile: the images nearest to its sample, at the block on show."""
        if event.button() != Qt.MouseButton.LeftButton:
            return
        at = self.plot.getPlotItem().getViewBox().mapSceneToView(event.scenePos())
        sample = self.tile_at(at.x(), at.y())
        if sample is not None and self.nearest_button.isEnabled():
            self.sample.setValue(sample)
            self.find_nearest()

    def _caption(self, item: pg.TextItem, text: str, x: float, y: float) -> None:
        item.setHtml(f"<div align='center'>{text}</div>")
        # NOTE: a fixed text width, so that the lines centre on the tile (without one they align left).
        item.setTextWidth(CAPTION_WIDTH_PX)
        item.setPos(x, y)

    def _caption_width(self, captions: list[str]) -> float:
        """Screen pixels the widest line of ``captions`` takes, laid out as the caption items lay them out."""
        doc = QTextDocument()
        doc.setDefaultFont(self._texts[0].textItem.font() if self._texts else self.font())
        widest = 0.0
        for text in captions:
            doc.setHtml(text)
            widest = max(widest, doc.idealWidth())
        return widest

    def _grid(self, n: int, w: int, h: int, caption_px: float = 0.0) -> tuple[int, int, int, int]:
        """Columns, horizontal gap, caption rows and gap between rows (image pixels) that show ``n`` tiles
        of w×h largest, spread over the width, each tile and its gap at least as wide as a caption line of
        ``caption_px`` screen pixels, so that captions never meet."""
        width, height = max(self.plot.width(), 100), max(self.plot.height(), 80)
        cell = max(MIN_CELL_PX, caption_px + 8)  # the narrowest a tile and its gap may be, on screen
        best = (0.0, 1)
        for cols in range(1, n + 1):
            if cols > 1 and width / cols < cell:
                break  # NOTE: more columns only get narrower
            rows = math.ceil(n / cols)
            # a tile's screen size: its row holds it, its caption and a 6-pixel gap
            side = min((width / cols - 6) * max(w, h) / w, (height / rows - CAPTION_PX - 6) * max(w, h) / h)
            if side > best[0]:
                best = (side, cols)
        side, cols = best
        scale = max(side, 8.0) / max(w, h)  # screen pixels per image pixel
        tile_w = w * scale
        gx = max(1, math.ceil(max(6.0, cell - tile_w, width / cols - tile_w - 6) / scale))
        gy = max(1, math.ceil(CAPTION_PX / scale))
        py = max(1, math.ceil(6.0 / scale))
        return cols, gx, gy, py

    def _fit(self, width: float, height: float) -> None:
        self.plot.getPlotItem().getViewBox().setRange(xRange=(0, width), yRange=(0, height), padding=0.02)

    def _set_texts(self, n: int) -> None:
        """``n`` caption items on show; the pool only grows and the rest are hidden.

        NOTE: never removed, so no Qt item of this view is left for the garbage collector to free.
        """
        while len(self._pool) < n:
            item = pg.TextItem(anchor=(0.5, 0.0), color=CAPTION)
            self.plot.addItem(item)
            self._pool.append(item)
        for i, item in enumerate(self._pool):
            item.setVisible(i < n)
        self._texts = self._pool[:n]

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.result is not None:
            self._draw()

    # ------------------------------------------------------------------ saving
    def csv(self) -> tuple[list[str], list] | None:
        if self.result is None:
            return None
        if isinstance(self.result, _probes().TopPatches):
            f = self.result
            rows = [(rank, int(i), label or "", float(s), *map(int, box))
                    for rank, (i, label, s, box) in enumerate(zip(f.indices, f.labels, f.scores, f.boxes), 1)]
            return ["rank", "sample", "class", "response", "top", "left", "height", "width"], rows
        if isinstance(self.result, _probes().Dream):
            img = self.result.image
            c, y, x = np.indices(img.shape).reshape(3, -1)
            return ["channel", "y", "x", "value"], zip(c, y, x, img.reshape(-1))
        if isinstance(self.result, _probes().Neighbours):
            near = self.result
            rows = [(0, near.query, near.query_label or "", 0.0)]
            rows += [(rank, int(i), label or "", float(d))
                     for rank, (i, label, d) in enumerate(zip(near.indices, near.labels, near.distances), 1)]
            return ["rank", "sample", "class", "distance"], rows
        return None

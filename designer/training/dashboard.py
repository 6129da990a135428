"""The training dashboard: controls, progress, live loss and metric curves, and what happened.

The training session's events (:mod:`engine.training.events`) reach the ``on_<event>`` method
of the same name; they only append to numpy buffers and remember the latest progress;
a :class:`QTimer` draws whatever changed, one to five times a second. So the plots cost the
same whether batches come at 10 or 10,000 a second, and nothing draws per signal.

The timer adapts. Training runs in another process, but on a small machine every
millisecond the window spends is taken from it, so the dashboard watches the share of one
core its thread has used since the last frame (handlers, layout, painting: everything the
window does during the run) and slows its frames while that share is above
:data:`UI_BUDGET`, down to :data:`MIN_HZ`. It skips drawing while it is hidden.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.plaintext import escape_rich
from designer.training.change_marks import ChangeMarks, PauseBar, mark_label
from designer.training.plots import RUN_COLORS, CurveBuffer, StillView, make_plot, style_plot
from engine import tasks
from engine.training.events import (
    BatchesDone,
    CrossValidated,
    EarlyStopped,
    EpochDone,
    Failed,
    Finished,
    FoldDone,
    PointDone,
    PointStarted,
    Started,
    SweepDone,
)

__all__ = [
    "EMA_BETA", "LiveText", "MAX_HZ", "METRIC_BOUNDS", "MIN_HZ", "UI_BUDGET", "TrainingDashboard", "clock", "metric_bounds",
    "spread_text",
]

MIN_HZ, MAX_HZ = 0.5, 5  # how often the plots redraw during a run (the slowest on a busy, small machine)
UI_BUDGET = 0.01  # the share of one core the window's thread may use before the frame rate drops
EMA_BETA = 0.9  # weight of the past in the smoothed loss
SCORES_AFTER_MS = 60  # in a frame, the score plot draws this long after the loss plot (two short pauses, not one long)

EMPTY_TEXT = (
    "<p style='font-size:12pt'><b>No training yet</b></p>"
    "<p>Choose the data and how to train in <b>Training setup</b>, then press <b>Train</b> (F5).<br>"
    "The loss and the score of every epoch appear here while the network learns.</p>"
)
#: Each score's title in words, as the output blocks declare it (``r2`` -> ``R²``).
METRIC_NAMES = {key: m.title for key, m in tasks.metrics().items()}
#: The values each score can take, (lowest, highest), None where unbounded: the plots reach to them.
METRIC_BOUNDS = {key: m.bounds for key, m in tasks.metrics().items()}
_TRAIN, _VAL = "#2f6fde", "#e8730c"


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a number of seconds."""
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def metric_title(key: str) -> str:
    """``val_accuracy`` -> ``accuracy``; a multi-head prefix is kept (``boxes_box_iou`` -> ``boxes box IoU``)."""
    key = key.removeprefix("val_")
    name = _known_metric(key, METRIC_NAMES)
    if name is None:
        return key.replace("_", " ")
    return (key[: -len(name)].replace("_", " ") + METRIC_NAMES[name]).strip()


def _known_metric(key: str, names) -> str | None:
    """The first of ``names`` that ``key`` is, or ends with after a multi-head prefix (``boxes_box_iou``)."""
    return next((name for name in names if key == name or key.endswith("_" + name)), None)


def metric_bounds(keys) -> tuple[float | None, float | None]:
    """The bounds that all the scores ``keys`` share (``val_accuracy`` and ``val_box_iou`` -> 0, 1)."""
    floors, ceilings = [], []
    for key in keys:
        bounds = METRIC_BOUNDS.get(_known_metric(key.removeprefix("val_"), METRIC_BOUNDS), (None, None))
        floors.append(bounds[0])
        ceilings.append(bounds[1])
    floor = None if not floors or None in floors else min(floors)
    ceiling = None if not ceilings or None in ceilings else max(ceilings)
    return floor, ceiling


def format_metric(key: str, value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if "accuracy" in key:
        return f"{100 * value:.1f} %"
    return f"{value:.4g}"


def _score(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.4g}"


def spread_text(done: CrossValidated) -> str:
    """A cross-validation's main score, e.g. ``validation accuracy 0.962 ± 0.011 (folds: 0.950, 0.970, 0.966)``.

    Empty when no fold finished.
    """
    key = done.main_metric
    mean = done.mean.get(key) if key is not None else None
    if mean is None:
        return ""
    std = done.std.get(key, 0.0)
    scores = [f.val[key] for f in done.results if not f.stopped and key in f.val]
    return f"validation {metric_title(key)} {_score(mean)} ± {_score(std)} (folds: {', '.join(map(_score, scores))})"


class LiveText(QWidget):
    """One line of muted text that changes while training (the speed): a new text only repaints it.

    A QLabel asks its layout to recompute on every new text, and layouts pass that up to the
    main window, which then lays out every dock again: measured, about 3 ms of the window's time
    on each frame. This one has a fixed size, made to fit ``sample``.
    """

    def __init__(self, sample: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        metrics = self.fontMetrics()
        self.setFixedSize(metrics.horizontalAdvance(sample) + 4, metrics.height() + 4)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel's name
        if text != self._text:
            self._text = text
            self.setAccessibleName(text)  # NOTE: what a screen reader reads, as it would from a QLabel
            self.update()

    def clear(self) -> None:
        self.setText("")

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setPen(QColor(theme.colors()["muted"]))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self._text)


class TrainingDashboard(QWidget):
    """Train / Pause / Stop, a progress bar, the loss and metric plots and a message line.

    The controller feeds it: :meth:`begin_run`, then :meth:`on_started`, :meth:`on_batches_done`,
    :meth:`on_epoch_done`, and :meth:`on_finished` or :meth:`on_failed`. A cross-validation sends
    :meth:`on_started` once per fold (the curves restart; earlier folds' validation scores stay,
    faint), :meth:`on_fold_done` after each fold and :meth:`on_cross_validated` at its end. A sweep
    sends :meth:`on_point_started` and :meth:`on_point_done` around each point's run (or
    cross-validation), whose curves start afresh, then the refit's run, and :meth:`on_sweep_done`.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training_dashboard")
        self.redraws = 0  # timer ticks that drew something (tests and benchmarks)
        self._last_tick: tuple[float, float] | None = None  # (wall, this thread's CPU) at the last frame
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // MAX_HZ)
        self._timer.timeout.connect(lambda: self.redraw(split=True))
        self._build()
        self._reset()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(4)

        bar = QHBoxLayout()
        self.train_button, self.pause_button, self.stop_button = QToolButton(), QToolButton(), QToolButton()
        for b in (self.train_button, self.pause_button, self.stop_button):
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setMinimumWidth(80)
            bar.addWidget(b)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setMinimumWidth(160)
        bar.addWidget(self.progress_bar, 1)
        outer.addLayout(bar)

        line = QHBoxLayout()
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setTextFormat(Qt.TextFormat.RichText)
        line.addWidget(self.message_label, 1)
        self.speed_label = LiveText("0,000,000 samples/s")
        self.speed_label.setToolTip("Training samples processed per second")
        line.addWidget(self.speed_label)
        self.device_label = QLabel()
        self.device_label.setToolTip("Where this run trains")
        self.device_label.setProperty("role", "muted")
        line.addWidget(self.device_label)
        self.log_box = QCheckBox("Log scale")
        self.log_box.setToolTip("Show the loss on a logarithmic axis: late, small improvements become visible")
        self.log_box.toggled.connect(self.set_log_scale)
        line.addWidget(self.log_box)
        outer.addLayout(line)
        self.pause_bar = PauseBar()  # NOTE: shown by the controller while a run is paused
        outer.addWidget(self.pause_bar)

        self.stack = QStackedWidget()
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setProperty("role", "muted")
        self.stack.addWidget(self.empty_label)

        self.loss_plot = make_plot("Loss", "loss")
        self.metric_plot = make_plot("Validation score", "score")
        li = self.loss_plot.getPlotItem()
        faint = pg.mkColor(_TRAIN)
        faint.setAlpha(90)
        # NOTE: no antialiasing on the long curves: it multiplies their paint time.
        self.batch_curve = li.plot(pen=pg.mkPen(faint, width=1), name="training, per batch")
        self.smooth_curve = li.plot(pen=pg.mkPen(_TRAIN, width=2), name="training, smoothed")
        self.train_curve = li.plot(
            **_epoch_style(_TRAIN, pg.mkPen(_TRAIN, width=1.5, style=Qt.PenStyle.DashLine)), name="training, per epoch"
        )
        self.val_curve = li.plot(**_epoch_style(_VAL), name="validation, per epoch")
        self.loss_view = StillView(self.loss_plot)
        self.metric_view = StillView(self.metric_plot)
        self.marks = ChangeMarks(self.loss_plot, self.metric_plot)  # settings changed while paused
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.loss_plot)
        split.addWidget(self.metric_plot)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.stack.addWidget(split)
        outer.addWidget(self.stack, 1)

    def set_actions(self, train: QAction, pause: QAction, stop: QAction) -> None:
        """Show the window's Train, Pause and Stop actions as the dashboard's buttons."""
        self.train_button.setDefaultAction(train)
        self.pause_button.setDefaultAction(pause)
        self.stop_button.setDefaultAction(stop)

    def _reset(self) -> None:
        self.batch = CurveBuffer(1024)
        self.smooth = CurveBuffer(1024)
        self.train_epochs = CurveBuffer()
        self.val_epochs = CurveBuffer()
        self.metrics: dict[str, CurveBuffer] = {}
        self._metric_curves: dict[str, pg.PlotDataItem] = {}
        self._ema = 0.0
        self._ema_steps = 0
        self._batches_per_epoch = 1
        self._epochs = 0
        self._latest: BatchesDone | None = None
        self._progress_dirty = False
        self._paused = False
        self._fold, self._folds = 0, 0  # during a cross-validation: this fold (1..k) and k
        self._fold_scores: list[str] = []  # the finished folds' validation scores, as shown
        self._main_metric = "score"
        self._plots_for: tuple[int, str] | None = None  # (epochs, main metric) the plots are set up for
        # NOTE: after a new batch size: (epoch, batches trained before, where they ended, the epoch's batches, the
        # old batches per epoch); the rest of that epoch spreads over what was left of it
        self._resized: tuple[int, int, float, int, int] | None = None
        self._point: PointStarted | None = None  # during a sweep: the point training (None: none, or the refit)
        self._points = 0  # a sweep's points (0: not a sweep)
        self._refit = ""  # during a sweep's refit: the chosen point's label
        self._last_point: PointDone | None = None

    # ------------------------------------------------------------------ the run
    def is_empty(self) -> bool:
        return self.stack.currentIndex() == 0

    def show_empty(self) -> None:
        """The state before any run (another project was opened): no curves, message or progress of the last one."""
        self.begin_run("")
        self._timer.stop()
        self.stack.setCurrentIndex(0)
        self.progress_bar.resetFormat()

    def begin_run(
        self, text: str = "Preparing the data and the model…", epochs: int | None = None, main_metric: str | None = None
    ) -> None:
        """Clear the plots for a new run and start redrawing.

        ``epochs`` and ``main_metric``, when the caller knows them, set the plots' ranges and axis
        label now, while the training process loads the data, instead of once training has begun.
        """
        self._reset()
        self.marks.clear()
        self.pause_bar.hide()
        for curve in (self.batch_curve, self.smooth_curve, self.train_curve, self.val_curve):
            curve.setData([], [])
        mi = self.metric_plot.getPlotItem()
        for curve in list(mi.listDataItems()):
            mi.removeItem(curve)
        mi.legend.setVisible(False)  # NOTE: an empty legend still draws its frame
        self.stack.setCurrentIndex(1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("Starting…")
        self.speed_label.clear()
        self.device_label.clear()
        self.set_message(text)
        if epochs:
            self._set_up_plots(epochs, main_metric or "score")
        self._last_tick = None
        self._timer.start()

    def _set_up_plots(self, epochs: int, metric: str) -> None:
        """The score axis's label and both views' ranges for a run of ``epochs`` scored by ``metric``."""
        if self._plots_for == (epochs, metric):
            return
        self._plots_for = (epochs, metric)
        self.metric_plot.getPlotItem().setLabel("left", escape_rich(metric_title(metric)))  # NOTE: HTML; a head's name in it
        x_max = max(epochs, 1)
        self.loss_view.begin(x_max, floor=0.0)  # NOTE: every loss here is 0 or more
        self.metric_view.begin(x_max, *metric_bounds([metric]))

    def on_started(self, ev: Started) -> None:
        self._batches_per_epoch = max(1, ev.batches_per_epoch)
        self._epochs = ev.epochs
        self._fold, self._folds = ev.fold, ev.folds
        if self._points and self._point is None:  # NOTE: a sweep's run outside its points is the refit
            self._begin_point()
            self._refit = self._last_point.label if self._last_point is not None else "the chosen point"
        if self._fold > 1:
            self._begin_fold()
        self.device_label.setText(f"on {ev.device or '?'}")
        self._main_metric = metric = ev.main_metric
        text = f"training on {ev.train:,} samples, validating on {ev.val:,}; {ev.params:,} trainable parameters."
        if self._folds:
            text = f"Fold {self._fold}/{self._folds}: {text}"
            if self._fold_scores:
                text += f" Validation {metric_title(metric)} of the folds so far: {', '.join(self._fold_scores)}."
        if self._points:
            text = f"{self._sweep_prefix()}: {text[:1].lower() + text[1:]}"
        self.set_message(text[:1].upper() + text[1:])
        self.progress_bar.setFormat(self._epoch_text(1))
        self._set_up_plots(self._epochs, metric)  # NOTE: nothing to do when begin_run guessed right

    def show_history(self, rows: list[dict[str, Any]], batch_losses: np.ndarray | None = None) -> None:
        """Draw the epochs a continued or forked run had before this session (and their batch losses)."""
        for row in rows:
            self.on_epoch_done(EpochDone.from_row(row))
        if batch_losses is not None and len(batch_losses):
            steps = min(len(batch_losses), int(rows[-1].get("step") or len(batch_losses))) if rows else 0
            losses = np.asarray(batch_losses[:steps], dtype=np.float64)
            xs = np.arange(1, steps + 1, dtype=np.float64) / self._batches_per_epoch
            self.batch.extend(xs, losses)
            self.smooth.extend(xs, self._smoothed(losses))
        self._progress_dirty = True

    def _epoch_text(self, epoch: int) -> str:
        """``Epoch 2/10``, or ``Fold 1/5 · epoch 2/10`` during a cross-validation, after
        ``Point 2/4 (weight_decay=0.001) · `` during a sweep."""
        text = f"Epoch {epoch}/{self._epochs}"
        if self._folds:
            text = f"Fold {self._fold}/{self._folds} · epoch {epoch}/{self._epochs}"
        if self._points:
            text = f"{self._sweep_prefix()} · {text[:1].lower() + text[1:]}"
        return text

    def _sweep_prefix(self) -> str:
        """``Point 2/4 (weight_decay=0.001)``, or ``Refit (weight_decay=0.001)`` during a sweep."""
        if self._point is None:
            return f"Refit ({self._refit})"
        return f"Point {self._point.index}/{self._point.points} ({self._point.label})"

    def _begin_fold(self) -> None:
        """A new fold of a cross-validation: its curves start empty; the last fold's scores stay, faint."""
        mi = self.metric_plot.getPlotItem()
        for key, buf in self.metrics.items():
            if len(buf):
                faint = pg.mkColor(self._metric_curves[key].opts["pen"].color())
                faint.setAlpha(70)
                mi.plot(buf.x.copy(), buf.y.copy(), pen=pg.mkPen(faint, width=1.5),
                        name="earlier folds" if self._fold == 2 and key == next(iter(self.metrics)) else None)
            buf.clear()
        for buf in (self.batch, self.smooth, self.train_epochs, self.val_epochs):
            buf.clear()
        self._ema, self._ema_steps = 0.0, 0
        self._latest = None

    def _begin_point(self) -> None:
        """A sweep's next point (or its refit): every curve starts empty, the earlier points' too."""
        mi = self.metric_plot.getPlotItem()
        for curve in list(mi.listDataItems()):
            mi.removeItem(curve)
        mi.legend.setVisible(False)
        self.metrics, self._metric_curves = {}, {}
        for buf in (self.batch, self.smooth, self.train_epochs, self.val_epochs):
            buf.clear()
        for curve in (self.batch_curve, self.smooth_curve, self.train_curve, self.val_curve):
            curve.setData([], [])
        self._ema, self._ema_steps = 0.0, 0
        self._latest = None
        self._fold, self._folds = 0, 0
        self._fold_scores = []
        self._progress_dirty = True

    def on_point_started(self, ev: PointStarted) -> None:
        """A sweep's point begins: its run's (or folds') curves start afresh."""
        self._begin_point()
        self._point, self._points = ev, ev.points
        self.progress_bar.setValue(int(self.progress_bar.maximum() * (ev.index - 1) / max(1, ev.points)))
        self.progress_bar.setFormat(f"{self._sweep_prefix()} · preparing…")
        self.set_message(f"{self._sweep_prefix()}: preparing the data and the model…")

    def on_point_done(self, ev: PointDone) -> None:
        """A sweep's point has ended: its validation score (± the spread over its folds), or why not."""
        self._point, self._last_point = None, ev
        what = f"Point {ev.index}/{ev.points} ({ev.label})"
        if ev.score is None:
            self.set_message(f"{what} {ev.status}" + (f": {ev.message}" if ev.message else "."),
                             "error" if ev.status == "failed" else "info")
            return
        spread = f" ± {_score(ev.spread)}" if ev.spread is not None else ""
        self.set_message(f"{what} {ev.status}: validation {metric_title(self._main_metric)} {_score(ev.score)}{spread}.")

    def on_sweep_done(self, ev: SweepDone) -> None:
        """The sweep is over: the chosen point and its score, and the refit's test scores."""
        self._end()
        n, done = self._points or len(ev.results), sum(r.status == "finished" for r in ev.results)
        text = f"Sweep of {n} points" if not ev.stopped else f"Stopped the sweep after {done} of {n} points"
        text += f" in {clock(ev.seconds)}: "
        chosen = ev.chosen
        if chosen is None:
            text += "no point finished with a score."
        else:
            spread = f" ± {_score(chosen.spread)}" if chosen.spread is not None else ""
            text += (f"chosen <b>{html.escape(chosen.label)}</b> (validation {escape_rich(metric_title(ev.metric))} "
                     f"{_score(chosen.score)}{spread}).")
        if ev.refit is not None and ev.refit.test:
            tests = " · ".join(f"test {escape_rich(metric_title(k))} <b>{format_metric(k, v)}</b>"
                               for k, v in ev.refit.test.items())
            text += f" Refit on training + validation data: {tests}."
        if ev.message:
            text += f" {html.escape(ev.message[:1].upper() + ev.message[1:])}."
        self.set_message(text, "ok", rich=True)
        self.progress_bar.setFormat(f"Stopped — {done} of {n} points" if ev.stopped else f"Finished — {n} points")
        if not ev.stopped:
            self.progress_bar.setValue(self.progress_bar.maximum())

    def on_fold_done(self, ev: FoldDone) -> None:
        """A fold of a cross-validation has ended: remember and show its validation score."""
        val = ev.val
        key = f"val_{self._main_metric}"
        if key not in val:
            key = next((k for k in val if k != "val_loss"), "val_loss")
        if ev.stopped or val.get(key) is None:
            return
        self._fold_scores.append(_score(float(val[key])))
        self.set_message(f"Fold {ev.fold}/{ev.folds} done: validation {metric_title(key)} {self._fold_scores[-1]}.")

    def on_batches_done(self, ev: BatchesDone) -> None:
        """Append the batch losses (x in epochs) and the smoothed loss; remember the progress."""
        losses = np.asarray(ev.losses, dtype=np.float64)
        if losses.size:
            # NOTE: not ev.step: a cross-validation counts steps over all folds; the curves show one fold.
            xs = self._batch_x(ev.epoch, np.arange(ev.batch - losses.size + 1, ev.batch + 1, dtype=np.float64))
            self.batch.extend(xs, losses)
            self.smooth.extend(xs, self._smoothed(losses))
        self._latest = ev
        self._progress_dirty = True

    def _smoothed(self, losses: np.ndarray) -> np.ndarray:
        """Exponential moving average, bias-corrected so the first points are not pulled to zero."""
        out = np.empty_like(losses)
        ema, k = self._ema, self._ema_steps
        for i, v in enumerate(losses):
            if math.isfinite(v):
                ema = EMA_BETA * ema + (1 - EMA_BETA) * v
                k += 1
            out[i] = ema / (1 - EMA_BETA**k) if k else math.nan
        self._ema, self._ema_steps = ema, k
        return out

    def on_epoch_done(self, ev: EpochDone) -> None:
        epoch = float(ev.epoch)
        self.train_epochs.append(epoch, _num(ev.train_loss))
        if ev.val_loss is not None:
            self.val_epochs.append(epoch, _num(ev.val_loss))
        for key, value in ev.scores.items():
            if value is not None:
                self._metric_buffer(key).append(epoch, _num(value))

    def _metric_buffer(self, key: str) -> CurveBuffer:
        if key not in self.metrics:
            color = _VAL if not self.metrics else RUN_COLORS[(len(self.metrics) + 1) % len(RUN_COLORS)]
            self.metrics[key] = CurveBuffer()
            self._metric_curves[key] = self.metric_plot.getPlotItem().plot(
                **_epoch_style(color), name=escape_rich(f"validation {metric_title(key)}")
            )
            self.metric_plot.getPlotItem().legend.setVisible(True)
            self.metric_view.set_bounds(*metric_bounds(self.metrics))
        return self.metrics[key]

    def _batch_x(self, epoch: int, batches: np.ndarray) -> np.ndarray:
        """Where batches (their numbers in ``epoch``) sit on the epoch axis."""
        resized = self._resized
        if resized is None or resized[0] != epoch:
            return (epoch - 1) + batches / self._batches_per_epoch
        _, before, at, total, old = resized
        xs = (epoch - 1) + batches / old
        after = batches > before
        xs[after] = at + (batches[after] - before) * (epoch - at) / max(total - before, 1)
        return xs

    def _batches_in(self, epoch: int) -> int:
        """The number of batches of ``epoch`` (another in the epoch where the batch size changed)."""
        return self._resized[3] if self._resized is not None and self._resized[0] == epoch else self._batches_per_epoch

    def on_resumed(self, ev) -> None:
        """A paused run went on: the settings it took on are marked on the curves; a new batch size placed."""
        if not ev.changes:
            return
        self.marks.add(ev.at, mark_label(ev.changes))
        if ev.epoch_batches:
            self._resized = (ev.epoch, ev.batch, ev.at, ev.epoch_batches, self._batches_in(ev.epoch))
            self._batches_per_epoch = max(1, ev.batches_per_epoch)
        self.set_message(f"Resumed with {mark_label(ev.changes)}.")

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._progress_dirty = True
        if paused:
            self.set_message("Paused. Press Resume (F6) to go on, or Stop (Shift+F5) to end the run.")
        self.redraw()

    def on_early_stopped(self, ev: EarlyStopped) -> None:
        self.set_message(
            f"Early stopping at epoch {ev.epoch}: the validation loss has not improved since epoch {ev.best_epoch}."
        )

    def _end_views(self) -> None:
        for view in (self.loss_view, self.metric_view):
            view.end()

    def _end(self) -> None:
        """The run is over: draw what is left and stop the frames."""
        self.redraw()
        self._timer.stop()
        self._end_views()

    def on_finished(self, ev: Finished) -> None:
        self._end()
        what = "Stopped" if ev.stopped else "Finished"
        self.progress_bar.setFormat(f"{what} — epoch {ev.epochs_run}/{self._epochs}")
        if not ev.stopped:
            self.progress_bar.setValue(self.progress_bar.maximum())
        if not ev.epochs_run and ev.message:
            self.set_message(ev.message[:1].upper() + ev.message[1:] + ".", "ok")
            return
        parts = [f"test {escape_rich(metric_title(k))} <b>{format_metric(k, v)}</b>" for k, v in ev.test.items()]
        if ev.test_loss is not None:
            parts.append(f"test loss {ev.test_loss:.4g}")
        text = f"{what} after {ev.epochs_run} epoch(s) in {clock(ev.seconds)}"
        if ev.best_epoch:
            text += f" (best epoch {ev.best_epoch})"
        text += (": " + " · ".join(parts)) if parts else ": no test split to score."
        self.set_message(text, "ok", rich=True)

    def on_cross_validated(self, ev: CrossValidated) -> None:
        self._end()
        k, done = ev.k, sum(not f.stopped for f in ev.results)
        spread = spread_text(ev)
        text = f"{k}-fold cross-validation"
        if ev.stopped:
            text = f"Stopped the {text} after {done} of {k} folds"
        text += f" in {clock(ev.seconds)}: "
        text += f"<b>{html.escape(spread)}</b>." if spread else "no fold finished."
        self.set_message(text, "ok", rich=True)
        if ev.stopped:
            self.progress_bar.setFormat(f"Stopped — fold {self._fold}/{k}")
        else:
            self.progress_bar.setFormat(f"Finished — {k} folds")
            self.progress_bar.setValue(self.progress_bar.maximum())

    def on_failed(self, ev: Failed) -> None:
        self._end()
        text = ev.message[:1].upper() + ev.message[1:]
        self.set_message(f"<b>Training failed.</b> {html.escape(text)}", "error", rich=True)
        self.progress_bar.setFormat("Failed")

    def show_idle(self, text: str, kind: str = "error") -> None:
        """A message when a run could not even start (the network has errors, say)."""
        self.set_message(text, kind)

    # ------------------------------------------------------------------ drawing
    def redraw(self, split: bool = False) -> None:
        """Draw what changed since the last tick; then pick the next tick to stay within the budget.

        ``split`` (the timer's frames): the score plot draws :data:`SCORES_AFTER_MS` later than the
        loss plot, so the window handles clicks and keys between the two paints instead of after both.
        """
        if not self.isVisible():
            return  # NOTE: drawn when shown again (showEvent); the buffers keep everything
        drew = False
        drew |= self.batch.draw(self.batch_curve)
        drew |= self.smooth.draw(self.smooth_curve)
        drew |= self.train_epochs.draw(self.train_curve)
        drew |= self.val_epochs.draw(self.val_curve)
        if drew:
            self.loss_view.follow(self.batch.y, self.smooth.y, self.train_epochs.y, self.val_epochs.y)
        if self._progress_dirty:
            self._draw_progress()
            drew = True
        if split and any(buf.dirty for buf in self.metrics.values()):
            QTimer.singleShot(SCORES_AFTER_MS, self, self._draw_scores)
            drew = True
        else:
            drew |= self._draw_scores()
        if drew:
            self.redraws += 1
        self._pace()

    def _draw_scores(self) -> bool:
        """The score plot's part of a frame; True when it drew."""
        drew = False
        for key, buf in self.metrics.items():
            drew |= buf.draw(self._metric_curves[key])
        if drew:
            self.metric_view.follow(*(buf.y for buf in self.metrics.values()))
        return drew

    def _pace(self) -> None:
        """Slow the frames while the window's thread uses more than its budget of a core; speed up below half."""
        now = _now()
        last, self._last_tick = self._last_tick, now
        if last is None or now[0] <= last[0]:
            return
        share = (now[1] - last[1]) / (now[0] - last[0])
        interval = self._timer.interval() / 1000.0
        if share > UI_BUDGET:
            interval *= 1.3
        elif share < UI_BUDGET / 2:
            interval /= 1.3
        interval = min(1.0 / MIN_HZ, max(1.0 / MAX_HZ, interval))
        self._timer.setInterval(int(1000 * interval))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.redraw()

    def _draw_progress(self) -> None:
        self._progress_dirty = False
        d = self._latest
        if d is None:
            if self._paused:
                self.progress_bar.setFormat("Paused")
            return
        total = max(1, d.total_steps)
        done, eta = min(1.0, d.step / total), d.eta
        if self._point is not None:  # NOTE: a sweep's bar and time left are the whole sweep's
            done = (self._point.index - 1 + done) / self._point.points
            eta += (self._point.points - self._point.index) * (d.elapsed + d.eta)
        # NOTE: setValue repaints at once; without updates the bar paints once, with its new text, later
        self.progress_bar.setUpdatesEnabled(False)
        self.progress_bar.setValue(int(self.progress_bar.maximum() * done))
        self.progress_bar.setUpdatesEnabled(True)
        batch = "" if self._points else f" · batch {d.batch}/{self._batches_in(d.epoch)}"  # NOTE: a sweep's is long
        text = f"{self._epoch_text(d.epoch)}{batch} · {clock(eta)} left"
        self.progress_bar.setFormat(("Paused — " if self._paused else "") + text)
        self.speed_label.setText(f"{d.samples_per_s:,.0f} samples/s")

    def set_log_scale(self, on: bool) -> None:
        self.loss_plot.getPlotItem().setLogMode(y=bool(on))
        if self.log_box.isChecked() != on:
            self.log_box.setChecked(on)

    def set_message(self, text: str, kind: str = "info", rich: bool = False) -> None:
        """Show ``text`` under the controls; ``kind`` is info, ok or error (which colours it).

        Plain text is escaped; ``rich`` text is shown as the HTML it is.
        """
        c = theme.colors()
        color = {"error": c["error"], "ok": c["ok"]}.get(kind, c["muted"])
        self.message_kind = kind
        body = text if rich else html.escape(text)
        self.message_label.setText(f"<span style='color:{color}'>{body}</span>")
        self.message_label.setVisible(bool(text))

    def message_text(self) -> str:
        """The message as plain text (for tests and accessibility)."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.message_label.text())
        return doc.toPlainText()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            for plot in (self.loss_plot, self.metric_plot):
                style_plot(plot)


def _now() -> tuple[float, float]:
    """(wall clock, CPU time of the calling thread) in seconds."""
    return time.perf_counter(), time.thread_time()


def _epoch_style(color: str, pen=None) -> dict[str, Any]:
    """A per-epoch curve: a line with a dot on each epoch.

    The dot's pen and brush are objects, not colour names: pyqtgraph keys its rendered dots by
    the pen and brush objects, so names (made into new objects on every update) re-rendered
    every dot on every frame (measured: 1.1 ms against 0.7 ms a curve update).
    """
    return dict(
        pen=pen if pen is not None else pg.mkPen(color, width=2), symbol="o", symbolSize=5,
        symbolBrush=pg.mkBrush(color), symbolPen=pg.mkPen(None), antialias=True,
    )


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan

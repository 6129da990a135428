"""Training off the UI thread: a worker that runs the engine's loop and a session that owns it.

:class:`TrainingWorker` lives in a :class:`QThread` and iterates
:meth:`engine.training.trainer.Trainer.events`, relaying each event as a Qt signal.
Batch events are coalesced so the window receives at most :data:`MAX_UPDATES_PER_S`
progress signals a second, whatever the batch rate. :class:`TrainingSession` lives
in the main thread: it owns the thread and the worker, relays their signals (tests
and views connect to it, never to the worker), and always ``quit()`` s and
``wait()`` s the thread, at the end of a run and when the window closes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from engine.training.trainer import Control

__all__ = ["MAX_UPDATES_PER_S", "TrainingSession", "TrainingWorker"]

#: The most progress signals a second the worker sends to the window.
MAX_UPDATES_PER_S = 30


def _merge_batches(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """One ``batches`` payload from two: losses joined, everything else from the newer one."""
    merged = dict(newer)
    merged["losses"] = np.concatenate([older["losses"], newer["losses"]])
    return merged


class TrainingWorker(QObject):
    """Runs one training in whatever thread it is moved to. Create it, move it, then call :meth:`run`.

    Signals (emitted from the worker thread; connect through :class:`TrainingSession`):
        train_event(str, dict): every trainer event by kind; ``batches`` events are coalesced.
            ``probes`` events (every N batches) carry the probe images too, as ``images``.
        done(): the loop has ended (after ``finished`` or ``failed``).
    """

    train_event = Signal(str, object)
    done = Signal()

    def __init__(
        self,
        snapshot: dict[str, Any],
        *,
        base_dir: Path | None = None,
        epochs: int | None = None,
        device: str | None = None,
        control: Control | None = None,
        max_rate: float = MAX_UPDATES_PER_S,
    ) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.base_dir = base_dir
        self.epochs = epochs
        self.device = device
        self.control = control or Control()
        self.min_interval = 1.0 / max_rate
        self.signals_sent = 0  # progress signals, for benchmarks and tests
        self._pending: dict[str, Any] | None = None
        self._last_sent = 0.0
        self._runner = None
        self._images = None
        self._wishes: dict[str, Any] = {}

    def set_probe_wish(self, name: str, value: Any) -> None:
        """Change a probe setting from the next probe run on (called from the main thread).

        ``name`` is one of :data:`engine.probes.runner.ProbeRunner.WISHES`.
        """
        self._wishes[name] = value
        self._forward_wishes()

    def _forward_wishes(self) -> None:
        runner = self._runner
        if runner is None:
            return  # NOTE: kept until the runner exists (see run())
        wishes, self._wishes = self._wishes, {}
        for name, value in wishes.items():
            runner.want(name, value)

    def _with_images(self, data: dict[str, Any]) -> dict[str, Any]:
        """The probe results with the probe images for display (computed once; None when not images)."""
        if self._images is None and self._runner is not None:
            try:
                self._images = self._runner.images()
            except Exception:  # noqa: BLE001 - not image data: the views show no pictures
                self._images = False
        data["images"] = self._images if self._images is not False else None
        return data

    @Slot()
    def run(self) -> None:
        """Train to the end (or to a stop); any exception becomes a ``failed`` event."""
        try:
            from engine.project import project_from_dict
            from engine.training.trainer import Trainer

            project = project_from_dict(self.snapshot, source="<snapshot>")
            trainer = Trainer(
                project, base_dir=self.base_dir, epochs=self.epochs, device=self.device,
                control=self.control, emit_interval=self.min_interval, probes=True,
            )
            for ev in trainer.events():
                if self._runner is None and trainer.probe_runner is not None:
                    self._runner = trainer.probe_runner
                    self._forward_wishes()
                if ev.kind == "batches":
                    self._on_batches(ev.data)
                else:
                    self._flush()
                    if ev.kind == "finished":
                        ev.data.setdefault("history", list(trainer.history))
                        # NOTE: the trained weights (CPU copies) stay with the run for the on-demand views.
                        ev.data["weights"] = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
                    elif ev.kind == "probes":
                        self._with_images(ev.data)
                    self.train_event.emit(ev.kind, ev.data)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the window as a message
            self._flush()
            self.train_event.emit("failed", {"message": f"training stopped with an error: {type(exc).__name__}: {exc}"})
        finally:
            self.done.emit()

    def _on_batches(self, data: dict[str, Any]) -> None:
        self._pending = data if self._pending is None else _merge_batches(self._pending, data)
        now = time.perf_counter()
        # NOTE: a pause blocks the loop right after this event, so what is pending goes out now.
        if now - self._last_sent >= self.min_interval or self.control.paused or self.control.stopped:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        if self._pending is None:
            return
        data, self._pending = self._pending, None
        self._last_sent = now if now is not None else time.perf_counter()
        self.signals_sent += 1
        self.train_event.emit("batches", data)


class TrainingSession(QObject):
    """One run in a worker thread, seen from the main thread.

    Every payload is the trainer's plain dict, passed by reference (``Signal(object)``).

    Signals:
        started(dict): the data is loaded and the model built (device, epochs, batches_per_epoch, ...).
        progress(dict): coalesced batches (epoch, batch, step, total_steps, losses, samples_per_s, eta).
        epoch_done(dict): one epoch's record (train_loss, val_loss, val_<metric>, lr, seconds).
        early_stopped(dict): early stopping ended the run (epoch, best_epoch).
        finished(dict): the run ended normally or by Stop (``stopped``), with test metrics and history.
        failed(str): the run ended with an error; the text says what happened and what to try.
        ended(str): the thread is gone; the outcome is "finished", "stopped" or "failed".
        paused_changed(bool): pause or resume took effect in the controls.
        probes(dict): the scheduled probes (:meth:`engine.probes.runner.ProbeRunner.run`) plus ``images``.
        insight(dict): an epoch's decision views (``epoch`` and :meth:`~engine.probes.runner.ProbeRunner.evaluate`).
    """

    started = Signal(object)
    progress = Signal(object)
    epoch_done = Signal(object)
    early_stopped = Signal(object)
    checkpoint = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    ended = Signal(str)
    paused_changed = Signal(bool)
    probes = Signal(object)
    insight = Signal(object)

    def __init__(
        self,
        snapshot: dict[str, Any],
        *,
        base_dir: Path | None = None,
        epochs: int | None = None,
        device: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.control = Control()
        self.outcome: str | None = None
        self.summary: dict[str, Any] = {}
        self.message = ""
        self._thread: QThread | None = QThread()
        self._thread.setObjectName("training")
        self._worker: TrainingWorker | None = TrainingWorker(
            snapshot, base_dir=base_dir, epochs=epochs, device=device, control=self.control
        )
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.train_event.connect(self._on_event)
        # NOTE: quit() is thread-safe; called directly it also ends a thread whose main loop is blocked.
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        # NOTE: finished is emitted in the worker thread as it ends; deleteLater there is
        # processed before the thread exits (Qt's documented way to free a thread's objects).
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.finished.connect(self._on_thread_finished)
        self.signals_received = 0  # progress signals that reached the main thread
        self._started = False

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._thread is not None and not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop after the current batch; ``finished`` (stopped) follows."""
        self.control.stop()
        self.paused_changed.emit(False)

    def pause(self) -> None:
        if self.is_running() and not self.control.paused:
            self.control.pause()
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self.control.paused:
            self.control.resume()
            self.paused_changed.emit(False)

    def set_probe_wish(self, name: str, value: Any) -> None:
        """Change a probe setting (``layer``, ``sample``, ...) from the next probe run on; ignored once the run has ended."""
        if self._worker is not None:
            self._worker.set_probe_wish(name, value)

    def is_running(self) -> bool:
        """True from :meth:`start` until the thread has ended."""
        return self._started and self.outcome is None

    def is_paused(self) -> bool:
        return self.control.paused

    def shutdown(self) -> None:
        """Stop and wait for the thread to end (the window is closing). Safe to call twice."""
        thread = self._thread
        if thread is None:
            return
        self.control.stop()
        thread.quit()
        thread.wait()
        # NOTE: deliver the relays still queued for this object, in order, before the end.
        QCoreApplication.sendPostedEvents(self, 0)
        self._on_thread_finished()

    @property
    def thread(self) -> QThread | None:
        return self._thread

    # ------------------------------------------------------------------ relays
    @Slot(str, object)
    def _on_event(self, kind: str, data: dict) -> None:
        if kind == "batches":
            self.signals_received += 1
            self.progress.emit(data)
        elif kind == "epoch":
            self.epoch_done.emit(data)
        elif kind == "started":
            self.started.emit(data)
        elif kind == "early_stop":
            self.early_stopped.emit(data)
        elif kind == "checkpoint":
            self.checkpoint.emit(data)
        elif kind == "probes":
            self.probes.emit(data)
        elif kind == "insight":
            self.insight.emit(data)
        elif kind == "finished":
            self.summary = data
            self.finished.emit(data)
        elif kind == "failed":
            self.message = str(data.get("message", "training failed"))
            self.failed.emit(self.message)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.wait()
        self._worker = None  # NOTE: the C++ worker was deleted as the thread ended
        thread.deleteLater()
        if self.message:
            self.outcome = "failed"
        elif self.summary.get("stopped"):
            self.outcome = "stopped"
        else:
            self.outcome = "finished"
        self.ended.emit(self.outcome)

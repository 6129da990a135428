"""Training off the UI thread: a worker that relays a training process, and a session that owns both.

The training loop itself runs in a child process (:mod:`engine.training.remote`: its own
interpreter, so painting and training never wait for each other's lock, and a crash in
training cannot take the window down). :class:`TrainingWorker` lives in a :class:`QThread`,
reads the child's events as they arrive and relays each as a Qt signal. Batch events are
coalesced so the window receives at most :data:`MAX_UPDATES_PER_S` progress signals a
second, whatever the batch rate. :class:`TrainingSession` lives in the main thread: it
owns the process handle, the thread and the worker, relays their signals (tests and views
connect to it, never to the worker), and always ``quit()`` s and ``wait()`` s the thread,
at the end of a run and when the window closes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from designer.training.dashboard import MAX_HZ
from engine.training.remote import STOP_GRACE_S, TrainingProcess, TrainingRequest

__all__ = ["MAX_UPDATES_PER_S", "TrainingSession", "TrainingWorker"]

#: The most progress signals a second the worker sends to the window: the dashboard's fastest
#: frame rate. Every batch's loss still arrives (coalesced); more signals would only take time
#: from training (measured: each costs the window's thread about 0.3 ms of CPU during a run).
MAX_UPDATES_PER_S = MAX_HZ


def _merge_batches(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """One ``batches`` payload from two: losses joined, everything else from the newer one."""
    merged = dict(newer)
    merged["losses"] = np.concatenate([older["losses"], newer["losses"]])
    return merged


class TrainingWorker(QObject):
    """Relays one training process's events in whatever thread it is moved to. Move it, then call :meth:`run`.

    Signals (emitted from the worker thread; connect through :class:`TrainingSession`):
        train_event(str, dict): every trainer event by kind; ``batches`` events are coalesced.
            ``probes`` events carry the probe images too, as ``images``; ``finished`` carries
            the trained ``weights`` as CPU tensors.
        done(): the run has ended (after ``finished`` or ``failed``).
    """

    train_event = Signal(str, object)
    done = Signal()

    def __init__(self, process: TrainingProcess, *, max_rate: float = MAX_UPDATES_PER_S) -> None:
        super().__init__()
        self.process = process
        self.min_interval = 1.0 / max_rate
        self._pending: dict[str, Any] | None = None
        self._last_sent = 0.0

    @Slot()
    def run(self) -> None:
        """Relay every event to the end of the run; any exception becomes a ``failed`` event."""
        try:
            for ev in self.process.events():
                if ev.kind == "batches":
                    self._on_batches(ev.data)
                    continue
                self._flush()
                if ev.kind == "finished" and ev.data.get("weights") is not None:
                    import torch

                    ev.data["weights"] = {k: torch.from_numpy(v) for k, v in ev.data["weights"].items()}
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
        if now - self._last_sent >= self.min_interval or self.process.paused or self.process.stopped:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        if self._pending is None:
            return
        data, self._pending = self._pending, None
        self._last_sent = now if now is not None else time.perf_counter()
        self.train_event.emit("batches", data)


class TrainingSession(QObject):
    """One run (a child process, relayed by a worker thread), seen from the main thread.

    Every payload is the trainer's plain dict, passed by reference (``Signal(object)``).

    Signals:
        started(dict): the data is loaded and the model built (device, epochs, batches_per_epoch, ...).
        progress(dict): coalesced batches (epoch, batch, step, total_steps, losses, samples_per_s, eta).
        epoch_done(dict): one epoch's record (train_loss, val_loss, val_<metric>, lr, seconds).
        early_stopped(dict): early stopping ended the run (epoch, best_epoch).
        finished(dict): the run ended normally or by Stop (``stopped``), with test metrics and history.
        failed(str): the run ended with an error; the text says what happened and what to try.
        fold_done(dict): a fold of a cross-validation has ended (fold, folds, val, test, ...); during a
            cross-validation every other payload also carries ``fold`` and ``folds``, and ``finished``
            carries the summaries of the folds with the ``mean`` and ``std`` of their validation metrics.
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
    fold_done = Signal(object)
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
        folds: int | None = None,
        run_dir: Path | None = None,
        resume_from: Path | None = None,
        label: str = "",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.folds = folds  # k of a k-fold cross-validation; None for one run
        self.run_dir = run_dir  # the run folder the child writes (None: the run is kept in memory only)
        self.process = TrainingProcess(TrainingRequest(
            snapshot, base_dir=base_dir, epochs=epochs, device=device, emit_interval=1.0 / MAX_UPDATES_PER_S,
            folds=folds, run_dir=run_dir, resume_from=resume_from, label=label,
        ))
        self.outcome: str | None = None
        self.summary: dict[str, Any] = {}
        self.message = ""
        self._thread: QThread | None = QThread()
        self._thread.setObjectName("training")
        self._worker: TrainingWorker | None = TrainingWorker(self.process)
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
        self.process.stop()
        self.paused_changed.emit(False)

    def pause(self) -> None:
        if self.is_running() and not self.process.paused:
            self.process.pause()
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self.process.paused:
            self.process.resume()
            self.paused_changed.emit(False)

    def set_probe_wish(self, name: str, value: Any) -> None:
        """Change a probe setting (``layer``, ``sample``, ...) from the next probe run on; ignored once the run has ended."""
        self.process.want(name, value)

    def is_running(self) -> bool:
        """True from :meth:`start` until the thread has ended."""
        return self._started and self.outcome is None

    def is_paused(self) -> bool:
        return self.process.paused

    def is_stopping(self) -> bool:
        """True once Stop was pressed (the run ends after the current batch)."""
        return self.process.stopped

    def shutdown(self) -> None:
        """Stop and wait for the thread to end (the window is closing). Safe to call twice."""
        thread = self._thread
        if thread is None:
            return
        self.process.stop()
        if not thread.wait(int(STOP_GRACE_S * 1000)):
            self.process.kill()  # NOTE: the run did not stop in time; the worker sees the end and returns
        thread.quit()
        thread.wait()
        # NOTE: deliver the relays still queued for this object, in order, before the end.
        QCoreApplication.sendPostedEvents(self, 0)
        self._on_thread_finished()

    @property
    def thread(self) -> QThread | None:
        return self._thread

    # ------------------------------------------------------------------ relays
    #: trainer event kind -> the signal that relays its payload as it is
    RELAYED = {
        "batches": "progress", "epoch": "epoch_done", "started": "started", "early_stop": "early_stopped",
        "checkpoint": "checkpoint", "probes": "probes", "insight": "insight", "fold_done": "fold_done",
    }

    @Slot(str, object)
    def _on_event(self, kind: str, data: dict) -> None:
        if kind == "finished":
            self.summary = data
            self.finished.emit(data)
        elif kind == "failed":
            self.message = str(data.get("message", "training failed"))
            self.failed.emit(self.message)
        elif kind in self.RELAYED:
            self.signals_received += kind == "batches"
            getattr(self, self.RELAYED[kind]).emit(data)

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

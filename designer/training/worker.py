"""Training off the UI thread: a worker that relays a training process, and a session that owns both.

The training loop itself runs in a child process (:mod:`engine.training.remote`: its own
interpreter, so painting and training never wait for each other's lock, and a crash in
training cannot take the window down). :class:`TrainingWorker` lives in a :class:`QThread`,
reads the child's events (:mod:`engine.training.events`) as they arrive and relays each, as
it is, in one Qt signal. :class:`~engine.training.events.BatchesDone` events are coalesced so
the window receives at most :data:`MAX_UPDATES_PER_S` of them a second, whatever the batch
rate. :class:`TrainingSession` lives in the main thread: it owns the process handle, the
thread and the worker, relays each event in the signal of the same name (tests and views
connect to it, never to the worker), and always ``quit()`` s and ``wait()`` s the thread, at
the end of a run and when the window closes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from designer.training.dashboard import MAX_HZ
from engine.training.events import (
    BatchesDone,
    CheckpointSaved,
    CrossValidated,
    EarlyStopped,
    EpochDone,
    Failed,
    Finished,
    FoldDone,
    InsightDone,
    Paused,
    PointDone,
    PointStarted,
    ProbesDone,
    Resumed,
    Started,
    SweepDone,
    WeightsKept,
)
from engine.training.remote import STOP_GRACE_S, TrainingProcess, TrainingRequest

__all__ = ["MAX_UPDATES_PER_S", "TrainingSession", "TrainingWorker"]

#: The most progress signals a second the worker sends to the window: the dashboard's fastest
#: frame rate. Every batch's loss still arrives (coalesced); more signals would only take time
#: from training (measured: each costs the window's thread about 0.3 ms of CPU during a run).
MAX_UPDATES_PER_S = MAX_HZ

#: The worker's clock (seconds); a test may drive it.
clock = time.perf_counter


def _merge_batches(older: BatchesDone, newer: BatchesDone) -> BatchesDone:
    """One event from two: losses joined, everything else from the newer one."""
    return dataclasses.replace(newer, losses=np.concatenate([older.losses, newer.losses]))


class TrainingWorker(QObject):
    """Relays one training process's events in whatever thread it is moved to. Move it, then call :meth:`run`.

    Signals (emitted from the worker thread; connect through :class:`TrainingSession`):
        event(object): every event of the run, in order; :class:`BatchesDone` events are coalesced.
            :class:`ProbesDone` results carry the probe images too, as ``images``; :class:`Finished`
            carries the trained ``weights`` as CPU tensors.
        done(): the run has ended (after its :class:`Finished`, :class:`CrossValidated`, :class:`SweepDone` or
            :class:`Failed`).
    """

    event = Signal(object)
    done = Signal()

    def __init__(self, process: TrainingProcess, *, max_rate: float = MAX_UPDATES_PER_S) -> None:
        super().__init__()
        self.process = process
        self.min_interval = 1.0 / max_rate
        self._pending: BatchesDone | None = None
        self._last_sent = -float("inf")

    @Slot()
    def run(self) -> None:
        """Relay every event to the end of the run; any exception becomes a :class:`Failed` event."""
        try:
            for ev in self.process.events():
                if isinstance(ev, BatchesDone):
                    self._on_batches(ev)
                    continue
                self._flush()  # NOTE: the batches before a pause, an epoch's end or the end go out first
                if isinstance(ev, Finished) and ev.weights is not None:
                    import torch

                    ev = dataclasses.replace(ev, weights={k: torch.from_numpy(v) for k, v in ev.weights.items()})
                self.event.emit(ev)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the window as a message
            self._flush()
            self.event.emit(Failed(message=f"training stopped with an error: {type(exc).__name__}: {exc}"))
        finally:
            # NOTE: back to the window's thread before the end, so that it is deleted there. Deleted in this
            # thread (deleteLater as the thread ends), its destructor took Qt's connection lock while holding
            # Python's GIL, and the window's thread, destroying an object of its own under that lock, waited
            # for the GIL: both hung for good (seen on a busy machine).
            self.moveToThread(QCoreApplication.instance().thread())
            self.done.emit()

    def _on_batches(self, ev: BatchesDone) -> None:
        self._pending = ev if self._pending is None else _merge_batches(self._pending, ev)
        now = clock()
        if now - self._last_sent >= self.min_interval:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        if self._pending is None:
            return
        ev, self._pending = self._pending, None
        self._last_sent = now if now is not None else clock()
        self.event.emit(ev)


class TrainingSession(QObject):
    """One run (a child process, relayed by a worker thread), seen from the main thread.

    Each event of :mod:`engine.training.events` arrives in the signal of its name, as it is
    (``Signal(object)``, passed by reference):

    Signals:
        started(Started): the data are loaded and the model built (device, epochs, batches_per_epoch, ...).
        batches_done(BatchesDone): coalesced batches (epoch, batch, step, total_steps, losses, samples_per_s, eta).
        epoch_done(EpochDone): one epoch's record (train_loss, val_loss, scores, lr, seconds).
        checkpoint_saved(CheckpointSaved): a checkpoint file was written.
        early_stopped(EarlyStopped): early stopping ended the run (epoch, best_epoch).
        probes_done(ProbesDone): the scheduled probes (:meth:`engine.probes.runner.ProbeRunner.run`) plus ``images``.
        insight_done(InsightDone): an epoch's decision views (:meth:`~engine.probes.runner.ProbeRunner.evaluate`).
        paused(Paused), resumed(Resumed): the loop acknowledged Pause or Resume (a Resume's refused changes:
            ``paused`` again, with ``refused``; the changes it applied: ``resumed.changes``).
        weights_kept(WeightsKept): the paused loop wrote its weights where :meth:`keep_weights` asked.
        fold_done(FoldDone): a fold of a cross-validation has ended; during one, every other event
            carries ``fold`` and ``folds``.
        finished(Finished): the run ended normally or by Stop (``stopped``), with test metrics and history.
        cross_validated(CrossValidated): a cross-validation ended (each fold's result, ``mean`` and ``std``).
        point_started(PointStarted), point_done(PointDone): a sweep's point begins or ends; its training's
            events come between them (a cross-validation's, with ``folds``).
        sweep_done(SweepDone): a sweep ended (every point's score, the chosen one, the refit's test scores).
        failed(Failed): the run ended with an error; its message says what happened and what to try.
        paused_changed(bool): the loop paused (True) or went on (False): emitted on the acknowledgement.
        ended(str): the thread is gone; the outcome is "finished", "stopped" or "failed".
    """

    started = Signal(object)
    batches_done = Signal(object)
    epoch_done = Signal(object)
    checkpoint_saved = Signal(object)
    early_stopped = Signal(object)
    probes_done = Signal(object)
    insight_done = Signal(object)
    paused = Signal(object)
    resumed = Signal(object)
    weights_kept = Signal(object)
    fold_done = Signal(object)
    finished = Signal(object)
    cross_validated = Signal(object)
    point_started = Signal(object)
    point_done = Signal(object)
    sweep_done = Signal(object)
    failed = Signal(object)
    paused_changed = Signal(bool)
    ended = Signal(str)

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
        sweep: tuple[Any, ...] | None = None,
        random: int | None = None,
        refit: bool = False,
        init_from: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.folds = folds  # k of a k-fold cross-validation (each point's, in a sweep); None for one run
        self.sweep = sweep  # the swept settings (sweep_plan.Setting) of a sweep; None otherwise
        self.run_dir = run_dir  # the run folder the child writes (None: the run is kept in memory only)
        self.process = TrainingProcess(TrainingRequest(
            snapshot, base_dir=base_dir, epochs=epochs, device=device, emit_interval=1.0 / MAX_UPDATES_PER_S,
            folds=folds, run_dir=run_dir, resume_from=resume_from, label=label, sweep=sweep, random=random,
            refit=refit, init_from=init_from,
        ))
        self.outcome: str | None = None
        self.result: Finished | CrossValidated | SweepDone | None = None  # how the run ended, unless it failed
        self.message = ""  # why it failed
        self._relays = {
            Started: self.started, BatchesDone: self.batches_done, EpochDone: self.epoch_done,
            CheckpointSaved: self.checkpoint_saved, EarlyStopped: self.early_stopped, ProbesDone: self.probes_done,
            InsightDone: self.insight_done, FoldDone: self.fold_done, PointStarted: self.point_started,
            PointDone: self.point_done, WeightsKept: self.weights_kept,
        }
        self._thread: QThread | None = QThread()
        self._thread.setObjectName("training")
        self._worker: TrainingWorker | None = TrainingWorker(self.process)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.event.connect(self._on_event)
        # NOTE: quit() is thread-safe; called directly it also ends a thread whose main loop is blocked.
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self.signals_received = 0  # batches_done signals that reached the main thread
        self._started = False
        self._paused = False  # acknowledged by the loop
        self._pause_asked = False  # what the person asked for last

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._thread is not None and not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop after the current batch (at once while the data load); ``finished`` follows."""
        self.process.stop()

    def pause(self) -> None:
        """Ask the loop to pause at the next batch; ``paused`` / ``paused_changed(True)`` say when it has."""
        if self.is_running() and not self._pause_asked:
            self._pause_asked = True
            self.process.pause()

    def resume(self, changes: dict[str, Any] | None = None) -> None:
        """Ask a paused loop to go on; ``resumed`` / ``paused_changed(False)`` say when it has.

        ``changes`` (setting -> new value, see :mod:`engine.training.live`) are applied first; changes the
        loop cannot take are answered with ``paused`` again, carrying why (``refused``).
        """
        if self._pause_asked:
            self._pause_asked = False
            self.process.resume(changes)

    def keep_weights(self, path: Path) -> None:
        """Ask the paused loop to write its weights to ``path``; ``weights_kept`` says when it has."""
        self.process.keep_weights(path)

    def set_probe_wish(self, name: str, value: Any) -> None:
        """Change a probe setting (``layer``, ``sample``, ...) from the next probe run on; ignored once the run has ended."""
        self.process.want(name, value)

    def is_running(self) -> bool:
        """True from :meth:`start` until the thread has ended."""
        return self._started and self.outcome is None

    def is_paused(self) -> bool:
        """True while the loop is paused (from its acknowledgement to that of the resume)."""
        return self._paused

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
    @Slot(object)
    def _on_event(self, ev: Any) -> None:
        relay = self._relays.get(type(ev))
        if relay is not None:
            self.signals_received += type(ev) is BatchesDone
            relay.emit(ev)
        elif isinstance(ev, (Paused, Resumed)):
            self._paused = isinstance(ev, Paused)
            self._pause_asked = self._pause_asked or self._paused  # NOTE: a refused change leaves it paused
            (self.paused if self._paused else self.resumed).emit(ev)
            self.paused_changed.emit(self._paused)
        elif isinstance(ev, Finished):
            self.result = ev
            self.finished.emit(ev)
        elif isinstance(ev, CrossValidated):
            self.result = ev
            self.cross_validated.emit(ev)
        elif isinstance(ev, SweepDone):
            self.result = ev
            self.sweep_done.emit(ev)
        elif isinstance(ev, Failed):
            self.message = ev.message or "training failed"
            self.failed.emit(ev)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.wait()
        # NOTE: the worker moved itself back to this thread as its run ended (or its thread never ran):
        # it is deleted here, on the window's thread, never in the worker thread.
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.deleteLater()
        thread.deleteLater()
        if self.message:
            self.outcome = "failed"
        elif self.result is not None and self.result.stopped:
            self.outcome = "stopped"
        else:
            self.outcome = "finished"
        self.ended.emit(self.outcome)

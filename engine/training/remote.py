"""Training in a child process: the same :class:`~engine.training.trainer.Trainer`, outside the caller's interpreter.

Why a process and not only a thread: a window trains while it paints. In a thread of the
window's process the training loop shares one interpreter lock with the painting, and on
CPU, PyTorch's OpenMP threads run about 10 % slower when the loop is not the process's
main thread (measured in ``bench/``). In a child process the loop is the main thread of its
own interpreter, nothing it does can freeze the window, and a crash of the training code
(a segfault in a library, the system killing it for memory) ends the child only: the
parent reports it and keeps the person's work.

The parent's side is :class:`TrainingProcess`; a worker thread iterates its
:meth:`~TrainingProcess.events`, which block. Messages, all plain pickled data:

* parent to child (control pipe): ``("run", request)`` once, then any of ``("stop",)``,
  ``("pause",)``, ``("resume", changes)`` (settings the paused run takes on, see
  :mod:`engine.training.live`; ``{}`` for none), ``("keep", path)`` (the paused run writes its weights
  there, see :mod:`engine.training.transfer`) and ``("want", name, value)`` (a probe setting, see
  :meth:`engine.probes.runner.ProbeRunner.want`);
* child to parent (event pipe): ``"ready"`` once its imports are done, then each event of
  :mod:`engine.training.events` as the trainer yields it (pickled as it is), ending with
  :class:`Finished` or :class:`Failed`. Its :class:`ProbesDone` carry the probe images as
  ``images`` in their results; its :class:`Finished` carries the trained ``weights`` (a state dict
  of numpy arrays). A request with ``folds`` runs
  :func:`~engine.training.crossval.cross_validate_events` instead: its events carry ``fold``, it
  adds :class:`FoldDone` events and ends with :class:`CrossValidated`. A request with ``sweep`` runs
  :func:`~engine.training.sweep.sweep_events`: each point's events between a :class:`PointStarted`
  and a :class:`PointDone`, ending with :class:`SweepDone`.

A Stop before the run has begun training (no :class:`Started` yet: the child loads the data or
compiles the network, which can take long and cannot be interrupted from outside) ends the run
at once: the child is killed (it holds nothing of the person's yet, and is not reused) and the
run ends with ``Finished(stopped=True)`` and the message :data:`STOPPED_BEFORE_TRAINING`.

Starting Python and importing PyTorch takes a second or two, so :func:`prestart` can start
a spare child ahead of time; :class:`TrainingProcess` takes it when one is waiting. A child
serves one run after another: after a run that ended normally it becomes the spare again,
so the next run also skips PyTorch's first-run costs (its kernels and memory pools are warm:
measured, a fresh process trained LeNet-5 about 4 % slower over a 2-second run).

The child is started with ``spawn`` (every OS has it; forking a process with Qt's threads is
unsafe), which imports the parent's ``__main__`` module again in the child: a script that
opens the window must keep its start-up under ``if __name__ == "__main__":``, as ``main.py`` does.

The child is not daemonic, so that data streamed from disk (:mod:`engine.data.streaming`) are read
by DataLoader worker processes of its own (a daemonic process may not start any). What ``daemon``
gave is kept by other means: the child never outlives its parent, as it leaves when its control
pipe ends or its parent process changes (the parent was killed), stopping its run and exiting by
:data:`ORPHAN_GRACE_S` whatever it is doing; and the parent's exit never waits for a child, as
:func:`_end_children` ends them all before :mod:`multiprocessing` would join them.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import multiprocessing.util
import os
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.training.events import (
    ENDINGS,
    STOPPED_BEFORE_TRAINING,
    Failed,
    Finished,
    ProbesDone,
    Started,
    TrainingEvent,
)

__all__ = ["TrainingProcess", "TrainingRequest", "discard_spare", "prestart", "wait_for_spare"]

#: Seconds a stopped run may take to end by itself before its process is killed.
STOP_GRACE_S = 5.0

#: What the child sends once its imports are done.
_READY = "ready"

#: How much the child yields to other processes (Unix nice levels). Training keeps every core
#: busy; when the window wakes to draw, the scheduler then gives it a whole core at once instead
#: of a share, so a frame ends sooner (measured on 2 cores: the longest event-loop stall fell from
#: 39-65 ms to 28-42 ms). An idle machine still gives training all of its time.
CHILD_NICENESS = 5

#: Seconds a child whose parent is gone may take to stop its run before it exits regardless.
ORPHAN_GRACE_S = 10.0

#: How often a child checks that its parent process is still there.
PARENT_CHECK_S = 1.0

#: Seconds the parent's exit gives its children to end by themselves before it kills them.
EXIT_GRACE_S = 2.0


@dataclass
class TrainingRequest:
    """What the child trains: a project snapshot (plain data, see :func:`engine.project.project_to_dict`)."""

    snapshot: dict[str, Any]
    base_dir: Path | None = None
    epochs: int | None = None
    device: str | None = None
    emit_interval: float = 1 / 30
    probes: bool = True
    wishes: dict[str, Any] = field(default_factory=dict)  # probe settings to apply from the first probe run
    folds: int | None = None  # k-fold cross-validation instead of one run (no probes: it is about the scores)
    run_dir: Path | None = None  # the run folder to write (see engine.training.runs); None: none
    resume_from: Path | None = None  # a checkpoint to go on from (continue or fork)
    label: str = ""  # the run's name in the Runs dock ("Run 3")
    sweep: tuple[Any, ...] | None = None  # the swept settings (sweep_plan.Setting): a sweep instead of one run
    random: int | None = None  # a sweep of N random points of its grid
    refit: bool = False  # a sweep's chosen point trained again on training + validation data
    init_from: Path | None = None  # a paused run's weights that a changed network starts from


# ---------------------------------------------------------------------- the child
class _Wishes:
    """Probe settings that arrive from the parent at any time, handed to the runner once it exists."""

    def __init__(self, initial: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._pending = dict(initial)
        self._runner = None

    def add(self, name: str, value: Any) -> None:
        with self._lock:
            self._pending[name] = value
            self._flush()

    def attach(self, runner) -> None:
        with self._lock:
            self._runner = runner
            self._flush()

    def _flush(self) -> None:
        if self._runner is None:
            return
        pending, self._pending = self._pending, {}
        for name, value in pending.items():
            try:
                self._runner.want(name, value)
            except Exception:  # noqa: BLE001 - an unknown setting never stops training
                pass


class _Mailbox:
    """The child's second thread reads every control message; runs go to the main thread, the rest to the run."""

    def __init__(self, control_conn, on_gone: Callable[[], None] | None = None) -> None:
        import queue

        self.conn = control_conn
        self._on_gone = on_gone  # called once when the parent let go or died
        self.requests: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.control = None
        self.wishes: _Wishes | None = None
        self._gone = False
        threading.Thread(target=self._listen, daemon=True, name="control").start()

    def end(self, control) -> None:
        """The run of ``control`` is over: later messages for it are dropped (a next run may have begun)."""
        with self._lock:
            if self.control is control:
                self.control, self.wishes = None, None

    def parent_gone(self) -> None:
        """The parent let go of this child or died: stop the run and end the serving loop."""
        with self._lock:
            if self._gone:
                return  # NOTE: both the pipe's end and the parent watch tell it
            self._gone = True
            if self.control is not None:
                self.control.stop()
        self.requests.put(("quit",))
        if self._on_gone is not None:
            self._on_gone()

    def _listen(self) -> None:
        from engine.training.trainer import Control

        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self.parent_gone()  # NOTE: the pipe ended: the parent let go of this child, or was killed
                return
            what = msg[0]
            if what == "run":
                # NOTE: the run's controls exist before the next message is read: a Stop sent
                # right after Train reaches the run even if its loop has not begun yet.
                control, wishes = Control(), _Wishes(msg[1].wishes)
                with self._lock:
                    self.control, self.wishes = control, wishes
                self.requests.put((msg[0], msg[1], control, wishes))
                continue
            with self._lock:
                control, wishes = self.control, self.wishes
            if control is None:
                continue  # NOTE: a late message for a run that has ended
            if what == "stop":
                control.stop()
            elif what == "pause":
                control.pause()
            elif what == "resume":
                control.resume(msg[1] if len(msg) > 1 else None)
            elif what == "keep":
                control.keep_weights(msg[1])
            elif what == "want" and wishes is not None:
                wishes.add(msg[1], msg[2])


def _sweep_events(project, request: TrainingRequest, control) -> Iterator[TrainingEvent]:
    """A sweep's events (see :mod:`engine.training.sweep`); a setting it refuses ends it with a Failed."""
    from engine.errors import NetDesignerError
    from engine.training.sweep import sweep_events

    try:
        yield from sweep_events(
            project, request.sweep, folds=request.folds, random=request.random, refit=request.refit,
            epochs=request.epochs, out_dir=request.run_dir, base_dir=request.base_dir, device=request.device,
            control=control, emit_interval=request.emit_interval, label=request.label,
        )
    except NetDesignerError as exc:
        yield Failed(message=str(exc))


def _numpy_state(model) -> dict[str, Any]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _child_main(event_conn, control_conn, parent_pid: int | None = None) -> None:
    """Entry point of the child: serve runs one after another, then leave at once."""
    # NOTE: a Ctrl+C in the terminal is the parent's to handle; the parent stops the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve(event_conn, control_conn, parent_pid)
    finally:
        _leave()


def _leave() -> None:
    """End this child at once, from any of its threads.

    NOTE: everything the runs wrote is closed; skipping the interpreter's teardown avoids
    PyTorch's thread pools aborting ("terminate called ...") while the control thread waits.
    DataLoader workers left behind see their parent change and end by themselves.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _leave_by_deadline() -> None:
    """End this child in :data:`ORPHAN_GRACE_S` seconds, whatever it is doing then.

    NOTE: a stopped run ends only between batches, and loading the data or the normalization pass
    can take minutes; with the parent gone nobody will read the results.
    """
    deadline = threading.Timer(ORPHAN_GRACE_S, _leave)
    deadline.daemon = True
    deadline.start()


def _watch_parent(parent_pid: int, mailbox: _Mailbox) -> None:
    """Tell ``mailbox`` when the parent process is gone, even while something else holds the control pipe open.

    NOTE: the control pipe's end is the usual sign, but a process forked from the parent (a
    DataLoader worker of its own) holds a copy of the parent's end for as long as it lives. A
    parent-death signal (Linux ``PR_SET_PDEATHSIG``) is no substitute: it fires when the *thread*
    that started the child ends, and the window starts children from worker threads.
    """
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    mailbox.parent_gone()


def _yield_to_window() -> None:
    """Lower this process's priority by :data:`CHILD_NICENESS` where the OS has nice levels."""
    if hasattr(os, "nice"):
        try:
            os.nice(CHILD_NICENESS)
        except OSError:  # NOTE: not allowed here: train at the normal priority
            pass


def _serve(event_conn, control_conn, parent_pid: int | None = None) -> None:
    """Import, then train each request that arrives and send its events, until the parent lets go or dies.

    One child serves run after run (the parent hands it back as the spare after each run), so
    the second run of a network starts warm: PyTorch's kernels and memory pools are ready.
    """
    from engine.project import project_from_dict  # noqa: F401 - imported before "ready"
    from engine.training.trainer import Trainer  # noqa: F401

    try:
        event_conn.send(_READY)
    except (BrokenPipeError, EOFError, OSError):
        return
    _yield_to_window()  # NOTE: after the imports, which a run is waiting for at full speed
    mailbox = _Mailbox(control_conn, on_gone=_leave_by_deadline)
    if parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(parent_pid, mailbox), daemon=True, name="parent").start()
    while True:
        msg = mailbox.requests.get()
        if msg[0] != "run":
            return
        _, request, control, wishes = msg
        if not _train(request, control, wishes, event_conn, mailbox):
            return


def _train(request: TrainingRequest, control, wishes: _Wishes, event_conn, mailbox: _Mailbox) -> bool:
    """One run; False when the parent can no longer be reached."""
    from engine.project import project_from_dict
    from engine.training.crossval import cross_validate_events
    from engine.training.trainer import Trainer

    reachable = True

    def send(event: TrainingEvent) -> None:
        nonlocal reachable
        try:
            event_conn.send(event)
        except (BrokenPipeError, EOFError, OSError):
            reachable = False
            control.stop()

    try:
        project = project_from_dict(request.snapshot, source="<snapshot>")
        if request.sweep is not None:
            for ev in _sweep_events(project, request, control):
                send(ev)
            return reachable
        if request.folds is not None:
            for ev in cross_validate_events(
                project, request.folds, epochs=request.epochs, base_dir=request.base_dir, device=request.device,
                control=control, emit_interval=request.emit_interval, out_dir=request.run_dir, label=request.label,
            ):
                send(ev)
            return reachable
        trainer = Trainer(
            project, base_dir=request.base_dir, epochs=request.epochs, device=request.device,
            control=control, emit_interval=request.emit_interval, probes=request.probes,
            out_dir=request.run_dir, resume_from=request.resume_from, label=request.label,
            init_from=request.init_from,
        )
        images: Any = None
        runner = None
        for ev in trainer.events():
            if runner is None and trainer.probe_runner is not None:
                runner = trainer.probe_runner
                wishes.attach(runner)
            if isinstance(ev, ProbesDone):
                if images is None:
                    try:
                        images = runner.images()
                    except Exception:  # noqa: BLE001 - not image data: the views show no pictures
                        images = False
                ev = dataclasses.replace(ev, results={**ev.results, "images": images if images is not False else None})
            elif isinstance(ev, Finished) and trainer.model is not None:
                ev = dataclasses.replace(ev, weights=_numpy_state(trainer.model))
            send(ev)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the parent as a message
        send(Failed(message=f"training stopped with an error: {type(exc).__name__}: {exc}"))
    finally:
        mailbox.end(control)
    return reachable


# ---------------------------------------------------------------------- the parent
class _Child:
    """A started child process and the parent's ends of its two pipes."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.events, child_events = ctx.Pipe(duplex=False)
        child_control, self.control = ctx.Pipe(duplex=False)
        # NOTE: not daemonic, so that it may start DataLoader workers; it watches its parent instead
        # (see the module's notes), and _end_children ends it before multiprocessing would join it.
        self.process = ctx.Process(
            target=_child_main, args=(child_events, child_control, os.getpid()), name="net-designer-training",
            daemon=False,
        )
        self.process.start()
        _children.add(self)
        # NOTE: closing the parent's copies is what makes recv() see the end when the child exits.
        child_events.close()
        child_control.close()

        self.ready = False

    def alive(self) -> bool:
        return self.process.is_alive()

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the child to finish importing; True when it has."""
        if not self.ready and self.events.poll(timeout):
            try:
                self.ready = self.events.recv() == _READY
            except (EOFError, OSError):
                return False
        return self.ready

    def receive(self) -> Any:
        """The child's next message, waiting for it; EOFError once the child has ended and all it sent is read.

        NOTE: the pipe's end alone is no sign that the child ended: DataLoader workers it forked hold
        copies of its end of the pipe until they notice, seconds later, that it is gone.
        """
        wait([self.events, self.process.sentinel])
        if not self.events.poll():
            raise EOFError("the training process ended")
        return self.events.recv()

    def close(self) -> None:
        for conn in (self.control, self.events):
            try:
                conn.close()
            except OSError:
                pass

    def end(self, grace: float) -> None:
        """Let the child go (it sees its control pipe end and exits); kill it if it is still there after ``grace`` s."""
        self.close()
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


_spare: _Child | None = None
_spare_lock = threading.Lock()
_children: weakref.WeakSet[_Child] = weakref.WeakSet()  # every child started, for _end_children


def _end_children() -> None:
    """End every child still running: the parent is exiting.

    NOTE: multiprocessing joins a process's non-daemonic children when it exits; a spare child
    waits for its next run until its control pipe ends, so without this the exit would wait forever.
    """
    children = list(_children)
    for child in children:
        child.close()
    deadline = time.monotonic() + EXIT_GRACE_S
    for child in children:
        child.process.join(max(0.0, deadline - time.monotonic()))
        if child.process.is_alive():
            child.process.kill()
            child.process.join()


# NOTE: a finalizer with an exit priority runs at the exit before multiprocessing joins the children.
multiprocessing.util.Finalize(None, _end_children, exitpriority=10)


def prestart() -> None:
    """Start a spare child now (it imports PyTorch and waits), so the next run starts at once."""
    global _spare
    with _spare_lock:
        if _spare is None or not _spare.alive():
            _spare = _Child()


def wait_for_spare(timeout: float = 60.0) -> bool:
    """Wait until the spare child has imported everything (benchmarks measure a quiet machine)."""
    with _spare_lock:
        spare = _spare
    return spare is not None and spare.wait_ready(timeout)


def discard_spare() -> None:
    """End the spare child, if any (the program is closing)."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None:
        spare.end(2.0)


def _take() -> _Child:
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None and spare.alive():
        return spare
    if spare is not None:
        spare.close()
    return _Child()


def _release(child: _Child, reuse: bool) -> None:
    """A run is over: keep its child as the spare (it is warm) or end it."""
    global _spare
    if reuse:
        child.ready = True
        with _spare_lock:
            if _spare is None or not _spare.alive():
                _spare, child = child, None
    if child is not None:
        child.end(STOP_GRACE_S)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the system may have run out of memory)" if -code == signal.SIGKILL else ""
        return f"it was ended by {name}{hint}"
    return f"it exited with code {code}"


class TrainingProcess:
    """One training run in a child process, seen from the parent.

    ``start()`` sends the request (to the spare child when one is waiting); ``events()`` yields
    the events of :mod:`engine.training.events` as they arrive and blocks between them, so
    iterate it in a worker thread. ``stop``, ``pause``, ``resume`` and ``want`` may be called from
    any other thread; after the run they do nothing. A pause or resume that takes effect comes
    back as a :class:`~engine.training.events.Paused` or :class:`~engine.training.events.Resumed`
    event. A Stop before training began kills the child and ends the run at once (see the module's
    notes). If the child dies, ``events()`` ends with a :class:`~engine.training.events.Failed`
    that says so. A child whose run ended normally becomes the spare for the next run.
    """

    def __init__(self, request: TrainingRequest) -> None:
        self.request = request
        self._child: _Child | None = None
        self._send_lock = threading.Lock()
        self._queued: list[tuple] = []
        self._over = False
        self._began = False  # a Started event has arrived: the child trains
        self._cut = False  # stopped before it began: the child was killed
        self.stopped = False

    @property
    def pid(self) -> int | None:
        """The process id of the child that serves this run; None before :meth:`start`."""
        child = self._child
        return child.process.pid if child is not None else None

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> None:
        """Hand the request to a child (the spare one when it waits); nothing after a Stop."""
        with self._send_lock:
            if self._child is not None or self.stopped:
                return
            self._child = _take()
            self._raw_send(("run", self.request))
            queued, self._queued = self._queued, []
            for msg in queued:
                self._raw_send(msg)

    def stop(self) -> None:
        """Stop after the current batch; before training began, at once (the child is killed)."""
        with self._send_lock:
            self.stopped = True
            if self._over or self._cut or self._child is None:
                return  # NOTE: over, killed already, or not started (then start() will not start it)
            if self._began:
                self._raw_send(("stop",))
                return
            self._cut = True
            child = self._child
        child.process.kill()

    def pause(self) -> None:
        """Pause at the next batch; a :class:`~engine.training.events.Paused` event says when it did."""
        self._send(("pause",))

    def resume(self, changes: dict[str, Any] | None = None) -> None:
        """Go on; with ``changes`` (setting -> new value) the run takes them on first, or refuses them and stays
        paused (a :class:`~engine.training.events.Paused` with ``refused``)."""
        self._send(("resume", dict(changes or {})))

    def keep_weights(self, path: str | Path) -> None:
        """Ask the paused run to write its weights to ``path``; a ``WeightsKept`` event says when it has."""
        self._send(("keep", str(path)))

    def want(self, name: str, value: Any) -> None:
        """Change a probe setting (see :meth:`engine.probes.runner.ProbeRunner.want`) from the next probe run on."""
        self._send(("want", name, value))

    def kill(self) -> None:
        """End the child at once (it did not stop in time); ``events()`` then ends with ``Failed``."""
        with self._send_lock:
            child = None if self._over else self._child
        if child is not None and child.alive():
            child.process.kill()

    def _send(self, msg: tuple) -> None:
        with self._send_lock:
            if self._over:
                return  # NOTE: the child may already serve another run
            if self._child is None:
                self._queued.append(msg)
            else:
                self._raw_send(msg)

    def _raw_send(self, msg: tuple) -> None:
        try:
            self._child.control.send(msg)
        except (BrokenPipeError, EOFError, OSError):
            pass  # NOTE: the child is gone; events() reports how it ended

    # ------------------------------------------------------------------ events (the reading thread)
    def events(self) -> Iterator[TrainingEvent]:
        """Every event of the run, in order; blocks while the child computes."""
        if self._child is None:
            self.start()
        child = self._child
        if child is None:
            yield _stopped_before_training()
            return
        ended = False
        try:
            while True:
                try:
                    event = child.receive()
                except (EOFError, OSError):
                    break
                except Exception as exc:  # noqa: BLE001 - a message that cannot be read ends the run
                    yield Failed(message=f"a training result could not be read: {exc}")
                    break
                if isinstance(event, str):
                    continue  # NOTE: the child's "ready"
                with self._send_lock:
                    if self._cut:
                        break  # NOTE: killed before training began; what it sent since is dropped
                    self._began = self._began or isinstance(event, Started)
                ended = isinstance(event, ENDINGS)
                yield event
                if ended:
                    break
            if self._cut:
                child.process.join()
                yield _stopped_before_training()
            elif not ended:
                child.process.join(2.0)
                yield Failed(message=(
                    f"the training process ended before the run was over: {_exit_reason(child.process.exitcode)}. "
                    "Your network and settings are unchanged; try a smaller batch size or network"
                ))
        finally:
            with self._send_lock:
                self._over = True
            _release(child, reuse=ended and not self._cut and child.alive())


def _stopped_before_training() -> Finished:
    """The end of a run stopped while its data loaded or its network compiled: nothing trained, nothing to test."""
    return Finished(stopped=True, epochs_run=0, message=STOPPED_BEFORE_TRAINING)

"""Work off the window's thread with no Qt object in it: plain Python threads whose end is a queued signal.

NOTE: no Qt object is made, used or deleted in a worker thread. A :class:`Job` runs a callable on
plain data (copied before it starts) and keeps what it returns as its ``outcome``; the thread's one
contact with Qt is to emit a signal of :data:`WORKERS` (a window-thread object that lives as long as
the program), which Qt queues to the window's thread. There the thread is joined and the caller
reads the job. While a job runs, Python's automatic garbage collection is off, so that no
collection runs in the worker thread: one could free a Qt object from the window's garbage there (a
collection runs in whichever thread happens to allocate). (A QObject job moved to a QThread, which
this replaced in Explore, crashed under load: the window's thread freed the job while the worker
thread was deleting it.)

Explore's on-demand views and the Insight computed again from a stored run both use it.
"""

from __future__ import annotations

import gc
import itertools
import threading
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot

from engine.errors import NetDesignerError

__all__ = ["WORKERS", "Job", "Workers", "next_number", "running_workers"]


@dataclass(eq=False)
class Job:
    """One on-demand computation: ``work()`` runs in a worker thread, everything else is the window's.

    The worker thread reads only ``work`` and writes only ``outcome``, before it reports; the
    window's thread reads ``outcome`` after joining the thread.
    """

    number: int
    what: str  # what it computes ("patches", "dream", "insight"...); its thread is named after ``kind``
    entry: Any  # what it works on, for the caller (read by the window's thread only)
    work: Callable[[], Any]
    outcome: tuple[str, Any] | None = None  # ("done", what work() returned) or ("failed", the error in words)
    superseded: bool = False  # a newer request came while it ran: its result is dropped
    kind: str = "explore"

    def compute(self) -> None:
        """Run ``work()`` and keep its result or its error in words (worker thread)."""
        try:
            self.outcome = ("done", self.work())
        except NetDesignerError as exc:
            self.outcome = ("failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the view as a message
            self.outcome = ("failed", f"the view could not be computed: {type(exc).__name__}: {exc}")


class Workers(QObject):
    """The worker threads, seen from the window's thread: started, joined, counted.

    Signals:
        reported(int): emitted by a worker thread as its last act, with its job's number (queued
            to the window's thread, where the thread is joined).
        joined(int): in the window's thread, the job's thread is gone and its outcome is ready.
    """

    reported = Signal(int)
    joined = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self._threads: dict[int, threading.Thread] = {}
        self._gc_was_enabled = True
        self.reported.connect(self.join, Qt.ConnectionType.QueuedConnection)

    def start(self, job: Job) -> None:
        """Run ``job.compute()`` in a new thread; :attr:`joined` follows when it has ended."""
        if not self._threads:
            self._gc_was_enabled = gc.isenabled()
            gc.disable()  # NOTE: see the module's docstring; enabled again when the last worker is joined
        thread = threading.Thread(target=self._work, args=(job,), name=f"{job.kind}-{job.number}")
        self._threads[job.number] = thread
        try:
            thread.start()
        except RuntimeError as exc:  # NOTE: no thread to be had; the job ends at once with the reason
            job.outcome = ("failed", f"the computation could not start: {exc}")
            self.reported.emit(job.number)

    def _work(self, job: Job) -> None:
        try:
            job.compute()
        finally:
            self.reported.emit(job.number)  # NOTE: emitting is thread-safe; the slot runs in the window's thread

    @Slot(int)
    def join(self, number: int) -> bool:
        """Wait for job ``number``'s thread to end (at once once it has reported). False when it is not running."""
        thread = self._threads.pop(number, None)
        if thread is None:
            return False
        if thread.ident is not None:  # NOTE: None when it could not start
            thread.join()
        if not self._threads and self._gc_was_enabled:
            gc.enable()
        self.joined.emit(number)
        return True

    def running(self) -> list[threading.Thread]:
        return list(self._threads.values())


WORKERS = Workers()  # NOTE: made when the module is imported, in the window's thread; never deleted
_numbers = itertools.count(1)


def next_number() -> int:
    """A number for a new :class:`Job`, unique in the program."""
    return next(_numbers)


def running_workers() -> list[threading.Thread]:
    """The worker threads not yet joined (the tests check that none is left)."""
    return WORKERS.running()

"""Autosave and recovery: unsaved edits survive a crash, a kill or a power cut.

:class:`Autosaver` writes the open project to a *recovery file* a few seconds after each change
and deletes it when the project is saved, undone to its saved state, replaced or closed. A saved
project's recovery file sits hidden beside it (``.NAME.json.recovery``); an unsaved project's, or
one whose folder will not take it, in the program's data folder (``recovery/UID.json``).

While a window writes a recovery file it holds an advisory lock on ``FILE.lock`` beside it; the
operating system drops the lock when the process dies. So a recovery file nobody holds is one a
crashed or killed Net Designer left, and the next start (:func:`offer_recovery`) or the next
opening of that project offers to restore it: Restore, Discard or Later.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox

from designer.settings import data_dir, settings
from engine.errors import NetDesignerError, ProjectError
from engine.fileio import atomic_write_bytes
from engine.project import MAX_FILE_BYTES, Project, project_from_dict, project_to_dict

if TYPE_CHECKING:  # pragma: no cover
    from designer.main_window import MainWindow

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

#: Milliseconds between the last change and the autosave (edits in one burst share one write).
AUTOSAVE_DELAY_MS = 3000
#: Under edits that never pause, a write still happens this long after the first unsaved one.
MAX_WAIT_S = 30.0
RECOVERY_FORMAT = "net-designer-recovery"
RECOVERY_VERSION = 1
#: QSettings group of the live recovery files: one key per file, so two processes never drop each other's.
REGISTRY_GROUP = "recovery"
_UID = re.compile(r"[0-9a-f]{8,64}")


# ---------------------------------------------------------------------- where
def beside_file(project_path: str | os.PathLike) -> Path:
    """The recovery file of the project saved at ``project_path``: hidden beside it."""
    path = Path(os.path.abspath(project_path))
    return path.with_name(f".{path.name}.recovery")


def recovery_dir() -> Path:
    """The data folder's recovery folder (for unsaved projects), created when missing."""
    folder = Path(os.path.abspath(data_dir())) / "recovery"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _now() -> datetime:
    return datetime.now().astimezone()


# ---------------------------------------------------------------------- the writer's lock
def _lock_path(file: Path) -> Path:
    return file.with_name(file.name + ".lock")


def _try_lock(fd: int, shared: bool = False) -> bool:
    """Lock ``fd`` without waiting; False when another open file holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows: a byte-range lock, also dropped when the process dies
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _hold_lock(file: Path) -> int | None:
    """Lock ``file``'s lock file for this process; returns the descriptor, or None when another holds it.

    Raises OSError when the lock file cannot be made (a read-only folder).
    NOTE: a releasing writer unlinks the lock file; a lock taken on the unlinked one would guard
    nothing, so the name must still mean the locked file afterwards, else it is taken again.
    """
    lock = _lock_path(file)
    for _ in range(5):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return None
        try:
            if os.name == "nt" or os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    return None


def _release_lock(file: Path, fd: int) -> None:
    """Drop the lock and its file. NOTE: unlinked before closing, so no one locks a dying name (POSIX)."""
    lock = _lock_path(file)
    if os.name != "nt":
        _unlink(lock)
    os.close(fd)
    if os.name == "nt":  # pragma: no cover - Windows cannot delete an open file
        _unlink(lock)


def writer_alive(file: str | os.PathLike) -> bool:
    """Whether a running Net Designer holds ``file``'s lock (it is writing that recovery file now)."""
    try:
        fd = os.open(_lock_path(Path(file)), os.O_RDWR if fcntl is None else os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # NOTE: cannot tell; not offering keeps the file for the next start
    try:
        if not _try_lock(fd, shared=True):
            return True
        if fcntl is None:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return False
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------- the registry
def _key(file: Path) -> str:
    return f"{REGISTRY_GROUP}/{hashlib.sha1(os.fsencode(file)).hexdigest()[:24]}"


def _register(file: Path) -> None:
    s = settings()
    s.setValue(_key(file), str(file))
    s.sync()  # NOTE: on disk before the write is announced: a kill right after must still find it


def _unregister(file: Path) -> None:
    s = settings()
    s.remove(_key(file))
    s.sync()


def _candidates() -> list[Path]:
    """Every recovery file known: the registry's (anywhere on disk) and the data folder's own."""
    s = settings()
    s.beginGroup(REGISTRY_GROUP)
    files = [Path(str(s.value(k))) for k in s.childKeys() if s.value(k)]
    s.endGroup()
    try:
        files += sorted(recovery_dir().glob("*.json"))
    except OSError:
        pass
    return list(dict.fromkeys(Path(os.path.abspath(f)) for f in files))


def delete_recovery(file: Path) -> None:
    """Delete a recovery file that no one writes, with its lock file and its registry entry."""
    _unlink(file)
    _unlink(_lock_path(file))
    _unregister(file)


# ---------------------------------------------------------------------- the file
@dataclass
class Recovery:
    """One recovery file, read and validated: the project as it was being edited, and where it belongs."""

    file: Path
    project: Project
    path: Path | None  # the project file it was opened from or saved to; None when never saved
    changed_at: datetime
    uid: str | None  # the unsaved document's id (names its runs), when it had one


def recovery_bytes(document, changed_at: datetime) -> bytes:
    """The recovery file's content for ``document``: a small wrapper around the project.

    Raises ValueError or TypeError for a project JSON or UTF-8 cannot hold.
    """
    uid = getattr(document, "uid", None)
    doc = {
        "format": RECOVERY_FORMAT,
        "version": RECOVERY_VERSION,
        "path": os.path.abspath(document.path) if document.path is not None else None,
        "changed_at": changed_at.isoformat(timespec="seconds"),
        "uid": uid if isinstance(uid, str) and _UID.fullmatch(uid) else None,
        "project": project_to_dict(document.project),
    }
    return (json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def read_recovery(file: Path) -> Recovery:
    """Read and validate a recovery file. A damaged one is a :class:`ProjectError` naming it and
    what is wrong; a file that is gone is ``FileNotFoundError``."""
    name = file.name
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProjectError(f"{name} is not a regular file")
        raw = fh.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ProjectError(f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB, too large for a recovery file")
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{name} is not a text file (the bytes at offset {exc.start} are not UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ProjectError(f"{name} is nested too deeply to be a recovery file") from None
    _check_wrapper(d, name)
    path, uid = d.get("path"), d.get("uid")
    project = project_from_dict(d.get("project"), name)
    return Recovery(file, project, Path(path) if path else None, _read_time(d.get("changed_at"), name), uid)


def _check_wrapper(d, name: str) -> None:
    if not isinstance(d, dict) or d.get("format") != RECOVERY_FORMAT:
        raise ProjectError(f"{name} is not a Net Designer recovery file")
    version = d.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(f"{name}: version must be a whole number from 1, not {version!r}")
    if version > RECOVERY_VERSION:
        raise ProjectError(f"{name} was written by a newer Net Designer (recovery format {version})")
    path = d.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip() or "\x00" in path):
        raise ProjectError(f"{name}: path must be the project file's path or null")
    uid = d.get("uid")
    if uid is not None and not (isinstance(uid, str) and _UID.fullmatch(uid)):
        raise ProjectError(f"{name}: uid must be a lower-case hexadecimal id or null")


def _read_time(value, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ProjectError(f"{name}: changed_at must be a date and time, not {value!r}") from None
    return when if when.tzinfo is not None else when.astimezone()


def _set_aside(file: Path, exc: Exception) -> str:
    """Move a damaged recovery file out of the way (kept, never deleted); the message that says so."""
    aside = file.with_name(f"{file.name}.{_now():%Y%m%d-%H%M%S}.damaged")
    try:
        os.replace(file, aside)
        where = f"set aside as {aside}"
    except OSError:
        where = f"left at {file}"
    _unlink(_lock_path(file))
    _unregister(file)
    return f"A recovery file could not be read ({exc}); it was {where}."


def find_recoveries() -> tuple[list[Recovery], list[str]]:
    """The recovery files no running Net Designer writes, newest first, and a message for each
    damaged one (which is set aside, so it is reported once)."""
    found: list[Recovery] = []
    problems: list[str] = []
    for file in _candidates():
        if not os.path.lexists(file):
            _unregister(file)
            continue
        if writer_alive(file):
            continue
        try:
            found.append(read_recovery(file))
        except FileNotFoundError:
            _unregister(file)
        except NetDesignerError as exc:
            problems.append(_set_aside(file, exc))
        except OSError as exc:
            problems.append(f"The recovery file {file} could not be read: {exc.strerror or exc}")
    found.sort(key=lambda r: r.changed_at, reverse=True)
    return found, problems


# ---------------------------------------------------------------------- writing
class Autosaver(QObject):
    """Keeps the window's unsaved edits in a recovery file, written a few seconds after each change.

    Every edit is a command on the document's undo stack (graph edits, training setup, undo and
    redo), so ``indexChanged`` announces them all; graph events are listened to as well. The file
    is deleted when the document becomes clean (saved, or undone to its saved state), when the
    project is replaced, and when the window closes normally (:meth:`close`).

    Signals:
        saved(object): the recovery file (a Path) was just written.
        discarded(object): the recovery file (a Path) was just deleted.
        message(str): what the status bar should say (an autosave that failed).
    """

    saved = Signal(object)
    discarded = Signal(object)
    message = Signal(str)

    def __init__(self, window: MainWindow, delay_ms: int = AUTOSAVE_DELAY_MS) -> None:
        super().__init__(window)
        self.window = window
        self.document = window.document
        self.delay_ms = delay_ms
        self.file: Path | None = None  # the recovery file this window wrote and has not deleted
        self.asked: set[Path] = set()  # recovery files offered in this session (not offered again)
        self._locks: dict[Path, int] = {}
        self._uid = uuid.uuid4().hex  # names the data-folder file when the document has no uid
        self._changed_at: datetime | None = None
        self._pending_since: float | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.save_now)
        doc = self.document
        doc.undo_stack.indexChanged.connect(self._on_changed)
        doc.graph_event.connect(self._on_changed)
        doc.modified_changed.connect(self._on_modified_changed)
        doc.project_replaced.connect(self._on_project_replaced)
        self.message.connect(window.show_message)

    # ------------------------------------------------------------------ public
    def save_now(self) -> Path | None:
        """Write the recovery file now; the file written, or None (nothing unsaved, or no place took it)."""
        self._timer.stop()
        self._pending_since = None
        if not self.document.is_modified():
            self.discard()
            return None
        try:
            data = recovery_bytes(self.document, self._changed_at or _now())
        except (TypeError, ValueError) as exc:
            self.message.emit(f"Autosave failed: the project holds something JSON cannot store ({exc})")
            return None
        problems = []
        for target in self._targets():
            try:
                self._write(target, data)
            except OSError as exc:
                problems.append(f"{target}: {exc.strerror or exc}")
                continue
            return target
        self.message.emit("Autosave failed: " + ("; ".join(problems) or "no folder would take the recovery file"))
        return None

    def discard(self) -> None:
        """Delete this window's recovery file (the edits were saved or dropped on purpose)."""
        file, self.file = self.file, None
        if file is not None:
            self._delete(file)
            self.discarded.emit(file)

    def close(self) -> None:
        """The window closes normally (saved or discarded after asking): no recovery file stays."""
        self._timer.stop()
        self.discard()

    def adopt(self, rec: Recovery) -> bool:
        """Take over a restored recovery file: this window writes and deletes it from now on."""
        if self.file is not None and self.file != rec.file:
            self.discard()
        try:
            fd = _hold_lock(rec.file)
        except OSError:
            fd = None
        if fd is None:
            return False  # NOTE: the next autosave writes a file of its own; the old one stays
        self._locks[rec.file] = fd
        self.file, self._changed_at = rec.file, rec.changed_at
        _register(rec.file)
        return True

    # ------------------------------------------------------------------ reactions
    def _on_changed(self, *_args) -> None:
        self._changed_at = _now()
        now = time.monotonic()
        if self._timer.isActive() and self._pending_since is not None and now - self._pending_since >= MAX_WAIT_S:
            return  # let the running timer fire: edits that never pause still get saved
        if not self._timer.isActive():
            self._pending_since = now
        self._timer.start(self.delay_ms)

    def _on_modified_changed(self, modified: bool) -> None:
        if modified:
            if not self._timer.isActive():
                self._pending_since = time.monotonic()
                self._timer.start(self.delay_ms)
        else:
            self._timer.stop()
            self.discard()

    def _on_project_replaced(self) -> None:
        self._timer.stop()
        self.discard()
        self._uid = uuid.uuid4().hex
        self._changed_at = None
        path = self.document.path
        if path is not None:
            # NOTE: after the open has finished; a dialog inside Document.replace would nest a replace.
            QTimer.singleShot(0, self, lambda: offer_beside(self.window, path))

    # ------------------------------------------------------------------ internals
    def _targets(self) -> list[Path]:
        """Where to write, best first: beside the project file, then the data folder.

        NOTE: a recovery file beside the project that this window did not write (left by a crash
        and not yet restored or discarded, or written by another window) is never overwritten.
        """
        doc, out = self.document, []
        if doc.path is not None:
            beside = beside_file(doc.path)
            if beside == self.file or not os.path.lexists(beside):
                out.append(beside)
        uid = getattr(doc, "uid", None)
        name = uid if isinstance(uid, str) and _UID.fullmatch(uid) else self._uid
        try:
            out.append(recovery_dir() / f"{name}.json")
        except OSError:
            pass
        return out

    def _write(self, target: Path, data: bytes) -> None:
        """Write ``target`` under its lock; then it is this window's file and the previous one goes."""
        if target not in self._locks:
            fd = _hold_lock(target)
            if fd is None:
                raise OSError(errno.EBUSY, "another Net Designer window is writing it")
            self._locks[target] = fd
        try:
            atomic_write_bytes(target, data)
        except OSError:
            if target != self.file:
                self._release(target)
            raise
        old, self.file = self.file, target
        _register(target)
        if old is not None and old != target:
            self._delete(old)
        self.saved.emit(target)

    def _delete(self, file: Path) -> None:
        try:
            _unlink(file)
        except OSError as exc:
            self.message.emit(f"The recovery file {file} could not be deleted: {exc.strerror or exc}")
        _unregister(file)
        self._release(file)

    def _release(self, file: Path) -> None:
        fd = self._locks.pop(file, None)
        if fd is not None:
            _release_lock(file, fd)


# ---------------------------------------------------------------------- offering
RESTORE, DISCARD, LATER = "restore", "discard", "later"


def _when(moment: datetime) -> str:
    local = moment.astimezone()
    return f"{local:%H:%M}" if local.date() == _now().date() else f"{local:%Y-%m-%d %H:%M}"


def restore_question(rec: Recovery) -> str:
    """The question put to the user about ``rec`` (plain text)."""
    name = rec.project.name or (rec.path.stem if rec.path else "Untitled")
    when = _when(rec.changed_at)
    lines = [f"Net Designer closed without saving “{name}” (last change {when}). Restore the unsaved changes?", ""]
    if rec.path is None:
        lines.append("The project was never saved; Save asks where to keep it.")
    else:
        lines.append(f"Restoring opens them unsaved; Save writes them to {rec.path}.")
        try:
            if os.stat(rec.path).st_mtime > rec.changed_at.timestamp():
                lines.append(f"Note: {rec.path.name} was saved after that change.")
        except OSError:
            pass
    lines.append("Later keeps them for the next start.")
    return "\n".join(lines)


def ask_restore(window: MainWindow, rec: Recovery) -> str:
    """Ask Restore / Discard / Later about ``rec``; Escape means Later, which loses nothing."""
    B = QMessageBox.StandardButton
    box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes found", "", B.Yes | B.Discard | B.Cancel, window)
    box.setTextFormat(Qt.TextFormat.PlainText)  # NOTE: the project name is user text, never markup
    box.setText(restore_question(rec))
    box.button(B.Yes).setText("Restore")
    box.button(B.Cancel).setText("Later")
    box.setDefaultButton(B.Yes)
    box.setEscapeButton(B.Cancel)
    answer = box.exec()
    return {B.Yes: RESTORE, B.Discard: DISCARD}.get(B(answer), LATER)


def restore(window: MainWindow, rec: Recovery) -> bool:
    """Open ``rec``'s project as an unsaved document, with its file path, so Save writes the original."""
    if not window.files.maybe_save():
        return False
    doc = window.document
    path = rec.path if rec.path is not None and rec.path.parent.is_dir() else None
    doc.replace(rec.project, path)
    if rec.uid and hasattr(doc, "uid"):
        doc.uid = rec.uid  # NOTE: an unsaved project's runs are kept under its uid
    doc.undo_stack.resetClean()  # modified until saved, with no undo step back to "clean"
    window.autosaver.adopt(rec)
    window.fit_soon()
    window.show_message(f"Restored the unsaved changes to “{rec.project.name}”: save them to keep them")
    return True


def offer(window: MainWindow, rec: Recovery) -> bool:
    """Ask about one recovery file and do what the user chose; True when it was restored."""
    window.autosaver.asked.add(rec.file)
    choice = ask_restore(window, rec)
    if choice == RESTORE:
        return restore(window, rec)
    if choice == DISCARD and not writer_alive(rec.file):
        delete_recovery(rec.file)
        window.show_message(f"Discarded the unsaved changes to “{rec.project.name}”")
    return False


def offer_recovery(window: MainWindow) -> None:
    """At start: offer each recovery file a crashed or killed Net Designer left, newest first.

    A damaged file is set aside with a status message. After one restore the rest wait for the
    next start (one window holds one project).
    """
    found, problems = find_recoveries()
    if problems:
        window.show_message(" ".join(problems))
    autosaver = window.autosaver
    pending = [r for r in found if r.file not in autosaver.asked and r.file != autosaver.file]
    for i, rec in enumerate(pending):
        if offer(window, rec):
            if len(pending) > i + 1:
                window.show_message(f"{len(pending) - i - 1} more unsaved project(s) will be offered at the next start")
            return


def offer_beside(window: MainWindow, path: Path) -> None:
    """After ``path`` was opened: offer the recovery file beside it, if a crashed writer left one."""
    autosaver = window.autosaver
    file = beside_file(path)
    if window.document.path != path or file == autosaver.file or file in autosaver.asked:
        return
    if not os.path.lexists(file) or writer_alive(file):
        return
    try:
        rec = read_recovery(file)
    except FileNotFoundError:
        return
    except NetDesignerError as exc:
        window.show_message(_set_aside(file, exc))
        return
    except OSError as exc:
        window.show_message(f"The recovery file {file} could not be read: {exc.strerror or exc}")
        return
    offer(window, rec)

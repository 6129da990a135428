"""Safe file writes shared by project saving, export, runs and checkpoints.

:func:`atomic_write` writes what the user means: through a symlink it writes the link's
target (the link stays a link); a file with hard links is rewritten in place so every name
sees the new content; a read-only file or folder is refused; the new content is synced
before it replaces the old, and the folder after; temporaries that earlier crashes left
beside the target are removed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["STALE_AFTER_S", "atomic_write", "atomic_write_bytes", "atomic_write_text"]

#: A temporary untouched for this long, and not locked by a live writer, is a crash's leftover.
STALE_AFTER_S = 10.0
_TMP, _STAGED = ".tmp", ".new"
_CHUNK = 1 << 20


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then put it in place of ``path``.

    A crash part way leaves the old file (or nothing) in place, never half a file. Raises
    ``PermissionError`` for a read-only file or folder, before anything is written.
    """
    target = _resolve(path)
    st = _check_target(target)
    _remove_stale(target, (_TMP,))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP, dir=target.parent)
    tmp = Path(tmp_name)
    try:
        lock = _hold(fd)
        try:
            write(tmp)
            _sync_file(tmp, lock)
            if st is not None and st.st_nlink > 1:
                _write_in_place(tmp, target)
            else:
                # NOTE: mkstemp makes the file 0600; keep an existing file's mode, else the umask's.
                os.chmod(tmp, st.st_mode & 0o777 if st is not None else _default_mode())
                os.replace(tmp, target)
                _sync_folder(target.parent)
        finally:
            if lock is not None:
                os.close(lock)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _remove_stale(target, (_TMP, _STAGED))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` with :func:`atomic_write`."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as UTF-8 with :func:`atomic_write`.

    Text UTF-8 cannot hold (a lone surrogate) raises ``UnicodeEncodeError`` before any file is touched.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------- where and whether
def _resolve(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` means: a symlink's target (followed to the end), made absolute."""
    return Path(os.path.realpath(os.fspath(path)))


def _check_target(target: Path) -> os.stat_result | None:
    """The target's stat (None when it does not exist yet); refuse what must not be written."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "a folder of that name is in the way", str(target))
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "something that is not a regular file is in the way", str(target))
    # NOTE: os.access alone says yes to root for a 0444 file; the mode bits say what the owner meant.
    if st is not None and (not st.st_mode & 0o222 or not os.access(target, os.W_OK)):
        raise PermissionError(errno.EACCES, "the file is read-only", str(target))
    folder = target.parent
    fst = os.stat(folder)
    # NOTE: Windows ignores a folder's read-only attribute (Explorer sets it on customized folders).
    if os.name != "nt" and (not fst.st_mode & 0o222 or not os.access(folder, os.W_OK | os.X_OK)):
        raise PermissionError(errno.EACCES, f"the folder {folder} is read-only", str(target))
    return st


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# ---------------------------------------------------------------------- writing
def _hold(fd: int) -> int | None:
    """Lock the new temporary for as long as this writer lives; returns the descriptor to close.

    NOTE: the lock tells :func:`_remove_stale` in other processes that the file is being written.
    On Windows there is no flock, and a file open in another process cannot be deleted anyway;
    the descriptor is closed at once there, because an open file cannot be renamed.
    """
    if fcntl is None:
        os.close(fd)
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _sync_file(path: Path, fd: int | None) -> None:
    """Flush ``path``'s content to the disk (through ``fd`` when one is open on it)."""
    if fd is not None:
        os.fsync(fd)
        return
    with open(path, "rb+") as fh:  # pragma: no cover - Windows
        os.fsync(fh.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable. Windows has no way to sync a folder, so it is skipped."""
    if os.name == "nt":  # pragma: no cover
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a folder this process may write but not read cannot be synced
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def _write_in_place(tmp: Path, target: Path) -> None:
    """Copy the synced temporary into the hard-linked ``target`` itself, so every name sees it.

    NOTE: a crash at any point leaves the whole content readable somewhere:
    - before the rename below: ``target`` is untouched (old content); the ``.tmp`` is a leftover.
    - during the copy: the complete new content is in ``.NAME.xxxxxxxx.new`` beside ``target``
      (synced, its name made durable by the folder sync); ``target`` may be half old, half new.
    - after the copy: ``target`` holds the new content (synced); the ``.new`` copy is superseded.
    A staged ``.new`` copy is removed only after a later save of the same target has completed.
    """
    staged = tmp.with_name(tmp.name[: -len(_TMP)] + _STAGED)
    os.replace(tmp, staged)
    _sync_folder(target.parent)
    try:
        _copy_into(staged, target)
    except OSError as exc:
        exc.strerror = f"{exc.strerror or exc}; the complete new content is in {staged}"
        raise
    staged.unlink()


def _copy_into(src: Path, dst: Path) -> None:
    """Overwrite ``dst``'s content with ``src``'s, in place (same inode), and sync it."""
    # NOTE: opened without truncating (O_TRUNC would lose the old content before the copy starts).
    with open(src, "rb") as fin, os.fdopen(os.open(dst, os.O_WRONLY | getattr(os, "O_BINARY", 0)), "wb") as fout:
        if fcntl is not None:
            fcntl.flock(fout.fileno(), fcntl.LOCK_EX)  # NOTE: two in-place saves copy one after the other
        while chunk := fin.read(_CHUNK):
            fout.write(chunk)
        fout.truncate()
        fout.flush()
        os.fsync(fout.fileno())


# ---------------------------------------------------------------------- leftovers
def _remove_stale(target: Path, suffixes: tuple[str, ...]) -> None:
    """Delete the temporaries (and staged copies) of ``target`` that crashed writers left behind.

    NOTE: only names :func:`atomic_write` makes for this target match (``.NAME.`` + mkstemp's eight
    characters + suffix). A file is stale when it is older than :data:`STALE_AFTER_S` AND no live
    writer holds its lock. Both are needed when two processes save at once: every writer locks
    its temporary right after creating it and keeps the lock until it has renamed or copied it,
    and the lock dies with the process; the age covers the instant between creating and locking
    (a file is new then), and Windows, which has no flock but refuses to delete an open file.
    """
    pattern = re.compile(re.escape(f".{target.name}.") + r"[a-z0-9_]{8}(" + "|".join(map(re.escape, suffixes)) + ")")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        if pattern.fullmatch(name):
            _remove_if_stale(target.parent / name)


def _remove_if_stale(path: Path) -> None:
    if _is_stale(path):
        try:
            os.unlink(path)
        except OSError:
            pass  # another save removed it first


def _is_stale(path: Path) -> bool:
    """True when ``path`` is an old regular file that no live writer holds locked."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while a live writer holds it
        st = os.fstat(fd)
        # NOTE: the name must still mean the file this check looked at.
        same = os.stat(path, follow_symlinks=False).st_ino == st.st_ino
        return same and stat.S_ISREG(st.st_mode) and time.time() - st.st_mtime >= STALE_AFTER_S
    except OSError:
        return False
    finally:
        os.close(fd)  # NOTE: closed before the unlink, which Windows refuses for an open file

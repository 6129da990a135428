"""Files named by a person: refuse what is not a regular file before reading it.

Opening a named pipe for reading waits until some other program writes to it, and a device
can be endless, so a command given one would hang. These checks look at the file's type
first (``stat``, or ``fstat`` on a descriptor opened without waiting) and say what it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from engine.errors import NetDesignerError

__all__ = ["check_regular_file", "file_kind", "open_regular_file"]


def file_kind(mode: int) -> str:
    """What a ``stat`` mode is, in words ("a folder", "a named pipe", ...)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _refusal(path: Path, mode: int, what: str) -> NetDesignerError:
    return NetDesignerError(f"{path}: this is {file_kind(mode)}, not {what}")


def check_regular_file(path: str | Path, what: str) -> None:
    """Refuse an existing ``path`` that is not a regular file; a missing one is left to its reader.

    Args:
        what: the file the command wants, for the message ("a project file").
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError:
        return  # NOTE: missing or unreadable: the reader's own message names it better
    if not stat.S_ISREG(mode):
        raise _refusal(p, mode, what)


def open_regular_file(path: str | Path, what: str) -> BinaryIO:
    """Open ``path`` for reading in binary, refusing anything but a regular file.

    The file is opened without waiting (``O_NONBLOCK``), then its descriptor's type is checked,
    so a named pipe swapped in after a ``stat`` still cannot make the caller hang.

    Raises:
        FileNotFoundError: there is no such file.
        NetDesignerError: it is a folder, pipe, socket or device.
        OSError: it cannot be opened (permissions, ...).
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except IsADirectoryError:
        raise _refusal(p, stat.S_IFDIR, what) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refusal(p, mode, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise

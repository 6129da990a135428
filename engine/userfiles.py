"""Files named by a person: refuse what is not a regular file, or is too large, before reading it.

Opening a named pipe for reading waits until some other program writes to it, and a device
can be endless (or do something when opened), so a command given one would hang. Every reader
of a person's file (project files, data files, images, weights) goes through this module: the
path's type is looked at first (``stat``), the file is opened without waiting, and the open
descriptor's type is checked again (``fstat``). Each refusal is an exception that carries what
was found (:class:`NotRegularFile`, :class:`FileTooLarge`, :class:`ImageTooLarge`,
:class:`UnreadableImage`), so each caller can word it for its own readers. Pictures are refused
by the size their header declares, before a pixel is decoded.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine.errors import NetDesignerError

__all__ = [
    "MAX_IMAGE_PIXELS",
    "FileTooLarge",
    "ImageTooLarge",
    "NotRegularFile",
    "UnreadableImage",
    "check_regular_file",
    "file_kind",
    "open_regular_file",
    "read_image",
    "read_regular_file",
    "read_tensors",
]

#: images with more pixels are refused before decoding: a few kilobytes of PNG can declare gigabytes
MAX_IMAGE_PIXELS = 50_000_000


class NotRegularFile(NetDesignerError):
    """A path is a folder, pipe, socket or device; ``kind`` says which in words, ``mode`` is its ``stat`` mode."""

    def __init__(self, path: Path, mode: int, what: str) -> None:
        self.path, self.mode, self.kind = path, mode, file_kind(mode)
        super().__init__(f"{path}: this is {self.kind}, not {what}")


class FileTooLarge(NetDesignerError):
    """A file is larger than its reader takes; ``size`` is None when it grew while being read."""

    def __init__(self, path: Path, size: int | None, limit: int, what: str) -> None:
        self.path, self.size, self.limit = path, size, limit
        super().__init__(f"{path} is larger than {limit // 2**20} MB, too large for {what}")


class ImageTooLarge(NetDesignerError):
    """An image declares more than :data:`MAX_IMAGE_PIXELS` pixels; it was not decoded.

    ``size`` (width, height) is known when the header was read; ``pixels`` when Pillow's own
    limit refused the header and said how many (None when it did not say).
    """

    def __init__(self, pixels: int | None, size: tuple[int, int] | None = None) -> None:
        self.pixels, self.size = pixels, size
        count = f"{pixels:,}" if pixels is not None else "too many"
        super().__init__(f"the image has {count} pixels, more than the {MAX_IMAGE_PIXELS:,} read")


class UnreadableImage(NetDesignerError):
    """A file that is not an image the decoder can read (damaged, or another kind of file); ``why`` in its words."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(f"not an image that can be read ({why})")


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


def _refuse_odd(path: Path, st: os.stat_result, what: str, max_bytes: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(path, st.st_mode, what)
    if max_bytes is not None and st.st_size > max_bytes:
        raise FileTooLarge(path, st.st_size, max_bytes, what)


def check_regular_file(path: str | Path, what: str) -> None:
    """Refuse an existing ``path`` that is not a regular file; a missing one is left to its reader.

    Args:
        what: the file the command wants, for the message ("a project file").
    """
    p = Path(path)
    try:
        st = p.stat()
    except (OSError, ValueError):  # NOTE: ValueError: a NUL in the path
        return  # NOTE: missing or unreadable: the reader's own message names it better
    _refuse_odd(p, st, what, None)


def open_regular_file(path: str | Path, what: str, max_bytes: int | None = None) -> BinaryIO:
    """Open ``path`` for reading in binary, refusing anything but a regular file (of at most ``max_bytes``).

    NOTE: the path is stat'ed first (so a device is never opened: opening some does something),
    then opened without waiting (``O_NONBLOCK``: a named pipe swapped in after the ``stat`` still
    cannot make the caller hang), and the open descriptor is checked again with ``fstat``.

    Args:
        what: the file the caller wants, for the message ("a project file").

    Raises:
        FileNotFoundError: there is no such file.
        NotRegularFile: it is a folder, pipe, socket or device.
        FileTooLarge: it is larger than ``max_bytes``.
        OSError: it cannot be opened (permissions, ...).
        ValueError: the path holds a NUL character.
    """
    p = Path(path)
    _refuse_odd(p, os.stat(p), what, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except IsADirectoryError:
        raise NotRegularFile(p, stat.S_IFDIR, what) from None
    try:
        _refuse_odd(p, os.fstat(fd), what, max_bytes)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; raises as :func:`open_regular_file`.

    A file that grows past ``max_bytes`` while it is read is a :class:`FileTooLarge` with no ``size``.
    """
    with open_regular_file(path, what, max_bytes) as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise FileTooLarge(Path(path), None, max_bytes, what)
    return raw


def read_tensors(path: str | Path, what: str, map_location: Any = "cpu") -> Any:
    """What a ``torch.save`` file (weights, a checkpoint) holds, read with ``weights_only=True`` from a regular file.

    NOTE: torch warns about a file's pickle protocol before it loads or refuses it; its callers say the
    outcome in words, and on the command line the warning would be two more lines on stderr.

    Raises:
        FileNotFoundError, NotRegularFile, OSError: as :func:`open_regular_file`.
        Exception: whatever torch raises for a damaged or unsafe file (many kinds).
    """
    import torch

    with open_regular_file(path, what) as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(fh, map_location=map_location, weights_only=True)


def read_image(fh: BinaryIO, mode: str, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels of an open image file as float32 in [0, 1], converted to ``mode`` ("L" or "RGB") and
    resized to ``size`` (width, height), with the image's own (width, height).

    NOTE: ``Image.open`` reads only the header; the size it declares is checked before
    ``convert`` decodes a single pixel. Pillow's own, higher limit may refuse the header (or a
    frame) first; either way the refusal is an :class:`ImageTooLarge`.

    Raises:
        ImageTooLarge: the image declares more than :data:`MAX_IMAGE_PIXELS` pixels.
        UnreadableImage: the decoder failed (a damaged file, or not an image at all).
        MemoryError: the pixels did not fit in memory.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # NOTE: refused below, in plain words
            with Image.open(fh) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageTooLarge(width * height, (width, height))
                pixels = im.convert(mode).resize(size, Image.Resampling.BILINEAR)
                return np.asarray(pixels, dtype=np.float32) / 255.0, (width, height)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageTooLarge(int(found.group(1)) if found else None) from None
    except (ImageTooLarge, MemoryError):
        raise
    # NOTE: decoders fail in many ways (OSError, ValueError, SyntaxError for a broken PNG chunk, struct.error,
    # EOFError, zlib.error); each means the same to a person: not an image that can be read.
    except Exception as exc:  # noqa: BLE001
        raise UnreadableImage(str(exc) or type(exc).__name__) from None

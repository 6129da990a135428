"""The files a streamed data set reads one sample at a time: an image folder, an ``.npz`` array, a CSV table.

Each source is small, picklable plain data (a file list, a path and an offset) that a
``DataLoader`` worker process gets a copy of; it opens what it needs in that process. ``read(i)``
gives sample ``i`` fitted to the Input, as float32, or raises :class:`BadSample` naming the file
(and the row or array element) and why, so that training reports it and goes on without it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from engine.data.base import DataError, FileRefused
from engine.userfiles import UnreadableImage

__all__ = ["BadSample", "FolderSource", "MappedSource", "Source"]


class BadSample(Exception):
    """A sample that could not be read mid-epoch: ``where`` names the file (and row), ``reason`` says why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason

    def __reduce__(self):  # NOTE: crosses from a worker process with both fields
        return BadSample, (self.where, self.reason)


class Source(Protocol):
    """Where a streamed data set's samples come from."""

    input_shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def read(self, i: int) -> Tensor: ...


@dataclass
class FolderSource:
    """The images of an image folder, in the order :func:`engine.data.folder.list_image_folder` lists them."""

    files: list[str]
    mode: str  # "L" or "RGB"
    chw: tuple[int, int, int]
    input_shape: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> Tensor:
        from engine.data.folder import decode_image

        path = Path(self.files[i])
        try:
            pixels, _ = decode_image(path, self.mode, self.chw)
        except FileRefused as exc:
            raise BadSample(str(path), exc.reason) from None
        except UnreadableImage:
            raise BadSample(str(path), f"not a readable image (damaged, or not really a {path.suffix[1:].upper()} file)") from None
        except DataError as exc:  # more pixels than are read
            raise BadSample(str(path), str(exc)) from None
        except MemoryError:
            raise BadSample(str(path), "it did not fit in memory") from None
        return torch.from_numpy(pixels).reshape(self.input_shape)


@dataclass
class MappedSource:
    """Rows of an array stored uncompressed in a file, memory-mapped: ``x`` of an ``.npz`` file at its
    offset in the zip archive, or the float32 copy of a CSV table's features.

    Attributes:
        what: how a sample is named in messages: "npz file data.npz, x" gives "npz file data.npz, x[12]".
        remove: the file is a temporary copy, deleted when the process that made it drops this source.
    """

    path: str
    offset: int
    dtype: str
    shape: tuple[int, ...]
    fortran: bool
    input_shape: tuple[int, ...]
    what: str
    remove: bool = False
    _map: Any = field(default=None, repr=False, compare=False)
    _owner: int = field(default_factory=os.getpid, repr=False, compare=False)

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_map"] = None  # NOTE: a map is reopened in each worker, never pickled (that would copy the array)
        return state

    def __del__(self) -> None:
        if self.remove and self._owner == os.getpid():
            self._map = None
            try:
                os.remove(self.path)
            except OSError:
                pass  # NOTE: gone already

    def _array(self) -> np.ndarray:
        if self._map is None:
            order = "F" if self.fortran else "C"
            self._map = np.memmap(self.path, dtype=np.dtype(self.dtype), mode="r", offset=self.offset,
                                  shape=self.shape, order=order)
        return self._map

    def read(self, i: int) -> Tensor:
        try:
            row = np.array(self._array()[i], dtype=np.float32)
        except (OSError, ValueError) as exc:
            raise BadSample(f"{self.what}[{i}]", f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
        if not np.isfinite(row).all():
            raise BadSample(f"{self.what}[{i}]", "holds NaN or an infinite value (or one beyond float32's range)")
        return torch.from_numpy(row).reshape(self.input_shape)

    @property
    def sample_bytes(self) -> int:
        return math.prod(self.input_shape) * 4

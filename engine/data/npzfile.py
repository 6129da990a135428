"""Data a person brings as a NumPy ``.npz`` file: arrays ``x`` and ``y``, optionally ``classes``, ``mask`` and ``box``.

Every problem is a :class:`DataError` that names the file, array or sample at fault and says
what to do; no reader's own error text reaches a person. Only a regular file is opened, and the
sizes the ``.npy`` headers declare are checked against the file and the free memory before any
array is read; object arrays are never loaded.
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from engine.data.base import (
    DataError,
    Dataset,
    as_float,
    bytes_text,
    check_memory,
    labels_and_binary,
    open_regular,
    resize_masks,
    shape_text,
)

__all__ = ["NPZ_KEYS", "NpyHeader", "load_npz", "npz_headers"]

try:
    import lzma

    _LZMA_ERRORS: tuple[type[Exception], ...] = (lzma.LZMAError,)
except ImportError:  # pragma: no cover - a Python built without lzma cannot open such members at all
    _LZMA_ERRORS = ()

#: what reading a damaged archive raises: zipfile, zlib, numpy's header parser and the system
_ARCHIVE_FAILURES = (
    OSError,
    ValueError,
    TypeError,
    EOFError,
    KeyError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    *_LZMA_ERRORS,
)

#: the arrays an .npz data set may hold, read when present; any others are ignored, unread
NPZ_KEYS = ("x", "y", "classes", "mask", "box")

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip member's local header, as the zip format defines it


@dataclass(frozen=True)
class NpyHeader:
    """One array of an ``.npz`` file as its ``.npy`` header declares it, known before any data is read."""

    key: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int  # bytes of the .npy header before the data in the member

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 0


def _open_archive(path: Path, f: BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(f)
    except zipfile.BadZipFile:
        f.seek(0)
        if f.read(6) == b"\x93NUMPY":
            raise DataError(
                f"{path} holds a single array, not named arrays: save it with np.savez(path, x=..., y=...)"
            ) from None
        raise DataError(
            f"{path} is not a readable .npz file (it is not a zip archive of NumPy arrays): "
            "save it with np.savez(path, x=inputs, y=targets)"
        ) from None
    except _ARCHIVE_FAILURES:
        raise DataError(f"{path} is not a readable .npz file (its table of contents is damaged): save it again") from None


def _header(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> NpyHeader:
    key = info.filename[: -len(".npy")]
    if info.flag_bits & 0x1:
        raise DataError(f"npz file {path}: array {key!r} is encrypted: save it again without a password")
    try:
        with archive.open(info) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise DataError(
                    f"npz file {path}: array {key!r} is in .npy format version {version[0]}.{version[1]}, "
                    "which is not read: save it with np.savez"
                )
            offset = fp.tell()
    except DataError:
        raise
    except _ARCHIVE_FAILURES:
        raise DataError(f"npz file {path}: the header of array {key!r} is damaged: save the file again") from None
    if any(s < 0 for s in shape):
        raise DataError(f"npz file {path}: the header of array {key!r} declares a negative size: save the file again")
    return NpyHeader(key, info, tuple(int(s) for s in shape), dtype, bool(fortran), offset)


def npz_headers(path: Path, archive: zipfile.ZipFile) -> dict[str, NpyHeader]:
    """The header of each array of ``NPZ_KEYS`` in ``archive``, read without reading any data."""
    out = {}
    for info in archive.infolist():
        key = info.filename[: -len(".npy")]
        if info.filename.endswith(".npy") and key in NPZ_KEYS and not info.is_dir():
            out[key] = _header(path, archive, info)
    return out


def _size_check(path: Path, head: NpyHeader) -> None:
    """Refuse an array whose declared size does not fit its member of the archive."""
    if head.dtype.hasobject:
        raise DataError(
            f"npz file {path}: array {head.key!r} holds Python objects, which are not loaded "
            "(loading them could run code): save numbers or text"
        )
    stored = head.info.file_size - head.offset
    if head.nbytes > stored:
        raise DataError(
            f"npz file {path}: array {head.key!r} declares {shape_text(head.shape) or 'one value'} of {head.dtype} "
            f"({bytes_text(head.nbytes)}) but the file holds {bytes_text(max(stored, 0))} of it: "
            "the file is truncated or damaged; save it again"
        )


def _check_headers(
    path: Path, names: list[str], heads: dict[str, NpyHeader], input_shape: tuple[int, ...], whole: bool = True
) -> int:
    """Check types, shapes, row counts, sizes and memory from the headers alone; the number of samples.

    Args:
        names: every array in the file, for the message when ``x`` or ``y`` is missing.
        whole: ``x`` is to be loaded too (False: it streams, and only the targets must fit in memory).
    """
    for key in ("x", "y"):
        if key not in heads:
            have = ", ".join(repr(k) for k in names) or "none"
            raise DataError(
                f"npz file {path} has no array named {key!r} (it has {have}): "
                "save it with np.savez(path, x=inputs, y=targets)"
            )
    for head in heads.values():
        _size_check(path, head)
    x, y = heads["x"], heads["y"]
    if not x.shape or x.dtype.kind not in "biuf":
        raise DataError(
            f"npz file {path}: x must be an array of numbers with one row per sample, not {x.dtype} of shape {x.shape}"
        )
    n = x.rows
    if n == 0:
        raise DataError(f"npz file {path}: x holds no samples")
    if y.rows != n:
        raise DataError(f"npz file {path}: x has {n:,} samples but y has {y.rows:,}: save one target per sample")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"npz file {path}: y must hold numbers or text labels, not {y.dtype}")
    per, want = math.prod(x.shape[1:]), math.prod(input_shape)
    if per != want:
        raise DataError(
            f"npz file {path}: x holds {n:,} samples of {shape_text(x.shape[1:]) or 1} = {per} values each, "
            f"but the Input expects {shape_text(input_shape)} = {want}"
        )
    box, mask = heads.get("box"), heads.get("mask")
    if box is not None and (box.shape != (n, 4) or box.dtype.kind not in "biuf"):
        raise DataError(f"npz file {path}: box must be numbers of shape ({n}, 4), not {box.dtype} {box.shape}")
    if mask is not None and (len(mask.shape) != 3 or mask.rows != n or mask.dtype.kind not in "biu"):
        raise DataError(f"npz file {path}: mask must be integers of shape ({n}, H, W), not {mask.dtype} {mask.shape}")
    check_memory(
        (n * want * 4 if whole else 0) + sum(head.nbytes for key, head in heads.items() if whole or key != "x"),
        f"npz file {path}: {n:,} samples of {shape_text(input_shape)}",
        "use fewer samples or a smaller Input",
    )
    return n


def _stored_data_start(f: BinaryIO, head: NpyHeader) -> int | None:
    """Where an uncompressed member's array data begins in the file, or None (compressed, odd)."""
    info = head.info
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or head.nbytes == 0:
        return None
    f.seek(info.header_offset)
    local = f.read(_LOCAL_HEADER.size)
    if len(local) != _LOCAL_HEADER.size:
        return None
    fields = _LOCAL_HEADER.unpack(local)
    if fields[0] != b"PK\x03\x04":
        return None
    member = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
    f.seek(member)
    return member + head.offset if f.read(6) == b"\x93NUMPY" else None


def _read_array(path: Path, f: BinaryIO, archive: zipfile.ZipFile, head: NpyHeader, mapped: bool) -> np.ndarray:
    """The array ``head`` declares: memory-mapped from the file when ``mapped`` and it is stored uncompressed."""
    try:
        start = _stored_data_start(f, head) if mapped else None
        if start is not None:
            order = "F" if head.fortran else "C"
            return np.memmap(f, dtype=head.dtype, mode="r", offset=start, shape=head.shape, order=order)
        with archive.open(head.info) as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)
    except _ARCHIVE_FAILURES:
        raise DataError(f"npz file {path}: array {head.key!r} cannot be read: the file is damaged; save it again") from None


#: values checked for NaN at once: bounds the memory of the check's temporary
FINITE_CHECK_VALUES = 2**22


def _float32(a: np.ndarray) -> np.ndarray:
    """``a`` as float32, copied out of a memory map; values beyond float32 become infinity (checked after)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(a, dtype=np.float32) if isinstance(a, np.memmap) else np.asarray(a, dtype=np.float32)


def _first_non_finite(a: np.ndarray) -> int | None:
    """The first row of float array ``a`` holding NaN or infinity, checked a slice at a time."""
    flat = a.reshape(len(a), -1)
    step = max(1, FINITE_CHECK_VALUES // max(flat.shape[1], 1))
    for start in range(0, len(flat), step):
        ok = np.isfinite(flat[start : start + step]).all(axis=1)
        if not ok.all():
            return start + int(np.argmin(ok))
    return None


def _finite(path: Path, key: str, values: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``values`` (float32 from ``source``), refused naming the first sample with NaN or infinity."""
    bad = _first_non_finite(values)
    if bad is None:
        return values
    row = values.reshape(len(values), -1)[bad]
    before = np.asarray(source[bad], dtype=np.float64)
    if np.isnan(row).any():
        what = "NaN (not a number)"
    elif np.isfinite(before).all():
        what = "a value too large for the 32-bit numbers training uses (beyond ±3.4e38)"
    else:
        what = "an infinite value"
    raise DataError(
        f"npz file {path}: {key}[{bad}] (sample {bad + 1:,}) holds {what}: fix or remove that sample, "
        "or training gives NaN losses"
    )


def _npz_labels(y: np.ndarray, names: np.ndarray | None) -> tuple[dict[str, torch.Tensor], list[str]]:
    flat = y.reshape(len(y))
    distinct, labels = np.unique(flat, return_inverse=True)
    if names is not None and y.dtype.kind in "biu" and np.array_equal(distinct, np.arange(len(names))[: len(distinct)]):
        classes = [str(s) for s in names]
    else:
        classes = [str(v) for v in distinct]
    return labels_and_binary(labels, len(classes)), classes


def _npz_targets(
    path: Path, arrays: dict[str, np.ndarray], n: int, input_shape: tuple[int, ...], task: str
) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """The targets ``y`` (and ``box``, ``mask``) give for ``task``, and the class names when there are classes."""
    y = arrays["y"]
    classes: list[str] | None = None
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError(f"npz file {path}: regression needs numbers in y, not {y.dtype}")
        values = _finite(path, "y", _float32(y), y)
        targets = {"value": torch.from_numpy(np.ascontiguousarray(values.reshape(n, -1)))}
    elif y.dtype.kind == "f":
        if task != "binary":
            raise DataError(
                f"npz file {path}: y holds floats (values to regress); for {task} save y as integers (class indices)"
            )
        flat = y.reshape(n, -1)
        off = ~np.isin(flat, (0.0, 1.0)).all(axis=1)
        if off.any():
            i = int(np.argmax(off))
            raise DataError(f"npz file {path}: y[{i}] holds {flat[i].tolist()}: binary targets in y must be 0 or 1")
        targets = {"binary": as_float(flat)}
    elif y.size == n:
        targets, classes = _npz_labels(y, arrays.get("classes"))
    else:
        raise DataError(f"npz file {path}: y must hold one class index per sample (shape ({n},)), not shape {y.shape}")
    if "box" in arrays:
        box = _finite(path, "box", _float32(arrays["box"]), arrays["box"])
        targets["box"] = torch.from_numpy(np.ascontiguousarray(box))
    if "mask" in arrays:
        mt = _class_maps(path, np.asarray(arrays["mask"]))
        targets["mask"] = resize_masks(mt, tuple(input_shape[1:])) if len(input_shape) == 3 else mt
    return targets, classes


def _class_maps(path: Path, mask: np.ndarray) -> torch.Tensor:
    """The masks as int64 class indices, refused naming the first sample with a negative one.

    NOTE: an unsigned value past the int64 range turns negative in the conversion, so it is caught too.
    """
    mt = torch.as_tensor(mask, dtype=torch.int64)
    bad = (mt.reshape(len(mt), -1) < 0).any(dim=1)
    if not bad.any():
        return mt
    i = int(bad.nonzero()[0, 0])
    value = mask[i].reshape(-1)[int(torch.argmax((mt[i].reshape(-1) < 0).to(torch.uint8)))]
    raise DataError(
        f"npz file {path}: mask[{i}] (sample {i + 1:,}) holds {value}, which is not a class index: "
        "a mask holds whole numbers from 0 (the background) up"
    )


def load_npz(path: Path, input_shape: tuple[int, ...], task: str) -> Dataset:
    """Arrays ``x`` (N, ...) and ``y`` (N, ...); optional ``classes``, ``mask`` and ``box``.

    ``x`` is reshaped to the Input shape when its values per sample match. Integer (or text)
    ``y`` gives class labels, float ``y`` gives values (``binary`` targets for the binary task;
    ``value`` for regression whatever the type). The ``.npy`` headers are checked first (types,
    shapes, rows, sizes against the file and the free memory); only then are arrays read, ``x``
    memory-mapped when stored uncompressed. Object arrays are never loaded.
    """
    with open_regular(path, "npz file") as f, _open_archive(path, f) as archive:
        names = [i.filename[: -len(".npy")] for i in archive.infolist() if i.filename.endswith(".npy")]
        heads = npz_headers(path, archive)
        n = _check_headers(path, names, heads, input_shape)
        arrays = {key: _read_array(path, f, archive, head, mapped=key == "x") for key, head in heads.items()}
    x = arrays.pop("x")
    values = _finite(path, "x", _float32(x), x)
    del x
    xt = torch.from_numpy(np.ascontiguousarray(values.reshape(n, *input_shape)))
    targets, classes = _npz_targets(path, arrays, n, input_shape, task)
    return Dataset(xt, targets, classes, path.name)


def npz_sample_bytes(path: Path, input_shape: tuple[int, ...]) -> int:
    """The memory ``x`` of an ``.npz`` file takes as float32 samples, from its header alone (0 without one)."""
    with open_regular(path, "npz file") as f, _open_archive(path, f) as archive:
        head = npz_headers(path, archive).get("x")
    return head.rows * math.prod(input_shape) * 4 if head is not None and head.shape else 0


def open_npz_stream(path: Path, input_shape: tuple[int, ...], task: str):
    """``x`` of an ``.npz`` file as a memory-mapped :class:`~engine.data.stream_sources.MappedSource`,
    with the targets (read whole, checked as :func:`load_npz` checks them) and the class names.

    NOTE: ``np.load(mmap_mode=...)`` maps only a bare ``.npy`` file; a member stored uncompressed
    in the zip archive (``np.savez``) lies in the file as it is, so it is mapped at its offset.
    A compressed member (``np.savez_compressed``) cannot be read a sample at a time: refused.
    """
    from engine.data.stream_sources import MappedSource

    with open_regular(path, "npz file") as f, _open_archive(path, f) as archive:
        names = [i.filename[: -len(".npy")] for i in archive.infolist() if i.filename.endswith(".npy")]
        heads = npz_headers(path, archive)
        n = _check_headers(path, names, heads, input_shape, whole=False)
        x = heads["x"]
        try:
            start = _stored_data_start(f, x)
        except _ARCHIVE_FAILURES:
            start = None
        if start is None:
            raise DataError(
                f"npz file {path}: x is stored compressed (np.savez_compressed), so it cannot be read a sample at "
                "a time, and it is larger than data.memory_budget_gib: save it with np.savez (uncompressed), "
                "or raise the memory budget"
            )
        arrays = {key: _read_array(path, f, archive, head, mapped=False) for key, head in heads.items() if key != "x"}
    targets, classes = _npz_targets(path, arrays, n, input_shape, task)
    source = MappedSource(str(path), start, x.dtype.str, x.shape, x.fortran, tuple(input_shape), f"npz file {path}, x")
    return source, targets, classes

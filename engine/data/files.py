"""Data a person brings: a folder of images per class, a CSV table, or a NumPy ``.npz`` file.

Every problem is a :class:`DataError` that names the folder, file, row or column at fault and
says what to do; no reader's own error text reaches a person. What can be worked around (a
corrupt image, images of mixed sizes, a pipe among the images) is, and is noted in
``Dataset.warnings``. Only regular files are opened, so a pipe or device never blocks a load,
and sizes a file declares (an image's pixels, an array's shape) are checked against the file
and the free memory before anything is decoded.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import struct
import warnings as pywarnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from engine.data.base import (
    DataError,
    Dataset,
    FileRefused,
    as_float,
    bytes_text,
    check_memory,
    fit_vectors,
    labels_and_binary,
    open_regular,
    os_reason,
    resize_masks,
    rgb_or_gray_shape,
    shape_text,
)

__all__ = ["IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "load_csv", "load_image_folder", "load_npz"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: images with more pixels are refused before decoding: a few kilobytes of PNG can declare gigabytes
MAX_IMAGE_PIXELS = 50_000_000

#: the largest magnitude a float32 holds; a bigger value becomes infinity in training
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _shown(cell: str) -> str:
    """A cell's text for a message, cut short: a cell can be a megabyte long."""
    return repr(cell if len(cell) <= 40 else cell[:37] + "...")


# ------------------------------------------------------------------------------ image folder
def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading an image folder needs the Pillow package: pip install pillow") from None
    return Image


def _listing(folder: Path, what: str, not_a_folder: str) -> list[tuple[str, str]]:
    """(name, kind) of the visible entries of ``folder``, sorted by name.

    ``kind`` is "dir", "file" or "other" (a pipe, socket, device or broken link). A folder that
    cannot be listed is a DataError naming it; ``not_a_folder`` is the message when it is a file.
    """
    out = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                kind = "dir" if entry.is_dir() else "file" if entry.is_file() else "other"
                out.append((entry.name, kind))
    except FileNotFoundError:
        raise DataError(f"{what} {folder} does not exist") from None
    except NotADirectoryError:
        raise DataError(not_a_folder) from None
    except PermissionError:
        raise DataError(
            f"{what} {folder} cannot be read (permission denied): allow reading it, "
            "or copy the images to a folder you can read"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{what} {folder} cannot be read ({os_reason(exc)})") from None
    return sorted(out)


def _class_files(class_dir: Path, warnings: list[str]) -> list[Path]:
    """The image files of one class folder; other entries are noted in ``warnings``."""
    entries = _listing(class_dir, "class folder", f"class folder {class_dir} is not a folder")
    files = [class_dir / name for name, kind in entries if kind == "file" and Path(name).suffix.lower() in IMAGE_EXTENSIONS]
    others = [name for name, kind in entries if kind == "file" and Path(name).suffix.lower() not in IMAGE_EXTENSIONS]
    odd = [name for name, kind in entries if kind == "other"]
    if odd:
        warnings.append(
            f"skipped {len(odd)} entry(ies) in {class_dir.name}/ that are not regular files "
            f"(pipes, sockets, devices or broken links), such as {odd[0]}"
        )
    if not files:
        raise DataError(f"class folder {class_dir} is empty: it holds no PNG or JPEG images")
    if others:
        warnings.append(f"ignored {len(others)} file(s) in {class_dir.name}/ that are not images, such as {others[0]}")
    return files


def _too_many_pixels(path: Path, pixels: int | None, size: tuple[int, int] | None = None) -> str:
    if size is not None:
        what = f"{size[0]}×{size[1]} pixels ({pixels / 1e6:,.0f} megapixels)"
    elif pixels is not None:
        what = f"{pixels / 1e6:,.0f} megapixels"
    else:
        what = "far larger"
    return (
        f"image {path} is {what}, more than the {MAX_IMAGE_PIXELS // 1_000_000} megapixels Net Designer reads, "
        "so it was not decoded: shrink it, or take it out of the folder"
    )


def _read_image(image: Any, f: BinaryIO, path: Path, mode: str, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels of one image in [0, 1], resized to ``size``, and its original size.

    NOTE: ``Image.open`` reads only the header; the size it declares is checked before
    ``convert`` decodes a single pixel.
    """
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", image.DecompressionBombWarning)
        im = image.open(f)
    with im:
        original = im.size
        if original[0] * original[1] > MAX_IMAGE_PIXELS:
            raise DataError(_too_many_pixels(path, original[0] * original[1], original))
        pixels = im.convert(mode).resize(size, image.Resampling.BILINEAR)
        return np.asarray(pixels, dtype=np.float32) / 255.0, original


def _decoded(image: Any, path: Path, label: str, mode: str, size: tuple[int, int], warnings: list[str]) -> Any:
    """``_read_image`` of ``path``, or None (noted in ``warnings``) when it cannot be read."""
    try:
        f = open_regular(path, "image")
    except FileRefused as exc:
        warnings.append(f"skipped {label}: {exc.reason}")
        return None
    try:
        with f:
            return _read_image(image, f, path, mode, size)
    except (DataError, MemoryError):
        raise
    except image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise DataError(_too_many_pixels(path, int(found.group(1)) if found else None)) from None
    # NOTE: decoders fail in many ways (OSError, ValueError, SyntaxError, struct.error); any is "unreadable".
    except Exception:  # noqa: BLE001
        warnings.append(f"skipped {label}: not a readable image (damaged, or not really a {path.suffix[1:].upper()} file)")
        return None


def load_image_folder(folder: Path, input_shape: tuple[int, ...], image_size: int | None = None) -> Dataset:
    """Images in one subfolder per class (the subfolder's name is the class), resized to the Input."""
    entries = _listing(
        folder,
        "image folder",
        f"{folder} is a file: an image folder is a folder with one subfolder of images per class",
    )
    classes = [name for name, kind in entries if kind == "dir"]
    if not classes:
        raise DataError(
            f"image folder {folder} has no class subfolders: put each class's images in a subfolder "
            f"named after the class, such as {folder / 'cat'}"
        )
    if len(classes) < 2:
        raise DataError(f"image folder {folder} has one class subfolder ({classes[0]}): a classifier needs two or more")
    image = _pillow()
    c, h, w = rgb_or_gray_shape(input_shape, image_size, "an image folder")
    mode = "L" if c == 1 else "RGB"
    warnings: list[str] = []
    files = [_class_files(folder / name, warnings) for name in classes]
    total = sum(len(paths) for paths in files)
    check_memory(
        total * c * h * w * 4,
        f"image folder {folder}: loading {total:,} images of {c}×{h}×{w}",
        "use a smaller image size or fewer images",
    )
    # NOTE: filled in place, so loading takes the memory of the images once, not once per copy.
    x = np.empty((total, c, h, w), np.float32)
    labels = np.empty(total, np.int64)
    sizes: dict[tuple[int, int], int] = {}
    read = 0
    for k, (name, paths) in enumerate(zip(classes, files)):
        start = read
        for path in paths:
            found = _decoded(image, path, f"{name}/{path.name}", mode, (w, h), warnings)
            if found is None:
                continue
            pixels, original = found
            x[read] = pixels[None] if c == 1 else pixels.transpose(2, 0, 1)
            labels[read] = k
            sizes[original] = sizes.get(original, 0) + 1
            read += 1
        if read == start:
            raise DataError(f"class folder {folder / name} has no readable images: all {len(paths)} failed to load")
    if len(sizes) > 1:
        common = ", ".join(f"{a}×{b}" for a, b in sorted(sizes, key=sizes.get, reverse=True)[:3])
        warnings.append(f"the images come in {len(sizes)} sizes ({common}, ...); each was resized to {w}×{h}")
    # NOTE: c·h·w equals the Input's size by construction, so a vector Input takes the image flattened.
    xt = torch.from_numpy(x[:read]).reshape(read, *input_shape)
    return Dataset(xt, labels_and_binary(labels[:read], len(classes)), classes, folder.name, warnings)


# ------------------------------------------------------------------------------------- csv
def _number(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        shown = _shown(cell) if cell.strip() else "an empty cell"
        raise DataError(f"{where}: {shown} is not a number") from None
    if not np.isfinite(value):
        raise DataError(f"{where}: {_shown(cell)} is not a finite number (NaN or infinity): fix the value or remove the row")
    if abs(value) > FLOAT32_MAX:
        raise DataError(
            f"{where}: {_shown(cell)} is too large for the 32-bit numbers training uses (at most ±3.4e38): "
            "scale the column down"
        )
    return value


def _sorted_classes(values: list[str]) -> list[str]:
    distinct = set(values)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def _read_text(path: Path) -> str:
    with open_regular(path, "CSV file") as f:
        try:
            raw = f.read()
        except OSError as exc:
            raise DataError(f"CSV file {path} cannot be read ({os_reason(exc)})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"CSV file {path} is not UTF-8 text (the bytes at offset {exc.start} are not): "
            "save it as CSV UTF-8"
        ) from None


def _line_start(text: str, line: int) -> int:
    """The offset in ``text`` of its physical line ``line`` (from 1), counting lines as csv does."""
    if line <= 1:
        return 0
    for count, end in enumerate(re.finditer(r"\r\n|\r|\n", text), start=2):
        if count == line:
            return end.end()
    return len(text)


def _long_cell(text: str, start: int, delimiter: str, limit: int) -> int:
    """The index of the first cell longer than ``limit`` in the record starting at ``start``."""
    column, length, quoted = 0, 0, False
    for ch in text[start:]:
        if ch == '"':
            quoted = not quoted  # NOTE: a doubled quote flips twice; the count stays close enough.
        elif not quoted and ch == delimiter:
            column, length = column + 1, 0
        elif not quoted and ch in "\r\n":
            break
        else:
            length += 1
            if length > limit:
                break
    return column


def _csv_problem(
    path: Path, text: str, delimiter: str, records: list[tuple[int, list[str]]], line: int, exc: csv.Error
) -> str:
    """The message for a csv.Error on the record that starts at physical ``line``."""
    where = f"CSV file {path}, " + (f"row {len(records)} (line {line})" if records else f"the header row (line {line})")
    if "field larger than field limit" not in str(exc):
        return f"{where} cannot be read as a row of a table: check that the file is a CSV table"
    limit = csv.field_size_limit()
    index = _long_cell(text, _line_start(text, line), delimiter, limit)
    header = records[0][1] if records else []
    column = repr(header[index]) if index < len(header) else f"number {index + 1}"
    return (
        f"{where}, column {column} holds more than {limit:,} characters: no number or class name is that long; "
        "look for a quote that is never closed, which runs the rest of the file into one cell"
    )


def _records(path: Path, text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank record, the header first; cells are stripped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    done = 0  # physical lines read before the record being parsed
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:
            raise DataError(_csv_problem(path, text, delimiter, records, done + 1, exc)) from None
        done = reader.line_num
        if any(cell.strip() for cell in cells):
            records.append((reader.line_num, [cell.strip() for cell in cells]))


def _agrees(records: list[tuple[int, list[str]]]) -> bool:
    """True when every record has the same number of cells, two or more."""
    widths = {len(cells) for _, cells in records}
    return len(widths) == 1 and widths.pop() >= 2


def _table(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """The records of ``text`` split at commas, or at semicolons or tabs when every row agrees on those.

    NOTE: a guess from the characters (csv.Sniffer) took ";" inside quoted labels for the
    delimiter; the comma wins unless its rows disagree, and another delimiter must fit every row.
    """
    comma = _records(path, text, ",")
    if _agrees(comma):
        return comma
    for delimiter in (";", "\t"):
        try:
            other = _records(path, text, delimiter)
        except DataError:
            continue
        if _agrees(other):
            return other
    return comma  # NOTE: none fits every row: the comma's row errors name the row at fault


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of each non-blank data row."""
    records = _table(path, _read_text(path))
    if not records:
        raise DataError(f"CSV file {path} is empty: it needs a header row of column names, then one row per sample")
    return records[0][1], records[1:]


def _columns(path: Path, header: list[str], features: list[str] | None, target: str | None) -> tuple[list[str], str]:
    if len(set(header)) != len(header):
        twice = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"CSV file {path} names column {_shown(twice[0])} more than once")
    if len(header) < 2:
        raise DataError(
            f"CSV file {path} has one column ({_shown(header[0])}): it needs feature columns and a target column"
        )
    listed = ", ".join(_shown(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
    target = target if target is not None else header[-1]
    if target not in header:
        raise DataError(f"CSV file {path} has no target column {_shown(target)}; its columns are {listed}")
    features = features if features is not None else [h for h in header if h != target]
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(f"CSV file {path} has no feature column {_shown(missing[0])}; its columns are {listed}")
    if target in features:
        raise DataError(f"CSV file {path}: column {_shown(target)} cannot be both a feature and the target")
    if not features:
        raise DataError(f"CSV file {path}: no feature columns chosen")
    return features, target


def load_csv(
    path: Path,
    input_shape: tuple[int, ...],
    task: str,
    feature_columns: list[str] | None = None,
    target_column: str | None = None,
) -> Dataset:
    """A table with a header row: numeric feature columns and one target column.

    For regression the target must be numeric and becomes ``value``; otherwise its distinct
    values become the classes (sorted, numerically when they are all numbers). Every number
    must be finite and fit a float32: a NaN or infinity is refused naming its row and column.
    """
    header, rows = _read_rows(path)
    features, target = _columns(path, header, feature_columns, target_column)
    if not rows:
        raise DataError(f"CSV file {path} has a header but no data rows")
    at = {name: i for i, name in enumerate(header)}
    x = np.empty((len(rows), len(features)), np.float32)
    raw_target: list[str] = []
    for r, (line, cells) in enumerate(rows):
        if len(cells) != len(header):
            raise DataError(
                f"CSV file {path}, row {r + 1} (line {line}) has {len(cells)} values "
                f"but the header names {len(header)} columns"
            )
        for j, name in enumerate(features):
            x[r, j] = _number(cells[at[name]], f"CSV file {path}, row {r + 1} (line {line}), column {_shown(name)}")
        raw_target.append(cells[at[target]])
    xt = fit_vectors(torch.from_numpy(x), input_shape, path.name, f"{len(features)} feature columns", reshape=True)
    if task == "regression":
        values = [
            _number(cell, f"CSV file {path}, row {r + 1} (line {line}), column {_shown(target)}")
            for r, ((line, _), cell) in enumerate(zip(rows, raw_target))
        ]
        return Dataset(xt, {"value": as_float(values)[:, None]}, None, path.name)
    classes = _sorted_classes(raw_target)
    index = {name: k for k, name in enumerate(classes)}
    warnings = []
    if len(classes) > 20 and len(classes) > len(rows) // 2:
        warnings.append(
            f"the target column {_shown(target)} has {len(classes)} distinct values in {len(rows)} rows: "
            "if it holds numbers to predict, choose the regression task"
        )
    labels = np.array([index[v] for v in raw_target])
    return Dataset(xt, labels_and_binary(labels, len(classes)), classes, path.name, warnings)


# ------------------------------------------------------------------------------------- npz
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


def _check_headers(path: Path, names: list[str], heads: dict[str, NpyHeader], input_shape: tuple[int, ...]) -> int:
    """Check types, shapes, row counts, sizes and memory from the headers alone; the number of samples.

    Args:
        names: every array in the file, for the message when ``x`` or ``y`` is missing.
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
        n * want * 4 + sum(head.nbytes for head in heads.values()),
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
        mt = torch.as_tensor(np.asarray(arrays["mask"]), dtype=torch.int64)
        targets["mask"] = resize_masks(mt, tuple(input_shape[1:])) if len(input_shape) == 3 else mt
    return targets, classes


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

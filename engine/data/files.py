"""Data a person brings: a folder of images per class, a CSV table, or a NumPy ``.npz`` file.

Every problem is a :class:`DataError` that names the folder, file, row or column at fault.
What can be worked around (a corrupt image, images of mixed sizes) is, and is noted in
``Dataset.warnings``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.data.base import (
    DataError,
    Dataset,
    rgb_or_gray_shape,
    as_float,
    fit_images,
    fit_vectors,
    labels_and_binary,
    resize_masks,
    shape_text,
)

__all__ = ["IMAGE_EXTENSIONS", "load_csv", "load_image_folder", "load_npz"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# ------------------------------------------------------------------------------ image folder
def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading an image folder needs the Pillow package: pip install pillow") from None
    return Image


def _read_image(image: Any, path: Path, mode: str, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    with image.open(path) as im:
        original = im.size
        pixels = im.convert(mode).resize(size, image.Resampling.BILINEAR)
        return np.asarray(pixels, dtype=np.float32) / 255.0, original


def load_image_folder(folder: Path, input_shape: tuple[int, ...], image_size: int | None = None) -> Dataset:
    """Images in one subfolder per class (the subfolder's name is the class), resized to the Input."""
    if not folder.exists():
        raise DataError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file: an image folder is a folder with one subfolder of images per class")
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"image folder {folder} has no class subfolders: put each class's images in a subfolder "
            f"named after the class, such as {folder / 'cat'}"
        )
    if len(class_dirs) < 2:
        raise DataError(
            f"image folder {folder} has one class subfolder ({class_dirs[0].name}): a classifier needs two or more"
        )
    image = _pillow()
    c, h, w = rgb_or_gray_shape(input_shape, image_size, "an image folder")
    mode = "L" if c == 1 else "RGB"
    pictures: list[np.ndarray] = []
    labels: list[int] = []
    warnings: list[str] = []
    sizes: dict[tuple[int, int], int] = {}
    for k, class_dir in enumerate(class_dirs):
        entries = sorted(p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        files = [p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS]
        others = [p.name for p in entries if p.suffix.lower() not in IMAGE_EXTENSIONS]
        if not files:
            raise DataError(f"class folder {class_dir} is empty: it holds no PNG or JPEG images")
        if others:
            warnings.append(f"ignored {len(others)} file(s) in {class_dir.name}/ that are not images, such as {others[0]}")
        read = 0
        for path in files:
            try:
                pixels, original = _read_image(image, path, mode, (w, h))
            # NOTE: decoders fail in many ways (OSError, ValueError, SyntaxError, bomb checks); any is "unreadable".
            except Exception as exc:  # noqa: BLE001
                warnings.append(f"skipped {class_dir.name}/{path.name}: not a readable image ({exc})")
                continue
            pictures.append(pixels)
            labels.append(k)
            sizes[original] = sizes.get(original, 0) + 1
            read += 1
        if read == 0:
            raise DataError(f"class folder {class_dir} has no readable images: all {len(files)} failed to load")
    if len(sizes) > 1:
        common = ", ".join(f"{a}×{b}" for a, b in sorted(sizes, key=sizes.get, reverse=True)[:3])
        warnings.append(f"the images come in {len(sizes)} sizes ({common}, ...); each was resized to {w}×{h}")
    stacked = np.stack(pictures)
    x = torch.from_numpy(stacked[:, None] if c == 1 else stacked.transpose(0, 3, 1, 2).copy())
    x = fit_images(x, input_shape, folder.name, image_size)
    classes = [d.name for d in class_dirs]
    return Dataset(x, labels_and_binary(np.asarray(labels), len(classes)), classes, folder.name, warnings)


# ------------------------------------------------------------------------------------- csv
def _number(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        shown = repr(cell) if cell.strip() else "an empty cell"
        raise DataError(f"{where}: {shown} is not a number") from None
    if not np.isfinite(value):
        raise DataError(f"{where}: {cell!r} is not a finite number")
    return value


def _sorted_classes(values: list[str]) -> list[str]:
    distinct = set(values)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of each non-blank data row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"CSV file {path} is not UTF-8 text") from None
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip() for cell in cells]
        else:
            rows.append((reader.line_num, [cell.strip() for cell in cells]))
    if header is None:
        raise DataError(f"CSV file {path} is empty: it needs a header row of column names, then one row per sample")
    return header, rows


def _columns(path: Path, header: list[str], features: list[str] | None, target: str | None) -> tuple[list[str], str]:
    if len(set(header)) != len(header):
        twice = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"CSV file {path} names column {twice[0]!r} more than once")
    if len(header) < 2:
        raise DataError(f"CSV file {path} has one column ({header[0]!r}): it needs feature columns and a target column")
    listed = ", ".join(repr(h) for h in header)
    target = target if target is not None else header[-1]
    if target not in header:
        raise DataError(f"CSV file {path} has no target column {target!r}; its columns are {listed}")
    features = features if features is not None else [h for h in header if h != target]
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(f"CSV file {path} has no feature column {missing[0]!r}; its columns are {listed}")
    if target in features:
        raise DataError(f"CSV file {path}: column {target!r} cannot be both a feature and the target")
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
    values become the classes (sorted, numerically when they are all numbers).
    """
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
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
            x[r, j] = _number(cells[at[name]], f"CSV file {path}, row {r + 1} (line {line}), column {name!r}")
        raw_target.append(cells[at[target]])
    xt = fit_vectors(torch.from_numpy(x), input_shape, path.name, f"{len(features)} feature columns", reshape=True)
    if task == "regression":
        values = [
            _number(cell, f"CSV file {path}, row {r + 1} (line {line}), column {target!r}")
            for r, ((line, _), cell) in enumerate(zip(rows, raw_target))
        ]
        return Dataset(xt, {"value": as_float(values)[:, None]}, None, path.name)
    classes = _sorted_classes(raw_target)
    index = {name: k for k, name in enumerate(classes)}
    warnings = []
    if len(classes) > 20 and len(classes) > len(rows) // 2:
        warnings.append(
            f"the target column {target!r} has {len(classes)} distinct values in {len(rows)} rows: "
            "if it holds numbers to predict, choose the regression task"
        )
    labels = np.array([index[v] for v in raw_target])
    return Dataset(xt, labels_and_binary(labels, len(classes)), classes, path.name, warnings)


# ------------------------------------------------------------------------------------- npz
def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        why = "not a NumPy file, or one holding Python objects, which are not loaded" if "pickle" in str(exc) else exc
        raise DataError(f"{path} is not a readable .npz file ({why})") from None
    if not hasattr(archive, "files"):
        raise DataError(f"{path} holds a single array, not named arrays: save it with np.savez(path, x=..., y=...)")
    with archive:
        try:
            return {key: archive[key] for key in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: an array cannot be read ({exc})") from None


def _npz_labels(y: np.ndarray, names: np.ndarray | None) -> tuple[dict[str, torch.Tensor], list[str]]:
    flat = y.reshape(len(y))
    distinct, labels = np.unique(flat, return_inverse=True)
    if names is not None and y.dtype.kind in "biu" and np.array_equal(distinct, np.arange(len(names))[: len(distinct)]):
        classes = [str(s) for s in names]
    else:
        classes = [str(v) for v in distinct]
    return labels_and_binary(labels, len(classes)), classes


def load_npz(path: Path, input_shape: tuple[int, ...], task: str) -> Dataset:
    """Arrays ``x`` (N, ...) and ``y`` (N, ...); optional ``classes``, ``mask`` and ``box``.

    ``x`` is reshaped to the Input shape when its values per sample match. Integer (or text)
    ``y`` gives class labels, float ``y`` gives values (``binary`` targets for the binary task;
    ``value`` for regression whatever the type).
    """
    arrays = _npz_arrays(path)
    for key in ("x", "y"):
        if key not in arrays:
            have = ", ".join(repr(k) for k in arrays) or "none"
            raise DataError(
                f"npz file {path} has no array named {key!r} (it has {have}): "
                "save it with np.savez(path, x=inputs, y=targets)"
            )
    x, y = arrays["x"], arrays["y"]
    if x.ndim < 1 or x.dtype.kind not in "biuf":
        raise DataError(
            f"npz file {path}: x must be an array of numbers with one row per sample, not {x.dtype} of shape {x.shape}"
        )
    n = x.shape[0]
    if y.ndim < 1 or y.shape[0] != n:
        raise DataError(f"npz file {path}: x has {n} samples but y has {y.shape[0] if y.ndim else 0}")
    per, want = int(np.prod(x.shape[1:])), int(np.prod(input_shape))
    if per != want:
        raise DataError(
            f"npz file {path}: x holds {n} samples of {shape_text(x.shape[1:]) or 1} = {per} values each, "
            f"but the Input expects {shape_text(input_shape)} = {want}"
        )
    xt = torch.as_tensor(x.reshape(n, *input_shape), dtype=torch.float32).contiguous()
    if not torch.isfinite(xt).all():
        raise DataError(f"npz file {path}: x holds NaN or infinite values")

    classes: list[str] | None = None
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError(f"npz file {path}: regression needs numbers in y, not {y.dtype}")
        targets = {"value": as_float(y.reshape(n, -1))}
    elif y.dtype.kind == "f":
        if task != "binary":
            raise DataError(
                f"npz file {path}: y holds floats (values to regress); for {task} save y as integers (class indices)"
            )
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError(f"npz file {path}: binary targets in y must be 0 or 1")
        targets = {"binary": as_float(y.reshape(n, -1))}
    elif y.dtype.kind in "biuUS" and y.size == n:
        targets, classes = _npz_labels(y, arrays.get("classes"))
    else:
        raise DataError(f"npz file {path}: y must hold one class index per sample (shape ({n},)), not shape {y.shape}")

    if "box" in arrays:
        box = arrays["box"]
        if box.shape != (n, 4):
            raise DataError(f"npz file {path}: box must have shape ({n}, 4), not {box.shape}")
        targets["box"] = as_float(box)
    if "mask" in arrays:
        mask = arrays["mask"]
        if mask.ndim != 3 or mask.shape[0] != n or mask.dtype.kind not in "biu":
            raise DataError(f"npz file {path}: mask must be integers of shape ({n}, H, W), not {mask.dtype} {mask.shape}")
        mt = torch.as_tensor(mask, dtype=torch.int64)
        targets["mask"] = resize_masks(mt, tuple(input_shape[1:])) if len(input_shape) == 3 else mt
    return Dataset(xt, targets, classes, path.name)

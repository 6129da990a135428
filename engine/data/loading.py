"""One entry point from a :class:`DataConfig` and the network's Input shape to a :class:`Dataset`."""

from __future__ import annotations

import math
from pathlib import Path

from engine.config import DataConfig
from engine.data.base import (
    TARGET_WORDS,
    DataError,
    Dataset,
    check_memory,
    is_allocation_failure,
    rgb_or_gray_shape,
    shape_text,
)
from engine.data.bundled import load_digits, load_tabular
from engine.data.files import load_csv, load_image_folder, load_npz
from engine.data.sets import DATASET_INFO, TABULAR, TASK_TARGETS, TOY_SETS, resolve_path
from engine.data.shapes import make_shapes
from engine.data.toy import make_toy

__all__ = ["DATASET_INFO", "TASK_TARGETS", "check_task", "load_dataset", "resolve_path"]


def check_task(ds: Dataset, task: str) -> None:
    """Refuse a task whose targets the data set does not have, saying which task would fit."""
    missing = [key for key in TASK_TARGETS[task] if key not in ds.targets]
    if not missing:
        return
    fits = [t for t, keys in TASK_TARGETS.items() if all(k in ds.targets for k in keys)]
    if missing == ["binary"] and ds.classes:
        raise DataError(
            f"{ds.name} has {len(ds.classes)} classes but the binary task needs exactly 2: choose classification"
        )
    hint = f"choose {' or '.join(fits)}" if fits else "choose another task"
    if missing[-1] in ("mask", "box"):
        hint += ", or the shapes data set, which has masks and boxes"
    raise DataError(f"{ds.name} has no {TARGET_WORDS[missing[0]]}, which the {task} task trains on: {hint}")


_SOURCE_WORD = {"image_folder": "image folder", "csv": "CSV file", "npz": "npz file"}  # as the loaders name them

#: samples in scikit-learn's digits, for the memory they take before they are made
DIGITS_SAMPLES = 1797


def _check_made_memory(cfg: DataConfig, shape: tuple[int, ...]) -> None:
    """Refuse, before making them, generated images that would not fit in memory, naming the setting."""
    if cfg.dataset == "shapes":
        c, h, w = rgb_or_gray_shape(shape, cfg.image_size, "shapes")
        per = c * h * w * 4 + h * w * 8 + 4 * 4 + 8  # image, mask (int64), box, label
        check_memory(
            cfg.samples * per,
            f"data.samples: {cfg.samples:,} shape images of {c}×{h}×{w} with their masks",
            "use fewer samples or a smaller image size",
        )
    elif cfg.dataset == "digits":
        check_memory(
            DIGITS_SAMPLES * math.prod(shape) * 4,
            f"digits: {DIGITS_SAMPLES:,} images resized to {shape_text(shape)}",
            "use a smaller Input (or data.image_size)",
        )


def _out_of_memory(cfg: DataConfig, shape: tuple[int, ...], base_dir: Path | None) -> str:
    """What to say when memory ran out while loading ``cfg``'s data, naming the file or setting."""
    name = cfg.dataset
    if name in _SOURCE_WORD:
        advice = {
            "image_folder": "use a smaller image size or fewer images",
            "csv": "use a smaller table",
            "npz": "use fewer samples or a smaller Input",
        }[name]
        where = f"{_SOURCE_WORD[name]} {resolve_path(cfg, base_dir)}"
        return f"{where}: the computer ran out of memory loading it as samples of {shape_text(shape)}: {advice}"
    if name in TOY_SETS or name == "shapes":
        return (
            f"data.samples: the computer ran out of memory making {cfg.samples:,} {name} samples of "
            f"{shape_text(shape)}: use fewer samples or a smaller Input"
        )
    return f"{name}: the computer ran out of memory fitting it to {shape_text(shape)}: use a smaller Input"


def _load(cfg: DataConfig, shape: tuple[int, ...], base_dir: Path | None) -> Dataset:
    name = cfg.dataset
    _check_made_memory(cfg, shape)
    if name in TOY_SETS:
        return make_toy(name, cfg.samples, cfg.noise, cfg.seed, shape, arms=cfg.extra.get("classes", 2),
                        function=cfg.extra.get("function", "sin"))
    if name == "digits":
        return load_digits(shape, cfg.image_size)
    if name in TABULAR:
        return load_tabular(name, shape)
    if name == "shapes":
        return make_shapes(cfg.samples, cfg.noise, cfg.seed, shape, cfg.image_size)
    if name == "image_folder":
        return load_image_folder(resolve_path(cfg, base_dir), shape, cfg.image_size)
    if name == "csv":
        return load_csv(resolve_path(cfg, base_dir), shape, cfg.task, cfg.feature_columns, cfg.target_column)
    if name == "npz":
        return load_npz(resolve_path(cfg, base_dir), shape, cfg.task)
    raise DataError(f"unknown data set {name!r}; known ones are {', '.join(DATASET_INFO)}")


def load_dataset(cfg: DataConfig, input_shape: tuple[int, ...], base_dir: Path | None = None) -> Dataset:
    """Build or read the data set ``cfg`` names and fit it to the Input shape (C, H, W) or (F,).

    Raises:
        DataError: the data cannot be had, does not fit the Input or the free memory, or lacks
            the task's targets.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3) or min(shape, default=0) < 1:
        raise DataError(f"the Input shape {shape_text(shape)} is neither an image (C×H×W) nor a vector of features")
    try:
        ds = _load(cfg, shape, base_dir)
    except (MemoryError, RuntimeError) as exc:
        if not is_allocation_failure(exc):
            raise
        raise DataError(_out_of_memory(cfg, shape, base_dir)) from None
    check_task(ds, cfg.task)
    return ds

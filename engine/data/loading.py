"""One entry point from a :class:`DataConfig` and the network's Input shape to a :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path

from engine.config import DATASETS, DataConfig
from engine.data.base import TARGET_WORDS, DataError, Dataset, shape_text
from engine.data.bundled import TABULAR, load_digits, load_tabular
from engine.data.files import load_csv, load_image_folder, load_npz
from engine.data.shapes import make_shapes
from engine.data.toy import TOY_SETS, make_toy

__all__ = ["DATASET_INFO", "TASK_TARGETS", "check_task", "load_dataset", "resolve_path"]

#: one line per data set, for a combo box's tooltip or status line
DATASET_INFO: dict[str, str] = {
    "spiral": "Interleaved 2-D spirals, one class per arm (2 arms; a project's data.classes sets more).",
    "xor": "2-D points in four quadrants, class = XOR of the signs: no single straight line separates them.",
    "circles": "Two concentric rings of 2-D points: the boundary between the classes is a circle.",
    "gaussians": "Two Gaussian blobs of 2-D points, nearly separable by a straight line.",
    "regression1d": "Noisy samples of y = sin(x) on [-3, 3]: 1 input feature, 1 value to predict.",
    "digits": "1797 real 8×8 handwritten digits (scikit-learn), 10 classes, resized to the Input.",
    "iris": "150 iris flowers: 4 measurements, 3 species.",
    "wine": "178 wines: 13 chemical measurements, 3 cultivars.",
    "breast_cancer": "569 tumours: 30 measurements of cell nuclei, malignant or benign.",
    "shapes": "Generated circles, squares and triangles with class, bounding box and mask (4 mask classes: background + 3).",
    "image_folder": "Your images (PNG or JPEG), one subfolder per class, resized to the Input.",
    "csv": "Your table: a header row, numeric feature columns and one target column.",
    "npz": "Your NumPy arrays: x (inputs) and y (class indices or values) saved with np.savez.",
}
assert set(DATASET_INFO) == set(DATASETS), "every data set in the config needs a description"

#: task -> the targets its output heads train against
TASK_TARGETS: dict[str, tuple[str, ...]] = {
    "classification": ("label",),
    "binary": ("binary",),
    "regression": ("value",),
    "segmentation": ("mask",),
    "localization": ("label", "box"),
}


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


_PATH_KIND = {"image_folder": "folder of class subfolders", "csv": "CSV file", "npz": ".npz file"}


def resolve_path(cfg: DataConfig, base_dir: Path | None) -> Path:
    """``cfg.path`` as a path; a relative one is taken from ``base_dir`` (the project's folder)."""
    if not cfg.path:
        raise DataError(f"the {cfg.dataset} data set needs a path: set data.path to the {_PATH_KIND[cfg.dataset]}")
    path = Path(cfg.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def load_dataset(cfg: DataConfig, input_shape: tuple[int, ...], base_dir: Path | None = None) -> Dataset:
    """Build or read the data set ``cfg`` names and fit it to the Input shape (C, H, W) or (F,).

    Raises:
        DataError: the data cannot be had, does not fit the Input, or lacks the task's targets.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3) or min(shape, default=0) < 1:
        raise DataError(f"the Input shape {shape_text(shape)} is neither an image (C×H×W) nor a vector of features")
    name = cfg.dataset
    if name in TOY_SETS:
        ds = make_toy(name, cfg.samples, cfg.noise, cfg.seed, shape, arms=cfg.extra.get("classes", 2))
    elif name == "digits":
        ds = load_digits(shape, cfg.image_size)
    elif name in TABULAR:
        ds = load_tabular(name, shape)
    elif name == "shapes":
        ds = make_shapes(cfg.samples, cfg.noise, cfg.seed, shape, cfg.image_size)
    elif name == "image_folder":
        ds = load_image_folder(resolve_path(cfg, base_dir), shape, cfg.image_size)
    elif name == "csv":
        ds = load_csv(resolve_path(cfg, base_dir), shape, cfg.task, cfg.feature_columns, cfg.target_column)
    elif name == "npz":
        ds = load_npz(resolve_path(cfg, base_dir), shape, cfg.task)
    else:
        raise DataError(f"unknown data set {name!r}; known ones are {', '.join(DATASET_INFO)}")
    check_task(ds, cfg.task)
    return ds

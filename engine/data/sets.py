"""The data sets by name, in plain tables: what each is, what each task trains on, the tables that
ship with scikit-learn, the generated sets, and where a person's own data lies.

NOTE: no PyTorch here: the window's training setup and the data checks read these after every
edit; the loaders (:mod:`engine.data.loading` and the modules it calls) import them from here.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import DATASETS, DataConfig
from engine.data.basics import DataError

__all__ = [
    "DATASET_INFO",
    "MIN_SIDE",
    "SHAPE_CLASSES",
    "TABULAR",
    "TASK_TARGETS",
    "TOY_CLASSIFIERS",
    "TOY_SETS",
    "resolve_path",
]

#: one line per data set, for a combo box's tooltip or status line
DATASET_INFO: dict[str, str] = {
    "spiral": "Interleaved 2-D spirals, one class per arm (2 arms; a project's data.classes sets more).",
    "xor": "2-D points in four quadrants, class = XOR of the signs: no single straight line separates them.",
    "circles": "Two concentric rings of 2-D points: the boundary between the classes is a circle.",
    "gaussians": "Two Gaussian blobs of 2-D points, nearly separable by a straight line.",
    "regression1d": "Noisy samples of a curve y = f(x) on [-3, 3] (data.function: sin, step, abs, square or "
                    "sawtooth; sin unless set): 1 input feature, 1 value to predict.",
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

#: name -> (scikit-learn loader name, what the features are)
TABULAR = {
    "iris": ("load_iris", "the flower's measurements"),
    "wine": ("load_wine", "the wine's chemical analysis"),
    "breast_cancer": ("load_breast_cancer", "measurements of the cell nuclei"),
}

#: the generated 2-D point sets that have classes (engine.data.toy draws them)
TOY_CLASSIFIERS = ("spiral", "xor", "circles", "gaussians")
#: every generated toy set: the point sets and the 1-D regression
TOY_SETS = (*TOY_CLASSIFIERS, "regression1d")

#: the classes of the generated shapes (engine.data.shapes), and the smallest image side they are drawn at
SHAPE_CLASSES = ["circle", "square", "triangle"]
MIN_SIDE = 8

_PATH_KIND = {"image_folder": "folder of class subfolders", "csv": "CSV file", "npz": ".npz file"}


def resolve_path(cfg: DataConfig, base_dir: Path | None) -> Path:
    """``cfg.path`` as a path; a relative one is taken from ``base_dir`` (the project's folder)."""
    if not cfg.path:
        raise DataError(f"the {cfg.dataset} data set needs a path: set data.path to the {_PATH_KIND[cfg.dataset]}")
    path = Path(cfg.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path

"""What a data set holds, known cheaply: its targets, class counts and how its samples reach the Input.

:func:`describe` answers from the config for generated sets, from constants for the sets that
ship with scikit-learn (a test checks them against the real data), and from a folder's listing
or a file's header for a person's own data, read once per (path, modification time) and cached.
It never loads a whole data set, so :mod:`engine.datacheck` can ask after every edit. When
something cannot be known cheaply, or the data cannot be read at all (Train says why), it
returns None and the checks say nothing rather than guess.
"""

from __future__ import annotations

import functools
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISREG

import numpy as np

from engine.config import DataConfig
from engine.data.basics import DataError, shape_text, vector_image_shape
from engine.data.sets import MIN_SIDE, SHAPE_CLASSES, TABULAR, TOY_CLASSIFIERS, resolve_path

__all__ = ["DataFacts", "SampleFit", "describe", "image_input_side"]

#: bundled tables: name -> (features, classes), as scikit-learn ships them
TABULAR_SIZES = {"iris": (4, 3), "wine": (13, 3), "breast_cancer": (30, 2)}
DIGITS_SHAPE = (1, 8, 8)
DIGITS_CLASSES = 10
#: a CSV file larger than this is not read just to count its classes
CSV_READ_LIMIT = 4 << 20
#: an npz array larger than this (uncompressed) is not read to count its classes
NPZ_READ_LIMIT = 8 << 20


@dataclass(frozen=True)
class SampleFit:
    """How the loader fits one sample to the Input (see ``engine/data/base.py``).

    ``kind`` is ``"features"`` (rows of ``size`` numbers: only a vector Input of exactly
    ``size`` features takes them), ``"values"`` (``size`` numbers reshaped to any Input holding
    that many) or ``"images"`` (pictures resized to an image Input of 1 or 3 channels at least
    ``min_side`` pixels on a side, or flattened to a square number of pixels for a vector Input).
    ``shape`` is a sample as stored (empty for images of any size).
    """

    kind: str
    shape: tuple[int, ...]
    about: str = ""
    min_side: int = 1

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class DataFacts:
    """What the checks need to know about a data set, without its samples.

    Attributes:
        name: the data set in a sentence ("the digits data set").
        targets: the target keys training would find (``engine.data.TARGET_KEYS``).
        classes: how many classes ``label`` holds.
        binary_width: 0/1 targets per sample in ``binary``.
        value_width: numbers per sample in ``value``.
        mask_classes: how many class indices a mask may hold (background included).
        mask_size: a mask's height and width as stored; None when it follows the Input's size.
        fit: how the samples reach the Input; None when unknown.
    """

    name: str
    targets: frozenset[str]
    classes: int | None = None
    binary_width: int | None = None
    value_width: int | None = None
    mask_classes: int | None = None
    mask_size: tuple[int, int] | None = None
    fit: SampleFit | None = None


def describe(cfg: DataConfig, base_dir: Path | None = None) -> DataFacts | None:
    """The facts of the data set ``cfg`` names, or None when they cannot be known cheaply."""
    name = cfg.dataset
    try:
        if name in TOY_CLASSIFIERS or name == "regression1d":
            return _toy(name, cfg.extra.get("classes", 2))
        if name == "digits":
            return _labelled(
                "the digits data set", DIGITS_CLASSES, SampleFit("images", DIGITS_SHAPE, "8×8 grayscale images")
            )
        if name in TABULAR_SIZES:
            features, classes = TABULAR_SIZES[name]
            about = f"{features} features ({TABULAR[name][1]})"
            return _labelled(f"the {name} data set", classes, SampleFit("features", (features,), about))
        if name == "shapes":
            return _shapes()
        if name in ("image_folder", "csv", "npz"):
            return _from_file(cfg, resolve_path(cfg, base_dir))
    except (DataError, OSError, ValueError):
        return None  # NOTE: unreadable or misconfigured data is Train's to report, not a mismatch
    return None


def image_input_side(fit: SampleFit, features: int, image_size: int | None) -> int | None:
    """The side of the square image a vector Input of ``features`` takes, or None when none fits."""
    found = vector_image_shape(features, 1, image_size)
    if found is None or found[1] < fit.min_side:
        return None
    return found[1]


# ------------------------------------------------------------------ generated and bundled
def _labels(classes: int) -> dict:
    """Targets of a labelled set: ``label``, and ``binary`` beside it for two classes (as the loaders do)."""
    if classes == 2:
        return {"targets": frozenset({"label", "binary"}), "classes": 2, "binary_width": 1}
    return {"targets": frozenset({"label"}), "classes": classes}


def _labelled(name: str, classes: int, fit: SampleFit) -> DataFacts:
    return DataFacts(name, fit=fit, **_labels(classes))


def _toy(name: str, arms) -> DataFacts | None:
    if name == "regression1d":
        fit = SampleFit("features", (1,), "1 feature (x)")
        return DataFacts("the regression1d data set", frozenset({"value"}), value_width=1, fit=fit)
    classes = 2
    if name == "spiral":
        if not isinstance(arms, int) or isinstance(arms, bool) or not 2 <= arms <= 20:
            return None
        classes = arms
    return _labelled(f"the {name} data set", classes, SampleFit("features", (2,), "2 features (the point's x and y)"))


def _shapes() -> DataFacts:
    fit = SampleFit("images", (), "drawn images", min_side=MIN_SIDE)
    labels = _labels(len(SHAPE_CLASSES))
    labels["targets"] = labels["targets"] | {"mask", "box"}
    return DataFacts("the shapes data set", mask_classes=len(SHAPE_CLASSES) + 1, fit=fit, **labels)


# ------------------------------------------------------------------ a person's files
def _from_file(cfg: DataConfig, path: Path) -> DataFacts | None:
    stat = path.stat()
    # NOTE: only a regular file or a folder is read: opening a FIFO would wait for a writer forever.
    if not (S_ISDIR(stat.st_mode) if cfg.dataset == "image_folder" else S_ISREG(stat.st_mode)):
        return None
    columns = tuple(cfg.feature_columns) if cfg.feature_columns is not None else None
    # NOTE: only csv and npz targets depend on the task; keying the others by it would only re-read.
    task = cfg.task if cfg.dataset != "image_folder" else ""
    return _file_facts(cfg.dataset, str(path), stat.st_mtime_ns, stat.st_size, task, columns, cfg.target_column)


@functools.lru_cache(maxsize=32)
def _file_facts(kind, path, _mtime, size, task, columns, target) -> DataFacts | None:
    """Read once per (path, modification time, size) and settings; the arguments are the cache key."""
    try:
        if kind == "image_folder":
            return _folder_facts(Path(path))
        if kind == "csv":
            return _csv_facts(Path(path), size, task, list(columns) if columns is not None else None, target)
        return _npz_facts(Path(path), task)
    # NOTE: a person's file can fail to parse in many ways (csv.Error, a broken zip, bad headers);
    # any of them means "not known cheaply", and Train says what is wrong with the file.
    except Exception:  # noqa: BLE001
        return None


def _folder_facts(folder: Path) -> DataFacts | None:
    classes = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if len(classes) < 2:
        return None
    fit = SampleFit("images", (), "images")
    return _labelled(f"the image folder {folder.name}", len(classes), fit)


def _csv_facts(path: Path, size: int, task: str, columns: list[str] | None, target: str | None) -> DataFacts | None:
    if size > CSV_READ_LIMIT:
        return None
    # NOTE: the loader's own CSV reader, so the facts never disagree with Train; imported here, as
    # the loaders import PyTorch, which the window imports only when a data set needs it.
    from engine.data.csvfile import _columns, _read_rows

    header, rows = _read_rows(path)
    features, target = _columns(path, header, columns, target)
    if not rows:
        return None
    fit = SampleFit("values", (len(features),), f"{len(features)} feature columns")
    name = f"the table {path.name}"
    if task == "regression":
        return DataFacts(name, frozenset({"value"}), value_width=1, fit=fit)
    at = header.index(target)
    values = {cells[at] for _, cells in rows if len(cells) == len(header)}
    return _labelled(name, len(values), fit)


def _npz_facts(path: Path, task: str) -> DataFacts | None:
    heads = _npy_headers(path)
    if "x" not in heads or "y" not in heads:
        return None
    (xshape, xtype), (yshape, ytype) = heads["x"], heads["y"]
    if not xshape or xtype.kind not in "biuf" or not yshape or yshape[0] != xshape[0]:
        return None
    n = xshape[0]
    stored = tuple(xshape[1:]) or (1,)
    per = math.prod(stored)
    about = f"{shape_text(stored)} = {per} values per sample" if len(stored) > 1 else f"{per} values per sample"
    fit = SampleFit("values", stored, about)
    name = f"the file {path.name}"
    width = math.prod(yshape[1:])
    if task == "regression":
        if ytype.kind not in "biuf":
            return None
        facts = {"targets": frozenset({"value"}), "value_width": width}
    elif ytype.kind == "f":
        if task != "binary":
            return None
        facts = {"targets": frozenset({"binary"}), "binary_width": width}
    elif ytype.kind in "biuUS" and math.prod(yshape) == n and _small(heads["y"]):
        from engine.data.npzfile import _npz_labels  # NOTE: the loader's own label rule (see _csv_facts)

        with np.load(path, allow_pickle=False) as archive:
            names = archive["classes"] if "classes" in heads and _small(heads["classes"]) else None
            _, classes = _npz_labels(archive["y"], names)
        facts = _labels(len(classes))
    else:
        return None
    extra = set()
    if heads.get("box", ((), None))[0] == (n, 4):
        extra.add("box")
    mask = heads.get("mask")
    if mask is not None and len(mask[0]) == 3 and mask[0][0] == n and mask[1].kind in "biu":
        extra.add("mask")
        facts["mask_size"] = (int(mask[0][1]), int(mask[0][2]))
        facts["mask_classes"] = _mask_classes(path) if _small(mask) else None
    facts["targets"] = facts["targets"] | extra
    return DataFacts(name, fit=fit, **facts)


def _small(head: tuple[tuple[int, ...], np.dtype]) -> bool:
    shape, dtype = head
    return math.prod(shape) * dtype.itemsize <= NPZ_READ_LIMIT


def _mask_classes(path: Path) -> int | None:
    with np.load(path, allow_pickle=False) as archive:
        mask = archive["mask"]
    return int(mask.max()) + 1 if mask.size else None


def _npy_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an ``.npz`` file, read from the headers alone."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _fortran, dtype = read(f)
            out[info.filename[: -len(".npy")]] = (tuple(int(s) for s in shape), dtype)
    return out

"""Data, training and probe settings: plain dataclasses that read and write JSON objects.

Each section declares its fields once, with a default and a check (type and
range). ``from_dict`` validates every known field and raises
:class:`ProjectError` naming the field path (``lenet.json: training.lr must be a
positive number, not -1``); fields it does not know are kept in ``extra`` and
written back by ``to_dict``, never silently dropped.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar

from engine.errors import ProjectError

__all__ = [
    "AUGMENT_OPTIONS",
    "BAD_FILE_CHOICES",
    "DATASETS",
    "REGRESSION_FUNCTIONS",
    "TASKS",
    "DataConfig",
    "ProbeConfig",
    "TrainingConfig",
    "augment_problem",
    "plain_copy",
    "show_value",
]

DATASETS = (
    "spiral",
    "xor",
    "circles",
    "gaussians",
    "regression1d",
    "digits",
    "iris",
    "wine",
    "breast_cancer",
    "shapes",
    "image_folder",
    "csv",
    "npz",
)
TASKS = ("classification", "binary", "regression", "segmentation", "localization")
#: what streaming training does with a file it cannot read mid-epoch (``data.on_bad_file``)
BAD_FILE_CHOICES = ("skip", "stop")
MAX_SEED = 2**32 - 1  # numpy's seeds stop here

#: augmentation option -> (largest value allowed, what it means); "flip" and "vflip" (None) are true or false.
#: NOTE: declared here, free of torch, so a project is checked when it loads; engine.data.augment
#: applies the same declaration to training batches.
AUGMENT_OPTIONS: dict[str, tuple[float | None, str]] = {
    "flip": (None, "true: mirror left-right, each image with probability 1/2"),
    "shift": (0.5, "largest shift, as a fraction of the image size"),
    "rotation": (180.0, "largest rotation, in degrees either way"),
    "scale": (0.9, "largest zoom in or out, as a fraction (0.1: 90 % to 110 %)"),
    "noise": (10.0, "standard deviation of Gaussian noise added to every value"),
    "brightness": (10.0, "largest change of brightness, added to the whole image"),
    "contrast": (0.99, "largest change of contrast, as a factor around 1 (0.2: 80 % to 120 %)"),
    "mixup": (10.0, "alpha of the Beta(alpha, alpha) mixing weight; 0 is off"),
    "vflip": (None, "true: mirror top-bottom, each image with probability 1/2"),
    "elastic": (0.1, "standard deviation of the elastic displacement, as a fraction of the image size"),
    "cutout": (0.9, "side of the square erased from each image, as a fraction of the image side"),
}

#: settings of ``data`` that only some data sets read, kept in ``DataConfig.extra``:
#: name -> (what it is, smallest, largest); each is a whole number
DATA_EXTRA_INTEGERS: dict[str, tuple[str, int, int]] = {
    "classes": ("the number of spiral arms", 2, 20),
}
#: the functions of x the regression1d set samples (engine.data.toy draws them; sin when unset)
REGRESSION_FUNCTIONS = ("sin", "step", "abs", "square", "sawtooth")
#: settings of ``data`` kept in ``DataConfig.extra`` that name one of a few choices: name -> (what it is, choices)
DATA_EXTRA_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "function": ("the function of x the regression1d set samples", REGRESSION_FUNCTIONS),
}


def show_value(value: Any) -> str:
    """A short, plain rendering of a value for an error message (JSON spelling)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # NOTE: str() of an int over 4300 digits raises, so huge ones are only described.
        return str(value) if abs(value) < 10**30 else "a huge number"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:g}"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:37] + "...", ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def plain_copy(value: Any) -> Any:
    """A deep copy of JSON-like data with tuples turned into lists, as JSON would give it back."""
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_copy(v) for v in value]
    return value


class _Refused(Exception):
    """A check's verdict: the value is not ``expect`` (a phrase such as 'a positive number')."""

    def __init__(self, expect: str) -> None:
        super().__init__(expect)
        self.expect = expect


Check = Callable[[Any], Any]


def _or_list(options: tuple[str, ...]) -> str:
    words = [json.dumps(o) for o in options]
    return ", ".join(words[:-1]) + f" or {words[-1]}"


def choice(*options: str) -> Check:
    expect = f"one of {_or_list(options)}"

    def check(value: Any) -> str:
        if isinstance(value, str) and value in options:
            return value
        raise _Refused(expect)

    return check


def integer(lo: int, hi: int | None = None) -> Check:
    expect = f"a whole number from {lo} to {hi}" if hi is not None else f"a whole number of at least {lo}"

    def check(value: Any) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused(expect)
        if value < lo or (hi is not None and value > hi):
            raise _Refused(expect)
        return value

    return check


def number(lo: float | None = None, hi: float | None = None, *, above: bool = False, expect: str = "") -> Check:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` when ``above``)."""
    if not expect:
        if lo is not None and hi is not None:
            expect = f"a number {'above' if above else 'from'} {lo:g} {'and at most' if above else 'to'} {hi:g}"
        elif lo is not None:
            expect = f"a number {'above' if above else 'of at least'} {lo:g}"
        else:
            expect = "a number"

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Refused(expect)
        try:
            value = float(value)
        except OverflowError:
            raise _Refused(expect) from None
        if not math.isfinite(value):
            raise _Refused(expect)
        if lo is not None and (value < lo or (above and value == lo)):
            raise _Refused(expect)
        if hi is not None and value > hi:
            raise _Refused(expect)
        return value

    return check


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Refused("true or false")


def text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Refused("text")


def optional(check: Check) -> Check:
    def maybe(value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except _Refused as exc:
            raise _Refused(f"{exc.expect} or null") from None

    return maybe


def augment_problem(spec: Any, where: str = "augmentation") -> str | None:
    """What is wrong with augmentation options ``spec``, in one sentence that starts with ``where``; None if nothing."""
    if not isinstance(spec, dict):
        return f"{where} must be an object of option names to values, not {show_value(spec)}"
    for key, value in spec.items():
        if key not in AUGMENT_OPTIONS:
            return f"{where} has an unknown option {key!r}; the options are {', '.join(AUGMENT_OPTIONS)}"
        top, about = AUGMENT_OPTIONS[key]
        if top is None:
            if value not in (True, False):  # 0 and 1 pass too
                return f"{where} option {key!r} ({about}) must be true or false, not {show_value(value)}"
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            # NOTE: NaN fails 0 <= value, so it is refused here too.
            return f"{where} option {key!r} ({about}) must be a number from 0 to {top:g}, not {show_value(value)}"
    return None


def augment_options(value: Any) -> dict[str, Any]:
    """An object of augmentation options; the names and values are checked with the section (``augment_problem``)."""
    if not isinstance(value, dict):
        raise _Refused("an object of augmentation option names to values")
    out = {}
    for key, v in value.items():
        try:
            out[key] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else plain_copy(v)
        except OverflowError:  # an integer beyond float's range: kept, then refused by its range
            out[key] = v
    return out


def column_list(value: Any) -> list[str]:
    expect = "a list of one or more different column names (text)"
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise _Refused(expect)
    if len(set(value)) != len(value):
        raise _Refused(expect)
    return list(value)


def path_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused("text")
    if "\x00" in value:
        raise _Refused("a path without NUL characters")
    return value


def _field(default: Any, check: Check, *, factory: bool = False) -> Any:
    if factory:
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"check": check})
    return field(default=default, metadata={"check": check})


class _Section:
    """Reading and writing shared by the config dataclasses."""

    SECTION: ClassVar[str] = ""
    extra: dict[str, Any]

    @classmethod
    def from_dict(cls, d: Any, where: str | None = None) -> Any:
        """Build from a JSON object; ``where`` prefixes field names in messages ("lenet.json: data")."""
        where = where or cls.SECTION
        if not isinstance(d, dict):
            raise ProjectError(f"{where} must be an object ({{...}}), not {show_value(d)}")
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for name, f in known.items():
            if name not in d:
                continue
            try:
                values[name] = f.metadata["check"](d[name])
            except _Refused as exc:
                raise ProjectError(f"{where}.{name} must be {exc.expect}, not {show_value(d[name])}") from None
        extra = {k: plain_copy(v) for k, v in d.items() if k not in known}
        made = cls(**values, extra=extra)
        made._cross_check(where)
        return made

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready object: every known field, then the unknown ones kept from the file."""
        out = {f.name: plain_copy(getattr(self, f.name)) for f in fields(self) if f.name != "extra"}
        out.update({k: plain_copy(v) for k, v in self.extra.items() if k not in out})
        return out

    def _cross_check(self, where: str) -> None:
        """Rules between fields; each section overrides as needed."""


@dataclass
class DataConfig(_Section):
    """Which data set to train on and how to split and prepare it."""

    SECTION: ClassVar[str] = "data"

    dataset: str = _field("digits", choice(*DATASETS))
    path: str | None = _field(None, optional(path_text))  # for image_folder, csv and npz
    image_size: int | None = _field(None, optional(integer(1, 8192)))
    samples: int = _field(1000, integer(1, 1_000_000))  # for generated sets
    noise: float = _field(0.1, number(0.0, 1.0))
    val_fraction: float = _field(0.15, number(0.0, 0.9))
    test_fraction: float = _field(0.15, number(0.0, 0.9))
    seed: int = _field(0, integer(0, MAX_SEED))
    normalize: bool = _field(True, boolean)
    augment: dict[str, Any] = _field({}, augment_options, factory=True)
    task: str = _field("classification", choice(*TASKS))
    feature_columns: list[str] | None = _field(None, optional(column_list))
    target_column: str | None = _field(None, optional(text))
    # NOTE: an image folder or .npz file whose samples take more than this as float32 (a CSV file: whose
    # text is larger) streams from disk through a DataLoader instead of staying in memory; 0 streams them all.
    memory_budget_gib: float = _field(2.0, number(0.0, 1_000_000.0))
    workers: int | None = _field(None, optional(integer(0, 64)))  # the DataLoader's processes; null: automatic
    on_bad_file: str = _field("skip", choice(*BAD_FILE_CHOICES))  # a file unreadable mid-epoch: skip it or stop
    extra: dict[str, Any] = field(default_factory=dict)

    def _cross_check(self, where: str) -> None:
        problem = augment_problem(self.augment, f"{where}.augment")
        if problem:
            raise ProjectError(problem)
        for name, (about, lo, hi) in DATA_EXTRA_INTEGERS.items():
            if name in self.extra:
                try:
                    self.extra[name] = integer(lo, hi)(self.extra[name])  # 3.0 from a file becomes 3
                except _Refused as exc:
                    value = show_value(self.extra[name])
                    raise ProjectError(f"{where}.{name} ({about}) must be {exc.expect}, not {value}") from None
        for name, (about, options) in DATA_EXTRA_CHOICES.items():
            if name in self.extra:
                try:
                    choice(*options)(self.extra[name])
                except _Refused as exc:
                    value = show_value(self.extra[name])
                    raise ProjectError(f"{where}.{name} ({about}) must be {exc.expect}, not {value}") from None
        total = self.val_fraction + self.test_fraction
        if total >= 1.0:
            raise ProjectError(
                f"{where}.val_fraction ({self.val_fraction:g}) and test_fraction "
                f"({self.test_fraction:g}) add up to {total:g}: together they must stay below 1, "
                "so some data is left to train on"
            )


def device_choice(value: Any) -> str:
    """``auto``, ``cpu``, ``cuda`` or a GPU by its number, ``cuda:1`` (whether this machine has it is asked later)."""
    from engine.devices import DEVICE_EXPECT, is_device_choice

    if is_device_choice(value):
        return value
    raise _Refused(DEVICE_EXPECT)


@dataclass
class TrainingConfig(_Section):
    """How to train: optimizer, schedule, stopping, device."""

    SECTION: ClassVar[str] = "training"

    optimizer: str = _field("adam", choice("sgd", "adam", "rmsprop", "adagrad"))
    lr: float = _field(1e-3, number(0.0, above=True, expect="a positive number"))
    momentum: float = _field(0.9, number(0.0, 1.0))
    nesterov: bool = _field(False, boolean)
    weight_decay: float = _field(0.0, number(0.0))
    batch_size: int = _field(64, integer(1, 65536))
    epochs: int = _field(10, integer(1, 100_000))
    schedule: str = _field("none", choice("none", "step", "cosine", "plateau"))
    step_size: int = _field(10, integer(1, 100_000))
    gamma: float = _field(0.1, number(0.0, 1.0, above=True))
    early_stopping_patience: int = _field(0, integer(0, 100_000))  # 0 means off
    restore_best: bool = _field(True, boolean)
    seed: int = _field(0, integer(0, MAX_SEED))
    device: str = _field("auto", device_choice)
    mixed_precision: bool = _field(False, boolean)
    extra: dict[str, Any] = field(default_factory=dict)


#: settings of ``probes`` kept in ``ProbeConfig.extra`` (absent: the probes' default), each a number in (lo, hi]:
#: name -> (what it is, lo, hi). NOTE: in ``extra``, so a project that never sets one is saved as before.
PROBE_EXTRA_NUMBERS: dict[str, tuple[str, float, float]] = {
    "cam_box_threshold": ("the share of its peak at which a class map is cut for a box", 0.0, 1.0),
}


@dataclass
class ProbeConfig(_Section):
    """What the live views look at while training runs."""

    SECTION: ClassVar[str] = "probes"

    enabled: bool = _field(True, boolean)  # off: the run computes no live views (the fastest training)
    every_batches: int = _field(50, integer(1, 1_000_000))
    every_seconds: float = _field(0.0, number(0.0, 86_400.0))  # also after this long; 0 is off
    layer: str | None = _field(None, optional(text))  # a block id
    probe_samples: int = _field(8, integer(1, 64))
    cam_method: str = _field("gradcam", choice("cam", "gradcam", "off"))
    extra: dict[str, Any] = field(default_factory=dict)

    def _cross_check(self, where: str) -> None:
        for name, (about, lo, hi) in PROBE_EXTRA_NUMBERS.items():
            if name in self.extra:
                try:
                    self.extra[name] = number(lo, hi, above=True)(self.extra[name])
                except _Refused as exc:
                    value = show_value(self.extra[name])
                    raise ProjectError(f"{where}.{name} ({about}) must be {exc.expect}, not {value}") from None

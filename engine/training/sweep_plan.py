"""What a sweep tries: settings of the project file, each with a list of values, as a grid or random points.

A setting is named by its place in the project file: ``training.weight_decay``, ``data.noise``,
``probes.every_batches``, an augmentation as ``data.augment.<option>`` (``data.augment.rotation``; 0
or false leaves it out, as the Training setup does), or a block's parameter as
``blocks.<block name>.<param>`` (``blocks.drop1.p``). :func:`parse_setting` reads ``KEY=V1,V2,...``
(values in JSON spelling: ``1e-3``, ``true``, ``"adam"`` or a bare word); :func:`sweep_points` makes the grid (every
combination) or ``random`` distinct points of it; :func:`apply_point` gives the project snapshot
with one point's values, validated as a project file is (a value a setting cannot take is a
:class:`SweepError` naming the key and the value). :func:`choose` picks the best point by its
validation score.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random as _random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from engine.errors import NetDesignerError

__all__ = [
    "MAX_POINTS", "Setting", "SweepError", "apply_point", "choose", "parse_setting", "parse_values", "point_label",
    "short_key", "sweep_points", "value_text",
]

MAX_POINTS = 1000
_SECTIONS = ("training", "data", "probes")


class SweepError(NetDesignerError):
    """A sweep cannot run as asked; the message names the setting or value at fault."""


@dataclass(frozen=True)
class Setting:
    """One swept setting: where it is in the project file and the values it takes."""

    key: str
    values: tuple[Any, ...]

    @property
    def short(self) -> str:
        """``weight_decay`` for ``training.weight_decay``, ``drop1.p`` for ``blocks.drop1.p``."""
        return short_key(self.key)


def short_key(key: str) -> str:
    """A setting's name without its section: ``weight_decay``, ``drop1.p``, ``augment.rotation``."""
    return key.split(".", 1)[1]


def _three_parts(parts: list[str]) -> bool:
    """Whether a key of three parts is allowed: ``blocks.NAME.PARAM`` and ``data.augment.OPTION``."""
    return parts[0] == "blocks" or parts[:2] == ["data", "augment"]


def parse_setting(text: str) -> Setting:
    """``training.lr=0.1,0.01`` -> Setting("training.lr", (0.1, 0.01)); a bad spelling is a SweepError."""
    key, sep, values = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepError(f"--set {text!r}: write it as KEY=VALUE1,VALUE2,... (for example training.lr=0.1,0.01)")
    parts = key.split(".")
    if parts[0] not in (*_SECTIONS, "blocks") or len(parts) != (3 if _three_parts(parts) else 2) or not all(parts):
        raise SweepError(
            f"--set {key!r}: the setting must be SECTION.FIELD with SECTION one of {', '.join(_SECTIONS)}, "
            "data.augment.OPTION or blocks.BLOCK.PARAM (for example training.weight_decay or blocks.fc1.units)"
        )
    return parse_values(key, values)


def parse_values(key: str, text: str) -> Setting:
    """The setting ``key`` with the values in ``text`` (``0, 1e-4, 1e-3``); a SweepError names what is wrong.

    Each value is read in JSON spelling (``1e-3``, ``true``, ``"adam"``) or as a bare word (``adam``).
    """
    items = [v.strip() for v in str(text).split(",")]
    if not items or any(not v for v in items):
        raise SweepError(f"{key}: give one or more values separated by commas, with none empty")
    parsed = tuple(_value(key, v) for v in items)
    if len(set(map(_hashable, parsed))) != len(parsed):
        raise SweepError(f"{key}: a value is repeated")
    return Setting(key, parsed)


def _value(key: str, text: str) -> Any:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text  # NOTE: a bare word (adam, cosine) is text
    except ValueError:  # NOTE: an integer of more than 4300 digits
        raise SweepError(f"{key}: a value is a number too long to read") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise SweepError(f"{key}: {text} is not a finite number")
    if isinstance(value, (dict, list)):
        raise SweepError(f"{key}: {text}: a swept value must be a number, true/false or text")
    return value


def _hashable(v: Any) -> Any:
    """Equal values are one (``1`` and ``1.0`` too); ``true`` is not the number 1."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return ("number", float(v))
    return (type(v).__name__, v)


def sweep_points(settings: Sequence[Setting], random: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Every combination of the settings' values, or ``random`` distinct ones of them (in a seeded order)."""
    if not settings:
        raise SweepError("a sweep needs at least one --set")
    keys = [s.key for s in settings]
    if len(set(keys)) != len(keys):
        raise SweepError("a setting is given twice: put all its values in one --set")
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*(s.values for s in settings))]
    if random is not None:
        if random < 1:
            raise SweepError(f"--random must be at least 1, not {random}")
        grid = _random.Random(seed).sample(grid, min(random, len(grid)))
    if len(grid) > MAX_POINTS:
        raise SweepError(f"the sweep has {len(grid)} points, more than {MAX_POINTS}: use --random N or fewer values")
    return grid


def apply_point(snapshot: Mapping[str, Any], point: Mapping[str, Any], source: str = "the sweep") -> dict[str, Any]:
    """The project snapshot with the point's values set, validated as a project file (SweepError otherwise)."""
    from engine.project import project_from_dict, project_to_dict

    out = copy.deepcopy(dict(snapshot))
    for key, value in point.items():
        parts = key.split(".")
        if parts[0] == "blocks":
            _set_block_param(out, parts[1], parts[2], value)
        elif len(parts) == 3:
            _set_augment(out, parts[2], value)
        else:
            section = out.setdefault(parts[0], {})
            if parts[1] not in _known_fields(parts[0]) and parts[1] not in section:
                raise SweepError(f"{key}: {parts[0]} has no setting {parts[1]!r} (it has "
                                 f"{', '.join(sorted(_known_fields(parts[0])))})")
            section[parts[1]] = value
    try:
        return project_to_dict(project_from_dict(out, source=source))
    except NetDesignerError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
        raise SweepError(f"{shown} cannot be used: {exc}") from None


def _known_fields(section: str) -> set[str]:
    from engine.config import DataConfig, ProbeConfig, TrainingConfig

    cls = {"training": TrainingConfig, "data": DataConfig, "probes": ProbeConfig}[section]
    return set(cls().to_dict())


def _set_block_param(snapshot: dict[str, Any], name: str, param: str, value: Any) -> None:
    nodes = (snapshot.get("graph") or {}).get("nodes") or []
    found = [n for n in nodes if n.get("name") == name] or [n for n in nodes if n.get("id") == name]
    if not found:
        raise SweepError(f"blocks.{name}.{param}: there is no block named {name!r}")
    if len(found) > 1:
        raise SweepError(f"blocks.{name}.{param}: several blocks are named {name!r}: rename one")
    params = found[0].setdefault("params", {})
    if param not in params:
        raise SweepError(f"blocks.{name}.{param}: {name!r} has no parameter {param!r} (it has {', '.join(params)})")
    params[param] = value


def _set_augment(snapshot: dict[str, Any], option: str, value: Any) -> None:
    from engine.config import AUGMENT_OPTIONS

    if option not in AUGMENT_OPTIONS:
        raise SweepError(f"data.augment.{option}: there is no augmentation {option!r} (there are "
                         f"{', '.join(AUGMENT_OPTIONS)})")
    data = snapshot.setdefault("data", {})
    augment = dict(data.get("augment") or {})
    if value is False or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        augment.pop(option, None)  # NOTE: off, as the Training setup writes it
    else:
        augment[option] = value
    data["augment"] = augment


def point_label(point: Mapping[str, Any]) -> str:
    """``weight_decay=0.001, lr=0.01``."""
    return ", ".join(f"{short_key(k)}={value_text(v)}" for k, v in point.items())


def value_text(v: Any) -> str:
    """A swept value as a person reads it: ``0.001``, ``1e-05``, ``true``, ``adam``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def choose(scores: Sequence[float | None], higher_is_better: bool) -> int | None:
    """The index of the best score (the first of equals), None when no point has one."""
    best = None
    for i, s in enumerate(scores):
        if s is None or not math.isfinite(s):
            continue
        if best is None or (s > scores[best] if higher_is_better else s < scores[best]):
            best = i
    return best

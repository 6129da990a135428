"""The settings a paused run can take on, checked as a project file is, and the words for a change.

While a run is paused a person may change its learning rate, weight decay, momentum, schedule
(with its step and factor), batch size, augmentation, early-stopping patience and the ``p`` of
its Dropout / Dropout2d blocks; Resume sends them (:meth:`engine.training.trainer.Control.resume`)
and the loop applies them at the resume point. A change is named by its place in the project
file, as a sweep names settings: ``training.lr``, ``data.augment``, ``blocks.<block id>.p``.

:func:`plan_changes` checks a set of changes against the run's project snapshot (anything else,
a value the project file refuses, or momentum for an optimizer without it is a
:class:`LiveChangeError` naming the setting) and returns the new snapshot with what changes, old
and new, keyed as the run records it (blocks by name: ``blocks.drop1.p``). :func:`live_values` is
what the window compares before and after a pause; :func:`change_text` the label of a mark on
the curves ("lr 0.01 → 0.001"). No PyTorch here: the window imports it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping

from engine.errors import NetDesignerError

__all__ = [
    "DROPOUT_TYPES", "KEPT_WEIGHTS", "LIVE_DATA", "LIVE_TRAINING", "SCHEDULE_KEYS", "LiveChangeError", "LivePlan",
    "change_text", "changes_text", "live_values", "plan_changes", "short_name", "values_text",
]

#: The training settings a paused run takes on (``step_size`` and ``gamma`` belong to the schedule).
LIVE_TRAINING = ("lr", "weight_decay", "momentum", "schedule", "step_size", "gamma", "batch_size",
                 "early_stopping_patience")
LIVE_DATA = ("augment",)
#: The blocks whose rate (``p``) a paused run takes on: it is a plain attribute of the live module.
DROPOUT_TYPES = ("Dropout", "Dropout2d")
#: The file a paused run writes its weights to, in its run folder, for a changed network (engine.training.transfer).
KEPT_WEIGHTS = "paused.pt"
#: The settings that make a new schedule (from the current rate, for the remaining epochs).
SCHEDULE_KEYS = ("training.schedule", "training.step_size", "training.gamma")

_SHORT = {"training.lr": "lr", "training.weight_decay": "weight decay", "training.momentum": "momentum",
          "training.schedule": "schedule", "training.step_size": "schedule step", "training.gamma": "schedule factor",
          "training.batch_size": "batch size", "training.early_stopping_patience": "patience",
          "data.augment": "augmentation"}


class LiveChangeError(NetDesignerError):
    """A change a paused run cannot take; the message names the setting and why."""


@dataclass(frozen=True)
class LivePlan:
    """What a resume changes.

    Attributes:
        snapshot: the run's project with the changes, validated as a project file.
        applied: setting -> (old, new) for each value that differs, blocks named by their block name.
        blocks: block id -> its new ``p`` (the Dropout blocks that change).
    """

    snapshot: dict[str, Any]
    applied: dict[str, tuple[Any, Any]]
    blocks: dict[str, float]

    def changed(self, key: str) -> bool:
        return key in self.applied


def live_values(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting a paused run can take on, as in ``snapshot`` (a project as plain data): key -> value."""
    training, data = snapshot.get("training") or {}, snapshot.get("data") or {}
    out: dict[str, Any] = {f"training.{k}": copy.deepcopy(training.get(k)) for k in LIVE_TRAINING}
    out.update({f"data.{k}": copy.deepcopy(data.get(k)) for k in LIVE_DATA})
    for node in _nodes(snapshot):
        if node.get("type") in DROPOUT_TYPES:
            out[f"blocks.{node.get('id')}.p"] = (node.get("params") or {}).get("p")
    return out


def plan_changes(snapshot: Mapping[str, Any], changes: Mapping[str, Any]) -> LivePlan:
    """The run's project ``snapshot`` with ``changes`` (setting -> new value), checked.

    Raises:
        LiveChangeError: a setting a paused run cannot change, a value the project file refuses, or
            momentum for an optimizer that has none.
    """
    from engine.project import project_from_dict, project_to_dict

    new = copy.deepcopy(dict(snapshot))
    nodes = {str(n.get("id")): n for n in _nodes(new)}
    applied: dict[str, tuple[Any, Any]] = {}
    blocks: dict[str, float] = {}
    for key, value in changes.items():
        section, _, name = str(key).partition(".")
        if section == "blocks":
            nid, _, param = name.rpartition(".")
            node = nodes.get(nid)
            if node is None or node.get("type") not in DROPOUT_TYPES or param != "p":
                raise LiveChangeError(f"{key}: only the rate p of a Dropout or Dropout2d block of this run can "
                                      "change while it is paused")
            params = node.setdefault("params", {})
            old, params["p"] = params.get("p"), value
            label = f"blocks.{node.get('name') or nid}.p"
            if old != value:
                applied[label], blocks[nid] = (old, value), value
            continue
        if (section, name) not in {("training", k) for k in LIVE_TRAINING} | {("data", k) for k in LIVE_DATA}:
            raise LiveChangeError(f"{key} cannot change while a run is paused: only {_allowed()} can. "
                                  "Stop the run to change it")
        part = new.setdefault(section, {})
        old = part.get(name)
        part[name] = copy.deepcopy(value)
        if old != value:
            applied[key] = (copy.deepcopy(old), copy.deepcopy(value))
    try:
        checked = project_to_dict(project_from_dict(new, source="the paused run"))
    except NetDesignerError as exc:
        what = changes_text(applied) or "the change"
        raise LiveChangeError(f"{what} cannot be used: {_without_source(exc)}") from None
    training = checked.get("training") or {}
    if "training.momentum" in applied and training.get("optimizer") != "sgd":
        raise LiveChangeError(f"momentum: only SGD uses momentum, and this run trains with "
                              f"{training.get('optimizer')}: leave it at {applied['training.momentum'][0]:g}")
    if training.get("optimizer") == "sgd" and training.get("nesterov") and not training.get("momentum"):
        raise LiveChangeError("momentum: this run uses Nesterov momentum, which needs a momentum above 0")
    return LivePlan(checked, applied, blocks)


def change_text(key: str, old: Any, new: Any) -> str:
    """One change in words: ``lr 0.01 → 0.001``, ``drop1 p 0.5 → 0.2``, ``augmentation none → flip``."""
    return f"{short_name(key)} {values_text(old, new)}"


def values_text(old: Any, new: Any) -> str:
    """``0.01 → 0.001``."""
    return f"{_value(old)} → {_value(new)}"


def changes_text(applied: Mapping[str, Any]) -> str:
    """Several changes in words, joined: ``lr 0.01 → 0.001, batch size 64 → 32``."""
    return ", ".join(change_text(k, *_pair(v)) for k, v in applied.items())


def short_name(key: str) -> str:
    """What a change is called in a sentence: ``lr`` for ``training.lr``, ``drop1 p`` for ``blocks.drop1.p``."""
    if key.startswith("blocks."):
        block, _, param = key[len("blocks."):].rpartition(".")
        return f"{block} {param}"
    return _SHORT.get(key, key.partition(".")[2].replace("_", " "))


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    return None, value


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}" if math.isfinite(v) else str(v)
    if isinstance(v, dict):
        on = [k if v[k] is True else f"{k} {_value(v[k])}" for k in v if v[k]]
        return ", ".join(on) if on else "none"
    if v is None:
        return "none"
    return str(v)


def _allowed() -> str:
    return ("the learning rate, weight decay, momentum, schedule, batch size, augmentation, early stopping and "
            "dropout rates")


def _nodes(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = (snapshot.get("graph") or {}).get("nodes") or []
    return [n for n in nodes if isinstance(n, dict)]


def _without_source(exc: Exception) -> str:
    """The loader's reason without its "the paused run: " prefix."""
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("the paused run") and ": " in text else text

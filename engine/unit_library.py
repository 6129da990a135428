"""The user's unit library on disk: one file per unit, in a folder the caller names.

A unit's file is a small project whose one block uses the unit, so the project format's checks
(and its migrations) read it back. Its name comes from the unit's name, with anything but
letters, digits, ``-`` and ``.`` written as ``_`` ("Res & Block" -> ``Res_Block.json``). Names
that differ only there ("Block A", "Block_A") would share that file, so a file that holds
another unit is never written over: the second takes the same stem and a short hash of its
whole name (``Block_A~3f0c9a1e.json``). The library lists units by the names inside the files,
so a file name is only ever found, never parsed, and files of earlier versions still load.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from engine.errors import ProjectError
from engine.graph import UNIT_TYPE, Graph
from engine.project import Project, load_project, save_project
from engine.units import UnitDef

__all__ = ["library_units", "load_unit", "save_unit", "unit_file"]

#: NOTE: never a character the stem keeps, so a hashed file name is never another unit's plain one
_HASH_MARK = "~"


def _stem(name: str) -> str:
    """``name`` as a file name: runs of anything but letters, digits, ``-`` and ``.`` as one ``_``."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "unit"


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]


def _holds(path: Path, name: str) -> bool | None:
    """Whether the library file ``path`` holds unit ``name``: None when there is no such file;
    False when it holds another unit or cannot be read (it is left as it is)."""
    if not path.exists():
        return None
    try:
        return load_unit(path).name == name
    except (ProjectError, OSError):
        return False


def unit_file(folder: Path, name: str) -> Path:
    """The file in ``folder`` that unit ``name`` is saved to: its own file when it has one, else a free one.

    The plain name (``Res_Block.json``) comes first, then the plain name with the hash of the
    whole name; a file that holds another unit (or cannot be read) is skipped.

    Raises:
        ProjectError: both files hold other units (a hash clash), naming them.
    """
    stem = _stem(name)
    choices = [folder / f"{stem}.json", folder / f"{stem}{_HASH_MARK}{_digest(name)}.json"]
    for path in choices:
        if _holds(path, name) is not False:
            return path
    taken = " and ".join(p.name for p in choices)
    raise ProjectError(f"unit '{name}' was not saved: {taken} in {folder} hold other units")


def save_unit(folder: Path, unit: UnitDef) -> Path:
    """Write ``unit`` (with the units it uses) to the library ``folder``, replacing its own earlier file."""
    graph = Graph()
    graph.define_unit(unit)
    graph.add_node(UNIT_TYPE, {"unit": unit.name})
    path = unit_file(folder, unit.name)
    save_project(Project(name=unit.name, graph=graph), path)
    return path


def load_unit(path: str | Path) -> UnitDef:
    """The unit stored in library file ``path``; ProjectError naming the file when it holds none."""
    project = load_project(path)
    unit = next((n.unit for n in project.graph.nodes.values() if n.unit is not None), None)
    if unit is None:
        raise ProjectError(f"{Path(path).name}: holds no unit")
    return unit


def library_units(folder: Path) -> list[tuple[str, Path]]:
    """(unit name, file) of every readable unit in ``folder``, by name; unreadable files are left out."""
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append((load_unit(path).name, path))
        except (ProjectError, OSError):
            continue
    return sorted(found, key=lambda item: item[0].lower())

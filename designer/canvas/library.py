"""The user's unit library: units saved from a project, to drop into any project many times.

Each unit is one file under the program's data folder (``units/<name>.json``), written as a small
project whose one block uses the unit, so the project format's checks (and its migrations) read
it back. The palette lists the files under "My units"; a drop adds a use of the unit, defining it
in the project first when the project has not got it (one undo step, :func:`add_unit_command`).
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from designer.commands import ReplaceGraphCommand
from designer.settings import data_dir
from engine.errors import GraphError, ProjectError
from engine.graph import UNIT_TYPE, Graph
from engine.project import Project, load_project, save_project
from engine.units import UnitDef, same_network

#: MIME type of a library unit dragged from the palette; the payload is its file's path (UTF-8)
UNIT_MIME = "application/x-netdesigner-unit"
FOLDER = "units"


class _Library(QObject):
    """Announces ``changed()`` when a unit is saved, so the palette lists it."""

    changed = Signal()


LIBRARY = _Library()


def library_dir() -> Path:
    path = data_dir() / FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def unit_file(name: str) -> Path:
    """The library file of unit ``name`` (its name with anything but letters, digits, ``-`` and ``.`` as ``_``)."""
    stem = re.sub(r"[^\w.-]+", "_", name).strip("._") or "unit"
    return library_dir() / f"{stem}.json"


def save_unit(unit: UnitDef) -> Path:
    """Write ``unit`` (with the units it uses) to the library, replacing a file of the same name."""
    graph = Graph()
    graph.define_unit(unit)
    graph.add_node(UNIT_TYPE, {"unit": unit.name})
    path = unit_file(unit.name)
    save_project(Project(name=unit.name, graph=graph), path)
    LIBRARY.changed.emit()
    return path


def load_unit(path: str | Path) -> UnitDef:
    """The unit stored in library file ``path``; ProjectError naming the file when it holds none."""
    project = load_project(path)
    unit = next((n.unit for n in project.graph.nodes.values() if n.unit is not None), None)
    if unit is None:
        raise ProjectError(f"{Path(path).name}: holds no unit")
    return unit


def library_units() -> list[tuple[str, Path]]:
    """(unit name, file) of every readable unit in the library, by name; unreadable files are left out."""
    found = []
    for path in sorted(library_dir().glob("*.json")):
        try:
            found.append((load_unit(path).name, path))
        except (ProjectError, OSError):
            continue
    return sorted(found, key=lambda item: item[0].lower())


def add_unit_command(doc, unit: UnitDef, pos: tuple[float, float]) -> ReplaceGraphCommand:
    """The step that adds a block using ``unit`` at ``pos``, defining the unit in the project when it is new.

    A project that has a unit of that name already uses its own when it is the same network, and
    refuses the drop when it is not (the engine's :class:`GraphError`).
    """
    new = doc.graph.copy()
    have = new.units.get(unit.name)
    if have is None:
        new.define_unit(unit)
    elif not same_network(have, unit):
        raise GraphError(f"this network has another unit called '{unit.name}': rename one of them first")
    node = new.add_node(UNIT_TYPE, {"unit": unit.name}, name=new.unique_name(new.units[unit.name].spec.default_name),
                        pos=pos)
    return ReplaceGraphCommand(doc, f"Add {unit.name}", new, [node.id])

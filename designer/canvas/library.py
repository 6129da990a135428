"""The user's unit library: units saved from a project, to drop into any project many times.

Each unit is one file under the program's data folder (``units/<name>.json``), written and read by
:mod:`engine.unit_library` (a small project whose one block uses the unit; names that differ only
in punctuation get files of their own). The palette lists the files under "My units"; a drop adds
a use of the unit, defining it in the project first when the project has not got it (one undo
step, :func:`add_unit_command`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from designer.commands import ReplaceGraphCommand
from designer.settings import data_dir
from engine import unit_library
from engine.errors import GraphError
from engine.graph import UNIT_TYPE
from engine.unit_library import load_unit
from engine.units import UnitDef, same_network

__all__ = ["LIBRARY", "UNIT_MIME", "add_unit_command", "library_dir", "library_units", "load_unit", "save_unit"]

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


def save_unit(unit: UnitDef) -> Path:
    """Write ``unit`` (with the units it uses) to the library, replacing its own earlier file, never another's."""
    path = unit_library.save_unit(library_dir(), unit)
    LIBRARY.changed.emit()
    return path


def library_units() -> list[tuple[str, Path]]:
    """(unit name, file) of every readable unit in the library, by name; unreadable files are left out."""
    return unit_library.library_units(library_dir())


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

"""The canvas's unit gestures: Group, Ungroup, Repeat ×N and Make unique on the selected blocks.

Each asks what it needs (a name, a count) with a small dialog, builds one undo step from the
engine's pure edit (:mod:`engine.units`, through :mod:`designer.commands`) and pushes it onto the
shown document, which inside an opened unit is that unit's :class:`~designer.canvas.levels.UnitLevel`.
A refusal (a selection that cannot be one block, a unit whose output does not fit its input, a
locked canvas) goes to the status bar in the engine's words, and nothing is pushed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from designer.commands import (
    group_command,
    make_unique_command,
    repeat_command,
    ungroup_command,
)
from engine.errors import GraphError

if TYPE_CHECKING:  # pragma: no cover
    from designer.canvas.scene import GraphScene

#: the most uses Repeat ×N offers (the engine's own limit)
MAX_REPEAT = 100


def selected_unit(scene: GraphScene) -> str | None:
    """The one selected block's id when it is a unit block, else None."""
    ids = scene.selected_node_ids()
    if len(ids) == 1 and scene.graph.nodes[ids[0]].unit is not None:
        return ids[0]
    return None


def _push(scene: GraphScene, make) -> bool:
    """Push the step ``make()`` builds; say why in the status bar when it is refused."""
    if scene.refuse_if_locked():
        return False
    try:
        cmd = make()
    except GraphError as exc:
        scene.status_message.emit(str(exc))
        return False
    scene.document.push(cmd)
    return True


def group_selected(scene: GraphScene, name: str) -> bool:
    """Replace the selected blocks by one block of a new unit called ``name`` (one undo step)."""
    ids = scene.selected_node_ids()
    return _push(scene, lambda: group_command(scene.document, ids, name))


def _push_for_unit(scene: GraphScene, what: str, make) -> bool:
    """Push ``make(unit_block_id)`` for the selected unit block; without one, say so ("… to ``what``")."""
    uid = selected_unit(scene)
    if uid is None:
        scene.status_message.emit(f"Select one unit block to {what}")
        return False
    return _push(scene, lambda: make(uid))


def ungroup_selected(scene: GraphScene) -> bool:
    """Put the selected unit block's blocks in its place (one undo step)."""
    return _push_for_unit(scene, "ungroup it", lambda uid: ungroup_command(scene.document, uid))


def repeat_selected(scene: GraphScene, n: int) -> bool:
    """Follow the selected unit block by ``n − 1`` more uses of its unit (one undo step)."""
    return _push_for_unit(scene, "repeat it", lambda uid: repeat_command(scene.document, uid, n))


def make_unique_selected(scene: GraphScene) -> bool:
    """Give the selected unit block its own copy of its unit (one undo step)."""
    return _push_for_unit(scene, "make it unique", lambda uid: make_unique_command(scene.document, uid))


# ---------------------------------------------------------------------- asking
def ask_group(scene: GraphScene, parent: QWidget) -> bool:
    """Ask a name for the selected blocks' unit, then group them (Edit → Group, Ctrl+G)."""
    if scene.refuse_if_locked():
        return False
    if not scene.selected_node_ids():
        scene.status_message.emit("Select the blocks to group first")
        return False
    name, ok = QInputDialog.getText(parent, "Group blocks", "Name of the new unit:", QLineEdit.EchoMode.Normal,
                                    _free_unit_name(scene))
    return bool(ok) and group_selected(scene, name)


def ask_repeat(scene: GraphScene, parent: QWidget) -> bool:
    """Ask how many uses in all, then repeat the selected unit block (context menu → Repeat ×N)."""
    if scene.refuse_if_locked() or selected_unit(scene) is None:
        if not scene.read_only:
            scene.status_message.emit("Select one unit block to repeat it")
        return False
    n, ok = QInputDialog.getInt(parent, "Repeat unit", "Uses in all, one after another:", 2, 1, MAX_REPEAT)
    return bool(ok) and repeat_selected(scene, int(n))


def _free_unit_name(scene: GraphScene) -> str:
    """A unit name the project does not use yet ("Unit 1", "Unit 2", ...)."""
    taken = set(scene.graph.units)
    top = getattr(scene.document, "top", None)
    if top is not None:
        taken |= set(top.graph.units)
    k = 1
    while f"Unit {k}" in taken:
        k += 1
    return f"Unit {k}"

"""An opened unit: its definition's inner graph, shown and edited on the canvas like a network.

:class:`UnitLevel` stands in for the :class:`~designer.document.Document` while the canvas shows a
unit's inside: it offers what the scene, the view and the inspector read of a document (``graph``,
``analysis``, ``push``, ``undo_stack`` and the same signals). Its graph is a working copy of the
definition's inner graph. An edit runs on the copy, then the whole project is remade with the
definition changed in every use (:func:`engine.units.redefine`) and that is pushed onto the
project's undo stack as one :class:`~designer.commands.ReplaceGraphCommand`; an edit the unit's
ports cannot follow is undone on the copy and refused. The copy follows the project: after an undo
or redo it takes the definition's graph again, so the canvas draws through the usual events.

A block inside units is named by its *path*, the ids from the top level down joined by ``/``
(``n7/n2/n9``: block ``n9`` inside unit block ``n2`` inside top-level unit block ``n7``), as the
analysis names it. :func:`locate` splits a path into the level that shows the block and its id
there, :func:`block_path` joins them again, and :func:`show_level` / :func:`reveal` take a canvas there,
opening the units on the way as the breadcrumb would. The level a project was left at is remembered
per project file (:func:`remember_level`, :func:`remembered_level`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand

from designer.commands import ReplaceGraphCommand
from designer.document import Document
from designer.settings import settings
from engine.analysis import Analysis, NodeInfo, Problem
from engine.errors import GraphError
from engine.graph import Graph, GraphEvent
from engine.units import SEP, UnitDef, redefine, units_in_use

if TYPE_CHECKING:  # pragma: no cover
    from designer.canvas.view import GraphView

#: QSettings group of the level each project file was left at: one key per file (a hash of its path)
LEVEL_GROUP = "open_unit"


# ---------------------------------------------------------------------- paths of blocks
def unit_at(graph: Graph, unit_path: str) -> UnitDef | None:
    """The unit that the block at ``unit_path`` uses (ids from ``graph``'s level down), or None when the
    path leads nowhere: a missing block, or one on the way that is not a unit block."""
    unit = None
    for nid in unit_path.split(SEP):
        node = graph.nodes.get(nid)
        if node is None or node.unit is None:
            return None
        unit = node.unit
        graph = unit.graph
    return unit


def locate(graph: Graph, path: str) -> tuple[str, str] | None:
    """Where block ``path`` is shown: the unit path of its level (``""``: the network) and its id there.

    None when the path leads nowhere in ``graph`` (a block or unit that is gone).
    """
    level, _, node_id = path.rpartition(SEP)
    inside = graph if not level else getattr(unit_at(graph, level), "graph", None)
    if inside is None or node_id not in inside.nodes:
        return None
    return level, node_id


def block_path(level: str, node_id: str) -> str:
    """The path of block ``node_id`` of the level at unit path ``level`` (``""``: the network)."""
    return f"{level}{SEP}{node_id}" if level else node_id


def shown_level(view: GraphView) -> str | None:
    """The unit path of the level ``view`` shows (``""``: the network), or None while it still shows a
    level of a project that was just replaced (its unit is not the project's any more)."""
    doc = view.document
    if doc is view.top_document:
        return ""
    if doc.is_open and unit_at(view.top_document.graph, doc.unit_path) is doc.unit:
        return doc.unit_path
    return None


def show_level(view: GraphView, unit_path: str) -> bool:
    """Make ``view`` show the inside of the unit at ``unit_path`` (``""``: the network), as the breadcrumb
    would: up to the deepest level the two share, then into each unit on the way.

    False, and the view unchanged, when the path leads nowhere.
    """
    if unit_path and unit_at(view.top_document.graph, unit_path) is None:
        return False
    current = shown_level(view)
    now = current.split(SEP) if current else []  # NOTE: a stale level (None) shares nothing
    want = unit_path.split(SEP) if unit_path else []
    shared = 0
    while shared < min(len(now), len(want)) and now[shared] == want[shared]:
        shared += 1
    if view.depth() > shared:
        view.go_to_depth(shared)
    for nid in want[shared:]:
        view.open_unit(nid)
    return True


def reveal(view: GraphView, path: str) -> str | None:
    """Take ``view`` to the level that shows block ``path`` (opening units as needed) and return the
    block's id there; None, and the view unchanged, when the path leads nowhere."""
    found = locate(view.top_document.graph, path)
    if found is None or not show_level(view, found[0]):
        return None
    return found[1]


# ---------------------------------------------------------------------- the level kept per project
def _level_key(project_path: str | Path) -> str:
    digest = hashlib.sha1(str(Path(project_path).resolve()).encode("utf-8")).hexdigest()
    return f"{LEVEL_GROUP}/{digest}"


def remember_level(project_path: str | Path, unit_path: str) -> None:
    """Keep ``unit_path`` as the level project file ``project_path`` shows when it is opened again
    (the network, ``""``, is kept as no entry at all)."""
    key = _level_key(project_path)
    if unit_path:
        settings().setValue(key, unit_path)
    else:
        settings().remove(key)


def remembered_level(project_path: str | Path) -> str:
    """The level kept for project file ``project_path`` (``""``: the network, or nothing kept)."""
    value = settings().value(_level_key(project_path), "")
    return value if isinstance(value, str) else ""


class UnitLevel(QObject):
    """The inside of the unit used by block ``path`` (ids from the top level down, joined by ``/``).

    Signals (as :class:`~designer.document.Document`'s): ``graph_event``, ``analysis_changed``,
    ``project_replaced``, ``select_requested``; ``status_message(str)`` says why an edit was refused;
    ``closed()``: the unit or its use is gone (an undo, another project), so the canvas leaves it.
    """

    graph_event = Signal(object)
    analysis_changed = Signal(object)
    project_replaced = Signal()
    select_requested = Signal(list)
    status_message = Signal(str)
    closed = Signal()

    def __init__(self, top: Document, path: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.top = top
        self.unit_path = path
        self.undo_stack = top.undo_stack
        unit = self._resolve()
        if unit is None:
            raise GraphError(f"there is no unit at {path!r}")
        self.unit_name = unit.name
        self._shown: UnitDef = unit
        self.graph: Graph = unit.graph.copy()
        self.graph.subscribe(self._on_graph_event)
        self.analysis = self._inner_analysis(top.analysis)
        self._open = True
        top.graph_event.connect(self._on_top_event)
        top.analysis_changed.connect(self._on_top_analysis)
        top.project_replaced.connect(self.close)

    @property
    def project(self):
        return self.top.project

    @property
    def is_open(self) -> bool:
        """Whether the unit is still there and the level follows it."""
        return self._open

    @property
    def unit(self) -> UnitDef:
        return self._shown

    # ------------------------------------------------------------------ editing
    def push(self, cmd: QUndoCommand) -> None:
        """Do ``cmd`` on the unit's inside and put the project's change on the undo stack (or refuse it)."""
        before = self.top.graph.copy()
        cmd.redo()
        try:
            after = redefine(self.top.graph, self.unit_name, self.graph)
            for d in units_in_use(self.graph):  # NOTE: a unit grouped inside this one is new to the project
                after.define_unit(d)
        except GraphError as exc:
            cmd.undo()
            self.status_message.emit(str(exc))
            return
        self.undo_stack.push(ReplaceGraphCommand(self.top, f"{cmd.text()} in {self.unit_name}", after, before=before))

    def request_selection(self, node_ids: list[str]) -> None:
        self.select_requested.emit(list(node_ids))

    def close(self) -> None:
        """Stop following the project and say so (once)."""
        if not self._open:
            return
        self._open = False
        self.top.graph_event.disconnect(self._on_top_event)
        self.top.analysis_changed.disconnect(self._on_top_analysis)
        self.top.project_replaced.disconnect(self.close)
        self.closed.emit()

    # ------------------------------------------------------------------ following the project
    def _resolve(self) -> UnitDef | None:
        """The unit block ``unit_path`` uses now, or None when the path leads nowhere."""
        return unit_at(self.top.graph, self.unit_path)

    def _on_top_event(self, _event: GraphEvent) -> None:
        unit = self._resolve()
        if unit is None or unit.name != self.unit_name:
            self.close()
            return
        if unit is not self._shown:
            self._shown = unit
            self.graph.assign(unit.graph)

    def _on_graph_event(self, event: GraphEvent) -> None:
        self.graph_event.emit(event)

    def _on_top_analysis(self, analysis: Analysis) -> None:
        if self._open:
            self.analysis = self._inner_analysis(analysis)
            self.analysis_changed.emit(self.analysis)

    def _inner_analysis(self, top: Analysis) -> Analysis:
        """The project's figures for the blocks of this use of the unit, and the problems inside it."""
        prefix = self.unit_path + SEP
        nodes = {nid: top.info(prefix + nid) or NodeInfo() for nid in self.graph.nodes}
        problems: dict[str, list[Problem]] = {}
        for p in top.flat.all_problems() if top.flat is not None else ():
            if p.node_id.startswith(prefix):
                inner = p.node_id[len(prefix):].split(SEP)[0]
                problems.setdefault(inner, []).append(Problem(inner, p.severity, p.rule, p.message))
        return Analysis(nodes, problems, list(self.graph.nodes))

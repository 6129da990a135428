"""An opened unit: its definition's inner graph, shown and edited on the canvas like a network.

:class:`UnitLevel` stands in for the :class:`~designer.document.Document` while the canvas shows a
unit's inside: it offers what the scene, the view and the inspector read of a document (``graph``,
``analysis``, ``push``, ``undo_stack`` and the same signals). Its graph is a working copy of the
definition's inner graph. An edit runs on the copy, then the whole project is remade with the
definition changed in every use (:func:`engine.units.redefine`) and that is pushed onto the
project's undo stack as one :class:`~designer.commands.ReplaceGraphCommand`; an edit the unit's
ports cannot follow is undone on the copy and refused. The copy follows the project: after an undo
or redo it takes the definition's graph again, so the canvas draws through the usual events.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand

from designer.commands import ReplaceGraphCommand
from designer.document import Document
from engine.analysis import Analysis, NodeInfo, Problem
from engine.errors import GraphError
from engine.graph import Graph, GraphEvent
from engine.units import SEP, UnitDef, redefine, units_in_use


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
        graph, unit = self.top.graph, None
        for nid in self.unit_path.split(SEP):
            node = graph.nodes.get(nid)
            if node is None or node.unit is None:
                return None
            unit = node.unit
            graph = unit.graph
        return unit

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

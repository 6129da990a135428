"""The canvas scene: one item per block and wire, following the document's events.

:class:`GraphScene` never changes its items on its own initiative. Gestures (a
drag, a wire drawn with the mouse, a key press) become undo commands pushed onto
the document; the graph announces what changed and the ``_on_<event>`` handlers
update the items. Undo, redo, loading a file and scripted edits therefore all
draw through the same path. A fresh analysis only touches items whose numbers
or problems changed.

Wires are routed around the blocks (:class:`~designer.canvas.routing.Router`, which the scene
keeps told of every block's rectangle). A dragged block's own wires follow it each frame; the
wires that a move (a drag's end, Arrange, Undo) may have blocked or freed are re-routed once the
events are handled (:meth:`GraphScene.flush_routes`), so a layout of every block routes each wire once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneHelpEvent, QGraphicsSceneMouseEvent, QToolTip

from designer import clipboard
from designer.canvas import placement
from designer.canvas.items import GRID, EdgeItem, NodeItem, PortItem, TempWireItem, node_brief
from designer.canvas.port_markers import mark_ports
from designer.canvas.routing import Router
from designer.colors import app_is_dark, canvas_palette
from designer.commands import (
    ApplyLayoutCommand,
    ConnectCommand,
    DisconnectCommand,
    InsertAfterCommand,
    MacroCommand,
    MoveNodesCommand,
    PasteCommand,
    RemoveNodesCommand,
)
from designer.document import Document
from designer.plaintext import as_plain
from engine.analysis import Analysis
from engine.errors import GraphError
from engine.graph import Edge, GraphEvent, Node
from engine.layout import DEFAULT_FIT, auto_layout
from engine.project import graph_to_dict

#: Half the side of the scene rectangle: room to pan far beyond any real network.
SCENE_HALF = 50_000.0
#: How far apart the places are that a new block or a paste tries, looking for room.
PASTE_STEP = placement.STEP

LOCKED_MESSAGE = "The network is read-only while it trains: stop training to edit it"


@dataclass
class _WireDrag:
    """A wire being drawn: ``anchor`` is the port it started from (or the source of a detached wire)."""

    anchor: PortItem
    temp: TempWireItem
    detached: Edge | None = None
    target: PortItem | None = None


class GraphScene(QGraphicsScene):
    """Blocks and wires of a :class:`~designer.document.Document`.

    Signals:
        node_selection_changed(list): the ids of the selected blocks, in graph order.
        status_message(str): a refusal or hint for the status bar (e.g. why a wire is not allowed).
        open_unit_requested(str): a unit block was double-clicked: show its inside.
        leave_unit_requested(): Escape or Backspace with nothing selected inside a unit: go up a level.
    """

    node_selection_changed = Signal(list)
    status_message = Signal(str)
    open_unit_requested = Signal(str)
    leave_unit_requested = Signal()

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.read_only = False
        # NOTE: while a run is paused, which Undo/Redo may go on ("undo" or "redo" -> "" or why not), locked or not
        self.undo_gate: Callable[[str], str] | None = None
        self.dark = app_is_dark()
        self.colors = canvas_palette(self.dark)
        self.snapping = False  # NOTE: on only while the mouse drags blocks (see NodeItem.itemChange)
        self._nodes: dict[str, NodeItem] = {}
        self._edges: dict[Edge, EdgeItem] = {}
        self._wire: _WireDrag | None = None
        self._selection: list[str] = []
        self._selecting = False
        # NOTE: the router knows every block's rectangle (kept by block_moved and the handlers below);
        # wires that a move may have opened or blocked wait in _dirty until flush_routes.
        self.router = Router()
        self._deferring = False
        self._dirty_edges: set[EdgeItem] = set()
        self._dirty_rects: list[QRectF] = []
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self.flush_routes)
        self.setSceneRect(QRectF(-SCENE_HALF, -SCENE_HALF, 2 * SCENE_HALF, 2 * SCENE_HALF))
        self._attach(document)
        self.selectionChanged.connect(self._on_selection_changed)
        self.rebuild()

    def _attach(self, document) -> None:
        document.graph_event.connect(self._on_graph_event)
        document.analysis_changed.connect(self._on_analysis_changed)
        document.project_replaced.connect(self.rebuild)
        document.select_requested.connect(self.select_nodes)

    def _detach(self, document) -> None:
        document.graph_event.disconnect(self._on_graph_event)
        document.analysis_changed.disconnect(self._on_analysis_changed)
        document.project_replaced.disconnect(self.rebuild)
        document.select_requested.disconnect(self.select_nodes)

    def set_document(self, document) -> None:
        """Show another document: the project's, or an opened unit's (:class:`~designer.canvas.levels.UnitLevel`)."""
        if document is self.document:
            return
        self._detach(self.document)
        self.document = document
        self._attach(document)
        self.rebuild()

    @property
    def in_unit(self) -> bool:
        """Whether the scene shows the inside of a unit rather than the network."""
        return hasattr(self.document, "unit_path")

    # ------------------------------------------------------------------ queries
    @property
    def graph(self):
        return self.document.graph

    def node_item(self, node_id: str) -> NodeItem | None:
        return self._nodes.get(node_id)

    def edge_item(self, edge: Edge) -> EdgeItem | None:
        return self._edges.get(edge)

    def node_items(self) -> list[NodeItem]:
        return list(self._nodes.values())

    def edge_items(self) -> list[EdgeItem]:
        return list(self._edges.values())

    def selected_node_ids(self) -> list[str]:
        chosen = {it.node_id for it in self.selectedItems() if isinstance(it, NodeItem)}
        return [nid for nid in self._nodes if nid in chosen]

    def selected_edges(self) -> list[Edge]:
        return [it.edge for it in self.selectedItems() if isinstance(it, EdgeItem)]

    # ------------------------------------------------------------------ selection
    def select_nodes(self, node_ids: list[str]) -> None:
        """Select exactly these blocks (one ``node_selection_changed``)."""
        self._selecting = True
        try:
            self.clearSelection()
            for nid in node_ids:
                item = self._nodes.get(nid)
                if item is not None:
                    item.setSelected(True)
        finally:
            self._selecting = False
        self._on_selection_changed()

    def select_all(self) -> None:
        self.select_nodes(list(self._nodes))

    def center_on_node(self, node_id: str) -> None:
        item = self._nodes.get(node_id)
        if item is not None:
            for view in self.views():
                view.centerOn(item)

    def _on_selection_changed(self) -> None:
        if self._selecting:
            return
        ids = self.selected_node_ids()
        if ids != self._selection:
            self._selection = ids
            self.node_selection_changed.emit(ids)

    # ------------------------------------------------------------------ appearance
    def set_dark(self, dark: bool) -> None:
        if dark == self.dark:
            return
        self.dark = dark
        self.colors = canvas_palette(dark)
        for item in self._nodes.values():
            item.set_colors(self.colors, dark)
        for edge in self._edges.values():
            edge.set_colors(self.colors)
        for view in self.views():
            view.resetCachedContent()

    def set_read_only(self, read_only: bool) -> None:
        """Lock or unlock editing (training locks the network it trains)."""
        self.read_only = read_only
        if read_only:
            self._cancel_wire()
        for item in self._nodes.values():
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not read_only)

    # ------------------------------------------------------------------ graph events
    def rebuild(self) -> None:
        """Drop every item and draw the current graph anew (a new project was loaded)."""
        self._cancel_wire()
        self._selecting = True
        self._nodes.clear()
        self._edges.clear()
        self._dirty_edges.clear()
        self._dirty_rects.clear()
        self.router = Router()
        self.clear()
        self._selecting = False
        graph = self.graph
        self._deferring = True
        try:
            for nid in graph.nodes:
                self._on_node_added(nid)
            for edge in graph.edges:
                self._on_edge_added(edge)
        finally:
            self._deferring = False
        self.flush_routes()
        self._on_analysis_changed(self.document.analysis)
        self._on_selection_changed()

    # ------------------------------------------------------------------ wire routes
    def block_moved(self, item: NodeItem) -> None:
        """A block moved or changed size: tell the router, re-route its wires, and later the wires near it.

        During a drag its own wires follow at once (one frame's work); the others that its old or new
        place may concern are re-routed when the events are done (:meth:`flush_routes`).
        """
        old = self.router.index.rects.get(item.node_id)
        rect = QRectF(item.pos(), item.rect().size())
        self.router.index.set(item.node_id, (rect.left(), rect.top(), rect.right(), rect.bottom()))
        if old is not None:
            self._dirty_rects.append(QRectF(old[0], old[1], old[2] - old[0], old[3] - old[1]))
        self._dirty_rects.append(rect)
        if self._deferring:
            self._dirty_edges.update(item.edges)
        else:
            for edge in item.edges:
                edge.update_path(self.router)
        self._flush_timer.start()

    def flush_routes(self) -> None:
        """Re-route the wires waiting since blocks moved: theirs, and those whose way a move opened or blocked."""
        self._flush_timer.stop()
        todo, rects = self._dirty_edges, self._dirty_rects
        self._dirty_edges, self._dirty_rects = set(), []
        if rects:
            for edge in self._edges.values():
                if edge not in todo and any(edge.path_touches(r) for r in rects):
                    todo.add(edge)
        for edge in todo:
            if edge.scene() is self:
                edge.update_path(self.router)

    def _on_graph_event(self, event: GraphEvent) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(**event.data)

    def _on_node_added(self, node_id: str) -> None:
        node = self.graph.nodes.get(node_id)
        if node is None or node_id in self._nodes:
            return  # NOTE: added and removed again inside one batch
        item = NodeItem(node, self.colors, self.dark, self.graph.flow)
        if self.read_only:
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, False)
        self._nodes[node_id] = item
        self.addItem(item)
        self._mark_ports(item)
        self.block_moved(item)
        analysis = self.document.analysis
        if node_id in analysis.nodes:
            item.set_analysis(analysis.nodes[node_id], analysis.problems.get(node_id, ()), node_id in analysis.unwired)

    def _on_node_removed(self, node_id: str, node: Node | None = None, edges: list[Edge] = ()) -> None:
        for edge in edges:
            self._on_edge_removed(edge)
        item = self._nodes.pop(node_id, None)
        if item is not None:
            if self._wire is not None and self._wire.anchor.node_item is item:
                self._cancel_wire()
            self._dirty_rects.append(QRectF(item.pos(), item.rect().size()))
            self.router.index.remove(node_id)
            self._flush_timer.start()
            self.removeItem(item)

    def _on_edge_added(self, edge: Edge) -> None:
        src, dst = self._nodes.get(edge.src), self._nodes.get(edge.dst)
        if src is None or dst is None or edge in self._edges or edge not in self.graph.edges:
            return
        item = EdgeItem(edge, src, dst, self.colors)
        item.set_label(src.out_label)
        self._edges[edge] = item
        src.edges.append(item)
        dst.edges.append(item)
        self.addItem(item)
        self.addItem(item.label_item)
        if self._deferring:
            self._dirty_edges.add(item)
            self._flush_timer.start()
        else:
            item.update_path(self.router)
        self._sync_port_marks(src)
        self._sync_port_marks(dst)

    def _on_edge_removed(self, edge: Edge) -> None:
        item = self._edges.pop(edge, None)
        if item is None:
            return
        for end in (item.src_item, item.dst_item):
            if item in end.edges:
                end.edges.remove(item)
            self._sync_port_marks(end)
        self._dirty_edges.discard(item)
        self.removeItem(item.label_item)
        self.removeItem(item)

    def _on_params_changed(self, node_id: str, **_changes) -> None:
        node, item = self.graph.nodes.get(node_id), self._nodes.get(node_id)
        if node is None or item is None:
            return
        item.set_ports(node.input_ports(), len(node.output_ports()))
        item.set_brief(node_brief(node))
        item.set_title(node.spec.title)  # NOTE: a unit block made unique names its own copy of the unit
        self._mark_ports(item)
        self.block_moved(item)  # NOTE: its height and ports may have changed
        self._sync_port_marks(item)

    def _on_node_renamed(self, node_id: str, new: str, **_old) -> None:
        item = self._nodes.get(node_id)
        if item is not None:
            item.set_name(new)

    def _on_node_moved(self, node_id: str, new: tuple[float, float], **_old) -> None:
        item = self._nodes.get(node_id)
        if item is None:
            return
        # NOTE: a layout moves every block: their wires are routed once, when all have moved.
        self._deferring = True
        try:
            if item.pos() != QPointF(*new):
                item.setPos(QPointF(*new))
            else:  # a drag that ended here: the wires its new place concerns wait for the flush
                self.block_moved(item)
        finally:
            self._deferring = False

    def _on_cleared(self) -> None:
        self.rebuild()

    def _on_flow_changed(self, new: str, **_old) -> None:
        self._deferring = True
        try:
            for item in self._nodes.values():
                item.set_flow(new)
                self._mark_ports(item)
                self.block_moved(item)  # NOTE: its ports moved, and its height may have changed
        finally:
            self._deferring = False
        self._dirty_edges.update(self._edges.values())
        self.flush_routes()

    def _mark_ports(self, item: NodeItem) -> None:
        """Inside a unit, label the blocks where the unit's ports enter and leave."""
        if self.in_unit:
            mark_ports(item, self.document.unit)

    def _sync_port_marks(self, item: NodeItem) -> None:
        graph = self.graph
        if item.node_id not in graph.nodes:
            return
        fed = graph.inputs_of(item.node_id)
        for port, edge in zip(item.in_ports, fed):
            port.set_connected(edge is not None)
        used = {e.edge.src_port for e in item.edges if e.edge.src == item.node_id}
        for port in item.out_ports:
            port.set_connected(port.index in used)

    def _on_analysis_changed(self, analysis: Analysis) -> None:
        """Update only the blocks and wires whose numbers or problems changed."""
        nodes, problems, items, unwired = analysis.nodes, analysis.problems, self._nodes, analysis.unwired
        for nid, item in items.items():
            item.set_analysis(nodes.get(nid), problems.get(nid, ()), nid in unwired)
        for edge, item in self._edges.items():
            text = items[edge.src].out_label
            if text != item.label:
                item.set_label(text)

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            port = self._port_at(event.scenePos())
            if port is not None:
                event.accept()
                if self.read_only:
                    self.status_message.emit(LOCKED_MESSAGE)
                else:
                    self._start_wire(port, event.scenePos())
                return
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and not self.read_only:
            self.snapping = True

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            for item in self.items(event.scenePos()):
                if isinstance(item, NodeItem):
                    if self.graph.nodes[item.node_id].unit is not None:
                        event.accept()
                        self.open_unit_requested.emit(item.node_id)
                        return
                    break
        super().mouseDoubleClickEvent(event)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._wire is not None:
            self._drag_wire(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._wire is not None and event.button() == Qt.MouseButton.LeftButton:
            self._finish_wire(event.scenePos())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if self.snapping and event.button() == Qt.MouseButton.LeftButton:
            self.snapping = False
            self._commit_moves()

    def _commit_moves(self) -> None:
        """Record a finished drag as one move command (items are already where the user put them)."""
        graph = self.graph
        moves = {}
        for nid, item in self._nodes.items():
            old = graph.nodes[nid].pos
            new = (item.pos().x(), item.pos().y())
            if new != old:
                moves[nid] = (old, new)
        if moves:
            self.document.push(MoveNodesCommand(self.document, moves))

    # ------------------------------------------------------------------ wiring
    def _port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos):
            if isinstance(item, PortItem):
                return item
            if isinstance(item, NodeItem):
                return None
        return None

    def _target_at(self, pos: QPointF, want_output: bool) -> PortItem | None:
        """The port a wire dropped at ``pos`` would attach to: a port, or the nearest port of a block."""
        for item in self.items(pos):
            if isinstance(item, PortItem):
                return item if item.is_output == want_output else None
            if isinstance(item, NodeItem):
                ports = item.out_ports if want_output else item.in_ports
                if not ports:
                    return None
                return min(ports, key=lambda p: abs(p.scene_center().y() - pos.y()))
        return None

    def _start_wire(self, port: PortItem, pos: QPointF) -> None:
        detached = None
        anchor = port
        if not port.is_output:
            detached = self.graph.edge_into(port.node_id, port.index)
            if detached is not None:
                # NOTE: dragging from a fed input picks up its wire: drop it elsewhere or on nothing.
                anchor = self._nodes[detached.src].out_ports[detached.src_port]
                self._edges[detached].setVisible(False)
        temp = TempWireItem(self.colors)
        self.addItem(temp)
        self._wire = _WireDrag(anchor, temp, detached)
        self._drag_wire(pos)

    def _candidate(self, drag: _WireDrag, target: PortItem) -> Edge:
        a = drag.anchor
        if a.is_output:
            return Edge(a.node_id, a.index, target.node_id, target.index)
        return Edge(target.node_id, target.index, a.node_id, a.index)

    def _refusal(self, drag: _WireDrag, edge: Edge) -> str | None:
        """Why ``edge`` may not be drawn; None when it may (replacing the wire that feeds its input)."""
        if edge == drag.detached:
            return None
        try:
            self.graph.check_connect(edge, self._occupant(drag, edge))
        except GraphError as exc:
            return str(exc)
        return None

    def _occupant(self, drag: _WireDrag, edge: Edge) -> Edge | None:
        """The wire that feeds ``edge``'s input now and that dropping ``edge`` there replaces."""
        feeder = self.graph.edge_into(edge.dst, edge.dst_port)
        return feeder if feeder is not None and feeder != drag.detached else None

    def _drag_wire(self, pos: QPointF) -> None:
        drag = self._wire
        target = self._target_at(pos, want_output=not drag.anchor.is_output)
        if target is not drag.target:
            if drag.target is not None:
                drag.target.set_highlight(None)
            drag.target = target
            if target is not None:
                ok = self._refusal(drag, self._candidate(drag, target)) is None
                target.set_highlight("ok" if ok else "bad")
                drag.temp.set_valid(ok)
            else:
                drag.temp.set_valid(None)
        end = target.scene_center() if target is not None else pos
        start = drag.anchor.scene_center()
        if drag.anchor.is_output:
            drag.temp.set_ends(start, end, self.graph.flow)
        else:
            drag.temp.set_ends(end, start, self.graph.flow)

    def _finish_wire(self, pos: QPointF) -> None:
        drag = self._wire
        target = self._target_at(pos, want_output=not drag.anchor.is_output)
        self._cancel_wire()
        if target is None:
            if drag.detached is not None:
                self.document.push(DisconnectCommand(self.document, drag.detached))
            return
        edge = self._candidate(drag, target)
        if edge == drag.detached:
            return
        reason = self._refusal(drag, edge)
        if reason is not None:
            self.status_message.emit(reason)
            return
        doc, graph = self.document, self.graph
        occupant = self._occupant(drag, edge)
        connect = ConnectCommand(doc, edge.src, edge.src_port, edge.dst, edge.dst_port, replacing=occupant)
        gone = [w for w in (drag.detached, occupant) if w is not None]
        if not gone:
            self.document.push(connect)
            return
        # NOTE: one step: a wire dropped on a fed input takes the place of the one there
        text = (f"Replace the wire into {graph.node(edge.dst).name}" if occupant is not None
                else f"Rewire {graph.node(edge.src).name} → {graph.node(edge.dst).name}")
        self.document.push(MacroCommand(text, [*(DisconnectCommand(doc, w) for w in gone), connect]))
        if occupant is not None:
            self.status_message.emit(f"Replaced the wire from {graph.node(occupant.src).name} (Ctrl+Z puts it back)")

    def _cancel_wire(self) -> None:
        drag, self._wire = self._wire, None
        if drag is None:
            return
        if drag.target is not None:
            drag.target.set_highlight(None)
        self.removeItem(drag.temp)
        if drag.detached is not None and drag.detached in self._edges:
            self._edges[drag.detached].setVisible(True)

    # ------------------------------------------------------------------ tooltips
    def helpEvent(self, event: QGraphicsSceneHelpEvent) -> None:
        """Tooltips are written when asked for, not on every analysis (see NodeItem.tooltip_text)."""
        for item in self.items(event.scenePos()):
            text = item.tooltip_text() if hasattr(item, "tooltip_text") else item.toolTip()
            if text:
                QToolTip.showText(event.screenPos(), as_plain(text), event.widget())  # NOTE: block names
                event.accept()
                return
        QToolTip.hideText()
        event.ignore()

    # ------------------------------------------------------------------ keyboard
    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = self._action_for(event)
        if action is not None:
            event.accept()
            action()
            return
        super().keyPressEvent(event)

    def _action_for(self, event: QKeyEvent):
        key, mods = event.key(), event.modifiers()
        ctrl = mods == Qt.KeyboardModifier.ControlModifier
        if key == Qt.Key.Key_Escape:
            if self._wire is not None:
                return self._cancel_wire
            return self.clearSelection if self.selectedItems() or not self.in_unit else self.leave_unit_requested.emit
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and not ctrl:
            return self.delete_selected
        if event.matches(QKeySequence.StandardKey.Copy):
            return self.copy_selected
        if event.matches(QKeySequence.StandardKey.Cut):
            return self.cut_selected
        if event.matches(QKeySequence.StandardKey.Paste):
            return self.paste
        if ctrl and key == Qt.Key.Key_D:
            return self.duplicate_selected
        if event.matches(QKeySequence.StandardKey.SelectAll):
            return self.select_all
        if event.matches(QKeySequence.StandardKey.Undo):
            return self.undo
        if event.matches(QKeySequence.StandardKey.Redo) or (ctrl and key == Qt.Key.Key_Y):
            return self.redo
        return None

    # ------------------------------------------------------------------ edit actions
    def refuse_if_locked(self) -> bool:
        """Whether editing is locked (a run trains the network); if so, the status bar says why."""
        return self._refuse_if_locked()

    def _refuse_if_locked(self) -> bool:
        if self.read_only:
            self.status_message.emit(LOCKED_MESSAGE)
        return self.read_only

    def undo(self) -> None:
        if self._may_undo("undo"):
            self.document.undo_stack.undo()

    def redo(self) -> None:
        if self._may_undo("redo"):
            self.document.undo_stack.redo()

    def _may_undo(self, which: str) -> bool:
        if self.undo_gate is None:
            return not self._refuse_if_locked()
        why = self.undo_gate(which)
        if why:
            self.status_message.emit(why)
        return not why

    def delete_selected(self) -> None:
        """Delete the selected blocks and wires as one undo step."""
        ids = self.selected_node_ids()
        gone = set(ids)
        wires = [e for e in self.selected_edges() if e.src not in gone and e.dst not in gone]
        if not ids and not wires:
            if self.in_unit:  # NOTE: Backspace with nothing selected leads back up, as in a file browser
                self.leave_unit_requested.emit()
            return
        if self._refuse_if_locked():
            return
        doc = self.document
        if not wires:
            cmd = RemoveNodesCommand(doc, ids)
        elif not ids and len(wires) == 1:
            cmd = DisconnectCommand(doc, wires[0])
        else:
            parts = [f"{len(ids)} block" + ("s" if len(ids) != 1 else "")] if ids else []
            parts += [f"{len(wires)} wire" + ("s" if len(wires) != 1 else "")]
            # NOTE: the wires here touch no deleted block, so RemoveNodesCommand does not record them too.
            steps = [DisconnectCommand(doc, edge) for edge in wires]
            if ids:
                steps.append(RemoveNodesCommand(doc, ids))
            cmd = MacroCommand("Delete " + " and ".join(parts), steps)
        doc.push(cmd)

    def copy_selected(self) -> bool:
        """Copy the selected blocks and the wires between them. Returns whether anything was copied."""
        ids = self.selected_node_ids()
        if not ids:
            self.status_message.emit("Select some blocks to copy")
            return False
        clipboard.copy_blocks(self.graph, ids)
        self.status_message.emit(f"Copied {len(ids)} block" + ("s" if len(ids) != 1 else ""))
        return True

    def cut_selected(self) -> None:
        if not self._refuse_if_locked() and self.copy_selected():
            self.delete_selected()

    def paste(self, at: QPointF | None = None) -> None:
        """Paste the blocks on the clipboard (from this or another document), selected.

        They land centred on ``at`` (scene coordinates), else on the mouse pointer when it is over
        the canvas, else in free room in the middle of the view.
        """
        if self._refuse_if_locked():
            return
        data = clipboard.pasted_blocks()
        if data is None:
            self.status_message.emit("The clipboard holds no blocks to paste")
            return
        at = at if at is not None else self.pointer_pos()
        self._push_copy(data, None, at)

    def duplicate_selected(self) -> None:
        """Copy the selected blocks beside themselves (in free room), without touching the clipboard."""
        if self._refuse_if_locked():
            return
        ids = self.selected_node_ids()
        if not ids:
            self.status_message.emit("Select some blocks to duplicate")
            return
        n = len(ids)
        self._push_copy(graph_to_dict(self.graph, ids), f"Duplicate {n} block" + ("s" if n != 1 else ""), None,
                        beside=True)

    def _push_copy(self, data: dict, text: str | None, at: QPointF | None, beside: bool = False) -> None:
        try:
            cmd = PasteCommand(self.document, data, self._paste_offset(data, at, beside), text=text)
        except GraphError as exc:
            self.status_message.emit(str(exc))
            return
        self.document.push(cmd)

    def _paste_offset(self, data: dict, at: QPointF | None, beside: bool = False) -> tuple[float, float]:
        """How far to move copied blocks: their middle onto ``at``; else into the free room nearest
        the originals (``beside``) or the middle of the view."""
        box = placement.copied_box(data)
        if box is None:
            return (PASTE_STEP, PASTE_STEP)
        if at is not None:
            x = round((at.x() - box.width() / 2) / GRID) * GRID
            y = round((at.y() - box.height() / 2) / GRID) * GRID
        else:
            near = None if beside else self.view_center()
            start = box.topLeft() if near is None else near - QPointF(box.width() / 2, box.height() / 2)
            x, y = self.free_spot(start.x(), start.y(), box.width(), box.height())
        return (x - box.left(), y - box.top())

    # ------------------------------------------------------------------ room for new blocks
    def free_spot(
        self, x: float, y: float, w: float = NodeItem.WIDTH, h: float = NodeItem.MIN_HEIGHT
    ) -> tuple[float, float]:
        """The grid point nearest (x, y) where a ``w``×``h`` box overlaps no block (see designer.canvas.placement)."""
        return placement.free_spot(self, x, y, w, h)

    def view_center(self) -> QPointF | None:
        """The middle of what the first view shows, in scene coordinates (None without a view)."""
        for view in self.views():
            return view.mapToScene(view.viewport().rect().center())
        return None

    def pointer_pos(self) -> QPointF | None:
        """Where the mouse pointer is over a view of this scene, in scene coordinates; None when it is not."""
        for view in self.views():
            at = view.pointer_scene_pos() if hasattr(view, "pointer_scene_pos") else None
            if at is not None:
                return at
        return None

    def insert_command(self, type_id: str, after: str) -> InsertAfterCommand:
        """The step that adds a ``type_id`` block after block ``after``, wired (see designer.canvas.placement)."""
        return placement.insert_command(self, type_id, after)

    def arrange(self, direction: str = "lr", room: tuple[float, float] | None = None) -> None:
        """Lay the graph out automatically (``"lr"`` or ``"tb"``), as one undo step.

        ``room``: the scene area (width, height) to fit it to readably (see ``engine.layout.auto_layout``);
        None: a usual canvas's.
        """
        if self._refuse_if_locked() or not self._nodes:
            return
        graph = self.graph
        # NOTE: a block with many inputs is taller left to right (its ports stack down its side)
        sizes = {nid: item.height_in(direction) for nid, item in self._nodes.items()}
        raw = auto_layout(graph, direction, fit=room or DEFAULT_FIT, sizes=sizes)
        positions = {nid: (round(x / GRID) * GRID, round(y / GRID) * GRID) for nid, (x, y) in raw.items()}
        if graph.flow == direction and all(graph.nodes[nid].pos == pos for nid, pos in positions.items()):
            return
        text = "Arrange left to right" if direction == "lr" else "Arrange top to bottom"
        self.document.push(ApplyLayoutCommand(self.document, positions, text=text, flow=direction))
        self.flush_routes()


"""Undo commands: every gesture on the network is one of these.

Each command stores ids and old/new values and calls :class:`~engine.graph.Graph`
methods only; the canvas redraws from the graph's events. A command checks its
edit when it is constructed and raises :class:`~engine.errors.GraphError` with the
engine's reason if the edit is not allowed, so a caller can show the reason and
push nothing::

    try:
        cmd = ConnectCommand(doc, a, 0, b, 0)
    except GraphError as exc:
        show(str(exc))
    else:
        doc.push(cmd)

Several commands form one undo step with :class:`MacroCommand`. (Do not build a step
from Python commands given a ``parent``: PySide does not keep such a child's Python
object alive, and pushing the parent crashed in testing.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QUndoCommand

from designer.training.commands import SetConfigCommand
from engine import graphrules, units
from engine.analysis import Fix
from engine.errors import GraphError
from engine.graph import UNIT_TYPE, Edge, Node
from engine.graph import check_name
from engine.layers import registry
from engine.layout import DEFAULT_SPACING

if TYPE_CHECKING:  # pragma: no cover
    from designer.document import Document

Pos = tuple[float, float]

__all__ = [
    "AddAfterCommand",
    "AddNodeCommand",
    "ApplyLayoutCommand",
    "ConnectCommand",
    "DisconnectCommand",
    "InsertAfterCommand",
    "MacroCommand",
    "MoveNodesCommand",
    "PasteCommand",
    "RemoveNodesCommand",
    "RenameCommand",
    "ReplaceGraphCommand",
    "SetParamsCommand",
    "fix_command",
    "format_value",
    "group_command",
    "make_unique_command",
    "repeat_command",
    "ungroup_command",
]


class MacroCommand(QUndoCommand):
    """Several commands as one undo step: redo runs them in order, undo in reverse."""

    def __init__(self, text: str, commands: list[QUndoCommand]) -> None:
        super().__init__(text)
        self.commands = list(commands)

    def redo(self) -> None:
        for cmd in self.commands:
            cmd.redo()

    def undo(self) -> None:
        for cmd in reversed(self.commands):
            cmd.undo()


class AddNodeCommand(QUndoCommand):
    """Add one block. ``node_id`` is known after the first redo and reused by later ones."""

    def __init__(
        self,
        doc: Document,
        type_id: str,
        pos: Pos,
        params: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        spec = registry.get(type_id)
        spec.resolve_params(params or {})  # raises with the reason
        if name is not None:
            name = doc.graph.check_rename(None, name)
        super().__init__(f"Add {spec.title}")
        self.doc = doc
        self.type_id = type_id
        self.pos = (float(pos[0]), float(pos[1]))
        self.params = dict(params or {})
        self.name = name
        self.node_id: str | None = None

    def redo(self) -> None:
        node = self.doc.graph.add_node(
            self.type_id, self.params, name=self.name, pos=self.pos, node_id=self.node_id
        )
        self.node_id, self.name = node.id, node.name

    def undo(self) -> None:
        self.doc.graph.remove_node(self.node_id)


class AddAfterCommand(QUndoCommand):
    """Add one block wired to the first output of another (a fix's "add a Class output after fc3").

    It goes one step along the drawing's flow from that block, or at ``pos`` when given.
    """

    def __init__(self, doc: Document, type_id: str, after: str, pos: Pos | None = None) -> None:
        spec = registry.get(type_id)
        source = doc.graph.node(after)
        if not source.spec.output_ports(source.params) or not spec.input_ports(spec.resolve_params({})):
            raise GraphError(f"{spec.title} cannot be wired after '{source.name}'")
        if pos is None:
            x, y = source.pos
            pos = (x + DEFAULT_SPACING[0], y) if doc.graph.flow == "lr" else (x, y + DEFAULT_SPACING[1])
        super().__init__(f"Add {spec.title} after {source.name}")
        self.doc = doc
        self.type_id = type_id
        self.after = after
        self.pos = _pos(pos)
        self.node_id: str | None = None
        self.name: str | None = None

    def redo(self) -> None:
        graph = self.doc.graph
        with graph.batch():
            node = graph.add_node(self.type_id, {}, name=self.name, pos=self.pos, node_id=self.node_id)
            graph.connect(self.after, 0, node.id, 0)
        self.node_id, self.name = node.id, node.name

    def undo(self) -> None:
        self.doc.graph.remove_node(self.node_id)


class InsertAfterCommand(QUndoCommand):
    """Add one block wired after another (a palette double-click with a block selected), as one step.

    The new block takes ``after``'s first output. With ``splice``, the one wire that leaves
    ``after``, it goes into that wire instead (``after`` → new → what ``after`` fed), and
    ``moves`` ({id: (old, new)}) shifts the blocks downstream to make room for it.
    """

    def __init__(
        self,
        doc: Document,
        type_id: str,
        after: str,
        pos: Pos,
        splice: Edge | None = None,
        moves: dict[str, tuple[Pos, Pos]] | None = None,
    ) -> None:
        spec = registry.get(type_id)
        graph = doc.graph
        source = graph.node(after)
        params = spec.resolve_params({})
        if not source.spec.output_ports(source.params) or not spec.input_ports(params):
            raise GraphError(f"{spec.title} cannot be wired after '{source.name}'")
        if splice is not None and (splice.src != after or splice not in graph.edges or not spec.output_ports(params)):
            raise GraphError(f"{spec.title} cannot go into the wire after '{source.name}'")
        super().__init__(f"Insert {spec.title} after {source.name}")
        self.doc = doc
        self.type_id = type_id
        self.after = after
        self.pos = _pos(pos)
        self.splice = splice
        self.moves = {nid: (_pos(old), _pos(new)) for nid, (old, new) in (moves or {}).items()}
        self.node_id: str | None = None
        self.name: str | None = None

    def redo(self) -> None:
        graph, cut = self.doc.graph, self.splice
        with graph.batch():
            if cut is not None:
                graph.disconnect(cut)
            node = graph.add_node(self.type_id, {}, name=self.name, pos=self.pos, node_id=self.node_id)
            graph.connect(self.after, cut.src_port if cut is not None else 0, node.id, 0)
            if cut is not None:
                graph.connect(node.id, 0, cut.dst, cut.dst_port)
            for nid, (_old, new) in self.moves.items():
                graph.move(nid, new)
        self.node_id, self.name = node.id, node.name

    def undo(self) -> None:
        graph, cut = self.doc.graph, self.splice
        with graph.batch():
            graph.remove_node(self.node_id)
            if cut is not None:
                graph.connect(cut.src, cut.src_port, cut.dst, cut.dst_port)
            for nid, (old, _new) in self.moves.items():
                graph.move(nid, old)


class RemoveNodesCommand(QUndoCommand):
    """Delete blocks and every wire touching them; undo restores them exactly."""

    def __init__(self, doc: Document, node_ids: list[str]) -> None:
        graph = doc.graph
        wanted = set(node_ids)
        ids = [nid for nid in graph.nodes if nid in wanted]
        missing = wanted - set(ids)
        if missing:
            raise GraphError(f"there is no block with id {sorted(missing)[0]!r}")
        if not ids:
            raise GraphError("nothing is selected to delete")
        self.nodes: list[Node] = [_copy_node(graph.nodes[nid]) for nid in ids]
        gone = set(ids)
        self.edges: list[Edge] = [e for e in graph.edges if e.src in gone or e.dst in gone]
        text = f"Delete {self.nodes[0].name}" if len(ids) == 1 else f"Delete {len(ids)} blocks"
        super().__init__(text)
        self.doc = doc

    def redo(self) -> None:
        graph = self.doc.graph
        with graph.batch():
            for node in self.nodes:
                graph.remove_node(node.id)

    def undo(self) -> None:
        graph = self.doc.graph
        with graph.batch():
            for n in self.nodes:
                graph.add_node(n.type, n.params, name=n.name, pos=n.pos, node_id=n.id)
            for e in self.edges:
                graph.connect(e.src, e.src_port, e.dst, e.dst_port)


class ConnectCommand(QUndoCommand):
    """Wire an output port to an input port.

    ``replacing`` is the wire that feeds that input now, when a command before this one in the
    same step takes it away (dropping a wire on a fed input replaces its wire).
    """

    def __init__(
        self, doc: Document, src: str, src_port: int, dst: str, dst_port: int, replacing: Edge | None = None
    ) -> None:
        graph = doc.graph
        self.edge = Edge(src, int(src_port), dst, int(dst_port))
        graph.check_connect(self.edge, replacing)
        super().__init__(f"Connect {graph.node(src).name} → {graph.node(dst).name}")
        self.doc = doc

    def redo(self) -> None:
        e = self.edge
        self.doc.graph.connect(e.src, e.src_port, e.dst, e.dst_port)

    def undo(self) -> None:
        self.doc.graph.disconnect(self.edge)


class DisconnectCommand(QUndoCommand):
    """Remove one wire."""

    def __init__(self, doc: Document, edge: Edge) -> None:
        graph = doc.graph
        if edge not in graph.edges:
            raise GraphError("that wire does not exist")
        super().__init__(f"Disconnect {graph.node(edge.src).name} → {graph.node(edge.dst).name}")
        self.doc = doc
        self.edge = edge

    def redo(self) -> None:
        self.doc.graph.disconnect(self.edge)

    def undo(self) -> None:
        e = self.edge
        self.doc.graph.connect(e.src, e.src_port, e.dst, e.dst_port)


class SetParamsCommand(QUndoCommand):
    """Apply the same parameter change to one or several blocks."""

    def __init__(self, doc: Document, node_ids: list[str], changes: dict[str, Any]) -> None:
        graph = doc.graph
        if not changes:
            raise GraphError("no parameter to change")
        self.old: dict[str, dict[str, Any]] = {}
        self.new: dict[str, dict[str, Any]] = {}
        for nid in node_ids:
            node = graph.node(nid)
            full = graph.check_params(nid, changes)
            self.old[nid] = {k: node.params[k] for k in changes}
            self.new[nid] = {k: full[k] for k in changes}
        if not self.new:
            raise GraphError("no block to change")
        first = next(iter(self.new.values()))
        what = ", ".join(f"{k} = {format_value(v)}" for k, v in first.items())
        names = graph.node(node_ids[0]).name if len(node_ids) == 1 else f"{len(node_ids)} blocks"
        super().__init__(f"Set {what} on {names}")
        self.doc = doc

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)

    def _apply(self, values: dict[str, dict[str, Any]]) -> None:
        _edit_each(self.doc.graph, values, self.doc.graph.set_params)


class RenameCommand(QUndoCommand):
    """Give a block another display name."""

    def __init__(self, doc: Document, node_id: str, name: str) -> None:
        node = doc.graph.node(node_id)
        name = doc.graph.check_rename(node_id, name)
        super().__init__(f"Rename {node.name} → {name}")
        self.doc = doc
        self.node_id = node_id
        self.old_name, self.new_name = node.name, name

    def redo(self) -> None:
        self.doc.graph.rename(self.node_id, self.new_name)

    def undo(self) -> None:
        self.doc.graph.rename(self.node_id, self.old_name)


class MoveNodesCommand(QUndoCommand):
    """Move blocks: ``{id: (old_pos, new_pos)}``. A whole drag is one command."""

    def __init__(self, doc: Document, moves: dict[str, tuple[Pos, Pos]]) -> None:
        graph = doc.graph
        for nid in moves:
            graph.node(nid)
        if not moves:
            raise GraphError("nothing to move")
        self.moves = {nid: (_pos(old), _pos(new)) for nid, (old, new) in moves.items()}
        text = f"Move {graph.node(next(iter(moves))).name}" if len(moves) == 1 else f"Move {len(moves)} blocks"
        super().__init__(text)
        self.doc = doc

    def redo(self) -> None:
        _move_all(self.doc, {nid: new for nid, (_, new) in self.moves.items()})

    def undo(self) -> None:
        _move_all(self.doc, {nid: old for nid, (old, _) in self.moves.items()})


class ApplyLayoutCommand(QUndoCommand):
    """Move blocks to computed positions (``{id: (x, y)}``), e.g. from auto-layout; with ``flow``,
    also turn the drawing that way (``"lr"`` or ``"tb"``, ports and wires follow)."""

    def __init__(
        self, doc: Document, positions: dict[str, Pos], text: str = "Arrange blocks", flow: str | None = None
    ) -> None:
        graph = doc.graph
        self.new = {nid: _pos(p) for nid, p in positions.items()}
        self.old = {nid: graph.node(nid).pos for nid in self.new}
        self.new_flow, self.old_flow = flow or graph.flow, graph.flow
        super().__init__(text)
        self.doc = doc

    def redo(self) -> None:
        self._apply(self.new, self.new_flow)

    def undo(self) -> None:
        self._apply(self.old, self.old_flow)

    def _apply(self, positions: dict[str, Pos], flow: str) -> None:
        with self.doc.graph.batch():
            self.doc.graph.set_flow(flow)
            _move_all(self.doc, positions)


class PasteCommand(QUndoCommand):
    """Add copies of the blocks in ``graph_dict`` with fresh ids and unique names.

    ``graph_dict`` is the engine's ``graph_to_dict`` form. Wires between copied
    blocks are kept; wires to blocks outside the copy are dropped. The new blocks
    are moved by ``offset`` and selected.
    """

    def __init__(
        self,
        doc: Document,
        graph_dict: dict[str, Any],
        offset: Pos = (0.0, 0.0),
        text: str | None = None,
    ) -> None:
        self.items = _read_nodes(graph_dict, doc.graph.units)
        known = {item["id"] for item in self.items}
        self.wires = [w for w in _read_edges(graph_dict) if w[0] in known and w[2] in known]
        _check_wires(self.items, self.wires)
        n = len(self.items)
        super().__init__(text or (f"Paste {n} block" + ("s" if n != 1 else "")))
        self.doc = doc
        self.offset = _pos(offset)
        self.new_ids: dict[str, str] = {}  # copied id -> id in this graph, fixed by the first redo
        self.new_names: dict[str, str] = {}

    def redo(self) -> None:
        graph = self.doc.graph
        dx, dy = self.offset
        with graph.batch():
            for item in self.items:
                old = item["id"]
                name = self.new_names.get(old) or graph.unique_name(item["name"])
                node = graph.add_node(
                    item["type"],
                    item["params"],
                    name=name,
                    pos=(item["pos"][0] + dx, item["pos"][1] + dy),
                    node_id=self.new_ids.get(old),
                )
                self.new_ids[old], self.new_names[old] = node.id, node.name
            for src, sp, dst, dp in self.wires:
                graph.connect(self.new_ids[src], sp, self.new_ids[dst], dp)
        self.doc.request_selection(list(self.new_ids.values()))

    def undo(self) -> None:
        graph = self.doc.graph
        with graph.batch():
            for nid in self.new_ids.values():
                graph.remove_node(nid)


# ---------------------------------------------------------------------- units
class ReplaceGraphCommand(QUndoCommand):
    """A restructuring edit (group, ungroup, repeat, make unique, a unit's inside changed) kept as the
    graph before and after it: redo and undo hand either to :meth:`Graph.assign`, which announces the
    difference as ordinary events. ``select`` names the blocks to select after redo."""

    def __init__(self, doc: Document, text: str, after, select: list[str] = (), before=None) -> None:
        super().__init__(text)
        self.doc = doc
        self.before = before if before is not None else doc.graph.copy()
        self.after = after
        self.select = list(select)

    @property
    def node_id(self) -> str | None:
        """The first block selected after redo: the new block, when the edit adds one."""
        return self.select[0] if self.select else None

    def redo(self) -> None:
        self.doc.graph.assign(self.after)
        if self.select:
            self.doc.request_selection(self.select)

    def undo(self) -> None:
        self.doc.graph.assign(self.before)


def group_command(doc: Document, node_ids: list[str], name: str) -> ReplaceGraphCommand:
    """The step that replaces ``node_ids`` by one block of a new unit ``name`` (the engine's refusal raises)."""
    new, uid = units.group(doc.graph, node_ids, name)
    n = len(node_ids)
    return ReplaceGraphCommand(doc, f"Group {n} block{'s' if n != 1 else ''} as {new.nodes[uid].unit.name}", new, [uid])


def ungroup_command(doc: Document, unit_id: str) -> ReplaceGraphCommand:
    """The step that puts unit block ``unit_id``'s blocks in its place."""
    name = doc.graph.node(unit_id).name
    new, ids = units.ungroup(doc.graph, unit_id)
    return ReplaceGraphCommand(doc, f"Ungroup {name}", new, ids)


def repeat_command(doc: Document, unit_id: str, n: int) -> ReplaceGraphCommand:
    """The step that follows unit block ``unit_id`` by ``n − 1`` more uses of its unit, chained."""
    name = doc.graph.node(unit_id).name
    new, chain = units.repeat(doc.graph, unit_id, n)
    return ReplaceGraphCommand(doc, f"Repeat {name} ×{n}", new, chain)


def make_unique_command(doc: Document, unit_id: str) -> ReplaceGraphCommand:
    """The step that gives unit block ``unit_id`` its own copy of its unit, so edits to it change no other use."""
    name = doc.graph.node(unit_id).name
    new, _copy = units.make_unique(doc.graph, unit_id)
    return ReplaceGraphCommand(doc, f"Make {name} unique", new, [unit_id])


# ---------------------------------------------------------------------- fixes
def fix_command(doc: Document, fix: Fix) -> QUndoCommand:
    """One undo step that applies ``fix`` (from a Problem) to the document.

    Raises :class:`~engine.errors.GraphError` or :class:`~engine.errors.ProjectError` with the
    reason when the fix no longer applies (the network changed since it was found).
    """
    graph = doc.graph
    gone = {nid: graph.node(nid).pos for nid in fix.remove}
    commands: list[QUndoCommand] = [RemoveNodesCommand(doc, list(fix.remove))] if fix.remove else []
    commands += [SetParamsCommand(doc, [nid], dict(changes)) for nid, changes in fix.set_params]
    for type_id, after in fix.add:
        # NOTE: a replacement takes the place of the block it replaces, if that one hung off ``after``.
        spot = next((gone[e.dst] for e in graph.edges_from(after) if e.dst in gone), None)
        commands.append(AddAfterCommand(doc, type_id, after, spot))
    if fix.set_data:
        commands.append(SetConfigCommand(doc, "data", dict(fix.set_data), fix.label))
    if not commands:
        raise GraphError("the fix has nothing to do")
    return MacroCommand(fix.label, commands)


# ---------------------------------------------------------------------- helpers
def format_value(value: Any) -> str:
    """A parameter value as a person would type it: ``32``, ``same``, ``0.5``, ``16×4×4``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "×".join(str(v) for v in value)
    return str(value)


def _copy_node(node: Node) -> Node:
    return Node(node.id, node.type, node.name, dict(node.params), node.pos)


def _pos(p: Any) -> Pos:
    return (float(p[0]), float(p[1]))


def _move_all(doc: Document, positions: dict[str, Pos]) -> None:
    _edit_each(doc.graph, positions, doc.graph.move)


def _edit_each(graph, values: dict[str, Any], edit) -> None:
    """``edit(node_id, value)`` for each block, atomically; a single edit skips batch()'s snapshot."""
    if len(values) == 1:
        edit(*next(iter(values.items())))
        return
    with graph.batch():
        for nid, value in values.items():
            edit(nid, value)


def _read_nodes(data: dict[str, Any], units: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The ``nodes`` of a graph dict, checked enough that redo cannot fail half way.

    A copied unit block pastes as another use of the graph's unit of that name (``units``).
    """
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise GraphError("the clipboard does not hold Net Designer blocks")
    out = []
    for raw in data["nodes"]:
        try:
            spec = _spec_of(raw, units or {})
            params = spec.resolve_params(dict(raw.get("params") or {}))
            pos = _pos(raw.get("pos") or (0.0, 0.0))
            item = {"id": str(raw["id"]), "type": raw["type"], "params": params, "pos": pos, "spec": spec}
            item["name"] = check_name(raw.get("name") or spec.default_name)
        except (KeyError, TypeError, IndexError) as exc:
            raise GraphError(f"a copied block is malformed ({exc})") from None
        out.append(item)
    if not out:
        raise GraphError("there are no blocks to paste")
    return out


def _check_wires(items: list[dict[str, Any]], wires: list[tuple[str, int, str, int]]) -> None:
    """Refuse what Graph.connect would refuse during redo: wires to ports the copied blocks do
    not have, two wires into one port, a block wired into itself, wires that form a loop."""
    by_id = {item["id"]: item for item in items}

    def ports(nid: str) -> tuple[int, int]:
        spec, params = by_id[nid]["spec"], by_id[nid]["params"]
        return len(spec.output_ports(params)), len(spec.input_ports(params))

    if graphrules.check_wires(list(by_id), wires, ports) is not None:
        raise GraphError("a copied wire does not fit its blocks")


def _spec_of(raw: dict[str, Any], units: dict[str, Any]) -> registry.LayerSpec:
    """The declaration of a copied block: its layer type's, or for a unit block its unit's in ``units``."""
    if raw["type"] != UNIT_TYPE:
        return registry.get(raw["type"])
    name = (raw.get("params") or {}).get("unit")
    if name not in units:
        raise GraphError(f"the copied unit {name!r} is not in this network: save it to your library and drop it "
                         "from the palette")
    return units[name].spec


def _read_edges(data: dict[str, Any]) -> list[tuple[str, int, str, int]]:
    out = []
    for raw in data.get("edges") or []:
        try:
            (src, sp), (dst, dp) = raw["from"], raw["to"]
            out.append((str(src), int(sp), str(dst), int(dp)))
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphError(f"a copied wire is malformed ({exc})") from None
    return out

"""The graph document: the network a person draws, as plain data.

A :class:`Graph` holds nodes (one per layer block) and edges (from an output port
of one node to an input port of another). Every mutation goes through a method
that validates first, then changes the document, then announces exactly one
:class:`GraphEvent` to its listeners. The canvas, undo commands, file loading
and scripted edits all use these methods, so they all draw through one path.

Edges are stored once, in the graph, with a reverse index from each input port
to the edge that feeds it (the ryvencore habit).

A block may stand for a unit (a named sub-network, :mod:`engine.units`); the graph holds each
definition once (:attr:`Graph.units`). Edits that restructure the graph (group, ungroup) are pure
functions returning a new graph, which :meth:`Graph.assign` makes this one's content, announcing
the difference as ordinary events, so an undo command keeps both versions and assigns either.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from engine import graphrules
from engine.errors import GraphError, ParamError
from engine.layers import registry

if TYPE_CHECKING:  # pragma: no cover
    from engine.units import UnitDef

__all__ = ["FLOWS", "UNIT_TYPE", "Edge", "Graph", "GraphError", "GraphEvent", "Node"]

#: the type of a block that stands for a unit (a named sub-network, :mod:`engine.units`);
#: its one param ``unit`` names the definition, which the graph holds once (:attr:`Graph.units`)
UNIT_TYPE = "Unit"

#: which way a drawing of the graph runs: inputs on the left, wires rightwards; or top to bottom
FLOWS = {"lr": "left to right", "tb": "top to bottom"}


@dataclass
class Node:
    """One layer block: a stable id, its layer type, a display name, params, position."""

    id: str
    type: str
    name: str
    params: dict[str, Any]
    pos: tuple[float, float] = (0.0, 0.0)
    #: the definition a unit block stands for (set by the graph from ``params["unit"]``); None for a layer
    unit: UnitDef | None = field(default=None, compare=False, repr=False)

    @property
    def spec(self) -> registry.LayerSpec:
        if self.unit is not None:
            return self.unit.spec
        return registry.get(self.type)

    def input_ports(self) -> list[str]:
        return self.spec.input_ports(self.params)

    def output_ports(self) -> list[str]:
        return self.spec.output_ports(self.params)


@dataclass(frozen=True)
class Edge:
    """A wire from output port ``src_port`` of ``src`` to input port ``dst_port`` of ``dst``."""

    src: str
    src_port: int
    dst: str
    dst_port: int


@dataclass(frozen=True)
class GraphEvent:
    """What changed. ``kind`` is past tense; ``data`` names ids and old/new values."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[GraphEvent], None]

_NAME_RE = re.compile(r"\S")
MAX_NAME_LENGTH = 80


class Graph:
    """The network document. Mutate it only through its methods."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._edges: list[Edge] = []
        self._edge_into: dict[tuple[str, int], Edge] = {}
        self._edges_out: dict[str, list[Edge]] = {}
        self._names: dict[str, str] = {}  # display name -> node id
        self._next_id = 1
        self._flow = "lr"
        self._units: dict[str, UnitDef] = {}
        self._listeners: list[Listener] = []
        self._pending: list[GraphEvent] | None = None

    # ------------------------------------------------------------------ queries
    @property
    def nodes(self) -> dict[str, Node]:
        """Nodes by id, in insertion order. Treat as read-only."""
        return self._nodes

    @property
    def edges(self) -> list[Edge]:
        """All edges. Treat as read-only."""
        return list(self._edges)

    @property
    def flow(self) -> str:
        """Which way the drawing runs (a key of :data:`FLOWS`); only views read it."""
        return self._flow

    @property
    def units(self) -> dict[str, UnitDef]:
        """The unit definitions this graph's unit blocks may name, by name. Treat as read-only."""
        return self._units

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise GraphError(f"there is no block with id {node_id!r}") from None

    def edge_into(self, node_id: str, port: int) -> Edge | None:
        """The edge feeding input ``port`` of ``node_id``, if any."""
        return self._edge_into.get((node_id, port))

    def inputs_of(self, node_id: str) -> list[Edge | None]:
        """One entry per input port of the node: the feeding edge or None."""
        n = self.node(node_id)
        return [self._edge_into.get((node_id, i)) for i in range(len(n.input_ports()))]

    def edges_from(self, node_id: str) -> list[Edge]:
        return list(self._edges_out.get(node_id, ()))

    def edges_of(self, node_id: str) -> list[Edge]:
        return [e for e in self._edges if node_id in (e.src, e.dst)]

    def successors(self, node_id: str) -> list[str]:
        return [e.dst for e in self._edges_out.get(node_id, ())]

    def predecessors(self, node_id: str) -> list[str]:
        return [e.src for e in self._edges if e.dst == node_id]

    def topological_order(self) -> list[str]:
        """Node ids so that every edge goes forward; ties in the order blocks became ready."""
        walk = self.walk()
        if walk.blocked:
            # NOTE: connect() refuses cycles, so only a hand-built document gets here.
            raise GraphError("the network contains a cycle")
        return walk.order

    def walk(self, depth_first: bool = False) -> graphrules.Walk[str]:
        """The blocks in :meth:`topological_order` (or, ``depth_first``, each branch of a fork to its
        merge before the next), and apart those on or after a loop."""
        edges = [(e.src, e.dst) for e in self._edges]
        return graphrules.topological_walk(list(self._nodes), edges, depth_first=depth_first)

    def unique_name(self, base: str) -> str:
        """``base`` if no block has that name yet, else ``base`` with the next free number."""
        taken = self._names
        if base not in taken:
            return base
        stem = base.rstrip("0123456789") or base
        i = 1
        while f"{stem}{i}" in taken:
            i += 1
        return f"{stem}{i}"

    def __len__(self) -> int:
        return len(self._nodes)

    # ------------------------------------------------------------------ events
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _announce(self, kind: str, **data: Any) -> None:
        event = GraphEvent(kind, data)
        if self._pending is not None:
            self._pending.append(event)
            return
        for listener in list(self._listeners):
            listener(event)

    @contextlib.contextmanager
    def batch(self) -> Iterator["Graph"]:
        """Apply several edits atomically.

        If any edit inside the block raises, the document is restored to its state
        before the block and no event is announced. Otherwise the events of the
        edits are announced in order when the block ends.
        """
        if self._pending is not None:  # nested batch: the outer one decides
            yield self
            return
        saved = self._snapshot()
        self._pending = []
        try:
            yield self
        except BaseException:
            self._restore(saved)
            self._pending = None
            raise
        events, self._pending = self._pending, None
        for event in events:
            for listener in list(self._listeners):
                listener(event)

    def _snapshot(self) -> tuple:
        # NOTE: param values are immutable (numbers, strings, tuples) and set_params
        # replaces the dict, so a shallow copy of each node's fields is enough.
        state = {nid: (n.type, n.name, dict(n.params), n.pos, n.unit) for nid, n in self._nodes.items()}
        return (dict(self._nodes), state, list(self._edges), self._next_id, self._flow, dict(self._units))

    def _restore(self, saved: tuple) -> None:
        """Put back a snapshot, keeping the same Node objects (views may hold them)."""
        nodes, state, edges, self._next_id, self._flow, self._units = saved
        for nid, node in nodes.items():
            node.type, node.name, node.params, node.pos, node.unit = state[nid]
        self._nodes.clear()
        self._nodes.update(nodes)
        self._edges[:] = edges
        self._reindex()

    def _reindex(self) -> None:
        self._edge_into = {(e.dst, e.dst_port): e for e in self._edges}
        self._edges_out = {}
        for e in self._edges:
            self._edges_out.setdefault(e.src, []).append(e)
        self._names = {n.name: nid for nid, n in self._nodes.items()}

    def install_edges(self, edges: list[Edge]) -> None:
        """Replace every wire with ``edges``, which the caller has already checked (loading).

        No event is announced and nothing is checked. Proving "no loop" once per wire
        through :meth:`connect` is quadratic for a long chain; a loader checks all wires
        in one pass instead and then calls this.
        """
        self._edges[:] = edges
        self._reindex()

    # ------------------------------------------------------------------ edits
    def add_node(
        self,
        type_id: str,
        params: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        pos: tuple[float, float] = (0.0, 0.0),
        node_id: str | None = None,
    ) -> Node:
        """Add a block of ``type_id``. Unknown params or invalid values are refused.

        A unit block is ``add_node(UNIT_TYPE, {"unit": name})``, naming one of :attr:`units`.
        """
        unit = self._unit_named((params or {}).get("unit")) if type_id == UNIT_TYPE else None
        spec = unit.spec if unit is not None else registry.get(type_id)
        try:
            full = spec.resolve_params(params or {})
        except ParamError as exc:
            raise _named(exc, spec.title, spec.title) from None
        if name is None:
            name = self.unique_name(spec.default_name)
        else:
            name = check_name(name)
            self._check_name_free(name)
        xy = _check_pos(pos, name)
        if node_id is None:
            node_id = self._fresh_id()
        elif not isinstance(node_id, str) or not node_id.strip():
            raise GraphError(f"a block id must be non-empty text, not {node_id!r}")
        elif node_id in self._nodes:
            raise GraphError(f"a block with id {node_id!r} already exists")
        else:
            self._bump_id_past(node_id)
        node = Node(node_id, type_id, name, full, xy, unit)
        self._nodes[node_id] = node
        self._names[name] = node_id
        self._announce("node_added", node_id=node_id)
        return node

    def remove_node(self, node_id: str) -> None:
        """Remove a block and every wire touching it (one event lists the removed wires)."""
        node = self.node(node_id)
        removed = self.edges_of(node_id)
        for e in removed:
            self._drop_edge(e)
        del self._nodes[node_id]
        self._names.pop(node.name, None)
        self._announce("node_removed", node_id=node_id, node=node, edges=removed)

    def connect(self, src: str, src_port: int, dst: str, dst_port: int) -> Edge:
        """Wire output ``src_port`` of ``src`` to input ``dst_port`` of ``dst``."""
        edge = Edge(src, int(src_port), dst, int(dst_port))
        self.check_connect(edge)
        self._edges.append(edge)
        self._edge_into[(dst, edge.dst_port)] = edge
        self._edges_out.setdefault(edge.src, []).append(edge)
        self._announce("edge_added", edge=edge)
        return edge

    def check_connect(self, edge: Edge, replacing: Edge | None = None) -> None:
        """Raise :class:`GraphError` saying why ``edge`` may not be added (once ``replacing``, the wire
        that now feeds the same input, is taken away)."""
        a, b = self.node(edge.src), self.node(edge.dst)
        feeder = self._edge_into.get((edge.dst, edge.dst_port))
        fault = graphrules.wire_fault(
            (edge.src, edge.src_port, edge.dst, edge.dst_port),
            outputs=len(a.output_ports()),
            inputs=len(b.input_ports()),
            feeder=None if feeder is not None and feeder == replacing else feeder,
            closes_loop=lambda: graphrules.reaches(edge.dst, edge.src, self.successors),
        )
        if fault is not None:
            raise GraphError(_refusal(fault, a, b, edge, self._nodes))

    def disconnect(self, edge: Edge) -> None:
        if edge not in self._edges:
            raise GraphError("that wire does not exist")
        self._drop_edge(edge)
        self._announce("edge_removed", edge=edge)

    def check_params(self, node_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The block's params with ``changes`` applied and validated; raises saying why not."""
        node = self.node(node_id)
        spec = node.spec
        new = dict(node.params)
        try:
            for key, value in changes.items():
                new[key] = spec.param(key).validate(value)
        except ParamError as exc:
            raise _named(exc, f"'{node.name}' ({spec.title})", spec.title) from None
        n_in = len(spec.input_ports(new))
        cut = [e for e in self.inputs_of(node_id)[n_in:] if e is not None]
        if cut:
            raise GraphError(
                f"'{node.name}' would lose input {_port_label(node, cut[0].dst_port)}, which is "
                "wired: disconnect it first"
            )
        return new

    def set_params(self, node_id: str, changes: dict[str, Any]) -> None:
        """Change some params of a block; every value is validated against its declaration."""
        new = self.check_params(node_id, changes)
        node = self._nodes[node_id]
        old = {k: node.params[k] for k in changes}
        node.params = new
        self._announce("params_changed", node_id=node_id, old=old, new={k: new[k] for k in changes})

    def check_rename(self, node_id: str | None, name: Any) -> str:
        """``name`` cleaned up, if block ``node_id`` (None: a new block) may take it; else raises."""
        name = check_name(name)
        self._check_name_free(name, node_id)
        return name

    def rename(self, node_id: str, name: str) -> None:
        node = self.node(node_id)
        name = self.check_rename(node_id, name)
        old, node.name = node.name, name
        self._names.pop(old, None)
        self._names[name] = node_id
        self._announce("node_renamed", node_id=node_id, old=old, new=name)

    def move(self, node_id: str, pos: tuple[float, float]) -> None:
        node = self.node(node_id)
        new = _check_pos(pos, node.name)
        old, node.pos = node.pos, new
        self._announce("node_moved", node_id=node_id, old=old, new=node.pos)

    def set_flow(self, flow: str) -> None:
        """Draw the graph ``"lr"`` (left to right) or ``"tb"`` (top to bottom)."""
        if flow not in FLOWS:
            raise GraphError(f"a drawing runs {' or '.join(map(repr, FLOWS))}, not {flow!r}")
        if flow != self._flow:
            old, self._flow = self._flow, flow
            self._announce("flow_changed", old=old, new=flow)

    def define_unit(self, definition: UnitDef) -> None:
        """Make a unit definition available to this graph's unit blocks (one ``unit_defined`` event).

        NOTE: a definition is a value: it is never changed once made, so graphs may share it.
        Defining the same object again does nothing; another definition of a taken name is refused.
        """
        old = self._units.get(definition.name)
        if old is definition:
            return
        if old is not None:
            raise GraphError(f"a unit called '{definition.name}' already exists: choose another name")
        for inner in definition.units_used():
            if self._units.get(inner.name, inner) is not inner:
                raise GraphError(f"unit '{definition.name}' uses a unit '{inner.name}' unlike this network's")
        for inner in definition.units_used():
            self._units[inner.name] = inner
        self._units[definition.name] = definition
        self._announce("unit_defined", name=definition.name)

    def _unit_named(self, name: Any) -> UnitDef:
        try:
            return self._units[name]
        except (KeyError, TypeError):
            raise GraphError(f"there is no unit called {name!r} in this network") from None

    def assign(self, other: Graph) -> None:
        """Make this graph equal to ``other`` (a new version of it from a pure edit such as
        :func:`engine.units.group`), announcing each difference as the edit methods would.

        A block whose id and type stay keeps its Node object (views hold it); all events of the
        change come after it is complete, so a listener sees the new document whole.
        """
        with self.batch():
            for e in [e for e in self._edges if e not in set(other._edges)]:
                self.disconnect(e)
            for nid in [nid for nid, n in self._nodes.items() if _replaced(n, other._nodes.get(nid))]:
                self.remove_node(nid)
            for name, definition in other._units.items():
                if self._units.get(name) is not definition:
                    self._units.pop(name, None)
                    self.define_unit(definition)
            for nid, new in other._nodes.items():
                self._assign_node(nid, new)
            if list(self._nodes) != list(other._nodes):
                # NOTE: the order of blocks is their insertion order, which breaks ties in walks
                self._nodes = {nid: self._nodes[nid] for nid in other._nodes}
            have = set(self._edges)
            for e in other._edges:
                if e not in have:
                    self.connect(e.src, e.src_port, e.dst, e.dst_port)
            for name in [n for n in self._units if n not in other._units]:
                del self._units[name]
            self.set_flow(other.flow)
            self._next_id = max(self._next_id, other._next_id)
            self._reindex()

    def _assign_node(self, nid: str, new: Node) -> None:
        node = self._nodes.get(nid)
        if node is None:
            if new.name in self._names:  # NOTE: a block renamed away later in this assignment
                self._names.pop(new.name)
            self._nodes[nid] = Node(nid, new.type, new.name, dict(new.params), new.pos, new.unit)
            self._names[new.name] = nid
            self._announce("node_added", node_id=nid)
            return
        if node.params != new.params or node.unit is not new.unit:
            old = dict(node.params)
            node.params, node.unit = dict(new.params), new.unit
            self._announce("params_changed", node_id=nid, old=old, new=dict(new.params))
        if node.name != new.name:
            old_name, node.name = node.name, new.name
            if self._names.get(old_name) == nid:
                del self._names[old_name]
            self._names[new.name] = nid
            self._announce("node_renamed", node_id=nid, old=old_name, new=new.name)
        if node.pos != new.pos:
            old_pos, node.pos = node.pos, new.pos
            self._announce("node_moved", node_id=nid, old=old_pos, new=new.pos)

    @classmethod
    def build(cls, nodes: list[Node], edges: list[Edge], units: dict[str, UnitDef] | None = None,
              flow: str = "lr") -> Graph:
        """A graph made whole from parts already checked (a flattened graph, a unit's inside).

        No event and no check: NOTE: a flattened block's name is its path through the units,
        which may be longer than a name a person may give.
        """
        g = cls()
        g._nodes = {n.id: n for n in nodes}
        g._edges = list(edges)
        g._units = dict(units or {})
        g._flow = flow
        for nid in g._nodes:
            g._bump_id_past(nid)
        g._reindex()
        return g

    def forget_units(self, names: list[str]) -> None:
        """Drop these unit definitions, which no block uses any more (no event: nothing is drawn from them)."""
        for name in names:
            self._units.pop(name, None)

    def reorder(self, order: list[str]) -> None:
        """List the blocks in ``order`` (every id once). No event: the order only breaks ties in walks."""
        if sorted(order) != sorted(self._nodes):
            raise GraphError("a new order of the blocks must name each block once")
        self._nodes = {nid: self._nodes[nid] for nid in order}

    def copy(self) -> Graph:
        """An independent copy (no listeners): the start of a pure edit."""
        g = Graph()
        for nid, n in self._nodes.items():
            g._nodes[nid] = Node(nid, n.type, n.name, dict(n.params), n.pos, n.unit)
        g._edges = list(self._edges)
        g._units = dict(self._units)
        g._next_id, g._flow = self._next_id, self._flow
        g._reindex()
        return g

    def clear(self) -> None:
        """Remove everything (one ``cleared`` event)."""
        self._flow = "lr"
        self._units.clear()
        self._nodes.clear()
        self._edges.clear()
        self._edge_into.clear()
        self._edges_out.clear()
        self._names.clear()
        self._next_id = 1
        self._announce("cleared")

    # ------------------------------------------------------------------ helpers
    def _check_name_free(self, name: str, node_id: str | None = None) -> None:
        if self._names.get(name, node_id) != node_id:
            raise GraphError(f"another block is already called '{name}'")

    def _drop_edge(self, edge: Edge) -> None:
        self._edges.remove(edge)
        self._edge_into.pop((edge.dst, edge.dst_port), None)
        self._edges_out[edge.src].remove(edge)

    def _fresh_id(self) -> str:
        while f"n{self._next_id}" in self._nodes:
            self._next_id += 1
        nid = f"n{self._next_id}"
        self._next_id += 1
        return nid

    def _bump_id_past(self, node_id: str) -> None:
        m = re.fullmatch(r"n(\d+)", node_id)
        if m:
            self._next_id = max(self._next_id, int(m.group(1)) + 1)


def _replaced(node: Node, new: Node | None) -> bool:
    """Whether :meth:`Graph.assign` must remove ``node`` (gone, or of another type or unit)."""
    return new is None or new.type != node.type or (node.unit is None) != (new.unit is None)


def check_name(name: Any) -> str:
    """A block name cleaned of surrounding spaces, or GraphError saying what is wrong with it."""
    if not isinstance(name, str) or not _NAME_RE.search(name):
        raise GraphError("a block's name must be some visible text")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise GraphError(f"a block's name can be at most {MAX_NAME_LENGTH} characters")
    if any(ch in name for ch in "\n\r\t\x00"):
        raise GraphError("a block's name must fit on one line")
    return name


def _named(exc: ParamError, who: str, title: str) -> ParamError:
    """``exc`` with its message saying which block it is about."""
    msg = str(exc)
    if msg.startswith(title + " "):  # "Dense has no parameter 'x'"
        msg = msg[len(title) + 1 :]
        return ParamError(f"{who} {msg}")
    return ParamError(f"{who}: {msg}")


def _check_pos(pos: Any, name: str) -> tuple[float, float]:
    try:
        x, y = float(pos[0]), float(pos[1])
    except (TypeError, ValueError, IndexError):
        raise GraphError(f"'{name}' needs a position of two numbers, not {pos!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise GraphError(f"'{name}' needs a finite position, not {pos!r}")
    return (x, y)


def _refusal(fault: graphrules.WireFault, a: Node, b: Node, edge: Edge, nodes: dict[str, Node]) -> str:
    """Why a wire from ``a`` to ``b`` is refused, in the words of the canvas."""
    kind = fault.kind
    if kind == graphrules.SELF_WIRE:
        return f"'{a.name}' cannot feed itself: a wire needs two different blocks"
    if kind == graphrules.NO_OUTPUT:
        return f"'{a.name}' ({a.spec.title}) has no output to wire from"
    if kind == graphrules.OUTPUT_PORT:
        return f"'{a.name}' has no output port {edge.src_port + 1}"
    if kind == graphrules.NO_INPUT:
        return f"'{b.name}' ({b.spec.title}) takes no input"
    if kind == graphrules.INPUT_PORT:
        return f"'{b.name}' has no input port {edge.dst_port + 1}"
    if kind == graphrules.PORT_TAKEN:
        return (
            f"input {_port_label(b, edge.dst_port)} of '{b.name}' is already fed by "
            f"'{nodes[fault.other.src].name}': a port takes one wire (use Add or Concatenate to merge)"
        )
    return (
        f"wiring '{a.name}' into '{b.name}' would close a loop: "
        f"'{b.name}' already feeds '{a.name}', and a network must flow one way"
    )


def _port_label(node: Node, port: int) -> str:
    names = node.input_ports()
    label = names[port] if port < len(names) else str(port + 1)
    return f"{port + 1} ({label})" if label not in ("in", str(port + 1)) else str(port + 1)

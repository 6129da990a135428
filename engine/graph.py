"""The graph document: the network a person draws, as plain data.

A :class:`Graph` holds nodes (one per layer block) and edges (from an output port
of one node to an input port of another). Every mutation goes through a method
that validates first, then changes the document, then announces exactly one
:class:`GraphEvent` to its listeners. The canvas, undo commands, file loading
and scripted edits all use these methods, so they all draw through one path.

Edges are stored once, in the graph, with a reverse index from each input port
to the edge that feeds it (the ryvencore habit).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from engine import graphrules
from engine.errors import GraphError, ParamError
from engine.layers import registry

__all__ = ["FLOWS", "Edge", "Graph", "GraphError", "GraphEvent", "Node"]

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

    @property
    def spec(self) -> registry.LayerSpec:
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

    def walk(self) -> graphrules.Walk[str]:
        """The blocks in :meth:`topological_order`, and apart those on or after a loop."""
        return graphrules.topological_walk(list(self._nodes), [(e.src, e.dst) for e in self._edges])

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
        state = {nid: (n.type, n.name, dict(n.params), n.pos) for nid, n in self._nodes.items()}
        return (dict(self._nodes), state, list(self._edges), self._next_id, self._flow)

    def _restore(self, saved: tuple) -> None:
        """Put back a snapshot, keeping the same Node objects (views may hold them)."""
        nodes, state, edges, self._next_id, self._flow = saved
        for nid, node in nodes.items():
            node.type, node.name, node.params, node.pos = state[nid]
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
        """Add a block of ``type_id``. Unknown params or invalid values are refused."""
        spec = registry.get(type_id)
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
        node = Node(node_id, type_id, name, full, xy)
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

    def clear(self) -> None:
        """Remove everything (one ``cleared`` event)."""
        self._flow = "lr"
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

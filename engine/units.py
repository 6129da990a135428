"""Units: named sub-networks that a graph uses as single blocks, and the edits that make and unmake them.

A :class:`UnitDef` is a named inner :class:`~engine.graph.Graph` with ports: each input port
feeds one or more inner block inputs, each output port comes from one inner block output
(the wires that crossed the border of the blocks it was made from). A block of type
:data:`~engine.graph.UNIT_TYPE` stands for a definition (``params["unit"]`` names it); the
graph holds each definition once (:attr:`Graph.units`), so every use follows it, and an inner
graph may use units in turn.

The edits (:func:`group`, :func:`ungroup`, :func:`repeat`, :func:`make_unique`, :func:`redefine`)
are pure functions: each returns a new graph and leaves its argument alone, so an undo command
keeps the two versions and hands either to :meth:`Graph.assign`, which announces the difference
as ordinary events. :func:`flatten` inlines every unit for analysis and training,
naming each inner block by its path of ids (``stage1/block0/conv1``), so results map back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from engine.errors import GraphError, ShapeError
from engine.graph import UNIT_TYPE, Edge, Graph, Node, check_name
from engine.layers.registry import LayerSpec, Param, shape_str

__all__ = [
    "SEP",
    "Expansion",
    "UnitDef",
    "UnitPort",
    "expand",
    "flatten",
    "group",
    "input_ends",
    "is_unit",
    "make_unique",
    "output_end",
    "repeat",
    "same_network",
    "ungroup",
    "units_in_order",
    "units_in_use",
]

#: joins the ids (and names) of a path through units: ``stage1/block0/conv1``
SEP = "/"

End = tuple[str, int]  # (inner block id, port)


@dataclass(frozen=True)
class UnitPort:
    """One port of a unit: its name and the inner ends it stands for.

    An input port feeds every inner ``(block, input port)`` in ``ends``; an output port gives
    the value of its one inner ``(block, output port)``.
    """

    name: str
    ends: tuple[End, ...]


@dataclass(frozen=True, eq=False)
class UnitDef:
    """A named sub-network with ports. NOTE: a value: its inner graph is never changed once made."""

    name: str
    graph: Graph
    inputs: tuple[UnitPort, ...]
    outputs: tuple[UnitPort, ...]

    @cached_property
    def spec(self) -> LayerSpec:
        """The declaration a unit block reads as: its ports; its shapes and code come from the inside."""
        return LayerSpec(
            type_id=UNIT_TYPE,
            title=self.name,
            category="Unit",
            doc=f"Unit '{self.name}': {len(self.graph)} blocks used as one. Edit the unit to change every use.",
            shape=_inside_only,
            code=_inside_only,
            params=(Param("unit", "choice", self.name, "The unit definition this block uses.", choices=(self.name,)),),
            inputs=len(self.inputs),
            input_names=tuple(p.name for p in self.inputs),
            outputs=len(self.outputs),
            default_name=_default_name(self.name),
            role="unit",
        )

    def units_used(self) -> list[UnitDef]:
        """Every unit this one uses, directly or not, each once, the innermost first."""
        seen: dict[str, UnitDef] = {}

        def visit(d: UnitDef) -> None:
            for n in d.graph.nodes.values():
                if n.unit is not None and n.unit.name not in seen:
                    visit(n.unit)
                    seen[n.unit.name] = n.unit

        visit(self)
        return list(seen.values())


def _inside_only(*_args):
    # NOTE: analysis and code generation flatten units first; a unit block is never asked directly.
    raise ShapeError("a unit's shapes come from the blocks inside it")


def _default_name(name: str) -> str:
    text = "_".join(name.lower().split())
    return text or "unit"


def is_unit(node: Node) -> bool:
    """Whether ``node`` stands for a unit."""
    return node.unit is not None


def units_in_use(graph: Graph) -> list[UnitDef]:
    """The definitions ``graph``'s blocks use, directly or not, each once, inner ones first."""
    seen: dict[str, UnitDef] = {}
    for n in graph.nodes.values():
        if n.unit is not None and n.unit.name not in seen:
            for inner in n.unit.units_used():
                seen.setdefault(inner.name, inner)
            seen[n.unit.name] = n.unit
    return list(seen.values())


# ---------------------------------------------------------------------- flattening
@dataclass
class Expansion:
    """How :func:`flatten` laid the units out.

    ``owner`` maps each flat block to the top-level block it came from; ``members`` each unit
    path (a top-level unit's id, or ``unit/inner unit``) to its flat blocks; ``children`` each unit
    path to its inner paths; ``outputs`` each unit path to the flat (block, port) of each output
    port; ``inputs`` to the flat (block, port)s each input port feeds.
    """

    owner: dict[str, str] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, list[End]] = field(default_factory=dict)
    inputs: dict[str, list[list[End]]] = field(default_factory=dict)


def flatten(graph: Graph) -> Graph:
    """``graph`` with every unit replaced by its blocks (recursively), each named by its path.

    A block outside units keeps its id and name; one inside unit ``u`` gets id ``u/inner`` and name
    ``unit name/inner name``. A graph without units comes back as it is (the same object).
    """
    return expand(graph)[0]


def expand(graph: Graph) -> tuple[Graph, Expansion]:
    """:func:`flatten`, and how the units were laid out (:class:`Expansion`)."""
    ex = Expansion()
    if not any(n.unit is not None for n in graph.nodes.values()):
        ex.owner = {nid: nid for nid in graph.nodes}
        return graph, ex
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    _inline(graph, "", "", nodes, edges, ex, None)
    return Graph.build(list(nodes.values()), edges, flow=graph.flow), ex


def _inline(level: Graph, prefix: str, names: str, nodes: dict, edges: list, ex: Expansion, top: str | None) -> None:
    """Add ``level``'s blocks under ``prefix`` to ``nodes`` and its wires, resolved to flat ends, to ``edges``."""
    for nid, n in level.nodes.items():
        path, owner = prefix + nid, top or nid
        if n.unit is None:
            if path in nodes:
                raise GraphError(f"two blocks would both be called {path!r} once the units are opened: rename one")
            nodes[path] = Node(path, n.type, names + n.name, dict(n.params), n.pos)
            ex.owner[path] = owner
            continue
        before = len(nodes)
        ex.children[path] = [path + SEP + inner for inner in n.unit.graph.nodes]
        _inline(n.unit.graph, path + SEP, names + n.name + SEP, nodes, edges, ex, owner)
        ex.members[path] = list(nodes)[before:]
        ex.outputs[path] = [output_end(level, prefix, nid, k) for k in range(len(n.unit.outputs))]
        ex.inputs[path] = [input_ends(level, prefix, nid, k) for k in range(len(n.unit.inputs))]
    for e in level.edges:
        src, src_port = output_end(level, prefix, e.src, e.src_port)
        for dst, dst_port in input_ends(level, prefix, e.dst, e.dst_port):
            edges.append(Edge(src, src_port, dst, dst_port))


def output_end(level: Graph, prefix: str, nid: str, port: int) -> End:
    """The flat (block, port) that output ``port`` of block ``nid`` of ``level`` stands for."""
    unit = level.nodes[nid].unit
    while unit is not None:
        prefix, (nid, port) = prefix + nid + SEP, unit.outputs[port].ends[0]
        level, unit = unit.graph, unit.graph.nodes[nid].unit
    return prefix + nid, port


def input_ends(level: Graph, prefix: str, nid: str, port: int) -> list[End]:
    """The flat (block, port)s that input ``port`` of block ``nid`` of ``level`` feeds."""
    unit = level.nodes[nid].unit
    if unit is None:
        return [(prefix + nid, port)]
    inner = prefix + nid + SEP
    return [end for n, p in unit.inputs[port].ends for end in input_ends(unit.graph, inner, n, p)]


# ---------------------------------------------------------------------- group and ungroup
def group(graph: Graph, node_ids, name: str, *, unit_id: str | None = None) -> tuple[Graph, str]:
    """A new graph with the blocks ``node_ids`` replaced by one block of a new unit called ``name``.

    The unit's ports are the wires that cross the selection's border: one input port per outside
    output that feeds the selection, one output port per inside output read outside. The blocks
    keep their ids inside the unit, so :func:`ungroup` gives the graph back as it was. Naming a
    unit the graph has already makes the blocks another use of it, when they are the same network
    (types, params, wires and ports; names aside). Returns the new graph and the unit block's id
    (``unit_id`` when given, as an undo passes it).
    """
    chosen = list(dict.fromkeys(node_ids))
    if not chosen:
        raise GraphError("select the blocks to group first")
    name = check_name(name)
    for nid in chosen:
        node = graph.node(nid)
        if node.spec.role in ("input", "head"):
            raise GraphError(f"'{node.name}' ({node.spec.title}) stays outside a unit: group the blocks between")
    inside = set(chosen)
    _check_convex(graph, inside)
    order = [nid for nid in graph.nodes if nid in inside]
    crossing_in = [e for e in graph.edges if e.dst in inside and e.src not in inside]
    crossing_out = [e for e in graph.edges if e.src in inside and e.dst not in inside]
    sources = list(dict.fromkeys((e.src, e.src_port) for e in crossing_in))
    results = list(dict.fromkeys((e.src, e.src_port) for e in crossing_out))
    inputs = tuple(
        UnitPort(_port_name("in", k, len(sources)), tuple((e.dst, e.dst_port) for e in crossing_in if (e.src, e.src_port) == s))
        for k, s in enumerate(sources)
    )
    outputs = tuple(UnitPort(_port_name("out", k, len(results)), (r,)) for k, r in enumerate(results))
    parts = [graph.nodes[nid] for nid in order]
    inner = Graph.build(
        [Node(n.id, n.type, n.name, dict(n.params), n.pos, n.unit) for n in parts],
        [e for e in graph.edges if e.src in inside and e.dst in inside],
        {u.name: u for u in graph.units.values()},
    )
    inner.forget_units([u for u in inner.units if u not in {d.name for d in units_in_use(inner)}])
    definition = UnitDef(name, inner, inputs, outputs)
    existing = graph.units.get(name)
    if existing is not None:
        if not same_network(existing, definition):
            raise GraphError(f"a unit called '{name}' already exists, and these blocks differ from it: choose another name")
        definition = existing

    new = graph.copy()
    slot = list(graph.nodes).index(order[0])
    for nid in order:
        new.remove_node(nid)
    new.define_unit(definition)
    xs, ys = zip(*(graph.nodes[nid].pos for nid in order))
    unit = new.add_node(
        UNIT_TYPE, {"unit": name}, name=new.unique_name(definition.spec.default_name),
        pos=(sum(xs) / len(xs), sum(ys) / len(ys)), node_id=unit_id,
    )
    rest = [nid for nid in new.nodes if nid != unit.id]
    new.reorder(rest[:slot] + [unit.id] + rest[slot:])
    for k, (src, port) in enumerate(sources):
        new.connect(src, port, unit.id, k)
    for e in crossing_out:
        new.connect(unit.id, results.index((e.src, e.src_port)), e.dst, e.dst_port)
    return new, unit.id


def same_network(a: UnitDef, b: UnitDef) -> bool:
    """Whether two units compute the same way: blocks of the same types and params, in the same order,
    wired alike, with the same ports (the blocks' names and ids aside)."""
    ia = {nid: k for k, nid in enumerate(a.graph.nodes)}
    ib = {nid: k for k, nid in enumerate(b.graph.nodes)}
    if len(ia) != len(ib):
        return False
    for na, nb in zip(a.graph.nodes.values(), b.graph.nodes.values()):
        if na.type != nb.type or na.params != nb.params:
            return False

    def wires(d: UnitDef, index: dict[str, int]) -> set:
        return {(index[e.src], e.src_port, index[e.dst], e.dst_port) for e in d.graph.edges}

    def ports(ps: tuple[UnitPort, ...], index: dict[str, int]) -> list:
        return [sorted((index[n], p) for n, p in port.ends) for port in ps]

    return (
        wires(a, ia) == wires(b, ib)
        and ports(a.inputs, ia) == ports(b.inputs, ib)
        and ports(a.outputs, ia) == ports(b.outputs, ib)
    )


def _port_name(stem: str, k: int, count: int) -> str:
    return stem if count == 1 else f"{stem}{k + 1}"


def _check_convex(graph: Graph, inside: set[str]) -> None:
    """Refuse a selection that a path leaves and re-enters: as one block it would feed itself."""
    seen: set[str] = set()
    stack = [e.dst for e in graph.edges if e.src in inside and e.dst not in inside]
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        for nxt in graph.successors(nid):
            if nxt in inside:
                raise GraphError(
                    f"'{graph.nodes[nid].name}' lies on a path from the selection back into it: "
                    "select it too, or leave out the blocks after it"
                )
            stack.append(nxt)


def ungroup(graph: Graph, unit_id: str) -> tuple[Graph, list[str]]:
    """A new graph with unit block ``unit_id`` replaced by the blocks inside it, wired as they were.

    Inner blocks keep their ids and names where the graph has them free (always, right after
    :func:`group`), and sit where they sat, moved with the unit block. A definition no block uses
    any more is dropped. Returns the new graph and the ids of the blocks put in.
    """
    node = graph.node(unit_id)
    unit = node.unit
    if unit is None:
        raise GraphError(f"'{node.name}' is not a unit: only a unit can be ungrouped")
    wires_in = [e for e in graph.edges if e.dst == unit_id]
    wires_out = [e for e in graph.edges if e.src == unit_id]
    slot = list(graph.nodes).index(unit_id)
    new = graph.copy()
    new.remove_node(unit_id)
    inner = unit.graph
    xs, ys = zip(*(n.pos for n in inner.nodes.values())) if len(inner) else ((0.0,), (0.0,))
    dx, dy = node.pos[0] - sum(xs) / len(xs), node.pos[1] - sum(ys) / len(ys)
    ids: dict[str, str] = {}
    for nid, n in inner.nodes.items():
        free = nid not in new.nodes
        added = new.add_node(
            n.type, n.params, name=new.unique_name(n.name), pos=(n.pos[0] + dx, n.pos[1] + dy),
            node_id=nid if free else None,
        )
        ids[nid] = added.id
    rest = [nid for nid in new.nodes if nid not in ids.values()]
    new.reorder(rest[:slot] + list(ids.values()) + rest[slot:])
    for e in inner.edges:
        new.connect(ids[e.src], e.src_port, ids[e.dst], e.dst_port)
    for e in wires_in:
        for nid, port in unit.inputs[e.dst_port].ends:
            new.connect(e.src, e.src_port, ids[nid], port)
    for e in wires_out:
        nid, port = unit.outputs[e.src_port].ends[0]
        new.connect(ids[nid], port, e.dst, e.dst_port)
    _drop_unused(new)
    return new, list(ids.values())


def _drop_unused(graph: Graph) -> None:
    """Forget the definitions no block of ``graph`` uses, directly or not."""
    used = {u.name for u in units_in_use(graph)}
    graph.forget_units([n for n in graph.units if n not in used])


# ---------------------------------------------------------------------- repeat and make unique
def repeat(graph: Graph, unit_id: str, n: int) -> tuple[Graph, list[str]]:
    """A new graph where unit block ``unit_id`` is followed by ``n − 1`` more uses of its unit, in a chain.

    Only a unit with one input and one output whose output has its input's shape can stack (a
    ResNet stage's identity blocks). Returns the new graph and the ids of the chain, first to last.
    """
    from engine.analysis import analyze

    node = graph.node(unit_id)
    unit = node.unit
    if unit is None:
        raise GraphError(f"'{node.name}' is not a unit: only a unit can repeat")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:
        raise GraphError(f"a unit repeats 1 to 100 times, not {n!r}")
    if len(unit.inputs) != 1 or len(unit.outputs) != 1:
        raise GraphError(f"unit '{unit.name}' has {len(unit.inputs)} inputs and {len(unit.outputs)} outputs: "
                         "only a unit with one of each can repeat")
    info = analyze(graph).nodes[unit_id]
    shape_in = info.in_shapes[0] if info.in_shapes else None
    if shape_in is None or info.out_shape is None:
        raise GraphError(f"'{node.name}' has no known shapes yet: wire it and fix its errors first")
    if tuple(shape_in) != tuple(info.out_shape):
        raise GraphError(
            f"unit '{unit.name}' turns {shape_str(shape_in)} into {shape_str(info.out_shape)}: only a unit whose "
            "output has its input's shape can follow itself"
        )
    new = graph.copy()
    after = [e for e in graph.edges if e.src == unit_id]
    for e in after:
        new.disconnect(e)
    chain, prev = [unit_id], unit_id
    for k in range(1, n):
        pos = (node.pos[0] + 200.0 * k, node.pos[1])
        added = new.add_node(UNIT_TYPE, {"unit": unit.name}, name=new.unique_name(node.name), pos=pos)
        new.connect(prev, 0, added.id, 0)
        chain.append(added.id)
        prev = added.id
    for e in after:
        new.connect(prev, 0, e.dst, e.dst_port)
    return new, chain


def make_unique(graph: Graph, unit_id: str) -> tuple[Graph, str]:
    """A new graph where unit block ``unit_id`` uses its own copy of its unit (``"Block 2"``),
    so that editing it changes no other use. Returns the new graph and the copy's name."""
    node = graph.node(unit_id)
    unit = node.unit
    if unit is None:
        raise GraphError(f"'{node.name}' is not a unit")
    stem, k = unit.name, 2
    while f"{stem} {k}" in graph.units:
        k += 1
    copy = UnitDef(f"{stem} {k}", unit.graph, unit.inputs, unit.outputs)
    new = graph.copy()
    new.define_unit(copy)
    slot = list(new.nodes).index(unit_id)
    edges = new.edges_of(unit_id)
    new.remove_node(unit_id)
    new.add_node(UNIT_TYPE, {"unit": copy.name}, name=node.name, pos=node.pos, node_id=unit_id)
    rest = [nid for nid in new.nodes if nid != unit_id]
    new.reorder(rest[:slot] + [unit_id] + rest[slot:])
    for e in edges:
        new.connect(e.src, e.src_port, e.dst, e.dst_port)
    _drop_unused(new)
    return new, copy.name


# ---------------------------------------------------------------------- editing a definition
def redefine(graph: Graph, name: str, inside: Graph) -> Graph:
    """A new graph where unit ``name`` is ``inside`` (its blocks edited, its ports as they were), in
    every use, also inside other units (which are remade around it: definitions are values).

    Each port must still have its inner ends: an input end on a block's input that no inner wire
    feeds, an output end on an existing output. Editing a copy of ``graph.units[name].graph`` and
    passing it here is how a unit is edited; a use that must not follow is first made unique.
    """
    old = graph.units.get(name)
    if old is None:
        raise GraphError(f"there is no unit called {name!r} in this network")
    changed = {name: UnitDef(name, inside.copy(), old.inputs, old.outputs)}
    _check_ports(changed[name])
    for d in units_in_order(graph):
        if d.name not in changed and any(u.name in changed for u in d.units_used()):
            changed[d.name] = UnitDef(d.name, _rebind(d.graph, changed), d.inputs, d.outputs)
    return _rebind(graph, changed)


def _check_ports(unit: UnitDef) -> None:
    """Refuse a definition whose ports name inner ends that are gone or now fed from inside."""
    nodes = unit.graph.nodes
    fed = {(e.dst, e.dst_port) for e in unit.graph.edges}
    for port in unit.inputs:
        for nid, p in port.ends:
            if nid not in nodes or p >= len(nodes[nid].input_ports()) or (nid, p) in fed:
                raise GraphError(f"unit '{unit.name}': its input '{port.name}' must still feed an open input of its blocks")
    for port in unit.outputs:
        nid, p = port.ends[0]
        if nid not in nodes or p >= len(nodes[nid].output_ports()):
            raise GraphError(f"unit '{unit.name}': its output '{port.name}' must still come from one of its blocks")


def units_in_order(graph: Graph) -> list[UnitDef]:
    """Every definition ``graph`` holds, each after the units it uses."""
    ordered: dict[str, UnitDef] = {}
    for u in graph.units.values():
        for inner in u.units_used():
            ordered.setdefault(inner.name, inner)
        ordered.setdefault(u.name, u)
    return list(ordered.values())


def _rebind(graph: Graph, changed: dict[str, UnitDef]) -> Graph:
    """A copy of ``graph`` whose unit blocks, and definitions, use the ``changed`` ones."""
    nodes = [
        Node(n.id, n.type, n.name, dict(n.params), n.pos, changed.get(n.unit.name, n.unit) if n.unit else None)
        for n in graph.nodes.values()
    ]
    units = {k: changed.get(k, u) for k, u in graph.units.items()}
    return Graph.build(nodes, graph.edges, units, graph.flow)

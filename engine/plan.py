"""The compiled plan of a network: what each block becomes in PyTorch, derived once from the graph.

:func:`compile_plan` reads the graph and the layer declarations once and returns a :class:`Plan`:
one :class:`ClassPlan` per ``nn.Module`` class (one per unit definition, used as torchvision uses
``BasicBlock``, and the network's own class last), each a list of :class:`Step` (attribute, module
expression, forward expression, the variables it reads and writes, its output shape), in the order
``forward`` runs them: at a fork each branch up to its merge before the next (depth first).
:mod:`engine.codegen` writes source from it; :class:`engine.probes.base.Tap` runs its
:attr:`Plan.blocks` one at a time; so code and probes cannot read the declarations differently.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from torch import nn

from engine.analysis import Analysis, NodeInfo, analyze
from engine.errors import CompileError
from engine.graph import Graph
from engine.layers.registry import FILTER_SCHEMES, Shape
from engine.units import SEP, UnitDef, UnitPort, input_ends, output_end

__all__ = [
    "BlockStep", "ClassPlan", "Plan", "Step", "class_identifier", "compile_plan", "identifier", "output_nodes",
]

#: the module-level helper functions generated code may define (their source is in :mod:`engine.codegen`)
HELPER_NAMES = ("center_crop", "image_filter", "init_weights")

# NOTE: a layer attribute must not shadow nn.Module's own (forward, training, to, ...).
_RESERVED = {"self", "torch", "nn", "x", "model", "weights", "example", "Path", "out", "t", "CLASSES"} | set(HELPER_NAMES)
_RESERVED |= {name for name in dir(nn.Module()) if not name.startswith("__")}
_MAX_IDENT = 40


def identifier(text: str, fallback: str = "layer") -> str:
    """A safe Python identifier from free text: letters, digits and underscores only.

    ``"Conv 1"`` -> ``conv_1``; ``'x"); import os #'`` -> ``x_import_os``; keywords,
    builtins and names the generated code uses get a trailing underscore.
    """
    words = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_").lower()
    words = re.sub(r"_+", "_", words)[:_MAX_IDENT].strip("_") or fallback
    if words[0].isdigit():
        words = f"{fallback}_{words}"
    if keyword.iskeyword(words) or words in _RESERVED or hasattr(builtins, words):
        words += "_"
    return words


def class_identifier(text: str) -> str:
    """A CamelCase class name from free text (``"my lenet-5"`` -> ``MyLenet5``)."""
    parts = re.findall(r"[0-9A-Za-z]+", text)
    name = "".join(p[:1].upper() + p[1:] for p in parts)[:_MAX_IDENT] or "Net"
    if name[0].isdigit():
        name = "Net" + name
    if keyword.iskeyword(name) or hasattr(builtins, name) or name in _RESERVED:
        name += "Net"
    return name


@dataclass(frozen=True)
class Step:
    """One line of a class's ``forward`` (and, with a module, one line of its ``__init__``).

    ``outputs`` are the variables it writes (several for a unit with several outputs); ``forward`` the
    expression that computes them from ``inputs``; ``attr`` / ``module`` the attribute and its
    constructor (None for a block without a module: Add, Reshape); ``init`` a weight-init scheme
    other than PyTorch's (``"default"``: none). ``node_id`` is the block's id at its level.
    """

    node_id: str
    attr: str | None
    module: str | None
    forward: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shape: Shape | None
    init: str = "default"


@dataclass(frozen=True)
class ClassPlan:
    """One ``nn.Module`` class: its name, forward's arguments, steps and returned variables."""

    name: str
    unit: str | None  # the unit definition it is made from; None for the network's own class
    args: tuple[str, ...]
    steps: tuple[Step, ...]
    returns: tuple[str, ...]
    in_shapes: tuple[Shape | None, ...]
    out_shapes: tuple[Shape | None, ...]

    def body(self) -> tuple:
        """What makes two classes the same code (two uses of a unit at the same shapes)."""
        return (self.args, self.steps, self.returns)


@dataclass(frozen=True)
class BlockStep:
    """One block of the flattened network as the probes run it: its output from its inputs' values.

    ``path`` is its module's dotted path from the model (``stage1.block0.conv1``; None: no module);
    ``expr`` the forward expression over ``_a0, _a1, ...`` with ``self`` the model (None: call the module).
    """

    node_id: str
    role: str
    inputs: tuple[str, ...]
    path: str | None
    expr: str | None


@dataclass
class Plan:
    """Everything :func:`compile_plan` derived (see the module docstring).

    ``flat`` and ``analysis`` are the flattened graph (units opened, blocks by path) and its
    analysis; ``attrs`` maps each flat block with a module to its dotted path in the model.
    """

    graph: Graph
    flat: Graph
    analysis: Analysis
    classes: list[ClassPlan]
    blocks: list[BlockStep]
    attrs: dict[str, str]
    input_ids: list[str]
    output_ids: list[str]
    helpers: set[str] = field(default_factory=set)

    @property
    def main(self) -> ClassPlan:
        """The network's own class (the last)."""
        return self.classes[-1]


def output_nodes(graph: Graph) -> list[str]:
    """The blocks whose values the model returns: the heads, or the dead ends if there are none."""
    heads = [nid for nid, n in graph.nodes.items() if n.spec.role == "head"]
    if heads:
        return heads
    fed = {e.src for e in graph.edges}
    return [nid for nid, n in graph.nodes.items() if n.spec.role != "input" and nid not in fed]


def compile_plan(graph: Graph, class_name: str = "Net", analysis: Analysis | None = None) -> Plan:
    """The plan of a valid ``graph``. Raises :class:`CompileError` when the graph has errors."""
    analysis = analysis or analyze(graph)
    errors = analysis.errors()
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CompileError(f"the network has errors: {errors[0].message}{more}")
    outputs = output_nodes(graph)
    if not outputs:
        raise CompileError("the network has no output: add an output block after the last layer")
    flat_an = analysis.flat or analysis
    flat = analysis.flat_graph or graph
    maker = _Maker(flat, flat_an, class_identifier(class_name))
    main = maker.level(graph, "", "", class_identifier(class_name), None, outputs)
    maker.classes.append(main)
    inputs = [nid for nid, n in graph.nodes.items() if n.spec.role == "input"]
    flat_outputs = [o if o in flat.nodes else maker.flat_source(graph, o) for o in outputs]
    return Plan(graph, flat, flat_an, maker.classes, maker.blocks, maker.attrs, inputs, flat_outputs, maker.helpers)


class _Maker:
    """Builds the classes of a plan, level by level (the network, then each unit inside, depth first)."""

    def __init__(self, flat: Graph, flat_an: Analysis, main_name: str) -> None:
        self.flat, self.an = flat, flat_an
        self.classes: list[ClassPlan] = []
        self.blocks: list[BlockStep] = []
        self.attrs: dict[str, str] = {}
        self.helpers: set[str] = set()
        self._taken = {main_name}

    def flat_source(self, level: Graph, nid: str) -> str:
        """The flat block whose value a dead-end unit block returns (its first output)."""
        return output_end(level, "", nid, 0)[0]

    def info(self, path: str) -> NodeInfo:
        return self.an.nodes[path]

    def level(self, level: Graph, prefix: str, module_prefix: str, class_name: str,
              unit: UnitDef | None, outputs: list[str]) -> ClassPlan:
        """The class of one level: the network (``unit`` None) or a unit's inside at ``prefix``."""
        order = level.walk(depth_first=True).order
        names = self._attr_names(level, order)
        returned = self._returned(level, unit, outputs)
        scope = _Scope.of(level, unit, returned, set(names.values()))
        if unit is not None:
            args = scope.arguments([p.name for p in unit.inputs])
            in_shapes = tuple(self._port_shape(unit, prefix, port) for port in unit.inputs)
        else:
            inputs = [nid for nid in order if level.nodes[nid].spec.role == "input"]
            args = scope.inputs(inputs, names)
            in_shapes = tuple(self.info(prefix + nid).out_shape for nid in inputs)
        steps: list[Step] = []
        for nid in order:
            node = level.nodes[nid]
            path = prefix + nid
            if node.spec.role in ("input", "head"):
                # NOTE: a head reads its value at the return: it stays live to the end
                self.blocks.append(BlockStep(path, node.spec.role, tuple(self._flat_inputs(path)), None, None))
                continue
            srcs = scope.read(nid, len(node.input_ports()))
            args_in = tuple(scope.variables[s] for s in srcs if s is not None)
            attr = names[nid]
            if node.unit is not None:
                step = self._unit_step(node, attr, args_in, path, module_prefix)
            else:
                step = self._layer_step(node, attr, args_in, path, module_prefix)
            outs = scope.write(nid, attr, len(node.unit.outputs) if node.unit else 1, srcs)
            steps.append(Step(nid, step.attr, step.module, step.forward, args_in, outs, step.shape, step.init))
        out_shapes = tuple(self._value_shape(level, prefix, key) for key in returned)
        return ClassPlan(class_name, unit.name if unit else None, args, tuple(steps),
                         tuple(scope.variables[k] for k in returned), in_shapes, out_shapes)

    def _unit_step(self, node, attr: str, args_in: tuple[str, ...], path: str, module_prefix: str) -> Step:
        """A unit's use: an instance of its class (shared by every use that reads the same)."""
        inner = self._unit_class(node.unit, path + SEP, module_prefix + attr + ".")
        shape = inner.out_shapes[0] if inner.out_shapes else None
        return Step(node.id, attr, f"{inner.name}()", f"self.{attr}({', '.join(args_in)})", args_in, (), shape)

    def _layer_step(self, node, attr: str, args_in: tuple[str, ...], path: str, module_prefix: str) -> Step:
        """A layer block as its declaration writes it; also its block for the probes."""
        info = self.info(path)
        code = node.spec.code(node.params, info.in_shapes)
        module = code.module
        ref = f"self.{attr}" if module is not None else "self"
        expr = code.forward(ref, list(args_in)) if code.forward else f"{ref}({', '.join(args_in)})"
        dotted = module_prefix + attr if module is not None else None
        if dotted is not None:
            self.attrs[path] = dotted
        probe_args = [f"_a{i}" for i in range(len(args_in))]
        probe = code.forward(f"self.{dotted}" if dotted else "self", probe_args) if code.forward else None
        self.blocks.append(BlockStep(path, node.spec.role, tuple(self._flat_inputs(path)), dotted, probe))
        self.helpers.update(code.helpers)
        init = node.params.get("init", "default") if module is not None else "default"
        if init != "default":
            self.helpers.add("init_weights")
        if init in FILTER_SCHEMES:
            self.helpers.add("image_filter")
        return Step(node.id, attr if module is not None else None, module, expr, args_in, (), info.out_shape, init)

    def _returned(self, level: Graph, unit: UnitDef | None, outputs: list[str]) -> list[tuple[str, int]]:
        """The values a class returns: a unit's output ports; the network's heads' inputs (or dead ends)."""
        if unit is not None:
            return [port.ends[0] for port in unit.outputs]
        out = []
        for o in outputs:
            if level.nodes[o].spec.role == "head":
                e = level.inputs_of(o)[0]
                out.append((e.src, e.src_port))
            else:
                out.append((o, 0))
        return out

    def _unit_class(self, unit: UnitDef, prefix: str, module_prefix: str) -> ClassPlan:
        """The class of one use of ``unit``: shared with an earlier use whose code is the same."""
        made = self.level(unit.graph, prefix, module_prefix, "", unit, [])
        for c in self.classes:
            if c.unit == unit.name and c.body() == made.body():
                return c
        base = class_identifier(unit.name)
        name, k = base, 2
        while name in self._taken:
            name, k = f"{base}{k}", k + 1
        self._taken.add(name)
        made = ClassPlan(name, unit.name, made.args, made.steps, made.returns, made.in_shapes, made.out_shapes)
        self.classes.append(made)
        return made

    def _attr_names(self, level: Graph, order: list[str]) -> dict[str, str]:
        taken: set[str] = set()
        names = {}
        for nid in order:
            base = identifier(level.nodes[nid].name)
            name, i = base, 2
            while name in taken:
                name, i = f"{base}_{i}", i + 1
            taken.add(name)
            names[nid] = name
        return names

    def _flat_inputs(self, path: str) -> list[str]:
        return [e.src for e in self.flat.inputs_of(path) if e is not None]

    def _port_shape(self, unit: UnitDef, prefix: str, port: UnitPort) -> Shape | None:
        """The shape a unit's input port takes: what its first inner end reads."""
        if not port.ends:
            return None
        return self._in_shape(*input_ends(unit.graph, prefix, *port.ends[0])[0])

    def _in_shape(self, path: str, port: int) -> Shape | None:
        info = self.an.nodes.get(path)
        return info.in_shapes[port] if info and port < len(info.in_shapes) else None

    def _value_shape(self, level: Graph, prefix: str, key: tuple[str, int]) -> Shape | None:
        if key[0] == "":
            return None
        path, _ = output_end(level, prefix, key[0], key[1])
        info = self.an.nodes.get(path)
        return info.out_shape if info else None


@dataclass
class _Scope:
    """The variables of one class's ``forward`` while it is written.

    Values are ``(block, port)``, or ``("", k)`` for a unit's input port ``k``; ``consumers`` counts who
    reads each (the return too, in a unit), ``done`` who has read it so far.
    """

    feeds: dict[tuple[str, int], tuple[str, int]]
    consumers: dict[tuple[str, int], int]
    taken: set[str]
    variables: dict[tuple[str, int], str] = field(default_factory=dict)
    done: dict[tuple[str, int], int] = field(default_factory=dict)
    x_holder: tuple[str, int] | None = None

    @classmethod
    def of(cls, level: Graph, unit: UnitDef | None, returned: list[tuple[str, int]], taken: set[str]) -> _Scope:
        consumers: dict[tuple[str, int], int] = {}
        for e in level.edges:
            consumers[(e.src, e.src_port)] = consumers.get((e.src, e.src_port), 0) + 1
        feeds = {(e.dst, e.dst_port): (e.src, e.src_port) for e in level.edges}
        if unit is not None:  # NOTE: the network returns its heads' inputs, which the heads' wires count
            for key in returned:
                consumers[key] = consumers.get(key, 0) + 1
            for k, port in enumerate(unit.inputs):
                consumers[("", k)] = len(port.ends)
                feeds.update({end: ("", k) for end in port.ends})
        return cls(feeds, consumers, set(taken) | {"x"})

    def arguments(self, ports: list[str]) -> tuple[str, ...]:
        """A unit's ``forward`` arguments: ``x``, or one per port named after it."""
        args = ("x",) if len(ports) == 1 else tuple(self._fresh(identifier(p, "x")) for p in ports)
        for k, a in enumerate(args):
            self.variables[("", k)] = a
        self.x_holder = ("", 0) if args == ("x",) else None
        return args

    def inputs(self, inputs: list[str], names: dict[str, str]) -> tuple[str, ...]:
        """The network's ``forward`` arguments: ``x`` for one Input, else the Inputs' names."""
        args = ("x",) if len(inputs) == 1 else tuple(names[nid] for nid in inputs)
        for nid, a in zip(inputs, args):
            self.variables[(nid, 0)] = a
        self.x_holder = (inputs[0], 0) if args == ("x",) else None
        return args

    def read(self, nid: str, ports: int) -> list[tuple[str, int] | None]:
        """The values block ``nid`` reads, one per input port, counted as read."""
        srcs = [self.feeds.get((nid, i)) for i in range(ports)]
        for s in srcs:
            if s is not None:
                self.done[s] = self.done.get(s, 0) + 1
        return srcs

    def write(self, nid: str, attr: str, n_out: int, srcs: list) -> tuple[str, ...]:
        """The variables a step writes.

        NOTE: a chain reuses ``x`` (as a person writes it); a branch's chain reuses the variable of its
        first block (``branch = self.b1(x); branch = self.b2(branch)``, torchvision's way); a value read by
        several blocks, or computed while ``x`` is still needed, gets the block's own name.
        """
        key = (nid, 0)
        if n_out != 1:
            names = tuple(self._fresh(f"{attr}_{port + 1}") for port in range(n_out))
            self.variables.update({(nid, port): name for port, name in enumerate(names)})
            return names
        name = attr
        if self.consumers.get(key, 0) == 1:
            x = self.x_holder
            live = [s for s in srcs if s is not None]
            if x is None or self.done.get(x, 0) >= self.consumers.get(x, 0):
                name, self.x_holder = "x", key
            elif len(live) == 1 and live[0][0] and self.consumers.get(live[0], 0) == 1 and self.variables[live[0]] != "x":
                name = self.variables[live[0]]
        self.variables[key] = name
        return (name,)

    def _fresh(self, name: str) -> str:
        base, k = name, 2
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


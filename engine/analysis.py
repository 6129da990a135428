"""Live analysis: shapes, cost, receptive fields and problems, as plain data.

:func:`analyze` walks the graph in topological order and returns, per block, its
output shape, parameter count (trained, and frozen: a block whose trainable setting is off),
multiply-accumulates, activation memory and receptive field, plus every problem found.
Nothing here raises into the caller for a bad graph: problems come back as :class:`Problem`
records.

What is counted:

* **MACs** are multiply-accumulate operations for one sample, counted for the
  layers that dominate cost: Conv2d ``Cout·Hout·Wout·(Cin/groups)·k·k``,
  separable conv (depthwise + pointwise), transposed conv ``Cin·Hin·Win·Cout·k·k``
  and Dense ``in·out``. Biases, normalization, activations, pooling and merges
  count as 0.
* **Activation memory** is the block's output for one sample in float32 bytes.
* **Receptive field** (spatial blocks only): which network-input pixels one output
  pixel of the block depends on, away from the image's borders. See
  :class:`ReceptiveField` for what ``size``, ``jump`` and ``offset`` mean, also after
  upsampling; :mod:`engine.layers.receptive` computes it exactly, pixel by pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import GraphError, ShapeError
from engine.graph import Graph, Node
from engine.layers.receptive import Windows
from engine.layers.registry import FILTER_SCHEMES, RF, Shape, filter_fits, is_frozen, numel

ERROR = "error"
WARNING = "warning"
#: worth knowing and nothing to fix (the masks cropped to a valid-convolution U-Net's output)
INFO = "info"

#: A chain of this many Sigmoid/Tanh layers on one path triggers the vanishing-gradient warning.
SATURATING_CHAIN = 4


@dataclass(frozen=True)
class Fix:
    """A one-click repair of a problem, as plain data that the window makes one undo step of.

    The edits apply in this order: ``remove`` these blocks, ``set_params`` ((block id,
    ((param, value), ...)), ...), ``add`` blocks ((type id, id of the block whose first output
    feeds it), ...), then ``set_data`` ((field, value), ...) on the project's data settings.
    NOTE: tuples, not dicts, so a Problem that carries a Fix stays hashable.
    """

    label: str
    remove: tuple[str, ...] = ()
    set_params: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    set_data: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Problem:
    """Something wrong (``error``) or worth knowing (``warning``) about one block, maybe with a fix."""

    node_id: str
    severity: str
    rule: str
    message: str
    fix: Fix | None = None


@dataclass(frozen=True)
class ReceptiveField:
    """The input window of a block's output pixels, along each axis (fields are square).

    Output pixel ``i`` (row or column) of the block depends on the input pixels of a window:
    its gradient with respect to the input is nonzero there and only there, for weights that
    cancel nowhere. Windows are counted on an unbounded grid: near a border part of the
    window is padding.

    * ``size``: the window's extent in input pixels (first to last, the gaps of a dilation
      included); the largest of any output pixel when they differ (after upsampling).
    * ``jump``: how far the window moves, in input pixels, from one output pixel to the
      next: the product of the strides, divided by the upsampling factors.
    * ``offset``: where the window of output pixel 0 is centred; pixel ``i``'s is centred on
      ``offset + i·jump``. Pixel k is centred on k; negative values lie in the padding.

    After upsampling (Upsample, ConvTranspose2d) ``jump`` is below 1 and several neighbouring
    output pixels read the same input pixel, so the windows move in steps, not evenly:
    nearest upsampling reads the one pixel an output pixel lies in, bilinear the two around
    it (one, where it falls exactly on a pixel), a transposed convolution every pixel whose
    kernel covers it. There ``size`` is the largest window of any output pixel, and
    ``offset + i·jump`` is the line the windows' centres step along: the centres of any
    ``period`` consecutive pixels average exactly to it, and it is where output pixel ``i``
    lies on the grid before the layer (Upsample by s: ``(i + ½)/s − ½``; a transposed
    convolution with a kernel at least its stride: ``(i + padding − (kernel − 1)/2)/stride``).
    ``jump`` is 0 after a merge that broadcasts a 1×1 map over the pixels (Multiply by a
    squeeze-and-excitation gate, which pools the whole map): every output pixel then sees the
    same window, the union of the windows of every pixel of the pooled map.
    ``windows`` holds every output pixel's exact window
    (:class:`~engine.layers.receptive.Windows`, with the ``period``); None for a field made by hand.
    """

    size: float
    jump: float
    offset: float
    windows: Windows | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, windows: Windows) -> ReceptiveField:
        """The field that ``windows`` sum up to."""
        return cls(*windows.summary(), windows=windows)

    def exact(self) -> Windows:
        """Every output pixel's window: the computed ones, or windows rebuilt from the summary."""
        return self.windows or Windows.from_summary(self.size, self.jump, self.offset)

    def __str__(self) -> str:
        return f"{_g(self.size)}×{_g(self.size)}"


@dataclass
class NodeInfo:
    """What the analysis knows about one block."""

    in_shapes: list[Shape | None] = field(default_factory=list)
    out_shape: Shape | None = None
    trainable: int = 0  # parameters that train
    frozen: int = 0  # buffers, never trained: BatchNorm's running mean and variance (not parameters)
    frozen_params: int = 0  # parameters of a frozen block (its trainable setting off): kept as they are
    macs: int = 0
    memory: int = 0  # bytes of output activation, one sample, float32
    rf: ReceptiveField | None = None

    @property
    def params(self) -> int:
        """The parameters as PyTorch counts them (``module.parameters()``, what torchinfo and torchvision's
        figures count), trained or frozen: BatchNorm's running statistics are buffers (``frozen``), shown apart."""
        return self.trainable + self.frozen_params


@dataclass
class Analysis:
    """The result of :func:`analyze`.

    ``unwired`` holds the blocks no wire touches yet. Their problems (no input, an empty port,
    no Input block) are those of a network still being built: the window shows them as a neutral
    "not connected yet" until the block is wired. They are still errors: the network is not valid
    (it cannot train) while one is unwired.
    """

    nodes: dict[str, NodeInfo]
    problems: dict[str, list[Problem]]
    order: list[str]
    unwired: frozenset[str] = frozenset()
    #: for a graph with units: the analysis of the flattened graph (blocks by path, ``unit/inner``),
    #: the flattened graph itself, and every unit's inner rows (:meth:`expand`); None without units
    flat: Analysis | None = None
    flat_graph: Graph | None = None
    inner: dict[str, NodeInfo] = field(default_factory=dict)
    parts: dict[str, list[str]] = field(default_factory=dict)

    def expand(self, path: str) -> list[tuple[str, NodeInfo]]:
        """The rows inside unit ``path`` (a unit block's id, or ``unit/inner unit``): each inner
        block's path and figures, an inner unit's summed over its blocks. [] for a layer block."""
        return [(p, self.inner[p]) for p in self.parts.get(path, [])]

    def info(self, path: str) -> NodeInfo | None:
        """The figures of a top-level block or of any block or unit inside one, by path."""
        return self.nodes.get(path) or self.inner.get(path)

    @property
    def valid(self) -> bool:
        """True when nothing is an error (warnings allowed) and there is an Input."""
        return bool(self.nodes) and not self.errors()

    def errors(self) -> list[Problem]:
        return [p for ps in self.problems.values() for p in ps if p.severity == ERROR]

    def is_pending(self, problem: Problem) -> bool:
        """Whether ``problem`` belongs to a block not wired yet (shown as "not connected yet")."""
        return problem.node_id in self.unwired

    def wired_errors(self) -> list[Problem]:
        """The errors of the blocks that are wired: what is wrong, beyond what is not built yet."""
        return [p for p in self.errors() if p.node_id not in self.unwired]

    def warnings(self) -> list[Problem]:
        return [p for ps in self.problems.values() for p in ps if p.severity == WARNING]

    def all_problems(self) -> list[Problem]:
        return [p for nid in self.order for p in self.problems.get(nid, [])]

    @property
    def total_trainable(self) -> int:
        """The parameters that train: PyTorch's ``p.requires_grad`` ones once the frozen blocks are frozen."""
        return sum(i.trainable for i in self.nodes.values())

    @property
    def total_frozen(self) -> int:
        """BatchNorm's running statistics: buffers, not parameters (see :attr:`NodeInfo.frozen`)."""
        return sum(i.frozen for i in self.nodes.values())

    @property
    def total_frozen_params(self) -> int:
        """The parameters of frozen blocks: torchinfo's "Non-trainable params"."""
        return sum(i.frozen_params for i in self.nodes.values())

    @property
    def total_params(self) -> int:
        """Every block's :attr:`NodeInfo.params`: ResNet-50's 25,557,032, as torchvision says."""
        return self.total_trainable + self.total_frozen_params

    @property
    def total_macs(self) -> int:
        return sum(i.macs for i in self.nodes.values())

    @property
    def total_memory(self) -> int:
        return sum(i.memory for i in self.nodes.values())


def analyze(graph: Graph) -> Analysis:
    """Analyse every block of ``graph``; never raises for a bad graph.

    A unit is analysed as its blocks, flattened (:func:`engine.units.expand`), and reported as one
    row: its shapes those of its ports, its parameters, MACs and memory the sums over its blocks,
    its receptive field that of its first output. A problem inside it is the unit block's,
    its message naming the inner block by path.
    """
    from engine.units import expand

    try:
        flat, ex = expand(graph)
    except GraphError as exc:
        first = next(iter(graph.nodes))
        return Analysis({nid: NodeInfo() for nid in graph.nodes},
                        {first: [Problem(first, ERROR, "units", str(exc))]}, list(graph.nodes))
    if flat is graph:
        return _analyze_flat(graph)
    return _fold(graph, flat, ex, _analyze_flat(flat))


def _fold(graph: Graph, flat: Graph, ex, fa: Analysis) -> Analysis:
    """The analysis of a graph with units from its flattened graph's analysis ``fa``."""
    inner: dict[str, NodeInfo] = {}

    def info_of(path: str) -> NodeInfo:
        if path not in ex.members:
            return fa.nodes.get(path) or NodeInfo()
        members = [fa.nodes[m] for m in ex.members[path] if m in fa.nodes]
        out = ex.outputs[path][0][0] if ex.outputs[path] else None
        ins = [fa.nodes[ends[0][0]].in_shapes[ends[0][1]] if ends and ends[0][0] in fa.nodes
               and len(fa.nodes[ends[0][0]].in_shapes) > ends[0][1] else None for ends in ex.inputs[path]]
        last = fa.nodes.get(out) if out else None
        return NodeInfo(
            in_shapes=ins, out_shape=last.out_shape if last else None,
            trainable=sum(m.trainable for m in members), frozen=sum(m.frozen for m in members),
            frozen_params=sum(m.frozen_params for m in members),
            macs=sum(m.macs for m in members), memory=sum(m.memory for m in members), rf=last.rf if last else None,
        )

    for kids in ex.children.values():
        for kid in kids:
            inner[kid] = info_of(kid)
    infos = {nid: info_of(nid) for nid in graph.nodes}
    problems: dict[str, list[Problem]] = {}
    for p in fa.all_problems():
        owner = ex.owner.get(p.node_id, p.node_id)
        moved = p if owner == p.node_id else Problem(owner, p.severity, p.rule, p.message)
        problems.setdefault(owner, []).append(moved)
    walk = graph.walk()
    wired = {e.src for e in graph.edges} | {e.dst for e in graph.edges}
    unwired = frozenset(nid for nid in graph.nodes if nid not in wired)
    return Analysis(infos, problems, walk.order + walk.blocked, unwired, fa, flat, inner, dict(ex.children))


def _analyze_flat(graph: Graph) -> Analysis:
    """:func:`analyze` for a graph without units."""
    nodes = graph.nodes
    infos: dict[str, NodeInfo] = {}
    problems: dict[str, list[Problem]] = {}

    def report(nid: str, severity: str, rule: str, message: str) -> None:
        problems.setdefault(nid, []).append(Problem(nid, severity, rule, message))

    walk = graph.walk()
    order, looped = walk.order, walk.blocked
    for nid in looped:
        # NOTE: connect() refuses loops, so only a hand-built document gets here; the
        # blocks on or after a loop are reported and left out of everything else.
        infos[nid] = NodeInfo()
        report(nid, ERROR, "cycle", f"'{nodes[nid].name}' is on or after a loop: a network must flow one way")
    inbound: dict[str, dict[int, str]] = {nid: {} for nid in nodes}
    consumers: dict[str, list[str]] = {nid: [] for nid in nodes}
    for e in graph.edges:
        inbound[e.dst][e.dst_port] = e.src
        consumers[e.src].append(e.dst)
    reachable = _reachable_from_inputs(nodes, order, inbound)

    for nid in order:
        node = nodes[nid]
        spec = node.spec
        info = infos[nid] = NodeInfo()
        misfit = _filter_misfit(node)
        if misfit is not None:
            problems.setdefault(nid, []).append(misfit)
        ports = spec.input_ports(node.params)
        srcs = [inbound[nid].get(i) for i in range(len(ports))]
        empty = [i for i, s in enumerate(srcs) if s is None]
        for i in empty:
            if len(ports) == 1:
                report(nid, ERROR, "unconnected_input", f"'{node.name}' has no input: wire a block into it")
            else:
                report(nid, ERROR, "empty_port", f"input port {i + 1} of {spec.title} '{node.name}' is empty")
        if spec.role != "input" and nid not in reachable and not empty:
            report(nid, ERROR, "no_input", f"'{node.name}' is not connected to any Input")
        info.in_shapes = [infos[s].out_shape if s is not None and s in infos else None for s in srcs]
        if empty or any(s is None for s in info.in_shapes):
            continue  # upstream problem or missing wire: nothing more can be said here
        try:
            out = spec.shape(node.params, info.in_shapes)
        except ShapeError as exc:
            report(nid, ERROR, "shape", f"'{node.name}': {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - a declaration bug must not reach the UI as a crash
            report(nid, ERROR, "internal", f"'{node.name}' could not be analysed ({type(exc).__name__}: {exc})")
            continue
        try:
            info.out_shape = tuple(int(d) for d in out)
            count, info.frozen = spec.param_count(node.params, info.in_shapes, info.out_shape)
            if is_frozen(node.params):
                info.frozen_params = count
            else:
                info.trainable = count
            info.macs = spec.macs(node.params, info.in_shapes, info.out_shape)
            info.memory = 4 * numel(info.out_shape) if spec.role != "head" else 0
            info.rf = _receptive_field(node, info, [infos[s].rf for s in srcs])
        except Exception as exc:  # noqa: BLE001 - a declaration bug must not reach the UI as a crash
            infos[nid] = NodeInfo(in_shapes=info.in_shapes)
            report(nid, ERROR, "internal", f"'{node.name}' could not be analysed ({type(exc).__name__}: {exc})")

    _warn_dangling(nodes, consumers, report)
    _warn_linear_collapse(nodes, inbound, infos, report)
    _warn_double_softmax(nodes, inbound, report)
    _warn_saturating_chains(nodes, order, inbound, report)
    order = order + looped
    unwired = frozenset(nid for nid in nodes if not inbound[nid] and not consumers[nid])
    if nodes and not any(n.spec.role == "input" for n in nodes.values()):
        # NOTE: on a wired block when there is one, so that the error shows as an error
        first = next((nid for nid in order if nid not in unwired), order[0])
        report(first, ERROR, "no_input_block", "the network has no Input block: add one and wire it in")
    return Analysis(infos, problems, order, unwired)


def _filter_misfit(node: Node) -> Problem | None:
    """The error of a block whose hand-crafted filter (weight init ``sobel_x``...) its kernel cannot hold."""
    scheme = node.params.get("init")
    if scheme not in FILTER_SCHEMES or filter_fits(node.params["kernel_size"]):
        return None
    k = node.params["kernel_size"]
    fit = max(3, k + 1)
    return Problem(
        node.id, ERROR, "filter_size",
        f"{node.spec.title} '{node.name}': the hand-crafted filter '{scheme}' needs an odd kernel size of at "
        f"least 3 (a kernel with a centre pixel), but its kernel is {k}×{k}: set the kernel size to {fit}, "
        "or pick another weight init",
        Fix(f"Set the kernel size to {fit}", set_params=((node.id, (("kernel_size", fit),)),)),
    )


# ---------------------------------------------------------------------- receptive field
def _receptive_field(node: Node, info: NodeInfo, in_rfs: list[ReceptiveField | None]) -> ReceptiveField | None:
    spec = node.spec
    if info.out_shape is None or len(info.out_shape) != 3:
        return None
    if spec.role == "input":
        return ReceptiveField.of(Windows.pixel())
    if "rf_first_input" in spec.tags:
        in_rfs = in_rfs[:1]
    if "broadcast" in spec.tags:
        in_rfs = [_broadcast(r, s, info.out_shape) for r, s in zip(in_rfs, info.in_shapes)]
    known = [r for r in in_rfs if r is not None]
    if not known or len(known) < len(in_rfs):
        return None  # NOTE: a merge with an input of unknown field has an unknown field too
    base = _union(known, max(info.out_shape[1:]))
    if base is None:
        return None
    rule: RF | None = spec.rf(node.params, info.in_shapes) if spec.rf else None
    if rule is None:
        # NOTE: a layer with no rule keeps every pixel where it is (activations, norms, merges);
        # one that still moves pixels to a new height or width (Reshape) has no window.
        return base if any(s[1:] == info.out_shape[1:] for s in info.in_shapes) else None
    windows = base.exact().through(rule)
    return ReceptiveField.of(windows) if windows is not None else None


def _union(rfs: list[ReceptiveField], pixels: int | None = None) -> ReceptiveField | None:
    """The field of a merge of ``pixels``-wide maps: each output pixel sees what it sees through any input."""
    if len(rfs) == 1:
        return rfs[0]
    windows = Windows.union([r.exact() for r in rfs], pixels)
    return ReceptiveField.of(windows) if windows is not None else None


def _broadcast(rf: ReceptiveField | None, shape: Shape, out: Shape) -> ReceptiveField | None:
    """An input's field as a merge that broadcasts it reads it: a 1×1 map is read at its pixel 0 by
    every output pixel (a squeeze-and-excitation gate), so they all see that pixel's window."""
    if rf is None or shape[1:] == out[1:]:
        return rf
    windows = rf.exact().fixed()
    return ReceptiveField.of(windows) if windows is not None else None


# ---------------------------------------------------------------------- reachability and warnings
def _reachable_from_inputs(nodes, order, inbound) -> set[str]:
    reach: set[str] = set()
    for nid in order:
        if nodes[nid].spec.role == "input" or any(s in reach for s in inbound[nid].values()):
            reach.add(nid)
    return reach


def _warn_dangling(nodes, consumers, report) -> None:
    has_head = any(n.spec.role == "head" for n in nodes.values())
    if not has_head:
        return
    for nid, node in nodes.items():
        if node.spec.outputs and not consumers[nid] and node.spec.role != "input":
            report(
                nid,
                WARNING,
                "dead_end",
                f"'{node.name}' feeds nothing: its output is computed and thrown away "
                "(wire it on, or into an output block)",
            )


def _upstream_through_transparent(nodes, inbound, nid: str) -> str | None:
    """The nearest single-input ancestor that is not a transparent (shape-only or affine) block."""
    seen = 0
    cur = inbound[nid].get(0)
    while cur is not None and seen < len(nodes):
        spec = nodes[cur].spec
        if "transparent" not in spec.tags or len(inbound[cur]) != 1:
            return cur
        cur = inbound[cur].get(0)
        seen += 1
    return None


def _linear_bottleneck(infos, up: str, nid: str) -> bool:
    """Whether convolution ``up`` narrows the channels and ``nid`` widens them again: a low-rank
    factorization on purpose (MobileNetV2's linear bottleneck), not a forgotten activation."""
    a, b = infos.get(up), infos.get(nid)
    shapes = (a.in_shapes[0] if a and a.in_shapes else None, a and a.out_shape, b and b.out_shape)
    if any(s is None or len(s) != 3 for s in shapes):
        return False
    before, narrow, wide = (s[0] for s in shapes)
    return before > narrow < wide


def _warn_linear_collapse(nodes, inbound, infos, report) -> None:
    for nid, node in nodes.items():
        if not node.spec.linear or "transparent" in node.spec.tags:
            continue
        up = _upstream_through_transparent(nodes, inbound, nid)
        if up is None or _linear_bottleneck(infos, up, nid):
            continue
        if nodes[up].spec.linear and "transparent" not in nodes[up].spec.tags:
            report(
                nid,
                WARNING,
                "linear_collapse",
                f"'{node.name}' follows '{nodes[up].name}' with no nonlinearity between them: two "
                "linear layers collapse into one linear layer; add an activation such as ReLU",
            )


def _warn_double_softmax(nodes, inbound, report) -> None:
    for nid, node in nodes.items():
        tags = node.spec.tags
        if not tags & {"softmax_inside", "sigmoid_inside"}:
            continue
        up = _upstream_through_transparent(nodes, inbound, nid)
        if up is None:
            continue
        up_tags = nodes[up].spec.tags
        if "softmax_inside" in tags and "softmax" in up_tags:
            report(
                up,
                WARNING,
                "double_softmax",
                f"Softmax '{nodes[up].name}' feeds {node.spec.title} '{node.name}', whose "
                "cross-entropy loss applies softmax again: softmax is applied twice and learning "
                "slows; remove the Softmax and feed the raw scores",
            )
        if "sigmoid_inside" in tags and "sigmoid" in up_tags:
            report(
                up,
                WARNING,
                "double_sigmoid",
                f"Sigmoid '{nodes[up].name}' feeds {node.spec.title} '{node.name}', whose loss "
                "applies the sigmoid itself: remove the Sigmoid and feed the raw score",
            )


def _warn_saturating_chains(nodes, order, inbound, report) -> None:
    depth: dict[str, int] = {}
    for nid in order:
        spec = nodes[nid].spec
        # NOTE: a merge passes the gradient back along every input, so its least saturated path
        # counts (a squeeze-and-excitation gate's Sigmoid is not in series with the features).
        pick = min if spec.role == "merge" else max
        before = pick((depth.get(s, 0) for s in inbound[nid].values()), default=0)
        depth[nid] = before + 1 if "saturating" in spec.tags else before
        if "saturating" in spec.tags and depth[nid] == SATURATING_CHAIN:
            report(
                nid,
                WARNING,
                "vanishing_gradient",
                f"'{nodes[nid].name}' is the {SATURATING_CHAIN}th Sigmoid/Tanh on this path: their "
                "gradients (a sigmoid's is at most 0.25) multiply layer by layer and vanish; "
                "prefer ReLU in hidden layers",
            )


def _g(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def severity_word(severity: str) -> str:
    """"Error", "Warning" or "Note" (an ``info`` problem: worth knowing, nothing to fix)."""
    return {ERROR: "Error", INFO: "Note"}.get(severity, "Warning")


def params_cell(info: NodeInfo) -> str:
    """A block's parameters for a table: "156", "156 frozen" (a frozen block), "2,572 (156 frozen)" (a unit
    some of whose blocks are frozen)."""
    if not info.frozen_params:
        return f"{info.params:,}"
    if not info.trainable:
        return f"{info.params:,} frozen"
    return f"{info.params:,} ({info.frozen_params:,} frozen)"


def frozen_text(n: int) -> str:
    """What ``n`` frozen parameters are, in words: counted with the parameters, never trained."""
    return f"{n:,} of them frozen (their block's Trainable is off): kept as they are while the network trains"


def buffers_text(n: int) -> str:
    """What ``n`` BatchNorm running statistics are, in words: counted apart from the parameters."""
    return f"BatchNorm also keeps {n:,} running statistics (buffers: averaged while training, not trained; saved with the weights)"


def format_count(n: int, digits: int = 3) -> str:
    """12345678 -> '12.3M': ``digits`` significant digits and k, M, G or T; numbers under 1000 as they are.

    NOTE: rounded before the unit is picked, so 999,999 is '1M' (not '1e+03k'), and written in fixed
    point, so 123,456,789 to two digits is '120M' (not '1.2e+02M').
    """
    if n < 1000:
        return str(n)
    rounded = float(f"{n:.{digits}g}")
    unit, size = next((u, s) for u, s in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)) if rounded >= s)
    value = rounded / size
    decimals = max(digits - len(str(int(value))), 0)
    text = f"{value:.{decimals}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + unit


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


__all__ = ["Analysis", "Fix", "NodeInfo", "Problem", "ReceptiveField", "analyze", "format_bytes", "format_count",
           "frozen_text", "params_cell", "severity_word"]

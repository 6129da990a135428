"""Graph -> readable PyTorch source. The one path to a model.

:func:`generate` writes a standalone module from the graph's compiled plan
(:mod:`engine.plan`): imports, any helper functions, one ``nn.Module`` class per unit
definition (used as torchvision uses ``BasicBlock``), and the network's class with the
blocks as named layers in ``__init__`` and a short ``forward``. A frozen block (its trainable setting off) is
frozen in ``__init__`` (``requires_grad_(False)``) and a frozen BatchNorm kept in evaluation mode by the
class's ``train``, so any training loop, the program's or the user's own, leaves them as they are.
:mod:`engine.compile` executes exactly this source to get the model
that trains, and :mod:`engine.export` writes exactly this source to disk, so the
exported file is the trained model.

Safety: user text reaches the source only as a sanitized identifier
(:func:`identifier`) or inside a comment written with ``repr`` (which never contains
a line break). Parameter values are validated numbers, booleans or one of a fixed
set of choices, written with ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.analysis import Analysis
from engine.graph import Graph
from engine.layers.registry import FILTER_SCHEMES, is_frozen, shape_str
from engine.plan import (
    ClassPlan,
    Plan,
    class_identifier,
    compile_plan,
    identifier,
    output_nodes,
)

__all__ = [
    "HELPERS", "GeneratedModel", "InputSpec", "class_identifier", "generate", "helper_source", "identifier",
    "output_nodes",
]

_INIT_WEIGHTS = '''def init_weights(module, scheme):
    """Re-initialize the weights of every conv and linear layer in module; biases start at 0."""
    for m in module.modules():
        if not isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            continue
        if scheme == "xavier_normal":
            nn.init.xavier_normal_(m.weight)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(m.weight)
        elif scheme == "he_normal":
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif scheme == "he_uniform":
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
        elif scheme == "normal":
            nn.init.normal_(m.weight, mean=0.0, std=0.01)
        elif scheme == "zeros":
            nn.init.zeros_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
'''

_FIRST_SCHEME = '        if scheme == "xavier_normal":\n'

#: init_weights's first branch when the code uses a hand-crafted filter (engine.layers.registry.FILTER_SCHEMES)
_FILTER_BRANCH = '''        if scheme in IMAGE_FILTERS:
            # every kernel: the filter on the mean of the input channels it reads
            with torch.no_grad():
                m.weight.copy_(image_filter(scheme, m.kernel_size[0]) / m.weight.shape[1])
        elif scheme == "xavier_normal":
'''

HELPERS = {  # NOTE: the keys are engine.plan.HELPER_NAMES
    "center_crop": '''def center_crop(x, like):
    """Crop the centre of x to the height and width of like (U-Net's skip connections)."""
    dh = (x.shape[-2] - like.shape[-2]) // 2
    dw = (x.shape[-1] - like.shape[-1]) // 2
    return x[..., dh : dh + like.shape[-2], dw : dw + like.shape[-1]]
''',
    "image_filter": f'''IMAGE_FILTERS = {FILTER_SCHEMES!r}


def image_filter(name, size):
    """A size x size classic image filter (size odd, at least 3) as a convolution correlates it with the image.

    sobel_x / sobel_y: brightness rising to the right / downwards; laplacian: the sum of the second differences.
    Past 3x3 both are smoothed with Pascal's triangle (OpenCV's 5x5 Sobel). The blurs sum to 1; the Gaussian's
    sigma follows the size as OpenCV's does.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"a hand-crafted filter needs an odd kernel size of at least 3, not {{size}}")
    r = torch.arange(size, dtype=torch.float64) - size // 2
    if name == "identity":
        kernel = torch.zeros(size, size, dtype=torch.float64)
        kernel[size // 2, size // 2] = 1.0
        return kernel
    if name == "box_blur":
        return torch.full((size, size), 1.0 / size**2, dtype=torch.float64)
    if name == "gaussian_blur":
        sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8
        g = torch.exp(-(r**2) / (2 * sigma**2))
        return torch.outer(g, g) / g.sum() ** 2
    base = {{
        "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    }}
    if name not in base:
        raise ValueError(f"there is no hand-crafted filter called {{name!r}}")
    kernel = torch.tensor(base[name], dtype=torch.float64)
    pascal = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float64)
    for _ in range((size - 3) // 2):  # each pass grows the kernel by 2: convolved with Pascal's 3x3
        kernel = nn.functional.conv2d(nn.functional.pad(kernel, (2, 2, 2, 2))[None, None], pascal[None, None])[0, 0]
    return kernel
''',
    "init_weights": _INIT_WEIGHTS,
}

_INIT_WEIGHTS_WITH_FILTERS = _INIT_WEIGHTS.replace(_FIRST_SCHEME, _FILTER_BRANCH, 1)


def helper_source(name: str, used: set[str] | frozenset[str]) -> str:
    """The source of helper ``name`` in code that uses the helpers ``used``.

    NOTE: ``init_weights`` knows the hand-crafted filters only where the code defines ``image_filter``, so an
    export without them reads as before and never names a function it lacks.
    """
    if name == "init_weights" and "image_filter" in used:
        return _INIT_WEIGHTS_WITH_FILTERS
    return HELPERS[name]


@dataclass(frozen=True)
class InputSpec:
    """What an exported model takes: raw inputs as the data set gives them, and the normalization it applies.

    ``mean`` and ``std`` (one number per channel or feature, fitted on the training split) make the
    module normalize its input itself; without them the module takes inputs as training fed them.
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    value_range: tuple[float, float] | None = None
    classes: tuple[str, ...] | None = None

    @classmethod
    def from_checkpoint(cls, normalizer: Any, data: Any) -> InputSpec:
        """From a training checkpoint's ``normalizer`` and ``data`` entries (either may be missing)."""
        mean = std = value_range = classes = None
        if isinstance(normalizer, dict) and isinstance(normalizer.get("mean"), list) and isinstance(normalizer.get("std"), list):
            mean, std = tuple(float(v) for v in normalizer["mean"]), tuple(float(v) for v in normalizer["std"])
        if isinstance(data, dict):
            lo, hi = data.get("input_min"), data.get("input_max")
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
                value_range = (float(lo), float(hi))
            if isinstance(data.get("classes"), list):
                classes = tuple(str(c) for c in data["classes"])
        return cls(mean, std, value_range, classes)


@dataclass
class GeneratedModel:
    """Source of a model class plus the map from blocks to names in it.

    With units, ids are the flattened graph's (``stage1/block0/conv1``: see :mod:`engine.units`)
    and ``attrs`` give each block's module by its dotted path (``stage1.block0.conv1``), which
    ``model.get_submodule`` takes.
    """

    source: str
    class_name: str
    attrs: dict[str, str] = field(default_factory=dict)  # node id -> module path (blocks with a module)
    variables: dict[str, str] = field(default_factory=dict)  # node id -> forward variable (the network's level)
    input_ids: list[str] = field(default_factory=list)
    output_ids: list[str] = field(default_factory=list)  # heads (or sinks) in return order
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    plan: Plan | None = None


def generate(
    graph: Graph, class_name: str = "Net", analysis: Analysis | None = None, title: str = "",
    input_spec: InputSpec | None = None,
) -> GeneratedModel:
    """Source for ``graph``, written from its :func:`~engine.plan.compile_plan`. Raises
    :class:`CompileError` when the graph has errors.

    With ``input_spec`` (an export of trained weights) the module normalizes its input itself, as training
    normalized the data, and its header says what input it expects.
    """
    plan = compile_plan(graph, class_name, analysis)
    main = plan.main
    an = plan.analysis
    single_input = len(plan.input_ids) == 1
    in_desc = ", ".join(shape_str(an.nodes[i].out_shape) for i in plan.input_ids)
    out_desc = ", ".join(_describe_output(graph, an, plan, o) for o in plan.output_ids)
    norm = None
    if input_spec is not None and input_spec.mean is not None and single_input:
        norm = _normalization(input_spec, an.nodes[plan.input_ids[0]].out_shape)

    lines = [
        f"# Generated by Net Designer{' from project ' + repr(title) if title else ''}.",
        "# Standalone: needs only PyTorch. Run it to build the model and push a random batch through.",
        *_input_header(input_spec, in_desc if single_input else None),
        "from pathlib import Path",
        "",
        "import torch",
        "from torch import nn",
        "",
    ]
    if input_spec is not None and input_spec.classes:
        lines += ["", f"CLASSES = {list(input_spec.classes)!r}  # class index -> name", ""]
    for h in sorted(plan.helpers):
        lines += ["", helper_source(h, plan.helpers).rstrip("\n"), ""]
    for cls in plan.classes[:-1]:
        # NOTE: the unit's name is user text: only in a comment, as a repr (never a line break)
        lines += ["", f"# Unit {cls.unit!r}", *_class_lines(cls, _unit_doc(cls), frozen=_frozen(plan, cls)), ""]
    doc = [
        f"Input: {in_desc}. Output: {out_desc}.",
        "",
        _parameters_line(an),
    ]
    args = ", ".join(main.args)
    lines += [
        "",
        *_class_lines(main, doc, norm, _frozen(plan, main)),
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {main.name}()",
        '    weights = Path(__file__).with_suffix(".pt")',
        "    if weights.exists():",
        "        model.load_state_dict(torch.load(weights, weights_only=True))",
        "    model.eval()",
        *[f"    {a} = {_example_batch(an.nodes[i].out_shape, input_spec)}" for a, i in zip(main.args, plan.input_ids)],
        "    with torch.no_grad():",
        f"        out = model({args})",
        "    for t in out if isinstance(out, tuple) else (out,):",
        "        print(tuple(t.shape))",
        "",
    ]
    variables = dict(zip(plan.input_ids, main.args))
    variables.update({st.node_id: st.outputs[0] for st in main.steps if st.outputs})
    return GeneratedModel(
        source="\n".join(lines),
        class_name=main.name,
        attrs=dict(plan.attrs),
        variables=variables,
        input_ids=list(plan.input_ids),
        output_ids=list(plan.output_ids),
        input_shapes=[an.nodes[i].out_shape for i in plan.input_ids],
        plan=plan,
    )


def _class_lines(cls: ClassPlan, doc: list[str], norm: tuple[list[str], list[str]] | None = None,
                 frozen: tuple[list[str], list[str]] = ([], [])) -> list[str]:
    """One ``nn.Module`` class: its layers in ``__init__`` and a short ``forward``; ``frozen``: the attributes
    of its frozen blocks and of its frozen BatchNorm ones (:func:`_frozen`)."""
    init = [f"self.{st.attr} = {_indent(st.module, 8)}" for st in cls.steps if st.module is not None]
    init += [f"init_weights(self.{st.attr}, {st.init!r})" for st in cls.steps if st.module is not None and st.init != "default"]
    if frozen[0]:
        init += ["# Frozen (Trainable off): these layers' parameters are not trained.",
                 *[f"self.{attr}.requires_grad_(False)" for attr in frozen[0]]]
    forward = [f"{', '.join(st.outputs)} = {st.forward}  # {shape_str(st.shape)}" for st in cls.steps]
    if norm is not None:
        init[:0], forward[:0] = norm
    ret = ", ".join(cls.returns)
    docstring = [f'    """{doc[0]}"""'] if len(doc) == 1 else [
        f'    """{doc[0]}', *[f"    {line}".rstrip() for line in doc[1:]], '    """']
    return [
        f"class {cls.name}(nn.Module):",
        *docstring,
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *[f"        {line}" for line in init],
        "",
        *_train_lines(frozen[1]),
        f"    def forward(self, {', '.join(cls.args)}):",
        *[f"        {line}" for line in forward],
        f"        return {ret}",
    ]


def _frozen(plan: Plan, cls: ClassPlan) -> tuple[list[str], list[str]]:
    """The attributes of ``cls``'s frozen blocks, and of those among them that keep running statistics
    (BatchNorm), read from the blocks of its level: the network, or its unit's definition."""
    level = plan.graph if cls.unit is None else plan.graph.units[cls.unit].graph
    nodes = [(st.attr, level.nodes[st.node_id]) for st in cls.steps if st.attr is not None and st.module is not None]
    frozen = [(attr, node) for attr, node in nodes if is_frozen(node.params)]
    return [a for a, _ in frozen], [a for a, node in frozen if "running_stats" in node.spec.tags]


def _train_lines(attrs: list[str]) -> list[str]:
    """A ``train`` that keeps the frozen BatchNorm layers ``attrs`` in evaluation mode (none: no lines).

    NOTE: in training mode BatchNorm would normalize with each batch's statistics and move its running
    ones; frozen, it normalizes as it will at inference and keeps them as they are.
    """
    if not attrs:
        return []
    return [
        "    def train(self, mode=True):",
        '        """Train or evaluate; the frozen BatchNorm layers stay in evaluation mode (their statistics stay)."""',
        "        super().train(mode)",
        *[f"        self.{attr}.eval()" for attr in attrs],
        "        return self",
        "",
    ]


def _parameters_line(an: Analysis) -> str:
    """The docstring's count: trainable, frozen (when there are any) and BatchNorm's buffers."""
    frozen = f", {an.total_frozen_params:,} frozen" if an.total_frozen_params else ""
    buffers = f"; {an.total_frozen:,} BatchNorm running statistics (buffers, not trained)" if an.total_frozen else ""
    return f"Parameters: {an.total_trainable:,} trainable{frozen}{buffers}."


def _unit_doc(cls: ClassPlan) -> list[str]:
    """The docstring of a unit's class: its shapes."""
    ins = ", ".join(shape_str(s) for s in cls.in_shapes)
    outs = ", ".join(shape_str(s) for s in cls.out_shapes)
    return [f"A unit of the network: {ins} -> {outs}."]


def _normalization(spec: InputSpec, shape: tuple[int, ...]) -> tuple[list[str], list[str]]:
    """``__init__`` and ``forward`` lines that normalize the raw input with the training split's statistics."""
    view = "1, -1" + ", 1" * (len(shape) - 1)
    init = [
        "# The input normalization fitted on the training split: the model takes raw inputs.",
        f"self.register_buffer(\"input_mean\", torch.tensor({_floats(spec.mean)}).view({view}))",
        f"self.register_buffer(\"input_std\", torch.tensor({_floats(spec.std)}).view({view}))",
    ]
    forward = ["x = (x - self.input_mean) / self.input_std  # raw input -> the scale the network trained on"]
    return init, forward


def _floats(values: tuple[float, ...] | None) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values or ()) + "]"


def _input_header(spec: InputSpec | None, shape: str | None) -> list[str]:
    """Comment lines that say what input the exported model expects."""
    if spec is None or shape is None:
        return []
    lines = [f"# Input: float32 tensors of shape (N, {shape.replace('×', ', ')})"]
    if spec.value_range is not None:
        lo, hi = spec.value_range
        lines[0] += f", raw values as the training data had them (from {lo:g} to {hi:g})"
    if spec.mean is not None:
        lines.append("# The model normalizes them itself, with the training split's mean and standard deviation.")
    if spec.classes:
        names = ", ".join(f"{i}: {name!r}" for i, name in enumerate(spec.classes[:50]))
        more = f", ... ({len(spec.classes)} classes)" if len(spec.classes) > 50 else ""
        lines.append(f"# Classes (output index: name): {names}{more}")
    return lines


def _example_batch(shape: tuple[int, ...], spec: InputSpec | None) -> str:
    """A random batch of two inputs; in the raw value range when it is known."""
    dims = ", ".join(map(str, shape))
    if spec is not None and spec.value_range is not None:
        lo, hi = spec.value_range
        return f"torch.rand(2, {dims}) * {float(hi - lo)!r} + {float(lo)!r}"
    return f"torch.randn(2, {dims})"


def _describe_output(graph: Graph, analysis: Analysis, plan: Plan, nid: str) -> str:
    node = plan.flat.nodes[nid]
    shape = shape_str(analysis.nodes[nid].out_shape)
    return f"{shape} ({node.spec.title.lower()})" if node.spec.role == "head" else shape


def _indent(text: str, spaces: int) -> str:
    """Indent continuation lines of a multi-line expression to sit under its first line."""
    return text.replace("\n", "\n" + " " * spaces)

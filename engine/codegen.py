"""Graph -> readable PyTorch source. The one path to a model.

:func:`generate` writes a standalone module: imports, any helper functions, and an
``nn.Module`` class with the blocks as named layers in ``__init__`` and a short
``forward``. :mod:`engine.compile` executes exactly this source to get the model
that trains, and :mod:`engine.export` writes exactly this source to disk, so the
exported file is the trained model.

Safety: user text reaches the source only as a sanitized identifier
(:func:`identifier`) or inside a comment written with ``repr`` (which never contains
a line break). Parameter values are validated numbers, booleans or one of a fixed
set of choices, written with ``repr``.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from engine.analysis import Analysis, analyze
from engine.errors import CompileError
from engine.graph import Graph
from engine.layers.registry import shape_str

HELPERS = {
    "center_crop": '''def center_crop(x, like):
    """Crop the centre of x to the height and width of like (U-Net's skip connections)."""
    dh = (x.shape[-2] - like.shape[-2]) // 2
    dw = (x.shape[-1] - like.shape[-1]) // 2
    return x[..., dh : dh + like.shape[-2], dw : dw + like.shape[-1]]
''',
    "init_weights": '''def init_weights(module, scheme):
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
''',
}

# NOTE: a layer attribute must not shadow nn.Module's own (forward, training, to, ...).
_RESERVED = {"self", "torch", "nn", "x", "model", "weights", "example", "Path", "out", "t"} | set(HELPERS)
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
    """Source of a model class plus the map from blocks to names in it."""

    source: str
    class_name: str
    attrs: dict[str, str] = field(default_factory=dict)  # node id -> attribute (blocks with a module)
    variables: dict[str, str] = field(default_factory=dict)  # node id -> forward variable
    input_ids: list[str] = field(default_factory=list)
    output_ids: list[str] = field(default_factory=list)  # heads (or sinks) in return order
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)


def output_nodes(graph: Graph) -> list[str]:
    """The blocks whose values the model returns: the heads, or the dead ends if there are none."""
    heads = [nid for nid, n in graph.nodes.items() if n.spec.role == "head"]
    if heads:
        return heads
    fed = {e.src for e in graph.edges}
    return [nid for nid, n in graph.nodes.items() if n.spec.role != "input" and nid not in fed]


def generate(
    graph: Graph, class_name: str = "Net", analysis: Analysis | None = None, title: str = "",
    input_spec: InputSpec | None = None,
) -> GeneratedModel:
    """Source for ``graph``. Raises :class:`CompileError` when the graph has errors.

    With ``input_spec`` (an export of trained weights) the module normalizes its input itself, as training
    normalized the data, and its header says what input it expects.
    """
    analysis = analysis or analyze(graph)
    errors = analysis.errors()
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CompileError(f"the network has errors: {errors[0].message}{more}")
    nodes = graph.nodes
    inputs = [nid for nid, n in nodes.items() if n.spec.role == "input"]
    outputs = output_nodes(graph)
    if not outputs:
        raise CompileError("the network has no output: add an output block after the last layer")

    class_name = class_identifier(class_name)
    taken = {class_name}
    names: dict[str, str] = {}
    for nid in analysis.order:
        base = identifier(nodes[nid].name)
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        names[nid] = name

    consumers: dict[str, list[str]] = {nid: [] for nid in nodes}
    for e in graph.edges:
        consumers[e.src].append(e.dst)

    single_input = len(inputs) == 1
    variables: dict[str, str] = {}
    for nid in inputs:
        variables[nid] = "x" if single_input else names[nid]
    x_holder: str | None = inputs[0] if single_input else None
    emitted: set[str] = set(inputs)

    init_lines: list[str] = []
    forward_lines: list[str] = []
    attrs: dict[str, str] = {}
    helpers: set[str] = set()
    for nid in analysis.order:
        node = nodes[nid]
        spec = node.spec
        if spec.role in ("input", "head"):
            continue
        info = analysis.nodes[nid]
        code = spec.code(node.params, info.in_shapes)
        helpers.update(code.helpers)
        args = [variables[e.src] for e in graph.inputs_of(nid)]
        attr = f"self.{names[nid]}"
        if code.module is not None:
            attrs[nid] = names[nid]
            init_lines.append(f"{attr} = {_indent(code.module, 8)}")
            scheme = node.params.get("init", "default")
            if scheme != "default":
                helpers.add("init_weights")
        expr = code.forward(attr, args) if code.forward else f"{attr}({', '.join(args)})"
        emitted.add(nid)
        # NOTE: a chain reuses `x` (as a person writes it); a value read by several
        # blocks, or computed while `x` is still needed, gets the block's own name.
        x_free = x_holder is None or all(c in emitted for c in consumers[x_holder])
        if len(consumers[nid]) == 1 and x_free:
            variables[nid], x_holder = "x", nid
        else:
            variables[nid] = names[nid]
        forward_lines.append(f"{variables[nid]} = {expr}  # {shape_str(info.out_shape)}")
    for nid in analysis.order:
        scheme = nodes[nid].params.get("init", "default")
        if nid in attrs and scheme != "default":
            init_lines.append(f"init_weights(self.{attrs[nid]}, {scheme!r})")
    if input_spec is not None and input_spec.mean is not None and single_input:
        norm_init, norm_forward = _normalization(input_spec, analysis.nodes[inputs[0]].out_shape)
        init_lines[:0], forward_lines[:0] = norm_init, norm_forward

    returned = [variables[graph.inputs_of(o)[0].src] if nodes[o].spec.role == "head" else variables[o] for o in outputs]
    args = ", ".join(variables[i] for i in inputs)
    ret = returned[0] if len(returned) == 1 else ", ".join(returned)
    in_desc = ", ".join(shape_str(analysis.nodes[i].out_shape) for i in inputs)
    out_desc = ", ".join(_describe_output(graph, analysis, o) for o in outputs)

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
    for h in sorted(helpers):
        lines += ["", HELPERS[h].rstrip("\n"), ""]
    lines += [
        "",
        f"class {class_name}(nn.Module):",
        f'    """Input: {in_desc}. Output: {out_desc}.',
        "",
        f"    Parameters: {analysis.total_trainable:,} trainable, {analysis.total_frozen:,} not trainable.",
        '    """',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *[f"        {line}" for line in init_lines],
        "",
        f"    def forward(self, {args}):",
        *[f"        {line}" for line in forward_lines],
        f"        return {ret}",
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {class_name}()",
        '    weights = Path(__file__).with_suffix(".pt")',
        "    if weights.exists():",
        "        model.load_state_dict(torch.load(weights, weights_only=True))",
        "    model.eval()",
        *[f"    {variables[i]} = {_example_batch(analysis.nodes[i].out_shape, input_spec)}" for i in inputs],
        "    with torch.no_grad():",
        f"        out = model({args})",
        "    for t in out if isinstance(out, tuple) else (out,):",
        "        print(tuple(t.shape))",
        "",
    ]
    source = "\n".join(lines)
    return GeneratedModel(
        source=source,
        class_name=class_name,
        attrs=attrs,
        variables=variables,
        input_ids=inputs,
        output_ids=outputs,
        input_shapes=[analysis.nodes[i].out_shape for i in inputs],
    )


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


def _describe_output(graph: Graph, analysis: Analysis, nid: str) -> str:
    node = graph.nodes[nid]
    shape = shape_str(analysis.nodes[nid].out_shape)
    return f"{shape} ({node.spec.title.lower()})" if node.spec.role == "head" else shape


def _indent(text: str, spaces: int) -> str:
    """Indent continuation lines of a multi-line expression to sit under its first line."""
    return text.replace("\n", "\n" + " " * spaces)

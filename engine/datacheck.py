"""Checks between the network and its data: what Train would otherwise stop on, found after every edit.

:func:`check_against_data` compares a project's network with the data set its settings name and
the task they choose, and returns :class:`~engine.analysis.Problem` records in the plain words of
the shape checks, each with a one-click :class:`~engine.analysis.Fix` where one is obvious:

* a network with no output block;
* an output block whose target the data set lacks, or that the task does not train, and a task
  whose targets the data set lacks (``TASK_TARGETS`` and each output block's declared target);
* class scores against the data set's classes, a binary or perceptron output's scores against its 0/1 targets,
  a regression output against the numbers to predict, a segmentation output's channels and size
  against the masks (a box output's 4 numbers are a shape check already); maps smaller than the
  masks by an even margin are an ``info`` note, since training crops the masks to their centre
  (:func:`crop_margins`, the U-Net paper's valid convolutions);
* the Input against the samples, where the loader could not fit them to it.

The data set is read through :func:`engine.datafacts.describe` (cached; never the whole data), so
this is cheap enough to run after every edit; what cannot be known cheaply is not checked.
:func:`analyze_project` is the analysis with these checks added; :func:`require_data_fit` is the
same checks as an exception, for the trainer to call before it touches the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.analysis import ERROR, INFO, WARNING, Analysis, Fix, Problem, analyze
from engine.config import TASKS, DataConfig
from engine.data.basics import TARGET_WORDS, DataError, shape_text
from engine.data.sets import TASK_TARGETS
from engine.datafacts import DataFacts, SampleFit, describe, image_input_side
from engine.errors import GraphError
from engine.graph import Graph, Node
from engine.layers import registry
from engine.tasks import HeadSpec, head_for_target, head_spec

if TYPE_CHECKING:  # pragma: no cover
    from engine.project import Project

__all__ = ["DataMismatchError", "analyze_project", "check_against_data", "crop_margins", "require_data_fit"]

#: the parameter that sets a block's output width (its first dimension) -> one of it, in words
WIDTH_PARAMS = {"units": "unit", "filters": "filter"}


class DataMismatchError(DataError):
    """The network does not fit its data set or task; the message names the block and the fix."""


def analyze_project(project: Project, base_dir: Path | None = None) -> Analysis:
    """:func:`engine.analysis.analyze` of the project's graph, with the data checks added."""
    analysis = analyze(project.graph)
    for problem in check_against_data(project, analysis, base_dir):
        analysis.problems.setdefault(problem.node_id, []).append(problem)
    return analysis


def require_data_fit(project: Project, base_dir: Path | None = None) -> None:
    """Raise :class:`DataMismatchError` for the first error between the network and its data.

    The trainer calls this before loading data, so a mismatch ends the run with these words
    instead of PyTorch's (``Target 7 is out of bounds``).
    """
    analysis = analyze(project.graph)
    errors = [p for p in check_against_data(project, analysis, base_dir) if p.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DataMismatchError(f"{errors[0].message}{more}")


def check_against_data(project: Project, analysis: Analysis, base_dir: Path | None = None) -> list[Problem]:
    """Every mismatch between the network (as ``analysis`` sees it) and the project's data settings."""
    net = _Net(project.graph, analysis)
    cfg: DataConfig = project.data
    if not net.graph.nodes:
        return []
    facts = describe(cfg, base_dir)

    def facts_for(task: str) -> DataFacts | None:
        return facts if task == cfg.task else describe(replace(cfg, task=task), base_dir)

    problems = _input_problems(net, facts, cfg.image_size) if facts is not None else []
    heads = [nid for nid in net.order if net.node(nid).spec.role == "head" and not net.has_error(nid)]
    if not any(n.spec.role == "head" for n in net.graph.nodes.values()):
        return problems + _no_output(net, cfg.task)
    return problems + _head_problems(net, heads, facts, cfg.task, facts_for)


# ------------------------------------------------------------------ the network as the checks read it
@dataclass
class _Net:
    graph: Graph
    analysis: Analysis

    @property
    def order(self) -> list[str]:
        return [nid for nid in self.analysis.order if nid in self.graph.nodes]

    def node(self, nid: str) -> Node:
        return self.graph.nodes[nid]

    def has_error(self, nid: str) -> bool:
        return any(p.severity == ERROR for p in self.analysis.problems.get(nid, ()))

    def out_shape(self, nid: str) -> tuple[int, ...] | None:
        info = self.analysis.nodes.get(nid)
        return info.out_shape if info is not None else None

    def in_shapes(self, nid: str) -> list[tuple[int, ...] | None]:
        info = self.analysis.nodes.get(nid)
        return info.in_shapes if info is not None else []

    def in_shape(self, nid: str) -> tuple[int, ...] | None:
        shapes = self.in_shapes(nid)
        return shapes[0] if shapes else None

    def source(self, nid: str) -> str | None:
        edge = self.graph.edge_into(nid, 0)
        return edge.src if edge is not None else None

    def producer(self, head: str) -> str | None:
        """The block whose units or filters set the width the head receives, through blocks that keep it."""
        cur, seen = self.source(head), 0
        while cur is not None and seen <= len(self.graph.nodes):
            node = self.node(cur)
            if any(p in node.params for p in WIDTH_PARAMS):
                return cur
            out, ins = self.out_shape(cur), self.in_shapes(cur)
            if node.spec.role != "layer" or len(ins) != 1 or not out or not ins[0] or out[0] != ins[0][0]:
                return None
            cur, seen = self.source(cur), seen + 1
        return None

    def inputs(self) -> list[str]:
        return [nid for nid in self.order if self.node(nid).spec.role == "input"]


def _params_fix(net: _Net, nid: str, changes: dict[str, Any]) -> tuple | None:
    """``(nid, ((param, value), ...))`` when the block accepts these values, else None."""
    try:
        net.graph.check_params(nid, changes)
    except GraphError:
        return None
    return (nid, tuple(changes.items()))


def _width_param(node: Node) -> str:
    return next(p for p in WIDTH_PARAMS if p in node.params)


def _set_width_words(node: Node, value: int) -> str:
    """``fc3 to 10 units``, ``conv9 to 1 filter``."""
    return f"{node.name} to {_plural(value, WIDTH_PARAMS[_width_param(node)])}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _title(type_id: str) -> str:
    return registry.get(type_id).title


def _article(title: str) -> str:
    return f"an {title}" if title[0].lower() in "aeiou" else f"a {title}"


# ------------------------------------------------------------------ no output block
def _no_output(net: _Net, task: str) -> list[Problem]:
    head = head_for_target(TASK_TARGETS[task][0])
    title = _title(head)
    consumers = {e.src for e in net.graph.edges}
    sinks = [
        nid for nid in net.order
        if net.node(nid).spec.role not in ("input", "head") and nid not in consumers and net.out_shape(nid) is not None
    ]
    if not sinks:
        first = net.order[0] if net.order else next(iter(net.graph.nodes))
        text = (
            f"the network has no output block yet: add layers, then an output block ({_article(title)} "
            f"for the {task} task) so training knows what to learn"
        )
        return [Problem(first, ERROR, "no_output", text)]
    problems = []
    for nid in sinks:
        name = net.node(nid).name
        text = (
            f"the network has no output block: add one after '{name}' ({_article(title)} for the {task} "
            "task) so training knows what to learn"
        )
        fits = _accepts(head, net.out_shape(nid))
        fix = Fix(f"Add {_article(title)} after {name}", add=((head, nid),)) if fits else None
        problems.append(Problem(nid, ERROR, "no_output", text, fix))
    return problems


def _accepts(head: str, shape: tuple[int, ...] | None) -> bool:
    """Whether an output block of type ``head`` takes ``shape`` without a shape error."""
    if shape is None:
        return False
    spec = registry.get(head)
    try:
        spec.shape(spec.resolve_params({}), [shape])
    except Exception:  # noqa: BLE001 - any refusal means "does not fit"
        return False
    return True


# ------------------------------------------------------------------ output blocks against task and data
FactsFor = Callable[[str], "DataFacts | None"]


def _head_problems(
    net: _Net, heads: list[str], facts: DataFacts | None, task: str, facts_for: FactsFor
) -> list[Problem]:
    keys = {nid: head_spec(net.node(nid).type).target for nid in heads}
    problems: list[Problem] = []
    clash = False
    for nid in heads:
        key = keys[nid]
        if facts is not None and key not in facts.targets:
            problems.append(_head_vs_data(net, nid, keys, facts, task, facts_for))
            clash = True
        elif key not in TASK_TARGETS[task]:
            problems.append(_head_vs_task(net, nid, keys, facts, task, facts_for))
            clash = True
        elif facts is not None:
            problems += _width_problems(net, nid, key, facts)
    if facts is not None and heads and not clash:
        problems += _task_vs_data(net, heads[0], set(keys.values()), facts, task, facts_for)
    return problems


def _have_words(facts: DataFacts) -> str:
    have = [words for k, words in TARGET_WORDS.items() if k in facts.targets]
    return " and ".join(have) if have else "no targets"


def _head_vs_data(
    net: _Net, nid: str, keys: dict[str, str], facts: DataFacts | None, task: str, facts_for: FactsFor
) -> Problem:
    node = net.node(nid)
    key = keys[nid]
    if key == "binary" and facts.classes:
        text = (
            f"'{node.name}' is {_article(node.spec.title)}, which needs a data set of exactly 2 classes, "
            f"but {facts.name} has {facts.classes} classes"
        )
    else:
        text = (
            f"'{node.name}' is {_article(node.spec.title)}, which trains on {TARGET_WORDS[key]}, "
            f"but {facts.name} has none (it has {_have_words(facts)})"
        )
    others = {k for other, k in keys.items() if other != nid}
    task_fix = _task_fix(others | {key}, task, facts_for)
    fix = task_fix or _replace_fix(net, nid, others, task, facts_for)
    return Problem(nid, ERROR, "head_data", text, fix)


def _head_vs_task(
    net: _Net, nid: str, keys: dict[str, str], facts: DataFacts | None, task: str, facts_for: FactsFor
) -> Problem:
    node = net.node(nid)
    wants = " and ".join(TARGET_WORDS[k] for k in TASK_TARGETS[task])
    text = (
        f"'{node.name}' is {_article(node.spec.title)}, but the {task} task trains on {wants}: "
        "the output block must match the task (Training setup)"
    )
    others = {k for other, k in keys.items() if other != nid}
    fix = _task_fix(set(keys.values()), task, facts_for) or _replace_fix(net, nid, others, task, facts_for)
    return Problem(nid, ERROR, "head_task", text, fix)


def _task_vs_data(
    net: _Net, nid: str, keys: set[str], facts: DataFacts, task: str, facts_for: FactsFor
) -> list[Problem]:
    missing = [k for k in TASK_TARGETS[task] if k not in facts.targets]
    if not missing:
        return []
    if missing == ["binary"] and facts.classes:
        text = f"the binary task needs a data set of exactly 2 classes, but {facts.name} has {facts.classes}"
    else:
        text = f"the {task} task trains on {TARGET_WORDS[missing[0]]}, which {facts.name} does not have"
    return [Problem(nid, ERROR, "task_data", text, _task_fix(keys, task, facts_for))]


def _task_fits(t: str, keys: set[str], facts_for: FactsFor) -> bool:
    facts = facts_for(t)
    return facts is None or all(k in facts.targets for k in (*TASK_TARGETS[t], *keys))


def _task_fix(keys: set[str], task: str, facts_for: FactsFor) -> Fix | None:
    """Set the task to the one that trains exactly these targets (or more), if the data has them."""
    exact = [t for t in TASKS if set(TASK_TARGETS[t]) == keys]
    wider = [t for t in TASKS if keys <= set(TASK_TARGETS[t])]
    for t in (*exact, *wider):
        if t != task and _task_fits(t, keys, facts_for):
            return Fix(f"Set the task to {t}", set_data=(("task", t),))
    return None


def _replace_fix(net: _Net, nid: str, others: set[str], task: str, facts_for: FactsFor) -> Fix | None:
    """Replace the head by the one the task (this one first, else another) trains and the data has."""
    src = net.source(nid)
    name = net.node(nid).name
    for t in (task, *[t for t in TASKS if t != task]):
        facts = facts_for(t)
        wanted = [k for k in TASK_TARGETS[t] if k not in others]
        if facts is None or not wanted or not _task_fits(t, others | {wanted[0]}, facts_for):
            continue
        head = head_for_target(wanted[0])
        width = _fit_width(net, nid, wanted[0], facts)
        if width is None:
            continue
        params = tuple(_params_fix(net, p, {_width_param(net.node(p)): v}) for p, v in width)
        if any(p is None for p in params):
            continue
        label = f"Replace {name} with {_article(_title(head))}"
        label += "".join(f" and set {_set_width_words(net.node(p), v)}" for p, v in width)
        if t != task:
            label += f" and set the task to {t}"
        data = (("task", t),) if t != task else ()
        return Fix(label, remove=(nid,), set_params=params, add=((head, src),), set_data=data)
    return None


def _fit_width(net: _Net, nid: str, key: str, facts: DataFacts) -> list[tuple[str, int]] | None:
    """Width changes ((producer, value), ...) that let an output block for ``key`` fit at ``nid``; None if none do."""
    shape = net.in_shape(nid)
    if shape is None:
        return None
    head, want = head_for_target(key), _wanted_width(key, facts)
    if want is None or _width(key, shape) == want:
        return [] if _accepts(head, shape) else None
    producer = net.producer(nid)
    if producer is None or not _resizable(key, shape) or not _accepts(head, (want, *shape[1:])):
        return None
    return [(producer, want)]


# ------------------------------------------------------------------ widths against the data
def _declared(key: str) -> HeadSpec:
    """The declaration of the output block that trains on ``key``.

    NOTE: the first one (a Binary output for ``binary``, not a Perceptron output): every output block of a
    target declares the same ``width`` and ``flat`` and whether it gives class scores (a test holds them to it),
    so either answers alike.
    """
    return head_spec(head_for_target(key))


def _wanted_width(key: str, facts: DataFacts) -> int | None:
    """How wide the output block for ``key`` must be for this data, as it declares (box: its 4 numbers)."""
    width = _declared(key).width
    return width if isinstance(width, int) else getattr(facts, width)


def _width(key: str, shape: tuple[int, ...]) -> int:
    """How wide a block for ``key`` that gets ``shape`` is: every number it gives, or its first dimension."""
    return math.prod(shape) if _declared(key).flat else shape[0]


def _resizable(key: str, shape: tuple[int, ...]) -> bool:
    """Whether a width fix can resize a block for ``key`` that gets ``shape`` (a flat width only as a vector)."""
    return not _declared(key).flat or len(shape) == 1


#: key -> the rule name of a width mismatch
WIDTH_RULES = {"label": "class_count", "binary": "binary_width", "value": "value_width", "mask": "mask_classes"}


def _width_words(key: str, have: int, want: int, data: str) -> tuple[str, str]:
    """(what the block gives, what the data has), in words."""
    if key == "label":
        return f"{have} class scores", f"{data} has {want} classes"
    if key == "binary":
        return _plural(have, "score"), f"{data} has {_plural(want, '0/1 target')} per sample"
    if key == "value":
        return _plural(have, "number"), f"{data} has {_plural(want, 'number')} to predict per sample"
    return _plural(have, "class map"), f"the masks of {data} have {want} classes (background included)"


def _width_problems(net: _Net, nid: str, key: str, facts: DataFacts) -> list[Problem]:
    shape = net.in_shape(nid)
    want = _wanted_width(key, facts)
    if shape is None or want is None or key not in WIDTH_RULES:
        return []
    have = _width(key, shape)
    problems = []
    if have != want:
        problems.append(_width_problem(net, nid, key, have, want, facts))
    if key == "mask" and len(shape) == 3:
        problems += _mask_size_problems(net, nid, shape, facts)
    return problems


def _width_problem(net: _Net, nid: str, key: str, have: int, want: int, facts: DataFacts) -> Problem:
    producer = net.producer(nid)
    at = producer or net.source(nid) or nid
    gives, has = _width_words(key, have, want, facts.name)
    text = f"'{net.node(at).name}' gives {gives} but {has}"
    # NOTE: surplus class scores train (they never match a label); too few stop training at once.
    surplus = _declared(key).output == "class_scores" and have > want
    if surplus:
        text += f": {have - want} of them match no class"
    elif key == "label":
        text += ": a Class output needs one score per class"
    fix = None
    shape = net.in_shape(nid)
    if producer is not None and _resizable(key, shape) and _accepts(head_for_target(key), (want, *shape[1:])):
        node = net.node(producer)
        param = _width_param(node)
        params = _params_fix(net, producer, {param: want})
        if params is not None:
            fix = Fix(f"Set {_set_width_words(node, want)}", set_params=(params,))
    return Problem(at, WARNING if surplus else ERROR, WIDTH_RULES[key], text, fix)


def crop_margins(mask_size: tuple[int, int], map_size: tuple[int, int]) -> tuple[int, int] | None:
    """Where a segmentation output's maps sit in its masks: (top, left) of the centred crop, or None.

    Output pixel (i, j) predicts mask pixel (i + top, j + left), as in the U-Net paper's valid
    convolutions. None when the maps are larger than the masks, or a margin is odd (no centre).
    NOTE: torch-free and standalone: the training package's train.py gets this source as it is.
    """
    dh, dw = int(mask_size[0]) - int(map_size[0]), int(mask_size[1]) - int(map_size[1])
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        return None
    return dh // 2, dw // 2


def _mask_size_problems(net: _Net, nid: str, shape: tuple[int, ...], facts: DataFacts) -> list[Problem]:
    # NOTE: the loaders size the masks like the images: to an image Input's height and width.
    inputs = net.inputs()
    given = net.out_shape(inputs[0]) if len(inputs) == 1 else None
    size = tuple(given[1:]) if given is not None and len(given) == 3 else facts.mask_size
    maps = tuple(shape[1:])
    if size is None or maps == tuple(size):
        return []
    margins = crop_margins(size, maps)
    if margins is not None:
        text = (
            f"'{net.node(nid).name}' gets {shape_text(maps)} class maps of {shape_text(size)} masks: the masks are "
            f"cropped to their centre {shape_text(maps)} ({_margin_words(margins)}), as in the U-Net paper"
        )
        return [Problem(nid, INFO, "mask_crop", text)]
    at = net.source(nid) or nid
    text = f"'{net.node(at).name}' gives {shape_text(maps)} class maps but the masks of {facts.name} are {shape_text(size)}"
    if any(m > s for m, s in zip(maps, size)):
        text += (": the maps must not be larger than the masks; upsample back to the mask's size before the "
                 "Segmentation output, or crop them")
    else:
        odd = [(axis, s - m) for axis, m, s in zip(("height", "width"), maps, size) if (s - m) % 2]
        text += ": " + " and ".join(f"the {axis} differs by {_plural(d, 'pixel')}" for axis, d in odd)
        text += (", an odd number, so the masks have no centre of the maps' size to be cropped to: make the maps "
                 "one pixel smaller or larger, or upsample back to the mask's size")
    return [Problem(at, ERROR, "mask_size", text)]


def _margin_words(margins: tuple[int, int]) -> str:
    """``92 pixels off each side``, or ``6 pixels off the top and bottom, 4 off the left and right``."""
    top, left = margins
    if top == left:
        return f"{_plural(top, 'pixel')} off each side"
    return f"{_plural(top, 'pixel')} off the top and bottom, {left} off the left and right"


# ------------------------------------------------------------------ the Input against the samples
def _input_problems(net: _Net, facts: DataFacts, image_size: int | None) -> list[Problem]:
    inputs = net.inputs()
    if len(inputs) != 1 or facts.fit is None or net.out_shape(inputs[0]) is None:
        return []
    nid = inputs[0]
    shape = tuple(net.out_shape(nid))
    found = _input_mismatch(facts.fit, shape, image_size, facts.name)
    if found is None:
        return []
    reason, want = found
    node = net.node(nid)
    fix = None
    if want is not None:
        changes = {"kind": "image", "channels": want[0], "height": want[1], "width": want[2]} if len(want) == 3 else {
            "kind": "vector", "features": want[0]}
        params = _params_fix(net, nid, changes)
        label = f"Set {node.name} to {_plural(want[0], 'feature') if len(want) == 1 else shape_text(want)}"
        fix = Fix(label, set_params=(params,)) if params is not None else None
    return [Problem(nid, ERROR, "input_data", f"'{node.name}' {reason}", fix)]


def _takes(shape: tuple[int, ...]) -> str:
    return _plural(shape[0], "feature") if len(shape) == 1 else f"{shape_text(shape)} images"


def _input_mismatch(fit: SampleFit, shape, image_size, data: str) -> tuple[str, tuple[int, ...] | None] | None:
    """(why the loader could not fit the samples to an Input of ``shape``, a shape it could), or None."""
    takes = f"takes {_takes(shape)}"
    if fit.kind == "features":
        if shape == (fit.size,):
            return None
        return f"{takes} but {data} has {fit.about}", (fit.size,)
    if fit.kind == "values":
        if math.prod(shape) == fit.size:
            return None
        values = f" ({math.prod(shape)} values)" if len(shape) > 1 else ""
        stored = fit.shape if len(fit.shape) in (1, 3) else (1, *fit.shape) if len(fit.shape) == 2 else (fit.size,)
        return f"{takes}{values} but {data} has {fit.about}", stored
    return _image_mismatch(fit, shape, image_size, data, takes)


def _image_mismatch(fit: SampleFit, shape, image_size, data, takes):
    side = fit.min_side
    if len(shape) == 3:
        c, h, w = shape
        if c not in (1, 3):
            want = (3 if c > 3 else 1, max(h, side), max(w, side))
            fits = "which fit an Input of 1 channel (grayscale) or 3 (RGB)"
            return f"has {c} channels but {data} holds {fit.about}, {fits}", want
        if min(h, w) < side:
            why = f"{takes} but {data} holds {fit.about} of at least {side}×{side} pixels"
            return why, (c, max(h, side), max(w, side))
        return None
    (features,) = shape
    if image_input_side(fit, features, image_size) is not None:
        return None
    s = max(side, image_size or round(math.sqrt(features)))
    example = f"{s * s} for {s}×{s}"
    why = f"{takes} but {data} holds {fit.about}: a vector Input takes them flattened to a square number of pixels"
    return f"{why}, such as {example}", (s * s,)

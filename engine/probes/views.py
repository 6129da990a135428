"""What the live views draw, computed as numpy arrays: activations, filters (a convolution's
kernels, or a linear classifier's class templates), gradient flow, histograms and the model's decisions (decision regions, fitted curve, confusion matrix, hardest
samples, predicted masks and boxes).

Functions named ``*_copy`` in their first argument expect a :func:`~engine.probes.snapshot.
detached_copy` of the training model; the others only read the model they are given (weights
and ``.grad``) and change nothing.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from engine.codegen import GeneratedModel
from engine.errors import GraphError
from engine.graph import Graph
from engine.probes.base import ProbeError, Tap
from engine.tasks import head_spec
from engine.training.objectives import crop_to_output, sample_losses

__all__ = [
    "activation_histograms",
    "activations",
    "confusion",
    "crop_pictures",
    "crop_to_output",
    "data_range",
    "decision_grid",
    "feeds_class_output",
    "filter_view",
    "filters",
    "filters_block",
    "filters_problem",
    "first_conv",
    "gradient_stats",
    "hardest",
    "histograms",
    "layer_of",
    "linear_templates",
    "per_class_accuracy",
    "predicted_boxes",
    "predicted_masks",
    "regression_curve",
    "template_shape",
    "update_ratio",
]

#: the most templates a probe run sends: a Dense on a flattened image may have hundreds of units
MAX_TEMPLATES = 64

# ---------------------------------------------------------------------- activations
def activations(
    model_copy: nn.Module, code: GeneratedModel, graph: Graph, node_id: str, x: torch.Tensor,
    sample: int = 0, *, tap: Tap | None = None, value: torch.Tensor | None = None,
) -> dict[str, Any]:
    """A block's output for probe image ``sample``, and its dead units over all of ``x``.

    Returns:
        ``kind``: ``"maps"`` (``values`` (C, H, W), one image per channel) or ``"vector"``
        (``values`` (F,), a strip); ``min``/``max`` of ``values``; for ReLU blocks
        ``dead`` (bool per channel or unit: zero for every probe sample) and
        ``dead_fraction``, else None for both; ``node_id`` and ``name``.
    """
    if value is None:
        tap = tap or Tap(graph, code)
        with torch.no_grad():
            value = tap.run(model_copy, x, {node_id})[node_id]
    value = value.detach().float()
    if value.dim() == 3:  # (N, A, B) from a 2-D Reshape: one map
        value = value[:, None]
    n = value.shape[0]
    if not 0 <= sample < n:
        raise ProbeError(f"probe sample {sample} does not exist: there are {n} probe samples")
    one = value[sample]
    dead = None
    if "can_die" in graph.nodes[node_id].spec.tags:
        reduce = tuple(d for d in range(value.dim()) if d != 1)
        dead = value.amax(dim=reduce) <= 0
    stats = torch.stack([one.min(), one.max()] + ([dead.float().mean()] if dead is not None else [])).tolist()
    return {
        "node_id": node_id,
        "name": graph.nodes[node_id].name,
        "kind": "maps" if one.dim() == 3 else "vector",
        "values": one.reshape(-1).cpu().numpy() if one.dim() != 3 else one.cpu().numpy(),
        "min": stats[0],
        "max": stats[1],
        "dead": dead.cpu().numpy() if dead is not None else None,
        "dead_fraction": stats[2] if dead is not None else None,
    }


# ---------------------------------------------------------------------- filters
def first_conv(graph: Graph, order: list[str] | None = None) -> str | None:
    """The first convolution block (one with kernels to show) in the network's order, or None."""
    for nid in order or list(graph.nodes):
        if "kernels" in graph.nodes[nid].spec.tags:
            return nid
    return None


def _conv_weight(model: nn.Module, code: GeneratedModel, node_id: str) -> torch.Tensor:
    attr = code.attrs.get(node_id)
    module = model.get_submodule(attr) if attr else None
    for sub in module.modules() if module is not None else ():
        if isinstance(sub, nn.ConvTranspose2d):
            return sub.weight.detach().transpose(0, 1)  # stored (in, out, k, k)
        if isinstance(sub, nn.Conv2d):
            return sub.weight.detach()
    raise ProbeError(f"block {node_id!r} is not a convolution, so it has no kernels to show")


@torch.no_grad()
def filters(model: nn.Module, code: GeneratedModel, node_id: str, rgb: bool = False) -> np.ndarray:
    """A convolution's kernels as tiles scaled into [0, 1] per filter (float32).

    Returns:
        (out, in, k, k): one tile per filter and input channel; with ``rgb`` (only when the
        kernels read 3 channels) (out, k, k, 3), one colour tile per filter. A constant filter
        is mid-grey. (For a separable convolution these are its depthwise kernels.)
    """
    w = _conv_weight(model, code, node_id).float()
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    span = w.amax(dim=(1, 2, 3), keepdim=True) - lo
    tiles = torch.where(span > 0, (w - lo) / span.clamp_min(1e-30), torch.full_like(w, 0.5))
    if rgb:
        if tiles.shape[1] != 3:
            raise ProbeError(f"RGB filter tiles need kernels that read 3 channels; these read {tiles.shape[1]}")
        tiles = tiles.permute(0, 2, 3, 1)
    return tiles.contiguous().cpu().numpy()


# ---------------------------------------------------------------------- class templates
Shapes = Callable[[str], tuple[int, ...] | None]  # a block id -> its output shape (no batch)


def template_shape(graph: Graph, shape_of: Shapes, node_id: str) -> tuple[int, int, int] | None:
    """The C×H×W image a Dense block reads unrolled, so that each weight row reshaped to it is a template.

    That is so when the Dense reads a Flatten (or a Reshape to a vector) of an image-shaped tensor (an
    image Input, a pooled map), directly or through weightless blocks that pass the vector on unchanged
    (Dropout, Identity); None for any other block. ``shape_of`` gives a block's output shape.
    """
    node = graph.nodes.get(node_id)
    if node is None or node.type != "Dense":
        return None
    edge = graph.inputs_of(node_id)[0]
    while edge is not None:
        block = graph.nodes[edge.src]
        ins = graph.inputs_of(edge.src)
        if block.spec.role != "layer" or block.spec.has_weights or "transparent" not in block.spec.tags:
            return None
        if len(ins) != 1 or ins[0] is None:
            return None
        before, after = shape_of(ins[0].src), shape_of(edge.src)
        if before is None or after is None or len(after) != 1:
            return None
        if len(before) == 3 and after[0] == math.prod(before):
            # NOTE: Flatten and Reshape unroll row-major (channel, row, column), as reshape() rolls back
            return (int(before[0]), int(before[1]), int(before[2]))
        if tuple(before) != tuple(after):
            return None
        edge = ins[0]
    return None


def feeds_class_output(graph: Graph, node_id: str) -> bool:
    """Whether the block feeds a Class output directly (its units then score the classes, in order)."""
    for nid in graph.successors(node_id):
        node = graph.nodes[nid]
        if node.spec.head is not None and node.spec.head.target == "label":
            return True
    return False


def filters_block(graph: Graph, order: list[str], shape_of: Shapes) -> str | None:
    """The block the Filters view shows unless one is chosen: the first convolution, else (a linear
    classifier) the first Dense whose weights are image templates; None when there is neither."""
    conv = first_conv(graph, order)
    if conv is not None:
        return conv
    return next((nid for nid in order if template_shape(graph, shape_of, nid) is not None), None)


def filters_problem(graph: Graph, shape_of: Shapes, node_id: str) -> str | None:
    """Why the Filters view cannot show this block, or None when it can."""
    node = graph.nodes[node_id]
    if "kernels" in node.spec.tags or template_shape(graph, shape_of, node_id) is not None:
        return None
    return (f"'{node.name}' is neither a convolution (kernels) nor a Dense layer that reads a flattened "
            "image (class templates), so the Filters view has nothing of it to show")


def _dense_weight(model: nn.Module, code: GeneratedModel, node_id: str) -> torch.Tensor:
    attr = code.attrs.get(node_id)
    module = model.get_submodule(attr) if attr else None
    for sub in module.modules() if module is not None else ():
        if isinstance(sub, nn.Linear):
            return sub.weight.detach()
    raise ProbeError(f"block {node_id!r} is not a Dense layer, so it has no weight rows to show")


@torch.no_grad()
def linear_templates(
    model: nn.Module, code: GeneratedModel, node_id: str, shape: tuple[int, int, int], limit: int | None = None,
) -> np.ndarray:
    """A Dense layer's weight rows as images: (K, C, H, W) float32, row k reshaped to ``shape``.

    Unit k's score is the sum of these weights times the pixels (plus its bias): the row is the
    template the unit matches the image against. ``limit``: at most that many units, the first.
    """
    w = _dense_weight(model, code, node_id)
    if w.shape[1] != math.prod(shape):
        raise ProbeError(f"the weights of {node_id!r} read {w.shape[1]} features, not {'×'.join(map(str, shape))}")
    rows = w[:limit] if limit is not None else w
    return rows.float().reshape(-1, *shape).contiguous().cpu().numpy()


def filter_view(model: nn.Module, code: GeneratedModel, graph: Graph, shape_of: Shapes, node_id: str) -> dict[str, Any]:
    """What the Filters view shows of a block: a convolution's kernels or a linear classifier's templates.

    Returns:
        ``node_id``, ``name`` and ``kind``: ``"kernels"`` with ``tiles`` and ``rgb`` as :func:`filters`
        gives them (``rgb`` only when the kernels read 3 channels, else None), or ``"templates"`` with
        ``templates`` (K, C, H, W) the raw weights of the first :data:`MAX_TEMPLATES` units, ``units``
        (how many there are) and ``classes`` (True when the units score a Class output's classes).
    """
    name = graph.nodes[node_id].name
    if "kernels" in graph.nodes[node_id].spec.tags:
        tiles = filters(model, code, node_id)
        rgb = tiles.transpose(0, 2, 3, 1).copy() if tiles.shape[1] == 3 else None
        return {"kind": "kernels", "node_id": node_id, "name": name, "tiles": tiles, "rgb": rgb}
    shape = template_shape(graph, shape_of, node_id)
    if shape is None:
        raise ProbeError(filters_problem(graph, shape_of, node_id))
    templates = linear_templates(model, code, node_id, shape, MAX_TEMPLATES)
    return {"kind": "templates", "node_id": node_id, "name": name, "templates": templates,
            "units": int(_dense_weight(model, code, node_id).shape[0]), "classes": feeds_class_output(graph, node_id)}


# ---------------------------------------------------------------------- gradient flow
def layer_of(param_name: str, layers: Iterable[str] = ()) -> str:
    """The layer a parameter belongs to: the longest of ``layers`` (module paths such as
    ``stage1.block0.conv1``, for blocks inside units) that holds it, else its top-level module
    (``conv1.weight`` -> ``conv1``)."""
    held = [layer for layer in layers if param_name.startswith(layer + ".")]
    return max(held, key=len) if held else param_name.split(".", 1)[0]


def _grouped(named: list[tuple[str, torch.Tensor]], layers: Iterable[str] = ()) -> dict[str, list[torch.Tensor]]:
    layers = tuple(layers)
    groups: dict[str, list[torch.Tensor]] = {}
    for name, t in named:
        groups.setdefault(layer_of(name, layers), []).append(t)
    return groups


def _group_norms(groups: Mapping[str, list[torch.Tensor | None]]) -> list[float]:
    """sqrt of the summed squares of each group's tensors (NaN for a group with none), one sync."""
    device = None
    norms = []
    for tensors in groups.values():
        present = [t for t in tensors if t is not None]
        if not present:
            norms.append(None)
            continue
        device = present[0].device
        sq = torch.stack([torch.linalg.vector_norm(t.detach().float()) ** 2 for t in present]).sum()
        norms.append(sq.sqrt())
    if device is None:
        return [float("nan")] * len(norms)
    filled = [n if n is not None else torch.tensor(float("nan"), device=device) for n in norms]
    return torch.stack([f.to(device) for f in filled]).tolist() if filled else []


@torch.no_grad()
def gradient_stats(model: nn.Module, layers: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """Per layer: ``grad_norm`` (NaN before the first backward) and ``weight_norm``.

    Reads the parameters and their ``.grad`` only; nothing is changed.
    """
    named = [(n, p) for n, p in model.named_parameters()]
    weights = _grouped(named, layers)
    grads = _grouped([(n, p.grad) for n, p in named], layers)
    w = _group_norms(weights)
    g = _group_norms(grads)
    return {layer: {"grad_norm": gn, "weight_norm": wn} for layer, gn, wn in zip(weights, g, w)}


@torch.no_grad()
def update_ratio(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], layers: Iterable[str] = ()
) -> dict[str, float]:
    """Per layer ``‖after − before‖ / ‖before‖`` over parameters with the same names.

    A healthy step moves the weights by roughly a thousandth of their size; far more says the
    learning rate is too high, far less that the layer barely learns.
    """
    diffs: dict[str, list[torch.Tensor]] = {}
    sizes: dict[str, list[torch.Tensor]] = {}
    for name, b in before.items():
        if name not in after or not torch.is_floating_point(b):
            continue
        layer = layer_of(name, layers)
        diffs.setdefault(layer, []).append(after[name].detach().float() - b.detach().float())
        sizes.setdefault(layer, []).append(b)
    d = _group_norms(diffs)
    s = _group_norms(sizes)
    return {layer: (dn / sn if sn > 0 else float("inf") if dn > 0 else 0.0) for layer, dn, sn in zip(diffs, d, s)}


# ---------------------------------------------------------------------- histograms
def histogram_on_device(t: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts (bins,) over the tensor's own [min, max] and that range (2,), without a device sync."""
    v = t.detach().float().reshape(-1)
    if v.numel() == 0:
        return torch.zeros(bins, device=v.device), torch.zeros(2, device=v.device)
    lohi = torch.stack([v.min(), v.max()])
    scale = bins / (lohi[1] - lohi[0]).clamp_min(1e-30)
    idx = ((v - lohi[0]) * scale).nan_to_num(0.0).clamp(0, bins - 1).long()
    counts = torch.zeros(bins, device=v.device).index_add_(0, idx, torch.ones_like(v))
    return counts, lohi


def finish_histograms(parts: list[tuple[torch.Tensor, torch.Tensor]], bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(L, bins) counts and (L, bins + 1) edges from :func:`histogram_on_device` results (one transfer)."""
    if not parts:
        return np.zeros((0, bins), np.float32), np.zeros((0, bins + 1), np.float32)
    counts = torch.stack([c for c, _ in parts]).cpu().numpy().astype(np.float32)
    ranges = torch.stack([r for _, r in parts]).cpu().numpy().astype(np.float64)
    edges = np.zeros((len(parts), bins + 1), np.float32)
    for i, (lo, hi) in enumerate(ranges):
        if not (np.isfinite(lo) and np.isfinite(hi)):
            counts[i] = 0.0  # NaN or infinite values: nothing sensible to count
            lo, hi = 0.0, 0.0
        if hi <= lo:  # one value: centre it in a unit-wide range
            total = counts[i].sum()
            counts[i] = 0.0
            counts[i, bins // 2] = total
            lo, hi = lo - 0.5, lo + 0.5
        edges[i] = np.linspace(lo, hi, bins + 1)
    return counts, edges


def _histograms(tensors: list[torch.Tensor], bins: int) -> tuple[np.ndarray, np.ndarray]:
    return finish_histograms([histogram_on_device(t, bins) for t in tensors], bins)


@torch.no_grad()
def histograms(model: nn.Module, bins: int = 30, layers: Iterable[str] = ()) -> dict[str, Any]:
    """Weight histograms per layer (weights only, not biases).

    Returns:
        ``layers`` (L names), ``counts`` (L, bins) float32 and ``edges`` (L, bins + 1).
    """
    groups = _grouped([(n, p) for n, p in model.named_parameters() if n.endswith("weight")], layers)
    tensors = [torch.cat([t.detach().reshape(-1) for t in ts]) for ts in groups.values()]
    counts, edges = _histograms(tensors, bins)
    return {"layers": list(groups), "counts": counts, "edges": edges}


def activation_histograms(
    model_copy: nn.Module, code: GeneratedModel, graph: Graph, x: torch.Tensor, bins: int = 30,
    *, tap: Tap | None = None, values: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Histograms of every block's output over the probe batch ``x``.

    Returns:
        ``node_ids`` and ``layers`` (block names) for L blocks, ``counts`` (L, bins), ``edges``.
    """
    tap = tap or Tap(graph, code)
    ids = [nid for nid in tap.order if graph.nodes[nid].spec.role not in ("input", "head")]
    if values is None:
        with torch.no_grad():
            values = tap.run(model_copy, x, ids)
    ids = [nid for nid in ids if nid in values]
    counts, edges = _histograms([values[nid] for nid in ids], bins)
    return {"node_ids": ids, "layers": [graph.nodes[n].name for n in ids], "counts": counts, "edges": edges}


# ---------------------------------------------------------------------- decisions
def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _output(out, index: int) -> torch.Tensor:
    return out[index] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def predict_all(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> list[torch.Tensor]:
    """Every output of the model for ``x`` in one pass (one float tensor per output)."""
    device = _device(model)
    parts: list[list[torch.Tensor]] = []
    for i in range(0, x.shape[0], batch_size):
        out = model(x[i : i + batch_size].to(device))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if not parts:
            parts = [[] for _ in outs]
        for bucket, o in zip(parts, outs):
            bucket.append(o.float())
    return [torch.cat(b) for b in parts]


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, output: int, batch_size: int = 512) -> torch.Tensor:
    device = _device(model)
    parts = [_output(model(x[i : i + batch_size].to(device)), output).float() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0)


def _probabilities(scores: torch.Tensor, kind: str) -> torch.Tensor:
    """Class probabilities (M, K): softmax of class scores, or [1 − p, p] of one binary score (a perceptron's,
    ``kind="sign"``, is sure: p is 1 where the score is above 0, else 0)."""
    if kind == "sign":
        p = (scores[:, :1] > 0).float()
        return torch.cat([1 - p, p], dim=1)
    if kind == "binary" or scores.shape[1] == 1:
        p = torch.sigmoid(scores[:, :1])
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(scores, dim=1)


def data_range(x: torch.Tensor | np.ndarray, margin: float = 0.1) -> list[tuple[float, float]]:
    """Per feature (lo, hi) of the data, widened by ``margin`` of the span on each side."""
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).reshape(len(x), -1)
    lo, hi = a.min(0), a.max(0)
    pad = np.maximum((hi - lo) * margin, 1e-3)
    return [(float(a_), float(b_)) for a_, b_ in zip(lo - pad, hi + pad)]


def decision_grid(
    model_copy: nn.Module, x_range: tuple[float, float], y_range: tuple[float, float], steps: int = 100,
    *, output: int = 0, kind: str = "class",
) -> np.ndarray:
    """Predicted class probabilities over a grid of 2-D inputs: (steps, steps, K) float32.

    Row i is ``y = linspace(*y_range)[i]``, column j is ``x = linspace(*x_range)[j]`` (so the
    array is an image with y growing downwards). ``kind="binary"`` (or a single score) gives
    K = 2: probabilities of class 0 and class 1; ``kind="sign"`` the same, 0 or 1, from a perceptron's score.
    """
    xs = torch.linspace(float(x_range[0]), float(x_range[1]), steps)
    ys = torch.linspace(float(y_range[0]), float(y_range[1]), steps)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    probs = _probabilities(_predict(model_copy, points, output, batch_size=4096), kind)
    return probs.reshape(steps, steps, -1).cpu().numpy().astype(np.float32)


def regression_curve(
    model_copy: nn.Module, x_range: tuple[float, float], steps: int = 200, *, output: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The fitted function of a 1-D regression: ``xs`` (steps,) and predictions ``ys`` (steps, k)."""
    xs = torch.linspace(float(x_range[0]), float(x_range[1]), steps)
    ys = _predict(model_copy, xs[:, None], output, batch_size=4096)
    return xs.numpy().astype(np.float32), ys.reshape(steps, -1).cpu().numpy().astype(np.float32)


def confusion(
    model_copy: nn.Module, ds, *, output: int = 0, classes: int | None = None, batch_size: int = 512,
    scores: torch.Tensor | None = None,
) -> np.ndarray:
    """Confusion matrix (K, K) int64 of a data set with labels: row = true class, column = predicted.

    ``scores``: the model's outputs for ``ds`` when the caller has them already (saves a pass).
    """
    if "label" not in ds.targets:
        raise ProbeError(f"a confusion matrix needs class labels; {ds.name} has none")
    labels = ds.targets["label"].reshape(-1)
    if scores is None:
        scores = _predict(model_copy, ds.x, output, batch_size)
    k = classes or max(scores.shape[1], len(ds.classes or ()), int(labels.max()) + 1 if len(labels) else 1)
    pred = scores.argmax(1).cpu() if scores.shape[1] > 1 else (scores[:, 0] > 0).long().cpu()
    idx = labels.cpu() * k + pred
    return torch.bincount(idx, minlength=k * k)[: k * k].reshape(k, k).numpy().astype(np.int64)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix (NaN for a class with no samples)."""
    m = np.asarray(matrix, dtype=np.float64)
    total = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.diag(m) / total, np.nan)


def hardest(
    model_copy: nn.Module, ds, k: int = 16, *, head_type: str = "ClassificationOutput", output: int = 0,
    batch_size: int = 512, scores: torch.Tensor | None = None, loss: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` samples with the highest loss, hardest first: (indices (k,), losses (k,)).

    ``loss``: the output block's loss setting (None: its default), so the ranking follows the loss it trains with.

    ``scores``: the model's outputs for ``ds`` when the caller has them already (saves a pass).
    """
    try:
        key = head_spec(head_type).target
    except (KeyError, GraphError):
        key = None
    if key is None or key not in ds.targets:
        raise ProbeError(f"{ds.name} has no {key or head_type} targets to measure a loss against")
    target = ds.targets[key]
    losses = []
    if scores is None:
        scores = _predict(model_copy, ds.x, output, batch_size)
    with torch.no_grad():
        for i in range(0, len(ds), batch_size):
            out = scores[i : i + batch_size]
            losses.append(sample_losses(head_type, out, target[i : i + batch_size].to(out.device), loss).cpu())
    if not losses:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    loss = torch.cat(losses)
    top = torch.topk(loss, min(k, loss.numel()))
    return top.indices.numpy().astype(np.int64), top.values.numpy().astype(np.float32)


def predicted_masks(model_copy: nn.Module, x: torch.Tensor, *, output: int = 0) -> np.ndarray:
    """The class of every pixel (N, H, W) int64 from a segmentation output."""
    scores = _predict(model_copy, x, output)
    if scores.dim() != 4:
        raise ProbeError("predicted masks need a segmentation output (classes×height×width scores)")
    return scores.argmax(1).cpu().numpy().astype(np.int64)


def crop_pictures(pictures: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Display images (N, H, W) or RGB (N, H, W, 3) cut to the centre ``size`` that masks are cropped to.

    A segmentation output smaller than its masks predicts only their centre (:func:`crop_to_output`);
    the images shown under its masks are cut the same way, so every overlay lines up pixel for pixel.
    """
    pictures = np.asarray(pictures)
    if pictures.ndim == 4:  # NOTE: channels last: crop the (N, 3, H, W) view, then back
        return np.ascontiguousarray(np.moveaxis(crop_to_output(np.moveaxis(pictures, -1, 1), size), 1, -1))
    return np.ascontiguousarray(crop_to_output(pictures, size))


def predicted_boxes(model_copy: nn.Module, x: torch.Tensor, *, output: int = 0) -> np.ndarray:
    """Predicted boxes (N, 4) float32: x, y of the top-left corner, width, height (fractions)."""
    scores = _predict(model_copy, x, output)
    if scores.dim() != 2 or scores.shape[1] != 4:
        raise ProbeError("predicted boxes need a box output of 4 numbers")
    return scores.cpu().numpy().astype(np.float32)

"""Class activation maps: where in the image the network found the evidence for a class.

* **CAM** needs a network whose class scores are a linear function of a global pool:
  GlobalAvgPool (or GlobalMaxPool) → Dense → Class output (blocks that are the identity at
  inference, such as Dropout or Flatten, and BatchNorm, which is a per-feature scale then, may sit
  between). The score of class c is then a weighted sum of the pooled feature maps, so the same
  weights applied to the maps *before* pooling show where each map contributed: ``Σ_k w_ck A_k``.
  The map is the same for either pool: max pooling rewards one strong spot per map, average
  pooling the whole extent of the evidence, but both score class c with the weights ``w_ck``.
  With no Dense at all (Network in Network's class maps pooled straight into the output) the
  weights are the identity and the map of class c is the c-th feature map.
* **Grad-CAM** works for any convolutional network: the weight of map k is the spatial mean
  of the gradient of the class score with respect to it, and the map is
  ``ReLU(Σ_k α_k A_k)``. For GlobalAvgPool → Dense, ``α_k = w_ck / (h·w)``, so Grad-CAM is
  CAM divided by the map size, before the ReLU: the two agree up to normalization. (Not so after
  GlobalMaxPool, whose gradient reaches only each map's largest pixel.)
* A **Binary output** has one logit z, the score of class 1; class 0's score is −z
  (:func:`class_scores`), so its maps show the evidence against class 1.

Maps are upsampled bilinearly to the input's resolution and scaled into [0, 1] per image:
CAM by its minimum and maximum, Grad-CAM (already non-negative) by its maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.analysis import Analysis
from engine.codegen import GeneratedModel
from engine.colormap import COLOR_TABLE, colorize, overlay
from engine.graph import Graph
from engine.probes.base import Head, ProbeError, Tap, class_head
from engine.tasks import heads_with_view

__all__ = [
    "COLOR_TABLE",
    "CamPath",
    "cam",
    "cam_from",
    "cam_maps",
    "cam_path",
    "class_scores",
    "colorize",
    "default_cam_layer",
    "grad_cam",
    "grad_cam_layer",
    "grad_cam_maps",
    "image_size",
    "overlay",
    "pick_classes",
    "save_png",
    "scale_cam",
    "scale_grad_cam",
    "weigh_maps",
]

# ---------------------------------------------------------------------- which block
def default_cam_layer(graph: Graph, analysis: Analysis) -> str | None:
    """The last block with an image-shaped output on the way to the class output.

    That is the block just before global pooling or Flatten: its maps are the most semantic
    ones that still know where things are. None when the network has no class output or no
    spatial block feeding it.
    """
    kinds = heads_with_view("class_maps")
    heads = [nid for nid, n in graph.nodes.items() if n.type in kinds]
    heads.sort(key=lambda nid: kinds.index(graph.nodes[nid].type))
    if not heads:
        return None
    queue = [e.src for e in graph.inputs_of(heads[0]) if e is not None]
    seen: set[str] = set()
    while queue:
        nid = queue.pop(0)
        if nid in seen:
            continue
        seen.add(nid)
        info = analysis.nodes.get(nid)
        if info is not None and info.out_shape is not None and len(info.out_shape) == 3:
            return None if graph.nodes[nid].spec.role == "input" else nid
        queue.extend(e.src for e in graph.inputs_of(nid) if e is not None)
    return None


@dataclass(frozen=True)
class CamPath:
    """Global pooling (average or max) → (linear blocks) → class output, as found in a network."""

    head: Head
    pool: str  # the GlobalAvgPool or GlobalMaxPool block
    features: str  # the block whose maps the pool reads
    tail: tuple[str, ...]  # blocks from the pool to the head, nearest the head first


def cam_path(graph: Graph, code: GeneratedModel) -> CamPath:
    """Find the pool and linear tail CAM needs; ProbeError saying what is in the way otherwise."""
    head = class_head(graph, code, "CAM")
    nodes = graph.nodes
    tail: list[str] = []
    cur = head.source
    while True:
        node = nodes[cur]
        if "global_pool" in node.spec.tags:  # NOTE: GlobalAvgPool and GlobalMaxPool; CAM weighs their maps alike
            break
        if "linear_tail" not in node.spec.tags:  # NOTE: the blocks that keep the score linear in the pooled features
            hint = "" if node.spec.role == "input" else f"; '{node.name}' ({node.spec.title}) is in the way"
            raise ProbeError(
                "CAM needs the network to end GlobalAvgPool (or GlobalMaxPool) → Dense → Class output, "
                f"with nothing nonlinear after the pooling{hint}: use Grad-CAM, which works for any convolutional network"
            )
        tail.append(cur)
        src = graph.inputs_of(cur)[0]
        cur = src.src
    features = graph.inputs_of(cur)[0].src
    return CamPath(head, cur, features, tuple(tail))


def _tail_weights(model: torch.nn.Module, code: GeneratedModel, graph: Graph, path: CamPath, tap: Tap) -> torch.Tensor:
    """The (classes, channels) matrix M with scores = M · pooled + constant."""
    channels = tap.shape(path.pool)[0]
    m: torch.Tensor | None = None
    for nid in path.tail:
        node = graph.nodes[nid]
        shape = tap.shape(nid)
        if shape is None or len(shape) != 1:
            raise ProbeError(f"CAM: '{node.name}' turns the pooled vector into {shape}; it must stay a vector")
        mod = model.get_submodule(code.attrs[nid]) if nid in code.attrs else None
        if node.type == "Dense":
            w = mod.weight.detach().float()
            m = w if m is None else m @ w
        elif node.type == "BatchNorm":
            bn = _first_batchnorm(mod)
            if bn.running_var is None:
                raise ProbeError(f"CAM: BatchNorm '{node.name}' keeps no running statistics, so it is not linear")
            scale = torch.rsqrt(bn.running_var.detach().float() + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight.detach().float()
            m = torch.diag(scale) if m is None else m * scale[None, :]
    if m is None:
        m = torch.eye(channels, device=_device(model))
    if m.shape[1] != channels:
        raise ProbeError(f"CAM: the class weights read {m.shape[1]} features but the pool gives {channels}")
    return m


def _first_batchnorm(mod: torch.nn.Module) -> torch.nn.modules.batchnorm._BatchNorm:
    for sub in mod.modules():
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
            return sub
    raise ProbeError("CAM: a BatchNorm block without a batch-norm module")


def _device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ---------------------------------------------------------------------- the maps
def class_scores(scores: torch.Tensor) -> torch.Tensor:
    """One score per class (N, K): a Binary output's single logit z becomes ``(−z, z)``.

    A binary network scores class 1 with z and class 0 with −z (the logit of 1 − p), so the
    evidence for class 0 is the evidence against class 1, and argmax picks the predicted class.
    """
    return torch.cat([-scores, scores], dim=1) if scores.shape[1] == 1 else scores


def pick_classes(scores: torch.Tensor, class_index, what: str) -> torch.Tensor:
    """Class per sample: the predicted one, or ``class_index`` (one int or one per sample)."""
    n, k = scores.shape
    if class_index is None:
        return scores.detach().argmax(1)
    idx = torch.as_tensor(np.asarray(class_index, dtype=np.int64).reshape(-1), device=scores.device)
    if idx.numel() == 1:
        idx = idx.expand(n)
    if idx.numel() != n:
        raise ProbeError(f"{what}: {idx.numel()} class indices for {n} images")
    bad = idx[(idx < 0) | (idx >= k)]
    if bad.numel():
        raise ProbeError(
            f"{what}: class index {int(bad[0])} is out of range: the network has {k} "
            f"{'classes' if k > 1 else 'score'} (indices 0 to {k - 1})"
        )
    return idx


def image_size(code: GeneratedModel, what: str) -> tuple[int, int]:
    """(H, W) of the network's image Input; ProbeError naming ``what`` for a vector Input."""
    shape = code.input_shapes[0] if code.input_shapes else ()
    if len(shape) != 3:
        raise ProbeError(f"{what} needs an image input; this network's Input is a vector")
    return shape[1], shape[2]


def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _scale_minmax(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    lo = flat.min(1).values[:, None, None]
    span = flat.max(1).values[:, None, None] - lo
    return torch.where(span > 0, (maps - lo) / span.clamp_min(1e-30), torch.zeros_like(maps))


def _scale_max(maps: torch.Tensor) -> torch.Tensor:
    top = maps.flatten(1).max(1).values[:, None, None]
    return torch.where(top > 0, maps / top.clamp_min(1e-30), torch.zeros_like(maps)).clamp_(0.0, 1.0)


def cam_maps(
    model_copy: torch.nn.Module, code: GeneratedModel, graph: Graph, x: torch.Tensor, class_index=None,
    *, tap: Tap | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw CAM maps at feature resolution (N, h, w), the classes used and the head's scores."""
    tap = tap or Tap(graph, code)
    path = cam_path(graph, code)
    with torch.no_grad():
        vals = tap.run(model_copy, x, {path.features, path.head.node_id})
        scores = vals[path.head.node_id].float()
        maps, classes = cam_from(model_copy, code, graph, tap, path, vals[path.features], scores, class_index)
    return maps, classes, scores


@torch.no_grad()
def cam_from(
    model_copy: torch.nn.Module, code: GeneratedModel, graph: Graph, tap: Tap, path: CamPath,
    features: torch.Tensor, scores: torch.Tensor, class_index=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw CAM maps (N, h, w) and classes from already computed feature maps and the head's scores."""
    classes = pick_classes(class_scores(scores), class_index, "CAM")
    m = _tail_weights(model_copy, code, graph, path, tap)
    if scores.shape[1] == 1:
        m = torch.cat([-m, m])  # NOTE: the rows of −z and z, as class_scores orders them
    weights = m[classes]  # (N, C)
    return torch.einsum("nc,nchw->nhw", weights, features.detach().float()), classes


def scale_cam(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Raw CAM maps upsampled to ``size`` and scaled into [0, 1] by their range."""
    return _scale_minmax(_upsample(maps, size))


def scale_grad_cam(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Raw Grad-CAM sums through the ReLU, upsampled to ``size`` and scaled into [0, 1] by their maximum."""
    return _scale_max(_upsample(maps.clamp_min(0.0), size))


def weigh_maps(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """``Σ_k α_k A_k`` with ``α_k`` the spatial mean of the gradient on map k: (N, h, w)."""
    with torch.no_grad():
        alpha = grads.float().mean(dim=(2, 3))  # (N, C)
        return torch.einsum("nc,nchw->nhw", alpha, acts.detach().float())


def cam(
    model_copy: torch.nn.Module, code: GeneratedModel, graph: Graph, x: torch.Tensor, class_index=None,
    *, raw: bool = False, tap: Tap | None = None,
) -> np.ndarray:
    """CAM heat maps (N, H, W) float32 in [0, 1] at the input's resolution.

    Args:
        class_index: None for each image's predicted class, an int, or one int per image.
        raw: return the unscaled maps at the feature maps' resolution instead.

    Raises:
        ProbeError: the network does not end global pooling → Dense → Class output, the input
            is not an image, or a class index is out of range.
    """
    maps, _, _ = cam_maps(model_copy, code, graph, x, class_index, tap=tap)
    if raw:
        return maps.cpu().numpy().astype(np.float32)
    return scale_cam(maps, image_size(code, "CAM")).cpu().numpy().astype(np.float32)


def grad_cam_maps(
    model_copy: torch.nn.Module, code: GeneratedModel, graph: Graph, x: torch.Tensor,
    layer_node_id: str | None = None, class_index=None, *, tap: Tap | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """Raw Grad-CAM sums ``Σ_k α_k A_k`` (N, h, w) before the ReLU, classes, scores and layer id."""
    tap = tap or Tap(graph, code)
    head = class_head(graph, code, "Grad-CAM")
    layer = grad_cam_layer(graph, tap, layer_node_id)
    name = graph.nodes[layer].name
    with torch.enable_grad():
        vals = tap.run(model_copy, x, {head.node_id}, leaf=layer)
        acts, scores = vals[layer], vals[head.node_id].float()
        per_class = class_scores(scores)
        classes = pick_classes(per_class, class_index, "Grad-CAM")
        chosen = per_class.gather(1, classes[:, None]).sum()
        if not chosen.requires_grad:
            raise ProbeError(f"Grad-CAM: '{name}' does not feed the class output '{graph.nodes[head.node_id].name}'")
        (grads,) = torch.autograd.grad(chosen, acts)
    return weigh_maps(acts, grads), classes, scores.detach(), layer


def grad_cam_layer(graph: Graph, tap: Tap, layer_node_id: str | None = None) -> str:
    """The block Grad-CAM weighs: ``layer_node_id`` checked, or the default; ProbeError if unfit."""
    layer = layer_node_id or default_cam_layer(graph, tap.analysis)
    if layer is None:
        raise ProbeError("Grad-CAM needs a convolutional block (an image-shaped output) before the class output")
    if layer not in graph.nodes:
        raise ProbeError(f"Grad-CAM: there is no block with id {layer!r}")
    shape = tap.shape(layer)
    if shape is None or len(shape) != 3 or graph.nodes[layer].spec.role == "input":
        raise ProbeError(
            f"Grad-CAM: '{graph.nodes[layer].name}' is not a spatial block (its output is "
            f"{_shape_words(shape)}); choose a convolution, activation or pooling block with a "
            "channels×height×width output"
        )
    return layer


def grad_cam(
    model_copy: torch.nn.Module, code: GeneratedModel, graph: Graph, x: torch.Tensor,
    layer_node_id: str | None = None, class_index=None, *, raw: bool = False, tap: Tap | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heat maps (N, H, W) float32 in [0, 1] at the input's resolution, and the classes.

    Args:
        layer_node_id: the block whose maps are weighed; None for :func:`default_cam_layer`.
        class_index: None for each image's predicted class, an int, or one int per image.
        raw: return ``Σ_k α_k A_k`` unscaled, before the ReLU, at the block's resolution.

    Raises:
        ProbeError: no class output, a block that is not spatial or does not feed the class
            output, a vector input, or a class index out of range.
    """
    maps, classes, _, _ = grad_cam_maps(model_copy, code, graph, x, layer_node_id, class_index, tap=tap)
    classes_np = classes.cpu().numpy()
    if raw:
        return maps.cpu().numpy().astype(np.float32), classes_np
    heat = scale_grad_cam(maps, image_size(code, "Grad-CAM"))
    return heat.cpu().numpy().astype(np.float32), classes_np


def _shape_words(shape) -> str:
    if shape is None:
        return "unknown"
    return "a vector of " + str(shape[0]) if len(shape) == 1 else "×".join(map(str, shape))


# ---------------------------------------------------------------------- pictures
def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write (H, W, 3) or (H, W) uint8 pixels as a PNG (atomically). Returns the path."""
    from PIL import Image

    from engine.fileio import atomic_write

    arr = np.ascontiguousarray(rgb)
    if arr.dtype != np.uint8:
        raise ProbeError(f"save_png needs uint8 pixels, not {arr.dtype}")
    image = Image.fromarray(arr, "RGB" if arr.ndim == 3 else "L")
    target = Path(path)
    atomic_write(target, lambda tmp: image.save(tmp, format="PNG"))
    return target

"""Views computed when a person asks for them, not on the training schedule.

* :func:`max_activating_patches`: for one unit (a channel of a block), run a data set through
  the network, take the images where the unit responds most, and cut from each the window of
  input pixels that the strongest position sees: its receptive field, placed with the
  analysis's size, jump (effective stride) and offset.
* :func:`activation_maximization`: start from noise and climb the gradient of one unit's
  response with respect to the input, to picture what the unit looks for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torch import nn

from engine.analysis import Analysis
from engine.codegen import GeneratedModel
from engine.graph import Graph
from engine.probes.base import ProbeError, Tap

__all__ = ["Patches", "Ranked", "activation_maximization", "crop_window", "keep_best", "max_activating_patches",
           "patch_box", "rank_windows", "unit_activation"]


@dataclass
class Patches:
    """The strongest responses of one unit, strongest first.

    Attributes:
        crops: one (C, s, s) float32 array per image, s the receptive field's size; pixels of
            the window that fall outside the image are 0.
        scores: the unit's response for each crop.
        indices: which sample of the data set each crop comes from.
        boxes: (top, left, height, width) of each window in image pixels (may reach outside).
    """

    crops: list[np.ndarray]
    scores: np.ndarray
    indices: np.ndarray
    boxes: np.ndarray


def patch_box(rf, row: int, col: int, image_hw: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """(top, left, size, size) of the input window seen by output position (row, col).

    ``rf`` is a block's :class:`~engine.analysis.ReceptiveField`; None (a vector block, which
    sees the whole input) gives the whole image of size ``image_hw``.
    """
    if rf is None:
        if image_hw is None:
            raise ProbeError("a block without a receptive field sees the whole image; its size is needed")
        return 0, 0, image_hw[0], image_hw[1]
    size = max(1, int(round(rf.size)))
    half = (size - 1) / 2

    def start(i: int) -> int:
        return int(math.floor(rf.offset + i * rf.jump - half + 0.5))

    return start(row), start(col), size, size


def crop_window(image: torch.Tensor, box: tuple[int, int, int, int]) -> np.ndarray:
    """The (C, h, w) window ``box`` = (top, left, h, w) of a (C, H, W) image; pixels outside the image are 0."""
    c, h, w = image.shape
    top, left, bh, bw = box
    out = np.zeros((c, bh, bw), np.float32)
    y0, y1 = max(top, 0), min(top + bh, h)
    x0, x1 = max(left, 0), min(left + bw, w)
    if y0 < y1 and x0 < x1:
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = image[:, y0:y1, x0:x1].cpu().numpy()
    return out


def _unit(value: torch.Tensor, channel: int, name: str) -> torch.Tensor:
    """The chosen channel (N, h, w) or unit (N,) of a block's output."""
    units = value.shape[1]
    if not 0 <= channel < units:
        raise ProbeError(f"'{name}' has {units} {'channels' if value.dim() == 4 else 'units'}; {channel} is not one of them (0 to {units - 1})")
    return value[:, channel]


def max_activating_patches(
    model_copy: nn.Module, code: GeneratedModel, graph: Graph, analysis: Analysis, node_id: str, channel: int,
    dataset, top: int = 9, *, batch_size: int = 128,
) -> Patches:
    """The ``top`` image windows of ``dataset`` that excite channel ``channel`` of a block most.

    One window per image (at the position of its strongest response), the images ranked by
    that response. ``dataset`` is an :class:`engine.data.Dataset` or an (N, C, H, W) tensor.
    """
    x = dataset.x if hasattr(dataset, "x") else torch.as_tensor(dataset)
    if x.dim() != 4:
        raise ProbeError("maximally activating patches need image inputs (channels×height×width)")
    batches = ((torch.arange(start, min(start + batch_size, x.shape[0])), x[start : start + batch_size])
               for start in range(0, x.shape[0], batch_size))
    ranked = rank_windows(model_copy, code, graph, analysis, node_id, channel, batches, top, tuple(x.shape[-2:]))
    crops = [crop_window(x[i], box) for i, box in zip(ranked.indices.tolist(), ranked.boxes.tolist())]
    return Patches(crops, ranked.scores, ranked.indices, ranked.boxes)


@dataclass
class Ranked:
    """The images whose strongest response of one unit is largest, strongest first, and the window of
    that response in each: ``scores`` (float32), ``indices`` (which sample), ``boxes`` (top, left,
    height, width), and ``searched``, how many images were looked at."""

    scores: np.ndarray
    indices: np.ndarray
    boxes: np.ndarray
    searched: int


def rank_windows(
    model_copy: nn.Module, code: GeneratedModel, graph: Graph, analysis: Analysis, node_id: str, channel: int,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], top: int, image_hw: tuple[int, int],
) -> Ranked:
    """Rank images by one unit's strongest response, a batch at a time, keeping only the best ``top``.

    ``batches`` gives (sample indices, network inputs) pairs, so images read from disk a batch at a
    time are ranked as those in memory are, and never held all at once.
    """
    tap = Tap(graph, code, analysis)
    name = tap.name(node_id) if node_id in graph.nodes else node_id
    device = next(model_copy.parameters(), torch.empty(0)).device
    best = (torch.empty(0), torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64))
    width, searched = 1, 0
    with torch.no_grad():
        for idx, x in batches:
            if not len(idx):
                continue
            value = tap.run(model_copy, x.to(device), {node_id})[node_id].float()
            unit = _unit(value, channel, name)
            flat = unit.reshape(unit.shape[0], -1)
            width = unit.shape[-1] if unit.dim() == 3 else 1
            score, pos = flat.max(1)
            searched += flat.shape[0]
            best = keep_best(best, (score.cpu(), torch.as_tensor(idx, dtype=torch.int64).reshape(-1), pos.cpu()), top)
    best_s, best_i, best_p = best
    rf = analysis.nodes[node_id].rf
    boxes = [patch_box(rf, p // width, p % width, image_hw) for p in best_p.tolist()]
    return Ranked(best_s.numpy().astype(np.float32), best_i.numpy(),
                  np.array(boxes, dtype=np.int64).reshape(-1, 4), searched)


def keep_best(kept: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...], k: int,
              largest: bool = True) -> tuple[torch.Tensor, ...]:
    """The ``k`` best rows of ``kept`` and ``new`` together, best first: columns of equal length whose first
    is the score (the largest, or with ``largest=False`` the smallest), a search over batches kept bounded."""
    joined = [torch.cat([a, b]) for a, b in zip(kept, new)]
    order = torch.topk(joined[0], min(k, joined[0].numel()), largest=largest, sorted=True).indices
    return tuple(c[order] for c in joined)


def unit_activation(
    model_copy: nn.Module, tap: Tap, node_id: str, channel: int, x: torch.Tensor, position: str = "center",
) -> torch.Tensor:
    """One unit's response per sample (N,): a channel's centre pixel (or mean), or a vector unit."""
    value = tap.run(model_copy, x, {node_id})[node_id]
    unit = _unit(value, channel, tap.name(node_id))
    if unit.dim() == 3:
        if position == "mean":
            return unit.mean(dim=(1, 2))
        return unit[:, unit.shape[1] // 2, unit.shape[2] // 2]
    return unit


def activation_maximization(
    model_copy: nn.Module, code: GeneratedModel, graph: Graph, node_id: str, channel: int,
    input_shape: tuple[int, ...] | None = None, steps: int = 100, lr: float = 0.1, seed: int = 0,
    *, l2: float = 1e-3, position: str = "center",
) -> np.ndarray:
    """An input (float32, ``input_shape``) grown from noise to excite one unit.

    Gradient ascent on the unit's response minus a small L2 penalty ``l2·‖x‖²`` that keeps the
    image from growing without bound; each step moves the input by ``lr`` times the gradient
    divided by its RMS. For an image block the unit is the channel's centre pixel
    (``position="mean"``: its mean over the map).
    """
    shape = tuple(input_shape or (code.input_shapes[0] if code.input_shapes else ()))
    if not shape:
        raise ProbeError("activation maximization needs the input's shape")
    tap = Tap(graph, code)
    device = next(model_copy.parameters(), torch.empty(0)).device
    gen = torch.Generator().manual_seed(int(seed))
    x = (0.1 * torch.randn((1, *shape), generator=gen)).to(device)
    for _ in range(int(steps)):
        with torch.enable_grad():
            xg = x.requires_grad_(True)
            objective = unit_activation(model_copy, tap, node_id, channel, xg, position)[0] - l2 * xg.pow(2).sum()
            (grad,) = torch.autograd.grad(objective, xg)
        with torch.no_grad():
            # NOTE: the step is scaled by the gradient's RMS, so lr is in input units whatever
            # the size of the unit's response.
            x = x.detach() + lr * grad / (grad.pow(2).mean().sqrt() + 1e-12)
    return x.detach()[0].cpu().numpy().astype(np.float32)

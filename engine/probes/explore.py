"""The on-demand views of a finished run, rebuilt from what the window keeps of the run.

The window keeps, for each run, the project snapshot that trained and the trained
``state_dict``. :func:`load_run` compiles the snapshot's graph the way the trainer does, loads
the weights, and (when first needed) opens the run's data set as training read it: in memory, or
streamed from its files when it is over the memory budget (then it is searched a batch at a time
and never held whole), normalized with the statistics of its training split as training normalized it. :func:`top_patches` and :func:`dream` then
compute the views of :mod:`engine.probes.ondemand` for one unit (a channel of a block, or a unit
of a vector block) and return the pictures in the data's own pixel scale, ready to show;
:func:`nearest` retrieves the images whose features at a block (its latent space) lie closest to
one sample's::

    run = load_run(snapshot, weights, base_dir=project_folder)
    found = top_patches(run, "n5", channel=3, top=9)   # crops, scores, samples, boxes
    made = dream(run, "n5", channel=3, steps=100, lr=0.1)
    near = nearest(run, "n9", sample=12, k=8)          # the 8 images closest to sample 12 at block n9
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from engine.analysis import Analysis, analyze
from engine.compile import CompiledModel, compile_graph
from engine.data import Dataset, Normalizer
from engine.data.base import shape_text
from engine.data.streaming import StreamDataset, StreamReader, batch_keys, is_streamed, read_batches, worker_count
from engine.errors import NetDesignerError
from engine.probes.base import ProbeError, Tap
from engine.probes.explain import sample_input, samples_source, training_normalizer, split_checkpoint
from engine.probes.ondemand import (activation_maximization, crop_window, keep_best, patch_box, rank_windows,
                                    unit_activation)
from engine.project import Project, project_from_dict

__all__ = ["Dream", "Neighbours", "TopPatches", "TrainedRun", "Unit", "dream", "load_run", "nearest", "rebuild",
           "top_patches", "unit_of", "units_of"]


@dataclass(frozen=True)
class Unit:
    """One unit of a block: ``index`` among the block's ``count`` channels (or vector units)."""

    node_id: str
    name: str
    index: int
    count: int
    kind: str  # "channel" (an image block) or "unit" (a vector block)


@dataclass
class TrainedRun:
    """A run's trained model (eval mode, no gradients on its weights) and, loaded on demand, its data."""

    project: Project
    compiled: CompiledModel
    analysis: Analysis
    base_dir: Path | None = None
    normalizer_given: Any = None  # a checkpoint's saved normalizer, used instead of refitting
    _data: Dataset | None = field(default=None, repr=False)
    _norm: Normalizer | None = field(default=None, repr=False)
    _inputs: torch.Tensor | None = field(default=None, repr=False)

    @property
    def graph(self):
        return self.project.graph

    @property
    def model(self) -> torch.nn.Module:
        return self.compiled.module

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.compiled.code.input_shapes[0]) if self.compiled.code.input_shapes else ()

    def data(self) -> Dataset | StreamDataset:
        """The run's data set (not normalized), opened once: a :class:`StreamDataset` when it is over the
        memory budget, as training read it."""
        if self._data is None:
            self._data = samples_source(self.project, self.input_shape, self.base_dir)
        return self._data

    def sample_count(self) -> int | None:
        """How many samples the data set has, once it has been opened (None before)."""
        return None if self._data is None else len(self._data)

    def normalizer(self) -> Normalizer | None:
        """The normalization training used (fitted on the training split), or None when it was off."""
        if self._norm is None and self.project.data.normalize:
            self._norm = training_normalizer(self.project, self.normalizer_given, self.data(), self.input_shape, self.base_dir)
        return self._norm

    def inputs(self) -> torch.Tensor:
        """Every sample of an in-memory data set as the network saw it in training (normalized)."""
        if self._inputs is None:
            norm = self.normalizer()
            x = self.data().x
            self._inputs = (norm.transform(x) if norm is not None else x).float()
        return self._inputs

    def input_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(sample indices, normalized inputs) a batch at a time: sliced from memory, or read from the
        files by ``data.workers`` processes (a sample that cannot be read is left out of its batch)."""
        data = self.data()
        if not is_streamed(data):
            x = self.inputs()
            for start in range(0, x.shape[0], batch_size):
                yield torch.arange(start, min(start + batch_size, x.shape[0])), x[start : start + batch_size]
            return
        reader = StreamReader(data, self.normalizer())
        for batch in read_batches(reader, batch_keys(range(len(data)), batch_size), worker_count(self.project.data)):
            yield batch.positions, batch.x.float()

    def raw(self, index: int) -> torch.Tensor:
        """Sample ``index`` as loaded (not normalized), read from its file when the data streams."""
        return sample_input(self.data(), index)

    def to_pixels(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Network inputs (normalized) back in the data's pixel scale, float32."""
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        norm = self.normalizer()
        if norm is not None:
            t = norm.inverse(t[None])[0]
        return t.numpy().astype(np.float32)


def rebuild(snapshot: Mapping[str, Any] | Project, weights: Mapping[str, Any]
            ) -> tuple[Project, CompiledModel, Analysis, Any]:
    """A run's network compiled from its snapshot with its trained weights loaded, in eval mode.

    Returns the project, the compiled model, its analysis and the checkpoint's saved normalizer (or None).

    Raises:
        ProbeError: the network cannot be rebuilt, or the weights do not fit it.
    """
    project = snapshot if isinstance(snapshot, Project) else project_from_dict(dict(snapshot), source="<run snapshot>")
    analysis = analyze(project.graph)
    try:
        # NOTE: compiled as engine.training.trainer.Trainer._prepare compiles, so the names match the weights.
        compiled = compile_graph(project.graph, project.name or "Net", analysis, title=project.name)
    except NetDesignerError as exc:
        raise ProbeError(f"the run's network cannot be rebuilt: {exc}") from None
    state, saved_norm = split_checkpoint(weights)
    try:
        compiled.module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ProbeError(f"the weights do not fit this network ({str(exc).splitlines()[0]})") from None
    compiled.module.eval()
    return project, compiled, analysis, saved_norm


def load_run(snapshot: Mapping[str, Any] | Project, weights: Mapping[str, Any] | None,
             base_dir: str | Path | None = None) -> TrainedRun:
    """The trained model of a run from its project snapshot and ``state_dict`` (or trainer checkpoint).

    Raises:
        ProbeError: no weights, weights that do not fit the network, or a network whose input is
            not an image (these views picture what a unit sees in the input image).
    """
    if weights is None:
        raise ProbeError("this run has no trained weights (a failed run keeps none): train the network, then try again")
    project, compiled, analysis, saved_norm = rebuild(snapshot, weights)
    for p in compiled.module.parameters():
        p.requires_grad_(False)
    run = TrainedRun(project, compiled, analysis, Path(base_dir) if base_dir else None, saved_norm)
    shape = run.input_shape
    if len(shape) != 3:
        raise ProbeError(
            f"these views need image data, but the network's Input takes {shape_text(shape) or 'no'} "
            f"feature{'s' if shape != (1,) else ''} (the {project.data.dataset} data set)"
        )
    return run


def units_of(graph, analysis: Analysis, node_id: str) -> tuple[str, int]:
    """``("channel", C)`` for a block with feature maps, ``("unit", F)`` for a vector block.

    Raises:
        ProbeError: the block is not in the graph, is the Input or an output block, or its
            output is neither C×H×W maps nor a vector.
    """
    node = graph.nodes.get(node_id)
    if node is None:
        raise ProbeError("this block is not in the network of the latest run: train again to explore it")
    role = node.spec.role
    if role == "input":
        raise ProbeError(f"'{node.name}' is the network's input, it has no units of its own: pick a layer")
    if role == "head":
        raise ProbeError(f"'{node.name}' is an output block: pick the layer that feeds it")
    info = analysis.nodes.get(node_id)
    shape = info.out_shape if info is not None else None
    if shape is None or len(shape) not in (1, 3):
        what = shape_text(shape) if shape else "no known"
        raise ProbeError(
            f"'{node.name}' gives a {what} output, neither feature maps nor a vector of units: pick another layer"
        )
    return ("channel" if len(shape) == 3 else "unit"), int(shape[0])


def unit_of(run: TrainedRun, node_id: str, index: int) -> Unit:
    """Unit ``index`` of block ``node_id`` in the run; ProbeError saying why there is none."""
    kind, count = units_of(run.graph, run.analysis, node_id)
    name = run.graph.nodes[node_id].name
    if not 0 <= int(index) < count:
        raise ProbeError(f"'{name}' has {count} {kind}s; {index} is not one of them (0 to {count - 1})")
    return Unit(node_id, name, int(index), count, kind)


@dataclass
class TopPatches:
    """The image windows that excite one unit most, strongest first, in pixel scale.

    Attributes:
        crops: (C, s, s) float32 per window, s the receptive field's size (the whole image for a
            vector unit); 0 where the window reaches outside the image.
        inside: (s, s) bool per window: True where the window lies on the image.
        scores: the unit's response for each window (its strongest position in that image).
        indices: which sample of the data set each window comes from.
        boxes: (top, left, height, width) of each window in image pixels (may reach outside).
        labels: the class name of each sample, when the data has classes.
        searched: how many images were searched.
    """

    unit: Unit
    crops: list[np.ndarray]
    inside: list[np.ndarray]
    scores: np.ndarray
    indices: np.ndarray
    boxes: np.ndarray
    labels: list[str | None]
    searched: int
    rf_size: int | None


def top_patches(run: TrainedRun, node_id: str, channel: int, top: int = 9, *, batch_size: int = 128) -> TopPatches:
    """The ``top`` images of the run's data set where ``channel`` of ``node_id`` responds most, cropped
    to the receptive field of the strongest position (see :func:`~engine.probes.ondemand.max_activating_patches`)."""
    unit = unit_of(run, node_id, channel)
    found = rank_windows(run.model, run.compiled.code, run.graph, run.analysis, node_id, unit.index,
                         run.input_batches(batch_size), top, tuple(run.input_shape[-2:]))
    indices = found.indices.tolist()
    raws = [run.raw(i) for i in indices]
    boxes = [tuple(int(v) for v in b) for b in found.boxes]
    ones = torch.ones((1, *run.input_shape[-2:]))
    crops = [crop_window(raw, box) for raw, box in zip(raws, boxes)]
    inside = [crop_window(ones, box)[0] > 0.5 for box in boxes]
    labels = [_label(run.data(), i) for i in indices]
    rf = run.analysis.nodes[node_id].rf
    return TopPatches(unit, crops, inside, found.scores, found.indices, found.boxes, labels, found.searched,
                      int(round(rf.size)) if rf is not None else None)


def _label(data: Dataset | StreamDataset, index: int) -> str | None:
    label = data.targets.get("label")
    if label is None:
        return None
    k = int(label[index])
    return data.classes[k] if data.classes and 0 <= k < len(data.classes) else str(k)


@dataclass
class Dream:
    """An input grown from noise to excite one unit (activation maximization).

    Attributes:
        image: (C, H, W) float32 in the data's pixel scale (it may leave the data's range).
        response: the unit's response to it (a channel's centre pixel, or a vector unit).
        steps, lr: the gradient-ascent settings used.
        box: (top, left, height, width) of the input window the centre pixel sees (the only
            pixels the ascent can change); None for a vector unit, which sees the whole image.
        window: the image cut to ``box`` (C, s, s), 0 outside the image; None without a box.
        inside: (s, s) bool, True where the window lies on the image; None without a box.
    """

    unit: Unit
    image: np.ndarray
    response: float
    steps: int
    lr: float
    box: tuple[int, int, int, int] | None = None
    window: np.ndarray | None = None
    inside: np.ndarray | None = None


def dream(run: TrainedRun, node_id: str, channel: int, steps: int = 100, lr: float = 0.1, seed: int = 0) -> Dream:
    """Activation maximization of one unit (see :func:`~engine.probes.ondemand.activation_maximization`)."""
    unit = unit_of(run, node_id, channel)
    if int(steps) < 1:
        raise ProbeError(f"activation maximization needs at least 1 step, not {steps}")
    if not float(lr) > 0:
        raise ProbeError(f"the learning rate of activation maximization must be above 0, not {lr:g}")
    image = activation_maximization(run.model, run.compiled.code, run.graph, node_id, unit.index,
                                    run.input_shape, int(steps), float(lr), seed)
    with torch.no_grad():
        tap = Tap(run.graph, run.compiled.code, run.analysis)
        response = float(unit_activation(run.model, tap, node_id, unit.index, torch.from_numpy(image)[None])[0])
    made = Dream(unit, run.to_pixels(image), response, int(steps), float(lr))
    shape, rf = run.analysis.nodes[node_id].out_shape, run.analysis.nodes[node_id].rf
    if unit.kind == "channel" and rf is not None:
        # NOTE: the same centre position unit_activation climbs on.
        made.box = patch_box(rf, shape[1] // 2, shape[2] // 2)
        made.window = crop_window(torch.from_numpy(made.image), made.box)
        made.inside = crop_window(torch.ones((1, *made.image.shape[-2:])), made.box)[0] > 0.5
    return made


@dataclass
class Neighbours:
    """The images of the data set whose features at one block lie closest to one sample's (image
    retrieval in the network's latent space), closest first.

    Attributes:
        node_id, name: the block whose output is the latent vector.
        features: how many numbers that vector has (a block's maps are taken whole, C·H·W).
        query: the sample asked about; ``query_image`` its picture (C, H, W) in pixel scale and
            ``query_label`` its class name (None without classes).
        indices: the nearest samples (the query itself left out); ``distances`` the Euclidean
            distance of each one's features to the query's (float32); ``images`` and ``labels``
            their pictures and class names.
        searched: how many other images were compared (unreadable ones are left out).
        same_class: how many of the neighbours share the query's class; None without classes.
    """

    node_id: str
    name: str
    features: int
    query: int
    query_image: np.ndarray
    query_label: str | None
    indices: np.ndarray
    distances: np.ndarray
    images: list[np.ndarray]
    labels: list[str | None]
    searched: int
    same_class: int | None


def nearest(run: TrainedRun, node_id: str, sample: int, k: int = 8, *, batch_size: int = 128) -> Neighbours:
    """The ``k`` samples whose output at block ``node_id`` is nearest (Euclidean) to sample ``sample``'s.

    The whole data set is compared a batch at a time (read from its files when it streams), keeping
    only the best ``k`` so far.

    Raises:
        ProbeError: the block has no output to compare (the Input, an output block), the sample
            does not exist or cannot be read, or ``k`` is below 1.
    """
    units_of(run.graph, run.analysis, node_id)  # NOTE: refuses the Input and output blocks, in their words
    name = run.graph.nodes[node_id].name
    data = run.data()
    n = len(data)
    if not 0 <= int(sample) < n:
        raise ProbeError(f"sample {sample} does not exist: the data set has {n:,} samples (0 to {n - 1:,})")
    if int(k) < 1:
        raise ProbeError(f"the number of nearest images must be at least 1, not {k}")
    sample, k = int(sample), int(k)
    raw = run.raw(sample)
    norm = run.normalizer()
    tap = Tap(run.graph, run.compiled.code, run.analysis)
    device = next(run.model.parameters(), torch.empty(0)).device

    def features(x: torch.Tensor) -> torch.Tensor:
        return tap.run(run.model, x.to(device), {node_id})[node_id].float().flatten(1).cpu()

    with torch.no_grad():
        query = features((norm.transform(raw[None]) if norm is not None else raw[None]).float())[0]
        best = (torch.empty(0), torch.empty(0, dtype=torch.int64))
        searched = 0
        for idx, x in run.input_batches(batch_size):
            idx = torch.as_tensor(idx, dtype=torch.int64).reshape(-1)
            if not len(idx):
                continue
            # NOTE: the difference itself, not |a|² − 2a·b + |b|², which loses the small distances to rounding
            d = (features(x) - query).square().sum(1).sqrt()
            others = idx != sample
            searched += int(others.sum())
            best = keep_best(best, (d[others], idx[others]), k, largest=False)
    best_d, best_i = best
    indices = best_i.numpy()
    labels = [_label(data, i) for i in indices.tolist()]
    query_label = _label(data, sample)
    same = None if query_label is None else sum(label == query_label for label in labels)
    return Neighbours(node_id, name, int(query.numel()), sample, raw.numpy().astype(np.float32), query_label, indices,
                      best_d.numpy().astype(np.float32), [run.raw(i).numpy().astype(np.float32) for i in indices.tolist()],
                      labels, searched, same)

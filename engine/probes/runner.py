"""The scheduled probes: what the training worker computes every N batches (or seconds).

The trainer calls, around each step::

    probing = runner.due(step)            # every N batches or T seconds since the last run
    if probing:
        runner.mark(model)                # weights before the step, for update ratios
    ...one optimizer step...
    if probing:
        results = runner.run(model, step) # numpy arrays and plain numbers only

Everything is computed on one detached copy of the model, made at the first run and refreshed
in place afterwards, so the training model's mode, weights, gradients and hooks are never
touched and a long run does not grow memory. One forward pass of the few probe images serves
the activations, the class maps, the predictions and the activation histograms.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.analysis import Analysis
from engine.codegen import GeneratedModel
from engine.graph import Graph
from engine.layers.registry import FROZEN_MARK, is_frozen
import engine.probes.cam as cam_mod
import engine.probes.views as views
import engine.probes.wsl as wsl
from engine.probes.base import Head, ProbeError, Tap, class_head, find_heads, resolve_block
from engine.probes.snapshot import detached_copy, refresh
from engine.tasks import head_spec

__all__ = ["ProbeRunner", "ProbeSettings"]


@dataclass
class ProbeSettings:
    """What the scheduled probes compute and how often.

    ``every_batches`` / ``every_seconds``: run when either many batches or that much time
    passed since the last run (None switches a trigger off). ``layer``: the block whose
    activations are shown (None: the first ReLU, else the first block). ``filters_layer``:
    the convolution whose kernels, or the Dense on a flattened image whose class templates, are
    shown (None: the first convolution, else the first such Dense). ``cam_method``: ``"cam"``,
    ``"gradcam"`` or ``"off"``; ``cam_layer`` the Grad-CAM block (None: the default);
    ``class_index`` the class explained (None: the predicted one). ``sample``: the probe image
    whose activations are shown. ``histograms``: weight and activation histograms with
    ``bins`` bins. ``cam_box_threshold``: the share of its peak at which each class map is cut
    for a box (:mod:`engine.probes.wsl`). ``grid_steps``: resolution of the decision-region
    grid. ``hardest``: how many of the hardest validation samples are listed; ``gallery``: how
    many of those (for image data) come with their picture, labels and class map.
    """

    every_batches: int | None = 50
    every_seconds: float | None = None
    layer: str | None = None
    filters_layer: str | None = None
    cam_method: str = "gradcam"
    cam_box_threshold: float = wsl.CAM_BOX_THRESHOLD
    cam_layer: str | None = None
    class_index: int | None = None
    sample: int = 0
    probe_samples: int = 8
    histograms: bool = True
    bins: int = 30
    grid_steps: int = 100
    hardest: int = 16
    gallery: int = 8

    def __post_init__(self) -> None:
        if self.every_seconds is not None and self.every_seconds <= 0:
            self.every_seconds = None  # NOTE: the project file says 0 for "no time trigger"

    @classmethod
    def from_config(cls, config: Any = None) -> ProbeSettings:
        """From a :class:`engine.config.ProbeConfig` (its ``extra`` may set any other field), a dict or None."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        known = {f.name for f in fields(cls)}
        if isinstance(config, dict):
            return cls(**{k: v for k, v in config.items() if k in known})
        values = {k: getattr(config, k) for k in known if hasattr(config, k)}
        values.update({k: v for k, v in (getattr(config, "extra", None) or {}).items() if k in known})
        return cls(**values)


class ProbeRunner:
    """Computes the scheduled probes of one training run (see the module docstring).

    Args:
        graph, code: the graph and the generated code of the model that trains.
        probe_x: the fixed probe inputs, already normalized as the model sees them; the first
            ``probe_samples`` are used.
        probe_y: their targets (kept for the views that compare; optional).
        config: a :class:`ProbeSettings`, an :class:`engine.config.ProbeConfig`, a dict or None.
        display_x: the probe images as a person sees them ((N, C, H, W) in [0, 1]); by default
            each probe image scaled into [0, 1].
    """

    def __init__(
        self, graph: Graph, code: GeneratedModel, probe_x: torch.Tensor, probe_y: torch.Tensor | None = None,
        config: Any = None, *, analysis: Analysis | None = None, display_x: torch.Tensor | None = None,
    ) -> None:
        self.settings = ProbeSettings.from_config(config)
        s = self.settings
        # NOTE: with units the probes name blocks by their path in the flattened graph (``stage1/conv1``)
        self.graph = code.plan.flat if code.plan is not None else graph
        self.code = code
        self.tap = Tap(self.graph, code, analysis)
        graph = self.graph
        n = max(1, min(int(s.probe_samples), len(probe_x)))
        self.x = probe_x[:n].detach()
        self.y = probe_y[:n].detach() if probe_y is not None else None
        self._display = display_x[:n].detach().cpu() if display_x is not None else None
        self._x_cpu: torch.Tensor | None = None
        self._to_display: tuple[torch.Tensor, torch.Tensor] | None = None
        self.heads = find_heads(graph, code)
        self.problems: dict[str, str] = {}
        self.layer = self._pick(s.layer, self._default_layer, "activations")
        self.filters_layer = self._pick(
            s.filters_layer, lambda: views.filters_block(graph, self.tap.order, self.tap.shape), "filters")
        why = views.filters_problem(graph, self.tap.shape, self.filters_layer) if self.filters_layer else None
        if why:
            self.problems["filters"] = why
            self.filters_layer = None
        if not 0 <= s.sample < n:
            self.problems["activations"] = f"probe sample {s.sample} does not exist (there are {n}); showing sample 0"
            s.sample = 0
        self.cam_method, self.cam_layer, self.cam_path, self.cam_head = self._prepare_cam()
        self.class_head = self._first_class_head()
        self._copy: nn.Module | None = None
        self._source_id: int | None = None
        self._device: torch.device | None = None
        self._x_dev = self.x
        self._before: dict[str, torch.Tensor] | None = None
        self._marked = False
        self._last_step = 0
        self._last_time = time.monotonic()
        self._runs = 0
        self.runs = 0
        self._wanted: dict[str, Any] = {}  # NOTE: set from another thread, applied by run()
        # NOTE: the probe images' true boxes, learnt from the first evaluate() whose data start with them
        self._true_boxes: np.ndarray | None = None

    # ------------------------------------------------------------------ set-up
    def _pick(self, chosen: str | None, default, what: str) -> str | None:
        if chosen is None:
            return default()
        try:
            return resolve_block(self.graph, chosen)
        except ProbeError as exc:
            self.problems[what] = str(exc)
            return default()

    def _default_layer(self) -> str | None:
        order = [nid for nid in self.tap.order if self.graph.nodes[nid].spec.role not in ("input", "head")]
        for nid in order:
            if "can_die" in self.graph.nodes[nid].spec.tags:
                return nid
        return order[0] if order else None

    def _prepare_cam(self):
        """Resolve the class-map settings; on a problem say why in ``problems["cam"]``.

        A chosen Grad-CAM block that does not fit falls back to the default block; anything else
        that does not fit switches the class maps off.
        """
        s = self.settings
        try:
            return self._resolve_cam(s.cam_method, s.cam_layer, s.class_index)
        except ProbeError as exc:
            self.problems["cam"] = str(exc)
        if s.cam_layer is not None:
            try:
                resolved = self._resolve_cam(s.cam_method, None, s.class_index)
            except ProbeError:
                pass
            else:
                s.cam_layer = None
                return resolved
        return "off", None, None, None

    def _resolve_cam(self, method: str, layer: str | None, class_index: int | None):
        """(method, weighed block, CAM path, class head) for these settings; ProbeError when they do not fit.

        With ``"cam"``, a chosen block other than the maps the global pooling reads is weighed by
        Grad-CAM (CAM can only weigh those maps).
        """
        if method == "off":
            return "off", None, None, None
        layer = resolve_block(self.graph, layer) if layer is not None else None
        if method == "cam" and layer is not None:
            try:
                features = cam_mod.cam_path(self.graph, self.code).features
            except ProbeError:
                features = None
            if layer != features:
                method = "gradcam"  # NOTE: CAM can only weigh the maps the global pooling reads
        if method == "cam":
            path = cam_mod.cam_path(self.graph, self.code)
            self._check_class_index(path.head, class_index)
            cam_mod.image_size(self.code, "CAM")
            return "cam", path.features, path, path.head
        if method != "gradcam":
            raise ProbeError(f"unknown class-map method {method!r}: choose cam, gradcam or off")
        head = class_head(self.graph, self.code, "Grad-CAM")
        self._check_class_index(head, class_index)
        layer = cam_mod.grad_cam_layer(self.graph, self.tap, layer)
        cam_mod.image_size(self.code, "Grad-CAM")
        if layer not in self.tap.ancestors([head.node_id]):
            raise ProbeError(f"Grad-CAM: '{self.graph.nodes[layer].name}' does not feed the class output")
        return "gradcam", layer, None, head

    def _check_class_index(self, head: Head, ci: int | None) -> None:
        k = (self.tap.shape(head.source) or (0,))[0]
        k = 2 if k == 1 else k  # NOTE: one binary logit z scores the two classes (−z, z): see cam.class_scores
        if ci is not None and not 0 <= ci < k:
            raise ProbeError(f"class index {ci} is out of range: the network has {k} classes (0 to {k - 1})")

    #: What :meth:`want` accepts: the activations' block (a node id), the probe sample (an index),
    #: the class the maps explain (None: the predicted one) and the Grad-CAM block (None: the default).
    WISHES = ("layer", "sample", "class_index", "cam_layer")

    def want(self, name: str, value: Any) -> None:
        """Change a setting from the next :meth:`run` on (safe from another thread; see :data:`WISHES`)."""
        if name not in self.WISHES:
            raise ProbeError(f"unknown probe setting {name!r}: choose one of {', '.join(self.WISHES)}")
        self._wanted[name] = value

    def set_activation_layer(self, node_id: str) -> None:
        """Show this block's activations from the next :meth:`run` on (safe from another thread)."""
        self.want("layer", node_id)

    def set_sample(self, sample: int) -> None:
        """Show this probe sample's activations from the next :meth:`run` on (safe from another thread)."""
        self.want("sample", int(sample))

    def _apply_wanted(self) -> None:
        wanted, self._wanted = self._wanted, {}
        if "layer" in wanted:
            self.problems.pop("activations", None)
            nid = wanted["layer"]
            node = self.graph.nodes.get(nid)
            if node is None or node.spec.role in ("input", "head"):
                what = f"'{node.name}'" if node is not None else repr(nid)
                self.problems["activations"] = f"{what} has no activations to show: pick a layer block"
            else:
                self.layer = nid
        if "sample" in wanted:
            if 0 <= wanted["sample"] < len(self.x):
                self.settings.sample = wanted["sample"]
            else:
                self.problems["activations"] = f"probe sample {wanted['sample']} does not exist (there are {len(self.x)})"
        for name in ("class_index", "cam_layer"):
            if name in wanted:
                self._want_cam(name, wanted[name])

    def _want_cam(self, name: str, value: Any) -> None:
        """Re-resolve the class maps with one setting changed; a wish that does not fit keeps the maps as they were."""
        s = self.settings
        if s.cam_method == "off":
            self.problems["cam"] = "class maps are switched off in the probe settings: turn them on to choose"
            return
        layer, ci = s.cam_layer, s.class_index
        try:
            if name == "class_index":
                ci = _class_index(value)
            else:
                layer = None if value is None else str(value)
            resolved = self._resolve_cam(s.cam_method, layer, ci)
        except ProbeError as exc:
            self.problems["cam"] = str(exc)
            return
        self.problems.pop("cam", None)
        s.cam_layer, s.class_index = (resolved[1] if layer is not None else None), ci
        self.cam_method, self.cam_layer, self.cam_path, self.cam_head = resolved

    # ------------------------------------------------------------------ schedule
    def due(self, step: int, now: float | None = None) -> bool:
        """Whether the probes should run after training step ``step`` (counted from 1)."""
        s = self.settings
        if self._runs == 0:
            return True  # the first step: show something at once
        if s.every_batches and step - self._last_step >= s.every_batches:
            return True
        if s.every_seconds:
            return (time.monotonic() if now is None else now) - self._last_time >= s.every_seconds
        return False

    @torch.no_grad()
    def mark(self, model: nn.Module) -> None:
        """Remember the weights before the coming step; the next :meth:`run` reports update ratios."""
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if self._before is None or list(self._before) != [n for n, _ in params]:
            self._before = {n: p.detach().clone() for n, p in params}
        else:
            for n, p in params:
                self._before[n].copy_(p)
        self._marked = True

    # ------------------------------------------------------------------ running
    def _snapshot(self, model: nn.Module) -> nn.Module:
        fresh = self._copy is None or self._source_id != id(model)
        if not fresh:
            try:
                refresh(self._copy, model)
            except (ValueError, RuntimeError):  # another module at the same address
                fresh = True
        if fresh:
            self._copy = detached_copy(model)
            self._source_id = id(model)
        device = next(model.parameters(), torch.empty(0)).device
        if device != self._device:
            self._device = device
            self._x_dev = self.x.to(device)
        return self._copy

    def run(self, model: nn.Module, step: int | None = None) -> dict[str, Any]:
        """Compute the scheduled probes for the model as it is now.

        Returns a dict of plain data (numpy arrays, floats, strings, lists); a probe that
        cannot be computed is left out and its reason is in ``problems``:

        * ``step`` (int or None), ``seconds`` (time this run took), ``problems`` {probe: why}.
        * ``activations``: see :func:`engine.probes.views.activations` (maps (C, H, W) or a
          vector (F,), min, max, dead, dead_fraction, node_id, name).
        * ``filters``: see :func:`engine.probes.views.filter_view` (a convolution's ``tiles``
          (out, in, k, k) in [0, 1] and ``rgb``, or a linear classifier's ``templates`` (K, C, H, W)).
        * ``cam``: ``method`` ("cam" or "gradcam"), ``node_id`` and ``name`` of the weighed
          block, ``maps`` (N, H, W) float32 in [0, 1] at input resolution, ``classes`` (N,).
        * ``localization`` (with ``cam``): the box cut from each class map, see
          :func:`engine.probes.wsl.localization` (``cam_boxes`` (N, 4), ``threshold``; once an
          :meth:`evaluate` has met the probe images' true boxes also ``true_boxes`` (N, 4), ``iou``
          (N,) and ``mean_iou``).
        * ``predictions``: ``scores`` (N, K) float32 and ``classes`` (N,) of the class output.
        * ``gradients``: ``layers`` (block names) and ``node_ids`` of the L blocks with
          weights, ``grad_norm``, ``weight_norm`` (L,) float64, and ``update_ratio`` (L,) when
          :meth:`mark` was called before the step, else None.
        * ``weight_histograms`` / ``activation_histograms``: ``layers``, ``node_ids``,
          ``counts`` (L, bins) float32, ``edges`` (L, bins + 1) float32.
        """
        t0 = time.perf_counter()
        if self._wanted:
            self._apply_wanted()
        s = self.settings
        out: dict[str, Any] = {"step": step, "problems": dict(self.problems)}
        copy = self._snapshot(model)
        self._forward_probes(copy, out)
        self._safe(out, "filters", lambda: self._filters(copy))
        self._safe(out, "gradients", lambda: self._gradients(model))
        if s.histograms:
            self._safe(out, "weight_histograms", lambda: self._weight_histograms(copy))
        self._marked = False
        self._runs += 1
        self._last_step = step if step is not None else self._last_step + (s.every_batches or 1)
        self._last_time = time.monotonic()
        self.runs += 1
        out["seconds"] = time.perf_counter() - t0
        return out

    def _safe(self, out: dict, key: str, compute) -> None:
        try:
            value = compute()
        except Exception as exc:  # noqa: BLE001 - a view that fails must not stop training
            out["problems"][key] = _why(exc)
            return
        if value is not None:
            out[key] = value

    def _forward_probes(self, copy: nn.Module, out: dict) -> None:
        """One pass of the probe images: activations, class map, predictions, activation histograms."""
        s = self.settings
        head = self.cam_head or self.class_head
        want = {nid for nid in (self.layer, head.node_id if head else None) if nid}
        if self.cam_method == "cam":
            want.add(self.cam_path.features)
        hist_ids: list[str] = []
        hists: list = []
        visit = None
        if s.histograms:

            def visit(nid: str, value: torch.Tensor) -> None:
                hist_ids.append(nid)
                hists.append(views.histogram_on_device(value, s.bins))

        roles = self.graph.nodes
        also = [nid for nid in self.tap.order if roles[nid].spec.role not in ("input", "head")] if s.histograms else []
        leaf = self.cam_layer if self.cam_method == "gradcam" else None
        try:
            with torch.enable_grad() if leaf else torch.no_grad():
                values = self.tap.run(copy, self._x_dev, want, leaf=leaf, also=also, visit=visit)
        except Exception as exc:  # noqa: BLE001 - a view that fails must not stop training
            out["problems"]["forward"] = _why(exc)
            return
        grads = None
        if leaf is not None:
            try:
                grads = self._grad_cam_gradients(values, head, leaf)
            except Exception as exc:  # noqa: BLE001
                out["problems"]["cam"] = _why(exc)
        if self.layer is not None:
            self._safe(out, "activations", lambda: views.activations(
                copy, self.code, self.graph, self.layer, self._x_dev, s.sample, value=values[self.layer]))
        if head is not None:
            scores = values[head.node_id].detach().float()
            self._safe(out, "predictions", lambda: _predictions(scores))
        if self.cam_method == "cam" or grads is not None:
            self._safe(out, "cam", lambda: self._cam(copy, values, grads, head) | {"class_index": s.class_index})
        if "cam" in out:
            self._safe(out, "localization", lambda: wsl.localization(
                out["cam"]["maps"], self._true_boxes, s.cam_box_threshold))
        if s.histograms:
            self._safe(out, "activation_histograms", lambda: self._activation_histograms(hist_ids, hists))

    def _grad_cam_gradients(self, values: dict, head: Head, leaf: str) -> torch.Tensor:
        with torch.enable_grad():
            scores = cam_mod.class_scores(values[head.node_id].float())  # NOTE: a binary logit z as (−z, z)
            classes = cam_mod.pick_classes(scores, self.settings.class_index, "Grad-CAM")
            chosen = scores.gather(1, classes[:, None]).sum()
            (grads,) = torch.autograd.grad(chosen, values[leaf])
        return grads

    def _class_maps(self, copy: nn.Module, x: torch.Tensor) -> dict[str, Any]:
        """The class maps of other images than the probe images (the hardest samples, say)."""
        head = self.cam_head
        leaf = self.cam_layer if self.cam_method == "gradcam" else None
        want = {head.node_id} | ({self.cam_path.features} if self.cam_method == "cam" else set())
        with torch.enable_grad() if leaf else torch.no_grad():
            values = self.tap.run(copy, x, want, leaf=leaf)
        grads = self._grad_cam_gradients(values, head, leaf) if leaf else None
        return self._cam(copy, values, grads, head)

    def _first_class_head(self) -> Head | None:
        try:
            return class_head(self.graph, self.code)
        except ProbeError:
            return None

    def _cam(self, copy: nn.Module, values: dict, grads, head: Head) -> dict[str, Any]:
        size = cam_mod.image_size(self.code, "CAM")
        scores = values[head.node_id].detach().float()
        if self.cam_method == "cam":
            maps, classes = cam_mod.cam_from(copy, self.code, self.graph, self.tap, self.cam_path,
                                             values[self.cam_path.features], scores, self.settings.class_index)
            heat = cam_mod.scale_cam(maps, size)
        else:
            classes = cam_mod.pick_classes(cam_mod.class_scores(scores), self.settings.class_index, "Grad-CAM")
            heat = cam_mod.scale_grad_cam(cam_mod.weigh_maps(values[self.cam_layer], grads), size)
        return {
            "method": self.cam_method,
            "node_id": self.cam_layer,
            "name": self.graph.nodes[self.cam_layer].name,
            "maps": heat.cpu().numpy().astype(np.float32),
            "classes": classes.cpu().numpy(),
        }

    def _filters(self, copy: nn.Module) -> dict[str, Any] | None:
        nid = self.filters_layer
        if nid is None:
            return None
        return views.filter_view(copy, self.code, self.graph, self.tap.shape, nid)

    def _layer_names(self, attrs: list[str]) -> tuple[list[str], list[str | None]]:
        by_attr = {a: nid for nid, a in self.code.attrs.items()}
        ids = [by_attr.get(a) for a in attrs]
        return [self.graph.nodes[i].name if i else a for a, i in zip(attrs, ids)], ids

    def _gradients(self, model: nn.Module) -> dict[str, Any]:
        stats = views.gradient_stats(model, self.code.attrs.values())
        attrs = list(stats)
        names, ids = self._layer_names(attrs)
        ratio = None
        if self._marked and self._before is not None:
            after = {n: p for n, p in model.named_parameters() if n in self._before}
            r = views.update_ratio(self._before, after, self.code.attrs.values())
            ratio = np.array([r.get(a, math.nan) for a in attrs], dtype=np.float64)
        # NOTE: a frozen block gets no gradient (NaN); the view says why rather than leaving a gap unexplained
        frozen = [i is not None and i in self.graph.nodes and is_frozen(self.graph.nodes[i].params) for i in ids]
        return {
            "layers": [f"{n} {FROZEN_MARK}" if f else n for n, f in zip(names, frozen)],
            "node_ids": ids,
            "frozen": frozen,
            "grad_norm": np.array([stats[a]["grad_norm"] for a in attrs], dtype=np.float64),
            "weight_norm": np.array([stats[a]["weight_norm"] for a in attrs], dtype=np.float64),
            "update_ratio": ratio,
        }

    def _activation_histograms(self, ids: list[str], parts: list) -> dict[str, Any]:
        counts, edges = views.finish_histograms(parts, self.settings.bins)
        return {"layers": [self.graph.nodes[n].name for n in ids], "node_ids": list(ids), "counts": counts, "edges": edges}

    def _weight_histograms(self, copy: nn.Module) -> dict[str, Any]:
        h = views.histograms(copy, self.settings.bins, self.code.attrs.values())
        names, ids = self._layer_names(h["layers"])
        return {"layers": names, "node_ids": ids, "counts": h["counts"], "edges": h["edges"]}

    # ------------------------------------------------------------------ on request
    def images(self) -> np.ndarray:
        """The probe images for display: (N, H, W) grayscale or (N, H, W, 3) RGB in [0, 1]."""
        if self.x.dim() != 4:
            raise ProbeError("the probe samples are not images")
        return _for_display(self._display if self._display is not None else _minmax(self.x.detach().cpu().float()))

    def display_images(self, x: torch.Tensor) -> np.ndarray:
        """Any model inputs (N, C, H, W) as :meth:`images` shows the probe images.

        NOTE: the inputs are normalized per channel (an affine map), so the map back to what a
        person sees is fitted once on the probe images and their display versions; without
        display versions each image is scaled into [0, 1].
        """
        x = x.detach().cpu().float()
        if x.dim() != 4:
            raise ProbeError("the samples are not images")
        if self._display is None or self._display.shape[1:] != self.x.shape[1:] or x.shape[1:] != self.x.shape[1:]:
            return _for_display(_minmax(x))
        if self._to_display is None:
            self._to_display = _fit_affine(self._probe_inputs(), self._display.float())
        scale, offset = self._to_display
        return _for_display(x * scale[None, :, None, None] + offset[None, :, None, None])

    def _probe_inputs(self) -> torch.Tensor:
        if self._x_cpu is None:
            self._x_cpu = self.x.detach().cpu()
        return self._x_cpu

    def evaluate(self, model: nn.Module, dataset, scores: list[torch.Tensor] | None = None) -> dict[str, Any]:
        """The decision views on a data set (validation, say), for an epoch's end.

        Returns, as the network's heads allow: ``confusion`` (``matrix`` (K, K) int64, row =
        true class; ``per_class_accuracy`` (K,); ``classes`` names or None), ``hardest``
        (``indices`` into ``dataset``, ``losses``, hardest first, ``head``; for image data the
        first ``gallery`` of them also have ``images`` as :meth:`images` shows them, ``true`` and
        ``predicted`` class (G,) or None, ``classes`` (names or None), ``masks`` (G, H, W) when
        the first output is a segmentation and, when class maps are on, ``cam`` as in
        :meth:`run`), ``decision_grid`` (``probs``
        (S, S, K) with rows along y, ``x_range``, ``y_range``, the data's ``x`` (N, 2) and
        ``labels``) for 2-D inputs, ``regression_curve``
        (``xs`` (S,), ``ys`` (S, k), the data's ``x`` and ``y``) for 1-D regression, ``masks``
        (N, H, W) and ``boxes`` (N, 4) predicted for the probe images with ``probe_images``
        beside them, ``true_masks``, ``mask_classes`` and ``true_boxes`` when ``dataset`` starts
        with the probe images and has those targets (the true masks and every picture shown
        under masks cut to the centre that a segmentation output smaller than its masks covers,
        :func:`~engine.probes.views.crop_pictures`), ``probe_labels`` (N,) (the probe images' classes,
        when ``dataset`` starts with them and has class labels), and ``problems``.
        ``scores``: the model's outputs for ``dataset`` (one tensor per output) when the caller
        has them already. When ``dataset`` starts with the probe images and has true boxes, the
        runner keeps them: from then on :meth:`run` scores the boxes cut from the class maps.
        """
        if self._wanted:
            self._apply_wanted()
        out: dict[str, Any] = {"problems": {}}
        copy = self._snapshot(model)
        if not self.heads or len(dataset) == 0:
            return out
        in_shape = tuple(self.code.input_shapes[0]) if self.code.input_shapes else ()
        try:
            # NOTE: one pass serves every view below; the trainer hands over its validation pass.
            scores = scores if scores is not None else views.predict_all(copy, dataset.x)
        except Exception as exc:  # noqa: BLE001 - a probe never stops training
            out["problems"]["predictions"] = str(exc)
            return out
        truth = self._probe_targets(dataset)
        if truth is not None and "box" in truth:
            self._true_boxes = truth["box"].numpy().astype(np.float32)
        if truth is not None and "label" in truth:
            out["probe_labels"] = truth["label"].reshape(len(self.x), -1)[:, 0].numpy().astype(np.int64)
        for head in self.heads:
            shows = head_spec(head.type).views
            if "confusion" in shows and "confusion" not in out:  # NOTE: the first class head's, with its regions
                if "label" in dataset.targets:
                    self._safe(out, "confusion", lambda h=head: self._confusion(copy, dataset, h, scores[h.index]))
                if "regions" in shows and in_shape == (2,):
                    self._safe(out, "decision_grid", lambda h=head: self._grid(copy, dataset, h))
            if "curve" in shows and in_shape == (1,):
                self._safe(out, "regression_curve", lambda h=head: self._curve(copy, dataset, h))
            if "masks" in shows:
                self._safe(out, "masks", lambda h=head: views.predicted_masks(copy, self._x_dev, output=h.index))
                if truth is not None and "mask" in truth and "masks" in out:
                    true = views.crop_to_output(truth["mask"].numpy().astype(np.int64), out["masks"].shape[-2:])
                    out["true_masks"] = np.ascontiguousarray(true)
                    out["mask_classes"] = dataset.mask_classes
            if "boxes" in shows:
                self._safe(out, "boxes", lambda h=head: views.predicted_boxes(copy, self._x_dev, output=h.index))
                if truth is not None and "box" in truth:
                    out["true_boxes"] = truth["box"].numpy().astype(np.float32)
        if "masks" in out or "boxes" in out:
            self._safe(out, "probe_images", lambda: self._pictures(self.images(), out))
        self._safe(out, "hardest", lambda: self._hardest(copy, dataset, scores, out["problems"]))
        return out

    def _probe_targets(self, dataset) -> dict[str, torch.Tensor] | None:
        """The targets of the probe images when ``dataset`` starts with them (the trainer's split does)."""
        n = len(self.x)
        if len(dataset) < n or not isinstance(dataset.x, torch.Tensor):
            return None
        first = dataset.x[:n].detach().cpu()
        probe = self._probe_inputs()
        if first.shape != probe.shape or not torch.equal(first, probe):
            return None
        return {k: v[:n].detach().cpu() for k, v in dataset.targets.items()}

    def _hardest(self, copy: nn.Module, dataset, scores: list[torch.Tensor], problems: dict) -> dict[str, Any]:
        first = self.heads[0]
        idx, losses = views.hardest(copy, dataset, self.settings.hardest, head_type=first.type,
                                    output=first.index, scores=scores[first.index],
                                    loss=self.graph.nodes[first.node_id].params.get("loss"))
        out = {"indices": idx, "losses": losses, "head": first.node_id}
        if dataset.x.dim() == 4 and len(idx) and self.settings.gallery > 0:
            try:
                out.update(self._gallery(copy, dataset, idx[: self.settings.gallery], scores))
            except Exception as exc:  # noqa: BLE001 - the list of hardest samples stands without pictures
                problems["gallery"] = _why(exc)
        return out

    def _gallery(self, copy: nn.Module, dataset, idx: np.ndarray, scores: list[torch.Tensor]) -> dict[str, Any]:
        """Pictures, true and predicted classes and class maps of a few samples (only these go through CAM)."""
        rows = torch.as_tensor(idx, dtype=torch.long)
        x = dataset.x[rows]
        out: dict[str, Any] = {"images": self.display_images(x), "true": None, "predicted": None,
                               "classes": dataset.classes}
        head = self.class_head
        if head is not None:
            mine = scores[head.index][rows.to(scores[head.index].device)].float()
            out["predicted"] = _predictions(mine)["classes"].astype(np.int64)
            labels = dataset.targets.get("label")
            if labels is not None:
                out["true"] = labels.reshape(len(dataset), -1)[rows, 0].cpu().numpy().astype(np.int64)
        first = self.heads[0]
        if "masks" in head_spec(first.type).views:
            out["masks"] = scores[first.index][rows.to(scores[first.index].device)].argmax(1).cpu().numpy()
        if self.cam_method != "off":
            maps = self._class_maps(copy, x.to(self._device or x.device))
            out["cam"] = maps | {"class_index": self.settings.class_index}
        else:
            out["images"] = self._pictures(out["images"], out)
        return out

    @staticmethod
    def _pictures(images: np.ndarray, out: dict[str, Any]) -> np.ndarray:
        """``images`` as shown under ``out``'s masks: their centre, where the masks are cropped to a smaller output."""
        return views.crop_pictures(images, out["masks"].shape[-2:]) if "masks" in out else images

    def _confusion(self, copy, dataset, head: Head, scores: torch.Tensor) -> dict[str, Any]:
        m = views.confusion(copy, dataset, output=head.index, scores=scores)
        return {"matrix": m, "per_class_accuracy": views.per_class_accuracy(m), "classes": dataset.classes}

    def _grid(self, copy, dataset, head: Head) -> dict[str, Any]:
        (xr, yr) = views.data_range(dataset.x)[:2]
        kind = {"logits": "binary", "signs": "sign"}.get(head_spec(head.type).output, "class")
        probs = views.decision_grid(copy, xr, yr, self.settings.grid_steps, output=head.index, kind=kind)
        labels = dataset.targets.get("label")
        return {"probs": probs, "x_range": xr, "y_range": yr, "x": dataset.x[:, :2].cpu().numpy(),
                "labels": labels.reshape(-1).cpu().numpy() if labels is not None else None}

    def _curve(self, copy, dataset, head: Head) -> dict[str, Any]:
        (xr,) = views.data_range(dataset.x)[:1]
        xs, ys = views.regression_curve(copy, xr, 200, output=head.index)
        data_y = dataset.targets.get("value")
        return {"xs": xs, "ys": ys, "x": dataset.x.reshape(-1).cpu().numpy(),
                "y": data_y.reshape(len(dataset), -1).cpu().numpy() if data_y is not None else None}

    def close(self) -> None:
        """Drop the model copy and the weight snapshot."""
        self._copy = self._before = None
        self._source_id = None


# ---------------------------------------------------------------------- helpers
def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ProbeError) else f"{type(exc).__name__}: {exc}"


def _class_index(value: Any) -> int | None:
    """None, or a whole number as a class index; ProbeError for anything else."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ProbeError(f"class index {value!r} is not a whole number")


def _minmax(x: torch.Tensor) -> torch.Tensor:
    """Each image (N, C, H, W) scaled into [0, 1] by its own range."""
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    span = (x.amax(dim=(1, 2, 3), keepdim=True) - lo).clamp_min(1e-12)
    return (x - lo) / span


def _for_display(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) as (N, H, W, 3) RGB when C is 3, else (N, H, W) grayscale, float32 clamped into [0, 1]."""
    x = x.float().clamp(0, 1)
    if x.shape[1] == 3:
        return x.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)
    return x.mean(1).numpy().astype(np.float32)


def _fit_affine(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel (scale, offset) with ``y ≈ scale · x + offset`` by least squares ((N, C, H, W) both)."""
    c = x.shape[1]
    xs = x.double().transpose(0, 1).reshape(c, -1)
    ys = y.double().transpose(0, 1).reshape(c, -1)
    xm, ym = xs.mean(1), ys.mean(1)
    var = ((xs - xm[:, None]) ** 2).mean(1)
    cov = ((xs - xm[:, None]) * (ys - ym[:, None])).mean(1)
    scale = torch.where(var > 1e-12, cov / var.clamp_min(1e-12), torch.zeros_like(var))
    return scale.float(), (ym - scale * xm).float()


def _predictions(scores: torch.Tensor) -> dict[str, np.ndarray]:
    classes = scores.argmax(1) if scores.shape[1] > 1 else (scores[:, 0] > 0).long()
    return {"scores": scores.cpu().numpy().astype(np.float32), "classes": classes.cpu().numpy()}

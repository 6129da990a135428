"""Headless explanation of one prediction: a class-activation overlay PNG and the raw heat map.

``explain`` loads a trained project's weights, takes an image file (resized to the Input) or a
sample of the project's data set (normalized exactly as training normalized it), computes CAM
or Grad-CAM for the predicted class or a chosen one, and writes ``OUT.png`` (the heat map over
the image) and ``OUT.npy`` (float32 (H, W) in [0, 1] at the Input's resolution).
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from engine.compile import compile_graph
from engine.errors import NetDesignerError
from engine.probes.base import ProbeError, Tap, class_head, head_output, resolve_block
from engine.probes.cam import cam, grad_cam, grad_cam_layer, cam_path, overlay, save_png

__all__ = ["explain", "load_image", "load_project_data", "split_checkpoint", "training_normalizer"]

METHODS = ("cam", "gradcam")


def load_image(path: str | Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """An image file as (C, H, W) float32 in [0, 1], converted and resized to the Input."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = input_shape
    if c not in (1, 3):
        raise ProbeError(f"an image file can feed a 1- or 3-channel Input, not {c} channels")
    p = Path(path)
    if not p.is_file():
        raise ProbeError(f"{p}: there is no such image file")
    try:
        with Image.open(p) as img:
            img = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise ProbeError(f"{p}: not an image that can be read ({exc})") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def split_checkpoint(weights: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
    """A bare state dict, or a trainer checkpoint's model weights and its saved normalizer."""
    if isinstance(weights, Mapping) and isinstance(weights.get("model"), Mapping):
        return weights["model"], weights.get("normalizer")
    return weights, None


def explain(
    project,
    weights_state_dict: Mapping[str, Any],
    image_or_index: str | Path | int,
    method: str = "cam",
    layer: str | None = None,
    class_index: int | None = None,
    out_png: str | Path = "explain.png",
    base_dir: str | Path | None = None,
    *,
    normalizer=None,
    opacity: float = 0.5,
) -> tuple[Path, Path, dict[str, Any]]:
    """Write the class-activation overlay of one input; return (png path, npy path, info).

    Args:
        project: an :class:`engine.project.Project` whose graph the weights belong to.
        weights_state_dict: the model's state dict, or a trainer checkpoint (its ``model`` and
            ``normalizer`` are used).
        image_or_index: an image file path, or an index into the project's data set.
        method: ``"cam"`` (GlobalAvgPool → Dense networks) or ``"gradcam"`` (any CNN).
        layer: Grad-CAM's block, by name or id (None: the last spatial block).
        class_index: the class to explain (None: the predicted class).
        out_png: the overlay's path; the raw map goes beside it with the suffix ``.npy``.
        base_dir: the project's folder, for data sets given by a relative path.
        normalizer: an :class:`engine.data.Normalizer` (or its dict) to use instead of
            fitting one on the training split.

    Returns:
        info: ``method``, ``layer`` / ``layer_name`` (the block whose maps were used),
        ``class_index`` explained, ``class_name`` (when known), ``predicted``, ``scores``
        (the class output's raw scores), ``input`` (the file or ``"sample N"``).

    Raises:
        ProbeError: CAM on a network without GlobalAvgPool → Dense, a block that is not
            spatial, a class index out of range, a missing or unreadable image, an index
            outside the data set, or weights that do not fit the network.
    """
    if method not in METHODS:
        raise ProbeError(f"unknown method {method!r}: choose cam or gradcam")
    graph = project.graph
    compiled = compile_graph(graph, project.name or "Net")
    code, model = compiled.code, compiled.module
    state, saved_norm = split_checkpoint(weights_state_dict)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ProbeError(f"the weights do not fit this network ({str(exc).splitlines()[0]})") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    shape = tuple(code.input_shapes[0]) if code.input_shapes else ()
    if len(shape) != 3:
        raise ProbeError("explain needs a network with an image Input")
    tap = Tap(graph, code)
    head = class_head(graph, code, "explain")
    layer_id = _check_method(graph, code, tap, method, layer)

    data = None
    if isinstance(image_or_index, (str, Path)):
        raw = load_image(image_or_index, shape)
        source = str(image_or_index)
    else:
        try:
            index = operator.index(image_or_index)
        except TypeError:
            raise ProbeError(f"give an image file or a sample index, not {image_or_index!r}") from None
        data = load_project_data(project, shape, base_dir)
        if not 0 <= index < len(data):
            raise ProbeError(f"sample {index} does not exist: the {data.name} data set has {len(data)} samples (0 to {len(data) - 1})")
        raw = data.x[index]
        source = f"sample {index}"
    norm = training_normalizer(project, normalizer if normalizer is not None else saved_norm, data, shape, base_dir)
    x = (norm.transform(raw[None]) if norm is not None else raw[None]).float()

    with torch.no_grad():
        scores = head_output(model(x), head).float()[0]
    if method == "cam":
        heat = cam(model, code, graph, x, class_index, tap=tap)[0]
        used = int(class_index) if class_index is not None else int(scores.argmax())
    else:
        maps, classes = grad_cam(model, code, graph, x, layer_id, class_index, tap=tap)
        heat, used = maps[0], int(classes[0])

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    npy = out_png.with_suffix(".npy")
    display = raw.clamp(0, 1).numpy()
    image = display[0] if display.shape[0] == 1 else display.transpose(1, 2, 0) if display.shape[0] == 3 else display.mean(0)
    save_png(out_png, overlay(image, heat, opacity))
    np.save(npy, heat.astype(np.float32))
    classes_names = data.classes if data is not None else None
    info = {
        "method": method,
        "layer": layer_id,
        "layer_name": graph.nodes[layer_id].name,
        "class_index": used,
        "class_name": classes_names[used] if classes_names and used < len(classes_names) else None,
        "predicted": int(scores.argmax()) if scores.numel() > 1 else int(scores[0] > 0),
        "scores": scores.tolist(),
        "input": source,
    }
    return out_png, npy, info


def _check_method(graph, code, tap: Tap, method: str, layer: str | None) -> str:
    """The block whose maps are used, checked before any data is loaded."""
    if method == "cam":
        if layer is not None:
            raise ProbeError("CAM always uses the maps that GlobalAvgPool averages; choose gradcam to pick a layer")
        return cam_path(graph, code).features
    return grad_cam_layer(graph, tap, resolve_block(graph, layer) if layer is not None else None)


def load_project_data(project, shape, base_dir):
    """The project's data set for an input of ``shape``; a loading problem becomes a :class:`ProbeError`."""
    from engine.data import load_dataset

    try:
        return load_dataset(project.data, shape, base_dir=Path(base_dir) if base_dir else None)
    except NetDesignerError as exc:
        raise ProbeError(f"the project's data set could not be loaded: {exc}") from None


def training_normalizer(project, given, data, shape, base_dir):
    """The normalizer training used: the given one, else fitted on the training split; None if off."""
    from engine.data import Normalizer, split_dataset

    if not project.data.normalize:
        return None
    if given is not None:
        return given if isinstance(given, Normalizer) else Normalizer.from_dict(given)
    if data is None:
        try:
            data = load_project_data(project, shape, base_dir)
        except ProbeError as exc:
            raise ProbeError(f"{exc}; it is needed to normalize the image as training did (or pass the normalizer saved with the checkpoint)") from None
    cfg = project.data
    train = split_dataset(data, cfg.val_fraction, cfg.test_fraction, cfg.seed).train
    return Normalizer.fit(train)

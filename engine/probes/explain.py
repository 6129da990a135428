"""Headless explanation of one prediction: a class-activation overlay PNG and the raw heat map.

``explain`` loads a trained project's weights, takes an image file (resized to the Input) or a
sample of the project's data set (normalized exactly as training normalized it; a set over the
memory budget is not loaded: the one sample is read from disk), computes CAM
or Grad-CAM for the predicted class or a chosen one, and writes ``OUT.png`` (the heat map over
the image) and ``OUT.npy`` (float32 (H, W) in [0, 1] at the Input's resolution).

Every input that does not fit is a :class:`ProbeError` in plain words: an image file that is not
a regular file or declares more than :data:`MAX_IMAGE_PIXELS` (checked before decoding), a saved
normalizer of the wrong shape, weights that do not fit, a network too large for memory. A Binary
output's class 0 is explained by the negated logit (:func:`engine.probes.cam.class_scores`).
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
from engine.probes.cam import cam, cam_path, class_scores, grad_cam, grad_cam_layer, overlay, save_png
from engine.userfiles import MAX_IMAGE_PIXELS, ImageTooLarge, UnreadableImage, open_regular_file, read_image

__all__ = ["explain", "load_image", "load_project_data", "sample_input", "samples_source", "split_checkpoint",
           "training_normalizer"]

METHODS = ("cam", "gradcam")


def load_image(path: str | Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """An image file as (C, H, W) float32 in [0, 1], converted and resized to the Input.

    Only a regular file is opened, and its size is read from its header and refused above
    :data:`MAX_IMAGE_PIXELS` before anything is decoded (:func:`engine.userfiles.read_image`).
    """
    c, h, w = input_shape
    if c not in (1, 3):
        raise ProbeError(f"an image file can feed a 1- or 3-channel Input, not {c} channels")
    p = Path(path)
    try:
        fh = open_regular_file(p, "an image file")
    except FileNotFoundError:
        raise ProbeError(f"{p}: there is no such image file") from None
    except NetDesignerError as exc:
        raise ProbeError(str(exc)) from None
    except OSError as exc:
        raise ProbeError(f"{p}: the image cannot be opened ({exc.strerror or exc})") from None
    except ValueError:  # NOTE: os functions raise it for a path with a NUL character
        raise ProbeError(f"{str(p)!r}: the image cannot be opened (the path holds a NUL character)") from None
    try:
        with fh:
            arr, _ = read_image(fh, "L" if c == 1 else "RGB", (w, h))
    except ImageTooLarge as exc:
        raise ProbeError(_too_many_pixels(p, exc)) from None
    except UnreadableImage as exc:
        raise ProbeError(f"{p}: {exc}") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _too_many_pixels(path: Path, exc: ImageTooLarge) -> str:
    if exc.size is not None:
        count = f"{exc.pixels:,} pixels ({exc.size[0]}×{exc.size[1]})"
    else:  # NOTE: Pillow's own, harder limit refused it while reading the header
        count = f"{exc.pixels:,} pixels" if exc.pixels is not None else f"far more than {MAX_IMAGE_PIXELS:,} pixels"
    return (
        f"{path}: the image has {count}, more than the {MAX_IMAGE_PIXELS:,} explain reads "
        "(a picture this large may be a decompression bomb): shrink it first"
    )


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
        method: ``"cam"`` (GlobalAvgPool or GlobalMaxPool → Dense networks) or ``"gradcam"`` (any CNN).
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
        ProbeError: CAM on a network without global pooling → Dense, a block that is not
            spatial, a class index out of range, a missing or unreadable image, an index
            outside the data set, or weights that do not fit the network.
    """
    if method not in METHODS:
        raise ProbeError(f"unknown method {method!r}: choose cam or gradcam")
    out_png = Path(out_png)
    if not out_png.name or out_png.is_dir():  # NOTE: the raw map's path is the overlay's with .npy, so it needs a name
        raise ProbeError(f"{out_png}: the overlay needs a file name, such as explain.png, not a folder")
    graph = project.graph
    code, model = _build(project)
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
        data = samples_source(project, shape, base_dir)
        if not 0 <= index < len(data):
            raise ProbeError(f"sample {index} does not exist: the {data.name} data set has {len(data)} samples (0 to {len(data) - 1})")
        raw = sample_input(data, index)
        source = f"sample {index}"
    norm = training_normalizer(project, normalizer if normalizer is not None else saved_norm, data, shape, base_dir)
    x = (norm.transform(raw[None]) if norm is not None else raw[None]).float()

    with torch.no_grad():
        scores = head_output(model(x), head).float()[0]
    predicted = int(class_scores(scores[None])[0].argmax())  # NOTE: one binary logit z is the classes (−z, z)
    if method == "cam":
        heat = cam(model, code, graph, x, class_index, tap=tap)[0]
        used = int(class_index) if class_index is not None else predicted
    else:
        maps, classes = grad_cam(model, code, graph, x, layer_id, class_index, tap=tap)
        heat, used = maps[0], int(classes[0])

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
        "predicted": predicted,
        "scores": scores.tolist(),
        "input": source,
    }
    return out_png, npy, info


def _build(project) -> tuple[Any, torch.nn.Module]:
    """(generated code, module) of the project's network; a network too large for memory is a ProbeError."""
    try:
        compiled = compile_graph(project.graph, project.name or "Net")
    except (MemoryError, RuntimeError) as exc:
        from engine.analysis import analyze

        counted = analyze(project.graph)
        params = counted.total_params
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, MemoryError) or "alloc" in why.lower() or "memory" in why.lower():
            raise ProbeError(
                f"the network is too large for this machine's memory: its {params:,} parameters need "
                f"{_gigabytes(4 * (params + counted.total_frozen))} as float32"
            ) from None
        raise ProbeError(f"the network could not be built ({why})") from None
    return compiled.code, compiled.module


def _gigabytes(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def _check_method(graph, code, tap: Tap, method: str, layer: str | None) -> str:
    """The block whose maps are used, checked before any data is loaded."""
    if method == "cam":
        if layer is not None:
            raise ProbeError("CAM always uses the maps that the global pooling reads; choose gradcam to pick a layer")
        return cam_path(graph, code).features
    return grad_cam_layer(graph, tap, resolve_block(graph, layer) if layer is not None else None)


def load_project_data(project, shape, base_dir):
    """The project's data set for an input of ``shape``, in memory; a loading problem becomes a :class:`ProbeError`."""
    from engine.data import load_dataset

    try:
        return load_dataset(project.data, shape, base_dir=Path(base_dir) if base_dir else None)
    except NetDesignerError as exc:
        raise ProbeError(f"the project's data set could not be loaded: {exc}") from None


def samples_source(project, shape, base_dir):
    """The project's data set as training reads it: streamed from disk when it is over the memory budget,
    so that explaining one sample never loads a large set whole; a loading problem becomes a :class:`ProbeError`."""
    from engine.data.streaming import load_for_training

    try:
        return load_for_training(project.data, shape, base_dir=Path(base_dir) if base_dir else None)
    except NetDesignerError as exc:
        raise ProbeError(f"the project's data set could not be loaded: {exc}") from None


def sample_input(data, index: int) -> torch.Tensor:
    """The raw input of sample ``index``: read from its file when ``data`` streams."""
    from engine.data.streaming import is_streamed

    if not is_streamed(data):
        return data.x[index]
    x, _, bad = data.read([index])
    if bad:
        raise ProbeError(f"sample {index} cannot be read: {bad[0].where}: {bad[0].reason}")
    return x[0]


def training_normalizer(project, given, data, shape, base_dir):
    """The normalizer training used: the given one, else fitted on the training split; None if off.

    A streamed data set is fitted as the trainer fits it, in one pass over its training split read a
    batch at a time (:func:`~engine.data.streaming.stream_stats`).
    """
    from engine.data import Normalizer, split_dataset
    from engine.data.streaming import is_streamed, stream_stats, worker_count

    if not project.data.normalize:
        return None
    if given is not None:
        return _fitting(given if isinstance(given, Normalizer) else Normalizer.from_dict(given), shape)
    if data is None:
        try:
            data = samples_source(project, shape, base_dir)
        except ProbeError as exc:
            raise ProbeError(f"{exc}; it is needed to normalize the image as training did (or pass the normalizer saved with the checkpoint)") from None
    cfg = project.data
    train = split_dataset(data, cfg.val_fraction, cfg.test_fraction, cfg.seed).train
    if not is_streamed(train):
        return Normalizer.fit(train)
    try:
        return stream_stats(train, worker_count(cfg)).normalizer
    except NetDesignerError as exc:
        raise ProbeError(f"{exc}; it is needed to normalize the image as training did (or pass the normalizer saved with the checkpoint)") from None


def _fitting(norm, shape):
    """A given normalizer, checked to hold one mean and one std per channel of the Input."""
    channels = shape[0]
    for name in ("mean", "std"):
        stats = getattr(norm, name)
        if not isinstance(stats, torch.Tensor) or tuple(stats.shape) != (channels,):
            got = tuple(stats.shape) if isinstance(stats, torch.Tensor) else type(stats).__name__
            raise ProbeError(
                f"the checkpoint's normalizer does not fit this network: its {name} has shape {got}, but the "
                f"Input has {channels} channel{'s' if channels != 1 else ''} (one {name} per channel)"
            )
    return norm

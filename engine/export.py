"""Export a project as a standalone PyTorch source file (and its weights).

The file is the source :mod:`engine.compile` executes for training, so loading the exported
weights into the exported class reproduces the in-app model's outputs. Exported from a run
(:func:`trained_weights`: a run folder or a checkpoint), the class also applies the input
normalization fitted on the run's training split as the first step of ``forward`` (two
registered buffers), so ``model(raw_batch)`` equals the trained network on the normalized
batch, and its header says what input it expects. Weights are a plain ``state_dict`` saved
with ``torch.save`` and meant to be loaded with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from engine.codegen import GeneratedModel, InputSpec, generate
from engine.compile import load_class
from engine.errors import NetDesignerError
from engine.fileio import atomic_write, atomic_write_text
from engine.graph import Graph
from engine.userfiles import NotRegularFile, read_tensors


class ExportError(NetDesignerError):
    """The weights do not fit the network, or a file could not be written."""


def generate_for(graph: Graph, name: str, input_spec: InputSpec | None = None) -> GeneratedModel:
    """The generated source for a graph, with the class named after ``name``."""
    return generate(graph, class_name=name or "Net", title=name, input_spec=input_spec)


def read_weights_file(path: str | Path):
    """Whatever a weights or checkpoint file holds, loaded safely (``weights_only=True``)."""
    path = Path(path)
    try:
        return read_tensors(path, "a weights file")
    except FileNotFoundError:
        raise ExportError(f"{path}: the weights file does not exist") from None
    except NotRegularFile as exc:
        raise ExportError(str(exc)) from None
    except Exception as exc:  # torch raises many kinds for a corrupt or unsafe file
        raise ExportError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from None


def load_weights(path: str | Path, state: Any = None) -> dict[str, torch.Tensor]:
    """A ``state_dict`` from a weights file or from a training checkpoint's model part (``state``: already read)."""
    path = Path(path)
    state = read_weights_file(path) if state is None else state
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]  # a training checkpoint: take the model's part
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"{path}: expected a state_dict of tensors")
    return dict(state)


def trained_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], InputSpec | None]:
    """The weights to export from a run folder (its best checkpoint, else its last) or a weights file.

    Returns the ``state_dict`` and, for a training checkpoint, what its inputs are (normalization,
    value range, class names); a bare ``state_dict`` file has none.
    """
    from engine.training.runs import RunError, find_checkpoint

    try:
        path = find_checkpoint(path, which="best")
    except RunError as exc:
        raise ExportError(str(exc)) from None
    state = read_weights_file(path)
    spec = None
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        spec = InputSpec.from_checkpoint(state.get("normalizer"), state.get("data"))
    return load_weights(path, state), spec


def export_code(
    graph: Graph,
    out_path: str | Path,
    *,
    name: str = "Net",
    state_dict: Mapping[str, torch.Tensor] | None = None,
    input_spec: InputSpec | None = None,
) -> list[Path]:
    """Write ``out_path`` (.py) and, given weights, ``out_path`` with suffix ``.pt``.

    With ``input_spec`` the module normalizes raw inputs itself (its statistics go into the
    weights as the buffers ``input_mean`` and ``input_std``). The weights are checked against the
    generated class before anything is written. Returns the paths written. Raises CompileError
    for a graph with errors and ExportError for weights that do not fit.
    """
    out = Path(out_path)
    if out.suffix != ".py":
        raise ExportError(f"{out}: the code file must end in .py")
    code = generate_for(graph, name, input_spec)
    written = [out]
    if state_dict is not None:
        model = load_class(code)()
        state = dict(state_dict)
        if "input_mean" in model.state_dict():
            state.setdefault("input_mean", model.input_mean)
            state.setdefault("input_std", model.input_std)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0:3]
            raise ExportError("the weights do not fit this network: " + " ".join(first)) from None
        weights_path = out.with_suffix(".pt")
        atomic_write(weights_path, lambda tmp: torch.save(model.state_dict(), tmp))
        written.append(weights_path)
    atomic_write_text(out, code.source)
    return written

"""A new network from earlier weights: every block whose parameters still fit keeps them.

When a person changes the network itself while a run is paused (adds or removes blocks, changes
a layer's shape), the run cannot go on with it; a new run starts from the paused weights instead.
The paused run writes its weights with its project snapshot (:func:`keep_weights`, in its
folder); the new run builds its model from the new graph as usual (seeded, so the fresh blocks
start as Train would start them) and :func:`transfer_weights` copies in every block's tensors
whose block is still there (the same block id and type) with the same tensor names and shapes.

Blocks are matched by id, not by the attribute names of the generated code, which follow the
blocks' names (a rename, or a new block named like an old one, would mislead them): the old
graph's :attr:`~engine.codegen.GeneratedModel.attrs` name each old block's tensors in the paused
``state_dict``, the new model's name them in the new one. A block is kept whole or not at all.

The same copy starts a new run from another run (transfer learning, fine-tuning): :func:`read_source`
reads a run folder (its best checkpoint, else its last), a training checkpoint or an exported
``state_dict``, with the project that made it (the run folder's ``project.json``). Weights with no
project beside them are matched by the new network's own attribute names (:func:`transfer_by_names`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.codegen import GeneratedModel, generate
from engine.errors import NetDesignerError
from engine.graph import Graph
from engine.training.live import KEPT_WEIGHTS

__all__ = ["KEPT_WEIGHTS", "Transfer", "TransferError", "WeightSource", "keep_weights", "read_kept", "read_source",
           "transfer_by_names", "transfer_weights"]

class TransferError(NetDesignerError):
    """Earlier weights cannot be read or used; the message names the file."""


@dataclass(frozen=True)
class Transfer:
    """What a new network took from the paused one.

    Attributes:
        kept: the ids of the blocks whose weights were copied.
        fresh: block id -> why it starts from a fresh initialization ("new", "its shape changed", ...).
        copied: the new model's ``state_dict`` keys that were copied.
    """

    kept: tuple[str, ...]
    fresh: dict[str, str]
    copied: tuple[str, ...]

    def described(self, graph: Graph) -> dict[str, Any]:
        """By block name, as plain data (``Started.transfer``, the run's summary): kept and fresh blocks."""
        def name(nid: str) -> str:
            return graph.nodes[nid].name if nid in graph.nodes else nid

        return {"kept": [name(n) for n in self.kept], "fresh": {name(n): why for n, why in self.fresh.items()}}


def keep_weights(path: Path, model: torch.nn.Module, snapshot: dict[str, Any], *, epoch: int, step: int,
                 at: float) -> None:
    """Write ``model``'s weights with the project ``snapshot`` that made it, atomically.

    ``epoch`` is the last finished epoch, ``step`` the batches trained, ``at`` the epochs trained (3.4).
    """
    from engine.fileio import atomic_write

    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    doc = {"model": state, "project": snapshot, "epoch": int(epoch), "step": int(step), "at": float(at)}
    atomic_write(path, lambda tmp: torch.save(doc, tmp))


def read_kept(path: Path) -> dict[str, Any]:
    """What :func:`keep_weights` wrote (read with ``weights_only=True``). Raises :class:`TransferError`."""
    from engine.userfiles import read_tensors

    try:
        doc = read_tensors(path, "paused weights")
    except FileNotFoundError:
        raise TransferError(f"{path}: the paused run's weights are not there") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged or unsafe file
        raise TransferError(f"{path}: the paused run's weights could not be read ({type(exc).__name__})") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("model"), dict) and isinstance(doc.get("project"), dict)):
        raise TransferError(f"{path}: not a paused run's weights (it needs the model and its project)")
    return doc


def transfer_weights(old_graph: Graph, old_state: dict[str, Any], new_graph: Graph, model: torch.nn.Module,
                     code: GeneratedModel) -> Transfer:
    """Copy into ``model`` (built from ``new_graph`` as ``code``) each block's tensors that still fit.

    A block keeps its weights when the old graph has a block of the same id and type whose tensors
    have the same names and shapes; its buffers (BatchNorm's running statistics) go with them.
    """
    from engine.units import flatten

    old_attrs = generate(old_graph).attrs
    # NOTE: blocks inside units are matched by their path (``unit/inner``), as the code's attrs name them
    old_graph, new_graph = flatten(old_graph), flatten(new_graph)

    def old_tensors(nid: str) -> dict[str, torch.Tensor] | str:
        old_node = old_graph.nodes.get(nid)
        if old_node is None or nid not in old_attrs:
            return "new"
        if old_node.type != new_graph.nodes[nid].type:
            return "its type changed"
        return _tensors_of(old_state, old_attrs[nid])

    return _copy_blocks(model, code, old_tensors)


def transfer_by_names(old_state: dict[str, Any], model: torch.nn.Module, code: GeneratedModel) -> Transfer:
    """Copy into ``model`` each block's tensors found in ``old_state`` under its own attribute name.

    For weights with no project to match blocks by id (an exported ``state_dict`` on its own): a block
    keeps them when ``old_state`` has its module's tensors (``conv1.weight``, ...) with the same shapes.
    """
    def old_tensors(nid: str) -> dict[str, torch.Tensor] | str:
        return _tensors_of(old_state, code.attrs[nid]) or "not in the weights"

    return _copy_blocks(model, code, old_tensors)


def _copy_blocks(model: torch.nn.Module, code: GeneratedModel,
                 old_tensors: Callable[[str], dict[str, torch.Tensor] | str]) -> Transfer:
    """Copy, block by block, the tensors ``old_tensors(id)`` gives (or why there are none) where they fit."""
    state = model.state_dict()
    merged = dict(state)
    kept, copied, fresh = [], [], {}
    for nid, attr in code.attrs.items():
        new = _tensors_of(state, attr)
        if not new:
            continue  # NOTE: no parameters (ReLU, pooling, Dropout): nothing to keep or lose
        old = old_tensors(nid)
        if isinstance(old, str):
            fresh[nid] = old
            continue
        if set(old) != set(new) or any(tuple(old[k].shape) != tuple(new[k].shape) for k in new):
            fresh[nid] = "its shape changed"
            continue
        for k, tensor in new.items():
            merged[f"{attr}.{k}"] = old[k].to(device=tensor.device, dtype=tensor.dtype)
            copied.append(f"{attr}.{k}")
        kept.append(nid)
    model.load_state_dict(merged)
    return Transfer(tuple(kept), fresh, tuple(copied))


def _tensors_of(state: dict[str, Any], attr: str) -> dict[str, torch.Tensor]:
    """The tensors of one block's module in a ``state_dict``, by their names inside it (``weight``, ``bias``)."""
    prefix = attr + "."
    return {k[len(prefix):]: torch.as_tensor(v) for k, v in state.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class WeightSource:
    """Weights a new run starts from, as :func:`read_source` found them.

    Attributes:
        file: the file the weights came from (a run folder's ``best.pt``, a ``paused.pt``, a weights file).
        state: its ``state_dict``.
        project: the project that made them, as plain data; None for weights with nothing beside them.
        run: the run folder the file belongs to, if any.
        where: what is known of the point in that run: ``epoch`` (and ``step``, ``at`` for a pause).
    """

    file: Path
    state: dict[str, Any]
    project: dict[str, Any] | None
    run: Path | None
    where: dict[str, Any]


def read_source(path: Path) -> WeightSource:
    """The weights at ``path``: a run folder, a paused run's weights, a training checkpoint or a ``state_dict``.

    Read with ``weights_only=True``. Raises :class:`TransferError` naming the file and what is wrong.
    """
    from engine.training.runs import RunError, find_checkpoint

    path = Path(path)
    try:
        file = find_checkpoint(path, which="best")
    except RunError as exc:
        raise TransferError(str(exc)) from None
    doc = _read_weights(file)
    run = run_folder_of(file)
    where = {k: doc[k] for k in ("epoch", "step", "at")
             if isinstance(doc, dict) and isinstance(doc.get(k), (int, float)) and not isinstance(doc.get(k), bool)}
    if isinstance(doc, dict) and isinstance(doc.get("model"), dict):
        state, project = doc["model"], doc.get("project")
    elif _is_state_dict(doc):
        state, project = doc, None
    else:
        raise TransferError(f"{file}: not a checkpoint or a weights file (it holds no network weights)")
    if not isinstance(project, dict):
        project = _project_beside(file, run)
    return WeightSource(file, dict(state), project, run, where)


def run_folder_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to (``RUN/best.pt``, ``RUN/checkpoints/epoch-0003.pt``), if any."""
    folder = checkpoint.parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return folder if (folder / "summary.json").is_file() else None


def _read_weights(file: Path) -> Any:
    from engine.userfiles import read_tensors

    try:
        return read_tensors(file, "weights")
    except FileNotFoundError:
        raise TransferError(f"{file}: no such checkpoint or weights file") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged or unsafe file
        raise TransferError(f"{file}: not a readable checkpoint or weights file ({type(exc).__name__})") from None


def _is_state_dict(doc: Any) -> bool:
    return (isinstance(doc, dict) and bool(doc)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in doc.items()))


def _project_beside(file: Path, run: Path | None) -> dict[str, Any] | None:
    """The run folder's ``project.json`` (the network the weights were trained as); None outside a run."""
    if run is None:
        return None
    from engine.project import load_project, project_to_dict

    try:
        return project_to_dict(load_project(run / "project.json"))
    except NetDesignerError as exc:
        raise TransferError(f"{file}: the network of its run cannot be read ({exc})") from None

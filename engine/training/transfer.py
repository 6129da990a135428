"""A new network from a paused run's weights: every block whose parameters still fit keeps them.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.codegen import GeneratedModel, generate
from engine.errors import NetDesignerError
from engine.graph import Graph
from engine.training.live import KEPT_WEIGHTS

__all__ = ["KEPT_WEIGHTS", "Transfer", "TransferError", "keep_weights", "read_kept", "transfer_weights"]

class TransferError(NetDesignerError):
    """Paused weights cannot be read or used; the message names the file."""


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
    state = model.state_dict()
    merged = dict(state)
    kept, copied, fresh = [], [], {}
    for nid, attr in code.attrs.items():
        new = _tensors_of(state, attr)
        if not new:
            continue  # NOTE: no parameters (ReLU, pooling, Dropout): nothing to keep or lose
        old_node = old_graph.nodes.get(nid)
        if old_node is None or nid not in old_attrs:
            fresh[nid] = "new"
            continue
        if old_node.type != new_graph.nodes[nid].type:
            fresh[nid] = "its type changed"
            continue
        old = _tensors_of(old_state, old_attrs[nid])
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

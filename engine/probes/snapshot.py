"""Detached copies of a training model, so that probing never touches the model that trains.

A probe runs on a copy in eval mode whose parameters do not require grad: the training model's
mode, weights, ``.grad`` tensors and hook dictionaries stay exactly as they were. The copy is
made once and refreshed in place (:func:`refresh`), so a long run with many probe rounds
allocates nothing new for it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

__all__ = ["detached_copy", "refresh"]


def _hook_dicts(model: nn.Module) -> list[dict]:
    """Every hook dictionary of every submodule (forward, backward, state-dict hooks...)."""
    found = []
    for m in model.modules():
        for name, value in vars(m).items():
            if "hook" in name and isinstance(value, dict):
                found.append(value)
    return found


def detached_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` on the same device, in eval mode, with no hooks and no grads.

    The copy's parameters do not require grad; a probe that needs a gradient asks for it on
    the tensor it differentiates (an input, a block's output), never on the weights.
    """
    # NOTE: the memo maps each hook dict to a fresh empty one, so hooks (and whatever objects
    # they are bound to) are neither copied nor shared; the original is left as it was.
    memo: dict[int, object] = {}
    for d in _hook_dicts(model):
        memo[id(d)] = type(d)() if isinstance(d, OrderedDict) else {}
    clone = copy.deepcopy(model, memo)
    for p in clone.parameters():
        p.requires_grad_(False)
        p.grad = None
    clone.eval()
    return clone


@torch.no_grad()
def refresh(clone: nn.Module, model: nn.Module) -> None:
    """Copy ``model``'s current weights and buffers into ``clone`` in place (same structure)."""
    for dst, src in zip(clone.parameters(), model.parameters(), strict=True):
        dst.copy_(src)
    for dst, src in zip(clone.buffers(), model.buffers(), strict=True):
        dst.copy_(src)

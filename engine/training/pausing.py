"""What a paused run does before it goes on: take on changed settings, or hand its weights to a new network.

The loop of :class:`~engine.training.trainer.Trainer` calls these at its resume point.
:func:`apply_changes` puts a resume's changes (see :mod:`engine.training.live`) into the live
objects, all or none: the optimizer's parameter groups (learning rate, weight decay, momentum),
a new schedule built from the current rate for the remaining epochs, the Dropout modules' ``p``,
a new :class:`~engine.data.Augmenter`, and the project the run keeps (batch size and patience are
read from it). :func:`keep_paused_weights` writes the weights a changed network starts from, and
:func:`start_from_weights` copies them, or another run's or checkpoint's, into a new run's model
(:mod:`engine.training.transfer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.errors import NetDesignerError
from engine.project import project_from_dict, project_to_dict
from engine.training.live import (
    KEPT_WEIGHTS,
    SCHEDULE_KEYS,
    LiveChangeError,
    LivePlan,
    plan_changes,
)
from engine.training.transfer import (
    TransferError,
    keep_weights,
    read_kept,
    read_source,
    transfer_by_names,
    transfer_weights,
)

if TYPE_CHECKING:  # pragma: no cover
    from engine.training.trainer import Trainer

__all__ = ["apply_changes", "keep_paused_weights", "start_from_weights"]


def apply_changes(trainer: Trainer, changes: dict[str, Any], epoch: int) -> LivePlan:
    """Put ``changes`` (setting -> new value) into the paused ``trainer``, which is in ``epoch``.

    Raises:
        LiveChangeError: a change cannot be applied; then nothing has changed.
    """
    plan = plan_changes(project_to_dict(trainer.project), changes)
    project = project_from_dict(plan.snapshot, source="the paused run")
    cfg = project.training
    augment = _augmenter(trainer, project) if plan.changed("data.augment") else trainer.augment
    modules = {nid: _dropout_module(trainer, nid) for nid in plan.blocks}
    # NOTE: everything that can refuse has been asked; from here on every change applies.
    for group in trainer.optimizer.param_groups:
        if plan.changed("training.lr"):
            group["lr"] = cfg.lr
        if plan.changed("training.weight_decay"):
            group["weight_decay"] = cfg.weight_decay
        if plan.changed("training.momentum") and "momentum" in group:
            group["momentum"] = cfg.momentum
    closed_form = isinstance(trainer.scheduler, torch.optim.lr_scheduler.LambdaLR)
    if any(plan.changed(k) for k in SCHEDULE_KEYS) or (plan.changed("training.lr") and closed_form):
        _new_schedule(trainer, cfg, epoch)
    for nid, module in modules.items():
        module.p = float(plan.blocks[nid])
    trainer.augment = augment
    trainer.project, trainer.cfg = project, cfg
    return plan


def _new_schedule(trainer: Trainer, cfg, epoch: int) -> None:
    """A schedule that starts from the current rate at ``epoch`` and runs over the remaining epochs.

    NOTE: also for a new rate under the cosine: its closed form would put the old rate back at the
    epoch's end. PyTorch's schedules start from each group's ``initial_lr``, which only a new run sets.
    """
    from engine.training.trainer import make_scheduler

    trainer.schedule_from = epoch - 1
    for group in trainer.optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    trainer.scheduler = make_scheduler(trainer.optimizer, cfg, lambda: trainer.epochs - trainer.schedule_from)


def _augmenter(trainer: Trainer, project):
    """The new augmentation (None: off), refused as training would refuse it before it starts."""
    if not project.data.augment:
        return None
    from engine.data import Augmenter

    try:
        augmenter = Augmenter(project.data.augment)
        augmenter.check(tuple(trainer.code.input_shapes[0]))
    except NetDesignerError as exc:
        raise LiveChangeError(f"augmentation: {exc}") from None
    return augmenter


def _dropout_module(trainer: Trainer, nid: str) -> torch.nn.Module:
    attr = trainer.code.attrs.get(nid)
    try:  # NOTE: a block inside a unit has a dotted path (``stage1.block0.drop``)
        module = trainer.model.get_submodule(attr) if attr else None
    except AttributeError:
        module = None
    if not isinstance(module, torch.nn.modules.dropout._DropoutNd):
        name = trainer.project.graph.nodes[nid].name if nid in trainer.project.graph.nodes else nid
        raise LiveChangeError(f"blocks.{name}.p: this run's network has no dropout module for that block")
    return module


def keep_paused_weights(trainer: Trainer, path: Path, *, step: int, epoch: int, at: float) -> None:
    """Write the paused model's weights with the run's project (see :func:`engine.training.transfer.keep_weights`)."""
    keep_weights(path, trainer.model, project_to_dict(trainer.project), epoch=epoch, step=step, at=at)


def start_from_weights(trainer: Trainer) -> dict[str, Any]:
    """Copy the weights at ``trainer.init_from`` into its new model, block by block where they fit.

    ``init_from`` is a paused run's weights (a changed network), or a run folder, a training checkpoint
    or a weights file (transfer learning). Returns what ``Started.transfer`` and the run's ``parent``
    say: the kept and fresh blocks by name, where in the earlier run the weights were taken (``epoch``,
    and ``step`` and ``at`` for a pause) and the ``checkpoint`` file.

    Raises:
        TransferError, ProjectError: the file cannot be read, its project is damaged, or (from another
            run) not one block of the network fits its weights.
    """
    path = trainer.init_from
    if path.name == KEPT_WEIGHTS and path.is_file():
        return _start_from_kept(trainer)
    source = read_source(path)
    graph = trainer.project.graph
    if source.project is None:
        moved = transfer_by_names(source.state, trainer.model, trainer.code)
    else:
        old = project_from_dict(source.project, source=str(source.file))
        moved = transfer_weights(old.graph, source.state, graph, trainer.model, trainer.code)
    if not moved.kept and moved.fresh:
        fresh = ", ".join(f"{name} ({why})" for name, why in moved.described(graph)["fresh"].items())
        raise TransferError(f"{source.file}: no block of this network fits these weights ({fresh})")
    return {**moved.described(graph), **source.where, "checkpoint": str(source.file)}


def _start_from_kept(trainer: Trainer) -> dict[str, Any]:
    """A changed network from its paused run's weights: every block that fits, none at all included."""
    doc = read_kept(trainer.init_from)
    old = project_from_dict(doc["project"], source=str(trainer.init_from))
    moved = transfer_weights(old.graph, doc["model"], trainer.project.graph, trainer.model, trainer.code)
    where = {k: doc[k] for k in ("epoch", "step", "at") if isinstance(doc.get(k), (int, float))}
    return {**moved.described(trainer.project.graph), **where}

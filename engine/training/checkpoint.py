"""What a training checkpoint holds, and putting a trainer back where one left off.

A checkpoint is a plain dict of tensors, numbers and lists, saved with ``torch.save`` and read
with ``weights_only=True``::

    model        the network's state_dict (as trained: the input normalization is applied to the data, not here)
    optimizer    the optimizer's state (momentum, Adam's moments, step counts)
    scheduler    the learning-rate schedule's state, or None
    schedule_from  the epochs before the schedule began (0; later for a schedule set while the run was paused)
    epoch        the last finished epoch
    best_loss, best_epoch   the lowest validation loss so far and its epoch (early stopping goes on from them)
    normalizer   the input normalization fitted on the training split ({"mean", "std"}), or None
    data         what the model expects: input_shape, dtype, input_min, input_max, classes
    rng          every random generator the run draws from: PyTorch's global one (initialization, dropout),
                 CUDA's, the shuffling generator and the augmentation generator

With all of them restored, a run interrupted after epoch 3 and resumed ends with the same weights as
the run that was never interrupted (on the CPU; a test checks it to 1e-6).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.errors import NetDesignerError
from engine.userfiles import read_tensors

if TYPE_CHECKING:  # pragma: no cover
    from engine.training.trainer import Trainer

__all__ = ["make_checkpoint", "restore"]


def make_checkpoint(trainer: Trainer, epoch: int) -> dict[str, Any]:
    """The trainer's whole state after ``epoch``."""
    rng: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "shuffle": trainer.shuffle_gen.get_state(),
        "augment": trainer.aug_gen.get_state(),
    }
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(trainer.device)
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "schedule_from": trainer.schedule_from,
        "epoch": epoch,
        "best_loss": trainer.best[0],
        "best_epoch": trainer.best[1],
        "normalizer": trainer.normalizer.to_dict() if trainer.normalizer is not None else None,
        "data": dict(trainer.data_info),
        "rng": rng,
    }


def restore(trainer: Trainer, path: Path) -> None:
    """Put ``trainer`` (prepared: model, optimizer, generators) back at the end of the checkpoint's epoch.

    Raises:
        TrainingError: the file is missing, unreadable, or does not fit the network.
    """
    from engine.training.trainer import TrainingError

    try:
        state = read_tensors(path, "a checkpoint", trainer.device)
    except FileNotFoundError:
        raise TrainingError(f"{path}: the checkpoint does not exist") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged or unsafe file
        raise TrainingError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise TrainingError(f"{path}: not a training checkpoint (it has no model weights)")
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise TrainingError(f"{path}: not a training checkpoint (it has no epoch number)")
    try:
        trainer.model.load_state_dict(state["model"])
        if state.get("optimizer"):
            trainer.optimizer.load_state_dict(state["optimizer"])
        if isinstance(state.get("schedule_from"), int):
            trainer.schedule_from = state["schedule_from"]  # NOTE: before the cosine's rate is set again below
        if trainer.scheduler is not None and state.get("scheduler"):
            trainer.scheduler.load_state_dict(state["scheduler"])
            _rate_for_the_run_length(trainer.scheduler)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise TrainingError(f"{path}: this checkpoint does not fit the network ({str(exc).splitlines()[0]})") from None
    _restore_rng(trainer, state.get("rng"))
    trainer.start_epoch = epoch + 1
    best_loss, best_epoch = state.get("best_loss", math.inf), state.get("best_epoch", 0)
    trainer.best = (float(best_loss) if isinstance(best_loss, (int, float)) else math.inf,
                    int(best_epoch) if isinstance(best_epoch, int) else 0)
    best_file = path.with_name("best.pt") if path.parent.name != "checkpoints" else path.parent.parent / "best.pt"
    trainer._best_state = _best_weights(best_file, trainer, trainer.best[1])


def _rate_for_the_run_length(scheduler) -> None:
    """A schedule in closed form (the cosine) sets the rate again for the run's length, which may have grown.

    NOTE: the optimizer's state holds the rate of the checkpoint's last epoch; a run continued past its
    planned end would otherwise train its first new epoch at the cosine's final rate, 0. For a run
    resumed with its own length the rate is the same as stored.
    """
    if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            group["lr"] = base * factor(scheduler.last_epoch)


def _restore_rng(trainer: Trainer, rng: Any) -> None:
    """Every generator as it was when the checkpoint was written (a checkpoint without them: as seeded)."""
    if not isinstance(rng, dict):
        return
    try:
        if isinstance(rng.get("torch"), torch.Tensor):
            torch.set_rng_state(rng["torch"].cpu())
        if isinstance(rng.get("shuffle"), torch.Tensor):
            trainer.shuffle_gen.set_state(rng["shuffle"].cpu())
        if isinstance(rng.get("augment"), torch.Tensor):
            trainer.aug_gen.set_state(rng["augment"].cpu())
        if trainer.device.type == "cuda" and isinstance(rng.get("cuda"), torch.Tensor):
            torch.cuda.set_rng_state(rng["cuda"].cpu(), trainer.device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise NetDesignerError(f"the checkpoint's random generator states are damaged ({exc})") from None


def _best_weights(best_file: Path, trainer: Trainer, best_epoch: int) -> dict[str, torch.Tensor] | None:
    """The best epoch's weights (for ``restore_best``) from the run's ``best.pt``, if it is that epoch's."""
    try:
        state = read_tensors(best_file, "a checkpoint")
    except Exception:  # noqa: BLE001 - no best checkpoint: the best weights are found again as the run goes
        return None
    if not isinstance(state, dict) or state.get("epoch") != best_epoch or not isinstance(state.get("model"), dict):
        return None
    return {k: v for k, v in state["model"].items() if isinstance(v, torch.Tensor)}

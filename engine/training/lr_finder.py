"""The learning-rate finder: a short run whose learning rate grows exponentially, loss against rate.

The finder trains a copy of the network (freshly initialized from the project's seed, as Train
would, or the weights it is given) with the project's optimizer, data, augmentation and loss,
for ``steps`` batches, multiplying the learning rate by the same factor every step from ``start``
to ``end``. The loss first barely moves (the rate is too small), then falls fastest, then turns
up and explodes (too large). Two suggestions are read off the smoothed curve:

* **steepest**: the rate where the smoothed loss falls fastest per decade of rate;
* **valley**: the longest stretch over which the smoothed loss keeps falling (its longest
  decreasing subsequence, counting only falls larger than the noise of the flat start); the
  suggestion sits halfway into the stretch's middle third, past the flat start and well before
  the turn.

Nothing of the caller's is changed: the weights given are copied, and the run is thrown away.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from engine.project import Project, project_from_dict, project_to_dict

__all__ = ["LrSearch", "find_lr", "steepest", "valley"]

#: Smoothing of the loss (exponential moving average, bias-corrected), as the dashboard smooths it.
SMOOTHING = 0.9
#: The search stops when the smoothed loss exceeds this many times its lowest value.
DIVERGED = 4.0
#: Falls of the smoothed loss smaller than this share of its range are noise to the valley rule.
VALLEY_NOISE = 0.01


@dataclass
class LrSearch:
    """What the finder saw: the rate and loss of every step, the smoothed loss and the suggestions."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest: float | None
    valley: float | None
    stopped: str = ""  # why it stopped before ``end``: "diverged", "stopped", or ""
    info: dict[str, Any] = field(default_factory=dict)


def find_lr(
    project: Project | Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    weights: Mapping[str, torch.Tensor] | None = None,
    device: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LrSearch:
    """Run the learning-rate search on a copy of the project's network (see the module docstring).

    Raises:
        TrainingError / DataError: the network or the data cannot train (the messages Train gives).
    """
    from engine.training.trainer import Trainer, TrainingError

    if not (0 < start < end) or not math.isfinite(end):
        raise TrainingError(f"the learning-rate search needs 0 < start < end, not {start:g} and {end:g}")
    if steps < 5:
        raise TrainingError(f"the learning-rate search needs at least 5 steps, not {steps}")
    snapshot = project_to_dict(project) if isinstance(project, Project) else copy.deepcopy(dict(project))
    snapshot["training"]["schedule"] = "none"
    snapshot["training"]["lr"] = start
    trainer = Trainer(project_from_dict(snapshot, source="<lr search>"), base_dir=base_dir, epochs=1, device=device)
    trainer._prepare()  # NOTE: the model, optimizer, data and augmentation exactly as Train makes them
    if weights is not None:
        trainer.model.load_state_dict({k: v.clone() for k, v in weights.items()})
    if trainer.stream is not None:
        raise TrainingError(
            "the learning-rate search needs the training data in memory, and this data set is larger than "
            f"data.memory_budget_gib ({trainer.project.data.memory_budget_gib:g} GiB), so it streams from disk: "
            "raise the budget, or search on a smaller copy of the data"
        )
    x, targets = trainer._tensors["train"]
    n = x.shape[0]
    bs = min(trainer.cfg.batch_size, n)
    factor = (end / start) ** (1.0 / (steps - 1))
    lrs, losses, smoothed = [], [], []
    ema, best, stopped = 0.0, math.inf, ""
    order = torch.randperm(n, generator=trainer.shuffle_gen).to(trainer.device)
    cursor = 0
    trainer.model.train()
    for i in range(steps):
        if should_stop is not None and should_stop():
            stopped = "stopped"
            break
        lr = start * factor**i
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr
        if cursor + bs > n:
            order, cursor = torch.randperm(n, generator=trainer.shuffle_gen).to(trainer.device), 0
        idx = order[cursor : cursor + bs]
        cursor += bs
        loss = float(trainer._step(x[idx], {k: v[idx] for k, v in targets.items()}, trainer.aug_gen))
        if not math.isfinite(loss):
            stopped = "diverged"
            break
        ema = SMOOTHING * ema + (1 - SMOOTHING) * loss
        value = ema / (1 - SMOOTHING ** (i + 1))
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if i >= 10 and value > DIVERGED * best:
            stopped = "diverged"
            break
    lr_a, sm = np.asarray(lrs), np.asarray(smoothed)
    return LrSearch(lr_a, np.asarray(losses), sm, steepest(lr_a, sm), valley(lr_a, sm), stopped,
                    {"batch_size": bs, "optimizer": trainer.cfg.optimizer, "device": str(trainer.device)})


def steepest(lrs: np.ndarray, smoothed: np.ndarray) -> float | None:
    """The rate where the smoothed loss falls fastest against log10 of the rate (None with too few points)."""
    if len(lrs) < 5:
        return None
    slope = np.gradient(smoothed, np.log10(lrs))
    return float(lrs[int(np.argmin(slope))])


def valley(lrs: np.ndarray, smoothed: np.ndarray) -> float | None:
    """Halfway into the middle third of the longest falling stretch of the smoothed loss (None with too few points)."""
    n = len(smoothed)
    if n < 5:
        return None
    # NOTE: a fall counts only above the noise, so the flat start (where the rate is too small to
    # matter, and the loss jitters) is not taken for the beginning of the valley.
    lowest = int(np.argmin(smoothed))
    # NOTE: measured before the lowest point: the explosion at the end would make every fall look small
    tol = VALLEY_NOISE * float(np.max(smoothed[: lowest + 1]) - smoothed[lowest])
    # NOTE: length[i] is the longest decreasing subsequence ending at i, begin[i] where it begins
    length, begin = np.ones(n, int), np.arange(n)
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] - tol and length[j] + 1 >= length[i]:
                length[i], begin[i] = length[j] + 1, begin[j]
    end = int(np.argmax(length))
    first = int(begin[end])
    third = (end - first) / 3
    return float(lrs[min(end, first + int(third) + int(third / 2))])

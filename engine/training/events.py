"""What a training run tells its listeners: one small frozen dataclass per kind of event.

The trainer (:mod:`engine.training.trainer`), cross-validation (:mod:`engine.training.crossval`),
the pipe from the child process (:mod:`engine.training.remote`), the window's worker and
session, the dashboard and the CLI all speak these, under the same names: a listener sees
which fields an event has, and a pickled event crosses the pipe as it is. Events are made a few
dozen times a second at most (batches are grouped), never per batch.

A run yields :class:`Started`, then :class:`BatchesDone`, :class:`EpochDone`, :class:`CheckpointSaved`,
:class:`ProbesDone`, :class:`InsightDone`, :class:`EarlyStopped` as they happen, :class:`Paused` and
:class:`Resumed` when a pause takes effect and ends (the acknowledgements of the controls; a
:class:`Resumed` carries the settings the resume changed, and :class:`WeightsKept` answers a request
for the paused weights), and ends with one :class:`Finished` or :class:`Failed`. A cross-validation
tags each fold's events with ``fold`` / ``folds``, adds a :class:`FoldDone` after each fold and ends with one
:class:`CrossValidated` (or :class:`Failed`). A sweep (:mod:`engine.training.sweep`) puts each point's
events between a :class:`PointStarted` and a :class:`PointDone` and ends with one :class:`SweepDone`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from engine.training.sweep_plan import Setting

__all__ = [
    "BatchesDone", "CheckpointSaved", "CrossValidated", "EarlyStopped", "EpochDone", "Failed", "FileSkipped", "Finished", "FoldDone",
    "InsightDone", "Paused", "PointDone", "PointStarted", "ProbesDone", "Resumed", "STOPPED_BEFORE_TRAINING", "Started",
    "SweepDone", "TrainingEvent", "WeightsKept",
]

#: The message of a run stopped while its data loaded or its network compiled.
STOPPED_BEFORE_TRAINING = "stopped before training began"

_EVENT = dict(frozen=True, kw_only=True, slots=True)


@dataclass(**_EVENT)
class _InFold:
    """An event that a cross-validation tags with its fold (1..k) and k; both 0 outside one."""

    fold: int = 0
    folds: int = 0


@dataclass(**_EVENT)
class Started(_InFold):
    """The data are loaded and the model is built: what the run is about to do."""

    epochs: int
    batches_per_epoch: int
    start_epoch: int = 1  # > 1 for a run continued or forked from a checkpoint
    device: str = ""
    train: int = 0  # samples in each split
    val: int = 0
    test: int = 0
    skipped_last: int = 0  # a final batch of one sample left out each epoch (BatchNorm)
    params: int = 0  # trainable parameters
    classes: tuple[str, ...] | None = None
    main_metric: str = "score"
    history: tuple[dict[str, Any], ...] = ()  # the epochs before start_epoch, as rows of metrics.csv
    run_dir: str | None = None
    transfer: dict[str, Any] | None = None  # a new network from a paused run's weights: {"kept": [...], "fresh": {...}}


@dataclass(**_EVENT)
class BatchesDone(_InFold):
    """The losses of the batches since the last such event; ``step`` counts every batch of the run (or job)."""

    epoch: int
    batch: int  # the last batch's number in its epoch (1-based)
    step: int
    total_steps: int
    losses: np.ndarray
    samples_per_s: float = 0.0
    elapsed: float = 0.0
    eta: float = 0.0


@dataclass(**_EVENT)
class EpochDone(_InFold):
    """One epoch's record; :meth:`row` is its row in the run's history (``metrics.csv``)."""

    epoch: int
    step: int
    train_loss: float
    lr: float = 0.0
    val_loss: float | None = None
    scores: dict[str, float] = field(default_factory=dict)  # validation metrics: {"val_accuracy": 0.93, ...}
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        """The flat record a run's history keeps, in the columns' order."""
        return {"epoch": self.epoch, "step": self.step, "train_loss": self.train_loss, "lr": self.lr,
                "val_loss": self.val_loss, **self.scores, "seconds": self.seconds}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EpochDone:
        """The event of a history row (a continued run's earlier epochs, read back from its folder)."""
        scores = {k: v for k, v in row.items() if k.startswith("val_") and k != "val_loss"}
        return cls(epoch=int(row["epoch"]), step=int(row.get("step") or 0), train_loss=row.get("train_loss"),
                   lr=row.get("lr") or 0.0, val_loss=row.get("val_loss"), scores=scores,
                   seconds=row.get("seconds") or 0.0)


@dataclass(**_EVENT)
class CheckpointSaved(_InFold):
    path: str
    epoch: int
    best: bool = False  # the file is best.pt


@dataclass(**_EVENT)
class EarlyStopped(_InFold):
    """The validation loss has not improved for ``patience`` epochs: the run ends after ``epoch``."""

    epoch: int
    best_epoch: int


@dataclass(**_EVENT)
class ProbesDone(_InFold):
    """A scheduled probe run: ``results`` as :meth:`engine.probes.runner.ProbeRunner.run` returns them
    (in the window, plus the probe ``images``)."""

    step: int | None
    results: dict[str, Any]


@dataclass(**_EVENT)
class InsightDone(_InFold):
    """An epoch's decision views (:meth:`engine.probes.runner.ProbeRunner.evaluate`)."""

    epoch: int
    views: dict[str, Any]


@dataclass(**_EVENT)
class Paused(_InFold):
    """The acknowledgement of Pause: the loop waits before the batch after ``step``.

    ``epoch`` / ``batch``: where in the run (batch ``batch`` of epoch ``epoch`` is the last one trained);
    ``at``: the epochs trained (3.4). A resume whose changes the loop refused is answered with another
    ``Paused`` that says why in ``refused``: the run stays paused, nothing changed.
    """

    step: int
    epoch: int = 0
    batch: int = 0
    at: float = 0.0
    refused: str = ""


@dataclass(**_EVENT)
class Resumed(_InFold):
    """The acknowledgement of Resume: the loop goes on after ``step``, where it paused.

    ``changes`` holds what the resume changed (setting -> (old, new), see :mod:`engine.training.live`).
    After a new batch size, ``epoch_batches`` is the current epoch's number of batches and
    ``batches_per_epoch`` that of the epochs after it; ``total_steps`` the run's new length in batches.
    """

    step: int
    epoch: int = 0
    batch: int = 0
    at: float = 0.0
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    batches_per_epoch: int = 0
    epoch_batches: int = 0
    total_steps: int = 0


@dataclass(**_EVENT)
class WeightsKept(_InFold):
    """While paused, the loop wrote the model's weights with its project to ``path`` (a new network starts there)."""

    path: str
    step: int
    at: float = 0.0


@dataclass(**_EVENT)
class FileSkipped(_InFold):
    """A sample of data streamed from disk could not be read (a damaged image, say): training goes on
    without it. Each file is reported once per run; ``epoch`` 0 is the pass that fits the normalization."""

    path: str  # the file, and for an array or table its row: "npz file data.npz, x[12]"
    reason: str
    epoch: int = 0


@dataclass(**_EVENT)
class Finished:
    """The run ended normally, by early stopping or by Stop (``stopped``), with its test scores.

    ``history`` holds every epoch's row; ``weights`` (set by the child process) the trained state.
    """

    stopped: bool
    epochs_run: int
    best_epoch: int = 0
    test_loss: float | None = None
    test: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = ""
    message: str = ""  # why there is no test score (no epoch finished)
    history: tuple[dict[str, Any], ...] = ()
    weights: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The run's summary as ``summary.json`` keeps it (no history, no weights)."""
        out = {"stopped": self.stopped, "epochs_run": self.epochs_run, "best_epoch": self.best_epoch,
               "test_loss": self.test_loss, "test": dict(self.test), "seconds": self.seconds, "device": self.device}
        if self.message:
            out["message"] = self.message
        return out


@dataclass(**_EVENT)
class FoldDone(_InFold):
    """A fold of a cross-validation has ended: its run's end and its last epoch's validation scores."""

    result: Finished
    val: dict[str, float] = field(default_factory=dict)  # {"val_loss": ..., "val_accuracy": ...}

    @property
    def stopped(self) -> bool:
        return self.result.stopped

    def summary(self) -> dict[str, Any]:
        return {"fold": self.fold, "folds": self.folds, **self.result.summary(), "val": dict(self.val)}


@dataclass(**_EVENT)
class CrossValidated:
    """A k-fold cross-validation ended: each fold's result and the mean and spread of the validation scores."""

    k: int
    results: tuple[FoldDone, ...]
    mean: dict[str, float]
    std: dict[str, float]
    main_metric: str | None
    stopped: bool
    epochs_run: int = 0  # of the last fold
    seconds: float = 0.0
    device: str = ""
    history: tuple[dict[str, Any], ...] = ()  # the last fold's epochs: the curves a cross-validation shows

    def summary(self) -> dict[str, Any]:
        """As ``summary.json`` keeps it (``folds``: each fold's summary)."""
        return {"k": self.k, "folds": [f.summary() for f in self.results], "mean": dict(self.mean),
                "std": dict(self.std), "main_metric": self.main_metric, "stopped": self.stopped,
                "epochs_run": self.epochs_run, "seconds": self.seconds, "device": self.device}


@dataclass(**_EVENT)
class Failed(_InFold):
    """The run ended with an error; ``message`` says what happened and what to try."""

    message: str


@dataclass(**_EVENT)
class PointStarted:
    """Point ``index`` (1-based) of a sweep's ``points`` begins training with ``values`` (setting key -> value)."""

    index: int
    points: int
    values: dict[str, Any]
    label: str  # "weight_decay=0.001, lr=0.01"


@dataclass(**_EVENT)
class PointDone:
    """A sweep's point has ended: its validation score (a fold mean with folds) and spread, or why it failed."""

    index: int
    points: int
    values: dict[str, Any]
    label: str
    score: float | None
    spread: float | None = None
    fold_scores: tuple[float, ...] = ()
    status: str = "finished"  # finished, stopped or failed
    message: str = ""
    run: str | None = None  # the point's folder name in the sweep's folder

    def row(self, metric: str) -> dict[str, Any]:
        """The point's row of ``results.csv``."""
        return {"point": self.index, **self.values, metric: self.score, f"{metric} spread": self.spread,
                **{f"fold {i}": s for i, s in enumerate(self.fold_scores, start=1)}, "status": self.status,
                "run": self.run, "message": self.message}

    def summary(self) -> dict[str, Any]:
        """The point as the sweep's ``summary.json`` keeps it."""
        return {"index": self.index, "values": dict(self.values), "score": self.score, "spread": self.spread,
                "fold_scores": list(self.fold_scores), "status": self.status, "message": self.message,
                "run": self.run}


@dataclass(**_EVENT)
class SweepDone:
    """A sweep has ended: every point's result, the chosen one and the refit's test scores."""

    settings: tuple[Setting, ...]
    results: tuple[PointDone, ...]
    metric: str
    best: int | None  # index into results
    folds: int | None
    stopped: bool
    refit: Finished | None = None
    seconds: float = 0.0
    message: str = ""
    random: int | None = None  # N random points of the grid, or None for all of it

    @property
    def chosen(self) -> PointDone | None:
        return self.results[self.best] if self.best is not None else None

    def summary(self) -> dict[str, Any]:
        """As the sweep's ``summary.json`` keeps it."""
        chosen = self.chosen
        return {
            "settings": [{"key": s.key, "values": list(s.values)} for s in self.settings],
            "metric": self.metric, "folds": self.folds, "random": self.random, "stopped": self.stopped,
            "seconds": self.seconds, "points": [r.summary() for r in self.results],
            "best": chosen.index if chosen is not None else None,
            "best_values": chosen.values if chosen is not None else None,
            "refit": self.refit.summary() if self.refit is not None else None,
            "message": self.message,
        }


TrainingEvent = Union[Started, BatchesDone, EpochDone, CheckpointSaved, EarlyStopped, ProbesDone, InsightDone,
                      Paused, Resumed, WeightsKept, FoldDone, Finished, CrossValidated, Failed, PointStarted, PointDone,
                      SweepDone, FileSkipped]
#: The events that end a run (a cross-validation, a sweep): exactly one comes last.
ENDINGS = (Finished, CrossValidated, Failed, SweepDone)

"""k-fold cross-validation as events: ``k`` fresh models, each validated on a different fold.

:func:`cross_validate_events` yields what :meth:`Trainer.events` yields for each fold, tagged with
the fold, a :class:`~engine.training.events.FoldDone` after each fold and one
:class:`~engine.training.events.CrossValidated` with every fold's result and the mean and spread
of the validation scores. Given ``out_dir`` it writes one run folder of kind ``cross-validation``
(its ``summary.json`` holds the folds, the mean and the spread) with each fold's run in a
``fold-N`` folder inside it, in the run-folder format of :mod:`engine.training.runs`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Iterator

from engine.project import Project, project_to_dict
from engine.training.events import (
    BatchesDone,
    CrossValidated,
    Failed,
    Finished,
    FoldDone,
    Started,
    TrainingEvent,
)
from engine.training.trainer import Control, Trainer, TrainingError, failure_message

__all__ = ["cross_validate", "cross_validate_events"]


def cross_validate_events(
    project: Project,
    k: int,
    *,
    epochs: int | None = None,
    base_dir: Path | None = None,
    device: str | None = None,
    control: Control | None = None,
    emit_interval: float = 1 / 30,
    out_dir: Path | None = None,
    label: str = "",
) -> Iterator[TrainingEvent]:
    """k-fold cross-validation as events: ``k`` fresh models, each validated on a different fold.

    The project's test split is held out first and never seen by any fold; the rest is split
    into ``k`` stratified folds (see :func:`engine.data.kfold`). Each fold yields what
    :meth:`Trainer.events` yields, tagged with ``fold`` (1..k) and ``folds`` (k), with a
    :class:`BatchesDone`'s ``step``, ``total_steps`` and ``eta`` counted over the whole job, then a
    :class:`FoldDone` (the fold's :class:`Finished` and the ``val`` metrics and loss of its last
    epoch) in place of the fold's :class:`Finished`. The job ends with one :class:`CrossValidated`
    (the folds' results, ``mean`` and ``std`` of each validation metric over the folds that
    finished, ``main_metric``, ``stopped``, ``seconds``, ``history`` of the last fold) or one
    :class:`Failed` naming the fold. Stop ends the job.
    """
    control = control or Control()
    t_start = time.perf_counter()
    fold = 0
    writer = None
    try:
        splits, test = _fold_splits(project, k, base_dir)
        if out_dir is not None:
            from engine.training.runs import RunWriter

            writer = RunWriter(out_dir, snapshot=project_to_dict(project), label=label, epochs=epochs,
                               kind="cross-validation", extra={"k": k})
        results: list[FoldDone] = []
        done_steps = 0  # planned steps of the folds already over
        first: Started | None = None
        trainer = None
        for fold, (train, val) in enumerate(splits, start=1):
            trainer = Trainer(project, epochs=epochs, base_dir=base_dir, device=device, control=control,
                              emit_interval=emit_interval, splits=(train, val, test),
                              out_dir=Path(out_dir) / f"fold-{fold}" if out_dir is not None else None,
                              label=f"fold {fold} of {k}")
            fold_steps = 0
            for ev in trainer.events():
                if isinstance(ev, Failed):
                    message = f"fold {fold} of {k}: {ev.message}"
                    if writer is not None:
                        writer.finish("failed", None, message)
                    yield Failed(message=message, fold=fold, folds=k)
                    return
                if isinstance(ev, Finished):
                    last = trainer.history[-1] if trainer.history else {}
                    result = FoldDone(fold=fold, folds=k, result=ev,
                                      val={m: v for m, v in last.items() if m.startswith("val_")})
                    results.append(result)
                    yield result
                    continue
                if isinstance(ev, Started):
                    fold_steps = ev.epochs * ev.batches_per_epoch
                    first = first or ev
                    yield dataclasses.replace(ev, fold=fold, folds=k)
                elif isinstance(ev, BatchesDone):
                    step = done_steps + ev.step
                    total = done_steps + (k - fold + 1) * fold_steps
                    elapsed = time.perf_counter() - t_start
                    yield dataclasses.replace(ev, fold=fold, folds=k, step=step, total_steps=total, elapsed=elapsed,
                                              eta=(total - step) * elapsed / max(step, 1))
                else:
                    yield dataclasses.replace(ev, fold=fold, folds=k)
            done_steps += fold_steps
            if control.stopped:
                break
        mean, std = _spread([r.val for r in results if not r.stopped and r.val])
        done = CrossValidated(
            k=k, results=tuple(results), mean=mean, std=std,
            main_metric=_main_key(mean, first.main_metric if first is not None else None),
            stopped=len(results) < k or results[-1].stopped,
            epochs_run=results[-1].result.epochs_run if results else 0,
            seconds=time.perf_counter() - t_start,
            device=first.device if first is not None else "",
            history=tuple(trainer.history) if trainer is not None else (),
        )
        if writer is not None:
            for row in done.history:  # NOTE: the curves a cross-validation shows are its last fold's
                writer.epoch(row, int(row.get("step") or 0))
            writer.finish("stopped" if done.stopped else "finished", done.summary())
        yield done
    except Exception as exc:  # noqa: BLE001 - any failure reaches the window as a message
        where = f"fold {fold} of {k}: " if fold else ""
        message = where + failure_message(exc, project.training.batch_size)
        if writer is not None:
            writer.finish("failed", None, message)
        yield Failed(message=message)
    finally:
        if writer is not None:
            writer.close()


def _fold_splits(project: Project, k: int, base_dir: Path | None) -> tuple[list[tuple[Any, Any]], Any]:
    """The folds' (train, val) pairs and the held-out test split they share."""
    from engine.codegen import generate
    from engine.data import kfold, load_for_training, split_dataset

    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise TrainingError(f"k-fold cross-validation needs at least 2 folds, not {k!r}")
    code = generate(project.graph)
    if len(code.input_shapes) != 1:
        raise TrainingError("training needs exactly one Input block")
    data = load_for_training(project.data, code.input_shapes[0], base_dir=base_dir)
    rest, _, test = split_dataset(data, 0.0, project.data.test_fraction, project.data.seed)
    return kfold(rest, k, project.data.seed), test


def _spread(rows: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (population) standard deviation of each metric the rows share."""
    keys = [m for m in rows[0] if all(r.get(m) is not None for r in rows)] if rows else []
    mean = {m: sum(r[m] for r in rows) / len(rows) for m in keys}
    std = {m: math.sqrt(sum((r[m] - mean[m]) ** 2 for r in rows) / len(rows)) for m in keys}
    return mean, std


def _main_key(mean: dict[str, float], main_metric: str | None) -> str | None:
    """The validation metric a person compares (``val_accuracy``, ``val_r2``, ...), or the loss."""
    scores = [m for m in mean if m != "val_loss"]
    if main_metric:
        for m in scores:
            if m == f"val_{main_metric}" or m.endswith(f"_{main_metric}"):
                return m
    return scores[0] if scores else ("val_loss" if "val_loss" in mean else None)


def cross_validate(project: Project, k: int, *, epochs: int | None = None, base_dir: Path | None = None,
                   control: Control | None = None) -> list[FoldDone]:
    """Train ``k`` fresh models, each validated on a different fold; each fold's result.

    The same job as :func:`cross_validate_events`, run to the end. Raises :class:`TrainingError`
    when a fold fails.
    """
    for event in cross_validate_events(project, k, epochs=epochs, base_dir=base_dir, control=control):
        if isinstance(event, Failed):
            raise TrainingError(event.message)
        if isinstance(event, CrossValidated):
            return list(event.results)
    return []

"""k-fold cross-validation as events: ``k`` fresh models, each validated on a different fold.

:func:`cross_validate_events` yields what :meth:`Trainer.events` yields for each fold, tagged with
the fold, and one ``finished`` with every fold's summary and the mean and spread of the
validation scores. Given ``out_dir`` it writes one run folder of kind ``cross-validation``
(its ``summary.json`` holds the folds, the mean and the spread) with each fold's run in a
``fold-N`` folder inside it, in the run-folder format of :mod:`engine.training.runs`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Iterator

from engine.project import Project, project_to_dict
from engine.training.trainer import Control, Trainer, TrainEvent, TrainingError, failure_message

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
) -> Iterator[TrainEvent]:
    """k-fold cross-validation as events: ``k`` fresh models, each validated on a different fold.

    The project's test split is held out first and never seen by any fold; the rest is split
    into ``k`` stratified folds (see :func:`engine.data.kfold`). Each fold yields what
    :meth:`Trainer.events` yields, its data tagged with ``fold`` (1..k) and ``folds`` (k), with
    ``step``, ``total_steps`` and ``eta`` counted over the whole job, then a ``fold_done`` event
    (the fold's summary: ``val`` metrics and loss of its last epoch, ``test`` metrics, ...). The
    job ends with one ``finished`` event (``folds``: the summaries, ``mean`` and ``std`` of each
    validation metric over the folds that finished, ``main_metric``, ``stopped``, ``seconds``,
    ``history`` of the last fold) or one ``failed`` event naming the fold. Stop ends the job.
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
        summaries: list[dict[str, Any]] = []
        done_steps = 0  # planned steps of the folds already over
        info: dict[str, Any] = {}
        trainer = None
        for fold, (train, val) in enumerate(splits, start=1):
            trainer = Trainer(project, epochs=epochs, base_dir=base_dir, device=device, control=control,
                              emit_interval=emit_interval, splits=(train, val, test),
                              out_dir=Path(out_dir) / f"fold-{fold}" if out_dir is not None else None,
                              label=f"fold {fold} of {k}")
            tag = {"fold": fold, "folds": k}
            fold_steps = 0
            for ev in trainer.events():
                data = dict(ev.data)
                if ev.kind == "failed":
                    message = f"fold {fold} of {k}: {data.get('message', '')}"
                    if writer is not None:
                        writer.finish("failed", None, message)
                    yield TrainEvent("failed", {**tag, "message": message})
                    return
                if ev.kind == "started":
                    fold_steps = data["epochs"] * data["batches_per_epoch"]
                    info = info or data
                elif ev.kind == "batches":
                    step = done_steps + data["step"]
                    total = done_steps + (k - fold + 1) * fold_steps
                    elapsed = time.perf_counter() - t_start
                    data.update(step=step, total_steps=total, elapsed=elapsed,
                                eta=(total - step) * elapsed / max(step, 1))
                elif ev.kind == "finished":
                    last = trainer.history[-1] if trainer.history else {}
                    summary = {**tag, **data, "val": {m: v for m, v in last.items() if m.startswith("val_")}}
                    summaries.append(summary)
                    yield TrainEvent("fold_done", summary)
                    continue
                yield TrainEvent(ev.kind, {**data, **tag})
            done_steps += fold_steps
            if control.stopped:
                break
        mean, std = _spread([s["val"] for s in summaries if not s["stopped"] and s["val"]])
        done = {
            "k": k,
            "folds": summaries,
            "mean": mean,
            "std": std,
            "main_metric": _main_key(mean, info.get("main_metric")),
            "stopped": len(summaries) < k or summaries[-1]["stopped"],
            "epochs_run": summaries[-1]["epochs_run"] if summaries else 0,
            "seconds": time.perf_counter() - t_start,
            "device": info.get("device", ""),
            "history": list(trainer.history) if trainer is not None else [],
        }
        if writer is not None:
            for row in done["history"]:  # NOTE: the curves a cross-validation shows are its last fold's
                writer.epoch(row, int(row.get("step") or 0))
            writer.finish("stopped" if done["stopped"] else "finished", done)
        yield TrainEvent("finished", done)
    except Exception as exc:  # noqa: BLE001 - any failure reaches the window as a message
        where = f"fold {fold} of {k}: " if fold else ""
        message = where + failure_message(exc, project.training.batch_size)
        if writer is not None:
            writer.finish("failed", None, message)
        yield TrainEvent("failed", {"message": message})
    finally:
        if writer is not None:
            writer.close()


def _fold_splits(project: Project, k: int, base_dir: Path | None) -> tuple[list[tuple[Any, Any]], Any]:
    """The folds' (train, val) pairs and the held-out test split they share."""
    from engine.codegen import generate
    from engine.data import kfold, load_dataset, split_dataset

    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise TrainingError(f"k-fold cross-validation needs at least 2 folds, not {k!r}")
    code = generate(project.graph)
    if len(code.input_shapes) != 1:
        raise TrainingError("training needs exactly one Input block")
    data = load_dataset(project.data, code.input_shapes[0], base_dir=base_dir)
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
                   control: Control | None = None) -> list[dict[str, Any]]:
    """Train ``k`` fresh models, each validated on a different fold; one summary per fold.

    The same job as :func:`cross_validate_events`, run to the end. Raises :class:`TrainingError`
    when a fold fails.
    """
    for event in cross_validate_events(project, k, epochs=epochs, base_dir=base_dir, control=control):
        if event.kind == "failed":
            raise TrainingError(event.data["message"])
        if event.kind == "finished":
            return event.data["folds"]
    return []

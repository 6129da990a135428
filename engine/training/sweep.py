"""A sweep: the same project trained at each point of a grid of settings, scored, the best chosen, refitted.

:func:`sweep_events` trains every point (see :mod:`engine.training.sweep_plan`) one after another:
with ``folds`` each point is a k-fold cross-validation scored by the mean (± spread) of its folds'
validation score, without it one run scored on the validation split. It yields the points' own
training events as they come (so a window draws each point's curves), a :class:`PointStarted` and
a :class:`PointDone` around each, and ends with one :class:`SweepDone`. The best point is the one
with the best validation score; with ``refit`` it is trained again on the training and validation
data together and scored once on the test split, which no point ever saw.

Given ``out_dir``, the sweep is one folder in the run-folder format (kind ``sweep``; its
``summary.json`` holds the settings, every point's scores and the choice), with ``results.csv`` (a
row per point), each point's run (or cross-validation) in ``point-NN`` and the refit in ``refit``.
A point that fails (a learning rate that makes the loss blow up) is recorded as failed and the
sweep goes on; Stop ends it after the current point's current batch, keeping the finished points.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from engine.project import Project, project_from_dict, project_to_dict
from engine.training.events import CrossValidated, Failed, Finished
from engine.training.objectives import main_metric
from engine.training.sweep_plan import Setting, apply_point, choose, point_label, sweep_points
from engine.training.trainer import Control, Trainer

__all__ = ["PointDone", "PointStarted", "SweepDone", "sweep", "sweep_events"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PointStarted:
    """Point ``index`` (1-based) of ``points`` begins training with ``values``."""

    index: int
    points: int
    values: dict[str, Any]
    label: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PointDone:
    """A point has ended: its validation score (a fold mean with ``folds``) and spread, or why it failed."""

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
        return {"point": self.index, **self.values, metric: self.score, f"{metric} spread": self.spread,
                **{f"fold {i}": s for i, s in enumerate(self.fold_scores, start=1)}, "status": self.status,
                "run": self.run, "message": self.message}


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepDone:
    """The sweep has ended: every point's result, the chosen one and the refit's test scores."""

    settings: tuple[Setting, ...]
    results: tuple[PointDone, ...]
    metric: str
    best: int | None  # index into results
    folds: int | None
    stopped: bool
    refit: Finished | None = None
    seconds: float = 0.0
    message: str = ""

    @property
    def chosen(self) -> PointDone | None:
        return self.results[self.best] if self.best is not None else None

    def summary(self) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "settings": [{"key": s.key, "values": list(s.values)} for s in self.settings],
            "metric": self.metric, "folds": self.folds, "stopped": self.stopped, "seconds": self.seconds,
            "points": [{"index": r.index, "values": r.values, "score": r.score, "spread": r.spread,
                        "fold_scores": list(r.fold_scores), "status": r.status, "message": r.message, "run": r.run}
                       for r in self.results],
            "best": chosen.index if chosen is not None else None,
            "best_values": chosen.values if chosen is not None else None,
            "refit": self.refit.summary() if self.refit is not None else None,
            "message": self.message,
        }


def sweep_events(
    project: Project,
    settings: Sequence[Setting],
    *,
    folds: int | None = None,
    random: int | None = None,
    refit: bool = False,
    epochs: int | None = None,
    out_dir: Path | None = None,
    base_dir: Path | None = None,
    device: str | None = None,
    control: Control | None = None,
    emit_interval: float = 1 / 30,
    label: str = "",
) -> Iterator[Any]:
    """Run the sweep (see the module docstring); yields training events, points' starts and ends, one SweepDone.

    Raises:
        SweepError: a setting or a value cannot be used (checked for every point before any training).
    """
    from engine.training.crossval import cross_validate_events
    from engine.training.runs import RunWriter

    control = control or Control()
    t_start = time.perf_counter()
    base = project_to_dict(project)
    points = sweep_points(settings, random, seed=project.training.seed)
    snapshots = [apply_point(base, p, source=f"sweep point {i}") for i, p in enumerate(points, start=1)]
    metric = f"val_{main_metric(project.graph)}"
    out_dir = Path(out_dir) if out_dir is not None else None
    writer = None
    if out_dir is not None:
        writer = RunWriter(out_dir, snapshot=base, label=label, epochs=epochs, kind="sweep",
                           extra={"settings": [{"key": s.key, "values": list(s.values)} for s in settings],
                                  "folds": folds})
    results: list[PointDone] = []
    try:
        for i, (values, snap) in enumerate(zip(points, snapshots), start=1):
            if control.stopped:
                break
            text = point_label(values)
            yield PointStarted(index=i, points=len(points), values=values, label=text)
            run = f"point-{i:02d}"
            point = project_from_dict(snap, source=f"sweep point {i}")
            where = out_dir / run if out_dir is not None else None
            if folds:
                events = cross_validate_events(point, folds, epochs=epochs, base_dir=base_dir, device=device,
                                               control=control, emit_interval=emit_interval, out_dir=where,
                                               label=f"{label} {text}".strip())
            else:
                events = Trainer(point, epochs=epochs, base_dir=base_dir, device=device, control=control,
                                 emit_interval=emit_interval, out_dir=where, label=f"{label} {text}".strip()).events()
            end = None
            for ev in events:
                if isinstance(ev, (Finished, CrossValidated, Failed)) and not getattr(ev, "fold", 0):
                    end = ev
                    continue
                yield ev
            done = _point_done(i, len(points), values, text, end, metric, run if where is not None else None)
            results.append(done)
            if writer is not None:
                writer.update(points=[r.row(metric) for r in results])
                _write_table(out_dir / "results.csv", results, metric)
            yield done
        stopped = control.stopped or len(results) < len(points)
        best = choose([r.score for r in results], higher_is_better=True)
        refitted = None
        message = ""
        if refit and best is not None and not stopped:
            refitted, message = yield from _refit(snapshots[points.index(results[best].values)], epochs, base_dir,
                                                  device, control, emit_interval, out_dir)
        elif refit and best is None:
            message = "no point finished with a score, so there is nothing to refit"
        done = SweepDone(settings=tuple(settings), results=tuple(results), metric=metric, best=best, folds=folds,
                         stopped=stopped, refit=refitted, seconds=time.perf_counter() - t_start, message=message)
        if writer is not None:
            writer.finish("stopped" if stopped else "finished", done.summary())
        yield done
    finally:
        if writer is not None:
            writer.close()


def _point_done(i: int, n: int, values: dict, text: str, end: Any, metric: str, run: str | None) -> PointDone:
    common = dict(index=i, points=n, values=values, label=text, run=run)
    if isinstance(end, Failed) or end is None:
        return PointDone(**common, score=None, status="failed",
                         message=end.message if isinstance(end, Failed) else "it ended without a result")
    status = "stopped" if end.stopped else "finished"
    if isinstance(end, CrossValidated):
        key = end.main_metric or metric
        scores = tuple(r.val.get(key) for r in end.results if not r.stopped and r.val.get(key) is not None)
        return PointDone(**common, score=end.mean.get(key), spread=end.std.get(key), fold_scores=scores,
                         status=status)
    last = end.history[-1] if end.history else {}
    score = last.get(metric)
    if score is None:  # NOTE: several heads: the first head's score is prefixed with its name
        score = next((v for k, v in last.items() if k.endswith(metric.removeprefix("val"))), None)
    return PointDone(**common, score=score, status=status)


def _refit(snapshot: dict, epochs, base_dir, device, control, emit_interval, out_dir) -> Iterator[Any]:
    """Train the chosen point on training + validation data; returns (its Finished, a message)."""
    snap = dict(snapshot)
    snap["data"] = {**snap["data"], "val_fraction": 0.0}
    project = project_from_dict(snap, source="the refit")
    trainer = Trainer(project, epochs=epochs, base_dir=base_dir, device=device, control=control,
                      emit_interval=emit_interval, out_dir=out_dir / "refit" if out_dir is not None else None,
                      label="refit")
    end = None
    for ev in trainer.events():
        if isinstance(ev, (Finished, Failed)):
            end = ev
            continue
        yield ev
    if isinstance(end, Failed):
        return None, f"the refit failed: {end.message}"
    return end, ""


def _write_table(path: Path, results: list[PointDone], metric: str) -> None:
    from engine.fileio import atomic_write_text

    rows = [r.row(metric) for r in results]
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    out = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    out.writeheader()
    for row in rows:
        out.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def sweep(project: Project, settings: Sequence[Setting], **kw) -> SweepDone:
    """The sweep run to its end (the list form of :func:`sweep_events`)."""
    done = None
    for ev in sweep_events(project, settings, **kw):
        if isinstance(ev, SweepDone):
            done = ev
    return done

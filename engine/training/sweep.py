"""A sweep: the same project trained at each point of a grid of settings, scored, the best chosen, refitted.

:func:`sweep_events` trains every point (see :mod:`engine.training.sweep_plan`) one after another:
with ``folds`` each point is a k-fold cross-validation scored by the mean (± spread) of its folds'
validation score, without it one run scored on the validation split. It yields the points' own
training events as they come (so a window draws each point's curves), a :class:`PointStarted` and
a :class:`PointDone` around each, and ends with one :class:`SweepDone` (the events live in
:mod:`engine.training.events`, so they cross the training process's pipe as the others do). The
best point is the finished one with the best validation score (its output block's main metric,
in the direction the block declares better); with ``refit`` it is trained again
on the training and validation data together and scored once on the test split, which no point
ever saw.

Given ``out_dir``, the sweep is one folder in the run-folder format (kind ``sweep``; its
``summary.json`` holds the settings, every point's scores and the choice, rewritten as each point
ends), with ``results.csv`` (a row per point), each point's run (or cross-validation) in ``point-NN``
and the refit in ``refit``. The folder is written from the first point's first event on, so a sweep
cut off while its first data load leaves it empty. A point that fails (a learning rate that makes
the loss blow up) is recorded as failed and the sweep goes on; Stop ends it after the current
point's current batch, keeping the finished points (a point cut short is recorded as stopped and
never chosen).

:func:`read_sweep` reads a sweep's folder back; it and this module's import need no PyTorch (the
window lists sweeps without it).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from engine.project import Project, project_from_dict, project_to_dict
from engine.training.events import CrossValidated, Failed, Finished, PointDone, PointStarted, SweepDone
from engine.training.sweep_plan import Setting, apply_point, choose, point_label, sweep_points

if TYPE_CHECKING:  # pragma: no cover
    from engine.training.runs import RunRecord
    from engine.training.trainer import Control

__all__ = ["PointDone", "PointStarted", "SweepDone", "SweepResults", "read_sweep", "sweep", "sweep_events"]

#: A point's status in ``results.csv`` and ``summary.json``.
POINT_STATUSES = ("finished", "stopped", "failed")


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

    ``epochs`` overrides the project's epochs for every point and the refit, except where
    ``training.epochs`` is one of the swept settings: there each point's own value holds.

    Raises:
        SweepError: a setting or a value cannot be used (checked for every point before any training).
    """
    from engine.tasks import main_metric
    from engine.training.trainer import Control

    control = control or Control()
    t_start = time.perf_counter()
    base = project_to_dict(project)
    points = sweep_points(settings, random, seed=project.training.seed)
    snapshots = [apply_point(base, p, source=f"sweep point {i}") for i, p in enumerate(points, start=1)]
    metric = f"val_{main_metric(project.graph)}"
    folder = _SweepFolder(out_dir, base, label, epochs, settings, folds, random, metric)
    shared = _SharedData(base_dir)
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
            own = dict(epochs=None if "training.epochs" in values else epochs, base_dir=base_dir, device=device,
                       control=control, emit_interval=emit_interval, out_dir=where, label=f"{label} {text}".strip())
            end = None
            for ev in _point_events(point, folds, own, shared.splits(point, snap) if not folds else None):
                folder.open()
                if isinstance(ev, (Finished, CrossValidated, Failed)):
                    end = ev  # NOTE: a fold's Failed too: it ends its cross-validation, so it ends the point
                    continue
                yield ev
            folder.open()
            results.append(_point_done(i, len(points), values, text, end, metric, run if where is not None else None))
            folder.point_done(results)
            yield results[-1]
        stopped = control.stopped or len(results) < len(points)
        best = _best(results, metric)
        refitted, message = None, ""
        if refit and best is not None and not stopped:
            chosen = snapshots[points.index(results[best].values)]
            own_epochs = None if "training.epochs" in results[best].values else epochs
            refitted, message = yield from _refit(chosen, own_epochs, base_dir, device, control, emit_interval,
                                                  out_dir, f"{label}: refit ({results[best].label})".strip(": "))
            stopped = stopped or control.stopped
        elif refit and best is None:
            message = "no point finished with a score, so there is nothing to refit"
        done = SweepDone(settings=tuple(settings), results=tuple(results), metric=metric, best=best, folds=folds,
                         stopped=stopped, refit=refitted, seconds=time.perf_counter() - t_start, message=message,
                         random=random)
        folder.finish(done)
        yield done
    except Exception:
        folder.fail("the sweep ended with an error")
        raise
    finally:
        folder.close()


def _point_events(point: Project, folds: int | None, own: dict[str, Any], splits) -> Iterator[Any]:
    """One point's training: a run (on ``splits`` when given), or a k-fold cross-validation."""
    if folds:
        from engine.training.crossval import cross_validate_events

        return cross_validate_events(point, folds, **own)
    from engine.training.trainer import Trainer

    return Trainer(point, splits=splits, **own).events()


class _SharedData:
    """The data of consecutive points that read the same data, loaded and split once.

    Points that differ in training settings or in blocks other than the Input train on the same
    samples: loading them again for each point is the one cost a sweep adds to the run alone (a
    folder of images takes seconds). The splits are those the trainer makes itself (the same
    loader and seed); a point the data cannot be loaded for gets None, and its trainer loads them
    and says what is wrong. Data over the memory budget are shared as the trainer would read them:
    streamed from disk (:func:`~engine.data.streaming.load_for_training`), never loaded whole.
    """

    def __init__(self, base_dir: Path | None) -> None:
        self.base_dir = base_dir
        self._key: str | None = None
        self._splits = None

    def splits(self, point: Project, snapshot: dict[str, Any]):
        inputs = [n.get("params") for n in (snapshot.get("graph") or {}).get("nodes") or [] if n.get("type") == "Input"]
        key = json.dumps([snapshot.get("data"), inputs], sort_keys=True, default=str)
        if key != self._key:
            self._key, self._splits = key, self._load(point)
        return self._splits

    def _load(self, point: Project):
        from engine.codegen import generate
        from engine.data import split_dataset
        from engine.data.streaming import load_for_training

        try:
            shapes = generate(point.graph).input_shapes
            if len(shapes) != 1:
                return None
            data = load_for_training(point.data, shapes[0], base_dir=self.base_dir)
            return tuple(split_dataset(data, point.data.val_fraction, point.data.test_fraction, point.data.seed))
        except Exception:  # noqa: BLE001 - the point's own trainer loads the data again and says what is wrong
            return None


def _best(results: Sequence[PointDone], metric: str) -> int | None:
    """The index of the best finished point by ``metric``, the way its output block declares better.

    A point cut short by Stop is not comparable.
    """
    from engine.tasks import score_metric

    higher = score_metric(metric).higher_is_better
    return choose([r.score if r.status == "finished" else None for r in results], higher_is_better=higher)


class _SweepFolder:
    """The sweep's folder (when it has one), written from the first point's first event on."""

    def __init__(self, out_dir, base, label, epochs, settings, folds, random, metric) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self._args = (base, label, epochs)
        self.settings, self.folds, self.random, self.metric = tuple(settings), folds, random, metric
        self.writer = None

    def open(self) -> None:
        if self.writer is not None or self.out_dir is None:
            return
        from engine.training.runs import RunWriter

        base, label, epochs = self._args
        self.writer = RunWriter(self.out_dir, snapshot=base, label=label, epochs=epochs, kind="sweep",
                                extra={"summary": self._summary([], stopped=False)})

    def _summary(self, results: list[PointDone], stopped: bool) -> dict[str, Any]:
        return SweepDone(settings=self.settings, results=tuple(results), metric=self.metric,
                         best=_best(results, self.metric), folds=self.folds, stopped=stopped,
                         random=self.random).summary()

    def point_done(self, results: list[PointDone]) -> None:
        if self.writer is not None:
            self.writer.update(summary=self._summary(results, stopped=False))
            _write_table(self.out_dir / "results.csv", results, self.metric)

    def finish(self, done: SweepDone) -> None:
        if self.writer is not None:
            self.writer.finish("stopped" if done.stopped else "finished", done.summary())
            self.writer = None

    def fail(self, message: str) -> None:
        if self.writer is not None:
            self.writer.finish("failed", None, message)
            self.writer = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # NOTE: abandoned half way (its reader gone): it reads as interrupted


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
                         status=status, message=end.results[-1].result.message if end.results else "")
    last = end.history[-1] if end.history else {}
    score = last.get(metric)
    if score is None:  # NOTE: several heads: the first head's score is prefixed with its name
        score = next((v for k, v in last.items() if k.endswith(metric.removeprefix("val"))), None)
    return PointDone(**common, score=score, status=status, message=end.message)


def _refit(snapshot: dict, epochs, base_dir, device, control, emit_interval, out_dir, label) -> Iterator[Any]:
    """Train the chosen point on training + validation data; returns (its Finished, a message)."""
    from engine.training.trainer import Trainer

    snap = dict(snapshot)
    snap["data"] = {**snap["data"], "val_fraction": 0.0}
    project = project_from_dict(snap, source="the refit")
    trainer = Trainer(project, epochs=epochs, base_dir=base_dir, device=device, control=control,
                      emit_interval=emit_interval, out_dir=out_dir / "refit" if out_dir is not None else None,
                      label=label)
    end = None
    for ev in trainer.events():
        if isinstance(ev, (Finished, Failed)):
            end = ev
            continue
        yield ev
    if isinstance(end, Failed):
        return None, f"the refit failed: {end.message}"
    if end is not None and end.stopped:
        return end, "the refit was stopped before it finished"
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


# ---------------------------------------------------------------------- reading a sweep's folder back
@dataclass(frozen=True)
class SweepResults:
    """A sweep as its folder tells it: the settings, every point so far, the choice and the refit's scores."""

    path: Path
    label: str
    status: str  # the run folder's status: running, finished, stopped, failed or interrupted
    settings: tuple[Setting, ...]
    metric: str
    folds: int | None
    random: int | None
    points: tuple[PointDone, ...]
    best: int | None  # the chosen point's index (1-based), as summary.json says
    refit: dict[str, Any] | None  # the refit's summary (its ``test`` scores), when it ran

    @property
    def planned(self) -> int:
        """How many points the sweep set out to train."""
        grid = math.prod(len(s.values) for s in self.settings) if self.settings else 0
        return min(grid, self.random) if self.random else grid

    @property
    def chosen(self) -> PointDone | None:
        return next((p for p in self.points if p.index == self.best), None)

    def point_folder(self, point: PointDone) -> Path | None:
        """The point's run (or cross-validation) folder, when it was written."""
        return self.path / point.run if point.run else None

    def refit_folder(self) -> Path | None:
        folder = self.path / "refit"
        return folder if (folder / "summary.json").is_file() else None


def read_sweep(record: RunRecord) -> SweepResults:
    """The sweep in a run record of kind ``sweep`` (see :func:`engine.training.runs.read_run`).

    Raises:
        RunError: its ``summary.json`` does not hold a sweep's results (the message names the file and field).
    """
    from engine.training.runs import RunError

    where = f"{record.folder_name or 'the sweep'}/summary.json"
    summary = record.summary or {}

    def bad(what: str) -> RunError:
        return RunError(f"{where}: {what}")

    settings = []
    for s in _list(summary.get("settings"), "settings", bad):
        if not isinstance(s, dict) or not isinstance(s.get("key"), str) or not isinstance(s.get("values"), list):
            raise bad("each of 'settings' must be an object with 'key' (text) and 'values' (a list)")
        settings.append(Setting(s["key"], tuple(s["values"])))
    folds, random, best = (_whole(summary.get(k), k, bad) for k in ("folds", "random", "best"))
    planned = SweepResults(record.path, "", "", tuple(settings), "", None, random, (), None, None).planned
    points = tuple(_read_point(p, planned, bad) for p in _list(summary.get("points"), "points", bad))
    metric = summary.get("metric") or "val_score"
    refit = summary.get("refit")
    if not isinstance(metric, str):
        raise bad("'metric' must be text")
    if refit is not None and not isinstance(refit, dict):
        raise bad("'refit' must be null or an object")
    return SweepResults(path=record.path, label=record.label, status=record.status, settings=tuple(settings),
                        metric=metric, folds=folds, random=random, points=points, best=best, refit=refit)


def _list(value: Any, name: str, bad) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(f"'{name}' must be a list")
    return value


def _whole(value: Any, name: str, bad) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"'{name}' must be a whole number or null")
    return value


def _read_point(p: Any, planned: int, bad) -> PointDone:
    if not isinstance(p, dict) or not isinstance(p.get("values"), dict):
        raise bad("each of 'points' must be an object with its 'values'")
    index = _whole(p.get("index"), "index", bad)
    score, spread = (_score(p.get(k), k, bad) for k in ("score", "spread"))
    folds = tuple(_score(v, "fold_scores", bad) for v in _list(p.get("fold_scores"), "fold_scores", bad))
    status = p.get("status", "finished")
    if status not in POINT_STATUSES:
        raise bad(f"a point's 'status' must be one of {', '.join(POINT_STATUSES)}")
    run, message = p.get("run"), p.get("message") or ""
    if (run is not None and (not isinstance(run, str) or "/" in run or "\\" in run or run in ("", ".", ".."))) \
            or not isinstance(message, str):
        raise bad("a point's 'run' must be the name of a folder in the sweep's folder, and its 'message' text")
    return PointDone(index=index or 0, points=planned, values=dict(p["values"]), label=point_label(p["values"]),
                     score=score, spread=spread, fold_scores=tuple(f for f in folds if f is not None), status=status,
                     message=message, run=run)


def _score(value: Any, name: str, bad) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad(f"a point's '{name}' must be a number or null")
    return float(value)

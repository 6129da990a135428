"""A sweep's cost per point against the same training run alone (issue 12: within 5 %).

A sweep of N points without folds (:func:`engine.training.sweep.sweep_events`, weight decay at N
values) against N separate :class:`~engine.training.trainer.Trainer` runs of the same settings. Both
write their run folders, as every run from the window or the command line does. They go in lockstep
(:func:`bench.bench_training.lockstep`): a step is one epoch, or a point's end (its test score,
folder, and for the sweep ``results.csv`` and ``summary.json``); the sweep's step and the same step
of the lone runs alternate, so a shared machine's drift hits both alike. The setup of a point (data
load, compile) falls in its first epoch's step on both sides, and the sweep's own work before its
first point (validating every point) in the first point's. Each point's seconds are the sum of its
steps; the figure is the median over all points and repeats of sweep / alone (target <= 1.05).
Beside it, each point's median seconds over the repeats on both sides and their ratio: a round that
the machine stalled moves a median of repeats less than it moves that round's ratios.
``--calibrate`` puts a second set of lone runs in the sweep's place, which shows how far this
machine's noise moves the ratios.

Points that read the same data share one load of it (:class:`engine.training.sweep._SharedData`),
so a sweep's point skips the data load that its run alone makes: on a data set that takes long to
load (a folder of images), a sweep's point costs less than the run alone.

Run: python bench/bench_sweep.py [--template mlp|lenet5] [--points N] [--epochs N] [--repeats N] [--samples N]
     [--calibrate]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_training import lockstep  # noqa: E402
from engine.project import project_from_dict, project_to_dict  # noqa: E402
from engine.templates import load_template  # noqa: E402
from engine.training.events import EpochDone, Failed, Finished, PointDone, SweepDone  # noqa: E402
from engine.training.sweep import sweep_events  # noqa: E402
from engine.training.sweep_plan import Setting, apply_point, sweep_points  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402

DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
TARGET = 1.05


def make_project(template: str, epochs: int, samples: int | None):
    """The template on the CPU with no live views and no augmentation (the same work on both sides)."""
    project = load_template(template)
    project.training.epochs = epochs
    project.training.device = "cpu"
    project.training.early_stopping_patience = 0  # NOTE: every point runs every epoch on both sides
    project.data.augment = {}
    if samples is not None:
        project.data.samples = samples
    return project


def sweep_steps(project, setting: Setting, out: Path) -> Iterator[None]:
    """The sweep, one step per epoch and per point's end (the last point's end is the sweep's)."""
    for ev in sweep_events(project, [setting], out_dir=out, label="bench"):
        if isinstance(ev, Failed):
            raise RuntimeError(ev.message)
        if isinstance(ev, PointDone) and ev.status != "finished":
            raise RuntimeError(f"point {ev.index}: {ev.status} {ev.message}")
        point_end = isinstance(ev, PointDone) and ev.index < ev.points
        if isinstance(ev, (EpochDone, SweepDone)) or point_end:
            yield


def alone_steps(project, setting: Setting, out: Path) -> Iterator[None]:
    """The same points as separate Trainer runs, one after another, in the same steps."""
    base = project_to_dict(project)
    for i, point in enumerate(sweep_points([setting], seed=project.training.seed), start=1):
        snapshot = apply_point(base, point, source=f"point {i}")
        trainer = Trainer(project_from_dict(snapshot, source=f"point {i}"), out_dir=out / f"point-{i:02d}",
                          label=f"bench point {i}")
        for ev in trainer.events():
            if isinstance(ev, Failed):
                raise RuntimeError(ev.message)
            if isinstance(ev, (EpochDone, Finished)):
                yield


def per_point(seconds: list[float], points: int) -> list[float]:
    """Each point's seconds: the sum of its steps (the steps come point by point, the same number each)."""
    per = len(seconds) // points
    return [sum(seconds[i * per : (i + 1) * per]) for i in range(points)]


def compare(template: str, points: int, epochs: int, repeats: int, samples: int | None,
            calibrate: bool = False) -> list[tuple[float, float]]:
    """(sweep seconds, alone seconds) of every point of every repeat, after one warm-up round.

    ``calibrate``: lone runs in the sweep's place (the ratios then show the machine's noise alone).
    """
    project = make_project(template, epochs, samples)
    setting = Setting("training.weight_decay", DECAYS[:points])
    ours = alone_steps if calibrate else sweep_steps
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(repeats + 1):
            spent = lockstep(ours(project, setting, Path(tmp) / f"sweep-{round_}"),
                             alone_steps(project, setting, Path(tmp) / f"alone-{round_}"))
            if len(spent[0]) != len(spent[1]):
                raise RuntimeError(f"the sides took {len(spent[0])} and {len(spent[1])} steps")
            if round_:  # NOTE: round 0 warms up (first-call costs, caches)
                pairs += zip(per_point(spent[0], points), per_point(spent[1], points))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="mlp", choices=("mlp", "lenet5"))
    parser.add_argument("--points", type=int, default=4, choices=range(2, len(DECAYS) + 1), metavar="N")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=None, help="samples of a generated data set (the spiral)")
    parser.add_argument("--calibrate", action="store_true",
                        help="lone runs against lone runs: how far this machine's noise moves the ratios")
    args = parser.parse_args()
    import torch

    pairs = compare(args.template, args.points, args.epochs, args.repeats, args.samples, args.calibrate)
    print(f"{args.template}, {args.points} points x {args.epochs} epochs, {args.repeats} repeats, "
          f"torch threads: {torch.get_num_threads()}" + (" -- calibration: 'sweep' is a second set of lone runs"
                                                         if args.calibrate else ""))
    for i, (sweep, alone) in enumerate(pairs):
        print(f"  repeat {i // args.points + 1} point {i % args.points + 1}: sweep {sweep:.3f} s, alone {alone:.3f} s, "
              f"ratio {sweep / alone:.3f}")
    for point in range(args.points):
        mine = pairs[point :: args.points]
        sweep, alone = statistics.median(s for s, _ in mine), statistics.median(a for _, a in mine)
        print(f"  point {point + 1}, medians of {len(mine)} repeats: sweep {sweep:.3f} s, alone {alone:.3f} s, "
              f"ratio {sweep / alone:.3f}")
    ratios = sorted(s / a for s, a in pairs)
    median = statistics.median(ratios)
    print(f"sweep / alone per point: median {median:.3f} (range {ratios[0]:.3f}-{ratios[-1]:.3f}); "
          f"target <= {TARGET}: {'met' if median <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()

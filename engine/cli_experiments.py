"""The command line's experiments: ``cross-validate`` and ``sweep`` (see :mod:`engine.cli` for the rest).

Both write one folder in the run-folder format (by default a new one in ``PROJECT.runs/``, where the
window lists it), print each fold or point as it ends and a table at the end. A bad ``--set`` gets one
line and exit code 2, as every refusal of :mod:`engine.cli`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.errors import NetDesignerError
from engine.textsafe import terminal_safe

__all__ = ["add_parsers", "cross_validate_command", "sweep_command"]


def add_parsers(sub, whole_number) -> None:
    """The two sub-commands' parsers (``whole_number(what)`` makes an ASCII-digits argparse type)."""
    cv = sub.add_parser("cross-validate", help="k-fold cross-validation: k fresh networks, each validated on another fold")
    cv.add_argument("project", type=Path, metavar="PROJECT.json")
    cv.add_argument("-k", "--folds", type=whole_number("a number of folds such as 5"), required=True, metavar="K")
    cv.add_argument("--epochs", type=whole_number("a number of epochs such as 10"), metavar="N")
    cv.add_argument("--device", choices=("auto", "cpu", "cuda"))
    cv.add_argument("--out", type=Path, metavar="DIR", help="the folder to write (default: a new one in PROJECT.runs/)")

    sw = sub.add_parser("sweep", help="train at every point of a grid of settings and choose the best by validation")
    sw.add_argument("project", type=Path, metavar="PROJECT.json")
    sw.add_argument("--set", dest="settings", action="append", required=True, metavar="KEY=V1,V2,...",
                    help="a setting of the project file and its values, e.g. training.weight_decay=0,1e-4,1e-3 or "
                    "blocks.fc1.units=16,32 (repeat --set for a grid over several)")
    sw.add_argument("--folds", type=whole_number("a number of folds such as 5"), metavar="K",
                    help="score each point by k-fold cross-validation (mean ± spread) instead of the validation split")
    sw.add_argument("--random", type=whole_number("a number of points such as 10"), metavar="N",
                    help="N random points of the grid instead of all of it")
    sw.add_argument("--refit", action="store_true",
                    help="train the chosen setting again on training + validation data and report its test score")
    sw.add_argument("--epochs", type=whole_number("a number of epochs such as 10"), metavar="N")
    sw.add_argument("--device", choices=("auto", "cpu", "cuda"))
    sw.add_argument("--out", type=Path, metavar="DIR", help="the folder to write (default: a new one in PROJECT.runs/)")


class _folder_for:  # noqa: N801 - used as a context manager
    """The folder an experiment writes (``--out``, or a new one in PROJECT.runs/), removed again if it stays empty."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.path, self.label = _target(args)

    def __enter__(self) -> _folder_for:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.path.rmdir()  # NOTE: only an empty folder: the experiment was refused before it wrote anything
        except OSError:
            pass


def _target(args: argparse.Namespace) -> tuple[Path, str]:
    from engine.training.runs import new_run_dir, next_label, runs_dir

    if args.out is not None:
        return args.out, args.out.name
    root = runs_dir(args.project)
    label = next_label(root)
    return new_run_dir(root), label


def cross_validate_command(args: argparse.Namespace) -> int:
    from engine.project import load_project

    project = load_project(args.project)
    if args.folds < 2:
        raise NetDesignerError("-k must be at least 2")
    with _folder_for(args) as folder:
        _cross_validate(project, args, folder.path, folder.label)
    print(f"the cross-validation is in {terminal_safe(str(folder.path))}")
    return 0


def _cross_validate(project, args: argparse.Namespace, out: Path, label: str) -> None:
    from engine.training.crossval import cross_validate_events
    from engine.training.events import CrossValidated, Failed, FoldDone

    for ev in cross_validate_events(project, args.folds, epochs=args.epochs, base_dir=args.project.resolve().parent,
                                    device=args.device, out_dir=out, label=label):
        if isinstance(ev, FoldDone):
            scores = "  ".join(f"{k} {v:.4g}" for k, v in ev.val.items() if v is not None)
            print(f"fold {ev.fold}/{ev.folds}  {scores}")
        elif isinstance(ev, Failed):
            raise NetDesignerError(f"cross-validation failed: {ev.message}")
        elif isinstance(ev, CrossValidated):
            key = ev.main_metric
            if key in ev.mean:
                print(f"{args.folds}-fold validation {key.removeprefix('val_')} {ev.mean[key]:.4f} ± {ev.std[key]:.4f}")


def sweep_command(args: argparse.Namespace) -> int:
    from engine.project import load_project
    from engine.training.sweep import sweep_events
    from engine.training.sweep_plan import parse_setting

    project = load_project(args.project)
    settings = [parse_setting(text) for text in args.settings]
    if args.folds is not None and args.folds < 2:
        raise NetDesignerError("--folds must be at least 2")
    with _folder_for(args) as folder:
        events = sweep_events(project, settings, folds=args.folds, random=args.random, refit=args.refit,
                              epochs=args.epochs, out_dir=folder.path, base_dir=args.project.resolve().parent,
                              device=args.device, label=folder.label)
        _follow_sweep(events)
    print(f"the sweep is in {terminal_safe(str(folder.path))} (results.csv, summary.json, a folder per point)")
    return 0


def _follow_sweep(events) -> None:
    from engine.training.events import PointDone, PointStarted, SweepDone

    for ev in events:
        if isinstance(ev, PointStarted):
            print(f"point {ev.index}/{ev.points}: {terminal_safe(ev.label)}", flush=True)
        elif isinstance(ev, PointDone):
            print(f"  {_score(ev)}")
        elif isinstance(ev, SweepDone):
            _report(ev)


def _score(p) -> str:
    if p.score is None:
        return f"{p.status}: {terminal_safe(p.message)}" if p.message else p.status
    spread = f" ± {p.spread:.4f}" if p.spread is not None else ""
    return f"validation {p.score:.4f}{spread}" + ("" if p.status == "finished" else f" ({p.status})")


def _report(done) -> None:
    metric = done.metric.removeprefix("val_")
    print(f"{'point':<6} {'setting':<40} validation {metric}")
    for i, p in enumerate(done.results):
        mark = "*" if i == done.best else " "
        print(f"{mark}{p.index:<5} {terminal_safe(p.label):<40} {_score(p)}")
    chosen = done.chosen
    if chosen is None:
        print("no point finished with a score")
        return
    print(f"chosen: {terminal_safe(chosen.label)} (validation {metric} {chosen.score:.4f})")
    if done.refit is not None:
        tests = "  ".join(f"{k} {v:.4f}" for k, v in done.refit.test.items())
        print(f"refit on training + validation data: test {tests or 'no test split'}")
    if done.message:
        print(terminal_safe(done.message))

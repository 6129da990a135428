"""Headless command line: ``python main.py templates | new | analyze | export | train | explain``.

Every command exits 0 on success. Bad input (a missing or malformed file, an
unknown template, weights that do not fit) prints one line on stderr and exits 2,
never a traceback. ``analyze`` exits 1 when the network itself has errors, after
printing them. Any other failure (out of memory, a bug) is one line on stderr and exit 2 as
well, Ctrl+C one line and exit 130; ``NET_DESIGNER_DEBUG=1`` shows the traceback instead.
Every piece of user text printed (names, paths, messages quoting them) goes through
:func:`engine.textsafe.terminal_safe`, so it cannot carry terminal control codes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Sequence

from engine.analysis import Analysis, analyze, params_cell
from engine.cli_experiments import add_parsers as add_experiment_parsers
from engine.cli_experiments import cross_validate_command, sweep_command
from engine.errors import NetDesignerError
from engine.layers.registry import shape_str
from engine.textsafe import terminal_safe

EXIT_BAD_INPUT = 2
EXIT_INVALID_NETWORK = 1
EXIT_INTERRUPTED = 130
#: set to 1 to let an unexpected exception show its traceback (for developers)
DEBUG_VARIABLE = "NET_DESIGNER_DEBUG"
#: what counts as a number on the command line: ASCII digits only (str.isdigit and int() also take
#: "²", "٣" or "３", which are file names here)
_INDEX_RE = re.compile(r"-?[0-9]+")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse's name
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {_one_line(message)} (see --help)\n")


def _whole_number(what: str):
    """An argparse type for every number argument: a whole number in ASCII digits, or a refusal naming ``what``.

    NOTE: argparse's ``int`` takes "٣", "３" or " 1" too; a number on this command line is ASCII digits only.
    """

    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text):
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}")
        return int(text)

    return parse


_class_number = _whole_number("a class number such as 0 or 3")
_epochs_number = _whole_number("a number of epochs such as 10")


class _DeviceChoices:
    """``--device``'s choices for argparse: auto, cpu, cuda and any GPU by number (``cuda:1``)."""

    def __contains__(self, text: object) -> bool:
        from engine.devices import is_device_choice

        return is_device_choice(text)

    def __iter__(self):
        return iter(("auto", "cpu", "cuda", "cuda:N"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="main.py",
        description="Net Designer. With no arguments (or a project path) it opens the window; "
        "these sub-commands run without a display.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("templates", help="list the built-in templates, one per line, name first")

    new = sub.add_parser("new", help="create a project file from a template")
    new.add_argument("--template", required=True, metavar="NAME", help="template name (see 'templates')")
    new.add_argument("-o", "--output", required=True, type=Path, metavar="PROJECT.json")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")

    ana = sub.add_parser("analyze", help="per-block shapes, parameters, MACs and receptive fields")
    ana.add_argument("project", type=Path, metavar="PROJECT.json")
    ana.add_argument("--json", action="store_true", help="print the analysis as JSON")

    exp = sub.add_parser("export", help="write the network as a standalone PyTorch file, or a training package")
    exp.add_argument("project", type=Path, metavar="PROJECT.json")
    what = exp.add_mutually_exclusive_group(required=True)
    what.add_argument("-o", "--output", type=Path, metavar="MODEL.py")
    what.add_argument("--package", type=Path, metavar="DIR",
                      help="a folder to train anywhere: model.py, train.py (python or torchrun), config.json, data.npz")
    exp.add_argument("--weights", type=Path, metavar="RUN_OR_CHECKPOINT",
                     help="the trained weights: a run folder (its best checkpoint), a checkpoint or a weights file "
                     "(default: the best checkpoint of the project's latest run, if it has runs)")

    tr = sub.add_parser("train", help="train a project without a window")
    tr.add_argument("project", type=Path, metavar="PROJECT.json")
    tr.add_argument("--epochs", type=_epochs_number, metavar="N", help="override the project's number of epochs")
    tr.add_argument("--device", choices=_DeviceChoices(), metavar="DEVICE",
                    help="override the project's device: auto, cpu, cuda or cuda:N (a GPU by its number)")
    tr.add_argument("--out", type=Path, metavar="DIR", help="the run folder to write (default: a new folder in "
                    "PROJECT.runs/ beside the project, where the window lists it)")
    tr.add_argument("--resume", type=Path, metavar="RUN_OR_CHECKPOINT",
                    help="go on from a run folder (its last checkpoint; the run continues in its folder) or from "
                    "a checkpoint file (a run folder's last.pt continues that run; any other starts a new run from it)")
    tr.add_argument("--init-from", type=Path, metavar="RUN_OR_CHECKPOINT",
                    help="a new run that starts from earlier weights (transfer learning): a run folder (its best "
                    "checkpoint), a checkpoint or a weights file; every block whose weights fit keeps them, the "
                    "others start fresh")

    ex = sub.add_parser("explain", help="CAM or Grad-CAM heat map of one input, as PNG overlay and .npy")
    ex.add_argument("project", type=Path, metavar="PROJECT.json")
    ex.add_argument("--weights", type=Path, required=True, metavar="W.pt", help="trained weights or a checkpoint")
    ex.add_argument("--input", required=True, metavar="IMAGE_OR_INDEX",
                    help="an image file, or the index of a sample of the project's data set")
    ex.add_argument("--method", choices=("cam", "gradcam"), default="gradcam")
    ex.add_argument("--layer", metavar="BLOCK", help="Grad-CAM's target block (name or id); default: the last spatial block")
    ex.add_argument("--class", dest="class_index", type=_class_number, metavar="K", help="class to explain (default: the predicted one)")
    ex.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png",
                    help="the overlay; the raw map goes to OUT.npy (values in [0, 1], input resolution)")
    add_experiment_parsers(sub, _whole_number)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return 0
    handler = {"templates": _templates, "new": _new, "analyze": _analyze, "export": _export, "train": _train,
               "explain": _explain, "cross-validate": cross_validate_command, "sweep": sweep_command}[
        args.command
    ]
    try:
        _check_input_files(args)
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as exc:  # NOTE: the promise is one line and exit 2 for any failure, never a traceback
        if os.environ.get(DEBUG_VARIABLE) == "1" or isinstance(exc, (SystemExit, GeneratorExit)):
            raise
        if isinstance(exc, BrokenPipeError):
            _quiet_stdout()
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _check_input_files(args: argparse.Namespace) -> None:
    """Refuse a project, weights or checkpoint path that is a folder, pipe or device before any reader opens it."""
    from engine.userfiles import check_regular_file

    for attr, what in (("project", "a project file"), ("weights", "a weights file"), ("resume", "a checkpoint file"),
                       ("init_from", "a checkpoint file")):
        path = getattr(args, attr, None)
        if path is not None and not (attr != "project" and Path(path).is_dir()):  # NOTE: a run folder
            check_regular_file(path, what)


def _describe(exc: BaseException) -> str:
    """An exception in plain words, on one line: the engine's own messages as they are, others named."""
    if isinstance(exc, (NetDesignerError, OSError)):
        return _one_line(exc)
    text = _one_line(exc) if str(exc).strip() else ""
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and re.search(r"alloc|out of memory", text, re.I)):
        return "out of memory" + (f": {text}" if text else ": the command needs more memory than this machine has")
    if isinstance(exc, UnicodeError):
        return f"a text could not be encoded or decoded for this terminal or file ({text})"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"unexpected failure ({detail}); set {DEBUG_VARIABLE}=1 to see where"


def _quiet_stdout() -> None:
    """After a closed pipe (``main.py templates | head -1``), send what is left to nowhere, not to an error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------- commands
def _templates(args: argparse.Namespace) -> int:
    from engine.templates import list_templates

    infos = list_templates()
    width = max((len(t.name) for t in infos), default=0)
    for t in infos:
        print(terminal_safe(f"{t.name:<{width}}  {t.title}: {t.description}"))
    return 0


def _new(args: argparse.Namespace) -> int:
    from engine.project import save_project
    from engine.templates import load_template

    if args.output.exists() and not args.force:
        raise NetDesignerError(f"{args.output} already exists (use --force to overwrite)")
    project = load_template(args.template)
    save_project(project, args.output)
    print(terminal_safe(f"wrote {args.output} from template {args.template!r}"))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from engine.project import load_project

    project = load_project(args.project)
    result = analyze(project.graph)
    if args.json:
        print(json.dumps(analysis_to_dict(project.graph, result, project.name), indent=2))
    else:
        print(format_table(project.graph, result, project.name))
    return 0 if result.valid else EXIT_INVALID_NETWORK


def _export(args: argparse.Namespace) -> int:
    from engine.export import export_code, trained_weights
    from engine.project import load_project, weights_path

    project = load_project(args.project)
    source = args.weights or weights_path(project, args.project) or _latest_run(args.project)
    state, spec = trained_weights(source) if source is not None else (None, None)
    if args.package is not None:
        return _export_package(args, project, source, state, spec)
    written = export_code(project.graph, args.output, name=project.name, state_dict=state, input_spec=spec)
    for path in written:
        print(terminal_safe(f"wrote {path}"))
    if source is None:
        print("no trained weights: the model is exported untrained (train it, or give --weights)")
    else:
        print(terminal_safe(f"weights from {source}")
              + ("; the model normalizes raw inputs itself" if spec and spec.mean else ""))
    return 0


def _export_package(args: argparse.Namespace, project, source: Path | None, state, spec) -> int:
    """``export --package DIR``: the training package, with the run's weights as model.pt when there is one."""
    from engine.package import export_package

    written = export_package(project, args.package, base_dir=args.project.resolve().parent, state_dict=state,
                             input_spec=spec)
    for path in written:
        print(terminal_safe(f"wrote {path}"))
    if source is not None:
        print(terminal_safe(f"model.pt holds the weights of {source}; train.py trains the network afresh"))
    print(terminal_safe(f"train it: cd {args.package} && python train.py   (or: torchrun --nproc-per-node=N train.py)"))
    return 0


def _latest_run(project_path: Path) -> Path | None:
    """The newest run of a project that has a checkpoint, or None."""
    from engine.training.runs import list_runs, runs_dir

    records, _ = list_runs(runs_dir(project_path))
    for record in reversed(records):
        if (record.path / "best.pt").is_file() or (record.path / "last.pt").is_file():
            return record.path
    return None


def _explain(args: argparse.Namespace) -> int:
    from engine.export import read_weights_file
    from engine.probes.explain import explain
    from engine.project import load_project

    project = load_project(args.project)
    weights = read_weights_file(args.weights)  # NOTE: a checkpoint keeps its normalizer for explain
    source = int(args.input) if _INDEX_RE.fullmatch(args.input) else Path(args.input)
    png, npy, info = explain(
        project, weights, source, method=args.method, layer=args.layer, class_index=args.class_index,
        out_png=args.output, base_dir=args.project.resolve().parent,
    )
    extra = ", ".join(f"{k} {v}" for k, v in info.items() if isinstance(v, (int, float, str)))
    print(terminal_safe(f"wrote {png} and {npy}" + (f" ({extra})" if extra else "")))
    return 0


def _train(args: argparse.Namespace) -> int:
    from engine.project import load_project
    from engine.training.events import Finished
    from engine.training.trainer import Control, Trainer

    project = load_project(args.project)
    if args.epochs is not None and args.epochs < 1:
        raise NetDesignerError("--epochs must be at least 1")
    if args.resume is not None and args.init_from is not None:
        raise NetDesignerError("--resume continues a run and --init-from starts a new one from its weights: "
                               "give one of them, not both")
    out, resume, label = _run_target(args)
    control = Control()
    trainer = Trainer(
        project, base_dir=args.project.resolve().parent, out_dir=out, epochs=args.epochs,
        device=args.device, resume_from=resume, control=control, label=label, init_from=args.init_from,
    )
    bar = _ProgressBar(sys.stderr)
    with _stop_on_ctrl_c(control, bar) as ctrl_c:
        try:
            print(terminal_safe(f"loading the data and building {project.name!r}..."), flush=True)
            done = _follow_training(trainer, project.name, out, ctrl_c, bar)
        except KeyboardInterrupt:
            if not ctrl_c.began:
                _remove_if_empty(out)  # NOTE: quit before training began: no folder for a run that has nothing
            raise
    bar.clear()
    done = done or Finished(stopped=True, epochs_run=0)
    if done.epochs_run:
        tests = "  ".join(f"{k} {v:.4f}" for k, v in done.test.items())
        print(terminal_safe(f"test: {tests or 'no test split'}  ({done.seconds:.1f} s)"))
    else:
        print(terminal_safe(f"stopped: {done.message or 'no epoch finished'}"))
    if done.stopped:
        print(terminal_safe(f"stopped by Ctrl+C; go on with: main.py train {args.project} --resume {out}"))
    print(terminal_safe(f"the run is in {out} (metrics.csv, summary.json, last.pt and best.pt)"))
    return 0


def _follow_training(trainer, name: str, out: Path, ctrl_c: _stop_on_ctrl_c, bar: _ProgressBar):
    """Print a run's events as they come; returns its :class:`Finished` event (a failure raises)."""
    from engine.training.events import BatchesDone, EarlyStopped, EpochDone, Failed, FileSkipped, Finished, Started

    done = None
    for event in trainer.events():
        if isinstance(event, Started):
            ctrl_c.began = True
            more = f", from epoch {event.start_epoch}" if event.start_epoch > 1 else ""
            print(terminal_safe(f"training {name!r} on {event.device}: {event.train} training, {event.val} validation, "
                                f"{event.test} test samples; {event.params:,} trainable parameters{more}"))
            if event.transfer is not None and trainer.init_from is not None:
                print(terminal_safe(_transfer_line(event.transfer, trainer.init_from)))
        elif isinstance(event, BatchesDone):
            bar.update(event)
        elif isinstance(event, EpochDone):
            bar.clear()
            scores = {"val_loss": event.val_loss, **event.scores}
            extras = "  ".join(f"{k} {v:.4g}" for k, v in scores.items() if v is not None)
            print(terminal_safe(f"epoch {event.epoch:>3}  train_loss {event.train_loss:.4f}  {extras}  "
                                f"({event.seconds:.1f} s)"))
        elif isinstance(event, FileSkipped):
            bar.clear()
            print(terminal_safe(f"skipped {event.path}: {event.reason}"), file=sys.stderr)
        elif isinstance(event, EarlyStopped):
            print(f"early stopping at epoch {event.epoch}: best validation loss was at epoch {event.best_epoch}")
        elif isinstance(event, Failed):
            bar.clear()
            # NOTE: a run that failed before it began (its data, its network) left no folder to point to
            kept = out.is_dir() and any(out.iterdir())
            raise NetDesignerError(f"training failed: {event.message}" + (f" (the run so far is in {out})" if kept else ""))
        elif isinstance(event, Finished):
            done = event
    return done


def _transfer_line(transfer: dict, source: Path) -> str:
    """``kept 4 blocks from RUN: conv1, conv2, fc1, fc2; fresh: fc3 (new)``: what a new run took from ``source``."""
    kept, fresh = transfer.get("kept") or [], transfer.get("fresh") or {}
    epoch = transfer.get("epoch")
    at = f" (epoch {epoch})" if isinstance(epoch, int) and "at" not in transfer else ""
    line = f"kept {len(kept)} block{'s' if len(kept) != 1 else ''} from {source}{at}: {', '.join(kept) or 'none'}"
    if fresh:
        line += "; fresh: " + ", ".join(f"{name} ({why})" for name, why in fresh.items())
    return line


def _run_target(args: argparse.Namespace) -> tuple[Path, Path | None, str]:
    """(run folder to write, checkpoint to resume from, the run's label) for ``train``'s arguments."""
    from engine.training.runs import find_checkpoint, new_run_dir, next_label, runs_dir

    resume = None
    if args.resume is not None:
        resume = find_checkpoint(args.resume, which="last")
        home = resume.parent.parent if resume.parent.name == "checkpoints" else resume.parent
        if args.out is None and resume.name == "last.pt" and (home / "summary.json").is_file():
            return home, resume, ""  # NOTE: the run goes on in its own folder, its history kept
    if args.out is not None:
        return args.out, resume, args.out.name
    root = runs_dir(args.project)
    label = next_label(root)
    return new_run_dir(root), resume, label


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # NOTE: not empty (a run that goes on in its folder), or not made yet


class _stop_on_ctrl_c:  # noqa: N801 - used as a context manager
    """Ctrl+C while training stops after the current batch (the run is written); a second one quits.

    Before training began (``began`` is False: the data load or the network compiles, which
    may take long), the first Ctrl+C quits at once: there is nothing of the run to keep.
    """

    def __init__(self, control, bar) -> None:
        self.control, self.bar = control, bar
        self.previous = None
        self.began = False  # set by the caller when training has begun

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _on_interrupt(self, signum, frame) -> None:
        if self.control.stopped or not self.began:
            # NOTE: raised in the trainer's generator (the data load); its clean-up removes the empty run folder
            raise KeyboardInterrupt
        self.control.stop()
        self.bar.clear()
        print("stopping after this batch (Ctrl+C again to quit at once)...", file=sys.stderr, flush=True)


class _ProgressBar:
    """A one-line progress bar with epoch, batch, speed and time left (redrawn on a terminal)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.shown = False

    def update(self, d) -> None:
        """Redraw for a :class:`~engine.training.events.BatchesDone`."""
        if not self.tty:
            return
        frac = d.step / max(1, d.total_steps)
        filled = int(frac * 30)
        line = (f"\r[{'#' * filled}{'.' * (30 - filled)}] epoch {d.epoch} batch {d.batch}  "
                f"{d.samples_per_s:.0f} samples/s  {_clock(d.eta)} left ")
        self.stream.write(line)
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()
            self.shown = False


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


# ---------------------------------------------------------------------- formatting
def analysis_to_dict(graph, result: Analysis, name: str = "") -> dict:
    """The analysis as JSON-ready data (the same content as the table).

    User text stays as it is: ``json.dumps`` (ASCII by default) writes every control character
    as a ``\\u`` escape, so the printed JSON is safe for a terminal and reads back exactly.
    """
    blocks = []
    for nid in result.order:
        node, info = graph.nodes[nid], result.nodes[nid]
        rf = info.rf
        blocks.append(
            {
                "id": nid,
                "name": node.name,
                "type": node.type,
                "output_shape": list(info.out_shape) if info.out_shape else None,
                "params": info.params,
                "trainable": info.trainable,
                "frozen": info.frozen_params,
                "buffers": info.frozen,
                "macs": info.macs,
                "memory_bytes": info.memory,
                "receptive_field": {"size": rf.size, "jump": rf.jump, "offset": rf.offset} if rf else None,
                "problems": [_problem(p) for p in result.problems.get(nid, [])],
            }
        )
    return {
        "name": name,
        "valid": result.valid,
        "blocks": blocks,
        "totals": {
            "params": result.total_params,
            "trainable": result.total_trainable,
            "frozen": result.total_frozen_params,
            "buffers": result.total_frozen,
            "macs": result.total_macs,
            "memory_bytes": result.total_memory,
        },
        "problems": [_problem(p) for p in result.all_problems()],
    }


def _problem(p) -> dict:
    return {"block": p.node_id, "severity": p.severity, "rule": p.rule, "message": p.message}


def format_table(graph, result: Analysis, name: str = "") -> str:
    """A torchinfo-like table of every block, with totals and problems; user text made terminal-safe."""
    header = ("Block", "Type", "Output shape", "Params", "MACs", "Receptive field")
    rows = []
    for nid in result.order:
        node, info = graph.nodes[nid], result.nodes[nid]
        rows.append(
            (
                terminal_safe(node.name),
                terminal_safe(node.type),
                shape_str(info.out_shape),
                params_cell(info),
                f"{info.macs:,}",
                str(info.rf) if info.rf else "-",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {3, 4}

    def line(cells) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "=" * len(line(header))
    out = [rule]
    if name:
        out += [terminal_safe(name), rule]
    out += [line(header), "-" * len(rule), *map(line, rows), rule]
    out += [
        f"Total params: {result.total_params:,}",
        f"Trainable params: {result.total_trainable:,}",
        f"Non-trainable params (frozen blocks): {result.total_frozen_params:,}",
        f"Buffers, not trained (BatchNorm running statistics): {result.total_frozen:,}",
        f"Total MACs (one sample): {result.total_macs:,}",
        f"Activation memory (one sample, float32): {result.total_memory / 2**20:.2f} MiB",
        rule,
    ]
    problems = result.all_problems()
    if problems:
        out.append("Problems:")
        for p in problems:
            out.append(terminal_safe(f"  {p.severity}: {p.message}"))
    else:
        out.append("No problems found.")
    return "\n".join(out)


def _one_line(exc: BaseException | str) -> str:
    """A message on one line, safe for a terminal (it quotes file and block names)."""
    return terminal_safe(" ".join(str(exc).split()) or type(exc).__name__)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

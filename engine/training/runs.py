"""A training run on disk: one folder per run, one format for the window and the command line.

A project's runs live beside it, in ``<project>.runs/`` (:func:`runs_dir`), one folder each
(``2026-12-07_09-30-12``, :func:`new_run_dir`)::

    project.json   the project snapshot that trained (the project file format)
    summary.json   what the run is and how it stands: label, status, parent (a fork's origin),
                   epochs planned and run, best epoch, device, the settings changed while it was
                   paused (``changes``), and at the end the test scores
    metrics.csv    one row per finished epoch (``epoch``, ``step``, ``train_loss``, ``val_*``, ``lr``, ...)
    batches.f32    the training loss of every batch, float32 little-endian, in step order
    last.pt        the checkpoint after the last finished epoch (see ``Trainer.checkpoint``)
    best.pt        the checkpoint of the epoch with the lowest validation loss
    checkpoints/   ``epoch-0003.pt`` ...: checkpoints to fork from, thinned to :data:`CHECKPOINT_BUDGET`
    .lock          held by the process writing the run, so a reader can tell a live run from a dead one

:class:`RunWriter` writes it as the run goes. At an epoch's end the metrics row is appended
and synced first, then the checkpoints are renamed into place, then ``summary.json`` is
replaced: a crash or ``kill -9`` at any moment leaves a folder that reads as the run up to
its last finished epoch, and resuming from ``last.pt`` drops any row the checkpoint has not
caught up with. :func:`read_run` reads a folder back (also one still being written, and the
older layout of ``main.py train --out``); every malformed file is a :class:`RunError` that
names it, never another exception.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import shutil
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.errors import NetDesignerError
from engine.fileio import atomic_write_text

__all__ = [
    "CHECKPOINT_BUDGET",
    "RUN_FORMAT",
    "RUN_VERSION",
    "RunError",
    "RunFollower",
    "RunRecord",
    "RunWriter",
    "checkpoint_epochs",
    "find_checkpoint",
    "is_run_dir",
    "list_runs",
    "move_runs",
    "read_batches",
    "new_run_dir",
    "next_label",
    "read_run",
    "rename_run",
    "run_folders",
    "runs_dir",
    "write_run",
]

RUN_FORMAT = "net-designer-run"
RUN_VERSION = 1
#: Disk a run's fork checkpoints may take; beyond it every other one is dropped (the newest stays).
CHECKPOINT_BUDGET = 256 * 2**20
STATUSES = ("running", "finished", "stopped", "early stop", "failed", "interrupted")
MAX_SUMMARY_BYTES = 16 * 2**20
MAX_METRICS_BYTES = 64 * 2**20
MAX_PROJECT_BYTES = 20 * 2**20
MAX_LABEL = 200
LOCK_TRIES = 100  # 20 ms apart: a reader's glance at the lock never stops a writer
_CHECKPOINT_NAME = "epoch-{:04d}.pt"


class RunError(NetDesignerError):
    """A run folder is missing, damaged or not a run; the message names the file and what is wrong."""


@dataclass
class RunRecord:
    """One run as read from (or about to be written to) its folder.

    Attributes:
        name: the project's name. ``label`` is the run's own short name ("Run 3"), which a person may change.
        project: the project snapshot that trained (plain data).
        history: one dict per finished epoch (``epoch``, ``train_loss``, ``val_loss``, ``val_*``, ``lr``...).
        summary: the trainer's final summary (``test``, ``stopped``, ``seconds``...); for a cross-validation
            also ``folds``, ``mean`` and ``std``.
        status: ``running``, ``finished``, ``stopped``, ``early stop``, ``failed``, or ``interrupted`` (the
            writer is gone but never said the run ended: a crash or a kill).
        parent: where a fork or a run resumed from another's checkpoint began: ``{"run": folder name,
            "epoch": n}``, or None. A new network started from a paused run's weights adds ``step``, ``at``
            (the epochs trained, 3.4) and the blocks it ``kept`` and started ``fresh``.
        changes: the settings changed while the run was paused, in order: ``{"step": 1234, "epoch": 3.4,
            "changes": {"training.lr": [0.01, 0.001]}}`` (``project.json`` holds the settings after them).
    """

    name: str
    project: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    label: str = ""
    status: str = "finished"
    parent: dict[str, Any] | None = None
    created: str = ""
    message: str = ""
    kind: str = "train"
    epochs: int | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def folder_name(self) -> str:
        return self.path.name if self.path is not None else ""

    def batch_losses(self):
        """Every batch's training loss (a float32 numpy array; empty when the run kept none)."""
        import numpy as np

        if self.path is None:
            return np.empty(0, np.float32)
        return read_batches(self.path / "batches.f32")


# ---------------------------------------------------------------------- where runs live
def runs_dir(project_path: str | os.PathLike) -> Path:
    """The folder of a project file's runs: ``lenet5.json`` -> ``lenet5.runs`` beside it."""
    p = Path(project_path)
    return p.with_name(p.stem + ".runs")


def new_run_dir(root: str | os.PathLike, when: _dt.datetime | None = None) -> Path:
    """Create and return a new, empty run folder in ``root`` named after the time (``-2``... if taken)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = (when or _dt.datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    for i in range(1, 10_000):
        path = root / (stamp if i == 1 else f"{stamp}-{i}")
        try:
            path.mkdir()  # NOTE: mkdir is the claim: two writers starting in the same second get two folders
            return path
        except FileExistsError:
            continue
    raise RunError(f"{root}: could not make a new run folder for {stamp}")


def next_label(root: str | os.PathLike) -> str:
    """The label of the next run in ``root``: "Run 4" after three."""
    records, problems = list_runs(root)
    return f"Run {len(records) + len(problems) + 1}"


def move_runs(source: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Move every run folder in ``source`` into ``target`` (a project saved for the first time).

    A name already taken in ``target`` gets ``-2``, ``-3``...; ``source`` is removed once empty.
    Returns the new folders.
    """
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    moved = []
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        dest, i = target / folder.name, 2
        while dest.exists():
            dest, i = target / f"{folder.name}-{i}", i + 1
        shutil.move(str(folder), str(dest))
        moved.append(dest)
    try:
        source.rmdir()
    except OSError:
        pass  # NOTE: something that is not a run stayed behind; it is not ours to delete
    return moved


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "summary.json").is_file()


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


# ---------------------------------------------------------------------- writing
class RunWriter:
    """Writes one run's folder as the run goes (see the module docstring for the order of writes).

    ``RunWriter(folder, snapshot=..., label="Run 3")`` starts a new run; with ``resume_epoch`` it goes on
    with the run already in ``folder`` after that epoch (rows past it are dropped), and with ``fork_of``
    (a run folder) and ``resume_epoch`` a new run starts with the parent's history up to that epoch. With
    ``fork_of`` and ``fork_point`` instead (a changed network from a paused run's weights: ``epoch``, ``step``,
    ``at``, ``kept``, ``fresh``) a new run records its parent and starts with no history.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        snapshot: dict[str, Any],
        label: str = "",
        epochs: int | None = None,
        kind: str = "train",
        resume_epoch: int | None = None,
        fork_of: str | os.PathLike | None = None,
        fork_point: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _hold_lock(self.folder)
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self._stride = 1
        existing = self._read_existing() if resume_epoch is not None and fork_of is None else None
        if existing is not None:
            self.doc = existing
            self.doc.update(status="running", epochs=epochs or self.doc.get("epochs"), updated=_now(), message="")
            self._keep_until(resume_epoch, source=self.folder)
        else:
            self.doc = {
                "format": RUN_FORMAT, "version": RUN_VERSION, "label": _clean_label(label) or self.folder.name,
                "name": str(snapshot.get("name") or "Untitled"), "kind": kind, "created": _now(), "updated": _now(),
                "status": "running", "epochs": epochs, "epochs_run": 0, "best_epoch": 0, "parent": None,
                "message": "", "summary": {},
            }
            if fork_of is not None and resume_epoch is not None:
                self.doc["parent"] = {"run": Path(fork_of).name, "epoch": int(resume_epoch)}
                self._keep_until(resume_epoch, source=Path(fork_of))
            elif fork_of is not None and fork_point is not None:
                point = _plain(dict(fork_point))
                self.doc["parent"] = {**point, "run": Path(fork_of).name, "epoch": int(point.get("epoch") or 0)}
        self.doc.update(extra or {})
        self.doc["pid"] = os.getpid()
        atomic_write_text(self.folder / "project.json", json.dumps(snapshot, indent=2, ensure_ascii=False) + "\n")
        self._write_metrics_file()
        self._write_summary()

    # ------------------------------------------------------------------ history
    def _read_existing(self) -> dict[str, Any] | None:
        try:
            record = read_run(self.folder)
        except RunError:
            return None
        doc = _read_json(self.folder / "summary.json", MAX_SUMMARY_BYTES)
        if "format" not in doc:  # NOTE: the older layout: summary.json held name, summary and project
            doc = {"format": RUN_FORMAT, "version": RUN_VERSION, "label": record.label, "name": record.name,
                   "kind": "train", "created": _now(), "parent": None, "summary": {}}
        self.rows = record.history
        return doc

    def _keep_until(self, epoch: int, source: Path) -> None:
        """History up to ``epoch`` (from ``source``'s metrics) and its batches; the rest is dropped."""
        if source != self.folder:
            try:
                self.rows = read_run(source).history
            except RunError:
                self.rows = []
        self.rows = [r for r in self.rows if isinstance(r.get("epoch"), int) and r["epoch"] <= epoch]
        steps = self.rows[-1].get("step") if self.rows else 0
        steps = steps if isinstance(steps, int) and steps >= 0 else 0
        src, dst = source / "batches.f32", self.folder / "batches.f32"
        if src != dst and src.is_file():
            with open(src, "rb") as fin, open(dst, "wb") as fout:
                fout.write(fin.read(4 * steps))
        elif dst.is_file():
            with open(dst, "r+b") as fh:
                fh.truncate(min(4 * steps, os.fstat(fh.fileno()).st_size))
        if self.rows:
            self.doc["epochs_run"] = self.rows[-1]["epoch"]
        # NOTE: the changes made in the epochs that are dropped go with them
        self.doc["changes"] = [c for c in self.doc.get("changes") or [] if isinstance(c, dict)
                               and _is_int(c.get("step")) and c["step"] <= steps]
        for row in self.rows:
            self.columns += [k for k in row if k not in self.columns]

    # ------------------------------------------------------------------ as the run goes
    def batches(self, losses: Iterable[float]) -> None:
        """Append batch losses (kept so a run's curve per batch can be drawn again)."""
        values = [float(v) for v in losses]
        if values:
            with open(self.folder / "batches.f32", "ab") as fh:
                fh.write(struct.pack(f"<{len(values)}f", *values))

    def epoch(self, record: dict[str, Any], step: int) -> None:
        """Append one finished epoch's row (synced to disk before this returns)."""
        row = {"epoch": int(record["epoch"]), "step": int(step)}
        row.update({k: _plain(v) for k, v in record.items() if k not in row})
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new or not (self.folder / "metrics.csv").is_file():
            self.columns += new
            self._write_metrics_file()  # NOTE: a new column rewrites the file (atomically) with it
        else:
            line = _csv_line(self.columns, row)
            with open(self.folder / "metrics.csv", "a", encoding="utf-8", newline="") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        self.doc["epochs_run"] = row["epoch"]

    def change(self, step: int, at: float, changes: dict[str, Any], snapshot: dict[str, Any]) -> None:
        """Record settings changed while paused (setting -> (old, new)) after ``step``, at ``at`` epochs.

        ``project.json`` becomes ``snapshot``, the settings the run goes on with, so a run continued from
        its folder goes on with them too; ``changes`` in ``summary.json`` says what they were before.
        """
        entry = {"step": int(step), "epoch": float(at), "changes": {k: _plain(list(v)) for k, v in changes.items()}}
        self.doc.setdefault("changes", []).append(entry)
        atomic_write_text(self.folder / "project.json", json.dumps(snapshot, indent=2, ensure_ascii=False) + "\n")
        self._write_summary()

    def checkpoint(self, save, epoch: int, best: bool) -> list[Path]:
        """Write the epoch's checkpoint with ``save(path)`` as ``last.pt`` (and ``best.pt``), kept to fork from.

        Returns the paths written. The file is written once and linked under its other names.
        """
        from engine.fileio import atomic_write

        keep = self.folder / "checkpoints"
        keep.mkdir(exist_ok=True)
        kept = keep / _CHECKPOINT_NAME.format(epoch)
        # NOTE: a fresh file: a path that is a hard link of best.pt (a resumed epoch) would be written in place
        kept.unlink(missing_ok=True)
        atomic_write(kept, save)
        last = self.folder / "last.pt"
        _link_or_copy(kept, last)
        written = [last]
        if best:
            best_path = self.folder / "best.pt"
            _link_or_copy(kept, best_path)
            written.append(best_path)
            self.doc["best_epoch"] = int(epoch)
        self._thin(keep, epoch)
        return written

    def update(self, **fields: Any) -> None:
        """Change fields of ``summary.json`` (``device``, ``summary``...) and write it."""
        self.doc.update({k: _plain(v) for k, v in fields.items()})
        self._write_summary()

    def finish(self, status: str, summary: dict[str, Any] | None = None, message: str = "") -> None:
        """The run has ended (``finished``, ``stopped``, ``early stop`` or ``failed``): say so and let go."""
        self.doc.update(status=status, message=message)
        if summary is not None:
            self.doc["summary"] = _plain({k: v for k, v in summary.items() if k not in ("history", "weights")})
        self._write_summary()
        self.close()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ files
    def _write_summary(self) -> None:
        self.doc["updated"] = _now()
        atomic_write_text(self.folder / "summary.json", json.dumps(self.doc, indent=2, ensure_ascii=False) + "\n")

    def _write_metrics_file(self) -> None:
        buf = io.StringIO()
        if self.columns:
            buf.write(_csv_line(self.columns, {c: c for c in self.columns}))
            for row in self.rows:
                buf.write(_csv_line(self.columns, row))
        atomic_write_text(self.folder / "metrics.csv", buf.getvalue())

    def _thin(self, keep: Path, newest: int) -> None:
        """Drop every other kept checkpoint while they take more than the budget (the newest always stays)."""
        files = sorted(keep.glob("epoch-*.pt"))
        size = (self.folder / "last.pt").stat().st_size
        while len(files) > 1 and len(files) * size > CHECKPOINT_BUDGET:
            self._stride *= 2
            for f in files:
                epoch = _checkpoint_epoch(f)
                if epoch is not None and epoch != newest and epoch % self._stride:
                    f.unlink(missing_ok=True)
            files = sorted(keep.glob("epoch-*.pt"))


def write_run(out_dir: str | os.PathLike, record: RunRecord) -> None:
    """Write a whole finished run at once (a run made elsewhere, e.g. by a test or an import)."""
    writer = RunWriter(out_dir, snapshot=record.project, label=record.label, epochs=record.epochs, kind=record.kind)
    step = 0
    for row in record.history:
        step = int(row.get("step", step + 1))
        writer.epoch(row, step)
    writer.finish(record.status if record.status in STATUSES[1:5] else "finished", record.summary, record.message)


def rename_run(folder: str | os.PathLike, label: str) -> None:
    """Give a run another label (its folder keeps its name)."""
    folder = Path(folder)
    doc = _read_json(folder / "summary.json", MAX_SUMMARY_BYTES)
    label = _clean_label(label)
    if not label:
        raise RunError("a run's name cannot be empty")
    doc["label"] = label
    atomic_write_text(folder / "summary.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------- reading
def read_run(out_dir: str | os.PathLike) -> RunRecord:
    """Read a run folder (written by :class:`RunWriter`, or the older ``main.py train --out`` layout).

    Raises:
        RunError: the folder or one of its files is missing, not a regular file, too large or damaged.
    """
    folder = Path(out_dir)
    _regular_dir(folder)
    doc = _read_json(folder / "summary.json", MAX_SUMMARY_BYTES)
    where = f"{folder.name}/summary.json"
    if "format" in doc:
        if doc.get("format") != RUN_FORMAT:
            raise RunError(f"{where}: not a Net Designer run (format {_show(doc.get('format'))})")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version > RUN_VERSION or version < 1:
            raise RunError(f"{where}: run format version {_show(version)} is not one this program reads "
                           f"(it reads 1 to {RUN_VERSION})")
        project = _read_json(folder / "project.json", MAX_PROJECT_BYTES)
    else:  # NOTE: the older layout of `main.py train --out`: the snapshot inside summary.json
        project = doc.get("project") or {}
        if not isinstance(project, dict):
            raise RunError(f"{where}: 'project' must be an object")
    history = _read_metrics(folder / "metrics.csv")
    summary = doc.get("summary") or {}
    if not isinstance(summary, dict):
        raise RunError(f"{where}: 'summary' must be an object, not {_show(summary)}")
    status = doc.get("status", "finished" if not summary.get("stopped") else "stopped")
    if status not in STATUSES:
        raise RunError(f"{where}: 'status' must be one of {', '.join(STATUSES)}, not {_show(status)}")
    if status == "running" and not _writer_alive(folder):
        status = "interrupted"
    parent = doc.get("parent")
    if parent is not None and not (isinstance(parent, dict) and isinstance(parent.get("run"), str)
                                   and _is_int(parent.get("epoch"))):
        raise RunError(f"{where}: 'parent' must be null or an object with 'run' (text) and 'epoch' (a number)")
    epochs = doc.get("epochs")
    changes = _changes(doc.get("changes"), where)
    return RunRecord(
        name=_text(doc, "name", project.get("name") if isinstance(project.get("name"), str) else "Untitled", where),
        project=project,
        history=history,
        summary=summary,
        path=folder,
        label=_clean_label(_text(doc, "label", folder.name, where)) or folder.name,
        status=status,
        parent=parent,
        created=_text(doc, "created", "", where),
        message=_text(doc, "message", "", where),
        kind=_text(doc, "kind", "train", where),
        epochs=epochs if _is_int(epochs) else None,
        changes=changes,
    )


def _changes(value: Any, where: str) -> list[dict[str, Any]]:
    """The ``changes`` of ``summary.json``, checked: a list of ``{"step", "epoch", "changes": {key: [old, new]}}``."""
    if value is None:
        return []
    why = f"{where}: 'changes' must be a list of {{\"step\": n, \"epoch\": x, \"changes\": {{setting: [old, new]}}}}"
    if not isinstance(value, list):
        raise RunError(why)
    out = []
    for entry in value:
        if not (isinstance(entry, dict) and _is_int(entry.get("step")) and isinstance(entry.get("epoch"), (int, float))
                and not isinstance(entry.get("epoch"), bool) and isinstance(entry.get("changes"), dict)):
            raise RunError(why)
        pairs = entry["changes"]
        if not all(isinstance(k, str) and isinstance(v, list) and len(v) == 2 for k, v in pairs.items()):
            raise RunError(why)
        out.append({"step": entry["step"], "epoch": float(entry["epoch"]), "changes": dict(pairs)})
    return out


def list_runs(root: str | os.PathLike) -> tuple[list[RunRecord], list[str]]:
    """Every run in ``root`` (oldest first) and, for each folder that could not be read, why."""
    root = Path(root)
    records, problems = [], []
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{root}: the runs could not be listed ({exc.strerror or exc})"]
    for folder in folders:
        if not (folder / "summary.json").exists():
            continue
        try:
            records.append(read_run(folder))
        except RunError as exc:
            problems.append(str(exc))
    records.sort(key=lambda r: (r.created or "", r.folder_name))
    return records, problems


def run_folders(root: str | os.PathLike) -> list[Path]:
    """The folders in ``root`` that hold a run (a ``summary.json``), by name; none when ``root`` cannot be listed."""
    try:
        return sorted(p for p in Path(root).iterdir()
                      if not p.name.startswith(".") and p.is_dir() and (p / "summary.json").exists())
    except OSError:
        return []


class RunFollower:
    """Follows one run folder that another process may be writing: :meth:`poll` reads it again when it changed.

    A poll looks at the files' sizes and times first (a few ``stat`` calls) and reads the folder only when one
    moved, or when a run that said it was running may have lost its writer. It never waits and never blocks the
    writer: the writer replaces ``summary.json`` and ``project.json`` atomically and appends whole rows to
    ``metrics.csv``, and :func:`read_run` leaves out a row still being written. A folder not readable yet (the
    writer is setting it up) or no longer (deleted) is no answer, with the reason in :attr:`problem`.
    """

    FILES = ("summary.json", "metrics.csv", "project.json")

    def __init__(self, folder: str | os.PathLike, record: RunRecord | None = None) -> None:
        """``record``: the run as just read (by :func:`list_runs`, say), so that a finished run is not read again."""
        self.folder = Path(folder)
        self.record: RunRecord | None = None
        self.problem = ""
        self._seen: tuple | None = None
        if record is not None and record.status != "running":
            # NOTE: a run still being written is read again at the first poll: it may have moved since
            self.record, self._seen = record, self._signature()

    def poll(self) -> RunRecord | None:
        """The run as it stands when it changed since the last poll (the first poll reads it), else None."""
        seen = self._signature()
        if seen == self._seen:
            return None
        try:
            record = read_run(self.folder)
        except RunError as exc:
            self.problem = str(exc)
            return None  # NOTE: _seen is left as it was, so the next poll tries again
        self.record, self.problem = record, ""
        self._seen = (*seen[:-1], _writer_alive(self.folder) if self.live else None)
        return record

    @property
    def live(self) -> bool:
        """Whether the run was being written at the last poll that read it."""
        return self.record is not None and self.record.status == "running"

    def _signature(self) -> tuple:
        marks = []
        for name in self.FILES:
            try:
                st = os.stat(self.folder / name)
                marks.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                marks.append(None)
        # NOTE: a writer killed mid-run changes no file: only its lock tells that it is gone
        alive = _writer_alive(self.folder) if self.live else None
        return (*marks, alive)


def checkpoint_epochs(folder: str | os.PathLike) -> list[int]:
    """The epochs a run can be forked from (its kept checkpoints), ascending."""
    keep = Path(folder) / "checkpoints"
    epochs = {_checkpoint_epoch(f) for f in keep.glob("epoch-*.pt")} if keep.is_dir() else set()
    return sorted(e for e in epochs if e is not None)


def find_checkpoint(path: str | os.PathLike, which: str = "best", epoch: int | None = None) -> Path:
    """The checkpoint file of a run folder (``best``, else ``last``; or one ``epoch``), or ``path`` if it is a file.

    Raises:
        RunError: there is no such checkpoint.
    """
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise RunError(f"{p}: no such run folder or checkpoint file")
    if epoch is not None:
        f = p / "checkpoints" / _CHECKPOINT_NAME.format(epoch)
        if f.is_file():
            return f
        raise RunError(f"{p.name}: no checkpoint of epoch {epoch} was kept (kept: "
                       f"{', '.join(map(str, checkpoint_epochs(p))) or 'none'})")
    for name in (("best.pt", "last.pt") if which == "best" else ("last.pt",)):
        if (p / name).is_file():
            return p / name
    raise RunError(f"{p.name}: this run has no checkpoint (it ended before its first epoch finished)")


def read_batches(path: Path):
    import numpy as np

    try:
        size = path.stat().st_size
        if not stat.S_ISREG(path.stat().st_mode):
            return np.empty(0, np.float32)
        with open(path, "rb") as fh:
            raw = fh.read(size - size % 4)
    except OSError:
        return np.empty(0, np.float32)
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    """The epoch rows; a last line without its line end (a write cut short) is left out."""
    if not path.exists():
        return []
    text = _read_text(path, MAX_METRICS_BYTES)
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise RunError(f"{path.parent.name}/metrics.csv is damaged ({exc})") from None
    out = []
    for i, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise RunError(f"{path.parent.name}/metrics.csv line {i}: the number of values does not match the header")
        parsed = {k: _number(v) for k, v in row.items()}
        if not _is_int(parsed.get("epoch")):
            raise RunError(f"{path.parent.name}/metrics.csv line {i}: 'epoch' must be a whole number")
        out.append(parsed)
    return out


def _read_text(path: Path, limit: int) -> str:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise RunError(f"{path.parent.name}/{path.name} is not a regular file")
        if st.st_size > limit:
            raise RunError(f"{path.parent.name}/{path.name} is larger than {limit // 2**20} MB: not a run file")
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except FileNotFoundError:
        raise RunError(f"{path.parent}: not a training run folder ({path.name} is missing)") from None
    except OSError as exc:
        raise RunError(f"{path.parent.name}/{path.name} could not be read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RunError(f"{path.parent.name}/{path.name} is not UTF-8 text") from None


def _read_json(path: Path, limit: int) -> dict[str, Any]:
    text = _read_text(path, limit)
    try:
        doc = json.loads(text, parse_constant=lambda c: None)
    except (ValueError, RecursionError) as exc:
        # NOTE: an integer of more than 4300 digits is a plain ValueError, not a JSONDecodeError
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else (
            "nested too deeply" if isinstance(exc, RecursionError) else "a number too long to read")
        raise RunError(f"{path.parent.name}/{path.name} is damaged ({why})") from None
    if not isinstance(doc, dict):
        raise RunError(f"{path.parent.name}/{path.name}: expected an object, not {_show(doc)}")
    return doc


def _regular_dir(folder: Path) -> None:
    try:
        st = folder.stat()
    except FileNotFoundError:
        raise RunError(f"{folder}: no such run folder") from None
    except OSError as exc:
        raise RunError(f"{folder}: could not be opened ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RunError(f"{folder}: not a folder (a run is a folder with summary.json and metrics.csv)")


def _text(doc: dict, key: str, default: str, where: str) -> str:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RunError(f"{where}: '{key}' must be text, not {_show(value)}")
    return value


def _clean_label(label: Any) -> str:
    text = " ".join(str(label or "").split())[:MAX_LABEL]
    return "".join(ch for ch in text if ch.isprintable())


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _csv_line(columns: list[str], row: dict[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    return str(v)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and getattr(v, "size", 1) == 1:
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _number(text: str | None) -> Any:
    if text in ("", None):
        return None
    try:
        return float(text) if any(c in text for c in ".eEnN") else int(text)
    except ValueError:
        return text


def _checkpoint_epoch(path: Path) -> int | None:
    stem = path.stem.removeprefix("epoch-")
    return int(stem) if stem.isascii() and stem.isdigit() else None


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes the same content as ``src``: a hard link where the file system has them, else a copy."""
    tmp = dst.with_name(f".{dst.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ---------------------------------------------------------------------- the writer's lock
def _hold_lock(folder: Path) -> int | None:
    """Hold ``.lock`` in ``folder`` for as long as this process writes the run (None where locks are not had)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the status alone tells
        return None
    import time

    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    # NOTE: a reader (the window following the run) takes the lock shared for an instant to see whether a
    # writer is alive; a writer starting in that instant waits it out instead of failing.
    for _ in range(LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            time.sleep(0.02)
    os.close(fd)
    raise RunError(f"{folder.name}: another process is writing this run")


def _writer_alive(folder: Path) -> bool:
    """Whether a process holds the run's lock (it is writing the run now).

    The kernel's table of locks answers without touching the lock; only where it cannot tell (no table,
    or a file system whose locks may be held on another machine) does the reader take the lock shared for
    an instant, which a writer starting then waits out (:data:`LOCK_TRIES`).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return True
    try:
        st = os.stat(folder / ".lock")
    except OSError:
        return False
    held = _held_in_lock_table(st)
    if held is not None:
        return held
    try:
        fd = os.open(folder / ".lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _held_in_lock_table(st: os.stat_result) -> bool | None:
    """Whether ``/proc/locks`` lists a lock on the file ``st`` describes; None where it cannot say.

    NOTE: a file system with no block device behind it (major number 0: NFS, FUSE, tmpfs) may hold
    locks taken on another machine, which this machine's table never lists: there it cannot say.
    """
    if os.major(st.st_dev) == 0:
        return None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            table = fh.read(4 * 2**20)
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in table.splitlines():
        # NOTE: "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146968 0 EOF"; a waiting lock has "->" after the number
        parts = line.split()
        if len(parts) < 6 or parts[1] not in ("FLOCK", "POSIX", "OFDLCK"):
            continue
        try:
            major, minor, inode = parts[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == want:
                return True
        except ValueError:
            continue
    return False

"""Run history: the open project's runs, read from their folders, with their configs and curves.

Every run is a folder beside the project (:mod:`engine.training.runs`), so the list survives a
restart: :meth:`RunsPanel.show_runs_in` lists a project's runs folder. Ticking runs overlays their
validation loss and validation score in the compare plots, one colour per run, and lists what
differs between their settings (the learning rate, a Dropout block...), so "with and without
dropout" is one glance. A run can be renamed, deleted (after asking), shown in the file manager,
continued, forked from one of its epochs and exported (the last three are the controller's: the
panel asks for them with signals). A run folder from elsewhere (``main.py train --out DIR``, a
cluster) opens with :meth:`RunsPanel.open_folder`.

The dock follows runs that another process writes (``main.py train``, a training package's ``train.py`` under
``torchrun``, the window's own child): every :data:`FOLLOW_MS` it looks at the listed runs' files and reads a
folder again only when it changed (:class:`~engine.training.runs.RunFollower`), and a new run folder in the
project's runs folder is listed as it appears. Reading never takes the writer's lock or waits for it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QFile, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from designer.file_ops import dialog_folder
from designer.plaintext import as_plain, escape_rich
from designer.training.dashboard import EMA_BETA, format_metric, metric_title
from designer.training.change_marks import ChangeMarks
from designer.training.plots import RUN_COLORS, make_plot, style_plot
from designer.training.sweep_view import SweepView, sweep_about, sweep_texts
from engine.errors import NetDesignerError
from engine.tasks import head_specs
from engine.training.live import changes_text, short_name, values_text
from engine.training.runs import (
    RunFollower,
    RunRecord,
    find_checkpoint,
    list_runs,
    read_run,
    rename_run,
    run_folders,
)

__all__ = ["RunEntry", "RunsPanel", "describe", "differences"]

#: the output blocks' main validation scores, as they declare them: a run's score is the first it has
MAIN_METRICS = tuple(dict.fromkeys(f"val_{h.main}" for h in head_specs().values()))
#: what the Runs dock's loss plot can compare: (title, key)
LOSS_KINDS = (("Validation loss", "val"), ("Training loss per epoch", "train"),
              ("Training loss per batch (smoothed)", "batch"))
_ENTRY = Qt.ItemDataRole.UserRole
#: how often the dock looks for runs that moved (another process writing them): a new epoch shows within 2 s
FOLLOW_MS = 1000
_COMPARED_TRAINING = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size", "epochs",
                      "schedule", "early_stopping_patience", "seed")
_COMPARED_DATA = ("dataset", "samples", "noise", "val_fraction", "test_fraction", "normalize", "augment")


@dataclass
class RunEntry:
    """One run: its record (config snapshot, history, summary, folder) and how it ended."""

    record: RunRecord
    label: str = ""  # short: "Run 3", or the folder's name
    outcome: str = "finished"  # finished, stopped, early stop, failed, interrupted, running or opened
    batch_losses: np.ndarray | None = None
    message: str = ""
    colour: str = RUN_COLORS[0]
    extra: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] | None = None  # the trained state_dict or checkpoint (CPU tensors), when in memory

    @classmethod
    def from_record(cls, record: RunRecord, outcome: str | None = None) -> RunEntry:
        """An entry for a run read from its folder."""
        return cls(record, label=record.label, outcome=outcome or record.status, message=record.message)

    @property
    def name(self) -> str:
        return self.label or self.record.label or self.record.name

    @property
    def path(self) -> Path | None:
        return self.record.path

    def load_weights(self) -> dict[str, Any] | None:
        """The run's trained weights: in memory, else its best (or last) checkpoint; None when it has none."""
        if self.weights is None and self.path is not None:
            from engine.export import read_weights_file

            try:
                self.weights = read_weights_file(find_checkpoint(self.path, which="best"))
            except NetDesignerError:
                return None
        return self.weights

    def lineage(self) -> str:
        """``from Run 1 @ epoch 3`` for a fork (the parent's folder name when it is not listed)."""
        parent = self.record.parent
        return f"from {parent['run']} @ epoch {parent['epoch']}" if parent else ""

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.record.history

    def metric_key(self) -> str | None:
        """The run's main validation score (accuracy, R², IoU...), or another val_ metric."""
        keys = [k for row in self.history for k in row if k.startswith("val_") and k != "val_loss"]
        for key in MAIN_METRICS:
            if key in keys:
                return key
        return keys[0] if keys else None

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [(r.get("epoch"), r.get(key)) for r in self.history]
        pts = [(float(e), float(v)) for e, v in rows if _finite(e) and _finite(v)]
        if not pts:
            return np.empty(0), np.empty(0)
        a = np.asarray(pts)
        return a[:, 0], a[:, 1]

    def score_text(self) -> str:
        summary = self.record.summary
        if "mean" in summary:  # a cross-validation
            key = summary.get("main_metric")
            mean, std = (summary.get("mean") or {}).get(key), (summary.get("std") or {}).get(key)
            if mean is None:
                return f"{summary.get('k', '?')}-fold: no fold finished"
            return f"{summary.get('k', '?')}-fold val {metric_title(key)} {mean:.3f} ± {std:.3f}"
        test = summary.get("test") or {}
        key = self.metric_key()
        short = key.removeprefix("val_") if key else next(iter(test), None)  # NOTE: no validation split: a refit
        if short and short in test:
            return f"test {metric_title(short)} {format_metric(short, test[short])}"
        if self.history and key:
            return f"val {metric_title(key)} {format_metric(key, self.history[-1].get(key))}"
        return ""


def _folds_about(summary: dict[str, Any]) -> list[str]:
    """A cross-validation's lines: its mean ± std, then each fold's validation and test scores."""
    key = summary.get("main_metric") or "val_loss"
    short = key.removeprefix("val_")
    mean, std = (summary.get("mean") or {}).get(key), (summary.get("std") or {}).get(key, 0.0)
    head = f"{summary.get('k', '?')}-fold cross-validation: "
    score = f"validation {metric_title(key)} {mean:.3f} ± {std:.3f}" if mean is not None else "no fold finished"
    lines = [head + score]
    for f in summary.get("folds") or ():
        val, test = (f.get("val") or {}).get(key), (f.get("test") or {}).get(short)
        if f.get("stopped") or val is None:
            lines.append(f"fold {f.get('fold')}: stopped before it finished")
            continue
        line = f"fold {f.get('fold')}: validation {metric_title(key)} {val:.3f}"
        if test is not None:
            line += f", test {format_metric(short, test)}"
        lines.append(line)
    return lines


def batch_series(e: RunEntry) -> tuple[np.ndarray, np.ndarray]:
    """Every batch's training loss, smoothed as the dashboard smooths it, against epochs.

    The epoch a batch belongs to comes from the ``step`` each epoch ended at (metrics.csv), so a run
    whose batch size changed (a fork) is placed right; without steps, batches spread evenly over epochs.
    """
    losses = e.record.batch_losses() if e.path is not None else e.batch_losses
    if losses is None or not len(losses):
        return np.empty(0), np.empty(0)
    losses = np.asarray(losses, dtype=np.float64)
    steps = np.arange(1, len(losses) + 1, dtype=np.float64)
    ends = [(float(r["step"]), float(r["epoch"])) for r in e.history
            if _finite(r.get("step")) and _finite(r.get("epoch"))]
    if ends:
        marks = np.asarray([(0.0, 0.0)] + ends)
        x = np.interp(steps, marks[:, 0], marks[:, 1], right=np.nan)
        per = (marks[-1, 1] - marks[-2, 1]) / max(marks[-1, 0] - marks[-2, 0], 1.0) if len(marks) > 1 else 0.0
        beyond = np.isnan(x)  # NOTE: an epoch cut short by Stop or a crash: at the last epoch's pace
        x[beyond] = marks[-1, 1] + (steps[beyond] - marks[-1, 0]) * per
    else:
        epochs = max(len(e.history), 1)
        x = steps * epochs / len(losses)
    return x, _smooth(losses)


def _smooth(values: np.ndarray) -> np.ndarray:
    """Exponential moving average, bias-corrected (the dashboard's :data:`EMA_BETA`); NaN and inf skipped."""
    out = np.empty_like(values)
    ema, k = 0.0, 0
    for i, v in enumerate(values):
        if math.isfinite(v):
            ema = EMA_BETA * ema + (1 - EMA_BETA) * v
            k += 1
        out[i] = ema / (1 - EMA_BETA**k) if k else math.nan
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _blocks(project: dict[str, Any]) -> Counter:
    nodes = (project.get("graph") or {}).get("nodes") or []
    return Counter(str(n.get("type")) for n in nodes if isinstance(n, dict))


def describe(project: dict[str, Any]) -> str:
    """A few lines on a run's settings, for a tooltip or the details line."""
    t, d = project.get("training") or {}, project.get("data") or {}
    blocks = _blocks(project)
    parts = [
        f"data: {d.get('dataset', '?')}" + (f", augment {d['augment']}" if d.get("augment") else ""),
        f"optimizer: {t.get('optimizer', '?')}, lr {t.get('lr', '?')}, batch {t.get('batch_size', '?')}, "
        f"{t.get('epochs', '?')} epochs" + (f", weight decay {t['weight_decay']}" if t.get("weight_decay") else ""),
        "blocks: " + ", ".join(f"{k}×{v}" if v > 1 else k for k, v in blocks.items()),
    ]
    return "\n".join(parts)


def differences(entries: list[RunEntry]) -> list[str]:
    """What differs between the runs' settings and networks, one line per difference."""
    if len(entries) < 2:
        return []
    lines = []
    for section, keys in (("training", _COMPARED_TRAINING), ("data", _COMPARED_DATA)):
        for key in keys:
            values = [(e.record.project.get(section) or {}).get(key) for e in entries]
            if any(v != values[0] for v in values):
                lines.append(f"{key.replace('_', ' ')}: " + " vs ".join(_short(v) for v in values))
    counts = [_blocks(e.record.project) for e in entries]
    for kind in sorted(set().union(*counts)):
        numbers = [c.get(kind, 0) for c in counts]
        if any(n != numbers[0] for n in numbers):
            lines.append(f"{kind} blocks: " + " vs ".join(str(n) for n in numbers))
    for e in entries:
        lines.extend(f"{e.name}: {line}" for line in changed_while_paused(e.record, with_values=False))
    return lines


def changed_while_paused(record: RunRecord, with_values: bool = True) -> list[str]:
    """The settings a run took on while paused, one line each: ``lr changed at epoch 3.4 (0.01 → 0.001)``."""
    lines = []
    for change in record.changes:
        at = f"{change['epoch']:.2f}".rstrip("0").rstrip(".")
        for key, (old, new) in change["changes"].items():
            line = f"{short_name(key)} changed at epoch {at}"
            lines.append(f"{line} ({values_text(old, new)})" if with_values else line)
    return lines


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if v in (None, {}, []):
        return "none"
    return str(v)


class RunsPanel(QWidget):
    """The "Runs" dock: a list of runs with tick boxes and plots comparing the ticked ones.

    Signals:
        message(str): something to show in the status bar.
        continue_requested(object): Continue training… was chosen for this RunEntry.
        fork_requested(object): Fork from an epoch… was chosen for this RunEntry.
        export_requested(object): Export… was chosen for this RunEntry.
        current_changed(object): the selected RunEntry (or None) changed.
    """

    message = Signal(str)
    continue_requested = Signal(object)
    fork_requested = Signal(object)
    export_requested = Signal(object)
    current_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runs_panel")
        self._entries: dict[int, RunEntry] = {}
        self.loss_curves: dict[int, pg.PlotDataItem] = {}
        self.metric_curves: dict[int, pg.PlotDataItem] = {}
        self._counter = 0
        self.folder: Path | None = None  # the open project's runs folder
        self.busy = False  # a run is training: its folder is not to be deleted or continued
        self._followers: dict[Path, RunFollower] = {}
        self._quiet: set[Path] = set()  # the folders the window's own run may be writing (see set_busy)
        self._build()
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(FOLLOW_MS)
        self.follow_timer.timeout.connect(self.follow)
        self.follow_timer.start()
        self._update_compare()
        self._update_buttons()

    def _build(self) -> None:
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        self.hint = QLabel("Tick runs to compare them.")
        self.hint.setProperty("role", "muted")
        self.hint.setTextFormat(Qt.TextFormat.PlainText)
        col.addWidget(self.hint)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setToolTip("This project's runs; tick two or more to overlay their curves. Right-click a run "
                             "for what you can do with it")
        self.list.itemChanged.connect(lambda _item: self._update_compare())
        self.list.currentItemChanged.connect(lambda *_: self._on_current_changed())
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(lambda pos: self.menu.exec(self.list.mapToGlobal(pos)))
        col.addWidget(self.list, 1)
        self.continue_button = self._button("Continue…", "Train the selected run for more epochs, from its last "
                                            "checkpoint (optimizer and schedule as they were)", self._ask_continue)
        self.fork_button = self._button("Fork…", "Start a new run from one epoch of the selected run, with the "
                                        "Training setup's settings", self._ask_fork)
        self.export_button = self._button("Export…", "Write the selected run's model as PyTorch code with its "
                                          "trained weights", self._ask_export)
        self.menu = QMenu(self)
        self.rename_action = self.menu.addAction("Rename…", self.rename_current)
        self.delete_action = self.menu.addAction("Delete…", self.delete_current)
        self.show_action = self.menu.addAction("Show folder", self.show_current_folder)
        self.menu.addSeparator()
        for button in (self.continue_button, self.fork_button, self.export_button):
            self.menu.addAction(button.text(), button.click)
        self.menu.addSeparator()
        self.menu.addAction("Open another run folder…", self.choose_folder)
        self.more_button = QToolButton()
        self.more_button.setText("More")
        self.more_button.setToolTip("Rename, delete or show the selected run's folder; open a run folder from elsewhere")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.more_button.setMenu(self.menu)
        buttons = QHBoxLayout()
        for widget in (self.continue_button, self.fork_button, self.export_button, self.more_button):
            buttons.addWidget(widget)
        col.addLayout(buttons)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setProperty("role", "muted")
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.details)

        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        plots = QSplitter(Qt.Orientation.Horizontal)
        self.loss_plot = make_plot("Loss", "loss", legend="beside")
        self.loss_kind = QComboBox()
        for text, kind in LOSS_KINDS:
            self.loss_kind.addItem(text, kind)
        self.loss_kind.setToolTip("Which loss the left plot compares: on the validation data after each epoch, or on "
                                  "the training batches (per epoch, or every batch smoothed, against epochs, so runs "
                                  "with other batch sizes line up)")
        self.loss_kind.currentIndexChanged.connect(lambda _i: self._update_compare())
        self.metric_plot = make_plot("Validation score", "score", legend=None)  # one legend serves both
        self.marks = ChangeMarks(self.loss_plot, self.metric_plot)  # where the ticked runs changed settings
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.metric_plot)
        kind_row = QHBoxLayout()
        kind_row.addWidget(QLabel("Loss:"))
        kind_row.addWidget(self.loss_kind)
        kind_row.addStretch(1)
        rcol.addLayout(kind_row)
        rcol.addWidget(plots, 1)
        self.diff_label = QLabel()
        self.diff_label.setWordWrap(True)
        self.diff_label.setTextFormat(Qt.TextFormat.PlainText)
        self.diff_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rcol.addWidget(self.diff_label)

        # NOTE: a sweep's results take the comparison's place while the sweep is the selected run
        self.sweep_view = SweepView()
        self.sweep_view.open_requested.connect(self.open_sweep_part)
        self.right = QStackedWidget()
        self.right.addWidget(right)
        self.right.addWidget(self.sweep_view)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.addWidget(split)

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    # ------------------------------------------------------------------ runs
    @property
    def entries(self) -> list[RunEntry]:
        """Every listed run, oldest first."""
        return list(self._entries.values())

    def current(self) -> RunEntry | None:
        item = self.list.currentItem()
        return self._entries.get(item.data(_ENTRY)) if item is not None else None

    def clear(self) -> None:
        """Forget every listed run (their folders stay)."""
        self.list.blockSignals(True)
        self.list.clear()
        self.list.blockSignals(False)
        self._entries.clear()
        self._followers.clear()
        self._counter = 0
        self._update_compare()
        self._on_current_changed()

    def show_runs_in(self, folder: str | Path | None) -> list[str]:
        """List the runs in ``folder`` (a project's runs folder; None: no runs) instead of the ones shown.

        The newest two are ticked. Returns why each folder that could not be read was left out.
        """
        self.clear()
        self.folder = Path(folder) if folder is not None else None
        records, problems = list_runs(self.folder) if self.folder is not None else ([], [])
        for i, record in enumerate(records):
            self.add_run(RunEntry.from_record(record), checked=i >= len(records) - 2)
        if problems:
            self.hint.setText(f"{len(problems)} run folder(s) could not be read: " + "; ".join(problems))
        else:
            self.hint.setText("Tick runs to compare them." if records else "No runs yet: press Train (F5).")
        return problems

    def add_run(self, entry: RunEntry, checked: bool = True, select: bool = True) -> RunEntry:
        """Keep ``entry``, list it (ticked by default; made the current run unless ``select`` is False) and redraw
        the comparison. A run whose folder is listed already takes that entry's place."""
        listed = self.entry_for_folder(entry.path) if entry.path is not None else None
        if listed is not None:
            return self.replace_run(listed, entry)
        if entry.path is not None and entry.path not in self._followers:
            self._followers[entry.path] = RunFollower(entry.path, entry.record)
        key = self._counter
        entry.colour = RUN_COLORS[key % len(RUN_COLORS)]
        self._counter += 1
        self._entries[key] = entry
        item = QListWidgetItem(self._label(entry))
        item.setData(_ENTRY, key)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        item.setForeground(pg.mkColor(entry.colour))
        item.setToolTip(as_plain(self._about(entry)))  # NOTE: names and paths; a tooltip guesses its format
        self.list.blockSignals(True)
        self.list.addItem(item)
        self.list.blockSignals(False)
        if select:
            self.list.setCurrentItem(item)
        self.hint.setText("Tick runs to compare them.")
        self._update_compare()
        if entry.record.kind == "sweep":
            self._add_refit(entry, item)
        return entry

    def _add_refit(self, sweep: RunEntry, item: QListWidgetItem) -> None:
        """List a sweep's refit as a run of its own (unticked); the sweep stays selected."""
        folder = sweep.path / "refit" if sweep.path is not None else None
        if folder is None or not (folder / "summary.json").is_file() or self.entry_for_folder(folder) is not None:
            return
        try:
            self.add_run(RunEntry.from_record(read_run(folder)), checked=False)
        except NetDesignerError as exc:
            self.message.emit(f"The sweep's refit could not be read: {exc}")
        self.list.setCurrentItem(item)

    def open_sweep_part(self, folder: Path) -> RunEntry | None:
        """Select a sweep's point run (or refit) in the list, opening its folder first when it is not listed."""
        entry = self.entry_for_folder(folder)
        if entry is None:
            try:
                entry = self.open_folder(folder)
            except NetDesignerError as exc:
                QMessageBox.warning(self, "Open run folder", as_plain(exc))
                return None
        for row in range(self.list.count()):
            if self._entries.get(self.list.item(row).data(_ENTRY)) is entry:
                self.list.setCurrentRow(row)
        return entry

    def replace_run(self, old: RunEntry, new: RunEntry) -> RunEntry:
        """Show ``new`` in ``old``'s place (a run continued in its own folder), in its colour."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            key = item.data(_ENTRY)
            if self._entries.get(key) is old:
                new.colour = old.colour
                self._entries[key] = new
                self._refresh_item(item)
                self.list.setCurrentItem(item)
                self._update_compare()
                return new
        return self.add_run(new)

    def entry_for_folder(self, folder: str | Path) -> RunEntry | None:
        folder = Path(folder)
        return next((e for e in self._entries.values() if e.path is not None and e.path == folder), None)

    def _label(self, e: RunEntry) -> str:
        outcome = {"finished": "", "opened": " (folder)"}.get(e.outcome, f" ({e.outcome})")
        if e.outcome == "opened" and e.record.status != "finished":
            outcome = f" (folder, {e.record.status})"  # NOTE: a folder another process writes: "running"
        sweep = sweep_texts(e.record)
        if sweep is not None:  # NOTE: "Run 3 · Sweep: weight_decay (4 points, 5 folds)", then the choice
            return f"{e.name} · {sweep[0]}{outcome}\n{sweep[1]}"
        parent = e.record.parent
        if parent:
            origin = self._label_of_folder(parent["run"])
            outcome += f" ← {origin} @ {parent['epoch']}"
        score = e.score_text()
        return f"{e.name}{outcome}" + (f"\n{score}" if score else "")

    def _label_of_folder(self, name: str) -> str:
        for entry in self._entries.values():
            if entry.path is not None and entry.path.name == name:
                return entry.name
        return name

    def _refresh_item(self, item: QListWidgetItem) -> None:
        entry = self._entries[item.data(_ENTRY)]
        self.list.blockSignals(True)
        item.setText(self._label(entry))
        item.setToolTip(as_plain(self._about(entry)))
        self.list.blockSignals(False)

    def open_folder(self, path: str | Path) -> RunEntry:
        """Read a run folder from elsewhere and add it (followed while another process writes it); a listed one is
        selected. Raises :class:`NetDesignerError` when it is not a run folder."""
        listed = self.entry_for_folder(path)
        if listed is not None:
            self.open_sweep_part(Path(path))
            return listed
        record = read_run(path)
        return self.add_run(RunEntry(record, label=record.label or Path(path).name, outcome="opened"))

    # ------------------------------------------------------------------ following runs being written
    def follow(self) -> int:
        """Read again each listed run whose folder changed, and list new runs of the project's runs folder.

        Returns how many runs changed or appeared. A folder that cannot be read just now (a writer setting it
        up, a file replaced as it was read) is tried again at the next look.
        """
        moved, redraw = 0, False
        for key, entry in list(self._entries.items()):
            if entry.path is None or entry.path in self._quiet:
                continue
            follower = self._followers.setdefault(entry.path, RunFollower(entry.path))
            record = follower.poll()
            if record is not None and _moved(entry.record, record):
                self._take(key, entry, record)
                moved += 1
                redraw = redraw or self._is_checked(key)
        for folder in run_folders(self.folder) if self.folder is not None else ():
            if folder in self._quiet or self.entry_for_folder(folder) is not None:
                continue
            follower = self._followers.setdefault(folder, RunFollower(folder))
            record = follower.poll() or follower.record
            if record is not None:
                self.add_run(RunEntry.from_record(record), select=self.list.count() == 0)
                moved += 1
        if redraw:
            self._update_compare()
        return moved

    def _take(self, key: int, entry: RunEntry, record: RunRecord) -> None:
        """``entry`` is now as ``record`` says (a newer reading of its folder)."""
        if len(record.history) != len(entry.history) or record.status != entry.record.status:
            entry.weights = None  # NOTE: its checkpoints moved on: read them again when asked
        entry.record, entry.label = record, record.label or entry.label
        if entry.outcome != "opened":
            entry.outcome = record.status
        entry.message = record.message or entry.message
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(_ENTRY) == key:
                self._refresh_item(item)
                if item is self.list.currentItem():
                    self._update_details()
                    self._update_buttons()

    def _is_checked(self, key: int) -> bool:
        items = (self.list.item(row) for row in range(self.list.count()))
        return any(item.data(_ENTRY) == key and item.checkState() == Qt.CheckState.Checked for item in items)

    def _dialog_start(self) -> Path:
        """Where the folder dialog opens: the project's runs, else its folder, else the documents folder."""
        if self.folder is not None and self.folder.is_dir():
            return self.folder
        if self.folder is not None and self.folder.suffix == ".runs":  # NOTE: a saved project's, not made yet
            return dialog_folder(self.folder.with_suffix(".json"))
        return dialog_folder(None)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a training run folder", str(self._dialog_start()))
        if not folder:
            return
        try:
            entry = self.open_folder(folder)
        except NetDesignerError as exc:
            QMessageBox.warning(self, "Open run folder", as_plain(exc))
            return
        self.message.emit(f"Opened the run in {folder}: {len(entry.history)} epochs")

    # ------------------------------------------------------------------ what a run can do
    def rename_current(self, label: str | None = None) -> bool:
        """Give the selected run another name (asks when ``label`` is None); True when it was renamed."""
        entry = self.current()
        if entry is None:
            return False
        if label is None:
            label, ok = QInputDialog.getText(self, "Rename run", "Name of the run:", text=entry.name)
            if not ok:
                return False
        if entry.path is not None:
            try:
                rename_run(entry.path, label)
                entry.record = read_run(entry.path)
            except NetDesignerError as exc:
                QMessageBox.warning(self, "Rename run", as_plain(exc))
                return False
        entry.label = entry.record.label if entry.path is not None else label
        self._refresh_item(self.list.currentItem())
        self._update_compare()
        return True

    def delete_current(self, ask: bool = True) -> bool:
        """Delete the selected run and its folder, after asking; True when it is gone."""
        entry, item = self.current(), self.list.currentItem()
        if entry is None:
            return False
        if entry.outcome == "running":
            QMessageBox.information(self, "Delete run", "This run is training: stop it first.")
            return False
        if ask and entry.path is not None:
            answer = QMessageBox.question(
                self, "Delete run", as_plain(
                    f"Delete “{entry.name}” and its folder?\n{entry.path}\n\nIts checkpoints and curves go to the "
                    "trash where the system has one, else they are deleted for good."
                ),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        if entry.path is not None and entry.outcome != "opened":
            try:
                _remove_folder(entry.path)
            except OSError as exc:
                why = f"{entry.path} could not be deleted: {exc.strerror or exc}"
                QMessageBox.warning(self, "Delete run", as_plain(why))
                return False
        self._entries.pop(item.data(_ENTRY), None)
        self.list.takeItem(self.list.row(item))
        if entry.record.kind == "sweep" and entry.path is not None and entry.outcome != "opened":
            self._forget_inside(entry.path)  # NOTE: its refit and opened points went with its folder
        self._update_compare()
        self.message.emit(f"Deleted {entry.name}")
        return True

    def _forget_inside(self, folder: Path) -> None:
        """Unlist the runs whose folders lay inside ``folder`` (a deleted sweep's refit and points)."""
        for row in reversed(range(self.list.count())):
            key = self.list.item(row).data(_ENTRY)
            path = self._entries[key].path
            if path is not None and folder in path.parents:
                self._entries.pop(key)
                self.list.takeItem(row)

    def show_current_folder(self) -> bool:
        entry = self.current()
        if entry is None or entry.path is None:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.path)))

    def _ask_continue(self) -> None:
        entry = self.current()
        if entry is not None:
            self.continue_requested.emit(entry)

    def _ask_fork(self) -> None:
        entry = self.current()
        if entry is not None:
            self.fork_requested.emit(entry)

    def _ask_export(self) -> None:
        entry = self.current()
        if entry is not None:
            self.export_requested.emit(entry)

    def set_busy(self, busy: bool) -> None:
        """A run is training (True): continuing, forking and deleting wait until it ends.

        NOTE: the window's own run is not followed (its dashboard shows it, and the controller lists it when it
        ends): while busy, the folders already in the runs folder (the run's, made just before) and the runs
        not being written then are left alone; a run another process starts meanwhile is still followed.
        """
        self.busy = busy
        self._quiet = set()
        if busy:
            self._quiet = {e.path for e in self._entries.values()
                           if e.path is not None and e.record.status != "running"}
            try:
                self._quiet |= {p for p in self.folder.iterdir() if p.is_dir()} if self.folder is not None else set()
            except OSError:
                pass  # NOTE: no runs folder yet: nothing of the window's to leave alone
        self._update_buttons()

    def _on_current_changed(self) -> None:
        self._update_details()
        self._update_buttons()
        entry = self.current()
        is_sweep = entry is not None and entry.record.kind == "sweep"
        if is_sweep:
            self.sweep_view.show_sweep(entry.record)
        self.right.setCurrentWidget(self.sweep_view if is_sweep else self.right.widget(0))
        self.current_changed.emit(self.current())

    def _update_buttons(self) -> None:
        entry = self.current()
        on_disk = entry is not None and entry.path is not None
        checkpoints = on_disk and (entry.path / "last.pt").is_file()
        for widget, ok in ((self.continue_button, checkpoints and entry.outcome not in ("opened", "running")),
                           (self.fork_button, checkpoints),
                           (self.export_button, entry is not None and entry.record.kind != "sweep"),
                           (self.rename_action, on_disk), (self.delete_action, entry is not None),
                           (self.show_action, on_disk)):
            widget.setEnabled(bool(ok) and not (self.busy and widget is not self.show_action))

    def checked_entries(self) -> list[RunEntry]:
        out = []
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(self._entries[item.data(_ENTRY)])
        return out

    def set_checked(self, entries: list[RunEntry]) -> None:
        """Tick exactly these runs."""
        wanted = {id(e) for e in entries}
        self.list.blockSignals(True)
        for row in range(self.list.count()):
            item = self.list.item(row)
            on = id(self._entries[item.data(_ENTRY)]) in wanted
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._update_compare()

    # ------------------------------------------------------------------ drawing
    def _update_compare(self) -> None:
        for plot, curves in ((self.loss_plot, self.loss_curves), (self.metric_plot, self.metric_curves)):
            item = plot.getPlotItem()
            for curve in curves.values():
                item.removeItem(curve)
            curves.clear()
        chosen = self.checked_entries()
        self.marks.clear()
        for e in chosen:
            for change in e.record.changes:
                self.marks.add(change["epoch"], changes_text(change["changes"]), e.colour)
        self.loss_plot.getPlotItem().setTitle(self.loss_kind.currentText(), size="10pt")
        metric_names = set()
        for e in chosen:
            key = id(e)
            pen = pg.mkPen(e.colour, width=2)
            style = dict(pen=pen, symbol="o", symbolSize=4, symbolBrush=e.colour, symbolPen=None, antialias=True)
            x, y = self._loss_series(e)
            name = escape_rich(e.name)  # NOTE: legends, titles and axis labels are HTML
            if self.loss_kind.currentData() == "batch":
                style = dict(pen=pen, antialias=True)
            self.loss_curves[key] = self.loss_plot.getPlotItem().plot(x, y, name=name, **style)
            mk = e.metric_key()
            if mk:
                metric_names.add(metric_title(mk))
                mx, my = e.series(mk)
                self.metric_curves[key] = self.metric_plot.getPlotItem().plot(mx, my, name=name, **style)
        title = " / ".join(sorted(metric_names)) or "score"
        self.metric_plot.getPlotItem().setTitle(f"Validation {escape_rich(title)}", size="10pt")
        self.metric_plot.getPlotItem().setLabel("left", escape_rich(title))
        lines = differences(chosen)
        if len(chosen) < 2:
            self.diff_label.setText("Tick two or more runs to see what differs between them.")
        elif lines:
            self.diff_label.setText("Differences: " + "; ".join(lines))
        else:
            self.diff_label.setText("These runs have the same settings and network.")
        style_plot(self.loss_plot)
        style_plot(self.metric_plot)

    def _loss_series(self, e: RunEntry) -> tuple[np.ndarray, np.ndarray]:
        """The run's loss the selector asks for, against epochs."""
        kind = self.loss_kind.currentData()
        if kind == "batch":
            return batch_series(e)
        x, y = e.series("val_loss" if kind == "val" else "train_loss")
        if kind == "val" and not x.size:
            x, y = e.series("train_loss")
        return x, y

    def _update_details(self) -> None:
        item = self.list.currentItem()
        if item is None:
            self.details.clear()
            return
        self.details.setText(self._about(self._entries[item.data(_ENTRY)]))

    @staticmethod
    def _about(e: RunEntry) -> str:
        lines = [f"{e.name}: {e.record.name or 'Untitled'}", describe(e.record.project)]
        if e.record.kind == "sweep":
            lines.extend(sweep_about(e.record))
        elif "mean" in e.record.summary:
            lines.extend(_folds_about(e.record.summary))
        lines.extend(changed_while_paused(e.record))
        if e.record.path:
            lines.append(f"folder: {e.record.path}")
        if e.message:
            lines.append(e.message)
        return "\n".join(lines)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            style_plot(self.loss_plot)
            style_plot(self.metric_plot)


def _moved(old: RunRecord, new: RunRecord) -> bool:
    """Whether a newer reading of a run differs in what the dock shows."""
    return (old.status, old.label, old.message, old.summary, old.changes, old.parent, old.history) != (
        new.status, new.label, new.message, new.summary, new.changes, new.parent, new.history)


def _remove_folder(path: Path) -> None:
    """Move a run folder to the trash where the system has one; otherwise delete it."""
    import shutil

    if not QFile.moveToTrash(str(path)) and path.exists():
        shutil.rmtree(path)

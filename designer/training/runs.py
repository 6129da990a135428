"""Run history: every run of this session (and any run folder opened) with its config and curves.

Ticking runs in the list overlays their validation loss and validation score in the
compare plots, one colour per run, and lists what differs between their settings
(the learning rate, a Dropout block...), so "with and without dropout" is one glance.
A folder written by ``python main.py train --out DIR`` opens with :meth:`RunsPanel.open_folder`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from designer.training.dashboard import format_metric, metric_title
from designer.training.plots import RUN_COLORS, make_plot, style_plot
from engine.errors import NetDesignerError
from engine.training.runs import RunRecord, read_run

__all__ = ["RunEntry", "RunsPanel", "describe", "differences"]

MAIN_METRICS = ("val_accuracy", "val_r2", "val_iou", "val_box_iou")
_ENTRY = Qt.ItemDataRole.UserRole
_COMPARED_TRAINING = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size", "epochs",
                      "schedule", "early_stopping_patience", "seed")
_COMPARED_DATA = ("dataset", "samples", "noise", "val_fraction", "test_fraction", "normalize", "augment")


@dataclass
class RunEntry:
    """One run kept in memory: its record (config snapshot, history, summary) and how it ended."""

    record: RunRecord
    label: str = ""  # short: "Run 3", or the folder's name
    outcome: str = "finished"  # finished, stopped, early stop, failed or opened (a run folder)
    batch_losses: np.ndarray | None = None
    message: str = ""
    colour: str = RUN_COLORS[0]
    extra: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] | None = None  # the trained state_dict (CPU tensors); None for an opened folder

    @property
    def name(self) -> str:
        return self.label or self.record.name

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
        short = key.removeprefix("val_") if key else None
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
    """

    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runs_panel")
        self._entries: dict[int, RunEntry] = {}
        self.loss_curves: dict[int, pg.PlotDataItem] = {}
        self.metric_curves: dict[int, pg.PlotDataItem] = {}
        self._counter = 0
        self._build()
        self._update_compare()

    def _build(self) -> None:
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        hint = QLabel("Tick runs to compare them.")
        hint.setProperty("role", "muted")
        col.addWidget(hint)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setToolTip("Every run of this session; tick two or more to overlay their curves")
        self.list.itemChanged.connect(lambda _item: self._update_compare())
        self.list.currentItemChanged.connect(lambda *_: self._update_details())
        col.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open run folder…")
        self.open_button.setToolTip("Open a run made by 'python main.py train --out DIR' (metrics.csv and summary.json)")
        self.open_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget the selected run (its files, if any, stay on disk)")
        self.remove_button.clicked.connect(self.remove_current)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.remove_button)
        col.addLayout(buttons)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setProperty("role", "muted")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.details)

        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        plots = QSplitter(Qt.Orientation.Horizontal)
        self.loss_plot = make_plot("Validation loss", "loss", legend="beside")
        self.metric_plot = make_plot("Validation score", "score", legend=None)  # one legend serves both
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.metric_plot)
        rcol.addWidget(plots, 1)
        self.diff_label = QLabel()
        self.diff_label.setWordWrap(True)
        self.diff_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rcol.addWidget(self.diff_label)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.addWidget(split)

    # ------------------------------------------------------------------ runs
    @property
    def entries(self) -> list[RunEntry]:
        """Every kept run, oldest first."""
        return list(self._entries.values())

    def add_run(self, entry: RunEntry, checked: bool = True) -> RunEntry:
        """Keep ``entry``, list it (ticked by default) and redraw the comparison."""
        key = self._counter
        entry.colour = RUN_COLORS[key % len(RUN_COLORS)]
        self._counter += 1
        self._entries[key] = entry
        item = QListWidgetItem(self._label(entry))
        item.setData(_ENTRY, key)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        item.setForeground(pg.mkColor(entry.colour))
        item.setToolTip(self._about(entry))
        self.list.blockSignals(True)
        self.list.addItem(item)
        self.list.blockSignals(False)
        self.list.setCurrentItem(item)
        self._update_compare()
        return entry

    def next_label(self) -> str:
        """The short name the next run gets ("Run 3")."""
        return f"Run {self._counter + 1}"

    def _label(self, e: RunEntry) -> str:
        outcome = {"finished": "", "opened": " (folder)"}.get(e.outcome, f" ({e.outcome})")
        score = e.score_text()
        return f"{e.name}{outcome}" + (f"\n{score}" if score else "")

    def open_folder(self, path: str | Path) -> RunEntry:
        """Read a CLI run folder and add it. Raises :class:`NetDesignerError` when it is not one."""
        record = read_run(path)
        return self.add_run(RunEntry(record, label=Path(path).name, outcome="opened"))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a training run folder")
        if not folder:
            return
        try:
            entry = self.open_folder(folder)
        except NetDesignerError as exc:
            QMessageBox.warning(self, "Open run folder", str(exc))
            return
        self.message.emit(f"Opened the run in {folder}: {len(entry.history)} epochs")

    def remove_current(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        self._entries.pop(item.data(_ENTRY), None)
        self.list.takeItem(self.list.row(item))
        self._update_compare()

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
        metric_names = set()
        for e in chosen:
            key = id(e)
            pen = pg.mkPen(e.colour, width=2)
            style = dict(pen=pen, symbol="o", symbolSize=4, symbolBrush=e.colour, symbolPen=None, antialias=True)
            x, y = e.series("val_loss")
            if not x.size:
                x, y = e.series("train_loss")
            self.loss_curves[key] = self.loss_plot.getPlotItem().plot(x, y, name=e.name, **style)
            mk = e.metric_key()
            if mk:
                metric_names.add(metric_title(mk))
                mx, my = e.series(mk)
                self.metric_curves[key] = self.metric_plot.getPlotItem().plot(mx, my, name=e.name, **style)
        title = " / ".join(sorted(metric_names)) or "score"
        self.metric_plot.getPlotItem().setTitle(f"Validation {title}", size="10pt")
        self.metric_plot.getPlotItem().setLabel("left", title)
        lines = differences(chosen)
        if len(chosen) < 2:
            self.diff_label.setText("Tick two or more runs to see what differs between them.")
        elif lines:
            self.diff_label.setText("Differences: " + "; ".join(lines))
        else:
            self.diff_label.setText("These runs have the same settings and network.")
        style_plot(self.loss_plot)
        style_plot(self.metric_plot)

    def _update_details(self) -> None:
        item = self.list.currentItem()
        if item is None:
            self.details.clear()
            return
        self.details.setText(self._about(self._entries[item.data(_ENTRY)]))

    @staticmethod
    def _about(e: RunEntry) -> str:
        lines = [f"{e.name}: {e.record.name or 'Untitled'}", describe(e.record.project)]
        if "mean" in e.record.summary:
            lines.extend(_folds_about(e.record.summary))
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

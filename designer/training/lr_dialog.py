"""Train → Find learning rate…: the loss against an exponentially growing rate, and one click to use a suggestion.

The search (:func:`engine.training.lr_finder.find_lr`) trains a throw-away copy of the network for
about a hundred batches in a worker thread (:mod:`designer.workers`); the dialog then plots the
smoothed loss against the rate on a log axis with the two suggestions marked. Nothing is applied
silently: *Use* sets the project's learning rate as one undoable step.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from designer.training.commands import SetConfigCommand
from designer.training.plots import make_plot, style_plot
from designer.workers import WORKERS, Job, next_number
from engine.project import project_to_dict

__all__ = ["LrFinderDialog", "STEPS"]

STEPS = 100
_MARKS = {"valley": ("#2a9d4b", 0.95), "steepest": ("#d9822b", 0.8)}  # colour, label height (share of the plot)


class LrFinderDialog(QDialog):
    """Runs the learning-rate search on the open project and offers its suggestions.

    Signals:
        searched(str): the search has ended and is drawn: "done", "failed" or "stopped".
    """

    searched = Signal(str)

    def __init__(self, document, base_dir: Path | None, parent: QWidget | None = None, steps: int = STEPS) -> None:
        super().__init__(parent)
        self.setWindowTitle("Find learning rate")
        self.setObjectName("lr_finder")
        self.resize(720, 480)
        self.document = document
        self.result = None
        self._stop = threading.Event()
        self._job: Job | None = None
        self.about = QLabel(
            f"Training a copy of the network for up to {steps} batches while the learning rate grows from 1e-7 to 10. "
            "Pick a rate where the loss still falls steeply, before it turns up."
        )
        self.about.setWordWrap(True)
        self.about.setTextFormat(Qt.TextFormat.PlainText)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.plot = make_plot("Loss against learning rate", "loss (smoothed)", x_label="learning rate", legend="beside")
        self.plot.getPlotItem().setLogMode(x=True, y=False)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for key in ("valley", "steepest"):
            button = QPushButton(f"Use {key}")
            button.setEnabled(False)
            button.clicked.connect(lambda _checked=False, k=key: self.use(k))
            self.buttons[key] = button
            row.addWidget(button)
        row.addStretch(1)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self._stop.set)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        row.addWidget(self.stop_button)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.about)
        layout.addWidget(self.busy)
        layout.addWidget(self.plot, 1)
        layout.addLayout(row)
        WORKERS.joined.connect(self._on_joined)
        self._connected = True
        self._start(base_dir, steps)

    # ------------------------------------------------------------------ the search
    def _start(self, base_dir: Path | None, steps: int) -> None:
        from engine.training.lr_finder import find_lr

        snapshot = copy.deepcopy(project_to_dict(self.document.project))
        stop = self._stop
        job = Job(next_number(), "lr", None, lambda: find_lr(snapshot, base_dir=base_dir, steps=steps,
                                                               should_stop=stop.is_set), kind="lr")
        self._job = job
        WORKERS.start(job)

    def is_searching(self) -> bool:
        return self._job is not None

    def _on_joined(self, number: int) -> None:
        job = self._job
        if job is None or job.number != number:
            return
        self._job = None
        self.busy.hide()
        self.stop_button.setEnabled(False)
        status, value = job.outcome or ("failed", "no result")
        if status != "done":
            self.about.setText(f"The search could not run: {value}")
            self.searched.emit("failed")
            return
        self.result = value
        self._draw(value)
        self.searched.emit("stopped" if value.stopped == "stopped" else "done")

    def _draw(self, found: Any) -> None:
        item = self.plot.getPlotItem()
        if len(found.lrs) == 0:
            self.about.setText("The search stopped before its first batch: nothing to show.")
            return
        item.plot(found.lrs, found.losses, pen=pg.mkPen((150, 150, 150, 90), width=1), name="loss per batch")
        item.plot(found.lrs, found.smoothed, pen=pg.mkPen("#3b6fb6", width=2), name="smoothed")
        lows = [v for v in found.smoothed if np.isfinite(v)]
        if lows:
            top = min(max(lows), 3 * min(lows) + 1e-9)
            item.setYRange(min(lows) * 0.95, top * 1.05, padding=0)
        for key, (colour, height) in _MARKS.items():
            lr = getattr(found, key)
            if lr is None:
                continue
            line = pg.InfiniteLine(pos=np.log10(lr), angle=90, pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine),
                                   label=f"{key} {lr:.1e}", labelOpts={"position": height, "color": colour,
                                                                        "anchors": [(0, 0.5), (0, 0.5)]})
            item.addItem(line)
            self.buttons[key].setText(f"Use {key} ({lr:.1e})")
            self.buttons[key].setEnabled(True)
        why = {"diverged": "it stopped when the loss blew up", "stopped": "you stopped it"}.get(found.stopped, "")
        self.about.setText(
            f"{len(found.lrs)} batches of {found.info.get('batch_size')} with {found.info.get('optimizer')}"
            + (f"; {why}" if why else "") + ". The valley is a cautious choice, the steepest point a bolder one. "
            f"Now: {self.document.project.training.lr:g}."
        )
        style_plot(self.plot)

    # ------------------------------------------------------------------ choosing
    def use(self, key: str) -> float | None:
        """Set the project's learning rate to the ``key`` suggestion, as one undo step; returns it."""
        lr = getattr(self.result, key, None) if self.result is not None else None
        if lr is None:
            return None
        value = float(f"{lr:.2g}")
        self.document.push(SetConfigCommand(self.document, "training", {"lr": value},
                                            f"Set the learning rate to {value:g} (learning-rate finder)"))
        self.accept()
        return value

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        """Closing stops a search that still runs and waits for its thread."""
        self._stop.set()
        if self._job is not None:
            WORKERS.join(self._job.number)
        if self._connected:
            self._connected = False
            WORKERS.joined.disconnect(self._on_joined)
        super().done(result)

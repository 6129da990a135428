"""What the plots and the dashboard show of a run's pause: marks where settings changed, and the pause bar.

:class:`ChangeMarks` draws a vertical line with its label ("lr 0.01 → 0.001") at the epoch where a
paused run took on new settings, on every plot it is given: the live dashboard's loss and score
plots, and the Runs dock's, for a stored run (its ``summary.json`` keeps the changes).
:class:`PauseBar` sits under the dashboard's controls while a run is paused: it offers to change
the network itself, and then to apply that change as a new run from the paused weights.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

from designer import theme
from designer.plaintext import plain_label
from engine.training.live import changes_text

__all__ = ["APPLY_TEXT", "ChangeMarks", "PauseBar", "mark_label"]

#: The button that starts a new run from the paused weights with the changed network.
APPLY_TEXT = "Apply the network change: a new run from these weights"
EDIT_TEXT = "Change the network…"


def mark_label(changes: dict) -> str:
    """A mark's label: the changes of one resume in words (``lr 0.01 → 0.001, batch size 64 → 32``)."""
    return changes_text(changes)


class ChangeMarks:
    """Vertical lines with labels at the epochs where settings changed, on one or more plots."""

    def __init__(self, *plots: pg.PlotWidget) -> None:
        self.plots = plots
        self.lines: list[tuple[pg.PlotWidget, pg.InfiniteLine]] = []
        self.marks: list[tuple[float, str]] = []  # (epoch, label), as drawn

    def add(self, epoch: float, label: str, color: str | None = None) -> None:
        """Mark ``epoch`` on every plot with ``label`` (plain text; braces are kept as they are)."""
        pen = pg.mkPen(color or theme.colors()["warning"], width=1, style=Qt.PenStyle.DashLine)
        # NOTE: pyqtgraph formats a line's label with str.format: a brace in a block's name must stay a brace
        text = label.replace("{", "{{").replace("}", "}}")
        for plot in self.plots:
            line = pg.InfiniteLine(pos=float(epoch), angle=90, movable=False, pen=pen, label=text,
                                   labelOpts={"position": 0.92, "color": color or theme.colors()["muted"],
                                              "anchors": [(0, 1), (0, 1)]})
            plot.getPlotItem().addItem(line, ignoreBounds=True)  # NOTE: a mark never widens the view
            self.lines.append((plot, line))
        self.marks.append((float(epoch), label))

    def clear(self) -> None:
        for plot, line in self.lines:
            plot.getPlotItem().removeItem(line)
        self.lines.clear()
        self.marks.clear()


class PauseBar(QWidget):
    """While a run is paused: "Change the network…", then the button that applies it as a new run.

    Signals:
        edit_requested(): the person wants to change the network of the paused run.
        apply_requested(): the person wants the changed network to start a new run from the paused weights.
    """

    edit_requested = Signal()
    apply_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pause_bar")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.text = plain_label()  # NOTE: block names
        self.text.setWordWrap(True)
        self.text.setProperty("role", "muted")
        row.addWidget(self.text, 1)
        self.edit_button = QPushButton(EDIT_TEXT)
        self.edit_button.setToolTip("Unlock the network of the paused run. A changed network cannot go on with this "
                                    "run: it starts a new run from the paused weights, keeping every block whose "
                                    "parameters still fit. Undo your changes to resume this run instead.")
        self.edit_button.clicked.connect(lambda _checked=False: self.edit_requested.emit())
        row.addWidget(self.edit_button)
        self.apply_button = QPushButton(APPLY_TEXT)
        self.apply_button.setToolTip("Stop this run and start a new one with the changed network: blocks whose "
                                     "parameters still fit keep the paused weights, the others start afresh")
        self.apply_button.clicked.connect(lambda _checked=False: self.apply_requested.emit())
        row.addWidget(self.apply_button)
        self.hide()

    def show_state(self, editing: bool, changed: bool, text: str) -> None:
        """Paused: offer to change the network (``editing`` False), or say what a change does and offer to apply it."""
        self.text.setText(text)
        self.edit_button.setVisible(not editing)
        self.apply_button.setVisible(editing)
        self.apply_button.setEnabled(changed)
        self.show()

"""Fork a run: pick one of its epochs and how long the new run trains, with the Training setup's settings.

The new run starts from the chosen epoch's checkpoint of the run (its network and weights, the
optimizer and schedule state) and trains with the settings now in the Training setup dock, so
"what if I had lowered the learning rate at epoch 5?" is one dialog. What differs from the run's
own settings is listed, so the person sees what the fork changes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.training.runs import checkpoint_epochs

__all__ = ["ForkDialog", "ask_fork", "setting_changes"]

_COMPARED = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size", "schedule", "step_size",
             "gamma", "early_stopping_patience", "restore_best", "mixed_precision")


def setting_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``lr 0.01 → 0.001``, one line per training setting that differs (epochs aside)."""
    lines = []
    for key in _COMPARED:
        old, new = before.get(key), after.get(key)
        if old != new:
            lines.append(f"{key.replace('_', ' ')} {_short(old)} → {_short(new)}")
    return lines


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class ForkDialog(QDialog):
    """Asks which epoch of ``entry`` to start from and to which epoch the fork trains."""

    def __init__(self, entry, training: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Fork {entry.name}")
        self.setObjectName("fork_run")
        self.epochs_kept = checkpoint_epochs(entry.path) if entry.path is not None else []
        self.epoch = QComboBox()
        for e in self.epochs_kept:
            self.epoch.addItem(f"epoch {e}", e)
        self.epoch.setCurrentIndex(len(self.epochs_kept) - 1)
        self.until = QSpinBox()
        self.until.setRange(1, 100_000)
        self.until.setToolTip("The fork trains until this epoch (counted from the run's start)")
        self._wanted = int(training.get("epochs") or 1)
        self.epoch.currentIndexChanged.connect(lambda _i: self._fit_until())
        self._fit_until()
        old = (entry.record.project.get("training") or {})
        changes = setting_changes(old, training)
        about = QLabel(
            "The new run starts from that epoch's weights, optimizer and schedule, and trains with the Training "
            "setup's settings: " + ("; ".join(changes) if changes else "the same as the run's (change them in "
                                     "Training setup first to try something else)") + "."
        )
        about.setTextFormat(Qt.TextFormat.PlainText)
        about.setWordWrap(True)
        self.about = about
        form = QFormLayout()
        form.addRow("Start from:", self.epoch)
        form.addRow("Train until epoch:", self.until)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Fork")
        self.ok_button.setEnabled(bool(self.epochs_kept))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(about)
        if not self.epochs_kept:
            none = QLabel("This run kept no checkpoints to fork from.")
            none.setTextFormat(Qt.TextFormat.PlainText)
            layout.addWidget(none)
        layout.addWidget(buttons)

    def _fit_until(self) -> None:
        start = self.start_epoch() or 0
        self.until.setMinimum(start + 1)
        self.until.setValue(max(start + 1, self._wanted))

    def start_epoch(self) -> int | None:
        return self.epoch.currentData()

    def answer(self) -> tuple[int, int] | None:
        start = self.start_epoch()
        return None if start is None else (int(start), int(self.until.value()))


def ask_fork(entry, training: dict[str, Any], parent: QWidget | None = None) -> tuple[int, int] | None:
    """(epoch to start from, epoch to train until), or None when cancelled."""
    dialog = ForkDialog(entry, training, parent)
    try:
        return dialog.answer() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()

"""Train → Sweep…: one or two settings with the values to try, how each point is scored, and the refit.

The settings offered are those a sweep can change in the project file (see
:mod:`engine.training.sweep_plan`): the training settings that make sense to compare, the
augmentations that apply to the network's Input, and each block's parameters
(``blocks.fc1.units``). The values are typed comma separated and checked as they are typed, with
the plan's own messages (the same words ``main.py sweep`` prints), so OK starts only a sweep the
engine takes. The answer is a :class:`SweepChoice`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from designer.training.cv_dialog import DEFAULT_FOLDS, MAX_FOLDS, fold_pool
from designer.training.options import IMAGE_AUGMENTS
from engine.config import AUGMENT_OPTIONS
from engine.project import Project, project_to_dict
from engine.training.sweep_plan import MAX_POINTS, Setting, SweepError, apply_point, parse_values, sweep_points

__all__ = ["SweepChoice", "SweepDialog", "ask_sweep", "sweep_options", "suggested_values"]

NONE_KEY = ""  # the second setting's "(none)"
MAX_RANDOM = MAX_POINTS

#: the training settings a sweep offers: key -> (title, suggested values)
TRAINING = {
    "lr": ("learning rate", "1e-4, 1e-3, 1e-2"),
    "weight_decay": ("weight decay", "0, 1e-4, 1e-3, 1e-2"),
    "momentum": ("momentum (SGD)", "0, 0.5, 0.9, 0.99"),
    "batch_size": ("batch size", "16, 32, 64, 128"),
    "epochs": ("epochs", None),
    "optimizer": ("optimizer", "sgd, adam"),
    "schedule": ("learning-rate schedule", "none, cosine"),
    "early_stopping_patience": ("early stopping patience", "0, 3, 10"),
}
#: a second value to try beside "off" for each augmentation
AUGMENT_TRIES = {"flip": "true", "shift": "0.1", "rotation": "15", "scale": "0.1", "noise": "0.05",
                 "brightness": "0.2", "contrast": "0.2", "mixup": "0.2"}


@dataclass(frozen=True)
class SweepChoice:
    """What Sweep… asked for: the settings with their values, how points are scored, the refit."""

    settings: tuple[Setting, ...]
    folds: int | None = None  # k-fold cross-validation per point; None: the validation split
    random: int | None = None  # N random points of the grid; None: all of it
    refit: bool = True
    epochs: int | None = None  # None: the project's (or each point's, when epochs is swept)

    def request(self) -> dict[str, Any]:
        """The sweep's part of a :class:`~engine.training.remote.TrainingRequest`."""
        return {"sweep": self.settings, "random": self.random, "refit": self.refit}

    @property
    def points(self) -> int:
        grid = math.prod(len(s.values) for s in self.settings)
        return min(grid, self.random) if self.random else grid


def sweep_options(project: Project) -> list[tuple[str, str]]:
    """Every setting Sweep… offers for ``project``: (key, what a person reads), training first, then blocks."""
    out = [(f"training.{name}", title) for name, (title, _) in TRAINING.items()]
    pictures = _takes_pictures(project)
    out += [(f"data.augment.{name}", f"augmentation: {name}") for name in AUGMENT_OPTIONS
            if pictures or name not in IMAGE_AUGMENTS]
    heads = sum(n.spec.role == "head" for n in project.graph.nodes.values())
    for node in project.graph.nodes.values():
        if node.spec.role == "input" or (node.spec.role == "head" and heads < 2):
            continue  # NOTE: the Input's shape is the data's; one output's loss weight changes nothing
        for param in node.spec.params:
            if param.kind != "shape" and param.applies(node.params):
                out.append((f"blocks.{node.name}.{param.name}", f"{node.name} ({node.type}): {param.title.lower()}"))
    return out


def _takes_pictures(project: Project) -> bool:
    inputs = [n for n in project.graph.nodes.values() if n.spec.role == "input"]
    return any(n.params.get("kind") != "vector" for n in inputs)


def suggested_values(project: Project, key: str) -> str:
    """Values to start from for ``key``: the course's usual grid, or the present value with a few around it."""
    section, _, name = key.partition(".")
    if section == "training":
        suggestion = TRAINING.get(name, (None, None))[1]
        if suggestion is not None:
            return suggestion
        current = getattr(project.training, name)
        return f"{max(1, current // 2)}, {current}, {current * 2}"
    if section == "data":
        return f"{'false' if name.endswith('flip') else '0'}, {AUGMENT_TRIES.get(name.rsplit('.', 1)[-1], '0.1')}"
    block, _, param_name = name.partition(".")
    node = next((n for n in project.graph.nodes.values() if n.name == block), None)
    if node is None:
        return ""
    param = next(p for p in node.spec.params if p.name == param_name)
    return _around(param, node.params.get(param_name))


def _around(param, current: Any) -> str:
    """A block parameter's present value with neighbours inside its range (or all its choices)."""
    if param.kind == "bool":
        return "false, true"
    if param.kind == "choice":
        return ", ".join(str(c) for c in param.choices)
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        return str(current)
    if param.kind == "float":
        values = [0.0, 0.25, 0.5] if param.max is not None and param.max <= 1 else [current / 2, current, current * 2]
    else:
        values = [current // 2, current, current * 2]
    inside = [v for v in values if (param.min is None or v >= param.min) and (param.max is None or v <= param.max)]
    unique = list(dict.fromkeys(f"{v:g}" if isinstance(v, float) else str(v) for v in inside))
    return ", ".join(unique) or str(current)


class SweepDialog(QDialog):
    """Asks for one or two settings with their values, k folds or the validation split, random N, refit.

    :meth:`choice` is the answer (None when cancelled); :attr:`problem` says why OK is disabled.
    """

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sweep")
        self.setObjectName("sweep")
        self.project = project
        self._base = project_to_dict(project)
        self._options = sweep_options(project)
        self.problem = ""
        self._settings: tuple[Setting, ...] = ()
        self._built = False  # NOTE: the fields' signals fire while the form is built; checks wait for all of it
        self._build()
        self._built = True
        self.keys[0].setCurrentIndex(self.keys[0].findData("training.weight_decay"))
        self._validate()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        grid = QGridLayout()
        self.keys: list[QComboBox] = []
        self.values: list[QLineEdit] = []
        for row in range(2):
            combo = QComboBox()
            if row:
                combo.addItem("(none: sweep one setting)", NONE_KEY)
            for key, title in self._options:
                combo.addItem(f"{title}  —  {key}", key)
            combo.setToolTip("The setting to try at several values; its name in the project file is after the dash "
                             "(main.py sweep --set takes the same)")
            edit = QLineEdit()
            edit.setPlaceholderText("values, separated by commas")
            edit.setToolTip("The values to try, separated by commas: numbers (1e-3 or 0.001), true/false, or words")
            combo.currentIndexChanged.connect(lambda _i, r=row: self._on_key_changed(r))
            edit.textChanged.connect(lambda _t: self._validate())
            grid.addWidget(QLabel(f"Setting {row + 1}:"), row, 0)
            grid.addWidget(combo, row, 1)
            grid.addWidget(QLabel("values:"), row, 2)
            grid.addWidget(edit, row, 3)
            self.keys.append(combo)
            self.values.append(edit)
        grid.setColumnStretch(3, 1)
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # NOTE: block names and typed values are shown as they are
        self.message.setWordWrap(True)

        self.by_folds = QRadioButton("k-fold cross-validation: the mean ± spread over k folds, k =")
        pool = fold_pool(self.project.data)
        self.k = QSpinBox()
        self.k.setRange(2, max(2, min(MAX_FOLDS, pool) if pool is not None else MAX_FOLDS))
        self.k.setValue(min(DEFAULT_FOLDS, self.k.maximum()))
        val = self.project.data.val_fraction
        self.by_split = QRadioButton(f"the validation split ({val:.0%} of the data): one run per point")
        self.by_split.setEnabled(val > 0)
        self._scoring = QButtonGroup(self)
        for button in (self.by_folds, self.by_split):
            self._scoring.addButton(button)
            button.toggled.connect(lambda _on: self._validate())
        self.by_folds.setChecked(True)
        self.k.valueChanged.connect(lambda _v: self._validate())
        self.random = QCheckBox("Only N random points of the grid, N =")
        self.random_n = QSpinBox()
        self.random_n.setRange(1, MAX_RANDOM)
        self.random_n.setValue(10)
        self.random.toggled.connect(lambda _on: self._validate())
        self.random_n.valueChanged.connect(lambda _v: self._validate())
        self.refit = QCheckBox("Refit: train the chosen setting again on training + validation data and score it "
                               "once on the test split")
        self.refit.setChecked(True)
        self.refit.toggled.connect(lambda _on: self._validate())
        self.about = QLabel()
        self.about.setTextFormat(Qt.TextFormat.PlainText)
        self.about.setWordWrap(True)
        self.about.setProperty("role", "muted")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Start sweep")
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)

        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.message)
        layout.addWidget(QLabel("Score each point by:"))
        for left, right in ((self.by_folds, self.k), (self.by_split, None), (self.random, self.random_n)):
            row = QGridLayout()
            row.addWidget(left, 0, 0)
            if right is not None:
                row.addWidget(right, 0, 1)
            row.setColumnStretch(2, 1)
            layout.addLayout(row)
        layout.addWidget(self.refit)
        layout.addWidget(self.about)
        layout.addWidget(buttons)
        self.setMinimumWidth(640)

    # ------------------------------------------------------------------ checking
    def _on_key_changed(self, row: int) -> None:
        """A setting was picked: its values start from a suggestion (typed values of another setting are replaced)."""
        key = self.keys[row].currentData()
        self.values[row].setEnabled(key != NONE_KEY)
        self.values[row].setText(suggested_values(self.project, key) if key != NONE_KEY else "")
        self._validate()

    def _validate(self) -> None:
        """Check every typed value as the engine will; OK only when all pass (the first problem is shown)."""
        if not self._built:
            return
        try:
            self._settings = self._read_settings()
            count = len(sweep_points(self._settings, self._random()))
            self.problem = ""
        except SweepError as exc:
            self._settings, self.problem, count = (), str(exc), 0
        self.ok_button.setEnabled(not self.problem)
        self.message.setText(self.problem)
        self.message.setProperty("role", "error" if self.problem else "muted")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.random_n.setEnabled(self.random.isChecked())
        self.k.setEnabled(self.by_folds.isChecked())
        self.about.setText(self._about(count) if not self.problem else "")

    def _read_settings(self) -> tuple[Setting, ...]:
        settings = []
        for combo, edit in zip(self.keys, self.values):
            key = combo.currentData()
            if key == NONE_KEY:
                continue
            if any(s.key == key for s in settings):
                raise SweepError(f"{key} is chosen twice: put all its values in the first row")
            setting = parse_values(key, edit.text())
            for value in setting.values:  # NOTE: each value as the project file would take it
                apply_point(self._base, {key: value}, source="the project")
            settings.append(setting)
        return tuple(settings)

    def _random(self) -> int | None:
        return self.random_n.value() if self.random.isChecked() else None

    def _folds(self) -> int | None:
        return self.k.value() if self.by_folds.isChecked() else None

    def _about(self, points: int) -> str:
        folds = self._folds()
        epochs = "each point's epochs" if any(s.key == "training.epochs" for s in self._settings) else (
            f"{self.project.training.epochs} epochs each")
        runs = points * (folds or 1) + (1 if self.refit.isChecked() else 0)
        what = f"{points} point{'s' if points != 1 else ''}" + (f" × {folds} folds" if folds else "")
        text = f"{what}{' + the refit' if self.refit.isChecked() else ''}: {runs} trainings of {epochs}."
        if self.refit.isChecked() and self.project.data.test_fraction <= 0:
            text += " The project keeps no test split, so the refit will have no test score."
        return text

    # ------------------------------------------------------------------ the answer
    def accept(self) -> None:
        """OK (or Enter): taken only when every value passed."""
        self._validate()
        if not self.problem:
            super().accept()

    def choice(self) -> SweepChoice | None:
        """The sweep as asked for, or None when cancelled."""
        if self.result() != QDialog.DialogCode.Accepted or not self._settings:
            return None
        return SweepChoice(self._settings, folds=self._folds(), random=self._random(), refit=self.refit.isChecked())


def ask_sweep(project: Project, parent: QWidget | None = None) -> SweepChoice | None:
    """Show the dialog (modal); the sweep to run, or None when cancelled."""
    dialog = SweepDialog(project, parent)
    try:
        dialog.exec()
        return dialog.choice()
    finally:
        dialog.deleteLater()

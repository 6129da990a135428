"""Training setup: a form over the project's data and training settings.

Every finished edit is one :class:`~designer.training.commands.SetConfigCommand`, so it
is undoable and marks the project modified; a value the engine refuses is not applied
and its reason appears in red. The form shows the project again after every undo,
redo or project change, and hides what does not apply (a file path for a built-in data
set, the image augmentations for a vector Input); a field that waits for another (momentum
without SGD) is disabled and says why on hover. The mouse wheel scrolls the form unless a
field has focus; Ctrl+Z in a field undoes the last edit. While a run locks the project the
form is disabled, says so at its top, and each field says why on hover; while a run is paused
(:meth:`TrainingConfigPanel.set_live_only`) only the settings it can take on stay editable.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from designer.device import DeviceCombo
from designer.document import Document
from designer.fields import (
    LOCK_PROPERTY,
    LOCK_REASON,
    FloatSpin,
    IntSpin,
    NoWheelCombo,
    lock_note,
    set_enabled_for,
    watch_field,
)
from designer.file_ops import dialog_folder
from designer.plaintext import plain_label
from designer.training.commands import SetConfigCommand
from designer.training.options import (
    AUGMENT_FIELDS,
    CAM_TITLES,
    DATA_FILES,
    DATASET_TITLES,
    FUNCTION_TITLES,
    GENERATED,
    IMAGE_AUGMENTS,
    IMAGE_DATASETS,
    KNOWN_SIZES,
    OPTIMIZER_TITLES,
    SCHEDULE_TITLES,
    TASK_TITLES,
    TIPS,
)
from engine.config import DATA_EXTRA_INTEGERS, DataConfig, ProbeConfig, TrainingConfig
from engine.data.sets import DATASET_INFO
from engine.errors import ProjectError
from engine.training.live import LIVE_TRAINING

__all__ = ["TrainingConfigPanel"]

_MAX_SPIN = 2**31 - 1  # a spin box holds a C int; larger seeds stay editable in the file
#: The fields a paused run can take on (see engine.training.live); the others say PAUSE_REASON on hover.
LIVE_FIELDS = frozenset({("training", k) for k in LIVE_TRAINING} | {("augment", k) for k in AUGMENT_FIELDS})
PAUSE_REASON = ("Paused: only the learning rate, weight decay, momentum, schedule, batch size, augmentation and "
                "early stopping can change before Resume. Stop the run (Shift+F5) to change this.")
PAUSE_NOTE = ("⏸ Paused: the learning rate, weight decay, momentum, schedule, batch size, augmentation and early "
              "stopping can change now; Resume (F6) goes on with them.")


class _Combo(NoWheelCombo):
    """A combo box over (value, text, tooltip) items that reports only the user's choices."""

    chosen = Signal(object)

    def __init__(self, items: list[tuple[Any, str, str]]) -> None:
        super().__init__()
        for i, (value, text, tip) in enumerate(items):
            self.addItem(text, value)
            if tip:
                self.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.activated.connect(lambda i: self.chosen.emit(self.itemData(i)))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # NOTE: the wheel edits only when focused
        # NOTE: a narrow dock must not force a horizontal scroll bar; the popup still shows whole texts.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(10)

    def set_value(self, value: Any) -> None:
        i = self.findData(value)
        self.setCurrentIndex(max(i, 0))


class TrainingConfigPanel(QWidget):
    """The "Training setup" dock: data, augmentation and training settings of the open project.

    Signals:
        preview_requested(): the person pressed "Preview data…".
    """

    preview_requested = Signal()

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training_config_panel")
        self.document = document
        self.fields: dict[tuple[str, str], QWidget] = {}
        self._setters: list[Callable[[], None]] = []
        self._refreshing = False
        self._live_only = False  # a run is paused: only LIVE_FIELDS are editable
        self._build()
        document.undo_stack.indexChanged.connect(self.refresh)
        document.project_replaced.connect(self.refresh)
        document.analysis_changed.connect(self._refresh_loss)
        self.refresh()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        col = QVBoxLayout(body)
        col.setContentsMargins(8, 8, 8, 8)
        self.error_label = plain_label()  # NOTE: a refusal quotes paths and column names
        self.error_label.setProperty("role", "error")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.lock_note = lock_note()
        col.addWidget(self.lock_note)
        col.addWidget(self.error_label)
        col.addWidget(self._data_group())
        col.addWidget(self._augment_group())
        col.addWidget(self._training_group())
        col.addWidget(self._probes_group())
        col.addStretch(1)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.scroll = scroll
        # NOTE: the training controller disables the whole panel during a run; its fields give this reason.
        self.setProperty(LOCK_PROPERTY, LOCK_REASON)
        for widget in self.fields.values():
            watch_field(widget)
        for edit in (self.path_edit, self.features_edit, self.target_edit):
            watch_field(edit)

    def _form(self, title: str) -> tuple[QGroupBox, QFormLayout]:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        return box, form

    def _row(self, form: QFormLayout, section: str, name: str, label: str, widget: QWidget) -> QWidget:
        tip = TIPS.get(f"{section}.{name}", "")
        widget.setToolTip(tip)
        caption = QLabel(label)
        caption.setToolTip(tip)
        caption.setBuddy(widget)
        form.addRow(caption, widget)
        self.fields[(section, name)] = widget
        return widget

    def _data_group(self) -> QGroupBox:
        box, form = self._form("Data")
        self.form_data = form
        d = "data"
        ds = self._row(form, d, "dataset", "Data set:", _Combo([(k, DATASET_TITLES[k], DATASET_INFO[k]) for k in DATASET_INFO]))
        ds.chosen.connect(lambda v: self._commit(d, {"dataset": v}, "Choose data set"))
        path = QLineEdit()
        path.setPlaceholderText("folder or file; relative to the project file")
        path.editingFinished.connect(lambda: self._commit_text(d, "path", path.text() or None, "Set data path"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(path, 1)
        row.addWidget(browse)
        self.path_edit = path
        self._row(form, d, "path", "Path:", holder)
        feats = QLineEdit()
        feats.setPlaceholderText("all columns but the target")
        feats.editingFinished.connect(lambda: self._commit_text(
            d, "feature_columns", [c.strip() for c in feats.text().split(",") if c.strip()] or None, "Set feature columns"))
        self.features_edit = feats
        self._row(form, d, "feature_columns", "Feature columns:", feats)
        target = QLineEdit()
        target.setPlaceholderText("the last column")
        target.editingFinished.connect(lambda: self._commit_text(d, "target_column", target.text().strip() or None, "Set target column"))
        self.target_edit = target
        self._row(form, d, "target_column", "Target column:", target)
        task = self._row(form, d, "task", "Task:", _Combo([(k, *v) for k, v in TASK_TITLES.items()]))
        task.chosen.connect(lambda v: self._commit(d, {"task": v}, "Choose task"))
        self._int(form, d, "samples", "Samples:", 1, 1_000_000, "Set number of samples")
        self._float(form, d, "noise", "Noise:", 0.0, 1.0, 0.05, "Set data noise")
        self._extra_choice(form, "function", "Function:", FUNCTION_TITLES, "sin", "Choose the function to fit")
        self._extra_int(form, "classes", "Spiral arms:", "Set the number of spiral arms", 2)
        self._int(form, d, "image_size", "Image size:", 0, 8192, "Set image size", special="from the Input", none_at=0)
        self._float(form, d, "memory_budget_gib", "Memory budget:", 0.0, 1_000_000.0, 0.5, "Set data memory budget",
                    special="always stream", suffix=" GiB")
        self._float(form, d, "val_fraction", "Validation part:", 0.0, 0.9, 0.05, "Set validation fraction")
        self._float(form, d, "test_fraction", "Test part:", 0.0, 0.9, 0.05, "Set test fraction")
        self._int(form, d, "seed", "Split seed:", 0, _MAX_SPIN, "Set split seed")
        self._check(form, d, "normalize", "Normalize", "Turn normalization on/off")
        self.preview_button = QPushButton("Preview data…")
        self.preview_button.setToolTip("Show some samples of this data set with their labels")
        self.preview_button.clicked.connect(self.preview_requested)
        form.addRow(self.preview_button)
        return box

    def _augment_group(self) -> QGroupBox:
        box, form = self._form("Augmentation")
        box.setToolTip(TIPS["augment"])
        self.form_augment = form
        for name, (label, top, step, tip) in AUGMENT_FIELDS.items():
            if top is None:
                w = QCheckBox()
                w.toggled.connect(lambda on, n=name: self._commit_augment(n, bool(on)))
            else:
                w = FloatSpin()
                w.setRange(0.0, top)
                w.setSingleStep(step)
                w.setSpecialValueText("off")
                w.setKeyboardTracking(False)
                w.valueChanged.connect(lambda v, n=name: self._commit_augment(n, float(v)))
            w.setToolTip(tip)
            caption = QLabel(label)
            caption.setToolTip(tip)
            form.addRow(caption, w)
            self.fields[("augment", name)] = w
        self.augment_note = QLabel("Mirror, shift, rotation, zoom, brightness and contrast change pictures: "
                                   "they are hidden while the network's Input takes vectors.")
        self.augment_note.setProperty("role", "muted")
        self.augment_note.setWordWrap(True)
        form.addRow(self.augment_note)
        return box

    def _training_group(self) -> QGroupBox:
        box, form = self._form("Training")
        self.form_training = form
        t = "training"
        self.loss_label = plain_label()  # NOTE: the output blocks' names
        self.loss_label.setWordWrap(True)
        self.loss_label.setProperty("role", "muted")
        self._row(form, t, "loss", "Loss:", self.loss_label)
        opt = self._row(form, t, "optimizer", "Optimizer:", _Combo([(k, *v) for k, v in OPTIMIZER_TITLES.items()]))
        opt.chosen.connect(lambda v: self._commit(t, {"optimizer": v}, "Choose optimizer"))
        self._float(form, t, "lr", "Learning rate:", 1e-9, 100.0, 0, "Set learning rate")
        self._float(form, t, "momentum", "Momentum:", 0.0, 1.0, 0.05, "Set momentum")
        self._check(form, t, "nesterov", "Nesterov", "Turn Nesterov momentum on/off")
        self._int(form, t, "batch_size", "Batch size:", 1, 65536, "Set batch size")
        self.batch_hint = QLabel()
        self.batch_hint.setProperty("role", "muted")
        self.batch_hint.setWordWrap(True)
        form.addRow("", self.batch_hint)
        self._int(form, t, "epochs", "Epochs:", 1, 100_000, "Set epochs")
        sched = self._row(form, t, "schedule", "LR schedule:", _Combo([(k, *v) for k, v in SCHEDULE_TITLES.items()]))
        sched.chosen.connect(lambda v: self._commit(t, {"schedule": v}, "Choose learning-rate schedule"))
        self._int(form, t, "step_size", "Step (epochs):", 1, 100_000, "Set schedule step size")
        self._float(form, t, "gamma", "LR factor:", 0.01, 1.0, 0.05, "Set schedule factor")
        self._float(form, t, "weight_decay", "Weight decay:", 0.0, 10.0, 0, "Set weight decay")
        self._int(form, t, "early_stopping_patience", "Early stopping:", 0, 100_000, "Set early-stopping patience",
                  special="off", suffix=" epochs")
        self._check(form, t, "restore_best", "Restore best epoch", "Turn restore-best on/off")
        self._int(form, t, "seed", "Seed:", 0, _MAX_SPIN, "Set training seed")
        dev = self._row(form, t, "device", "Device:", DeviceCombo())  # NOTE: each GPU once a child Python says
        dev.chosen.connect(lambda v: self._commit(t, {"device": v}, "Choose device"))
        self._check(form, t, "mixed_precision", "Mixed precision", "Turn mixed precision on/off")
        return box

    def _probes_group(self) -> QGroupBox:
        box, form = self._form("Live insight")
        self.form_probes = form
        p = "probes"
        self._check(form, p, "enabled", "Live views while training", "Turn live views on/off")
        self._int(form, p, "every_batches", "Every:", 1, 1_000_000, "Set live-view interval", suffix=" batches")
        self._float(form, p, "every_seconds", "Or every:", 0.0, 86_400.0, 1.0, "Set live-view time interval",
                    special="off", suffix=" s")
        cam = self._row(form, p, "cam_method", "Class maps:", _Combo([(k, *v) for k, v in CAM_TITLES.items()]))
        cam.chosen.connect(lambda v: self._commit(p, {"cam_method": v}, "Choose class-map method"))
        self._int(form, p, "probe_samples", "Probe images:", 1, 64, "Set number of probe images")
        return box

    # ------------------------------------------------------------------ field builders
    def _int(self, form, section, name, label, lo, hi, text, special=None, suffix="", none_at=None) -> QSpinBox:
        w = IntSpin()
        w.setRange(lo, hi)
        w.setKeyboardTracking(False)
        if special:
            w.setSpecialValueText(special)
        if suffix:
            w.setSuffix(suffix)
        w.valueChanged.connect(
            lambda v: self._commit(section, {name: None if none_at is not None and v == none_at else int(v)}, text)
        )
        self._row(form, section, name, label, w)
        self._setters.append(lambda: w.setValue(_get(self.document, section, name, none_at)))
        return w

    def _float(self, form, section, name, label, lo, hi, step, text, special=None, suffix="") -> QDoubleSpinBox:
        w = FloatSpin()
        w.setRange(lo, hi)
        if special:
            w.setSpecialValueText(special)
        if suffix:
            w.setSuffix(suffix)
        if step:
            w.setSingleStep(step)
        else:  # NOTE: a learning rate steps by a tenth of its own size (0.001 -> 0.0011)
            w.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        w.setKeyboardTracking(False)
        w.valueChanged.connect(lambda v: self._commit(section, {name: float(v)}, text))
        self._row(form, section, name, label, w)
        self._setters.append(lambda: w.setValue(_get(self.document, section, name)))
        return w

    def _extra_choice(self, form, name: str, label: str, titles: dict[str, str], default: str, text: str) -> QComboBox:
        """A data setting that only some data sets read (``DataConfig.extra``), one of a few choices."""
        w = self._row(form, "data", name, label, _Combo([(k, t, "") for k, t in titles.items()]))
        w.chosen.connect(lambda v: self._commit("data", {name: v}, text))
        self._setters.append(lambda: w.set_value(self.document.project.data.extra.get(name, default)))
        return w

    def _extra_int(self, form, name: str, label: str, text: str, default: int) -> QSpinBox:
        """A whole-number data setting that only some data sets read, within the engine's own bounds."""
        _, lo, hi = DATA_EXTRA_INTEGERS[name]
        w = IntSpin()
        w.setRange(lo, hi)
        w.setKeyboardTracking(False)
        w.valueChanged.connect(lambda v: self._commit("data", {name: int(v)}, text))
        self._row(form, "data", name, label, w)
        self._setters.append(lambda: w.setValue(int(self.document.project.data.extra.get(name, default))))
        return w

    def _check(self, form, section, name, label, text) -> QCheckBox:
        w = QCheckBox(label)
        w.toggled.connect(lambda on: self._commit(section, {name: bool(on)}, text))
        tip = TIPS.get(f"{section}.{name}", "")
        w.setToolTip(tip)
        form.addRow("", w)
        self.fields[(section, name)] = w
        self._setters.append(lambda: w.setChecked(bool(_get(self.document, section, name))))
        return w

    # ------------------------------------------------------------------ editing
    def _commit(self, section: str, changes: dict[str, Any], text: str) -> None:
        if self._refreshing:
            return
        try:
            cmd = SetConfigCommand(self.document, section, changes, text)
        except ProjectError as exc:
            self._show_error(_reason(str(exc)))
            self.refresh()
            return
        self.error_label.hide()
        if not cmd.is_noop():
            self.document.push(cmd)
        self.refresh()

    def _commit_text(self, section: str, name: str, value: Any, text: str) -> None:
        if not self._refreshing and value != _get(self.document, section, name):
            self._commit(section, {name: value}, text)

    def _commit_augment(self, name: str, value: Any) -> None:
        if self._refreshing:
            return
        augment = dict(self.document.project.data.augment)
        if value:
            augment[name] = value
        else:
            augment.pop(name, None)
        self._commit("data", {"augment": augment}, f"Set {AUGMENT_FIELDS[name][0].rstrip(':').lower()} augmentation")

    def _browse(self) -> None:
        dataset = self.document.project.data.dataset
        start = str(dialog_folder(self.document.path))
        if dataset == "image_folder":
            chosen = QFileDialog.getExistingDirectory(self, "Choose the image folder (one subfolder per class)", start)
        else:
            pattern = "CSV files (*.csv)" if dataset == "csv" else "NumPy archives (*.npz)"
            chosen, _ = QFileDialog.getOpenFileName(self, "Choose the data file", start, f"{pattern};;All files (*)")
        if chosen:
            self._commit("data", {"path": _relative(chosen, self.document)}, "Set data path")

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.EnabledChange:
            self.lock_note.setVisible(self._live_only or not self.isEnabled())
        super().changeEvent(event)

    def set_live_only(self, on: bool) -> None:
        """While a run is paused (True), only the settings it can take on are editable; the rest say why on hover."""
        self._live_only = on
        self.lock_note.setText(PAUSE_NOTE if on else LOCK_REASON)
        if not on:
            for widget in self.fields.values():
                set_enabled_for(widget, True)  # NOTE: refresh() disables again a field waiting for another
        self.refresh()
        self.lock_note.setVisible(on or not self.isEnabled())

    def _lock_all_but_live(self) -> None:
        if not self._live_only:
            return
        for key, widget in self.fields.items():
            if key not in LIVE_FIELDS and not isinstance(widget, QLabel):
                set_enabled_for(widget, False, PAUSE_REASON)

    # ------------------------------------------------------------------ showing the project
    def refresh(self, *_args) -> None:
        """Show the project's settings in every field (after any change, undo or redo)."""
        self._refreshing = True
        try:
            project = self.document.project
            data, training = project.data, project.training
            self.fields[("data", "dataset")].set_value(data.dataset)
            self.fields[("data", "task")].set_value(data.task)
            self.path_edit.setText(data.path or "")
            self.features_edit.setText(", ".join(data.feature_columns or []))
            self.target_edit.setText(data.target_column or "")
            for key in ("optimizer", "schedule", "device"):
                self.fields[("training", key)].set_value(getattr(training, key))
            self.fields[("probes", "cam_method")].set_value(project.probes.cam_method)
            for setter in self._setters:
                setter()
            for name, (_label, top, _step, _tip) in AUGMENT_FIELDS.items():
                w = self.fields[("augment", name)]
                value = data.augment.get(name, False if top is None else 0.0)
                if top is None:
                    w.setChecked(bool(value))
                else:
                    w.setValue(float(value))
            self._show_applicable(data, training, project.probes)
            self._lock_all_but_live()
            self._refresh_batch_hint(data, training)
            self._refresh_loss()
        finally:
            self._refreshing = False

    def _show_applicable(self, data: DataConfig, training: TrainingConfig, probes: ProbeConfig) -> None:
        visible = {
            "path": data.dataset in DATA_FILES,
            "feature_columns": data.dataset == "csv",
            "target_column": data.dataset == "csv",
            "samples": data.dataset in GENERATED,
            "noise": data.dataset in GENERATED,
            "function": data.dataset == "regression1d",
            "classes": data.dataset == "spiral",
            "image_size": data.dataset in ("digits", "shapes", "image_folder"),
            "memory_budget_gib": data.dataset in DATA_FILES,
        }
        for name, show in visible.items():
            self.form_data.setRowVisible(self.fields[("data", name)], show)
        sgd = training.optimizer == "sgd"
        set_enabled_for(self.fields[("training", "momentum")], sgd,
                        "Only SGD uses momentum: choose SGD as the optimizer.")
        set_enabled_for(self.fields[("training", "nesterov")], sgd and training.momentum > 0,
                        "Nesterov momentum needs SGD with a momentum above 0.")
        scheduled = training.schedule in ("step", "plateau")
        self.form_training.setRowVisible(self.fields[("training", "step_size")], scheduled)
        self.form_training.setRowVisible(self.fields[("training", "gamma")], scheduled)
        for name in ("every_batches", "every_seconds", "cam_method", "probe_samples"):
            set_enabled_for(self.fields[("probes", name)], probes.enabled,
                            "Turn on live views while training to set this.")
        self._show_augmentations(data)

    def _show_augmentations(self, data: DataConfig) -> None:
        """Hide the augmentations that change pictures when the network takes vectors (points, tables).

        NOTE: the trainer refuses the geometric ones for a vector Input; one that is on stays shown,
        so that it can be turned off.
        """
        pictures = self.takes_images()
        for name in IMAGE_AUGMENTS:
            on = bool(data.augment.get(name))
            self.form_augment.setRowVisible(self.fields[("augment", name)], pictures or on)
        self.form_augment.setRowVisible(self.augment_note, not pictures)

    def takes_images(self) -> bool:
        """Whether the network's Input takes images (by the data set when there is no Input yet)."""
        inputs = [n for n in self.document.graph.nodes.values() if n.spec.role == "input"]
        if inputs:
            return any(n.params.get("kind") == "image" for n in inputs)
        return self.document.project.data.dataset in IMAGE_DATASETS

    def _refresh_batch_hint(self, data: DataConfig, training: TrainingConfig) -> None:
        total = data.samples if data.dataset in GENERATED else KNOWN_SIZES.get(data.dataset)
        bs = training.batch_size
        if bs == 1:
            text = "Online learning: the weights change after every single sample."
        elif total is None:
            text = "Mini-batch: the weights change after every batch of samples."
        else:
            n = max(1, round(total * (1 - data.val_fraction - data.test_fraction)))
            if bs >= n:
                text = f"Full batch: all {n:,} training samples per step, one step per epoch."
            else:
                steps = -(-n // bs)
                text = f"Mini-batch: {steps:,} steps per epoch over {n:,} training samples."
        self.batch_hint.setText(text)

    def _refresh_loss(self, *_args) -> None:
        graph = self.document.graph
        heads = [n for n in graph.nodes.values() if n.spec.role == "head"]
        if not heads:
            self.loss_label.setText("No output block yet: add one (Class output, Regression output, …) to choose the loss.")
            return
        parts = [
            ("" if n.params["weight"] == 1.0 else f"{n.params['weight']:g} × ")
            + f"{n.spec.head.loss_choice(n.params.get('loss')).words} ({n.name})"
            for n in heads
        ]
        self.loss_label.setText("; ".join(parts) + ". The output block sets the loss.")


def _get(doc: Document, section: str, name: str, none_at: Any = None) -> Any:
    value = getattr(getattr(doc.project, section), name)
    return none_at if value is None and none_at is not None else value


def _reason(message: str) -> str:
    """The engine names the field path ("training.lr must be ..."); keep that, drop a file prefix."""
    return message.split(": ", 1)[1] if message.startswith("<") and ": " in message else message


def _relative(chosen: str, doc: Document) -> str:
    """A path inside the project's folder is stored relative to it, so the project can move."""
    from pathlib import Path

    path = Path(chosen)
    if doc.path is not None:
        try:
            return path.resolve().relative_to(doc.path.parent.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)

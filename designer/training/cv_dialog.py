"""Cross-validate: a dialog that asks for k, and offers leave-one-out when the data set is small.

The number of samples comes from the project's data config without loading anything: a
generated set has ``samples``, a bundled set its known size. For files the size is unknown
until they are read, so leave-one-out is not offered there.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.config import DataConfig
from engine.data.basics import DataError
from engine.data.sets import TOY_SETS
from engine.data.splits import LEAVE_ONE_OUT_MAX, split_sizes

__all__ = ["BUNDLED_SIZES", "CrossValidateDialog", "ask_folds", "fold_pool", "known_size"]

#: samples in each data set that ships with scikit-learn (a test checks them against the real data)
BUNDLED_SIZES = {"digits": 1797, "iris": 150, "wine": 178, "breast_cancer": 569}
MAX_FOLDS = 20
DEFAULT_FOLDS = 5


def known_size(data: DataConfig) -> int | None:
    """Samples in the data set ``data`` names, when that is known without loading it."""
    if data.dataset in TOY_SETS or data.dataset == "shapes":
        return data.samples
    return BUNDLED_SIZES.get(data.dataset)


def fold_pool(data: DataConfig) -> int | None:
    """Samples the folds share out: the data set less its held-out test split (None when unknown)."""
    n = known_size(data)
    if n is None:
        return None
    try:
        return split_sizes(n, 0.0, data.test_fraction)[0]
    except DataError:  # too few to split: training will say so with the data set's name
        return None


class CrossValidateDialog(QDialog):
    """Asks for k (2 to 20, at most the samples there are) or leave-one-out; :meth:`folds` is the answer."""

    def __init__(self, data: DataConfig, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cross-validate")
        self.setObjectName("cross_validate")
        self.pool = fold_pool(data)
        top = min(MAX_FOLDS, self.pool) if self.pool is not None else MAX_FOLDS
        self.spin = QSpinBox()
        self.spin.setRange(2, max(2, top))
        self.spin.setValue(min(DEFAULT_FOLDS, self.spin.maximum()))
        self.loo = QCheckBox(f"Leave-one-out ({self.pool} folds)")
        self.loo.setToolTip("One fold per sample: each network is validated on the one sample it did not see.")
        self.about = QLabel()
        self.about.setTextFormat(Qt.TextFormat.PlainText)
        self.about.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)

        form = QFormLayout()
        form.addRow("Number of folds (k):", self.spin)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.loo)
        layout.addWidget(self.about)
        layout.addWidget(buttons)
        self.loo.setVisible(self.offers_leave_one_out())
        self.loo.toggled.connect(self._on_leave_one_out_toggled)
        self._explain()

    def offers_leave_one_out(self) -> bool:
        return self.pool is not None and 2 <= self.pool <= LEAVE_ONE_OUT_MAX

    def folds(self) -> int | None:
        """k as chosen, the number of samples for leave-one-out, or None when cancelled."""
        if self.result() != QDialog.DialogCode.Accepted:
            return None
        if self.offers_leave_one_out() and self.loo.isChecked():
            return self.pool
        return self.spin.value()

    def _on_leave_one_out_toggled(self, checked: bool) -> None:
        self.spin.setEnabled(not checked)
        self._explain()

    def _explain(self) -> None:
        if self.loo.isChecked():
            text = (f"Leave-one-out trains {self.pool} fresh networks, each validated on the one sample it did "
                    "not see: the most training data per network, and the slowest.")
        else:
            samples = f"the {self.pool} samples" if self.pool is not None else "the data"
            text = (f"Each fold trains a fresh network and validates it on 1/k of {samples} left after the test "
                    "split; the result is the mean ± spread of the folds' scores.")
        self.about.setText(text)


def ask_folds(data: DataConfig, parent: QWidget | None = None) -> int | None:
    """Show the dialog (modal); k for the cross-validation, or None when cancelled."""
    dialog = CrossValidateDialog(data, parent)
    try:
        dialog.exec()
        return dialog.folds()
    finally:
        dialog.deleteLater()

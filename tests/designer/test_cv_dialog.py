"""The Cross-validate dialog: k typed by a person, leave-one-out for small sets, cancel, and the menu path."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication

from designer.training.cv_dialog import BUNDLED_SIZES, CrossValidateDialog, fold_pool, known_size
from engine.config import DataConfig
from engine.data import load_dataset, split_dataset
from engine.data.splits import LEAVE_ONE_OUT_MAX
from engine.templates import load_template
from tests.designer.conftest import training_window

SHAPES = {"digits": (64,), "iris": (4,), "wine": (13,), "breast_cancer": (30,)}


def open_dialog(qtbot, data: DataConfig) -> CrossValidateDialog:
    dialog = CrossValidateDialog(data)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def type_k(qtbot, dialog: CrossValidateDialog, text: str) -> None:
    qtbot.keyClick(dialog.spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(dialog.spin, text)


def click_box(qtbot, dialog: CrossValidateDialog) -> None:
    """Click the leave-one-out box on its indicator, as a person would."""
    qtbot.mouseClick(dialog.loo, Qt.MouseButton.LeftButton, pos=QPoint(6, dialog.loo.height() // 2))


# ------------------------------------------------------------------------- sizes without loading
@pytest.mark.parametrize("name", sorted(BUNDLED_SIZES))
def test_bundled_sizes_are_the_real_ones(name):
    assert known_size(DataConfig(dataset=name)) == len(load_dataset(DataConfig(dataset=name), SHAPES[name]))


@pytest.mark.parametrize("name, shape, task", [("spiral", (2,), "classification"), ("shapes", (1, 8, 8), "classification"),
                                               ("regression1d", (1,), "regression")])
def test_generated_sizes_and_the_pool_match_what_cross_validation_folds(name, shape, task):
    data = DataConfig(dataset=name, samples=137, test_fraction=0.2, task=task)
    ds = load_dataset(data, shape)
    assert known_size(data) == len(ds)
    assert fold_pool(data) == len(split_dataset(ds, 0.0, 0.2, seed=0).train)


def test_file_data_sets_have_no_known_size():
    assert known_size(DataConfig(dataset="csv", path="table.csv")) is None
    assert fold_pool(DataConfig(dataset="image_folder", path="pets")) is None


# ------------------------------------------------------------------------------------ the dialog
def test_typed_k_is_the_answer(qtbot):
    dialog = open_dialog(qtbot, DataConfig(dataset="digits"))
    assert dialog.spin.value() == 5 and (dialog.spin.minimum(), dialog.spin.maximum()) == (2, 20)
    assert not dialog.loo.isVisible(), "digits is too big for leave-one-out"
    assert "1/k of the" in dialog.about.text()
    type_k(qtbot, dialog, "7")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.folds() == 7


def test_enter_accepts_and_escape_cancels(qtbot):
    dialog = open_dialog(qtbot, DataConfig(dataset="wine"))
    type_k(qtbot, dialog, "12")
    qtbot.keyClick(dialog.spin, Qt.Key.Key_Return)
    assert dialog.folds() == 12
    dialog = open_dialog(qtbot, DataConfig(dataset="wine"))
    type_k(qtbot, dialog, "3")
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.folds() is None


def test_k_stops_at_the_samples_there_are(qtbot):
    data = DataConfig(dataset="spiral", samples=14, test_fraction=0.15)  # 2 held out for test, 12 to fold
    dialog = open_dialog(qtbot, data)
    assert dialog.spin.maximum() == 12 == dialog.pool
    type_k(qtbot, dialog, "15")
    assert dialog.spin.text() == "1", "a k above the samples cannot be typed"
    type_k(qtbot, dialog, "12")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.folds() == 12


def test_leave_one_out_is_offered_for_a_small_set_and_gives_n_folds(qtbot):
    data = DataConfig(dataset="iris", test_fraction=0.15)
    pool = fold_pool(data)
    assert pool == 150 - 22 and pool <= LEAVE_ONE_OUT_MAX
    dialog = open_dialog(qtbot, data)
    assert dialog.loo.isVisible() and dialog.loo.text() == f"Leave-one-out ({pool} folds)"
    click_box(qtbot, dialog)
    assert dialog.loo.isChecked() and not dialog.spin.isEnabled()
    assert f"trains {pool} fresh networks" in dialog.about.text()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.folds() == pool


def test_unticking_leave_one_out_gives_the_typed_k_back(qtbot):
    dialog = open_dialog(qtbot, DataConfig(dataset="spiral", samples=300))
    click_box(qtbot, dialog)
    click_box(qtbot, dialog)
    assert not dialog.loo.isChecked() and dialog.spin.isEnabled()
    type_k(qtbot, dialog, "4")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.folds() == 4


def test_leave_one_out_is_not_offered_past_the_limit_or_for_files(qtbot):
    over = DataConfig(dataset="shapes", samples=LEAVE_ONE_OUT_MAX * 2, test_fraction=0.0)
    assert not open_dialog(qtbot, over).loo.isVisible()
    files = open_dialog(qtbot, DataConfig(dataset="csv", path="table.csv"))
    assert not files.loo.isVisible() and files.spin.maximum() == 20 and "of the data left" in files.about.text()


# ----------------------------------------------------------------------------- from the menu
def answer_dialog(qtbot, act) -> None:
    """When the modal Cross-validate dialog is up, let ``act`` work it (polling the event loop)."""

    def attempt():
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, CrossValidateDialog):
            act(dialog)
        else:
            QTimer.singleShot(10, attempt)

    QTimer.singleShot(0, attempt)


def small_project():
    p = load_template("mlp")
    p.data.samples = 120
    p.training.epochs = 1
    p.training.device = "cpu"
    return p


def test_cancel_in_the_menu_starts_nothing(qtbot, no_thread_left_running):
    with training_window(qtbot, small_project()) as w:
        answer_dialog(qtbot, lambda d: qtbot.mouseClick(d.cancel_button, Qt.MouseButton.LeftButton))
        assert w.training.cross_validate() is None
        assert w.training.session is None and w.training.cross_validate_action.isEnabled()


def test_k_typed_in_the_menu_runs_that_many_folds(qtbot, no_thread_left_running):
    def choose_two(dialog):
        type_k(qtbot, dialog, "2")
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    with training_window(qtbot, small_project()) as w:
        answer_dialog(qtbot, choose_two)
        with qtbot.waitSignal(w.training.run_ended, timeout=60_000) as ended:
            session = w.training.cross_validate()
            assert session is not None and session.folds == 2
        assert ended.args == ["finished"]
        assert len(session.result.results) == 2 and session.result.k == 2

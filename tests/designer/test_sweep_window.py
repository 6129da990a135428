"""Train → Sweep… as a person uses it: the dialog, the sweep's live progress, Stop, and the results view.

Every figure the view shows is checked against the sweep's files read here independently: the
points and the error bars against ``results.csv`` and the folds' own run folders, the heat map's
cells against the table and the CSV, the refit's score against its own ``summary.json``.
"""

from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from designer.training import runs as runs_module
from designer.training.sweep_dialog import SweepChoice, SweepDialog
from designer.training.sweep_view import CELL_FONT_PX
from engine.cli import main as cli_main
from engine.colormap import COLOR_TABLE
from engine.project import project_to_dict, save_project
from engine.templates import load_template
from engine.training.runs import read_run
from engine.training.sweep_plan import SweepError, apply_point, parse_setting
from tests.designer.conftest import training_window

SWEEP_TIMEOUT = 240_000
DECAYS = [0, 1e-4, 1e-3, 1e-2]


def spiral_mlp(epochs: int = 2):
    """The MLP template on 300 spiral points: an epoch takes milliseconds."""
    p = load_template("mlp")
    p.data.samples = 300
    p.training.epochs = epochs
    p.training.device = "cpu"
    return p


def answer_dialog(qtbot, act) -> None:
    """When the modal Sweep dialog is up, let ``act`` work it (polling the event loop)."""

    def attempt():
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, SweepDialog):
            act(dialog)
        else:
            QTimer.singleShot(10, attempt)

    QTimer.singleShot(0, attempt)


def type_into(qtbot, edit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClicks(edit, text)


def results_csv(folder) -> list[dict[str, str]]:
    with open(folder / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def sweep_entry(runs):
    (entry,) = [e for e in runs.entries if e.record.kind == "sweep"]
    return entry


def item_text(runs, entry) -> str:
    return next(runs.list.item(r).text() for r in range(runs.list.count())
                if runs._entries[runs.list.item(r).data(Qt.ItemDataRole.UserRole)] is entry)


# ---------------------------------------------------------------------- issue 12's "done when"
@pytest.mark.slow
def test_a_weight_decay_sweep_from_the_menu_shows_its_results_chooses_and_refits(qtbot, tmp_path):
    save_project(spiral_mlp(), tmp_path / "mlp.json")

    def choose(dialog: SweepDialog):
        assert dialog.keys[0].currentData() == "training.weight_decay"
        type_into(qtbot, dialog.values[0], "0, 1e-4, 1e-3, 1e-2")
        dialog.k.setValue(5)
        assert dialog.by_folds.isChecked() and dialog.refit.isChecked()
        assert "4 points × 5 folds + the refit: 21 trainings" in dialog.about.text()
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    with training_window(qtbot, spiral_mlp()) as w:
        assert w.open_path(tmp_path / "mlp.json")
        tc, dash = w.training, w.training.dashboard
        assert tc.sweep_action in tc.menu.actions()
        progress, points = [], []
        answer_dialog(qtbot, choose)
        with qtbot.waitSignal(tc.run_ended, timeout=SWEEP_TIMEOUT) as ended:
            session = tc.sweep()
            assert session is not None and session.folds == 5
            assert not tc.sweep_action.isEnabled() and w.view.is_read_only()
            session.batches_done.connect(lambda d: (dash.redraw(), progress.append(dash.progress_bar.format())))
            session.point_done.connect(lambda d: points.append(d.index))
        assert ended.args == ["finished"] and tc.sweep_action.isEnabled() and points == [1, 2, 3, 4]
        assert any(f.startswith("Point 2/4 (weight_decay=0.0001) · fold 3/5 · epoch ") and f.endswith(" left")
                   for f in progress), progress
        assert any(f.startswith("Refit (weight_decay=") for f in progress)

        runs = tc.runs
        entry = sweep_entry(runs)
        folder = entry.path
        assert folder.parent == tmp_path / "mlp.runs"
        assert "Sweep: weight_decay (4 points, 5 folds)" in item_text(runs, entry)
        assert runs.current() is entry and runs.right.currentWidget() is runs.sweep_view
        assert tc.runs_dock.isVisible()

        # the files, read here: each point's mean and spread over its folds' own run folders
        rows = results_csv(folder)
        assert [float(r["training.weight_decay"]) for r in rows] == DECAYS
        folds = [[f["val"]["val_accuracy"] for f in read_run(folder / r["run"]).summary["folds"]] for r in rows]
        assert all(len(f) == 5 for f in folds)
        means = [float(r["val_accuracy"]) for r in rows]
        assert means == pytest.approx([np.mean(f) for f in folds])
        best = int(np.argmax(means))

        view = runs.sweep_view
        x, y = view.points_item.getData()
        expected_x = [math.log10(1e-4) - 1, -4.0, -3.0, -2.0]  # a log axis; 0 one decade below 1e-4
        assert view.x_log and list(x) == pytest.approx(expected_x) and list(y) == pytest.approx(means)
        bars = view.error_bars.opts
        assert list(bars["top"]) == pytest.approx([np.std(f) for f in folds])
        assert list(bars["bottom"]) == pytest.approx([np.std(f) for f in folds])
        assert list(bars["x"]) == pytest.approx(expected_x) and list(bars["y"]) == pytest.approx(means)
        ticks = dict(view.plot.getPlotItem().getAxis("bottom")._tickLevels[0])
        assert [ticks[v] for v in expected_x] == ["0", "0.0001", "0.001", "0.01"]
        cx, cy = view.chosen_item.getData()
        assert list(cx) == pytest.approx([expected_x[best]]) and list(cy) == pytest.approx([means[best]])
        table = view.row_texts()
        assert table[best][0] == f"★ {best + 1}" and all(not r[0].startswith("★") for i, r in enumerate(table[:4])
                                                         if i != best)
        assert table[best][2] == f"{means[best]:.3f} ± {np.std(folds[best]):.3f}"

        # the refit: trained on training + validation with the chosen value, listed like any other run
        refit = read_run(folder / "refit")
        assert refit.project["data"]["val_fraction"] == 0.0
        assert refit.project["training"]["weight_decay"] == DECAYS[best]
        accuracy = refit.summary["test"]["accuracy"]
        listed = runs.entry_for_folder(folder / "refit")
        assert listed is not None and listed.record.kind == "train" and listed.outcome == "finished"
        assert f"test accuracy {100 * accuracy:.1f} %" in item_text(runs, listed)
        assert f"refit test accuracy {100 * accuracy:.1f} %" in view.header.text()
        assert table[4][0] == "refit" and table[4][2] == f"test accuracy {100 * accuracy:.1f} %"
        assert f"test accuracy {100 * accuracy:.1f} %" in dash.message_text() and "chosen" in dash.message_text()

        # double-clicking a point opens its cross-validation in the Runs list
        view.open_row(best)
        opened = runs.current()
        assert opened is not None and opened.path == folder / f"point-{best + 1:02d}"
        assert opened.record.kind == "cross-validation" and len(opened.record.summary["folds"]) == 5
        assert runs.right.currentWidget() is not view


def cell_of(row: dict[str, str]) -> tuple[int, int]:
    """The heat map's (row, column) of a results.csv row: batch size up, learning rate across."""
    return [32, 128].index(int(row["training.batch_size"])), [0.003, 0.03].index(float(row["training.lr"]))


@pytest.mark.slow
def test_a_two_setting_sweep_is_a_heat_map_whose_cells_are_the_table(qtbot, tmp_path):
    choice = SweepChoice((parse_setting("training.lr=0.003,0.03"), parse_setting("training.batch_size=32,128")),
                         folds=None, refit=False)
    with training_window(qtbot, spiral_mlp()) as w:
        tc = w.training
        with qtbot.waitSignal(tc.run_ended, timeout=SWEEP_TIMEOUT) as ended:
            assert tc.sweep(choice) is not None
        assert ended.args == ["finished"]
        entry = sweep_entry(tc.runs)
        assert "Sweep: lr × batch_size (4 points)" in item_text(tc.runs, entry)
        assert tc.runs.entry_for_folder(entry.path / "refit") is None
        view = tc.runs.sweep_view
        assert view.heat is not None and view.points_item is None
        rows = results_csv(entry.path)
        table = view.row_texts()
        assert len(rows) == len(table) == 4
        for row, shown in zip(rows, table):
            lr, bs = float(row["training.lr"]), int(row["training.batch_size"])
            cell = view.cells[cell_of(row)]
            # the cell, the table and the file agree, and the point's own run folder says the same
            own = read_run(entry.path / row["run"]).history[-1]["val_accuracy"]
            assert float(row["val_accuracy"]) == pytest.approx(own)
            assert cell.textItem.toPlainText() == shown[3] == f"{own:.3f}"
            assert shown[1:3] == [f"{lr:g}", str(bs)]
            assert cell.textItem.font().pixelSize() == CELL_FONT_PX >= 9
        best = int(np.argmax([float(r["val_accuracy"]) for r in rows]))
        i, j = cell_of(rows[best])
        rect = view.chosen_cell.rect()
        assert (rect.x(), rect.y(), rect.width(), rect.height()) == (j, i, 1, 1)
        worst = int(np.argmin([float(r["val_accuracy"]) for r in rows]))
        wi, wj = cell_of(rows[worst])
        assert list(view.heat.image[i, j, :3]) == list(COLOR_TABLE[255])  # the best cell the brightest
        assert list(view.heat.image[wi, wj, :3]) == list(COLOR_TABLE[0])
        assert table[best][0].startswith("★")


@pytest.mark.slow
def test_stop_during_a_sweep_ends_it_and_keeps_the_finished_points(qtbot):
    # NOTE: the first point trains 1 epoch, the others 3000 or so: Stop (sent when point 1 ends) cuts point 2 short
    choice = SweepChoice((parse_setting("training.epochs=1,3000,3001"),), folds=None, refit=True)
    with training_window(qtbot, spiral_mlp()) as w:
        tc = w.training
        with qtbot.waitSignal(tc.run_ended, timeout=SWEEP_TIMEOUT) as ended:
            session = tc.sweep(choice)
            session.point_done.connect(lambda d: tc.stop() if d.index == 1 else None)
        assert ended.args == ["stopped"] and session.result.stopped
        entry = sweep_entry(tc.runs)
        assert entry.outcome == "stopped" and read_run(entry.path).status == "stopped"
        rows = results_csv(entry.path)
        assert 1 <= len(rows) < 3 and rows[0]["status"] == "finished"
        assert all(r["status"] == "stopped" for r in rows[1:])
        assert not (entry.path / "refit").exists()
        view = tc.runs.sweep_view
        assert [r[-1] for r in view.row_texts()][:1] == ["finished"] and view.row_texts()[0][0] == "★ 1"
        assert "Stopped the sweep after 1 of 3 points" in tc.dashboard.message_text()
        assert not w.view.is_read_only()


# ---------------------------------------------------------------------- the dialog
def open_dialog(qtbot, project) -> SweepDialog:
    dialog = SweepDialog(project)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


@pytest.mark.parametrize("typed, point", [("-1, 0.01", {"training.weight_decay": -1}),
                                          ("0.01, fast", {"training.weight_decay": "fast"})])
def test_the_dialog_refuses_a_bad_value_with_the_plans_message(qtbot, typed, point):
    project = spiral_mlp()
    dialog = open_dialog(qtbot, project)
    type_into(qtbot, dialog.values[0], typed)
    with pytest.raises(SweepError) as refused:
        apply_point(project_to_dict(project), point, source="the project")
    assert dialog.message.text() == str(refused.value) and not dialog.ok_button.isEnabled()
    qtbot.keyClick(dialog.values[0], Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.choice() is None
    type_into(qtbot, dialog.values[0], "0.01,,0.1")
    empty = "training.weight_decay: give one or more values separated by commas, with none empty"
    assert dialog.message.text() == empty
    type_into(qtbot, dialog.values[0], "0, 0.01")
    assert dialog.message.text() == "" and dialog.ok_button.isEnabled()


def test_the_dialog_offers_training_settings_augmentations_and_block_parameters(qtbot):
    project = load_template("lenet5")
    dialog = open_dialog(qtbot, project)
    keys = [dialog.keys[1].itemData(i) for i in range(dialog.keys[1].count())]
    assert keys[0] == "" and {"training.lr", "training.optimizer", "training.early_stopping_patience",
                              "data.augment.rotation"} <= set(keys)
    blocks = [k for k in keys if k.startswith("blocks.")]
    dense = next(n for n in project.graph.nodes.values() if n.type == "Dense")
    assert f"blocks.{dense.name}.units" in blocks and not any(".input." in k for k in blocks)
    dialog.keys[1].setCurrentIndex(keys.index(f"blocks.{dense.name}.units"))
    units = dense.params["units"]
    assert dialog.values[1].text() == f"{units // 2}, {units}, {units * 2}"
    dialog.keys[1].setCurrentIndex(keys.index("training.optimizer"))
    dialog.by_split.setChecked(True)
    dialog.refit.setChecked(False)
    assert dialog.about.text().startswith("8 points: 8 trainings of 30 epochs each")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    choice = dialog.choice()
    assert [s.key for s in choice.settings] == ["training.weight_decay", "training.optimizer"]
    assert choice.folds is None and not choice.refit and choice.points == 8
    vector = open_dialog(qtbot, spiral_mlp())
    offered = {vector.keys[0].itemData(i) for i in range(vector.keys[0].count())}
    assert "data.augment.noise" in offered and "data.augment.rotation" not in offered


def test_a_refused_sweep_in_the_menu_starts_nothing(qtbot):
    def refuse(dialog: SweepDialog):
        type_into(qtbot, dialog.values[0], "-1")
        assert not dialog.ok_button.isEnabled()
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)  # disabled: nothing happens
        assert dialog.isVisible()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)

    with training_window(qtbot, spiral_mlp()) as w:
        answer_dialog(qtbot, refuse)
        assert w.training.sweep() is None
        assert w.training.session is None and w.training.sweep_action.isEnabled() and not w.training.runs.entries


# ---------------------------------------------------------------------- sweeps from the command line
@pytest.mark.slow
def test_a_cli_sweep_folder_opens_in_the_window(qtbot, tmp_path, capsys, monkeypatch):
    save_project(spiral_mlp(), tmp_path / "mlp.json")
    assert cli_main(["sweep", str(tmp_path / "mlp.json"), "--set", "training.lr=0.003,0.03", "--epochs", "1",
                     "--refit"]) == 0
    assert cli_main(["sweep", str(tmp_path / "mlp.json"), "--set", "blocks.fc1.units=4,8,16", "--epochs", "1",
                     "--out", str(tmp_path / "elsewhere")]) == 0
    capsys.readouterr()
    with training_window(qtbot, spiral_mlp()) as w:
        assert w.open_path(tmp_path / "mlp.json")
        runs = w.training.runs
        entry = sweep_entry(runs)
        assert "Sweep: lr (2 points)" in item_text(runs, entry)
        assert runs.entry_for_folder(entry.path / "refit") is not None
        runs.list.setCurrentRow(next(r for r in range(runs.list.count())
                                     if runs._entries[runs.list.item(r).data(Qt.ItemDataRole.UserRole)] is entry))
        view = runs.sweep_view
        assert runs.right.currentWidget() is view
        x, y = view.points_item.getData()
        rows = results_csv(entry.path)
        assert list(x) == [0.003, 0.03] and not view.x_log  # one decade: a linear axis
        assert list(y) == pytest.approx([float(r["val_accuracy"]) for r in rows])
        assert view.error_bars is None  # no folds, no spread
        other = w.training.open_run(tmp_path / "elsewhere")
        assert other.record.kind == "sweep" and runs.current() is other and runs.right.currentWidget() is view
        assert "Sweep: fc1.units (3 points)" in item_text(runs, other)
        x, y = view.points_item.getData()
        assert list(x) == [4, 8, 16]
        assert list(y) == pytest.approx([float(r["val_accuracy"]) for r in results_csv(tmp_path / "elsewhere")])

        # deleting the project's sweep takes its refit (inside its folder) off the list too
        monkeypatch.setattr(runs_module, "_remove_folder", shutil.rmtree)  # NOTE: not the user's trash
        runs.open_sweep_part(entry.path)
        assert runs.current() is entry and runs.delete_current(ask=False)
        assert not entry.path.exists() and runs.entry_for_folder(entry.path / "refit") is None
        assert runs.entries == [other]

"""Training in the window as a person uses it: Train, watch, pause, stop, compare, set up, preview."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from designer import theme
from designer.main_window import MainWindow
from designer.training import dashboard as dashboard_mod
from engine.training.objectives import main_metric
from designer.training.plots import CurveBuffer, StillView, make_plot
from designer.training import worker as worker_mod
from designer.training.worker import MAX_UPDATES_PER_S, TrainingSession, TrainingWorker
from engine.cli import main as cli_main
from engine.project import project_to_dict, save_project
from engine.templates import load_template
from engine.training.events import (
    STOPPED_BEFORE_TRAINING,
    BatchesDone,
    EpochDone,
    Finished,
    Started,
)
from tests.designer.conftest import training_window
from tests.engine.helpers import slow_csv_project

RUN_TIMEOUT = 30_000


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def small_mlp(epochs: int = 3, **training):
    """The MLP template on a few hundred spiral points: an epoch takes a few milliseconds."""
    p = load_template("mlp")
    p.data.samples = 300
    p.training.epochs = epochs
    p.training.device = "cpu"
    for key, value in training.items():
        setattr(p.training, key, value)
    return p


@pytest.fixture
def window(qtbot):
    with training_window(qtbot, small_mlp()) as w:
        yield w


def train(qtbot, w: MainWindow, epochs: int | None = None) -> str:
    """Start a run and wait for its end; returns the outcome."""
    with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT) as blocker:
        assert w.training.start(epochs=epochs) is not None
    return blocker.args[0]


# ---------------------------------------------------------------------- train, watch, stop
def test_train_button_streams_updates_and_stop_ends_the_thread(window, qtbot, no_thread_left_running):
    window.document.project.training.epochs = 500
    dash = window.training.dashboard
    assert dash.is_empty() and "No training yet" in dash.empty_label.text()
    qtbot.mouseClick(dash.train_button, Qt.MouseButton.LeftButton)
    session = window.training.session
    assert session is not None and window.training.is_running()
    assert not window.training.train_action.isEnabled() and window.training.stop_action.isEnabled()
    qtbot.waitUntil(lambda: dash.batch.n > 20 and dash.progress_bar.value() > 0, timeout=RUN_TIMEOUT)
    first = dash.batch.n
    qtbot.waitUntil(lambda: dash.batch.n > first and len(dash.val_epochs) >= 2, timeout=RUN_TIMEOUT)
    assert "Epoch" in dash.progress_bar.format() and "left" in dash.progress_bar.format()
    assert "samples/s" in dash.speed_label.text() and dash.device_label.text() == "on CPU"
    assert dash.redraws > 0 and len(dash.smooth) == len(dash.batch)
    dash.log_box.click()
    assert dash.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()
    thread = session.thread
    with qtbot.waitSignal(window.training.run_ended, timeout=RUN_TIMEOUT) as ended:
        qtbot.mouseClick(dash.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["stopped"]
    assert session.thread is None and not window.training.is_running()
    assert all(_finished(t) for t in no_thread_left_running) and thread in no_thread_left_running
    assert "Stopped" in dash.message_text() and "test accuracy" in dash.message_text()
    assert window.training.train_action.isEnabled() and not window.training.stop_action.isEnabled()


def _finished(thread) -> bool:
    try:
        return thread.isFinished()
    except RuntimeError:  # deleted after it finished
        return True


def test_keyboard_shortcuts_train_pause_resume_and_stop(window, qtbot):
    window.document.project.training.epochs = 500
    window.activateWindow()
    window.view.setFocus()
    dash = window.training.dashboard
    QTest.keyClick(window, Qt.Key.Key_F5)
    session = window.training.session
    assert session is not None
    qtbot.waitUntil(lambda: dash.batch.n > 0, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(session.paused, timeout=RUN_TIMEOUT) as paused:
        QTest.keyClick(window, Qt.Key.Key_F6)
    step = paused.args[0].step
    assert session.is_paused() and window.training.pause_action.text() == "&Resume"
    assert dash.batch.n == step, "every batch trained before the pause is drawn"
    assert "Paused" in dash.progress_bar.format()
    at_resume = []
    session.resumed.connect(lambda ev: at_resume.append((ev.step, dash.batch.n)))
    with qtbot.waitSignal(session.resumed, timeout=RUN_TIMEOUT):
        QTest.keyClick(window, Qt.Key.Key_F6)
    assert at_resume == [(step, step)], "a paused run must not train"
    assert not session.is_paused() and window.training.pause_action.text() == "&Pause"
    qtbot.waitUntil(lambda: dash.batch.n > step, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(window.training.run_ended, timeout=RUN_TIMEOUT):
        QTest.keyClick(window, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)


def test_the_pause_button_changes_when_the_loop_acknowledges_not_on_the_click(window, qtbot):
    window.document.project.training.epochs = 500
    tc = window.training
    session = tc.start()
    qtbot.waitUntil(lambda: tc.dashboard.batch.n > 0, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(session.paused_changed, timeout=RUN_TIMEOUT) as changed:
        tc.toggle_pause()
        # NOTE: the acknowledgement reaches this thread through its event loop, which has not run yet
        assert tc.pause_action.text() == "&Pause" and not session.is_paused()
    assert changed.args == [True] and tc.pause_action.text() == "&Resume"
    assert "Paused" in tc.dashboard.message_text()
    with qtbot.waitSignal(session.paused_changed, timeout=RUN_TIMEOUT) as changed:
        tc.toggle_pause()
        assert tc.pause_action.text() == "&Resume" and session.is_paused()
    assert changed.args == [False] and tc.pause_action.text() == "&Pause"
    with qtbot.waitSignal(tc.run_ended, timeout=RUN_TIMEOUT):
        tc.stop()


def test_stop_while_paused_ends_the_run(window, qtbot):
    window.document.project.training.epochs = 500
    session = window.training.start()
    qtbot.waitUntil(lambda: window.training.dashboard.batch.n > 0, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(session.paused, timeout=RUN_TIMEOUT):
        window.training.pause()
    with qtbot.waitSignal(window.training.run_ended, timeout=RUN_TIMEOUT) as ended:
        window.training.stop()
    assert ended.args == ["stopped"] and session.thread is None and session.result.stopped


def test_stop_while_the_data_load_ends_the_run_at_once(window, qtbot, tmp_path):
    """Stop before training began: nothing trained, nothing scored, no run kept, and the window says so."""
    window.document.replace(slow_csv_project(tmp_path))  # NOTE: 500,000 rows: seconds to load
    tc = window.training
    before = len(tc.runs.entries)
    with qtbot.waitSignal(tc.run_ended, timeout=RUN_TIMEOUT) as ended:
        session = tc.start()
        tc.stop()
    assert ended.args == ["stopped"]
    done = session.result
    assert isinstance(done, Finished) and done.epochs_run == 0 and done.test == {} and done.test_loss is None
    assert done.message == STOPPED_BEFORE_TRAINING
    assert tc.dashboard.message_text() == "Stopped before training began."
    assert len(tc.runs.entries) == before and not session.run_dir.exists()  # the empty run folder is gone
    assert tc.train_action.isEnabled() and not window.view.is_read_only()


# ---------------------------------------------------------------------- lock during a run
def test_the_network_is_read_only_during_a_run_and_editable_after(window, qtbot):
    w, doc = window, window.document
    doc.project.training.epochs = 500
    w.training.start()
    assert w.view.is_read_only() and w.view._banner.isVisible()
    assert "Training" in w.view._banner.text()
    assert not w.inspector.isEnabled() and not w.training.config_panel.isEnabled()
    assert not w.undo_view.isEnabled() and not w.act.undo.isEnabled() and not w.act.open.isEnabled()
    before = len(doc.graph)
    w.view.add_at_center("Dense")
    assert len(doc.graph) == before, "the canvas must refuse edits while training"
    with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT):
        w.training.stop()
    assert not w.view.is_read_only() and not w.view._banner.isVisible()
    assert w.inspector.isEnabled() and w.training.config_panel.isEnabled() and w.act.open.isEnabled()
    w.view.add_at_center("Dense")
    assert len(doc.graph) == before + 1
    w.act.undo.trigger()
    assert len(doc.graph) == before


def test_an_invalid_network_does_not_start(window, qtbot):
    window.view.add_at_center("Dense")  # a loose Dense block: not connected yet, so the network cannot train
    window.document.analyze_now()
    assert window.training.start() is None
    assert "1 block is not connected yet: wire it into the network (or delete it)" in window.training.dashboard.message_text()
    assert not window.view.is_read_only()
    graph = window.document.graph
    graph.remove_node(next(nid for nid in window.document.analysis.unwired))
    fc = next(n for n in graph.nodes.values() if n.name == "fc3")
    graph.set_params(fc.id, {"units": 1})  # 1 class score for the spiral's 2 classes: an error in the wired network
    window.document.analyze_now()
    assert window.training.start() is None
    assert "error" in window.training.dashboard.message_text() and not window.view.is_read_only()


# ---------------------------------------------------------------------- k-fold cross-validation
def test_cross_validate_runs_k_folds_and_reports_the_mean_and_spread(window, qtbot, no_thread_left_running):
    tc, dash = window.training, window.training.dashboard
    action = tc.cross_validate_action
    assert action in tc.menu.actions() and "fresh network" in action.toolTip() and action.isEnabled()
    progress, folds_done = [], []
    with qtbot.waitSignal(tc.run_ended, timeout=RUN_TIMEOUT) as ended:
        session = tc.cross_validate(3, epochs=2)
        assert session is not None and session.folds == 3
        session.batches_done.connect(lambda d: (dash.redraw(), progress.append(dash.progress_bar.format())))
        session.fold_done.connect(lambda d: folds_done.append(d.fold))
        assert not action.isEnabled() and not tc.train_action.isEnabled() and window.view.is_read_only()
    assert ended.args == ["finished"] and not window.view.is_read_only() and action.isEnabled()
    assert folds_done == [1, 2, 3]
    text = dash.message_text()
    assert "3-fold cross-validation" in text and "validation accuracy" in text and "±" in text
    assert text.count(", ") >= 2  # the three folds' scores
    assert dash.progress_bar.format() == "Finished — 3 folds"
    assert any(f.startswith("Fold 2/3 · epoch ") and f.endswith(" left") for f in progress), progress
    assert len(dash.val_epochs) == 2 and dash.batch.x.max() <= 2.0  # the curves show the last fold
    entry = tc.runs.entries[-1]
    assert len(tc.runs.entries) == 1 and entry.outcome == "finished" and entry.weights is None
    about = tc.runs.details.text()
    assert "3-fold cross-validation: validation accuracy" in about and "±" in about
    assert all(f"fold {i}: validation accuracy" in about for i in (1, 2, 3))
    assert "3-fold val accuracy" in tc.runs.list.item(0).text()
    assert [len(entry.history), len(entry.record.summary["folds"])] == [2, 3]


def test_stop_ends_a_cross_validation_as_stopped(window, qtbot):
    tc = window.training
    session = tc.cross_validate(4, epochs=500)
    qtbot.waitUntil(lambda: tc.dashboard.batch.n > 0, timeout=RUN_TIMEOUT)
    assert tc.stop_action.isEnabled() and not tc.cross_validate_action.isEnabled()
    with qtbot.waitSignal(tc.run_ended, timeout=RUN_TIMEOUT) as ended:
        tc.stop()
    assert ended.args == ["stopped"] and session.result.stopped
    assert "Stopped the 4-fold cross-validation after 0 of 4 folds" in tc.dashboard.message_text()
    assert tc.runs.entries[-1].outcome == "stopped" and "fold 1: stopped" in tc.runs.details.text()


# ---------------------------------------------------------------------- failures become messages
def test_a_diverging_run_shows_the_message_and_the_window_stays_usable(window, qtbot):
    window.document.replace(small_mlp(epochs=20, optimizer="sgd", lr=1e6))
    assert train(qtbot, window) == "failed"
    dash = window.training.dashboard
    text = dash.message_text()
    assert "Training failed" in text and "NaN" in text and "learning rate" in text
    assert dash.message_kind == "error" and dash.progress_bar.format() == "Failed"
    assert not window.view.is_read_only() and window.training.train_action.isEnabled()
    window.view.add_at_center("ReLU")  # still editable
    assert window.training.runs.entries[-1].outcome == "failed"


def test_a_relative_data_path_is_read_from_the_project_folder(window, qtbot, tmp_path):
    rng = np.random.default_rng(0)
    rows = ["x1,x2,kind"] + [f"{a:.3f},{b:.3f},{'in' if a * a + b * b < 0.5 else 'out'}"
                             for a, b in rng.uniform(-1, 1, (200, 2))]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "points.csv").write_text("\n".join(rows) + "\n")
    p = small_mlp(epochs=2)
    p.data.dataset, p.data.path = "csv", "data/points.csv"
    save_project(p, tmp_path / "p.json")
    assert window.open_path(tmp_path / "p.json")
    dialog = window.training.preview_data()
    assert not dialog.error and {"in", "out"} <= set(dialog.labels())
    dialog.close()
    assert train(qtbot, window) == "finished"
    assert "test accuracy" in window.training.dashboard.message_text()


def test_a_missing_data_file_fails_with_a_message(window, qtbot, tmp_path):
    p = small_mlp()
    p.data.dataset, p.data.path = "csv", "missing.csv"
    save_project(p, tmp_path / "p.json")
    window.open_path(tmp_path / "p.json")
    assert train(qtbot, window) == "failed"
    assert str(tmp_path / "missing.csv") in window.training.dashboard.message_text()


# ---------------------------------------------------------------------- runs and comparison
def test_two_finished_runs_are_overlaid_with_their_differences(window, qtbot):
    assert train(qtbot, window, epochs=3) == "finished"
    panel = window.training.config_panel
    lr = panel.fields[("training", "lr")]
    lr.setValue(0.05)  # an edit between the runs, through the form
    assert train(qtbot, window, epochs=3) == "finished"
    runs = window.training.runs
    assert len(runs.entries) == 2 and len(runs.checked_entries()) == 2
    assert len(runs.loss_curves) == 2 and len(runs.metric_curves) == 2
    for curve in runs.loss_curves.values():
        x, y = curve.getData()
        assert list(x) == [1.0, 2.0, 3.0] and np.isfinite(y).all()
    legend = runs.loss_plot.getPlotItem().legend
    assert len(legend.items) == 2
    assert "lr: 0.01 vs 0.05" in runs.diff_label.text()
    first = runs.entries[0]
    assert first.record.project["training"]["lr"] == 0.01 and len(first.history) == 3
    assert first.batch_losses is not None and first.batch_losses.size > 0
    runs.set_checked([first])
    assert len(runs.loss_curves) == 1


def test_a_cli_run_folder_opens_with_its_curves(window, qtbot, tmp_path, capsys):
    save_project(small_mlp(), tmp_path / "mlp.json")
    out = tmp_path / "run"
    assert cli_main(["train", str(tmp_path / "mlp.json"), "--epochs", "2", "--device", "cpu", "--out", str(out)]) == 0
    capsys.readouterr()
    entry = window.training.open_run(out)
    runs = window.training.runs
    assert entry in runs.checked_entries() and entry.outcome == "opened"
    x, y = runs.loss_curves[id(entry)].getData()
    assert list(x) == [1.0, 2.0] and np.isfinite(y).all()
    mx, my = runs.metric_curves[id(entry)].getData()
    assert len(mx) == 2 and ((0 <= my) & (my <= 1)).all()
    assert "accuracy" in runs.list.item(0).text()


def test_a_folder_that_is_not_a_run_is_refused(window, tmp_path):
    from engine.errors import NetDesignerError

    with pytest.raises(NetDesignerError, match="not a training run folder"):
        window.training.open_run(tmp_path)


# ---------------------------------------------------------------------- setup form
def test_a_setup_edit_is_undoable_and_reaches_the_project(window, qtbot):
    doc, panel = window.document, window.training.config_panel
    assert not doc.is_modified()
    lr = panel.fields[("training", "lr")]
    lr.lineEdit().selectAll()
    QTest.keyClicks(lr.lineEdit(), "0.05")
    QTest.keyClick(lr.lineEdit(), Qt.Key.Key_Return)
    assert doc.project.training.lr == pytest.approx(0.05) and doc.is_modified()
    assert doc.undo_stack.undoText() == "Set learning rate"
    combo = panel.fields[("training", "optimizer")]
    i = combo.findData("sgd")
    combo.setCurrentIndex(i)
    combo.activated.emit(i)
    assert doc.project.training.optimizer == "sgd" and panel.fields[("training", "momentum")].isEnabled()
    window.act.undo.trigger()
    assert doc.project.training.optimizer == "adam" and not panel.fields[("training", "momentum")].isEnabled()
    window.act.undo.trigger()
    assert doc.project.training.lr == pytest.approx(0.01) and lr.value() == pytest.approx(0.01)
    assert not doc.is_modified()
    window.act.redo.trigger()
    assert doc.project.training.lr == pytest.approx(0.05)


def test_spin_clicks_on_one_field_merge_into_one_undo_step(window):
    doc, panel = window.document, window.training.config_panel
    epochs = panel.fields[("training", "epochs")]
    start = doc.undo_stack.count()
    for _ in range(3):
        epochs.stepUp()
    assert doc.project.training.epochs == 6 and doc.undo_stack.count() == start + 1
    doc.undo_stack.undo()
    assert doc.project.training.epochs == 3


def test_a_refused_setting_shows_the_reason_and_changes_nothing(window):
    doc, panel = window.document, window.training.config_panel
    panel.fields[("data", "val_fraction")].setValue(0.5)
    panel.fields[("data", "test_fraction")].setValue(0.6)
    assert doc.project.data.test_fraction == 0.15
    assert "add up to" in panel.error_label.text() and not panel.error_label.isHidden()
    assert panel.fields[("data", "test_fraction")].value() == pytest.approx(0.15)


def test_augmentation_and_data_set_choices_go_into_the_data_config(window):
    doc, panel = window.document, window.training.config_panel
    panel.fields[("augment", "noise")].setValue(0.2)
    assert doc.project.data.augment == {"noise": 0.2}
    panel.fields[("augment", "noise")].setValue(0.0)
    assert doc.project.data.augment == {}
    combo = panel.fields[("data", "dataset")]
    i = combo.findData("csv")
    combo.activated.emit(i)
    assert doc.project.data.dataset == "csv"
    assert panel.form_data.isRowVisible(panel.fields[("data", "path")])
    assert not panel.form_data.isRowVisible(panel.fields[("data", "samples")])
    assert "cross-entropy" in panel.loss_label.text()


def test_live_insight_settings_are_undoable_and_off_means_no_probes(window, qtbot):
    doc, panel, ctl = window.document, window.training.config_panel, window.training
    every = panel.fields[("probes", "every_batches")]
    every.setValue(7)
    assert doc.project.probes.every_batches == 7 and doc.undo_stack.undoText() == "Set live-view interval"
    panel.fields[("probes", "every_seconds")].setValue(2.5)
    assert doc.project.probes.every_seconds == 2.5
    cam = panel.fields[("probes", "cam_method")]
    cam.activated.emit(cam.findData("off"))
    assert doc.project.probes.cam_method == "off"
    panel.fields[("probes", "enabled")].setChecked(False)
    assert not doc.project.probes.enabled and not every.isEnabled()
    assert train(qtbot, window) == "finished"
    assert ctl.insight.probe_runs == 0 and ctl.insight.insight_runs == 0
    window.act.undo.trigger()
    assert doc.project.probes.enabled and every.isEnabled()
    assert train(qtbot, window) == "finished"
    assert ctl.insight.probe_runs >= 1 and ctl.insight.insight_runs == 3
    assert "cam" not in ctl.insight._probes  # class maps were off


# ---------------------------------------------------------------------- data preview
def test_data_preview_shows_images_with_their_labels(window, qtbot):
    window.document.replace(load_template("lenet5"))
    dialog = window.training.preview_data()
    assert not dialog.error and len(dialog.samples) == 32
    assert set(dialog.labels()) <= {str(d) for d in range(10)}
    assert dialog.view.layout().count() == 32
    dialog.close()


def test_data_preview_of_points_and_of_a_missing_file(window, qtbot):
    dialog = window.training.preview_data()
    assert not dialog.error and len(dialog.samples) > 100
    assert {"arm 0", "arm 1"} <= set(dialog.labels())
    dialog.close()
    window.document.project.data.dataset = "npz"
    dialog = window.training.preview_data()
    assert "path" in dialog.error and not dialog.error_label.isHidden()
    dialog.close()


# ---------------------------------------------------------------------- the worker itself
def test_the_worker_relays_batches_at_most_max_updates_per_s_times_a_second(monkeypatch):
    """Batches arriving a thousand a second (on the worker's clock) reach the window five times a second."""
    now = [0.0]
    monkeypatch.setattr(worker_mod, "clock", lambda: now[0])

    class Scripted:
        """A training process whose batches come one a millisecond for two seconds."""

        def events(self):
            for step in range(1, 2001):
                now[0] = step / 1000
                yield BatchesDone(epoch=1, batch=step, step=step, total_steps=2000, losses=np.array([float(step)]))
            yield Finished(stopped=False, epochs_run=1)

    worker = TrainingWorker(Scripted())
    relayed = []
    worker.event.connect(relayed.append)  # NOTE: the same thread: a direct call
    worker.run()
    batches = [e for e in relayed if isinstance(e, BatchesDone)]
    assert len(batches) == 2 * MAX_UPDATES_PER_S + 1  # 5 a second for 2 s, and what was left at the end
    sent = [b.step / 1000 for b in batches[:-1]]
    assert all(b - a >= 1 / MAX_UPDATES_PER_S - 1e-9 for a, b in zip(sent, sent[1:]))
    assert np.concatenate([b.losses for b in batches]).tolist() == list(range(1, 2001))  # every loss, in order
    assert isinstance(relayed[-1], Finished) and len(relayed) == len(batches) + 1
    worker.deleteLater()


def test_a_run_in_the_window_gets_every_batch_loss_in_few_signals(qtbot):
    p = small_mlp(epochs=2, batch_size=1)  # online learning: thousands of batches a second
    session = TrainingSession(project_to_dict(p))
    signals: list[BatchesDone] = []
    session.batches_done.connect(signals.append)
    with qtbot.waitSignal(session.ended, timeout=RUN_TIMEOUT) as ended:
        session.start()
    assert ended.args == ["finished"] and session.signals_received == len(signals)
    last = signals[-1]
    assert last.step == last.total_steps and sum(len(s.losses) for s in signals) == last.step  # every loss arrived
    # NOTE: the trainer sends at most MAX_UPDATES_PER_S batch events a second of its own time, plus one at each
    # epoch's end, and the worker only merges them: the count is bounded by the design, not by this machine.
    assert len(signals) <= last.elapsed * MAX_UPDATES_PER_S + p.training.epochs + 1  # + 1: rounding
    assert max(len(s.losses) for s in signals) > 1, "batches must be coalesced"


def test_closing_the_window_during_a_run_stops_the_thread(qtbot, no_thread_left_running):
    w = MainWindow()
    w.show()
    w.document.replace(small_mlp(epochs=500))
    session = w.training.start()
    qtbot.waitUntil(lambda: w.training.dashboard.batch.n > 0, timeout=RUN_TIMEOUT)
    w.close()
    assert session.thread is None and session.outcome == "stopped"
    assert all(_finished(t) for t in no_thread_left_running)
    w.deleteLater()


def test_curve_buffers_grow_by_doubling():
    buf = CurveBuffer(4)
    buf.extend(np.arange(3), np.arange(3))
    assert buf.capacity == 4
    buf.extend(np.arange(3, 10), np.arange(3, 10) * 2.0)
    assert buf.capacity == 16 and buf.n == 10 and buf.dirty
    assert list(buf.y[-2:]) == [16.0, 18.0]


def test_a_still_view_moves_only_when_the_data_leave_it_or_fill_too_little(qtbot):
    holder = QWidget()  # NOTE: a parent, so the plot is never a top-level window closed twice
    qtbot.addWidget(holder)
    plot = make_plot("Loss", "loss")
    plot.setParent(holder)
    view = StillView(plot)
    view.begin(30)
    assert view.view.viewRange()[0] == pytest.approx([-0.6, 30.6])  # the whole run from the start
    view.follow(np.array([2.0, 1.5, 1.0]))
    first = view.view.viewRange()[1]
    assert first[0] < 1.0 < 2.0 < first[1] and view.changes == 1
    view.follow(np.array([2.0, 1.5, 1.0, 1.2, 1.1, np.nan]))  # inside: the view stays
    assert view.changes == 1
    view.follow(np.array([2.5, 1.0]))  # above it: the view grows
    assert view.changes == 2 and view.view.viewRange()[1][1] > 2.5
    view.follow(np.array([1.0, 1.05]))  # the data fill too little of it: the view shrinks
    assert view.changes == 3 and view.view.viewRange()[1][1] < 1.2
    view.view.sigRangeChangedManually.emit([True, True])  # the person zoomed: the view is theirs
    view.follow(np.array([10.0]))
    assert view.changes == 3 and not view.active
    view.end()
    assert not any(view.view.autoRangeEnabled())  # the person's view stays after the run
    view.begin(10)
    view.end()
    assert all(view.view.autoRangeEnabled())  # a run left alone is fitted whole at its end


def test_a_still_view_reaches_to_known_bounds_and_then_never_moves(qtbot):
    holder = QWidget()
    qtbot.addWidget(holder)
    plot = make_plot("Validation score", "accuracy")
    plot.setParent(holder)
    view = StillView(plot)
    view.begin(30, floor=0.0, ceiling=1.0)
    for acc in ([0.3], [0.3, 0.7], [0.3, 0.7, 0.95, 0.99]):  # a rising accuracy, as in a run
        view.follow(np.array(acc))
    low, high = view.view.viewRange()[1]
    assert view.changes == 1 and low < 0.0 and 1.0 < high < 1.1  # 0..1 from the first frame on
    view.follow(np.array([0.3, -0.5]))  # a score below its floor (an R², say): the data win
    assert view.changes == 2 and view.view.viewRange()[1][0] < -0.5
    view.begin(30, floor=0.0)  # a loss: from 0 up to its largest value
    view.follow(np.array([2.3, 1.0, 0.2]))
    low, high = view.view.viewRange()[1]
    assert -0.1 < low < 0.0 and 2.3 < high < 2.6
    view.follow(np.array([2.3, 1.0, 0.2, 0.05, 0.01]))  # it falls: still 0 to the start's loss
    assert view.changes == 3


def test_scores_bounds_are_what_every_shown_score_shares():
    assert dashboard_mod.metric_bounds(["val_accuracy"]) == (0.0, 1.0)
    assert dashboard_mod.metric_bounds(["val_label_accuracy", "val_boxes_box_iou"]) == (0.0, 1.0)
    assert dashboard_mod.metric_bounds(["val_accuracy", "val_box_mae"]) == (0.0, None)
    assert dashboard_mod.metric_bounds(["val_r2"]) == (None, 1.0)
    assert dashboard_mod.metric_bounds(["val_something_new"]) == (None, None)


def test_epoch_dots_are_drawn_once_not_on_every_frame(window):
    """pyqtgraph keeps a rendered dot per pen and brush object: new objects each frame would grow it all run long."""
    dash = window.training.dashboard
    dash.begin_run()
    dash.on_started(Started(epochs=40, batches_per_epoch=1, main_metric="accuracy"))
    for epoch in range(1, 41):
        dash.on_epoch_done(EpochDone(epoch=epoch, step=epoch, train_loss=1 / epoch, val_loss=1.2 / epoch,
                                     scores={"val_accuracy": 1 - 1 / epoch}))
        dash.redraw()
    dash.on_finished(Finished(stopped=False, epochs_run=40))
    for curve in (dash.train_curve, dash.val_curve, *dash._metric_curves.values()):
        assert len(curve.scatter.data) == 40
        assert len(curve.scatter.fragmentAtlas) == 1


def test_live_progress_repaints_without_laying_out_the_window_again(window, qtbot):
    """A QLabel's new text re-lays out every dock of the main window; the speed must not."""
    from PySide6.QtCore import QEvent, QObject

    class Count(QObject):
        n = 0

        def eventFilter(self, obj, event):  # noqa: N802
            self.n += event.type() == QEvent.Type.LayoutRequest
            return False

    dash = window.training.dashboard
    dash.begin_run()
    dash.on_started(Started(epochs=10, batches_per_epoch=20, device="CPU", main_metric="accuracy"))
    counter = Count()

    def frames(steps):
        for step in steps:
            dash.on_batches_done(BatchesDone(epoch=1 + (step - 1) // 20, batch=1 + (step - 1) % 20, step=step,
                                             total_steps=200, losses=np.array([1.0 / step]),
                                             samples_per_s=1000.0 + 37 * step, eta=10.0 - step / 4))
            if step % 4 == 0:
                dash.redraw()
                QApplication.processEvents()

    frames(range(1, 17))  # NOTE: the docks settle once as the run begins
    window.installEventFilter(counter)
    frames(range(17, 41))
    window.removeEventFilter(counter)
    assert dash.speed_label.text() == "2,480 samples/s" and counter.n == 0
    dash.on_finished(Finished(stopped=False, epochs_run=2))


def test_a_frame_draws_the_score_plot_a_moment_after_the_loss_plot(window, qtbot):
    dash = window.training.dashboard
    dash.begin_run()
    dash.on_started(Started(epochs=5, batches_per_epoch=1, main_metric="accuracy"))
    dash.on_epoch_done(EpochDone(epoch=1, step=1, train_loss=1.0, val_loss=1.1, scores={"val_accuracy": 0.5}))
    dash.redraw(split=True)  # what the frame timer does
    score = dash._metric_curves["val_accuracy"]
    assert len(dash.val_curve.getData()[0]) == 1 and score.getData()[0] is None  # the loss plot first
    qtbot.waitUntil(lambda: score.getData()[1] is not None and list(score.getData()[1]) == [0.5], timeout=2000)
    dash.on_finished(Finished(stopped=False, epochs_run=1))


def test_the_plots_are_set_up_before_training_begins(window, monkeypatch):
    """Pressing Train sets the plots' ranges and labels while the data load, not once batches arrive."""
    window.document.replace(load_template("lenet5"))
    dash = window.training.dashboard
    set_ups = []
    monkeypatch.setattr(dash.metric_view, "begin", lambda *a, **k: set_ups.append((a, k)))
    dash.begin_run(epochs=12, main_metric="accuracy")
    assert set_ups == [((12, 0.0, 1.0), {})]  # the whole run's epochs, and accuracy's bounds
    assert dash.metric_plot.getPlotItem().getAxis("left").labelText == "accuracy"
    dash.on_started(Started(epochs=12, batches_per_epoch=5, main_metric="accuracy"))
    assert len(set_ups) == 1  # guessed right: nothing to redo
    dash.on_started(Started(epochs=20, batches_per_epoch=5, main_metric="accuracy"))
    assert len(set_ups) == 2  # an override of the epochs: set up again
    dash.on_finished(Finished(stopped=True, epochs_run=0))
    assert main_metric(window.document.graph) == "accuracy"  # what Train passes for LeNet-5


def test_the_dashboard_slows_its_frames_while_the_window_uses_too_much_cpu(window, monkeypatch):
    dash = window.training.dashboard
    clock = {"wall": 100.0, "cpu": 10.0}
    monkeypatch.setattr(dashboard_mod, "_now", lambda: (clock["wall"], clock["cpu"]))
    dash._timer.setInterval(200)
    dash._last_tick = None

    def tick(cpu_share: float) -> int:
        clock["wall"] += 1.0
        clock["cpu"] += cpu_share
        dash._pace()
        return dash._timer.interval()

    tick(0.0)  # the first frame only starts the clock
    busy = [tick(3 * dashboard_mod.UI_BUDGET) for _ in range(10)]
    assert busy[0] > 200 and busy == sorted(busy) and busy[-1] == int(1000 / dashboard_mod.MIN_HZ)
    idle = [tick(0.0) for _ in range(10)]
    assert idle == sorted(idle, reverse=True) and idle[-1] == 1000 // dashboard_mod.MAX_HZ


def test_the_batch_size_says_a_last_batch_of_one_is_left_out_with_batchnorm(window):
    tip = window.training.config_panel.fields[("training", "batch_size")].toolTip()
    assert "BatchNorm" in tip and "single sample is left out" in tip

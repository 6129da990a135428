"""Pause → edit → resume in the window: the paused run's settings unlock (and only they), edits are undoable,
Resume applies them and marks them on the curves and in the run's folder, a refusal keeps the run paused,
and a changed network starts a new run from the paused weights."""

from __future__ import annotations

import json
from pathlib import Path

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip

from designer import theme
from designer.canvas.items import NodeItem
from designer.fields import disabled_reason
from designer.inspector import PAUSE_REASON as INSPECTOR_PAUSE_REASON
from designer.training.change_marks import APPLY_TEXT
from designer.training.config_panel import PAUSE_REASON
from designer.training.pause_edit import UNDO_LIMIT
from engine.graph import Graph
from engine.layout import auto_layout
from engine.templates import load_template
from engine.training.live import KEPT_WEIGHTS
from tests.designer.conftest import training_window
from tests.engine.helpers import chain, vector_input

RUN_TIMEOUT = 30_000
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture(autouse=True)
def _light_theme():
    theme.apply_theme(QApplication.instance(), False)


def mlp(epochs: int = 400, dropout: bool = False):
    p = load_template("mlp")
    p.data.samples = 300
    p.training.epochs = epochs
    p.training.device = "cpu"
    p.probes.enabled = False
    if dropout:
        g = Graph()
        x = vector_input(g, 2)
        ids = chain(g, x, ("Dense", {"units": 16}), "ReLU", ("Dropout", {"p": 0.5}), ("Dense", {"units": 2}),
                    "ClassificationOutput")
        g.rename(ids[2], "drop")
        for nid, pos in auto_layout(g).items():
            g.move(nid, pos)
        p.graph = g
    return p


@pytest.fixture
def window(qtbot):
    with training_window(qtbot, mlp()) as w:
        yield w


def pause_a_run(qtbot, w):
    """Train (the dashboard's button), wait for a batch, press Pause and wait for the loop's acknowledgement."""
    dash = w.training.dashboard
    qtbot.mouseClick(dash.train_button, Qt.MouseButton.LeftButton)
    session = w.training.session
    qtbot.waitUntil(lambda: dash.batch.n > 0, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(session.paused, timeout=RUN_TIMEOUT) as paused:
        qtbot.mouseClick(dash.pause_button, Qt.MouseButton.LeftButton)
    return session, paused.args[0]


def type_into(spin, text: str) -> None:
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, text)
    QTest.keyClick(spin, Qt.Key.Key_Return)


def hover_tip(widget) -> str:
    """The tooltip a pause of the pointer over ``widget`` shows."""
    QToolTip.hideText()
    at = widget.rect().center()
    QApplication.sendEvent(widget, QHelpEvent(QEvent.Type.ToolTip, at, widget.mapToGlobal(at)))
    return QToolTip.text() if QToolTip.isVisible() else ""


def marks_on(plot) -> list[tuple[float, str]]:
    return [(line.value(), line.label.toPlainText()) for line in plot.getPlotItem().items
            if isinstance(line, pg.InfiniteLine)]


def click_block(w, node_id: str) -> None:
    item = w.scene.node_item(node_id)
    w.view.centerOn(item)
    at = w.view.mapFromScene(item.pos() + QPointF(NodeItem.WIDTH / 2, NodeItem.HEADER / 2))
    QTest.mouseClick(w.view.viewport(), Qt.MouseButton.LeftButton, pos=at)


def stop(qtbot, w) -> None:
    with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(w.training.dashboard.stop_button, Qt.MouseButton.LeftButton)


# ---------------------------------------------------------------------- settings
def test_while_paused_only_the_run_s_settings_unlock_and_resume_applies_a_new_learning_rate(window, qtbot):
    panel, tc = window.training.config_panel, window.training
    epochs, lr = panel.fields[("training", "epochs")], panel.fields[("training", "lr")]
    type_into(epochs, "300")  # NOTE: an edit before the run: Undo while paused must not reach it
    assert window.document.project.training.epochs == 300
    session, paused = pause_a_run(qtbot, window)

    assert panel.isEnabled() and lr.isEnabled() and panel.fields[("training", "batch_size")].isEnabled()
    assert not epochs.isEnabled() and disabled_reason(epochs) == PAUSE_REASON
    assert PAUSE_REASON in hover_tip(epochs), "a locked field says why on hover"
    assert not panel.fields[("data", "dataset")].isEnabled() and panel.lock_note.isVisibleTo(panel)
    assert window.view.is_read_only(), "the network stays locked"

    type_into(lr, "0.001")
    assert window.document.project.training.lr == 0.001
    QTest.keyClick(lr, Qt.Key.Key_Z, CTRL)  # undo, as anywhere in the window
    assert window.document.project.training.lr == 0.01
    QTest.keyClick(lr, Qt.Key.Key_Y, CTRL)
    assert window.document.project.training.lr == 0.001
    QTest.keyClick(lr, Qt.Key.Key_Z, CTRL)
    QTest.keyClick(lr, Qt.Key.Key_Z, CTRL)  # NOTE: the next step back is the epochs, set before the run
    assert window.document.project.training.lr == 0.01 and window.document.project.training.epochs == 300
    assert window.statusBar().currentMessage() == UNDO_LIMIT
    type_into(lr, "0.001")

    with qtbot.waitSignal(session.resumed, timeout=RUN_TIMEOUT) as resumed:
        qtbot.mouseClick(tc.dashboard.pause_button, Qt.MouseButton.LeftButton)
    ev = resumed.args[0]
    assert ev.changes == {"training.lr": (0.01, 0.001)} and ev.step == paused.step
    assert not panel.isEnabled() and not window.inspector.isEnabled(), "locked again while it trains"
    for plot in (tc.dashboard.loss_plot, tc.dashboard.metric_plot):
        assert marks_on(plot) == [(pytest.approx(ev.at), "lr 0.01 → 0.001")]
    assert "Resumed with lr 0.01 → 0.001" in tc.dashboard.message_text()
    epoch = ev.epoch
    qtbot.waitUntil(lambda: len(tc.dashboard.val_epochs) >= epoch, timeout=RUN_TIMEOUT)
    stop(qtbot, window)

    summary = json.loads((session.run_dir / "summary.json").read_text())
    assert summary["changes"] == [{"step": ev.step, "epoch": ev.at, "changes": {"training.lr": [0.01, 0.001]}}]
    assert json.loads((session.run_dir / "project.json").read_text())["training"]["lr"] == 0.001
    rows = (session.run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert float(rows[epoch].split(",")[header.index("lr")]) == 0.001, "the epoch trained at the new rate"


def test_the_runs_dock_marks_a_stored_run_s_changes_and_says_when_they_happened(window, qtbot):
    tc = window.training
    session, _ = pause_a_run(qtbot, window)
    type_into(tc.config_panel.fields[("training", "batch_size")], "8")
    ends = {}
    # NOTE: listening before Resume: on a fast machine the epoch can end before the acknowledgement is handled
    session.epoch_done.connect(lambda done: ends.setdefault(done.epoch, done.step))
    with qtbot.waitSignal(session.resumed, timeout=RUN_TIMEOUT) as resumed:
        qtbot.mouseClick(tc.dashboard.pause_button, Qt.MouseButton.LeftButton)
    ev = resumed.args[0]
    assert ev.changes == {"training.batch_size": (32, 8)} and ev.epoch_batches > ev.batch
    qtbot.waitUntil(lambda: ev.epoch in ends and tc.dashboard.batch.n >= ends[ev.epoch], timeout=RUN_TIMEOUT)
    xs = tc.dashboard.batch.x
    assert xs[ev.step - 1] == pytest.approx(ev.at), "the last batch before the pause sits at the mark"
    assert xs[ends[ev.epoch] - 1] == pytest.approx(ev.epoch), "and the epoch's last batch at its end"
    assert ends[ev.epoch] - ev.step == ev.epoch_batches - ev.batch, "the epoch's batches after the change"
    assert all(b > a for a, b in zip(xs, xs[1:])), "the batches after the change go on from where the epoch stood"
    stop(qtbot, window)
    window.document.project.training.epochs = 1
    with qtbot.waitSignal(tc.run_ended, timeout=RUN_TIMEOUT):
        tc.start()
    runs = tc.runs
    changed = next(e for e in runs.entries if e.record.changes)
    at = f"{ev.at:.2f}".rstrip("0").rstrip(".")
    assert marks_on(runs.loss_plot) == [(pytest.approx(ev.at), "batch size 32 → 8")]
    assert f"{changed.name}: batch size changed at epoch {at}" in runs.diff_label.text()
    runs.list.setCurrentRow(0)
    assert f"batch size changed at epoch {at} (32 → 8)" in runs.details.text()


def test_a_change_the_run_refuses_keeps_it_paused_with_a_message(window, qtbot):
    tc = window.training
    session, paused = pause_a_run(qtbot, window)
    with qtbot.waitSignal(session.paused, timeout=RUN_TIMEOUT) as again:
        session.resume({"training.momentum": 0.5})  # NOTE: the form keeps it for SGD; a stored run may not
    assert "only SGD uses momentum" in again.args[0].refused and session.is_paused()
    assert tc.pause_action.text() == "&Resume" and tc.dashboard.message_kind == "error"
    assert "Not resumed" in tc.dashboard.message_text() and "only SGD uses momentum" in tc.dashboard.message_text()
    assert tc.config_panel.fields[("training", "lr")].isEnabled(), "the settings stay open"
    with qtbot.waitSignal(session.resumed, timeout=RUN_TIMEOUT) as resumed:
        qtbot.mouseClick(tc.dashboard.pause_button, Qt.MouseButton.LeftButton)
    assert resumed.args[0].changes == {} and resumed.args[0].step == paused.step
    stop(qtbot, window)


def test_a_dropout_rate_changed_in_the_inspector_reaches_the_run(qtbot):
    with training_window(qtbot, mlp(dropout=True)) as w:
        drop = next(nid for nid, n in w.document.graph.nodes.items() if n.name == "drop")
        dense = next(nid for nid, n in w.document.graph.nodes.items() if n.type == "Dense")
        session, _ = pause_a_run(qtbot, w)
        click_block(w, dense)
        assert w.inspector.selection == [dense] and w.inspector.isEnabled()
        units = w.inspector.field("units")
        assert not units.isEnabled() and disabled_reason(units) == INSPECTOR_PAUSE_REASON
        click_block(w, drop)
        rate = w.inspector.field("p")
        assert rate.isEnabled()
        type_into(rate, "0.2")
        assert w.document.graph.nodes[drop].params["p"] == 0.2
        with qtbot.waitSignal(session.resumed, timeout=RUN_TIMEOUT) as resumed:
            qtbot.mouseClick(w.training.dashboard.pause_button, Qt.MouseButton.LeftButton)
        assert resumed.args[0].changes == {"blocks.drop.p": (0.5, 0.2)}
        assert marks_on(w.training.dashboard.loss_plot)[0][1] == "drop p 0.5 → 0.2"
        stop(qtbot, w)


# ---------------------------------------------------------------------- the network
def test_a_network_changed_while_paused_starts_a_new_run_from_the_paused_weights(window, qtbot):
    tc, dash = window.training, window.training.dashboard
    fc2 = next(nid for nid, n in window.document.graph.nodes.items() if n.name == "fc2")
    old, paused = pause_a_run(qtbot, window)
    bar = dash.pause_bar
    assert bar.isVisible() and bar.edit_button.isVisible() and not bar.apply_button.isVisible()
    click_block(window, fc2)
    assert not window.inspector.field("units").isEnabled(), "locked until the person asks to change the network"

    qtbot.mouseClick(bar.edit_button, Qt.MouseButton.LeftButton)
    assert not window.view.is_read_only() and bar.apply_button.isVisible() and bar.apply_button.text() == APPLY_TEXT
    assert not bar.apply_button.isEnabled(), "nothing changed yet"
    units = window.inspector.field("units")
    assert units.isEnabled()
    type_into(units, "24")
    assert window.document.graph.nodes[fc2].params["units"] == 24
    assert bar.apply_button.isEnabled() and not tc.pause_action.isEnabled(), "Resume cannot go on with it"
    QTest.keyClick(units, Qt.Key.Key_Z, CTRL)
    assert tc.pause_action.isEnabled() and not bar.apply_button.isEnabled(), "undone: this run can resume"
    QTest.keyClick(units, Qt.Key.Key_Y, CTRL)

    starts = []  # NOTE: the new run's Started, caught however soon it comes after the run starts
    tc.run_started.connect(lambda: tc.session.started.connect(starts.append))
    with qtbot.waitSignal(tc.run_started, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(bar.apply_button, Qt.MouseButton.LeftButton)
    new = tc.session
    assert new is not old and old.outcome == "stopped"
    qtbot.waitUntil(lambda: bool(starts), timeout=RUN_TIMEOUT)
    transfer = starts[0].transfer
    assert transfer["kept"] == ["fc1"] and transfer["fresh"] == {"fc2": "its shape changed", "fc3": "its shape changed"}
    assert transfer["step"] == paused.step
    text = dash.message_text()
    assert "kept fc1" in text and "fc2 (its shape changed)" in text and "fc3 (its shape changed)" in text
    assert (Path(old.run_dir) / KEPT_WEIGHTS).is_file()
    stop(qtbot, window)
    parent = json.loads((new.run_dir / "summary.json").read_text())["parent"]
    assert parent["run"] == old.run_dir.name and parent["step"] == paused.step and parent["kept"] == ["fc1"]
    assert json.loads((new.run_dir / "project.json").read_text())["graph"]["nodes"][3]["params"]["units"] == 24

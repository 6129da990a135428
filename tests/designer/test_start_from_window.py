"""Train → Start From Weights…: a new run of the network as it is now, from an earlier run's weights; the
dashboard names what was kept, the run records its parent, and the action waits while a run trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from designer import theme
from designer.main_window import MainWindow
from engine.project import save_project
from engine.training.runs import read_run
from tests.designer.conftest import small_cnn

RUN_TIMEOUT = 120_000
CONVS = ("conv1", "conv2")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, qapp):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


@pytest.fixture
def window(qtbot, tmp_path):
    """A shown window with a saved LeNet-5 project (one epoch on shapes); closed, its runs stopped, at the end."""
    p = small_cnn(samples=150, epochs=1)
    p.probes.enabled = False
    path = tmp_path / "lenet.json"
    save_project(p, path)
    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    assert w.files.open_path(path, ask=False)
    yield w
    w.training.shutdown()
    w.document.undo_stack.setClean()
    w.close()
    w.deleteLater()
    QApplication.processEvents()


def by_name(graph, name: str) -> str:
    return next(nid for nid, n in graph.nodes.items() if n.name == name)


def new_head(graph) -> None:
    """Replace fc1..fc3 by a new head (Dense 32 → ReLU → Dense head2) and freeze the convolutions."""
    classes = graph.nodes[by_name(graph, "fc3")].params["units"]
    for name in ("fc1", "relu3", "fc2", "relu4", "fc3"):
        graph.remove_node(by_name(graph, name))
    head1 = graph.add_node("Dense", {"units": 32}, name="head1").id
    relu = graph.add_node("ReLU", {}).id
    head2 = graph.add_node("Dense", {"units": classes}, name="head2").id
    graph.connect(by_name(graph, "flatten"), 0, head1, 0)
    graph.connect(head1, 0, relu, 0)
    graph.connect(relu, 0, head2, 0)
    graph.connect(head2, 0, by_name(graph, "output"), 0)
    for name in CONVS:
        graph.set_params(by_name(graph, name), {"trainable": False})


def train_a(qtbot, w: MainWindow):
    with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT) as blocker:
        assert w.training.start() is not None
    assert blocker.args == ["finished"]
    (entry,) = w.training.runs.entries
    return entry


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "best.pt", map_location="cpu", weights_only=True)["model"]


@pytest.mark.slow  # NOTE: two real LeNet-5 runs in the child process
def test_start_from_a_run_keeps_the_frozen_features_and_says_so(qtbot, window, monkeypatch):
    w = window
    entry = train_a(qtbot, w)
    new_head(w.document.graph)
    assert w.document.analyze_now().valid
    asked = []

    def get_item(parent, title, label, items, current, editable):
        asked.append(list(items))
        return items[0], True

    monkeypatch.setattr(QInputDialog, "getItem", get_item)
    messages = []
    with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT) as blocker:
        assert w.training.start_from_action in w.training.menu.actions()
        w.training.start_from_action.trigger()  # Train → Start From Weights…
        session = w.training.session
        assert session is not None
        assert not w.training.start_from_action.isEnabled() and not w.training.train_action.isEnabled()
        session.started.connect(lambda ev: messages.append((ev.transfer, w.training.dashboard.message_text())))
    assert blocker.args == ["finished"]
    assert asked == [[f"{entry.name} ({entry.path.name})", "A checkpoint or weights file…"]]
    assert w.training.start_from_action.isEnabled()

    (transfer, text), = messages
    assert transfer["kept"] == list(CONVS) and transfer["fresh"] == {"head1": "new", "head2": "new"}
    assert text.startswith(f"A new run from {entry.name}'s weights: kept conv1, conv2; started afresh: head1 (new)")
    second = w.training.runs.entries[-1]
    assert second.path != entry.path
    parent = read_run(second.path).parent
    assert parent["run"] == entry.path.name and parent["kept"] == list(CONVS)
    before, after = weights(entry.path), weights(second.path)
    for key in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
        assert torch.equal(before[key], after[key]), key  # taken over, and frozen while B trained


def test_a_bad_checkpoint_file_is_a_warning_and_no_run(qtbot, window, monkeypatch, tmp_path):
    w = window
    bad = tmp_path / "nothing-here.pt"
    monkeypatch.setattr(QInputDialog, "getItem", lambda parent, title, label, items, *a: (items[-1], True))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: warnings.append((title, text)))
    assert w.training.start_from_weights() is None
    assert warnings == [("Start from weights", f"{bad}: no such run folder or checkpoint file")]
    assert w.training.session is None and w.training.train_action.isEnabled()


def test_a_damaged_checkpoint_ends_the_run_with_its_reason(qtbot, window, tmp_path):
    w = window
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(b"not a torch file")
    with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT) as blocker:
        assert w.training.start_from_weights(bad) is not None
    assert blocker.args == ["failed"]
    text = w.training.dashboard.message_text()
    assert str(bad) in text and "not a readable checkpoint" in text
    assert w.training.runs.entries == [] and w.training.start_from_action.isEnabled()


def test_cancelling_the_choice_starts_nothing(window, monkeypatch):
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("", False))
    assert window.training.start_from_weights() is None and window.training.session is None

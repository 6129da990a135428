"""The main window as a person uses it: start state, templates, palette, inspector, files, undo."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from designer import theme
from designer.main_window import MainWindow
from engine.project import graph_to_dict, load_project, save_project
from engine.templates import list_templates, load_template


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)
    yield
    theme.apply_theme(QApplication.instance(), False)


@pytest.fixture
def make_window(open_windows):
    """Open main windows of 1280×800; each is closed (without a prompt) at the end of the test."""
    return open_windows


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def settle(qtbot, w: MainWindow) -> None:
    """Handle the events the last gesture posted, then run the debounced analysis now."""
    QApplication.processEvents()
    w.document.analyze_now()


def node_named(w: MainWindow, name: str) -> str:
    return next(nid for nid, n in w.document.graph.nodes.items() if n.name == name)


def summary_cell(w: MainWindow, node_id: str, col: int) -> str:
    model = w.summary.model
    return model.index(model.row_of(node_id), col).data()


def drop(target, mime: QMimeData, pos: QPoint) -> QDropEvent:
    """Deliver a drag-enter, a drag-move and a drop of ``mime`` at ``pos`` to ``target``."""
    rest = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    # NOTE: drag-enter/move take a QPoint, the drop a QPointF (PySide6 6.11's signatures).
    QApplication.sendEvent(target, QDragEnterEvent(QPoint(pos), *rest))
    QApplication.sendEvent(target, QDragMoveEvent(QPoint(pos), *rest))
    event = QDropEvent(QPointF(pos), *rest)
    QApplication.sendEvent(target, event)
    return event


# ---------------------------------------------------------------------- start state and templates
def test_opens_in_the_start_state(window, qtbot):
    assert window.is_start_state()
    panel = window.start_panel
    assert panel.isVisible()
    assert panel.new_button.text() == "New blank" and panel.open_button.text() == "Open…"
    assert panel.card_names() == [t.name for t in list_templates()]
    assert window.windowTitle() == "Untitled — Net Designer"
    assert window.validity_label.text() == "No blocks"
    qtbot.waitUntil(lambda: window.device_label.text() in ("Device: CPU",) or "CUDA" in window.device_label.text())
    QTest.mouseClick(panel.new_button, Qt.MouseButton.LeftButton)
    assert not window.is_start_state()
    assert len(window.document.graph) == 0


def test_template_card_opens_the_template(window, qtbot):
    card = next(c for c in window.start_panel.cards if c.name == "lenet5")
    QTest.mouseClick(card, Qt.MouseButton.LeftButton, pos=card.rect().center())
    graph = window.document.graph
    assert len(graph) > 5
    assert {item.node_id for item in window.scene.node_items()} == set(graph.nodes)
    assert not window.is_start_state()
    assert window.windowTitle().startswith("LeNet-5 — ")
    settle(qtbot, window)
    assert window.summary.model.rowCount() == len(graph) + 1
    assert window.validity_label.text().startswith("✓")
    assert window.params_label.text() == f"Params: {window.document.analysis.total_params:,}"


def test_every_template_opens(window, qtbot):
    for info in list_templates():
        assert window.new_from_template(info.name)
        graph = window.document.graph
        assert len(window.scene.node_items()) == len(graph) > 0
        assert len(window.scene.edge_items()) == len(graph.edges)
        settle(qtbot, window)
        assert window.document.analysis.valid, (info.name, window.document.analysis.errors())
        assert window.summary.model.rowCount() == len(graph) + 1


# ---------------------------------------------------------------------- palette to canvas
def test_palette_double_click_adds_a_block_at_the_view_centre(window, qtbot):
    tree = window.layer_palette.tree
    item = window.layer_palette.item_for("Conv2d")
    tree.scrollToItem(item)
    pos = tree.visualItemRect(item).center()
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    QTest.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    nodes = list(window.document.graph.nodes.values())
    assert [n.type for n in nodes] == ["Conv2d"]
    centre = window.view.mapToScene(window.view.viewport().rect().center())
    x, y = nodes[0].pos
    assert abs(x + 90 - centre.x()) < 60 and abs(y + 35 - centre.y()) < 60
    assert not window.is_start_state()
    assert window.scene.selected_node_ids() == [nodes[0].id]
    assert window.inspector.form is not None and window.inspector.form.spec.type_id == "Conv2d"


def test_dropping_a_palette_layer_on_the_canvas_adds_it_there(window, qtbot):
    window.files.new_blank()
    mime = window.layer_palette.mime_data_for("Dense")
    viewport = window.view.viewport()
    at = QPoint(200, 150)
    event = drop(viewport, mime, at)
    assert event.isAccepted()
    (node,) = window.document.graph.nodes.values()
    assert node.type == "Dense"
    where = window.view.mapToScene(at)
    assert abs(node.pos[0] + 90 - where.x()) < 30 and abs(node.pos[1] + 35 - where.y()) < 30


def test_dropping_a_layer_on_the_start_panel_starts_a_network(window, qtbot):
    panel = window.start_panel
    drop(panel, window.layer_palette.mime_data_for("Input"), panel.rect().center())
    assert [n.type for n in window.document.graph.nodes.values()] == ["Input"]
    assert not window.is_start_state()


# ---------------------------------------------------------------------- inspector, summary, undo
def test_inspector_edit_updates_the_summary_and_undo_redo_shortcuts(window, qtbot):
    window.new_from_template("lenet5")
    conv = node_named(window, "conv1")
    window.scene.select_nodes([conv])
    settle(qtbot, window)
    assert summary_cell(window, conv, 2) == "6×28×28"
    spin = window.inspector.field("filters")
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "12")
    QTest.keyClick(spin, Qt.Key.Key_Return)
    settle(qtbot, window)
    assert window.document.graph.nodes[conv].params["filters"] == 12
    assert summary_cell(window, conv, 2) == "12×28×28"
    assert window.windowTitle().startswith("LeNet-5* — ")

    window.view.setFocus()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot, window)
    assert window.document.graph.nodes[conv].params["filters"] == 6
    assert summary_cell(window, conv, 2) == "6×28×28"
    assert spin.value() == 6
    assert not window.windowTitle().startswith("LeNet-5*")
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.document.graph.nodes[conv].params["filters"] == 12
    window.act.undo.trigger()
    QTest.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.document.graph.nodes[conv].params["filters"] == 12
    assert window.act.undo.text().startswith("&Undo Set filters")


def test_invalid_value_shows_the_reason_and_changes_nothing(window, qtbot):
    window.new_from_template("lenet5")
    conv = node_named(window, "conv1")
    window.scene.select_nodes([conv])
    before = graph_to_dict(window.document.graph)
    spin = window.inspector.field("kernel_size")
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "99")
    QTest.keyClick(spin, Qt.Key.Key_Return)
    reason = window.inspector.error_text("kernel_size")
    assert "at most 64" in reason
    assert window.inspector.form.error_label("kernel_size").isVisible()
    assert graph_to_dict(window.document.graph) == before
    assert window.document.undo_stack.count() == 0
    assert spin.value() == 5


def test_summary_and_canvas_selections_follow_each_other(window, qtbot):
    window.new_from_template("lenet5")
    settle(qtbot, window)
    pool = node_named(window, "pool1")
    table = window.summary.table
    rect = table.visualRect(window.summary.model.index(window.summary.model.row_of(pool), 0))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.scene.selected_node_ids() == [pool]
    assert window.inspector.selection == [pool]
    conv = node_named(window, "conv2")
    window.scene.select_nodes([conv])
    rows = [i.row() for i in table.selectionModel().selectedRows()]
    assert rows == [window.summary.model.row_of(conv)]


def test_problem_click_selects_and_centres_the_block(window, qtbot):
    window.new_from_template("lenet5")
    window.view.add_at_center("Dense")  # unwired: listed as "not connected yet"
    lone = window.scene.selected_node_ids()[0]
    window.scene.select_nodes([])
    window.view.centerOn(QPointF(-5000, -5000))
    settle(qtbot, window)
    assert "1 not connected yet" in window.problems_dock.windowTitle()
    item = window.problems.item_for(lone)
    window.problems_dock.raise_()
    lst = window.problems.list
    lst.scrollToItem(item)
    QTest.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=lst.visualItemRect(item).center())
    assert window.scene.selected_node_ids() == [lone]
    block = window.scene.node_item(lone).sceneBoundingRect().center()
    shown = window.view.mapToScene(window.view.viewport().rect()).boundingRect()
    assert shown.contains(block)


def test_edit_menu_actions(window, qtbot):
    window.new_from_template("mlp")
    n = len(window.document.graph)
    first = next(iter(window.document.graph.nodes))
    window.scene.select_nodes([first])
    window.act.duplicate.trigger()
    assert len(window.document.graph) == n + 1
    window.act.delete.trigger()
    assert len(window.document.graph) == n
    window.act.select_all.trigger()
    assert len(window.scene.selected_node_ids()) == n
    window.act.cut.trigger()
    assert len(window.document.graph) == 0
    window.act.paste.trigger()
    assert len(window.document.graph) == n
    zoom = window.view.zoom()
    window.act.zoom_in.trigger()
    assert window.view.zoom() > zoom
    window.act.fit_all.trigger()
    window.act.arrange_tb.trigger()
    xs = {round(nd.pos[0]) for nd in window.document.graph.nodes.values()}
    assert len(xs) < n  # top to bottom: the chain shares a column
    assert window.act.redo.shortcuts()[1].toString() == "Ctrl+Y"


# ---------------------------------------------------------------------- files
def test_save_then_open_in_a_new_window_gives_the_same_graph(make_window, qtbot, tmp_path, monkeypatch):
    first = make_window()
    first.new_from_template("resnet")
    first.scene.select_nodes([next(iter(first.document.graph.nodes))])
    path = tmp_path / "mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    first.act.save.trigger()
    assert path.exists()
    assert "*" not in first.windowTitle()
    second = make_window()
    assert second.open_path(path)
    assert graph_to_dict(second.document.graph) == graph_to_dict(first.document.graph)
    assert second.document.path == path
    from designer.file_ops import recent_files

    assert recent_files()[0] == str(path.resolve())


def test_title_shows_the_name_and_an_unsaved_marker(window, qtbot, tmp_path):
    window.new_from_template("perceptron")
    name = window.document.project.name
    assert window.windowTitle() == f"{name} — Net Designer"
    window.view.add_at_center("ReLU")
    assert window.windowTitle() == f"{name}* — Net Designer"
    window.files.save_to(tmp_path / "p.json")
    assert window.windowTitle() == f"{name} (p.json) — Net Designer"


def test_closing_with_unsaved_changes_asks_first(make_window, qtbot, monkeypatch):
    w = make_window()
    w.new_from_template("mlp")
    w.view.add_at_center("ReLU")
    asked = []

    def answer(button):
        def question(*args, **kwargs):
            asked.append(args[2] if len(args) > 2 else "")
            return button

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    assert not w.close()
    assert w.isVisible() and len(asked) == 1 and "not saved" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    assert not w.files.new_blank()  # replacing asks too
    assert len(w.document.graph) > 0
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Discard))
    assert w.close()
    assert len(asked) == 3


def test_dropping_a_project_file_on_the_window_opens_it(window, qtbot, tmp_path):
    path = tmp_path / "dropped.json"
    save_project(load_template("lenet5"), path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = drop(window, mime, QPoint(400, 300))
    assert event.isAccepted()
    qtbot.waitUntil(lambda: window.document.path == path)
    assert graph_to_dict(window.document.graph) == graph_to_dict(load_project(path).graph)
    assert not window.is_start_state()


def test_an_unreadable_project_is_explained_and_the_start_state_stays(window, qtbot, tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "net-designer-project", "version": 1, "graph": {"nodes": [{"id": 3}]}}))
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: shown.append(a[2]))
    assert not window.open_path(bad)
    assert shown and "bad.json" in shown[0]
    assert window.is_start_state()


def test_app_run_with_an_unreadable_path_opens_the_start_state(qtbot, tmp_path, monkeypatch):
    from designer import app as app_module

    shown, seen = [], []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: shown.append(a[2]))

    def fake_exec(self_or_none=None) -> int:
        qtbot.waitUntil(lambda: bool(shown))  # NOTE: the file is opened from the event loop, once it runs
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow) and w.isVisible():
                seen.append(w.is_start_state())
                w.close()
                w.deleteLater()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert app_module.run([str(tmp_path / "missing.json")]) == 0
    assert shown and "missing.json" in shown[0]
    assert seen == [True]


def test_export_and_code_preview(window, qtbot, tmp_path, monkeypatch):
    window.new_from_template("lenet5")
    dialog = window.files.preview_code()
    assert dialog is not None and "class LeNet5(nn.Module)" in dialog.editor.toPlainText()
    dialog.close()
    target = tmp_path / "lenet.py"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.act.export_code.trigger()
    assert target.exists() and "class LeNet5" in target.read_text()
    window.view.add_at_center("Dense")  # an error: nothing to export
    settle(qtbot, window)
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    assert window.files.export_code(tmp_path / "broken.py") == []
    assert warned and "error" in warned[0]


# ---------------------------------------------------------------------- theme
def test_theme_toggle_switches_and_is_remembered(window, qtbot):
    assert not window.act.dark_theme.isChecked()
    window.act.dark_theme.trigger()
    assert theme.is_dark() and theme.saved_dark()
    assert window.scene.dark
    window.act.dark_theme.trigger()
    assert not theme.is_dark() and not theme.saved_dark()
    assert not window.scene.dark

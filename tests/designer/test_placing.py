"""Placing blocks as a person does it, with real mouse and key events: the palette's search and
double-click, paste at the pointer, unwired blocks, replacing a wire, Actual size, the Inspector."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from designer.canvas.items import GRID, NOT_CONNECTED, NodeItem
from designer.main_window import MainWindow
from designer.palette import PaletteWidget, layer_tooltip
from engine.layers.registry import get
from engine.project import graph_to_dict

CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(light_window):
    return light_window


def _named(w: MainWindow, name: str) -> str:
    return next(nid for nid, n in w.document.graph.nodes.items() if n.name == name)


def _double_click_palette(w: MainWindow, type_id: str) -> None:
    tree = w.layer_palette.tree
    item = w.layer_palette.item_for(type_id)
    tree.scrollToItem(item)
    pos = tree.visualItemRect(item).center()
    QTest.mouseClick(tree.viewport(), LEFT, pos=pos)
    QTest.mouseDClick(tree.viewport(), LEFT, pos=pos)


def _overlaps(w: MainWindow, node_id: str) -> list[str]:
    """The blocks whose rectangles meet ``node_id``'s."""
    box = w.scene.node_item(node_id).sceneBoundingRect()
    return [it.node_id for it in w.scene.node_items()
            if it.node_id != node_id and it.sceneBoundingRect().intersects(box)]


def _in_front(w: MainWindow, dock) -> bool:
    """Whether ``dock`` is the one shown of its tab group (Qt moves the others out of sight, not hidden)."""
    return dock.isVisible() and w.rect().contains(dock.geometry().center())


def _structure(g) -> tuple:
    """The graph as blocks and a set of wires (the order wires were made in does not matter)."""
    data = graph_to_dict(g)
    return data["nodes"], sorted((tuple(e["from"]), tuple(e["to"])) for e in data["edges"])


def _click_block(w: MainWindow, node_id: str) -> None:
    item = w.scene.node_item(node_id)
    w.view.centerOn(item)
    at = w.view.mapFromScene(item.pos() + QPointF(NodeItem.WIDTH / 2, NodeItem.HEADER / 2))
    QTest.mouseClick(w.view.viewport(), LEFT, pos=at)


# ---------------------------------------------------------------------- palette search
@pytest.mark.parametrize(
    ("typed", "best"),
    [("Linear", "Dense"), ("linear", "Dense"), ("BatchNorm2d", "BatchNorm"), ("nn.Conv2d", "Conv2d"),
     ("torch.nn.MaxPool2d", "MaxPool2d"), ("fully connected", "Dense"), ("AdaptiveAvgPool2d", "GlobalAvgPool"),
     ("CrossEntropyLoss", "ClassificationOutput"), ("torch.cat", "Concatenate")],
)
def test_search_finds_pytorch_names_and_descriptions(qtbot, typed, best):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    QTest.keyClicks(palette.search, typed)
    assert best in palette.visible_type_ids()
    with qtbot.waitSignal(palette.add_requested) as blocker:
        QTest.keyClick(palette.search, Qt.Key.Key_Return)
    assert blocker.args == [best]


def test_descriptions_are_searched_only_when_no_name_matches(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    QTest.keyClicks(palette.search, "relu")
    assert palette.visible_type_ids() == ["ReLU", "LeakyReLU", "ReLU6"]  # not Dense, whose text mentions ReLU
    palette.search.clear()
    QTest.keyClicks(palette.search, "fully connected")
    assert "Dense" in palette.visible_type_ids()


def test_tooltip_names_the_pytorch_module(qtbot):
    assert "nn.Linear" in layer_tooltip(get("Dense"))
    assert "nn.BatchNorm1d, nn.BatchNorm2d" in layer_tooltip(get("BatchNorm"))
    assert "torch.cat" in layer_tooltip(get("Concatenate")) and "F.interpolate" in layer_tooltip(get("Upsample"))


# ---------------------------------------------------------------------- double-click in the palette
def test_double_click_inserts_after_the_selected_block_as_one_step(window, qtbot):
    window.new_from_template("lenet5")
    QApplication.processEvents()
    g = window.document.graph
    before = _structure(g)
    conv, relu = _named(window, "conv1"), _named(window, "relu1")
    _click_block(window, conv)
    assert window.scene.selected_node_ids() == [conv]
    _double_click_palette(window, "BatchNorm")
    (bn,) = [nid for nid in g.nodes if nid not in {n["id"] for n in before[0]}]
    assert g.node(bn).type == "BatchNorm"
    assert g.edge_into(bn, 0).src == conv and g.edge_into(relu, 0).src == bn  # conv1 → bn → relu1
    assert window.scene.selected_node_ids() == [bn]
    assert not _overlaps(window, bn)
    assert window.document.undo_stack.count() == 1
    QTest.keyClick(window.view, Qt.Key.Key_Z, CTRL)
    assert _structure(g) == before


def test_double_clicks_build_a_chain_from_the_selected_block(window, qtbot):
    window.new_from_template("mlp")
    QApplication.processEvents()
    g = window.document.graph
    fc3, out = _named(window, "fc3"), _named(window, "output")
    _click_block(window, fc3)
    _double_click_palette(window, "Dropout")
    _double_click_palette(window, "ReLU")
    (relu,) = window.scene.selected_node_ids()  # the last one added is selected
    drop = g.edge_into(relu, 0).src
    assert g.node(drop).type == "Dropout" and g.node(relu).type == "ReLU"
    assert g.edge_into(drop, 0).src == fc3 and g.edge_into(out, 0).src == relu
    for nid in (drop, relu):
        assert not _overlaps(window, nid)


def test_double_click_with_nothing_selected_finds_free_room(window, qtbot):
    window.new_from_template("lenet5")
    QApplication.processEvents()
    window.scene.select_nodes([])
    window.view.fit_all()
    added = []
    for type_id in ("Dense", "Dense", "ReLU"):
        window.scene.select_nodes([])
        _double_click_palette(window, type_id)
        added += window.scene.selected_node_ids()
    assert len(set(added)) == 3
    for nid in added:
        assert not _overlaps(window, nid)
        assert window.document.graph.edges_of(nid) == []


def test_an_input_double_clicked_after_a_block_is_placed_unwired(window, qtbot):
    window.new_from_template("mlp")
    QApplication.processEvents()
    _click_block(window, _named(window, "fc1"))
    _double_click_palette(window, "Input")
    (new,) = window.scene.selected_node_ids()
    assert window.document.graph.node(new).type == "Input" and not window.document.graph.edges_of(new)
    assert not _overlaps(window, new)


# ---------------------------------------------------------------------- paste at the pointer
def test_paste_lands_at_the_pointer(window, qtbot):
    window.new_from_template("mlp")
    QApplication.processEvents()
    g = window.document.graph
    fc1 = _named(window, "fc1")
    _click_block(window, fc1)
    QTest.keyClick(window.view, Qt.Key.Key_C, CTRL)
    vp = window.view.viewport()
    target = QPoint(vp.width() // 4, vp.height() * 3 // 4)
    QTest.mouseMove(vp, target)
    QTest.keyClick(window.view, Qt.Key.Key_V, CTRL)
    (copy,) = window.scene.selected_node_ids()
    assert copy != fc1
    centre = window.scene.node_item(copy).pos() + QPointF(NodeItem.WIDTH / 2, NodeItem.MIN_HEIGHT / 2)
    pointer = window.view.mapToScene(target)
    assert abs(centre.x() - pointer.x()) <= GRID and abs(centre.y() - pointer.y()) <= GRID
    far = g.node(copy).pos[0] - g.node(fc1).pos[0], g.node(copy).pos[1] - g.node(fc1).pos[1]
    assert max(abs(far[0]), abs(far[1])) > NodeItem.WIDTH  # not a few pixels from the original


def test_duplicate_lands_beside_the_originals_not_on_them(window, qtbot):
    window.new_from_template("mlp")
    QApplication.processEvents()
    fc1 = _named(window, "fc1")
    _click_block(window, fc1)
    QTest.keyClick(window.view, Qt.Key.Key_D, CTRL)
    (copy,) = window.scene.selected_node_ids()
    assert copy != fc1 and not _overlaps(window, copy)


# ---------------------------------------------------------------------- blocks not wired yet
def test_a_block_not_wired_yet_looks_neutral_and_waits_in_problems(window, qtbot):
    window.new_from_template("mlp")
    QApplication.processEvents()
    window.document.analyze_now()
    assert window.validity_label.text() == "✓ Valid network"
    window.scene.select_nodes([])
    _double_click_palette(window, "Dense")
    (lone,) = window.scene.selected_node_ids()
    analysis = window.document.analyze_now()
    item = window.scene.node_item(lone)
    assert item.unwired and item.severity is None and item.shape_text == NOT_CONNECTED
    assert not analysis.valid  # still not trainable: honest
    assert window.problems.errors == 0 and window.problems.pending == 1
    assert window.problems_dock.windowTitle() == "Problems (1 not connected yet)"
    assert window.validity_label.text().startswith("Not trainable yet")
    summary = window.summary.model
    assert summary.index(summary.row_of(lone), 0).data(Qt.ItemDataRole.ForegroundRole) is None  # not red
    # wired from its output only (it replaces fc3's wire into the output), its missing input is an error now
    window.view.fit_all()
    _drag(window, item.out_port_scene_pos(0), window.scene.node_item(_named(window, "output")).in_port_scene_pos(0))
    window.document.analyze_now()
    assert not item.unwired and item.severity == "error"
    assert summary.index(summary.row_of(lone), 0).data(Qt.ItemDataRole.ForegroundRole) is not None
    assert window.problems.errors >= 1 and window.validity_label.text().startswith("✗")


# ---------------------------------------------------------------------- wires
def _drag(w: MainWindow, start: QPointF, end: QPointF, steps: int = 6) -> None:
    vp = w.view.viewport()
    a, b = w.view.mapFromScene(start), w.view.mapFromScene(end)
    QTest.mousePress(vp, LEFT, Qt.KeyboardModifier.NoModifier, a)
    for i in range(1, steps + 1):
        QTest.mouseMove(vp, QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps))
    QTest.mouseRelease(vp, LEFT, Qt.KeyboardModifier.NoModifier, b)


def test_a_wire_dropped_on_a_fed_input_replaces_its_wire_in_one_step(window, qtbot):
    window.new_from_template("mlp")
    QApplication.processEvents()
    window.view.fit_all()
    g = window.document.graph
    before = _structure(g)
    relu1, fc3 = _named(window, "relu1"), _named(window, "fc3")
    old = g.edge_into(fc3, 0)
    assert old.src != relu1
    src = window.scene.node_item(relu1).out_port_scene_pos(0)
    dst = window.scene.node_item(fc3).in_port_scene_pos(0)
    _drag(window, src, dst)
    assert g.edge_into(fc3, 0).src == relu1 and old not in g.edges
    assert window.document.undo_stack.count() == 1
    QTest.keyClick(window.view, Qt.Key.Key_Z, CTRL)
    assert _structure(g) == before


# ---------------------------------------------------------------------- view and panels
def test_actual_size_joins_in_out_and_fit(window, qtbot):
    window.new_from_template("lenet5")
    window.view.setFocus()
    QTest.keyClick(window, Qt.Key.Key_Equal, CTRL)
    assert window.view.zoom() != pytest.approx(1.0)
    QTest.keyClick(window, Qt.Key.Key_1, CTRL)
    assert window.view.zoom() == pytest.approx(1.0)
    texts = [a.text() for a in window.view_menu.actions()]
    at = texts.index(window.act.fit_all.text())
    assert texts[at + 1] == "&Actual Size" and window.act.actual_size.shortcut().toString() == "Ctrl+1"


def test_selecting_a_block_brings_the_inspector_forward(window, qtbot):
    window.new_from_template("lenet5")
    QApplication.processEvents()
    window.training.show_setup()
    QApplication.processEvents()
    assert _in_front(window, window.training.setup_dock) and not _in_front(window, window.inspector_dock)
    _click_block(window, _named(window, "conv1"))
    QApplication.processEvents()
    assert _in_front(window, window.inspector_dock) and not _in_front(window, window.training.setup_dock)
    assert window.inspector.form is not None and window.inspector.form.spec.type_id == "Conv2d"

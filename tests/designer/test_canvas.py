"""The canvas as a user drives it: drops, mouse drags on ports and blocks, keys, undo."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QHelpEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip

from designer.canvas.items import GRID, EdgeItem, NodeItem
from designer.canvas.view import LAYER_MIME, GraphView
from designer.commands import SetParamsCommand
from designer.document import Document

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def doc(qtbot):
    document = Document()
    yield document
    document.deleteLater()


@pytest.fixture
def view(qtbot, doc):
    v = _open_view(qtbot, doc)
    yield v
    v.close()


def _open_view(qtbot, doc: Document) -> GraphView:
    v = GraphView(doc)
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    qtbot.waitExposed(v)
    v.resetTransform()
    v.centerOn(QPointF(400.0, 100.0))
    return v


def _lenet_head(doc: Document) -> dict[str, str]:
    """input(1×28×28) -> conv(6, k5) -> relu, plus a loose Dense, laid out in a row."""
    g = doc.graph
    ids = {
        "input": g.add_node("Input", pos=(0, 0)).id,
        "conv": g.add_node("Conv2d", {"filters": 6, "kernel_size": 5, "padding": 0}, name="conv1", pos=(260, 0)).id,
        "relu": g.add_node("ReLU", name="relu1", pos=(520, 0)).id,
        "fc": g.add_node("Dense", {"units": 10}, name="fc1", pos=(520, 200)).id,
    }
    g.connect(ids["input"], 0, ids["conv"], 0)
    g.connect(ids["conv"], 0, ids["relu"], 0)
    doc.analyze_now()
    return ids


def _vp(view: GraphView, scene_pt: QPointF) -> QPoint:
    return view.mapFromScene(scene_pt)


def _drag(view: GraphView, start: QPointF, end: QPointF, steps: int = 6, mods=NOMOD) -> None:
    """Press at ``start``, move in steps, release at ``end`` (scene coordinates)."""
    w = view.viewport()
    a, b = _vp(view, start), _vp(view, end)
    QTest.mousePress(w, LEFT, mods, a)
    for i in range(1, steps + 1):
        QTest.mouseMove(w, QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps))
    QTest.mouseRelease(w, LEFT, mods, b)


def _click(view: GraphView, scene_pt: QPointF, mods=NOMOD) -> None:
    QTest.mouseClick(view.viewport(), LEFT, mods, _vp(view, scene_pt))


def _body(view: GraphView, node_id: str) -> QPointF:
    """A point on the block's body, away from its ports and labels."""
    item = view.scene().node_item(node_id)
    return item.pos() + QPointF(NodeItem.WIDTH / 2, 12.0)


def _drop_layer(view: GraphView, type_id: str, at: QPoint) -> bool:
    mime = QMimeData()
    mime.setData(LAYER_MIME, type_id.encode())
    enter = QDragEnterEvent(QPoint(at), Qt.DropAction.CopyAction, mime, LEFT, NOMOD)
    QApplication.sendEvent(view.viewport(), enter)
    drop = QDropEvent(QPointF(at), Qt.DropAction.CopyAction, mime, LEFT, NOMOD)
    QApplication.sendEvent(view.viewport(), drop)
    return drop.isAccepted()


# ---------------------------------------------------------------------- adding
def test_drop_from_palette_adds_a_selected_block_at_the_drop_point(view, doc, qtbot):
    at = QPoint(500, 300)
    with qtbot.waitSignal(view.scene().node_selection_changed) as sel:
        assert _drop_layer(view, "Conv2d", at)
    (nid,) = doc.graph.nodes
    assert sel.args == [[nid]]
    item = view.scene().node_item(nid)
    assert item.pos().x() % GRID == 0 and item.pos().y() % GRID == 0
    assert item.sceneBoundingRect().contains(view.mapToScene(at))
    assert doc.undo_stack.text(0) == "Add Conv2d"
    doc.undo_stack.undo()
    assert view.scene().node_item(nid) is None and not view.scene().items()


def test_unknown_dropped_type_is_refused_with_a_reason(view, doc, qtbot):
    with qtbot.waitSignal(view.status_message) as msg:
        assert not _drop_layer(view, "Teleporter", QPoint(300, 300))
    assert "Teleporter" in msg.args[0]
    assert len(doc.graph) == 0


def test_add_at_center_does_not_stack_blocks(view, doc):
    a = view.add_at_center("ReLU")
    b = view.add_at_center("ReLU")
    assert doc.graph.node(a).pos != doc.graph.node(b).pos
    assert [doc.graph.node(n).name for n in (a, b)] == ["relu", "relu1"]


# ---------------------------------------------------------------------- wiring
def test_drag_from_output_to_input_connects_and_labels_the_wire(view, doc, qtbot):
    ids = _lenet_head(doc)
    scene = view.scene()
    relu, fc = scene.node_item(ids["relu"]), scene.node_item(ids["fc"])
    assert not fc.in_ports[0].connected
    _drag(view, relu.out_port_scene_pos(0), fc.in_port_scene_pos(0))
    edge = doc.graph.edge_into(ids["fc"], 0)
    assert edge is not None and edge.src == ids["relu"]
    assert doc.undo_stack.text(0) == "Connect relu1 → fc1"
    with qtbot.waitSignal(doc.analysis_changed):
        pass
    item = scene.edge_item(edge)
    assert isinstance(item, EdgeItem) and item.isVisible()
    assert item.label == "6×24×24"
    assert fc.in_ports[0].connected
    # the wire is drawn from port to port
    assert (item.path().pointAtPercent(0.0) - relu.out_port_scene_pos(0)).manhattanLength() < 1
    assert (item.path().pointAtPercent(1.0) - fc.in_port_scene_pos(0)).manhattanLength() < 1


def test_dropping_a_wire_on_a_block_body_uses_its_input(view, doc):
    ids = _lenet_head(doc)
    relu = view.scene().node_item(ids["relu"])
    _drag(view, relu.out_port_scene_pos(0), _body(view, ids["fc"]))
    assert doc.graph.edge_into(ids["fc"], 0) is not None


@pytest.mark.parametrize(
    ("src", "dst", "reason"),
    # NOTE: conv's input is fed: a wire dropped there replaces that one, but this one closes a loop
    [("relu", "conv", "would close a loop"), ("relu", "relu", "itself")],
)
def test_refused_connection_says_why_and_changes_nothing(view, doc, qtbot, src, dst, reason):
    ids = _lenet_head(doc)
    scene = view.scene()
    before = doc.graph.edges
    with qtbot.waitSignal(view.status_message) as msg:
        _drag(view, scene.node_item(ids[src]).out_port_scene_pos(0), scene.node_item(ids[dst]).in_port_scene_pos(0))
    assert reason in msg.args[0]
    assert doc.graph.edges == before
    assert doc.undo_stack.count() == 0
    assert len(scene.edge_items()) == 2


def test_a_loop_is_refused(view, doc, qtbot):
    ids = _lenet_head(doc)
    g = doc.graph
    g.disconnect(g.edge_into(ids["conv"], 0))  # conv's input is free now; relu -> conv would loop
    scene = view.scene()
    with qtbot.waitSignal(view.status_message) as msg:
        relu, conv = scene.node_item(ids["relu"]), scene.node_item(ids["conv"])
        _drag(view, relu.out_port_scene_pos(0), conv.in_port_scene_pos(0))
    assert "loop" in msg.args[0]
    assert g.edge_into(ids["conv"], 0) is None


def test_dropping_a_wire_on_empty_space_cancels(view, doc):
    ids = _lenet_head(doc)
    relu = view.scene().node_item(ids["relu"])
    _drag(view, relu.out_port_scene_pos(0), QPointF(760.0, -150.0))
    assert len(doc.graph.edges) == 2
    assert doc.undo_stack.count() == 0
    assert not [i for i in view.scene().items() if type(i).__name__ == "TempWireItem"]


def test_dragging_a_fed_input_picks_up_its_wire(view, doc):
    ids = _lenet_head(doc)
    scene = view.scene()
    relu, fc = scene.node_item(ids["relu"]), scene.node_item(ids["fc"])
    _drag(view, relu.in_port_scene_pos(0), fc.in_port_scene_pos(0))  # move conv->relu to conv->fc
    g = doc.graph
    assert g.edge_into(ids["relu"], 0) is None
    assert g.edge_into(ids["fc"], 0).src == ids["conv"]
    assert doc.undo_stack.count() == 1
    _drag(view, fc.in_port_scene_pos(0), QPointF(800.0, 420.0))  # pulled off onto nothing
    assert g.edge_into(ids["fc"], 0) is None
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert g.edge_into(ids["relu"], 0).src == ids["conv"]


# ---------------------------------------------------------------------- moving and selecting
def test_drag_moves_a_block_snapped_and_undo_is_one_step(view, doc, qtbot):
    ids = _lenet_head(doc)
    item = view.scene().node_item(ids["conv"])
    start = _body(view, ids["conv"])
    _drag(view, start, start + QPointF(103.0, 57.0), steps=8)
    assert doc.graph.node(ids["conv"]).pos == (360.0, 60.0)
    assert (item.pos().x(), item.pos().y()) == (360.0, 60.0)
    assert doc.undo_stack.count() == 1
    assert doc.undo_stack.text(0) == "Move conv1"
    wire = view.scene().edge_item(doc.graph.edge_into(ids["conv"], 0))
    assert (wire.path().pointAtPercent(1.0) - item.in_port_scene_pos(0)).manhattanLength() < 1
    QTest.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert doc.graph.node(ids["conv"]).pos == (260.0, 0.0)
    assert item.pos() == QPointF(260.0, 0.0)
    QTest.keyClick(view, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert item.pos() == QPointF(360.0, 60.0)


def test_ctrl_click_then_drag_moves_all_selected_in_one_command(view, doc):
    ids = _lenet_head(doc)
    scene = view.scene()
    _click(view, _body(view, ids["conv"]))
    _click(view, _body(view, ids["relu"]), CTRL)
    assert scene.selected_node_ids() == [ids["conv"], ids["relu"]]
    start = _body(view, ids["relu"])
    _drag(view, start, start + QPointF(0.0, 100.0))
    assert doc.graph.node(ids["conv"]).pos == (260.0, 100.0)
    assert doc.graph.node(ids["relu"]).pos == (520.0, 100.0)
    assert doc.undo_stack.count() == 1 and doc.undo_stack.text(0) == "Move 2 blocks"


def test_rubber_band_and_select_all(view, doc, qtbot):
    ids = _lenet_head(doc)
    scene = view.scene()
    _drag(view, QPointF(-40.0, -60.0), QPointF(500.0, 120.0))
    assert scene.selected_node_ids() == [ids["input"], ids["conv"]]
    assert doc.undo_stack.count() == 0
    with qtbot.waitSignal(scene.node_selection_changed) as sel:
        QTest.keyClick(view, Qt.Key.Key_A, CTRL)
    assert sel.args == [list(ids.values())]


# ---------------------------------------------------------------------- deleting
def test_delete_key_removes_blocks_and_undo_restores_them_with_wires(view, doc):
    ids = _lenet_head(doc)
    scene = view.scene()
    _click(view, _body(view, ids["conv"]))
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert ids["conv"] not in doc.graph.nodes
    assert scene.node_item(ids["conv"]) is None
    assert doc.graph.edges == [] and scene.edge_items() == []
    QTest.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert doc.graph.node(ids["conv"]).name == "conv1"
    assert len(doc.graph.edges) == 2 and len(scene.edge_items()) == 2
    assert scene.node_item(ids["conv"]).pos() == QPointF(260.0, 0.0)


def test_a_selected_wire_is_deleted_with_backspace(view, doc):
    ids = _lenet_head(doc)
    scene = view.scene()
    wire = scene.edge_item(doc.graph.edge_into(ids["relu"], 0))
    mid = wire.path().pointAtPercent(0.5)
    _click(view, mid + QPointF(0.0, 2.0))
    assert wire.isSelected()
    QTest.keyClick(view, Qt.Key.Key_Backspace)
    assert doc.graph.edge_into(ids["relu"], 0) is None
    assert doc.undo_stack.text(0) == "Disconnect conv1 → relu1"


# ---------------------------------------------------------------------- copy and paste
def test_copy_paste_keeps_inner_wires_with_fresh_ids_and_names(view, doc, qtbot):
    ids = _lenet_head(doc)
    scene = view.scene()
    scene.select_nodes([ids["conv"], ids["relu"]])
    QTest.keyClick(view, Qt.Key.Key_C, CTRL)
    assert QGuiApplication.clipboard().mimeData().hasFormat("application/x-netdesigner-graph")
    assert '"conv1"' in QGuiApplication.clipboard().text()
    QTest.keyClick(view, Qt.Key.Key_V, CTRL)
    g = doc.graph
    new = [nid for nid in g.nodes if nid not in ids.values()]
    assert len(new) == 2
    assert sorted(g.node(n).name for n in new) == ["conv2", "relu2"]
    assert g.edge_into(new[1], 0).src == new[0]
    assert g.inputs_of(new[0]) == [None]
    assert scene.selected_node_ids() == new
    assert g.node(new[0]).pos != g.node(ids["conv"]).pos
    assert doc.undo_stack.count() == 1
    QTest.keyClick(view, Qt.Key.Key_V, CTRL)  # a second paste lands beside the first
    assert len(g) == 8
    assert len({n.pos for n in g.nodes.values()}) == 8


def test_paste_into_a_second_document(view, doc, qtbot):
    ids = _lenet_head(doc)
    view.scene().select_nodes([ids["input"], ids["conv"]])
    assert view.scene().copy_selected()
    other = Document()
    other_view = _open_view(qtbot, other)
    try:
        QTest.keyClick(other_view, Qt.Key.Key_V, CTRL)
        g = other.graph
        assert sorted(n.name for n in g.nodes.values()) == ["conv1", "input"]
        (edge,) = g.edges
        assert g.node(edge.src).type == "Input"
        other.analyze_now()
        assert other_view.scene().edge_item(edge).label == "1×28×28"
        assert other_view.scene().node_item(edge.dst).shape_text == "6×24×24"
    finally:
        other_view.close()
        other.deleteLater()


def test_ctrl_d_duplicates_beside(view, doc):
    ids = _lenet_head(doc)
    view.scene().select_nodes([ids["fc"]])
    QTest.keyClick(view, Qt.Key.Key_D, CTRL)
    (new,) = [n for n in doc.graph.nodes if n not in ids.values()]
    assert doc.graph.node(new).name == "fc2"
    assert doc.graph.node(new).params["units"] == 10
    assert view.scene().selected_node_ids() == [new]


# ---------------------------------------------------------------------- analysis on the canvas
def test_param_change_updates_wire_label_and_block_text(view, doc, qtbot):
    ids = _lenet_head(doc)
    scene = view.scene()
    conv = scene.node_item(ids["conv"])
    wire = scene.edge_item(doc.graph.edge_into(ids["relu"], 0))
    assert conv.shape_text == "6×24×24" and wire.label == "6×24×24"
    other = scene.node_item(ids["input"])
    key_before = other._analysis_key
    with qtbot.waitSignal(doc.analysis_changed):
        doc.push(SetParamsCommand(doc, [ids["conv"]], {"filters": 32}))
    assert conv.shape_text == "32×24×24"
    assert wire.label == "32×24×24"
    assert "832 params" in conv.stats_text
    assert scene.node_item(ids["relu"]).shape_text == "32×24×24"
    assert other._analysis_key is key_before  # untouched blocks are not redrawn


def test_an_error_turns_the_block_red_with_the_reason_as_tooltip(view, doc, qtbot):
    ids = _lenet_head(doc)
    conv = view.scene().node_item(ids["conv"])
    assert conv.severity is None
    with qtbot.waitSignal(doc.analysis_changed):
        doc.push(SetParamsCommand(doc, [ids["conv"]], {"kernel_size": 31}))
    assert conv.severity == "error"
    (problem,) = [p for p in doc.analysis.problems[ids["conv"]] if p.severity == "error"]
    assert problem.message in conv.tooltip_text() and problem.message in conv.toolTip()
    at = view.mapFromScene(conv.pos() + QPointF(NodeItem.WIDTH / 2, 40.0))
    QApplication.sendEvent(view.viewport(), QHelpEvent(QEvent.Type.ToolTip, at, view.viewport().mapToGlobal(at)))
    assert problem.message in QToolTip.text()
    QToolTip.hideText()
    image = view.grab().toImage()
    corner = view.mapFromScene(conv.pos() + QPointF(NodeItem.WIDTH / 2, 4.0))  # in the header band
    assert image.pixelColor(corner).red() > 150 and image.pixelColor(corner).green() < 120
    with qtbot.waitSignal(doc.analysis_changed):
        doc.undo_stack.undo()
    assert conv.severity is None


def test_a_warning_is_amber(view, doc, qtbot):
    g = doc.graph
    a = g.add_node("Input", {"kind": "vector", "features": 4}).id
    d1 = g.add_node("Dense", pos=(260, 0)).id
    d2 = g.add_node("Dense", {"units": 10}, pos=(520, 0)).id
    out = g.add_node("ClassificationOutput", pos=(780, 0)).id  # complete for the digits data: no error
    g.connect(a, 0, d1, 0)
    g.connect(d1, 0, d2, 0)
    g.connect(d2, 0, out, 0)
    doc.analyze_now()
    item = view.scene().node_item(d2)
    assert item.severity == "warning"
    assert "nonlinearity" in item.tooltip_text()


# ---------------------------------------------------------------------- read-only
def test_read_only_refuses_every_edit(view, doc, qtbot):
    ids = _lenet_head(doc)
    scene = view.scene()
    view.set_read_only(True)
    assert view.is_read_only()
    assert view._banner.isVisible()
    with qtbot.waitSignal(view.status_message):
        _drag(view, scene.node_item(ids["relu"]).out_port_scene_pos(0), scene.node_item(ids["fc"]).in_port_scene_pos(0))
    start = _body(view, ids["fc"])
    _drag(view, start, start + QPointF(100.0, 100.0))
    scene.select_nodes([ids["conv"]])
    with qtbot.waitSignal(view.status_message):
        QTest.keyClick(view, Qt.Key.Key_Delete)
    assert not _drop_layer(view, "ReLU", QPoint(500, 400))
    QTest.keyClick(view, Qt.Key.Key_C, CTRL)  # copying is still fine
    QTest.keyClick(view, Qt.Key.Key_V, CTRL)
    assert doc.undo_stack.count() == 0
    assert len(doc.graph) == 4 and len(doc.graph.edges) == 2
    assert doc.graph.node(ids["fc"]).pos == (520.0, 200.0)
    assert scene.node_item(ids["fc"]).pos() == QPointF(520.0, 200.0)
    view.set_read_only(False)
    assert not view._banner.isVisible()
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert ids["conv"] not in doc.graph.nodes


# ---------------------------------------------------------------------- view
def test_zoom_fit_and_wheel(view, doc, qtbot):
    _lenet_head(doc)
    view.zoom_in()
    assert view.zoom() == pytest.approx(1.25)
    view.zoom_out()
    view.zoom_out()
    assert view.zoom() == pytest.approx(0.8)
    for _ in range(40):
        view.zoom_out()
    assert view.zoom() == pytest.approx(0.1)
    view.fit_all()
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert shown.contains(view.scene().itemsBoundingRect())
    before = view.zoom()
    pos = QPointF(500.0, 350.0)
    global_pos = view.viewport().mapToGlobal(pos)
    event = QWheelEvent(
        pos, global_pos, QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton, NOMOD, Qt.ScrollPhase.NoScrollPhase, False
    )
    QApplication.sendEvent(view.viewport(), event)
    assert view.zoom() > before


def test_middle_drag_pans(view, doc):
    _lenet_head(doc)
    w = view.viewport()
    before = view.mapToScene(QPoint(500, 350))
    QTest.mousePress(w, Qt.MouseButton.MiddleButton, NOMOD, QPoint(500, 350))
    QTest.mouseMove(w, QPoint(400, 300))
    QTest.mouseRelease(w, Qt.MouseButton.MiddleButton, NOMOD, QPoint(400, 300))
    after = view.mapToScene(QPoint(500, 350))
    assert after.x() - before.x() == pytest.approx(100.0, abs=2)
    assert after.y() - before.y() == pytest.approx(50.0, abs=2)
    assert doc.undo_stack.count() == 0


def test_arrange_is_one_undo_step(view, doc):
    ids = _lenet_head(doc)
    doc.graph.move(ids["relu"], (0, 500))
    view.arrange("lr")
    assert doc.undo_stack.count() == 1
    xs = [doc.graph.node(ids[k]).pos[0] for k in ("input", "conv", "relu")]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert all(v % GRID == 0 for n in doc.graph.nodes.values() for v in n.pos)
    doc.undo_stack.undo()
    assert doc.graph.node(ids["relu"]).pos == (0.0, 500.0)


def test_top_to_bottom_puts_ports_on_the_top_and_bottom_edges_and_undo_turns_it_back(view, doc):
    ids = _lenet_head(doc)
    scene = view.scene()
    conv = scene.node_item(ids["conv"])
    wire = next(e for e in scene.edge_items() if e.dst_item is conv)
    view.arrange("tb")
    assert doc.graph.flow == "tb" and doc.undo_stack.count() == 1
    top, bottom = conv.in_port_scene_pos(0), conv.out_port_scene_pos(0)
    assert top.y() == conv.pos().y() and bottom.y() == conv.pos().y() + conv.height
    assert top.x() == bottom.x() == conv.pos().x() + conv.WIDTH / 2
    assert conv.in_ports[0].scene_center() == top
    start, c1 = wire.path().elementAt(0), wire.path().elementAt(1)
    assert c1.x == start.x and c1.y > start.y  # the wire leaves its output port downwards
    view.arrange("tb")
    assert doc.undo_stack.count() == 1  # already arranged that way: nothing to do
    doc.undo_stack.undo()
    assert doc.graph.flow == "lr" and conv.in_port_scene_pos(0).x() == conv.pos().x()
    start, c1 = wire.path().elementAt(0), wire.path().elementAt(1)
    assert c1.y == start.y and c1.x > start.x
    doc.undo_stack.redo()
    assert doc.graph.flow == "tb" and conv.in_ports[0].scene_center() == conv.in_port_scene_pos(0)


def test_replacing_the_project_redraws_everything(view, doc, qtbot):
    from engine.project import Project

    _lenet_head(doc)
    new = Project(name="Other")
    new.graph.add_node("Input")
    doc.replace(new)
    scene = view.scene()
    assert [i.node_id for i in scene.node_items()] == list(new.graph.nodes)
    assert scene.edge_items() == []
    assert scene.node_items()[0].shape_text == "1×28×28"
    view.add_at_center("Flatten")
    assert len(new.graph) == 2


def test_a_temporary_wire_follows_the_mouse_and_marks_the_target(view, doc):
    ids = _lenet_head(doc)
    scene = view.scene()
    relu, fc, conv = (scene.node_item(ids[k]) for k in ("relu", "fc", "conv"))
    w = view.viewport()
    QTest.mousePress(w, LEFT, NOMOD, _vp(view, relu.out_port_scene_pos(0)))
    QTest.mouseMove(w, _vp(view, QPointF(700.0, -100.0)))
    (temp,) = [i for i in scene.items() if type(i).__name__ == "TempWireItem"]
    end = temp.path().pointAtPercent(1.0)
    assert (end - QPointF(700.0, -100.0)).manhattanLength() < 2
    QTest.mouseMove(w, _vp(view, fc.in_port_scene_pos(0)))
    assert fc.in_ports[0].highlight == "ok"
    QTest.mouseMove(w, _vp(view, conv.in_port_scene_pos(0)))
    assert conv.in_ports[0].highlight == "bad" and fc.in_ports[0].highlight is None
    QTest.keyClick(view, Qt.Key.Key_Escape)
    QTest.mouseRelease(w, LEFT, NOMOD, _vp(view, conv.in_port_scene_pos(0)))
    assert conv.in_ports[0].highlight is None
    assert not [i for i in scene.items() if type(i).__name__ == "TempWireItem"]
    assert doc.undo_stack.count() == 0


def test_multi_input_blocks_label_their_ports(view, doc):
    g = doc.graph
    cat = g.add_node("Concatenate", {"inputs": 3}).id
    crop = g.add_node("CropToMatch", pos=(0, 200)).id
    scene = view.scene()
    assert [p.label for p in scene.node_item(cat).in_ports] == ["1", "2", "3"]
    assert scene.node_item(cat).height > NodeItem.MIN_HEIGHT
    assert [p.label for p in scene.node_item(crop).in_ports] == ["in", "like"]
    doc.push(SetParamsCommand(doc, [cat], {"inputs": 2}))
    assert len(scene.node_item(cat).in_ports) == 2


def test_dark_palette_follows_the_application(view, doc, qtbot):
    _lenet_head(doc)
    scene = view.scene()
    light_bg = scene.colors.background
    scene.set_dark(True)
    assert scene.colors.background != light_bg
    assert all(item.colors is scene.colors for item in scene.node_items())
    view.grab()
    scene.set_dark(False)


def test_the_qt_binding_keeps_none_alive(qtbot):
    """PySide6 6.12 drops a reference to None on every call returning nothing; on Python 3.11
    the interpreter then aborts. pyproject keeps that release out; this catches a bad binding."""
    import sys

    from PySide6.QtCore import QObject

    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(2000):
        obj.setObjectName("x")
    assert sys.getrefcount(None) >= before - 50


def test_the_program_exits_cleanly_after_copying_blocks(tmp_path):
    """The clipboard owns our QMimeData; left there, Qt deleted it after Python shut down (a crash)."""
    import subprocess
    import sys
    import textwrap

    from tests.conftest import ROOT

    script = textwrap.dedent(
        """
        from PySide6.QtCore import QTimer
        from designer.app import _application
        from designer.main_window import MainWindow
        app = _application()
        w = MainWindow()
        w.new_from_template("mlp")
        w.scene.select_all()
        w.scene.copy_selected()
        QTimer.singleShot(200, w.close)
        QTimer.singleShot(400, app.quit)
        app.exec()
        """
    )
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_a_project_drawn_top_to_bottom_opens_that_way(view, doc):
    from engine.project import Project

    new = Project(name="Tall")
    a = new.graph.add_node("Input").id
    b = new.graph.add_node("Flatten", pos=(0, 120)).id
    new.graph.connect(a, 0, b, 0)
    new.graph.set_flow("tb")
    doc.replace(new)
    item = view.scene().node_item(b)
    assert item.flow == "tb" and item.in_port_scene_pos(0).y() == 120.0


# ---------------------------------------------------------------------- settings line and wire routes
def test_a_block_shows_its_settings_line_and_it_follows_edits(view, doc, qtbot):
    ids = _lenet_head(doc)
    scene = view.scene()
    conv, relu = scene.node_item(ids["conv"]), scene.node_item(ids["relu"])
    assert conv.brief == "6@5×5 s1 p0" and relu.brief == ""  # a ReLU has no settings to show
    assert scene.node_item(ids["fc"]).brief == "10"
    doc.push(SetParamsCommand(doc, [ids["conv"]], {"filters": 32, "stride": 2}))
    assert conv.brief == "32@5×5 s2 p0"
    doc.undo_stack.undo()
    assert conv.brief == "6@5×5 s1 p0"


def _path_enters(path, rect) -> bool:
    inner = rect.adjusted(0.5, 0.5, -0.5, -0.5)
    return any(inner.contains(path.pointAtPercent(i / 400)) for i in range(401))


def test_a_wire_goes_around_a_block_dragged_into_its_way_and_back_when_it_leaves(view, doc, qtbot):
    g = doc.graph
    src = g.add_node("Input", pos=(0, 0)).id
    dst = g.add_node("Flatten", pos=(840, 0)).id
    g.connect(src, 0, dst, 0)
    loose = g.add_node("Dense", {"units": 10}, name="fc", pos=(420, 240)).id
    scene = view.scene()
    wire = scene.edge_item(g.edge_into(dst, 0))
    block = scene.node_item(loose)
    rect_at = lambda: QRectF(block.pos(), block.rect().size())  # noqa: E731
    view.centerOn(QPointF(500.0, 100.0))
    start = _body(view, loose)
    _drag(view, start, start + QPointF(0.0, -240.0), steps=8)
    assert g.node(loose).pos == (420.0, 0.0)  # right on the wire's straight way
    qtbot.waitUntil(lambda: not _path_enters(wire.path(), rect_at()))
    assert (wire.path().pointAtPercent(1.0) - scene.node_item(dst).in_port_scene_pos(0)).manhattanLength() < 1
    doc.undo_stack.undo()
    assert g.node(loose).pos == (420.0, 240.0)
    qtbot.waitUntil(lambda: wire.path().elementCount() == 4)  # one S-curve again: nothing in its way


def test_arrange_gives_a_merge_with_many_inputs_the_height_it_is_drawn_with(view, doc):
    g = doc.graph
    stem = g.add_node("Input").id
    branches = []
    for _ in range(7):
        branches.append(g.add_node("Conv2d", {"kernel_size": 1}).id)
        g.connect(stem, 0, branches[-1], 0)
    for _ in range(3):
        cat = g.add_node("Concatenate", {"inputs": 7}).id
        for port, src in enumerate(branches):
            g.connect(src, 0, cat, port)
    view.arrange("lr")
    items = view.scene().node_items()
    assert max(it.height for it in items) > 130  # taller than the gap between two rows
    rects = [QRectF(it.pos(), it.rect().size()) for it in items]
    assert not [(a, b) for i, a in enumerate(rects) for b in rects[i + 1:] if a.intersects(b)]

"""Units in the window: group, ungroup, open, edit every use, make unique, repeat, summary rows, the lock."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog, QMenu

from designer.canvas.port_markers import PortMarkerItem
from designer.main_window import MainWindow
from engine.analysis import analyze, format_count
from engine.graph import Graph
from engine.layers.registry import shape_str
from engine.project import Project
from engine.units import flatten
from tests.engine.helpers import chain, image_input, merge, then

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def residual_net(blocks: int = 2, filters: int = 4) -> Graph:
    """Input, a stem, ``blocks`` residual blocks alike (named b{k}_conv1 ... b{k}_out), a classifier."""
    g = Graph()
    x = chain(g, image_input(g, 3, 12, name="image"), ("Conv2d", {"filters": filters}))[-1]
    for k in range(blocks):
        y = chain(g, x, ("Conv2d", {"filters": filters}), "BatchNorm", "ReLU", ("Conv2d", {"filters": filters}))
        for nid, suffix in zip(y, ("conv1", "bn", "relu", "conv2")):
            g.rename(nid, f"b{k}_{suffix}")
        add = merge(g, "Add", [y[-1], x], name=f"b{k}_add")
        x = then(g, add, "ReLU", name=f"b{k}_out")
    chain(g, x, "GlobalAvgPool", ("Dense", {"units": 10}), "ClassificationOutput")
    return g


def named(graph: Graph, prefix: str) -> list[str]:
    return [nid for nid, n in graph.nodes.items() if n.name.startswith(prefix)]


def by_name(graph: Graph, name: str) -> str:
    (nid,) = [nid for nid, n in graph.nodes.items() if n.name == name]
    return nid


def wires(g: Graph) -> set:
    return {(e.src, e.src_port, e.dst, e.dst_port) for e in g.edges}


def content(g: Graph) -> tuple:
    """Everything a person sees of a graph: blocks (id, type, name, params, place), wires, unit names."""
    return ({nid: (n.type, n.name, n.params, n.pos) for nid, n in g.nodes.items()}, wires(g), sorted(g.units))


@pytest.fixture
def window(open_windows) -> MainWindow:
    return open_windows(1280, 800)


def show(w: MainWindow, graph: Graph) -> None:
    w.document.replace(Project(name="Units", graph=graph))
    w.arrange("lr")
    w.document.analyze_now()


def answer_name(monkeypatch, name: str) -> list:
    asked = []

    def get_text(*args, **kwargs):
        asked.append(args)
        return name, True

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    return asked


def press(w: MainWindow, key: Qt.Key, mods=Qt.KeyboardModifier.NoModifier) -> None:
    w.view.setFocus()
    QTest.keyClick(w.view.viewport(), key, mods)


def group_by_keys(w: MainWindow, monkeypatch, ids: list[str], name: str) -> str:
    """Select ``ids``, press Ctrl+G, answer ``name``: the new unit block's id."""
    answer_name(monkeypatch, name)
    w.scene.select_nodes(ids)
    press(w, Qt.Key.Key_G, CTRL)
    (uid,) = w.scene.selected_node_ids()
    return uid


def double_click_block(w: MainWindow, node_id: str) -> None:
    w.scene.center_on_node(node_id)
    item = w.scene.node_item(node_id)
    at = w.view.mapFromScene(item.sceneBoundingRect().center())
    QTest.mouseDClick(w.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def context_action(w: MainWindow, monkeypatch, node_id: str, text: str) -> QAction:
    """Right-click block ``node_id`` and return the menu's entry ``text``."""
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication

    shown: list[QMenu] = []
    monkeypatch.setattr(QMenu, "popup", lambda self, *a: shown.append(self))
    w.scene.center_on_node(node_id)
    at = w.view.mapFromScene(w.scene.node_item(node_id).sceneBoundingRect().center())
    # NOTE: what Qt sends on a right-click (the offscreen platform makes none from QTest's clicks)
    QApplication.sendEvent(w.view.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, at, w.view.viewport().mapToGlobal(at)))
    (menu,) = shown
    (action,) = [a for a in menu.actions() if a.text() == text]
    return action


def type_into(w: MainWindow, qtbot, field: str, text: str) -> None:
    spin = w.inspector.field(field)
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, text)
    QTest.keyClick(spin, Qt.Key.Key_Return)


def settle(w: MainWindow) -> None:
    w.document.analyze_now()


# ---------------------------------------------------------------------- group and ungroup
def test_ctrl_g_groups_the_selection_and_ctrl_shift_g_ungroups_each_one_undo_step(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    before = content(w.document.graph)
    chosen = named(w.document.graph, "b0_")
    uid = group_by_keys(w, monkeypatch, chosen, "Block")
    g = w.document.graph
    assert g.nodes[uid].unit.name == "Block" and set(g.nodes) == (set(before[0]) - set(chosen)) | {uid}
    assert w.scene.node_item(uid) is not None and all(w.scene.node_item(n) is None for n in chosen)
    assert w.document.undo_stack.count() == 2  # Arrange, then the group
    press(w, Qt.Key.Key_Z, CTRL)
    assert content(w.document.graph) == before
    assert {i.node_id for i in w.scene.node_items()} == set(before[0])
    press(w, Qt.Key.Key_Z, CTRL | SHIFT)
    assert w.document.graph.nodes[uid].unit.name == "Block"
    w.scene.select_nodes([uid])
    press(w, Qt.Key.Key_G, CTRL | SHIFT)
    assert {k: v[:3] for k, v in content(w.document.graph)[0].items()} == {k: v[:3] for k, v in before[0].items()}
    assert wires(w.document.graph) == before[1] and w.document.graph.units == {}
    assert sorted(w.scene.selected_node_ids()) == sorted(chosen)
    w.act.undo.trigger()
    assert w.document.graph.nodes[uid].unit.name == "Block"


def test_a_refused_group_says_why_and_changes_nothing(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    before = content(w.document.graph)
    g = w.document.graph
    uid_msgs = []
    w.statusBar().messageChanged.connect(uid_msgs.append)
    group_sel = [by_name(g, "b0_conv1"), by_name(g, "b0_add")]  # the chain between leaves and re-enters
    answer_name(monkeypatch, "Bad")
    w.scene.select_nodes(group_sel)
    press(w, Qt.Key.Key_G, CTRL)
    assert content(w.document.graph) == before
    assert any("lies on a path from the selection back into it" in m for m in uid_msgs)
    w.scene.select_nodes([by_name(g, "image")])
    w.act.group.trigger()
    assert any("stays outside a unit" in m for m in uid_msgs)
    assert content(w.document.graph) == before


def test_a_unit_block_shows_its_name_unit_and_a_brief(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    uid = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Res Block")
    item = w.scene.node_item(uid)
    assert item.title == "Res Block" and item.name == "res_block"
    assert item.brief == "unit · 6 blocks"
    two = group_by_keys(w, monkeypatch, [by_name(w.document.graph, "fc"), by_name(w.document.graph, "gap")]
                        if "gap" in {n.name for n in w.document.graph.nodes.values()} else
                        [n for n, x in w.document.graph.nodes.items() if x.type in ("GlobalAvgPool", "Dense")], "Head")
    assert w.scene.node_item(two).brief == "unit · 2 blocks"


# ---------------------------------------------------------------------- open, breadcrumb, edit every use
def test_double_click_opens_a_unit_and_the_breadcrumb_leads_back_up(window, monkeypatch):
    w = window
    show(w, residual_net(2))
    b0 = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    b1 = group_by_keys(w, monkeypatch, named(w.document.graph, "b1_"), "Block")
    assert w.document.graph.nodes[b0].unit is w.document.graph.nodes[b1].unit
    stage = group_by_keys(w, monkeypatch, [b0, b1], "Stage")
    top = {i.node_id for i in w.scene.node_items()}
    assert not w.view.breadcrumb.isVisible()

    double_click_block(w, stage)
    assert w.view.depth() == 1 and w.view.breadcrumb.text() == "network › stage"
    assert w.view.breadcrumb.isVisible()
    assert {i.node_id for i in w.scene.node_items()} == {b0, b1}
    # the stage's one input enters block0, its output leaves block1
    marks = {(m.parentItem().node_id, m.text()) for i in w.scene.node_items() for m in i.childItems()
             if isinstance(m, PortMarkerItem)}
    assert marks == {(b0, "in ▶"), (b1, "▶ out")}

    double_click_block(w, b0)
    assert w.view.breadcrumb.labels() == ["network", "stage", "block"]
    inner = {i.node_id for i in w.scene.node_items()}
    assert inner == set(w.document.graph.units["Block"].graph.nodes)
    settle(w)
    item = w.scene.node_item(by_name(w.scene.graph, "b0_conv1"))
    assert item.out_label == "4×12×12"  # the figures of this use, from the project's analysis

    press(w, Qt.Key.Key_Escape)  # nothing selected: up one level
    assert w.view.breadcrumb.labels() == ["network", "stage"]
    double_click_block(w, b1)
    QTest.mouseClick(w.view.breadcrumb.buttons[0], Qt.MouseButton.LeftButton)
    assert w.view.depth() == 0 and not w.view.breadcrumb.isVisible()
    assert {i.node_id for i in w.scene.node_items()} == top
    double_click_block(w, stage)
    w.scene.select_nodes([])
    press(w, Qt.Key.Key_Backspace)
    assert w.view.depth() == 0


def test_an_edit_inside_a_unit_changes_every_use_as_one_undo_step(window, monkeypatch):
    w = window
    show(w, residual_net(2))
    b0 = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    b1 = group_by_keys(w, monkeypatch, named(w.document.graph, "b1_"), "Block")
    steps = w.document.undo_stack.count()
    double_click_block(w, b1)
    conv1 = by_name(w.scene.graph, "b0_conv1")  # the unit's blocks keep the names of the first use
    w.scene.select_nodes([conv1])
    type_into(w, None, "filters", "8")
    g = w.document.graph
    assert w.document.undo_stack.count() == steps + 1
    assert g.nodes[b0].unit is g.nodes[b1].unit
    assert g.units["Block"].graph.nodes[conv1].params["filters"] == 8
    settle(w)
    flat = analyze(flatten(g))
    assert flat.nodes[f"{b0}/{conv1}"].out_shape == flat.nodes[f"{b1}/{conv1}"].out_shape == (8, 12, 12)
    assert w.scene.node_item(conv1).out_label == "8×12×12"
    press(w, Qt.Key.Key_Z, CTRL)
    assert w.document.graph.units["Block"].graph.nodes[conv1].params["filters"] == 4
    assert w.scene.graph.nodes[conv1].params["filters"] == 4  # the opened unit follows the undo
    assert w.inspector.field("filters").value() == 4
    press(w, Qt.Key.Key_Z, CTRL | SHIFT)
    assert w.scene.graph.nodes[conv1].params["filters"] == 8


def test_an_inside_edit_the_ports_cannot_follow_is_refused(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    uid = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    double_click_block(w, uid)
    before, steps = content(w.document.graph), w.document.undo_stack.count()
    messages = []
    w.statusBar().messageChanged.connect(messages.append)
    w.scene.select_nodes([by_name(w.scene.graph, "b0_out")])  # the unit's output comes from it
    w.act.delete.trigger()
    assert any("its output 'out' must still come from one of its blocks" in m for m in messages)
    assert content(w.document.graph) == before and w.document.undo_stack.count() == steps
    assert by_name(w.scene.graph, "b0_out") in {i.node_id for i in w.scene.node_items()}


def test_make_unique_detaches_one_use_from_the_edits_of_the_others(window, monkeypatch):
    w = window
    show(w, residual_net(2))
    b0 = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    b1 = group_by_keys(w, monkeypatch, named(w.document.graph, "b1_"), "Block")
    context_action(w, monkeypatch, b1, "Make unique").trigger()
    g = w.document.graph
    assert g.nodes[b1].unit.name == "Block 2" and g.nodes[b0].unit.name == "Block"
    assert w.scene.node_item(b1).title == "Block 2"
    double_click_block(w, b1)
    conv1 = by_name(w.scene.graph, "b0_conv1")
    w.scene.select_nodes([conv1])
    type_into(w, None, "filters", "6")
    g = w.document.graph
    assert g.units["Block 2"].graph.nodes[conv1].params["filters"] == 6
    assert g.units["Block"].graph.nodes[conv1].params["filters"] == 4
    w.view.leave_unit()
    w.act.undo.trigger()
    w.act.undo.trigger()
    assert w.document.graph.nodes[b1].unit is w.document.graph.nodes[b0].unit


# ---------------------------------------------------------------------- repeat
def test_repeat_stacks_a_unit_and_refuses_one_whose_output_does_not_fit(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    uid = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *a, **k: (3, True)))
    before = analyze(w.document.graph)
    context_action(w, monkeypatch, uid, "Repeat ×N…").trigger()
    g = w.document.graph
    chain_ids = w.scene.selected_node_ids()
    assert len(chain_ids) == 3 and all(g.nodes[n].unit is g.nodes[uid].unit for n in chain_ids)
    after = analyze(g)
    assert after.total_trainable == before.total_trainable + 2 * before.nodes[uid].trainable
    w.act.undo.trigger()
    assert [n for n, x in w.document.graph.nodes.items() if x.unit is not None] == [uid]

    # a stem conv that changes the channels cannot follow itself
    stem = [n for n, x in w.document.graph.nodes.items() if x.type == "Conv2d"]
    conv = group_by_keys(w, monkeypatch, stem, "Stem")
    messages = []
    w.statusBar().messageChanged.connect(messages.append)
    steps = w.document.undo_stack.count()
    context_action(w, monkeypatch, conv, "Repeat ×N…").trigger()
    assert any(re.search(r"unit 'Stem' turns 3×12×12 into 4×12×12: only a unit whose output has its input's shape", m)
               for m in messages)
    assert w.document.undo_stack.count() == steps


# ---------------------------------------------------------------------- locked while a run trains
def test_group_ungroup_and_repeat_are_refused_while_the_canvas_is_locked(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    uid = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    w.view.set_read_only(True)
    assert not w.act.group.isEnabled() and not w.act.ungroup.isEnabled()
    before, steps = content(w.document.graph), w.document.undo_stack.count()
    asked = answer_name(monkeypatch, "Other")
    w.scene.select_nodes([n for n, x in w.document.graph.nodes.items() if x.type == "Conv2d"])
    press(w, Qt.Key.Key_G, CTRL)
    w.scene.select_nodes([uid])
    press(w, Qt.Key.Key_G, CTRL | SHIFT)
    menu = {a: context_action(w, monkeypatch, uid, a) for a in ("Ungroup", "Repeat ×N…", "Make unique", "Group…")}
    assert not any(a.isEnabled() for a in menu.values())
    assert context_action(w, monkeypatch, uid, "Open unit").isEnabled()  # looking inside stays allowed
    assert content(w.document.graph) == before and w.document.undo_stack.count() == steps and not asked
    w.view.set_read_only(False)
    assert w.act.group.isEnabled() and w.act.ungroup.isEnabled()


# ---------------------------------------------------------------------- the summary
def summary_rows(w: MainWindow) -> dict[str, tuple]:
    m = w.summary.model
    return {m.node_id(r): tuple(m.data(m.index(r, c)) for c in range(6)) for r in range(m.totals_row)}


def double_click_row(table, at: QPoint) -> None:
    # NOTE: a view takes a double-click on the row its press chose: press first, as a hand does
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    QTest.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def figures(info) -> tuple:
    return (shape_str(info.out_shape), f"{info.params:,}", format_count(info.macs) if info.macs else "0",
            str(info.rf) if info.rf else "—")


@pytest.mark.parametrize("blocks, prefix, filters", [(1, "b0_", 4), (2, "b1_", 6), (3, "b2_", 3)])
def test_the_summary_shows_a_unit_as_one_row_that_expands_to_its_blocks(window, monkeypatch, blocks, prefix, filters):
    w = window
    show(w, residual_net(blocks, filters))
    flat = analyze(w.document.graph)  # the network before grouping: the figures to match
    chosen = named(w.document.graph, prefix)
    uid = group_by_keys(w, monkeypatch, chosen, "Block")
    settle(w)
    rows = summary_rows(w)
    assert len(rows) == len(flat.nodes) - len(chosen) + 1
    row = rows[uid]
    assert row[0] == "▸ block" and row[1] == "Block"
    out = by_name(residual_net(blocks, filters), f"{prefix}out")
    assert row[3] == f"{sum(flat.nodes[n].params for n in chosen):,}"
    macs = sum(flat.nodes[n].macs for n in chosen)
    assert row[4] == format_count(macs)
    assert (row[2], row[5]) == (figures(flat.nodes[out])[0], figures(flat.nodes[out])[3])
    # outside the unit every row is as it was
    for nid in set(flat.nodes) - set(chosen):
        assert rows[nid][2:] == figures(flat.nodes[nid])
    # a double-click opens the row: the blocks inside, each with its own figures
    w.summary_dock.raise_()
    table = w.summary.table
    index = w.summary.model.index(w.summary.model.row_of(uid), 0)
    table.scrollTo(index)
    at = table.visualRect(index).center()
    double_click_row(table, at)
    rows = summary_rows(w)
    assert rows[uid][0] == "▾ block"
    for nid in chosen:
        assert rows[f"{uid}/{nid}"][0].strip() == w.document.graph.units["Block"].graph.nodes[nid].name
        assert rows[f"{uid}/{nid}"][2:] == figures(flat.nodes[nid])
    order = list(rows)
    assert order[order.index(uid) + 1: order.index(uid) + 1 + len(chosen)] == [f"{uid}/{n}" for n in chosen]
    double_click_row(table, at)
    assert len(summary_rows(w)) == len(flat.nodes) - len(chosen) + 1


# ---------------------------------------------------------------------- the acceptance, on a small ResNet
def test_open_a_stage_break_a_convolution_see_why_fix_it_and_export_classes_that_mirror_the_units(
        window, monkeypatch, tmp_path):
    w = window
    show(w, residual_net(2))
    # group two blocks into a unit, then each residual block into another, used twice
    g = w.document.graph
    pair = group_by_keys(w, monkeypatch, [by_name(g, "b0_bn"), by_name(g, "b0_relu")], "BnRelu")
    b0 = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_") + [pair], "Block")
    steps = w.document.undo_stack.count()
    double_click_block(w, b0)
    assert w.view.breadcrumb.labels() == ["network", "block"]
    conv2 = by_name(w.scene.graph, "b0_conv2")
    w.scene.select_nodes([conv2])
    type_into(w, None, "filters", "8")
    settle(w)
    # the error is explained: in the Problems list, and on the blocks inside the unit
    errors = [p.message for p in w.document.analysis.wired_errors()]
    assert any("b0_add" in m and "8×12×12" in m and "4×12×12" in m for m in errors), errors
    level = w.view.document
    add = by_name(w.scene.graph, "b0_add")
    assert level.analysis.problems.get(add) and w.scene.node_item(add).problems
    assert any("b0_add" in w.problems.list.item(i).text() for i in range(w.problems.list.count()))
    # fix it the same way, and the network is whole again
    type_into(w, None, "filters", "4")
    settle(w)
    assert not w.document.analysis.wired_errors(), [p.message for p in w.document.analysis.wired_errors()]
    assert w.document.undo_stack.count() == steps + 2
    QTest.mouseClick(w.view.breadcrumb.buttons[0], Qt.MouseButton.LeftButton)
    path = tmp_path / "resnet_units.py"
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))
    w.act.export_code.trigger()
    source = path.read_text()
    assert re.findall(r"^class (\w+)\(nn\.Module\)", source, re.MULTILINE) == ["BnRelu", "Block", "Units"]
    assert re.search(r"self\.\w+ = BnRelu\(\)", source) and re.search(r"self\.\w+ = Block\(\)", source)


# ---------------------------------------------------------------------- the library
def drop_palette_item(w: MainWindow, item, at: QPoint) -> bool:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = w.layer_palette.tree.mimeData([item])  # what a drag from the palette carries
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(w.view.viewport(), QDragEnterEvent(at, Qt.DropAction.CopyAction, mime, left, none))
    drop = QDropEvent(QPointF(at), Qt.DropAction.CopyAction, mime, left, none)
    QApplication.sendEvent(w.view.viewport(), drop)
    return drop.isAccepted()


def test_a_unit_saved_to_the_library_is_listed_and_dropped_many_times(window, monkeypatch):
    from designer.canvas.library import library_dir

    w = window
    show(w, residual_net(1))
    tree = w.layer_palette.tree
    assert w.layer_palette.unit_items() == [] and tree.indexOfTopLevelItem(w.layer_palette.my_units) < 0
    uid = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Res & Block")
    unit = w.document.graph.nodes[uid].unit
    context_action(w, monkeypatch, uid, "Save unit to library").trigger()
    assert [p.name for p in library_dir().glob("*.json")] == ["Res_Block.json"]
    (item,) = w.layer_palette.unit_items()
    assert item.text(0) == "Res & Block" and tree.indexOfTopLevelItem(w.layer_palette.my_units) >= 0

    # into a new project: the first drop defines the unit, the second adds another use of it
    w.document.undo_stack.setClean()  # NOTE: no "save changes?" question
    w.files.new_blank()
    assert len(w.document.graph) == 0
    assert drop_palette_item(w, item, QPoint(300, 200))
    assert drop_palette_item(w, item, QPoint(600, 200))
    g = w.document.graph
    uses = [n for n in g.nodes.values() if n.unit is not None]
    assert len(uses) == 2 and uses[0].unit is uses[1].unit and list(g.units) == ["Res & Block"]
    from engine.units import same_network

    assert same_network(uses[0].unit, unit)
    assert w.scene.selected_node_ids() == [uses[1].id]
    w.act.undo.trigger()
    w.act.undo.trigger()
    assert len(w.document.graph) == 0 and w.document.graph.units == {}


def test_duplicating_a_unit_block_adds_another_use_of_its_unit(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    uid = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    press(w, Qt.Key.Key_D, CTRL)
    (copy,) = w.scene.selected_node_ids()
    g = w.document.graph
    assert copy != uid and g.nodes[copy].unit is g.nodes[uid].unit and list(g.units) == ["Block"]
    assert w.scene.node_item(copy).brief == "unit · 6 blocks"


def test_undoing_the_group_from_inside_the_unit_goes_back_to_the_network(window, monkeypatch):
    w = window
    show(w, residual_net(1))
    before = content(w.document.graph)
    uid = group_by_keys(w, monkeypatch, named(w.document.graph, "b0_"), "Block")
    double_click_block(w, uid)
    assert w.view.depth() == 1
    w.scene.select_nodes([])
    press(w, Qt.Key.Key_Z, CTRL)
    assert w.view.depth() == 0 and not w.view.breadcrumb.isVisible()
    assert content(w.document.graph) == before
    assert {i.node_id for i in w.scene.node_items()} == set(before[0])
    w.inspector.set_selection([by_name(w.document.graph, "b0_conv1")])  # the inspector edits the network again
    assert w.inspector.form is not None

"""Reaching into units: a problem or a summary row inside a unit opens it on the canvas; the open
unit is kept per project file across a restart."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from designer.canvas.levels import block_path, locate, remembered_level, unit_at
from designer.main_window import MainWindow
from designer.problems import NODE_ROLE, problem_paths
from engine.analysis import analyze
from engine.graph import Graph
from engine.project import Project, load_project, save_project
from engine.templates import load_template
from engine.units import flatten, group, redefine, ungroup
from tests.designer.test_units_window import by_name, double_click_block, double_click_row, type_into
from tests.engine.helpers import chain, image_input, merge


@pytest.fixture
def window(open_windows) -> MainWindow:
    return open_windows(1280, 800)


def path_of(graph: Graph, *names: str) -> str:
    """The path of the block reached by ``names`` (a unit block's name, then the names inside it)."""
    ids = []
    for name in names:
        nid = by_name(graph, name)
        ids.append(nid)
        unit = graph.nodes[nid].unit
        graph = unit.graph if unit is not None else graph
    return "/".join(ids)


def shown(w: MainWindow) -> tuple[list[str], str]:
    """What the canvas shows: the breadcrumb's labels and the level's unit path ("" for the network)."""
    labels = w.view.breadcrumb.labels() if w.view.depth() else ["network"]
    return labels, getattr(w.view.document, "unit_path", "")


def go_to(w: MainWindow, *names: str) -> None:
    """Open the units ``names`` from the network down, by double-clicks, as a person does."""
    if w.view.depth():
        QTest.mouseClick(w.view.breadcrumb.buttons[0], Qt.MouseButton.LeftButton)
    for name in names:
        double_click_block(w, by_name(w.scene.graph, name))


def assert_shows_block(w: MainWindow, names: list[str], block: str) -> None:
    """The canvas is inside units ``names`` with block ``block`` selected, in view, and in the Inspector."""
    labels, level = shown(w)
    assert labels == ["network", *names]
    assert level == (path_of(w.document.graph, *names) if names else "")
    nid = by_name(w.scene.graph, block)
    assert w.scene.selected_node_ids() == [nid]
    seen = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    assert seen.contains(w.scene.node_item(nid).sceneBoundingRect().center())
    assert w.inspector.document is w.view.document and w.inspector.selection == [nid]
    assert w.inspector.form.name_edit.text() == block


def broken_resnet(w: MainWindow) -> None:
    """The issue's example: ResNet-50, layer2 → block1 opened, conv3 set to 256 filters in the Inspector."""
    w.new_from_template("resnet50")
    go_to(w, "layer2", "block1")
    w.scene.select_nodes([by_name(w.scene.graph, "conv3")])
    type_into(w, None, "filters", "256")
    w.document.analyze_now()


def click_problem(w: MainWindow, text: str) -> None:
    (item,) = [w.problems.list.item(i) for i in range(w.problems.list.count())
               if text in w.problems.list.item(i).text()]
    w.problems_dock.raise_()
    w.problems.list.scrollToItem(item)
    at = w.problems.list.visualItemRect(item).center()
    QTest.mouseClick(w.problems.list.viewport(), Qt.MouseButton.LeftButton, pos=at)


# ---------------------------------------------------------------------- problems
@pytest.mark.parametrize("start", [(), ("layer2", "block0"), ("layer2",), ("layer3", "block1"), ("layer2", "block1")])
def test_clicking_a_problem_inside_a_unit_opens_the_units_and_shows_the_block(window, start):
    w = window
    broken_resnet(w)
    go_to(w, *start)
    click_problem(w, "'layer2/block1/add': Add needs equal shapes")
    assert_shows_block(w, ["layer2", "block1"], "add")
    # a problem of a top-level block leads back up to the network
    w.problems.problem_activated.emit(by_name(w.document.graph, "fc"))
    assert_shows_block(w, [], "fc")


def parallel_uses(count: int) -> Graph:
    """``count`` uses of unit ``Block`` side by side (each a convolution, a ReLU and a skip Add), all
    broken by a convolution of 6 filters."""
    g = Graph()
    x = chain(g, image_input(g, 3, 12, name="image"), ("Conv2d", {"filters": 4}))[-1]
    outs, branches = [], []
    for k in range(count):
        y = chain(g, x, ("Conv2d", {"filters": 4}), "ReLU")
        outs.append(merge(g, "Add", [y[-1], x], name=f"b{k}_add"))
        branches.append([*y, outs[-1]])
    join = merge(g, "Add", outs, {"inputs": count}, name="join")
    chain(g, join, "GlobalAvgPool", ("Dense", {"units": 10}), "ClassificationOutput")
    uses = []
    for ids in branches:
        g, uid = group(g, ids, "Block")
        uses.append(uid)
    inner = g.units["Block"].graph.copy()
    inner.set_params(next(n.id for n in inner.nodes.values() if n.type == "Conv2d"), {"filters": 6})
    return redefine(g, "Block", inner)


@pytest.mark.parametrize("count", [2, 3])
def test_each_use_of_a_unit_has_its_problems_lead_to_its_own_blocks(window, count):
    """Every problem leads to its own use's block, as the flattened network, analysed on its own, names it."""
    g = parallel_uses(count)
    expected = sorted((p.message, p.node_id) for p in analyze(flatten(g)).all_problems())
    assert len({path.split("/")[0] for _m, path in expected}) == count  # every use is broken
    analysis = analyze(g)
    problems = [p for p in analysis.all_problems() if p.node_id in g.nodes]
    assert sorted(zip((p.message for p in problems), problem_paths(analysis, problems))) == expected
    w = window
    w.document.replace(Project(name="Two uses", graph=g))
    w.document.analyze_now()
    items = [w.problems.list.item(i) for i in range(w.problems.list.count())]
    listed = sorted((it.text().split(" — click Fix")[0], it.data(NODE_ROLE)) for it in items)
    assert listed == expected
    w.problems_dock.raise_()
    for it in items:
        w.problems.list.scrollToItem(it)
        QTest.mouseClick(w.problems.list.viewport(), Qt.MouseButton.LeftButton,
                         pos=w.problems.list.visualItemRect(it).center())
        level, nid = locate(g, it.data(NODE_ROLE))
        assert shown(w)[1] == level and w.scene.selected_node_ids() == [nid]
        assert w.inspector.document is w.view.document and w.inspector.selection == [nid]


# ---------------------------------------------------------------------- the summary
def click_row(w: MainWindow, path: str) -> None:
    model, table = w.summary.model, w.summary.table
    index = model.index(model.row_of(path), 0)
    assert index.isValid(), path
    table.scrollTo(index)
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualRect(index).center())


def expand_rows(w: MainWindow, *paths: str) -> None:
    """Double-click the summary's unit rows ``paths`` open, one after the other."""
    w.summary_dock.raise_()
    model, table = w.summary.model, w.summary.table
    for path in paths:
        index = model.index(model.row_of(path), 0)
        table.scrollTo(index)
        double_click_row(table, table.visualRect(index).center())
        assert path in model.expanded


@pytest.mark.parametrize("names, start", [
    (("layer2", "block1", "bn2"), ()),
    (("layer2", "block1", "add"), ("layer3",)),
    (("layer2", "block2"), ("layer2", "block1")),
    (("layer2", "block0", "conv1"), ("layer2", "block3")),
    (("avgpool",), ("layer2", "block1")),
])
def test_selecting_a_summary_row_inside_a_unit_opens_the_units_and_shows_the_block(window, names, start):
    w = window
    w.new_from_template("resnet50")
    g = w.document.graph
    expand_rows(w, path_of(g, "layer2"), path_of(g, "layer2", "block0"), path_of(g, "layer2", "block1"),
                path_of(g, "layer2", "block2"))
    go_to(w, *start)
    click_row(w, path_of(g, *names))
    assert_shows_block(w, list(names[:-1]), names[-1])


@pytest.mark.parametrize("opened", [(), ("layer2",), ("layer2", "block1")])
def test_a_block_selected_inside_a_unit_selects_its_own_summary_row(window, opened):
    """Inside a unit a block's id is the unit's own (``n9``): the summary selects the row of its path,
    opening the unit rows above it, and never the top-level block that has the same id."""
    w = window
    w.new_from_template("resnet50")
    g = w.document.graph
    expand_rows(w, *(path_of(g, *opened[:k]) for k in range(1, len(opened) + 1)))
    go_to(w, "layer2", "block1")
    add = by_name(w.scene.graph, "add")
    assert add in g.nodes and g.nodes[add].name != "add"  # a top-level block shares the id
    w.scene.select_nodes([add])
    rows = [w.summary.model.node_id(i.row()) for i in w.summary.table.selectionModel().selectedRows()]
    assert rows == [block_path(path_of(g, "layer2", "block1"), add)] == [path_of(g, "layer2", "block1", "add")]


# ---------------------------------------------------------------------- the open unit across a restart
@pytest.fixture
def resnet_file(tmp_path):
    path = tmp_path / "resnet.json"
    save_project(load_template("resnet50"), path)
    return path


@pytest.fixture
def no_dialogs(monkeypatch) -> list:
    """Every message box the window would show, recorded instead of shown."""
    shown_boxes: list = []
    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(lambda *a, _n=name, **k: shown_boxes.append((_n, a))))
    return shown_boxes


def restart(open_windows, path, w: MainWindow | None = None) -> MainWindow:
    """Close ``w`` and open ``path`` in a fresh window that first had another project open."""
    if w is not None:
        w.close()
    fresh = open_windows(1280, 800)
    fresh.new_from_template("lenet5")
    assert fresh.open_path(path)
    return fresh


@pytest.mark.parametrize("names, edit", [
    (("layer2", "block1"), True), (("layer2", "block1"), False), (("layer3",), True), ((), True),
])
def test_the_unit_open_when_the_project_was_left_is_open_again(open_windows, resnet_file, no_dialogs, names, edit):
    w = open_windows(1280, 800)
    assert w.open_path(resnet_file)
    go_to(w, "layer4")  # somewhere else first: what is kept is the last level shown
    go_to(w, *names)
    if edit:  # a block renamed in the Inspector, then saved with the unit open
        w.scene.select_nodes([next(iter(w.scene.graph.nodes))])
        name_edit = w.inspector.form.name_edit
        name_edit.setFocus()
        name_edit.selectAll()
        QTest.keyClicks(name_edit, "renamed")
        QTest.keyClick(name_edit, Qt.Key.Key_Return)
        assert w.document.is_modified()
        assert w.files.save()
    fresh = restart(open_windows, resnet_file, w)
    assert shown(fresh) == (["network", *names], path_of(fresh.document.graph, *names) if names else "")
    assert {i.node_id for i in fresh.scene.node_items()} == set(fresh.view.document.graph.nodes)
    assert fresh.inspector.document is fresh.view.document
    assert no_dialogs == []


def test_save_as_keeps_the_open_unit_for_the_new_file(open_windows, resnet_file, tmp_path, no_dialogs):
    w = open_windows(1280, 800)
    w.new_from_template("resnet50")  # never saved: nothing to keep until it has a file
    go_to(w, "layer3", "block2")
    copy = tmp_path / "copy.json"
    assert w.files.save_to(copy)
    fresh = restart(open_windows, copy, w)
    assert shown(fresh)[0] == ["network", "layer3", "block2"]
    fresh.open_path(resnet_file)  # another file: its own level, the network
    assert shown(fresh) == (["network"], "")


def without(path, stage: str, block: str | None = None) -> None:
    """Rewrite project ``path`` with unit ``stage`` (or its unit ``block``) ungrouped, as another session might."""
    project = load_project(path)
    graph = project.graph
    if block is None:
        project.graph, _ = ungroup(graph, by_name(graph, stage))
    else:
        unit = graph.nodes[by_name(graph, stage)].unit
        inside, _ = ungroup(unit.graph, by_name(unit.graph, block))
        project.graph = redefine(graph, unit.name, inside)
    save_project(project, path)


@pytest.mark.parametrize("gone", [("layer2",), ("layer2", "block1")])
def test_a_kept_unit_that_is_gone_opens_the_network_without_a_word(open_windows, resnet_file, no_dialogs, gone):
    w = open_windows(1280, 800)
    assert w.open_path(resnet_file)
    go_to(w, "layer2", "block1")
    kept = remembered_level(resnet_file)
    assert kept == path_of(w.document.graph, "layer2", "block1")
    w.close()
    without(resnet_file, *gone)
    assert unit_at(load_project(resnet_file).graph, kept) is None
    fresh = restart(open_windows, resnet_file)
    assert shown(fresh) == (["network"], "") and not fresh.view.breadcrumb.isVisible()
    assert fresh.inspector.document is fresh.document
    assert remembered_level(resnet_file) == ""
    assert no_dialogs == []


def test_a_block_clicked_inside_a_unit_never_stands_for_the_network_block_of_the_same_id(window):
    """Ids repeat between levels: inside layer2's block, conv3 may share its id with a top-level block. The
    probes and Explore follow blocks of the network, so a click inside a unit leaves them where they were."""
    w = window
    w.new_from_template("resnet50")
    top = w.document.graph
    w.scene.select_nodes([by_name(top, "layer3")])
    chosen = w.training.probe_layer, w.training.insight.explore.node_id
    go_to(w, "layer2", "block1")
    inner = w.scene.graph
    shared = [nid for nid in inner.nodes if nid in top.nodes and inner.nodes[nid].name != top.nodes[nid].name]
    assert shared  # the case at stake: an inner id that names another block at the top
    for nid in shared:
        w.scene.select_nodes([nid])
        assert (w.training.probe_layer, w.training.insight.explore.node_id) == chosen

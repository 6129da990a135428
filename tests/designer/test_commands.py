"""The document and its undo commands: each edit is one step, undo restores exactly, refusals push nothing."""

from __future__ import annotations

import pytest
from designer.commands import (
    AddNodeCommand,
    ApplyLayoutCommand,
    ConnectCommand,
    DisconnectCommand,
    MacroCommand,
    MoveNodesCommand,
    PasteCommand,
    RemoveNodesCommand,
    RenameCommand,
    SetParamsCommand,
)
from designer.document import Document
from engine.errors import GraphError
from engine.project import Project, graph_to_dict


@pytest.fixture
def doc(qtbot):
    document = Document()
    yield document
    document.deleteLater()


def _chain(doc: Document) -> dict[str, str]:
    """input -> conv -> relu -> add(port 0), input -> add(port 1) built straight on the graph."""
    g = doc.graph
    ids = {
        "input": g.add_node("Input", {"channels": 3, "height": 8, "width": 8}, pos=(0, 0)).id,
        "conv": g.add_node("Conv2d", {"filters": 3}, name="conv1", pos=(240, 0)).id,
        "relu": g.add_node("ReLU", name="relu1", pos=(480, 0)).id,
        "add": g.add_node("Add", pos=(720, 0)).id,
    }
    g.connect(ids["input"], 0, ids["conv"], 0)
    g.connect(ids["conv"], 0, ids["relu"], 0)
    g.connect(ids["relu"], 0, ids["add"], 0)
    g.connect(ids["input"], 0, ids["add"], 1)
    doc.analyze_now()
    return ids


def _last_text(doc: Document) -> str:
    stack = doc.undo_stack
    return stack.text(stack.index() - 1)


# ---------------------------------------------------------------------- document
def test_new_document_is_untitled_clean_and_analysed(doc):
    assert doc.project.name == "Untitled"
    assert doc.graph is doc.project.graph
    assert doc.path is None
    assert not doc.is_modified()
    assert doc.analysis.nodes == {}


def test_push_marks_modified_and_mark_saved_cleans(doc, qtbot, tmp_path):
    with qtbot.waitSignal(doc.modified_changed) as mod:
        doc.push(AddNodeCommand(doc, "Input", (0, 0)))
    assert mod.args == [True]
    assert doc.is_modified()
    target = tmp_path / "net.json"
    with qtbot.waitSignals([doc.modified_changed, doc.path_changed]):
        doc.mark_saved(target)
    assert doc.path == target
    assert not doc.is_modified()
    doc.undo_stack.undo()
    assert doc.is_modified()


def test_analysis_is_debounced_after_a_burst_of_edits(doc, qtbot):
    results = []
    doc.analysis_changed.connect(results.append)
    with qtbot.waitSignal(doc.analysis_changed, timeout=1000):
        for i in range(5):
            doc.push(AddNodeCommand(doc, "ReLU", (i * 240, 0)))
    assert len(results) == 1 and not doc._timer.isActive()  # NOTE: no second analysis is on its way
    assert len(results[0].nodes) == 5
    assert doc.analysis is results[0]


def test_graph_events_are_relayed(doc, qtbot):
    with qtbot.waitSignal(doc.graph_event) as ev:
        doc.graph.add_node("Input")
    assert ev.args[0].kind == "node_added"


def test_replace_clears_history_resubscribes_and_reanalyses(doc, qtbot, tmp_path):
    old_graph = doc.graph
    doc.push(AddNodeCommand(doc, "Input", (0, 0)))
    new = Project(name="Other")
    new.graph.add_node("Input")
    modified = []
    doc.modified_changed.connect(modified.append)
    with qtbot.waitSignals([doc.project_replaced, doc.analysis_changed, doc.path_changed]):
        doc.replace(new, tmp_path / "other.json")
    assert modified == [False]
    assert doc.project is new
    assert doc.undo_stack.count() == 0
    assert not doc.is_modified()
    assert doc.path == tmp_path / "other.json"
    assert len(doc.analysis.nodes) == 1
    seen = []
    doc.graph_event.connect(seen.append)
    old_graph.add_node("ReLU")  # the old project is no longer followed
    assert seen == []
    doc.graph.add_node("ReLU")
    assert [e.kind for e in seen] == ["node_added"]


# ---------------------------------------------------------------------- add / remove
def test_add_node_undo_redo_keeps_the_id(doc):
    cmd = AddNodeCommand(doc, "Conv2d", (40, 60), {"filters": 8})
    doc.push(cmd)
    nid = cmd.node_id
    assert cmd.text() == "Add Conv2d"
    assert doc.graph.node(nid).params["filters"] == 8
    assert doc.graph.node(nid).pos == (40.0, 60.0)
    doc.undo_stack.undo()
    assert nid not in doc.graph.nodes
    doc.undo_stack.redo()
    assert doc.graph.node(nid).name == "conv"


def test_add_node_with_bad_params_is_refused_before_pushing(doc):
    with pytest.raises(GraphError, match="filters"):
        AddNodeCommand(doc, "Conv2d", (0, 0), {"filters": 0})
    with pytest.raises(GraphError, match="no layer type"):
        AddNodeCommand(doc, "Nope", (0, 0))
    assert doc.undo_stack.count() == 0


def test_remove_nodes_restores_ids_params_names_positions_and_wires(doc):
    ids = _chain(doc)
    doc.graph.set_params(ids["conv"], {"kernel_size": 5, "padding": 2})
    before = graph_to_dict(doc.graph)
    cmd = RemoveNodesCommand(doc, [ids["conv"], ids["input"]])
    doc.push(cmd)
    assert cmd.text() == "Delete 2 blocks"
    assert set(doc.graph.nodes) == {ids["relu"], ids["add"]}
    assert doc.graph.edges == [e for e in doc.graph.edges if e.src == ids["relu"]]
    doc.undo_stack.undo()
    after = graph_to_dict(doc.graph)
    key = lambda d: sorted(d["nodes"], key=lambda n: n["id"])  # noqa: E731
    assert key(after) == key(before)
    assert sorted(map(str, after["edges"])) == sorted(map(str, before["edges"]))
    doc.undo_stack.redo()
    assert len(doc.graph) == 2


# ---------------------------------------------------------------------- wires
def test_connect_and_disconnect_commands(doc):
    g = doc.graph
    a = g.add_node("Conv2d", name="conv1").id
    b = g.add_node("ReLU", name="relu1").id
    cmd = ConnectCommand(doc, a, 0, b, 0)
    assert cmd.text() == "Connect conv1 → relu1"
    doc.push(cmd)
    (edge,) = g.edges
    doc.push(DisconnectCommand(doc, edge))
    assert g.edges == []
    assert _last_text(doc) == "Disconnect conv1 → relu1"
    doc.undo_stack.undo()
    assert g.edges == [edge]
    doc.undo_stack.undo()
    assert g.edges == []


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (("relu", "conv"), "close a loop"),
        (("conv", "add", 1), "already fed"),
        (("conv", "conv"), "itself"),
    ],
)
def test_connect_refusals_carry_the_engine_reason(doc, wire, reason):
    ids = _chain(doc)
    if reason == "close a loop":
        doc.graph.disconnect(doc.graph.edge_into(ids["conv"], 0))
    src, dst, *port = wire
    with pytest.raises(GraphError, match=reason):
        ConnectCommand(doc, ids[src], 0, ids[dst], port[0] if port else 0)
    assert doc.undo_stack.count() == 0


# ---------------------------------------------------------------------- params, names, moves
def test_set_params_on_several_blocks_is_one_step(doc):
    g = doc.graph
    a = g.add_node("Conv2d", name="conv1").id
    b = g.add_node("Conv2d", name="conv2").id
    one = SetParamsCommand(doc, [a], {"filters": 32})
    assert one.text() == "Set filters = 32 on conv1"
    both = SetParamsCommand(doc, [a, b], {"kernel_size": 5, "padding": "same"})
    assert both.text() == "Set kernel_size = 5, padding = same on 2 blocks"
    doc.push(both)
    assert g.node(a).params["kernel_size"] == g.node(b).params["kernel_size"] == 5
    doc.undo_stack.undo()
    assert g.node(a).params["kernel_size"] == g.node(b).params["kernel_size"] == 3


def test_set_params_refusals(doc):
    ids = _chain(doc)
    with pytest.raises(GraphError, match="at least 1"):
        SetParamsCommand(doc, [ids["conv"]], {"filters": 0})
    with pytest.raises(GraphError, match="no parameter"):
        SetParamsCommand(doc, [ids["conv"]], {"bogus": 1})
    doc.graph.set_params(ids["add"], {"inputs": 3})
    doc.graph.connect(ids["conv"], 0, ids["add"], 2)
    with pytest.raises(GraphError, match="would lose input 3"):
        SetParamsCommand(doc, [ids["add"]], {"inputs": 2})
    assert doc.undo_stack.count() == 0
    assert doc.graph.node(ids["add"]).params["inputs"] == 3


def test_rename_command(doc):
    ids = _chain(doc)
    with pytest.raises(GraphError, match="already called"):
        RenameCommand(doc, ids["conv"], "relu1")
    with pytest.raises(GraphError):
        RenameCommand(doc, ids["conv"], "   ")
    cmd = RenameCommand(doc, ids["conv"], "  stem ")
    doc.push(cmd)
    assert doc.graph.node(ids["conv"]).name == "stem"
    assert cmd.text() == "Rename conv1 → stem"
    doc.undo_stack.undo()
    assert doc.graph.node(ids["conv"]).name == "conv1"


def test_move_and_layout_commands(doc):
    ids = _chain(doc)
    g = doc.graph
    doc.push(MoveNodesCommand(doc, {ids["conv"]: ((240, 0), (260, 40)), ids["relu"]: ((480, 0), (500, 40))}))
    assert _last_text(doc) == "Move 2 blocks"
    assert g.node(ids["relu"]).pos == (500.0, 40.0)
    doc.undo_stack.undo()
    assert g.node(ids["conv"]).pos == (240.0, 0.0)
    doc.push(ApplyLayoutCommand(doc, {nid: (0.0, i * 100.0) for i, nid in enumerate(ids.values())}))
    assert g.node(ids["add"]).pos == (0.0, 300.0)
    doc.undo_stack.undo()
    assert g.node(ids["add"]).pos == (720.0, 0.0)


# ---------------------------------------------------------------------- paste
def test_paste_gives_fresh_ids_unique_names_and_keeps_inner_wires(doc, qtbot):
    ids = _chain(doc)
    data = graph_to_dict(doc.graph, [ids["conv"], ids["relu"]])
    cmd = PasteCommand(doc, data, (40, 40))
    with qtbot.waitSignal(doc.select_requested) as sel:
        doc.push(cmd)
    new_ids = sel.args[0]
    assert len(new_ids) == 2 and not set(new_ids) & set(ids.values())
    g = doc.graph
    names = [g.node(n).name for n in new_ids]
    assert names == ["conv2", "relu2"]
    assert g.node(new_ids[0]).pos == (280.0, 40.0)
    assert g.edge_into(new_ids[1], 0).src == new_ids[0]
    assert g.inputs_of(new_ids[0]) == [None]  # the wire from the uncopied input is dropped
    doc.undo_stack.undo()
    assert len(g) == 4
    doc.undo_stack.redo()
    assert [g.node(n).name for n in new_ids] == names


def test_paste_refuses_malformed_data(doc):
    with pytest.raises(GraphError):
        PasteCommand(doc, {"nodes": []}, (0, 0))
    with pytest.raises(GraphError):
        PasteCommand(doc, {"nodes": [{"id": "a", "type": "Conv2d", "params": {"filters": -1}}]}, (0, 0))
    with pytest.raises(GraphError):
        PasteCommand(
            doc,
            {
                "nodes": [{"id": "a", "type": "ReLU"}, {"id": "b", "type": "ReLU"}],
                "edges": [{"from": ["a", 0], "to": ["b", 3]}],
            },
            (0, 0),
        )
    assert doc.undo_stack.count() == 0


def test_commands_compose_into_one_step(doc):
    ids = _chain(doc)
    (wire,) = [e for e in doc.graph.edges if e.dst == ids["add"] and e.dst_port == 1]
    steps = [DisconnectCommand(doc, wire), RemoveNodesCommand(doc, [ids["relu"]])]
    doc.push(MacroCommand("Delete 1 block and 1 wire", steps))
    assert len(doc.graph.edges) == 1
    doc.undo_stack.undo()
    assert len(doc.graph.edges) == 4

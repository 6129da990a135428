"""The graph document: every edit, every refusal, and the one event each edit announces."""

from __future__ import annotations

import pytest

from engine.errors import GraphError, ParamError
from engine.graph import Edge, Graph
from tests.engine.helpers import Recorder, image_input, merge, then, vector_input


@pytest.fixture
def g() -> Graph:
    return Graph()


@pytest.fixture
def rec(g: Graph) -> Recorder:
    return Recorder(g)


def _state(g: Graph):
    """Everything that defines the document, for before/after comparisons."""
    nodes = {nid: (n.type, n.name, dict(n.params), n.pos) for nid, n in g.nodes.items()}
    into = {(e.dst, e.dst_port): e for e in g.edges}
    return nodes, list(g.edges), into


def _assert_index_consistent(g: Graph) -> None:
    for e in g.edges:
        assert g.edge_into(e.dst, e.dst_port) == e
    fed = sum(1 for nid in g.nodes for e in g.inputs_of(nid) if e is not None)
    assert fed == len(g.edges)


# --------------------------------------------------------------------- add / remove
def test_add_node_fills_defaults_and_announces_once(g, rec):
    node = g.add_node("Conv2d", {"filters": 8}, pos=(10, 20))
    assert node.id in g.nodes and node.type == "Conv2d"
    assert node.params["filters"] == 8 and node.params["kernel_size"] == 3  # default kept
    assert node.params["init"] == "default"  # weighted layers get the init param
    assert node.pos == (10.0, 20.0)
    assert rec.kinds == ["node_added"] and rec.events[0].data["node_id"] == node.id


def test_default_names_are_unique(g):
    names = [g.add_node("Dense").name for _ in range(3)]
    assert len(set(names)) == 3 and names[0] == "fc"


def test_ids_are_fresh_and_explicit_ids_are_respected(g):
    a = g.add_node("ReLU", node_id="n7")
    b = g.add_node("ReLU")
    assert a.id == "n7" and b.id == "n8"  # fresh ids continue past explicit ones
    with pytest.raises(GraphError, match="already exists"):
        g.add_node("ReLU", node_id="n7")
    with pytest.raises(GraphError, match="non-empty"):
        g.add_node("ReLU", node_id="")


def test_unknown_layer_type_refused(g, rec):
    with pytest.raises(GraphError, match="no layer type called 'Banana'"):
        g.add_node("Banana")
    assert len(g) == 0 and rec.events == []


@pytest.mark.parametrize(
    "params, words",
    [
        ({"units": 0}, "'units' must be at least 1"),
        ({"units": "many"}, "'units' must be a whole number"),
        ({"bias": "yes"}, "'bias' must be true or false"),
        ({"colour": 3}, "no parameter 'colour'"),
    ],
)
def test_add_node_refuses_invalid_params(g, rec, params, words):
    with pytest.raises(ParamError, match=words) as info:
        g.add_node("Dense", params)
    assert "Dense" in str(info.value)
    assert len(g) == 0 and rec.events == []


def test_add_node_refuses_duplicate_or_bad_name_and_position(g, rec):
    g.add_node("Dense", name="head")
    rec.clear()
    with pytest.raises(GraphError, match="already called 'head'"):
        g.add_node("Dense", name="head")
    with pytest.raises(GraphError, match="one line"):
        g.add_node("Dense", name="a\nb")
    with pytest.raises(GraphError, match="finite position"):
        g.add_node("Dense", pos=(float("nan"), 0))
    assert len(g) == 1 and rec.events == []


def test_remove_node_removes_its_wires_in_one_event(g, rec):
    i = image_input(g, 3, 8)
    c = then(g, i, "Conv2d")
    r = then(g, c, "ReLU")
    p = then(g, c, "MaxPool2d")
    rec.clear()
    g.remove_node(c)
    assert c not in g.nodes and g.edges == []
    assert rec.kinds == ["node_removed"]
    data = rec.events[0].data
    assert data["node_id"] == c and data["node"].type == "Conv2d"
    assert set(data["edges"]) == {Edge(i, 0, c, 0), Edge(c, 0, r, 0), Edge(c, 0, p, 0)}
    assert g.edge_into(r, 0) is None and g.edge_into(p, 0) is None
    _assert_index_consistent(g)


def test_remove_unknown_node_refused(g, rec):
    with pytest.raises(GraphError, match="no block with id 'n99'"):
        g.remove_node("n99")
    assert rec.events == []


# --------------------------------------------------------------------- connect / disconnect
def test_connect_and_disconnect(g, rec):
    i, d = vector_input(g, 4), g.add_node("Dense").id
    rec.clear()
    e = g.connect(i, 0, d, 0)
    assert e == Edge(i, 0, d, 0) and g.edges == [e] and g.edge_into(d, 0) == e
    assert g.successors(i) == [d] and g.predecessors(d) == [i]
    assert rec.kinds == ["edge_added"] and rec.events[0].data["edge"] == e
    rec.clear()
    g.disconnect(e)
    assert g.edges == [] and g.edge_into(d, 0) is None
    assert rec.kinds == ["edge_removed"] and rec.events[0].data["edge"] == e
    with pytest.raises(GraphError, match="does not exist"):
        g.disconnect(e)
    assert rec.kinds == ["edge_removed"]


def test_self_loop_refused(g, rec):
    d = g.add_node("Dense", name="hidden").id
    rec.clear()
    with pytest.raises(GraphError, match="'hidden' cannot feed itself"):
        g.connect(d, 0, d, 0)
    assert g.edges == [] and rec.events == []


def test_second_wire_into_one_port_refused(g, rec):
    a, b = vector_input(g, 4, name="pixels"), vector_input(g, 4, name="extra")
    d = g.add_node("Dense", name="fc1").id
    g.connect(a, 0, d, 0)
    rec.clear()
    with pytest.raises(GraphError) as info:
        g.connect(b, 0, d, 0)
    msg = str(info.value)
    assert "'fc1'" in msg and "already fed by 'pixels'" in msg and "Add or Concatenate" in msg
    assert len(g.edges) == 1 and rec.events == []


def test_a_wire_may_be_checked_as_replacing_the_one_into_its_port(g, rec):
    a, b = vector_input(g, 4, name="pixels"), vector_input(g, 4, name="extra")
    d = g.add_node("Dense", name="fc1").id
    old = g.connect(a, 0, d, 0)
    new = Edge(b, 0, d, 0)
    with pytest.raises(GraphError, match="already fed"):
        g.check_connect(new)
    g.check_connect(new, replacing=old)  # allowed once the old wire goes
    with pytest.raises(GraphError, match="already fed"):
        g.check_connect(new, replacing=Edge(b, 0, d, 0))  # not the wire that is there
    e = then(g, d, "ReLU", name="act")
    with pytest.raises(GraphError, match="close a loop"):
        g.check_connect(Edge(e, 0, d, 0), replacing=old)  # replacing does not excuse a loop


def test_edge_closing_a_cycle_refused(g, rec):
    a, b = g.add_node("Dense", name="a").id, g.add_node("Dense", name="b").id
    g.connect(a, 0, b, 0)
    rec.clear()
    with pytest.raises(GraphError) as info:
        g.connect(b, 0, a, 0)
    assert "'b' into 'a' would close a loop" in str(info.value)
    assert len(g.edges) == 1 and rec.events == []


def test_longer_cycle_refused(g, rec):
    a, b, c = (g.add_node("ReLU", name=n).id for n in "abc")
    g.connect(a, 0, b, 0)
    g.connect(b, 0, c, 0)
    with pytest.raises(GraphError, match="'c' into 'a' would close a loop"):
        g.connect(c, 0, a, 0)
    assert g.topological_order() == [a, b, c]


def test_merge_ports_and_bad_ports_refused(g):
    a, b = image_input(g, 1, 4), image_input(g, 1, 4)
    add = g.add_node("Add", name="sum").id
    g.connect(a, 0, add, 0)
    g.connect(b, 0, add, 1)
    assert [e.src for e in g.inputs_of(add)] == [a, b]
    with pytest.raises(GraphError, match="'sum' has no input port 3"):
        g.connect(a, 0, add, 2)
    with pytest.raises(GraphError, match="has no output port 2"):
        g.connect(a, 1, add, 0)
    head = g.add_node("ClassificationOutput", name="cls").id
    with pytest.raises(GraphError, match="'cls' .* has no output"):
        g.connect(head, 0, add, 0)
    with pytest.raises(GraphError, match="takes no input"):
        g.connect(a, 0, b, 0)
    with pytest.raises(GraphError, match="no block with id"):
        g.connect("nope", 0, add, 0)


# --------------------------------------------------------------------- params
def test_set_params_announces_old_and_new(g, rec):
    d = g.add_node("Dense", {"units": 10}).id
    rec.clear()
    g.set_params(d, {"units": 20, "bias": False})
    assert g.node(d).params["units"] == 20 and g.node(d).params["bias"] is False
    assert rec.kinds == ["params_changed"]
    assert rec.events[0].data == {"node_id": d, "old": {"units": 10, "bias": True}, "new": {"units": 20, "bias": False}}


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"units": -1}, "'units' must be at least 1, not -1"),
        ({"units": 2.5}, "'units' must be a whole number"),
        ({"init": "random"}, "'init' must be one of"),
        ({"nonsense": 1}, r"\(Dense\) has no parameter 'nonsense'"),
    ],
)
def test_set_params_refuses_invalid_value(g, rec, changes, words):
    d = g.add_node("Dense", {"units": 10}, name="classifier").id
    rec.clear()
    with pytest.raises(ParamError, match=words) as info:
        g.set_params(d, {"bias": False, **changes})  # a valid change alongside is not applied
    assert "'classifier'" in str(info.value)
    assert g.node(d).params["units"] == 10 and g.node(d).params["bias"] is True
    assert rec.events == []


def test_set_params_coerces_whole_numbers_and_choices(g):
    c = g.add_node("Conv2d").id
    g.set_params(c, {"filters": 12.0, "padding": 2})
    assert g.node(c).params["filters"] == 12 and isinstance(g.node(c).params["filters"], int)
    g.set_params(c, {"padding": "valid"})
    assert g.node(c).params["padding"] == "valid"
    with pytest.raises(ParamError, match="whole number or one of 'same' or 'valid'"):
        g.set_params(c, {"padding": "full"})


def test_shrinking_merge_inputs_refused_while_removed_port_is_wired(g, rec):
    srcs = [image_input(g, 1, 4) for _ in range(3)]
    add = merge(g, "Add", srcs, {"inputs": 3}, name="residual")
    rec.clear()
    with pytest.raises(GraphError) as info:
        g.set_params(add, {"inputs": 2})
    assert "'residual' would lose input 3" in str(info.value) and "disconnect it first" in str(info.value)
    assert g.node(add).params["inputs"] == 3 and rec.events == []
    g.disconnect(g.edge_into(add, 2))
    g.set_params(add, {"inputs": 2})
    assert g.node(add).input_ports() == ["1", "2"]


def test_growing_merge_inputs_adds_ports(g):
    add = g.add_node("Concatenate").id
    g.set_params(add, {"inputs": 4})
    assert len(g.inputs_of(add)) == 4
    with pytest.raises(ParamError, match="at most 8"):
        g.set_params(add, {"inputs": 9})


# --------------------------------------------------------------------- rename / move
def test_rename(g, rec):
    d = g.add_node("Dense").id
    rec.clear()
    g.rename(d, "  hidden layer  ")
    assert g.node(d).name == "hidden layer"
    assert rec.kinds == ["node_renamed"] and rec.events[0].data == {"node_id": d, "old": "fc", "new": "hidden layer"}
    g.rename(d, "hidden layer")  # its own name is not a duplicate
    assert len(rec.events) == 2


@pytest.mark.parametrize(
    "name, words",
    [
        ("taken", "another block is already called 'taken'"),
        ("", "visible text"),
        ("   ", "visible text"),
        ("two\nlines", "one line"),
        ("tab\there", "one line"),
        ("x" * 200, "at most 80"),
        (None, "visible text"),
    ],
)
def test_rename_refusals(g, rec, name, words):
    g.add_node("Dense", name="taken")
    d = g.add_node("Dense", name="mine").id
    rec.clear()
    with pytest.raises(GraphError, match=words):
        g.rename(d, name)
    assert g.node(d).name == "mine" and rec.events == []


def test_move(g, rec):
    d = g.add_node("Dense").id
    rec.clear()
    g.move(d, (3, 4.5))
    assert g.node(d).pos == (3.0, 4.5)
    assert rec.kinds == ["node_moved"] and rec.events[0].data == {"node_id": d, "old": (0.0, 0.0), "new": (3.0, 4.5)}
    with pytest.raises(GraphError, match="finite position"):
        g.move(d, (float("inf"), 0))
    with pytest.raises(GraphError, match="two numbers"):
        g.move(d, ("left", 0))
    assert g.node(d).pos == (3.0, 4.5) and len(rec.events) == 1


def test_flow_turns_the_drawing_and_says_so(g, rec):
    assert g.flow == "lr"
    g.set_flow("tb")
    g.set_flow("tb")  # no change, no event
    assert g.flow == "tb" and rec.kinds == ["flow_changed"] and rec.events[0].data == {"old": "lr", "new": "tb"}
    with pytest.raises(GraphError, match="'lr' or 'tb', not 'up'"):
        g.set_flow("up")
    with pytest.raises(GraphError):
        with g.batch():
            g.set_flow("lr")
            g.move("nowhere", (0, 0))
    assert g.flow == "tb" and len(rec.events) == 1  # the failed batch rolled the flow back too
    g.clear()
    assert g.flow == "lr"


def test_clear(g, rec):
    i = image_input(g, 1, 4)
    then(g, i, "Flatten")
    rec.clear()
    g.clear()
    assert len(g) == 0 and g.edges == [] and rec.kinds == ["cleared"]


def test_unsubscribe(g, rec):
    g.unsubscribe(rec.events.append)
    g.add_node("ReLU")
    assert rec.events == []
    g.unsubscribe(rec.events.append)  # twice is harmless


# --------------------------------------------------------------------- batch
def test_batch_announces_events_in_order_after_the_block(g, rec):
    with g.batch():
        i = image_input(g, 1, 8)
        c = then(g, i, "Conv2d")
        g.rename(c, "first conv")
        g.move(c, (1, 1))
        g.set_params(c, {"filters": 4})
        assert rec.events == []  # nothing is announced mid-batch
    assert rec.kinds == ["node_added", "node_added", "edge_added", "node_renamed", "node_moved", "params_changed"]


def test_batch_rolls_back_everything_on_error(g, rec):
    i = image_input(g, 3, 8)
    c = then(g, i, "Conv2d", name="conv")
    node_c = g.node(c)
    before = _state(g)
    rec.clear()
    with pytest.raises(GraphError, match="close a loop"):
        with g.batch():
            r = then(g, c, "ReLU")
            g.set_params(c, {"filters": 99, "kernel_size": 5})
            g.rename(c, "renamed")
            g.move(c, (50, 50))
            g.remove_node(i)  # frees c's input...
            g.connect(r, 0, c, 0)  # ...but r is fed by c: refused, so everything above is undone
    assert _state(g) == before
    assert rec.events == []
    assert g.node(c) is node_c and node_c.name == "conv" and node_c.params["filters"] == 16
    _assert_index_consistent(g)
    # the id counter was rolled back too: the next block gets the id it would have got
    assert g.add_node("ReLU").id == "n3"


def test_batch_rolls_back_on_any_exception_and_graph_stays_usable(g, rec):
    g.add_node("Dense", name="keep")
    with pytest.raises(RuntimeError):
        with g.batch():
            g.clear()
            g.add_node("Dense", name="keep")
            raise RuntimeError("boom")
    assert [n.name for n in g.nodes.values()] == ["keep"] and rec.kinds == ["node_added"]
    g.add_node("Dense")  # still works and announces directly
    assert rec.kinds == ["node_added", "node_added"]


def test_nested_batch_defers_to_the_outer_one(g, rec):
    with pytest.raises(GraphError):
        with g.batch():
            g.add_node("ReLU")
            with g.batch():
                g.add_node("ReLU")
            g.add_node("Nope")
    assert len(g) == 0 and rec.events == []
    with g.batch():
        with g.batch():
            g.add_node("ReLU")
        assert rec.events == []
    assert rec.kinds == ["node_added"]


# --------------------------------------------------------------------- queries
def test_topological_order_and_queries(g):
    i = image_input(g, 1, 8)
    a = then(g, i, "Conv2d")
    b = then(g, i, "Conv2d")
    add = merge(g, "Add", [b, a])
    order = g.topological_order()
    assert order.index(i) < order.index(a) < order.index(add) and order.index(b) < order.index(add)
    assert sorted(g.successors(i)) == sorted([a, b]) and g.predecessors(add) == [b, a]
    assert len(g.edges_of(a)) == 2 and len(g.edges_from(i)) == 2
    with pytest.raises(GraphError, match="no block with id"):
        g.node("ghost")

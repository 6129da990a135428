"""The graph's rules written once (engine.graphrules): topological walks, loops, wire checks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import graphrules
from engine.graphrules import (
    check_wires,
    find_cycle,
    reaches,
    topological_walk,
    wire_fault,
)


# ---------------------------------------------------------------------- random graphs
@st.composite
def dags(draw, max_nodes: int = 9):
    """Blocks named in a shuffled order, wires only from an earlier to a later block of a hidden order."""
    n = draw(st.integers(1, max_nodes))
    hidden = draw(st.permutations([f"b{i}" for i in range(n)]))
    pairs = [(hidden[i], hidden[j]) for i in range(n) for j in range(i + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), max_size=14)) if pairs else []
    nodes = draw(st.permutations(hidden))
    return list(nodes), edges


@st.composite
def graphs(draw, max_nodes: int = 8):
    """Any wiring, loops and self-wires included."""
    n = draw(st.integers(1, max_nodes))
    nodes = [f"b{i}" for i in range(n)]
    edges = draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(nodes)), max_size=14))
    return nodes, edges


def flows_forward(order: list[str], edges) -> bool:
    at = {n: k for k, n in enumerate(order)}
    return all(at[a] < at[b] for a, b in edges)


# ---------------------------------------------------------------------- walks
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(dags())
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_the_order_holds_every_block_once_and_respects_every_wire(graph):
    nodes, edges = graph
    for earliest in (False, True):
        walk = topological_walk(nodes, edges, earliest_first=earliest)
        assert sorted(walk.order) == sorted(nodes) and walk.blocked == []
        assert flows_forward(walk.order, edges)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(dags(max_nodes=6))
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_earliest_first_is_the_first_valid_order_by_position(graph):
    """Against brute force: of all orders that respect the wires, the one earliest by position."""
    nodes, edges = graph
    position = {n: k for k, n in enumerate(nodes)}
    valid = [list(p) for p in itertools.permutations(nodes) if flows_forward(list(p), edges)]
    best = min(valid, key=lambda order: [position[n] for n in order])
    assert topological_walk(nodes, edges, earliest_first=True).order == best


def test_ties_go_breadth_first_or_earliest_first():
    nodes = ["a", "b", "c", "d"]
    edges = [("a", "d"), ("b", "c")]
    # a and b are ready at once; d becomes ready (after a) before c does (after b)
    assert topological_walk(nodes, edges).order == ["a", "b", "d", "c"]
    assert topological_walk(nodes, edges, earliest_first=True).order == ["a", "b", "c", "d"]


def test_a_loop_blocks_its_blocks_and_what_they_feed():
    nodes = ["in", "x", "y", "after", "alone"]
    edges = [("in", "x"), ("x", "y"), ("y", "x"), ("y", "after")]
    walk = topological_walk(nodes, edges)
    assert walk.order == ["in", "alone"]
    assert walk.blocked == ["x", "y", "after"]
    assert find_cycle(nodes, edges) == ["y", "x", "y"]  # y feeds x, x feeds y


def test_breaking_loops_places_every_block_once_earliest_first():
    nodes = ["in", "x", "y", "after"]
    edges = [("in", "x"), ("x", "y"), ("y", "x"), ("y", "after")]
    walk = topological_walk(nodes, edges, earliest_first=True, break_loops=True)
    assert walk.order == ["in", "x", "y", "after"] and walk.blocked == []


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(graphs())
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_a_cycle_is_reported_with_the_blocks_on_it(graph):
    nodes, edges = graph
    walk = topological_walk(nodes, edges)
    loop = find_cycle(nodes, edges)
    assert flows_forward(walk.order, [(a, b) for a, b in edges if b in walk.order])
    assert bool(loop) == bool(walk.blocked)
    if loop:
        assert loop[0] == loop[-1] and len(set(loop)) == len(loop) - 1
        assert all(pair in edges for pair in itertools.pairwise(loop))
        assert set(loop) <= set(walk.blocked)
    # every blocked block is on a loop or fed from one: a block on a loop reaches it
    def succ(n):
        return [b for a, b in edges if a == n]

    on_loops = [m for m in nodes if any(reaches(s, m, succ) for s in succ(m))]
    assert walk.blocked == [n for n in nodes if any(reaches(m, n, succ) for m in on_loops)]
    broken = topological_walk(nodes, edges, earliest_first=True, break_loops=True)
    assert sorted(broken.order) == sorted(nodes) and broken.blocked == []


def test_reaches_follows_wires_forward_only():
    edges = {"a": ["b"], "b": ["c"], "c": [], "d": ["a"]}
    assert reaches("a", "c", edges.__getitem__) and reaches("d", "c", edges.__getitem__)
    assert not reaches("c", "a", edges.__getitem__)


# ---------------------------------------------------------------------- wires
def fault(wire, outputs=1, inputs=1, feeder=None, closes_loop=None):
    found = wire_fault(wire, outputs=outputs, inputs=inputs, feeder=feeder, closes_loop=closes_loop)
    return None if found is None else found.kind


def test_a_wire_that_fits_passes():
    assert fault(("a", 0, "b", 1), outputs=1, inputs=2, closes_loop=lambda: False) is None


@pytest.mark.parametrize(
    "wire, outputs, inputs, kind",
    [
        (("a", 0, "a", 0), 1, 1, graphrules.SELF_WIRE),
        (("a", 0, "b", 0), 0, 1, graphrules.NO_OUTPUT),
        (("a", 1, "b", 0), 1, 1, graphrules.OUTPUT_PORT),
        (("a", -1, "b", 0), 1, 1, graphrules.OUTPUT_PORT),
        (("a", 0, "b", 0), 1, 0, graphrules.NO_INPUT),
        (("a", 0, "b", 2), 1, 2, graphrules.INPUT_PORT),
        (("a", 0, "b", -1), 1, 2, graphrules.INPUT_PORT),
    ],
)
def test_wires_to_ports_that_do_not_exist_are_refused(wire, outputs, inputs, kind):
    assert fault(wire, outputs, inputs) == kind


def test_a_second_wire_into_a_port_names_the_first():
    found = wire_fault(("a", 0, "b", 0), outputs=1, inputs=1, feeder="the first wire")
    assert (found.kind, found.other) == (graphrules.PORT_TAKEN, "the first wire")


def test_a_wire_closing_a_loop_is_refused_and_the_loop_is_looked_for_last():
    asked = []

    def closes():
        asked.append(True)
        return True

    assert fault(("a", 0, "b", 0), closes_loop=closes) == graphrules.LOOP and asked
    asked.clear()
    assert fault(("a", 0, "b", 0), feeder="taken", closes_loop=closes) == graphrules.PORT_TAKEN and not asked


def test_check_wires_names_the_first_bad_wire():
    nodes = ["in", "conv", "add"]
    ports = {"in": (1, 0), "conv": (1, 1), "add": (1, 2)}.__getitem__
    good = [("in", 0, "conv", 0), ("conv", 0, "add", 0), ("in", 0, "add", 1)]
    assert check_wires(nodes, good, ports) is None
    second = check_wires(nodes, good + [("conv", 0, "add", 1)], ports)
    assert (second.kind, second.wire, second.other) == (graphrules.PORT_TAKEN, 3, 2)
    itself = check_wires(nodes, [("conv", 0, "conv", 0)], ports)
    assert (itself.kind, itself.wire) == (graphrules.SELF_WIRE, 0)
    out_of_range = check_wires(nodes, [good[0], ("conv", 0, "add", 2)], ports)
    assert (out_of_range.kind, out_of_range.wire) == (graphrules.INPUT_PORT, 1)
    into_input = check_wires(nodes, [("conv", 0, "in", 0)], ports)
    assert (into_input.kind, into_input.wire) == (graphrules.NO_INPUT, 0)


def test_check_wires_finds_a_loop_with_its_blocks():
    nodes = ["in", "a", "b", "c"]
    ports = {"in": (1, 0), "a": (1, 2), "b": (1, 1), "c": (1, 1)}.__getitem__
    wires = [("in", 0, "a", 0), ("a", 0, "b", 0), ("b", 0, "c", 0), ("c", 0, "a", 1)]
    found = check_wires(nodes, wires, ports)
    assert found.kind == graphrules.LOOP and found.wire is None
    assert found.other == ["b", "c", "a", "b"]  # b feeds c, c feeds a, a feeds b

"""Auto-arrange: layered, left to right (or top to bottom), no overlaps, deterministic, fast."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest

from engine.errors import GraphError
from engine.graph import Graph
from engine.layout import BLOCK, DEFAULT_FIT, DEFAULT_SPACING, apply_layout, auto_layout
from tests.conftest import ROOT
from tests.engine.helpers import Recorder, chain, image_input, merge, then, vector_input

BLOCK_W, BLOCK_H = BLOCK  # a block's size on the canvas
ONE_BAND = {"fit": None}  # the classic layered drawing, not wrapped


# ---------------------------------------------------------------------- graphs
def residual_stack(blocks: int) -> Graph:
    """Input, then ``blocks`` basic residual blocks (7 nodes each), then a class head."""
    g = Graph()
    x = image_input(g, 8, 8)
    for _ in range(blocks):
        y = chain(g, x, "Conv2d", "BatchNorm", "ReLU", "Conv2d", "BatchNorm")[-1]
        x = then(g, merge(g, "Add", [y, x]), "ReLU")
    chain(g, x, "GlobalAvgPool", ("Dense", {"units": 3}), "ClassificationOutput")
    return g


def inception_like() -> Graph:
    g = Graph()
    stem = then(g, image_input(g, 3, 16), "Conv2d")
    b1 = then(g, stem, "Conv2d", {"kernel_size": 1})
    b2 = chain(g, stem, ("Conv2d", {"kernel_size": 1}), "ReLU", "Conv2d")[-1]
    b3 = chain(g, stem, ("Conv2d", {"kernel_size": 1}), "ReLU", ("Conv2d", {"kernel_size": 5}))[-1]
    b4 = then(g, stem, "MaxPool2d", {"kernel_size": 3, "stride": 1, "padding": 1})
    cat = merge(g, "Concatenate", [b1, b2, b3, b4], {"inputs": 4})
    chain(g, cat, "GlobalAvgPool", ("Dense", {"units": 10}), "ClassificationOutput")
    return g


def two_heads() -> Graph:
    """A trunk with a short class head and a longer box head."""
    g = Graph()
    trunk = chain(g, image_input(g, 1, 16), "Conv2d", "ReLU", "Flatten", ("Dense", {"units": 32}), "ReLU")[-1]
    chain(g, trunk, ("Dense", {"units": 3}), "ClassificationOutput")
    chain(g, trunk, ("Dense", {"units": 4}), "Sigmoid", "ReLU", "BoxOutput")
    return g


def two_pieces() -> Graph:
    g = Graph()
    chain(g, vector_input(g, 2), ("Dense", {"units": 4}), "ReLU")
    chain(g, vector_input(g, 3), ("Dense", {"units": 2}))
    g.add_node("Dense", {})  # a stray block wired to nothing
    return g


def random_dag(n: int, seed: int) -> Graph:
    """``n`` blocks; each takes one to three recent blocks as input (so wires skip columns)."""
    rng = random.Random(seed)
    g = Graph()
    ids = [vector_input(g, 4)]
    while len(ids) < n:
        recent = ids[-12:]
        k = min(rng.choice((1, 1, 1, 2, 2, 3)), len(recent))
        srcs = rng.sample(recent, k)
        ids.append(then(g, srcs[0], "ReLU") if k == 1 else merge(g, "Add", srcs, {"inputs": k}))
    return g


GRAPHS = {
    "chain": lambda: residual_stack(0),
    "residual": lambda: residual_stack(2),
    "inception": inception_like,
    "two_heads": two_heads,
    "two_pieces": two_pieces,
    "random": lambda: random_dag(60, 1),
}


# ---------------------------------------------------------------------- helpers
def overlaps(pos: dict) -> list[tuple[str, str]]:
    items = sorted(pos.items(), key=lambda kv: kv[1])
    bad = []
    for i, (a, (ax, ay)) in enumerate(items):
        for b, (bx, by) in items[i + 1 :]:
            if bx >= ax + BLOCK_W:
                break
            if abs(by - ay) < BLOCK_H:
                bad.append((a, b))
    return bad


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("direction", ["lr", "tb"])
@pytest.mark.parametrize("name", GRAPHS)
def test_no_overlap_and_wires_flow_one_way(name, direction):
    g = GRAPHS[name]()
    pos = auto_layout(g, direction, **ONE_BAND)
    assert list(pos) == list(g.nodes)
    assert overlaps(pos) == []
    along = 0 if direction == "lr" else 1
    size = BLOCK_W if direction == "lr" else BLOCK_H
    for e in g.edges:
        assert pos[e.dst][along] >= pos[e.src][along] + size, (g.nodes[e.src].name, g.nodes[e.dst].name)


@pytest.mark.parametrize("seed", range(5))
def test_random_graphs_are_clean(seed):
    g = random_dag(120, seed)
    pos = auto_layout(g, **ONE_BAND)
    assert overlaps(pos) == []
    assert all(pos[e.dst][0] > pos[e.src][0] for e in g.edges)


def test_chain_is_one_straight_row():
    g = residual_stack(0)
    pos = auto_layout(g, **ONE_BAND)
    xs = [pos[nid][0] for nid in g.topological_order()]
    assert {y for _, y in pos.values()} == {0.0}
    assert xs == [i * DEFAULT_SPACING[0] for i in range(len(xs))]


def test_top_to_bottom_swaps_the_axes():
    g = residual_stack(0)
    lr, tb = auto_layout(g, "lr", **ONE_BAND), auto_layout(g, "tb", **ONE_BAND)
    assert {x for x, _ in tb.values()} == {0.0}
    assert [tb[n][1] for n in g.nodes] == [lr[n][0] / DEFAULT_SPACING[0] * DEFAULT_SPACING[1] for n in g.nodes]


def test_spacing_and_origin_are_respected():
    g = inception_like()
    pos = auto_layout(g, spacing=(300, 150), origin=(10, 20), **ONE_BAND)
    assert min(x for x, _ in pos.values()) == 10
    assert min(y for _, y in pos.values()) == 20
    assert {(x - 10) % 300 for x, _ in pos.values()} == {0}
    assert {(y - 20) % 75 for _, y in pos.values()} == {0}  # rows snap to half the row gap


def test_inputs_first_heads_last():
    g = two_heads()
    pos = auto_layout(g, **ONE_BAND)
    heads = [nid for nid, n in g.nodes.items() if n.spec.role == "head"]
    inputs = [nid for nid, n in g.nodes.items() if n.spec.role == "input"]
    right = max(x for x, _ in pos.values())
    assert all(pos[h][0] == right for h in heads)
    assert all(pos[i][0] == 0 for i in inputs)


def test_branches_sit_side_by_side_around_their_source():
    g = inception_like()
    pos = auto_layout(g, **ONE_BAND)
    stem = next(nid for nid, n in g.nodes.items() if n.type == "Conv2d")
    firsts = g.successors(stem)
    assert len({pos[b][0] for b in firsts}) == 1  # one column
    ys = sorted(pos[b][1] for b in firsts)
    assert all(b - a >= DEFAULT_SPACING[1] for a, b in zip(ys, ys[1:]))
    assert min(ys) <= pos[stem][1] <= max(ys)
    # The concatenation reads its branches in port order, top to bottom.
    cat = next(nid for nid, n in g.nodes.items() if n.type == "Concatenate")
    feeders = [e.src for e in g.inputs_of(cat)]
    assert [pos[f][1] for f in feeders] == sorted(pos[f][1] for f in feeders)


def test_straight_wires_never_pass_through_a_block():
    """A wire whose ends share a row (a skip) has that row to itself in between."""
    for name in ("residual", "inception", "random"):
        g = GRAPHS[name]()
        pos = auto_layout(g, **ONE_BAND)
        for e in g.edges:
            (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
            if y0 != y1:
                continue
            between = [n for n, (x, y) in pos.items() if x0 < x < x1 and abs(y - y0) < BLOCK_H / 2]
            assert between == [], (name, g.nodes[e.src].name, g.nodes[e.dst].name)


def test_separate_pieces_are_stacked():
    g = two_pieces()
    pos = auto_layout(g, **ONE_BAND)
    ids = list(g.nodes)
    first, second, stray = ids[:3], ids[3:5], ids[5]
    assert max(pos[n][1] for n in first) < min(pos[n][1] for n in second) < pos[stray][1]


def test_empty_graph():
    assert auto_layout(Graph()) == {}


def test_bad_arguments():
    with pytest.raises(ValueError, match="direction"):
        auto_layout(Graph(), "rl")
    with pytest.raises(ValueError, match="spacing"):
        auto_layout(Graph(), spacing=(0, 10))


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_deterministic_within_and_across_processes():
    g = GRAPHS["random"]()
    assert auto_layout(g) == auto_layout(g) == auto_layout(GRAPHS["random"]())
    script = textwrap.dedent(
        """
        from tests.engine.test_layout import GRAPHS
        from engine.layout import auto_layout
        print(sorted(auto_layout(GRAPHS["random"]()).items()))
        """
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outs == {str(sorted(auto_layout(g).items())) + "\n"}


def test_apply_layout_moves_each_block_once_in_one_batch():
    g = inception_like()
    pos = auto_layout(g)
    rec = Recorder(g)
    seen_during = []
    g.subscribe(lambda ev: seen_during.append(dict((n, g.nodes[n].pos) for n in g.nodes)))
    apply_layout(g, pos)
    assert rec.kinds == ["node_moved"] * len(g)
    assert [ev.data["node_id"] for ev in rec.events] == list(pos)
    assert {nid: n.pos for nid, n in g.nodes.items()} == pos
    # Events arrive after the whole batch: the first listener call already sees every move.
    assert seen_during[0] == pos


def test_apply_layout_is_all_or_nothing():
    g = residual_stack(0)
    before = {nid: n.pos for nid, n in g.nodes.items()}
    bad = {**auto_layout(g), "nope": (0.0, 0.0)}
    with pytest.raises(GraphError):
        apply_layout(g, bad)
    assert {nid: n.pos for nid, n in g.nodes.items()} == before


# ---------------------------------------------------------------------- wrapping to fit a room
def long_chain(n: int) -> Graph:
    g = Graph()
    x = vector_input(g, 4)
    for i in range(n - 2):
        x = then(g, x, "Dense", {"units": 4}) if i % 2 == 0 else then(g, x, "ReLU")
    then(g, x, "RegressionOutput")
    return g


def extent(pos: dict) -> tuple[float, float]:
    return (max(x for x, _ in pos.values()) + BLOCK_W - min(x for x, _ in pos.values()),
            max(y for _, y in pos.values()) + BLOCK_H - min(y for _, y in pos.values()))


def test_a_long_chain_wraps_into_rows_read_in_order():
    g = long_chain(30)
    room = (1320.0, 2000.0)
    pos = auto_layout(g, fit=room)
    width, height = extent(pos)
    assert width <= room[0] and height <= room[1]
    order = g.topological_order()
    rows = sorted({y for _, y in pos.values()})
    assert len(rows) > 1
    # Read row by row, left to right, the blocks come in the chain's order.
    assert sorted(order, key=lambda n: (pos[n][1], pos[n][0])) == order
    for a, b in zip(rows, rows[1:]):
        assert b - a >= BLOCK_H + DEFAULT_SPACING[1] / 2  # room between rows for the wires that return
    assert overlaps(pos) == []


def test_a_short_network_is_not_wrapped():
    for g in (residual_stack(0), long_chain(5)):
        assert auto_layout(g) == auto_layout(g, **ONE_BAND)


@pytest.mark.parametrize("room", [(1320.0, 857.0), (2400.0, 1400.0)])
def test_wrapped_rows_are_cut_between_residual_blocks(room):
    """Where one wire crosses (after a block's last ReLU), not through a block's skip, where a row reaches."""
    g = residual_stack(6)
    pos = auto_layout(g, fit=room)
    assert extent(pos)[0] <= room[0] and overlaps(pos) == []
    starts = [n for n, (x, _) in pos.items() if x == 0]
    returning = [e for e in g.edges if pos[e.dst][0] < pos[e.src][0] + BLOCK_W]
    assert len(starts) > 1
    assert len(returning) == len(starts) - 1  # one wire from each row into the next
    assert all(pos[e.dst][0] == 0 and pos[e.dst][1] > pos[e.src][1] for e in returning)


@pytest.mark.parametrize("direction", ["lr", "tb"])
@pytest.mark.parametrize("name", GRAPHS)
def test_wrapped_drawings_do_not_overlap_and_read_forward(name, direction):
    g = GRAPHS[name]()
    room = (900.0, 700.0) if direction == "lr" else (700.0, 900.0)
    pos = auto_layout(g, direction, fit=room)
    assert list(pos) == list(g.nodes) and overlaps(pos) == []
    along, across = (0, 1) if direction == "lr" else (1, 0)
    size, cross_size = (BLOCK_W, BLOCK_H) if direction == "lr" else (BLOCK_H, BLOCK_W)
    for e in g.edges:
        a, b = pos[e.src], pos[e.dst]
        forward = b[along] >= a[along] + size
        next_band = b[across] >= a[across] + cross_size  # it returns to the start of a later band
        assert forward or next_band, (name, g.nodes[e.src].name, g.nodes[e.dst].name)


def test_top_to_bottom_wraps_into_columns():
    g = long_chain(30)
    pos = auto_layout(g, "tb", fit=(2000.0, 1320.0))
    assert len({x for x, _ in pos.values()}) > 1
    assert extent(pos)[1] <= 1320.0
    order = g.topological_order()
    assert sorted(order, key=lambda n: (pos[n][0], pos[n][1])) == order


def test_every_template_fits_its_room_readably_or_scrolls_one_way():
    """Fitted to a canvas at the readable zoom: all of it shows, or its width does and it scrolls down."""
    from engine.templates import list_templates

    for room in (DEFAULT_FIT, (1008.0, 617.0)):
        for info in list_templates():
            pos = auto_layout(info.project.graph, fit=room)
            width, height = extent(pos)
            assert width <= room[0], (info.name, room, width)
            assert overlaps(pos) == [], info.name
            one_band = extent(auto_layout(info.project.graph, **ONE_BAND))
            if one_band[0] > room[0]:
                assert height > one_band[1], info.name  # it wrapped instead of running off to the right


def test_bad_fit():
    with pytest.raises(ValueError, match="fit"):
        auto_layout(residual_stack(0), fit=(0.0, 100.0))


def wide_merge(n: int) -> Graph:
    """Three Concatenates of the same ``n`` branches: tall blocks side by side in one column."""
    g = Graph()
    stem = then(g, image_input(g, 3, 16), "Conv2d")
    branches = [then(g, stem, "Conv2d", {"kernel_size": 1}) for _ in range(n)]
    for _ in range(3):
        merge(g, "Concatenate", branches, {"inputs": n})
    return g


@pytest.mark.parametrize("fit", [None, DEFAULT_FIT])
def test_a_tall_block_gets_the_room_it_takes(fit):
    g = wide_merge(8)
    tall = 24 + 20 * 8 + 10  # an 8-input merge as the canvas draws it left to right
    sizes = {nid: float(tall) for nid, n in g.nodes.items() if n.type == "Concatenate"}
    pos = auto_layout(g, fit=fit, sizes=sizes)
    boxes = {nid: (x, y, x + BLOCK_W, y + sizes.get(nid, BLOCK_H)) for nid, (x, y) in pos.items()}
    for a, ra in boxes.items():
        for b, rb in boxes.items():
            if a < b:
                assert not (ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]), (a, b)
    assert overlaps(auto_layout(g, fit=fit)) == []  # without sizes, blocks of the usual size still fit

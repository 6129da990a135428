"""Analysis (counts, cost, receptive fields, problems) and compiling whole networks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.analysis import ERROR, WARNING, Problem, ReceptiveField, _union, analyze, format_bytes, format_count
from engine.compile import compile_graph
from engine.errors import CompileError, NetDesignerError
from engine.graph import Edge, Graph
from engine.layers import registry
from tests.engine.helpers import chain, image_input, merge, then, torch_counts, vector_input

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def rules(analysis, nid=None) -> list[str]:
    probs = analysis.all_problems() if nid is None else analysis.problems.get(nid, [])
    return [p.rule for p in probs]


def only(analysis, rule: str) -> Problem:
    found = [p for p in analysis.all_problems() if p.rule == rule]
    assert len(found) == 1, f"expected one {rule!r}, got {analysis.all_problems()}"
    return found[0]


# --------------------------------------------------------------------- LeNet-5
def lenet(g: Graph, activation: str | None = None) -> tuple[str, list[str]]:
    """LeNet-5 on 32×32×1: conv 6@5×5, avg pool 2, conv 16@5×5, pool 2, flatten, 120, 84, 10."""
    act = [activation] if activation else []
    i = image_input(g, 1, 32)
    ids = chain(
        g,
        i,
        ("Conv2d", {"filters": 6, "kernel_size": 5, "padding": "valid"}),
        *act,
        "AvgPool2d",
        ("Conv2d", {"filters": 16, "kernel_size": 5, "padding": "valid"}),
        *act,
        "AvgPool2d",
        "Flatten",
        ("Dense", {"units": 120}),
        *act,
        ("Dense", {"units": 84}),
        *act,
        ("Dense", {"units": 10}),
        "ClassificationOutput",
    )
    return i, ids


def test_lenet5_params_macs_shapes_memory():
    g = Graph()
    _, ids = lenet(g)
    conv1, pool1, conv2, pool2, flat, fc1, fc2, fc3, head = ids
    a = analyze(g)
    n = a.nodes
    assert [n[x].out_shape for x in ids] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,), (120,), (84,), (10,), (10,)
    ]
    # weights + biases, by hand
    assert n[conv1].trainable == 6 * 1 * 5 * 5 + 6 == 156
    assert n[conv2].trainable == 16 * 6 * 5 * 5 + 16 == 2416
    assert n[fc1].trainable == 400 * 120 + 120 == 48120
    assert n[fc2].trainable == 120 * 84 + 84 == 10164
    assert n[fc3].trainable == 84 * 10 + 10 == 850
    assert a.total_params == a.total_trainable == 61_706 and a.total_frozen == 0
    # multiply-accumulates: conv Cout·Hout·Wout·Cin·k·k, dense in·out
    assert n[conv1].macs == 6 * 28 * 28 * 1 * 25 == 117_600
    assert n[conv2].macs == 16 * 10 * 10 * 6 * 25 == 240_000
    assert (n[fc1].macs, n[fc2].macs, n[fc3].macs) == (48_000, 10_080, 840)
    assert n[pool1].macs == n[flat].macs == 0
    assert a.total_macs == 117_600 + 240_000 + 48_000 + 10_080 + 840 == 416_520
    assert n[conv1].memory == 4 * 6 * 28 * 28 and n[head].memory == 0
    # the real module agrees
    compiled = compile_graph(g, analysis=a)
    assert torch_counts(compiled.module) == (61_706, 0)
    assert compiled.module(torch.randn(3, 1, 32, 32)).shape == (3, 10)


def test_lenet5_without_activations_warns_that_dense_layers_collapse():
    g = Graph()
    _, ids = lenet(g)
    collapsed = [p.node_id for p in analyze(g).warnings() if p.rule == "linear_collapse"]
    assert collapsed == ids[6:8]  # fc2 after fc1, fc3 after fc2 (the pools stand between the rest)
    g2 = Graph()
    lenet(g2, "Tanh")
    assert "linear_collapse" not in rules(analyze(g2))


# --------------------------------------------------------------------- receptive fields
def rf(analysis, nid) -> tuple[float, float, float]:
    r = analysis.nodes[nid].rf
    return (r.size, r.jump, r.offset)


def test_rf_three_3x3_convs():
    g = Graph()
    i = image_input(g, 1, 16)
    valid = chain(g, i, *[("Conv2d", {"kernel_size": 3, "padding": "valid"})] * 3)
    same = chain(g, i, *[("Conv2d", {"kernel_size": 3, "padding": "same"})] * 3)
    a = analyze(g)
    assert rf(a, i) == (1, 1, 0)
    # valid: the first output pixel looks at input 0..2, then 0..4, then 0..6
    assert [rf(a, x) for x in valid] == [(3, 1, 1), (5, 1, 2), (7, 1, 3)]
    # same: the window is centred on its own pixel
    assert [rf(a, x) for x in same] == [(3, 1, 0), (5, 1, 0), (7, 1, 0)]
    assert str(a.nodes[valid[-1]].rf) == "7×7"


def test_rf_conv_pool_conv():
    g = Graph()
    i = image_input(g, 1, 16)
    ids = chain(
        g,
        i,
        ("Conv2d", {"kernel_size": 3, "padding": "valid"}),
        ("MaxPool2d", {"kernel_size": 2, "stride": 2}),
        ("Conv2d", {"kernel_size": 3, "padding": "valid"}),
    )
    # conv: pixels 0..2 (centre 1); pool: conv pixels 0,1 = input 0..3 (centre 1.5);
    # conv: pool pixels 0..2 = conv pixels 0..5 = input 0..7 (centre 3.5)
    assert [rf(analyze(g), x) for x in ids] == [(3, 1, 1), (4, 2, 1.5), (8, 2, 3.5)]


def test_rf_stride_dilation_padding():
    g = Graph()
    i = image_input(g, 1, 32)
    a, b, c = chain(
        g,
        i,
        ("Conv2d", {"kernel_size": 3, "stride": 2, "padding": 1}),  # taps -1..1
        ("Conv2d", {"kernel_size": 3, "dilation": 2, "padding": 0}),  # span 4, jump 2: +8
        ("AvgPool2d", {"kernel_size": 3, "stride": 3, "padding": 1}),  # span 2 in jump-2 pixels
    )
    an = analyze(g)
    assert rf(an, a) == (3, 2, 0)
    assert rf(an, b) == (3 + 4 * 2, 2, 0 + (2 - 0) * 2)
    assert rf(an, c) == (11 + 2 * 2, 6, 4 + (1 - 1) * 2)


def test_rf_branches_merged_by_add_take_the_larger_window():
    g = Graph()
    i = image_input(g, 1, 16)
    short = then(g, i, "Conv2d", {"filters": 4, "padding": "same"})
    long = chain(g, i, ("Conv2d", {"filters": 4, "padding": "same"}), ("Conv2d", {"filters": 4, "padding": "same"}))[-1]
    add = merge(g, "Add", [short, long])
    after = then(g, add, "Conv2d", {"padding": "valid"})
    a = analyze(g)
    assert rf(a, short) == (3, 1, 0) and rf(a, long) == (5, 1, 0)
    assert rf(a, add) == (5, 1, 0)
    assert rf(a, after) == (7, 1, 1)


def test_rf_unet_style_crop_and_concatenate():
    g = Graph()
    i = image_input(g, 1, 12)
    # shallow branch: one valid 3×3 conv, 10×10, first window 0..2 (centre 1)
    shallow = then(g, i, "Conv2d", {"filters": 2, "padding": "valid"})
    # deep branch: two valid 3×3 convs, 8×8, first window 0..4 (centre 2)
    deep = chain(g, i, ("Conv2d", {"filters": 3, "padding": "valid"}), ("Conv2d", {"filters": 3, "padding": "valid"}))[-1]
    # cropping 10×10 to 8×8 starts one pixel in: the window moves to 1..3 (centre 2)
    crop = merge(g, "CropToMatch", [shallow, deep])
    cat = merge(g, "Concatenate", [crop, deep])
    a = analyze(g)
    assert a.nodes[crop].out_shape == (2, 8, 8) and a.nodes[cat].out_shape == (5, 8, 8)
    assert rf(a, shallow) == (3, 1, 1) and rf(a, deep) == (5, 1, 2)
    assert rf(a, crop) == (3, 1, 2)
    assert rf(a, cat) == (5, 1, 2)  # union of 1..3 and 0..4


def test_rf_strided_branches():
    g = Graph()
    i = image_input(g, 1, 8)
    # one strided conv: taps -1..1 of the padded input, jump 2
    a_ = then(g, i, "Conv2d", {"filters": 2, "kernel_size": 3, "stride": 2, "padding": 1})
    # conv 'same' then 2×2 pool: conv pixels 0,1 = input -1..2, centre 0.5, jump 2
    b_ = chain(g, i, ("Conv2d", {"filters": 2, "padding": "same"}), "MaxPool2d")[-1]
    cat = merge(g, "Concatenate", [a_, b_])
    an = analyze(g)
    assert rf(an, a_) == (3, 2, 0) and rf(an, b_) == (4, 2, 0.5)
    assert rf(an, cat) == (4, 2, 0.5)  # union of -1..1 and -1..2


def test_rf_union_of_windows_that_only_overlap():
    # windows 0..2 and 1..5 unite into 0..5
    u = _union([ReceptiveField(3, 1, 1), ReceptiveField(5, 2, 3)])
    assert (u.size, u.jump, u.offset) == (6, 2, 2.5)
    assert _union([ReceptiveField(3, 1, 1)]) == ReceptiveField(3, 1, 1)


def test_rf_stops_at_vectors_and_passes_through_shape_keeping_layers():
    g = Graph()
    i = image_input(g, 1, 8)
    c, bn, r, f = chain(g, i, ("Conv2d", {"padding": "valid"}), "BatchNorm", "ReLU", "Flatten")
    a = analyze(g)
    assert rf(a, bn) == rf(a, r) == rf(a, c) == (3, 1, 1)
    assert a.nodes[f].rf is None


#: Chains checked against the real network: (type, params) steps on a 1×H×W input.
EMPIRICAL_CHAINS = [
    [("Conv2d", {"kernel_size": 3, "padding": "valid"})] * 3,
    [("Conv2d", {"kernel_size": 3, "padding": "valid"}), ("AvgPool2d", {}), ("Conv2d", {"kernel_size": 3, "padding": "valid"})],
    [("Conv2d", {"kernel_size": 2, "padding": "same"}), ("Conv2d", {"kernel_size": 4, "padding": "same", "dilation": 1})],
    [("Conv2d", {"kernel_size": 3, "stride": 2, "padding": 1}), ("Conv2d", {"kernel_size": 3, "dilation": 2, "padding": 3})],
    [("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}), ("Conv2d", {"kernel_size": 5, "stride": 3, "padding": 2})],
    [("SeparableConv2d", {"kernel_size": 3, "stride": 2, "padding": "same"}), ("Conv2d", {"kernel_size": 2, "padding": 0})],
]


@pytest.mark.parametrize("steps", EMPIRICAL_CHAINS)
def test_rf_matches_the_gradient_footprint_of_the_real_network(steps):
    """With all-positive weights, the input pixels with a nonzero gradient for one output
    pixel are exactly its receptive field: compare extent and centre with the analysis."""
    size = 48
    g = Graph()
    i = image_input(g, 1, size)
    one_filter = {"filters": 1}
    last = chain(g, i, *[(t, {**(one_filter if "Conv" in t else {}), **p}) for t, p in steps])[-1]
    a = analyze(g)
    r = a.nodes[last].rf
    model = compile_graph(g, analysis=a).module
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    out_h = a.nodes[last].out_shape[1]
    # an output pixel whose window lies fully inside the image
    k = next(k for k in range(out_h) if r.offset + k * r.jump - (r.size - 1) / 2 >= 0)
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    model(x)[0, :, k, k].sum().backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero().flatten().tolist()
    lo, hi = rows[0], rows[-1]
    assert hi < size - 1, "pick a larger test image"
    assert hi - lo + 1 == r.size
    assert (lo + hi) / 2 == r.offset + k * r.jump


# --------------------------------------------------------------------- problems: errors
def test_add_with_different_channels():
    g = Graph()
    i = image_input(g, 3, 16)
    a = then(g, i, "Conv2d", {"filters": 64})
    b = then(g, i, "Conv2d", {"filters": 32})
    add = merge(g, "Add", [a, b], name="residual")
    an = analyze(g)
    p = only(an, "shape")
    assert p.node_id == add and p.severity == ERROR
    assert "'residual'" in p.message and "64×16×16 and 32×16×16 differ in channels" in p.message
    assert an.nodes[add].out_shape is None and not an.valid


def test_dense_after_an_image():
    g = Graph()
    i = image_input(g, 64, 5)
    d = then(g, i, "Dense", {"units": 10}, name="classifier")
    after = then(g, d, "ReLU")
    an = analyze(g)
    p = only(an, "shape")
    assert p.node_id == d and "'classifier'" in p.message
    assert "after a 64×5×5 tensor" in p.message and "insert Flatten or GlobalAvgPool" in p.message
    assert an.problems.get(after) is None  # no cascade of errors downstream
    assert an.nodes[after].out_shape is None


def test_block_without_input():
    g = Graph()
    image_input(g, 1, 8)
    lone = g.add_node("Dense", name="orphan").id
    follower = then(g, lone, "ReLU", name="follower")
    an = analyze(g)
    p = an.problems[lone][0]
    assert p.rule == "unconnected_input" and "'orphan' has no input" in p.message
    q = only(an, "no_input")
    assert q.node_id == follower and "'follower' is not connected to any Input" in q.message


def test_empty_merge_port():
    g = Graph()
    i = image_input(g, 1, 8)
    cat = g.add_node("Concatenate", name="concat").id
    g.connect(i, 0, cat, 0)
    p = only(analyze(g), "empty_port")
    assert p.node_id == cat and p.message == "input port 2 of Concatenate 'concat' is empty"


def test_kernel_larger_than_input():
    g = Graph()
    i = image_input(g, 1, 3)
    c = then(g, i, "Conv2d", {"kernel_size": 5, "padding": "valid"}, name="big")
    p = only(analyze(g), "shape")
    assert p.node_id == c and "'big'" in p.message
    assert "5×5 kernel does not fit the 3×3 input" in p.message and "smaller kernel" in p.message


def test_no_input_block_at_all():
    g = Graph()
    g.add_node("Dense")
    p = only(analyze(g), "no_input_block")
    assert "no Input block" in p.message


def test_unwired_blocks_are_marked_and_still_invalid():
    g = Graph()
    i = image_input(g, 1, 8, name="input")
    conv = then(g, i, "Conv2d", {"filters": 4}, name="conv")
    lone = g.add_node("Dense", name="lone").id
    merge_ = g.add_node("Add", name="sum").id
    half = g.add_node("ReLU", name="half").id
    after = then(g, half, "Flatten", name="after_half")  # half is wired from its output only: real errors
    an = analyze(g)
    assert an.unwired == frozenset({lone, merge_})
    assert rules(an, lone) == ["unconnected_input"] and rules(an, merge_) == ["empty_port", "empty_port"]
    assert all(an.is_pending(p) for p in an.problems[lone] + an.problems[merge_])
    assert not an.valid  # an unwired block keeps the network from training
    assert {p.node_id for p in an.wired_errors()} == {half, after}
    assert not [p for p in an.all_problems() if p.node_id in (i, conv)]


def test_an_all_wired_network_has_nothing_pending():
    g = Graph()
    vector_input(g, 2)
    assert analyze(g).unwired == frozenset(g.nodes)  # a lone Input is not wired, and has no problem
    g2 = Graph()
    chain(g2, vector_input(g2, 2), ("Dense", {"units": 2}), "ClassificationOutput")
    an = analyze(g2)
    assert an.unwired == frozenset() and an.valid and an.wired_errors() == []


def test_no_input_block_is_reported_on_a_wired_block():
    g = Graph()
    g.add_node("Dense", name="lone")
    first = g.add_node("Dense", name="first").id
    then(g, first, "ReLU")
    p = only(analyze(g), "no_input_block")
    assert p.node_id == first  # NOTE: on a wired block it shows as an error, not as "not connected yet"


def test_wrong_head_shape():
    g = Graph()
    i = vector_input(g, 8)
    box = then(g, then(g, i, "Dense", {"units": 5}), "BoxOutput", name="box")
    p = only(analyze(g), "shape")
    assert p.node_id == box and "4 numbers" in p.message and "Dense(4)" in p.message


# --------------------------------------------------------------------- problems: warnings
def _vector_chain(*steps, head="ClassificationOutput"):
    g = Graph()
    i = vector_input(g, 8)
    ids = chain(g, i, *steps, *([head] if head else []))
    return g, ids


def test_two_dense_without_nonlinearity_collapse():
    g, (d1, d2, *_) = _vector_chain(("Dense", {}), ("Dense", {"units": 3}))
    g.rename(d1, "hidden")
    an = analyze(g)
    p = only(an, "linear_collapse")
    assert p.severity == WARNING and p.node_id == d2
    assert "follows 'hidden' with no nonlinearity" in p.message and "ReLU" in p.message
    assert an.valid  # warnings do not block compiling


def test_collapse_warning_sees_through_dropout():
    g, (_, _, d2, _) = _vector_chain(("Dense", {}), "Dropout", ("Dense", {"units": 3}))
    assert only(analyze(g), "linear_collapse").node_id == d2


def test_no_collapse_warning_with_relu_between():
    g, _ = _vector_chain(("Dense", {}), "ReLU", "Dropout", ("Dense", {"units": 3}))
    assert rules(analyze(g)) == []


def test_softmax_into_classification_output_warns_double_softmax():
    g, (d, sm, head) = _vector_chain(("Dense", {"units": 3}), "Softmax")
    p = only(analyze(g), "double_softmax")
    assert p.node_id == sm and p.severity == WARNING and "softmax is applied twice" in p.message
    g2, _ = _vector_chain(("Dense", {"units": 3}), "Softmax", "Dropout")
    assert "double_softmax" in rules(analyze(g2))
    g3, _ = _vector_chain(("Dense", {"units": 3}))
    assert rules(analyze(g3)) == []


def test_sigmoid_into_binary_output_warns():
    g, (_, sig, _) = _vector_chain(("Dense", {"units": 1}), "Sigmoid", head="BinaryOutput")
    assert only(analyze(g), "double_sigmoid").node_id == sig


@pytest.mark.parametrize(
    "acts, warns",
    [
        (["Sigmoid", "Tanh", "Sigmoid", "Tanh"], True),
        (["Sigmoid"] * 5, True),
        (["Sigmoid", "Tanh", "Sigmoid"], False),
        (["ReLU"] * 6, False),
    ],
)
def test_saturating_stack_warns_vanishing_gradient(acts, warns):
    steps = [s for a in acts for s in (("Dense", {"units": 8}), a)]
    g, ids = _vector_chain(*steps, ("Dense", {"units": 3}))
    an = analyze(g)
    found = [p for p in an.warnings() if p.rule == "vanishing_gradient"]
    if warns:
        assert len(found) == 1 and found[0].node_id == ids[7]  # the 4th activation
        assert "4th Sigmoid/Tanh" in found[0].message and "vanish" in found[0].message
    else:
        assert found == []


def test_dead_end_warning_only_when_there_is_a_head():
    g = Graph()
    i = vector_input(g, 4)
    d = then(g, i, "Dense", {"units": 3})
    side = then(g, i, "Dense", {"units": 5}, name="side")
    assert rules(analyze(g)) == []  # no heads: every sink is an output
    then(g, d, "ClassificationOutput")
    p = only(analyze(g), "dead_end")
    assert p.node_id == side and "'side' feeds nothing" in p.message


# --------------------------------------------------------------------- analysis never raises
def test_analysis_reports_a_hand_built_loop_instead_of_raising():
    g = Graph()
    i = vector_input(g, 4)
    side = then(g, i, "Dense", {"units": 2})
    c = g.add_node("ReLU", name="c").id
    d = then(g, c, "Tanh", name="d")
    # NOTE: connect() refuses loops; only a hand-edited document can hold one
    loop = Edge(d, 0, c, 0)
    g.install_edges([*g.edges, loop])
    an = analyze(g)
    looped = [p for p in an.errors() if p.rule == "cycle"]
    assert {p.node_id for p in looped} == {c, d} and "loop" in looped[0].message
    assert an.nodes[side].out_shape == (2,) and not an.valid
    assert set(an.order) == set(g.nodes)


@st.composite
def random_edits(draw):
    types = [s.type_id for s in registry.all_specs()]
    ops = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["add", "add", "connect", "connect", "params", "remove"]))
        ops.append((kind, draw(st.sampled_from(types)), draw(st.integers(0, 20)), draw(st.integers(0, 20)), draw(st.integers(0, 2))))
    return ops


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=random_edits())
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_analysis_never_raises_on_random_graphs(ops):
    """Random edits (many refused) leave a document that analysis always describes."""
    g = Graph()
    for kind, type_id, x, y, port in ops:
        ids = list(g.nodes)
        try:
            if kind == "add":
                g.add_node(type_id, {"kind": "vector"} if type_id == "Input" and x % 2 else {})
            elif kind == "connect" and ids:
                g.connect(ids[x % len(ids)], 0, ids[y % len(ids)], port)
            elif kind == "params" and ids:
                node = g.node(ids[x % len(ids)])
                p = node.spec.params[y % len(node.spec.params)] if node.spec.params else None
                if p is not None and p.kind == "int":
                    g.set_params(node.id, {p.name: int(p.min or 0) + port})
            elif kind == "remove" and ids:
                g.remove_node(ids[x % len(ids)])
        except NetDesignerError:
            pass
    an = analyze(g)
    assert set(an.nodes) == set(g.nodes) and set(an.order) == set(g.nodes)
    for p in an.all_problems():
        assert p.node_id in g.nodes and p.severity in (ERROR, WARNING) and p.message
        assert p.rule != "internal", p.message
    if an.valid and any(n.spec.role == "head" for n in g.nodes.values()):
        compile_graph(g, analysis=an)


# --------------------------------------------------------------------- compile
def test_compile_chain():
    g = Graph()
    lenet(g, "ReLU")
    compiled = compile_graph(g)
    out = compiled.module(torch.randn(2, 1, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert "class Net(nn.Module)" in compiled.code.source


def test_compile_dag_with_merges_and_two_heads():
    g = Graph()
    i = image_input(g, 3, 16)
    stem = then(g, i, "Conv2d", {"filters": 8, "padding": "valid"}, name="stem")  # 8×14×14
    conv_a = then(g, stem, "Conv2d", {"filters": 8}, name="conv a")
    act = then(g, conv_a, "ReLU")
    res = merge(g, "Add", [stem, act], name="residual")  # 8×14×14
    conv_b = then(g, res, "Conv2d", {"filters": 4, "padding": "valid"}, name="conv b")  # 4×12×12
    crop = merge(g, "CropToMatch", [res, conv_b])  # 8×12×12
    cat = merge(g, "Concatenate", [crop, conv_b])  # 12×12×12
    gap = then(g, cat, "GlobalAvgPool")
    fc_box = then(g, gap, "Dense", {"units": 4}, name="fc box")
    box = then(g, fc_box, "BoxOutput")  # added first, so returned first
    fc_cls = then(g, gap, "Dense", {"units": 10}, name="fc cls")
    cls = then(g, fc_cls, "ClassificationOutput")

    an = analyze(g)
    assert an.errors() == []
    assert an.nodes[cat].out_shape == (12, 12, 12)
    compiled = compile_graph(g, analysis=an)
    assert compiled.code.output_ids == [box, cls]
    model = compiled.module.eval()
    assert torch_counts(model) == (an.total_trainable, an.total_frozen)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = model(x)
        assert isinstance(out, tuple) and [t.shape for t in out] == [(2, 4), (2, 10)]
        # the same computation, step by step, with the compiled blocks
        sub = compiled.submodule
        s = sub(stem)(x)
        r = s + torch.relu(sub(conv_a)(s))
        b = sub(conv_b)(r)
        joined = torch.cat([r[..., 1:13, 1:13], b], dim=1)
        pooled = sub(gap)(joined)
        torch.testing.assert_close(out[0], sub(fc_box)(pooled))
        torch.testing.assert_close(out[1], sub(fc_cls)(pooled))
    assert sub(res) is None and sub(box) is None and sub(i) is None


def test_compile_two_inputs():
    g = Graph()
    a, b = vector_input(g, 3, name="left"), vector_input(g, 5, name="right")
    cat = merge(g, "Concatenate", [a, b])
    d = then(g, cat, "Dense", {"units": 2})
    then(g, d, "RegressionOutput")
    model = compile_graph(g).module
    assert model(torch.randn(4, 3), torch.randn(4, 5)).shape == (4, 2)


@pytest.mark.parametrize("name", ["forward", "training", "parameters", "to", "double"])
def test_compile_blocks_named_like_module_attributes(name):
    g = Graph()
    i = vector_input(g, 3)
    then(g, i, "Dense", {"units": 2}, name=name)
    model = compile_graph(g).module
    model.eval()
    assert model(torch.randn(2, 3)).shape == (2, 2)


def test_compile_refuses_a_graph_with_errors():
    g = Graph()
    i = image_input(g, 64, 5)
    then(g, i, "Dense", name="classifier")
    with pytest.raises(CompileError, match="'classifier'.*insert Flatten"):
        compile_graph(g)


# --------------------------------------------------------------------- small things
def test_totals_and_formatting():
    assert format_count(61_706) == "61.7k" and format_count(999) == "999" and format_count(3_400_000) == "3.4M"
    assert format_bytes(512) == "512 B" and format_bytes(4 * 1024 * 1024) == "4 MiB"
    g = Graph()
    i = image_input(g, 3, 8)
    bn = then(g, i, "BatchNorm")
    a = analyze(g)
    # NOTE: the parameters as PyTorch counts them; BatchNorm's running statistics are buffers, apart
    assert (a.total_trainable, a.total_frozen, a.total_params) == (6, 6, 6)
    assert a.total_memory == 2 * 4 * 3 * 8 * 8 and a.nodes[bn].params == 6


def test_empty_graph():
    a = analyze(Graph())
    assert a.nodes == {} and a.all_problems() == [] and not a.valid

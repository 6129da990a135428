"""The blocks the full-size networks brought: adaptive average pooling, ceil-mode pooling, Multiply
(squeeze-and-excitation gating), ReLU6, SiLU and LocalResponseNorm; their receptive fields measured,
their code, and the analysis's warnings around them.

Shapes, parameter counts and the code round trip of every block are in ``test_layers.py``; here the
receptive fields are measured with the gradient (``test_receptive_field.py`` explains how) on networks
of valid convolutions, whose windows never reach into padding, so every output row can be compared,
borders included.
"""

from __future__ import annotations

import re

import pytest

from engine.analysis import analyze
from engine.codegen import generate
from engine.graph import Graph
from tests.engine.helpers import chain, image_input, merge, then
from tests.engine.test_classic_templates import measure_rows
from tests.engine.test_receptive_field import check

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def valid(k: int = 3, filters: int = 2, **kw) -> tuple[str, dict]:
    return ("Conv2d", {"filters": filters, "kernel_size": k, "padding": "valid", **kw})


def every_row_is_measured(graph: Graph, block: str) -> None:
    info = analyze(graph).nodes[block]
    rows = range(info.out_shape[1])
    assert measure_rows(graph, block, rows) == [info.rf.windows.span(i) for i in rows]


# ---------------------------------------------------------------------- adaptive average pooling
@pytest.mark.parametrize("size, out", [(11, 4), (11, 1), (7, 3), (12, 6), (2, 5)])
def test_adaptive_pool_windows_are_the_measured_ones(size, out):
    """Output pixel i averages pixels ⌊i·size/out⌋ .. ⌈(i+1)·size/out⌉ − 1: uneven windows in a pattern."""
    g = Graph()
    x = image_input(g, 1, size + 2)
    _, pool, after = chain(g, x, valid(3), ("AdaptiveAvgPool2d", {"output_size": out}), valid(1))
    assert analyze(g).nodes[pool].out_shape == (2, out, out)
    for nid in (pool, after):
        every_row_is_measured(g, nid)


def test_adaptive_pool_by_hand():
    g = Graph()
    x = image_input(g, 1, 7)
    pool = then(g, x, "AdaptiveAvgPool2d", {"output_size": 3})
    windows = analyze(g).nodes[pool].rf.windows
    # 7 into 3: pixels 0..2, 2..4, 4..6, and the pattern repeats every 3 outputs, 7 pixels on
    assert [windows.span(i) for i in range(4)] == [(0, 2), (2, 4), (4, 6), (7, 9)]


def test_adaptive_pool_on_a_non_square_map_has_no_one_field():
    g = Graph()
    x = image_input(g, 1, 12, 9)
    pool = then(g, x, "AdaptiveAvgPool2d", {"output_size": 2})
    assert analyze(g).nodes[pool].rf is None and not analyze(g).errors()


def test_an_adaptive_pool_to_its_own_size_changes_nothing():
    g = Graph()
    x = image_input(g, 1, 40)
    conv, pool = chain(g, x, ("Conv2d", {"filters": 2, "kernel_size": 5, "stride": 3, "padding": 1}),
                       ("AdaptiveAvgPool2d", {"output_size": 13}))
    a = analyze(g)
    assert a.nodes[conv].out_shape[1:] == (13, 13)
    assert a.nodes[pool].rf.windows == a.nodes[conv].rf.windows


# ---------------------------------------------------------------------- ceil mode
def test_ceil_mode_keeps_the_windows_and_adds_the_one_hanging_over():
    g = Graph()
    x = image_input(g, 1, 42)
    conv, floor, after = chain(g, x, valid(3), ("MaxPool2d", {"kernel_size": 3, "stride": 2}), valid(3))
    ceil = then(g, conv, "MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True})
    a = analyze(g)
    assert a.nodes[floor].out_shape[1] == 19 and a.nodes[ceil].out_shape[1] == 20  # (40 − 3) / 2 + 1 = 19.5
    assert a.nodes[ceil].rf.windows == a.nodes[floor].rf.windows
    for nid in (floor, ceil, after):
        check(g, nid)


# ---------------------------------------------------------------------- Multiply: gating
def _gate(g: Graph, x: str, channels: int = 2) -> str:
    """Squeeze-and-excitation: average each channel, two 1×1 convolutions, a Sigmoid: a C×1×1 gate."""
    return chain(g, x, ("AdaptiveAvgPool2d", {"output_size": 1}), valid(1, 1), "SiLU", valid(1, channels), "Sigmoid")[-1]


@pytest.mark.parametrize("gate_first", [False, True])
def test_a_gate_makes_every_pixel_see_the_whole_pooled_map(gate_first):
    g = Graph()
    x = image_input(g, 1, 20)
    feat = then(g, x, *valid(3))  # 18×18, pixel i sees input rows i .. i+2
    gate = _gate(g, feat)
    scaled = merge(g, "Multiply", [gate, feat] if gate_first else [feat, gate])
    after = then(g, scaled, *valid(3))
    a = analyze(g)
    assert a.nodes[scaled].out_shape == (2, 18, 18)
    for nid in (scaled, after):
        rf = a.nodes[nid].rf
        assert (rf.size, rf.jump, rf.offset) == (20, 0, 9.5)  # every row sees input rows 0 .. 19
        every_row_is_measured(g, nid)


def test_a_residual_around_a_gated_branch_keeps_the_whole_map():
    """EfficientNet's blocks: Add(gated branch, the block's input); the input's windows lie in the gate's."""
    g = Graph()
    x = image_input(g, 1, 24)
    feat = chain(g, x, valid(3), valid(3))[-1]
    branch = then(g, merge(g, "Multiply", [feat, _gate(g, feat)]), *valid(1))
    add = merge(g, "Add", [branch, feat])
    assert analyze(g).nodes[add].rf.jump == 0
    every_row_is_measured(g, then(g, add, *valid(3)))


def test_a_gate_that_reads_part_of_the_map_leaves_the_field_unknown():
    """A 1×1 map from pixel 0 alone: output pixel i sees pixel 0's window and its own, no one window."""
    g = Graph()
    x = image_input(g, 1, 20)
    feat = then(g, x, *valid(3))
    corner = then(g, feat, "Conv2d", {"filters": 2, "kernel_size": 1, "stride": 18, "padding": 0})
    scaled = merge(g, "Multiply", [feat, corner])
    after = then(g, scaled, *valid(3))
    a = analyze(g)
    assert a.nodes[corner].out_shape == (2, 1, 1)
    assert a.nodes[scaled].rf is None and a.nodes[after].rf is None and not a.errors()


def test_a_channel_gate_of_full_size_is_an_ordinary_merge():
    g = Graph()
    x = image_input(g, 1, 30)
    feat = then(g, x, *valid(3, filters=4))
    attention = chain(g, feat, valid(1, 1), "Sigmoid")[-1]  # 1×28×28: one weight per pixel
    scaled = merge(g, "Multiply", [feat, attention])
    assert analyze(g).nodes[scaled].out_shape == (4, 28, 28)
    check(g, scaled)


def test_a_merge_with_an_input_of_unknown_field_is_unknown():
    g = Graph()
    x = image_input(g, 1, 12, 14)
    unknown = then(g, x, "AdaptiveAvgPool2d", {"output_size": 10})  # 1×10×10, windows unlike along each axis
    known = merge(g, "CropToMatch", [then(g, x, *valid(3, 1)), unknown])  # 1×10×12 cut to 1×10×10
    added = merge(g, "Add", [known, unknown])
    a = analyze(g)
    assert a.nodes[known].rf is not None and a.nodes[unknown].rf is None
    assert a.nodes[added].rf is None and not a.errors()


# ---------------------------------------------------------------------- warnings
def _rules(g: Graph) -> list[str]:
    return [p.rule for p in analyze(g).warnings()]


def test_a_linear_bottleneck_is_no_forgotten_activation():
    """MobileNetV2: a 1×1 convolution narrows the channels, BatchNorm, then the next block's 1×1 widens them."""
    g = Graph()
    x = image_input(g, 16, 8)
    chain(g, x, valid(1, 4), "BatchNorm", valid(1, 16))
    assert "linear_collapse" not in _rules(g)
    g2 = Graph()  # two 3×3 convolutions of equal width with nothing between do collapse
    chain(g2, image_input(g2, 4, 8), valid(3, 4), valid(3, 4))
    assert _rules(g2) == ["linear_collapse"]
    g3 = Graph()  # and so do two dense layers, narrowing or not: a forgotten ReLU in an MLP
    chain(g3, image_input(g3, 1, 4), "Flatten", ("Dense", {"units": 4}), ("Dense", {"units": 16}))
    assert _rules(g3) == ["linear_collapse"]


def test_sigmoid_gates_do_not_make_a_vanishing_chain():
    """Each squeeze-and-excitation gate's Sigmoid sits beside the features, not in series with them."""
    g = Graph()
    x = then(g, image_input(g, 1, 16), *valid(3))
    for _ in range(5):
        x = merge(g, "Multiply", [x, _gate(g, x)])
    assert "vanishing_gradient" not in _rules(g)
    chain(g, x, *["Sigmoid"] * 4)  # four in series still warn
    assert _rules(g) == ["vanishing_gradient"]


# ---------------------------------------------------------------------- code
def test_generated_code_of_the_new_blocks():
    g = Graph()
    x = image_input(g, 8, 16)
    y = chain(
        g, x, ("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}), ("LocalResponseNorm", {}),
        "ReLU6", "SiLU",
    )[-1]
    gate = then(g, y, "AdaptiveAvgPool2d", {"output_size": 1})
    merge(g, "Multiply", [y, gate])
    source = generate(g).source
    for line in (
        "nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)",
        "nn.LocalResponseNorm(5, k=2.0)",
        "nn.ReLU6()",
        "nn.SiLU()",
        "nn.AdaptiveAvgPool2d(1)",
    ):
        assert line in source, source
    assert re.search(r"= silu \* x  # 8×8×8\n", source), source  # the map times its gate

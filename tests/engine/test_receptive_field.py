"""Receptive fields against the real network: the input pixels one output pixel's gradient reaches.

The measurement knows nothing of the analysis. The compiled model runs in float64 with every
weight a positive constant, biases and BatchNorm's shift at zero, on an all-ones input, so
every activation is positive and no sum cancels: an input pixel gets a nonzero gradient from
an output pixel exactly when a path of the network joins them. Max pooling sends its gradient
to one pixel of its window only, so each max pool is measured as an average pool over the same
window. (float64, because in float32 bilinear ×7 rounds its interpolation positions and leaves
weights of 1e-7 where exact arithmetic has 0.)

Whole output rows are measured (every layer treats the two axes alike and apart, so a row's
pixels all see the same input rows), at rows around the middle of the block's output, on
an input large enough that every measured window keeps clear of the image border (asserted):
then no padding clips a window, and the field is that of the unbounded grid the analysis
describes. Over ``2n`` consecutive rows, ``n ≥ 2`` a multiple of the pattern's period (the
product of the upsampling factors on the way), the measured field is: the largest extent; the
jump, from how far the mean window centre moves between the two halves; and the offset, the
mean of ``centre(i) − i·jump`` over the first half. Every row's window is also compared, exactly.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine.analysis import ReceptiveField, analyze
from engine.compile import compile_graph
from engine.graph import Graph
from engine.probes import Tap
from engine.templates import FULL_SIZE, list_templates, load_template
from tests.engine.helpers import chain, image_input, merge, then

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

Span = tuple[int, int]


# ---------------------------------------------------------------------- the measurement
def _as_average_pools(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.MaxPool2d):
            avg = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode)
            setattr(module, name, avg)
        else:
            _as_average_pools(child)


def _positive(module: nn.Module) -> nn.Module:
    module = module.double().eval()
    _as_average_pools(module)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return module


def measure(graph: Graph, block: str, rows: range) -> list[Span | None]:
    """The first and last input row that each output row of ``block`` reaches (None: none)."""
    analysis = analyze(graph)
    assert not analysis.errors(), analysis.errors()
    compiled = compile_graph(graph, analysis=analysis)
    model = _positive(compiled.module)
    c, h, w = analysis.nodes[next(n for n in analysis.order if graph.nodes[n].spec.role == "input")].out_shape
    # NOTE: one sample per measured row, each backpropagating from its own row only: one
    # pass gives every row's footprint (eval mode keeps the samples apart, BatchNorm too).
    x = torch.ones(len(rows), c, h, w, dtype=torch.float64, requires_grad=True)
    out = Tap(graph, compiled.code, analysis).run(model, x, {block})[block]
    sum(out[k, :, r, :].sum() for k, r in enumerate(rows)).backward()
    spans: list[Span | None] = []
    for grad in x.grad:
        hit = grad.abs().sum(dim=(0, 2)).nonzero().flatten().tolist()
        spans.append((hit[0], hit[-1]) if hit else None)
    seen = [s for s in spans if s is not None]
    assert seen and min(s[0] for s in seen) > 0 and max(s[1] for s in seen) < h - 1, (
        f"the windows {seen} touch the border of the {h}-pixel input: use a larger one"
    )
    return spans


def field_of(spans: list[Span | None], rows: range) -> tuple[float, float, float]:
    """(size, jump, offset) of measured windows over ``rows``, whose halves each span whole periods."""
    n = len(rows) // 2
    centres = [((lo + hi) / 2, i) for i, s in zip(rows, spans) if s is not None for lo, hi in [s]]
    first = [c for c, i in centres if i < rows[n]]
    second = [c for c, i in centres if i >= rows[n]]
    jump = (sum(second) / len(second) - sum(first) / len(first)) / n
    offset = sum(c - i * jump for c, i in centres if i < rows[n]) / len(first)
    size = max(hi - lo + 1 for s in spans if s is not None for lo, hi in [s])
    return size, jump, offset


def check(graph: Graph, block: str, period: int = 1) -> ReceptiveField:
    """Measure ``block`` around its middle row and compare with the analysis; returns the field."""
    info = analyze(graph).nodes[block]
    rf = info.rf
    n = max(2, period)  # each half of the rows a whole number of periods
    rows = range(info.out_shape[1] // 2 - n, info.out_shape[1] // 2 + n)
    spans = measure(graph, block, rows)
    # every pixel's window, exactly
    assert spans == [rf.windows.span(i) for i in rows], f"measured {spans}"
    size, jump, offset = field_of(spans, rows)
    assert rf.size == size
    assert rf.jump == pytest.approx(jump, abs=1e-9)
    assert rf.offset == pytest.approx(offset, abs=1e-9)
    return rf


def rf3(graph: Graph, block: str) -> tuple[float, float, float]:
    r = analyze(graph).nodes[block].rf
    return (r.size, r.jump, r.offset)


def line(*steps, size: int = 40, channels: int = 1) -> tuple[Graph, list[str]]:
    g = Graph()
    i = image_input(g, channels, size, 12)
    return g, chain(g, i, *steps)


def valid(k: int = 3, **kw) -> tuple[str, dict]:
    return ("Conv2d", {"filters": 2, "kernel_size": k, "padding": "valid", **kw})


def up(scale: int, mode: str) -> tuple[str, dict]:
    return ("Upsample", {"scale": scale, "mode": mode})


def tconv(k: int, s: int, p: int = 0) -> tuple[str, dict]:
    return ("ConvTranspose2d", {"filters": 2, "kernel_size": k, "stride": s, "padding": p})


# ---------------------------------------------------------------------- upsampling
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("scale", [2, 3])
def test_upsample_right_after_the_input(mode, scale):
    g, (u,) = line(up(scale, mode), size=16)
    check(g, u, scale)


def test_nearest_reads_one_pixel_bilinear_two_and_the_line_places_each_output_pixel():
    """The convention for jump < 1, by hand: output pixel i sits at (i + ½)/s − ½ on the input grid."""
    g = Graph()
    i = image_input(g, 1, 16, 12)
    n2, b2 = then(g, i, *up(2, "nearest")), then(g, i, *up(2, "bilinear"))
    n3, b3 = then(g, i, *up(3, "nearest")), then(g, i, *up(3, "bilinear"))
    # nearest ×2: pixels 0,1 read 0; 2,3 read 1 ... centres 0,0,1,1 step around −¼ + i/2
    assert rf3(g, n2) == (1, 0.5, -0.25)
    # bilinear ×2: pixel 1 lies at ¼ and reads 0 and 1; pixel 0 at −¼ reads −1 and 0
    assert rf3(g, b2) == (2, 0.5, -0.25)
    # ×3: pixel i lies at (i − 1)/3; bilinear reads one pixel where that is whole, else two
    assert rf3(g, n3) == pytest.approx((1, 1 / 3, -1 / 3))
    assert rf3(g, b3) == pytest.approx((2, 1 / 3, -1 / 3))
    for nid, scale in ((n2, 2), (b2, 2), (n3, 3), (b3, 3)):
        check(g, nid, scale)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("scale", [2, 3])
def test_upsample_between_convolutions(mode, scale):
    # a 3×3 conv before (window 3, jump 1); after, an odd and an even kernel: the even one
    # makes neighbouring windows differ in size, and the field is the largest
    g, (c1, u, c2, c3) = line(valid(3), up(scale, mode), valid(3), valid(2), size=24)
    for nid in (c1, u, c2, c3):
        check(g, nid, scale)


def test_bilinear_upsample_counts_both_pixels_it_reads():
    # a 3×3 conv (3 pixels), bilinear ×2 (two neighbouring pixels: 4), a 3×3 conv
    # on the finer grid (two more half-steps: 5)
    g, (c1, u, c2) = line(("Conv2d", {"filters": 2, "padding": "same"}), up(2, "bilinear"), ("Conv2d", {"filters": 2, "padding": "same"}))
    assert (rf3(g, c1)[0], rf3(g, u)[0], rf3(g, c2)[0]) == (3, 4, 5)
    check(g, c2, 2)
    nearest, (_, un, cn) = line(("Conv2d", {"filters": 2, "padding": "same"}), up(2, "nearest"), ("Conv2d", {"filters": 2, "padding": "same"}))
    assert (rf3(nearest, un)[0], rf3(nearest, cn)[0]) == (3, 4)
    check(nearest, cn, 2)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_line_after_upsample_places_each_output_pixel_on_the_grid_before(mode, scale):
    # before: a strided conv, windows centred on 1 + 2i (jump 2); after: output pixel i lies
    # at (i + ½)/scale − ½ on that grid
    g, (c, u) = line(valid(3, stride=2), up(scale, mode), size=32)
    assert rf3(g, c)[1:] == (2, 1)
    _, jump, offset = rf3(g, u)
    assert jump == pytest.approx(2 / scale)
    assert offset == pytest.approx(1 + 2 * (0.5 / scale - 0.5))
    check(g, u, scale)


# ---------------------------------------------------------------------- transposed convolutions
@pytest.mark.parametrize(
    "k, s, p",
    [(2, 2, 0), (3, 2, 0), (3, 2, 1), (4, 2, 1), (1, 2, 0), (1, 3, 1), (5, 3, 2), (3, 1, 1), (4, 3, 0)],
)
def test_transposed_convolution(k, s, p):
    g, (_, t, c2) = line(valid(3), tconv(k, s, p), valid(3), size=24)
    check(g, t, s)
    check(g, c2, s)


def test_transposed_convolution_offsets_by_hand():
    g = Graph()
    i = image_input(g, 1, 16, 12)
    # k2 s2: output pixels 2j and 2j+1 both read j alone; they sit at −¼ + i/2
    t22 = then(g, i, *tconv(2, 2))
    # k4 s2 p1: pixel i reads j with 0 ≤ i + 1 − 2j < 4, two pixels, centred on (i − ½)/2
    t421 = then(g, i, *tconv(4, 2, 1))
    # k3 s2 p0: even pixels read two inputs, odd ones one; centres −½, 0, ½, 1 ...: line (i − 1)/2
    t320 = then(g, i, *tconv(3, 2, 0))
    assert rf3(g, t22) == (1, 0.5, -0.25)
    assert rf3(g, t421) == (2, 0.5, -0.25)
    assert rf3(g, t320) == (2, 0.5, -0.5)
    for nid in (t22, t421, t320):
        check(g, nid, 2)


@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 1), (4, 2, 1), (3, 3, 0), (5, 3, 2), (4, 4, 1)])
def test_the_line_after_a_transposed_convolution_places_each_output_pixel_on_the_grid_before(k, s, p):
    g, (_, t) = line(valid(3, stride=2), tconv(k, s, p), size=32)
    _, jump, offset = rf3(g, t)
    assert jump == pytest.approx(2 / s)
    assert offset == pytest.approx(1 + 2 * (p - (k - 1) / 2) / s)
    check(g, t, s)


# ---------------------------------------------------------------------- convolutions and pooling
@pytest.mark.parametrize(
    "steps",
    [
        [("Conv2d", {"filters": 2, "kernel_size": 3, "dilation": 2, "padding": 2})] * 2,
        [valid(3, dilation=3), valid(2, dilation=2)],
        [("Conv2d", {"filters": 2, "kernel_size": 3, "dilation": 2, "stride": 2, "padding": 1}), valid(3, dilation=2)],
        [("SeparableConv2d", {"filters": 2, "kernel_size": 3, "dilation": 2, "padding": "same"}), valid(2)],
    ],
    ids=["same-dilated", "valid-dilated", "strided-dilated", "separable-dilated"],
)
def test_dilation(steps):
    g, ids = line(*steps, size=40)
    for nid in ids:
        check(g, nid)


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_convolutions(groups):
    g, ids = line(
        ("Conv2d", {"filters": 4, "kernel_size": 3, "stride": 2, "padding": 1, "groups": groups}),
        ("Conv2d", {"filters": 8, "kernel_size": 5, "padding": "same", "groups": groups}),
        ("Conv2d", {"filters": 4, "kernel_size": 2, "stride": 2, "padding": 0, "groups": groups}),
        channels=4,
        size=48,
    )
    for nid in ids:
        check(g, nid)


@pytest.mark.parametrize(
    "steps",
    [
        [("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1})] * 2,
        [("AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}), ("MaxPool2d", {"kernel_size": 2, "stride": 2, "padding": 1})],
        [valid(3), ("MaxPool2d", {"kernel_size": 4, "stride": 3, "padding": 2}), valid(3)],
    ],
    ids=["max-padded", "avg-then-max-padded", "conv-pool-conv"],
)
def test_pooling_with_padding(steps):
    g, ids = line(*steps, size=48)
    for nid in ids:
        check(g, nid)


# ---------------------------------------------------------------------- branches and merges
def test_add_unites_a_short_and_a_long_branch():
    g = Graph()
    i = image_input(g, 1, 32, 12)
    short = then(g, i, "Conv2d", {"filters": 2, "kernel_size": 1, "padding": 0})
    long = chain(g, i, ("Conv2d", {"filters": 2, "padding": "same"}), ("Conv2d", {"filters": 2, "kernel_size": 5, "padding": "same", "dilation": 2}))[-1]
    add = merge(g, "Add", [short, long])
    after = then(g, add, "Conv2d", {"filters": 2, "kernel_size": 2, "padding": "valid"})
    assert rf3(g, add) == rf3(g, long) == (11, 1, 0)
    for nid in (short, long, add, after):
        check(g, nid)


def test_concatenate_unites_windows_that_only_overlap():
    g = Graph()
    i = image_input(g, 1, 32, 12)
    # one branch sees 2i−1 .. 2i+1, the other 2i .. 2i+2 ('same' with an even kernel pads on the right)
    a = then(g, i, "Conv2d", {"filters": 2, "kernel_size": 3, "stride": 2, "padding": 1})
    b = chain(g, i, ("Conv2d", {"filters": 2, "kernel_size": 2, "padding": "same"}), ("Conv2d", {"filters": 2, "kernel_size": 2, "stride": 2, "padding": 0}))[-1]
    cat = merge(g, "Concatenate", [a, b])
    assert (rf3(g, a), rf3(g, b), rf3(g, cat)) == ((3, 2, 0), (3, 2, 1), (4, 2, 0.5))
    for nid in (a, b, cat):
        check(g, nid)


def test_unet_style_skip_with_upsampling_crop_and_concatenate():
    g = Graph()
    i = image_input(g, 1, 44)
    enc = chain(g, i, valid(3), valid(3))[-1]
    down = chain(g, enc, "MaxPool2d", valid(3), valid(3))[-1]
    upsampled = then(g, down, *up(2, "bilinear"))
    skip = merge(g, "CropToMatch", [enc, upsampled])
    cat = merge(g, "Concatenate", [skip, upsampled])
    dec = then(g, cat, *valid(3))
    for nid in (upsampled, skip, cat, dec):
        check(g, nid, 2)


def test_branches_upsampled_differently_then_added():
    g = Graph()
    i = image_input(g, 1, 16, 12)
    a = chain(g, i, up(2, "nearest"), valid(2))[-1]
    b = chain(g, i, tconv(3, 2, 0), ("Conv2d", {"filters": 2, "kernel_size": 1, "padding": 0}))[-1]
    b = then(g, b, "AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 0})
    add = merge(g, "Add", [a, b])
    assert analyze(g).nodes[a].out_shape == analyze(g).nodes[b].out_shape
    for nid in (a, b, add):
        check(g, nid, 2)


# ---------------------------------------------------------------------- chains
@pytest.mark.parametrize(
    "steps, period",
    [
        ([valid(3), "MaxPool2d", up(2, "nearest"), valid(3)], 2),
        ([valid(3), "MaxPool2d", up(2, "bilinear"), valid(2)], 2),
        (["AvgPool2d", up(3, "bilinear"), valid(2), tconv(3, 2, 1), ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1})], 6),
        ([up(2, "bilinear"), up(3, "nearest"), ("Conv2d", {"filters": 2, "kernel_size": 3, "stride": 3, "padding": 1})], 6),
        ([tconv(4, 2, 1), ("AvgPool2d", {"kernel_size": 2, "stride": 2, "padding": 0}), up(2, "bilinear"), valid(3, dilation=2)], 4),
    ],
    ids=["conv-pool-nearest-conv", "conv-pool-bilinear-conv2", "pool-bilinear3-tconv-pool", "bilinear2-nearest3-strided", "tconv-pool-bilinear-dilated"],
)
def test_chains(steps, period):
    g, ids = line(*steps, size=72)
    for nid in ids:
        check(g, nid, period)


def test_a_field_repeating_too_rarely_is_unknown_not_guessed():
    g, (_, _, u3, u4) = line(up(16, "nearest"), up(16, "nearest"), up(16, "nearest"), up(2, "nearest"), size=1)
    a = analyze(g)
    assert a.nodes[u3].rf is not None and a.nodes[u3].rf.windows.period == 16**3
    assert a.nodes[u4].rf is None and not a.errors()


def test_reshaping_an_image_loses_the_window():
    g, (c, r, after) = line(valid(3), ("Reshape", {"shape": (4, 19, 10)}), valid(1), size=40)
    a = analyze(g)
    assert a.nodes[c].rf is not None and a.nodes[r].rf is None and a.nodes[after].rf is None


# ---------------------------------------------------------------------- shipped templates
def _spatial_templates() -> list[str]:
    """The small templates with an image input and a spatial layer after it (the full-size ones:
    tests/engine/test_classic_templates.py); the linear classifier flattens its Input at once."""
    found = []
    for info in list_templates():
        if info.name in FULL_SIZE:
            continue
        g = load_template(info.name).graph
        image = any(n.spec.role == "input" and n.params["kind"] == "image" for n in g.nodes.values())
        if image and g.nodes[_last_spatial_block(g)].spec.role != "input":
            found.append(info.name)
    return found


def _last_spatial_block(graph: Graph) -> str:
    a = analyze(graph)
    return [nid for nid in a.order if a.nodes[nid].rf is not None and graph.nodes[nid].spec.role != "head"][-1]


def _upsampling_product(graph: Graph) -> int:
    """A multiple of every block's period: the product of all upsampling factors."""
    factors = [n.params["stride"] for n in graph.nodes.values() if n.type == "ConvTranspose2d"]
    factors += [n.params["scale"] for n in graph.nodes.values() if n.type == "Upsample"]
    return math.prod(factors)


@pytest.mark.parametrize("name", _spatial_templates())
def test_every_template_s_last_spatial_field_is_the_measured_one(name):
    """Each template's input is enlarged (×1, ×2, ×4) until the middle output rows of its last
    spatial block see windows clear of the border; the field does not depend on the image size."""
    graph = load_template(name).graph
    block = _last_spatial_block(graph)
    (inp,) = [nid for nid, n in graph.nodes.items() if n.spec.role == "input"]
    h, w = graph.nodes[inp].params["height"], graph.nodes[inp].params["width"]
    period = _upsampling_product(graph)
    for factor in (1, 2, 4):
        graph.set_params(inp, {"height": h * factor, "width": w * factor})
        a = analyze(graph)
        out_h = a.nodes[block].out_shape[1]
        n = max(2, period)
        rows = range(out_h // 2 - n, out_h // 2 + n)  # as check() takes them
        spans = [a.nodes[block].rf.windows.span(i) for i in rows]
        if min(s[0] for s in spans if s) > 0 and max(s[1] for s in spans if s) < h * factor - 1:
            break
    else:
        pytest.fail(f"{name}: no input up to 4× its size leaves '{graph.nodes[block].name}' an unclipped window")
    rf = check(graph, block, period)
    assert rf.size > 1

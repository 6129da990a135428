"""The layer library: every declaration against the real torch module it builds.

One parametrized test walks the whole registry. For each layer type, hypothesis
draws parameter combinations (from the declarations themselves) and input shapes;
whenever the declared shape rule accepts the input, a tiny graph Input -> layer is
compiled and the real output shape, parameter counts and MACs must equal the
declared ones. When the rule refuses, the refusal must be a readable ShapeError.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.analysis import analyze
from engine.compile import compile_graph
from engine.errors import ParamError, ShapeError
from engine.graph import Graph
from engine.layers import registry
from engine.layers.registry import FILTER_SCHEMES, LayerSpec, Param, filter_fits
from tests.engine.helpers import image_input, then, torch_counts, vector_input

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

#: How each layer type is fed in the registry-wide test. Every registered type must be
#: listed, so a new layer cannot be forgotten (test_every_layer_is_covered).
FEED = {
    "Input": "input",
    "Dense": "vector",
    "Flatten": "any",
    "Reshape": "reshape",
    "Conv2d": "image",
    "SeparableConv2d": "image",
    "ConvTranspose2d": "image",
    "Upsample": "image",
    "MaxPool2d": "image",
    "AvgPool2d": "image",
    "GlobalAvgPool": "image",
    "GlobalMaxPool": "image",
    "AdaptiveAvgPool2d": "image",
    "BatchNorm": "any",
    "LocalResponseNorm": "image",
    "Dropout": "any",
    "Dropout2d": "image",
    "ReLU": "any",
    "LeakyReLU": "any",
    "ReLU6": "any",
    "SiLU": "any",
    "ELU": "any",
    "Tanh": "any",
    "Sigmoid": "any",
    "Softmax": "any",
    "Identity": "any",
    "Add": "merge",
    "Multiply": "broadcast",
    "Concatenate": "merge",
    "CropToMatch": "crop",
    "ClassificationOutput": "head",
    "BinaryOutput": "head",
    "PerceptronOutput": "head",
    "RegressionOutput": "head",
    "SegmentationOutput": "head",
    "BoxOutput": "head",
}

#: Small ceilings for size-like params so every drawn module is cheap to build and run.
SMALL = {
    "filters": 6,
    "kernel_size": 5,
    "stride": 3,
    "dilation": 3,
    "padding": 3,
    "output_padding": 2,
    "groups": 4,
    "units": 10,
    "scale": 3,
    "inputs": 3,
    "channels": 4,
    "height": 9,
    "width": 9,
    "features": 10,
    "output_size": 6,
    "size": 7,
}

#: Cases that random draws hit rarely but that broke before: always run, per layer type.
#: Each is (params, input shapes); missing params take their defaults.
EDGE_CASES = {
    "Conv2d": [
        ({"kernel_size": 2, "padding": "same"}, [(2, 7, 7)]),  # even kernel: PyTorch pads one side more
        ({"kernel_size": 4, "padding": "same", "dilation": 3}, [(1, 5, 6)]),
        ({"kernel_size": 3, "padding": "same", "dilation": 2, "stride": 2}, [(2, 9, 8)]),
        ({"kernel_size": 2, "padding": "same", "stride": 2}, [(1, 8, 8)]),  # refused: even 'same' needs stride 1
        ({"kernel_size": 5, "padding": "valid"}, [(1, 3, 3)]),  # kernel larger than the input
        ({"filters": 6, "groups": 3, "padding": 1}, [(3, 4, 4)]),
        ({"filters": 4, "groups": 3}, [(3, 4, 4)]),  # refused: groups must divide the filters
    ],
    "SeparableConv2d": [
        ({"kernel_size": 2, "padding": "same"}, [(3, 5, 5)]),
        ({"kernel_size": 3, "stride": 2, "padding": "valid", "bias": False}, [(2, 7, 6)]),
    ],
    "ConvTranspose2d": [
        ({"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}, [(2, 5, 5)]),
        ({"kernel_size": 1, "stride": 1, "padding": 1}, [(1, 2, 2)]),  # refused: nothing left
        ({"stride": 2, "output_padding": 2}, [(1, 3, 3)]),  # refused: output padding >= stride
    ],
    "MaxPool2d": [
        ({"kernel_size": 3, "stride": 2, "padding": 1}, [(2, 5, 5)]),
        ({"kernel_size": 2, "padding": 2}, [(1, 4, 4)]),
        ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, [(2, 8, 8)]),  # GoogLeNet's: the last window hangs over
        ({"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, [(1, 5, 5)]),  # one would start in the padding
        ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, [(1, 2, 2)]),  # a window larger than the input
        ({"kernel_size": 3, "stride": 1, "ceil_mode": True}, [(1, 2, 2)]),  # refused: nothing fits
    ],
    "AvgPool2d": [
        ({"kernel_size": 3, "stride": 1, "padding": 1}, [(1, 1, 1)]),
        ({"kernel_size": 4}, [(1, 3, 3)]),
        ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, [(1, 4, 6)]),
    ],
    "AdaptiveAvgPool2d": [({"output_size": 6}, [(2, 6, 6)]), ({"output_size": 3}, [(1, 7, 5)]), ({"output_size": 4}, [(1, 2, 3)])],
    "LocalResponseNorm": [({"size": 5}, [(3, 4, 4)]), ({}, [(6,)])],
    "Multiply": [
        ({}, [(4, 5, 5), (4, 1, 1)]),  # squeeze-and-excitation: a C×1×1 gate
        ({}, [(4, 1, 1), (4, 5, 5)]),
        ({"inputs": 3}, [(1, 3, 3), (2, 1, 1), (2, 3, 3)]),
        ({}, [(5,), (1,)]),
        ({}, [(4, 5, 5), (4, 1, 5)]),  # refused: height 1 but not width
        ({}, [(4, 5, 5), (3, 5, 5)]),  # refused: 4 and 3 channels
        ({}, [(4, 5, 5), (4,)]),  # refused: an image and a vector
    ],
    "Upsample": [({"mode": "bilinear", "scale": 3}, [(2, 3, 4)])],
    "Reshape": [({"shape": (16, 4, 4)}, [(256,)]), ({"shape": (3, 4)}, [(12,)]), ({"shape": (5,)}, [(2, 2, 1)])],
    "BatchNorm": [({}, [(5,)]), ({"momentum": 0.0, "eps": 1e-3}, [(3, 2, 2)])],
    "Softmax": [({}, [(4,)]), ({}, [(3, 2, 2)])],
    "Concatenate": [({"inputs": 3}, [(2, 4, 4), (3, 4, 4), (1, 4, 4)]), ({}, [(3,), (5,)]), ({}, [(2, 4, 4), (2, 4, 5)])],
    "Add": [({}, [(64, 16, 16), (32, 16, 16)]), ({}, [(4,), (1, 2, 2)])],
    "CropToMatch": [({}, [(2, 9, 8), (5, 4, 3)]), ({}, [(2, 3, 3), (2, 4, 4)])],
    "BoxOutput": [({}, [(4,)]), ({}, [(5,)])],
    "SegmentationOutput": [({}, [(3, 4, 4)]), ({}, [(1, 4, 4)])],
    "ClassificationOutput": [({}, [(10,)]), ({}, [(1,)])],
}

#: Families with many interacting params get more draws.
MORE_EXAMPLES = {"Convolution": 50, "Pooling": 40, "Merge": 40}


def hypothesis_settings(spec: LayerSpec) -> settings:
    return settings(
        max_examples=MORE_EXAMPLES.get(spec.category, 25),
        deadline=None,
        derandomize=True,  # the same cases on every run and every machine
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )

ALL_TYPES = [spec.type_id for spec in registry.all_specs()]


def test_every_layer_is_covered():
    assert set(FEED) == set(ALL_TYPES), "add the new layer type to FEED (and check its declaration)"


# --------------------------------------------------------------------- strategies
#: Params whose useful values are rare under a uniform draw (groups must divide the channels).
PARAM_OVERRIDES = {"groups": st.sampled_from([1, 1, 1, 2, 3, 4])}


def param_strategy(p: Param) -> st.SearchStrategy:
    """Values a declaration allows, with size-like ints kept small."""
    if p.name in PARAM_OVERRIDES:
        return PARAM_OVERRIDES[p.name]
    if p.kind == "bool":
        return st.booleans()
    if p.kind == "choice":
        return st.sampled_from(p.choices)
    if p.kind in ("int", "int_or_choice"):
        lo = int(p.min) if p.min is not None else 0
        hi = int(p.max) if p.max is not None else lo + 4
        ints = st.integers(lo, max(lo, min(hi, SMALL.get(p.name, lo + 4))))
        return ints if p.kind == "int" else st.one_of(st.sampled_from(p.choices), ints)
    if p.kind == "float":
        assert p.min is not None and p.max is not None, f"{p.name}: float params should declare a range"
        return st.floats(p.min, p.max, allow_nan=False)
    if p.kind == "shape":
        return st.lists(st.integers(1, 8), min_size=1, max_size=3).map(tuple)
    raise AssertionError(f"no strategy for param kind {p.kind!r}")


# Mostly sizes that fit a kernel or two, sometimes tiny ones that do not.
dims = st.one_of(st.integers(4, 10), st.integers(1, 10))
images = st.tuples(st.integers(1, 6), dims, dims)
vectors = st.tuples(st.integers(1, 12))
# Mostly the expected rank, sometimes the other one (which the rule must refuse cleanly).
image_first = st.sampled_from([True, True, True, False]).flatmap(lambda img: images if img else vectors)
vector_first = st.sampled_from([True, True, True, False]).flatmap(lambda vec: vectors if vec else images)
any_rank = st.one_of(images, vectors)


@st.composite
def merge_inputs(draw, n: int):
    base = draw(any_rank)
    out = [base]
    for _ in range(n - 1):
        how = draw(st.sampled_from(["same", "same", "channels", "other"]))
        if how == "same":
            out.append(base)
        elif how == "channels":
            out.append((draw(st.integers(1, 6)),) + base[1:])
        else:
            out.append(draw(any_rank))
    return out


@st.composite
def broadcast_inputs(draw, n: int):
    """Shapes for an element-wise product: equal, with sizes of 1 (a C×1×1 gate), or not fitting at all."""
    base = draw(any_rank)
    out = [base]
    for _ in range(n - 1):
        how = draw(st.sampled_from(["same", "gate", "ones", "other"]))
        if how == "same":
            out.append(base)
        elif how == "gate":
            out.append(base[:1] + (1,) * (len(base) - 1))
        elif how == "ones":
            out.append(tuple(d if draw(st.booleans()) else 1 for d in base))
        else:
            out.append(draw(any_rank))
    draw(st.randoms()).shuffle(out)
    return out


@st.composite
def crop_inputs(draw):
    x = draw(st.one_of(images, images, vectors))
    if len(x) == 3 and draw(st.booleans()):
        like = (draw(st.integers(1, 6)), draw(st.integers(1, x[1])), draw(st.integers(1, x[2])))
    else:
        like = draw(any_rank)
    return [x, like]


@st.composite
def reshape_case(draw, params):
    (x,) = draw(st.lists(any_rank, min_size=1, max_size=1))
    n = math.prod(x)
    fitting = [(n,), tuple(reversed(x)), (1, n), (n, 1, 1)]
    target = draw(st.one_of(st.sampled_from(fitting), param_strategy(registry.get("Reshape").param("shape"))))
    return {**params, "shape": target}, [x]


head_shapes = st.one_of(st.sampled_from([(4,), (2,), (10,), (1,), (3, 5, 5), (1, 4, 4)]), images, vectors)


@st.composite
def layer_case(draw, spec: LayerSpec):
    """(params, input shapes) for one layer type."""
    params = {p.name: draw(param_strategy(p)) for p in spec.params}
    feed = FEED[spec.type_id]
    if feed == "input":
        return params, []
    if feed == "reshape":
        return draw(reshape_case(params))
    if feed == "merge":
        return params, draw(merge_inputs(params["inputs"]))
    if feed == "broadcast":
        return params, draw(broadcast_inputs(params["inputs"]))
    if feed == "crop":
        return params, draw(crop_inputs())
    if feed == "head":
        return params, [draw(head_shapes)]
    shapes = {"image": image_first, "vector": vector_first, "any": any_rank}[feed]
    return params, [draw(shapes)]


# --------------------------------------------------------------------- the harness
def hand_macs(type_id: str, p: dict, ins: list[tuple], out: tuple) -> int:
    """Multiply-accumulates by the textbook formulas (batch of one)."""
    if type_id == "Conv2d":
        cout, ho, wo = out
        return cout * ho * wo * (ins[0][0] // p["groups"]) * p["kernel_size"] ** 2
    if type_id == "SeparableConv2d":
        cout, ho, wo = out
        cin = ins[0][0]
        return cin * ho * wo * p["kernel_size"] ** 2 + cout * ho * wo * cin
    if type_id == "ConvTranspose2d":
        cin, h, w = ins[0]
        return cin * h * w * out[0] * p["kernel_size"] ** 2
    if type_id == "Dense":
        return ins[0][0] * p["units"]
    return 0


def build_tiny_graph(spec: LayerSpec, params: dict, ins: list[tuple]) -> tuple[Graph, str]:
    """Input(s) -> layer. Inputs are added first, in port order, so they are the model's args."""
    g = Graph()
    if spec.role == "input":
        nid = g.add_node("Input", params).id
        then(g, nid, "Identity")
        return g, nid
    srcs = [image_input(g, *s) if len(s) == 3 else vector_input(g, s[0]) for s in ins]
    nid = g.add_node(spec.type_id, params).id
    for port, src in enumerate(srcs):
        g.connect(src, 0, nid, port)
    return g, nid


def assert_readable(spec: LayerSpec, message: str) -> None:
    assert message and "\n" not in message and len(message) < 400, message
    assert spec.title in message or spec.type_id in message, f"the refusal should name {spec.title}: {message}"
    assert "Traceback" not in message and "torch" not in message.lower(), message


def check_case(spec: LayerSpec, params: dict, ins: list[tuple]) -> bool:
    """Compare the declaration with the real module; returns whether the input was accepted."""
    # a hand-crafted filter (Conv2d's init) in a kernel without a centre is refused whatever the shapes
    misfit = ["filter_size"] if params.get("init") in FILTER_SCHEMES and not filter_fits(params["kernel_size"]) else []
    try:
        declared = tuple(spec.shape(params, ins))
    except ShapeError as exc:
        assert_readable(spec, str(exc))
        # the analysis reports the same refusal as a problem on the block, never raises
        g, nid = build_tiny_graph(spec, params, ins)
        problems = analyze(g).problems[nid]
        assert [p.rule for p in problems] == misfit + ["shape"] and str(exc) in problems[-1].message
        return False

    g, nid = build_tiny_graph(spec, params, ins)
    analysis = analyze(g)
    assert [p.rule for p in analysis.errors()] == misfit
    if misfit:
        return False
    info = analysis.nodes[nid]
    assert info.out_shape == declared

    compiled = compile_graph(g, analysis=analysis)
    model = compiled.module.eval()
    feed_shapes = [declared] if spec.role == "input" else ins
    xs = [torch.randn(2, *s) for s in feed_shapes]
    with torch.no_grad():
        out = model(*xs)
    assert tuple(out.shape) == (2, *declared), f"{spec.type_id} {params} on {ins}: declared {declared}"

    assert (info.trainable, info.frozen) == torch_counts(model)
    assert info.macs == hand_macs(spec.type_id, params, ins, tuple(out.shape[1:]))
    assert info.memory == (0 if spec.role == "head" else 4 * math.prod(declared))
    if spec.role == "input":
        want = (params["channels"], params["height"], params["width"]) if params["kind"] == "image" else (params["features"],)
        assert declared == want
    if spec.role == "head":
        assert out is not None and declared == ins[0]  # a head passes its input through
    return True


@pytest.mark.parametrize("type_id", ALL_TYPES)
def test_declaration_matches_real_module(type_id):
    spec = registry.get(type_id)
    assert type_id in FEED, f"{type_id} is not covered: add it to FEED"
    accepted = []

    def body(case):
        params, ins = case
        accepted.append(check_case(spec, params, ins))

    run = given(case=layer_case(spec))(body)
    for params, ins in EDGE_CASES.get(type_id, []):
        run = example(case=(spec.resolve_params(params), ins))(run)
    hypothesis_settings(spec)(run)()
    assert any(accepted), f"no drawn input was accepted by {type_id}: widen its strategy"


# --------------------------------------------------------------------- hand formulas
def _single(type_id: str, params: dict, in_shape: tuple):
    g = Graph()
    src = image_input(g, *in_shape) if len(in_shape) == 3 else vector_input(g, in_shape[0])
    nid = then(g, src, type_id, params)
    return analyze(g).nodes[nid]


@pytest.mark.parametrize(
    "type_id, params, in_shape, out_shape, macs, weights",
    [
        # conv: N·Cout·Hout·Wout·(Cin/groups)·kh·kw with N = 1
        ("Conv2d", {"filters": 16, "kernel_size": 3, "stride": 2, "padding": 1}, (3, 32, 32), (16, 16, 16), 16 * 16 * 16 * 3 * 9, 16 * 3 * 9 + 16),
        ("Conv2d", {"filters": 4, "kernel_size": 3, "padding": "valid", "groups": 2}, (8, 10, 10), (4, 8, 8), 4 * 8 * 8 * 4 * 9, 4 * 4 * 9 + 4),
        ("Conv2d", {"filters": 6, "kernel_size": 5, "padding": "valid", "bias": False}, (1, 32, 32), (6, 28, 28), 6 * 28 * 28 * 25, 150),
        ("Conv2d", {"filters": 2, "kernel_size": 3, "dilation": 2, "padding": "valid"}, (1, 9, 9), (2, 5, 5), 2 * 5 * 5 * 9, 20),
        # an even kernel with 'same' keeps the size (PyTorch pads the extra pixel on one side)
        ("Conv2d", {"filters": 3, "kernel_size": 2, "padding": "same"}, (2, 7, 7), (3, 7, 7), 3 * 7 * 7 * 2 * 4, 3 * 2 * 4 + 3),
        ("Conv2d", {"filters": 3, "kernel_size": 3, "stride": 2, "padding": "same"}, (1, 7, 7), (3, 4, 4), 3 * 4 * 4 * 9, 30),
        # separable: depthwise Cin·Hout·Wout·k·k + pointwise Cout·Hout·Wout·Cin
        ("SeparableConv2d", {"filters": 16, "kernel_size": 3}, (8, 16, 16), (16, 16, 16), 8 * 16 * 16 * 9 + 16 * 16 * 16 * 8, 8 * 9 + 8 + 8 * 16 + 16),
        # transposed: Cin·Hin·Win·Cout·k·k
        ("ConvTranspose2d", {"filters": 8, "kernel_size": 2, "stride": 2}, (16, 8, 8), (8, 16, 16), 16 * 8 * 8 * 8 * 4, 16 * 8 * 4 + 8),
        ("ConvTranspose2d", {"filters": 4, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}, (2, 5, 5), (4, 10, 10), 2 * 25 * 4 * 9, 2 * 4 * 9 + 4),
        # dense: in·out
        ("Dense", {"units": 120}, (400,), (120,), 400 * 120, 400 * 120 + 120),
        ("Dense", {"units": 10, "bias": False}, (84,), (10,), 840, 840),
        ("MaxPool2d", {}, (6, 28, 28), (6, 14, 14), 0, 0),
        ("AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}, (2, 5, 5), (2, 5, 5), 0, 0),
        ("Upsample", {"scale": 3}, (2, 4, 5), (2, 12, 15), 0, 0),
        ("GlobalAvgPool", {}, (7, 3, 3), (7,), 0, 0),
        ("AdaptiveAvgPool2d", {"output_size": 1}, (7, 3, 3), (7, 1, 1), 0, 0),
        ("AdaptiveAvgPool2d", {"output_size": 6}, (256, 13, 13), (256, 6, 6), 0, 0),
        # ceil mode: ⌈(112 − 3) / 2⌉ + 1 = 56 (GoogLeNet), floor mode 55
        ("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (64, 112, 112), (64, 56, 56), 0, 0),
        ("MaxPool2d", {"kernel_size": 3, "stride": 2}, (64, 112, 112), (64, 55, 55), 0, 0),
        ("LocalResponseNorm", {}, (96, 55, 55), (96, 55, 55), 0, 0),
        ("Flatten", {}, (16, 5, 5), (400,), 0, 0),
    ],
)
def test_shapes_macs_and_params_by_hand(type_id, params, in_shape, out_shape, macs, weights):
    info = _single(type_id, params, in_shape)
    assert info.out_shape == out_shape
    assert info.macs == macs
    assert info.trainable == weights and info.frozen == 0


def test_batchnorm_counts_running_statistics_as_buffers_apart_from_its_parameters():
    info = _single("BatchNorm", {}, (16, 8, 8))
    assert (info.trainable, info.frozen) == (32, 32)
    assert _single("BatchNorm", {}, (10,)).params == 20  # as sum(p.numel() for p in BatchNorm1d(10).parameters())


# --------------------------------------------------------------------- declarations
@pytest.mark.parametrize("type_id", ALL_TYPES)
def test_declaration_is_complete(type_id):
    spec = registry.get(type_id)
    assert spec.category in registry.CATEGORIES
    assert len(spec.doc) > 60, "the tooltip paragraph should explain the layer"
    assert spec.title and spec.default_name
    names = [p.name for p in spec.params]
    assert len(names) == len(set(names))
    for p in spec.params:
        assert p.validate(p.default) == p.default, f"{type_id}.{p.name}: default is not allowed by its own range"
        if p.kind in ("choice", "int_or_choice"):
            assert p.choices
    assert ("init" in names) == spec.has_weights
    defaults = spec.defaults()
    n_in = len(spec.input_ports(defaults))
    assert n_in == (0 if spec.role == "input" else 2 if spec.role == "merge" else 1)
    assert len(spec.output_ports(defaults)) == (0 if spec.role == "head" else 1)


@pytest.mark.parametrize("type_id", ALL_TYPES)
def test_pytorch_names_are_real(type_id):
    """Each name the palette's search knows is a module, function or tensor method of PyTorch."""
    import torch.nn.functional as F

    spec = registry.get(type_id)
    if spec.role != "input" and type_id not in ("CropToMatch", "PerceptronOutput"):  # NOTE: none has a PyTorch counterpart
        assert spec.torch_names, f"{type_id} needs its PyTorch names"
    places = {"torch": torch, "F": F, "Tensor": torch.Tensor}
    for name in spec.torch_names:
        where, _, attr = name.rpartition(".")
        assert hasattr(places[where] if where else torch.nn, attr), name


def test_input_sizes_apply_to_their_kind_only():
    spec = registry.get("Input")
    image, vector = spec.resolve_params({"kind": "image"}), spec.resolve_params({"kind": "vector"})
    shown = {kind: {p.name for p in spec.params if p.applies(params)} for kind, params in
             (("image", image), ("vector", vector))}
    assert shown == {"image": {"kind", "channels", "height", "width"}, "vector": {"kind", "features"}}
    assert all(p.applies({}) for p in registry.get("Conv2d").params)  # no condition: always applies


def test_shape_param_accepts_text_and_refuses_nonsense():
    p = registry.get("Reshape").param("shape")
    assert p.validate("16, 4, 4") == (16, 4, 4) == p.validate("16x4x4")
    for bad in ("", "1,2,3,4", "a,b", [0, 2], 3):
        with pytest.raises(ParamError):
            p.validate(bad)

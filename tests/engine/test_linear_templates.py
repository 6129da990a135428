"""A linear classifier's weight rows as class templates, and CAM after global max pooling as after average pooling.

Every figure is checked against an independent computation: a template is the weight row that the
model's own score uses (the score of class k is the template times the image, plus the bias), and a
CAM map is the fc rows times the feature maps read by a forward hook.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.analysis import analyze
from engine.compile import compile_graph
from engine.graph import Graph
from engine.probes import ProbeError, ProbeRunner, detached_copy
from engine.probes.cam import cam, cam_path
from engine.probes.views import (
    MAX_TEMPLATES,
    filter_view,
    filters_block,
    filters_problem,
    linear_templates,
    template_shape,
)
from engine.templates import TEACHING_ORDER, load_template
from tests.engine.helpers import chain, image_input, vector_input


def build(graph, seed=0):
    torch.manual_seed(seed)
    compiled = compile_graph(graph)
    return compiled, compiled.module.eval()


def shapes_of(graph):
    found = analyze(graph)
    return lambda nid: found.nodes[nid].out_shape


def linear_net(c, size, classes, *between):
    """Input C×size×size → Flatten → (between) → Dense(classes) → Class output."""
    g = Graph()
    x = image_input(g, c, size)
    ids = chain(g, x, "Flatten", *between, ("Dense", {"units": classes}), "ClassificationOutput")
    return g, ids[-2]


def pooled_net():
    """Input 1×12×12 → Conv 4@3×3 (10×10) → MaxPool (4×5×5) → Flatten → Dense(3) → Class output."""
    g = Graph()
    x = image_input(g, 1, 12)
    ids = chain(g, x, ("Conv2d", {"filters": 4, "kernel_size": 3, "padding": "valid"}), "ReLU", ("MaxPool2d", {}), "Flatten",
                ("Dense", {"units": 3}), "ClassificationOutput")
    return g, ids[-2], ids[0]


def the_linear(model) -> nn.Linear:
    (linear,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linear


CASES = {
    "digits 1×8×8": (lambda: linear_net(1, 8, 10), (1, 8, 8)),
    "colour 3×16×16": (lambda: linear_net(3, 16, 4), (3, 16, 16)),
    "through Dropout": (lambda: linear_net(2, 6, 5, ("Dropout", {"p": 0.5})), (2, 6, 6)),
    "conv + pool 4×5×5": (lambda: pooled_net()[:2], (4, 5, 5)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_templates_are_the_weight_rows_reshaped_to_the_image(case):
    make, shape = CASES[case]
    g, dense = make()
    compiled, model = build(g)
    assert template_shape(g, shapes_of(g), dense) == shape
    got = linear_templates(model, compiled.code, dense, shape)
    w = the_linear(model).weight.detach().numpy()
    assert got.shape == (w.shape[0], *shape) and got.dtype == np.float32
    for k in range(w.shape[0]):
        np.testing.assert_array_equal(got[k], w[k].reshape(shape))


@pytest.mark.parametrize("case", list(CASES))
def test_each_template_times_the_image_is_that_class_score(case):
    """What makes a row a template: the Dense's score k is the sum of template k times what the Flatten read."""
    make, shape = CASES[case]
    g, dense = make()
    compiled, model = build(g, seed=3)
    got = linear_templates(model, compiled.code, dense, shape)
    store = {}
    flatten = next(m for m in model.modules() if isinstance(m, nn.Flatten))
    handle = flatten.register_forward_hook(lambda m, i, o: store.__setitem__("image", i[0].detach()))
    x = torch.randn(5, *compiled.code.input_shapes[0], generator=torch.Generator().manual_seed(7))
    try:
        with torch.no_grad():
            scores = model(x)
    finally:
        handle.remove()
    image = store["image"].numpy().astype(np.float64)  # (N, C, H, W): the map the Flatten unrolled
    bias = the_linear(model).bias.detach().numpy().astype(np.float64)
    by_hand = np.einsum("kchw,nchw->nk", got.astype(np.float64), image) + bias
    np.testing.assert_allclose(scores.numpy(), by_hand, rtol=1e-5, atol=1e-5)


def test_the_runner_shows_templates_when_there_is_no_convolution_and_names_the_classes():
    g, dense = linear_net(1, 8, 10)
    compiled, model = build(g)
    runner = ProbeRunner(g, compiled.code, torch.rand(4, 1, 8, 8), config={"cam_method": "off"})
    assert runner.filters_layer == dense and "filters" not in runner.problems
    f = runner.run(model, 1)["filters"]
    assert f["kind"] == "templates" and f["node_id"] == dense and f["units"] == 10 and f["classes"] is True
    np.testing.assert_array_equal(f["templates"], the_linear(model).weight.detach().numpy().reshape(10, 1, 8, 8))
    assert "tiles" not in f  # NOTE: raw weights, not scaled: the window scales them symmetrically about 0


def test_units_that_do_not_score_classes_are_units():
    g = Graph()
    x = image_input(g, 1, 6)
    hidden, *_ = chain(g, chain(g, x, "Flatten")[0], ("Dense", {"units": 5}), "ReLU", ("Dense", {"units": 3}),
                       "ClassificationOutput")
    compiled, model = build(g)
    shape_of = shapes_of(g)
    tap_order = list(g.topological_order())
    assert filters_block(g, tap_order, shape_of) == hidden  # the first Dense on the flattened image
    f = filter_view(model, compiled.code, g, shape_of, hidden)
    assert f["kind"] == "templates" and f["classes"] is False and f["templates"].shape == (5, 1, 6, 6)
    last = [nid for nid in tap_order if g.nodes[nid].type == "Dense"][-1]
    assert template_shape(g, shape_of, last) is None  # it reads hidden units, not pixels
    assert "neither a convolution" in filters_problem(g, shape_of, last)
    with pytest.raises(ProbeError, match="neither a convolution"):
        filter_view(model, compiled.code, g, shape_of, last)


def test_a_convolution_stays_the_default_and_the_dense_can_be_chosen():
    g, dense, conv = pooled_net()
    compiled, model = build(g)
    x = torch.rand(3, 1, 12, 12)
    default = ProbeRunner(g, compiled.code, x, config={"cam_method": "off"}).run(model, 1)["filters"]
    assert default["kind"] == "kernels" and default["node_id"] == conv and default["tiles"].shape == (4, 1, 3, 3)
    chosen = ProbeRunner(g, compiled.code, x, config={"cam_method": "off", "filters_layer": dense}).run(model, 1)
    f = chosen["filters"]
    assert chosen["problems"] == {} and f["kind"] == "templates" and f["classes"] is True
    np.testing.assert_array_equal(f["templates"], the_linear(model).weight.detach().numpy().reshape(3, 4, 5, 5))
    wrong = ProbeRunner(g, compiled.code, x, config={"cam_method": "off", "filters_layer": "flatten"})
    assert "neither a convolution" in wrong.problems["filters"] and "filters" not in wrong.run(model, 1)


def test_a_wide_layer_sends_its_first_templates_and_says_how_many_there_are():
    g, dense = linear_net(1, 4, MAX_TEMPLATES + 6)
    compiled, model = build(g)
    f = filter_view(model, compiled.code, g, shapes_of(g), dense)
    w = the_linear(model).weight.detach().numpy()
    assert f["units"] == MAX_TEMPLATES + 6 and len(f["templates"]) == MAX_TEMPLATES
    np.testing.assert_array_equal(f["templates"], w[:MAX_TEMPLATES].reshape(-1, 1, 4, 4))


def test_a_vector_network_has_no_filters_and_no_problem():
    g = Graph()
    chain(g, vector_input(g, 4), ("Dense", {"units": 3}), "ClassificationOutput")
    compiled, _ = build(g)
    runner = ProbeRunner(g, compiled.code, torch.rand(4, 4), config={"cam_method": "off"})
    assert runner.filters_layer is None and "filters" not in runner.problems


def test_the_linear_classifier_template_shows_its_ten_digit_templates():
    assert TEACHING_ORDER.index("mlp") < TEACHING_ORDER.index("linear_classifier") < TEACHING_ORDER.index("lenet5")
    project = load_template("linear_classifier")
    assert "templates" in project.description and project.data.dataset == "digits" and project.data.image_size == 8
    g = project.graph
    compiled, model = build(g)
    runner = ProbeRunner(g, compiled.code, torch.rand(4, 1, 8, 8), config=project.probes)
    out = runner.run(model, 1)
    assert out["problems"] == {} and out["filters"]["templates"].shape == (10, 1, 8, 8) and out["filters"]["classes"]
    assert g.nodes[out["filters"]["node_id"]].name == "linear"


# ---------------------------------------------------------------------- CAM after GAP or GMP
def pooled_classifier(pool: str, classes: int = 3):
    g = Graph()
    x = image_input(g, 3, 16)
    ids = chain(g, x, ("Conv2d", {"filters": 8, "kernel_size": 3, "padding": 1}), "ReLU",
                ("Conv2d", {"filters": 6, "kernel_size": 3, "stride": 2, "padding": 1}), "ReLU",
                pool, ("Dense", {"units": classes}), "ClassificationOutput")
    return g, dict(zip(("conv1", "relu1", "conv2", "relu2", "pool", "fc", "out"), ids))


def cam_by_hand(model, maps: nn.Module, fc: nn.Linear, x, cls=None):
    """The last maps A (a forward hook on ``maps``) weighed by the fc row of each image's class: Σ_k w_ck A_k."""
    store = {}
    handle = maps.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach()))
    try:
        with torch.no_grad():
            scores = model(x)
    finally:
        handle.remove()
    cls = scores.argmax(1) if cls is None else torch.full((len(x),), cls)
    w = fc.weight.detach()[cls]
    a = store["a"].double()
    return (w.double()[:, :, None, None] * a).sum(1), a, scores


@pytest.mark.parametrize("pool, reduce", [("GlobalAvgPool", lambda a: a.mean((2, 3))),
                                          ("GlobalMaxPool", lambda a: a.amax((2, 3)))])
@pytest.mark.parametrize("cls", [None, 0, 2])
def test_cam_is_the_weighted_sum_of_the_last_maps_after_either_pool(pool, reduce, cls):
    g, ids = pooled_classifier(pool)
    compiled, model = build(g, seed=2)
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    path = cam_path(g, compiled.code)
    assert (path.pool, path.features) == (ids["pool"], ids["relu2"])
    maps, fc = (model.get_submodule(compiled.code.attrs[ids[k]]) for k in ("relu2", "fc"))
    raw, a, scores = cam_by_hand(model, maps, fc, x, cls)
    # the premise: each score is the fc weights times the pooled maps, plus the bias
    by_hand = reduce(a) @ fc.weight.detach().double().T + fc.bias.detach().double()
    np.testing.assert_allclose(scores.double(), by_hand, rtol=1e-5, atol=1e-5)
    got = cam(detached_copy(model), compiled.code, g, x, cls, raw=True)
    np.testing.assert_allclose(got, raw.numpy(), rtol=1e-5, atol=1e-5)
    heat = cam(detached_copy(model), compiled.code, g, x, cls)
    up = F.interpolate(raw[:, None].float(), size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    lo, hi = up.amin((1, 2), keepdim=True), up.amax((1, 2), keepdim=True)
    np.testing.assert_allclose(heat, ((up - lo) / (hi - lo)).numpy(), atol=1e-5)


def test_the_runner_computes_cam_after_global_max_pooling():
    g, ids = pooled_classifier("GlobalMaxPool")
    compiled, model = build(g, seed=5)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    runner = ProbeRunner(g, compiled.code, x, config={"cam_method": "cam", "class_index": 1})
    assert "cam" not in runner.problems and runner.cam_method == "cam"
    out = runner.run(model, 1)
    assert out["cam"]["method"] == "cam" and out["cam"]["node_id"] == ids["relu2"]
    np.testing.assert_allclose(out["cam"]["maps"], cam(detached_copy(model), compiled.code, g, x, 1), atol=1e-6)


def test_the_reason_cam_is_unavailable_names_both_pools():
    g, _ = linear_net(1, 8, 10)
    compiled, _ = build(g)
    runner = ProbeRunner(g, compiled.code, torch.rand(2, 1, 8, 8), config={"cam_method": "cam"})
    why = runner.problems["cam"]
    assert "GlobalAvgPool (or GlobalMaxPool) → Dense → Class output" in why and "Grad-CAM" in why
    g3 = Graph()
    x = image_input(g3, 1, 8)
    chain(g3, x, ("Conv2d", {"filters": 2, "kernel_size": 3}), "GlobalMaxPool", ("Dense", {"units": 4}), "ReLU",
          ("Dense", {"units": 2}), "ClassificationOutput")
    with pytest.raises(ProbeError, match="'relu' \\(ReLU\\) is in the way"):
        cam_path(g3, build(g3)[0].code)

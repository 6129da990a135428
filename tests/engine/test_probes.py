"""Probes: CAM and Grad-CAM against a plain computation, non-interference with training,
flat memory, and the shapes and ranges of every view the dashboard draws."""

import gc
import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.analysis import analyze
from engine.compile import compile_graph
from engine.config import DataConfig, ProbeConfig
from engine.errors import NetDesignerError
from engine.graph import Graph
from engine.probes import ProbeError, ProbeRunner, Tap, detached_copy
from engine.probes.cam import (
    COLOR_TABLE,
    cam,
    cam_path,
    default_cam_layer,
    grad_cam,
    overlay,
    save_png,
)
from engine.probes.explain import explain
from engine.probes.ondemand import activation_maximization, max_activating_patches, unit_activation
from engine.probes.views import (
    activations,
    confusion,
    decision_grid,
    filters,
    gradient_stats,
    hardest,
    histograms,
    per_class_accuracy,
    predicted_boxes,
    predicted_masks,
    regression_curve,
    update_ratio,
)
from engine.project import Project
from engine.templates import FULL_SIZE, list_templates, load_template
from tests.engine.helpers import chain, gap_net, image_input, then, vector_input


# ---------------------------------------------------------------------- networks
def flat_net():
    """A LeNet-like network that flattens: Grad-CAM works, CAM does not."""
    g = Graph()
    x = image_input(g, 1, 12)
    ids = chain(
        g, x,
        ("Conv2d", {"filters": 4, "kernel_size": 3}),
        "ReLU",
        ("MaxPool2d", {}),
        "Flatten",
        ("Dense", {"units": 3}),
        "ClassificationOutput",
    )
    return g, dict(zip(("conv", "relu", "pool", "flat", "fc", "out"), ids))


def build(graph, seed=0):
    torch.manual_seed(seed)
    compiled = compile_graph(graph)
    return compiled, compiled.module.eval()


def localization_net():
    """A tiny 8×8 classifier with a box head beside it: the graph and its (compiled, module)."""
    loc = Graph()
    i = image_input(loc, 1, 8)
    f = then(loc, i, "Flatten")
    chain(loc, f, ("Dense", {"units": 2}), "ClassificationOutput")
    chain(loc, f, ("Dense", {"units": 4}), "Sigmoid", "BoxOutput")
    return loc, build(loc)


def images(n=4, c=3, size=16, seed=1):
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def normalize_minmax(m):
    lo = m.amin(dim=(1, 2), keepdim=True)
    hi = m.amax(dim=(1, 2), keepdim=True)
    return (m - lo) / (hi - lo)


def upsample(m, size=(16, 16)):
    return F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def reference_cam(model, x, cls=None):
    """CAM the textbook way: hook the last conv block's output, weigh by the fc row of the class."""
    store = {}
    handle = model.relu1.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach()))
    try:
        with torch.no_grad():
            scores = model(x)
    finally:
        handle.remove()
    cls = scores.argmax(1) if cls is None else torch.full((x.shape[0],), cls)
    w = model.fc.weight.detach()[cls]  # (N, C)
    raw = (w[:, :, None, None] * store["a"]).sum(1)
    return raw, normalize_minmax(upsample(raw)), cls


def reference_grad_cam(model, x, cls=None):
    """Grad-CAM the textbook way: a forward hook keeps A, autograd gives dy_c/dA."""
    store = {}

    def keep(m, i, o):
        o.retain_grad()
        store["a"] = o

    handle = model.relu1.register_forward_hook(keep)
    try:
        xg = x.clone().requires_grad_(True)  # so that A is part of an autograd graph
        scores = model(xg)
    finally:
        handle.remove()
    cls = scores.argmax(1) if cls is None else torch.full((x.shape[0],), cls)
    scores.gather(1, cls[:, None]).sum().backward()
    a, grad = store["a"].detach(), store["a"].grad
    alpha = grad.mean(dim=(2, 3))
    raw = (alpha[:, :, None, None] * a).sum(1)
    heat = upsample(torch.relu(raw))
    heat = heat / heat.amax(dim=(1, 2), keepdim=True)
    return raw, heat, cls


# ---------------------------------------------------------------------- CAM and Grad-CAM
def test_generated_names_used_by_the_references():
    g, ids = gap_net()
    compiled, _ = build(g)
    assert compiled.code.attrs[ids["relu2"]] == "relu1" and compiled.code.attrs[ids["fc"]] == "fc"


@pytest.mark.parametrize("cls", [None, 2])
def test_cam_equals_a_plain_computation(cls):
    g, ids = gap_net()
    compiled, model = build(g)
    x = images()
    copy = detached_copy(model)
    maps = cam(copy, compiled.code, g, x, class_index=cls)
    _, expected, _ = reference_cam(model, x, cls)
    assert maps.shape == (4, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("cls", [None, 1])
def test_grad_cam_equals_a_plain_computation(cls):
    g, ids = gap_net()
    compiled, model = build(g)
    x = images()
    maps, classes = grad_cam(detached_copy(model), compiled.code, g, x, class_index=cls)
    _, expected, ref_cls = reference_grad_cam(model, x, cls)
    assert maps.shape == (4, 16, 16) and maps.min() >= 0.0 and maps.max() <= 1.0
    np.testing.assert_array_equal(classes, ref_cls.numpy())
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-5)


def test_grad_cam_is_cam_over_the_map_size_for_gap_then_dense():
    g, ids = gap_net()
    compiled, model = build(g)
    x = images(6)
    copy = detached_copy(model)
    cam_raw = cam(copy, compiled.code, g, x, raw=True)
    grad_raw, _ = grad_cam(copy, compiled.code, g, x, ids["relu2"], raw=True)
    h, w = cam_raw.shape[1:]
    assert (h, w) == (8, 8)
    np.testing.assert_allclose(grad_raw * h * w, cam_raw, rtol=1e-4, atol=1e-5)
    # ... and so, after the ReLU and scaling, Grad-CAM is CAM's positive part
    heat, _ = grad_cam(copy, compiled.code, g, x)
    positive = upsample(torch.relu(torch.from_numpy(cam_raw)))
    positive = positive / positive.amax(dim=(1, 2), keepdim=True)
    np.testing.assert_allclose(heat, positive.numpy(), atol=1e-5)


def test_cam_folds_batchnorm_and_dropout_between_the_pool_and_the_dense():
    g = Graph()
    x = image_input(g, 2, 10)
    relu = chain(g, x, ("Conv2d", {"filters": 5, "kernel_size": 3}), "ReLU")[-1]
    chain(g, relu, "GlobalAvgPool", "BatchNorm", ("Dropout", {"p": 0.5}), ("Dense", {"units": 4}), "ClassificationOutput")
    compiled, model = build(g)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
    xb = images(3, 2, 10)
    cam_raw = cam(model, compiled.code, g, xb, raw=True)
    grad_raw, _ = grad_cam(model, compiled.code, g, xb, relu, raw=True)
    assert cam_raw.shape == (3, 10, 10)
    np.testing.assert_allclose(grad_raw * 100, cam_raw, rtol=1e-4, atol=1e-5)


def test_default_cam_layer_is_the_last_spatial_block_before_pooling_or_flatten():
    g, ids = gap_net()
    assert default_cam_layer(g, analyze(g)) == ids["relu2"]
    g2, ids2 = flat_net()
    assert default_cam_layer(g2, analyze(g2)) == ids2["pool"]
    mlp = load_template("mlp").graph
    assert default_cam_layer(mlp, analyze(mlp)) is None


def test_grad_cam_on_a_chosen_layer_and_on_a_flattening_net():
    g, ids = gap_net()
    compiled, model = build(g)
    maps, _ = grad_cam(detached_copy(model), compiled.code, g, images(), ids["conv1"])
    assert maps.shape == (4, 16, 16) and 0 <= maps.min() and maps.max() <= 1
    g2, ids2 = flat_net()
    c2, m2 = build(g2)
    maps2, classes = grad_cam(detached_copy(m2), c2.code, g2, images(3, 1, 12))
    assert maps2.shape == (3, 12, 12) and classes.shape == (3,)


def test_cam_refuses_networks_without_gap_then_dense_and_bad_arguments():
    g2, ids2 = flat_net()
    c2, m2 = build(g2)
    with pytest.raises(ProbeError, match="GlobalAvgPool"):
        cam(m2, c2.code, g2, images(2, 1, 12))
    g, ids = gap_net()
    compiled, model = build(g)
    with pytest.raises(ProbeError, match="not a spatial block"):
        grad_cam(model, compiled.code, g, images(), ids["fc"])
    with pytest.raises(ProbeError, match="out of range"):
        grad_cam(model, compiled.code, g, images(), class_index=3)
    with pytest.raises(ProbeError, match="out of range"):
        cam(model, compiled.code, g, images(), class_index=-1)
    assert issubclass(ProbeError, NetDesignerError)


def test_cam_works_for_class_maps_pooled_straight_into_the_output():
    p = load_template("nin")
    compiled, model = build(p.graph)
    path = cam_path(p.graph, compiled.code)
    assert p.graph.nodes[path.features].name == "class_maps" and path.tail == ()
    maps = cam(model, compiled.code, p.graph, torch.randn(2, 1, 32, 32))
    assert maps.shape == (2, 32, 32) and 0 <= maps.min() and maps.max() <= 1


def test_colour_ramp_brightens_and_overlay_blends():
    luma = COLOR_TABLE.astype(float) @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(luma) > 0)
    img = np.linspace(0, 1, 12).reshape(3, 4)
    heat = np.ones((3, 4)) * 0.5
    assert overlay(img, heat, 0.0).shape == (3, 4, 3)
    np.testing.assert_array_equal(overlay(img, heat, 0.0)[..., 0], np.round(img * 255))
    np.testing.assert_array_equal(overlay(img, heat, 1.0)[0, 0], COLOR_TABLE[128])
    with pytest.raises(ProbeError):
        overlay(img, np.ones((2, 2)), 0.5)


# ---------------------------------------------------------------------- non-interference
def _state(model):
    return {
        "mode": [m.training for m in model.modules()],
        "weights": {k: v.clone() for k, v in model.state_dict().items()},
        "grads": {n: (p.grad, p.grad.clone()) for n, p in model.named_parameters()},
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": [
            (dict(m._forward_hooks), dict(m._backward_hooks), dict(m._forward_pre_hooks))
            for m in model.modules()
        ],
    }


def test_probing_leaves_the_training_model_untouched():
    g, ids = gap_net()
    compiled, model = build(g)
    model.train()
    x = images(8)
    calls = []
    model.conv.register_forward_hook(lambda m, i, o: calls.append("fwd"))
    model.conv.register_forward_pre_hook(lambda m, i: calls.append("pre"))
    model.fc.register_full_backward_hook(lambda m, gi, go: calls.append("bwd"))
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])).backward()
    calls.clear()
    before = _state(model)

    runner = ProbeRunner(g, compiled.code, x, config={"cam_method": "gradcam"})
    runner.mark(model)
    for _ in range(3):
        out = runner.run(model, step=1)
    assert {"activations", "filters", "cam", "gradients"} <= set(out) and out["problems"] == {}
    from engine.data import Dataset

    views = runner.evaluate(model, Dataset(x, {"label": torch.arange(8) % 3}, None, "toy"))
    assert views["hardest"]["cam"]["maps"].shape == (8, 16, 16)
    copy = detached_copy(model)
    cam(copy, compiled.code, g, x)
    grad_cam(copy, compiled.code, g, x)
    activation_maximization(copy, compiled.code, g, ids["relu2"], 0, steps=3)
    max_activating_patches(copy, compiled.code, g, analyze(g), ids["relu1"], 0, x, top=2)
    gradient_stats(model)
    histograms(model)

    after = _state(model)
    assert calls == []  # the copy carries none of the model's hooks
    assert after["mode"] == before["mode"] and all(after["mode"])
    assert after["requires_grad"] == before["requires_grad"]
    for k, v in before["weights"].items():
        assert torch.equal(after["weights"][k], v)
    for n, (g_obj, g_val) in before["grads"].items():
        assert after["grads"][n][0] is g_obj and torch.equal(g_obj, g_val)
    assert after["hooks"] == before["hooks"]
    assert not copy.training and not any(p.requires_grad for p in copy.parameters())


def test_the_copy_follows_the_training_weights():
    g, ids = gap_net()
    compiled, model = build(g)
    runner = ProbeRunner(g, compiled.code, images(4), config={"histograms": False})
    first = runner.run(model, 1)["filters"]["tiles"]
    with torch.no_grad():
        model.conv.weight.mul_(-1)
    second = runner.run(model, 2)["filters"]["tiles"]
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, filters(model, compiled.code, ids["conv1"]))


def _tensor_count():
    """How many tensors are alive, and their elements together (a growing buffer shows here)."""
    live = [o for o in gc.get_objects() if issubclass(type(o), torch.Tensor)]
    return len(live), sum(t.numel() for t in live)


@pytest.mark.slow
def test_memory_stays_flat_over_many_probe_rounds():
    g, ids = gap_net()
    compiled, model = build(g)
    model.train()
    x = images(8)
    F.cross_entropy(model(x), torch.zeros(8, dtype=torch.long)).backward()
    runner = ProbeRunner(g, compiled.code, x, config={"cam_method": "gradcam"})
    for step in range(20):
        runner.mark(model)
        runner.run(model, step)
    gc.collect()
    (tensors, elements), objects = _tensor_count(), len(gc.get_objects())
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for step in range(200):
            runner.mark(model)
            out = runner.run(model, step)
        del out
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
    now_tensors, now_elements = _tensor_count()
    assert now_tensors <= tensors and now_elements <= elements
    assert len(gc.get_objects()) <= objects + 50


# ---------------------------------------------------------------------- the runner
def test_runner_results_for_the_dashboard():
    g, ids = gap_net()
    compiled, model = build(g)
    x = images(10)
    runner = ProbeRunner(g, compiled.code, x, config=ProbeConfig(layer=ids["relu1"], probe_samples=8))
    assert runner.x.shape[0] == 8 and runner.images().shape == (8, 16, 16, 3)
    model.train()
    F.cross_entropy(model(x), torch.zeros(10, dtype=torch.long)).backward()
    runner.mark(model)
    with torch.no_grad():  # one plain SGD step
        for prm in model.parameters():
            prm -= 0.1 * prm.grad
    out = runner.run(model, step=50)
    assert out["step"] == 50 and out["seconds"] > 0 and out["problems"] == {}
    act = out["activations"]
    assert act["kind"] == "maps" and act["values"].shape == (8, 16, 16) and act["node_id"] == ids["relu1"]
    assert act["dead"].shape == (8,) and 0 <= act["dead_fraction"] <= 1
    assert out["filters"]["tiles"].shape == (8, 3, 3, 3) and out["filters"]["rgb"].shape == (8, 3, 3, 3)
    c = out["cam"]
    assert c["method"] == "gradcam" and c["node_id"] == ids["relu2"] and c["maps"].shape == (8, 16, 16)
    assert out["predictions"]["scores"].shape == (8, 3) and out["predictions"]["classes"].shape == (8,)
    grads = out["gradients"]
    assert grads["layers"] == ["conv", "conv1", "fc"] and grads["node_ids"] == [ids["conv1"], ids["conv2"], ids["fc"]]
    assert np.all(grads["grad_norm"] > 0) and np.all(grads["weight_norm"] > 0)
    assert grads["update_ratio"].shape == (3,) and np.all(grads["update_ratio"] > 0)
    assert out["weight_histograms"]["counts"].shape == (3, 30)
    ah = out["activation_histograms"]
    assert ah["counts"].shape == (6, 30) and ah["edges"].shape == (6, 31)
    assert np.allclose(ah["counts"].sum(1), [8 * 8 * 256, 8 * 8 * 256, 8 * 6 * 64, 8 * 6 * 64, 8 * 6, 8 * 3])
    again = runner.run(model, step=100)
    assert again["gradients"]["update_ratio"] is None  # no mark before this step


def test_runner_schedule_and_reported_problems():
    g2, ids2 = flat_net()
    c2, m2 = build(g2)
    runner = ProbeRunner(g2, c2.code, images(4, 1, 12), config={"cam_method": "cam", "every_batches": 5})
    assert "GlobalAvgPool" in runner.problems["cam"]
    assert runner.due(1), "the first probe runs at once"
    runner.run(m2, step=1)
    assert [s for s in range(2, 12) if runner.due(s)] == list(range(6, 12))
    out = runner.run(m2, step=5)
    assert "cam" not in out and "GlobalAvgPool" in out["problems"]["cam"]
    assert [s for s in range(6, 16) if runner.due(s)] == list(range(10, 16))
    timed = ProbeRunner(g2, c2.code, images(4, 1, 12), config={"every_batches": None, "every_seconds": 2.0})
    timed.run(m2, step=1)
    t0 = timed._last_time
    assert not timed.due(2, now=t0 + 1) and timed.due(2, now=t0 + 2.5)


def test_runner_settings_choose_and_report():
    g, ids = gap_net()
    compiled, model = build(g)
    x = images(4)
    chosen = ProbeRunner(g, compiled.code, x, config={"cam_method": "cam", "class_index": 1, "layer": "conv1"})
    out = chosen.run(model, 1)
    assert out["problems"] == {} and out["activations"]["node_id"] == ids["conv2"]
    assert out["cam"]["method"] == "cam" and list(out["cam"]["classes"]) == [1, 1, 1, 1]
    np.testing.assert_allclose(out["cam"]["maps"], cam(detached_copy(model), compiled.code, g, x, 1), atol=1e-6)
    wrong = ProbeRunner(g, compiled.code, x, config={"class_index": 5, "layer": "nope", "filters_layer": "fc"})
    assert set(wrong.problems) == {"cam", "activations", "filters"} and "out of range" in wrong.problems["cam"]
    out = wrong.run(model, 1)
    assert "cam" not in out and "filters" not in out and out["activations"]["node_id"] == ids["relu1"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runner_on_cuda():
    g, ids = gap_net()
    compiled, model = build(g)
    model = model.cuda().train()
    x = images(8)
    F.cross_entropy(model(x.cuda()), torch.zeros(8, dtype=torch.long, device="cuda")).backward()
    runner = ProbeRunner(g, compiled.code, x)
    runner.mark(model)
    out = runner.run(model, 1)
    assert out["problems"] == {} and out["cam"]["maps"].shape == (8, 16, 16)
    ref, _ = grad_cam(detached_copy(model).cpu(), compiled.code, g, x)
    np.testing.assert_allclose(out["cam"]["maps"], ref, atol=1e-4)


def test_runner_on_every_template():
    for info in list_templates():
        if info.name in FULL_SIZE:  # NOTE: seconds each; narrowed copies in test_classic_templates.py
            continue
        p = load_template(info.name)
        compiled, model = build(p.graph)
        x = torch.randn(2, *compiled.code.input_shapes[0])
        out = ProbeRunner(p.graph, compiled.code, x, config=p.probes).run(model.train(), step=1)
        assert out["problems"] == {}, (info.name, out["problems"])
        assert "activations" in out and "gradients" in out
        if p.probes.cam_method != "off":
            assert out["cam"]["maps"].shape == (2, *compiled.code.input_shapes[0][1:])


def test_tap_reproduces_every_template_exactly():
    for info in list_templates():
        if info.name in FULL_SIZE:  # NOTE: seconds each; narrowed copies in test_classic_templates.py
            continue
        p = load_template(info.name)
        compiled, model = build(p.graph)
        x = torch.randn(2, *compiled.code.input_shapes[0])
        with torch.no_grad():
            ref = model(x)
            got = Tap(p.graph, compiled.code).run(model, x, compiled.code.output_ids)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for nid, r in zip(compiled.code.output_ids, ref):
            assert torch.equal(got[nid], r), info.name


# ---------------------------------------------------------------------- views
def dead_net():
    g = Graph()
    x = vector_input(g, 4)
    fc1, relu, fc2, out = chain(g, x, ("Dense", {"units": 6}), "ReLU", ("Dense", {"units": 2}), "ClassificationOutput")
    compiled, model = build(g)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([-1.0, -2.0, -0.5, 1.0, 2.0, 0.0]))
    return g, compiled, model, relu


def test_dead_relu_fraction_on_a_constructed_case():
    g, compiled, model, relu = dead_net()
    with torch.no_grad():
        model.fc.weight[5] = torch.tensor([1.0, 0, 0, 0])  # unit 5 is alive only for x0 > 0
    x = torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [2.0, 1, 1, 1]])
    act = activations(model, compiled.code, g, relu, x, sample=1)
    assert act["kind"] == "vector" and act["values"].shape == (6,)
    np.testing.assert_array_equal(act["dead"], [True, True, True, False, False, False])
    assert act["dead_fraction"] == pytest.approx(0.5)
    np.testing.assert_allclose(act["values"], [0, 0, 0, 1, 2, 0])
    assert act["min"] == 0 and act["max"] == 2
    only_negative = activations(model, compiled.code, g, relu, x[1:2])
    assert only_negative["dead_fraction"] == pytest.approx(4 / 6)  # unit 5 never fired here


def test_activation_maps_and_non_relu_blocks():
    g, ids = gap_net()
    compiled, model = build(g)
    act = activations(model, compiled.code, g, ids["conv2"], images(3), sample=2)
    assert act["kind"] == "maps" and act["values"].shape == (6, 8, 8) and act["dead"] is None
    assert act["min"] == pytest.approx(float(act["values"].min()))
    with pytest.raises(ProbeError):
        activations(model, compiled.code, g, ids["conv2"], images(3), sample=3)


def test_filters_tiles_and_rgb():
    g, ids = gap_net()
    compiled, model = build(g)
    tiles = filters(model, compiled.code, ids["conv1"])
    assert tiles.shape == (8, 3, 3, 3) and tiles.dtype == np.float32
    np.testing.assert_allclose(tiles.reshape(8, -1).min(1), 0)
    np.testing.assert_allclose(tiles.reshape(8, -1).max(1), 1)
    rgb = filters(model, compiled.code, ids["conv1"], rgb=True)
    assert rgb.shape == (8, 3, 3, 3)
    np.testing.assert_array_equal(rgb[:, :, :, 1], tiles[:, 1])
    assert filters(model, compiled.code, ids["conv2"]).shape == (6, 8, 3, 3)
    with pytest.raises(ProbeError, match="3 channels"):
        filters(model, compiled.code, ids["conv2"], rgb=True)
    with pytest.raises(ProbeError, match="not a convolution"):
        filters(model, compiled.code, ids["fc"])


def test_gradient_stats_and_update_ratio():
    g, ids = gap_net()
    compiled, model = build(g)
    stats = gradient_stats(model)
    assert set(stats) == {"conv", "conv1", "fc"} and math.isnan(stats["fc"]["grad_norm"])
    F.cross_entropy(model(images()), torch.zeros(4, dtype=torch.long)).backward()
    stats = gradient_stats(model)
    want = math.sqrt(model.fc.weight.grad.pow(2).sum() + model.fc.bias.grad.pow(2).sum())
    assert stats["fc"]["grad_norm"] == pytest.approx(want, rel=1e-5)
    with torch.no_grad():
        want = math.sqrt(model.conv.weight.pow(2).sum() + model.conv.bias.pow(2).sum())
    assert stats["conv"]["weight_norm"] == pytest.approx(want, rel=1e-5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    after = {k: v * 1.01 for k, v in before.items()}
    ratios = update_ratio(before, after)
    assert ratios == pytest.approx({"conv": 0.01, "conv1": 0.01, "fc": 0.01}, rel=1e-4)
    h = histograms(model, bins=10)
    assert h["layers"] == ["conv", "conv1", "fc"] and h["counts"].shape == (3, 10)
    assert h["counts"][0].sum() == model.conv.weight.numel()


def test_decision_grid_confusion_and_hardest():
    g = Graph()
    x = vector_input(g, 2)
    fc, out = chain(g, x, ("Dense", {"units": 2}), "ClassificationOutput")
    compiled, model = build(g)
    with torch.no_grad():  # class 1 where x > 0
        model.fc.weight.copy_(torch.tensor([[-5.0, 0.0], [5.0, 0.0]]))
        model.fc.bias.zero_()
    probs = decision_grid(model, (-1, 1), (-2, 2), steps=20)
    assert probs.shape == (20, 20, 2)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-6)
    assert np.all(np.diff(probs[:, :, 1], axis=1) >= 0) and probs[0, -1, 1] > 0.9 and probs[0, 0, 1] < 0.1
    binary = decision_grid(model, (-1, 1), (-1, 1), steps=5, kind="binary")
    np.testing.assert_allclose(binary.sum(-1), 1, atol=1e-6)

    from engine.data import Dataset

    pts = torch.tensor([[1.0, 0], [2.0, 0], [-0.7, 0], [0.5, 0], [-3.0, 0]])
    labels = torch.tensor([1, 1, 0, 0, 1])
    ds = Dataset(pts, {"label": labels}, ["a", "b"], "toy")
    m = confusion(model, ds)
    np.testing.assert_array_equal(m, [[1, 1], [1, 2]])
    np.testing.assert_allclose(per_class_accuracy(m), [0.5, 2 / 3])
    idx, losses = hardest(model, ds, 3)
    ref = F.cross_entropy(model(pts), labels, reduction="none").detach()
    np.testing.assert_array_equal(idx, torch.argsort(ref, descending=True)[:3].numpy())
    assert idx[0] == 4 and np.all(np.diff(losses) <= 0)


def test_regression_curve_masks_and_boxes():
    g = Graph()
    x = vector_input(g, 1)
    chain(g, x, ("Dense", {"units": 1}), "RegressionOutput")
    compiled, model = build(g)
    xs, ys = regression_curve(model, (-3, 3), steps=50)
    assert xs.shape == (50,) and ys.shape == (50, 1)
    np.testing.assert_allclose(ys[:, 0], (model.fc.weight[0, 0] * torch.from_numpy(xs) + model.fc.bias[0]).detach(), atol=1e-5)

    seg = Graph()
    s = image_input(seg, 1, 8)
    chain(seg, s, ("Conv2d", {"filters": 3, "kernel_size": 1}), "SegmentationOutput")
    c_seg, m_seg = build(seg)
    masks = predicted_masks(m_seg, torch.randn(2, 1, 8, 8))
    assert masks.shape == (2, 8, 8) and masks.max() < 3

    loc, (c_loc, m_loc) = localization_net()
    boxes = predicted_boxes(m_loc, torch.randn(3, 1, 8, 8), output=1)
    assert boxes.shape == (3, 4) and boxes.min() >= 0 and boxes.max() <= 1
    with pytest.raises(ProbeError):
        predicted_boxes(m_loc, torch.randn(3, 1, 8, 8), output=0)


def test_runner_evaluate_views():
    p = load_template("mlp")
    p.data.samples = 120
    from engine.data import load_dataset

    compiled, model = build(p.graph)
    ds = load_dataset(p.data, compiled.code.input_shapes[0])
    runner = ProbeRunner(p.graph, compiled.code, ds.x, config={"grid_steps": 25, "hardest": 5})
    out = runner.evaluate(model, ds)
    assert out["problems"] == {}
    assert out["decision_grid"]["probs"].shape == (25, 25, 2)
    assert out["confusion"]["matrix"].sum() == len(ds) and out["confusion"]["per_class_accuracy"].shape == (2,)
    assert out["hardest"]["indices"].shape == (5,)
    # Outputs handed over by the caller (the trainer's validation pass) give the same views.
    from engine.probes.views import predict_all

    shared = runner.evaluate(model, ds, scores=predict_all(model, ds.x))
    np.testing.assert_array_equal(shared["confusion"]["matrix"], out["confusion"]["matrix"])
    np.testing.assert_array_equal(shared["hardest"]["indices"], out["hardest"]["indices"])


def labelled_images(n=12, c=3, size=16, classes=3, seed=3):
    """Display images in [0, 1], the same normalized per channel, and a labelled Dataset of the latter."""
    from engine.data import Dataset

    gen = torch.Generator().manual_seed(seed)
    raw = torch.rand(n, c, size, size, generator=gen)
    mean, std = raw.mean(dim=(0, 2, 3)), raw.std(dim=(0, 2, 3))
    x = (raw - mean[None, :, None, None]) / std[None, :, None, None]
    labels = torch.arange(n) % classes
    return raw, x, Dataset(x, {"label": labels}, [f"c{i}" for i in range(classes)], "toy")


def test_runner_evaluate_gallery_of_the_hardest_samples():
    g, ids = gap_net()
    compiled, model = build(g)
    raw, x, ds = labelled_images()
    runner = ProbeRunner(g, compiled.code, x[:4], display_x=raw[:4], config={"hardest": 6, "gallery": 3})
    out = runner.evaluate(model, ds)
    h = out["hardest"]
    assert out["problems"] == {} and h["indices"].shape == (6,) and h["images"].shape == (3, 16, 16, 3)
    idx = h["indices"][:3]
    # The display images are the raw images again, though the runner only saw normalized ones.
    np.testing.assert_allclose(h["images"], raw[idx].permute(0, 2, 3, 1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(h["true"], ds.targets["label"][idx].numpy())
    with torch.no_grad():
        scores = model(x[idx])
    np.testing.assert_array_equal(h["predicted"], scores.argmax(1).numpy())
    assert h["classes"] == ["c0", "c1", "c2"]
    c = h["cam"]
    ref, classes = grad_cam(detached_copy(model), compiled.code, g, x[idx])
    assert c["method"] == "gradcam" and c["node_id"] == ids["relu2"] and c["class_index"] is None
    np.testing.assert_allclose(c["maps"], ref, atol=1e-5)
    np.testing.assert_array_equal(c["classes"], h["predicted"])
    runner.want("class_index", 2)  # a wish reaches the gallery too
    chosen = runner.evaluate(model, ds)["hardest"]["cam"]
    assert list(chosen["classes"]) == [2, 2, 2] and chosen["class_index"] == 2
    off = ProbeRunner(g, compiled.code, x[:4], config={"cam_method": "off", "gallery": 2}).evaluate(model, ds)
    assert "cam" not in off["hardest"] and off["hardest"]["images"].shape == (2, 16, 16, 3)
    assert off["hardest"]["images"].min() >= 0 and off["hardest"]["images"].max() <= 1  # scaled per image


def test_runner_evaluate_masks_and_boxes_with_their_truth():
    from engine.data import Dataset

    seg = Graph()
    s = image_input(seg, 1, 8)
    chain(seg, s, ("Conv2d", {"filters": 3, "kernel_size": 1}), "SegmentationOutput")
    c_seg, m_seg = build(seg)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    masks = torch.randint(0, 3, (6, 8, 8), generator=torch.Generator().manual_seed(1))
    ds = Dataset(x, {"mask": masks}, None, "toy", mask_classes=["background", "a", "b"])
    out = ProbeRunner(seg, c_seg.code, x[:3]).evaluate(m_seg, ds)
    assert out["problems"] == {} and out["masks"].shape == (3, 8, 8) and out["probe_images"].shape == (3, 8, 8)
    np.testing.assert_array_equal(out["true_masks"], masks[:3].numpy())
    assert out["mask_classes"] == ["background", "a", "b"]
    h = out["hardest"]
    assert h["images"].shape == (6, 8, 8) and h["true"] is None and h["masks"].shape == (6, 8, 8)
    np.testing.assert_array_equal(h["masks"], predicted_masks(m_seg, x)[h["indices"]])
    elsewhere = ProbeRunner(seg, c_seg.code, x[3:]).evaluate(m_seg, ds)  # probe images not at the start
    assert "masks" in elsewhere and "true_masks" not in elsewhere

    loc, (c_loc, m_loc) = localization_net()
    boxes = torch.rand(6, 4, generator=torch.Generator().manual_seed(2)) / 2
    ds = Dataset(x, {"label": torch.arange(6) % 2, "box": boxes}, ["p", "q"], "toy")
    runner = ProbeRunner(loc, c_loc.code, x[:4])
    out = runner.evaluate(m_loc, ds)
    assert "Grad-CAM" in runner.problems["cam"]  # nothing spatial before the class output
    assert out["boxes"].shape == (4, 4) and out["probe_images"].shape == (4, 8, 8)
    np.testing.assert_allclose(out["true_boxes"], boxes[:4].numpy())
    assert out["hardest"]["images"].shape == (6, 8, 8) and "cam" not in out["hardest"]
    assert out["hardest"]["true"].shape == (6,)


def test_runner_wishes_choose_the_class_and_the_grad_cam_block():
    g, ids = gap_net()
    side = then(g, ids["relu1"], "Conv2d", {"filters": 2, "kernel_size": 1})
    then(g, side, "SegmentationOutput")  # a spatial block that does not feed the class output
    compiled, model = build(g)
    x = images(4)
    runner = ProbeRunner(g, compiled.code, x, config={"histograms": False})
    predicted = runner.run(model, 1)["cam"]["classes"]
    runner.want("class_index", 1)
    c = runner.run(model, 2)["cam"]
    assert list(c["classes"]) == [1, 1, 1, 1] and c["class_index"] == 1
    for bad, why in ((7, "out of range"), ("two", "not a whole number"), (1.5, "not a whole number")):
        runner.want("class_index", bad)
        out = runner.run(model, 3)
        assert why in out["problems"]["cam"] and list(out["cam"]["classes"]) == [1, 1, 1, 1]  # kept as it was
    runner.want("class_index", None)
    out = runner.run(model, 4)
    assert "cam" not in out["problems"] and np.array_equal(out["cam"]["classes"], predicted)

    runner.want("cam_layer", ids["relu1"])
    c = runner.run(model, 5)["cam"]
    ref, _ = grad_cam(detached_copy(model), compiled.code, g, x, ids["relu1"])
    assert c["node_id"] == ids["relu1"] and c["name"] == g.nodes[ids["relu1"]].name
    np.testing.assert_allclose(c["maps"], ref, atol=1e-5)
    for bad, why in ((ids["fc"], "not a spatial block"), (side, "does not feed the class output"),
                     ("nope", "no block called")):
        runner.want("cam_layer", bad)
        out = runner.run(model, 6)
        assert why in out["problems"]["cam"] and out["cam"]["node_id"] == ids["relu1"]
    runner.want("cam_layer", None)
    assert runner.run(model, 7)["cam"]["node_id"] == ids["relu2"]

    with_cam = ProbeRunner(g, compiled.code, x, config={"cam_method": "cam", "histograms": False})
    with_cam.want("cam_layer", ids["conv1"])  # CAM weighs only the pooled maps: another block gets Grad-CAM
    assert with_cam.run(model, 1)["cam"]["method"] == "gradcam" and with_cam.cam_layer == ids["conv1"]
    with_cam.want("cam_layer", None)
    assert with_cam.run(model, 2)["cam"]["method"] == "cam"
    g2, ids2 = flat_net()
    c2, m2 = build(g2)
    no_gap = ProbeRunner(g2, c2.code, images(4, 1, 12), config={"cam_method": "cam", "histograms": False})
    assert "cam" not in no_gap.run(m2, 1)  # CAM cannot explain a flattening net ...
    no_gap.want("cam_layer", ids2["relu"])
    out = no_gap.run(m2, 2)  # ... Grad-CAM on a chosen block can
    assert out["cam"]["method"] == "gradcam" and out["cam"]["node_id"] == ids2["relu"] and "cam" not in out["problems"]
    off = ProbeRunner(g, compiled.code, x, config={"cam_method": "off"})
    off.want("class_index", 0)
    assert "switched off" in off.run(model, 1)["problems"]["cam"]
    with pytest.raises(ProbeError, match="unknown probe setting"):
        runner.want("colour", 1)
    stale = ProbeRunner(g, compiled.code, x, config={"cam_layer": ids["fc"]})  # a remembered block that no longer fits
    assert "not a spatial block" in stale.problems["cam"] and stale.cam_layer == ids["relu2"]


# ---------------------------------------------------------------------- on demand
def test_max_activating_patches_have_the_receptive_field_size():
    g, ids = gap_net(channels=1)
    compiled, model = build(g)
    analysis = analyze(g)
    x = images(12, 1)
    rf = analysis.nodes[ids["relu2"]].rf
    assert (rf.size, rf.jump, rf.offset) == (5, 2, 0)
    patches = max_activating_patches(model, compiled.code, g, analysis, ids["relu2"], 3, x, top=5, batch_size=5)
    assert len(patches.crops) == 5 and all(c.shape == (1, 5, 5) for c in patches.crops)
    assert np.all(np.diff(patches.scores) <= 0)
    with torch.no_grad():
        full = Tap(g, compiled.code).run(model, x, {ids["relu2"]})[ids["relu2"]][:, 3]
    per_image = full.flatten(1).max(1).values
    np.testing.assert_allclose(patches.scores, torch.sort(per_image, descending=True).values[:5].numpy(), rtol=1e-6)
    # the crop is the image window around the strongest position (zero outside the image)
    i = int(patches.indices[0])
    pos = int(full[i].flatten().argmax())
    r, c = divmod(pos, full.shape[-1])
    top, left = patches.boxes[0][:2]
    assert (top, left) == (r * 2 - 2, c * 2 - 2)
    padded = F.pad(x[i], (8, 8, 8, 8))
    np.testing.assert_array_equal(patches.crops[0], padded[:, top + 8 : top + 13, left + 8 : left + 13].numpy())


def test_activation_maximization_raises_the_units_response():
    g, ids = gap_net()
    compiled, model = build(g)
    tap = Tap(g, compiled.code)
    start = 0.1 * torch.randn((1, 3, 16, 16), generator=torch.Generator().manual_seed(0))
    image = activation_maximization(model, compiled.code, g, ids["conv2"], 2, steps=30, lr=0.05, seed=0)
    assert image.shape == (3, 16, 16) and image.dtype == np.float32
    with torch.no_grad():
        a0 = float(unit_activation(model, tap, ids["conv2"], 2, start))
        a1 = float(unit_activation(model, tap, ids["conv2"], 2, torch.from_numpy(image)[None]))
    assert a1 > a0 + 0.5
    with pytest.raises(ProbeError, match="channels"):
        activation_maximization(model, compiled.code, g, ids["conv2"], 6, steps=1)


# ---------------------------------------------------------------------- explain
def gap_project():
    g, ids = gap_net()
    p = Project(name="tiny gap", graph=g, data=DataConfig.from_dict({"dataset": "shapes", "samples": 40}))
    torch.manual_seed(0)
    weights = compile_graph(g).module.state_dict()
    return p, ids, weights


def test_explain_writes_the_overlay_and_the_raw_map(tmp_path):
    p, ids, weights = gap_project()
    png, npy, info = explain(p, weights, 3, method="cam", out_png=tmp_path / "out" / "x.png")
    assert png.exists() and npy == tmp_path / "out" / "x.npy"
    with Image.open(png) as im:
        assert im.size == (16, 16) and im.mode == "RGB"
    heat = np.load(npy)
    assert heat.shape == (16, 16) and heat.dtype == np.float32 and heat.min() >= 0 and heat.max() <= 1
    assert info["method"] == "cam" and info["layer"] == ids["relu2"] and info["class_name"] in ("circle", "square", "triangle")
    assert info["class_index"] == info["predicted"]

    # the same sample, explained by hand: normalized with training-split statistics
    from engine.data import Normalizer, load_dataset, split_dataset

    ds = load_dataset(p.data, (3, 16, 16))
    norm = Normalizer.fit(split_dataset(ds, p.data.val_fraction, p.data.test_fraction, p.data.seed).train)
    model = compile_graph(p.graph).module.eval()
    model.load_state_dict(weights)
    _, expected, _ = reference_cam(model, norm.transform(ds.x[3:4]))
    np.testing.assert_allclose(heat, expected[0].numpy(), atol=1e-5)

    img_path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(img_path)
    png2, npy2, info2 = explain(p, {"model": weights, "normalizer": norm.to_dict()}, img_path, method="gradcam",
                                layer="relu", class_index=1, out_png=tmp_path / "g.png")
    assert np.load(npy2).shape == (16, 16) and info2["class_index"] == 1 and info2["layer"] == ids["relu1"]


def test_explain_errors(tmp_path):
    p, ids, weights = gap_project()
    out = tmp_path / "e.png"
    with pytest.raises(ProbeError, match="no such image"):
        explain(p, weights, tmp_path / "missing.png", out_png=out)
    with pytest.raises(ProbeError, match="out of range"):
        explain(p, weights, 0, class_index=7, out_png=out)
    with pytest.raises(ProbeError, match="not a spatial block"):
        explain(p, weights, 0, method="gradcam", layer="fc", out_png=out)
    with pytest.raises(ProbeError, match="no block called"):
        explain(p, weights, 0, method="gradcam", layer="nope", out_png=out)
    with pytest.raises(ProbeError, match="does not exist"):
        explain(p, weights, 10_000, out_png=out)
    with pytest.raises(ProbeError, match="not an image"):
        bad = tmp_path / "bad.png"
        bad.write_text("not a picture")
        explain(p, weights, bad, out_png=out)
    g2, _ = flat_net()
    p2 = Project(name="flat", graph=g2, data=DataConfig.from_dict({"dataset": "shapes", "samples": 40}))
    torch.manual_seed(0)
    with pytest.raises(ProbeError, match="GlobalAvgPool"):
        explain(p2, compile_graph(g2).module.state_dict(), 0, method="cam", out_png=out)
    with pytest.raises(ProbeError, match="do not fit"):
        explain(p, {"fc.weight": torch.zeros(1)}, 0, out_png=out)
    assert not out.exists()


def test_save_png_round_trip(tmp_path):
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    path = save_png(tmp_path / "a.png", rgb)
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.asarray(im), rgb)


# ---------------------------------------------------------------------- a Binary output's two classes
def binary_gap_net():
    """gap_net with one logit into a Binary output; the Dense bias is set so that both classes are predicted."""
    g = Graph()
    x = image_input(g, 3, 16)
    ids = chain(
        g, x,
        ("Conv2d", {"filters": 8, "kernel_size": 3, "padding": 1}),
        "ReLU",
        ("Conv2d", {"filters": 6, "kernel_size": 3, "stride": 2, "padding": 1}),
        "ReLU",
        "GlobalAvgPool",
        ("Dense", {"units": 1}),
        "BinaryOutput",
    )
    ids = dict(zip(("conv1", "relu1", "conv2", "relu2", "gap", "fc", "out"), ids))
    compiled, model = build(g, seed=4)
    x = images(6, seed=5)
    with torch.no_grad():
        model.fc.bias -= model(x)[:, 0].median()  # NOTE: about half the images on each side of z = 0
    return g, ids, compiled, model, x


def reference_binary_grad_cam(model, x, cls):
    """Grad-CAM by hand for one logit z: class 1 scores z, class 0 scores −z (a hook keeps the maps)."""
    store = {}

    def keep(m, i, o):
        o.retain_grad()
        store["a"] = o

    handle = model.relu1.register_forward_hook(keep)
    try:
        z = model(x.clone().requires_grad_(True))[:, 0]
    finally:
        handle.remove()
    sign = torch.where(torch.as_tensor(cls) == 1, 1.0, -1.0)
    (sign * z).sum().backward()
    a, grad = store["a"].detach(), store["a"].grad
    raw = (grad.mean(dim=(2, 3))[:, :, None, None] * a).sum(1)
    heat = upsample(torch.relu(raw))
    top = heat.amax(dim=(1, 2), keepdim=True)
    return torch.where(top > 0, heat / top.clamp_min(1e-30), torch.zeros_like(heat)), z.detach()


def test_live_class_maps_of_a_binary_output_explain_both_classes():
    g, ids, compiled, model, x = binary_gap_net()
    _, z = reference_binary_grad_cam(model, x, torch.ones(len(x), dtype=torch.long))
    predicted = (z > 0).long()
    assert 0 < int(predicted.sum()) < len(x)  # both classes are predicted: the labels below can be told apart
    runner = ProbeRunner(g, compiled.code, x, config={"histograms": False, "probe_samples": len(x)})
    out = runner.run(model, 1)
    assert "cam" not in out["problems"]
    assert np.array_equal(out["cam"]["classes"], predicted.numpy())  # the class labelled is the class predicted
    assert np.array_equal(out["cam"]["classes"], out["predictions"]["classes"])
    expected, _ = reference_binary_grad_cam(model, x, predicted)
    np.testing.assert_allclose(out["cam"]["maps"], expected.numpy(), atol=1e-5)
    for cls in (0, 1):
        runner.want("class_index", cls)
        out = runner.run(model, 2 + cls)
        assert "cam" not in out["problems"] and list(out["cam"]["classes"]) == [cls] * len(x)
        expected, _ = reference_binary_grad_cam(model, x, torch.full((len(x),), cls))
        np.testing.assert_allclose(out["cam"]["maps"], expected.numpy(), atol=1e-5)
        same, _ = grad_cam(detached_copy(model), compiled.code, g, x, class_index=cls)  # what `explain` draws
        np.testing.assert_allclose(out["cam"]["maps"], same, atol=1e-5)
    runner.want("class_index", 2)
    out = runner.run(model, 4)
    assert "out of range: the network has 2 classes" in out["problems"]["cam"]
    assert list(out["cam"]["classes"]) == [1] * len(x)  # kept as it was
    for cls in (0, 1):  # set when the run starts, and CAM as well as Grad-CAM
        for method in ("gradcam", "cam"):
            fresh = ProbeRunner(g, compiled.code, x, config={"histograms": False, "probe_samples": len(x),
                                                               "class_index": cls, "cam_method": method})
            assert "cam" not in fresh.problems and fresh.cam_method == method
            c = fresh.run(model, 1)["cam"]
            assert list(c["classes"]) == [cls] * len(x)


def test_explain_of_a_binary_output_matches_the_live_maps(tmp_path):
    g, ids, compiled, model, _ = binary_gap_net()
    p = Project(name="binary", graph=g, data=DataConfig.from_dict({"dataset": "shapes", "samples": 40}))
    weights = model.state_dict()
    from engine.data import Normalizer, load_dataset, split_dataset

    ds = load_dataset(p.data, (3, 16, 16))
    norm = Normalizer.fit(split_dataset(ds, p.data.val_fraction, p.data.test_fraction, p.data.seed).train)
    x = norm.transform(ds.x[2:3])  # sample 2 as `explain` sees it
    for cls in (None, 0, 1):
        _, npy, info = explain(p, weights, 2, method="gradcam", class_index=cls, out_png=tmp_path / f"{cls}.png")
        runner = ProbeRunner(g, compiled.code, x, config={"histograms": False, "class_index": cls})
        live = runner.run(model, 1)["cam"]
        assert int(live["classes"][0]) == info["class_index"]
        if cls is None:
            assert info["class_index"] == info["predicted"]
        np.testing.assert_allclose(np.load(npy), live["maps"][0], atol=1e-5)

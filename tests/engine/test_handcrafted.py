"""Hand-crafted filters: a Conv2d's kernels set to classic image filters by its weight init.

Each kernel is checked against its textbook definition written here in numpy (and scipy), the compiled
convolution against ``scipy.ndimage.correlate`` of the channel mean, the exported source against the
compiled model, the refusal of a kernel without a centre, and the template's training with its frozen Sobels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from engine.analysis import analyze
from engine.codegen import HELPERS, generate, helper_source
from engine.compile import compile_graph
from engine.errors import ParamError
from engine.graph import Graph
from engine.layers import registry
from engine.layers.registry import FILTER_SCHEMES, INIT_SCHEMES
from engine.templates import TEACHING_ORDER, load_template
from engine.training.events import EpochDone, Finished, Started
from engine.training.trainer import Trainer
from tests.engine.helpers import chain, image_input


def _full_convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The full 2-D convolution of ``a`` with ``b`` (scipy.signal.convolve2d's default), written out with numpy:
    NOTE: scipy.signal alone takes a second to import, a tenth of what tests/engine may take."""
    out = np.zeros((a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1), dtype=np.result_type(a, b))
    for i in range(b.shape[0]):
        for j in range(b.shape[1]):
            out[i : i + a.shape[0], j : j + a.shape[1]] += b[i, j] * a
    return out

SOBEL_X_3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
#: OpenCV's 5×5 Sobel (cv2.getDerivKernels(1, 0, 5)): smoothing 1 4 6 4 1 down, derivative -1 -2 0 2 1 across
SOBEL_X_5 = np.outer([1, 4, 6, 4, 1], [-1, -2, 0, 2, 1]).astype(float)
LAPLACIAN_3 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
PASCAL_3 = np.outer([1, 2, 1], [1, 2, 1]).astype(float)


def opencv_sigma(k: int) -> float:
    """OpenCV's sigma for a Gaussian kernel of size k when none is given (getGaussianKernel)."""
    return 0.3 * ((k - 1) * 0.5 - 1) + 0.8


def textbook(scheme: str, k: int) -> np.ndarray:
    """The filter as the textbook (and OpenCV) writes it, computed independently of the program."""
    if scheme == "identity":
        out = np.zeros((k, k))
        out[k // 2, k // 2] = 1
        return out
    if scheme == "box_blur":
        return np.ones((k, k)) / k**2
    if scheme == "gaussian_blur":  # scipy's Gaussian of a unit impulse: its normalized, sampled kernel
        impulse = np.zeros((k, k))
        impulse[k // 2, k // 2] = 1
        return ndimage.gaussian_filter(impulse, opencv_sigma(k), mode="constant", radius=k // 2)
    sobel = {3: SOBEL_X_3, 5: SOBEL_X_5}
    if scheme == "sobel_x":
        return sobel[k]
    if scheme == "sobel_y":
        return sobel[k].T
    # the Laplacian of the image smoothed by Pascal's triangle (k − 3)/2 times: a discrete Laplacian of Gaussian
    out = LAPLACIAN_3
    for _ in range((k - 3) // 2):
        out = _full_convolve(out, PASCAL_3)
    return out


@pytest.fixture(scope="module")
def image_filter():
    """The generated code's own ``image_filter`` helper, executed as the exported file executes it."""
    namespace = {"torch": torch, "nn": nn}
    exec(HELPERS["image_filter"], namespace)  # noqa: S102 - the code generator's fixed helper source
    return lambda scheme, k: namespace["image_filter"](scheme, k).numpy()


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("scheme", FILTER_SCHEMES)
def test_each_kernel_is_its_textbook_definition(image_filter, scheme, k):
    np.testing.assert_allclose(image_filter(scheme, k), textbook(scheme, k), rtol=1e-12, atol=1e-15)


def test_the_laplacian_5x5_written_out():
    """The 5×5 Laplacian, by hand: the 3×3 one convolved with Pascal's 3×3 (a Laplacian of the blurred image)."""
    by_hand = np.array([
        [0, 1, 2, 1, 0],
        [1, 0, -2, 0, 1],
        [2, -2, -8, -2, 2],
        [1, 0, -2, 0, 1],
        [0, 1, 2, 1, 0],
    ], float)
    np.testing.assert_array_equal(textbook("laplacian", 5), by_hand)


@pytest.mark.parametrize("k", [3, 5, 7, 9])
def test_kernels_measure_what_they_say_on_polynomial_images(image_filter, k):
    """Away from the borders: Sobel on a ramp gives its slope (scaled by the weights), on the other axis 0;
    the Laplacian of a quadratic is 2(a + b), scaled by 16 for each Pascal smoothing; blurs keep a plane."""
    rows, cols = np.mgrid[0:24, 0:24].astype(float)
    inner = (slice(k, -k), slice(k, -k))
    scale = 16.0 ** ((k - 3) // 2)  # Pascal's 3×3 sums to 16

    def corr(image: np.ndarray, scheme: str) -> np.ndarray:
        return ndimage.correlate(image, image_filter(scheme, k))[inner]

    for slope in (0.5, -2.0, 3.0):
        np.testing.assert_allclose(corr(slope * cols + 7, "sobel_x"), 8 * slope * scale)
        np.testing.assert_allclose(corr(slope * cols + 7, "sobel_y"), 0, atol=1e-9)
        np.testing.assert_allclose(corr(slope * rows, "sobel_y"), 8 * slope * scale)
        np.testing.assert_allclose(corr(slope * rows, "sobel_x"), 0, atol=1e-9)
    for a, b, c in ((1.0, 0.0, 0.0), (0.5, 2.0, 1.0), (-1.0, 3.0, -2.0)):
        quadratic = a * cols**2 + b * rows**2 + c * rows * cols + 4 * cols - rows
        np.testing.assert_allclose(corr(quadratic, "laplacian"), 2 * (a + b) * scale, rtol=1e-9)
    plane = 0.3 * cols - 1.5 * rows + 2
    for scheme in ("gaussian_blur", "box_blur", "identity"):
        assert image_filter(scheme, k).sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(corr(plane, scheme), plane[inner], atol=1e-9)
    sigma = opencv_sigma(k)
    g = image_filter("gaussian_blur", k)
    centre = k // 2
    assert g[centre, centre + 1] / g[centre, centre] == pytest.approx(np.exp(-1 / (2 * sigma**2)))


def test_only_conv2d_offers_the_filters_and_the_tooltip_pairs_them_with_trainable():
    offering = [s.type_id for s in registry.all_specs() if any(p.name == "init" for p in s.params)
                and set(FILTER_SCHEMES) <= set(s.param("init").choices)]
    assert offering == ["Conv2d"]
    for spec in registry.all_specs():
        if spec.has_weights and spec.type_id != "Conv2d":
            assert spec.param("init").choices == INIT_SCHEMES, spec.type_id
    init = registry.get("Conv2d").param("init")
    assert init.choices == INIT_SCHEMES + FILTER_SCHEMES
    assert "untick trainable to keep the filter fixed, or leave it to see what training does to it" in init.doc.lower()
    assert "sobel" not in registry.get("Dense").param("init").doc
    g = Graph()
    dense = g.add_node("Dense", {}, name="fc").id
    with pytest.raises(ParamError, match="'init' must be one of.*not 'sobel_x'"):
        g.set_params(dense, {"init": "sobel_x"})


def conv_net(channels: int, size: int, conv: dict) -> tuple[Graph, str]:
    """Input C×size×size → Conv2d(``conv``) → GAP → Dense → Class output; returns the graph and the conv's id."""
    g = Graph()
    x = image_input(g, channels, size)
    ids = chain(g, x, ("Conv2d", conv), "GlobalAvgPool", ("Dense", {"units": 3}), "ClassificationOutput")
    return g, ids[0]


def reference(image: np.ndarray, kernel: np.ndarray, groups: int, filters: int, padding, dilation: int) -> np.ndarray:
    """Each output channel: the kernel correlated with the mean of its group's input channels (zeros outside)."""
    spread = np.zeros(((kernel.shape[0] - 1) * dilation + 1,) * 2)
    spread[::dilation, ::dilation] = kernel
    half = spread.shape[0] // 2
    per_group = image.shape[0] // groups
    outs = []
    for o in range(filters):
        group = o // (filters // groups)
        mean = image[group * per_group:(group + 1) * per_group].mean(axis=0)
        full = ndimage.correlate(mean, spread, mode="constant", cval=0.0)
        outs.append(full if padding == "same" else full[half:-half, half:-half])
    return np.stack(outs)


def _kernel(scheme: str, k: int) -> np.ndarray:
    """The textbook kernel, with Sobel past 5×5 grown as the 5×5 is from the 3×3 (Pascal's smoothing)."""
    if scheme in ("sobel_x", "sobel_y") and k > 5:
        out = textbook(scheme, 5)
        for _ in range((k - 5) // 2):
            out = _full_convolve(out, PASCAL_3)
        return out
    return textbook(scheme, k)


CASES = [  # (input channels, kernel, filters, groups, padding, dilation)
    (1, 3, 1, 1, "same", 1),
    (3, 3, 4, 1, "same", 1),
    (3, 5, 2, 1, "valid", 1),
    (4, 5, 4, 2, "same", 1),
    (2, 7, 3, 1, "valid", 1),
    (3, 3, 2, 1, "valid", 2),
]


@pytest.mark.parametrize("scheme", FILTER_SCHEMES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "c{}k{}f{}g{}{}d{}".format(*c))
def test_the_convolution_filters_the_mean_of_its_input_channels(scheme, case):
    cin, k, filters, groups, padding, dilation = case
    g, conv = conv_net(cin, 15, {"filters": filters, "kernel_size": k, "groups": groups, "padding": padding,
                                 "dilation": dilation, "init": scheme})
    compiled = compile_graph(g)
    module = compiled.module.get_submodule(compiled.code.attrs[conv])
    assert torch.equal(module.bias, torch.zeros(filters))
    rng = np.random.default_rng(k * 10 + cin)
    image = rng.normal(size=(cin, 15, 15))
    with torch.no_grad():
        got = module(torch.tensor(image[None], dtype=torch.float32))[0].double().numpy()
    want = reference(image, _kernel(scheme, k), groups, filters, padding, dilation)
    assert got.shape == want.shape == (filters, *analyze(g).nodes[conv].out_shape[1:])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_the_exported_code_sets_the_same_weights():
    g = Graph()
    x = image_input(g, 3, 12)
    ids = chain(
        g, x,
        ("Conv2d", {"filters": 2, "kernel_size": 5, "init": "gaussian_blur", "trainable": False}), "ReLU",
        ("Conv2d", {"filters": 4, "kernel_size": 3, "init": "laplacian"}), "ReLU",
        ("Conv2d", {"filters": 4, "kernel_size": 3, "init": "he_normal"}),
        "GlobalAvgPool", ("Dense", {"units": 3, "init": "xavier_uniform"}), "ClassificationOutput",
    )
    source = generate(g).source
    assert 'init_weights(self.conv, "gaussian_blur")' in source.replace("'", '"')
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)  # noqa: S102 - the generated module
    exported = namespace["Net"]()
    compiled = compile_graph(g)
    attrs = compiled.code.attrs
    got = exported.state_dict()
    for nid, scheme, cin in ((ids[0], "gaussian_blur", 3), (ids[2], "laplacian", 2)):
        weight = got[f"{attrs[nid]}.weight"].double().numpy()
        k = weight.shape[-1]
        np.testing.assert_allclose(weight, np.broadcast_to(textbook(scheme, k) / cin, weight.shape), rtol=1e-6)
        assert torch.equal(got[f"{attrs[nid]}.weight"], compiled.module.state_dict()[f"{attrs[nid]}.weight"])
        assert torch.equal(got[f"{attrs[nid]}.bias"], torch.zeros(weight.shape[0]))
    assert not exported.get_submodule(attrs[ids[0]]).weight.requires_grad


def test_code_without_filters_neither_defines_nor_names_them():
    g, _ = conv_net(1, 8, {"filters": 2, "init": "he_normal"})
    source = generate(g).source
    assert "init_weights(" in source and "image_filter" not in source and "IMAGE_FILTERS" not in source
    assert helper_source("init_weights", {"init_weights"}) == HELPERS["init_weights"]
    assert "IMAGE_FILTERS" in helper_source("init_weights", {"init_weights", "image_filter"})


@pytest.mark.parametrize("k, fit", [(1, 3), (2, 3), (4, 5), (6, 7)])
def test_a_kernel_without_a_centre_is_a_problem_naming_the_block(k, fit):
    g, conv = conv_net(1, 16, {"filters": 2, "kernel_size": k, "init": "box_blur"})
    g.rename(conv, "blur 1")
    result = analyze(g)
    (problem,) = result.errors()
    assert problem.node_id == conv and problem.rule == "filter_size"
    message = problem.message
    assert "'blur 1'" in message and f"{k}×{k}" in message and "'box_blur'" in message
    assert "odd kernel size of at least 3" in message
    assert problem.fix.set_params == ((conv, (("kernel_size", fit),)),)
    g.set_params(conv, dict(problem.fix.set_params[0][1]))
    assert analyze(g).valid


def test_a_misfit_inside_a_unit_is_the_unit_blocks_naming_the_inner_block():
    from engine.units import group

    g, conv = conv_net(1, 16, {"filters": 2, "kernel_size": 2, "init": "identity"})
    g.rename(conv, "edge")
    grouped, unit = group(g, [conv], "Stem")
    (problem,) = analyze(grouped).errors()
    assert problem.node_id == unit and grouped.nodes[unit].type == "Unit"
    assert "'stem/edge'" in problem.message and "2×2" in problem.message and problem.fix is None


def test_the_template_sits_where_convolutions_begin_and_its_sobels_are_frozen():
    assert TEACHING_ORDER.index("linear_classifier") < TEACHING_ORDER.index("handcrafted_filters") \
        < TEACHING_ORDER.index("lenet5")
    project = load_template("handcrafted_filters")
    convs = {n.name: n for n in project.graph.nodes.values() if n.type == "Conv2d"}
    for name in ("sobel_x", "sobel_y"):
        assert convs[name].params["init"] == name and convs[name].params["trainable"] is False
        assert convs[name].params["filters"] == 1
    assert project.graph.nodes[project.probes.layer].name == "relu_edges"  # the Activations view: edge maps


@pytest.mark.slow  # NOTE: trains a network (tests/engine stays under 30 s without these)
def test_the_template_trains_and_its_frozen_filters_stay_exact():
    project = load_template("handcrafted_filters")
    project.training.epochs = 6  # of the template's 25: about a second on a CPU
    ids = {n.name: nid for nid, n in project.graph.nodes.items()}
    trainer = Trainer(project)
    events, start = [], None
    for ev in trainer.events():
        if isinstance(ev, Started):
            start = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        events.append(ev)
    assert isinstance(events[-1], Finished), events[-1]
    end = trainer.model.state_dict()
    attrs = trainer.code.attrs
    for name in ("sobel_x", "sobel_y"):
        weight = end[f"{attrs[ids[name]]}.weight"]
        assert weight.shape == (1, 1, 3, 3)
        np.testing.assert_array_equal(weight[0, 0].numpy(), textbook(name, 3))
        assert torch.equal(start[f"{attrs[ids[name]]}.weight"], weight)
    assert not torch.equal(start[f"{attrs[ids['conv1']]}.weight"], end[f"{attrs[ids['conv1']]}.weight"])
    losses = [e.train_loss for e in events if isinstance(e, EpochDone)]
    assert len(losses) == 6 and losses[-1] < 0.9 * losses[0], losses

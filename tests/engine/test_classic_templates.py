"""The full-size templates (AlexNet to U-Net) against their published figures.

Each is checked three ways: the analysis's counts against the published ones, the compiled model's
own parameters (``numel``) and PyTorch's flop counter against the analysis, and each template's
receptive field against a gradient-measured one.

Sources of the published figures:

* **Parameters**: torchvision's model metadata (``num_params`` of the ``IMAGENET1K_V1`` weights in
  ``torchvision/models/*.py``, shown in its model documentation), for 1000 classes; GoogLeNet's without
  the auxiliary heads (``aux_logits=False``).
* **MACs**: torchvision's ``_ops`` metadata (shown as "GFLOPS" in the same documentation, computed with
  PyTorch's dispatch-based flop counter in pytorch/vision#6936), at 224×224. Despite the name they count
  multiply-adds, one per multiply-accumulate: ResNet-50's 4.089 G is exactly the multiply-accumulates of
  its convolutions and its fc layer, which is what the analysis counts (2 FLOPs each would be 8.2 G).
  Given to three or four significant figures, so the test allows 1 %.
* **U-Net**: the paper gives no count. 31,030,658 is what its Fig. 1 layout (Ronneberger, Fischer and
  Brox 2015: 64 filters first, valid 3×3 convolutions with biases, 2×2 up-convolutions, 2 classes)
  adds up to, counted layer by layer below; independent Keras replicas of that layout report the same
  total. (31,031,685, often quoted, is a different network: 'same' padding, upsampling followed by
  2×2 convolutions, an extra 3×3 convolution and one output channel.)
* **Receptive fields**: 195 (AlexNet), 212 (VGG16) and 491 (MobileNetV2) as tabulated by Araujo, Norris
  and Sim, "Computing receptive fields of convolutional neural networks", Distill 2019; 435 and 427 for
  torchvision's ResNet-18 and ResNet-50 (v1.5: TF-slim's resnet_v1_50, which subsamples at the end of
  each stage, has 483). Every field is also measured.

The templates are made of units (ResNet's blocks and stages, GoogLeNet's Inception modules ...); the
figures are checked on the network as shipped and, block by block, on its flattened copy
(:func:`engine.units.flatten`: every unit opened, inner blocks named by their path, ``layer4/block1/relu``),
where the receptive fields are measured.

The measurement (``tests/engine/test_receptive_field.py`` explains it) needs each measured window clear
of the image border, so fields of hundreds or thousands of pixels need large inputs. A field depends on
kernels, strides, paddings and wiring only, so it is measured on a *narrowed* copy (at most 2 maps per
layer, so every convolution ungrouped) on a tall input a few dozen pixels wide (rows are measured; the
analysis is asserted to give the narrowed copy the template's own field). Max pools are measured as
average pools, ReLU6 as ReLU (activations grow along residual chains and would otherwise saturate at 6).
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from engine.analysis import analyze
from engine.compile import compile_graph
from engine.datacheck import check_against_data, require_data_fit
from engine.graph import Graph
from engine.probes import Tap
from engine.probes.runner import ProbeRunner
from engine.templates import FULL_SIZE, load_template
from engine.units import SEP, flatten, output_end
from tests.engine.helpers import torch_counts
from tests.engine.test_receptive_field import _positive, field_of

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

#: name -> (trainable parameters, G multiply-accumulates at 224×224), torchvision's (see the docstring)
PUBLISHED = {
    "alexnet": (61_100_840, 0.714),
    "vgg16": (138_357_544, 15.47),
    "googlenet": (6_624_904, 1.498),
    "resnet18": (11_689_512, 1.814),
    "resnet50": (25_557_032, 4.089),
    "mobilenet_v2": (3_504_872, 0.301),
    "densenet121": (7_978_856, 2.834),
    "efficientnet_b0": (5_288_548, 0.386),
}
IMAGENET = [name for name in FULL_SIZE if name in PUBLISHED]

#: receptive fields of the literature (see the docstring), all with a jump of 32 pixels
LITERATURE_FIELDS = {"alexnet": 195, "vgg16": 212, "resnet18": 435, "resnet50": 427, "mobilenet_v2": 491}


def test_the_full_size_templates_are_the_ones_with_published_figures():
    assert set(FULL_SIZE) == set(PUBLISHED) | {"unet_paper"}


def _meta_model(graph: Graph):
    """The compiled model with its tensors on PyTorch's meta device: shapes without memory or time."""
    analysis = analyze(graph)
    with torch.device("meta"):
        compiled = compile_graph(graph, analysis=analysis)
    return compiled, analysis


# ---------------------------------------------------------------------- parameters and MACs
@pytest.mark.parametrize("name", IMAGENET)
def test_parameters_are_the_published_ones(name):
    project = load_template(name)
    compiled, analysis = _meta_model(project.graph)
    params, _ = PUBLISHED[name]
    assert analysis.total_trainable == params
    assert torch_counts(compiled.module) == (analysis.total_trainable, analysis.total_frozen)
    (inp,) = compiled.code.input_ids
    assert analysis.nodes[inp].out_shape == (3, 224, 224)
    assert analysis.nodes[compiled.code.output_ids[0]].out_shape == (1000,)


@pytest.mark.slow  # NOTE: tests/engine stays under 30 s without the slow ones; the full suite (CI) runs them
@pytest.mark.parametrize("name", IMAGENET)
def test_macs_are_within_one_percent_of_the_published_ones_and_pytorch_s_count(name):
    project = load_template(name)
    compiled, analysis = _meta_model(project.graph)
    _, gmacs = PUBLISHED[name]
    assert analysis.total_macs == pytest.approx(gmacs * 1e9, rel=0.01)
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        compiled.module.eval()(torch.zeros(1, *compiled.code.input_shapes[0]))
    # PyTorch counts 2 FLOPs per multiply-accumulate of a convolution or a matrix product
    assert counter.get_total_flops() == 2 * analysis.total_macs


@pytest.mark.parametrize("name", IMAGENET)
def test_each_card_states_the_published_figures(name):
    project = load_template(name)
    params, gmacs = PUBLISHED[name]
    assert f"{params:,} parameters" in project.description
    shown = project.description.split(" G MACs at 224×224")[0].rsplit(" ", 1)[1]  # "4.1"
    assert shown == f"{gmacs:.{len(shown.split('.')[1])}f}"  # the published figure, rounded as shown


# ---------------------------------------------------------------------- code that reads like torchvision's
#: name -> (bottleneck blocks?, blocks per stage): torchvision's resnet18 and resnet50
RESNETS = {"resnet18": (False, (2, 2, 2, 2)), "resnet50": (True, (3, 4, 6, 3))}


def _torchvision_resnet_state(bottleneck: bool, depths: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """torchvision's ResNet state dict, key and shape in its order, written out from the architecture."""

    def bn(prefix: str, n: int) -> list:
        return [(f"{prefix}.{k}", (n,)) for k in ("weight", "bias", "running_mean", "running_var")] + [
            (f"{prefix}.num_batches_tracked", ())]

    state, inplanes, expansion = [("conv1.weight", (64, 3, 7, 7)), *bn("bn1", 64)], 64, 4 if bottleneck else 1
    for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths), start=1):
        for b in range(depth):
            at, stride = f"layer{stage}.{b}.", 2 if stage > 1 and b == 0 else 1
            if bottleneck:
                convs = [(planes, inplanes, 1), (planes, planes, 3), (4 * planes, planes, 1)]
            else:
                convs = [(planes, inplanes, 3), (planes, planes, 3)]
            for k, (cout, cin, size) in enumerate(convs, start=1):
                state += [(f"{at}conv{k}.weight", (cout, cin, size, size)), *bn(f"{at}bn{k}", cout)]
            if stride != 1 or inplanes != planes * expansion:
                state += [(f"{at}downsample.0.weight", (planes * expansion, inplanes, 1, 1)),
                          *bn(f"{at}downsample.1", planes * expansion)]
            inplanes = planes * expansion
    return state + [("fc.weight", (1000, inplanes)), ("fc.bias", (1000,))]


def _as_torchvision_key(key: str) -> str:
    """Our key in torchvision's spelling: ``layer2.block0.downsample_bn.weight`` -> ``layer2.0.downsample.1.weight``."""
    key = re.sub(r"\.block(\d+)\.", r".\1.", key)
    return re.sub(r"\.downsample(_bn)?\.", lambda m: ".downsample.1." if m.group(1) else ".downsample.0.", key)


@pytest.mark.parametrize("name", sorted(RESNETS))
def test_resnet_state_dict_follows_the_nesting_and_is_torchvision_s(name):
    """The compiled model's state dict nests as the units do (``layer1.block0.conv1.weight``) and, respelled,
    is torchvision's, key for key, shape for shape and in its order; its parameters are the published count."""
    compiled, _ = _meta_model(load_template(name).graph)
    state = compiled.module.state_dict()
    assert "layer1.block0.conv1.weight" in state and "layer2.block0.downsample.weight" in state
    assert "layer4.block1.bn2.running_var" in state
    ours = [(_as_torchvision_key(k), tuple(v.shape)) for k, v in state.items()]
    assert ours == _torchvision_resnet_state(*RESNETS[name])
    assert sum(p.numel() for p in compiled.module.parameters()) == PUBLISHED[name][0]


def test_resnet18_source_has_one_class_per_block_definition():
    """Like torchvision's BasicBlock: each distinct block (a downsampling block differs) is one class, used
    by every block like it; each stage is a class of its blocks; the network's class uses the stages."""
    project = load_template("resnet18")
    compiled, _ = _meta_model(project.graph)
    source = compiled.code.source
    classes = re.findall(r"^class (\w+)\(nn\.Module\):", source, re.MULTILINE)
    blocks = ["BasicBlock64"] + [f"BasicBlock{w}{down}" for w in (128, 256, 512) for down in ("Down", "")]
    assert sorted(classes) == sorted(blocks + [f"Stage{k}" for k in (1, 2, 3, 4)] + ["Net"]) and classes[-1] == "Net"
    assert len(classes) == len(project.graph.units) + 1
    assert source.count("= BasicBlock64()") == 2
    for w in (128, 256, 512):
        assert source.count(f"self.block0 = BasicBlock{w}Down()") == source.count(f"self.block1 = BasicBlock{w}()") == 1
    assert [f"self.layer{k} = Stage{k}()" in source for k in (1, 2, 3, 4)] == [True] * 4
    (down,) = re.findall(r"class BasicBlock128Down\(nn\.Module\):.*?(?=\n\n\n)", source, re.DOTALL)
    assert "self.downsample = nn.Conv2d(64, 128, kernel_size=1, stride=2, bias=False)" in down
    assert sum(p.numel() for p in compiled.module.parameters()) == 11_689_512


def _unet_paper_count() -> int:
    """The paper's layout, layer by layer: two valid 3×3 convolutions per level, 2×2 up-convolutions."""

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + cout  # weights and biases

    widths = (64, 128, 256, 512, 1024)
    total, cin = 0, 1
    for w in widths:  # contracting path and bottom
        total += conv(cin, w, 3) + conv(w, w, 3)
        cin = w
    for w in reversed(widths[:-1]):  # expanding path: up-convolution, then two convolutions on the concatenation
        total += conv(cin, w, 2) + conv(2 * w, w, 3) + conv(w, w, 3)
        cin = w
    return total + conv(64, 2, 1)


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_unet_of_the_paper_maps_572_to_388_with_its_parameter_count():
    project = load_template("unet_paper")
    compiled, analysis = _meta_model(project.graph)
    (inp,) = compiled.code.input_ids
    (head,) = compiled.code.output_ids
    assert analysis.nodes[inp].out_shape == (1, 572, 572)
    assert analysis.nodes[head].out_shape == (2, 388, 388)
    assert _unet_paper_count() == 31_030_658 == analysis.total_trainable
    assert torch_counts(compiled.module) == (31_030_658, 0)
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        out = compiled.module(torch.zeros(1, 1, 572, 572))
    assert tuple(out.shape) == (1, 2, 388, 388)
    assert counter.get_total_flops() == 2 * analysis.total_macs
    assert f"31,030,658 parameters, {analysis.total_macs / 1e9:.0f} G MACs" in project.description
    flat = flatten(project.graph)
    flat_analysis = analyze(flat)
    sizes = {n.name: flat_analysis.nodes[nid].out_shape for nid, n in flat.nodes.items()}
    # the paper's Fig. 1: each level's maps after its two convolutions, and the cropped skips
    assert [sizes[f"enc{i}/relu2"][1] for i in (1, 2, 3, 4)] == [568, 280, 136, 64]
    assert sizes["mid/relu2"] == (1024, 28, 28)
    assert [sizes[f"dec{i}/crop"][1:] for i in (4, 3, 2, 1)] == [(56, 56), (104, 104), (200, 200), (392, 392)]
    assert [sizes[f"dec{i}/relu2"][1] for i in (4, 3, 2, 1)] == [52, 100, 196, 388]
    # each level, as the canvas shows it, is one row whose shape is its last block's
    top = {n.name: analysis.nodes[nid].out_shape for nid, n in project.graph.nodes.items()}
    assert [top[f"enc{i}"] for i in (1, 2, 3, 4)] == [sizes[f"enc{i}/relu2"] for i in (1, 2, 3, 4)]


# ---------------------------------------------------------------------- receptive fields
def _last_spatial_block(graph: Graph) -> str:
    a = analyze(graph)
    return [nid for nid in a.order if a.nodes[nid].rf is not None and graph.nodes[nid].spec.role != "head"][-1]


@pytest.mark.parametrize("name", sorted(LITERATURE_FIELDS))
def test_receptive_fields_are_the_literature_s(name):
    """On the flattened network block by block, and on the shipped one, whose last unit reports its output's field."""
    graph = load_template(name).graph
    flat = flatten(graph)
    rf = analyze(flat).nodes[_last_spatial_block(flat)].rf
    assert (rf.size, rf.jump) == (LITERATURE_FIELDS[name], 32)
    assert analyze(graph).nodes[_last_spatial_block(graph)].rf == rf


#: the templates made of units: all but AlexNet, whose 22 blocks have no stages worth a unit
WITH_UNITS = [name for name in FULL_SIZE if name != "alexnet"]


@pytest.mark.parametrize("name", WITH_UNITS)
def test_the_shipped_network_analyses_as_its_flattened_copy(name):
    """Each block of the template as shipped (a unit is one block) has the shape, counts and field of the
    flattened blocks it stands for: the figures checked on the flattened copy are the shipped network's."""
    graph = load_template(name).graph
    flat = flatten(graph)
    assert flat is not graph, f"{name} has no units"
    shipped, opened = analyze(graph), analyze(flat)
    assert (shipped.total_trainable, shipped.total_frozen, shipped.total_macs, shipped.total_memory) == (
        opened.total_trainable, opened.total_frozen, opened.total_macs, opened.total_memory)
    for nid, node in graph.nodes.items():
        row = shipped.nodes[nid]
        members = [nid] if node.unit is None else [p for p in flat.nodes if p.startswith(nid + SEP)]
        last, _ = output_end(graph, "", nid, 0) if node.spec.outputs else (nid, 0)
        assert row.out_shape == opened.nodes[last].out_shape and row.rf == opened.nodes[last].rf, node.name
        assert row.trainable == sum(opened.nodes[m].trainable for m in members), node.name
        assert row.macs == sum(opened.nodes[m].macs for m in members), node.name


def narrowed(name: str) -> Graph:
    """The template, flattened, with at most 2 maps (and 2 units) per layer and no grouped convolutions."""
    graph = flatten(load_template(name).graph)
    for nid, node in list(graph.nodes.items()):
        changes = {k: min(node.params[k], 2) for k in ("filters", "units") if k in node.params}
        if node.params.get("groups", 1) != 1:
            changes["groups"] = 1
        if changes:
            graph.set_params(nid, changes)
    return graph


def _resize(graph: Graph, height: int, width: int) -> None:
    (inp,) = [nid for nid, n in graph.nodes.items() if n.spec.role == "input"]
    graph.set_params(inp, {"height": height, "width": width})


def _measurable(module: nn.Module) -> nn.Module:
    module = _positive(module)
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(module, name, nn.ReLU())
    return module


def measure_rows(graph: Graph, block: str, rows: range) -> list[tuple[int, int] | None]:
    """The first and last input row each output row of ``block`` reaches (None: none), one sample per row."""
    analysis = analyze(graph)
    assert not analysis.errors(), analysis.errors()
    compiled = compile_graph(graph, analysis=analysis)
    model = _measurable(compiled.module)
    (inp,) = compiled.code.input_ids
    x = torch.ones(len(rows), *analysis.nodes[inp].out_shape, dtype=torch.float64, requires_grad=True)
    out = Tap(graph, compiled.code, analysis).run(model, x, {block})[block]
    sum(out[k, :, r, :].sum() for k, r in enumerate(rows)).backward()
    spans = []
    for grad in x.grad:
        hit = grad.abs().sum(dim=(0, 2)).nonzero().flatten().tolist()
        spans.append((hit[0], hit[-1]) if hit else None)
    return spans


def _clear_rows(graph: Graph, block: str, height: int, width: int) -> range | None:
    """The middle rows of ``block`` to measure at this input size, if their windows keep off the border."""
    _resize(graph, height, width)
    info = analyze(graph).nodes.get(block)
    if info is None or info.rf is None:
        return None
    n = max(2, info.rf.windows.period)
    middle = info.out_shape[1] // 2
    rows = range(middle - n, middle + n)
    spans = [info.rf.windows.span(i) for i in rows]
    if rows.start < 0 or rows.stop > info.out_shape[1] or not all(spans):
        return None
    return rows if min(s[0] for s in spans) > 0 and max(s[1] for s in spans) < height - 1 else None


def _measured_field(name: str) -> None:
    graph = narrowed(name)
    template = flatten(load_template(name).graph)
    block = _last_spatial_block(template)
    assert analyze(graph).nodes[block].rf.windows == analyze(template).nodes[block].rf.windows
    # NOTE: an adaptive pool's windows differ between axes on a non-square input: those are measured square
    square = any(n.type == "AdaptiveAvgPool2d" for n in graph.nodes.values())
    (inp,) = [nid for nid, n in graph.nodes.items() if n.spec.role == "input"]
    side = graph.nodes[inp].params["height"]
    width = side if square else 188 if name == "unet_paper" else 32  # the U-Net needs 188 to reach its bottom
    for height in range(side, 12 * side, 16):  # DenseNet-121's field spans 2071 pixels
        rows = _clear_rows(graph, block, height, height if square else width)
        if rows is not None:
            break
    else:
        pytest.fail(f"{name}: no input up to 12× its size leaves '{graph.nodes[block].name}' an unclipped window")
    rf = analyze(graph).nodes[block].rf
    spans = measure_rows(graph, block, rows)
    assert spans == [rf.windows.span(i) for i in rows]
    size, jump, offset = field_of(spans, rows)
    assert (rf.size, rf.jump, rf.offset) == (size, pytest.approx(jump, abs=1e-9), pytest.approx(offset, abs=1e-9))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in FULL_SIZE if n != "efficientnet_b0"])
def test_receptive_field_is_the_measured_one(name):
    _measured_field(name)


@pytest.mark.slow
def test_efficientnet_sees_the_whole_image_through_its_squeeze_and_excitation_gates():
    """Each gate averages a whole map, so every output pixel after the first one sees the whole image:
    the field stops moving (jump 0) and holds every pixel of the input."""
    graph = narrowed("efficientnet_b0")
    block = _last_spatial_block(graph)
    rf = analyze(graph).nodes[block].rf
    assert rf.jump == 0 and rf.windows.period == 1
    lo, hi = rf.windows.span(0)
    assert lo < 0 and hi > 223  # the first gate pools a map whose border pixels read the padding
    rows = range(analyze(graph).nodes[block].out_shape[1])
    assert measure_rows(graph, block, rows) == [(0, 223)] * len(rows)


# ---------------------------------------------------------------------- probes and data
@pytest.mark.slow  # NOTE: tests/engine stays under 30 s without the slow ones; the full suite (CI) runs them
@pytest.mark.parametrize("name", FULL_SIZE)
def test_probes_run_on_the_full_size_layouts(name):
    """Tap reproduces the model, and the live views run, on a narrowed copy (the same blocks and wiring) of a
    small input: 64×64 (AlexNet's smallest is 63), 188×188 for the U-Net (the smallest its valid convolutions take)."""
    project = load_template(name)
    graph = narrowed(name)
    side = 188 if name == "unet_paper" else 64
    _resize(graph, side, side)
    analysis = analyze(graph)
    compiled = compile_graph(graph, analysis=analysis)
    model = compiled.module
    torch.manual_seed(0)
    x = torch.randn(2, *compiled.code.input_shapes[0])
    with torch.no_grad():
        ref = model.eval()(x)
        got = Tap(graph, compiled.code, analysis).run(model, x, compiled.code.output_ids)
    assert torch.equal(got[compiled.code.output_ids[0]], ref)
    out = ProbeRunner(graph, compiled.code, x, config=project.probes).run(model.train(), step=1)
    assert out["problems"] == {}, out["problems"]
    assert "activations" in out and "gradients" in out


@pytest.mark.parametrize("name", ["alexnet", "efficientnet_b0"])
def test_pointed_at_a_folder_the_template_offers_to_fit_its_classes(name, tmp_path):
    """With no path nothing is checked; with a folder of 2 classes the 1000 class scores are a warning
    whose one-click fix sets the last Dense layer to 2 units, after which nothing is wrong."""
    from PIL import Image

    project = load_template(name)
    assert project.data.path is None and check_against_data(project, analyze(project.graph)) == []
    for k, label in enumerate(("cat", "dog")):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.new("RGB", (40, 40), color=(80 * k, 10 * i, 0)).save(tmp_path / label / f"{i}.png")
    project.data.path = str(tmp_path)
    (problem,) = check_against_data(project, analyze(project.graph))
    assert (problem.severity, problem.rule) == ("warning", "class_count")
    assert "1000 class scores" in problem.message and "2 classes" in problem.message
    ((block, changes),) = problem.fix.set_params
    project.graph.set_params(block, dict(changes))
    assert project.graph.nodes[block].type == "Dense" and project.graph.nodes[block].params["units"] == 2
    assert check_against_data(project, analyze(project.graph)) == []
    require_data_fit(project)


def test_every_full_size_template_sorts_after_the_small_ones():
    from engine.templates import list_templates

    names = [t.name for t in list_templates()]
    assert names[-len(FULL_SIZE):] == list(FULL_SIZE)

"""A segmentation output smaller than its masks: the U-Net paper's valid convolutions.

The masks are cut to their centre, the pixels the output predicts (``crop_to_output``), for the loss,
the metrics, the Insight views and the training package's train.py; the data check says so as an
``info`` note, and refuses maps that are larger or sit at an odd margin. Every figure is checked
against numpy's own computation on the slices.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.analysis import ERROR, INFO, analyze
from engine.cli import main as cli_main
from engine.compile import compile_graph
from engine.data import Augmenter, Dataset, Normalizer, load_dataset, split_dataset
from engine.datacheck import DataMismatchError, analyze_project, check_against_data, crop_margins, require_data_fit
from engine.graph import Graph
from engine.package import export_package
from engine.probes import ProbeRunner
from engine.project import Project, save_project
from engine.templates import load_template
from engine.training.objectives import MetricSum, crop_to_output, head_loss, sample_losses
from engine.training.runs import read_run
from tests.engine.helpers import chain, image_input, merge

SEG = "SegmentationOutput"
TIMEOUT = 600  # a safety net for a hung child, not a measure of speed


def valid(filters: int, kernel: int = 3) -> tuple[str, dict]:
    """A 'valid' convolution (no padding): kernel − 1 pixels fewer in height and width."""
    return "Conv2d", {"filters": filters, "kernel_size": kernel, "padding": 0}


def tiny_unet() -> Graph:
    """36×36 in, 20×20 out: two valid convolutions a level, a 2×2 pool, an up-convolution, crop and concatenate."""
    g = Graph()
    x = image_input(g, 1, 36)
    skip = chain(g, x, valid(8), "ReLU", valid(8), "ReLU")[-1]  # 32×32
    up = chain(g, skip, ("MaxPool2d", {"kernel_size": 2, "stride": 2}), valid(16), "ReLU", valid(16), "ReLU",
               ("ConvTranspose2d", {"filters": 8, "kernel_size": 2, "stride": 2}))[-1]  # 16 -> 12 -> 24×24
    joined = merge(g, "Concatenate", [merge(g, "CropToMatch", [skip, up]), up])
    chain(g, joined, valid(8), "ReLU", valid(8), "ReLU", ("Conv2d", {"filters": 4, "kernel_size": 1}), SEG)
    return g


def shapes_project(graph: Graph, epochs: int = 3, samples: int = 120) -> Project:
    project = Project(name="Tiny U-Net", graph=graph)
    project.data.dataset, project.data.task, project.data.samples = "shapes", "segmentation", samples
    project.training.epochs, project.training.batch_size, project.training.lr = epochs, 16, 0.01
    project.training.device = "cpu"
    return project


# ---------------------------------------------------------------------- numpy's own computation
def centre(array: np.ndarray, h: int, w: int) -> np.ndarray:
    """The centre h×w of the last two axes, by explicit row and column indices."""
    H, W = array.shape[-2:]
    rows = np.arange(h) + (H - h) // 2
    cols = np.arange(w) + (W - w) // 2
    return array[..., rows[:, None], cols[None, :]]


def numpy_cross_entropy(logits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per-pixel cross-entropy (N, h, w) of logits (N, C, h, w) against class indices (N, h, w)."""
    z = logits.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -np.take_along_axis(log_p, masks[:, None], 1)[:, 0]


def numpy_pixel_scores(logits: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """Pixel accuracy and mean IoU over the classes that occur in truth or prediction."""
    pred = logits.argmax(1)
    ious = []
    for c in range(logits.shape[1]):
        union = np.sum((pred == c) | (masks == c))
        if union:
            ious.append(np.sum((pred == c) & (masks == c)) / union)
    return float(np.mean(pred == masks)), float(np.mean(ious))


# ---------------------------------------------------------------------- the crop
CROPS = [
    ((16, 16), (16, 16)), ((16, 16), (14, 14)), ((20, 20), (16, 16)), ((572, 572), (388, 388)),
    ((36, 28), (20, 16)), ((9, 30), (9, 2)), ((7, 5), (1, 1)), ((40, 12), (36, 12)),
]


@pytest.mark.parametrize(("have", "want"), CROPS)
def test_the_crop_is_the_centre_numpy_slices(have, want):
    gen = np.random.default_rng(sum(have) + sum(want))
    masks = gen.integers(0, 5, (2, *have))
    top, left = crop_margins(have, want)
    assert (2 * top, 2 * left) == (have[0] - want[0], have[1] - want[1])
    expected = centre(masks, *want)
    np.testing.assert_array_equal(crop_to_output(masks, want), expected)
    got = crop_to_output(torch.from_numpy(masks), torch.Size(want))  # a tensor and an output's shape[-2:]
    assert isinstance(got, torch.Tensor) and got.shape == (2, *want)
    np.testing.assert_array_equal(got.numpy(), expected)
    # Output pixel (i, j) predicts mask pixel (i + top, j + left), as the U-Net paper has it.
    i, j = want[0] - 1, want[1] // 2
    assert crop_to_output(masks, want)[1, i, j] == masks[1, i + top, j + left]


@pytest.mark.parametrize(("have", "want"), [((16, 16), (15, 15)), ((16, 16), (16, 13)), ((36, 36), (21, 20)),
                                            ((16, 16), (18, 18)), ((16, 16), (14, 18)), ((8, 8), (9, 8))])
def test_an_odd_margin_or_a_larger_output_is_refused(have, want):
    assert crop_margins(have, want) is None
    with pytest.raises(ValueError, match=f"{want[0]}×{want[1]} output maps do not fit {have[0]}×{have[1]} masks"):
        crop_to_output(np.zeros((1, *have), np.int64), want)


# ---------------------------------------------------------------------- loss and metrics on cropped masks
@pytest.mark.parametrize(("have", "want", "classes"), [((16, 16), (16, 16), 3), ((20, 20), (16, 16), 4),
                                                       ((24, 18), (10, 12), 2), ((13, 13), (1, 1), 5)])
def test_loss_and_metrics_on_cropped_masks_are_numpys_on_the_slices(have, want, classes):
    gen = torch.Generator().manual_seed(classes)
    logits = torch.randn(10, classes, *want, generator=gen)
    masks = torch.randint(0, classes, (10, *have), generator=gen)
    sliced = centre(masks.numpy(), *want)
    per_pixel = numpy_cross_entropy(logits.numpy(), sliced)
    assert float(head_loss(SEG, logits, masks)) == pytest.approx(per_pixel.mean(), rel=1e-5)
    np.testing.assert_allclose(sample_losses(SEG, logits, masks).numpy(), per_pixel.mean((1, 2)), rtol=1e-5)
    sums = MetricSum(SEG)
    for part in range(0, 10, 4):  # several batches, as validation adds them
        sums.update(logits[part : part + 4], masks[part : part + 4])
    accuracy, iou = numpy_pixel_scores(logits.numpy(), sliced)
    assert sums.result() == {"pixel_accuracy": pytest.approx(accuracy, abs=1e-12), "iou": pytest.approx(iou, abs=1e-12)}


# ---------------------------------------------------------------------- the data check
def one_conv(side: tuple[int, int], kernel: int, padding: int = 0, pool: bool = False) -> Project:
    """Input 1×H×W [-> MaxPool 2×2] -> Conv2d(4 filters) 'last' -> Segmentation output, on the shapes masks."""
    g = Graph()
    src = image_input(g, 1, *side)
    if pool:
        src = chain(g, src, ("MaxPool2d", {"kernel_size": 2, "stride": 2}))[-1]
    conv = g.add_node("Conv2d", {"filters": 4, "kernel_size": kernel, "padding": padding}, name="last").id
    g.connect(src, 0, conv, 0)
    chain(g, conv, SEG)
    return shapes_project(g, samples=40)


@pytest.mark.parametrize(("side", "kernel", "pool", "maps", "margins"), [
    ((16, 16), 3, False, (14, 14), "1 pixel off each side"),
    ((16, 16), 5, False, (12, 12), "2 pixels off each side"),
    ((20, 14), 9, False, (12, 6), "4 pixels off each side"),
    ((24, 16), 1, True, (12, 8), "6 pixels off the top and bottom, 4 off the left and right"),
])
def test_an_even_margin_is_an_info_note_and_trains(side, kernel, pool, maps, margins):
    project = one_conv(side, kernel, pool=pool)
    (note,) = check_against_data(project, analyze(project.graph))
    h, w = maps
    assert note.severity == INFO and note.rule == "mask_crop"
    assert note.message == (f"'segmentation' gets {h}×{w} class maps of {side[0]}×{side[1]} masks: the masks are "
                            f"cropped to their centre {h}×{w} ({margins}), as in the U-Net paper")
    require_data_fit(project)  # an info note does not stop training


@pytest.mark.parametrize(("side", "kernel", "padding", "pool", "words"), [
    ((16, 16), 2, 0, False, "the height differs by 1 pixel and the width differs by 1 pixel, an odd number"),
    ((16, 16), 4, 0, False, "the height differs by 3 pixels and the width differs by 3 pixels, an odd number"),
    ((22, 16), 1, 0, True, "the height differs by 11 pixels, an odd number"),
    ((16, 16), 3, 2, False, "the maps must not be larger than the masks"),
    ((16, 16), 1, 1, False, "the maps must not be larger than the masks"),
])
def test_a_larger_output_or_an_odd_margin_is_an_error(side, kernel, padding, pool, words):
    project = one_conv(side, kernel, padding, pool)
    (problem,) = check_against_data(project, analyze(project.graph))
    maps = analyze(project.graph).nodes[project.graph.edges[-1].src].out_shape[1:]
    assert problem.severity == ERROR and problem.rule == "mask_size"
    assert problem.message.startswith(f"'last' gives {maps[0]}×{maps[1]} class maps but the masks of the shapes "
                                      f"data set are {side[0]}×{side[1]}: {words}")
    with pytest.raises(DataMismatchError, match="class maps but the masks"):
        require_data_fit(project)


def test_the_papers_unet_is_clean_on_the_shapes_masks_at_572():
    """Analysis only: the full network is 150 GMACs an image, too much to train on a CPU in a test."""
    project = load_template("unet_paper")
    project.data.dataset, project.data.image_size = "shapes", 572
    found = [p for ps in analyze_project(project).problems.values() for p in ps]
    (classes,) = [p for p in found if p.severity == ERROR]  # the paper's 2 classes; the shapes have 4
    assert classes.rule == "mask_classes"
    project.graph.set_params(*classes.fix.set_params[0][:1], dict(classes.fix.set_params[0][1]))
    found = [p for ps in analyze_project(project).problems.values() for p in ps]
    assert all(p.severity != ERROR for p in found)
    crops = {p.message for p in found if p.rule == "mask_crop"}
    assert crops == {"'output' gets 388×388 class maps of 572×572 masks: the masks are cropped to their centre "
                     "388×388 (92 pixels off each side), as in the U-Net paper"}
    require_data_fit(project)


# ---------------------------------------------------------------------- training
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_a_valid_convolution_unet_trains_from_the_command_line(tmp_path, capsys):
    save_project(shapes_project(tiny_unet()), tmp_path / "unet.json")
    out = tmp_path / "run"
    assert cli_main(["train", str(tmp_path / "unet.json"), "--device", "cpu", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    run = read_run(out)
    losses = [row["train_loss"] for row in run.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    figures = engine_figures(shapes_project(tiny_unet()), checkpoint, "val")
    assert run.history[-1]["val_loss"] == pytest.approx(figures["loss"], rel=1e-5)
    assert run.history[-1]["val_pixel_accuracy"] == pytest.approx(figures["pixel_accuracy"], abs=1e-9)
    assert run.history[-1]["val_iou"] == pytest.approx(figures["iou"], abs=1e-9)


def engine_figures(project: Project, checkpoint: dict, split: str) -> dict[str, float]:
    """Loss, pixel accuracy and IoU of a checkpoint on a split: the model's outputs, scored by numpy."""
    compiled = compile_graph(project.graph, project.name)
    model = compiled.module
    model.load_state_dict(checkpoint["model"])
    data = load_dataset(project.data, compiled.code.input_shapes[0])
    parts = dict(zip(("train", "val", "test"),
                     split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)))
    part = Normalizer.from_dict(checkpoint["normalizer"]).apply(parts[split])
    with torch.no_grad():
        logits = model.eval()(part.x).numpy()
    masks = centre(part.targets["mask"].numpy(), *logits.shape[-2:])
    accuracy, iou = numpy_pixel_scores(logits, masks)
    return {"loss": float(numpy_cross_entropy(logits, masks).mean()), "pixel_accuracy": accuracy, "iou": iou}


# ---------------------------------------------------------------------- Insight's mask views
@pytest.mark.parametrize("channels", [1, 3])
def test_insight_shows_the_cropped_masks_over_the_region_the_output_covers(channels):
    g = Graph()
    chain(g, image_input(g, channels, 12, 10), valid(3, kernel=5), SEG)  # 8×6 maps of 12×10 masks
    compiled = compile_graph(g)
    model = compiled.module.eval()
    gen = torch.Generator().manual_seed(channels)
    raw = torch.rand(6, channels, 12, 10, generator=gen)
    x = raw * 4 - 1  # what the network takes; raw is what a person sees
    masks = torch.randint(0, 3, (6, 12, 10), generator=gen)
    ds = Dataset(x, {"mask": masks}, None, "toy", mask_classes=["background", "a", "b"])
    runner = ProbeRunner(g, compiled.code, x[:3], config={"cam_method": "off", "gallery": 4}, display_x=raw[:3])
    out = runner.evaluate(model, ds)
    assert out["problems"] == {}
    with torch.no_grad():
        logits = model(x).numpy()
    np.testing.assert_array_equal(out["masks"], logits[:3].argmax(1))
    np.testing.assert_array_equal(out["true_masks"], centre(masks[:3].numpy(), 8, 6))
    shown = raw[:3].numpy().mean(1) if channels == 1 else raw[:3].numpy().transpose(0, 2, 3, 1)
    expected = centre(shown, 8, 6) if channels == 1 else centre(shown.transpose(0, 3, 1, 2), 8, 6).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out["probe_images"], expected, atol=1e-6)  # the images under the masks line up
    hardest = out["hardest"]
    per_sample = numpy_cross_entropy(logits, centre(masks.numpy(), 8, 6)).mean((1, 2))
    np.testing.assert_array_equal(hardest["indices"], np.argsort(-per_sample, kind="stable")[: len(hardest["indices"])])
    np.testing.assert_allclose(hardest["losses"], per_sample[hardest["indices"]], rtol=1e-5)
    assert hardest["images"].shape[1:3] == hardest["masks"].shape[1:] == (8, 6)


# ---------------------------------------------------------------------- the training package
@pytest.fixture(scope="module")
def unet_package(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unet") / "package"
    project = shapes_project(tiny_unet(), epochs=1)
    project.data.augment = {"flip": True, "shift": 0.1}
    export_package(project, folder)
    return folder


def load_script(folder):
    spec = importlib.util.spec_from_file_location(f"train_{abs(hash(folder))}", folder / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_package_crops_and_scores_as_numpy_does(unet_package):
    config = json.loads((unet_package / "config.json").read_text())
    assert config["head"]["type"] == SEG and config["head"]["classes"] == 4 and config["head"]["metric"] == "iou"
    script = load_script(unet_package)
    assert script.crop_margins((572, 572), (388, 388)) == (92, 92)
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(9, 4, 20, 20, generator=gen)
    masks = torch.randint(0, 4, (9, 36, 36), generator=gen)
    scores = script.Scores(SEG, torch.device("cpu"), classes=4)
    for part in range(0, 9, 4):
        o, t = logits[part : part + 4], masks[part : part + 4]
        scores.add(script.head_loss(SEG, o, t), o, t)
    loss, metrics = scores.result()
    sliced = centre(masks.numpy(), 20, 20)
    accuracy, iou = numpy_pixel_scores(logits.numpy(), sliced)
    assert loss == pytest.approx(float(numpy_cross_entropy(logits.numpy(), sliced).mean()), rel=1e-5)
    assert metrics == {"pixel_accuracy": pytest.approx(accuracy, abs=1e-12), "iou": pytest.approx(iou, abs=1e-12)}
    # A geometric augmentation moves the masks with their images, as the window's does.
    x = torch.rand(6, 1, 36, 36, generator=gen)
    for spec in ({"flip": True, "shift": 0.2}, {"rotation": 30.0, "scale": 0.2, "mixup": 0.4}):
        ours = script.Augment(spec)(x, torch.Generator().manual_seed(3), masks[:6])
        theirs = Augmenter(spec)(x, {"mask": masks[:6]}, torch.Generator().manual_seed(3))
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[2], theirs[1]["mask"])
        assert not torch.equal(ours[2], masks[:6])


@pytest.mark.slow
def test_the_package_trains_a_valid_convolution_unet(unet_package, tmp_path):
    folder = shutil.copytree(unet_package, tmp_path / "package")
    result = subprocess.run([sys.executable, "train.py", "--epochs", "1"], cwd=folder, capture_output=True, text=True,
                            timeout=TIMEOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    run = read_run(folder / "run")
    assert run.status == "finished" and [r["epoch"] for r in run.history] == [1]
    checkpoint = torch.load(folder / "run" / "last.pt", weights_only=True)
    project = shapes_project(tiny_unet(), epochs=1)
    figures = engine_figures(project, checkpoint, "test")
    assert run.summary["test_loss"] == pytest.approx(figures["loss"], rel=1e-5)
    assert run.summary["test"]["iou"] == pytest.approx(figures["iou"], abs=1e-9)
    assert run.summary["test"]["pixel_accuracy"] == pytest.approx(figures["pixel_accuracy"], abs=1e-9)
    assert result.stdout.strip().splitlines()[-1].startswith(f"test iou {figures['iou']:.4f}")

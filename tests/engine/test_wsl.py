"""Weakly supervised localization: boxes cut from class maps against a flood fill written here, the
shapes set's box convention, and the probe runner's boxes and IoU against a numpy computation."""

from collections import deque

import numpy as np
import pytest
import torch

from engine.compile import compile_graph
from engine.config import DataConfig, ProbeConfig, ProjectError
from engine.data import load_dataset, split_dataset
from engine.data.shapes import make_shapes
from engine.probes import ProbeError, ProbeRunner
from engine.probes.runner import ProbeSettings
from engine.probes.wsl import cam_box, cam_boxes, localization
from engine.probes.replay import replay
from engine.project import Project
from engine.training.events import InsightDone, ProbesDone
from engine.training.runs import read_run
from engine.training.trainer import Trainer
from tests.engine.helpers import gap_net


# ---------------------------------------------------------------------- an independent computation
def regions_by_flood_fill(inside: np.ndarray) -> list[list[tuple[int, int]]]:
    """The 4-connected regions of ``inside`` as pixel lists, in reading order of their first pixel."""
    h, w = inside.shape
    seen = np.zeros_like(inside, dtype=bool)
    found = []
    for y in range(h):
        for x in range(w):
            if not inside[y, x] or seen[y, x]:
                continue
            seen[y, x] = True
            todo, pixels = deque([(y, x)]), []
            while todo:
                cy, cx = todo.popleft()
                pixels.append((cy, cx))
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < h and 0 <= nx < w and inside[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        todo.append((ny, nx))
            found.append(pixels)
    return found


def expected_box(cam_map: np.ndarray, threshold: float) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The largest region's pixels (a mask) and its box in fractions, by flood fill."""
    inside = cam_map >= threshold * cam_map.max()
    regions = regions_by_flood_fill(inside)
    largest = max(regions, key=len)  # NOTE: max keeps the first of equal sizes, as cam_box promises
    mask = np.zeros_like(inside)
    ys, xs = zip(*largest)
    mask[list(ys), list(xs)] = True
    h, w = cam_map.shape
    x0, x1, y0, y1 = min(xs), max(xs) + 1, min(ys), max(ys) + 1
    return mask, (x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h)


def assert_box_is_tight(box, mask: np.ndarray) -> None:
    """The box, in pixels, holds every pixel of ``mask``, and each of its four edges touches one."""
    h, w = mask.shape
    x0, y0 = round(box[0] * w), round(box[1] * h)
    x1, y1 = x0 + round(box[2] * w), y0 + round(box[3] * h)
    inner = mask[y0:y1, x0:x1]
    assert inner.sum() == mask.sum()
    assert inner[0].any() and inner[-1].any() and inner[:, 0].any() and inner[:, -1].any()


def numpy_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = []
    for (ax, ay, aw, ah), (bx, by, bw, bh) in zip(np.asarray(a, np.float64), np.asarray(b, np.float64)):
        iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
        ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
        union = aw * ah + bw * bh - iw * ih
        out.append(iw * ih / union)
    return np.array(out)


def blob(h: int, w: int, cy: float, cx: float, sigma: float, peak: float = 1.0) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return peak * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))


# ---------------------------------------------------------------------- cam_box
MAPS = {
    "one blob": blob(16, 16, 6, 9, 2.5),
    "two blobs, the smaller one hotter": blob(20, 20, 4, 4, 1.0, 1.0) + blob(20, 20, 13, 13, 3.5, 0.7),
    "touching the border": blob(12, 18, 0, 17, 3.0),
    "not square": blob(10, 24, 5, 18, 2.0) + 0.3 * blob(10, 24, 5, 4, 2.0),
    # two squares meeting at one corner (two regions), and a bar at the left edge
    "corner-touching squares": (np.pad(np.kron(np.eye(2), np.ones((3, 3))), 1)
                                + np.pad(np.ones((2, 1)), ((5, 1), (0, 7)))),
}


@pytest.mark.parametrize("threshold", [0.1, 0.2, 0.5])
@pytest.mark.parametrize("name", list(MAPS))
def test_cam_box_is_the_largest_region_found_by_flood_fill(name, threshold):
    cam_map = MAPS[name]
    mask, expected = expected_box(cam_map, threshold)
    box = cam_box(cam_map, threshold)
    np.testing.assert_allclose(box, expected, atol=1e-12)
    assert_box_is_tight(box, mask)


def test_cam_box_over_random_maps():
    rng = np.random.default_rng(7)
    for _ in range(40):
        h, w = rng.integers(3, 20, 2)
        cam_map = rng.random((h, w)) ** 3
        threshold = float(rng.choice([0.1, 0.2, 0.5, 0.8]))
        mask, expected = expected_box(cam_map, threshold)
        box = cam_box(cam_map, threshold)
        np.testing.assert_allclose(box, expected, atol=1e-12)
        assert_box_is_tight(box, mask)


def test_the_larger_of_two_blobs_wins_over_the_hotter_one():
    x, y, w, _ = cam_box(MAPS["two blobs, the smaller one hotter"], 0.2)
    assert x > 0.3 and y > 0.3 and w > 0.4  # the blob round (13, 13), not the small hot one round (4, 4)


def test_a_map_touching_the_border_reaches_it():
    x, y, w, _ = cam_box(MAPS["touching the border"], 0.2)
    assert y == 0 and x + w == pytest.approx(1.0)


@pytest.mark.parametrize("value", [0.0, 0.4, 1.0])
def test_a_flat_map_is_the_whole_image(value):
    assert cam_box(np.full((7, 9), value), 0.2) == (0.0, 0.0, 1.0, 1.0)


def test_diagonal_neighbours_are_separate_regions():
    diagonal = np.eye(4)
    assert cam_box(diagonal, 0.5) == (0.0, 0.0, 0.25, 0.25)  # four one-pixel regions: the first wins


def test_a_shape_mask_gives_the_shapes_set_box():
    """A map that is the shape itself cuts exactly the shapes set's true box: the same convention."""
    ds = make_shapes(12, 0.0, 3, (1, 20, 28))
    masks, boxes = ds.targets["mask"].numpy(), ds.targets["box"].numpy()
    for m, b in zip(masks, boxes):
        np.testing.assert_allclose(cam_box((m > 0).astype(np.float32), 0.5), b, atol=1e-6)
    np.testing.assert_allclose(cam_boxes((masks > 0).astype(np.float32)), boxes, atol=1e-6)


def test_bad_maps_are_refused_with_the_reason():
    with pytest.raises(ProbeError, match="2-D"):
        cam_box(np.zeros((2, 3, 3)))
    with pytest.raises(ProbeError, match="2-D"):
        cam_box(np.zeros((0, 3)))
    with pytest.raises(ProbeError, match="not finite"):
        cam_box(np.array([[0.0, np.nan]]))


def test_localization_iou_against_numpy():
    rng = np.random.default_rng(1)
    maps = np.stack([blob(16, 16, *rng.uniform(2, 14, 2), rng.uniform(1, 4)) for _ in range(10)])
    truth = np.column_stack([rng.uniform(0, 0.5, (10, 2)), rng.uniform(0.1, 0.5, (10, 2))]).astype(np.float32)
    out = localization(maps, truth, 0.3)
    expected_boxes = np.array([expected_box(m, 0.3)[1] for m in maps])
    np.testing.assert_allclose(out["cam_boxes"], expected_boxes, atol=1e-6)
    np.testing.assert_allclose(out["iou"], numpy_iou(expected_boxes, truth), atol=1e-6)
    assert out["mean_iou"] == pytest.approx(numpy_iou(expected_boxes, truth).mean(), abs=1e-6)
    assert out["threshold"] == 0.3
    at_default = localization(maps[:1], truth[:1])
    assert at_default["threshold"] == 0.2
    np.testing.assert_allclose(at_default["iou"], numpy_iou([expected_box(maps[0], 0.2)[1]], truth[:1]), atol=1e-6)
    assert "iou" not in localization(maps, None)
    with pytest.raises(ProbeError, match="10 class maps but 3 true boxes"):
        localization(maps, truth[:3])


# ---------------------------------------------------------------------- the probe setting
def test_the_threshold_is_a_checked_probe_setting():
    assert ProbeSettings.from_config(ProbeConfig()).cam_box_threshold == 0.2
    chosen = ProbeConfig.from_dict({"cam_box_threshold": 0.5})
    assert ProbeSettings.from_config(chosen).cam_box_threshold == 0.5
    assert ProbeConfig.from_dict(chosen.to_dict()) == chosen and "cam_box_threshold" not in ProbeConfig().to_dict()
    for bad in (0, 1.5, "half"):
        expected = r"probes.cam_box_threshold \(the share of its peak .*\) must be a number above 0 and at most 1, not"
        with pytest.raises(ProjectError, match=expected):
            ProbeConfig.from_dict({"cam_box_threshold": bad})


# ---------------------------------------------------------------------- the probe runner
def shapes_runner(method: str, threshold: float = 0.2):
    g, _ = gap_net()
    torch.manual_seed(0)
    compiled = compile_graph(g)
    ds = load_dataset(DataConfig.from_dict({"dataset": "shapes", "samples": 30}), (3, 16, 16))
    config = {"cam_method": method, "cam_box_threshold": threshold, "probe_samples": 6, "histograms": False}
    return ProbeRunner(g, compiled.code, ds.x[:6], config=config), compiled.module, ds


@pytest.mark.parametrize("method, threshold", [("cam", 0.2), ("gradcam", 0.5)])
def test_the_runner_cuts_boxes_and_meets_the_true_ones_at_the_epoch_end(method, threshold):
    runner, model, ds = shapes_runner(method, threshold)
    first = runner.run(model, 1)
    loc = first["localization"]
    assert "true_boxes" not in loc  # no epoch has told the probe images' boxes yet
    np.testing.assert_allclose(loc["cam_boxes"], [expected_box(m, threshold)[1] for m in first["cam"]["maps"]],
                               atol=1e-6)
    runner.evaluate(model, ds)
    loc = runner.run(model, 2)["localization"]
    truth = ds.targets["box"][:6].numpy()
    np.testing.assert_array_equal(loc["true_boxes"], truth)
    np.testing.assert_allclose(loc["iou"], numpy_iou(loc["cam_boxes"], truth), atol=1e-6)
    assert loc["mean_iou"] == pytest.approx(numpy_iou(loc["cam_boxes"], truth).mean(), abs=1e-6)


def test_no_class_maps_no_boxes():
    runner, model, ds = shapes_runner("off")
    runner.evaluate(model, ds)
    assert "localization" not in runner.run(model, 1)


# NOTE: slow (a few seconds): a real training run of a small GAP network on the shapes set.
@pytest.mark.slow
def test_a_briefly_trained_classifier_localizes_through_the_trainer_and_again_from_its_run_folder(tmp_path):
    g, _ = gap_net()
    p = Project(name="wsl", graph=g, data=DataConfig.from_dict({"dataset": "shapes", "samples": 300}))
    p.training.epochs, p.training.lr = 3, 0.01
    p.probes.cam_method, p.probes.every_batches = "cam", 4
    p.training.device = "cpu"
    events = list(Trainer(p, out_dir=tmp_path / "run", probes=True, emit_interval=0).events())
    kinds = [type(e) for e in events]
    after = [e for e in events[kinds.index(InsightDone):] if isinstance(e, ProbesDone)]
    assert after, "no probe run after the first epoch"
    results = after[-1].results
    loc = results["localization"]
    _, val, _ = split_dataset(load_dataset(p.data, (3, 16, 16)), p.data.val_fraction, p.data.test_fraction, p.data.seed)
    n = len(results["cam"]["maps"])
    np.testing.assert_array_equal(loc["true_boxes"], val.targets["box"][:n].numpy())
    np.testing.assert_allclose(loc["cam_boxes"], [expected_box(m, 0.2)[1] for m in results["cam"]["maps"]],
                               atol=1e-6)
    np.testing.assert_allclose(loc["iou"], numpy_iou(loc["cam_boxes"], loc["true_boxes"]), atol=1e-6)
    assert 0.0 <= loc["mean_iou"] <= 1.0

    # a stored run's Class maps, computed again from its weights, come with the true boxes at once
    again = replay(read_run(tmp_path / "run").project, torch.load(tmp_path / "run" / "last.pt", weights_only=True))
    stored = again["probes"]["localization"]
    np.testing.assert_array_equal(stored["true_boxes"], loc["true_boxes"])
    np.testing.assert_allclose(stored["iou"], numpy_iou(stored["cam_boxes"], stored["true_boxes"]), atol=1e-6)

"""The augmentations the course names beyond the first eight: vflip, cutout and elastic deformation.

Each is checked against an independent computation (``torch.flip``, a numpy search for the erased
square, a coordinate ramp that reads back the displacement), for repeatability from the batch seed,
against the exported training package's own copy, and for its range.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from engine.config import DataConfig, ProjectError
from engine.data import Augmenter
from engine.data.base import DataError
from engine.package import TRAIN_SCRIPT


def _script():
    """train.py as a module, to check its augmenter against the engine's."""
    spec = importlib.util.spec_from_file_location("package_train_augment", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _disk(n: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """n masks (0/1, long) of one disk each, of random centre and radius, well inside the frame."""
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    cy = torch.rand(n, generator=gen) * h * 0.3 + h * 0.35
    cx = torch.rand(n, generator=gen) * w * 0.3 + w * 0.35
    r = torch.rand(n, generator=gen) * min(h, w) * 0.1 + min(h, w) * 0.15
    inside = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2 <= r[:, None, None] ** 2
    return inside.long()


def _bounding_box(picture: np.ndarray) -> np.ndarray:
    """(x, y, w, h) fractions of the pixels that are on in one (h, w) picture."""
    rows, cols = np.nonzero(picture)
    h, w = picture.shape
    return np.array([cols.min() / w, rows.min() / h, (cols.max() + 1 - cols.min()) / w,
                     (rows.max() + 1 - rows.min()) / h])


# ---------------------------------------------------------------------- vflip
@pytest.mark.parametrize("shape", [(16, 1, 8, 8), (12, 3, 12, 10), (9, 2, 7, 13)])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_vflip_mirrors_top_bottom_exactly_some_images_and_leaves_the_rest(shape, seed):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(100 + seed))
    masks = torch.randint(0, 4, (shape[0], *shape[2:]), generator=torch.Generator().manual_seed(seed))
    out, targets, mix = Augmenter({"vflip": True})(x, {"mask": masks}, torch.Generator().manual_seed(seed))
    flipped = [i for i in range(shape[0]) if torch.equal(out[i], torch.flip(x[i], [-2]))]
    kept = [i for i in range(shape[0]) if torch.equal(out[i], x[i])]
    assert sorted(flipped + kept) == list(range(shape[0])) and not set(flipped) & set(kept)
    assert flipped and kept  # with a fair coin per image, both happen in a batch this size
    for i in flipped:
        assert torch.equal(targets["mask"][i], torch.flip(masks[i], [-2]))
    for i in kept:
        assert torch.equal(targets["mask"][i], masks[i])
    assert mix is None


def test_vflip_moves_each_box_with_its_image():
    n, h, w = 12, 20, 16
    gen = torch.Generator().manual_seed(4)
    top, left = torch.randint(0, 10, (n,), generator=gen), torch.randint(0, 8, (n,), generator=gen)
    bh, bw = torch.randint(1, 10, (n,), generator=gen), torch.randint(1, 8, (n,), generator=gen)
    x = torch.zeros(n, 1, h, w)
    for i in range(n):
        x[i, 0, top[i]:top[i] + bh[i], left[i]:left[i] + bw[i]] = 1.0
    box = torch.stack([left / w, top / h, bw / w, bh / h], dim=1).float()
    out, targets, _ = Augmenter({"vflip": True})(x, {"box": box}, torch.Generator().manual_seed(2))
    assert not torch.equal(out, x) and not torch.equal(targets["box"], box)
    for i in range(n):  # the box is the bounding box of the image's rectangle, wherever it went
        np.testing.assert_allclose(targets["box"][i].numpy(), _bounding_box(out[i, 0].numpy()), atol=1e-6)


# ---------------------------------------------------------------------- cutout
@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5, 0.9])
@pytest.mark.parametrize("hw", [(8, 8), (12, 10), (7, 20), (32, 32)])
def test_cutout_erases_exactly_one_square_of_the_stated_side_per_image(fraction, hw):
    h, w = hw
    x = torch.rand(10, 3, h, w, generator=torch.Generator().manual_seed(h * w)) + 1.0  # no zeros of its own
    masks = torch.randint(0, 3, (10, h, w))
    out, targets, _ = Augmenter({"cutout": fraction})(x, {"mask": masks}, torch.Generator().manual_seed(5))
    side = max(1, int(np.floor(fraction * min(h, w) + 0.5)))
    corners = set()
    for i in range(10):
        erased = (out[i] == 0).numpy()
        assert (erased == erased[0]).all()  # the same pixels in every channel
        rows, cols = np.nonzero(erased[0])
        assert len(rows) == side * side
        assert rows.max() - rows.min() + 1 == side and cols.max() - cols.min() + 1 == side
        assert torch.equal(out[i][~torch.from_numpy(erased)], x[i][~torch.from_numpy(erased)])
        corners.add((rows.min(), cols.min()))
    assert torch.equal(targets["mask"], masks)  # masks (and boxes) are not cut
    if side < min(h, w) - 1:
        assert len(corners) > 1  # the square lands in different places


def test_cutout_leaves_boxes_as_they_are():
    x, box = torch.rand(4, 1, 10, 10) + 1, torch.rand(4, 4) / 2
    out, targets, _ = Augmenter({"cutout": 0.3})(x, {"box": box}, torch.Generator().manual_seed(0))
    assert (out == 0).sum() == 4 * 9 and torch.equal(targets["box"], box)


# ---------------------------------------------------------------------- elastic
def test_elastic_zero_is_the_identity():
    x, masks = torch.rand(5, 2, 12, 12), torch.randint(0, 3, (5, 12, 12))
    out, targets, mix = Augmenter({"elastic": 0.0})(x, {"mask": masks}, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and torch.equal(targets["mask"], masks) and mix is None


@pytest.mark.parametrize("strength", [0.01, 0.03, 0.08])
def test_elastic_moves_pixels_and_the_mask_stays_on_its_shape(strength):
    gen = torch.Generator().manual_seed(int(strength * 1000))
    for h, w in ((32, 32), (40, 28)):
        masks = _disk(16, h, w, gen)
        x = masks[:, None].float()
        out, targets, _ = Augmenter({"elastic": strength})(x, {"mask": masks}, torch.Generator().manual_seed(3))
        assert not torch.equal(out, x) and not torch.equal(targets["mask"], masks)
        shape = out[:, 0] > 0.5
        moved = targets["mask"] == 1
        for i in range(16):
            iou = (shape[i] & moved[i]).sum().item() / (shape[i] | moved[i]).sum().item()
            assert iou >= 0.9, (strength, h, w, i, iou)


@pytest.mark.parametrize("strength", [0.01, 0.02])
def test_elastic_displacement_has_the_stated_spread(strength):
    """At the image centre (a point of the 3 × 3 grid) a pixel moves by std ``strength`` × the image size.

    A ramp image holds each pixel's own column (or row), so the warped value there reads back where
    the output pixel was fetched from: interpolating a ramp is exact.
    """
    n, h, w = 3000, 33, 21
    cols = torch.arange(w).float().expand(h, w)
    rows = torch.arange(h).float()[:, None].expand(h, w)
    x = torch.stack([cols, rows])[None].expand(n, 2, h, w).contiguous()
    out, _, _ = Augmenter({"elastic": strength})(x, {}, torch.Generator().manual_seed(11))
    cy, cx = (h - 1) // 2, (w - 1) // 2
    dx = (out[:, 0, cy, cx] - cx).numpy()
    dy = (out[:, 1, cy, cx] - cy).numpy()
    assert abs(dx.mean()) < 0.1 * strength * w and abs(dy.mean()) < 0.1 * strength * h
    assert dx.std() == pytest.approx(strength * w, rel=0.06)
    assert dy.std() == pytest.approx(strength * h, rel=0.06)


def test_elastic_boxes_bound_the_warped_box():
    n, h, w = 10, 32, 32
    gen = torch.Generator().manual_seed(9)
    top, left = torch.randint(4, 14, (n,), generator=gen), torch.randint(4, 14, (n,), generator=gen)
    bh, bw = torch.randint(6, 14, (n,), generator=gen), torch.randint(6, 14, (n,), generator=gen)
    x = torch.zeros(n, 1, h, w)
    for i in range(n):
        x[i, 0, top[i]:top[i] + bh[i], left[i]:left[i] + bw[i]] = 1.0
    box = torch.stack([left / w, top / h, bw / w, bh / h], dim=1).float()
    out, targets, _ = Augmenter({"elastic": 0.03})(x, {"box": box}, torch.Generator().manual_seed(1))
    for i in range(n):  # within a pixel of the bounding box of the warped rectangle
        expected = _bounding_box((out[i, 0] > 0.5).numpy())
        np.testing.assert_allclose(targets["box"][i].numpy(), expected, atol=1.01 / w)


# ---------------------------------------------------------------------- seeds, the package, ranges
NEW_SPECS = [
    {"vflip": True},
    {"cutout": 0.3},
    {"elastic": 0.04},
    {"vflip": True, "flip": True, "elastic": 0.02, "rotation": 15.0, "cutout": 0.2, "noise": 0.1, "mixup": 0.4},
]


@pytest.mark.parametrize("spec", NEW_SPECS)
def test_the_same_seed_gives_the_same_batch(spec):
    x, masks = torch.rand(16, 1, 16, 16), torch.randint(0, 2, (16, 16, 16))
    box = torch.rand(16, 4) / 2
    first = Augmenter(spec)(x, {"mask": masks, "box": box}, torch.Generator().manual_seed(21))
    again = Augmenter(spec)(x, {"mask": masks, "box": box}, torch.Generator().manual_seed(21))
    other = Augmenter(spec)(x, {"mask": masks, "box": box}, torch.Generator().manual_seed(1021))
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])
    for key in ("mask", "box"):
        assert torch.equal(first[1][key], again[1][key])


@pytest.mark.parametrize("spec", NEW_SPECS + [{"elastic": 0.05, "shift": 0.1, "scale": 0.2}])
def test_the_packages_augmenter_equals_the_engines(spec):
    script = _script()
    x = torch.rand(6, 2, 18, 14, generator=torch.Generator().manual_seed(0))
    masks = _disk(6, 18, 14, torch.Generator().manual_seed(1))
    for seed in (3, 4):
        ours = script.Augment(spec)(x, torch.Generator().manual_seed(seed), masks)
        theirs = Augmenter(spec)(x, {"mask": masks}, torch.Generator().manual_seed(seed))
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[2], theirs[1]["mask"])
        assert (ours[1] is None) == (theirs[2] is None)
        if ours[1] is not None:
            assert torch.equal(ours[1][0], theirs[2][0]) and ours[1][1] == theirs[2][1]
        plain = script.Augment(spec)(x, torch.Generator().manual_seed(seed))
        assert torch.equal(plain[0], ours[0]) and plain[2] is None  # without masks: the same draws


@pytest.mark.parametrize(("option", "bad"), [
    ("vflip", "yes"), ("vflip", 2), ("cutout", -0.1), ("cutout", 0.95), ("cutout", float("nan")),
    ("elastic", -0.01), ("elastic", 0.2), ("elastic", True),
])
def test_a_new_option_out_of_range_is_refused_by_name(option, bad):
    with pytest.raises(ProjectError, match=f"option '{option}'"):
        DataConfig.from_dict({"augment": {option: bad}})
    with pytest.raises(DataError, match=f"option '{option}'"):
        Augmenter({option: bad})


@pytest.mark.parametrize("option", [("vflip", True), ("cutout", 0.2), ("elastic", 0.02)])
def test_picture_options_are_refused_for_vectors_by_name(option):
    name, value = option
    with pytest.raises(DataError, match=f"augmentation {name} works on pixels"):
        Augmenter({name: value})(torch.rand(4, 5), {}, torch.Generator().manual_seed(0))
    assert name in _script().AUGMENT_OPTIONS  # train.py knows the name, so it does not refuse it

"""The data layer: every source, splits, k-fold, training-only normalization, augmentation, preview."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import DATASETS, DataConfig
from engine.data import (
    DATASET_INFO,
    Augmenter,
    DataError,
    Dataset,
    Normalizer,
    kfold,
    load_dataset,
    mixed_loss,
    preview,
    split_dataset,
)
from engine.errors import NetDesignerError


def cfg(**kw) -> DataConfig:
    return DataConfig(**kw)


def small(n: int = 12, classes: int = 3) -> Dataset:
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)
    return Dataset(x, {"label": torch.arange(n) % classes}, [str(c) for c in range(classes)], "small")


# -------------------------------------------------------------------------------- sources
BUILT_IN = [
    # dataset, task, input shape, targets expected
    ("spiral", "classification", (2,), {"label", "binary"}),
    ("xor", "binary", (2,), {"label", "binary"}),
    ("circles", "binary", (2,), {"label", "binary"}),
    ("gaussians", "binary", (2,), {"label", "binary"}),
    ("regression1d", "regression", (1,), {"value"}),
    ("digits", "classification", (1, 28, 28), {"label"}),
    ("digits", "classification", (64,), {"label"}),
    ("iris", "classification", (4,), {"label"}),
    ("wine", "classification", (13,), {"label"}),
    ("breast_cancer", "binary", (30,), {"label", "binary"}),
    ("shapes", "classification", (3, 24, 24), {"label", "mask", "box"}),
    ("shapes", "segmentation", (1, 16, 16), {"label", "mask", "box"}),
    ("shapes", "localization", (256,), {"label", "mask", "box"}),
]
DTYPES = {"label": torch.int64, "binary": torch.float32, "value": torch.float32, "mask": torch.int64, "box": torch.float32}


@pytest.mark.parametrize("name, task, shape, keys", BUILT_IN)
def test_built_in_sources_fit_the_input(name, task, shape, keys):
    ds = load_dataset(cfg(dataset=name, task=task, samples=90, seed=3), shape)
    n = len(ds)
    assert ds.x.dtype == torch.float32 and tuple(ds.x.shape) == (n, *shape)
    assert set(ds.targets) == keys
    for key, t in ds.targets.items():
        assert t.dtype == DTYPES[key] and t.shape[0] == n
    if "label" in keys:
        assert ds.classes and int(ds.targets["label"].max()) < len(ds.classes)
        assert set(ds.targets["label"].tolist()) == set(range(len(ds.classes)))
    if "binary" in keys:
        assert torch.equal(ds.targets["binary"][:, 0], ds.targets["label"].float())
    if "mask" in keys:
        side = shape[-1] if len(shape) == 3 else 16
        assert tuple(ds.targets["mask"].shape) == (n, side, side)
    assert torch.isfinite(ds.x).all()
    assert name in DATASET_INFO and DATASET_INFO[name]


@pytest.mark.parametrize("name, shape", [("spiral", (2,)), ("regression1d", (1,)), ("shapes", (1, 16, 16))])
def test_generated_sets_are_deterministic_by_seed(name, shape):
    task = "regression" if name == "regression1d" else "classification"
    a = load_dataset(cfg(dataset=name, task=task, samples=60, seed=1), shape)
    b = load_dataset(cfg(dataset=name, task=task, samples=60, seed=1), shape)
    c = load_dataset(cfg(dataset=name, task=task, samples=60, seed=2), shape)
    assert len(a) == 60
    assert torch.equal(a.x, b.x) and all(torch.equal(a.targets[k], b.targets[k]) for k in a.targets)
    assert not torch.equal(a.x, c.x)


def test_spiral_takes_more_arms_from_the_project():
    ds = load_dataset(cfg(dataset="spiral", samples=90, extra={"classes": 3}), (2,))
    assert ds.classes == ["arm 0", "arm 1", "arm 2"] and "binary" not in ds.targets
    assert torch.bincount(ds.targets["label"]).tolist() == [30, 30, 30]


def test_digits_are_the_real_ones_resized_to_the_input():
    from sklearn.datasets import load_digits

    raw = load_digits()
    flat = load_dataset(cfg(dataset="digits"), (64,))
    assert len(flat) == 1797 and flat.classes == [str(d) for d in range(10)]
    assert torch.allclose(flat.x, torch.tensor(raw.data / 16.0, dtype=torch.float32))
    big = load_dataset(cfg(dataset="digits"), (1, 32, 32))
    assert tuple(big.x.shape) == (1797, 1, 32, 32)
    assert float(big.x.min()) >= 0.0 and float(big.x.max()) <= 1.0
    # bilinear upsampling keeps each image's mean brightness close
    assert torch.allclose(big.x.mean(dim=(1, 2, 3)), flat.x.mean(dim=1), atol=0.03)
    rgb = load_dataset(cfg(dataset="digits"), (3, 8, 8))
    assert torch.equal(rgb.x[:, 0], rgb.x[:, 2])


def test_inputs_that_do_not_fit_are_refused_with_both_sizes():
    with pytest.raises(DataError, match=r"iris has 4 features .* expects 3"):
        load_dataset(cfg(dataset="iris"), (3,))
    with pytest.raises(DataError, match=r"wine has 13 features .* 1×28×28"):
        load_dataset(cfg(dataset="wine"), (1, 28, 28))
    with pytest.raises(DataError, match="vector Input needs 64 features"):
        load_dataset(cfg(dataset="digits"), (50,))
    with pytest.raises(DataError, match="4 channels"):
        load_dataset(cfg(dataset="shapes"), (4, 16, 16))
    assert issubclass(DataError, NetDesignerError)


def test_a_task_without_its_targets_is_refused():
    with pytest.raises(DataError, match="10 classes but the binary task needs exactly 2"):
        load_dataset(cfg(dataset="digits", task="binary"), (64,))
    with pytest.raises(DataError, match="no per-pixel masks.*shapes"):
        load_dataset(cfg(dataset="iris", task="segmentation"), (4,))
    with pytest.raises(DataError, match="no class labels.*choose regression"):
        load_dataset(cfg(dataset="regression1d", task="classification"), (1,))


def test_every_config_dataset_has_a_description():
    assert set(DATASET_INFO) == set(DATASETS)


# -------------------------------------------------------------------------------- shapes
def test_shapes_masks_and_boxes_agree():
    ds = load_dataset(cfg(dataset="shapes", samples=300, seed=5, task="segmentation"), (1, 20, 20))
    masks, boxes, labels = ds.targets["mask"], ds.targets["box"], ds.targets["label"]
    assert ds.mask_classes == ["background", "circle", "square", "triangle"]
    assert torch.bincount(labels).tolist() == [100, 100, 100]
    n, h, w = masks.shape
    ys = (torch.arange(h) + 0.5)[None, :, None] / h
    xs = (torch.arange(w) + 0.5)[None, None, :] / w
    x0, y0, bw, bh = (boxes[:, i, None, None] for i in range(4))
    inside_box = (xs >= x0) & (xs <= x0 + bw) & (ys >= y0) & (ys <= y0 + bh)
    shape = masks > 0
    assert shape.flatten(1).any(dim=1).all(), "every image shows its shape"
    assert not (shape & ~inside_box).any(), "every mask pixel lies inside the box"
    assert torch.equal(masks.flatten(1).amax(dim=1), labels + 1), "mask holds the shape's class + 1"
    # the box is tight: the mask reaches each of its four edges
    assert torch.allclose(shape.any(dim=1).float().argmax(dim=1) / w, boxes[:, 0])
    assert (boxes[:, 2:] > 0).all() and (boxes[:, :2] + boxes[:, 2:] <= 1 + 1e-6).all()
    # the shape differs from the ground it is drawn on
    x = ds.x[:, 0]
    gap = torch.stack([(x[i][shape[i]].mean() - x[i][~shape[i]].mean()).abs() for i in range(20)])
    assert (gap > 0.2).all()


def test_shapes_are_fast_enough():
    start = time.perf_counter()
    ds = load_dataset(cfg(dataset="shapes", samples=2000), (3, 32, 32))
    assert time.perf_counter() - start < 2.0
    assert len(ds) == 2000


# ------------------------------------------------------------------------- image folders
def _png(path: Path, size=(10, 12), value=128, rgb=False) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], 3) if rgb else (size[1], size[0])
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    pytest.importorskip("PIL")
    root = tmp_path / "pets"
    for i in range(3):
        _png(root / "cat" / f"{i}.png", value=40)
        _png(root / "dog" / f"{i}.png", size=(20, 16), value=200, rgb=True)
    return root


def test_image_folder_loads_classes_and_resizes_mixed_sizes(folder):
    (folder / "dog" / "notes.txt").write_text("not an image")
    ds = load_dataset(cfg(dataset="image_folder", path=str(folder)), (1, 8, 8))
    assert ds.classes == ["cat", "dog"] and tuple(ds.x.shape) == (6, 1, 8, 8)
    assert ds.targets["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.allclose(ds.x[0], torch.full((1, 8, 8), 40 / 255), atol=1e-3)
    assert any("2 sizes" in w and "resized to 8×8" in w for w in ds.warnings)
    assert any("notes.txt" in w for w in ds.warnings)
    rgb = load_dataset(cfg(dataset="image_folder", path="pets"), (3, 6, 6), base_dir=folder.parent)
    assert tuple(rgb.x.shape) == (6, 3, 6, 6)


def test_image_folder_skips_a_corrupt_image_and_names_it(folder):
    (folder / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ds = load_dataset(cfg(dataset="image_folder", path=str(folder)), (1, 8, 8))
    assert len(ds) == 6
    assert any("cat/broken.png" in w for w in ds.warnings)


def test_image_folder_problems_name_the_folder(folder, tmp_path):
    (folder / "bird").mkdir()
    with pytest.raises(DataError, match=r"class folder .*bird is empty"):
        load_dataset(cfg(dataset="image_folder", path=str(folder)), (1, 8, 8))
    (folder / "bird" / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bird has no readable images"):
        load_dataset(cfg(dataset="image_folder", path=str(folder)), (1, 8, 8))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(cfg(dataset="image_folder", path=str(tmp_path / "nowhere")), (1, 8, 8))
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_dataset(cfg(dataset="image_folder", path=str(tmp_path / "flat")), (1, 8, 8))
    with pytest.raises(DataError, match="needs a path"):
        load_dataset(cfg(dataset="image_folder"), (1, 8, 8))


# ----------------------------------------------------------------------------------- csv
def test_csv_classification_and_regression(tmp_path):
    path = tmp_path / "plants.csv"
    path.write_text("height,width,kind\n1.0,2,b\n3,4.5,a\n\n5,6,b\n7,8,a\n")
    ds = load_dataset(cfg(dataset="csv", path="plants.csv"), (2,), base_dir=tmp_path)
    assert ds.classes == ["a", "b"] and ds.targets["label"].tolist() == [1, 0, 1, 0]
    assert ds.x.tolist() == [[1, 2], [3, 4.5], [5, 6], [7, 8]] and "binary" in ds.targets
    reg = load_dataset(
        cfg(dataset="csv", path=str(path), task="regression", feature_columns=["height"], target_column="width"), (1,)
    )
    assert reg.targets["value"][:, 0].tolist() == [2, 4.5, 6, 8]


def test_csv_problems_name_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'b': 'oops' is not a number"):
        load_dataset(cfg(dataset="csv", path=str(path)), (2,))
    with pytest.raises(DataError, match=r"no target column 'nope'.*'a', 'b', 'label'"):
        load_dataset(cfg(dataset="csv", path=str(path), target_column="nope"), (2,))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(cfg(dataset="csv", path=str(tmp_path / "missing.csv")), (2,))
    path.write_text("a,b,label\n1,2,x\n3,4\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\) has 2 values"):
        load_dataset(cfg(dataset="csv", path=str(path)), (2,))


# ----------------------------------------------------------------------------------- npz
def test_npz_labels_values_and_reshape(tmp_path):
    x = np.random.default_rng(0).random((10, 16)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([5, 7] * 5))
    ds = load_dataset(cfg(dataset="npz", path=str(tmp_path / "d.npz")), (1, 4, 4))
    assert tuple(ds.x.shape) == (10, 1, 4, 4) and ds.classes == ["5", "7"]
    assert ds.targets["label"].tolist() == [0, 1] * 5
    np.savez(tmp_path / "r.npz", x=x, y=np.linspace(0, 1, 10))
    reg = load_dataset(cfg(dataset="npz", path=str(tmp_path / "r.npz"), task="regression"), (16,))
    assert tuple(reg.targets["value"].shape) == (10, 1)
    with pytest.raises(DataError, match="y holds floats"):
        load_dataset(cfg(dataset="npz", path=str(tmp_path / "r.npz")), (16,))
    with pytest.raises(DataError, match=r"16 values each, but the Input expects 1×5×5 = 25"):
        load_dataset(cfg(dataset="npz", path=str(tmp_path / "d.npz")), (1, 5, 5))


def test_npz_missing_key_is_named(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError, match=r"no array named 'y' \(it has 'x', 'labels'\)"):
        load_dataset(cfg(dataset="npz", path=str(tmp_path / "d.npz")), (2,))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(cfg(dataset="npz", path=str(tmp_path / "none.npz")), (2,))
    (tmp_path / "junk.npz").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="junk.npz is not a readable .npz file"):
        load_dataset(cfg(dataset="npz", path=str(tmp_path / "junk.npz")), (2,))


# -------------------------------------------------------------------------------- splits
def test_split_fractions_stratification_and_no_overlap():
    ds = load_dataset(cfg(dataset="digits"), (64,))
    train, val, test = split_dataset(ds, 0.2, 0.1, seed=0)
    assert (len(train), len(val), len(test)) == (1258, 359, 180)
    ids = [set(map(tuple, s.x.tolist())) for s in (train, val, test)]
    assert len(ids[0] | ids[1] | ids[2]) == len(set(map(tuple, ds.x.tolist())))
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    overall = torch.bincount(ds.targets["label"]).float() / len(ds)
    for part in (train, val, test):
        share = torch.bincount(part.targets["label"], minlength=10).float() / len(part)
        assert (share - overall).abs().max() < 0.01
    again = split_dataset(ds, 0.2, 0.1, seed=0)
    assert torch.equal(again.val.x, val.x)
    assert not torch.equal(split_dataset(ds, 0.2, 0.1, seed=1).val.x, val.x)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 120), val=st.floats(0.0, 0.45), test=st.floats(0.0, 0.45), labelled=st.booleans())
def test_splits_partition_and_are_never_empty(n, val, test, labelled):
    ds = small(n)
    if not labelled:
        ds = Dataset(ds.x, {}, None, "unlabelled")
    parts = split_dataset(ds, val, test, seed=n)
    got = sorted(v for p in parts for v in p.x[:, 0].tolist())
    assert got == list(range(n))
    assert len(parts.train) > 0
    assert (len(parts.val) > 0) == (val > 0) and (len(parts.test) > 0) == (test > 0)


def test_split_refuses_too_few_samples():
    with pytest.raises(DataError, match="too few"):
        split_dataset(small(2), 0.3, 0.3, seed=0)


def test_kfold_covers_every_sample_once():
    ds = small(23)
    folds = kfold(ds, 5, seed=0)
    assert len(folds) == 5
    seen = sorted(v for _, val in folds for v in val.x[:, 0].tolist())
    assert seen == list(range(23))
    for train, val in folds:
        assert len(train) + len(val) == 23
        assert not set(train.x[:, 0].tolist()) & set(val.x[:, 0].tolist())
        assert set(torch.bincount(val.targets["label"], minlength=3).tolist()) <= {1, 2}, "stratified folds"
    with pytest.raises(DataError, match="too few for 30 folds"):
        kfold(ds, 30, seed=0)


# ------------------------------------------------------------------------- normalization
def test_normalization_uses_training_statistics_only():
    g = torch.Generator().manual_seed(0)
    train = Dataset(torch.randn(200, 3, generator=g) * 2 + 10, {}, None, "train")
    val = Dataset(torch.randn(100, 3, generator=g) * 5 - 50, {}, None, "val")
    norm = Normalizer.fit(train)
    assert torch.allclose(norm.apply(train).x.mean(dim=0), torch.zeros(3), atol=1e-4)
    out = norm.apply(val).x
    assert torch.allclose(out, (val.x - train.x.mean(0)) / train.x.std(0, unbiased=False), atol=1e-4)
    assert (out.mean(dim=0) < -20).all(), "val keeps its offset from train instead of its own mean"


def test_normalizer_per_channel_round_trip_and_constant_channels():
    x = torch.zeros(4, 2, 3, 3)
    x[:, 1] = torch.arange(4.0)[:, None, None]
    norm = Normalizer.fit(Dataset(x, {}, None, "img"))
    assert norm.mean.tolist() == [0.0, 1.5] and norm.std[0] == 1.0
    back = Normalizer.from_dict(norm.to_dict())
    assert torch.equal(back.mean, norm.mean) and torch.equal(back.std, norm.std)
    assert torch.allclose(back.inverse(back.transform(x)), x, atol=1e-6)
    with pytest.raises(DataError):
        Normalizer.from_dict({"mean": [0.0], "std": [0.0]})
    with pytest.raises(DataError, match="fitted on 2"):
        norm.transform(torch.zeros(1, 3, 3, 3))


# -------------------------------------------------------------------------- augmentation
def _shapes_batch(n=16, side=16):
    ds = load_dataset(cfg(dataset="shapes", samples=n, seed=7), (1, side, side))
    return ds.x, dict(ds.targets)


def test_augmenter_with_empty_spec_is_identity():
    x, t = _shapes_batch()
    out, targets, mix = Augmenter({})(x, t, torch.Generator().manual_seed(0))
    assert out is x and targets is t and mix is None
    out, _, _ = Augmenter({"flip": False, "noise": 0})(x, t)
    assert out is x


def test_augmenter_keeps_shapes_and_is_repeatable():
    x, t = _shapes_batch()
    spec = {"flip": True, "shift": 0.1, "rotation": 15, "scale": 0.1, "noise": 0.05, "brightness": 0.1, "contrast": 0.2}
    aug = Augmenter(spec)
    a = aug(x, t, torch.Generator().manual_seed(3))
    b = aug(x, t, torch.Generator().manual_seed(3))
    assert a[0].shape == x.shape and a[0].dtype == x.dtype
    assert a[1]["mask"].shape == t["mask"].shape and a[1]["mask"].dtype == torch.int64
    assert a[1]["box"].shape == t["box"].shape and a[2] is None
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["mask"], b[1]["mask"])
    assert not torch.equal(a[0], x)
    assert torch.equal(t["mask"], _shapes_batch()[1]["mask"]), "the input targets are not changed in place"


def test_flip_moves_masks_and_boxes_with_images():
    x, t = _shapes_batch(32)
    out, targets, _ = Augmenter({"flip": True})(x, t, torch.Generator().manual_seed(0))
    flipped = 0
    for i in range(len(x)):
        if torch.allclose(out[i], x[i].flip(-1), atol=1e-5):
            flipped += 1
            assert torch.equal(targets["mask"][i], t["mask"][i].flip(-1))
            bx, by, bw, bh = t["box"][i].tolist()
            assert torch.allclose(targets["box"][i], torch.tensor([1 - bx - bw, by, bw, bh]), atol=1e-5)
        else:
            assert torch.allclose(out[i], x[i], atol=1e-5)
            assert torch.equal(targets["mask"][i], t["mask"][i])
    assert 0 < flipped < len(x)


def test_shifted_masks_stay_inside_shifted_boxes():
    x, t = _shapes_batch(32, side=24)
    _, targets, _ = Augmenter({"shift": 0.2, "scale": 0.2})(x, t, torch.Generator().manual_seed(1))
    masks, boxes = targets["mask"], targets["box"]
    h = w = 24
    ys = (torch.arange(h) + 0.5)[None, :, None] / h
    xs = (torch.arange(w) + 0.5)[None, None, :] / w
    x0, y0, bw, bh = (boxes[:, i, None, None] for i in range(4))
    tol = 1.0 / w  # nearest sampling may move an edge by a pixel
    inside = (xs >= x0 - tol) & (xs <= x0 + bw + tol) & (ys >= y0 - tol) & (ys <= y0 + bh + tol)
    assert not ((masks > 0) & ~inside).any()


def test_augmenter_refuses_unknown_options_and_geometry_on_vectors():
    with pytest.raises(DataError, match="'blur'.*flip, shift, rotation, scale, noise, brightness, contrast, mixup"):
        Augmenter({"blur": 1.0})
    with pytest.raises(DataError, match="'rotation'"):
        Augmenter({"rotation": -5})
    with pytest.raises(DataError, match="needs image inputs"):
        Augmenter({"flip": True})(torch.zeros(4, 2), {})
    out, _, _ = Augmenter({"noise": 0.1})(torch.zeros(4, 2), {}, torch.Generator().manual_seed(0))
    assert out.shape == (4, 2) and out.abs().sum() > 0


def test_mixup_returns_the_pairing_for_the_loss():
    x = torch.eye(6)
    labels = torch.arange(6)
    out, targets, mix = Augmenter({"mixup": 0.4})(x, {"label": labels}, torch.Generator().manual_seed(0))
    perm, lam = mix
    assert sorted(perm.tolist()) == list(range(6)) and 0.0 <= lam <= 1.0
    assert torch.allclose(out, lam * x + (1 - lam) * x[perm])
    assert torch.equal(targets["label"], labels)
    logits = torch.randn(6, 6)
    ce = torch.nn.functional.cross_entropy
    expected = lam * ce(logits, labels) + (1 - lam) * ce(logits, labels[perm])
    assert torch.allclose(mixed_loss(ce, logits, labels, mix), expected)
    assert torch.allclose(mixed_loss(ce, logits, labels, None), ce(logits, labels))


# ------------------------------------------------------------------------------- preview
def test_preview_gives_images_and_points_with_labels():
    shapes = load_dataset(cfg(dataset="shapes", samples=40), (3, 16, 16))
    items = preview(shapes, n=8)
    assert len(items) == 8
    for array, text in items:
        assert array.shape == (16, 16, 3) and 0 <= array.min() and array.max() <= 1
        assert text in ("circle", "square", "triangle")
    digits = Normalizer.fit(d := load_dataset(cfg(dataset="digits"), (64,))).apply(d)
    array, text = preview(digits, n=1)[0]
    assert array.shape == (8, 8) and 0 <= array.min() and array.max() <= 1 and text == "0"
    points = preview(load_dataset(cfg(dataset="circles", samples=50, task="binary"), (2,)), n=100)
    assert len(points) == 50 and points[0][0].shape == (2,)
    reg = preview(load_dataset(cfg(dataset="regression1d", samples=5, task="regression"), (1,)))
    assert reg[0][0].shape == (2,) and float(reg[0][1]) == pytest.approx(float(reg[0][0][1]), abs=1e-3)

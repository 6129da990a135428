"""Stratified k-fold and hold-out splits on every built-in labelled data set and on random labels.

The checks count classes themselves (``np.bincount`` of the labels of each part) and compare
them with floor/ceil of the part's proportional share, so a skew like the one that gave LeNet-5
"validation accuracy 0.000 ± 0.000" on shapes with k = 3 cannot pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import DataConfig
from engine.data import DataError, Dataset, kfold, load_dataset, split_dataset
from engine.data.splits import LEAVE_ONE_OUT_MAX, split_sizes
from engine.templates import load_template
from engine.training.crossval import cross_validate

# name, Input shape, spiral arms (None: the set's own classes)
LABELLED = [
    ("spiral", (2,), 2),
    ("spiral", (2,), 3),
    ("spiral", (2,), 5),
    ("xor", (2,), None),
    ("circles", (2,), None),
    ("gaussians", (2,), None),
    ("digits", (64,), None),
    ("iris", (4,), None),
    ("wine", (13,), None),
    ("breast_cancer", (30,), None),
    ("shapes", (1, 12, 12), None),
]
SET_IDS = [name if arms is None else f"spiral{arms}" for name, _, arms in LABELLED]


def numbered(ds: Dataset) -> Dataset:
    """The same targets with x = the sample's index, so every part says which samples it holds."""
    return Dataset(torch.arange(len(ds), dtype=torch.float32)[:, None], ds.targets, ds.classes, ds.name)


@pytest.fixture(scope="module")
def labelled_sets() -> dict[str, Dataset]:
    """Every built-in labelled set, loaded once for the module (samples are the sample's index)."""
    out = {}
    for (name, shape, arms), key in zip(LABELLED, SET_IDS):
        cfg = DataConfig(dataset=name, samples=600 if name == "shapes" else 1000)
        if arms is not None:
            cfg.extra["classes"] = arms
        out[key] = numbered(load_dataset(cfg, shape))
    return out


def ids_of(ds: Dataset) -> np.ndarray:
    return ds.x[:, 0].numpy().astype(np.int64)


def counts(ds: Dataset, n_classes: int) -> np.ndarray:
    return np.bincount(ds.targets["label"].numpy(), minlength=n_classes)


def odd_prime_not_dividing(c: int) -> int:
    return next(p for p in (3, 5, 7, 11, 13) if c % p)


def ks_for(c: int) -> list[int]:
    """k equal to, a multiple of, and prime to the class count, plus 2 and 10."""
    return sorted({c, 2 * c, odd_prime_not_dividing(c), 2, 10})


def check_folds(labels: np.ndarray, folds: list[tuple[Dataset, Dataset]], k: int) -> None:
    """Disjoint covering folds of balanced sizes; class counts within one of n_c / k."""
    n = len(labels)
    n_classes = int(labels.max()) + 1 if n else 0
    whole = np.bincount(labels, minlength=n_classes)
    assert len(folds) == k
    val_ids = [ids_of(val) for _, val in folds]
    assert np.array_equal(np.sort(np.concatenate(val_ids)), np.arange(n)), "folds cover the set, each sample once"
    sizes = [len(v) for v in val_ids]
    assert max(sizes) - min(sizes) <= 1, f"fold sizes {sizes}"
    for (train, val), ids in zip(folds, val_ids):
        assert np.array_equal(np.sort(np.concatenate([ids_of(train), ids])), np.arange(n)), "train is the rest"
        got = np.bincount(labels[ids], minlength=n_classes)
        assert np.array_equal(got, counts(val, n_classes)), "the fold's targets belong to its samples"
        assert (got >= whole // k).all() and (got <= -(-whole // k)).all(), f"fold counts {got} for {whole} / {k}"
        in_train = np.bincount(labels[ids_of(train)], minlength=n_classes)
        assert (in_train[whole >= 2] > 0).all(), "every class with 2+ members is in every training part"


def check_holdout(labels: np.ndarray, parts, val_fraction: float, test_fraction: float) -> None:
    """A partition whose val and test hold each class within one sample of its share of the whole."""
    n = len(labels)
    n_classes = int(labels.max()) + 1
    whole = np.bincount(labels, minlength=n_classes)
    ids = [ids_of(p) for p in parts]
    assert np.array_equal(np.sort(np.concatenate(ids)), np.arange(n))
    assert (len(parts.val) > 0) == (val_fraction > 0) and (len(parts.test) > 0) == (test_fraction > 0)
    for part in (parts.val, parts.test):
        got = np.bincount(labels[ids_of(part)], minlength=n_classes)
        low, high = len(part) * whole // n, -(-len(part) * whole // n)  # floor and ceil of the share, exactly
        assert ((got >= low) & (got <= high)).all(), f"{got} against shares {len(part) * whole / n}"


# ------------------------------------------------------------------------- built-in sets
@pytest.mark.parametrize("key", SET_IDS)
def test_folds_of_every_built_in_set_keep_the_classes_in_proportion(labelled_sets, key):
    ds = labelled_sets[key]
    labels = ds.targets["label"].numpy()
    n_classes = len(ds.classes)
    assert np.unique(labels).tolist() == list(range(n_classes))
    for k in ks_for(n_classes):
        check_folds(labels, kfold(ds, k, seed=k), k)


@pytest.mark.parametrize("key", SET_IDS)
@pytest.mark.parametrize("val_fraction, test_fraction", [(0.15, 0.15), (0.2, 0.1), (0.1, 0.0), (0.0, 0.3), (0.33, 0.17)])
def test_holdout_of_every_built_in_set_keeps_the_classes_in_proportion(labelled_sets, key, val_fraction, test_fraction):
    ds = labelled_sets[key]
    parts = split_dataset(ds, val_fraction, test_fraction, seed=7)
    check_holdout(ds.targets["label"].numpy(), parts, val_fraction, test_fraction)


def test_shapes_with_three_folds_has_every_class_in_every_fold(labelled_sets):
    """The reported failure: each fold held one shape only, so every score was 0."""
    ds = labelled_sets["shapes"]
    for train, val in kfold(ds, 3, seed=0):
        assert set(val.targets["label"].tolist()) == {0, 1, 2}
        assert set(train.targets["label"].tolist()) == {0, 1, 2}


def test_digits_with_ten_folds_has_every_digit_in_every_fold(labelled_sets):
    for _, val in kfold(labelled_sets["digits"], 10, seed=0):
        assert (counts(val, 10) >= 17).all()


def test_regression_folds_cover_the_set():
    ds = numbered(load_dataset(DataConfig(dataset="regression1d", samples=203, task="regression"), (1,)))
    folds = kfold(ds, 7, seed=3)
    ids = np.concatenate([ids_of(val) for _, val in folds])
    assert np.array_equal(np.sort(ids), np.arange(203))
    assert {len(val) for _, val in folds} == {29}
    for train, val in folds:
        assert not set(ids_of(train)) & set(ids_of(val)) and len(train) + len(val) == 203


def test_folds_follow_the_seed(labelled_sets):
    ds = labelled_sets["iris"]
    first = [ids_of(v).tolist() for _, v in kfold(ds, 5, seed=1)]
    assert first == [ids_of(v).tolist() for _, v in kfold(ds, 5, seed=1)]
    assert first != [ids_of(v).tolist() for _, v in kfold(ds, 5, seed=2)]


# -------------------------------------------------------------------------- leave-one-out
def test_k_equal_to_the_size_is_leave_one_out(labelled_sets):
    ds = labelled_sets["iris"]
    assert len(ds) <= LEAVE_ONE_OUT_MAX
    folds = kfold(ds, len(ds), seed=0)
    assert sorted(int(ids_of(val)[0]) for _, val in folds) == list(range(len(ds)))
    assert all(len(val) == 1 and len(train) == len(ds) - 1 for train, val in folds)


def test_more_folds_than_samples_is_refused_with_the_largest_k(labelled_sets):
    with pytest.raises(DataError, match=r"iris has 150 samples: too few for 151 folds \(at most 150"):
        kfold(labelled_sets["iris"], 151, seed=0)
    with pytest.raises(DataError, match="at least 2"):
        kfold(labelled_sets["iris"], 1, seed=0)


# -------------------------------------------------------------------- random label vectors
def labelled(class_sizes: list[int], seed: int) -> tuple[np.ndarray, Dataset]:
    """A numbered data set with the given class sizes in a shuffled order (labels 0..C-1)."""
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(class_sizes)), class_sizes))
    ds = Dataset(torch.arange(len(labels), dtype=torch.float32)[:, None], {"label": torch.as_tensor(labels)},
                 [str(c) for c in range(len(class_sizes))], "random")
    return labels, ds


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=12), k=st.integers(2, 25), seed=st.integers(0, 99))
def test_random_labels_give_proportional_folds(sizes, k, seed):
    labels, ds = labelled(sizes, seed)
    if k > len(labels):
        with pytest.raises(DataError, match="too few"):
            kfold(ds, k, seed)
        return
    check_folds(labels, kfold(ds, k, seed), k)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=12),
    val_fraction=st.floats(0.0, 0.45),
    test_fraction=st.floats(0.0, 0.45),
    seed=st.integers(0, 99),
)
def test_random_labels_give_proportional_holdout_splits(sizes, val_fraction, test_fraction, seed):
    labels, ds = labelled(sizes, seed)
    if len(labels) < 3:
        return
    check_holdout(labels, split_dataset(ds, val_fraction, test_fraction, seed), val_fraction, test_fraction)


def test_holdout_skew_that_the_old_ordering_had():
    """Six classes, 10 % val and 20 % test: the old interleaving put a class 1.4 samples off its share."""
    labels, ds = labelled([4, 31, 4, 3, 2, 36], 0)
    for seed in range(40):
        check_holdout(labels, split_dataset(ds, 0.1, 0.2, seed), 0.1, 0.2)


def test_a_single_binary_column_is_stratified_too():
    labels, _ = labelled([90, 10], 5)
    ds = Dataset(torch.arange(100, dtype=torch.float32)[:, None],
                 {"binary": torch.as_tensor(labels, dtype=torch.float32)[:, None]}, None, "binary")
    for train, val in kfold(ds, 5, seed=0):
        assert val.targets["binary"].sum().item() == 2
    parts = split_dataset(ds, 0.2, 0.3, seed=0)
    assert parts.val.targets["binary"].sum().item() == 2 and parts.test.targets["binary"].sum().item() == 3


def test_split_sizes_match_the_split():
    for n in (3, 10, 151, 1797):
        for val_fraction, test_fraction in ((0.15, 0.15), (0.0, 0.2), (0.45, 0.45)):
            train, val, test = split_dataset(numbered(Dataset(torch.zeros(n, 1), {}, None, "x")), val_fraction,
                                             test_fraction, seed=0)
            assert split_sizes(n, val_fraction, test_fraction) == (len(train), len(val), len(test))


# ----------------------------------------------------------------------------- end to end
def test_cross_validation_of_three_spiral_arms_with_three_folds_learns():
    p = load_template("mlp")
    p.data.samples = 300
    p.data.extra["classes"] = 3
    p.graph.set_params("n6", {"units": 3})
    p.training.epochs = 2
    folds = cross_validate(p, 3)
    scores = [f.val["val_accuracy"] for f in folds]
    assert len(scores) == 3 and all(s > 0.2 for s in scores), scores
    assert math.fsum(scores) / 3 > 0.3

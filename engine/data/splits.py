"""Hold-out splits and k-fold cross-validation, stratified by class when there are classes.

Both rest on one ordering of the samples: shuffled within each class, then interleaved so that
every stretch of the ordering holds the classes in their overall proportions. Cutting the
ordering gives stratified splits; dealing it round-robin gives stratified folds.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.data.base import DataError, Dataset

__all__ = ["Splits", "kfold", "split_dataset"]


class Splits(NamedTuple):
    train: Dataset
    val: Dataset
    test: Dataset


def _stratified_order(ds: Dataset, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(ds)
    if "label" not in ds.targets:
        return rng.permutation(n)
    labels = ds.targets["label"].numpy()
    position = np.empty(n)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        position[members] = (np.arange(len(members)) + rng.uniform()) / len(members)
    return np.lexsort((rng.random(n), position))


def _count(fraction: float, n: int) -> int:
    return max(1, round(fraction * n)) if fraction > 0 else 0


def split_dataset(ds: Dataset, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Train, validation and test sets; each is non-empty when its fraction is above 0.

    Deterministic from ``seed``; stratified by ``label`` when the data has labels.
    """
    for what, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{what} must be at least 0 and below 1, not {f:g}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction and test_fraction add up to {val_fraction + test_fraction:g}: they must stay below 1")
    n = len(ds)
    n_val, n_test = _count(val_fraction, n), _count(test_fraction, n)
    while n - n_val - n_test < 1 and max(n_val, n_test) > 1:  # rounding up left no training sample
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    if n - n_val - n_test < 1:
        raise DataError(f"{ds.name} has only {n} samples: too few to set aside {n_val} for validation and {n_test} for test")
    order = _stratified_order(ds, seed)
    val = np.sort(order[:n_val])
    test = np.sort(order[n_val : n_val + n_test])
    train = np.sort(order[n_val + n_test :])
    return Splits(ds.subset(train), ds.subset(val), ds.subset(test))


def kfold(ds: Dataset, k: int, seed: int) -> list[tuple[Dataset, Dataset]]:
    """``k`` (train, val) pairs: every sample is in exactly one validation fold."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"k-fold cross-validation needs k of at least 2, not {k!r}")
    n = len(ds)
    if k > n:
        raise DataError(f"{ds.name} has {n} samples: too few for {k} folds")
    order = _stratified_order(ds, seed)
    fold = np.empty(n, np.int64)
    fold[order] = np.arange(n) % k
    return [(ds.subset(np.flatnonzero(fold != i)), ds.subset(np.flatnonzero(fold == i))) for i in range(k)]

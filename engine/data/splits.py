"""Hold-out splits and k-fold cross-validation, stratified by class when there are classes.

Stratified means a part holds every class within one sample of its proportional share: a class
of ``n_c`` samples has ``floor(q)`` or ``ceil(q)`` members in the part, ``q = f * n_c`` where ``f``
is the part's fraction of the data (``1/k`` for a fold, ``m/n`` for a validation or test set of
``m`` of the ``n`` samples). Folds get this by dealing each class round-robin; hold-out splits by
cutting one ordering whose every prefix has the property (see :func:`_even_order`). Data without
classes get plain shuffled parts. Everything is deterministic from the seed.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from engine.data.basics import DataError

if TYPE_CHECKING:  # pragma: no cover
    from engine.data.base import Dataset  # NOTE: only named here, so splitting sizes needs no PyTorch

__all__ = ["LEAVE_ONE_OUT_MAX", "Splits", "kfold", "split_dataset", "split_sizes", "strata"]

#: the most samples for which the window offers leave-one-out (one fold per sample, n trainings)
LEAVE_ONE_OUT_MAX = 500


class Splits(NamedTuple):
    train: Dataset
    val: Dataset
    test: Dataset


def strata(ds: Dataset) -> np.ndarray | None:
    """The class of each sample that splits keep in proportion, or None when there is none.

    ``label`` when the data has it; otherwise a single 0/1 ``binary`` column (a binary task read
    from a file) counts as two classes. Values, masks, boxes and several binary columns do not.
    """
    if "label" in ds.targets:
        return ds.targets["label"].numpy().astype(np.int64)
    binary = ds.targets.get("binary")
    if binary is not None and binary.ndim == 2 and binary.shape[1] == 1:
        column = binary[:, 0].numpy()
        if np.isin(column, (0.0, 1.0)).all():
            return column.astype(np.int64)
    return None


def _even_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample indices ordered so that every prefix of length m holds each class c
    ``floor(m * n_c / n)`` or ``ceil(m * n_c / n)`` times; members are shuffled within a class.

    Each class's j-th member is a unit job for slot ``floor(j n / n_c)`` to ``ceil((j+1) n / n_c) - 1``;
    earliest deadline first fills the slots. NOTE: any stretch of slots has at least as many
    slots as jobs whose window lies inside it (at most ``len * n_c / n`` per class), so no job
    misses its window; the window bounds are exactly the floor/ceil bounds on every prefix.
    """
    n = len(labels)
    classes = np.unique(labels)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    sizes = np.array([len(m) for m in members], np.int64)
    which = np.repeat(np.arange(len(classes)), sizes)
    j = np.concatenate([np.arange(s) for s in sizes])
    release = j * n // sizes[which]
    deadline = -(-(j + 1) * n // sizes[which]) - 1
    ties = rng.random(n)  # equal deadlines (classes of equal size) go in a random order
    jobs = np.argsort(release, kind="stable")
    ready: list[tuple[int, float, int]] = []
    taken = np.zeros(len(classes), np.int64)
    order = np.empty(n, np.int64)
    pending = 0
    for slot in range(n):
        while pending < n and release[jobs[pending]] <= slot:
            job = jobs[pending]
            heapq.heappush(ready, (int(deadline[job]), float(ties[job]), int(which[job])))
            pending += 1
        _, _, c = heapq.heappop(ready)
        order[slot] = members[c][taken[c]]  # a class's jobs leave in member order: deadlines rise with j
        taken[c] += 1
    return order


def split_sizes(n: int, val_fraction: float, test_fraction: float, name: str = "the data") -> tuple[int, int, int]:
    """(train, val, test) sample counts of a hold-out split of ``n`` samples.

    A part with a fraction above 0 gets at least one sample; the training part keeps at least one.

    Raises:
        DataError: a fraction is out of range, or ``n`` is too small for the parts asked for.
    """
    for what, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{what} must be at least 0 and below 1, not {f:g}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction and test_fraction add up to {val_fraction + test_fraction:g}: they must stay below 1")
    n_val, n_test = _count(val_fraction, n), _count(test_fraction, n)
    while n - n_val - n_test < 1 and max(n_val, n_test) > 1:  # rounding up left no training sample
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    if n - n_val - n_test < 1:
        raise DataError(f"{name} has only {n} samples: too few to set aside {n_val} for validation and {n_test} for test")
    return n - n_val - n_test, n_val, n_test


def _count(fraction: float, n: int) -> int:
    return max(1, round(fraction * n)) if fraction > 0 else 0


def split_dataset(ds: Dataset, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Train, validation and test sets; each is non-empty when its fraction is above 0.

    Deterministic from ``seed``. With classes (see :func:`strata`) the validation and the test
    set each hold every class within one sample of its share of the whole.
    """
    n = len(ds)
    _, n_val, n_test = split_sizes(n, val_fraction, test_fraction, ds.name)
    rng = np.random.default_rng(seed)
    labels = strata(ds)
    order = rng.permutation(n) if labels is None else _even_order(labels, rng)
    # NOTE: test is the end of the ordering, not the stretch after val: a suffix is what a prefix
    # leaves, so it keeps the prefixes' bound; a stretch in the middle could be off by up to two.
    val = np.sort(order[:n_val])
    test = np.sort(order[n - n_test :])
    train = np.sort(order[n_val : n - n_test])
    return Splits(ds.subset(train), ds.subset(val), ds.subset(test))


def kfold(ds: Dataset, k: int, seed: int) -> list[tuple[Dataset, Dataset]]:
    """``k`` (train, val) pairs: every sample is in exactly one validation fold.

    Each class's members, shuffled, are dealt round-robin to the folds, a class starting at the
    fold after the one where the previous class stopped: a fold holds ``floor(n_c / k)`` or
    ``ceil(n_c / k)`` of class c, and fold sizes differ by at most one (the deal as a whole is one
    round-robin). ``k == len(ds)`` is leave-one-out.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"k-fold cross-validation needs k of at least 2, not {k!r}")
    n = len(ds)
    if k > n:
        raise DataError(f"{ds.name} has {n} samples: too few for {k} folds (at most {n}, which is leave-one-out)")
    rng = np.random.default_rng(seed)
    labels = strata(ds)
    if labels is None:
        dealt = rng.permutation(n)
    else:
        dealt = np.concatenate([rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)])
    fold = np.empty(n, np.int64)
    fold[dealt] = np.arange(n) % k
    return [(ds.subset(np.flatnonzero(fold != i)), ds.subset(np.flatnonzero(fold == i))) for i in range(k)]

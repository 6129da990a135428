"""Generated 2-D point sets for classification and a noisy 1-D function for regression.

Each is deterministic from its seed. ``noise`` (0..1) is the standard deviation of Gaussian
jitter in the data's own units, where the points span roughly [-1, 1]. The regression set samples
one of :data:`FUNCTIONS` (``data.function``; sin when unset): smooth, kinked or jumping curves for a
one-hidden-layer network to approximate, as the universal approximation theorem says it can.
"""

from __future__ import annotations

import numpy as np

from engine.config import REGRESSION_FUNCTIONS
from engine.data.base import DataError, Dataset, as_float, fit_vectors, labels_and_binary
from engine.data.sets import TOY_CLASSIFIERS, TOY_SETS

__all__ = ["FUNCTIONS", "TOY_SETS", "make_toy"]


def _split_counts(n: int, k: int) -> list[int]:
    return [n // k + (i < n % k) for i in range(k)]


def spiral(rng: np.random.Generator, n: int, noise: float, arms: int) -> tuple[np.ndarray, np.ndarray]:
    """``arms`` interleaved spirals, 1.5 turns each, one class per arm."""
    xs, ys = [], []
    for k, m in enumerate(_split_counts(n, arms)):
        t = np.sqrt(rng.uniform(0.0, 1.0, m))  # more points further out, where the arm is longer
        angle = 2 * np.pi * (k / arms + 1.5 * t)
        r = 0.05 + 0.95 * t
        pts = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
        xs.append(pts + rng.normal(0.0, noise * 0.5, pts.shape))
        ys.append(np.full(m, k))
    return np.concatenate(xs), np.concatenate(ys)


def xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points in the four quadrants; class 1 where exactly one coordinate is positive."""
    pts = rng.uniform(-1.0, 1.0, (n, 2))
    labels = ((pts[:, 0] > 0) ^ (pts[:, 1] > 0)).astype(np.int64)
    return pts + rng.normal(0.0, noise * 0.5, pts.shape), labels


def circles(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """An outer ring of radius 1 (class 0) around an inner ring of radius 0.5 (class 1)."""
    outer, inner = _split_counts(n, 2)
    labels = np.concatenate([np.zeros(outer, np.int64), np.ones(inner, np.int64)])
    angle = rng.uniform(0.0, 2 * np.pi, n)
    r = np.where(labels == 0, 1.0, 0.5)
    pts = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return pts + rng.normal(0.0, noise, pts.shape), labels


def gaussians(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Two round blobs centred at (-1, -1) and (1, 1); they overlap more as ``noise`` grows."""
    a, b = _split_counts(n, 2)
    labels = np.concatenate([np.zeros(a, np.int64), np.ones(b, np.int64)])
    centres = np.where(labels[:, None] == 0, -1.0, 1.0) * np.ones((1, 2))
    return centres + rng.normal(0.0, 0.2 + 2.0 * noise, (n, 2)), labels


CLASSIFIERS = {"spiral": spiral, "xor": xor, "circles": circles, "gaussians": gaussians}
assert tuple(CLASSIFIERS) == TOY_CLASSIFIERS, "engine.data.sets names the toy sets drawn here"

#: the regression set's functions of x: name -> (the function, its formula in words)
FUNCTIONS = {
    "sin": (np.sin, "y = sin(x)"),
    "step": (lambda x: (x >= 0).astype(np.float64), "y = 1 where x ≥ 0, else 0"),
    "abs": (np.abs, "y = |x|"),
    "square": (lambda x: x * x, "y = x²"),
    "sawtooth": (lambda x: x - 2.0 * np.floor((x + 1.0) / 2.0), "a sawtooth of period 2 rising from -1 to 1"),
}
assert tuple(FUNCTIONS) == REGRESSION_FUNCTIONS, "engine.config names the functions drawn here"


def regression1d(rng: np.random.Generator, n: int, noise: float, function: str) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points x uniform on [-3, 3] and y = ``function``(x) plus Gaussian noise of deviation ``noise``."""
    if function not in FUNCTIONS:
        raise DataError(f"regression1d: function must be one of {', '.join(FUNCTIONS)}, not {function!r}")
    x = rng.uniform(-3.0, 3.0, (n, 1))
    return x, FUNCTIONS[function][0](x) + rng.normal(0.0, noise, x.shape)


def make_toy(
    name: str, samples: int, noise: float, seed: int, input_shape: tuple[int, ...], arms: int = 2,
    function: str = "sin",
) -> Dataset:
    """One of ``TOY_SETS`` with ``samples`` points, shuffled, checked against the Input.

    ``arms``: the spiral's classes; ``function``: the regression set's function of x (a key of :data:`FUNCTIONS`).
    """
    rng = np.random.default_rng(seed)
    if name == "regression1d":
        x, y = regression1d(rng, samples, noise, function)
        xt = fit_vectors(as_float(x), input_shape, name, f"1 feature (x) to predict {FUNCTIONS[function][1]} from")
        return Dataset(xt, {"value": as_float(y)}, None, name)
    if name == "spiral":
        if not isinstance(arms, int) or isinstance(arms, bool) or not 2 <= arms <= 20:
            raise DataError(f"spiral: classes (the number of arms) must be a whole number from 2 to 20, not {arms!r}")
        x, labels = spiral(rng, samples, noise, arms)
        classes = [f"arm {k}" for k in range(arms)]
    else:
        x, labels = CLASSIFIERS[name](rng, samples, noise)
        classes = ["0", "1"]
    order = rng.permutation(samples)
    x, labels = x[order], labels[order]
    xt = fit_vectors(as_float(x), input_shape, name, "2 features (the point's x and y)")
    return Dataset(xt, labels_and_binary(labels, len(classes)), classes, name)

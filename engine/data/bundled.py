"""Real data sets that ship inside scikit-learn, so they load with no network."""

from __future__ import annotations

import numpy as np
import torch

from engine.data.base import Dataset, as_float, fit_images, fit_vectors, labels_and_binary
from engine.data.sets import TABULAR

__all__ = ["TABULAR", "load_digits", "load_tabular"]


def load_digits(input_shape: tuple[int, ...], image_size: int | None = None) -> Dataset:
    """1797 handwritten digits, 8×8 pixels scaled to [0, 1], resized to the Input (bilinear)."""
    from sklearn import datasets

    bunch = datasets.load_digits()
    images = torch.as_tensor(bunch.images / 16.0, dtype=torch.float32)[:, None]
    x = fit_images(images, input_shape, "digits", image_size)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return Dataset(x, labels_and_binary(labels, 10), [str(c) for c in bunch.target_names], "digits")


def load_tabular(name: str, input_shape: tuple[int, ...]) -> Dataset:
    """One of ``TABULAR``: a table of float features and a class per row."""
    from sklearn import datasets

    loader, about = TABULAR[name]
    bunch = getattr(datasets, loader)()
    x = as_float(bunch.data)
    x = fit_vectors(x, input_shape, name, f"{x.shape[1]} features ({about})")
    classes = [str(c) for c in bunch.target_names]
    return Dataset(x, labels_and_binary(bunch.target, len(classes)), classes, name)

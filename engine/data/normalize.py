"""Standardization with statistics of the training split only.

Normalization statistics are parameters of the model: they are computed on the training data
and applied unchanged to validation, test and any later input, so nothing about held-out data
leaks into training. They are saved beside a checkpoint (``to_dict``) for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import Tensor

from engine.data.base import DataError, Dataset

__all__ = ["Normalizer"]

MIN_STD = 1e-8


@dataclass(frozen=True)
class Normalizer:
    """(x - mean) / std per channel of images (N, C, H, W) or per feature of vectors (N, F)."""

    mean: Tensor  # (C,) or (F,)
    std: Tensor

    @classmethod
    def fit(cls, train: Dataset) -> Normalizer:
        """Mean and standard deviation of the training split; a constant channel gets std 1."""
        if len(train) == 0:
            raise DataError(f"cannot normalize with statistics of an empty training set ({train.name})")
        x = train.x.double()
        dims = [d for d in range(x.dim()) if d != 1]  # all but the channel / feature axis
        mean = x.mean(dim=dims)
        std = x.std(dim=dims, unbiased=False)
        std = torch.where(std < MIN_STD, torch.ones_like(std), std)
        return cls(mean.float(), std.float())

    @classmethod
    def fit_batches(cls, batches: Iterable[Tensor], name: str = "the training set") -> Normalizer:
        """The statistics :meth:`fit` gives, from batches of the training split read one after another
        (a split streamed from disk): per channel, each batch's mean and sum of squared deviations
        are merged into the running ones (Chan et al.'s pairwise update, in float64)."""
        count, mean, m2 = 0, None, None
        for x in batches:
            if not len(x):
                continue
            x = x.double()
            dims = [d for d in range(x.dim()) if d != 1]
            k = x.numel() // x.shape[1]
            b_mean = x.mean(dim=dims)
            b_m2 = ((x - b_mean.view((1, -1) + (1,) * (x.dim() - 2))) ** 2).sum(dim=dims)
            if mean is None:
                count, mean, m2 = k, b_mean, b_m2
                continue
            delta, total = b_mean - mean, count + k
            mean = mean + delta * (k / total)
            m2 = m2 + b_m2 + delta**2 * (count * k / total)
            count = total
        if mean is None:
            raise DataError(f"cannot normalize with statistics of an empty training set ({name})")
        std = (m2 / count).sqrt()
        std = torch.where(std < MIN_STD, torch.ones_like(std), std)
        return cls(mean.float(), std.float())

    def _view(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() < 2 or x.shape[1] != self.mean.shape[0]:
            raise DataError(
                f"the normalizer was fitted on {self.mean.shape[0]} channels or features, "
                f"but this data has shape {tuple(x.shape[1:])}"
            )
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return self.mean.to(x.device, x.dtype).view(shape), self.std.to(x.device, x.dtype).view(shape)

    def transform(self, x: Tensor) -> Tensor:
        """Normalize a batch (on any device)."""
        mean, std = self._view(x)
        return (x - mean) / std

    def inverse(self, x: Tensor) -> Tensor:
        """Undo :meth:`transform`, to show normalized inputs as they were."""
        mean, std = self._view(x)
        return x * std + mean

    def apply(self, ds: Dataset) -> Dataset:
        """The data set with normalized inputs; targets are untouched."""
        return ds.with_x(self.transform(ds.x))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: Any) -> Normalizer:
        bad = DataError("normalizer statistics must be an object with lists 'mean' and 'std' of equal length")
        if not isinstance(d, dict) or not isinstance(d.get("mean"), list) or not isinstance(d.get("std"), list):
            raise bad
        if len(d["mean"]) != len(d["std"]) or not d["mean"]:
            raise bad
        try:
            mean = torch.tensor(d["mean"], dtype=torch.float32)
            std = torch.tensor(d["std"], dtype=torch.float32)
        except (TypeError, ValueError):
            raise bad from None
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()) or (std <= 0).any():
            raise DataError("normalizer statistics must be finite numbers with every std above 0")
        return cls(mean, std)

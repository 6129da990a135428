"""Data augmentation of training batches, on whatever device the batch is on.

Geometric options (images only) are sampled per image and applied together as one affine warp
per batch (``affine_grid`` + ``grid_sample``); a ``mask`` target is warped the same way with
nearest sampling (pixels moved in from outside become background, 0) and a ``box`` target
becomes the bounding box of its warped corners, clipped to the image (after a rotation that is
a little looser than the shape). Photometric options change intensities and work on any input.

Mixup does not mix the targets themselves: it returns ``mix = (perm, lam)`` and the loss is
``lam · loss(out, t) + (1 − lam) · loss(out, t[perm])`` (see :func:`mixed_loss`), which is the
same thing for cross-entropy, BCE and MSE and works for every target kind.

The augmenter runs on the batch it is handed; the trainer normalizes first, so ``noise`` and
``brightness`` are in normalized units and padding (0) is the training mean.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.config import AUGMENT_OPTIONS, augment_problem
from engine.data.base import DataError

__all__ = ["AUGMENT_OPTIONS", "Augmenter", "Mix", "mixed_loss"]

GEOMETRIC = ("flip", "shift", "rotation", "scale")

Mix = tuple[Tensor, float]  # (perm, lam)


def _validated(spec: dict[str, Any]) -> dict[str, float]:
    """The options that are on, as floats; a wrong one is refused as ``engine.config`` refuses it in a project."""
    problem = augment_problem(spec)
    if problem:
        raise DataError(problem)
    return {key: float(value) for key, value in spec.items() if value}


class Augmenter:
    """Random, label-preserving changes to training batches, driven by a generator for repeatability.

    Args:
        spec: option name -> value, options from ``AUGMENT_OPTIONS``; zero or false turns one off.
    """

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        self.spec = _validated(spec or {})

    @property
    def is_identity(self) -> bool:
        return not self.spec

    @property
    def geometric(self) -> bool:
        return any(k in self.spec for k in GEOMETRIC)

    def check(self, input_shape: tuple[int, ...]) -> None:
        """Refuse geometric options for vector inputs before training starts."""
        if self.geometric and len(input_shape) != 3:
            used = ", ".join(k for k in GEOMETRIC if k in self.spec)
            raise DataError(
                f"augmentation {used} moves pixels, so it needs image inputs, not vectors of {input_shape[0]} features"
            )

    def __call__(
        self, x: Tensor, targets: dict[str, Tensor], generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor], Mix | None]:
        """An augmented copy of the batch ``x`` with its ``targets``, and the mixup pairing (or None)."""
        if self.is_identity:
            return x, targets, None
        self.check(tuple(x.shape[1:]))
        g = generator if generator is not None else torch.default_generator
        targets = dict(targets)
        if self.geometric:
            x, targets = self._warp(x, targets, g)
        x = self._photometric(x, g)
        mix = None
        if self.spec.get("mixup") and x.shape[0] > 1:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device))
            alpha = self.spec["mixup"]
            lam = float(np.random.default_rng(seed).beta(alpha, alpha))
            perm = torch.randperm(x.shape[0], generator=g, device=g.device).to(x.device)
            x = lam * x + (1.0 - lam) * x[perm]
            mix = (perm, lam)
        return x, targets, mix

    # ------------------------------------------------------------------------- helpers
    @staticmethod
    def _uniform(n: int, half: float, g: torch.Generator, device: torch.device) -> Tensor:
        """n values uniform in [-half, half]."""
        return ((torch.rand(n, generator=g, device=g.device) * 2 - 1) * half).to(device, torch.float32)

    def _warp(self, x: Tensor, targets: dict[str, Tensor], g: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        n, _, h, w = x.shape
        dev = x.device
        ones = torch.ones(n, device=dev)
        flip = ones
        if self.spec.get("flip"):
            flip = torch.where(torch.rand(n, generator=g, device=g.device).to(dev) < 0.5, -ones, ones)
        angle = self._uniform(n, self.spec.get("rotation", 0.0), g, dev) * (math.pi / 180)
        scale = 1 + self._uniform(n, self.spec.get("scale", 0.0), g, dev)
        shift = torch.stack([self._uniform(n, self.spec.get("shift", 0.0), g, dev) * 2 for _ in range(2)], dim=1)
        cos, sin = angle.cos(), angle.sin()
        # Forward map in grid coordinates ([-1, 1] across each axis): q = A p + shift, with
        # A = D⁻¹ (scale · R(angle) · diag(flip, 1)) D and D = diag(w/2, h/2) keeping angles true.
        fwd = torch.stack(
            [
                torch.stack([scale * cos * flip, -scale * sin * h / w], dim=1),
                torch.stack([scale * sin * flip * w / h, scale * cos], dim=1),
            ],
            dim=1,
        )
        inv = torch.linalg.inv(fwd)
        theta = torch.cat([inv, -(inv @ shift[:, :, None])], dim=2)  # output pixel -> input pixel
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if "mask" in targets:
            mask = targets["mask"][:, None].to(grid.dtype)
            moved = F.grid_sample(mask, grid, mode="nearest", padding_mode="zeros", align_corners=False)
            targets["mask"] = moved[:, 0].round().long()
        if "box" in targets:
            targets["box"] = _warp_boxes(targets["box"], fwd, shift)
        return x, targets

    def _photometric(self, x: Tensor, g: torch.Generator) -> Tensor:
        n, dev = x.shape[0], x.device
        per_sample = (n,) + (1,) * (x.dim() - 1)
        if "contrast" in self.spec:
            factor = (1 + self._uniform(n, self.spec["contrast"], g, dev)).view(per_sample).to(x.dtype)
            mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
            x = (x - mean) * factor + mean
        if "brightness" in self.spec:
            x = x + self._uniform(n, self.spec["brightness"], g, dev).view(per_sample).to(x.dtype)
        if "noise" in self.spec:
            noise = torch.randn(x.shape, generator=g, device=g.device).to(dev, x.dtype)
            x = x + self.spec["noise"] * noise
        return x


def _warp_boxes(box: Tensor, fwd: Tensor, shift: Tensor) -> Tensor:
    """Bounding boxes (x, y, w, h fractions) of the warped corners of each box, clipped to the image."""
    x0, y0, bw, bh = box.float().unbind(dim=1)
    xs = torch.stack([x0, x0 + bw, x0, x0 + bw], dim=1) * 2 - 1
    ys = torch.stack([y0, y0, y0 + bh, y0 + bh], dim=1) * 2 - 1
    corners = torch.stack([xs, ys], dim=1)  # (n, 2, 4) in grid coordinates
    moved = (fwd.to(corners.dtype) @ corners + shift[:, :, None].to(corners.dtype) + 1) / 2
    lo = moved.amin(dim=2).clamp(0, 1)
    hi = moved.amax(dim=2).clamp(0, 1)
    return torch.cat([lo, hi - lo], dim=1).to(box.dtype)


def mixed_loss(loss: Callable[[Tensor, Tensor], Tensor], output: Tensor, target: Tensor, mix: Mix | None) -> Tensor:
    """The loss of a (possibly mixup-mixed) batch: ``lam·loss(out, t) + (1−lam)·loss(out, t[perm])``."""
    if mix is None:
        return loss(output, target)
    perm, lam = mix
    return lam * loss(output, target) + (1.0 - lam) * loss(output, target[perm])

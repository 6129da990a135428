"""Data augmentation of training batches, on whatever device the batch is on.

Geometric options (images only) are sampled per image and applied together as one warp per
batch (``affine_grid`` + ``grid_sample``), with the elastic deformation of the U-Net paper (a
coarse grid of random offsets, upsampled bicubic) added to the affine grid; a ``mask`` target is
warped the same way with nearest sampling (pixels moved in from outside become background, 0) and
a ``box`` target becomes the bounding box of its warped corners, clipped to the image (after a
rotation that is a little looser than the shape; with ``elastic``, the bounding box of the warped
box's pixels). ``vflip`` mirrors top-bottom by indexing, before the warp, so it is exact.
Photometric options change intensities and work on any input; ``cutout`` then erases one square
per image to 0 and leaves targets alone.

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

GEOMETRIC = ("flip", "shift", "rotation", "scale", "elastic")  # the options of the one warp
IMAGE_ONLY = ("flip", "vflip", "shift", "rotation", "scale", "elastic", "cutout")
ELASTIC_GRID = 3  # the coarse grid of random offsets is 3 × 3, as in the U-Net paper

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
        """Refuse the options that work on pictures (moving or erasing pixels) for vector inputs before training."""
        used = ", ".join(k for k in IMAGE_ONLY if k in self.spec)
        if used and len(input_shape) != 3:
            raise DataError(
                f"augmentation {used} works on pixels, so it needs image inputs, "
                f"not vectors of {input_shape[0]} features"
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
        if self.spec.get("vflip"):
            x, targets = self._vflip(x, targets, g)
        if self.geometric:
            x, targets = self._warp(x, targets, g)
        x = self._photometric(x, g)
        if "cutout" in self.spec:
            x = self._cutout(x, g)
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
        if "elastic" in self.spec:
            grid = grid + _elastic_field(n, h, w, self.spec["elastic"], g).to(dev, grid.dtype)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if "mask" in targets:
            mask = targets["mask"][:, None].to(grid.dtype)
            moved = F.grid_sample(mask, grid, mode="nearest", padding_mode="zeros", align_corners=False)
            targets["mask"] = moved[:, 0].round().long()
        if "box" in targets and "elastic" in self.spec:
            # NOTE: a bent box has no corners to follow: warp its pixels and bound them (to a pixel).
            pixels = _box_pixels(targets["box"], h, w).to(grid.dtype)
            moved = F.grid_sample(pixels, grid, mode="nearest", padding_mode="zeros", align_corners=False)
            targets["box"] = _box_of_pixels(moved[:, 0]).to(targets["box"].dtype)
        elif "box" in targets:
            targets["box"] = _warp_boxes(targets["box"], fwd, shift)
        return x, targets

    @staticmethod
    def _vflip(x: Tensor, targets: dict[str, Tensor], g: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        """Mirror top-bottom each image with probability 1/2, with its mask or box."""
        n = x.shape[0]
        # NOTE: an index flip, not a warp: grid_sample's arithmetic is a few ulps off at pixel centres.
        chosen = (torch.rand(n, generator=g, device=g.device) < 0.5).to(x.device)
        x = torch.where(chosen.view(n, 1, 1, 1), x.flip(-2), x)
        if "mask" in targets:
            mask = targets["mask"]
            targets["mask"] = torch.where(chosen.view(n, 1, 1).to(mask.device), mask.flip(-2), mask)
        if "box" in targets:
            box = targets["box"]
            flipped = torch.cat([box[:, :1], 1 - box[:, 1:2] - box[:, 3:4], box[:, 2:]], dim=1)
            targets["box"] = torch.where(chosen.view(n, 1).to(box.device), flipped, box)
        return x, targets

    def _cutout(self, x: Tensor, g: torch.Generator) -> Tensor:
        """Erase one random square per image (all channels) to 0, the mean in the normalized space."""
        n, _, h, w = x.shape
        side = max(1, math.floor(self.spec["cutout"] * min(h, w) + 0.5))  # halves round up
        top = (torch.rand(n, generator=g, device=g.device) * (h - side + 1)).long().clamp(max=h - side).to(x.device)
        left = (torch.rand(n, generator=g, device=g.device) * (w - side + 1)).long().clamp(max=w - side).to(x.device)
        rows = torch.arange(h, device=x.device)[None, :, None]
        cols = torch.arange(w, device=x.device)[None, None, :]
        inside = ((rows >= top[:, None, None]) & (rows < top[:, None, None] + side)
                  & (cols >= left[:, None, None]) & (cols < left[:, None, None] + side))
        return x.masked_fill(inside[:, None], 0.0)

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


def _elastic_field(n: int, h: int, w: int, strength: float, g: torch.Generator) -> Tensor:
    """Per image, an (h, w, 2) displacement in grid units: a coarse grid of offsets, upsampled bicubic.

    An offset of std ``strength`` × the image size is ``2 · strength`` in grid units ([-1, 1] across).
    """
    coarse = torch.randn(n, 2, ELASTIC_GRID, ELASTIC_GRID, generator=g, device=g.device) * (2 * strength)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1)  # (n, h, w, [x, y]), as affine_grid's grid


def _box_pixels(box: Tensor, h: int, w: int) -> Tensor:
    """Each box (x, y, w, h fractions) as an (n, 1, h, w) picture: 1 on the pixels whose centres it covers."""
    x0, y0, bw, bh = box.float().unbind(dim=1)
    ys = (torch.arange(h, device=box.device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=box.device, dtype=torch.float32) + 0.5) / w
    in_y = (ys[None] >= y0[:, None]) & (ys[None] <= (y0 + bh)[:, None])
    in_x = (xs[None] >= x0[:, None]) & (xs[None] <= (x0 + bw)[:, None])
    return (in_y[:, :, None] & in_x[:, None, :]).float()[:, None]


def _box_of_pixels(pixels: Tensor) -> Tensor:
    """The bounding boxes (x, y, w, h fractions) of the pixels that are on in (n, h, w); (0, 0, 0, 0) if none."""
    _, h, w = pixels.shape
    on = pixels > 0.5
    rows, cols = on.any(dim=2), on.any(dim=1)
    top = torch.where(rows.any(dim=1), rows.float().argmax(dim=1), 0)
    bottom = torch.where(rows.any(dim=1), h - rows.flip(1).float().argmax(dim=1), 0)
    left = torch.where(cols.any(dim=1), cols.float().argmax(dim=1), 0)
    right = torch.where(cols.any(dim=1), w - cols.flip(1).float().argmax(dim=1), 0)
    return torch.stack([left / w, top / h, (right - left) / w, (bottom - top) / h], dim=1).float()


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

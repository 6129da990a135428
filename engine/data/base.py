"""The in-memory data set and the helpers that fit raw data to a network's Input shape.

Every source (generated, bundled with scikit-learn, or read from files) ends as one
:class:`Dataset`: plain tensors, small enough to keep in memory whole.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data.basics import TARGET_WORDS, DataError, shape_text, vector_image_shape
from engine.userfiles import NotRegularFile, open_regular_file

__all__ = [
    "TARGET_KEYS",
    "TARGET_WORDS",
    "DataError",
    "Dataset",
    "FileRefused",
    "bytes_text",
    "check_memory",
    "fit_images",
    "fit_vectors",
    "free_memory",
    "is_allocation_failure",
    "open_regular",
    "os_reason",
    "shape_text",
]

#: target name -> (dtype, what it holds); the output heads train against these.
TARGET_KEYS = {
    "label": (torch.int64, "(N,) class indices, for a class output"),
    "binary": (torch.float32, "(N, k) 0/1 floats, for a binary output"),
    "value": (torch.float32, "(N, k) floats, for a regression output"),
    "mask": (torch.int64, "(N, H, W) class index per pixel, for a segmentation output"),
    "box": (torch.float32, "(N, 4) x, y (top-left corner), width, height as fractions of the image"),
}

class FileRefused(DataError):
    """A file that cannot be opened as data; ``reason`` says why in a few words ("permission denied")."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# ------------------------------------------------------------------------ files and memory
def os_reason(exc: BaseException) -> str:
    """Why the system refused, in its own short words ("Permission denied"), never a traceback's."""
    if isinstance(exc, ValueError):  # os functions raise it for a path with a NUL character
        return "the path holds a NUL character"
    return getattr(exc, "strerror", None) or "the system refused"


def open_regular(path: Path, what: str) -> BinaryIO:
    """``path`` opened for reading in binary, refused at once with a :class:`FileRefused` unless it
    is a regular file (``what`` names it in messages: "CSV file", "npz file", "image").

    NOTE: :func:`engine.userfiles.open_regular_file` opens it non-blocking and checks the open
    descriptor: an ordinary open of a FIFO waits for a writer forever.
    """
    try:
        return open_regular_file(path, what)
    except FileNotFoundError:
        raise FileRefused(f"{what} {path} does not exist", "it does not exist") from None
    except PermissionError:
        raise FileRefused(
            f"{what} {path} cannot be read (permission denied): allow reading it, or copy it somewhere you can",
            "it cannot be read (permission denied)",
        ) from None
    except NotRegularFile as exc:
        if stat.S_ISDIR(exc.mode):
            raise FileRefused(f"{path} is a folder, not a {what}", "it is a folder") from None
        raise FileRefused(
            f"{what} {path} is not a regular file (it is a pipe, socket or device), so it is not read: "
            "choose the file itself",
            "it is not a regular file (a pipe, socket or device)",
        ) from None
    except (OSError, ValueError) as exc:
        why = os_reason(exc)
        raise FileRefused(f"{what} {path} cannot be opened ({why})", f"it cannot be opened ({why})") from None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """What a memory limit of this process's control group (a container) still allows, if any."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            with open(limit_file, encoding="ascii") as f:
                limit = f.read().strip()
            with open(usage_file, encoding="ascii") as f:
                used = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge number: no limit
            return max(int(limit) - used, 0)
    return None


def free_memory() -> int | None:
    """Bytes of memory this computer can give the program now, or None where that is unknown.

    Linux reports what it can free without swapping (``MemAvailable``), lowered to a container's
    limit; elsewhere the free physical pages, where the system says.
    """
    known = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    if not known:
        try:
            known.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(known)


def bytes_text(n: int) -> str:
    """A size in a learner's words, in powers of 1000: ``1536`` -> ``'1.5 kB'``, ``30105600000`` -> ``'30.1 GB'``."""
    if n < 1000:
        return f"{n} bytes"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        n /= 1000
        if n < 999.95 or unit == "PB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


#: the share of free memory a data set may take: splitting and normalizing make a second copy
DATA_SHARE_OF_FREE = 0.5


def check_memory(need: int, what: str, advice: str) -> None:
    """Refuse, before allocating, data of ``need`` bytes that would not fit in memory twice over.

    Args:
        what: what needs the memory, naming the file or setting ("images/: loading 50,000 images of 3×224×224").
        advice: what to do instead ("use a smaller image size or fewer images").
    """
    free = free_memory()
    if free is not None and need > free * DATA_SHARE_OF_FREE:
        raise DataError(
            f"{what} needs {bytes_text(need)} of memory, and training keeps a second copy, "
            f"but only {bytes_text(free)} is free: {advice}"
        )


def is_allocation_failure(exc: BaseException) -> bool:
    """True for a failed memory allocation: ``MemoryError``, or PyTorch's CPU allocator refusing."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc) if isinstance(exc, RuntimeError) else ""
    return "DefaultCPUAllocator" in text or "can't allocate memory" in text or "not enough memory" in text


IndexLike = Sequence[int] | np.ndarray | Tensor


@dataclass
class Dataset:
    """Samples ``x`` (N, *input_shape) float32 with their targets, all as tensors in memory.

    Attributes:
        x: the inputs, float32.
        targets: some of ``TARGET_KEYS``, each with N rows.
        classes: names of the class indices in ``label`` (None without classes).
        name: the source, for messages and titles.
        warnings: things the loader noticed and worked around (a skipped corrupt file).
        mask_classes: names of the class indices in ``mask`` (index 0 is "background").
    """

    x: Tensor
    targets: dict[str, Tensor]
    classes: list[str] | None
    name: str
    warnings: list[str] = field(default_factory=list)
    mask_classes: list[str] | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        for key, t in self.targets.items():
            if key not in TARGET_KEYS:
                raise DataError(f"{self.name}: unknown target {key!r}; known targets are {', '.join(TARGET_KEYS)}")
            if t.shape[0] != n:
                raise DataError(f"{self.name}: target {key!r} has {t.shape[0]} rows but there are {n} samples")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    def subset(self, indices: IndexLike) -> Dataset:
        """The samples at ``indices`` (copied), with every target alongside."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64) if not isinstance(indices, Tensor) else indices)
        idx = idx.to(torch.int64).reshape(-1)
        return replace(
            self,
            x=self.x[idx],
            targets={k: v[idx] for k, v in self.targets.items()},
            warnings=list(self.warnings),
        )

    def with_x(self, x: Tensor) -> Dataset:
        """The same samples and targets with other inputs (normalized ones, say)."""
        return replace(self, x=x, targets=dict(self.targets), warnings=list(self.warnings))


# ------------------------------------------------------------------------ fitting to the Input
def rgb_or_gray_shape(input_shape: tuple[int, ...], image_size: int | None, what: str) -> tuple[int, int, int]:
    """(C, H, W) of the images ``what`` must produce for this Input: its own image shape, or a
    square grayscale/RGB image whose flattened length matches a vector Input."""
    if len(input_shape) == 3:
        c, h, w = input_shape
    else:
        found = vector_image_shape(int(input_shape[0]), 1, image_size)
        if found is None:
            raise DataError(
                f"{what} makes square images: a vector Input needs a square number of features "
                f"(784 for 28×28 grayscale, 3072 for 32×32 RGB), not {input_shape[0]}"
            )
        c, h = found
        w = h
    if c not in (1, 3):
        raise DataError(f"{what} makes grayscale (1 channel) or RGB (3 channels) images; the Input has {c} channels")
    return c, h, w

def _convert_channels(x: Tensor, channels: int, name: str) -> Tensor:
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    raise DataError(
        f"{name} has {have}-channel images but the Input has {channels} channels: "
        "set the Input's channels to 1 (grayscale) or 3 (RGB)"
    )


def resize_images(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (N, C, H, W) floats; antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def resize_masks(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of (N, H, W) class-index masks."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask[:, None].float(), size=size, mode="nearest")[:, 0].round().to(torch.int64)


def fit_images(x: Tensor, input_shape: tuple[int, ...], name: str, image_size: int | None = None) -> Tensor:
    """Fit (N, C, H, W) images in [0, 1] to an image Input (C, H, W) or a vector Input (F,).

    A vector Input takes the image flattened: as it is when F = C·H·W, else resized to a square
    side s with F = s², or 3·s² for RGB (``image_size`` picks s when given).
    """
    if len(input_shape) == 3:
        c, h, w = input_shape
        x = _convert_channels(resize_images(x, (h, w)), c, name)
        return x.clamp(0.0, 1.0).contiguous()
    if len(input_shape) == 1:
        (features,) = input_shape
        n, c, h, w = x.shape
        if features == c * h * w:
            return x.reshape(n, -1).contiguous()
        found = vector_image_shape(features, c, image_size)
        if found is None:
            raise DataError(
                f"{name} holds {shape_text(x.shape[1:])} images: a vector Input needs {c * h * w} features "
                f"(the image flattened) or a square number of pixels such as {28 * 28} for 28×28, "
                f"not {features}; or use an image Input"
            )
        c2, s = found
        x = _convert_channels(resize_images(x, (s, s)), c2, name).clamp(0.0, 1.0)
        return x.reshape(n, -1).contiguous()
    raise DataError(f"{name}: the Input shape {shape_text(input_shape)} is neither an image (C×H×W) nor a vector")


def fit_vectors(x: Tensor, input_shape: tuple[int, ...], name: str, what: str, reshape: bool = False) -> Tensor:
    """Check (N, F) feature rows against the Input; ``reshape`` lets F values fill any Input shape.

    Args:
        what: how the data is described in messages ("4 features (the flower's measurements)").
    """
    n, features = x.shape[0], int(np.prod(x.shape[1:]))
    want = int(np.prod(input_shape))
    if len(input_shape) == 1 and features == want:
        return x.reshape(n, want).contiguous()
    if reshape and features == want:
        return x.reshape(n, *input_shape).contiguous()
    if len(input_shape) == 1:
        raise DataError(f"{name} has {what} but the Input expects {want} features: set the Input's features to {features}")
    raise DataError(
        f"{name} has {what} but the Input expects {shape_text(input_shape)} images: "
        f"use a vector Input with {features} features"
    )


def as_float(a: Any) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)


def labels_and_binary(labels: np.ndarray, n_classes: int) -> dict[str, Tensor]:
    """The ``label`` target, and ``binary`` beside it when there are exactly two classes."""
    label = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    out = {"label": label}
    if n_classes == 2:
        out["binary"] = label.to(torch.float32)[:, None]
    return out

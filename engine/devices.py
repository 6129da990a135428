"""The devices training can use: the CPU and each CUDA GPU (``cuda:0``, ``cuda:1``...) with its name and memory.

A project's ``training.device`` is ``auto`` (the first GPU when there is one, else the CPU), ``cpu``, ``cuda``
(the current GPU) or ``cuda:N``. :func:`is_device_choice` checks the spelling without PyTorch, so a project
file is checked when it loads; :func:`list_devices` and :func:`resolve_device` ask PyTorch, which is imported
when they are called. The window asks a child Python for the list (``python -m engine.devices`` prints it as
JSON), so that its own process never imports PyTorch for it.

Out of GPU memory, :func:`largest_fitting_batch` halves the batch size until one step of forward and backward
fits (:func:`fits_on_device` tries one), so the message can name a batch size that fits.
"""

from __future__ import annotations

import gc
import json
import re
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable

__all__ = [
    "DEVICE_EXPECT",
    "DeviceError",
    "DeviceInfo",
    "device_title",
    "fits_on_device",
    "free_memory",
    "is_device_choice",
    "is_out_of_memory",
    "largest_fitting_batch",
    "list_devices",
    "resolve_device",
]

#: what ``training.device`` may be, in words (for a refusal)
DEVICE_EXPECT = "auto, cpu, cuda or cuda:N (N: the GPU's number, from 0)"
_CHOICE = re.compile(r"auto|cpu|cuda(:(0|[1-9][0-9]{0,2}))?")


class DeviceError(ValueError):
    """The device asked for is not one this machine has; the message names it and what there is."""


@dataclass(frozen=True)
class DeviceInfo:
    """One device: ``id`` as a project stores it (``cpu``, ``cuda:1``), its name and memory in bytes (None: the CPU)."""

    id: str
    name: str
    memory: int | None = None

    def title(self) -> str:
        """``cuda:1 · NVIDIA H100 80GB HBM3 · 79.1 GiB`` (``cpu · CPU``)."""
        size = f" · {self.memory / 2**30:.1f} GiB" if self.memory else ""
        return f"{self.id} · {self.name}{size}"


def is_device_choice(value: Any) -> bool:
    """Whether ``value`` is spelled as a device choice (``auto``, ``cpu``, ``cuda``, ``cuda:N``); no PyTorch."""
    return isinstance(value, str) and _CHOICE.fullmatch(value) is not None


def device_title(choice: str, devices: list[DeviceInfo] | None = None) -> str:
    """A device choice in words, with the GPU's name and memory when ``devices`` lists it."""
    known = {d.id: d for d in devices or ()}
    if choice in known:
        return known[choice].title()
    return {"auto": "auto (a GPU when there is one)", "cpu": "cpu", "cuda": "cuda (the current GPU)"}.get(
        choice, f"{choice} (not on this machine)")


# ---------------------------------------------------------------------- what PyTorch sees
def list_devices() -> list[DeviceInfo]:
    """The CPU, then each CUDA GPU PyTorch sees, with its name and total memory."""
    import torch

    out = [DeviceInfo("cpu", "CPU")]
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        for i in range(count):
            props = torch.cuda.get_device_properties(i)
            out.append(DeviceInfo(f"cuda:{i}", props.name, int(props.total_memory)))
    except Exception:  # noqa: BLE001 - a broken CUDA setup still trains on the CPU
        pass
    return out


def resolve_device(choice: str, devices: list[DeviceInfo] | None = None):
    """The ``torch.device`` for a device choice; ``devices`` (default: :func:`list_devices`) is what there is.

    Raises:
        DeviceError: the spelling is wrong, or the machine has no such GPU (the message lists the ones it has).
    """
    import torch

    if not is_device_choice(choice):
        raise DeviceError(f"the device {_show(choice)} is not one Net Designer knows: choose {DEVICE_EXPECT}")
    if choice == "cpu":
        return torch.device("cpu")
    gpus = [d for d in (devices if devices is not None else list_devices()) if d.id.startswith("cuda:")]
    if choice == "auto":
        return torch.device(gpus[0].id) if gpus else torch.device("cpu")
    if not gpus:
        raise DeviceError(f"training was asked to use {choice}, but this machine has no CUDA GPU: "
                          "choose cpu or auto")
    if choice == "cuda":
        return torch.device("cuda")
    if choice not in {d.id for d in gpus}:
        have = "; ".join(d.title() for d in gpus)
        raise DeviceError(f"training was asked to use {choice}, but this machine has {len(gpus)} CUDA "
                          f"GPU{'s' if len(gpus) != 1 else ''} ({have}): choose one of them, cpu or auto")
    return torch.device(choice)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------------- out of memory
def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is PyTorch running out of device memory (its own error, or a RuntimeError saying so)."""
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_memory(device=None) -> None:
    """Give back what the allocator keeps of freed tensors (after collecting the ones only cycles hold)."""
    import torch

    gc.collect()
    if device is not None and getattr(device, "type", device) == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def largest_fitting_batch(fits: Callable[[int], bool], batch_size: int) -> int | None:
    """The first of ``batch_size // 2``, ``// 4``, ... down to 1 for which ``fits(size)`` is true; None if none.

    ``fits`` tries one size (see :func:`fits_on_device`); it is called once per size, largest first.
    """
    size = batch_size // 2
    while size >= 1:
        if fits(size):
            return size
        size //= 2
    return None


def fits_on_device(step: Callable[[int], None], size: int, device=None) -> bool:
    """Whether ``step(size)`` (one forward and backward on ``size`` samples) runs without running out of memory.

    Memory is freed before and after, so each size starts from the same state. Any other error is raised.
    """
    free_memory(device)
    try:
        step(size)
        return True
    except Exception as exc:  # NOTE: only running out of memory is an answer; anything else is raised
        if not is_out_of_memory(exc):
            raise
        _drop_frames(exc)
        return False
    finally:
        free_memory(device)


def _drop_frames(exc: BaseException) -> None:
    """Let go of the tensors the failed step's frames still hold (a traceback keeps its frames' locals)."""
    import traceback

    traceback.clear_frames(exc.__traceback__)


def main() -> int:
    """Print the devices as JSON, one object each (what the window's child Python answers)."""
    print(json.dumps([asdict(d) for d in list_devices()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

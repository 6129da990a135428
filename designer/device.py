"""Which device training will use, in words for the status bar."""

from __future__ import annotations


def training_device_label() -> str:
    """``"CUDA: <device name>"`` when PyTorch sees a GPU, else ``"CPU"``."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"CUDA: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    except Exception:  # noqa: BLE001 - a broken CUDA setup still trains on the CPU
        pass
    return "CPU"

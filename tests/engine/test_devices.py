"""Devices: each GPU by number with its name and memory, clear refusals, and a batch size that fits after OOM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import devices
from engine.config import TrainingConfig
from engine.devices import (
    DeviceError,
    DeviceInfo,
    fits_on_device,
    is_device_choice,
    largest_fitting_batch,
    list_devices,
    resolve_device,
)
from engine.errors import ProjectError
from engine.templates import load_template
from engine.training import trainer as trainer_module
from engine.training.events import EpochDone, Failed, Finished
from engine.training.runs import find_checkpoint, read_run
from engine.training.trainer import Trainer, TrainingError, pick_device

ROOT = Path(__file__).resolve().parents[2]
TWO_GPUS = [DeviceInfo("cpu", "CPU"), DeviceInfo("cuda:0", "NVIDIA A100", 40 * 2**30),
            DeviceInfo("cuda:1", "NVIDIA H100", 80 * 2**30)]


# ---------------------------------------------------------------------- which device
@pytest.mark.parametrize("text, ok", [
    ("auto", True), ("cpu", True), ("cuda", True), ("cuda:0", True), ("cuda:1", True), ("cuda:15", True),
    ("cuda:999", True), ("gpu", False), ("CUDA", False), ("cuda:", False), ("cuda:01", False), ("cuda:-1", False),
    ("cuda:1000", False), ("cuda:1 ", False), ("mps", False), ("", False), (1, False), (None, False),
])
def test_a_device_is_spelled_auto_cpu_cuda_or_cuda_n(text, ok):
    assert is_device_choice(text) is ok


def test_a_project_stores_a_gpu_by_number_and_refuses_a_misspelled_one():
    assert TrainingConfig.from_dict({"device": "cuda:1"}).to_dict()["device"] == "cuda:1"
    with pytest.raises(ProjectError, match=r"training\.device must be auto, cpu, cuda or cuda:N .*not \"gpu:1\""):
        TrainingConfig.from_dict({"device": "gpu:1"})


@pytest.mark.parametrize("choice, expected", [
    ("cpu", "cpu"), ("auto", "cuda:0"), ("cuda", "cuda"), ("cuda:0", "cuda:0"), ("cuda:1", "cuda:1"),
])
def test_each_gpu_is_chosen_by_its_number(choice, expected):
    assert resolve_device(choice, TWO_GPUS) == torch.device(expected)


def test_a_gpu_the_machine_lacks_is_refused_naming_the_ones_it_has():
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda:2", TWO_GPUS)
    text = str(info.value)
    assert "cuda:2" in text and "2 CUDA GPUs" in text and "cuda:0 · NVIDIA A100 · 40.0 GiB" in text
    assert "cuda:1 · NVIDIA H100 · 80.0 GiB" in text and "\n" not in text
    with pytest.raises(DeviceError, match="has no CUDA GPU: choose cpu or auto"):
        resolve_device("cuda:0", TWO_GPUS[:1])
    with pytest.raises(DeviceError, match="'tpu' is not one Net Designer knows"):
        resolve_device("tpu", TWO_GPUS)
    assert resolve_device("auto", TWO_GPUS[:1]) == torch.device("cpu")


def test_the_trainer_refuses_a_missing_gpu_with_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setattr(devices, "list_devices", lambda: TWO_GPUS[:2])
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(TrainingError, match="asked to use cuda:1, but this machine has 1 CUDA GPU "):
        pick_device("cuda:1")
    p = load_template("mlp")
    p.training.device, p.training.epochs, p.data.samples = "cuda:3", 1, 100
    (event,) = list(Trainer(p).events())
    assert isinstance(event, Failed) and "cuda:3" in event.message and "cuda:0 · NVIDIA A100" in event.message


def test_every_gpu_is_listed_with_its_name_and_memory(monkeypatch):
    assert list_devices()[0] == DeviceInfo("cpu", "CPU")
    names = {0: ("Tesla T4", 15 * 2**30), 1: ("NVIDIA L4", 22 * 2**30)}

    class Props:
        def __init__(self, i):
            self.name, self.total_memory = names[i]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", Props)
    listed = list_devices()
    assert [d.id for d in listed] == ["cpu", "cuda:0", "cuda:1"]
    assert listed[2] == DeviceInfo("cuda:1", "NVIDIA L4", 22 * 2**30)
    assert listed[1].title() == "cuda:0 · Tesla T4 · 15.0 GiB"


@pytest.mark.slow  # NOTE: trains or starts a Python (tests/engine stays under 30 s without these)
def test_the_list_comes_as_json_from_a_child_python():
    out = subprocess.run([sys.executable, "-m", "engine.devices"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    listed = [DeviceInfo(**d) for d in json.loads(out)]
    assert listed == list_devices()


# ---------------------------------------------------------------------- out of memory: halving
def _halved(batch_size: int, threshold: int) -> int | None:
    """Independently: the largest of floor(batch / 2**k), k >= 1, that is at least 1 and at most the threshold."""
    candidates = {batch_size // 2**k for k in range(1, 40)}
    fitting = [c for c in candidates if 1 <= c <= threshold]
    return max(fitting) if fitting else None


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 64, 100, 128, 250, 1000, 4096, 65536])
@pytest.mark.parametrize("threshold", [0, 1, 2, 5, 16, 31, 50, 63, 64, 99, 500, 10**6])
def test_halving_finds_the_largest_halved_batch_that_fits(batch_size, threshold):
    tried = []

    def fits(size):
        tried.append(size)
        return size <= threshold

    found = largest_fitting_batch(fits, batch_size)
    assert found == _halved(batch_size, threshold)
    assert tried == sorted(set(tried), reverse=True) and all(1 <= s <= batch_size // 2 for s in tried)
    assert tried[-1] == (found if found is not None else 1) if tried else batch_size < 2


@pytest.mark.slow  # NOTE: trains or starts a Python (tests/engine stays under 30 s without these)
def test_only_running_out_of_memory_means_a_batch_does_not_fit():
    def oom(_size):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def old_style(_size):
        raise RuntimeError("CUDA error: out of memory")

    def broken(_size):
        raise ValueError("Expected more than 1 value per channel")

    assert fits_on_device(lambda size: None, 8) is True
    assert fits_on_device(oom, 8) is False and fits_on_device(old_style, 8) is False
    with pytest.raises(ValueError):
        fits_on_device(broken, 8)


def _limited_memory(monkeypatch, limit: list[int | None]):
    """The compiled model raises PyTorch's OutOfMemoryError for a training batch larger than ``limit[0]`` (None: no
    limit); evaluation, which keeps no activations for a backward pass, is left alone."""
    real = trainer_module.compile_graph

    def compile_with_limit(*args, **kwargs):
        compiled = real(*args, **kwargs)

        def guard(_module, inputs):
            if _module.training and limit[0] is not None and inputs[0].shape[0] > limit[0]:
                raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate for {inputs[0].shape[0]}")

        compiled.module.register_forward_pre_hook(guard)
        return compiled

    monkeypatch.setattr(trainer_module, "compile_graph", compile_with_limit)


@pytest.mark.slow  # NOTE: trains or starts a Python (tests/engine stays under 30 s without these)
@pytest.mark.parametrize("threshold", [0, 5, 20, 40])
def test_out_of_memory_names_the_largest_halved_batch_that_fits_and_keeps_the_run(tmp_path, monkeypatch, threshold):
    limit: list[int | None] = [None]
    _limited_memory(monkeypatch, limit)
    p = load_template("mlp")
    p.data.samples, p.training.batch_size, p.training.epochs, p.training.device = 400, 64, 5, "cpu"
    p.probes.enabled = False
    run = tmp_path / "run"
    events = []
    for event in Trainer(p, out_dir=run).events():
        events.append(event)
        if isinstance(event, EpochDone) and event.epoch == 2:
            limit[0] = threshold  # NOTE: from here on the device "has" memory for this many samples only
    failed = events[-1]
    assert isinstance(failed, Failed)
    message = failed.message
    assert message.startswith("the GPU ran out of memory with batch size 64")
    expected = _halved(64, threshold)
    if expected is None:
        assert "even a batch of 1 does not fit" in message
    else:
        assert f"a batch of {expected} fits (tried by halving it)" in message
        assert f"with the batch size {expected}" in message
    # nothing is lost: the run keeps epoch 2's checkpoint, and the message says how to go on from it
    assert "keeps the checkpoint of epoch 2" in message and f"--resume {run}" in message
    assert "Runs → Fork… from epoch 2" in message
    record = read_run(run)
    assert record.status == "failed" and record.message == message and len(record.history) == 2
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2
    if expected is not None:
        limit[0] = expected
        p.training.batch_size = expected
        fork = list(Trainer(p, out_dir=tmp_path / "fork", resume_from=find_checkpoint(run, epoch=2)).events())
        assert isinstance(fork[-1], Finished) and fork[-1].epochs_run == 5


@pytest.mark.slow  # NOTE: trains or starts a Python (tests/engine stays under 30 s without these)
def test_out_of_memory_before_any_epoch_says_there_is_no_checkpoint_yet(tmp_path, monkeypatch):
    _limited_memory(monkeypatch, [10])
    p = load_template("mlp")
    p.data.samples, p.training.batch_size, p.training.epochs, p.training.device = 200, 32, 2, "cpu"
    p.probes.enabled = False
    failed = list(Trainer(p, out_dir=tmp_path / "run").events())[-1]
    assert isinstance(failed, Failed)
    assert "a batch of 8 fits" in failed.message and "no checkpoint yet: train again with the batch size 8" in \
        failed.message

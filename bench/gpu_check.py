"""The GPU check: run on a machine with CUDA (a session that has one lends it for minutes); under 5 minutes on one GPU.

1. Devices: each CUDA device PyTorch sees, as the window lists it (cuda:N, name, memory); each one is
   picked by its number and runs a step, and one the machine lacks is refused with a message.
2. Fused optimizers: the form ``make_optimizer`` takes for SGD, Adam, RMSprop and Adagrad (fused on CUDA
   for SGD and Adam), and one step of each against the plain form on the same gradients.
3. Speed: LeNet-5 through the trainer and through a hand-written loop, same data, batch and optimizer,
   epochs in lockstep: samples/s and the ratio (target >= 0.98).
4. Mixed precision: one epoch with AMP on; the convolutions must run in float16 under autocast.
5. Out of memory: a wide network with a batch far too big for the GPU fails with a message naming a
   batch size that fits (found by halving); that size trains, and twice it does not fit.
6. Streaming: LeNet-5 on a ``.npz`` file streamed from disk through DataLoader workers (memory budget 0).
7. ``python main.py train`` on the LeNet-5 template with ``--device cuda:0``, and its test accuracy.

Run: python bench/gpu_check.py                 (exits 1 without CUDA)
     python bench/gpu_check.py --cpu-dry-run   (every step on the CPU on a few samples, to try the script where
        there is no GPU: step 5 simulates running out of memory above a batch of 40; a rehearsal, no measurement)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_training import compare, project_and_splits  # noqa: E402
from engine.data.base import Dataset  # noqa: E402
from engine.devices import DeviceError, fits_on_device, free_memory, list_devices, resolve_device  # noqa: E402
from engine.project import save_project  # noqa: E402
from engine.templates import load_template  # noqa: E402
from engine.training import trainer as trainer_module  # noqa: E402
from engine.training.events import Failed, Finished  # noqa: E402
from engine.training.trainer import Trainer, make_optimizer  # noqa: E402

#: the CPU rehearsal of step 5: a "device" that holds a training batch of this many samples at most
DRY_RUN_LIMIT = 40


def say(text: str) -> None:
    print(text, flush=True)


def check(device: str, epochs: int, repeats: int, samples: int | None = None) -> list[str]:
    """Runs every step on ``device`` (``cuda`` or ``cpu``), printing what each measured; returns what went wrong.

    ``samples``: train on that many samples only, with no warm-up (a rehearsal of the steps, not a measurement).
    """
    problems: list[str] = []
    for step in (check_devices, check_fused, check_speed, check_amp, check_oom, check_streaming, check_cli):
        t0 = time.perf_counter()
        try:
            problems += step(device, epochs=epochs, repeats=repeats, samples=samples)
        except Exception as exc:  # noqa: BLE001 - one broken step is reported, and the others still run
            problems.append(f"{step.__name__} raised {type(exc).__name__}: {exc}")
        say(f"  ({step.__name__}: {time.perf_counter() - t0:.1f} s)")
    return problems


# ---------------------------------------------------------------------- 1. devices
def check_devices(device: str, **_kw) -> list[str]:
    problems = []
    listed = list_devices()
    say("devices: " + "; ".join(d.title() for d in listed))
    gpus = [d for d in listed if d.id.startswith("cuda:")]
    if device == "cuda" and len(gpus) != torch.cuda.device_count():
        problems.append(f"{len(gpus)} GPUs listed, but PyTorch counts {torch.cuda.device_count()}")
    for d in gpus if device == "cuda" else listed:
        dev = resolve_device(d.id, listed)
        value = float((torch.ones(4, device=dev) * 2).sum())
        if value != 8.0:
            problems.append(f"{d.id} computed {value} for 8")
    missing = f"cuda:{len(gpus)}"
    try:
        resolve_device(missing, listed)
        problems.append(f"{missing} was not refused")
    except DeviceError as exc:
        say(f"refused as it should be: {exc}")
    return problems


# ---------------------------------------------------------------------- 2. fused optimizers
def check_fused(device: str, **_kw) -> list[str]:
    problems = []
    project = load_template("lenet5")
    for name in ("sgd", "adam", "rmsprop", "adagrad"):
        project.training.optimizer = name
        torch.manual_seed(0)
        fast_params = [torch.randn(64, 32, device=device, requires_grad=True), torch.randn(32, device=device,
                                                                                               requires_grad=True)]
        plain_params = [p.detach().clone().requires_grad_(True) for p in fast_params]
        fast = make_optimizer(fast_params, project.training)
        form = "fused" if fast.defaults.get("fused") else ("foreach" if fast.defaults.get("foreach") else "plain")
        plain = type(fast)(plain_params, **{k: v for k, v in fast.defaults.items() if k not in ("fused", "foreach")},
                           foreach=False)
        for params, opt in ((fast_params, fast), (plain_params, plain)):
            for _ in range(3):
                opt.zero_grad()
                (params[0].square().sum() + params[1].sin().sum()).backward()
                opt.step()
        diff = max(float((a - b).detach().abs().max()) for a, b in zip(fast_params, plain_params))
        say(f"{name}: {form} on {device}; after 3 steps it differs from the plain form by {diff:.1e}")
        if diff > 1e-4:
            problems.append(f"the {form} {name} differs from the plain one by {diff:.1e}")
        if device == "cuda" and name in ("sgd", "adam") and form != "fused":
            problems.append(f"{name} is not fused on CUDA ({form})")
    return problems


# ---------------------------------------------------------------------- 3. speed
def check_speed(device: str, epochs: int, repeats: int, samples: int | None, **_kw) -> list[str]:
    say(compare(device, epochs=epochs, repeats=repeats, samples=samples).report())
    return []


# ---------------------------------------------------------------------- 4. mixed precision
def check_amp(device: str, samples: int | None, **_kw) -> list[str]:
    problems = []
    project = load_template("lenet5")
    project.training.mixed_precision = True
    project.training.device = device
    splits = None
    if samples is not None:
        _, splits = project_and_splits(1, device, samples)
        project.data.normalize = False  # NOTE: those splits are normalized already
    trainer = Trainer(project, epochs=1, device=device, splits=splits)
    dtypes: set[torch.dtype] = set()
    original = trainer_module.compile_graph

    def watched(*args, **kwargs):
        compiled = original(*args, **kwargs)
        for module in compiled.module.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.register_forward_hook(lambda _m, _i, out: dtypes.add(out.dtype) if _m.training else None)
        return compiled

    trainer_module.compile_graph = watched
    try:
        t0 = time.perf_counter()
        last = None
        for event in trainer.events():
            last = event
    finally:
        trainer_module.compile_graph = original
    if isinstance(last, Finished):
        outcome = "finished, test " + ", ".join(f"{k} {v:.3f}" for k, v in last.test.items())
    else:
        outcome = f"failed: {getattr(last, 'message', last)}"
        problems.append(f"the mixed-precision epoch {outcome}")
    seen = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
    say(f"mixed precision, 1 epoch: {outcome} ({time.perf_counter() - t0:.1f} s); AMP "
        f"{'on' if trainer.amp else 'off (CUDA only)'}, convolutions in {seen}")
    if device == "cuda" and (not trainer.amp or dtypes != {torch.float16}):
        problems.append(f"AMP on CUDA: the convolutions ran in {seen}, not float16")
    return problems


# ---------------------------------------------------------------------- 5. out of memory
def wide_network(device: str, batch: int, n: int, filters: int):
    """LeNet-5 with ``filters`` in both convolutions ('same' padding), on ``n`` random samples, batch ``batch``."""
    project = load_template("lenet5")
    for conv in ("n2", "n5"):
        project.graph.set_params(conv, {"filters": filters, "padding": "same"})
    project.training.device, project.training.batch_size, project.training.epochs = device, batch, 1
    project.data.normalize, project.data.augment = False, {}
    project.probes.enabled = False
    g = torch.Generator().manual_seed(0)

    def split(size: int) -> Dataset:
        return Dataset(torch.randn(size, 1, 32, 32, generator=g), {"label": torch.randint(0, 10, (size,), generator=g)},
                       [str(i) for i in range(10)], "random")

    return project, (split(n), split(max(n // 16, 16)), split(max(n // 16, 16)))


def check_oom(device: str, samples: int | None, **_kw) -> list[str]:
    """A batch far too big: the message names the largest halved batch that fits, which then trains."""
    problems = []
    dry = device == "cpu"
    n = 256 if dry else 32768
    # NOTE: on a GPU a sample keeps about 12 MB for the backward pass: 32768 of them are far beyond any GPU
    project, splits = wide_network(device, batch=n, n=n, filters=8 if dry else 512)
    original = trainer_module.compile_graph
    if dry:  # NOTE: the CPU would swap rather than fail: a device that holds DRY_RUN_LIMIT samples is simulated
        def limited(*args, **kwargs):
            compiled = original(*args, **kwargs)

            def guard(module, inputs):
                if module.training and inputs[0].shape[0] > DRY_RUN_LIMIT:
                    raise torch.OutOfMemoryError(f"simulated: no room for a batch of {inputs[0].shape[0]}")

            compiled.module.register_forward_pre_hook(guard)
            return compiled

        trainer_module.compile_graph = limited
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            trainer = Trainer(project, splits=splits, out_dir=Path(tmp) / "run")
            last = list(trainer.events())[-1]
            say(f"out of memory with batch {n} ({time.perf_counter() - t0:.1f} s): {getattr(last, 'message', last)}")
            if not isinstance(last, Failed) or "ran out of memory" not in last.message:
                return [f"a batch of {n} on {device} did not run out of memory: {last}"]
            fits = _named_batch(last.message)
            if fits is None:
                return [f"the out-of-memory message names no batch size that fits: {last.message}"]
            if dry and fits != 32:
                problems.append(f"the simulated device holds {DRY_RUN_LIMIT}: halving 256 should find 32, not {fits}")
            if not dry and _fits(trainer, 2 * fits):
                problems.append(f"twice the batch named ({2 * fits}) fits too: halving stopped too early")
            del trainer
            free_memory(torch.device(device))
            project.training.batch_size = fits
            t0 = time.perf_counter()
            again = list(Trainer(project, splits=splits).events())[-1]
            say(f"a batch of {fits}: {'trains' if isinstance(again, Finished) else again} "
                f"({time.perf_counter() - t0:.1f} s)")
            if not isinstance(again, Finished):
                problems.append(f"the batch size the message named ({fits}) did not train: {again}")
    finally:
        trainer_module.compile_graph = original
    return problems


def _named_batch(message: str) -> int | None:
    import re

    found = re.search(r"a batch of (\d+) fits", message)
    return int(found.group(1)) if found else None


def _fits(trainer: Trainer, size: int) -> bool:
    """One forward and backward of the failed run's model on ``size`` random samples, on its device."""
    model = trainer.model

    def step(batch: int) -> None:
        x = torch.randn(batch, 1, 32, 32, device=trainer.device)
        model(x).float().sum().backward()
        model.zero_grad(set_to_none=True)

    return fits_on_device(step, size, trainer.device)


# ---------------------------------------------------------------------- 6. streaming
def check_streaming(device: str, samples: int | None, **_kw) -> list[str]:
    try:
        from engine.data import load_dataset
        from engine.data.streaming import is_streamed  # noqa: F401 - only whether the engine has the path
    except ImportError as exc:
        say(f"streaming: skipped, this engine has no streaming data path ({exc})")
        return []
    project = load_template("lenet5")
    if not hasattr(project.data, "memory_budget_gib"):
        say("streaming: skipped, this engine's data settings have no memory budget to stream past")
        return []
    data = load_dataset(project.data, (1, 32, 32))
    count = len(data) if samples is None else min(len(data), 2 * samples)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "digits.npz", x=data.x[:count].numpy(), y=data.targets["label"][:count].numpy())
        project.data.dataset, project.data.path, project.data.memory_budget_gib = "npz", "digits.npz", 0.0
        project.data.augment = {}
        project.training.device, project.training.epochs = device, 1
        project.probes.enabled = False
        trainer = Trainer(project, base_dir=Path(tmp), out_dir=Path(tmp) / "run")
        t0 = time.perf_counter()
        last = list(trainer.events())[-1]
        seconds = time.perf_counter() - t0
    if not isinstance(last, Finished):
        return [f"the streaming run failed: {getattr(last, 'message', last)}"]
    if trainer.stream is None:
        return ["the run with a memory budget of 0 did not stream its data"]
    tests = ", ".join(f"{k} {v:.3f}" for k, v in last.test.items())
    say(f"streaming from {count} samples in an npz file, 1 epoch: finished, test {tests} ({seconds:.1f} s)")
    return []


# ---------------------------------------------------------------------- 7. the command line
def check_cli(device: str, epochs: int, samples: int | None, **_kw) -> list[str]:
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "lenet.json"
        project = load_template("lenet5")
        if samples is not None:  # NOTE: a rehearsal: about that many samples train, the rest validate and test
            project.data.val_fraction = project.data.test_fraction = 0.45
        save_project(project, proj)
        t0 = time.perf_counter()
        chosen = "cuda:0" if device == "cuda" else device
        run = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "train", str(proj), "--device", chosen,
             "--epochs", str(epochs), "--out", str(Path(tmp) / "run")],
            capture_output=True, text=True,
        )
        tests = [line for line in run.stdout.splitlines() if line.startswith("test:")]
        if run.returncode != 0 or not tests:
            problems.append(f"main.py train on {chosen} failed: {run.stderr.strip() or run.stdout.strip()}")
        else:
            say(tests[-1])
        say(f"main.py train --device {chosen}, {epochs} epochs: {time.perf_counter() - t0:.1f} s")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=None,
                        help="train on this many samples, without a warm-up: a rehearsal of the steps, "
                        "not a measurement")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="every step on the CPU, small (--device cpu --epochs 1 --repeats 1 --samples 128), "
                        "running out of memory simulated: to try the script where there is no GPU")
    args = parser.parse_args(argv)
    if args.cpu_dry_run:
        args.device, args.epochs, args.repeats, args.samples = "cpu", 1, 1, args.samples or 128
    if args.device == "cuda" and not torch.cuda.is_available():
        say("gpu_check: no CUDA device here; run it on a machine with a GPU (or try it with --cpu-dry-run)")
        return 1
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (a dry run)"
    say(f"device: {name}, torch {torch.__version__}")
    t0 = time.perf_counter()
    problems = check(args.device, args.epochs, args.repeats, args.samples)
    for problem in problems:
        say(f"gpu_check: {problem}")
    say(f"gpu_check: {'FAILED' if problems else 'all steps passed'} in {time.perf_counter() - t0:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

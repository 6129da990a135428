"""Training throughput: Net Designer's trainer against a hand-written PyTorch loop.

Both train LeNet-5 on the same digits tensors with the same batch size, optimizer,
learning rate, schedule and epochs, and both evaluate the validation split after each epoch
and the test split at the end, so they do the same work. Prints samples/s and the ratio
trainer / hand loop (target >= 0.98).

The hand loop is written as the PyTorch tutorials write it, with ``torch.optim.Adam``'s
defaults. The trainer asks PyTorch for its fused Adam kernel (engine/training/trainer.py
make_optimizer), which makes its steps faster; so the loop runs a second time with the same
fused Adam, and the ratio against that one is the trainer's own overhead.

The runs go in lockstep: one epoch of each, then the next epoch of each in reverse order,
and so on. On a shared machine the speed of the cores drifts by tens of percent from one
second to the next, so whole runs one after the other measure the host as much as the
code (on a 2-core cloud machine, identical hand runs one after another differed by up to
35 %). Epochs side by side share the same drift, and the median of their ratios over all
runs is the figure for the target. ``--calibrate`` puts a second plain hand loop in the trainer's place, which
shows how still the ratios keep on this machine.

Run: python bench/bench_training.py [--device cpu|cuda] [--epochs N] [--repeats N] [--calibrate]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from engine.data import Normalizer, load_dataset, split_dataset  # noqa: E402
from engine.templates import load_template  # noqa: E402
from engine.training.events import EpochDone, Failed, Finished  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402


class HandLeNet(nn.Module):
    """LeNet-5 as a person would write it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def project_and_splits(epochs: int | None, device: str, samples: int | None = None):
    """The LeNet-5 template with ``epochs`` (None: the template's own) and its normalized splits.

    ``samples``: only the first that many training samples (a quick rehearsal, not a measurement).
    """
    project = load_template("lenet5")
    project.training.epochs = epochs or project.training.epochs
    project.training.device = device
    project.data.augment = {}  # plain loop on both sides
    data = load_dataset(project.data, (1, 32, 32))
    train, val, test = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)
    if samples is not None:
        train = train.subset(range(min(samples, len(train))))
    norm = Normalizer.fit(train)
    return project, tuple(norm.apply(s) for s in (train, val, test))


def trainer_epochs(project, splits, probes: bool = False, seen: Counter | None = None) -> Iterator[None]:
    """The trainer, one step per epoch (validation included); the last step is the test evaluation.

    ``probes``: with the live views at the project's schedule; ``seen`` counts the events by type name.
    """
    trainer = Trainer(project, splits=splits, probes=probes)
    trainer.project.data.normalize = False  # splits are already normalized, as for the hand loop
    for event in trainer.events():
        if isinstance(event, Failed):
            raise RuntimeError(event.message)
        if seen is not None:
            seen[type(event).__name__] += 1
        if isinstance(event, (EpochDone, Finished)):
            _sync(trainer.device)
            yield


def hand_epochs(project, splits, device: torch.device, fused: bool = False) -> Iterator[None]:
    """The hand-written loop, in the same steps as :func:`trainer_epochs`; ``fused``: with Adam's fused kernel."""
    torch.manual_seed(project.training.seed)
    train, val, test = splits
    model = HandLeNet().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=project.training.lr, **({"fused": True} if fused else {}))
    if project.training.schedule != "cosine":
        raise ValueError("the hand loop writes out the LeNet-5 template's cosine schedule")
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=project.training.epochs)
    bs = project.training.batch_size
    x, y = train.x.to(device), train.targets["label"].to(device)
    xv, yv = val.x.to(device), val.targets["label"].to(device)
    xt, yt = test.x.to(device), test.targets["label"].to(device)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(0)
    for _ in range(project.training.epochs):
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _evaluate(model, xv, yv)
        schedule.step()
        _sync(device)
        yield
    _evaluate(model, xt, yt)
    _sync(device)
    yield


def run_hand(project, splits, device: torch.device) -> float:
    """Samples/s of the hand-written loop, run on its own."""
    t0 = time.perf_counter()
    for _ in hand_epochs(project, splits, device):
        pass
    return _samples(project, splits) / (time.perf_counter() - t0)


def lockstep(*runs: Iterator[None], reverse_every: int = 1) -> list[list[float]]:
    """The seconds each step of some step generators takes, stepping them by turns.

    The order reverses every round (a b c, c b a, a b c, ...), so none always runs on caches
    another has just left, nor always first after a pause. The steps of one round ran
    within a second or so of each other, on a machine in the same state. ``reverse_every=2`` keeps
    the order for two rounds (a round of setup, then one of epochs: each side's epoch goes first in
    every other run).
    """
    spent: list[list[float]] = [[] for _ in runs]
    running: list[Iterator[None] | None] = list(runs)
    order = list(range(len(runs)))
    rounds = 0
    while any(g is not None for g in running):
        for side in order:
            steps = running[side]
            if steps is None:
                continue
            t0 = time.perf_counter()
            if next(steps, StopIteration) is StopIteration:
                running[side] = None
            else:
                spent[side].append(time.perf_counter() - t0)
        rounds += 1
        if rounds % reverse_every == 0:
            order.reverse()
    return spent


def _samples(project, splits) -> int:
    return len(splits[0]) * project.training.epochs


@torch.no_grad()
def _evaluate(model, x, y) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], 512):
        correct += (model(x[i : i + 512]).argmax(1) == y[i : i + 512]).sum().item()
    return correct / max(1, x.shape[0])


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


SIDES = ("trainer", "hand loop", "hand loop, fused Adam")


@dataclass
class Comparison:
    """Lockstep runs of :data:`SIDES`: samples/s of each run, and every epoch's seconds."""

    samples: int
    rates: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    epochs: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})

    def add(self, spent: list[list[float]]) -> None:
        for side, seconds in zip(SIDES, spent):
            self.rates[side].append(self.samples / sum(seconds))
            self.epochs[side].extend(seconds)

    def epoch_ratio(self, ours: str, theirs: str) -> float:
        """Median over all rounds of (their epoch's seconds / ours): ours's speed relative to theirs."""
        return statistics.median(t / o for o, t in zip(self.epochs[ours], self.epochs[theirs]))

    def run_ratios(self, ours: str, theirs: str) -> list[float]:
        return sorted(o / t for o, t in zip(self.rates[ours], self.rates[theirs]))

    def report(self, target: float = 0.98) -> str:
        lines = [f"{side + ':':23} {max(self.rates[side]):8.0f} samples/s (best run)" for side in SIDES]
        rounds = len(self.epochs["trainer"])
        lines.append(f"ratio trainer / hand loop, median of {rounds} epochs side by side: "
                     f"{self.epoch_ratio('trainer', 'hand loop'):.3f} (target >= {target})")
        lines.append(f"ratio trainer / hand loop with the same fused Adam (the trainer's own overhead): "
                     f"{self.epoch_ratio('trainer', 'hand loop, fused Adam'):.3f}")
        runs = self.run_ratios("trainer", "hand loop")
        lines.append(f"ratio trainer / hand loop of whole runs: median {statistics.median(runs):.3f} "
                     f"(range {runs[0]:.3f}-{runs[-1]:.3f})")
        return "\n".join(lines)


def compare(device: str, epochs: int | None, repeats: int, calibrate: bool = False,
            samples: int | None = None) -> Comparison:
    """``repeats`` lockstep runs of the trainer and both hand loops (see :func:`lockstep`).

    ``calibrate``: a plain hand loop in the trainer's place, which shows how still this machine keeps.
    ``samples``: a quick rehearsal on that many training samples, with no warm-up round.
    """
    project, splits = project_and_splits(epochs, device, samples)
    dev = torch.device("cuda" if device == "cuda" else "cpu")

    def runs() -> list[Iterator[None]]:
        ours = hand_epochs(project, splits, dev) if calibrate else trainer_epochs(project, splits)
        return [ours, hand_epochs(project, splits, dev), hand_epochs(project, splits, dev, fused=True)]

    result = Comparison(_samples(project, splits))
    if samples is None:
        lockstep(*runs())  # warm-up: first-call costs
    for _ in range(repeats):
        result.add(lockstep(*runs()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the LeNet-5 template's own (30)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calibrate", action="store_true",
                        help="the hand loop against itself in place of the trainer: how far this machine's noise moves the ratios")
    args = parser.parse_args()
    args.epochs = args.epochs or load_template("lenet5").training.epochs
    result = compare(args.device, args.epochs, args.repeats, calibrate=args.calibrate)
    print(f"device: {args.device}, torch threads: {torch.get_num_threads()}, epochs: {args.epochs}, {args.repeats} runs"
          + (" -- calibration: 'trainer' is a second hand loop" if args.calibrate else ""))
    print(result.report())


if __name__ == "__main__":
    main()

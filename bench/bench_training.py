"""Training throughput: Net Designer's trainer against a hand-written PyTorch loop.

Both train LeNet-5 on the same digits tensors with the same batch size, optimizer,
learning rate and epochs, and both evaluate the validation split after each epoch
and the test split at the end, so they do the same work. Runs alternate (ours,
hand, ours, hand, ...) and the best of each is kept, which cancels most noise from
other processes. Prints samples/s for both and the ratio (target >= 0.98).

Run: python bench/bench_training.py [--device cpu|cuda] [--epochs N] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from engine.data import Normalizer, load_dataset, split_dataset  # noqa: E402
from engine.templates import load_template  # noqa: E402
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


def project_and_splits(epochs: int | None, device: str):
    """The LeNet-5 template with ``epochs`` (None: the template's own) and its normalized splits."""
    project = load_template("lenet5")
    project.training.epochs = epochs or project.training.epochs
    project.training.device = device
    project.data.augment = {}  # plain loop on both sides
    data = load_dataset(project.data, (1, 32, 32))
    splits = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)
    norm = Normalizer.fit(splits.train)
    return project, tuple(norm.apply(s) for s in splits)


def run_trainer(project, splits) -> float:
    """Samples/s of the trainer over the whole run (training samples / wall time)."""
    trainer = Trainer(project, splits=splits)
    trainer.project.data.normalize = False  # splits are already normalized, as for the hand loop
    t0 = time.perf_counter()
    for event in trainer.events():
        if event.kind == "failed":
            raise RuntimeError(event.data["message"])
    _sync(trainer.device)
    seconds = time.perf_counter() - t0
    return len(splits[0]) * project.training.epochs / seconds


def run_hand(project, splits, device: torch.device) -> float:
    torch.manual_seed(project.training.seed)
    train, val, test = splits
    model = HandLeNet().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=project.training.lr)
    bs = project.training.batch_size
    t0 = time.perf_counter()
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
    _evaluate(model, xt, yt)
    _sync(device)
    return n * project.training.epochs / (time.perf_counter() - t0)


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


def compare(device: str, epochs: int, repeats: int, pairs: list | None = None) -> tuple[float, float]:
    project, splits = project_and_splits(epochs, device)
    dev = torch.device("cuda" if device == "cuda" else "cpu")
    ours, hand = [], []
    run_trainer(project, splits)  # warm-up: first-call costs on both sides
    run_hand(project, splits, dev)
    for _ in range(repeats):
        ours.append(run_trainer(project, splits))
        hand.append(run_hand(project, splits, dev))
    if pairs is not None:
        pairs.extend(zip(ours, hand))
    return max(ours), max(hand)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the LeNet-5 template's own (30)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    args.epochs = args.epochs or load_template("lenet5").training.epochs
    pairs: list[tuple[float, float]] = []
    ours, hand = compare(args.device, args.epochs, args.repeats, pairs)
    print(f"device: {args.device}, torch threads: {torch.get_num_threads()}, epochs: {args.epochs}, best of {args.repeats}")
    print(f"trainer:    {ours:10.0f} samples/s")
    print(f"hand loop:  {hand:10.0f} samples/s")
    print(f"ratio trainer / hand: {ours / hand:.3f} (target >= 0.98)")
    # NOTE: on a shared machine one lucky run sets a best-of figure; runs next to each other share the noise
    print(f"median of paired ratios (each trainer run against the hand run after it): "
          f"{statistics.median(o / h for o, h in pairs):.3f}")


if __name__ == "__main__":
    main()

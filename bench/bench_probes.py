"""Probe overhead: training throughput with live probes at the default schedule vs probes off.

LeNet-5 on digits, same data, batch, optimizer and epochs, through the same trainer; the
only difference is ``probes=True`` (activations, filters, Grad-CAM, gradient flow and
histograms every ``probes.every_batches`` batches, plus the epoch-end confusion matrix and
hardest samples). Runs alternate and the best of each is kept. Target: ratio >= 0.90.

Run: python bench/bench_probes.py [--epochs N] [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_training import project_and_splits  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402


def run(project, splits, probes: bool) -> tuple[float, int]:
    trainer = Trainer(project, splits=splits, probes=probes)
    trainer.project.data.normalize = False  # the splits are normalized already
    rounds = 0
    t0 = time.perf_counter()
    for event in trainer.events():
        if event.kind == "failed":
            raise RuntimeError(event.data["message"])
        rounds += event.kind == "probes"
    seconds = time.perf_counter() - t0
    return len(splits[0]) * project.training.epochs / seconds, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    project, splits = project_and_splits(args.epochs, "cpu")
    run(project, splits, True)  # warm-up
    on, off = [], []
    for _ in range(args.repeats):
        rate, rounds = run(project, splits, True)
        on.append(rate)
        off.append(run(project, splits, False)[0])
    print(f"probes every {project.probes.every_batches} batches ({rounds} probe rounds per run)")
    print(f"probes on:  {max(on):10.0f} samples/s")
    print(f"probes off: {max(off):10.0f} samples/s")
    print(f"ratio on / off: {max(on) / max(off):.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()

"""Probe overhead: training throughput with live probes at the default schedule vs probes off.

LeNet-5 on digits, same data, batch, optimizer and epochs, through the same trainer; the
only difference is ``probes=True`` (activations, filters, Grad-CAM, gradient flow and
histograms every ``probes.every_batches`` batches, plus the epoch-end confusion matrix and
hardest samples). The two run in lockstep, an epoch of each by turns (see
bench_training.py's ``lockstep``: a shared machine's drift hits both alike), and the ratio
is the median over the epochs side by side. Target: ratio >= 0.90.

Run: python bench/bench_probes.py [--epochs N] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_training import lockstep, project_and_splits, trainer_epochs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    project, splits = project_and_splits(args.epochs, "cpu")
    samples = len(splits[0]) * project.training.epochs
    lockstep(trainer_epochs(project, splits, probes=True), trainer_epochs(project, splits))  # warm-up
    on, off, ratios = [], [], []
    seen: Counter = Counter()
    for _ in range(args.repeats):
        with_probes, without = lockstep(trainer_epochs(project, splits, probes=True, seen=seen), trainer_epochs(project, splits))
        on.append(samples / sum(with_probes))
        off.append(samples / sum(without))
        ratios.extend(b / a for a, b in zip(with_probes, without))
    print(f"probes every {project.probes.every_batches} batches ({seen['ProbesDone'] // args.repeats} probe rounds per run)")
    print(f"probes on:  {max(on):10.0f} samples/s (best run)")
    print(f"probes off: {max(off):10.0f} samples/s (best run)")
    print(f"ratio on / off, median of {len(ratios)} epochs side by side: {statistics.median(ratios):.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()

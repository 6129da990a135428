"""Training through the window: throughput with the live dashboard attached, and UI stalls.

Opens the main window (offscreen unless a display is set), loads LeNet-5 with the same
data and training settings as bench_training.py, presses Train through the window's
controller and waits. A 5 ms QTimer runs from the first batch to the last; the longest
gap between its ticks is the longest stall of the UI event loop (target < 50 ms). The hand-written loop
of bench_training.py runs in the same process with PyTorch's default thread count for
the ratio (target >= 0.95).

Run: python bench/bench_training_ui.py [--epochs N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from bench.bench_training import project_and_splits, run_hand  # noqa: E402
from designer.main_window import MainWindow  # noqa: E402


class StallMeter:
    """Longest gap between ticks of a fast timer: how long the event loop was blocked."""

    def __init__(self, interval_ms: int = 5) -> None:
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.longest = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.longest = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.longest

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now


def run_window(window: MainWindow, project, epochs: int, train_samples: int) -> tuple[float, float]:
    """(samples/s, longest stall in s) for one run through the window."""
    window.document.replace(project)
    meter = StallMeter()
    session = window.training.start(epochs=epochs, device="cpu")
    if session is None:
        raise RuntimeError(window.training.dashboard.message_text())
    # NOTE: measured from the first batch to the last (data loading and the end of run excluded).
    session.started.connect(lambda *_: meter.start())
    stalls = []
    session.finished.connect(lambda *_: stalls.append(meter.stop()))
    if not window.training.wait(timeout_ms=600_000):
        raise RuntimeError("the run did not end")
    stall = stalls[0] if stalls else float("nan")
    done = window.training.last_session
    if done.outcome != "finished":
        raise RuntimeError(f"run {done.outcome}: {done.message}")
    return train_samples * epochs / done.summary["seconds"], stall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    default_threads = torch.get_num_threads()
    project, splits = project_and_splits(args.epochs, "cpu")
    train_samples = len(splits[0])
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    app.processEvents()

    ours, hand, stalls = [], [], []
    run_window(window, project, 1, train_samples)  # warm-up: first-run imports in the worker
    for _ in range(args.repeats):
        rate, stall = run_window(window, project, args.epochs, train_samples)
        ours.append(rate)
        stalls.append(stall)
        threads = torch.get_num_threads()
        torch.set_num_threads(default_threads)
        hand.append(run_hand(project, splits, torch.device("cpu")))
        torch.set_num_threads(threads)
    window.training.shutdown()
    window.close()
    print(f"torch threads: default {default_threads}, during window training {torch.get_num_threads()}")
    print(f"window + dashboard: {max(ours):10.0f} samples/s")
    print(f"hand loop:          {max(hand):10.0f} samples/s")
    print(f"ratio window / hand: {max(ours) / max(hand):.3f} (target >= 0.95)")
    print(f"longest UI event-loop stall during training: {min(stalls) * 1000:.1f} ms best run, "
          f"{max(stalls) * 1000:.1f} ms worst run (target < 50 ms)")


if __name__ == "__main__":
    main()

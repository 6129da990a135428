"""Engine speed: re-analysis of a 500-block graph and LeNet-5 compile + first forward.

Run: python bench/bench_engine.py
Targets: re-analysis after one parameter change well under 50 ms; auto-arrange under 100 ms. The LeNet-5 figure is
compared with building the same network by hand in plain PyTorch in the same run.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench.graphs import middle_conv, residual_graph  # noqa: E402
from engine.analysis import analyze  # noqa: E402
from engine.compile import compile_graph  # noqa: E402
from engine.layout import auto_layout  # noqa: E402
from engine.templates import load_template  # noqa: E402


def bench_reanalysis(repeats: int = 40) -> float:
    g = residual_graph(500)
    nid = middle_conv(g)
    assert analyze(g).valid
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        g.set_params(nid, {"kernel_size": 5 if i % 2 == 0 else 3})
        result = analyze(g)
        times.append(time.perf_counter() - t0)
        assert result.valid
    print(f"graph: {len(g)} blocks, {len(g.edges)} wires")
    return statistics.median(times) * 1000


def bench_layout(repeats: int = 5) -> float:
    g = residual_graph(500)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        auto_layout(g)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _hand_lenet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def bench_lenet(repeats: int = 20) -> tuple[float, float]:
    graph = load_template("lenet5").graph
    x = torch.randn(64, 1, 32, 32)
    ours, hand = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model = compile_graph(graph, "LeNet5").module
        with torch.no_grad():
            model(x)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model = _hand_lenet()
        with torch.no_grad():
            model(x)
        hand.append(time.perf_counter() - t0)
    return statistics.median(ours) * 1000, statistics.median(hand) * 1000


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ms = bench_reanalysis()
    print(f"re-analysis after one parameter change: {ms:.2f} ms (target: well under 50 ms)")
    print(f"auto-arrange of the same 500-block graph: {bench_layout():.1f} ms (target: under 100 ms)")
    ours, hand = bench_lenet()
    print(
        f"LeNet-5 compile + first forward (batch 64): {ours:.2f} ms; plain PyTorch build + forward: "
        f"{hand:.2f} ms; ratio {ours / hand:.2f}"
    )


if __name__ == "__main__":
    main()

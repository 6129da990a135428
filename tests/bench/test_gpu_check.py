"""bench/gpu_check.py runs only where there is a GPU; its steps are tried here on the CPU (--cpu-dry-run)."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_training import SIDES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_checks_steps_run_on_the_cpu():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--cpu-dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr  # NOTE: a rehearsal of the steps, not a measurement
    assert "devices: cpu · CPU" in out and "refused as it should be: training was asked to use cuda:0" in out
    for name in ("sgd", "adam", "rmsprop", "adagrad"):
        assert f"{name}: " in out and "differs from the plain form by" in out
    assert all(f"{side}:" in out for side in SIDES)
    assert "target >= 0.98" in out and "own overhead" in out
    assert "mixed precision, 1 epoch: finished" in out
    # the simulated device holds 40 samples: halving 256 names 32, which then trains
    assert "a batch of 32 fits (tried by halving it)" in out and "a batch of 32: trains" in out
    assert "streaming from 256 samples in an npz file, 1 epoch: finished" in out
    assert "test: accuracy" in out and "main.py train --device cpu" in out
    assert "gpu_check: all steps passed" in out


def test_without_a_gpu_the_check_says_so_and_exits_1(capsys):
    from bench.gpu_check import main

    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main([]) == 1
    assert "no CUDA device here" in capsys.readouterr().out

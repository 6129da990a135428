"""bench/gpu_check.py runs only where there is a GPU; its steps are tried here on the CPU."""

from bench.bench_training import SIDES
from bench.gpu_check import check


def test_the_gpu_checks_steps_run_on_the_cpu(capsys):
    assert check("cpu", epochs=1, repeats=1, samples=128) == []  # NOTE: a rehearsal of the steps, not a measurement
    out = capsys.readouterr().out
    assert all(f"{side}:" in out for side in SIDES)
    assert "target >= 0.98" in out and "own overhead" in out
    assert "mixed precision, 1 epoch: finished" in out
    assert "test: accuracy" in out

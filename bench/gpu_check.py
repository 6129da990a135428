"""The GPU check: run on a machine with CUDA (a session that has one lends it for minutes).

1. Trains LeNet-5 on CUDA through the trainer and through a hand-written loop, same data,
   batch and optimizer, epochs in lockstep, and prints samples/s and the ratio (target >= 0.98).
2. Trains one epoch with mixed precision on, to show the AMP path runs.
3. Runs `python main.py train` on the LeNet-5 template with --device cuda and prints the
   test accuracy.

Run: python bench/gpu_check.py   (exits 1 without CUDA)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.bench_training import compare  # noqa: E402
from engine.templates import load_template  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a machine with a GPU")
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(compare("cuda", epochs=5, repeats=3).report())

    project = load_template("lenet5")
    project.training.mixed_precision = True
    t0 = time.perf_counter()
    last = None
    for event in Trainer(project, epochs=1, device="cuda").events():
        last = event
    print(f"mixed precision, 1 epoch: {last.kind} {last.data} ({time.perf_counter() - t0:.1f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "lenet.json"
        subprocess.run([sys.executable, str(ROOT / "main.py"), "new", "--template", "lenet5", "-o", str(proj)], check=True)
        t0 = time.perf_counter()
        run = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "train", str(proj), "--device", "cuda", "--out", str(Path(tmp) / "run")],
            capture_output=True, text=True,
        )
        print(run.stdout.strip().splitlines()[-2] if run.returncode == 0 else run.stderr)
        print(f"main.py train on CUDA: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The GPU check: run on a machine with CUDA (a session that has one lends it for minutes).

1. Trains LeNet-5 on CUDA through the trainer and through a hand-written loop, same data,
   batch and optimizer, epochs in lockstep, and prints samples/s and the ratio (target >= 0.98).
2. Trains one epoch with mixed precision on, to show the AMP path runs.
3. Runs `python main.py train` on the LeNet-5 template with --device cuda and prints the
   test accuracy.

Run: python bench/gpu_check.py   (exits 1 without CUDA)
     python bench/gpu_check.py --device cpu --epochs 1 --repeats 1 --samples 200
        (the same steps on the CPU, to try the script: on 200 training samples, step 3 on a tenth of the data)
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

import torch  # noqa: E402

from bench.bench_training import compare, project_and_splits  # noqa: E402
from engine.project import save_project  # noqa: E402
from engine.templates import load_template  # noqa: E402
from engine.training.events import Finished  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402


def check(device: str, epochs: int, repeats: int, samples: int | None = None) -> list[str]:
    """Runs the three steps on ``device``, printing what each measured; returns what went wrong.

    ``samples``: steps 1 and 2 train on that many samples only, with no warm-up, and step 3 on a tenth of the
    digits (a rehearsal of the steps, not a measurement).
    """
    problems = []
    print(compare(device, epochs=epochs, repeats=repeats, samples=samples).report(), flush=True)

    project = load_template("lenet5")
    project.training.mixed_precision = True
    splits = None
    if samples is not None:
        _, splits = project_and_splits(1, device, samples)
        project.data.normalize = False  # NOTE: those splits are normalized already
    t0 = time.perf_counter()
    last = None
    for event in Trainer(project, epochs=1, device=device, splits=splits).events():
        last = event
    if isinstance(last, Finished):
        outcome = "finished, test " + ", ".join(f"{k} {v:.3f}" for k, v in last.test.items())
    else:
        outcome = f"failed: {getattr(last, 'message', last)}"
        problems.append(f"the mixed-precision epoch {outcome}")
    print(f"mixed precision, 1 epoch: {outcome} ({time.perf_counter() - t0:.1f} s)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "lenet.json"
        project = load_template("lenet5")
        if samples is not None:  # NOTE: a rehearsal: about that many samples train, the rest validate and test
            project.data.val_fraction = project.data.test_fraction = 0.45
        save_project(project, proj)
        t0 = time.perf_counter()
        run = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "train", str(proj), "--device", device,
             "--epochs", str(epochs), "--out", str(Path(tmp) / "run")],
            capture_output=True, text=True,
        )
        tests = [line for line in run.stdout.splitlines() if line.startswith("test:")]
        if run.returncode != 0 or not tests:
            problems.append(f"main.py train on {device} failed: {run.stderr.strip() or run.stdout.strip()}")
        else:
            print(tests[-1])
        print(f"main.py train on {device}, {epochs} epochs: {time.perf_counter() - t0:.1f} s")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=None,
                        help="steps 1 and 2 on this many training samples, without a warm-up, step 3 on a tenth of "
                        "the data: a rehearsal of the steps, not a measurement")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a machine with a GPU (or try it with --device cpu)")
        return 1
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}", flush=True)
    problems = check(args.device, args.epochs, args.repeats, args.samples)
    for problem in problems:
        print(f"gpu_check: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

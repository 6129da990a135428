"""The whole test suite while other processes keep the cores busy: the tests must hold on a loaded machine.

Tests wait for events and acknowledgements, never for a fixed time, so a busy machine makes the
suite slower but never makes it fail. This script checks that: it starts ``--load`` processes
(default 2, one per core of a small machine) that compute numpy matrix products (``--spin``: plain
busy loops), runs the suite as the README does (``python -m pytest``; the project's pytest options
add ``-q``) with any extra arguments given after ``--``, prints the failures, pytest's result
line and the wall time, kills the load processes whatever happens, and exits with pytest's code.
pytest's whole output goes to ``--log``.

Run: python bench/suite_under_load.py [--load K] [--spin] [--log FILE] [-- PYTEST ARGS]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What each load process runs: a core kept busy with what training does most (matrix products).
MATMUL = """
import numpy as np
a = np.random.default_rng(0).random((400, 400))
while True:
    a = a @ a
    a /= np.abs(a).max() + 1.0
"""
SPIN = "while True:\n    pass\n"

#: pytest's last line: "3 failed, 650 passed, 2 skipped in 412.50s (0:06:52)" and the like.
RESULT = re.compile(r"\b(passed|failed|errors?|skipped|deselected|no tests ran)\b.* in [0-9.]+s")


def start_load(k: int, spin: bool) -> list[subprocess.Popen]:
    """``k`` processes that each keep one core busy (one thread each) until they are killed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = SPIN if spin else MATMUL
    return [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(k)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def run_suite(pytest_args: list[str], log: Path) -> tuple[int, list[str], float]:
    """(pytest's exit code, the lines worth showing, wall seconds) of the suite, its output in ``log``."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    lines = log.read_text(errors="replace").splitlines()
    shown = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    result = [line.strip("= ") for line in lines if RESULT.search(line)]
    return code, shown + result[-1:], wall


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ours = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=2, metavar="K", help="processes that load the cores (default 2)")
    parser.add_argument("--spin", action="store_true", help="busy loops instead of matrix products")
    parser.add_argument("--log", type=Path, default=None, help="where pytest's output goes (default: a temporary file)")
    args = parser.parse_args(ours)
    log = args.log or Path(tempfile.mkstemp(prefix="suite-under-load-", suffix=".log")[1])
    print(f"{args.load} load process(es) ({'busy loops' if args.spin else 'matrix products'}) on "
          f"{os.cpu_count()} core(s); pytest's output in {log}", flush=True)
    load = start_load(args.load, args.spin)
    try:
        code, shown, wall = run_suite(extra, log)
    finally:
        stop_load(load)
    for line in shown:
        print(line)
    print(f"wall time {wall:.0f} s ({wall / 60:.1f} min), pytest exit code {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())

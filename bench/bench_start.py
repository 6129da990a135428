"""Cold start: from launching Python to the first paint of the canvas, as ``python main.py`` does it.

Run: python bench/bench_start.py [--runs N] [--template NAME] [--show-torch]
Each run is a fresh Python process (offscreen) that imports the window, creates the
QApplication with the theme and the MainWindow (optionally with a template open), shows it
at 1600×1000 and reports when the canvas's viewport gets its first paint event. The time is
measured from just before the process is launched to that paint, on the system's monotonic
clock (shared by both processes), so the interpreter's own start is included. Prints every
run, the median, whether PyTorch was imported by then, and the load average: on a busy
machine the figure grows with the load, so read it beside the load.
Goal: under 1.5 s on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 1.5

#: The child: what designer.app.run does up to the first frame, then it reports and quits.
CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
from PySide6.QtCore import QEvent, QObject, QTimer
from designer.app import _application
from designer import theme
app = _application()
theme.apply_theme(app, False)
from designer.main_window import MainWindow

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not getattr(self, "seen", False):
            self.seen = True
            done = time.monotonic()
            print(json.dumps({{"painted": done, "torch": "torch" in sys.modules}}), flush=True)
            QTimer.singleShot(0, app.quit)
        return False

window = MainWindow()
if {template!r}:
    window.new_from_template({template!r})
watch = FirstPaint()
window.view.viewport().installEventFilter(watch)
window.resize(1600, 1000)
window.show()
app.exec()
os._exit(0)  # NOTE: the figure is taken; tearing the window down is not part of the start
"""


def one_run(template: str | None) -> dict:
    """Launch one child; returns ``{"seconds", "torch"}``."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    with tempfile.TemporaryDirectory() as home:
        env["NET_DESIGNER_DATA"] = home  # NOTE: no recovery files or runs of the person's own
        env["XDG_CONFIG_HOME"] = home  # NOTE: no saved layout either: every run starts alike
        code = CHILD.format(root=str(ROOT), template=template or "")
        start = time.monotonic()
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"the child failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    report = json.loads(lines[-1])
    return {"seconds": report["painted"] - start, "torch": report["torch"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="cold starts to time (default 7)")
    parser.add_argument("--template", default=None, help="open this template (default: the start screen)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    times, torch_seen = [], set()
    for i in range(args.runs):
        r = one_run(args.template)
        times.append(r["seconds"])
        torch_seen.add(r["torch"])
        print(f"run {i + 1}: {r['seconds']:.3f} s{'  (PyTorch imported)' if r['torch'] else ''}")
    load_after = os.getloadavg()
    median = statistics.median(times)
    what = f"template {args.template}" if args.template else "the start screen"
    print(f"cold start to a painted canvas ({what}): median {median:.3f} s over {args.runs} runs "
          f"(min {min(times):.3f}, max {max(times):.3f}); goal < {GOAL_S} s on a quiet machine")
    print(f"PyTorch imported before the first paint: {'yes' if True in torch_seen else 'no'}")
    print(f"load average (1, 5, 15 min): before {' '.join(f'{v:.2f}' for v in load_before)}, "
          f"after {' '.join(f'{v:.2f}' for v in load_after)}; cores: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

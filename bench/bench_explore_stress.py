"""Explore under load: many Top patches and Dream requests in a row must never take the program down.

Opens the Insight dock with its Explore view on show (offscreen unless ``--display``), gives it
a LeNet-5 run trained here on the shapes data, and runs ``--rounds`` requests, Top patches and
Dream by turns. Now and then a request is made before the previous one has ended (the newest
wins), the block or the channel changes, a new run arrives while a computation runs, and the
window's thread leaves Qt items in reference cycles for the garbage collector (as pyqtgraph
views do). Meanwhile ``--load`` other processes keep the cores busy (plain Python loops).

The rounds run in a child process, so that a crash is caught and reported by this one
("crashed with SIGSEGV after round 37", with the child's last lines of stderr: it runs with
faulthandler on). It prints the rounds completed and any error the view showed, and exits 0
only when every round completed with no crash, no hang and no error shown. The load processes
are always killed at the end.

Run: python bench/bench_explore_stress.py [--rounds 200] [--load 2] [--seed 0] [--display]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSY_LOOP = "while True:\n    pass\n"
ROUND_TIMEOUT_S = 300  # a round that does not end by then is reported as a hang


# ---------------------------------------------------------------------------------------------- parent
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="requests to make (default 200)")
    parser.add_argument("--load", type=int, default=2, help="busy processes beside it (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rounds' choices")
    parser.add_argument("--display", action="store_true", help="show the view on the display instead of offscreen")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or args.load < 0:
        print("bench_explore_stress: --rounds must be at least 1 and --load at least 0", file=sys.stderr)
        return 2
    if args.child:
        return child(args)
    load = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.load)]
    try:
        return watch(args)
    finally:
        for proc in load:
            proc.kill()
            proc.wait()


def watch(args: argparse.Namespace) -> int:
    """Run the rounds in a child process and report how it ended."""
    cmd = [sys.executable, "-X", "faulthandler", str(Path(__file__).resolve()), "--child",
           "--rounds", str(args.rounds), "--seed", str(args.seed)] + (["--display"] if args.display else [])
    print(f"{args.rounds} rounds of Top patches and Dream with {args.load} busy processes beside them")
    t0 = time.perf_counter()
    # NOTE: stderr goes to a file: a pipe nobody reads while the child runs could fill and block it.
    log = tempfile.TemporaryFile("w+")
    child_proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    rounds, errors = 0, []
    try:
        for line in child_proc.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "ROUND":
                rounds = int(rest.split()[0])
                if rounds % 20 == 0:
                    print(f"  {rounds} rounds completed ({time.perf_counter() - t0:.0f} s)", flush=True)
            elif kind == "ERROR":
                errors.append(rest)
                print(f"  error shown: {rest}", flush=True)
            elif kind in ("READY", "SUMMARY"):
                print(f"  {rest}", flush=True)
    finally:
        child_proc.kill()
        rc = child_proc.wait()
        log.seek(0)
        stderr = log.read()
        log.close()
    seconds = time.perf_counter() - t0
    if rc < 0:
        name = signal.Signals(-rc).name
        print(f"crashed with {name} after round {rounds} of {args.rounds} ({seconds:.0f} s)")
        print("last lines of the child's stderr:\n" + "\n".join(stderr.splitlines()[-40:]))
        return 1
    print(f"rounds completed: {rounds} of {args.rounds} in {seconds:.0f} s; errors shown: {len(errors)}")
    if rc != 0:
        print(f"the child ended with exit code {rc}; last lines of its stderr:\n"
              + "\n".join(stderr.splitlines()[-40:]))
    ok = rc == 0 and rounds == args.rounds and not errors
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------- child
def child(args: argparse.Namespace) -> int:
    """Open the view, train a run, make the requests; one line on stdout per completed round."""
    if not args.display:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    from designer import theme
    from designer.insight import InsightPanel

    app = QApplication.instance() or QApplication([sys.argv[0]])
    theme.apply_theme(app, False)
    panel = InsightPanel()
    panel.resize(1000, 600)
    panel.show()
    panel.tabs.setCurrentWidget(panel.explore)
    project, weights = trained_lenet()
    panel.end_run(run_entry(project, weights, "Run 1"))
    emit("READY", f"trained LeNet-5 on {project.data.samples} shape images; Explore is on show")
    driver = Driver(panel, project, weights, args.seed)
    try:
        driver.run(args.rounds)
    finally:
        panel.shutdown()
    emit("SUMMARY", driver.summary())
    return 0 if driver.completed == args.rounds and not driver.hung and not driver.refused else 1


def emit(kind: str, text: str) -> None:
    print(f"{kind} {text}", flush=True)


def trained_lenet():
    """LeNet-5 trained for two epochs on 600 shape images (CPU): the project and its state_dict."""
    from engine.templates import load_template
    from engine.training.events import Failed
    from engine.training.trainer import Trainer

    project = load_template("lenet5")
    project.data.dataset = "shapes"
    project.data.samples = 600
    project.data.augment = {}
    project.training.epochs = 2
    project.training.device = "cpu"
    trainer = Trainer(project, device="cpu")
    for event in trainer.events():
        if isinstance(event, Failed):
            raise SystemExit(f"training the bench's run failed: {event.message}")
    return project, {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}


def run_entry(project, weights, label: str):
    """A run entry as the training controller records one: the snapshot and the trained weights."""
    from designer.training.runs import RunEntry
    from engine.project import project_to_dict
    from engine.training.runs import RunRecord

    return RunEntry(RunRecord(project.name, project_to_dict(project), [], {}), label=label, weights=weights)


class Driver:
    """Makes the requests and counts how each one ended (the view's ``ended`` signal)."""

    def __init__(self, panel, project, weights, seed: int) -> None:
        import random

        from PySide6.QtCore import QEventLoop

        self.panel, self.view = panel, panel.explore
        self.project, self.weights = project, weights
        self.rng = random.Random(seed)
        self.loop = QEventLoop()
        self.requested = self.completed = self.refused = self.runs = 0
        self.outcomes: dict[str, int] = {}
        self.hung = False
        self.blocks = [nid for nid in self.view._analysis.order if self.view._units(nid) is not None]
        self.view.ended.connect(self._on_ended)

    def run(self, rounds: int) -> None:
        for i in range(1, rounds + 1):
            self._vary()
            request = self.view.find_patches if i % 2 else self.view.dream
            started = request()
            if not started and self.view.is_busy():
                self.refused += 1  # NOTE: counted, then made again once the view is idle
                started = self._wait_idle() and request()
            if not started:
                emit("ERROR", f"round {i}: the view refused the request ({self.view.header.text()})")
                continue
            self.requested += 1
            if i % 10 == 5 and self.view.is_busy():
                self.runs += 1
                self.panel.begin_run()  # NOTE: a new run trains and arrives while this computation runs
                self.panel.end_run(run_entry(self.project, self.weights, f"Run {self.runs + 1}"))
            if i < rounds and self.rng.random() < 0.3:
                continue  # the next request comes before this one has ended
            if not self._wait_idle():
                return
        self._wait_idle()

    def _vary(self) -> None:
        """Sometimes another block or channel, other Dream settings, and Qt garbage in cycles."""
        view, rng = self.view, self.rng
        if rng.random() < 0.2:
            view.show_block(rng.choice(self.blocks))
        if rng.random() < 0.4:
            view.channel.setValue(rng.randrange(view.channel.maximum() + 1))
        view.steps.setValue(rng.randint(10, 40))
        litter(rng.randint(0, 30))

    def _wait_idle(self) -> bool:
        """Run the event loop until no computation runs or waits; False (a hang) after ROUND_TIMEOUT_S."""
        from PySide6.QtCore import QTimer

        if not self.view.is_busy():
            return True
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(self.loop.quit)
        timer.start(ROUND_TIMEOUT_S * 1000)
        self.loop.exec()
        if self.view.is_busy():
            self.hung = True
            emit("ERROR", f"round {self.completed + 1} did not end within {ROUND_TIMEOUT_S} s")
            return False
        return True

    def _on_ended(self, outcome: str) -> None:
        self.completed += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome == "failed":
            emit("ERROR", f"round {self.completed}: {self.view.message.text()}")
        emit("ROUND", f"{self.completed} {outcome}")
        if not self.view.is_busy():
            self.loop.quit()

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (f"{self.requested} requests, {self.completed} ended ({counts}); {self.refused} refused; "
                f"{self.runs} new runs arrived during a computation")


def litter(n: int) -> None:
    """Leave ``n`` pyqtgraph items in reference cycles: garbage only the collector frees."""
    import pyqtgraph as pg

    for _ in range(n):
        item = pg.TextItem("litter")
        item.cycle = item


if __name__ == "__main__":
    sys.exit(main())

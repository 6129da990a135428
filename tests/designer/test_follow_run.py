"""The Runs dock follows runs another process writes: in the project's runs folder, or a folder from elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from designer.training.runs import RunsPanel
from engine.export import trained_weights
from engine.project import project_from_dict, save_project
from engine.templates import load_template
from engine.training.runs import read_run, runs_dir

ROOT = Path(__file__).resolve().parents[2]
WAIT = 120_000  # ms; the waits end on the event, this only bounds a broken run

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]


def project_file(tmp_path: Path, epochs: int) -> Path:
    p = load_template("mlp")
    p.data.samples, p.training.epochs, p.training.device = 600, epochs, "cpu"
    p.probes.enabled = False
    path = tmp_path / "mlp.json"
    save_project(p, path)
    return path


def train(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pause_after_epoch(proc: subprocess.Popen, n: int) -> None:
    """Read the job's output until it printed epoch ``n``, then freeze it (SIGSTOP), so the dock sees it mid-run."""
    seen = 0
    while seen < n:
        line = proc.stdout.readline()
        assert line, f"the job ended early: {proc.stderr.read()}"
        seen += line.startswith("epoch")
    proc.send_signal(signal.SIGSTOP)


def finish(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGCONT)
    _out, err = proc.communicate(timeout=WAIT / 1000)
    assert proc.returncode == 0 and "Traceback" not in err, err


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.send_signal(signal.SIGCONT)
        proc.wait()


def test_a_run_another_process_writes_beside_the_project_appears_and_grows(qtbot, tmp_path):
    path = project_file(tmp_path, epochs=6)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.show_runs_in(runs_dir(path))  # no runs folder yet
    assert panel.list.count() == 0
    proc = train(str(path))  # main.py train writes a new run folder in mlp.runs/
    try:
        pause_after_epoch(proc, 2)
        qtbot.waitUntil(lambda: panel.list.count() == 1, timeout=WAIT)
        (entry,) = panel.entries
        qtbot.waitUntil(lambda: len(entry.history) >= 2, timeout=WAIT)
        assert entry.outcome == "running" and "(running)" in panel.list.item(0).text()
        assert not panel.continue_button.isEnabled()  # another process writes it: not to be continued now
        assert entry.path.parent == runs_dir(path)
        finish(proc)
    finally:
        stop(proc)
    qtbot.waitUntil(lambda: entry.outcome == "finished", timeout=WAIT)
    assert [r["epoch"] for r in entry.history] == list(range(1, 7))
    assert "test accuracy" in panel.list.item(0).text() and "(running)" not in panel.list.item(0).text()
    assert panel.list.count() == 1  # followed in place, never listed twice
    assert list(panel.loss_curves[id(entry)].getData()[0]) == [float(e) for e in range(1, 7)]


def test_a_folder_opened_from_elsewhere_is_followed_and_its_checkpoint_loads_back(qtbot, tmp_path):
    path = project_file(tmp_path, epochs=5)
    out = tmp_path / "cluster" / "run"
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.show_runs_in(runs_dir(path))
    proc = train(str(path), "--out", str(out))
    try:
        pause_after_epoch(proc, 1)
        entry = panel.open_folder(out)
        assert entry.outcome == "opened" and "(folder, running)" in panel.list.item(0).text()
        assert panel.open_folder(out) is entry and panel.list.count() == 1  # opened twice: listed once
        finish(proc)
    finally:
        stop(proc)
    qtbot.waitUntil(lambda: entry.record.status == "finished", timeout=WAIT)
    assert len(entry.history) == 5 and panel.list.item(0).text().startswith(f"{entry.name} (folder)")
    assert read_run(out).status == "finished"

    # its checkpoint comes back into the project's network (read with weights_only=True)
    weights = entry.load_weights()
    best = torch.load(out / "best.pt", weights_only=True)
    assert weights["epoch"] == best["epoch"]
    assert all(torch.equal(weights["model"][k], v) for k, v in best["model"].items())
    from engine.compile import compile_graph

    project = project_from_dict(entry.record.project, source="run")
    module = compile_graph(project.graph, "Net").module
    module.load_state_dict(weights["model"])  # strict: every tensor of the project's network, nothing else
    state, _spec = trained_weights(out)  # and the export path takes the same folder
    assert all(torch.equal(state[k], v) for k, v in best["model"].items())

"""Following a run that another process writes: the reader sees each epoch and never gets in the writer's way."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from engine.project import project_to_dict, save_project
from engine.templates import load_template
from engine.training import runs
from engine.training.runs import RunFollower, RunWriter, read_run, run_folders

ROOT = Path(__file__).resolve().parents[2]


def mlp(epochs: int, samples: int = 2000):
    p = load_template("mlp")
    p.data.samples = samples
    p.training.epochs = epochs
    p.training.device = "cpu"
    p.probes.enabled = False
    return p


def _train(project: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", str(project), "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epoch_lines_until(proc: subprocess.Popen, printed: int, want: int) -> int:
    """Read the child's output until it has printed ``want`` epoch lines (or ended); returns how many it printed."""
    while printed < want:
        line = proc.stdout.readline()
        if not line:
            break
        printed += line.startswith("epoch")
    return printed


@pytest.mark.slow
def test_a_reader_follows_main_py_train_epoch_by_epoch_and_the_job_is_untouched(tmp_path):
    epochs = 12
    project = tmp_path / "mlp.json"
    save_project(mlp(epochs), project)
    out = tmp_path / "run"
    follower = RunFollower(out)
    assert follower.poll() is None and "no such run folder" in follower.problem  # nothing there yet

    # NOTE: a second reader polls as fast as it can the whole time, as a window on another core would
    hammering, seen_by_hammer, done = RunFollower(out), [], threading.Event()

    def hammer():
        while not done.is_set():
            record = hammering.poll()
            if record is not None:
                seen_by_hammer.append(len(record.history))
            done.wait(0.002)

    thread = threading.Thread(target=hammer)
    thread.start()
    proc = _train(project, out)
    observed, printed = [], 0
    try:
        while True:
            # NOTE: the event waited for is the child's own "epoch N" line: that epoch's row is on disk by then
            printed = _epoch_lines_until(proc, printed, (observed[-1] if observed else 0) + 1)
            record = follower.poll() or follower.record
            if record is None or proc.poll() is not None and printed < epochs:
                break
            observed.append(len(record.history))
            assert observed[-1] >= printed  # never behind what the job said it finished
            if observed[-1] >= epochs:
                break
        _rest, err = proc.communicate(timeout=600)
    finally:
        done.set()
        thread.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert observed == sorted(set(observed)) and len(observed) >= 2 and observed[0] < epochs
    assert seen_by_hammer == sorted(seen_by_hammer)

    # the job's files are complete, and a last poll sees the run as it ended
    final = follower.poll() or follower.record
    assert final.status == "finished" and not follower.live
    assert [r["epoch"] for r in final.history] == list(range(1, epochs + 1))
    assert "accuracy" in final.summary["test"]
    for name in ("last.pt", "best.pt"):
        state = torch.load(out / name, weights_only=True)
        assert state["epoch"] in range(1, epochs + 1) and state["model"]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == epochs
    assert follower.poll() is None  # nothing moved since


def test_a_follower_reads_again_only_when_the_run_changed(tmp_path, monkeypatch):
    folder = tmp_path / "r"
    writer = RunWriter(folder, snapshot=project_to_dict(mlp(3)), label="Run 1", epochs=3)
    follower = RunFollower(folder)
    first = follower.poll()
    assert first is not None and first.status == "running" and first.history == [] and follower.live
    reads = []
    real_read = runs.read_run
    monkeypatch.setattr(runs, "read_run", lambda f: reads.append(f) or real_read(f))
    assert follower.poll() is None and reads == []  # nothing changed: no file was read
    writer.epoch({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6}, 10)
    assert [r["epoch"] for r in follower.poll().history] == [1] and len(reads) == 1
    with open(folder / "metrics.csv", "a") as fh:
        fh.write("2,20,0.4")  # NOTE: a row still being written: not a row yet
    assert [r["epoch"] for r in follower.poll().history] == [1]
    writer.close()  # the writer is gone without saying the run ended (a kill)
    assert follower.poll().status == "interrupted" and not follower.live
    assert follower.poll() is None


def test_a_damaged_file_is_a_problem_to_retry_not_an_error(tmp_path):
    folder = tmp_path / "r"
    writer = RunWriter(folder, snapshot=project_to_dict(mlp(3)), epochs=3)
    follower = RunFollower(folder)
    assert follower.poll() is not None
    good = (folder / "summary.json").read_bytes()
    (folder / "summary.json").write_text("{\"format\": ")
    assert follower.poll() is None and "summary.json is damaged" in follower.problem
    assert follower.record is not None  # the last good reading stays
    (folder / "summary.json").write_bytes(good)
    assert follower.poll() is not None and follower.problem == ""
    writer.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's lock table is Linux's")
def test_whether_a_writer_is_alive_is_read_without_taking_its_lock(tmp_path, monkeypatch):
    import fcntl

    folder = tmp_path / "r"
    writer = RunWriter(folder, snapshot=project_to_dict(mlp(1)), epochs=1)
    st = os.stat(folder / ".lock")
    if os.major(st.st_dev) == 0:
        pytest.skip("this file system may hold other machines' locks: the reader glances at the lock there")

    def no_locking(*_args):
        raise AssertionError("the reader took the run's lock")

    monkeypatch.setattr(fcntl, "flock", no_locking)
    assert runs._writer_alive(folder) is True
    assert read_run(folder).status == "running"
    monkeypatch.undo()
    writer.close()
    monkeypatch.setattr(fcntl, "flock", no_locking)
    assert runs._writer_alive(folder) is False
    assert read_run(folder).status == "interrupted"


def test_new_run_folders_are_found_once_they_have_a_summary(tmp_path):
    root = tmp_path / "p.runs"
    assert run_folders(root) == []  # no folder yet
    root.mkdir()
    (root / "empty").mkdir()  # a run setting up: not a run yet
    (root / ".hidden").mkdir()
    writer = RunWriter(root / "b", snapshot=project_to_dict(mlp(1)))
    writer.close()
    assert run_folders(root) == [root / "b"]

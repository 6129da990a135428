"""Streaming everywhere: the window's training process reads with DataLoader workers yet never outlives
its parent, and the preview, a sweep and explain work on a set over the memory budget without loading it
whole, giving what the in-memory path gives.

Small generated folders are forced onto the streaming path with ``memory_budget_gib=0``; where a test
says "never loaded whole", the in-memory loader is made to fail for the streamed case.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.compile import compile_graph
from engine.config import DataConfig
from engine.data import load_dataset
from engine.data.preview import preview_samples
from engine.data.streaming import StreamDataset, load_for_training
from engine.probes.base import ProbeError
from engine.probes.explain import explain
from engine.project import Project, project_to_dict
from engine.training import remote
from engine.training.events import (
    EpochDone,
    Finished,
    Paused,
    PointDone,
    Started,
    SweepDone,
)
from engine.training.remote import TrainingProcess, TrainingRequest
from engine.training.sweep import sweep_events
from engine.training.sweep_plan import parse_setting
from tests.engine.helpers import gap_net
from tests.engine.test_streaming import LOSS_RTOL, folder_project, make_folder

ROOT = Path(__file__).resolve().parents[2]

#: seconds a process may take to go after it was told to: generous, for a busy 2-core machine
GONE_DEADLINE_S = 120.0

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


@pytest.fixture(autouse=True, scope="module")
def _no_spare_left():
    yield
    remote.discard_spare()


def forbid_loading_whole(monkeypatch):
    """Make the in-memory loader fail: what passes after this read no data set whole."""
    from engine.data import loading

    def refuse(*args, **kwargs):
        raise AssertionError("the data set was loaded whole")

    monkeypatch.setattr(loading, "load_dataset", refuse)


# ---------------------------------------------------------------------- processes, read from /proc
def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state first), or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] not in "ZX" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody has reaped yet counts as exited)."""
    fields = _stat(pid)
    return fields is None or fields[0] in "ZX"


def wait_gone(pids: list[int]) -> list[int]:
    """Wait until every one of ``pids`` has exited, or the generous deadline passes; those still there.

    NOTE: each exit is waited for as an event: a pidfd (Linux) becomes readable when its process ends,
    whoever its parent is, so no fixed pause is slept and a busy machine only makes the wait longer.
    """
    deadline = time.monotonic() + GONE_DEADLINE_S
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue  # gone already
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)
    return [p for p in pids if not gone(p)]


def parent_script(tmp_path: Path, body: str) -> Path:
    """A small program that imports the engine and runs ``body`` (its start-up guarded, as spawn needs)."""
    head = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from engine.training import remote\n"
        "from engine.training.events import BatchesDone\n"
        "from engine.training.remote import TrainingProcess, TrainingRequest\n\n\n"
        "def main():\n"
    )
    tail = '\n\nif __name__ == "__main__":\n    main()\n'
    script = tmp_path / "parent.py"
    script.write_text(head + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + tail)
    return script


def start_parent(script: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, cwd=ROOT)


def streamed_snapshot(tmp_path: Path, epochs: int, workers: int) -> dict:
    p = folder_project(make_folder(tmp_path / "pets", per_class=(30, 30, 30)), epochs=epochs, workers=workers)
    return project_to_dict(p)


# ---------------------------------------------------------------------- the training process
@linux_only
@pytest.mark.slow
def test_a_streamed_run_in_the_training_process_reads_with_worker_processes(tmp_path):
    proc = TrainingProcess(TrainingRequest(streamed_snapshot(tmp_path, epochs=200, workers=2), emit_interval=0.0))
    workers, events = None, []
    for ev in proc.events():
        events.append(ev)
        if isinstance(ev, Started):
            proc.pause()  # NOTE: it pauses between two batches of an epoch, its DataLoader open
        elif isinstance(ev, Paused):
            workers = children_of(proc.pid)
            proc.stop()
    assert isinstance(events[-1], Finished) and events[-1].stopped, events[-1]
    assert workers is not None and len(workers) == 2, workers  # data.workers = 2 DataLoader workers
    assert wait_gone(workers) == []  # the epoch's reader let go of them


@pytest.mark.slow
@linux_only
def test_the_training_process_and_its_workers_leave_when_the_window_is_killed(tmp_path):
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(streamed_snapshot(tmp_path, epochs=100_000, workers=2)))
    script = parent_script(tmp_path, f"""
        request = TrainingRequest(json.load(open({str(snapshot)!r})), emit_interval=0.0)
        proc = TrainingProcess(request)
        told = False
        for ev in proc.events():
            if isinstance(ev, BatchesDone) and not told:
                print(proc.pid, flush=True)  # NOTE: it trains now, its DataLoader workers reading
                told = True
        """)
    parent = start_parent(script)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), parent.stderr.read() if parent.poll() is not None else line
        child = int(line)
        family = [child, *children_of(child)]
        assert len(family) == 3, family  # the child and its two workers
        parent.send_signal(signal.SIGKILL)  # NOTE: as the system ends a window that hangs: no clean-up at all
        parent.wait()
        assert wait_gone(family) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.slow
@linux_only
def test_a_spare_training_process_leaves_when_its_parent_is_killed_though_its_pipe_stays_open(tmp_path):
    script = parent_script(tmp_path, """
        import os, signal
        remote.prestart()
        assert remote.wait_for_spare(120.0)
        holder = os.fork()  # NOTE: a copy of this process holds the parent's end of the spare's control pipe
        if holder == 0:
            signal.pause()
        print(remote._spare.process.pid, holder, flush=True)
        signal.pause()
        """)
    parent = start_parent(script)
    holder = None
    try:
        line = parent.stdout.readline().split()
        assert len(line) == 2, parent.stderr.read() if parent.poll() is not None else line
        spare, holder = map(int, line)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert not gone(holder)  # the pipe is still open: only the parent's change tells the spare
        assert wait_gone([spare]) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if holder is not None and not gone(holder):
            os.kill(holder, signal.SIGKILL)


@pytest.mark.slow
@linux_only
def test_a_program_exits_at_once_though_a_spare_training_process_waits(tmp_path):
    script = parent_script(tmp_path, """
        remote.prestart()
        assert remote.wait_for_spare(120.0)
        print(remote._spare.process.pid, flush=True)
        # NOTE: it returns with the spare still waiting for a run, as a window closes without discard_spare
        """)
    parent = start_parent(script)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), parent.stderr.read()
        spare = int(line)
        # NOTE: multiprocessing joins a non-daemonic child at exit: without the engine ending it first, this
        # would wait forever (the limit is only there to fail rather than hang)
        parent.wait(timeout=GONE_DEADLINE_S)
        assert parent.returncode == 0, parent.stderr.read()
        assert gone(spare)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# ---------------------------------------------------------------------- the preview
@pytest.mark.parametrize("mode, shape, n", [("L", (1, 8, 8), 6), ("RGB", (3, 6, 6), 34), ("L", (64,), 5)])
def test_the_preview_of_a_streamed_folder_reads_only_the_samples_it_shows(tmp_path, monkeypatch, mode, shape, n):
    root = make_folder(tmp_path / "pets", side=7, mode=mode)
    in_memory = preview_samples(load_dataset(DataConfig(dataset="image_folder", path=str(root)), shape), n)
    forbid_loading_whole(monkeypatch)
    stream = load_for_training(DataConfig(dataset="image_folder", path=str(root), memory_budget_gib=0.0), shape)
    assert isinstance(stream, StreamDataset)
    read, source_read = [], type(stream.source).read
    monkeypatch.setattr(type(stream.source), "read", lambda self, i: read.append(i) or source_read(self, i))
    streamed = preview_samples(stream, n)
    assert sorted(read) == [s.index for s in streamed] and len(streamed) == min(n, 34)
    assert [(s.index, s.text) for s in streamed] == [(s.index, s.text) for s in in_memory]
    for s, m in zip(streamed, in_memory):
        assert np.array_equal(s.raw, m.raw) and np.array_equal(s.array, m.array)


def test_the_preview_leaves_out_a_sample_it_cannot_read(tmp_path):
    root = make_folder(tmp_path / "pets")
    stream = load_for_training(DataConfig(dataset="image_folder", path=str(root), memory_budget_gib=0.0), (1, 8, 8))
    Path(stream.source.files[0]).write_bytes(b"not a png")
    shown = preview_samples(stream, 4)
    assert [s.index for s in shown] == [11, 22, 33]  # 0, 11, 22 and 33 picked; 0 cannot be read


# ---------------------------------------------------------------------- a sweep
def sweep_run(project: Project) -> list:
    return list(sweep_events(project, [parse_setting("training.lr=0.01,0.05")], refit=True))


def test_a_sweep_over_a_streamed_folder_shares_one_streamed_load_and_scores_as_in_memory(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "pets")
    in_memory = sweep_run(folder_project(root, budget=2.0, epochs=2))
    forbid_loading_whole(monkeypatch)
    opened = []
    from engine.data import streaming

    real = streaming.load_for_training
    monkeypatch.setattr(streaming, "load_for_training", lambda *a, **kw: opened.append(real(*a, **kw)) or opened[-1])
    streamed = sweep_run(folder_project(root, budget=0.0, epochs=2))
    assert len(opened) == 2 and all(isinstance(d, StreamDataset) for d in opened)  # the shared load, the refit's
    for ev in (in_memory[-1], streamed[-1]):
        assert isinstance(ev, SweepDone) and ev.best is not None and ev.refit is not None, ev
    points = [[(p.status, p.score) for p in run if isinstance(p, PointDone)] for run in (streamed, in_memory)]
    assert points[0] == pytest.approx(points[1]) and all(status == "finished" for status, _ in points[0])
    losses = [[e.train_loss for e in run if isinstance(e, EpochDone)] for run in (streamed, in_memory)]
    assert len(losses[0]) == 6 and np.allclose(losses[0], losses[1], rtol=LOSS_RTOL, atol=0)  # 2 points + refit
    assert streamed[-1].best == in_memory[-1].best
    assert streamed[-1].refit.test == pytest.approx(in_memory[-1].refit.test)


# ---------------------------------------------------------------------- explain
def explain_project(root: Path, budget: float) -> tuple[Project, dict]:
    g, _ = gap_net(channels=3, classes=3)
    p = Project(name="pets", graph=g)
    p.data.dataset, p.data.path, p.data.memory_budget_gib, p.data.workers = "image_folder", str(root), budget, 0
    torch.manual_seed(0)
    return p, compile_graph(g).module.state_dict()


@pytest.mark.parametrize("index, method", [(0, "cam"), (17, "gradcam"), (33, "cam")])
def test_explain_of_a_streamed_sample_draws_what_the_in_memory_path_draws(tmp_path, monkeypatch, index, method):
    root = make_folder(tmp_path / "pets", side=16, mode="RGB")
    p, weights = explain_project(root, budget=2.0)
    _, npy, info = explain(p, weights, index, method=method, out_png=tmp_path / "memory.png")
    expected = np.load(npy)
    forbid_loading_whole(monkeypatch)
    p, weights = explain_project(root, budget=0.0)
    _, npy, streamed = explain(p, weights, index, method=method, out_png=tmp_path / "stream.png")
    np.testing.assert_allclose(np.load(npy), expected, atol=1e-5)  # the normalization's sums differ in order only
    assert {k: v for k, v in streamed.items() if k != "scores"} == {k: v for k, v in info.items() if k != "scores"}
    np.testing.assert_allclose(streamed["scores"], info["scores"], rtol=1e-5, atol=1e-6)
    assert streamed["class_name"] in ("cat", "dog", "fox")


def test_explain_names_the_file_of_a_streamed_sample_it_cannot_read(tmp_path):
    root = make_folder(tmp_path / "pets", side=16, mode="RGB")
    p, weights = explain_project(root, budget=0.0)
    bad = root / "dog" / "003.png"
    bad.write_bytes(b"no picture")
    index = load_for_training(p.data, (3, 16, 16)).source.files.index(str(bad))
    with pytest.raises(ProbeError, match=f"sample {index} cannot be read: {bad}: not a readable image"):
        explain(p, weights, index, method="cam", out_png=tmp_path / "x.png")
    with pytest.raises(ProbeError, match="sample 34 does not exist"):
        explain(p, weights, 34, method="cam", out_png=tmp_path / "x.png")

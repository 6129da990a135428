"""Run folders: written as the run goes, read back after anything, resumed and forked exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main as cli_main
from engine.project import Project, project_to_dict, save_project
from engine.templates import load_template
from engine.training.runs import (
    RunError,
    RunWriter,
    checkpoint_epochs,
    find_checkpoint,
    list_runs,
    new_run_dir,
    next_label,
    read_batches,
    read_run,
    rename_run,
    runs_dir,
)
from engine.training.events import EpochDone, Failed, Finished, InsightDone
from engine.training.trainer import Control, Trainer

ROOT = Path(__file__).resolve().parents[2]


def dropout_mlp(epochs: int = 6, **training) -> Project:
    """The MLP template with a Dropout block and noise augmentation: every generator a run draws from is used."""
    p = load_template("mlp")
    g = p.graph
    edge = next(e for e in g.edges if e.src == "n3")
    g.disconnect(edge)
    drop = g.add_node("Dropout", params={"p": 0.3}, name="drop").id
    g.connect("n3", 0, drop, 0)
    g.connect(drop, 0, "n4", 0)
    p.data.samples = 300
    p.data.augment = {"noise": 0.05}
    p.training.epochs = epochs
    p.training.schedule = "cosine"
    p.training.device = "cpu"
    for k, v in training.items():
        setattr(p.training, k, v)
    return p


def events_of(trainer: Trainer, stop_after_epoch: int | None = None):
    events = []
    for ev in trainer.events():
        events.append(ev)
        if isinstance(ev, EpochDone) and ev.epoch == stop_after_epoch:
            trainer.control.stop()
    assert isinstance(events[-1], (Finished, Failed))
    return events


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


# ---------------------------------------------------------------------- what a run folder holds
def test_a_run_writes_its_folder_as_it_goes(tmp_path):
    run = tmp_path / "r"
    events = events_of(Trainer(dropout_mlp(epochs=3), out_dir=run, label="Run 1"))
    started = events[0]
    assert isinstance(events[-1], Finished)
    record = read_run(run)
    assert record.status == "finished" and record.label == "Run 1" and record.name == "Multi-layer perceptron"
    assert [r["epoch"] for r in record.history] == [1, 2, 3]
    assert [r["step"] for r in record.history] == [started.batches_per_epoch * e for e in (1, 2, 3)]
    assert record.project == json.loads((run / "project.json").read_text())
    assert record.project["training"]["epochs"] == 3
    losses = read_batches(run / "batches.f32")
    assert losses.shape == (3 * started.batches_per_epoch,) and np.isfinite(losses).all()
    assert record.summary["test"]["accuracy"] == events[-1].test["accuracy"]
    assert record.summary == {**events[-1].summary(), "test": record.summary["test"]}
    assert checkpoint_epochs(run) == [1, 2, 3]
    kept = sorted((run / "checkpoints").glob("epoch-*.pt"))
    assert [torch.load(f, weights_only=True)["epoch"] for f in kept] == [1, 2, 3]
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and set(last["rng"]) >= {"torch", "shuffle", "augment"}
    assert last["data"]["input_shape"] == [2] and last["data"]["classes"] == ["0", "1"] or last["data"]["classes"]
    best_epoch = json.loads((run / "summary.json").read_text())["best_epoch"]
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best_epoch


def test_each_epochs_row_is_on_disk_when_its_event_arrives(tmp_path):
    run = tmp_path / "r"
    trainer = Trainer(dropout_mlp(epochs=3), out_dir=run)
    for ev in trainer.events():
        if isinstance(ev, EpochDone):
            record = read_run(run)
            assert record.status == "running"  # NOTE: this process holds the run's lock while it writes
            assert record.history[-1]["epoch"] == ev.epoch
            assert record.history[-1]["val_loss"] == pytest.approx(ev.val_loss)


def test_runs_beside_a_project_are_listed_oldest_first_with_labels(tmp_path):
    root = runs_dir(tmp_path / "lenet.json")
    assert root == tmp_path / "lenet.runs"
    assert next_label(root) == "Run 1"
    first = new_run_dir(root)
    second = new_run_dir(root)
    assert first != second and first.parent == second.parent == root
    for folder, label in ((first, "Run 1"), (second, "Run 2")):
        events_of(Trainer(dropout_mlp(epochs=1), out_dir=folder, label=label))
    (root / "junk").mkdir()
    (root / "junk" / "summary.json").write_text("{not json")
    records, problems = list_runs(root)
    assert [r.label for r in records] == ["Run 1", "Run 2"]
    assert len(problems) == 1 and "junk/summary.json" in problems[0]
    assert next_label(root) == "Run 4"
    rename_run(second, "  wider\x1b[31m net ")
    assert read_run(second).label == "wider[31m net"
    with pytest.raises(RunError):
        rename_run(second, "   ")


# ---------------------------------------------------------------------- resume and fork
def test_an_interrupted_and_resumed_run_ends_with_the_weights_of_the_uninterrupted_one(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    events_of(Trainer(dropout_mlp(epochs=6), out_dir=whole))
    stopped = events_of(Trainer(dropout_mlp(epochs=6), out_dir=split), stop_after_epoch=3)
    assert stopped[-1].stopped and read_run(split).status == "stopped"
    resumed = events_of(Trainer(dropout_mlp(epochs=6), out_dir=split, resume_from=split / "last.pt"))
    assert resumed[0].start_epoch == 4 and [r["epoch"] for r in resumed[0].history] == [1, 2, 3]
    assert [e.epoch for e in resumed if isinstance(e, EpochDone)] == [4, 5, 6]
    a, b = weights(whole / "last.pt"), weights(split / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=0), key
    # the resumed run's history is the whole history, as the uninterrupted run's is
    ha, hb = read_run(whole).history, read_run(split).history
    assert [r["epoch"] for r in hb] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(ha, hb):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], abs=1e-6)
        assert rb["lr"] == pytest.approx(ra["lr"], abs=1e-12)
    assert np.allclose(read_batches(whole / "batches.f32"), read_batches(split / "batches.f32"), atol=1e-6)
    assert read_run(split).status == "finished"


def test_resuming_drops_rows_the_checkpoint_has_not_caught_up_with(tmp_path):
    run = tmp_path / "r"
    events_of(Trainer(dropout_mlp(epochs=3), out_dir=run))
    keep = run / "checkpoints" / "epoch-0002.pt"
    os.replace(keep, run / "last.pt")  # NOTE: as if a crash came between epoch 3's row and its checkpoint
    events = events_of(Trainer(dropout_mlp(epochs=4), out_dir=run, resume_from=run / "last.pt"))
    assert [e.epoch for e in events if isinstance(e, EpochDone)] == [3, 4]
    history = read_run(run).history
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert len(read_batches(run / "batches.f32")) == history[-1]["step"]


def test_a_fork_starts_from_an_epochs_checkpoint_with_other_settings_and_its_lineage(tmp_path):
    parent, fork = tmp_path / "parent", tmp_path / "fork"
    events_of(Trainer(dropout_mlp(epochs=4), out_dir=parent))
    changed = dropout_mlp(epochs=5, lr=0.001)
    events = events_of(Trainer(changed, out_dir=fork, resume_from=find_checkpoint(parent, epoch=2), label="Run 2"))
    assert [e.epoch for e in events if isinstance(e, EpochDone)] == [3, 4, 5]
    record = read_run(fork)
    assert record.parent == {"run": "parent", "epoch": 2}
    assert [r["epoch"] for r in record.history] == [1, 2, 3, 4, 5]
    old = read_run(parent).history
    assert record.history[1]["val_loss"] == pytest.approx(old[1]["val_loss"])
    assert record.project["training"]["lr"] == 0.001
    assert [r["epoch"] for r in read_run(parent).history] == [1, 2, 3, 4]  # the parent is untouched


def test_resuming_to_no_more_epochs_than_the_checkpoint_is_refused(tmp_path, capsys):
    project = tmp_path / "mlp.json"
    save_project(dropout_mlp(epochs=2), project)
    run = tmp_path / "r"
    assert cli_main(["train", str(project), "--out", str(run)]) == 0
    before = (run / "metrics.csv").read_bytes()
    capsys.readouterr()
    for epochs in ("1", "2"):
        assert cli_main(["train", str(project), "--resume", str(run), "--epochs", epochs]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "epoch 2" in err and "more than 2" in err
    assert (run / "metrics.csv").read_bytes() == before
    assert cli_main(["train", str(project), "--resume", str(run), "--epochs", "3"]) == 0
    assert [r["epoch"] for r in read_run(run).history] == [1, 2, 3]


def test_cli_runs_go_beside_the_project_and_resume_takes_a_folder_or_a_checkpoint(tmp_path, capsys):
    project = tmp_path / "mlp.json"
    save_project(dropout_mlp(epochs=2), project)
    assert cli_main(["train", str(project)]) == 0
    (first,), _ = list_runs(tmp_path / "mlp.runs")
    assert first.label == "Run 1" and [r["epoch"] for r in first.history] == [1, 2]
    assert cli_main(["train", str(project), "--resume", str(first.path / "checkpoints" / "epoch-0001.pt"),
                     "--epochs", "3"]) == 0
    records, _ = list_runs(tmp_path / "mlp.runs")
    fork = records[1]
    assert fork.label == "Run 2" and fork.parent == {"run": first.folder_name, "epoch": 1}
    assert [r["epoch"] for r in fork.history] == [1, 2, 3]
    assert [r["epoch"] for r in read_run(first.path).history] == [1, 2]
    assert "the run is in" in capsys.readouterr().out


def test_a_stop_before_the_first_epoch_reports_no_test_score(tmp_path):
    control = Control()
    control.stop()
    events = events_of(Trainer(dropout_mlp(epochs=3), out_dir=tmp_path / "r", control=control))
    done = events[-1]
    assert isinstance(done, Finished) and done.stopped and done.test == {} and done.epochs_run == 0
    assert done.test_loss is None and done.message.startswith("stopped before training began")


def test_a_final_batch_of_one_is_left_out_when_the_network_has_batchnorm():
    p = load_template("mlp")
    g = p.graph
    edge = next(e for e in g.edges if e.src == "n2")
    g.disconnect(edge)
    bn = g.add_node("BatchNorm", name="bn").id
    g.connect("n2", 0, bn, 0)
    g.connect(bn, 0, "n3", 0)
    p.data.samples = 100
    p.data.val_fraction = p.data.test_fraction = 0.15
    p.training.epochs = 2
    p.training.device = "cpu"
    events = list(Trainer(p).events())
    n = events[0].train
    p.training.batch_size = n - 1  # NOTE: two batches, the second of one sample
    events = list(Trainer(p).events())
    assert isinstance(events[-1], Finished), events[-1]
    assert events[0].skipped_last == 1 and events[0].batches_per_epoch == 1


# ---------------------------------------------------------------------- crashes and Ctrl+C
def _cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_epochs(proc: subprocess.Popen, n: int) -> list[str]:
    """Read the child's output until it has printed ``n`` epoch lines (the event we wait for)."""
    lines = []
    while sum(line.startswith("epoch") for line in lines) < n:
        line = proc.stdout.readline()
        assert line, f"the run ended early: {lines} {proc.stderr.read()}"
        lines.append(line)
    return lines


@pytest.mark.slow
def test_kill_9_mid_run_leaves_a_readable_folder_that_resumes(tmp_path):
    project = tmp_path / "mlp.json"
    save_project(dropout_mlp(epochs=100_000), project)
    run = tmp_path / "r"
    proc = _cli("train", str(project), "--out", str(run))
    try:
        _wait_for_epochs(proc, 3)
    finally:
        proc.kill()
        proc.wait()
    record = read_run(run)
    assert record.status == "interrupted"
    epochs = [r["epoch"] for r in record.history]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 3
    last = torch.load(run / "last.pt", weights_only=True)["epoch"]
    assert last in (epochs[-1], epochs[-1] - 1)
    assert cli_main(["train", str(project), "--resume", str(run), "--epochs", str(last + 1)]) == 0
    record = read_run(run)
    assert record.status == "finished" and [r["epoch"] for r in record.history] == list(range(1, last + 2))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_after_the_batch_and_writes_the_record(tmp_path):
    project = tmp_path / "mlp.json"
    save_project(dropout_mlp(epochs=100_000), project)
    run = tmp_path / "r"
    proc = _cli("train", str(project), "--out", str(run))
    _wait_for_epochs(proc, 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopping after this batch" in err
    assert "--resume" in out
    record = read_run(run)
    assert record.status == "stopped" and record.summary["stopped"] is True
    assert len(record.history) >= 2 and "accuracy" in record.summary["test"]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_while_the_data_load_quits_at_once_in_one_line(tmp_path):
    from tests.engine.helpers import slow_csv_project

    project = tmp_path / "points.json"
    save_project(slow_csv_project(tmp_path), project)
    proc = _cli("train", str(project))
    line = proc.stdout.readline()
    assert line.startswith("loading the data"), line + proc.stderr.read()
    proc.send_signal(signal.SIGINT)  # NOTE: while the CSV of 500,000 rows loads (seconds)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == "interrupted" and "training" not in out
    runs = tmp_path / "points.runs"
    assert not runs.exists() or not any(runs.iterdir())  # NOTE: the run's empty folder is removed


# ---------------------------------------------------------------------- damaged folders
@pytest.mark.parametrize("damage", [
    lambda d: (d / "summary.json").write_text("[1, 2]"),
    lambda d: (d / "summary.json").write_text('{"format": "net-designer-run", "version": 99}'),
    lambda d: (d / "summary.json").write_text('{"format": "net-designer-run", "version": 1, "status": 3}'),
    lambda d: (d / "summary.json").write_text('{"format": "net-designer-run", "version": 1, "parent": [1]}'),
    lambda d: (d / "summary.json").write_text('{"format": "net-designer-run", "version": 1, "label": {}}'),
    lambda d: (d / "summary.json").write_bytes(b"\xff\xfe{}"),
    lambda d: (d / "summary.json").unlink(),
    lambda d: (d / "project.json").write_text("null"),
    lambda d: (d / "project.json").unlink(),
    lambda d: (d / "metrics.csv").write_text("epoch,loss\n1,2,3\n"),
    lambda d: (d / "metrics.csv").write_text("epoch,loss\nfirst,2\n"),
    lambda d: (d / "metrics.csv").write_text('epoch,loss\n"1,2\n'),
    lambda d: ((d / "metrics.csv").unlink(), (d / "metrics.csv").mkdir()),
    lambda d: ((d / "summary.json").unlink(), os.mkfifo(d / "summary.json")),
])
def test_a_damaged_run_folder_is_a_message_naming_the_file(tmp_path, damage):
    run = tmp_path / "r"
    events_of(Trainer(dropout_mlp(epochs=1), out_dir=run))
    damage(run)
    with pytest.raises(RunError) as info:
        read_run(run)
    assert str(info.value).strip() and "\n" not in str(info.value)


def test_a_run_still_being_written_reads_up_to_its_last_whole_line(tmp_path):
    run = tmp_path / "r"
    writer = RunWriter(run, snapshot=project_to_dict(dropout_mlp()), label="Run 1", epochs=3)
    writer.epoch({"epoch": 1, "train_loss": 0.5}, 10)
    with open(run / "metrics.csv", "a") as fh:
        fh.write("2,20,0.4")  # NOTE: a row cut short by a crash
    record = read_run(run)
    assert record.status == "running" and [r["epoch"] for r in record.history] == [1]
    writer.close()
    assert read_run(run).status == "interrupted"


def test_the_older_cli_layout_still_opens(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,train_loss,val_loss\n1,0.5,0.6\n2,0.4,0.5\n")
    (run / "summary.json").write_text(json.dumps({"name": "Old", "summary": {"test": {"accuracy": 0.9}},
                                                   "project": {"name": "Old"}}))
    record = read_run(run)
    assert record.name == "Old" and record.status == "finished" and len(record.history) == 2


def test_a_runs_insight_is_computed_again_from_its_folder_as_training_showed_it(tmp_path):
    from engine.probes.replay import replay
    from engine.templates import load_template

    p = load_template("lenet5")
    p.data.dataset, p.data.samples, p.data.augment = "shapes", 150, {}
    p.training.epochs, p.training.device = 1, "cpu"
    run = tmp_path / "r"
    events = list(Trainer(p, out_dir=run, probes=True).events())
    live = [e.views for e in events if isinstance(e, InsightDone)][-1]
    record = read_run(run)
    again = replay(record.project, torch.load(run / "last.pt", weights_only=True), epoch=1)
    assert np.array_equal(again["insight"]["confusion"]["matrix"], live["confusion"]["matrix"])
    assert list(again["insight"]["hardest"]["indices"]) == list(live["hardest"]["indices"])
    probes = again["probes"]
    assert probes["cam"]["maps"].shape[0] == probes["images"].shape[0] > 0
    assert "gradients" not in probes and "gradients" in probes["problems"]


def test_a_finished_cosine_run_continued_for_more_epochs_goes_on_along_the_longer_cosine(tmp_path):
    import math

    run = tmp_path / "r"
    events_of(Trainer(dropout_mlp(epochs=2), out_dir=run))
    assert read_run(run).history[-1]["lr"] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi / 2)))
    events = events_of(Trainer(dropout_mlp(epochs=4), out_dir=run, resume_from=run / "last.pt"))
    rates = [e.lr for e in events if isinstance(e, EpochDone)]
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in (2, 3)]  # not the 2-epoch cosine's end, 0
    assert rates == pytest.approx(expected)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
@pytest.mark.slow  # NOTE: a child process or a second writer (tests/engine stays under 30 s without these)
def test_a_readers_glance_at_the_lock_never_stops_a_writer_but_a_second_writer_is_refused(tmp_path):
    import fcntl
    import threading

    run = tmp_path / "r"
    run.mkdir()
    glance = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(glance, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a reader checking whether a writer is alive
    made = []
    starting = threading.Thread(target=lambda: made.append(RunWriter(run, snapshot=project_to_dict(dropout_mlp()))))
    starting.start()
    os.close(glance)  # the glance ends; the writer waits it out
    starting.join()
    (writer,) = made
    with pytest.raises(RunError, match="another process is writing"):
        RunWriter(run, snapshot=project_to_dict(dropout_mlp()))
    writer.close()

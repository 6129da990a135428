"""Training in a child process: every event arrives, controls reach the loop and are acknowledged, a crash
becomes a message, a Stop while the data load ends the run at once."""

import os
import signal

import numpy as np
import pytest

from engine.project import project_to_dict
from engine.templates import load_template
from engine.training import remote
from engine.training.events import (
    STOPPED_BEFORE_TRAINING,
    BatchesDone,
    CrossValidated,
    EpochDone,
    Failed,
    Finished,
    FoldDone,
    InsightDone,
    Paused,
    ProbesDone,
    Resumed,
    Started,
)
from engine.training.remote import TrainingProcess, TrainingRequest
from tests.engine.helpers import slow_csv_project


def request(epochs=3, samples=300, **training) -> TrainingRequest:
    p = load_template("mlp")
    p.data.samples = samples
    p.training.epochs = epochs
    p.training.device = "cpu"
    for k, v in training.items():
        setattr(p.training, k, v)
    return TrainingRequest(project_to_dict(p), emit_interval=0.0)


@pytest.fixture(autouse=True, scope="module")
def _no_spare_left():
    yield
    remote.discard_spare()


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory):
    """A project whose CSV of 200,000 rows takes a second or more to load."""
    return slow_csv_project(tmp_path_factory.mktemp("slow-data"), rows=200_000)


@pytest.mark.slow  # NOTE: a child process (tests/engine stays under 30 s without these)
def test_a_run_in_a_child_process_sends_every_event_and_the_weights():
    proc = TrainingProcess(request(epochs=3))
    events = list(proc.events())
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished, events[-1]
    assert kinds.count(EpochDone) == 3 and BatchesDone in kinds and ProbesDone in kinds and InsightDone in kinds
    done = events[-1]
    assert len(done.history) == 3 and "accuracy" in done.test
    assert [r["epoch"] for r in done.history] == [e.epoch for e in events if isinstance(e, EpochDone)]
    weights = done.weights
    assert weights and all(isinstance(v, np.ndarray) for v in weights.values())
    probes = next(e for e in events if isinstance(e, ProbesDone))
    assert probes.results["images"] is None  # 2-D points are not pictures
    assert remote._spare is not None and remote._spare.alive()  # the warm child waits for the next run


@pytest.mark.slow  # NOTE: tests/engine stays under 30 s without the slow ones; the full suite (CI) runs them
def test_pause_resume_stop_and_a_probe_setting_reach_the_loop_and_are_acknowledged():
    proc = TrainingProcess(request(epochs=400, batch_size=8))
    events, layers = [], []
    wanted = None
    for ev in proc.events():
        events.append(ev)
        if isinstance(ev, Started):
            proc.pause()  # NOTE: the child trains on until the message reaches it, then pauses at a batch boundary
        elif isinstance(ev, Paused):
            proc.resume()
        elif isinstance(ev, ProbesDone):
            layers.append(ev.results.get("activations", {}).get("node_id"))
            if wanted is None:
                wanted = "n3" if layers[0] != "n3" else "n5"  # relu1 or relu2
                proc.want("layer", wanted)
            elif layers[-1] == wanted:
                proc.stop()  # NOTE: the setting has reached the loop
    kinds = [type(e) for e in events]
    assert kinds.count(Paused) == kinds.count(Resumed) == 1
    at = kinds.index(Paused)
    step = events[at].step
    before = [e.step for e in events[:at] if isinstance(e, BatchesDone)]
    assert before == list(range(1, step + 1))  # every batch before the pause was reported first
    assert kinds[at + 1] is Resumed and events[at + 1].step == step  # nothing trained while paused
    after = next(e for e in events[at:] if isinstance(e, BatchesDone))
    assert after.step == step + 1
    assert isinstance(events[-1], Finished) and events[-1].stopped and layers[-1] == wanted != layers[0]


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_a_spare_child_is_used_for_the_next_run_and_serves_run_after_run():
    remote.prestart()
    assert remote.wait_for_spare(60)
    spare = remote._spare
    proc = TrainingProcess(request(epochs=1))
    proc.start()
    assert proc._child is spare and remote._spare is None
    assert isinstance(list(proc.events())[-1], Finished)
    proc.stop()  # NOTE: too late for that run: it must not reach the child's next run
    assert remote._spare is spare
    again = TrainingProcess(request(epochs=2))
    events = list(again.events())
    assert again._child is spare and isinstance(events[-1], Finished) and not events[-1].stopped
    assert events[-1].epochs_run == 2


def test_a_stop_sent_right_after_the_run_request_reaches_that_run():
    """The child's mailbox makes a run's controls as the request arrives, before its loop begins."""
    import multiprocessing as mp

    theirs, ours = mp.Pipe(duplex=False)
    mailbox = remote._Mailbox(theirs)
    ours.send(("run", request()))
    ours.send(("stop",))  # NOTE: Stop pressed right after Train
    ours.send(("run", request()))  # NOTE: read after the stop, so the stop was applied when this arrives
    what, _, control, _ = mailbox.requests.get(timeout=10)
    _, _, second, _ = mailbox.requests.get(timeout=10)
    assert what == "run" and control.stopped and not second.stopped
    mailbox.end(second)
    ours.send(("stop",))  # a late message once the run is over: dropped, not applied to a next run
    ours.send(("run", request()))
    _, _, third, _ = mailbox.requests.get(timeout=10)
    assert not second.stopped and not third.stopped
    ours.close()
    assert mailbox.requests.get(timeout=10) == ("quit",)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no nice levels on this OS")
@pytest.mark.slow  # NOTE: a child process (tests/engine stays under 30 s without these)
def test_the_child_trains_at_a_lower_priority_than_the_window():
    proc = TrainingProcess(request(epochs=1))
    proc.start()
    pid = proc._child.process.pid
    events = proc.events()
    assert isinstance(next(events), Started)
    child = os.getpriority(os.PRIO_PROCESS, pid)
    assert child == min(19, os.getpriority(os.PRIO_PROCESS, 0) + remote.CHILD_NICENESS)
    assert isinstance(list(events)[-1], Finished)


@pytest.mark.slow  # NOTE: a child process (tests/engine stays under 30 s without these)
def test_a_bad_snapshot_is_a_failed_event_not_a_crash():
    req = request()
    req.snapshot["graph"] = {"nodes": "not a list"}
    events = list(TrainingProcess(req).events())
    assert [type(e) for e in events] == [Failed]
    assert "snapshot" in events[0].message or "graph" in events[0].message


@pytest.mark.slow  # NOTE: a child process (tests/engine stays under 30 s without these)
def test_cross_validation_in_a_child_process_tags_every_event_with_its_fold():
    req = request(epochs=2)
    req.folds = 3
    events = list(TrainingProcess(req).events())
    kinds = [type(e) for e in events]
    assert kinds[-1] is CrossValidated and Finished not in kinds, events[-1]
    assert kinds.count(Started) == 3 and kinds.count(EpochDone) == 6 and ProbesDone not in kinds
    assert [e.fold for e in events if isinstance(e, FoldDone)] == [1, 2, 3]
    assert {e.fold for e in events if isinstance(e, (BatchesDone, EpochDone))} == {1, 2, 3}
    assert all(e.folds == 3 for e in events[:-1])
    batches = [e for e in events if isinstance(e, BatchesDone)]
    assert [b.step for b in batches] == sorted(b.step for b in batches)
    assert batches[-1].step == batches[-1].total_steps  # progress counts over the whole job
    done = events[-1]
    assert len(done.results) == 3 and not done.stopped and done.k == 3
    assert done.main_metric == "val_accuracy"
    assert set(done.mean) == set(done.std) >= {"val_accuracy", "val_loss"}
    scores = [f.val["val_accuracy"] for f in done.results]
    assert done.mean["val_accuracy"] == pytest.approx(np.mean(scores))
    assert done.std["val_accuracy"] == pytest.approx(np.std(scores))


# ---------------------------------------------------------------------- these end their child: the last ones here
def test_a_stop_before_the_run_started_needs_no_child():
    proc = TrainingProcess(request())
    proc.stop()
    events = list(proc.events())
    assert proc._child is None and [type(e) for e in events] == [Finished]
    assert events[0].stopped and events[0].message == STOPPED_BEFORE_TRAINING


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_a_stop_while_the_data_load_ends_the_run_at_once_with_no_score(slow_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()  # NOTE: as the window makes it before Train
    proc = TrainingProcess(TrainingRequest(project_to_dict(slow_data), run_dir=run))
    proc.start()
    child = proc._child
    proc.stop()  # NOTE: right after Train, while the child loads 200,000 rows
    events = list(proc.events())
    assert [type(e) for e in events] == [Finished]
    done = events[0]
    assert done.stopped and done.epochs_run == 0 and done.test == {} and done.test_loss is None
    assert done.message == STOPPED_BEFORE_TRAINING and done.weights is None
    assert child.process.exitcode == -signal.SIGKILL  # ended at once, not after the load
    assert remote._spare is not child  # a killed child is never handed out again
    assert not any(run.iterdir())  # nothing written: the window removes the empty folder


@pytest.mark.slow
def test_a_killed_child_ends_the_run_with_a_message_that_says_so():
    proc = TrainingProcess(request(epochs=1000, batch_size=8))
    kinds = []
    for ev in proc.events():
        kinds.append(type(ev))
        if isinstance(ev, Started):
            proc.kill()
    assert kinds[-1] is Failed
    assert "training process ended" in ev.message and "SIGKILL" in ev.message

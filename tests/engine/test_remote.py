"""Training in a child process: every event arrives, controls reach the loop, a crash becomes a message."""

import os
import threading
import time

import numpy as np
import pytest

from engine.project import project_to_dict
from engine.templates import load_template
from engine.training import remote
from engine.training.remote import TrainingProcess, TrainingRequest


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


def test_a_run_in_a_child_process_sends_every_event_and_the_weights():
    proc = TrainingProcess(request(epochs=3))
    events = list(proc.events())
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished", events[-1].data
    assert kinds.count("epoch") == 3 and "batches" in kinds and "probes" in kinds and "insight" in kinds
    done = events[-1].data
    assert len(done["history"]) == 3 and "accuracy" in done["test"]
    weights = done["weights"]
    assert weights and all(isinstance(v, np.ndarray) for v in weights.values())
    probes = next(e.data for e in events if e.kind == "probes")
    assert probes["images"] is None  # 2-D points are not pictures
    assert remote._spare is not None and remote._spare.alive()  # the warm child waits for the next run


def test_stop_pause_and_a_probe_setting_reach_the_loop():
    proc = TrainingProcess(request(epochs=400, batch_size=8))
    layers, kinds = [], []
    paused_at = None
    for ev in proc.events():
        kinds.append(ev.kind)
        if ev.kind == "probes":
            layers.append(ev.data.get("activations", {}).get("node_id"))
            if len(layers) == 1:
                wanted = "n3" if layers[0] != "n3" else "n5"  # relu1 or relu2
                proc.want("layer", wanted)
        if ev.kind == "started":
            proc.pause()
            paused_at = time.perf_counter()
            threading.Timer(0.5, proc.resume).start()
            threading.Timer(3.0, proc.stop).start()
    assert kinds[-1] == "finished"
    assert time.perf_counter() - paused_at >= 0.5
    assert layers[-1] == wanted != layers[0]


def test_a_killed_child_ends_the_run_with_a_message_that_says_so():
    proc = TrainingProcess(request(epochs=1000, batch_size=8))
    kinds = []
    for ev in proc.events():
        kinds.append(ev.kind)
        if ev.kind == "started":
            proc.kill()
    assert kinds[-1] == "failed"
    assert "training process ended" in ev.data["message"] and "SIGKILL" in ev.data["message"]


def test_a_spare_child_is_used_for_the_next_run_and_serves_run_after_run():
    remote.prestart()
    assert remote.wait_for_spare(60)
    spare = remote._spare
    proc = TrainingProcess(request(epochs=1))
    proc.start()
    assert proc._child is spare and remote._spare is None
    assert [e.kind for e in proc.events()][-1] == "finished"
    proc.stop()  # NOTE: too late for that run: it must not reach the child's next run
    assert remote._spare is spare
    again = TrainingProcess(request(epochs=2))
    events = list(again.events())
    assert again._child is spare and events[-1].kind == "finished" and not events[-1].data["stopped"]
    assert events[-1].data["epochs_run"] == 2


def test_a_stop_sent_right_after_the_run_request_reaches_that_run():
    """The child's mailbox makes a run's controls as the request arrives, before its loop begins."""
    import multiprocessing as mp

    theirs, ours = mp.Pipe(duplex=False)
    mailbox = remote._Mailbox(theirs)
    ours.send(("run", request()))
    ours.send(("stop",))  # NOTE: Stop pressed right after Train
    what, _, control, _ = mailbox.requests.get(timeout=10)
    deadline = time.monotonic() + 10
    while not control.stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert what == "run" and control.stopped
    mailbox.end(control)
    ours.send(("stop",))  # a late message once the run is over: dropped, not applied to a next run
    ours.send(("run", request()))
    _, _, second, _ = mailbox.requests.get(timeout=10)
    assert not second.stopped
    ours.close()
    assert mailbox.requests.get(timeout=10) == ("quit",)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no nice levels on this OS")
def test_the_child_trains_at_a_lower_priority_than_the_window():
    proc = TrainingProcess(request(epochs=1))
    proc.start()
    pid = proc._child.process.pid
    events = proc.events()
    assert next(events).kind == "started"
    child = os.getpriority(os.PRIO_PROCESS, pid)
    assert child == min(19, os.getpriority(os.PRIO_PROCESS, 0) + remote.CHILD_NICENESS)
    assert [e.kind for e in events][-1] == "finished"


def test_a_bad_snapshot_is_a_failed_event_not_a_crash():
    req = request()
    req.snapshot["graph"] = {"nodes": "not a list"}
    events = list(TrainingProcess(req).events())
    assert [e.kind for e in events] == ["failed"]
    assert "snapshot" in events[0].data["message"] or "graph" in events[0].data["message"]


def test_cross_validation_in_a_child_process_tags_every_event_with_its_fold():
    req = request(epochs=2)
    req.folds = 3
    events = list(TrainingProcess(req).events())
    kinds = [e.kind for e in events]
    assert kinds[-1] == "finished" and kinds.count("finished") == 1, events[-1].data
    assert kinds.count("started") == 3 and kinds.count("epoch") == 6 and "probes" not in kinds
    assert [e.data["fold"] for e in events if e.kind == "fold_done"] == [1, 2, 3]
    assert {e.data["fold"] for e in events if e.kind in ("batches", "epoch")} == {1, 2, 3}
    assert all(e.data["folds"] == 3 for e in events[:-1])
    batches = [e.data for e in events if e.kind == "batches"]
    assert [b["step"] for b in batches] == sorted(b["step"] for b in batches)
    assert batches[-1]["step"] == batches[-1]["total_steps"]  # progress counts over the whole job
    done = events[-1].data
    assert len(done["folds"]) == 3 and not done["stopped"] and "weights" not in done
    assert done["main_metric"] == "val_accuracy"
    assert set(done["mean"]) == set(done["std"]) >= {"val_accuracy", "val_loss"}
    scores = [f["val"]["val_accuracy"] for f in done["folds"]]
    assert done["mean"]["val_accuracy"] == pytest.approx(np.mean(scores))
    assert done["std"]["val_accuracy"] == pytest.approx(np.std(scores))

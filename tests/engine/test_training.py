"""The training loop: learning happens, control flags work and are acknowledged, failures become messages."""

import copy
import json
import math
import pickle
import threading

import numpy as np
import pytest
import torch

from engine.cli import main as cli_main
from engine.graph import Graph
from engine.project import Project, save_project
from engine.templates import load_template
from engine.training.runs import read_run
from engine.training.crossval import cross_validate, cross_validate_events
from engine.training.events import (
    BatchesDone,
    CheckpointSaved,
    CrossValidated,
    EarlyStopped,
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
from engine.training.trainer import Control, Trainer, TrainingError


def run_events(trainer):
    events = list(trainer.events())
    kinds = [type(e) for e in events]
    assert kinds[0] in (Started, Failed)
    return events, kinds


def epochs_of(events):
    return [e for e in events if isinstance(e, EpochDone)]


def mlp_project(epochs=8, **training) -> Project:
    p = load_template("mlp")
    p.data.samples = 400
    p.training.epochs = epochs
    for k, v in training.items():
        setattr(p.training, k, v)
    return p


def test_loss_falls_for_the_mlp_on_a_toy_set():
    events, kinds = run_events(Trainer(mlp_project(epochs=10, lr=0.01)))
    assert kinds[-1] is Finished, events[-1]
    losses = [e.train_loss for e in epochs_of(events)]
    assert losses[-1] < 0.7 * losses[0]
    assert "accuracy" in events[-1].test


@pytest.mark.slow
def test_loss_falls_for_lenet5_on_digits():
    p = load_template("lenet5")
    events, kinds = run_events(Trainer(p, epochs=2))
    assert kinds[-1] is Finished, events[-1]
    ep = epochs_of(events)
    assert ep[1].train_loss < ep[0].train_loss and ep[1].scores["val_accuracy"] > 0.5
    batches = [e for e in events if isinstance(e, BatchesDone)]
    assert sum(len(e.losses) for e in batches) == 2 * events[0].batches_per_epoch


def test_the_callers_project_is_not_shared_with_the_loop():
    p = mlp_project(epochs=1)
    trainer = Trainer(p)
    assert trainer.project is not p and trainer.project.graph is not p.graph
    run_events(trainer)
    assert all(param.device.type == "cpu" for param in trainer.model.parameters())


def test_nan_loss_stops_cleanly_with_a_suggestion():
    events, kinds = run_events(Trainer(mlp_project(epochs=5, optimizer="sgd", lr=1e30, momentum=0.0)))
    assert kinds[-1] is Failed and Finished not in kinds
    msg = events[-1].message
    assert ("NaN" in msg or "infinite" in msg) and "learning rate" in msg


def test_early_stopping_triggers_and_restores_the_best_weights():
    # Tiny noisy data and a big net overfit fast: validation loss turns up.
    p = mlp_project(epochs=200, lr=0.05, early_stopping_patience=3, restore_best=True)
    p.data.samples = 60
    p.data.noise = 0.5
    trainer = Trainer(p)
    events, kinds = run_events(trainer)
    assert EarlyStopped in kinds and kinds[-1] is Finished
    stop = next(e for e in events if isinstance(e, EarlyStopped))
    assert stop.epoch - stop.best_epoch == 3 and stop.epoch < 200
    best_val = min(e.val_loss for e in epochs_of(events))
    val_loss, _ = trainer.evaluate("val")
    assert abs(val_loss - best_val) < 1e-5


def test_pause_and_resume_are_acknowledged_and_nothing_trains_in_between():
    control = Control()
    trainer = Trainer(mlp_project(epochs=1000), control=control, emit_interval=0)
    seen = []
    for event in trainer.events():
        seen.append(event)
        if isinstance(event, BatchesDone) and event.step == 3 and not control.paused:
            control.pause()  # NOTE: from here, the loop pauses before its next batch
        elif isinstance(event, Paused):
            # the loop blocks in its next step until another thread resumes it
            threading.Thread(target=control.resume).start()
        elif isinstance(event, BatchesDone) and event.step == 20:
            control.stop()
    kinds = [type(e) for e in seen]
    assert kinds.count(Paused) == kinds.count(Resumed) == 1
    at = kinds.index(Paused)
    assert seen[at - 1].step == 3 and seen[at].step == 3  # acknowledged at the batch boundary after step 3
    assert isinstance(seen[at + 1], Resumed) and seen[at + 1].step == 3  # nothing trained while paused
    assert seen[at + 2].step == 4
    assert isinstance(seen[-1], Finished) and seen[-1].stopped is True
    steps = [e.step for e in seen if isinstance(e, BatchesDone)]
    assert steps == list(range(1, 21))  # stopped at the next batch boundary, every batch reported once


def test_a_pause_mid_epoch_first_sends_the_losses_so_far_and_a_stop_while_paused_ends_the_run():
    control = Control()
    p = mlp_project(epochs=1000, batch_size=8)
    p.probes.every_batches = 3  # NOTE: probe events after steps 1, 4, 7...: in the middle of the first epoch
    trainer = Trainer(p, control=control, emit_interval=3600, probes=True)  # batches reported only at epoch ends
    seen = []
    for event in trainer.events():
        seen.append(event)
        if isinstance(event, ProbesDone) and event.step == 4:
            control.pause()
        elif isinstance(event, Paused):
            control.stop()  # NOTE: the paused loop wakes to see the stop, and acknowledges no resume
    kinds = [type(e) for e in seen]
    at = kinds.index(Paused)
    flushed = seen[at - 1]
    assert isinstance(flushed, BatchesDone) and (flushed.epoch, flushed.batch, flushed.step) == (1, 4, 4)
    assert len(flushed.losses) == 4 and seen[at].step == 4
    assert seen[0].batches_per_epoch > 4 and kinds.count(BatchesDone) == 1
    assert Resumed not in kinds and kinds[-1] is Finished and seen[-1].stopped and seen[-1].epochs_run == 0
    assert seen[-1].test == {} and seen[-1].test_loss is None and "nothing to test" in seen[-1].message


def test_every_event_survives_a_pipe_as_it_is():
    """The child process sends the events pickled: each kind must come back equal and typed."""
    p = mlp_project(epochs=2)
    p.probes.every_batches = 5
    events = list(Trainer(p, probes=True, emit_interval=0).events())
    kinds = {type(e) for e in events}
    assert {Started, BatchesDone, EpochDone, ProbesDone, InsightDone, Finished} <= kinds
    for event in {type(e): e for e in events}.values():
        back = pickle.loads(pickle.dumps(event))
        assert type(back) is type(event)
        assert repr(back) == repr(event)


def test_checkpoints_and_resume(tmp_path):
    p = mlp_project(epochs=2)
    events, kinds = run_events(Trainer(p, out_dir=tmp_path))
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    saved = [e for e in events if isinstance(e, CheckpointSaved)]
    assert {e.epoch for e in saved} == {1, 2} and any(e.best and e.path.endswith("best.pt") for e in saved)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 2
    resumed = Trainer(p, epochs=4, resume_from=tmp_path / "last.pt")
    events, kinds = run_events(resumed)
    assert [e.epoch for e in epochs_of(events)] == [3, 4]


def test_resume_from_a_checkpoint_of_another_network_is_a_message(tmp_path):
    run_events(Trainer(mlp_project(epochs=1), out_dir=tmp_path))
    events, kinds = run_events(Trainer(load_template("perceptron"), resume_from=tmp_path / "last.pt"))
    assert kinds == [Failed] and "does not fit" in events[0].message


def test_wrong_targets_for_the_head_is_a_message():
    p = mlp_project()
    p.data.dataset = "regression1d"
    p.data.task = "regression"
    events, kinds = run_events(Trainer(p))
    assert kinds == [Failed]
    assert "features" in events[0].message or "needs" in events[0].message


def test_no_output_block_is_a_message():
    g = Graph()
    i = g.add_node("Input", {"kind": "vector", "features": 2})
    d = g.add_node("Dense", {"units": 2})
    g.connect(i.id, 0, d.id, 0)
    p = Project(name="bare", graph=g)
    p.data.dataset = "xor"
    events, kinds = run_events(Trainer(p))
    assert kinds == [Failed] and "output block" in events[0].message


def test_localization_trains_both_heads():
    p = load_template("localization")
    p.data.samples = 200
    events, kinds = run_events(Trainer(p, epochs=1))
    assert kinds[-1] is Finished, events[-1]
    test = events[-1].test
    assert any(k.endswith("accuracy") for k in test) and any(k.endswith("box_iou") for k in test)


def test_segmentation_reports_iou():
    p = load_template("unet")
    p.data.samples = 64
    p.training.batch_size = 16
    events, kinds = run_events(Trainer(p, epochs=1))
    assert kinds[-1] is Finished, events[-1]
    assert 0.0 <= events[-1].test["iou"] <= 1.0


def test_kfold_gives_k_results():
    p = mlp_project(epochs=2)
    results = cross_validate(p, 3)
    assert [r.fold for r in results] == [1, 2, 3] and all(r.folds == 3 for r in results)
    assert all("val_accuracy" in r.val for r in results)


def test_kfold_events_end_with_one_failed_event_naming_the_fold(monkeypatch):
    p = mlp_project(epochs=2)
    events = list(cross_validate_events(p, 1))
    assert [type(e) for e in events] == [Failed] and "at least 2 folds" in events[0].message
    calls = []
    real = Trainer._step

    def second_fold_diverges(self, x, targets, gen):
        loss = real(self, x, targets, gen)
        calls.append(self)
        return loss * math.nan if len({id(t) for t in calls}) == 2 else loss

    monkeypatch.setattr(Trainer, "_step", second_fold_diverges)
    events = list(cross_validate_events(p, 3, emit_interval=0))
    kinds = [type(e) for e in events]
    assert kinds.count(FoldDone) == 1 and kinds[-1] is Failed and CrossValidated not in kinds
    assert events[-1].message.startswith("fold 2 of 3: the loss became NaN") and events[-1].fold == 2
    calls.clear()
    with pytest.raises(TrainingError, match="fold 2 of 3"):
        cross_validate(p, 3)


def test_kfold_stop_ends_the_job_with_the_folds_done_so_far():
    p = mlp_project(epochs=3)
    control = Control()
    events = []
    for ev in cross_validate_events(p, 4, control=control, emit_interval=0):
        events.append(ev)
        if isinstance(ev, FoldDone) and ev.fold == 2:
            control.stop()
    kinds = [type(e) for e in events]
    assert kinds.count(FoldDone) == 2 and kinds[-1] is CrossValidated and Finished not in kinds
    done = events[-1]
    assert done.stopped and [f.fold for f in done.results] == [1, 2]
    assert done.mean["val_accuracy"] == pytest.approx(np.mean([f.val["val_accuracy"] for f in done.results]))
    summary = done.summary()  # what summary.json keeps
    assert summary["k"] == 4 and [f["fold"] for f in summary["folds"]] == [1, 2] and summary["stopped"]


def test_cli_train_writes_metrics_and_summary(tmp_path, capsys):
    p = mlp_project(epochs=2)
    save_project(p, tmp_path / "mlp.json")
    out = tmp_path / "run"
    assert cli_main(["train", str(tmp_path / "mlp.json"), "--epochs", "2", "--device", "cpu", "--out", str(out)]) == 0
    lines = (out / "metrics.csv").read_text().strip().splitlines()
    assert lines[0].startswith("epoch,step,train_loss") and len(lines) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert "accuracy" in summary["summary"]["test"]
    run = read_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2]
    assert "test: accuracy" in capsys.readouterr().out


def test_cli_train_bad_device_is_one_line(tmp_path, capsys):
    save_project(mlp_project(epochs=1), tmp_path / "mlp.json")
    if torch.cuda.is_available():
        return
    assert cli_main(["train", str(tmp_path / "mlp.json"), "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA" in err[0]


def test_live_views_off_means_no_probe_events_and_a_zero_time_trigger_is_off():
    from engine.probes.runner import ProbeSettings

    p = mlp_project(epochs=2)
    p.probes.every_batches = 1
    events, kinds = run_events(Trainer(p, probes=True))
    assert ProbesDone in kinds and InsightDone in kinds
    p.probes.enabled = False
    events, kinds = run_events(Trainer(p, probes=True))
    assert kinds[-1] is Finished and ProbesDone not in kinds and InsightDone not in kinds
    assert ProbeSettings.from_config(p.probes).every_seconds is None
    p.probes.every_seconds = 1.5
    assert ProbeSettings.from_config(p.probes).every_seconds == 1.5


@pytest.mark.parametrize(
    ("name", "plain", "kind"),
    [
        ("adam", lambda ps, c: torch.optim.Adam(ps, lr=c.lr, weight_decay=c.weight_decay), "fused"),
        ("sgd", lambda ps, c: torch.optim.SGD(ps, lr=c.lr, momentum=c.momentum, nesterov=True, weight_decay=c.weight_decay), "fused"),
        ("adagrad", lambda ps, c: torch.optim.Adagrad(ps, lr=c.lr, weight_decay=c.weight_decay), "fused"),
        ("rmsprop", lambda ps, c: torch.optim.RMSprop(ps, lr=c.lr, weight_decay=c.weight_decay), "foreach"),
    ],
)
def test_optimizers_take_pytorchs_faster_kernels_and_step_as_the_plain_ones_do(name, plain, kind):
    from engine.config import TrainingConfig
    from engine.training.trainer import make_optimizer

    cfg = TrainingConfig(optimizer=name, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3)
    torch.manual_seed(0)
    ours_net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    plain_net = copy.deepcopy(ours_net)
    start = ours_net[0].weight.detach().clone()
    ours, theirs = make_optimizer(ours_net.parameters(), cfg), plain(plain_net.parameters(), cfg)
    assert ours.param_groups[0][kind] is True and type(ours) is type(theirs)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    for _ in range(5):
        for net, opt in ((ours_net, ours), (plain_net, theirs)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for a, b in zip(ours_net.parameters(), plain_net.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
    assert (ours_net[0].weight - start).abs().max() > 1e-3  # the steps moved the weights


def test_an_optimizer_over_no_parameters_says_so():
    from engine.config import TrainingConfig
    from engine.training.trainer import make_optimizer

    with pytest.raises(ValueError, match="empty parameter list"):
        make_optimizer([], TrainingConfig())

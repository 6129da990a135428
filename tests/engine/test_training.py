"""The training loop: learning happens, control flags work, failures become messages."""

import copy
import json
import math
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
from engine.training.trainer import Control, Trainer, TrainingError


def run_events(trainer):
    events = list(trainer.events())
    kinds = [e.kind for e in events]
    assert kinds[0] in ("started", "failed")
    return events, kinds


def epochs_of(events):
    return [e.data for e in events if e.kind == "epoch"]


def mlp_project(epochs=8, **training) -> Project:
    p = load_template("mlp")
    p.data.samples = 400
    p.training.epochs = epochs
    for k, v in training.items():
        setattr(p.training, k, v)
    return p


def test_loss_falls_for_the_mlp_on_a_toy_set():
    events, kinds = run_events(Trainer(mlp_project(epochs=10, lr=0.01)))
    assert kinds[-1] == "finished", events[-1]
    losses = [e["train_loss"] for e in epochs_of(events)]
    assert losses[-1] < 0.7 * losses[0]
    assert "accuracy" in events[-1].data["test"]


def test_loss_falls_for_lenet5_on_digits():
    p = load_template("lenet5")
    events, kinds = run_events(Trainer(p, epochs=2))
    assert kinds[-1] == "finished", events[-1]
    ep = epochs_of(events)
    assert ep[1]["train_loss"] < ep[0]["train_loss"] and ep[1]["val_accuracy"] > 0.5
    batches = [e for e in events if e.kind == "batches"]
    assert sum(len(e.data["losses"]) for e in batches) == 2 * events[0].data["batches_per_epoch"]


def test_the_callers_project_is_not_shared_with_the_loop():
    p = mlp_project(epochs=1)
    trainer = Trainer(p)
    assert trainer.project is not p and trainer.project.graph is not p.graph
    run_events(trainer)
    assert all(param.device.type == "cpu" for param in trainer.model.parameters())


def test_nan_loss_stops_cleanly_with_a_suggestion():
    events, kinds = run_events(Trainer(mlp_project(epochs=5, optimizer="sgd", lr=1e30, momentum=0.0)))
    assert kinds[-1] == "failed" and "finished" not in kinds
    msg = events[-1].data["message"]
    assert ("NaN" in msg or "infinite" in msg) and "learning rate" in msg


def test_early_stopping_triggers_and_restores_the_best_weights():
    # Tiny noisy data and a big net overfit fast: validation loss turns up.
    p = mlp_project(epochs=200, lr=0.05, early_stopping_patience=3, restore_best=True)
    p.data.samples = 60
    p.data.noise = 0.5
    trainer = Trainer(p)
    events, kinds = run_events(trainer)
    assert "early_stop" in kinds and kinds[-1] == "finished"
    stop = next(e.data for e in events if e.kind == "early_stop")
    assert stop["epoch"] - stop["best_epoch"] == 3 and stop["epoch"] < 200
    best_val = min(e["val_loss"] for e in epochs_of(events))
    val_loss, _ = trainer.evaluate("val")
    assert abs(val_loss - best_val) < 1e-5


def test_stop_pause_and_resume_from_another_thread():
    control = Control()
    p = mlp_project(epochs=1000)
    trainer = Trainer(p, control=control, emit_interval=0)
    seen = []
    paused_at = {}

    def drive():
        for event in trainer.events():
            seen.append(event)
            if event.kind == "batches" and event.data["step"] == 3 and not paused_at:
                control.pause()
                paused_at["step"] = 3
                threading.Timer(0.3, control.resume).start()
            if event.kind == "batches" and event.data["step"] == 20:
                control.stop()

    worker = threading.Thread(target=drive)
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    assert seen[-1].kind == "finished" and seen[-1].data["stopped"] is True
    steps = [e.data["step"] for e in seen if e.kind == "batches"]
    assert steps[:4] == [1, 2, 3, 4] and max(steps) < 30  # resumed after the pause, then stopped


def test_checkpoints_and_resume(tmp_path):
    p = mlp_project(epochs=2)
    events, kinds = run_events(Trainer(p, out_dir=tmp_path))
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 2
    resumed = Trainer(p, epochs=4, resume_from=tmp_path / "last.pt")
    events, kinds = run_events(resumed)
    assert [e["epoch"] for e in epochs_of(events)] == [3, 4]


def test_resume_from_a_checkpoint_of_another_network_is_a_message(tmp_path):
    run_events(Trainer(mlp_project(epochs=1), out_dir=tmp_path))
    events, kinds = run_events(Trainer(load_template("perceptron"), resume_from=tmp_path / "last.pt"))
    assert kinds == ["failed"] and "does not fit" in events[0].data["message"]


def test_wrong_targets_for_the_head_is_a_message():
    p = mlp_project()
    p.data.dataset = "regression1d"
    p.data.task = "regression"
    events, kinds = run_events(Trainer(p))
    assert kinds == ["failed"]
    assert "features" in events[0].data["message"] or "needs" in events[0].data["message"]


def test_no_output_block_is_a_message():
    g = Graph()
    i = g.add_node("Input", {"kind": "vector", "features": 2})
    d = g.add_node("Dense", {"units": 2})
    g.connect(i.id, 0, d.id, 0)
    p = Project(name="bare", graph=g)
    p.data.dataset = "xor"
    events, kinds = run_events(Trainer(p))
    assert kinds == ["failed"] and "output block" in events[0].data["message"]


def test_localization_trains_both_heads():
    p = load_template("localization")
    p.data.samples = 200
    events, kinds = run_events(Trainer(p, epochs=1))
    assert kinds[-1] == "finished", events[-1]
    test = events[-1].data["test"]
    assert any(k.endswith("accuracy") for k in test) and any(k.endswith("box_iou") for k in test)


def test_segmentation_reports_iou():
    p = load_template("unet")
    p.data.samples = 64
    p.training.batch_size = 16
    events, kinds = run_events(Trainer(p, epochs=1))
    assert kinds[-1] == "finished", events[-1]
    assert 0.0 <= events[-1].data["test"]["iou"] <= 1.0


def test_kfold_gives_k_results():
    p = mlp_project(epochs=2)
    results = cross_validate(p, 3)
    assert [r["fold"] for r in results] == [1, 2, 3]
    assert all("val_accuracy" in r["val"] for r in results)


def test_kfold_events_end_with_one_failed_event_naming_the_fold(monkeypatch):
    p = mlp_project(epochs=2)
    events = list(cross_validate_events(p, 1))
    assert [e.kind for e in events] == ["failed"] and "at least 2 folds" in events[0].data["message"]
    calls = []
    real = Trainer._step

    def second_fold_diverges(self, x, targets, gen):
        loss = real(self, x, targets, gen)
        calls.append(self)
        return loss * math.nan if len({id(t) for t in calls}) == 2 else loss

    monkeypatch.setattr(Trainer, "_step", second_fold_diverges)
    events = list(cross_validate_events(p, 3, emit_interval=0))
    kinds = [e.kind for e in events]
    assert kinds.count("fold_done") == 1 and kinds[-1] == "failed" and "finished" not in kinds
    assert events[-1].data["message"].startswith("fold 2 of 3: the loss became NaN")
    calls.clear()
    with pytest.raises(TrainingError, match="fold 2 of 3"):
        cross_validate(p, 3)


def test_kfold_stop_ends_the_job_with_the_folds_done_so_far():
    p = mlp_project(epochs=3)
    control = Control()
    events = []
    for ev in cross_validate_events(p, 4, control=control, emit_interval=0):
        events.append(ev)
        if ev.kind == "fold_done" and ev.data["fold"] == 2:
            control.stop()
    kinds = [e.kind for e in events]
    assert kinds.count("fold_done") == 2 and kinds[-1] == "finished"
    done = events[-1].data
    assert done["stopped"] and [f["fold"] for f in done["folds"]] == [1, 2]
    assert done["mean"]["val_accuracy"] == pytest.approx(np.mean([f["val"]["val_accuracy"] for f in done["folds"]]))


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
    assert "probes" in kinds and "insight" in kinds
    p.probes.enabled = False
    events, kinds = run_events(Trainer(p, probes=True))
    assert kinds[-1] == "finished" and "probes" not in kinds and "insight" not in kinds
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

"""Pause → edit → resume: a paused run takes on new settings at its resume point, records them, refuses
what it cannot take and stays paused; a changed network starts a new run from the paused weights."""

import json
import math

import numpy as np
import pytest
import torch

from engine.compile import compile_graph
from engine.graph import Graph
from engine.project import graph_from_dict, graph_to_dict, project_from_dict, project_to_dict
from engine.templates import load_template
from engine.training.events import BatchesDone, EpochDone, Finished, Paused, Resumed, Started, WeightsKept
from engine.training.live import change_text, changes_text, live_values, plan_changes
from engine.training.runs import read_batches, read_run
from engine.training.trainer import Control, Trainer
from engine.training.transfer import KEPT_WEIGHTS, read_kept, transfer_weights
from tests.engine.helpers import chain, gap_net, vector_input


def mlp(epochs=3, samples=400, **training):
    p = load_template("mlp")
    p.data.samples = samples
    p.training.epochs = epochs
    p.training.device = "cpu"
    p.probes.enabled = False
    for k, v in training.items():
        setattr(p.training, k, v)
    return p


def with_dropout(p, rate=0.5):
    """The MLP's data, Input → Dense 16 → ReLU → Dropout → Dense 2 → Class output; the Dropout is 'drop'."""
    g = Graph()
    x = vector_input(g, 2)
    ids = chain(g, x, ("Dense", {"units": 16}), "ReLU", ("Dropout", {"p": rate}), ("Dense", {"units": 2}),
                "ClassificationOutput")
    g.rename(ids[2], "drop")
    p.graph = g
    return p, ids[2]


def paused_run(project, at_step, changes, *, out_dir=None, watch=None, then=None, init_from=None):
    """Run ``project``; pause after ``at_step``, resume with ``changes``; ``then(trainer, control, ev)`` may act."""
    control = Control()
    trainer = Trainer(project, control=control, emit_interval=0, out_dir=out_dir, init_from=init_from)
    events = []
    for ev in trainer.events():
        events.append(ev)
        if watch is not None:
            watch(trainer, ev)
        if isinstance(ev, BatchesDone) and ev.step == at_step and not any(isinstance(e, Paused) for e in events):
            control.pause()
        elif then is not None and then(trainer, control, ev):
            continue
        elif isinstance(ev, Paused) and not ev.refused:
            control.resume(changes)
    return trainer, events


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


# ---------------------------------------------------------------------- the learning rate
def test_a_new_learning_rate_applies_at_the_next_step_and_is_recorded(tmp_path):
    """Plain SGD moves each weight by -lr·gradient: from the same weights and batch, the step after a resume
    with a rate ten times smaller moves every weight exactly ten times less."""
    seen = {"a": {}, "b": {}}

    def record(key):
        def watch(trainer, ev):
            if isinstance(ev, BatchesDone) and ev.step in (3, 4):
                seen[key][ev.step] = (params(trainer.model), trainer.optimizer.param_groups[0]["lr"])
        return watch

    project = mlp(epochs=2, optimizer="sgd", lr=0.1, momentum=0.0)
    trainer, events = paused_run(project, 3, {"training.lr": 0.01}, out_dir=tmp_path / "run", watch=record("a"))
    paused_run(mlp(epochs=1, optimizer="sgd", lr=0.1, momentum=0.0), 3, {}, watch=record("b"))

    assert seen["a"][3][1] == 0.1 and seen["a"][4][1] == 0.01, "the optimizer has the new rate at the next step"
    for name, before in seen["a"][3][0].items():
        moved = seen["a"][4][0][name] - before
        moved_at_old_rate = seen["b"][4][0][name] - seen["b"][3][0][name]
        # NOTE: float32 weights near 1 are exact to about 1e-7, so a move is known to about that
        assert torch.allclose(moved, 0.1 * moved_at_old_rate, rtol=1e-3, atol=5e-7), name
        assert float(moved.norm() / moved_at_old_rate.norm()) == pytest.approx(0.1, rel=1e-2), name
    resumed = next(e for e in events if isinstance(e, Resumed))
    assert resumed.step == 3 and resumed.changes == {"training.lr": (0.1, 0.01)}
    bpe = events[0].batches_per_epoch
    assert resumed.at == pytest.approx(3 / bpe, abs=1e-4) and resumed.epoch == 1
    assert [e.lr for e in events if isinstance(e, EpochDone)] == [0.01, 0.01]
    assert isinstance(events[-1], Finished) and trainer.cfg.lr == 0.01

    run = read_run(tmp_path / "run")
    assert run.changes == [{"step": 3, "epoch": pytest.approx(3 / bpe), "changes": {"training.lr": [0.1, 0.01]}}]
    assert run.project["training"]["lr"] == 0.01, "project.json holds the settings the run goes on with"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["changes"][0]["changes"] == {"training.lr": [0.1, 0.01]}


def test_a_resume_without_changes_changes_nothing_and_records_nothing(tmp_path):
    _, events = paused_run(mlp(epochs=1), 2, {}, out_dir=tmp_path / "run")
    resumed = next(e for e in events if isinstance(e, Resumed))
    assert resumed.changes == {} and resumed.epoch_batches == 0
    assert read_run(tmp_path / "run").changes == []


# ---------------------------------------------------------------------- the batch size
@pytest.mark.parametrize("old, new", [(32, 50), (32, 7), (64, 300)])
def test_a_new_batch_size_keeps_steps_metrics_and_batch_losses_consistent(tmp_path, old, new):
    epochs = 3
    _, events = paused_run(mlp(epochs=epochs, batch_size=old), 2, {"training.batch_size": new},
                           out_dir=tmp_path / "run")
    assert isinstance(events[-1], Finished), events[-1]
    n = events[0].train
    first = 2 + math.ceil((n - 2 * min(old, n)) / min(new, n))  # the two batches before, then the rest
    later = math.ceil(n / min(new, n))
    resumed = next(e for e in events if isinstance(e, Resumed))
    assert (resumed.epoch_batches, resumed.batches_per_epoch) == (first, later)
    assert resumed.total_steps == first + (epochs - 1) * later
    batches = [e for e in events if isinstance(e, BatchesDone)]
    steps = [e.step for e in batches]
    assert steps == list(range(1, first + (epochs - 1) * later + 1)), "every batch is one step, counted once"
    assert [e.batch for e in batches if e.epoch == 1][-1] == first
    assert all(e.total_steps == resumed.total_steps for e in batches if e.step > 2)
    ends = [e.step for e in events if isinstance(e, EpochDone)]
    assert ends == [first + i * later for i in range(epochs)]

    folder = tmp_path / "run"
    run = read_run(folder)
    assert [r["step"] for r in run.history] == ends, "metrics.csv's step column"
    losses = np.concatenate([e.losses for e in batches])
    on_disk = read_batches(folder / "batches.f32")
    assert len(on_disk) == ends[-1] and np.array_equal(on_disk, losses.astype(np.float32))
    epoch1 = next(e for e in events if isinstance(e, EpochDone) and e.epoch == 1)
    assert epoch1.train_loss == pytest.approx(float(np.mean(losses[:first], dtype=np.float64)), rel=1e-6)
    assert json.loads((folder / "summary.json").read_text())["batches_per_epoch"] == later


# ---------------------------------------------------------------------- dropout, schedule and the rest
def test_a_new_dropout_rate_reaches_the_module_and_the_run_folder(tmp_path):
    project, drop = with_dropout(mlp(epochs=1))
    trainer, events = paused_run(project, 2, {f"blocks.{drop}.p": 0.2}, out_dir=tmp_path / "run")
    module = getattr(trainer.model, trainer.code.attrs[drop])
    assert isinstance(module, torch.nn.Dropout) and module.p == 0.2
    resumed = next(e for e in events if isinstance(e, Resumed))
    assert resumed.changes == {"blocks.drop.p": (0.5, 0.2)}
    run = read_run(tmp_path / "run")
    assert run.changes[0]["changes"] == {"blocks.drop.p": [0.5, 0.2]}
    node = next(n for n in run.project["graph"]["nodes"] if n["id"] == drop)
    assert node["params"]["p"] == 0.2


def test_weight_decay_momentum_patience_and_augmentation_reach_the_loop():
    changes = {"training.weight_decay": 1e-3, "training.momentum": 0.5, "training.early_stopping_patience": 2,
               "data.augment": {"noise": 0.05}}
    got = {}

    def look(trainer, ev):
        if isinstance(ev, BatchesDone) and ev.step == 3:
            group = trainer.optimizer.param_groups[0]
            got.update(wd=group["weight_decay"], momentum=group["momentum"], lr=group["lr"],
                       patience=trainer.cfg.early_stopping_patience, augment=trainer.augment.spec)

    _, events = paused_run(mlp(epochs=1, optimizer="sgd", lr=0.05, momentum=0.9), 2, changes, watch=look)
    assert got == {"wd": 1e-3, "momentum": 0.5, "lr": 0.05, "patience": 2, "augment": {"noise": 0.05}}
    resumed = next(e for e in events if isinstance(e, Resumed))
    assert resumed.changes["data.augment"] == ({}, {"noise": 0.05})


def test_a_cosine_schedule_set_while_paused_starts_from_the_current_rate_for_the_remaining_epochs():
    epochs, lr = 6, 0.1
    project = mlp(epochs=epochs, lr=lr)
    bpe = math.ceil(280 / 32)
    _, events = paused_run(project, bpe + 2, {"training.schedule": "cosine"})  # in epoch 2
    rates = [e.lr for e in events if isinstance(e, EpochDone)]
    remaining = epochs - 1  # NOTE: epochs 2..6, the cosine's length
    expected = [lr] + [lr * 0.5 * (1 + math.cos(math.pi * k / remaining)) for k in range(epochs - 1)]
    assert rates == pytest.approx(expected, rel=1e-6)


def test_a_run_continued_after_a_schedule_set_while_paused_goes_on_along_it(tmp_path):
    """The run's folder keeps the new settings and the checkpoint where the schedule began."""
    epochs, lr = 6, 0.1
    bpe = math.ceil(280 / 32)
    folder = tmp_path / "run"

    def then(trainer, control, ev):
        if isinstance(ev, EpochDone) and ev.epoch == 4:
            control.stop()  # NOTE: after epoch 4's checkpoint, before epoch 5 trains
        return False

    _, first = paused_run(mlp(epochs=epochs, lr=lr), bpe + 2, {"training.schedule": "cosine"}, out_dir=folder,
                          then=then)
    assert first[-1].stopped
    stored = project_from_dict(read_run(folder).project)
    assert stored.training.schedule == "cosine"
    rest = list(Trainer(stored, out_dir=folder, resume_from=folder / "last.pt", epochs=epochs).events())
    rates = [e.lr for e in first + rest if isinstance(e, EpochDone)]
    expected = [lr] + [lr * 0.5 * (1 + math.cos(math.pi * k / (epochs - 1))) for k in range(epochs - 1)]
    assert rates == pytest.approx(expected, rel=1e-6)


def test_a_new_rate_under_a_step_schedule_is_decayed_from_at_the_next_step_boundary():
    project = mlp(epochs=5, lr=0.1, schedule="step", step_size=2, gamma=0.5)
    bpe = math.ceil(280 / 32)
    _, events = paused_run(project, bpe + 1, {"training.lr": 0.04})  # in epoch 2
    rates = [e.lr for e in events if isinstance(e, EpochDone)]
    # epoch 1 at 0.1; the new rate from epoch 2; halved after epochs 2 and 4 as the schedule goes on
    assert rates == pytest.approx([0.1, 0.04, 0.02, 0.02, 0.01])


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize("changes, words", [
    ({"training.epochs": 3}, "training.epochs cannot change while a run is paused"),
    ({"training.momentum": 0.5}, "only SGD uses momentum"),
    ({"training.lr": -1.0}, "training.lr must be a positive number"),
    ({"data.augment": {"flip": True}}, "needs image inputs"),
    ({"blocks.n2.p": 0.1}, "only the rate p of a Dropout"),
    ({"training.lr": 0.001, "training.optimizer": "sgd"}, "training.optimizer cannot change"),
])
def test_a_change_that_cannot_be_applied_is_refused_and_the_run_stays_paused(changes, words):
    answered = []

    def then(trainer, control, ev):
        if isinstance(ev, Paused) and ev.refused:
            answered.append((ev, control.paused, trainer.optimizer.param_groups[0]["lr"], trainer.augment))
            control.resume({})  # NOTE: the person takes the change back and resumes
            return True
        return False

    _, events = paused_run(mlp(epochs=1, lr=0.01), 2, changes, then=then)
    kinds = [type(e) for e in events]
    at = kinds.index(Paused)
    refusal, still_paused, lr, augment = answered[0]
    assert events[at + 1] is refusal and words in refusal.refused and refusal.step == 2
    assert still_paused and lr == 0.01 and augment is None, "nothing changed"
    assert isinstance(events[at + 2], Resumed) and events[at + 2].changes == {} and events[at + 2].step == 2
    assert events[at + 3].step == 3 and isinstance(events[-1], Finished)


def test_a_stop_while_paused_after_a_refusal_ends_the_run():
    def then(trainer, control, ev):
        if isinstance(ev, Paused) and ev.refused:
            control.stop()
            return True
        return False

    _, events = paused_run(mlp(epochs=2), 2, {"training.seed": 3}, then=then)
    assert Resumed not in map(type, events) and events[-1].stopped


def test_what_changes_is_named_in_words():
    snapshot = project_to_dict(with_dropout(mlp())[0])
    plan = plan_changes(snapshot, {"training.lr": 0.001, "data.augment": {"flip": True, "noise": 0.1},
                                   "blocks.n4.p": 0.25, "training.batch_size": 32})
    assert plan.applied == {"training.lr": (0.01, 0.001), "data.augment": ({}, {"flip": True, "noise": 0.1}),
                            "blocks.drop.p": (0.5, 0.25)}, "the batch size did not change"
    assert changes_text(plan.applied) == "lr 0.01 → 0.001, augmentation none → flip, noise 0.1, drop p 0.5 → 0.25"
    assert change_text("training.early_stopping_patience", 0, 5) == "patience 0 → 5"
    values = live_values(snapshot)
    assert values["blocks.n4.p"] == 0.5 and values["training.lr"] == 0.01 and "training.epochs" not in values


# ---------------------------------------------------------------------- a changed network
def _copy(graph):
    return graph_from_dict(graph_to_dict(graph))


def test_the_weight_transfer_keeps_every_block_that_fits_by_block_id_and_initializes_the_rest():
    old_graph, ids = gap_net(filters=8)  # NOTE: its blocks are named conv, conv1 (the second conv) and fc
    torch.manual_seed(0)
    old = compile_graph(old_graph)
    old_state = {k: v.clone() for k, v in old.module.state_dict().items()}
    new_graph = _copy(old_graph)
    new_graph.set_params(ids["conv2"], {"filters": 10})  # its shape, and so the Dense layer's input, change
    new_graph.rename(ids["conv1"], "features")  # NOTE: another attribute name; the same block
    new_graph.rename(ids["fc"], "conv")  # NOTE: the kept block's old name on another block: ids decide
    torch.manual_seed(1)
    new = compile_graph(new_graph)
    fresh = {k: v.clone() for k, v in new.module.state_dict().items()}

    moved = transfer_weights(old_graph, old_state, new_graph, new.module, new.code)
    assert moved.kept == (ids["conv1"],)
    assert moved.fresh == {ids["conv2"]: "its shape changed", ids["fc"]: "its shape changed"}
    state = new.module.state_dict()
    assert sorted(moved.copied) == ["features.bias", "features.weight"]
    assert torch.equal(state["features.weight"], old_state["conv.weight"])
    assert torch.equal(state["features.bias"], old_state["conv.bias"])
    for key in ("conv1.weight", "conv1.bias", "conv.weight", "conv.bias"):  # the new second conv, the Dense
        assert torch.equal(state[key], fresh[key]), key
    assert moved.described(new_graph) == {"kept": ["features"],
                                          "fresh": {"conv1": "its shape changed", "conv": "its shape changed"}}


def test_a_new_block_starts_fresh_and_batchnorm_statistics_go_with_their_block():
    g = Graph()
    x = vector_input(g, 2)
    fc1, bn, relu, fc2, _out = chain(g, x, ("Dense", {"units": 8}), "BatchNorm", "ReLU", ("Dense", {"units": 2}),
                                   "ClassificationOutput")
    old = compile_graph(g)
    with torch.no_grad():
        getattr(old.module, old.code.attrs[bn]).running_mean.fill_(3.0)
    old_state = {k: v.clone() for k, v in old.module.state_dict().items()}
    new_graph = _copy(g)
    new_graph.disconnect(next(e for e in new_graph.edges if e.src == relu))
    extra = new_graph.add_node("Dense", {"units": 8}).id
    new_graph.connect(relu, 0, extra, 0)
    new_graph.connect(extra, 0, fc2, 0)
    new = compile_graph(new_graph)
    moved = transfer_weights(g, old_state, new_graph, new.module, new.code)
    assert set(moved.kept) == {fc1, bn, fc2} and moved.fresh == {extra: "new"}
    bn_module = getattr(new.module, new.code.attrs[bn])
    assert torch.equal(bn_module.running_mean, torch.full((8,), 3.0))


def test_a_changed_network_starts_a_new_run_from_the_paused_weights(tmp_path):
    """The paused run writes its weights; the new network takes every block that fits and names the others."""
    old_dir = tmp_path / "runs" / "first"
    bpe = math.ceil(280 / 32)
    at_pause = {}

    def then(trainer, control, ev):
        if isinstance(ev, Paused):
            at_pause.update(params(trainer.model))
            control.keep_weights(old_dir / KEPT_WEIGHTS)
            return True
        if isinstance(ev, WeightsKept):
            control.stop()
            return True
        return False

    old_trainer, events = paused_run(mlp(epochs=3), bpe + 2, {}, out_dir=old_dir, then=then)
    kept_ev = next(e for e in events if isinstance(e, WeightsKept))
    assert kept_ev.step == bpe + 2 and events[-1].stopped
    doc = read_kept(old_dir / KEPT_WEIGHTS)
    assert doc["epoch"] == 1 and doc["step"] == bpe + 2
    assert doc["project"]["graph"] == project_to_dict(old_trainer.project)["graph"]

    changed = mlp(epochs=1)
    fc2 = next(n for n in changed.graph.nodes.values() if n.name == "fc2")
    changed.graph.set_params(fc2.id, {"units": 24})  # fc2 and fc3 change shape; fc1 still fits
    control = Control()
    new = Trainer(changed, control=control, out_dir=tmp_path / "runs" / "second", init_from=old_dir / KEPT_WEIGHTS)
    stream = new.events()
    started = next(stream)
    assert isinstance(started, Started), started
    assert started.transfer["kept"] == ["fc1"]
    assert started.transfer["fresh"] == {"fc2": "its shape changed", "fc3": "its shape changed"}
    assert torch.equal(new.model.fc1.weight, at_pause["fc1.weight"])
    assert torch.equal(new.model.fc1.bias, at_pause["fc1.bias"])
    assert new.model.fc2.weight.shape == (24, 16)
    control.stop()
    rest = list(stream)
    assert isinstance(rest[-1], Finished)
    parent = read_run(tmp_path / "runs" / "second").parent
    assert parent["run"] == "first" and parent["epoch"] == 1 and parent["step"] == bpe + 2
    assert parent["kept"] == ["fc1"] and parent["at"] == pytest.approx(1 + 2 / bpe, abs=1e-4)


def test_damaged_paused_weights_end_the_new_run_with_a_message(tmp_path):
    bad = tmp_path / KEPT_WEIGHTS
    bad.write_bytes(b"not a torch file")
    events = list(Trainer(mlp(epochs=1), init_from=bad).events())
    assert len(events) == 1 and "could not be read" in events[0].message and str(bad) in events[0].message


# ---------------------------------------------------------------------- through the child process
@pytest.mark.slow  # NOTE: a child process (tests/engine stays under 30 s without these)
def test_the_changes_and_the_request_for_weights_reach_a_run_in_a_child_process(tmp_path):
    from engine.training import remote
    from engine.training.remote import TrainingProcess, TrainingRequest

    project = mlp(epochs=400, batch_size=8)
    run_dir = tmp_path / "run"
    proc = TrainingProcess(TrainingRequest(project_to_dict(project), emit_interval=0.0, probes=False, run_dir=run_dir))
    events = []
    try:
        for ev in proc.events():
            events.append(ev)
            if isinstance(ev, Started):
                proc.pause()
            elif isinstance(ev, Paused) and not ev.refused and not any(isinstance(e, Resumed) for e in events):
                proc.resume({"training.momentum": 0.5})  # NOTE: Adam has none: refused, the run stays paused
            elif isinstance(ev, Paused) and ev.refused:
                proc.keep_weights(run_dir / KEPT_WEIGHTS)
            elif isinstance(ev, WeightsKept):
                proc.resume({"training.lr": 0.002})
            elif isinstance(ev, Resumed):
                proc.stop()
    finally:
        remote.discard_spare()
    kinds = [type(e) for e in events]
    at = kinds.index(Paused)
    refusal, kept, resumed = events[at + 1], events[at + 2], events[at + 3]
    assert isinstance(refusal, Paused) and "only SGD uses momentum" in refusal.refused
    assert isinstance(kept, WeightsKept) and read_kept(run_dir / KEPT_WEIGHTS)["step"] == events[at].step
    assert isinstance(resumed, Resumed) and resumed.changes == {"training.lr": (0.01, 0.002)}
    assert isinstance(events[-1], Finished) and events[-1].stopped
    assert read_run(run_dir).changes[0]["changes"] == {"training.lr": [0.01, 0.002]}


@pytest.mark.parametrize("changes", [
    "lr",
    [{"step": 3, "epoch": 0.3}],
    [{"step": 3, "epoch": 0.3, "changes": {"training.lr": 0.1}}],
    [{"step": "3", "epoch": 0.3, "changes": {}}],
])
def test_a_damaged_record_of_changes_is_refused_naming_the_file(tmp_path, changes):
    from engine.training.runs import RunError, RunWriter

    writer = RunWriter(tmp_path / "run", snapshot=project_to_dict(mlp()), label="Run 1")
    writer.finish("finished", {})
    doc = json.loads((tmp_path / "run" / "summary.json").read_text())
    doc["changes"] = changes
    (tmp_path / "run" / "summary.json").write_text(json.dumps(doc))
    with pytest.raises(RunError, match=r"run/summary.json: 'changes' must be a list"):
        read_run(tmp_path / "run")

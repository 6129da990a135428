"""Starting a new run from an earlier run's weights (transfer learning): the course's recipe end to end, the
files it takes (run folder, checkpoint, bare state_dict), its refusals, and the command line's --init-from."""

import json

import pytest
import torch

from engine.cli import main as cli_main
from engine.compile import compile_graph
from engine.graph import Graph
from engine.project import Project, save_project
from engine.templates import load_template
from engine.training.events import Failed, Finished, Started
from engine.training.runs import list_runs, read_run
from engine.training.trainer import Trainer
from tests.engine.helpers import chain, vector_input

CONVS = ("conv1", "conv2")


def by_name(graph: Graph, name: str) -> str:
    return next(nid for nid, n in graph.nodes.items() if n.name == name)


def lenet(epochs: int = 1) -> Project:
    """LeNet-5 on the digits (the feature extractor A), one short epoch on the CPU, no probes."""
    p = load_template("lenet5")
    p.training.epochs = epochs
    p.training.device = "cpu"
    p.probes.enabled = False
    p.data.augment = {}
    return p


def new_head(p: Project, units: int = 32) -> Project:
    """B: A's convolutions, frozen, with a new head (Dense ``units`` → ReLU → Dense 10) in place of fc1..fc3."""
    g = p.graph
    for name in ("fc1", "relu3", "fc2", "relu4", "fc3"):
        g.remove_node(by_name(g, name))
    head1 = g.add_node("Dense", {"units": units}, name="head1").id
    relu = g.add_node("ReLU", {}).id
    head2 = g.add_node("Dense", {"units": 10}, name="head2").id
    g.connect(by_name(g, "flatten"), 0, head1, 0)
    g.connect(head1, 0, relu, 0)
    g.connect(relu, 0, head2, 0)
    g.connect(head2, 0, by_name(g, "output"), 0)
    for name in CONVS:
        g.set_params(by_name(g, name), {"trainable": False})
    return p


def run(trainer: Trainer, at_start: dict | None = None) -> list:
    """All of a run's events; ``at_start`` gets a copy of the model's tensors as they were when it started."""
    events = []
    for ev in trainer.events():
        if isinstance(ev, Started) and at_start is not None:
            at_start.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        events.append(ev)
    return events


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """A's run folder after one epoch, and A's final weights."""
    folder = tmp_path_factory.mktemp("a") / "lenet.runs" / "run-a"
    trainer = Trainer(lenet(), out_dir=folder)
    events = run(trainer)
    assert isinstance(events[-1], Finished), events[-1]
    return folder, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


# ---------------------------------------------------------------------- the recipe
@pytest.mark.slow  # NOTE: two LeNet-5 runs of one epoch on the digits, about 2 s
def test_a_new_head_on_frozen_features_starts_from_the_run_and_only_the_head_trains(run_a, tmp_path):
    folder, final_a = run_a
    project_b = new_head(lenet())
    at_start = {}
    trainer = Trainer(project_b, out_dir=tmp_path / "run-b", init_from=folder)
    events = run(trainer, at_start)
    started, done = events[0], events[-1]
    assert isinstance(started, Started) and isinstance(done, Finished), done
    assert started.transfer["kept"] == list(CONVS)
    assert started.transfer["fresh"] == {"head1": "new", "head2": "new"}
    assert started.transfer["epoch"] == 1 and started.transfer["checkpoint"] == str(folder / "best.pt")

    end = trainer.model.state_dict()
    for name in CONVS:
        for t in ("weight", "bias"):
            key = f"{name}.{t}"
            assert torch.equal(at_start[key], final_a[key]), key  # bit-identical to A's final weights
            assert torch.equal(end[key], final_a[key]), key  # frozen: unchanged by B's training
    torch.manual_seed(project_b.training.seed)  # NOTE: the head starts as Train would start B from scratch
    fresh = compile_graph(project_b.graph).module.state_dict()
    for key in ("head1.weight", "head1.bias", "head2.weight", "head2.bias"):
        assert torch.equal(at_start[key], fresh[key]), key
        assert not torch.equal(end[key], at_start[key]), key  # and it trains
    assert started.params == sum(at_start[k].numel() for k in fresh if k.startswith("head"))

    parent = read_run(tmp_path / "run-b").parent
    assert parent["run"] == "run-a" and parent["epoch"] == 1
    assert parent["kept"] == list(CONVS) and parent["fresh"] == {"head1": "new", "head2": "new"}


@pytest.mark.slow  # NOTE: one LeNet-5 epoch (the module's run A), then a start that stops before it trains
def test_a_checkpoint_of_an_epoch_and_a_bare_state_dict_are_taken_too(run_a, tmp_path):
    folder, final_a = run_a
    checkpoint = folder / "last.pt"
    trainer = Trainer(new_head(lenet()), init_from=checkpoint)
    started = next(trainer.events())
    assert started.transfer["kept"] == list(CONVS) and started.transfer["checkpoint"] == str(checkpoint)

    bare = tmp_path / "exported" / "lenet.pt"
    bare.parent.mkdir()
    torch.save(final_a, bare)  # NOTE: no project beside it: blocks are matched by their attribute names
    at_start = {}
    events = run(Trainer(new_head(lenet()), out_dir=tmp_path / "run-c", init_from=bare, epochs=1), at_start)
    started = events[0]
    assert started.transfer["kept"] == list(CONVS)
    assert started.transfer["fresh"] == {"head1": "not in the weights", "head2": "not in the weights"}
    assert torch.equal(at_start["conv2.weight"], final_a["conv2.weight"])
    summary = json.loads((tmp_path / "run-c" / "summary.json").read_text())
    assert summary["parent"] is None and summary["init_from"]["checkpoint"] == str(bare)
    assert summary["init_from"]["kept"] == list(CONVS)


@pytest.mark.slow  # NOTE: needs the module's run A (one LeNet-5 epoch)
def test_a_reshaped_block_starts_fresh_and_is_named(run_a):
    """fc1 with other units: fc1 and fc2 (its input) change shape; conv1, conv2 and fc3 still fit."""
    folder, final_a = run_a
    p = lenet()
    p.graph.set_params(by_name(p.graph, "fc1"), {"units": 64})
    trainer = Trainer(p, init_from=folder)
    started = next(trainer.events())
    assert started.transfer["kept"] == ["conv1", "conv2", "fc3"]
    assert started.transfer["fresh"] == {"fc1": "its shape changed", "fc2": "its shape changed"}
    assert torch.equal(trainer.model.fc3.weight, final_a["fc3.weight"])


# ---------------------------------------------------------------------- refusals
def mlp() -> Project:
    p = load_template("mlp")
    p.training.device = "cpu"
    p.training.epochs = 1
    p.probes.enabled = False
    return p


@pytest.mark.parametrize("content, why", [
    (b"not a torch file", "not a readable checkpoint"),
    (None, "holds no network weights"),
])
def test_a_file_that_is_not_a_checkpoint_ends_the_run_with_a_message_naming_it(tmp_path, content, why):
    bad = tmp_path / "weights.pt"
    if content is None:
        torch.save([1, 2, 3], bad)
    else:
        bad.write_bytes(content)
    events = list(Trainer(mlp(), out_dir=tmp_path / "run", init_from=bad).events())
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert str(bad) in events[0].message and why in events[0].message
    assert "\n" not in events[0].message and not (tmp_path / "run").exists()


@pytest.mark.slow  # NOTE: needs the module's run A (one LeNet-5 epoch)
def test_a_network_with_no_block_in_common_is_refused(run_a):
    folder, _ = run_a
    events = list(Trainer(mlp(), init_from=folder).events())
    assert isinstance(events[-1], Failed) and len(events) == 1
    assert "no block of this network fits" in events[0].message and str(folder / "best.pt") in events[0].message


def test_a_run_folder_without_a_checkpoint_is_refused(tmp_path):
    folder = tmp_path / "empty-run"
    folder.mkdir()
    events = list(Trainer(mlp(), init_from=folder).events())
    assert isinstance(events[-1], Failed) and "has no checkpoint" in events[-1].message


def test_weights_by_name_match_shapes_not_just_names(tmp_path):
    """A bare state_dict whose tensor has the right name but another shape leaves that block fresh."""
    g = Graph()
    x = vector_input(g, 2)
    ids = chain(g, x, ("Dense", {"units": 8}), "ReLU", ("Dense", {"units": 2}), "ClassificationOutput")
    p = mlp()
    p.graph = g
    names = [g.nodes[ids[0]].name, g.nodes[ids[2]].name]
    torch.manual_seed(5)
    donor = compile_graph(g).module.state_dict()
    donor[f"{names[1]}.weight"] = torch.zeros(3, 8)
    bare = tmp_path / "w.pt"
    torch.save(donor, bare)
    trainer = Trainer(p, init_from=bare)
    started = next(trainer.events())
    assert started.transfer["kept"] == [names[0]] and started.transfer["fresh"] == {names[1]: "its shape changed"}
    assert torch.equal(getattr(trainer.model, names[0]).weight, donor[f"{names[0]}.weight"])


# ---------------------------------------------------------------------- the command line
@pytest.mark.slow  # NOTE: one LeNet-5 epoch from the command line
def test_cli_init_from_says_what_was_kept_and_writes_the_parent(run_a, tmp_path, capsys):
    folder, _ = run_a
    project = tmp_path / "b.json"
    save_project(new_head(lenet()), project)
    assert cli_main(["train", str(project), "--init-from", str(folder)]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("kept"))
    assert line == f"kept 2 blocks from {folder} (epoch 1): conv1, conv2; fresh: head1 (new), head2 (new)"
    (record,), _ = list_runs(tmp_path / "b.runs")
    assert record.parent["run"] == "run-a" and record.parent["kept"] == list(CONVS)


def test_cli_refuses_resume_with_init_from(tmp_path, capsys):
    folder = tmp_path / "lenet.runs" / "run-a"
    folder.mkdir(parents=True)
    project = tmp_path / "b.json"
    save_project(new_head(lenet()), project)
    assert cli_main(["train", str(project), "--init-from", str(folder), "--resume", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and "--init-from" in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "b.runs").exists()


@pytest.mark.parametrize("make, why", [
    (lambda d: d / "missing.pt", "no such run folder or checkpoint file"),
    (lambda d: (d / "junk.pt").write_bytes(b"\x00junk") and d / "junk.pt", "not a readable checkpoint"),
])
def test_cli_init_from_a_bad_file_is_one_line_and_exit_2(tmp_path, capsys, make, why):
    project = tmp_path / "m.json"
    save_project(mlp(), project)
    bad = make(tmp_path)
    assert cli_main(["train", str(project), "--init-from", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err and str(bad) in err and "Traceback" not in err


def test_a_trainer_given_both_a_checkpoint_to_continue_and_weights_to_start_from_refuses(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save({"fc1.weight": torch.zeros(1)}, weights)
    events = list(Trainer(mlp(), resume_from=weights, init_from=weights).events())
    assert len(events) == 1 and isinstance(events[0], Failed) and "not both" in events[0].message

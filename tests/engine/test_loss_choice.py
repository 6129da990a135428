"""The loss setting of the Class, Binary and Regression outputs: every choice computes what it says.

Each choice is held to a numpy computation of its own (batch values and per-sample values) on random
batches; a run with each choice learns; a project without the setting reads and writes as before; a bad
choice is refused in words; and the training package trains with a chosen loss and reports the loss the
engine measures.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from engine.compile import compile_graph
from engine.config import DataConfig
from engine.data import Normalizer, load_dataset, split_dataset
from engine.errors import NetDesignerError
from engine.graph import Graph
from engine.package import export_package, train_script
from engine.project import (
    Project,
    load_project,
    project_from_dict,
    project_to_dict,
    save_project,
)
from engine.tasks import head_spec
from engine.training.events import Finished
from engine.training.objectives import head_loss, mixed_loss, sample_losses
from engine.training.runs import read_run
from engine.training.trainer import Trainer
from tests.engine.helpers import chain, vector_input
from tests.engine.test_package import regression_mlp, run_here


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _hinge(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Multi-class hinge: the mean over the classes of max(0, 1 − z_y + z_j), for j other than y."""
    right = z[np.arange(len(t)), t][:, None]
    margins = np.maximum(0.0, 1.0 - right + z)
    margins[np.arange(len(t)), t] = 0.0
    return margins.sum(1) / z.shape[1]


def _huber(d: np.ndarray) -> np.ndarray:
    a = np.abs(d)
    return np.where(a < 1.0, 0.5 * d * d, a - 0.5)


#: (head, loss setting) -> the per-sample loss computed with numpy from (outputs, targets)
NUMPY = {
    ("ClassificationOutput", "cross_entropy"): lambda z, t: -np.log(_softmax(z)[np.arange(len(t)), t]),
    ("ClassificationOutput", "mse_one_hot"): lambda z, t: ((_softmax(z) - np.eye(z.shape[1])[t]) ** 2).mean(1),
    ("ClassificationOutput", "hinge"): _hinge,
    ("BinaryOutput", "bce"): lambda z, t: (-(t * np.log(_sigmoid(z)) + (1 - t) * np.log(1 - _sigmoid(z)))).mean(1),
    ("BinaryOutput", "mse_sigmoid"): lambda z, t: ((_sigmoid(z) - t) ** 2).mean(1),
    ("RegressionOutput", "mse"): lambda z, t: ((z - t) ** 2).mean(1),
    ("RegressionOutput", "mae"): lambda z, t: np.abs(z - t).mean(1),
    ("RegressionOutput", "huber"): lambda z, t: _huber(z - t).mean(1),
}
CHOICES = sorted(NUMPY)


def _batch(kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random outputs and targets of a head: a spread of batch sizes, widths and scales."""
    gen = torch.Generator().manual_seed(seed)
    n = 1 + seed * 7 % 40
    width = 2 + seed % 5
    out = torch.randn(n, width, generator=gen) * (0.3 + seed % 4)
    if kind == "ClassificationOutput":
        return out, torch.randint(0, width, (n,), generator=gen)
    if kind == "BinaryOutput":
        return out, torch.randint(0, 2, (n, width), generator=gen).float()
    return out, torch.randn(n, width, generator=gen) * 2


def test_every_offered_choice_is_covered_and_the_default_comes_first():
    offered = {(kind, c.key) for kind in ("ClassificationOutput", "BinaryOutput", "RegressionOutput")
               for c in head_spec(kind).losses}
    assert offered == set(NUMPY)
    for kind, default in (("ClassificationOutput", "cross_entropy"), ("BinaryOutput", "bce"), ("RegressionOutput", "mse")):
        param = Graph().add_node(kind, {}).spec.param("loss")
        assert param.default == default and param.omit_default and head_spec(kind).loss_choice(None).key == default


@pytest.mark.parametrize("kind, key", CHOICES)
@pytest.mark.parametrize("seed", range(6))
def test_each_choice_equals_a_numpy_computation(kind, key, seed):
    out, target = _batch(kind, seed)
    expected = NUMPY[(kind, key)](out.double().numpy(), target.numpy())
    per_sample = sample_losses(kind, out, target, key)
    assert per_sample.shape == (out.shape[0],)
    np.testing.assert_allclose(per_sample.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert float(head_loss(kind, out, target, key)) == pytest.approx(float(expected.mean()), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("kind, key", CHOICES)
def test_mixup_mixes_each_choices_losses(kind, key):
    out, target = _batch(kind, 3)
    perm = torch.randperm(out.shape[0], generator=torch.Generator().manual_seed(1))
    reference = NUMPY[(kind, key)]
    z, t = out.double().numpy(), target.numpy()
    expected = 0.3 * reference(z, t).mean() + 0.7 * reference(z, t[perm.numpy()]).mean()
    assert float(mixed_loss(kind, out, target, (perm, 0.3), key)) == pytest.approx(expected, rel=1e-5, abs=1e-6)


#: a small data set and network per head, quick to learn
NETS = {
    "ClassificationOutput": ({"dataset": "gaussians", "task": "classification"}, 2),
    "BinaryOutput": ({"dataset": "circles", "task": "binary"}, 1),
    "RegressionOutput": ({"dataset": "regression1d", "task": "regression"}, 1),
}


def _project(kind: str, key: str, epochs: int = 6) -> Project:
    data, width = NETS[kind]
    p = Project(name=f"{kind} {key}")
    features = 1 if kind == "RegressionOutput" else 2
    chain(p.graph, vector_input(p.graph, features), ("Dense", {"units": 12}), "Tanh", ("Dense", {"units": width}),
          (kind, {"loss": key}))
    p.data = DataConfig(samples=160, **data)
    p.training.epochs, p.training.device, p.training.lr, p.training.batch_size = epochs, "cpu", 0.03, 16
    return p


@pytest.mark.parametrize("kind, key", CHOICES)
@pytest.mark.slow  # NOTE: trains a network (tests/engine stays under 30 s without these)
def test_a_run_with_each_choice_learns_and_reports_that_loss(kind, key):
    p = _project(kind, key)
    trainer = Trainer(p)
    (end,) = [e for e in trainer.events() if isinstance(e, Finished)]
    train_loss = [row["train_loss"] for row in end.history]
    assert train_loss[-1] < train_loss[0], train_loss
    # The validation loss the run reports is the chosen loss of the final model's outputs.
    model = trainer.model.eval()
    x, targets = trainer._tensors["val"]
    with torch.no_grad():
        out = model(x).double().numpy()
    expected = NUMPY[(kind, key)](out, targets[head_spec(kind).target].numpy()).mean()
    loss, _ = trainer.evaluate("val")
    assert loss == pytest.approx(float(expected), rel=1e-4, abs=1e-6)


def test_a_project_without_the_setting_loads_with_the_default_and_writes_the_same_file(tmp_path):
    p = _project("RegressionOutput", "mse")
    save_project(p, tmp_path / "a.json")
    saved = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    (head,) = [n for n in saved["graph"]["nodes"] if n["type"] == "RegressionOutput"]
    assert "loss" not in head["params"]
    loaded = load_project(tmp_path / "a.json")
    (node,) = [n for n in loaded.graph.nodes.values() if n.type == "RegressionOutput"]
    assert node.params["loss"] == "mse"
    save_project(loaded, tmp_path / "b.json")
    assert (tmp_path / "b.json").read_bytes() == (tmp_path / "a.json").read_bytes()
    chosen = _project("RegressionOutput", "huber")
    again = project_from_dict(project_to_dict(chosen))
    assert [n.params["loss"] for n in again.graph.nodes.values() if n.type == "RegressionOutput"] == ["huber"]


def test_a_bad_choice_is_refused_naming_the_block_and_the_choices():
    d = project_to_dict(_project("ClassificationOutput", "cross_entropy"))
    (head,) = [n for n in d["graph"]["nodes"] if n["type"] == "ClassificationOutput"]
    head["params"]["loss"] = "mae"
    with pytest.raises(NetDesignerError) as info:
        project_from_dict(d)
    message = str(info.value)
    assert head["name"] in message and "loss" in message
    for key in ("cross_entropy", "mse_one_hot", "hinge", "mae"):
        assert key in message


def test_the_brief_names_a_loss_other_than_the_default():
    g = Graph()
    spec = g.add_node("RegressionOutput", {}).spec
    assert spec.brief(spec.resolve_params({})) == "loss ×1"
    assert spec.brief(spec.resolve_params({"loss": "mae"})) == "loss ×1 · MAE"


def _written_train_py(folder):
    path = folder / "train.py"
    spec = importlib.util.spec_from_file_location(f"train_{abs(hash(str(folder)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind, key", CHOICES)
def test_train_py_computes_each_choice_as_the_engine_does(tmp_path, kind, key):
    (tmp_path / "train.py").write_text(train_script(), encoding="utf-8")
    script = _written_train_py(tmp_path)
    choice = head_spec(kind).loss_choice(key)
    head = {"type": kind, "loss_function": choice.function, "loss_meets": choice.meets}
    if choice == head_spec(kind).default_loss:
        head = {"type": kind}  # NOTE: a default loss is left out of config.json
    out, target = _batch(kind, 4)
    ours = float(script.batch_loss(head, out, target))
    assert ours == pytest.approx(float(head_loss(kind, out, target, key)), rel=1e-6)


def test_train_py_refuses_a_loss_it_does_not_know(tmp_path):
    (tmp_path / "train.py").write_text(train_script(), encoding="utf-8")
    script = _written_train_py(tmp_path)
    with pytest.raises(script.BadInput, match="head.loss_function"):
        script.loss_choice({"type": "RegressionOutput", "loss_function": "no_such_loss", "loss_meets": "shaped"})
    with pytest.raises(script.BadInput, match="head.loss_meets"):
        script.loss_choice({"type": "RegressionOutput", "loss_function": "l1_loss", "loss_meets": "sideways"})


def test_the_package_trains_with_a_chosen_loss_and_reports_the_engines_figure(tmp_path, capsys):
    project = regression_mlp()
    (node,) = [n for n in project.graph.nodes.values() if n.type == "RegressionOutput"]
    project.graph.set_params(node.id, {"loss": "mae"})
    export_package(project, tmp_path / "p")
    config = json.loads((tmp_path / "p" / "config.json").read_text(encoding="utf-8"))
    assert config["head"]["loss"] == "mean absolute error" and config["head"]["loss_function"] == "l1_loss"
    assert run_here(tmp_path / "p", "--epochs", "2") == 0
    capsys.readouterr()
    run = read_run(tmp_path / "p" / "run")
    checkpoint = torch.load(tmp_path / "p" / "run" / "last.pt", weights_only=True)
    compiled = compile_graph(project.graph, project.name)
    model = compiled.module
    model.load_state_dict(checkpoint["model"])
    data = load_dataset(project.data, compiled.code.input_shapes[0])
    test = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)[2]
    if checkpoint["normalizer"] is not None:
        test = Normalizer.from_dict(checkpoint["normalizer"]).apply(test)
    with torch.no_grad():
        out = model.eval()(test.x)
    expected = np.abs(out.double().numpy() - test.targets["value"].double().numpy().reshape(out.shape)).mean()
    assert run.summary["test_loss"] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("kind, key", CHOICES)
def test_the_hardest_samples_are_those_of_the_chosen_loss(kind, key):
    from engine.data import Dataset
    from engine.probes.views import hardest

    out, target = _batch(kind, 5)
    ds = Dataset(x=torch.zeros(out.shape[0], 1), targets={head_spec(kind).target: target}, classes=None, name="t")
    idx, losses = hardest(None, ds, 5, head_type=kind, scores=out, loss=key, batch_size=7)
    expected = NUMPY[(kind, key)](out.double().numpy(), target.numpy())
    np.testing.assert_allclose(losses, np.sort(expected)[::-1][: len(idx)], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expected[idx], losses, rtol=1e-5, atol=1e-6)

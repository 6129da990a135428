"""The course's perceptron and universal approximator, checked against independent computations.

The Perceptron output's criterion and its gradient against a hand computation in numpy; one SGD step
on it against Rosenblatt's rule; the perceptron template against a linear program that says whether a
straight line separates its data (it converges on the blobs, never on XOR); the 1-D regression set's
functions against numpy's own formulas; the universal-approximator template against a bound measured
on it; and the heads' consumers (the data check, the decision regions, the training package).
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from engine.analysis import analyze
from engine.config import REGRESSION_FUNCTIONS, DataConfig
from engine.data import load_dataset, split_dataset
from engine.data.base import DataError
from engine.data.toy import make_toy
from engine.datacheck import check_against_data, require_data_fit
from engine.errors import ProjectError
from engine.graph import Graph
from engine.package import export_package, train_script
from engine.probes import views
from engine.project import Project
from engine.tasks import head_spec, head_specs
from engine.templates import load_template
from engine.training.events import Finished, InsightDone
from engine.training.objectives import MetricSum, head_loss, loss_function, sample_losses
from engine.training.trainer import Trainer
from tests.engine.helpers import chain, vector_input

PERCEPTRON = "PerceptronOutput"

#: numpy's own spelling of each function of the regression set
NUMPY_FUNCTIONS = {
    "sin": np.sin,
    "step": lambda x: np.heaviside(x, 1.0),
    "abs": np.fabs,
    "square": np.square,
    "sawtooth": lambda x: np.mod(x + 1.0, 2.0) - 1.0,
}

#: the universal-approximator template's validation MSE after its 100 epochs, measured with training seeds
#: 0-3: 0.0035-0.0039 (its noise alone, deviation 0.05, leaves 0.0025; predicting the mean of |x| leaves 0.75)
APPROXIMATOR_MSE_BOUND = 0.006


# ---------------------------------------------------------------------- the criterion
def _hand_criterion(z: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean of max(0, −t·z) over every score and its gradient, with t = ±1 and a score above 0 predicting 1."""
    t = np.where(target > 0.5, 1.0, -1.0)
    wrong = (z > 0) != (t > 0)
    loss = np.where(wrong, -t * z, 0.0)
    assert np.array_equal(loss, np.maximum(0.0, -t * z))  # the same value as relu(−t·z) everywhere
    return float(loss.mean()), np.where(wrong, -t, 0.0) / z.size


@pytest.mark.parametrize("seed", range(6))
def test_the_criterion_and_its_gradient_equal_a_hand_computation(seed):
    rng = np.random.default_rng(seed)
    shape = [(1, 1), (7, 1), (33, 1), (20, 3), (5, 2), (64, 1)][seed]
    z = rng.normal(0.0, 10.0 ** rng.uniform(-2, 2), shape)
    z[rng.random(shape) < 0.2] = 0.0  # scores exactly on the boundary
    target = rng.integers(0, 2, shape).astype(np.float64)
    want_loss, want_grad = _hand_criterion(z, target)

    out = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    loss = head_loss(PERCEPTRON, out, torch.tensor(target, dtype=torch.float32))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(want_loss, rel=1e-6, abs=1e-9)
    assert np.allclose(out.grad.numpy(), want_grad, rtol=1e-6, atol=1e-12)
    per_sample = sample_losses(PERCEPTRON, out.detach(), torch.tensor(target, dtype=torch.float32))
    assert np.allclose(per_sample.numpy(), np.maximum(0.0, -(2 * target - 1) * z).mean(1), rtol=1e-6, atol=1e-9)

    sums = MetricSum(PERCEPTRON)
    for part in np.array_split(np.arange(shape[0]), 3):
        sums.update(out.detach()[part], torch.tensor(target[part], dtype=torch.float32))
    assert sums.result() == {"accuracy": pytest.approx(np.mean((z > 0) == (target > 0.5)), abs=1e-12)}


def test_only_a_mistake_moves_the_weights_by_the_perceptron_rule():
    """One SGD step at rate η on one sample: no change when it is classified right, else w += η·t·x, b += η·t."""
    rng = np.random.default_rng(3)
    for _ in range(40):
        layer = torch.nn.Linear(3, 1)
        x = torch.tensor(rng.normal(size=(1, 3)), dtype=torch.float32)
        label = float(rng.integers(0, 2))
        eta = float(rng.uniform(0.1, 2.0))
        w, b = layer.weight.detach().clone(), layer.bias.detach().clone()
        right = (layer(x).item() > 0) == (label == 1.0)
        torch.optim.SGD(layer.parameters(), lr=eta).zero_grad()
        head_loss(PERCEPTRON, layer(x), torch.tensor([[label]])).backward()
        if right:
            assert not layer.weight.grad.any() and not layer.bias.grad.any()
        t = 1.0 if label == 1.0 else -1.0
        torch.optim.SGD(layer.parameters(), lr=eta).step()
        moved = 0.0 if right else eta * t
        assert torch.allclose(layer.weight.detach(), w + moved * x, atol=1e-6)
        assert torch.allclose(layer.bias.detach(), b + moved, atol=1e-6)


def test_zero_weights_start_learning():
    """The classic start: every score 0 predicts class 0, so each class-1 sample is a mistake that moves them."""
    layer = torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    head_loss(PERCEPTRON, layer(x), torch.tensor([[1.0], [0.0]])).backward()
    assert torch.allclose(layer.weight.grad, torch.tensor([[-0.5, -1.0]]))  # −t·x of the class-1 sample, over 2


def test_every_declared_loss_resolves_and_same_target_heads_agree_on_width():
    for type_id, spec in head_specs().items():
        assert callable(loss_function(spec.loss)), type_id
    with pytest.raises(KeyError, match="no loss called 'hinge'"):
        loss_function("hinge")
    for key in {s.target for s in head_specs().values()}:
        same = [s for s in head_specs().values() if s.target == key]
        assert len({(s.width, s.flat, s.output == "class_scores") for s in same}) == 1, key


# ---------------------------------------------------------------------- the template
def _separable(x: np.ndarray, labels: np.ndarray) -> bool:
    """Whether a straight line separates the classes: a linear program for t·(w·x + b) ≥ 1, found feasible."""
    t = np.where(labels > 0.5, 1.0, -1.0)
    rows = -(t[:, None] * np.c_[x, np.ones(len(x))])
    result = linprog(np.zeros(x.shape[1] + 1), A_ub=rows, b_ub=-np.ones(len(x)), bounds=[(None, None)] * (x.shape[1] + 1))
    return result.status == 0


def _train(project: Project, probes: bool = False) -> tuple[Trainer, list]:
    trainer = Trainer(project, probes=probes)
    return trainer, list(trainer.events())


def _splits_predicted(trainer: Trainer, project: Project):
    """Each split's labels and the trained neuron's classes, by numpy from its weights and the normalization."""
    data = load_dataset(project.data, (2,))
    parts = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)
    (w,) = [p.detach().numpy().astype(np.float64) for n, p in trainer.model.named_parameters() if n.endswith("weight")]
    (b,) = [p.detach().numpy().astype(np.float64) for n, p in trainer.model.named_parameters() if n.endswith("bias")]
    mean, std = trainer.normalizer.mean.numpy().reshape(-1), trainer.normalizer.std.numpy().reshape(-1)
    for part in parts:
        x = (part.x.numpy().astype(np.float64) - mean) / std
        yield part.targets["binary"].numpy().reshape(-1), (x @ w.T + b).reshape(-1) > 0


def test_the_perceptron_template_is_the_rule_on_separable_blobs():
    project = load_template("perceptron")
    heads = [n for n in project.graph.nodes.values() if n.spec.role == "head"]
    assert [n.type for n in heads] == [PERCEPTRON]
    cfg = project.training
    assert (cfg.optimizer, cfg.batch_size, cfg.momentum, cfg.weight_decay, cfg.lr) == ("sgd", 1, 0.0, 0.0, 1.0)
    assert project.data.dataset == "gaussians" and project.data.task == "binary"
    data = load_dataset(project.data, (2,))
    assert _separable(data.x.numpy().astype(np.float64), data.targets["binary"].numpy().reshape(-1))


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_the_perceptron_template_separates_its_blobs_within_its_epochs():
    project = load_template("perceptron")
    project.training.device = "cpu"
    trainer, events = _train(project, probes=True)
    (end,) = [e for e in events if isinstance(e, Finished)]
    assert end.epochs_run == project.training.epochs and end.test == {"accuracy": 1.0}
    assert end.history[-1]["train_loss"] == 0.0 and end.history[-1]["val_accuracy"] == 1.0
    for labels, predicted in _splits_predicted(trainer, project):
        assert np.array_equal(predicted, labels > 0.5)  # every training, validation and test sample
    grids = [e for e in events if isinstance(e, InsightDone) and "decision_grid" in e.views]
    assert grids, [e.views.get("problems") for e in events if isinstance(e, InsightDone)]
    grid = grids[-1].views["decision_grid"]
    steps = grid["probs"].shape[0]
    gx, gy = np.meshgrid(np.linspace(*grid["x_range"], steps), np.linspace(*grid["y_range"], steps))
    w = trainer.model.state_dict()
    (weight,) = [v.double().numpy() for k, v in w.items() if k.endswith("weight")]
    (bias,) = [v.double().numpy() for k, v in w.items() if k.endswith("bias")]
    z = weight[0, 0] * gx + weight[0, 1] * gy + bias[0]
    clear = np.abs(z) > 1e-4  # NOTE: float32 and float64 may differ on a point that lies on the line itself
    assert np.array_equal(grid["probs"][..., 1][clear], (z > 0)[clear].astype(np.float32))  # the sign, no sigmoid
    assert np.array_equal(grid["probs"].sum(-1), np.ones(z.shape, np.float32))


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_on_xor_the_perceptron_never_stops_making_mistakes():
    project = load_template("perceptron")
    project.data.dataset = "xor"
    project.training.device = "cpu"
    project.probes.enabled = False
    data = load_dataset(project.data, (2,))
    assert not _separable(data.x.numpy().astype(np.float64), data.targets["binary"].numpy().reshape(-1))
    trainer, events = _train(project)
    (end,) = [e for e in events if isinstance(e, Finished)]
    assert all(row["train_loss"] > 0 for row in end.history)  # a mistake in every epoch
    train_labels, train_predicted = next(_splits_predicted(trainer, project))
    assert np.mean(train_predicted == (train_labels > 0.5)) < 1.0
    assert end.test["accuracy"] < 1.0


# ---------------------------------------------------------------------- the 1-D regression set
@pytest.mark.parametrize("function", REGRESSION_FUNCTIONS)
def test_every_function_of_the_1d_set_is_numpys(function):
    cfg = DataConfig.from_dict({"dataset": "regression1d", "task": "regression", "samples": 500, "noise": 0.0,
                                "function": function})
    data = load_dataset(cfg, (1,))
    x = data.x.numpy().astype(np.float64).reshape(-1)
    y = data.targets["value"].numpy().reshape(-1)
    assert x.min() >= -3.0 and x.max() <= 3.0 and x.std() > 1.0
    assert np.allclose(y, NUMPY_FUNCTIONS[function](x).astype(np.float32), atol=1e-6)
    noisy = make_toy("regression1d", 20_000, 0.2, 1, (1,), function=function)
    residual = noisy.targets["value"].numpy().reshape(-1) - NUMPY_FUNCTIONS[function](noisy.x.numpy().reshape(-1))
    assert abs(residual.mean()) < 0.01 and residual.std() == pytest.approx(0.2, rel=0.03)


def test_the_1d_set_is_sin_unless_set():
    same = {"dataset": "regression1d", "task": "regression", "samples": 50}
    plain = load_dataset(DataConfig.from_dict(same), (1,))
    sine = load_dataset(DataConfig.from_dict({**same, "function": "sin"}), (1,))
    assert torch.equal(plain.x, sine.x) and torch.equal(plain.targets["value"], sine.targets["value"])


def test_a_function_the_set_does_not_know_is_refused_naming_the_setting():
    with pytest.raises(ProjectError) as info:
        DataConfig.from_dict({"dataset": "regression1d", "function": "cos"}, "p.json: data")
    assert str(info.value) == (
        'p.json: data.function (the function of x the regression1d set samples) must be one of "sin", "step", '
        '"abs", "square" or "sawtooth", not "cos"')
    with pytest.raises(ProjectError, match=r"data.function .* not 3"):
        DataConfig.from_dict({"function": 3})
    with pytest.raises(DataError, match="regression1d: function must be one of sin, step, abs, square, sawtooth"):
        make_toy("regression1d", 10, 0.0, 0, (1,), function="tan")


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_the_universal_approximator_fits_below_the_measured_bound():
    project = load_template("universal_approximator")
    nodes = [n.type for n in project.graph.nodes.values()]
    assert nodes == ["Input", "Dense", "Sigmoid", "Dense", "RegressionOutput"]
    assert project.data.dataset == "regression1d" and project.data.extra["function"] == "abs"
    project.training.device = "cpu"
    project.probes.enabled = False
    _, events = _train(project)
    (end,) = [e for e in events if isinstance(e, Finished)]
    assert end.history[0]["val_loss"] > 0.1  # it starts far off: the curve is learned, not given
    assert end.history[-1]["val_loss"] < APPROXIMATOR_MSE_BOUND and end.test_loss < APPROXIMATOR_MSE_BOUND
    assert end.test["r2"] > 0.99


# ---------------------------------------------------------------------- the other consumers of heads
def _perceptron_project(dataset: str, units: int = 1, **data) -> Project:
    g = Graph()
    chain(g, vector_input(g, 2), ("Dense", {"units": units}), PERCEPTRON)
    project = Project(name="p", graph=g)
    project.data = DataConfig.from_dict({"dataset": dataset, "task": "binary", "samples": 60, **data})
    return project


def test_the_data_check_names_the_perceptron_output():
    require_data_fit(_perceptron_project("gaussians"))
    wide = _perceptron_project("gaussians", units=2)
    (problem,) = check_against_data(wide, analyze(wide.graph))
    assert problem.rule == "binary_width" and "gives 2 scores but" in problem.message
    assert problem.fix is not None and "to 1 unit" in problem.fix.label
    spiral = _perceptron_project("spiral", classes=3)
    messages = [p.message for p in check_against_data(spiral, analyze(spiral.graph))]
    assert any("is a Perceptron output, which needs a data set of exactly 2 classes" in m for m in messages), messages


def test_decision_regions_of_a_perceptron_are_its_sign():
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, -1.0]]))
        layer.bias.fill_(0.37)
    probs = views.decision_grid(layer, (-2.0, 2.0), (-3.0, 3.0), steps=41, kind="sign")
    gx, gy = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-3, 3, 41))
    assert np.array_equal(probs[..., 1], (2 * gx - gy + 0.37 > 0).astype(np.float32))
    assert set(np.unique(probs)) <= {0.0, 1.0}
    assert head_spec(PERCEPTRON).views == {"confusion", "regions"}


def _written_train_py(tmp_path):
    path = tmp_path / "train_written.py"
    path.write_text(train_script(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("package_train_written", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_package_trains_and_scores_a_perceptron_as_the_engine_does(tmp_path):
    project = load_template("perceptron")
    written = export_package(project, tmp_path / "p")
    assert (tmp_path / "p" / "train.py") in written
    script = _written_train_py(tmp_path)
    gen = torch.Generator().manual_seed(1)
    out = torch.randn(50, 1, generator=gen) * 3
    out[::7] = 0.0
    target = torch.randint(0, 2, (50, 1), generator=gen).float()
    scores, reference = script.Scores(PERCEPTRON, torch.device("cpu")), MetricSum(PERCEPTRON)
    for part in range(0, 50, 16):
        o, t = out[part : part + 16], target[part : part + 16]
        scores.add(script.head_loss(PERCEPTRON, o, t), o, t)
        reference.update(o, t)
    loss, metrics = scores.result()
    assert loss == pytest.approx(float(head_loss(PERCEPTRON, out, target)), rel=1e-6)
    assert metrics == pytest.approx(reference.result(), abs=1e-12)
    sys.modules.pop("package_train_written", None)


_SIGNS_EXPORTED = """
import importlib.util, sys
import numpy as np, torch
spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = module.Net()
model.load_state_dict(torch.load(sys.argv[2], weights_only=True))
data = np.load(sys.argv[3])
with torch.no_grad():
    z = model.eval()(torch.from_numpy(data["x"])).numpy().reshape(-1)
print(float(np.mean((z > 0) == (data["y"] > 0.5))))
"""


@pytest.mark.slow
def test_the_exported_perceptron_classifies_raw_points_as_the_run_did(tmp_path):
    """A trained perceptron exported with its normalization, run in a fresh Python: its sign is the class."""
    import subprocess

    from engine.export import export_code, trained_weights

    project = load_template("perceptron")
    project.training.device = "cpu"
    project.probes.enabled = False
    list(Trainer(project, out_dir=tmp_path / "run").events())
    state, spec = trained_weights(tmp_path / "run")
    export_code(project.graph, tmp_path / "model.py", state_dict=state, input_spec=spec)
    data = load_dataset(project.data, (2,))
    np.savez(tmp_path / "raw.npz", x=data.x.numpy(), y=data.targets["binary"].numpy().reshape(-1))
    done = subprocess.run([sys.executable, "-c", _SIGNS_EXPORTED, str(tmp_path / "model.py"), str(tmp_path / "model.pt"),
                           str(tmp_path / "raw.npz")], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 1.0

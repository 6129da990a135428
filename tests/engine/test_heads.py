"""Every output block's declaration against PyTorch and against an independent computation of its numbers.

One parametrized test walks the head declarations (``LayerSpec.head``, read through ``engine.tasks``):
for each, a small network ending in it and a data set of its kind: the declared target must exist in
the data, and on a batch the declared loss must equal PyTorch's loss module of the same name, and
every declared metric, summed over two parts of the batch as validation sums them, must equal
scikit-learn's (or numpy's) value and keep to its declared bounds. A perfect prediction must
reach each metric's bound on its declared better side; the trainer keeps the epoch of the lowest
validation loss and a sweep chooses the point whose main metric is best in its declared direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, jaccard_score, mean_absolute_error, r2_score
from torch import nn

from engine.compile import compile_graph
from engine.config import DataConfig
from engine.data import load_dataset
from engine.datacheck import require_data_fit
from engine.graph import Graph
from engine.layers import registry
from engine.project import Project
from engine.tasks import LOSS, head_spec, head_specs, main_score
from engine.training.events import Finished
from engine.training.objectives import MetricSum, head_loss, sample_losses
from engine.training.sweep import SweepDone, sweep_events
from engine.training.sweep_plan import parse_setting
from engine.training.trainer import Trainer
from tests.engine.helpers import chain, image_input, vector_input


def _np_box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (x, y, w, h) boxes, one per row; a box with a negative side covers nothing."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    a_w, a_h, b_w, b_h = (np.maximum(v, 0.0) for v in (a[:, 2], a[:, 3], b[:, 2], b[:, 3]))
    left, right = np.maximum(a[:, 0], b[:, 0]), np.minimum(a[:, 0] + a_w, b[:, 0] + b_w)
    top, bottom = np.maximum(a[:, 1], b[:, 1]), np.minimum(a[:, 1] + a_h, b[:, 1] + b_h)
    inter = np.clip(right - left, 0.0, None) * np.clip(bottom - top, 0.0, None)
    return inter / np.maximum(a_w * a_h + b_w * b_h - inter, 1e-9)


def _pixels(out: np.ndarray, t: np.ndarray) -> dict[str, float]:
    pred, true = out.argmax(1).ravel(), t.ravel()
    present = np.union1d(true, pred)  # NOTE: the classes in the truth or the prediction, as the IoU declares
    return {"pixel_accuracy": accuracy_score(true, pred),
            "iou": jaccard_score(true, pred, labels=present, average="macro", zero_division=0)}


@dataclass(frozen=True)
class Case:
    """A data set of the head's kind, a small network ending in the head, and its metrics computed independently."""

    data: dict
    net: Callable[[Graph], None]
    reference: Callable[[np.ndarray, np.ndarray], dict[str, float]]
    #: the loss computed independently, for a head whose loss PyTorch has no module for (None: PyTorch's module)
    loss: Callable[[np.ndarray, np.ndarray], float] | None = None


CASES = {
    "ClassificationOutput": Case(
        {"dataset": "spiral", "task": "classification", "extra": {"classes": 3}},
        lambda g: chain(g, vector_input(g, 2), ("Dense", {"units": 16}), "ReLU", ("Dense", {"units": 3}),
                        "ClassificationOutput"),
        lambda o, t: {"accuracy": accuracy_score(t, o.argmax(1))},
    ),
    "BinaryOutput": Case(
        {"dataset": "circles", "task": "binary"},
        lambda g: chain(g, vector_input(g, 2), ("Dense", {"units": 8}), "Tanh", ("Dense", {"units": 1}), "BinaryOutput"),
        lambda o, t: {"accuracy": accuracy_score(t.ravel() > 0.5, o.ravel() > 0)},
    ),
    "PerceptronOutput": Case(
        {"dataset": "gaussians", "task": "binary"},
        lambda g: chain(g, vector_input(g, 2), ("Dense", {"units": 1}), "PerceptronOutput"),
        lambda o, t: {"accuracy": accuracy_score(t.ravel() > 0.5, o.ravel() > 0)},
        lambda o, t: float(np.maximum(0.0, -(2.0 * t.reshape(o.shape) - 1.0) * o).mean()),
    ),
    "RegressionOutput": Case(
        {"dataset": "regression1d", "task": "regression"},
        lambda g: chain(g, vector_input(g, 1), ("Dense", {"units": 16}), "Tanh", ("Dense", {"units": 1}),
                        "RegressionOutput"),
        lambda o, t: {"mae": mean_absolute_error(t.ravel(), o.ravel()), "r2": r2_score(t.ravel(), o.ravel())},
    ),
    "SegmentationOutput": Case(
        {"dataset": "shapes", "task": "segmentation"},
        lambda g: chain(g, image_input(g, 1, 16), ("Conv2d", {"filters": 6, "kernel_size": 3, "padding": 1}), "ReLU",
                        ("Conv2d", {"filters": 4, "kernel_size": 1}), "SegmentationOutput"),
        _pixels,
    ),
    "BoxOutput": Case(
        {"dataset": "shapes", "task": "localization"},
        lambda g: chain(g, image_input(g, 1, 16), "Flatten", ("Dense", {"units": 4}), "BoxOutput"),
        lambda o, t: {"box_iou": float(_np_box_iou(o, t).mean()), "box_mae": mean_absolute_error(t, o)},
    ),
}
HEADS = sorted(CASES)


def project(type_id: str, epochs: int = 3) -> Project:
    p = Project(name=type_id)
    CASES[type_id].net(p.graph)
    p.data = DataConfig(samples=120, **CASES[type_id].data)
    p.training.epochs = epochs
    p.training.device = "cpu"
    return p


def batch(type_id: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A network's outputs on 48 samples of its data (drawn by ``seed``) and their declared targets."""
    p = project(type_id)
    torch.manual_seed(seed)
    compiled = compile_graph(p.graph)
    ds = load_dataset(p.data, compiled.code.input_shapes[0])
    key = head_spec(type_id).target
    assert key in ds.targets, f"{ds.name} has no {key} for {type_id}"
    idx = torch.as_tensor(np.random.default_rng(seed).choice(len(ds), 48, replace=False))
    model = compiled.module.eval()
    with torch.no_grad():
        if key == "box":  # NOTE: boxes near the data's own, so that their IoU is not 0 for every sample
            last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
            last.weight.mul_(0.01)
            last.bias.copy_(ds.targets[key].mean(0))
        return model(ds.x[idx]), ds.targets[key][idx]


def summed(type_id: str, out: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The head's metrics summed over two unequal parts of the batch, as validation sums them."""
    sums = MetricSum(type_id)
    for part in (slice(0, 17), slice(17, None)):
        sums.update(out[part], target[part])
    return sums.result()


def test_every_head_is_covered():
    assert set(CASES) == set(head_specs()), "add the new output block to CASES (a data set, a network, its metrics)"
    assert all(registry.get(t).role == "head" for t in head_specs())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("type_id", HEADS)
def test_declared_loss_and_metrics_equal_torch_and_an_independent_computation(type_id, seed):
    spec = head_spec(type_id)
    require_data_fit(project(type_id))  # NOTE: the declared width fits the data it is checked against
    out, target = batch(type_id, seed)
    if CASES[type_id].loss is not None:
        expected = CASES[type_id].loss(out.numpy().astype(np.float64), target.numpy().astype(np.float64))
    else:
        module = getattr(nn, registry.get(type_id).torch_names[0])()
        shaped = target if isinstance(module, nn.CrossEntropyLoss) else target.view_as(out).float()
        expected = float(module(out, shaped))
    assert float(head_loss(type_id, out, target)) == pytest.approx(expected, rel=1e-6)
    assert float(sample_losses(type_id, out, target).mean()) == pytest.approx(expected, rel=1e-5)
    assert LOSS.holds(expected)

    got = summed(type_id, out, target)
    assert list(got) == [m.key for m in spec.metrics]
    reference = CASES[type_id].reference(out.numpy(), target.numpy())
    for m in spec.metrics:
        assert got[m.key] == pytest.approx(reference[m.key], rel=1e-5, abs=1e-6), m.key
        assert m.holds(got[m.key]), f"{m.key} = {got[m.key]} leaves its bounds {m.bounds}"
    assert spec.main_metric.holds(got[spec.main])


def _perfect(type_id: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scores that predict every target exactly: a large score for the true class, a large logit of the
    right sign, the true values."""
    output = head_spec(type_id).output
    if output == "class_scores":
        return 20.0 * F.one_hot(target, out.shape[1]).movedim(-1, 1).float()
    if output in ("logits", "signs"):
        return 20.0 * (2 * target.view_as(out) - 1)
    return target.view_as(out).float().clone()


@pytest.mark.parametrize("type_id", HEADS)
def test_a_perfect_prediction_reaches_each_bound_on_the_declared_better_side(type_id):
    spec = head_spec(type_id)
    out, target = batch(type_id, 0)
    perfect = summed(type_id, _perfect(type_id, out, target), target)
    network = summed(type_id, out, target)
    for m in spec.metrics:
        best = m.high if m.higher_is_better else m.low
        assert best is not None and perfect[m.key] == pytest.approx(best, abs=1e-6), m.key
        assert not m.better(network[m.key], perfect[m.key])
    assert LOSS.better(float(head_loss(type_id, _perfect(type_id, out, target), target)),
                       float(head_loss(type_id, out, target)))


def _first_best(scores: list[float | None], higher_is_better: bool) -> int:
    """The index of the best score (the first of equals) by plain numpy, for comparison."""
    values = np.array([np.nan if s is None else s for s in scores], dtype=np.float64)
    return int(np.nanargmax(values) if higher_is_better else np.nanargmin(values))


@pytest.mark.slow
@pytest.mark.parametrize("type_id", HEADS)
def test_the_trainer_and_a_sweep_choose_in_the_declared_direction(type_id):
    p = project(type_id, epochs=6)
    p.training.lr = 0.1  # NOTE: a rate high enough that the validation loss goes up and down
    events = list(Trainer(p).events())
    (end,) = [e for e in events if isinstance(e, Finished)]
    val_loss = [row["val_loss"] for row in end.history]
    assert not LOSS.higher_is_better and end.best_epoch == 1 + _first_best(val_loss, higher_is_better=False)

    score = main_score(p.graph)
    assert score == head_spec(type_id).main_metric
    (done,) = [e for e in sweep_events(project(type_id, epochs=3), [parse_setting("training.lr=0.05,0.0003,0.01")])
               if isinstance(e, SweepDone)]
    assert done.metric == f"val_{score.key}"
    scores = [r.score for r in done.results]
    assert all(score.holds(s) for s in scores if s is not None)
    assert done.best == _first_best(scores, score.higher_is_better)

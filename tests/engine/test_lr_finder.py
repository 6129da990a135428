"""The learning-rate finder: rates grow exponentially, suggestions read off right, nothing of the caller's changes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from engine.compile import compile_graph
from engine.project import project_to_dict
from engine.templates import load_template
from engine.training.events import Finished
from engine.training.lr_finder import find_lr, steepest, valley
from engine.training.trainer import Trainer, TrainingError


def lenet(**training):
    p = load_template("lenet5")
    p.training.device = "cpu"
    for k, v in training.items():
        setattr(p.training, k, v)
    return p


def digest(state) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.slow
def test_the_finder_on_lenet5_suggests_a_rate_that_trains_well():
    """The search starts from the network Train would build (the project's seed), so its suggestion is for that run."""
    p = lenet()
    before = project_to_dict(p)
    search = find_lr(p, steps=80)
    assert project_to_dict(p) == before
    assert len(search.lrs) == len(search.losses) == len(search.smoothed) >= 40
    ratios = search.lrs[1:] / search.lrs[:-1]
    assert np.allclose(ratios, ratios[0]) and search.lrs[0] == pytest.approx(1e-7)  # exponential growth
    for suggestion in (search.valley, search.steepest):
        assert search.lrs[0] < suggestion < search.lrs[-1]
    trained = lenet(lr=search.valley, epochs=2)
    done = list(Trainer(trained).events())[-1]
    assert isinstance(done, Finished) and done.test["accuracy"] > 0.7, (search.valley, done)  # chance is 0.1


def test_the_finder_leaves_the_weights_it_is_given_unchanged():
    p = load_template("mlp")
    p.data.samples, p.training.device = 200, "cpu"
    torch.manual_seed(0)
    given = compile_graph(p.graph, "Net").module.state_dict()
    given_hash = digest(given)
    search = find_lr(p, steps=30, weights=given)
    assert len(search.lrs) > 5 and digest(given) == given_hash


def test_steepest_is_where_the_loss_falls_fastest_per_decade():
    lrs = np.logspace(-6, 0, 61)
    x = np.log10(lrs)
    loss = 2.0 - 1.5 / (1 + np.exp(-(x + 3) * 3))  # falls fastest at 1e-3
    loss[50:] += np.linspace(0, 4, 11)  # and explodes at the end
    got = steepest(lrs, loss)
    slopes = [(loss[i + 1] - loss[i - 1]) / (x[i + 1] - x[i - 1]) for i in range(1, len(x) - 1)]
    expected = lrs[1 + int(np.argmin(slopes))]
    assert got == pytest.approx(expected) and abs(np.log10(got) + 3) < 0.15


def test_the_valley_skips_the_flat_noisy_start_and_stops_before_the_turn():
    rng = np.random.default_rng(0)
    lrs = np.logspace(-7, 1, 81)
    x = np.log10(lrs)
    loss = 2.3 + rng.normal(0, 0.002, 81)  # flat, noisy, for rates too small to matter
    falling = (x > -4) & (x < -1)
    loss[falling] -= np.linspace(0, 1.0, falling.sum())
    loss[x >= -1] = loss[falling][-1] + np.linspace(0, 5, (x >= -1).sum())
    got = valley(lrs, loss)
    assert 1e-4 < got < 1e-1, got  # inside the falling stretch, not in the flat start or the explosion


def test_a_bad_range_is_refused():
    with pytest.raises(TrainingError):
        find_lr(lenet(), start=1.0, end=0.1)
    with pytest.raises(TrainingError):
        find_lr(lenet(), steps=2)


def test_a_stop_ends_the_search_with_what_it_has():
    calls = []

    def stop_after_five() -> bool:
        calls.append(1)
        return len(calls) > 5

    p = load_template("mlp")
    p.data.samples, p.training.device = 200, "cpu"
    search = find_lr(p, steps=50, should_stop=stop_after_five)
    assert search.stopped == "stopped" and len(search.lrs) == 5
    assert torch.isfinite(torch.as_tensor(search.losses)).all()

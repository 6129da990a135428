"""What a sweep tries: settings parsed, grids and random points made, values applied and validated, the best chosen."""

from __future__ import annotations

import itertools

import pytest

from engine.project import project_to_dict
from engine.templates import load_template
from engine.training.sweep_plan import (
    Setting,
    SweepError,
    apply_point,
    choose,
    parse_setting,
    point_label,
    sweep_points,
)


def test_a_setting_reads_numbers_booleans_and_words():
    assert parse_setting("training.weight_decay=0,1e-4,1e-3,1e-2") == Setting("training.weight_decay", (0, 1e-4, 1e-3, 1e-2))
    assert parse_setting("training.optimizer=adam, sgd").values == ("adam", "sgd")
    assert parse_setting("training.nesterov=true,false").values == (True, False)
    assert parse_setting("blocks.fc1.units=8,16").short == "fc1.units"


@pytest.mark.parametrize("text", ["training.lr", "=1,2", "lr=0.1", "model.lr=1", "training.lr=", "training.lr=1,,2",
                                  "training.lr=1,1", "blocks.fc1=3", "training.lr=NaN", "training.lr=[1]"])
def test_a_bad_setting_is_a_message_naming_it(text):
    with pytest.raises(SweepError) as info:
        parse_setting(text)
    assert "\n" not in str(info.value)


def test_the_grid_is_every_combination_and_random_points_are_distinct_ones():
    a, b = parse_setting("training.lr=0.1,0.01,0.001"), parse_setting("training.weight_decay=0,0.01")
    grid = sweep_points([a, b])
    assert grid == [{"training.lr": x, "training.weight_decay": y} for x, y in itertools.product(a.values, b.values)]
    for n in range(1, 8):
        some = sweep_points([a, b], random=n, seed=3)
        assert len(some) == min(n, 6) and all(p in grid for p in some)
        assert len({tuple(p.values()) for p in some}) == len(some)
    assert sweep_points([a, b], random=4, seed=3) == sweep_points([a, b], random=4, seed=3)
    with pytest.raises(SweepError):
        sweep_points([a, a])
    with pytest.raises(SweepError):
        sweep_points([])


def test_a_point_is_applied_and_validated_like_a_project_file():
    snapshot = project_to_dict(load_template("mlp"))
    out = apply_point(snapshot, {"training.weight_decay": 0.01, "blocks.fc1.units": 32})
    assert out["training"]["weight_decay"] == 0.01
    assert next(n for n in out["graph"]["nodes"] if n["name"] == "fc1")["params"]["units"] == 32
    assert snapshot["training"]["weight_decay"] == 0.0  # the given snapshot is not changed
    for bad, words in (({"training.weight_decay": -1}, "weight_decay"), ({"training.lr": "fast"}, "lr"),
                       ({"training.speed": 1}, "no setting 'speed'"), ({"blocks.nope.units": 3}, "no block"),
                       ({"blocks.fc1.width": 3}, "no parameter"), ({"blocks.fc1.units": 0}, "units")):
        with pytest.raises(SweepError) as info:
            apply_point(snapshot, bad)
        assert words in str(info.value)


def test_the_best_point_is_the_highest_score_or_the_lowest_loss():
    assert choose([0.5, 0.9, None, 0.9], higher_is_better=True) == 1
    assert choose([0.5, 0.2, float("nan"), 0.3], higher_is_better=False) == 1
    assert choose([None, None], higher_is_better=True) is None
    assert point_label({"training.lr": 0.001, "blocks.fc1.units": 8}) == "lr=0.001, fc1.units=8"

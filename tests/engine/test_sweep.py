"""Sweeps and cross-validation from the command line: every point scored right, the best chosen, refitted, kept."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from engine.cli import main as cli_main
from engine.project import save_project
from engine.templates import load_template
from engine.training.runs import list_runs, read_run
from engine.training.sweep import PointDone, SweepDone, sweep_events
from engine.training.sweep_plan import parse_setting
from engine.training.trainer import Control


def spiral_mlp(epochs: int = 4):
    p = load_template("mlp")
    p.data.samples = 300
    p.training.epochs = epochs
    p.training.device = "cpu"
    return p


@pytest.mark.slow
def test_a_weight_decay_sweep_with_folds_chooses_by_the_fold_mean_and_refits(tmp_path, capsys):
    save_project(spiral_mlp(), tmp_path / "mlp.json")
    code = cli_main(["sweep", str(tmp_path / "mlp.json"), "--set", "training.weight_decay=0,1e-4,1e-3,1e-2",
                     "--folds", "5", "--refit"])
    out = capsys.readouterr().out
    assert code == 0, out
    (record,), _ = list_runs(tmp_path / "mlp.runs")
    assert record.kind == "sweep" and record.status == "finished"
    with open(record.path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["training.weight_decay"]) for r in rows] == [0, 1e-4, 1e-3, 1e-2]
    means = []
    for row in rows:  # each point's score is the mean over its folds, as their own run folders say
        cv = read_run(record.path / row["run"])
        folds = [f["val"]["val_accuracy"] for f in cv.summary["folds"]]
        assert len(folds) == 5 and float(row["val_accuracy"]) == pytest.approx(np.mean(folds))
        assert float(row["val_accuracy spread"]) == pytest.approx(np.std(folds))
        means.append(np.mean(folds))
    best = int(np.argmax(means))  # the first of equals
    assert record.summary["best"] == best + 1
    assert record.summary["best_values"] == {"training.weight_decay": [0, 1e-4, 1e-3, 1e-2][best]}
    refit = read_run(record.path / "refit")
    assert refit.project["data"]["val_fraction"] == 0.0
    assert refit.project["training"]["weight_decay"] == [0, 1e-4, 1e-3, 1e-2][best]
    assert record.summary["refit"]["test"]["accuracy"] == refit.summary["test"]["accuracy"]
    assert f"chosen: weight_decay={[0, 1e-4, 1e-3, 1e-2][best]:g}" in out and "refit on training + validation" in out


@pytest.mark.slow
def test_without_folds_each_point_is_scored_on_the_validation_split(tmp_path):
    p = spiral_mlp()
    done = None
    for ev in sweep_events(p, [parse_setting("training.lr=0.01,0.1"), parse_setting("training.batch_size=32,64")],
                           out_dir=tmp_path / "sw"):
        if isinstance(ev, SweepDone):
            done = ev
    assert len(done.results) == 4 and done.folds is None
    for point in done.results:
        run = read_run(tmp_path / "sw" / point.run)
        assert point.score == pytest.approx(run.history[-1]["val_accuracy"])  # the last epoch's validation score
        assert run.project["training"]["lr"] == point.values["training.lr"]
    assert done.best == int(np.argmax([r.score for r in done.results]))


def test_a_point_that_fails_is_recorded_and_the_sweep_goes_on(tmp_path):
    p = spiral_mlp(epochs=3)
    p.training.optimizer = "sgd"
    p.training.momentum = 0.0
    results = [ev for ev in sweep_events(p, [parse_setting("training.lr=1e6,0.05")], out_dir=tmp_path / "sw")
               if isinstance(ev, PointDone)]
    assert [r.status for r in results] == ["failed", "finished"]
    assert "diverged" in results[0].message or "NaN" in results[0].message or "infinite" in results[0].message
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())["summary"]
    assert summary["best"] == 2


def test_stop_ends_the_sweep_and_keeps_the_finished_points(tmp_path):
    control = Control()
    seen = []
    for ev in sweep_events(spiral_mlp(), [parse_setting("training.lr=0.01,0.02,0.03")], out_dir=tmp_path / "sw",
                           control=control):
        seen.append(ev)
        if isinstance(ev, PointDone):
            control.stop()
    done = seen[-1]
    assert isinstance(done, SweepDone) and done.stopped and len(done.results) == 1
    assert read_run(tmp_path / "sw").status == "stopped"
    with open(tmp_path / "sw" / "results.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 1


@pytest.mark.parametrize("setting", ["training.lr=fast", "training.speed=1", "blocks.nope.units=3", "lr=1"])
def test_a_bad_setting_is_one_line_exit_2_and_leaves_no_folder(tmp_path, capsys, setting):
    save_project(spiral_mlp(), tmp_path / "mlp.json")
    assert cli_main(["sweep", str(tmp_path / "mlp.json"), "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    assert list_runs(tmp_path / "mlp.runs") == ([], []) and not any((tmp_path / "mlp.runs").glob("*"))


@pytest.mark.slow
def test_cross_validating_lenet5_with_k_3_scores_far_above_chance(tmp_path, capsys):
    """The digits' 10 classes with k = 3 (prime to 10); the folds' make-up for every k and class count is in test_splits."""
    p = load_template("lenet5")
    p.data.augment = {}
    p.training.epochs, p.training.device = 2, "cpu"
    save_project(p, tmp_path / "lenet.json")
    assert cli_main(["cross-validate", str(tmp_path / "lenet.json"), "-k", "3"]) == 0
    (record,), _ = list_runs(tmp_path / "lenet.runs")
    folds = [f["val"]["val_accuracy"] for f in record.summary["folds"]]
    assert len(folds) == 3 and min(folds) > 0.7  # chance is 0.1
    assert record.summary["mean"]["val_accuracy"] == pytest.approx(np.mean(folds))
    assert record.summary["std"]["val_accuracy"] == pytest.approx(np.std(folds))
    assert "3-fold validation accuracy" in capsys.readouterr().out

"""A sweep's folder and events as the window reads them: failures, Stop, swept epochs and augmentations,
the folder read back, and a sweep in the training process."""

from __future__ import annotations

import csv
import json

import pytest

from engine.project import project_to_dict
from engine.templates import load_template
from engine.training.events import ENDINGS, Failed, PointDone, PointStarted, Started, SweepDone
from engine.training.runs import RunError, read_run
from engine.training.sweep import read_sweep, sweep_events
from engine.training.sweep_plan import parse_setting
from engine.training.trainer import Control


def spiral_mlp(epochs: int = 2):
    p = load_template("mlp")
    p.data.samples = 300
    p.training.epochs = epochs
    p.training.device = "cpu"
    return p


def run(project, settings, **kw) -> list:
    return list(sweep_events(project, [parse_setting(s) for s in settings], **kw))


def test_a_fold_that_fails_ends_its_point_with_the_folds_message_and_the_sweep_goes_on(tmp_path):
    p = spiral_mlp()
    p.training.optimizer, p.training.momentum = "sgd", 0.0
    events = run(p, ["training.lr=1e6,0.05"], folds=2, out_dir=tmp_path / "sw")
    assert not any(isinstance(ev, Failed) for ev in events), "a point's failure is its PointDone, not the sweep's end"
    assert sum(isinstance(ev, ENDINGS) for ev in events) == 1 and isinstance(events[-1], SweepDone)
    first, second = [ev for ev in events if isinstance(ev, PointDone)]
    assert first.status == "failed" and first.message.startswith("fold 1 of 2:") and "diverged" in first.message
    assert second.status == "finished" and len(second.fold_scores) == 2
    assert events[-1].best == 1


def test_a_point_cut_short_by_stop_is_kept_but_never_chosen(tmp_path):
    control = Control()
    events = []
    for ev in sweep_events(spiral_mlp(), [parse_setting("training.epochs=1,500")], out_dir=tmp_path / "sw",
                           control=control, refit=True):
        events.append(ev)
        if isinstance(ev, Started) and len([e for e in events if isinstance(e, PointStarted)]) == 2:
            control.stop()  # NOTE: in the second point's first epoch
    done = events[-1]
    assert [r.status for r in done.results] == ["finished", "stopped"] and done.stopped
    assert done.best == 0 and done.refit is None
    assert done.results[1].score is None and "before the first epoch" in done.results[1].message
    summary = read_run(tmp_path / "sw").summary
    assert summary["best"] == 1 and [p["status"] for p in summary["points"]] == ["finished", "stopped"]


def test_a_sweep_stopped_before_its_first_event_writes_nothing(tmp_path):
    control = Control()
    control.stop()
    (tmp_path / "sw").mkdir()
    events = run(spiral_mlp(), ["training.lr=0.01,0.1"], out_dir=tmp_path / "sw", control=control)
    assert [type(ev) for ev in events] == [SweepDone] and events[0].stopped
    assert list((tmp_path / "sw").iterdir()) == []


def test_swept_epochs_hold_against_the_epochs_given_and_augmentations_are_applied(tmp_path):
    events = run(spiral_mlp(), ["training.epochs=1,3"], epochs=2, out_dir=tmp_path / "sw")
    assert [read_run(tmp_path / "sw" / r.run).summary["epochs_run"] for r in events[-1].results] == [1, 3]
    events = run(spiral_mlp(), ["data.augment.noise=0,0.2"], out_dir=tmp_path / "aug")
    assert [read_run(tmp_path / "aug" / r.run).project["data"]["augment"] for r in events[-1].results] == [
        {}, {"noise": 0.2}]


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_the_folder_reads_back_as_the_events_said(tmp_path):
    events = run(spiral_mlp(), ["training.lr=0.01,0.1", "training.batch_size=32,64"], random=3, folds=2, refit=True,
                 out_dir=tmp_path / "sw", label="Run 7")
    done = events[-1]
    results = read_sweep(read_run(tmp_path / "sw"))
    assert results.status == "finished" and results.label == "Run 7" and results.planned == 3
    assert [s.key for s in results.settings] == ["training.lr", "training.batch_size"] and results.random == 3
    assert results.folds == 2 and results.metric == "val_accuracy"
    assert [(p.index, p.values, p.score, p.spread, p.status) for p in results.points] == [
        (r.index, r.values, r.score, r.spread, r.status) for r in done.results]
    assert results.chosen.index == done.chosen.index == results.best
    assert results.refit["test"] == done.refit.test == read_run(results.refit_folder()).summary["test"]
    assert read_run(results.refit_folder()).label == f"Run 7: refit ({done.chosen.label})"
    with open(tmp_path / "sw" / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx([p.score for p in results.points])


SHAPES_FLIPPED = {"dataset": "shapes", "samples": 120, "augment": {"flip": True}}


@pytest.mark.parametrize("template, data", [("mlp", {"samples": 300}), ("lenet5", SHAPES_FLIPPED)])
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_each_point_trains_exactly_as_the_same_run_alone(tmp_path, template, data):
    """The points share one load of the data (the same samples and splits as a run loads for itself)."""
    from engine.project import project_from_dict
    from engine.training.events import Finished
    from engine.training.sweep_plan import apply_point
    from engine.training.trainer import Trainer

    p = load_template(template)
    p.training.epochs, p.training.device, p.training.batch_size = 2, "cpu", 32
    for key, value in data.items():
        setattr(p.data, key, value)
    events = run(p, ["training.weight_decay=0,0.01", "training.lr=0.001,0.01"], out_dir=tmp_path / "sw")
    for point in events[-1].results:
        alone = Trainer(project_from_dict(apply_point(project_to_dict(p), point.values)))
        end = next(ev for ev in alone.events() if isinstance(ev, Finished))
        swept = read_run(tmp_path / "sw" / point.run)
        assert [r["val_loss"] for r in swept.history] == [r["val_loss"] for r in end.history], point.label
        assert swept.summary["test"] == end.test and point.score == end.history[-1]["val_accuracy"]


@pytest.mark.parametrize("field, value, words", [("points", 3, "'points' must be a list"),
                                                 ("settings", [{"key": 1}], "each of 'settings'"),
                                                 ("best", "1", "'best' must be a whole number")])
def test_a_damaged_sweep_summary_is_a_run_error_naming_the_file(tmp_path, field, value, words):
    run(spiral_mlp(epochs=1), ["training.lr=0.01"], out_dir=tmp_path / "sw")
    path = tmp_path / "sw" / "summary.json"
    doc = json.loads(path.read_text())
    doc["summary"][field] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(RunError, match=rf"sw/summary.json: {words}"):
        read_sweep(read_run(tmp_path / "sw"))


def test_a_point_whose_run_names_a_folder_outside_the_sweep_is_refused(tmp_path):
    run(spiral_mlp(epochs=1), ["training.lr=0.01"], out_dir=tmp_path / "sw")
    path = tmp_path / "sw" / "summary.json"
    doc = json.loads(path.read_text())
    doc["summary"]["points"][0]["run"] = "../elsewhere"
    path.write_text(json.dumps(doc))
    with pytest.raises(RunError, match="'run' must be the name of a folder in the sweep's folder"):
        read_sweep(read_run(tmp_path / "sw"))


@pytest.mark.slow
def test_a_sweep_in_the_training_process_ends_with_sweep_done(tmp_path):
    from engine.training.remote import TrainingProcess, TrainingRequest

    request = TrainingRequest(project_to_dict(spiral_mlp()), run_dir=tmp_path / "sw", label="Run 1",
                              sweep=(parse_setting("training.weight_decay=0,0.001"),), folds=2, refit=True)
    events = list(TrainingProcess(request).events())
    kinds = [type(ev).__name__ for ev in events if isinstance(ev, (PointStarted, PointDone, SweepDone))]
    assert kinds == ["PointStarted", "PointDone", "PointStarted", "PointDone", "SweepDone"]
    assert events[-1].refit is not None and read_sweep(read_run(tmp_path / "sw")).refit == events[-1].refit.summary()
    refused = TrainingRequest(project_to_dict(spiral_mlp()), sweep=(parse_setting("training.lr=-1"),))
    (end,) = list(TrainingProcess(refused).events())
    assert isinstance(end, Failed) and end.message.startswith("training.lr=-1 cannot be used")

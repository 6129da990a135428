"""The headless commands: output, exit codes, and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.templates import list_templates
from tests.conftest import ROOT


def run_cli(*args):
    """Run ``python main.py ARGS`` as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_templates_lists_one_per_line_name_first(capsys):
    assert main(["templates"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [t.name for t in list_templates()]
    assert [line.split()[0] for line in lines] == names
    assert "lenet5" in names and "unet" in names


def test_new_analyze_export_round_trip(tmp_path, capsys):
    project = tmp_path / "lenet.json"
    assert main(["new", "--template", "lenet5", "-o", str(project)]) == 0
    assert main(["analyze", str(project)]) == 0
    table = capsys.readouterr().out
    assert "Total params: 61,706" in table and "No problems found." in table
    assert "conv1" in table and "6×28×28" in table and "5×5" in table

    assert main(["analyze", str(project), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] and doc["totals"]["params"] == 61_706
    conv1 = next(b for b in doc["blocks"] if b["name"] == "conv1")
    assert conv1["output_shape"] == [6, 28, 28] and conv1["macs"] == 117_600
    assert conv1["receptive_field"]["size"] == 5

    out = tmp_path / "lenet.py"
    assert main(["export", str(project), "-o", str(out)]) == 0
    assert "class LeNet5(nn.Module)" in out.read_text()
    assert not out.with_suffix(".pt").exists()  # no trained weights yet


def test_new_refuses_to_overwrite_without_force(tmp_path, capsys):
    project = tmp_path / "p.json"
    project.write_text("{}")
    assert main(["new", "--template", "mlp", "-o", str(project)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["new", "--template", "mlp", "-o", str(project), "--force"]) == 0


def test_export_writes_weights_when_the_project_has_them(tmp_path):
    import torch

    from engine.compile import compile_graph
    from engine.project import load_project, save_project

    project_path = tmp_path / "mlp.json"
    assert main(["new", "--template", "mlp", "-o", str(project_path)]) == 0
    project = load_project(project_path)
    torch.save(compile_graph(project.graph).module.state_dict(), tmp_path / "trained.pt")
    project.weights = "trained.pt"
    save_project(project, project_path)
    assert main(["export", str(project_path), "-o", str(tmp_path / "out" / "model.py")]) == 2  # no such folder
    (tmp_path / "out").mkdir()
    assert main(["export", str(project_path), "-o", str(tmp_path / "out" / "model.py")]) == 0
    assert (tmp_path / "out" / "model.pt").exists()


def test_analyze_exits_1_and_lists_problems_for_a_broken_network(tmp_path, capsys):
    from engine.project import load_project, save_project

    path = tmp_path / "resnet.json"
    main(["new", "--template", "resnet", "-o", str(path)])
    project = load_project(path)
    conv = next(n for n in project.graph.nodes.values() if n.name == "res2_conv2")
    project.graph.set_params(conv.id, {"filters": 24})
    save_project(project, path)
    capsys.readouterr()
    assert main(["analyze", str(path)]) == 1
    assert "Add needs equal shapes" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, words",
    [
        (["new", "--template", "nope", "-o", "{tmp}/x.json"], "nope"),
        (["analyze", "{tmp}/missing.json"], "missing.json"),
        (["analyze", "{tmp}/bad.json"], "bad.json"),
        (["export", "{tmp}/bad.json", "-o", "{tmp}/m.py"], "bad.json"),
        (["analyze"], "PROJECT.json"),
        (["frobnicate"], "frobnicate"),
    ],
)
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, args, words):
    (tmp_path / "bad.json").write_text('{"format": "net-designer-project", "version": 1, "graph": {"nodes": [')
    result = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and words in err[0], result.stderr
    assert "Traceback" not in result.stderr


def test_explain_writes_overlay_and_raw_map(tmp_path, capsys):
    import numpy as np

    from engine.project import load_project, save_project

    path = tmp_path / "nin.json"
    main(["new", "--template", "nin", "-o", str(path)])
    project = load_project(path)
    project.data.samples = 120
    save_project(project, path)
    assert main(["train", str(path), "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    out = tmp_path / "cam.png"
    args = ["explain", str(path), "--weights", str(tmp_path / "run" / "best.pt"), "--input", "0", "-o", str(out)]
    assert main([*args, "--method", "cam"]) == 0
    heat = np.load(tmp_path / "cam.npy")
    assert heat.shape == (32, 32) and heat.min() >= 0.0 and heat.max() <= 1.0 and out.stat().st_size > 0
    assert main([*args, "--method", "gradcam"]) == 0
    capsys.readouterr()
    assert main([*args, "--class", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of range" in err[0]


# ---------------------------------------------------------------------- numbers and printed paths
def _number_actions():
    """(command, option) of every argument of the parser that is read as a number."""
    import argparse

    from engine import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(name, action) for name, p in sub.choices.items() for action in p._actions if action.type is not None
            and action.type not in (Path, str)]


def test_every_number_argument_takes_ascii_digits_only():
    from engine import cli

    actions = _number_actions()
    assert {("train", "--epochs"), ("explain", "--class")} <= {(name, a.option_strings[0]) for name, a in actions}
    for _, action in actions:
        assert action.type is not int  # NOTE: int("٣") is 3
        assert action.type("12") == 12 and action.type("0") == 0
        for text in ("٣", "３", "²", " 1", "1_0", "+1", "-1", "1.0", "1\x1b[31m", ""):
            with pytest.raises(Exception, match="expected"):
                action.type(text)
    assert cli._class_number("7") == 7


@pytest.mark.parametrize("text", ["٣", "３", "1_0", " 2"])
def test_epochs_refuses_other_digits_in_one_line(tmp_path, text):
    project = tmp_path / "mlp.json"
    assert main(["new", "--template", "mlp", "-o", str(project)]) == 0
    result = run_cli("train", project, "--epochs", text, "--out", tmp_path / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0] and "expected a number of epochs" in err[0], result.stderr
    assert not (tmp_path / "run").exists()  # nothing trained


def test_new_and_export_print_paths_literally(tmp_path, capsys):
    import torch

    from engine.compile import compile_graph
    from engine.project import load_project

    evil = "p\x1b[31mred\x1b]0;title\x07\u202eden"
    project = tmp_path / f"{evil}.json"
    assert main(["new", "--template", "mlp", "-o", str(project)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "p\\x1b[31mred\\x1b]0;title\\x07\\u202eden.json" in out
    weights = tmp_path / f"w{evil}.pt"
    torch.save(compile_graph(load_project(project).graph).module.state_dict(), weights)
    target = tmp_path / f"m{evil}.py"
    assert main(["export", str(project), "-o", str(target), "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    lines = out.splitlines()
    assert lines[0].startswith("wrote ") and lines[0].endswith("m" + "p\\x1b[31mred\\x1b]0;title\\x07\\u202eden.py")
    assert lines[1].endswith(".pt") and lines[2].startswith("weights from ") and "\\u202eden.pt" in lines[2]
    assert target.exists() and target.with_suffix(".pt").exists()


def test_a_run_that_fails_before_it_begins_points_to_no_folder(tmp_path, capsys):
    """The data cannot be found: one line, exit 2, and no "run so far" folder, since none was written."""
    from engine.project import load_project, save_project

    project = load_project(ROOT / "resources" / "templates" / "lenet5.json")
    project.data.dataset, project.data.path = "npz", None
    save_project(project, tmp_path / "p.json")
    assert main(["train", str(tmp_path / "p.json"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: training failed: the npz data set needs a path: set data.path to the .npz file"]
    assert not (tmp_path / "run").exists()


def test_a_run_that_fails_midway_points_to_the_folder_it_wrote(tmp_path, capsys, monkeypatch):
    from engine.project import load_project, save_project
    from engine.training.trainer import Trainer, TrainingError

    project = load_project(ROOT / "resources" / "templates" / "mlp.json")
    project.training.epochs, project.training.device = 3, "cpu"
    save_project(project, tmp_path / "p.json")
    real = Trainer._step

    def failing_step(self, *args, **kwargs):
        if len(self.history) == 2:  # NOTE: two epochs are written first
            raise TrainingError("the loss became NaN")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_step", failing_step)
    assert main(["train", str(tmp_path / "p.json"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: training failed: the loss became NaN (the run so far is in {tmp_path / 'run'})"]
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 3  # the header and two epochs

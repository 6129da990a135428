"""Export: the written file, run in a fresh Python with only torch, equals the in-app model."""

import ast
import subprocess
import sys
import textwrap

import pytest
import torch

from engine.compile import compile_graph
from engine.errors import CompileError
from engine.export import ExportError, export_code, load_weights
from engine.graph import Graph
from tests.engine.helpers import score_exported

EVIL = 'x"); import os; os.system("touch PWNED") #'

RUNNER = textwrap.dedent(
    """
    import importlib.util, sys
    import torch
    torch.set_num_threads(int(sys.argv[6]))  # the parent's: conv sums in the same order
    spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = getattr(mod, sys.argv[2])
    model = cls()
    model.load_state_dict(torch.load(sys.argv[3], weights_only=True))
    model.eval()
    inputs = torch.load(sys.argv[4], weights_only=True)
    with torch.no_grad():
        out = model(*inputs)
    torch.save(list(out) if isinstance(out, tuple) else [out], sys.argv[5])
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("engine", "designer", "PySide6", "numpy_should_not"))
    assert not bad, bad
    """
)


def _chain(g: Graph, *nodes):
    for a, b in zip(nodes, nodes[1:]):
        g.connect(a.id, 0, b.id, 0)


def branching_graph() -> Graph:
    """A DAG with a residual Add, a Concatenate, BatchNorm, and two heads."""
    g = Graph()
    inp = g.add_node("Input", {"channels": 3, "height": 16, "width": 16})
    c1 = g.add_node("Conv2d", {"filters": 8}, name="stem")
    bn = g.add_node("BatchNorm")
    r1 = g.add_node("ReLU")
    c2 = g.add_node("Conv2d", {"filters": 8, "init": "he_normal"})
    add = g.add_node("Add")
    sep = g.add_node("SeparableConv2d", {"filters": 8})
    cat = g.add_node("Concatenate")
    gap = g.add_node("GlobalAvgPool")
    fc = g.add_node("Dense", {"units": 5}, name=EVIL)
    head = g.add_node("ClassificationOutput")
    box = g.add_node("Dense", {"units": 4}, name="box")
    box_head = g.add_node("BoxOutput")
    _chain(g, inp, c1, bn, r1, c2)
    g.connect(c2.id, 0, add.id, 0)
    g.connect(r1.id, 0, add.id, 1)
    g.connect(add.id, 0, sep.id, 0)
    g.connect(sep.id, 0, cat.id, 0)
    g.connect(add.id, 0, cat.id, 1)
    _chain(g, cat, gap, fc, head)
    g.connect(gap.id, 0, box.id, 0)
    g.connect(box.id, 0, box_head.id, 0)
    return g


def _run_exported(tmp_path, graph, name, inputs):
    torch.manual_seed(0)
    compiled = compile_graph(graph, name)
    model = compiled.module
    with torch.no_grad():  # make BatchNorm's running stats and weights non-trivial
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        model.train()
        model(*inputs)
    model.eval()
    with torch.no_grad():
        expected = model(*inputs)
    expected = list(expected) if isinstance(expected, tuple) else [expected]

    written = export_code(graph, tmp_path / "model.py", name=name, state_dict=model.state_dict())
    assert [p.name for p in written] == ["model.py", "model.pt"]
    torch.save(list(inputs), tmp_path / "inputs.pt")
    (tmp_path / "runner.py").write_text(RUNNER)
    result = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "runner.py"), str(tmp_path / "model.py"), compiled.code.class_name,
         str(tmp_path / "model.pt"), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt"),
         str(torch.get_num_threads())],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    return (tmp_path / "model.py").read_text()


@pytest.mark.slow
def test_exported_dag_reproduces_in_app_outputs(tmp_path):
    source = _run_exported(tmp_path, branching_graph(), "Two heads", [torch.randn(4, 3, 16, 16)])
    assert "class TwoHeads(nn.Module)" in source
    assert "self.stem = nn.Conv2d(3, 8, kernel_size=3, padding=1)" in source


@pytest.mark.slow
def test_malicious_names_export_as_harmless_code(tmp_path):
    graph = branching_graph()
    source = _run_exported(tmp_path, graph, EVIL, [torch.randn(2, 3, 16, 16)])
    assert not (tmp_path / "PWNED").exists()
    tree = ast.parse(source)
    imports = sorted(
        alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    )
    assert imports == ["pathlib.Path", "torch", "torch.nn"]
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert "system" not in calls
    # Running the file as a script (its __main__ block) is harmless too.
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "model.py")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["(2,", "5)", "(2,", "4)"]
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.slow
def test_multiple_inputs_become_forward_arguments(tmp_path):
    g = Graph()
    a = g.add_node("Input", {"kind": "vector", "features": 3}, name="left")
    b = g.add_node("Input", {"kind": "vector", "features": 4}, name="right")
    cat = g.add_node("Concatenate")
    fc = g.add_node("Dense", {"units": 2})
    out = g.add_node("RegressionOutput")
    g.connect(a.id, 0, cat.id, 0)
    g.connect(b.id, 0, cat.id, 1)
    _chain(g, cat, fc, out)
    source = _run_exported(tmp_path, g, "Net", [torch.randn(5, 3), torch.randn(5, 4)])
    assert "def forward(self, left, right):" in source


def test_export_refuses_graph_with_errors(tmp_path):
    g = Graph()
    g.add_node("Dense")
    with pytest.raises(CompileError, match="errors"):
        export_code(g, tmp_path / "m.py")
    assert not (tmp_path / "m.py").exists()


def test_export_refuses_weights_that_do_not_fit(tmp_path):
    g = branching_graph()
    with pytest.raises(ExportError, match="do not fit"):
        export_code(g, tmp_path / "m.py", state_dict={"nope": torch.zeros(1)})
    assert not (tmp_path / "m.py").exists()


def test_load_weights_rejects_non_state_dict(tmp_path):
    torch.save([1, 2, 3], tmp_path / "w.pt")
    with pytest.raises(ExportError, match="state_dict"):
        load_weights(tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="not a readable weights file"):
        load_weights(tmp_path / "junk.pt")
    with pytest.raises(ExportError, match="does not exist"):
        load_weights(tmp_path / "missing.pt")


@pytest.mark.slow
def test_a_model_exported_from_a_run_scores_its_test_accuracy_on_raw_data(tmp_path, capsys):
    """Pixels from 100 to 355, normalization on: the exported file takes the raw pixels and scores as the run did."""
    import numpy as np
    from sklearn.datasets import load_digits

    from engine.cli import main as cli_main
    from engine.data import load_dataset, split_dataset
    from engine.project import load_project, save_project
    from engine.templates import load_template
    from engine.training.runs import list_runs

    digits = load_digits()
    big = np.kron(digits.images, np.ones((4, 4)))  # 8×8 -> 32×32, LeNet-5's input
    np.savez(tmp_path / "bright.npz", x=(big * 15.9375 + 100.0).astype(np.float32)[:, None], y=digits.target)
    p = load_template("lenet5")
    p.data.dataset, p.data.path, p.data.augment = "npz", "bright.npz", {}
    p.training.epochs, p.training.early_stopping_patience, p.training.device = 3, 1, "cpu"
    save_project(p, tmp_path / "bright.json")
    assert cli_main(["train", str(tmp_path / "bright.json")]) == 0
    (run,), _ = list_runs(tmp_path / "bright.runs")
    score = run.summary["test"]["accuracy"]
    assert score > 0.5
    assert cli_main(["export", str(tmp_path / "bright.json"), "-o", str(tmp_path / "model.py")]) == 0
    out = capsys.readouterr().out
    assert "normalizes raw inputs itself" in out and str(run.path) in out
    source = (tmp_path / "model.py").read_text()
    assert "from 100 to 355" in source and "self.input_mean" in source

    project = load_project(tmp_path / "bright.json")
    data = load_dataset(project.data, (1, 32, 32), base_dir=tmp_path)
    _, _, test = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)
    assert float(test.x.min()) >= 100.0  # the raw pixels, not normalized
    np.savez(tmp_path / "test.npz", x=test.x.numpy(), y=test.targets["label"].numpy())
    accuracy, classes = score_exported(tmp_path / "model.py", "LeNet5", tmp_path / "model.pt", tmp_path / "test.npz")
    assert abs(accuracy - score) <= 0.01 and classes == 10

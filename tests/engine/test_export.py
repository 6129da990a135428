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


def test_exported_dag_reproduces_in_app_outputs(tmp_path):
    source = _run_exported(tmp_path, branching_graph(), "Two heads", [torch.randn(4, 3, 16, 16)])
    assert "class TwoHeads(nn.Module)" in source
    assert "self.stem = nn.Conv2d(3, 8, kernel_size=3, padding=1)" in source


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

"""The built-in templates: each loads, round-trips, analyses clean, compiles and runs;
the committed files are exactly what ``make_templates.py`` builds."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

from engine.analysis import analyze
from engine.codegen import generate
from engine.compile import compile_graph
from engine.datacheck import check_against_data
from engine.errors import ProjectError
from engine.project import load_project, project_from_dict, project_to_dict, save_project
from engine.plan import class_identifier
from engine.templates import FULL_SIZE, TEACHING_ORDER, TEMPLATE_DIR, list_templates, load_template
from engine.units import units_in_use
from tests.conftest import ROOT
from tests.engine.helpers import torch_counts

NAMES = list(TEACHING_ORDER)
HEADS_FOR_TASK = {
    "classification": ["ClassificationOutput"],
    "binary": ["PerceptronOutput"],  # the perceptron template's, the one binary task among them
    "regression": ["RegressionOutput"],
    "segmentation": ["SegmentationOutput"],
    "localization": ["ClassificationOutput", "BoxOutput"],
}
OFFLINE_DATASETS = {"spiral", "xor", "circles", "gaussians", "regression1d", "digits", "iris", "wine", "breast_cancer", "shapes"}
#: the full-size networks run a forward pass of several seconds each: in the slow tests only
RUNS = [pytest.param(name, marks=pytest.mark.slow) if name in FULL_SIZE else name for name in NAMES]


@pytest.fixture(scope="module")
def maker():
    """``resources/templates/make_templates.py``, imported as a module."""
    path = ROOT / "resources" / "templates" / "make_templates.py"
    spec = importlib.util.spec_from_file_location("make_templates", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_every_template_is_listed_in_teaching_order():
    infos = list_templates()
    assert [t.name for t in infos] == NAMES
    for t in infos:
        assert t.path == TEMPLATE_DIR / f"{t.name}.json"
        assert t.title and t.description
        assert "\n" not in t.description and len(t.description) <= 120


def test_other_templates_follow_alphabetically(tmp_path):
    for name in ("resnet", "mlp"):
        shutil.copy(TEMPLATE_DIR / f"{name}.json", tmp_path)
    for name in ("zeta", "alpha"):
        shutil.copy(TEMPLATE_DIR / "perceptron.json", tmp_path / f"{name}.json")
    assert [t.name for t in list_templates(tmp_path)] == ["mlp", "resnet", "alpha", "zeta"]
    assert load_template("zeta", tmp_path).name == "Perceptron"


def test_unknown_template_names_the_known_ones():
    with pytest.raises(ProjectError, match="no template called 'lenet'.*lenet5.*unet"):
        load_template("lenet")


def test_an_empty_folder_has_no_templates(tmp_path):
    assert list_templates(tmp_path) == []
    assert list_templates(tmp_path / "missing") == []
    with pytest.raises(ProjectError, match="none are installed"):
        load_template("mlp", tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_template_round_trips(name, tmp_path):
    project = load_template(name)
    data = project_to_dict(project)
    assert project_to_dict(project_from_dict(json.loads(json.dumps(data)))) == data
    save_project(project, tmp_path / "copy.json")
    assert project_to_dict(load_project(tmp_path / "copy.json")) == data


@pytest.mark.parametrize("name", RUNS)
def test_template_is_clean_and_runs(name):
    project = load_template(name)
    graph = project.graph
    result = analyze(graph)
    assert result.errors() == []
    assert result.warnings() == []

    heads = [nid for nid, n in graph.nodes.items() if n.spec.role == "head"]
    assert sorted(graph.nodes[h].type for h in heads) == sorted(HEADS_FOR_TASK[project.data.task])
    inputs = [nid for nid, n in graph.nodes.items() if n.spec.role == "input"]
    assert len(inputs) == 1
    in_shape = result.nodes[inputs[0]].out_shape
    if len(in_shape) == 3:
        assert in_shape[1] == in_shape[2] == project.data.image_size
    if name in FULL_SIZE:  # a person's own data: Train asks for the path
        assert project.data.dataset in ("image_folder", "npz") and project.data.path is None
    else:
        assert project.data.dataset in OFFLINE_DATASETS

    compiled = compile_graph(graph)
    model = compiled.module
    assert torch_counts(model)[0] == result.total_trainable
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(torch.randn(3, *in_shape))
    outs = out if isinstance(out, tuple) else (out,)
    assert compiled.code.output_ids == heads
    assert [tuple(o.shape) for o in outs] == [(3, *result.nodes[h].out_shape) for h in heads]
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("name", NAMES)
def test_template_fits_its_own_data(name):
    """No error and no warning against the template's own data settings: input size, channels, class count."""
    project = load_template(name)
    problems = check_against_data(project, analyze(project.graph))
    assert [(p.severity, p.message) for p in problems] == []


def test_script_refuses_a_template_that_does_not_fit_its_data(maker):
    from dataclasses import replace

    mobilenet = next(t for t in maker.TEMPLATES if t.name == "mobilenet")  # 3 class scores, for the shapes
    with pytest.raises(RuntimeError, match="mobilenet.*does not fit its own data settings.*10 classes"):
        maker.build_project(replace(mobilenet, data={"dataset": "digits", "image_size": 32, "task": "classification"}))


@pytest.mark.slow  # NOTE: tests/engine stays under 30 s without the slow ones; the full suite (CI) runs them
@pytest.mark.parametrize("name", NAMES)
def test_template_is_laid_out_and_named(name):
    """The network and the inside of each of its units, as opening the unit on the canvas shows it."""
    project = load_template(name)
    graph = project.graph
    for where, level in [(name, graph)] + [(f"{name}: {u.name}", u.graph) for u in units_in_use(graph)]:
        pos = {nid: n.pos for nid, n in level.nodes.items()}
        for e in level.edges:  # NOTE: left to right, or back to the start of a later row (Arrange wraps long networks)
            a, b = pos[e.src], pos[e.dst]
            assert b[0] > a[0] or b[1] > a[1], (where, level.nodes[e.src].name, level.nodes[e.dst].name)
        assert len(set(pos.values())) == len(pos), where
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n.name) for n in level.nodes.values()), where
    # The live views look at a real layer of the network.
    if project.probes.layer is not None:
        assert compile_graph(graph).submodule(project.probes.layer) is not None


@pytest.mark.parametrize("name", NAMES)
def test_each_unit_definition_is_one_class_of_the_code(name):
    """Every use of a definition reads the same code, so the exported source has one class per definition
    (as torchvision writes BasicBlock once), each named after it, and the network's class last."""
    graph = load_template(name).graph
    classes = re.findall(r"^class (\w+)\(nn\.Module\):", generate(graph).source, re.MULTILINE)
    assert sorted(classes[:-1]) == sorted(class_identifier(u) for u in graph.units) and classes[-1] == "Net"
    for unit in graph.units.values():  # no definition is left unused
        assert any(u is unit for u in units_in_use(graph)), unit.name
    if name in FULL_SIZE and name != "alexnet":  # the full-size networks show stages, not hundreds of blocks
        assert graph.units and len(graph) <= 30, len(graph)


def test_lenet5_has_the_classic_parameter_count():
    project = load_template("lenet5")
    assert analyze(project.graph).total_params == 61_706
    assert torch_counts(compile_graph(project.graph).module) == (61_706, 0)


def test_localization_head_weights_are_alpha_and_one_minus_alpha():
    project = load_template("localization")
    weights = {n.type: n.params["weight"] for n in project.graph.nodes.values() if n.spec.role == "head"}
    alpha = weights["ClassificationOutput"]
    assert 0 < alpha < 1 and weights == {"ClassificationOutput": alpha, "BoxOutput": pytest.approx(1 - alpha)}


@pytest.mark.parametrize("name", NAMES)
def test_committed_file_is_what_the_script_builds(maker, name, tmp_path):
    template = next(t for t in maker.TEMPLATES if t.name == name)
    built = maker.build_project(template)
    save_project(built, tmp_path / f"{name}.json")
    committed = (TEMPLATE_DIR / f"{name}.json").read_bytes()
    assert (tmp_path / f"{name}.json").read_bytes() == committed, (
        f"{name}.json is out of date: run python resources/templates/make_templates.py"
    )


def test_script_knows_every_committed_template(maker):
    assert [t.name for t in maker.TEMPLATES] == NAMES


@pytest.mark.slow
def test_script_runs_from_the_repository_root():
    result = subprocess.run(
        [sys.executable, "resources/templates/make_templates.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout

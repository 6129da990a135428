"""Network against data: each mismatch Train would stop on is found before it, with the right numbers.

Every figure is checked against the real data (``load_dataset``) or against what PyTorch itself
does with it (the loss raising), never against the check's own tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.analysis import ERROR, WARNING, Fix, analyze
from engine.config import DataConfig
from engine.data import DataError, check_task, load_dataset
from engine.datacheck import (
    DataMismatchError,
    analyze_project,
    check_against_data,
    require_data_fit,
)
from engine.datafacts import describe
from engine.graph import Graph
from engine.project import Project
from engine.templates import FULL_SIZE, list_templates, load_template
from engine.tasks import head_spec
from tests.engine.helpers import chain, image_input, then, vector_input

#: built-in labelled data sets: (name, extra settings, an Input shape the loader takes)
LABELLED = [
    ("spiral", {}, (2,)),
    ("spiral", {"classes": 3}, (2,)),
    ("spiral", {"classes": 7}, (2,)),
    ("xor", {}, (2,)),
    ("circles", {}, (2,)),
    ("gaussians", {}, (2,)),
    ("digits", {}, (1, 8, 8)),
    ("iris", {}, (4,)),
    ("wine", {}, (13,)),
    ("breast_cancer", {}, (30,)),
    ("shapes", {}, (1, 16, 16)),
]


def data(dataset: str, task: str = "classification", **fields) -> DataConfig:
    extra = {"classes": fields.pop("classes")} if "classes" in fields else {}
    return DataConfig(dataset=dataset, task=task, samples=fields.pop("samples", 120), extra=extra, **fields)


def project(graph: Graph, cfg: DataConfig) -> Project:
    p = Project(name="T", graph=graph)
    p.data = cfg
    return p


def problems(p: Project, base_dir: Path | None = None) -> list:
    return check_against_data(p, analyze(p.graph), base_dir)


def classifier(shape: tuple[int, ...], units: int, head: str = "ClassificationOutput") -> tuple[Graph, dict]:
    """Input(shape) [-> Flatten] -> Dense(units) 'fc3' -> head."""
    g = Graph()
    src = vector_input(g, shape[0]) if len(shape) == 1 else image_input(g, *shape)
    if len(shape) == 3:
        src = then(g, src, "Flatten")
    fc = g.add_node("Dense", {"units": units}, name="fc3").id
    g.connect(src, 0, fc, 0)
    out = then(g, fc, head)
    return g, {"input": next(iter(g.nodes)), "fc": fc, "head": out}


def apply_fix(p: Project, fix: Fix) -> None:
    """What the window's undo step does, on the plain project (the window's own path is tested in designer)."""
    g = p.graph
    for nid in fix.remove:
        g.remove_node(nid)
    for nid, changes in fix.set_params:
        g.set_params(nid, dict(changes))
    for type_id, after in fix.add:
        g.connect(after, 0, g.add_node(type_id).id, 0)
    for name, value in fix.set_data:
        setattr(p.data, name, value)


def real(cfg: DataConfig, shape, base_dir=None):
    return load_dataset(cfg, shape, base_dir)


# ---------------------------------------------------------------------- the facts against the real data
@pytest.mark.parametrize(("name", "extra", "shape"), LABELLED)
def test_facts_of_every_labelled_set_match_the_loaded_data(name, extra, shape):
    cfg = data(name, **extra)
    facts = describe(cfg)
    ds = real(cfg, shape)
    assert facts.classes == len(ds.classes)
    assert facts.targets == frozenset(ds.targets)
    if "binary" in ds.targets:
        assert facts.binary_width == ds.targets["binary"].shape[1]
    if "mask" in ds.targets:
        assert facts.mask_classes == len(ds.mask_classes) == int(ds.targets["mask"].max()) + 1
    if facts.fit.kind == "features":
        assert facts.fit.size == ds.x.shape[1]


def test_facts_of_the_bundled_sets_are_scikit_learns():
    from sklearn import datasets

    for name, loader in (("digits", "load_digits"), ("iris", "load_iris"), ("wine", "load_wine"),
                         ("breast_cancer", "load_breast_cancer")):
        bunch = getattr(datasets, loader)()
        facts = describe(data(name))
        assert facts.classes == len(bunch.target_names) == len(np.unique(bunch.target)), name
        stored = bunch.images.shape[1:] if name == "digits" else bunch.data.shape[1:]
        assert facts.fit.size == int(np.prod(stored)), name


def test_regression1d_facts():
    cfg = data("regression1d", "regression")
    ds = real(cfg, (1,))
    facts = describe(cfg)
    assert facts.targets == frozenset(ds.targets) == {"value"}
    assert facts.value_width == ds.targets["value"].shape[1] == 1


# ---------------------------------------------------------------------- class scores against classes
CASES = [(name, extra, shape, delta) for name, extra, shape in LABELLED for delta in (-1, 0, 1, 5)]


@pytest.mark.parametrize(("name", "extra", "shape", "delta"), CASES)
def test_class_scores_against_the_classes(name, extra, shape, delta):
    cfg = data(name, **extra)
    classes = len(real(cfg, shape).classes)  # the real count, not the check's
    units = classes + delta
    g, ids = classifier(shape, units)
    p = project(g, cfg)
    found = problems(p)
    if units < 2:  # a Class output's shape check says so already: no second report
        assert [x.rule for x in analyze(g).problems[ids["head"]]] == ["shape"] and found == []
        return
    if delta == 0:
        assert found == []
        return
    (problem,) = found
    assert problem.node_id == ids["fc"] and problem.rule == "class_count"
    assert f"'fc3' gives {units} class scores but the {name} data set has {classes} classes" in problem.message
    assert problem.severity == (ERROR if delta < 0 else WARNING)
    assert problem.fix.label == f"Set fc3 to {classes} units"
    apply_fix(p, problem.fix)
    assert problems(p) == []


@pytest.mark.parametrize(("name", "extra", "shape"), LABELLED)
def test_too_few_class_scores_is_what_stops_pytorch(name, extra, shape):
    """The error is exactly PyTorch's limit: one score fewer than classes fails, as many trains."""
    labels = real(data(name, **extra), shape).targets["label"]
    k = int(labels.max()) + 1
    F.cross_entropy(torch.zeros(len(labels), k), labels)
    with pytest.raises((IndexError, RuntimeError)):
        F.cross_entropy(torch.zeros(len(labels), k - 1), labels)


def test_the_issue_example_is_an_error_that_blocks_training():
    g, ids = classifier((1, 8, 8), 7)
    p = project(g, data("digits"))
    analysis = analyze_project(p)
    assert not analysis.valid
    (problem,) = analysis.problems[ids["fc"]]
    assert problem.message.startswith("'fc3' gives 7 class scores but the digits data set has 10 classes")
    with pytest.raises(DataMismatchError, match="'fc3' gives 7 class scores but the digits data set has 10 classes"):
        require_data_fit(p)


def test_scores_after_keeping_blocks_are_traced_to_the_dense_layer():
    g = Graph()
    fc = chain(g, vector_input(g, 4), ("Dense", {"units": 5}), "ReLU", ("Dropout", {}))
    out = then(g, fc[-1], "ClassificationOutput")
    p = project(g, data("iris"))
    (problem,) = problems(p)
    assert problem.node_id == fc[0] and "gives 5 class scores" in problem.message and "3 classes" in problem.message
    apply_fix(p, problem.fix)
    assert problems(p) == [] and analyze(p.graph).nodes[out].in_shapes == [(3,)]


def test_no_fix_when_no_block_sets_the_width():
    g = Graph()
    out = then(g, vector_input(g, 2), "ClassificationOutput")
    p = project(g, data("spiral", classes=3))
    (problem,) = problems(p)
    assert problem.rule == "class_count" and problem.fix is None and problem.severity == ERROR
    assert out in g.nodes


# ---------------------------------------------------------------------- binary, regression, segmentation widths
def test_binary_scores_against_the_targets():
    cfg = data("breast_cancer", "binary")
    binary = real(cfg, (30,)).targets["binary"]
    for units in (1, 2, 3):
        g, _ = classifier((30,), units, "BinaryOutput")
        p = project(g, cfg)
        found = problems(p)
        fits = units == binary.shape[1]
        try:  # what the loss does with these scores
            F.binary_cross_entropy_with_logits(torch.zeros(len(binary), units), binary.view(len(binary), units))
            pytorch_ok = True
        except RuntimeError:
            pytorch_ok = False
        assert fits == pytorch_ok == (found == [])
        if not fits:
            (problem,) = found
            assert problem.rule == "binary_width" and f"gives {units} scores" in problem.message
            apply_fix(p, problem.fix)
            assert problems(p) == []


def test_regression_width_against_the_values():
    cfg = data("regression1d", "regression")
    values = real(cfg, (1,)).targets["value"]
    for units in (1, 2, 4):
        g, _ = classifier((1,), units, "RegressionOutput")
        p = project(g, cfg)
        found = problems(p)
        try:
            F.mse_loss(torch.zeros(len(values), units), values.view(len(values), units))
            pytorch_ok = True
        except RuntimeError:
            pytorch_ok = False
        assert pytorch_ok == (found == []) == (units == 1)
        if units != 1:
            (problem,) = found
            assert problem.rule == "value_width" and problem.severity == ERROR
            assert f"'fc3' gives {units} numbers but the regression1d data set has 1 number" in problem.message
            apply_fix(p, problem.fix)
            assert problems(p) == []


def segmenter(filters: int, stride: int = 1, side: int = 16) -> tuple[Graph, str, str]:
    g = Graph()
    conv = g.add_node("Conv2d", {"filters": filters, "kernel_size": 3, "padding": "same", "stride": stride}, name="last").id
    g.connect(image_input(g, 1, side), 0, conv, 0)
    return g, conv, then(g, conv, "SegmentationOutput")


@pytest.mark.parametrize("filters", [2, 3, 4, 5, 8])
def test_segmentation_channels_against_the_mask_classes(filters):
    cfg = data("shapes", "segmentation")
    masks = real(cfg, (1, 16, 16)).targets["mask"]
    g, conv, _ = segmenter(filters)
    p = project(g, cfg)
    found = problems(p)
    try:
        F.cross_entropy(torch.zeros(len(masks), filters, 16, 16), masks)
        pytorch_ok = True
    except (IndexError, RuntimeError):
        pytorch_ok = False
    classes = int(masks.max()) + 1
    if filters == classes:
        assert found == []
        return
    (problem,) = found
    assert problem.rule == "mask_classes" and problem.node_id == conv
    assert f"gives {filters} class maps" in problem.message and f"have {classes} classes" in problem.message
    assert (problem.severity == ERROR) == (not pytorch_ok)
    assert problem.fix.label == f"Set last to {classes} filters"
    apply_fix(p, problem.fix)
    assert problems(p) == []


def test_segmentation_maps_smaller_than_the_masks():
    cfg = data("shapes", "segmentation")
    g, _, _ = segmenter(4, stride=2)
    (problem,) = problems(project(g, cfg))
    assert problem.rule == "mask_crop" and problem.severity == "info"  # cropped, as U-Net's valid convolutions
    assert "gets 8×8 class maps of 16×16 masks: the masks are cropped to their centre 8×8" in problem.message
    g, _, _ = segmenter(4, stride=2, side=18)  # 9×9 maps of 18×18 masks: no centre
    (problem,) = problems(project(g, cfg))
    assert problem.rule == "mask_size" and problem.severity == ERROR
    assert "gives 9×9 class maps but the masks of the shapes data set are 18×18" in problem.message
    masks = real(cfg, (1, 18, 18)).targets["mask"]
    with pytest.raises(RuntimeError):
        F.cross_entropy(torch.zeros(len(masks), 4, 9, 9), masks)


# ---------------------------------------------------------------------- the Input against the samples
INPUTS = [
    ("digits", {}, (1, 8, 8)), ("digits", {}, (3, 20, 20)), ("digits", {}, (2, 8, 8)), ("digits", {}, (4, 32, 32)),
    ("digits", {}, (64,)), ("digits", {}, (784,)), ("digits", {}, (192,)), ("digits", {}, (10,)), ("digits", {}, (50,)),
    ("digits", {"image_size": 10}, (100,)), ("digits", {"image_size": 10}, (64,)), ("digits", {"image_size": 10}, (99,)),
    ("shapes", {}, (1, 32, 32)), ("shapes", {}, (3, 8, 8)), ("shapes", {}, (1, 4, 4)), ("shapes", {}, (1, 7, 30)),
    ("shapes", {}, (2, 16, 16)), ("shapes", {}, (64,)), ("shapes", {}, (16,)), ("shapes", {}, (1000,)),
    ("iris", {}, (4,)), ("iris", {}, (5,)), ("iris", {}, (1, 2, 2)), ("wine", {}, (13,)), ("wine", {}, (3,)),
    ("spiral", {}, (2,)), ("spiral", {}, (3,)), ("xor", {}, (1, 1, 2)), ("regression1d", {"task": "regression"}, (1,)),
    ("regression1d", {"task": "regression"}, (2,)), ("breast_cancer", {}, (30,)), ("breast_cancer", {}, (1, 5, 6)),
]


def input_problems(p: Project, base_dir=None) -> list:
    return [x for x in problems(p, base_dir) if x.rule == "input_data"]


def with_input(shape: tuple[int, ...]) -> Graph:
    g = Graph()
    if len(shape) == 1:
        vector_input(g, shape[0])
    else:
        image_input(g, shape[0], shape[1], shape[2])
    return g


@pytest.mark.parametrize(("name", "fields", "shape"), INPUTS)
def test_input_problem_exactly_when_the_loader_refuses(name, fields, shape):
    cfg = data(name, **fields)
    p = project(with_input(shape), cfg)
    found = input_problems(p)
    try:
        real(cfg, shape)
        loads = True
    except DataError:
        loads = False
    assert loads == (found == []), [x.message for x in found]
    if not loads:
        (problem,) = found
        assert problem.severity == ERROR and problem.message.startswith("'input' ")
        apply_fix(p, problem.fix)
        new_shape = analyze(p.graph).nodes[problem.node_id].out_shape
        assert input_problems(p) == []
        real(cfg, new_shape)  # the fixed Input loads


def test_input_messages_name_both_sides():
    (problem,) = input_problems(project(with_input((5,)), data("iris")))
    assert problem.message == (
        "'input' takes 5 features but the iris data set has 4 features (the flower's measurements)"
    )
    assert problem.fix.label == "Set input to 4 features"
    (problem,) = input_problems(project(with_input((2, 32, 32)), data("digits")))
    assert "'input' has 2 channels but the digits data set holds 8×8 grayscale images" in problem.message
    assert problem.fix.label == "Set input to 1×32×32"


# ---------------------------------------------------------------------- the output block against task and data
HEAD_CASES = [
    # data set, task, head, units, rule, fix label
    ("digits", "classification", "RegressionOutput", 1, "head_data", "Replace regression with a Class output and set fc3 to 10 units"),
    ("digits", "classification", "BinaryOutput", 1, "head_data", "Replace binary with a Class output and set fc3 to 10 units"),
    ("digits", "binary", "BinaryOutput", 1, "head_data", "Replace binary with a Class output and set fc3 to 10 units and set the task to classification"),
    ("digits", "binary", "ClassificationOutput", 10, "head_task", "Set the task to classification"),
    ("digits", "localization", "ClassificationOutput", 10, "task_data", "Set the task to classification"),
    ("digits", "regression", "ClassificationOutput", 10, "head_task", "Set the task to classification"),
    ("breast_cancer", "classification", "BinaryOutput", 1, "head_task", "Set the task to binary"),
    ("breast_cancer", "binary", "ClassificationOutput", 2, "head_task", "Set the task to classification"),
    ("iris", "regression", "RegressionOutput", 1, "head_data", "Replace regression with a Class output and set fc3 to 3 units and set the task to classification"),
    ("shapes", "segmentation", "ClassificationOutput", 3, "head_task", "Set the task to classification"),
]
SHAPES = {"digits": (1, 8, 8), "breast_cancer": (30,), "iris": (4,), "shapes": (1, 16, 16)}


@pytest.mark.parametrize(("name", "task", "head", "units", "rule", "label"), HEAD_CASES)
def test_output_block_against_task_and_data(name, task, head, units, rule, label):
    cfg = data(name, task)
    g, ids = classifier(SHAPES[name], units, head)
    p = project(g, cfg)
    # what Train would meet: the task's check, or the head's target missing from the data
    ds = real(data(name), SHAPES[name])
    key = head_spec(head).target
    try:
        check_task(ds, task)
        task_ok = True
    except DataError:
        task_ok = False
    train_fails = not task_ok or key not in ds.targets
    assert train_fails or rule == "head_task"  # a head the task does not train is refused even so
    found = [x for x in problems(p) if x.rule != "class_count"]
    (problem,) = found
    assert problem.rule == rule and problem.severity == ERROR and problem.node_id == ids["head"]
    assert problem.fix is not None and problem.fix.label == label
    apply_fix(p, problem.fix)
    assert problems(p) == []
    require_data_fit(p)


def test_a_head_the_task_does_not_train_is_named_with_the_task():
    g, _, _ = segmenter(4)
    p = project(g, data("shapes", "classification"))
    (problem,) = problems(p)
    assert problem.message == (
        "'segmentation' is a Segmentation output, but the classification task trains on class labels: "
        "the output block must match the task (Training setup)"
    )
    assert problem.fix.set_data == (("task", "segmentation"),)


def test_binary_output_on_a_data_set_that_is_not_binary():
    g, _ = classifier((1, 8, 8), 10, "BinaryOutput")
    (problem,) = problems(project(g, data("digits")))
    assert problem.message == (
        "'binary' is a Binary output, which needs a data set of exactly 2 classes, but the digits data set has 10 classes"
    )
    assert problem.fix.label == "Replace binary with a Class output"


def test_localization_needs_class_and_box_outputs_and_gets_them():
    p = load_template("localization")
    assert problems(p) == []
    box = next(n for n in p.graph.nodes.values() if n.type == "BoxOutput")
    p.data.task = "classification"
    (problem,) = problems(p)
    assert problem.node_id == box.id and problem.rule == "head_task"
    assert problem.fix.label == "Set the task to localization"


# ---------------------------------------------------------------------- no output block
def test_no_output_block_offers_to_add_the_tasks_output():
    g = Graph()
    fc = chain(g, image_input(g, 1, 8), "Flatten", ("Dense", {"units": 10}))[-1]
    g.rename(fc, "fc3")
    p = project(g, data("digits"))
    (problem,) = problems(p)
    assert problem.rule == "no_output" and problem.node_id == fc and problem.severity == ERROR
    assert "no output block" in problem.message and "after 'fc3'" in problem.message
    assert problem.fix.label == "Add a Class output after fc3"
    with pytest.raises(DataMismatchError, match="no output block"):
        require_data_fit(p)
    apply_fix(p, problem.fix)
    assert problems(p) == [] and analyze_project(p).valid


@pytest.mark.parametrize(
    ("name", "task", "title", "units"),
    [
        ("circles", "classification", "Class output", 2),
        ("circles", "binary", "Binary output", 1),
        ("regression1d", "regression", "Regression output", 1),
    ],
)
def test_no_output_fix_follows_the_task(name, task, title, units):
    g = Graph()
    features = describe(data(name, task)).fit.size
    chain(g, vector_input(g, features), ("Dense", {"units": units}))
    p = project(g, data(name, task))
    (problem,) = problems(p)
    assert problem.fix.label == f"Add a {title} after fc"
    apply_fix(p, problem.fix)
    assert problems(p) == []


def test_no_output_without_any_layer_and_none_that_fits():
    g = Graph()
    vector_input(g, 2)
    (problem,) = problems(project(g, data("xor")))
    assert problem.rule == "no_output" and problem.fix is None
    g = Graph()
    chain(g, image_input(g, 1, 8), ("Conv2d", {"filters": 4}))
    (problem,) = problems(project(g, data("digits")))
    assert problem.rule == "no_output" and problem.fix is None  # a Class output does not take 4×8×8
    assert problems(project(Graph(), data("digits"))) == []


# ---------------------------------------------------------------------- templates: no false alarms
@pytest.mark.parametrize("info", list_templates(), ids=lambda t: t.name)
def test_every_template_fits_its_own_data(info):
    p = load_template(info.name)
    found = problems(p)
    assert [x for x in found if x.severity == ERROR] == []
    require_data_fit(p)
    if info.name in FULL_SIZE:  # a person's own data, no path yet (a real folder: test_classic_templates.py)
        assert found == [] and p.data.path is None
        return
    inputs = [n for n in p.graph.nodes.values() if n.spec.role == "input"]
    ds = real(p.data, analyze(p.graph).nodes[inputs[0].id].out_shape)
    for x in found:  # a warning only for surplus class scores, checked against the loaded data
        assert x.rule == "class_count" and x.severity == WARNING
        assert f"has {len(ds.classes)} classes" in x.message


# ---------------------------------------------------------------------- a person's files
def test_image_folder_classes_from_the_listing_and_refreshed_when_it_changes(tmp_path):
    from PIL import Image

    root = tmp_path / "pets"
    for k, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        Image.new("L", (12, 12), color=40 * k).save(root / name / "a.png")
    cfg = data("image_folder", path="pets")
    g, _ = classifier((1, 12, 12), 3)
    p = project(g, cfg)
    (problem,) = problems(p, tmp_path)
    assert problem.severity == WARNING and "the image folder pets has 2 classes" in problem.message
    (root / "fox").mkdir()
    Image.new("L", (12, 12)).save(root / "fox" / "a.png")
    os.utime(root, ns=(os.stat(root).st_atime_ns, os.stat(root).st_mtime_ns + 10**9))
    assert problems(p, tmp_path) == []
    assert len(real(cfg, (1, 12, 12), tmp_path).classes) == 3


def test_csv_classes_features_and_task(tmp_path):
    rows = ["a,b,c,label"] + [f"{i},{i * 2},{i % 3},{'xyz'[i % 3]}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    cfg = data("csv", path="t.csv")
    g, ids = classifier((3,), 2)
    p = project(g, cfg)
    (problem,) = problems(p, tmp_path)
    assert problem.rule == "class_count" and "the table t.csv has 3 classes" in problem.message
    assert len(real(cfg, (3,), tmp_path).classes) == 3
    p.graph.set_params(ids["input"], {"features": 4})
    assert {x.rule for x in problems(p, tmp_path)} == {"class_count", "input_data"}
    cfg.feature_columns = ["a", "b"]
    p.graph.set_params(ids["input"], {"features": 2})
    assert [x.rule for x in problems(p, tmp_path)] == ["class_count"]
    cfg.task = "regression"
    (problem,) = problems(p, tmp_path)
    assert problem.rule == "head_data"  # a regression table has no class labels
    assert problem.fix.label == "Set the task to classification"


def test_npz_from_its_headers(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((20, 1, 6, 6)).astype(np.float32), y=np.arange(20) % 4,
             mask=(np.arange(20 * 36).reshape(20, 6, 6) % 5))
    cfg = data("npz", path=str(tmp_path / "d.npz"))
    facts = describe(cfg)
    ds = real(cfg, (1, 6, 6))
    assert facts.classes == len(ds.classes) == 4
    assert facts.targets == frozenset(ds.targets)
    assert facts.mask_classes == int(ds.targets["mask"].max()) + 1 == 5
    p = project(with_input((1, 5, 5)), cfg)
    (problem,) = input_problems(p)
    assert "1×6×6 = 36 values per sample" in problem.message and problem.fix.label == "Set input to 1×6×6"
    with pytest.raises(DataError):
        real(cfg, (1, 5, 5))


def test_unreadable_data_is_left_to_train(tmp_path):
    g, _ = classifier((3,), 7)
    for cfg in (data("csv", path="missing.csv"), data("npz", path="missing.npz"), data("csv"),
                data("image_folder", path="nowhere")):
        assert problems(project(g, cfg), tmp_path) == []
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "twice.csv").write_text("a,a,c,y\n1,2,3,x\n")
    (tmp_path / "latin.csv").write_bytes("a,b,c,y\n1,2,3,caf\xe9\n".encode("latin-1"))
    for cfg in (data("npz", path="bad.npz"), data("csv", path="twice.csv"), data("csv", path="latin.csv")):
        assert problems(project(g, cfg), tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")
    g, _ = classifier((3,), 7)
    assert problems(project(g, data("csv", path="pipe.csv")), tmp_path) == []  # returns, never blocks

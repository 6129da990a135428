"""Project files: round trips, atomic saves, migration, and every way a file can be wrong."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import DataConfig, ProbeConfig, TrainingConfig
from engine.errors import GraphError, ProjectError
from engine.graph import Graph
from engine.project import (
    FORMAT,
    MAX_NODES,
    VERSION,
    Project,
    graph_from_dict,
    graph_to_dict,
    load_project,
    project_from_dict,
    project_to_dict,
    save_project,
    weights_path,
)
from tests.engine.helpers import image_input, merge, then


# ---------------------------------------------------------------------- builders
def sample_project() -> Project:
    """A small network using every kind of param (int, float, bool, choice, int-or-choice, shape)."""
    g = Graph()
    inp = image_input(g, 1, 28, name="input", pos=(0, 0))
    conv = then(g, inp, "Conv2d", {"filters": 8, "padding": "same", "init": "he_normal"}, name="conv1", pos=(200.5, -10))
    bn = then(g, conv, "BatchNorm", {"momentum": 0.2}, name="bn1", pos=(400, -10.25))
    relu = then(g, bn, "ReLU", name="relu1", pos=(600, 0))
    add = merge(g, "Add", [conv, relu], name="add", pos=(800, 40))
    pool = then(g, add, "MaxPool2d", {"kernel_size": 7, "stride": 7}, name="pool", pos=(1000, 0))
    flat = then(g, pool, "Flatten", name="flatten", pos=(1200, 0))
    dense = then(g, flat, "Dense", {"units": 16, "bias": False}, name="dense1", pos=(1400, 0))
    shaped = then(g, dense, "Reshape", {"shape": (1, 4, 4)}, name="reshape", pos=(1600, 0))
    flat2 = then(g, shaped, "Flatten", name="flatten2", pos=(1800, 0))
    out = then(g, flat2, "Dense", {"units": 3}, name="logits", pos=(2000, 0))
    then(g, out, "ClassificationOutput", name="loss", pos=(2200, 0))
    return Project(
        name="Test net",
        description="A small net for the tests.",
        graph=g,
        data=DataConfig(dataset="shapes", image_size=28, augment={"flip": True, "rotation": 15.0}, seed=3),
        training=TrainingConfig(optimizer="sgd", lr=0.05, nesterov=True, schedule="cosine", epochs=3),
        probes=ProbeConfig(layer=conv, every_batches=20, cam_method="cam"),
        weights="test.weights.pt",
    )


def graph_state(g: Graph) -> tuple:
    """Everything that defines a graph document, in order."""
    nodes = [(n.id, n.type, n.name, dict(n.params), n.pos) for n in g.nodes.values()]
    return nodes, list(g.edges)


def sample_dict() -> dict[str, Any]:
    return json.loads(json.dumps(project_to_dict(sample_project())))


def node_index(d: dict, name: str) -> int:
    return next(i for i, n in enumerate(d["graph"]["nodes"]) if n["name"] == name)


def write(tmp_path: Path, content: str | bytes, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def load_error(tmp_path: Path, content: str | bytes | dict) -> str:
    """The message of the ProjectError that loading ``content`` as bad.json raises."""
    if isinstance(content, dict):
        content = json.dumps(content)
    with pytest.raises(ProjectError) as info:
        load_project(write(tmp_path, content))
    msg = str(info.value)
    assert "bad.json" in msg
    return msg


# ---------------------------------------------------------------------- round trips
def test_round_trip_through_json_gives_identical_project():
    p = sample_project()
    text = json.dumps(project_to_dict(p), allow_nan=False)
    q = project_from_dict(json.loads(text), "x.json")
    assert graph_state(q.graph) == graph_state(p.graph)
    assert (q.name, q.description, q.weights, q.extra) == (p.name, p.description, p.weights, p.extra)
    assert (q.data, q.training, q.probes) == (p.data, p.training, p.probes)
    assert project_to_dict(q) == project_to_dict(p)


def test_a_top_to_bottom_drawing_is_kept_and_a_bad_flow_is_named():
    p = sample_project()
    assert "flow" not in project_to_dict(p)["graph"]  # left to right files stay as they were
    p.graph.set_flow("tb")
    d = project_to_dict(p)
    assert d["graph"]["flow"] == "tb" and project_from_dict(d, "x.json").graph.flow == "tb"
    d["graph"]["flow"] = "sideways"
    with pytest.raises(ProjectError, match=r"x.json: graph.flow must be 'lr' \(left to right\) or 'tb'"):
        project_from_dict(d, "x.json")


def test_save_then_load_round_trip(tmp_path):
    p = sample_project()
    path = tmp_path / "net.json"
    save_project(p, path)
    q = load_project(path)
    assert graph_state(q.graph) == graph_state(p.graph)
    assert (q.data, q.training, q.probes) == (p.data, p.training, p.probes)
    save_project(q, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()


def test_written_layout(tmp_path):
    path = tmp_path / "net.json"
    save_project(sample_project(), path)
    d = json.loads(path.read_text(encoding="utf-8"))
    assert (d["format"], d["version"]) == (FORMAT, VERSION)
    assert list(d)[:2] == ["format", "version"]
    conv = d["graph"]["nodes"][node_index(d, "conv1")]
    assert set(conv) == {"id", "type", "name", "params", "pos"}
    assert conv["params"]["kernel_size"] == 3  # defaults are written too
    assert conv["pos"] == [200.5, -10.0]
    assert d["graph"]["nodes"][node_index(d, "reshape")]["params"]["shape"] == [1, 4, 4]
    assert d["graph"]["edges"][0] == {"from": ["n1", 0], "to": [conv["id"], 0]}
    assert d["weights"] == "test.weights.pt"
    assert d["data"]["augment"] == {"flip": True, "rotation": 15.0}


def test_unknown_fields_are_kept_and_written_back(tmp_path):
    d = sample_dict()
    d["author"] = {"name": "Ada", "tags": [1, 2]}
    d["data"]["cache_dir"] = "/tmp/cache"
    d["training"]["warmup_steps"] = 100
    d["probes"]["colormap"] = "viridis"
    p = project_from_dict(d, "x.json")
    assert p.extra == {"author": {"name": "Ada", "tags": [1, 2]}}
    assert p.data.extra == {"cache_dir": "/tmp/cache"}
    save_project(p, tmp_path / "out.json")
    back = json.loads((tmp_path / "out.json").read_text())
    assert back["author"] == {"name": "Ada", "tags": [1, 2]}
    assert back["data"]["cache_dir"] == "/tmp/cache"
    assert back["training"]["warmup_steps"] == 100
    assert back["probes"]["colormap"] == "viridis"


def test_missing_optional_fields_take_defaults():
    d = {
        "format": FORMAT,
        "version": VERSION,
        "graph": {"nodes": [{"id": "a", "type": "Conv2d", "name": "c", "params": {"filters": 4}}]},
    }
    p = project_from_dict(d, "x.json")
    node = p.graph.nodes["a"]
    assert node.params["filters"] == 4 and node.params["kernel_size"] == 3 and node.pos == (0.0, 0.0)
    assert (p.name, p.description, p.weights) == ("Untitled", "", None)
    assert (p.data, p.training, p.probes) == (DataConfig(), TrainingConfig(), ProbeConfig())
    assert p.graph.add_node("ReLU").id != "a"  # fresh ids do not collide with loaded ones


def test_loaded_graph_matches_one_built_with_connect():
    """The loader installs checked wires in one step; the result must equal connect()'s, field for field."""
    p = sample_project()
    q = graph_from_dict(graph_to_dict(p.graph), "x")
    ignore = {"_listeners", "_pending"}
    assert {k: v for k, v in vars(q).items() if k not in ignore} == {
        k: v for k, v in vars(p.graph).items() if k not in ignore
    }
    # and it behaves like any graph afterwards
    conv = next(n.id for n in q.nodes.values() if n.name == "conv1")
    relu = next(n.id for n in q.nodes.values() if n.name == "relu1")
    with pytest.raises(GraphError, match="already fed"):
        q.connect(conv, 0, relu, 0)
    q.disconnect(q.edge_into(conv, 0))
    with pytest.raises(GraphError, match="loop"):
        q.connect(relu, 0, conv, 0)
    q.remove_node(relu)
    assert all(relu not in (e.src, e.dst) for e in q.edges)


def test_edge_order_is_kept():
    g = Graph()
    a = image_input(g, 1, 8, name="in")
    b = g.add_node("ReLU", name="r1").id
    c = g.add_node("ReLU", name="r2").id
    g.connect(b, 0, c, 0)  # wired back to front
    g.connect(a, 0, b, 0)
    assert graph_from_dict(graph_to_dict(g)).edges == g.edges


def test_long_chain_stored_back_to_front_loads_quickly():
    n = 3000
    nodes = [{"id": "n0", "type": "Input", "name": "in", "params": {"kind": "vector"}}]
    nodes += [{"id": f"n{i}", "type": "ReLU", "name": f"r{i}"} for i in range(1, n)]
    edges = [{"from": [f"n{i}", 0], "to": [f"n{i + 1}", 0]} for i in reversed(range(n - 1))]
    g = graph_from_dict({"nodes": nodes, "edges": edges}, "big.json")
    assert len(g) == n and len(g.edges) == n - 1
    assert g.topological_order()[:3] == ["n0", "n1", "n2"]


def test_graph_to_dict_of_a_selection_keeps_only_inner_wires():
    p = sample_project()
    ids = [n.id for n in p.graph.nodes.values() if n.name in ("conv1", "bn1", "relu1", "add")]
    part = graph_to_dict(p.graph, ids)
    assert [n["name"] for n in part["nodes"]] == ["conv1", "bn1", "relu1", "add"]
    assert all(e["from"][0] in ids and e["to"][0] in ids for e in part["edges"])
    assert len(part["edges"]) == 4  # conv→bn, bn→relu, conv→add, relu→add
    pasted = graph_from_dict(json.loads(json.dumps(part)), "<clipboard>")
    assert [n.name for n in pasted.nodes.values()] == ["conv1", "bn1", "relu1", "add"]
    with pytest.raises(GraphError):
        graph_to_dict(p.graph, ["nope"])


def test_weights_path_is_relative_to_the_project_file(tmp_path):
    p = sample_project()
    assert weights_path(p, tmp_path / "nets" / "net.json") == tmp_path / "nets" / "test.weights.pt"
    p.weights = None
    assert weights_path(p, tmp_path / "net.json") is None


# ---------------------------------------------------------------------- atomic save
def test_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    save_project(sample_project(), path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    changed = sample_project()
    changed.name = "Changed"
    with pytest.raises(ProjectError, match="net.json could not be saved: No space left"):
        save_project(changed, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["net.json"]


def test_unsaveable_project_leaves_the_old_file(tmp_path):
    path = tmp_path / "net.json"
    save_project(sample_project(), path)
    before = path.read_bytes()
    bad = sample_project()
    bad.extra["oops"] = float("nan")
    with pytest.raises(ProjectError, match="net.json was not saved"):
        save_project(bad, path)
    bad.extra["oops"] = object()
    with pytest.raises(ProjectError, match="net.json was not saved"):
        save_project(bad, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["net.json"]


def test_saving_into_a_missing_folder_is_a_project_error(tmp_path):
    with pytest.raises(ProjectError, match="could not be saved"):
        save_project(sample_project(), tmp_path / "no" / "such" / "net.json")


# ---------------------------------------------------------------------- migration
def version0_dict() -> dict[str, Any]:
    d = sample_dict()
    d["version"] = 0
    d["graph"]["edges"] = [[*e["from"], *e["to"]] for e in d["graph"]["edges"]]
    return d


def test_version_0_is_migrated(tmp_path):
    p = sample_project()
    q = load_project(write(tmp_path, json.dumps(version0_dict()), "old.json"))
    assert graph_state(q.graph) == graph_state(p.graph)
    save_project(q, tmp_path / "new.json")
    d = json.loads((tmp_path / "new.json").read_text())
    assert d["version"] == VERSION and d["graph"]["edges"][0] == {"from": ["n1", 0], "to": ["n2", 0]}


def test_version_0_migration_does_not_change_its_input():
    d = version0_dict()
    kept = copy.deepcopy(d)
    project_from_dict(d, "old.json")
    assert d == kept


def test_malformed_version_0_edge_is_named(tmp_path):
    d = version0_dict()
    d["graph"]["edges"][2] = ["n1", 0, "n2"]
    msg = load_error(tmp_path, d)
    assert "graph.edges[2]" in msg and "version 0" in msg


def test_version_0_edge_to_a_missing_block_is_named(tmp_path):
    d = version0_dict()
    d["graph"]["edges"][1][2] = "n99"
    msg = load_error(tmp_path, d)
    assert "graph.edges[1].to" in msg and "'n99'" in msg


# ---------------------------------------------------------------------- bad files
Mutation = Callable[[dict], Any]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets ``a.b[2].c`` (block names may stand in for node indices: nodes[conv1])."""

    def apply(d: dict) -> None:
        target: Any = d
        parts = path.replace("]", "").replace("[", ".").split(".")
        for i, part in enumerate(parts):
            key: Any = part
            if isinstance(target, list):
                key = int(part) if part.isdigit() else node_index(d, part)
            if i == len(parts) - 1:
                if value is _DELETE:
                    del target[key]
                else:
                    target[key] = value
            else:
                target = target[key]

    return apply


_DELETE = object()


BAD_DICTS: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("format missing", _set("format", _DELETE), ("not a Net Designer project", "format")),
    ("wrong format", _set("format", "keras-model"), ("not a Net Designer project", '"keras-model"')),
    ("newer version", _set("version", VERSION + 1), ("newer Net Designer", f"version {VERSION + 1}")),
    ("version missing", _set("version", _DELETE), ("'version' is missing",)),
    ("version text", _set("version", "1"), ("version must be a whole number", '"1"')),
    ("version never written", _set("version", -1), ("version -1",)),
    ("graph missing", _set("graph", _DELETE), ("'graph' is missing",)),
    ("graph a list", _set("graph", []), ("graph must be an object",)),
    ("unknown graph field", _set("graph.groups", []), ("graph", '"groups"')),
    ("nodes missing", _set("graph.nodes", _DELETE), ("graph.nodes is missing",)),
    ("nodes a string", _set("graph.nodes", "n1,n2"), ("graph.nodes must be a list",)),
    ("edges an object", _set("graph.edges", {}), ("graph.edges must be a list",)),
    ("node a string", _set("graph.nodes[3]", "relu"), ("graph.nodes[3] must be an object",)),
    ("node id missing", _set("graph.nodes[conv1].id", _DELETE), ("graph.nodes[1]", "'id'")),
    ("node id a number", _set("graph.nodes[conv1].id", 2), ("graph.nodes[1].id", "not 2")),
    ("node type missing", _set("graph.nodes[conv1].type", _DELETE), ("block 'conv1' (id 'n2')", "'type'")),
    ("node name missing", _set("graph.nodes[conv1].name", _DELETE), ("'n2'", "'name'")),
    ("node name a number", _set("graph.nodes[conv1].name", 7), ("'n2'", "name must be text")),
    ("node name blank", _set("graph.nodes[conv1].name", "   "), ("'n2'", "name")),
    ("unknown layer type", _set("graph.nodes[conv1].type", "Conv3d"), ("block 'conv1' (id 'n2')", "'Conv3d'")),
    ("unknown node field", _set("graph.nodes[conv1].color", "red"), ("block 'conv1' (id 'n2')", '"color"')),
    ("params a list", _set("graph.nodes[conv1].params", [8]), ("block 'conv1' (id 'n2')", "params")),
    ("unknown param", _set("graph.nodes[conv1].params.filterz", 8), ("'conv1'", "'filterz'")),
    ("int param as text", _set("graph.nodes[conv1].params.filters", "16"), ("'conv1'", "'n2'", "'filters'")),
    ("int param fractional", _set("graph.nodes[conv1].params.filters", 2.5), ("'conv1'", "'filters'")),
    ("huge size", _set("graph.nodes[conv1].params.filters", 10**9), ("'conv1'", "'filters'", "at most")),
    ("absurd size", _set("graph.nodes[conv1].params.filters", 10**400), ("graph.nodes[1].params.filters",)),
    ("negative size", _set("graph.nodes[conv1].params.kernel_size", -3), ("'conv1'", "'kernel_size'", "-3")),
    ("bool param as text", _set("graph.nodes[dense1].params.bias", "no"), ("'dense1'", "'bias'")),
    ("choice param wrong", _set("graph.nodes[conv1].params.padding", "full"), ("'conv1'", "'padding'", "'full'")),
    ("float param as text", _set("graph.nodes[bn1].params.momentum", "0.1"), ("'bn1'", "'momentum'")),
    ("float param out of range", _set("graph.nodes[bn1].params.momentum", 7), ("'bn1'", "'momentum'")),
    ("shape as text", _set("graph.nodes[reshape].params.shape", "1,4,4"), ("'reshape'", "'shape'")),
    ("shape of text", _set("graph.nodes[reshape].params.shape", ["1", 4, 4]), ("'reshape'", "'shape'")),
    ("shape empty", _set("graph.nodes[reshape].params.shape", []), ("'reshape'", "'shape'")),
    ("shape of lists", _set("graph.nodes[reshape].params.shape", [[1], 4]), ("'reshape'", "'shape'")),
    ("pos one number", _set("graph.nodes[conv1].pos", [1]), ("'conv1'", "pos must be two numbers")),
    ("pos of text", _set("graph.nodes[conv1].pos", ["a", "b"]), ("'conv1'", "pos", '"a"')),
    ("pos of bools", _set("graph.nodes[conv1].pos", [True, 0]), ("'conv1'", "pos")),
    ("pos far away", _set("graph.nodes[conv1].pos", [1e300, 0]), ("'conv1'", "pos")),
    ("duplicate id", _set("graph.nodes[bn1].id", "n2"), ("'n2'", "already has the id")),
    ("duplicate name", _set("graph.nodes[bn1].name", "conv1"), ("two blocks are called 'conv1'", "'n2'", "'n3'")),
    ("edge a list", _set("graph.edges[0]", ["n1", 0, "n2", 0]), ("graph.edges[0] must be an object",)),
    ("edge to missing", _set("graph.edges[0].to", _DELETE), ("graph.edges[0]", "'to' is missing")),
    ("unknown edge field", _set("graph.edges[0].label", "x"), ("graph.edges[0]", '"label"')),
    ("dangling edge", _set("graph.edges[0].to", ["n99", 0]), ("graph.edges[0].to", "'n99'", "not in the graph")),
    ("port not a number", _set("graph.edges[0].from", ["n1", "0"]), ("graph.edges[0].from", "port number")),
    ("port negative", _set("graph.edges[0].from", ["n1", -1]), ("graph.edges[0].from",)),
    ("port a bool", _set("graph.edges[0].to", ["n2", False]), ("graph.edges[0].to",)),
    ("missing out port", _set("graph.edges[0].from", ["n1", 3]), ("graph.edges[0].from", "'input'", "port 3")),
    ("missing in port", _set("graph.edges[0].to", ["n2", 5]), ("graph.edges[0].to", "'conv1'", "port 5")),
    ("head has no output", _set("graph.edges[0].from", ["n12", 0]), ("'loss'", "has no output")),
    ("input takes no input", _set("graph.edges[1].to", ["n1", 0]), ("'input'", "takes no input")),
    ("self loop", _set("graph.edges[1].to", ["n2", 0]), ("graph.edges[1]", "'conv1'", "into itself")),
    ("data a list", _set("data", []), ("data must be an object",)),
    ("dataset unknown", _set("data.dataset", "mnist"), ("data.dataset must be one of", '"mnist"')),
    ("fractions too big", _set("data.val_fraction", 0.9), ("data.val_fraction", "test_fraction")),
    ("augment not numbers", _set("data.augment", {"flip": "yes"}), ("data.augment",)),
    ("columns not text", _set("data.feature_columns", [1, 2]), ("data.feature_columns",)),
    ("lr negative", _set("training.lr", -1), ("training.lr must be a positive number, not -1",)),
    ("lr a bool", _set("training.lr", True), ("training.lr", "not true")),
    ("batch size zero", _set("training.batch_size", 0), ("training.batch_size", "1 to 65536")),
    ("epochs text", _set("training.epochs", "ten"), ("training.epochs", '"ten"')),
    ("optimizer unknown", _set("training.optimizer", "lbfgs"), ("training.optimizer", '"lbfgs"')),
    ("gamma zero", _set("training.gamma", 0), ("training.gamma",)),
    ("probe samples", _set("probes.probe_samples", 65), ("probes.probe_samples", "1 to 64")),
    ("probe layer missing", _set("probes.layer", "n99"), ("probes.layer", "'n99'")),
    ("cam method", _set("probes.cam_method", "shap"), ("probes.cam_method",)),
    ("weights not text", _set("weights", 3), ("weights must be", "not 3")),
    ("name not text", _set("name", ["x"]), ("name must be text",)),
    ("description not text", _set("description", None), ("description must be text",)),
    ("nested too deep", _set("author", json.loads("[" * 150 + "]" * 150)), ("nested more than",)),
]


def _port_fed_twice(d: dict) -> None:
    """add (n5) is fed by conv1 on port 0 and relu1 on port 1: send both into port 0."""
    for e in d["graph"]["edges"]:
        if e["to"] == ["n5", 1]:
            e["to"] = ["n5", 0]


def _cycle(d: dict) -> None:
    """Feed add's port 1 from pool (n6), which add itself feeds."""
    for e in d["graph"]["edges"]:
        if e["to"] == ["n5", 1]:
            e["from"] = ["n6", 0]


BAD_DICTS += [
    ("port fed twice", _port_fed_twice, ("input port 0 of block 'add' (id 'n5')", "already feeds")),
    ("cycle", _cycle, ("cycle", "'add'", "'pool'")),
]


@pytest.mark.parametrize("mutate, expected", [c[1:] for c in BAD_DICTS], ids=[c[0] for c in BAD_DICTS])
def test_bad_project_is_refused_with_a_clear_message(tmp_path, mutate, expected):
    d = sample_dict()
    mutate(d)
    msg = load_error(tmp_path, d)
    for fragment in expected:
        assert fragment in msg


def test_sample_node_ids_are_what_the_cases_assume():
    d = sample_dict()
    ids = {n["name"]: n["id"] for n in d["graph"]["nodes"]}
    assert ids["input"] == "n1" and ids["conv1"] == "n2" and ids["bn1"] == "n3" and ids["relu1"] == "n4"
    assert ids["add"] == "n5" and ids["pool"] == "n6" and ids["loss"] == "n12"


def _text_of_sample(**replace: str) -> str:
    text = json.dumps(sample_dict(), indent=2)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"format": "net-designer-project",\n "version": 1,,}', ("not valid JSON", "line 2", "column")),
        ("", ("empty",)),
        (b"\xff\xfe{\x00", ("not a text file",)),
        ("[1, 2, 3]", ("not a Net Designer project", "a list")),
        ('"hello"', ("not a Net Designer project",)),
        (_text_of_sample(**{'"lr": 0.05': '"lr": NaN'}), ("training.lr is NaN",)),
        (_text_of_sample(**{'"lr": 0.05': '"lr": 1e999'}), ("training.lr is 1e999",)),
        (_text_of_sample(**{'"momentum": 0.2': '"momentum": -Infinity'}), ("graph.nodes[2].params.momentum",)),
        (_text_of_sample(**{'"pos": [\n          200.5': '"pos": [\n          Infinity'}), ("graph.nodes[1].pos[0]",)),
        (_text_of_sample(**{'"filters": 8': '"filters": ' + "9" * 5000}), ("graph.nodes[1].params.filters",)),
        (_text_of_sample(**{'"lr": 0.05': '"lr": 0.05, "lr": 0.1'}), ("'lr' appears twice",)),
        ("[" * 100_000 + "]" * 100_000, ("nested",)),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, ("nested",)),
    ],
    ids=[
        "syntax",
        "empty",
        "not utf8",
        "a list",
        "a string",
        "NaN",
        "overflow",
        "-Infinity",
        "Infinity pos",
        "5000 digits",
        "duplicate key",
        "deep lists",
        "deep objects",
    ],
)
def test_bad_json_text_is_refused(tmp_path, content, expected):
    msg = load_error(tmp_path, content)
    for fragment in expected:
        assert fragment in msg


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + json.dumps(sample_dict()).encode())
    assert load_project(path).name == "Test net"


def test_file_over_20_mb_is_refused_before_parsing(tmp_path):
    path = tmp_path / "bad.json"
    with open(path, "wb") as fh:
        fh.truncate(21 * 1024 * 1024)  # sparse: all zero bytes, which would not parse anyway
    with pytest.raises(ProjectError, match=r"bad.json is larger than 20 MB"):
        load_project(path)


def test_more_than_max_nodes_is_refused(tmp_path):
    d = sample_dict()
    d["graph"]["nodes"] = [{"id": f"n{i}", "type": "ReLU", "name": f"r{i}"} for i in range(MAX_NODES + 1)]
    d["graph"]["edges"] = []
    msg = load_error(tmp_path, d)
    assert f"at most {MAX_NODES}" in msg and "graph.nodes" in msg


def test_missing_file_and_folder_are_project_errors(tmp_path):
    with pytest.raises(ProjectError, match="nope.json does not exist"):
        load_project(tmp_path / "nope.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ProjectError, match="dir.json"):
        load_project(tmp_path / "dir.json")


def test_in_memory_garbage_is_named():
    d = sample_dict()
    d["training"]["lr"] = float("nan")
    with pytest.raises(ProjectError, match=r"mem: training.lr is NaN"):
        project_from_dict(d, "mem")
    d = sample_dict()
    d["extra"] = {1: "x"}
    with pytest.raises(ProjectError, match="not text"):
        project_from_dict(d, "mem")
    d = sample_dict()
    d["extra"] = {"x": {1, 2}}
    with pytest.raises(ProjectError, match=r"extra.x holds a set"):
        project_from_dict(d, "mem")
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(ProjectError, match="nested"):
        project_from_dict({**sample_dict(), "loop": loop}, "mem")


# ---------------------------------------------------------------------- configs
def test_config_defaults_and_round_trip():
    for cls in (DataConfig, TrainingConfig, ProbeConfig):
        made = cls()
        assert cls.from_dict(made.to_dict()) == made
        assert cls.from_dict({}) == made
    t = TrainingConfig.from_dict({"epochs": 5.0, "lr": 1, "future": {"a": 1}}, "x.json: training")
    assert (t.epochs, t.lr, t.extra) == (5, 1.0, {"future": {"a": 1}})
    assert t.to_dict()["future"] == {"a": 1}
    assert DataConfig().dataset == "digits" and TrainingConfig().optimizer == "adam"


@pytest.mark.parametrize(
    "cls, field, value, expected",
    [
        (DataConfig, "samples", 0, "data.samples must be a whole number from 1"),
        (DataConfig, "noise", 1.5, "data.noise must be a number from 0 to 1, not 1.5"),
        (DataConfig, "normalize", 1, "data.normalize must be true or false, not 1"),
        (DataConfig, "task", "ranking", "data.task must be one of"),
        (DataConfig, "image_size", -3, "data.image_size must be a whole number from 1 to 8192 or null, not -3"),
        (DataConfig, "path", 5, "data.path must be text or null"),
        (DataConfig, "seed", -1, "data.seed"),
        (TrainingConfig, "lr", float("inf"), "training.lr must be a positive number, not Infinity"),
        (TrainingConfig, "lr", 10**400, "training.lr must be a positive number, not a huge number"),
        (TrainingConfig, "momentum", -0.1, "training.momentum"),
        (TrainingConfig, "weight_decay", -1, "training.weight_decay must be a number of at least 0"),
        (TrainingConfig, "epochs", 100_001, "training.epochs"),
        (TrainingConfig, "early_stopping_patience", -1, "training.early_stopping_patience"),
        (TrainingConfig, "device", "tpu", "training.device"),
        (TrainingConfig, "mixed_precision", "yes", "training.mixed_precision"),
        (TrainingConfig, "schedule", None, "training.schedule must be one of"),
        (ProbeConfig, "every_batches", 0, "probes.every_batches"),
        (ProbeConfig, "layer", 3, "probes.layer must be text or null"),
    ],
)
def test_config_field_errors_name_the_field(cls, field, value, expected):
    with pytest.raises(ProjectError) as info:
        cls.from_dict({field: value}, f"lenet.json: {cls.SECTION}")
    assert str(info.value).startswith("lenet.json: ")
    assert expected in str(info.value)


def test_config_section_must_be_an_object():
    with pytest.raises(ProjectError, match="lenet.json: training must be an object"):
        TrainingConfig.from_dict([1], "lenet.json: training")


# ---------------------------------------------------------------------- fuzzing
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.sampled_from([0, 1, -1, 2**31, 10**120, -(10**400), 0.5, 1e308, 1e-320])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["n1", "n2", "n99", "Conv2d", "same", "", FORMAT, "image", "Add"])
)
_garbage = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
) | st.sampled_from([(1, 2), {3, 4}, b"x", object()])


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated_projects(draw) -> Any:
    d = sample_dict()
    if draw(st.integers(0, 9)) == 0:
        d = version0_dict()
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(d)
        path = draw(st.sampled_from(paths))
        if not path:
            if draw(st.booleans()):
                return draw(_garbage)
            continue
        *head, last = path
        parent = d
        for key in head:
            parent = parent[key]
        op = draw(st.sampled_from(["replace", "delete", "add", "nudge"]))
        if op == "replace":
            parent[last] = draw(_garbage)
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(_garbage)
        elif op == "add":
            parent.insert(last, draw(_garbage))
        elif isinstance(parent[last], int) and not isinstance(parent[last], bool):
            parent[last] += draw(st.sampled_from([-1, 1, -(10**6), 10**6]))
    return d


@settings(max_examples=200, deadline=None)
@given(mutated_projects())
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_mutated_projects_raise_only_project_errors(d):
    try:
        p = project_from_dict(d, "fuzz.json")
    except ProjectError as exc:
        assert str(exc).startswith("fuzz.json")
        return
    # whatever loads must save and load again unchanged
    text = json.dumps(project_to_dict(p), allow_nan=False)
    q = project_from_dict(json.loads(text), "again.json")
    assert graph_state(q.graph) == graph_state(p.graph)
    assert project_to_dict(q) == project_to_dict(p)


_SAMPLE_TEXT = json.dumps(sample_dict(), indent=1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_SAMPLE_TEXT)), st.integers(0, 3), st.text(alphabet='{}[]",:0-9.eEnNaIf \\x', max_size=3)),
        min_size=1,
        max_size=4,
    )
)
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_corrupted_text_raises_only_project_errors(edits):
    text = _SAMPLE_TEXT
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.json"
        path.write_text(text, encoding="utf-8")
        try:
            load_project(path)
        except ProjectError as exc:
            assert "fuzz.json" in str(exc)

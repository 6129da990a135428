"""Units: group, ungroup, flatten, repeat, make unique; their analysis, code, probes and project files."""

from __future__ import annotations

import json
import re

import pytest
import torch

from engine.analysis import analyze
from engine.codegen import generate
from engine.compile import compile_graph, load_class
from engine.errors import GraphError, ProjectError
from engine.graph import UNIT_TYPE, Graph
from engine.probes.base import Tap
from engine.project import (
    VERSION,
    load_project,
    project_from_dict,
    project_to_dict,
    save_project,
)
from engine.templates import TEMPLATE_DIR, load_template
from engine.units import expand, flatten, group, make_unique, redefine, repeat, ungroup
from tests.engine.helpers import Recorder, chain, image_input, merge, then, torch_counts
from tests.engine.test_export import branching_graph

#: torchvision's resnet18(): trainable parameters for 1000 classes
RESNET18_PARAMS = 11_689_512


def residual_net(blocks: int = 2) -> Graph:
    """Input, a stem, ``blocks`` residual blocks of the same shape (named block{k}_...), a classifier."""
    g = Graph()
    x = chain(g, image_input(g, 3, 12), ("Conv2d", {"filters": 4}))[-1]
    for k in range(blocks):
        y = chain(g, x, ("Conv2d", {"filters": 4}), "BatchNorm", "ReLU", ("Conv2d", {"filters": 4}))
        for nid, suffix in zip(y, ("conv1", "bn", "relu", "conv2")):
            g.rename(nid, f"block{k}_{suffix}")
        add = merge(g, "Add", [y[-1], x], name=f"block{k}_add")
        x = then(g, add, "ReLU", name=f"block{k}_out")
    chain(g, x, "GlobalAvgPool", ("Dense", {"units": 3}), "ClassificationOutput")
    return g


def named(g: Graph, prefix: str) -> list[str]:
    return [nid for nid, n in g.nodes.items() if n.name.startswith(prefix)]


def same_analysis(a: Graph, b: Graph) -> None:
    """Both graphs analyse alike, block by block: shapes, counts, fields and problems."""
    ra, rb = analyze(a), analyze(b)
    assert set(ra.nodes) == set(rb.nodes)
    for nid in ra.nodes:
        x, y = ra.nodes[nid], rb.nodes[nid]
        assert (x.in_shapes, x.out_shape, x.trainable, x.frozen, x.macs, x.memory, x.rf) == (
            y.in_shapes, y.out_shape, y.trainable, y.frozen, y.macs, y.memory, y.rf)
    assert sorted(ra.all_problems(), key=repr) == sorted(rb.all_problems(), key=repr)


def _figures(info) -> tuple:
    return (info.in_shapes, info.out_shape, info.trainable, info.frozen, info.macs, info.memory, info.rf)


def wires(g: Graph) -> set:
    return {(e.src, e.src_port, e.dst, e.dst_port) for e in g.edges}


def flat_resnet18() -> Graph:
    """The ResNet-18 template opened into its blocks, each named by its path (``layer1_0_conv1``), numbered afresh."""
    flat = flatten(load_template("resnet18").graph)
    g, ids = Graph(), {}
    for path, n in flat.nodes.items():
        ids[path] = g.add_node(n.type, n.params, name=n.name.replace("/block", "_").replace("/", "_"), pos=n.pos).id
    for e in flat.edges:
        g.connect(ids[e.src], e.src_port, ids[e.dst], e.dst_port)
    return g


def resnet18_with_units() -> Graph:
    """The flat ResNet-18 with each block a unit (blocks alike share one) and each stage a unit."""
    g = flat_resnet18()
    for stage, filters in enumerate((64, 128, 256, 512), start=1):
        uses = []
        for i in range(2):
            kind = "DownBlock" if stage > 1 and i == 0 else "BasicBlock"
            g, uid = group(g, named(g, f"layer{stage}_{i}_"), f"{kind}{filters}")
            uses.append(uid)
        g, _ = group(g, uses, f"Stage{stage}")
    return g


# ---------------------------------------------------------------------- group and ungroup
@pytest.mark.parametrize("make, pick", [
    (residual_net, lambda g: named(g, "block0_")),
    (branching_graph, lambda g: [nid for nid, n in g.nodes.items() if n.type in ("BatchNorm", "ReLU", "Conv2d", "Add")][1:]),
    (lambda: load_template("inception").graph, lambda g: [nid for nid, n in g.nodes.items() if re.match(r"b\d_", n.name)]),
])
def test_group_then_ungroup_gives_the_graph_back(make, pick):
    g = make()
    chosen = pick(g)
    grouped, uid = group(g, chosen, "Part")
    assert set(grouped.nodes) == (set(g.nodes) - set(chosen)) | {uid}
    flat = analyze(flatten(grouped))
    original = analyze(g)
    for nid in g.nodes:  # every block, by its path once flattened, analyses as it did
        path = f"{uid}/{nid}" if nid in chosen else nid
        assert _figures(flat.nodes[path]) == _figures(original.nodes[nid])
    row = analyze(grouped).nodes[uid]
    assert row.trainable == sum(original.nodes[n].trainable for n in chosen)
    assert row.macs == sum(original.nodes[n].macs for n in chosen)
    back, ids = ungroup(grouped, uid)
    assert sorted(ids) == sorted(chosen) and list(back.nodes) == list(g.nodes)
    assert wires(back) == wires(g) and back.units == {}
    assert {nid: (n.name, n.params, n.pos) for nid, n in back.nodes.items()} == {
        nid: (n.name, n.params, n.pos) for nid, n in g.nodes.items()}
    same_analysis(back, g)
    assert generate(back).source == generate(g).source


def test_the_ports_are_the_wires_that_cross_the_border():
    g = residual_net(1)
    chosen = named(g, "block0_")
    grouped, uid = group(g, chosen, "Block")
    unit = grouped.nodes[uid].unit
    # the stem feeds conv1 and the Add's skip: one input port with two inner ends
    assert [len(p.ends) for p in unit.inputs] == [2]
    assert [p.ends for p in unit.outputs] == [((named(g, "block0_out")[0], 0),)]
    assert grouped.nodes[uid].input_ports() == ["in"] and len(grouped.nodes[uid].output_ports()) == 1


def test_group_refuses_what_cannot_be_one_block():
    g = residual_net(1)
    with pytest.raises(GraphError, match="stays outside a unit"):
        group(g, [next(iter(g.nodes))], "Bad")
    # conv1 and the Add without the chain between them: a path leaves the selection and comes back
    with pytest.raises(GraphError, match="lies on a path from the selection back into it"):
        group(g, named(g, "block0_conv1") + named(g, "block0_add"), "Bad")
    with pytest.raises(GraphError, match="select the blocks"):
        group(g, [], "Bad")
    grouped, _ = group(g, named(g, "block0_"), "Block")
    with pytest.raises(GraphError, match="these blocks differ"):
        group(grouped, [nid for nid, n in grouped.nodes.items() if n.type == "Dense"], "Block")


def test_flatten_names_inner_blocks_by_path():
    g = residual_net(2)
    g, b0 = group(g, named(g, "block0_"), "Block")
    g, b1 = group(g, named(g, "block1_"), "Block")  # the same network: a second use of the unit
    assert g.nodes[b0].unit is g.nodes[b1].unit and list(g.units) == ["Block"]
    g, stage = group(g, [b0, b1], "Stage")
    flat, ex = expand(g)
    conv = next(nid for nid, n in g.nodes[stage].unit.graph.nodes[b1].unit.graph.nodes.items() if n.name == "block0_conv1")
    assert f"{stage}/{b1}/{conv}" in flat.nodes
    assert flat.nodes[f"{stage}/{b1}/{conv}"].name == f"stage/{g.nodes[stage].unit.graph.nodes[b1].name}/block0_conv1"
    assert ex.owner[f"{stage}/{b1}/{conv}"] == stage
    assert len(flat) == len(residual_net(2))

    def rows(graph: Graph) -> list:
        result = analyze(graph)
        return sorted(repr((graph.nodes[nid].type, _figures(info))) for nid, info in result.nodes.items())

    assert rows(flat) == rows(residual_net(2))


# ---------------------------------------------------------------------- analysis of a unit
def test_a_unit_is_one_row_summing_its_blocks_and_matching_torch():
    g = resnet18_with_units()
    result = analyze(g)
    assert result.valid, result.errors()
    flat_result = analyze(flatten(g))
    compiled = compile_graph(g)
    assert result.total_trainable == flat_result.total_trainable == RESNET18_PARAMS
    assert result.total_macs == flat_result.total_macs and result.total_memory == flat_result.total_memory
    stages = [nid for nid, n in g.nodes.items() if n.type == UNIT_TYPE]
    assert len(stages) == 4
    attrs = {st.node_id: st.attr for st in compiled.code.plan.main.steps}
    for sid in stages:
        row = result.nodes[sid]
        assert (row.trainable, row.frozen) == torch_counts(compiled.module.get_submodule(attrs[sid]))
        members = [p for p in flat_result.nodes if p.startswith(sid + "/")]
        assert row.macs == sum(flat_result.nodes[m].macs for m in members) > 0
        assert row.rf is not None and row.rf == flat_result.nodes[expand(g)[1].outputs[sid][0][0]].rf
        kids = result.expand(sid)
        assert len(kids) == 2 and sum(info.trainable for _, info in kids) == row.trainable
        blocks = result.expand(kids[0][0])
        assert sum(info.macs for _, info in blocks) == kids[0][1].macs
    assert torch_counts(compiled.module)[0] == RESNET18_PARAMS


def test_a_problem_inside_a_unit_is_the_unit_blocks_naming_the_inner_block():
    g = residual_net(1)
    g, uid = group(g, named(g, "block0_"), "Block")
    # make the inner conv2 produce 5 maps: the Add inside the unit cannot add 5 and 4 maps
    inner = g.nodes[uid].unit.graph
    conv2 = next(nid for nid, n in inner.nodes.items() if n.name == "block0_conv2")
    inner.set_params(conv2, {"filters": 5})  # NOTE: only a test changes a definition in place
    result = analyze(g)
    problems = result.problems.get(uid, [])
    assert problems and any("block/block0_add" in p.message for p in problems)
    assert not result.valid


# ---------------------------------------------------------------------- repeat and make unique
def test_repeat_stacks_a_unit_whose_output_fits_its_input():
    g = residual_net(1)
    g, uid = group(g, named(g, "block0_"), "Block")
    before = analyze(g).nodes[uid].trainable
    stacked, ids = repeat(g, uid, 3)
    assert ids[0] == uid and len(ids) == 3
    assert all(stacked.nodes[i].unit is g.nodes[uid].unit for i in ids)
    assert [(e.src, e.dst) for e in stacked.edges if e.src in ids and e.dst in ids] == [(ids[0], ids[1]), (ids[1], ids[2])]
    result = analyze(stacked)
    assert result.valid and result.total_trainable == analyze(g).total_trainable + 2 * before
    assert torch_counts(compile_graph(stacked).module)[0] == result.total_trainable


def test_repeat_refuses_a_unit_that_changes_the_shape():
    g = residual_net(1)
    tail = [nid for nid, n in g.nodes.items() if n.type in ("GlobalAvgPool", "Dense")]
    g, uid = group(g, tail, "Head")
    with pytest.raises(GraphError, match=r"turns 4×12×12 into 3: only a unit whose output has its input's shape"):
        repeat(g, uid, 2)


def test_make_unique_detaches_one_use():
    g = residual_net(2)
    g, b0 = group(g, named(g, "block0_"), "Block")
    g, b1 = group(g, named(g, "block1_"), "Block")
    g2, name = make_unique(g, b1)
    assert name == "Block 2" and g2.nodes[b1].unit.name == "Block 2" and g2.nodes[b0].unit.name == "Block"
    assert wires(g2) == wires(g)
    same_analysis(g2, g)
    assert "class Block2(nn.Module)" in generate(g2).source and "class Block(nn.Module)" in generate(g2).source


# ---------------------------------------------------------------------- the document's events
def test_assign_announces_the_difference_and_undo_restores():
    doc = residual_net(1)
    before = doc.copy()
    kept = doc.nodes[next(iter(doc.nodes))]
    rec = Recorder(doc)
    grouped, uid = group(doc, named(doc, "block0_"), "Block")
    doc.assign(grouped)
    kinds = [e.kind for e in rec.events]
    assert kinds.count("node_removed") == 6 and kinds.count("node_added") == 1 and "unit_defined" in kinds
    assert doc.nodes[next(iter(doc.nodes))] is kept and uid in doc.nodes and wires(doc) == wires(grouped)
    rec.events.clear()
    doc.assign(before)  # undo
    assert wires(doc) == wires(before) and list(doc.nodes) == list(before.nodes) and doc.units == {}
    assert [e.kind for e in rec.events].count("node_added") == 6
    same_analysis(doc, before)


# ---------------------------------------------------------------------- code
def test_each_definition_is_one_class_and_state_dict_keys_follow_the_nesting():
    g = resnet18_with_units()
    code = generate(g)
    classes = re.findall(r"^class (\w+)\(nn.Module\):", code.source, re.MULTILINE)
    assert classes == ["BasicBlock64", "Stage1", "DownBlock128", "BasicBlock128", "Stage2", "DownBlock256",
                       "BasicBlock256", "Stage3", "DownBlock512", "BasicBlock512", "Stage4", "Net"]
    assert code.source.count("= BasicBlock64()") == 2
    model = load_class(code)()
    keys = list(model.state_dict())
    assert "stage1.basicblock64.layer1_0_conv1.weight" in keys
    assert "stage2.downblock128.layer2_0_downsample.weight" in keys
    # the compiled model is the exported class: its weights load into it exactly
    compiled = compile_graph(g)
    model.load_state_dict(compiled.module.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    model.eval(), compiled.module.eval()
    with torch.no_grad():
        assert torch.equal(model(x), compiled.module(x))


def test_the_probes_run_a_unit_network_block_by_block():
    g = residual_net(2)
    g, _ = group(g, named(g, "block0_"), "Block")
    g, b1 = group(g, named(g, "block1_"), "Block")
    compiled = compile_graph(g)
    model = compiled.module.eval()
    x = torch.randn(2, 3, 12, 12)
    tap = Tap(g, compiled.code)
    inner_conv = next(p for p in tap.order if p.startswith(b1 + "/") and tap.graph.nodes[p].type == "Conv2d")
    seen = {}
    module = model.get_submodule(compiled.code.attrs[inner_conv])
    hook = module.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        out = tap.run(model, x, compiled.code.output_ids + [inner_conv])
        expected = model(x)
    hook.remove()
    assert torch.equal(out[compiled.code.output_ids[0]], expected)
    assert torch.equal(out[inner_conv], seen["out"])


# ---------------------------------------------------------------------- project files
def test_a_project_with_units_round_trips(tmp_path):
    project = load_template("resnet18")
    project.graph = resnet18_with_units()
    # the probes name a block inside a unit by its path
    project.probes.layer = next(p for p in flatten(project.graph).nodes if p.endswith("/n67"))
    save_project(project, tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["version"] == VERSION == 2
    assert [u["name"] for u in doc["units"]] == [
        "BasicBlock64", "Stage1", "DownBlock128", "BasicBlock128", "Stage2", "DownBlock256", "BasicBlock256",
        "Stage3", "DownBlock512", "BasicBlock512", "Stage4"]
    back = load_project(tmp_path / "r.json")
    assert generate(back.graph).source == generate(project.graph).source
    same_analysis(back.graph, project.graph)
    save_project(back, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "r.json").read_bytes()


def test_a_version_1_file_migrates():
    path = TEMPLATE_DIR / "format-v1" / "perceptron.json"
    raw = json.loads(path.read_text())
    assert raw["version"] == 1 and "units" not in raw
    project = load_project(path)
    assert project.graph.units == {}
    doc = project_to_dict(project)
    assert doc["version"] == 2 and "units" not in doc
    assert {k: v for k, v in doc["graph"].items()} == raw["graph"]
    again = project_from_dict(doc)
    same_analysis(again.graph, project.graph)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["units"][0]["graph"].update(nodes=[], edges=[]), "needs at least one block"),
    (lambda d: next(n for n in d["graph"]["nodes"] if n["type"] == "Unit")["params"].update(unit="Nope"),
     'must name a unit defined before it, not "Nope"'),
    (lambda d: d["units"][0]["inputs"][0]["to"].append(["zz", 0]), "names block 'zz', which is not in the unit"),
    (lambda d: d["units"][0].update(extra=1), 'unknown field "extra"'),
    (lambda d: d["units"].append(dict(d["units"][0])), "two units are called 'Block'"),
    (lambda d: d.update(version=1), "a version 1 file has no 'units'"),
])
def test_a_bad_unit_is_refused_naming_it(change, message):
    g = residual_net(1)
    g, _ = group(g, named(g, "block0_"), "Block")
    project = load_template("perceptron")
    project.graph = g
    doc = json.loads(json.dumps(project_to_dict(project)))
    change(doc)
    with pytest.raises(ProjectError, match=re.escape(message)):
        project_from_dict(doc, "p.json")


def test_the_scheduled_probes_name_blocks_inside_units_by_path():
    from engine.config import ProbeConfig
    from engine.probes.runner import ProbeRunner

    g = residual_net(2)
    g, _ = group(g, named(g, "block0_"), "Block")
    g, b1 = group(g, named(g, "block1_"), "Block")
    compiled = compile_graph(g)
    model = compiled.module
    inner_relu = next(p for p, n in flatten(g).nodes.items() if p.startswith(b1 + "/") and n.type == "ReLU")
    x = torch.randn(6, 3, 12, 12)
    runner = ProbeRunner(g, compiled.code, x, config=ProbeConfig(layer=inner_relu, probe_samples=4))
    model.train()
    torch.nn.functional.cross_entropy(model(x), torch.zeros(6, dtype=torch.long)).backward()
    out = runner.run(model, step=1)
    assert out["problems"] == {}
    assert out["activations"]["node_id"] == inner_relu and out["activations"]["values"].shape == (4, 12, 12)
    grads = out["gradients"]
    convs = [p for p in compiled.code.attrs if flatten(g).nodes[p].type == "Conv2d"]
    assert set(convs) <= set(grads["node_ids"]) and all(n is not None for n in grads["node_ids"])
    assert out["cam"]["maps"].shape == (4, 12, 12)


def test_a_unit_block_names_a_definition_the_graph_holds():
    g = residual_net(1)
    with pytest.raises(GraphError, match="there is no unit called 'Block' in this network"):
        g.add_node(UNIT_TYPE, {"unit": "Block"})
    grouped, uid = group(g, named(g, "block0_"), "Block")
    extra = grouped.add_node(UNIT_TYPE, {"unit": "Block"})  # a second use, as a paste or an undone delete adds it
    assert extra.unit is grouped.nodes[uid].unit and extra.spec.title == "Block"
    other = residual_net(1)
    other, _ = group(other, named(other, "block0_conv1"), "Block")
    with pytest.raises(GraphError, match="a unit called 'Block' already exists"):
        grouped.define_unit(other.units["Block"])
    # a failed batch leaves the definitions as they were
    before = dict(grouped.units)
    with pytest.raises(GraphError), grouped.batch():
        grouped.define_unit(make_unique(grouped, uid)[0].units["Block 2"])
        grouped.add_node(UNIT_TYPE, {"unit": "Nope"})
    assert grouped.units == before


@pytest.mark.parametrize("name", ['x"); import os; os.system("touch PWNED") #', 'a"""b\\', "Net", "CLASSES", "nn"])
def test_a_unit_name_reaches_the_code_only_as_an_identifier_or_a_comment(name, tmp_path):
    import ast

    g = residual_net(1)
    g, _ = group(g, named(g, "block0_"), name)
    source = generate(g).source
    tree = ast.parse(source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert len(classes) == 2 and len(set(classes)) == 2 and "CLASSES" not in classes and classes[-1] == "Net"
    assert classes[0] not in ("Net", "CLASSES", "nn") and f"# Unit {name!r}" in source.splitlines()
    if '"' in name:  # user text with quotes: only in its comment
        assert [line for line in source.splitlines() if name in line] == [f"# Unit {name!r}"]
    model = load_class(generate(g))()
    assert torch_counts(model)[0] == analyze(g).total_trainable


def test_editing_a_definition_changes_every_use_also_inside_other_units():
    g = residual_net(2)
    g, b0 = group(g, named(g, "block0_"), "Block")
    g, b1 = group(g, named(g, "block1_"), "Block")
    g, stage = group(g, [b0], "Stage")
    inside = g.units["Block"].graph.copy()
    conv1 = next(nid for nid, n in inside.nodes.items() if n.name == "block0_conv1")
    inside.set_params(conv1, {"kernel_size": 5, "padding": 2})
    edited = redefine(g, "Block", inside)
    assert g.units["Block"].graph.nodes[conv1].params["kernel_size"] == 3  # the original is untouched
    new_block = edited.units["Block"]
    assert edited.nodes[b1].unit is new_block and edited.nodes[stage].unit is edited.units["Stage"]
    assert edited.units["Stage"].graph.nodes[b0].unit is new_block
    before, after = analyze(g), analyze(edited)
    grown = 2 * (4 * 4 * (25 - 9))  # each use's conv1: 4 → 4 maps, 5×5 instead of 3×3
    assert after.total_trainable == before.total_trainable + grown
    assert after.total_trainable == torch_counts(compile_graph(edited).module)[0]
    # the document follows with one params_changed per affected use
    rec = Recorder(g)
    g.assign(edited)
    assert sorted(e.data["node_id"] for e in rec.events if e.kind == "params_changed") == sorted([b1, stage])
    # a port whose inner end is gone is refused
    broken = new_block.graph.copy()
    broken.remove_node(conv1)
    with pytest.raises(GraphError, match="its input 'in' must still feed an open input"):
        redefine(edited, "Block", broken)

"""The compiled plan: one reading of the graph for code, probes and export; forward's depth-first order."""

from __future__ import annotations

import re

import pytest
import torch

from engine.codegen import generate
from engine.compile import compile_graph
from engine.graph import Graph
from engine.graphrules import topological_walk
from engine.plan import compile_plan
from engine.probes.base import Tap
from engine.templates import list_templates, load_template
from engine.units import flatten, group
from tests.engine.helpers import chain, image_input, merge
from tests.engine.test_export import _run_exported
from tests.engine.test_units import named, residual_net

SMALL = [t.name for t in list_templates() if t.name in ("mlp", "lenet5", "resnet", "inception", "unet", "localization")]


def test_a_depth_first_walk_finishes_each_branch_before_the_next():
    nodes = ["a", "b", "c", "b2", "c2", "m", "z"]
    edges = [("a", "b"), ("a", "c"), ("b", "b2"), ("c", "c2"), ("b2", "m"), ("c2", "m"), ("m", "z")]
    assert topological_walk(nodes, edges).order == ["a", "b", "c", "b2", "c2", "m", "z"]
    assert topological_walk(nodes, edges, depth_first=True).order == ["a", "b", "b2", "c", "c2", "m", "z"]
    # the first-wired branch goes first, whatever the order the blocks were added in
    edges = [("a", "c"), ("a", "b"), ("b", "b2"), ("c", "c2"), ("b2", "m"), ("c2", "m"), ("m", "z")]
    assert topological_walk(nodes, edges, depth_first=True).order == ["a", "c", "c2", "b", "b2", "m", "z"]


def test_forward_finishes_one_inception_branch_before_the_next():
    graph = load_template("inception").graph
    plan = compile_plan(graph)
    names = [graph.nodes[st.node_id].name for st in plan.main.steps]
    for branch in ("b1_", "b2_", "b3_", "b4_"):
        at = [i for i, n in enumerate(names) if n.startswith(branch)]
        assert at == list(range(at[0], at[0] + len(at))), (branch, names)
    source = generate(graph).source
    # a branch's chain reuses its first variable, as torchvision writes it
    assert "b2_reduce = self.b2_reduce_bn(b2_reduce)" in source


@pytest.mark.parametrize("name", SMALL)
def test_the_plan_runs_every_block_once_after_its_inputs(name):
    graph = load_template(name).graph
    plan = compile_plan(graph)
    order = [b.node_id for b in plan.blocks]
    assert sorted(order) == sorted(plan.flat.nodes)
    seen: set[str] = set()
    for b in plan.blocks:
        assert set(b.inputs) <= seen, b.node_id
        seen.add(b.node_id)
    source = generate(graph).source
    for st in plan.main.steps:
        if st.module is not None:
            assert f"self.{st.attr} = " in source
        assert f"{', '.join(st.outputs)} = {st.forward}" in source


def two_port_net() -> tuple[Graph, str]:
    """A unit with two inputs and two outputs, used once, its outputs merged outside."""
    g = Graph()
    x = image_input(g, 2, 8)
    a = chain(g, x, ("Conv2d", {"filters": 3}))[-1]
    b = chain(g, x, ("Conv2d", {"filters": 3, "kernel_size": 1, "padding": 0}))[-1]
    s = merge(g, "Add", [a, b], name="sum")
    r = chain(g, s, "ReLU")[-1]
    t = chain(g, s, "Tanh")[-1]
    p = merge(g, "Concatenate", [a, b], name="both")
    out = merge(g, "Concatenate", [r, t], name="pair")
    tail = merge(g, "Concatenate", [out, p], name="all")
    chain(g, tail, "GlobalAvgPool", ("Dense", {"units": 2}), "ClassificationOutput")
    inner = [s, r, t]
    return group(g, inner, "Mixer")


def test_a_unit_with_two_inputs_and_two_outputs():
    g, uid = two_port_net()
    unit = g.nodes[uid].unit
    assert [p.name for p in unit.inputs] == ["in1", "in2"] and [p.name for p in unit.outputs] == ["out1", "out2"]
    code = generate(g)
    assert "def forward(self, in1, in2):" in code.source
    assert re.search(r"mixer_1, mixer_2 = self\.mixer\(\w+, \w+\)", code.source)
    compiled = compile_graph(g)
    flat = compile_graph(flatten(g))
    flat.module.load_state_dict(compiled.module.state_dict())
    x = torch.randn(2, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(compiled.module(x), flat.module(x))
        tapped = Tap(g, compiled.code).run(compiled.module, x, compiled.code.output_ids)
    assert torch.equal(tapped[compiled.code.output_ids[0]], compiled.module(x))


@pytest.mark.slow
def test_an_exported_unit_network_reproduces_the_in_app_outputs(tmp_path):
    g = residual_net(2)
    g, b0 = group(g, named(g, "block0_"), "Block")
    g, b1 = group(g, named(g, "block1_"), "Block")
    g, _ = group(g, [b0, b1], "Stage")
    source = _run_exported(tmp_path, g, "Units", [torch.randn(3, 3, 12, 12)])
    assert re.findall(r"^class (\w+)\(nn.Module\):", source, re.MULTILINE) == ["Block", "Stage", "Units"]
    g2, _ = two_port_net()
    _run_exported(tmp_path, g2, "Ports", [torch.randn(3, 2, 8, 8)])

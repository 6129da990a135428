"""Freezing blocks (transfer learning): the trainable setting, its counts, code, training and files."""

import json

import numpy as np
import pytest
import torch

from engine.analysis import analyze
from engine.cli import analysis_to_dict, format_table
from engine.cli import main as cli_main
from engine.compile import compile_graph
from engine.graph import Edge, Graph
from engine.layers import registry
from engine.project import Project, project_from_dict, project_to_dict, save_project
from engine.templates import load_template
from engine.training.events import Failed, Finished, Started
from engine.training.trainer import Trainer, TrainingError, trained_parameters
from engine.units import flatten, redefine
from tests.engine.helpers import chain, gap_net, image_input, torch_counts, vector_input


def by_name(graph: Graph, name: str) -> str:
    return next(nid for nid, n in graph.nodes.items() if n.name == name)


def freeze(graph: Graph, *names: str) -> None:
    for name in names:
        graph.set_params(by_name(graph, name), {"trainable": False})


def requires_grad_counts(module: torch.nn.Module) -> tuple[int, int]:
    """(parameters that train, parameters frozen), as PyTorch sees them on a module."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params if not p.requires_grad)


def frozen_bn_net() -> tuple[Graph, dict[str, str]]:
    """gap_net with a BatchNorm after each convolution; the first conv and its BatchNorm frozen."""
    g, ids = gap_net(filters=8)
    bn1 = g.add_node("BatchNorm", {"trainable": False}, name="bn1").id
    bn2 = g.add_node("BatchNorm", {}, name="bn2").id
    for conv, bn, relu in ((ids["conv1"], bn1, ids["relu1"]), (ids["conv2"], bn2, ids["relu2"])):
        g.disconnect(Edge(conv, 0, relu, 0))
        g.connect(conv, 0, bn, 0)
        g.connect(bn, 0, relu, 0)
    g.set_params(ids["conv1"], {"trainable": False})
    return g, {**ids, "bn1": bn1, "bn2": bn2}


def resnet18_with_frozen_unit_conv() -> Graph:
    """The ResNet-18 template with conv1 of its BasicBlock64 definition frozen (both uses in layer1)."""
    g = load_template("resnet18").graph
    inside = g.units["BasicBlock64"].graph.copy()
    inside.set_params(by_name(inside, "conv1"), {"trainable": False})
    return redefine(g, "BasicBlock64", inside)


def lenet_frozen() -> Graph:
    g = load_template("lenet5").graph
    freeze(g, "conv1", "conv2")
    return g


def resnet_stem_frozen() -> Graph:
    g = load_template("resnet").graph
    freeze(g, "conv1", "bn1")
    return g


# ---------------------------------------------------------------------- the declaration
def _module_of(type_id: str) -> torch.nn.Module | None:
    """A compiled one-block network of ``type_id`` with its default params, on an image or a vector."""
    for shape in ((4, 8, 8), (8,)):
        g = Graph()
        x = image_input(g, *shape) if len(shape) == 3 else vector_input(g, shape[0])
        chain(g, x, type_id)
        if analyze(g).valid:
            return compile_graph(g).module
    return None


def test_every_type_with_parameters_and_only_those_has_the_trainable_setting():
    """Checked against the real modules: a type gets the setting exactly when its module has parameters."""
    checked = set()
    for spec in registry.all_specs():
        if spec.role in ("input", "head"):
            assert not registry.is_freezable(spec), spec.type_id  # NOTE: no module of their own
            continue
        module = _module_of(spec.type_id) if spec.role == "layer" else None
        if module is None:
            assert not registry.is_freezable(spec), spec.type_id  # NOTE: merges and shape-only blocks
            continue
        checked.add(spec.type_id)
        assert registry.is_freezable(spec) == any(True for _ in module.parameters()), spec.type_id
        if registry.is_freezable(spec):
            assert spec.param("trainable").default is True and spec.param("trainable").kind == "bool"
    assert {"Conv2d", "SeparableConv2d", "ConvTranspose2d", "Dense", "BatchNorm"} <= {
        t for t in checked if registry.is_freezable(registry.get(t))}


def test_the_tooltip_says_what_freezing_a_batchnorm_means():
    doc = registry.get("BatchNorm").param("trainable").doc
    assert "BatchNorm" in doc and "running statistics" in doc and "evaluation mode" in doc


# ---------------------------------------------------------------------- counts against PyTorch
@pytest.mark.parametrize("build", [lenet_frozen, resnet_stem_frozen, lambda: frozen_bn_net()[0],
                                   resnet18_with_frozen_unit_conv],
                         ids=["lenet5", "resnet-stem", "frozen-batchnorm", "resnet18-unit"])
def test_trainable_and_frozen_counts_are_pytorchs(build):
    g = build()
    a = analyze(g)
    module = compile_graph(g).module
    trained = sum(p.numel() for p in trained_parameters(module))
    assert a.total_trainable == trained == requires_grad_counts(module)[0]
    assert a.total_frozen_params == requires_grad_counts(module)[1] > 0
    assert a.total_params == sum(p.numel() for p in module.parameters())
    assert a.total_frozen == torch_counts(module)[1]  # NOTE: BatchNorm's buffers, counted as before
    flat_an = a.flat or a
    code = compile_graph(g).code
    for path, attr in code.attrs.items():
        info = flat_an.nodes[path]
        assert (info.trainable, info.frozen_params) == requires_grad_counts(module.get_submodule(attr)), path


def test_lenet5_figures():
    a = analyze(lenet_frozen())
    assert a.total_frozen_params == (6 * 25 + 6) + (16 * 6 * 25 + 16) == 2572
    assert a.total_trainable == 61_706 - 2572 and a.total_params == 61_706


def test_a_frozen_block_inside_a_unit_is_frozen_in_every_use():
    g = resnet18_with_frozen_unit_conv()
    flat = flatten(g)
    frozen = sorted(n.name for n in flat.nodes.values() if registry.is_frozen(n.params))
    assert frozen == ["layer1/block0/conv1", "layer1/block1/conv1"]
    module = compile_graph(g).module
    for use in ("block0", "block1"):
        assert not any(p.requires_grad for p in module.get_submodule(f"layer1.{use}.conv1").parameters())
        assert all(p.requires_grad for p in module.get_submodule(f"layer1.{use}.conv2").parameters())
    assert all(p.requires_grad for p in module.get_submodule("layer2.block0.conv1").parameters())
    row = analyze(g).nodes[by_name(g, "layer1")]
    assert row.frozen_params == 2 * 64 * 64 * 9 and row.trainable == row.params - row.frozen_params


def test_the_analyze_command_prints_trainable_and_non_trainable(tmp_path, capsys):
    g = lenet_frozen()
    table = format_table(g, analyze(g))
    assert "Trainable params: 59,134" in table and "Non-trainable params (frozen blocks): 2,572" in table
    assert "156 frozen" in table and "Total params: 61,706" in table
    data = analysis_to_dict(g, analyze(g))
    assert (data["totals"]["trainable"], data["totals"]["frozen"], data["totals"]["params"]) == (59_134, 2572, 61_706)
    p = load_template("lenet5")
    freeze(p.graph, "conv1", "conv2")
    save_project(p, tmp_path / "p.json")
    assert cli_main(["analyze", str(tmp_path / "p.json")]) == 0
    assert "Non-trainable params (frozen blocks): 2,572" in capsys.readouterr().out


# ---------------------------------------------------------------------- the module: code and export
def test_the_module_freezes_its_blocks_and_keeps_a_frozen_batchnorm_in_eval_mode():
    g, ids = frozen_bn_net()
    compiled = compile_graph(g)
    module, attrs = compiled.module, compiled.code.attrs
    src = compiled.code.source
    assert f"self.{attrs[ids['conv1']]}.requires_grad_(False)" in src
    assert f"self.{attrs[ids['bn1']]}.eval()" in src and f"self.{attrs[ids['bn2']]}.eval()" not in src
    module.train()
    bn1, bn2 = module.get_submodule(attrs[ids["bn1"]]), module.get_submodule(attrs[ids["bn2"]])
    assert not bn1.training and bn2.training and module.training
    module.eval()
    assert not bn2.training and not module.training


def test_an_unfrozen_network_writes_the_code_it_did():
    g, _ = gap_net()
    src = compile_graph(g).code.source
    assert "requires_grad_" not in src and "def train(" not in src


def test_the_exported_module_keeps_frozen_weights_in_a_plain_training_loop():
    """The user's own loop (every parameter in the optimizer, train mode) leaves the frozen block as it was."""
    g, ids = frozen_bn_net()
    compiled = compile_graph(g)
    namespace: dict = {}
    exec(compile(compiled.code.source, "<exported>", "exec"), namespace)  # noqa: S102 - the generated module
    torch.manual_seed(0)
    model = namespace[compiled.code.class_name]()
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if k.split(".")[0] in (compiled.code.attrs[ids["conv1"]], compiled.code.attrs[ids["bn1"]])}
    before_bn2 = model.get_submodule(compiled.code.attrs[ids["bn2"]]).running_mean.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    model.train()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.randn(8, 3, 16, 16)), torch.randint(0, 3, (8,))).backward()
        opt.step()
    after = model.state_dict()
    assert frozen and all(torch.equal(v, after[k]) for k, v in frozen.items())
    assert not torch.equal(before_bn2, after[f"{compiled.code.attrs[ids['bn2']]}.running_mean"])


# ---------------------------------------------------------------------- training
def mlp_with_batchnorm(epochs: int = 6) -> tuple[Project, dict[str, str]]:
    """The MLP template's spiral data through Dense → BatchNorm (both frozen) → ReLU → Dense → BatchNorm → ReLU → Dense."""
    p = load_template("mlp")
    p.data.samples = 400
    p.training.epochs = epochs
    p.training.lr = 0.01
    g = Graph()
    x = vector_input(g, 2)
    names = ("fc1", "bn1", "relu1", "fc2", "bn2", "relu2", "fc3", "out")
    steps = [("Dense", {"units": 32, "trainable": False}), ("BatchNorm", {"trainable": False}), "ReLU",
             ("Dense", {"units": 32}), "BatchNorm", "ReLU", ("Dense", {"units": 3}), "ClassificationOutput"]
    ids = dict(zip(names, chain(g, x, *steps)))
    p.graph = g
    return p, ids


def test_training_leaves_frozen_weights_and_statistics_bit_identical_and_still_learns():
    p, ids = mlp_with_batchnorm()
    trainer = Trainer(p)
    start = None
    events = []
    for ev in trainer.events():
        if isinstance(ev, Started):
            start = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        events.append(ev)
    assert isinstance(events[-1], Finished), events[-1]
    attrs = trainer.code.attrs
    end = trainer.model.state_dict()
    frozen = [k for k in start if k.split(".")[0] in (attrs[ids["fc1"]], attrs[ids["bn1"]])]
    moving = [k for k in start if k.split(".")[0] in (attrs[ids["fc2"]], attrs[ids["bn2"]], attrs[ids["fc3"]])]
    assert {k.rsplit(".", 1)[1] for k in frozen} >= {"weight", "bias", "running_mean", "running_var"}
    for k in frozen:
        assert torch.equal(start[k], end[k]), k
    for k in moving:
        if not k.endswith("num_batches_tracked"):
            assert not torch.equal(start[k], end[k]), k
    in_optimizer = {id(q) for group in trainer.optimizer.param_groups for q in group["params"]}
    for name, q in trainer.model.named_parameters():
        assert (id(q) in in_optimizer) == q.requires_grad == (name.split(".")[0] not in (attrs[ids["fc1"]], attrs[ids["bn1"]]))
    losses = [e.train_loss for e in events if type(e).__name__ == "EpochDone"]
    assert losses[-1] < 0.8 * losses[0]
    assert events[0].params == analyze(p.graph).total_trainable


def test_a_network_with_every_block_frozen_says_there_is_nothing_to_train():
    p = load_template("mlp")
    p.data.samples = 100
    p.training.epochs = 1
    for nid, node in p.graph.nodes.items():
        if registry.is_freezable(node.spec):
            p.graph.set_params(nid, {"trainable": False})
    (only,) = list(Trainer(p).events())
    assert isinstance(only, Failed) and "every block with weights is frozen" in only.message
    with pytest.raises(TrainingError, match="Trainable setting is off"):
        trained_parameters(compile_graph(p.graph).module)


# ---------------------------------------------------------------------- the project file
def test_saved_only_when_off_and_read_back():
    p = load_template("lenet5")
    plain = project_to_dict(p)
    assert all("trainable" not in n["params"] for n in plain["graph"]["nodes"])
    freeze(p.graph, "conv1")
    data = project_to_dict(p)
    saved = {n["name"]: n["params"] for n in data["graph"]["nodes"]}
    assert saved["conv1"]["trainable"] is False and "trainable" not in saved["conv2"]
    assert data["version"] == plain["version"]
    again = project_from_dict(json.loads(json.dumps(data)))
    assert registry.is_frozen(again.graph.nodes[by_name(again.graph, "conv1")].params)
    assert again.graph.nodes[by_name(again.graph, "conv2")].params["trainable"] is True


def test_a_frozen_block_in_a_unit_definition_is_saved_and_read_back():
    p = load_template("resnet18")
    p.graph = resnet18_with_frozen_unit_conv()
    data = json.loads(json.dumps(project_to_dict(p)))
    again = project_from_dict(data)
    inner = again.graph.units["BasicBlock64"].graph
    assert registry.is_frozen(inner.nodes[by_name(inner, "conv1")].params)
    assert analyze(again.graph).total_frozen_params == 2 * 64 * 64 * 9


def test_a_bad_trainable_value_is_refused_with_its_name():
    p = load_template("lenet5")
    data = project_to_dict(p)
    data["graph"]["nodes"][1]["params"]["trainable"] = "no"
    with pytest.raises(Exception, match="trainable"):
        project_from_dict(data)


def test_the_gradient_view_names_a_frozen_layer_rather_than_leaving_a_gap():
    from engine.training.events import ProbesDone

    p = load_template("lenet5")
    frozen = next(nid for nid, n in p.graph.nodes.items() if n.name == "conv1")
    p.graph.set_params(frozen, {"trainable": False})
    p.data.samples, p.training.epochs, p.probes.every_batches = 64, 1, 1
    grads = next(e.results["gradients"] for e in Trainer(p, probes=True).events()
                 if isinstance(e, ProbesDone) and "gradients" in e.results)
    assert grads["frozen"] == [nid == frozen for nid in grads["node_ids"]] and any(grads["frozen"])
    for name, flag, norm in zip(grads["layers"], grads["frozen"], grads["grad_norm"]):
        assert name.endswith(" ❄") == flag and np.isnan(norm) == flag  # no gradient reaches a frozen layer

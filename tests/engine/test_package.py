"""The training package: export it, train it with ``python train.py`` and under torchrun, go on after a stop.

Every figure train.py reports is checked against the engine's own computation: the run's checkpoint is
loaded into the network the engine compiles, and its loss and score are measured again on the splits the
engine makes from the project (not on the package's copy of them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main as cli_main
from engine.compile import compile_graph
from engine.data import Augmenter, Normalizer, load_dataset, split_dataset
from engine.graph import Graph
from engine.package import TRAIN_SCRIPT, PackageError, export_package, split_indices, train_script
from engine.project import Project, load_project
from engine.templates import load_template
from engine.tasks import head_spec
from engine.training.objectives import MetricSum, head_loss
from engine.training.runs import read_run
from engine.training.trainer import make_optimizer, make_scheduler
from tests.engine.helpers import chain, vector_input

TIMEOUT = 600  # a safety net for a hung child, not a measure of speed
#: What a training package's script must never need.
FORBIDDEN = ("engine", "designer", "sklearn", "PIL", "PySide6", "pyqtgraph")

#: Runs train.py in a Python where the forbidden packages cannot be imported, then checks none was.
ISOLATED = textwrap.dedent(
    """
    import importlib.abc, importlib.machinery, runpy, sys
    FORBIDDEN = {forbidden!r}

    class Refuse(importlib.abc.Loader):
        def create_module(self, spec):
            raise ImportError(f"blocked in this test: {{spec.name}}")

        def exec_module(self, module):
            raise ImportError(f"blocked in this test: {{module.__name__}}")

    class Block(importlib.abc.MetaPathFinder):
        # NOTE: found, but never loaded: torch asks whether some packages exist without importing them
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                return importlib.machinery.ModuleSpec(name, Refuse())
            return None

    sys.meta_path.insert(0, Block())
    sys.argv = ["train.py", *sys.argv[1:]]
    code = 0
    try:
        runpy.run_path("train.py", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    leaked = sorted({{m.split(".")[0] for m in sys.modules}} & set(FORBIDDEN))
    if leaked:
        print("imported:", leaked, file=sys.stderr)
        code = 3
    sys.exit(code)
    """
).format(forbidden=FORBIDDEN)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def run_alone(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``python train.py ARGS`` in ``folder``, in an isolated Python with only torch and numpy to import."""
    return subprocess.run([sys.executable, "-I", "-c", ISOLATED, *args], cwd=folder, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)


def run_torchrun(folder: Path, processes: int, *args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node=N train.py ARGS`` (torchrun is this module's entry point)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "train.py", *args]
    return subprocess.run(command, cwd=folder, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


def run_here(folder: Path, *args: str) -> int:
    """train.py's ``main`` in this process (one process, no torchrun), from the package's own copy."""
    spec = importlib.util.spec_from_file_location(f"train_{abs(hash(folder))}", folder / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # NOTE: as the children get (OMP_NUM_THREADS=1): two threads on a busy 2-core machine crawl
    try:
        return module.main(list(args))
    finally:
        torch.set_num_threads(threads)


def lenet(augment: bool = True, test_fraction: float = 0.15) -> Project:
    project = load_template("lenet5")
    if not augment:
        project.data.augment = {}
    project.data.test_fraction = test_fraction
    project.training.device = "cpu"
    return project


def box_only() -> Graph:
    """A vector Input straight into a Box output: a head train.py cannot train."""
    g = Graph()
    chain(g, vector_input(g, 4), "BoxOutput")
    return g


def regression_mlp() -> Project:
    g = Graph()
    chain(g, vector_input(g, 1), ("Dense", {"units": 16}), "Tanh", ("Dense", {"units": 1}), "RegressionOutput")
    project = Project(name="Sine", graph=g)
    project.data.dataset, project.data.task, project.data.samples = "regression1d", "regression", 300
    project.training.lr, project.training.batch_size, project.training.device = 0.01, 32, "cpu"
    return project


def binary_perceptron() -> Project:
    project = load_template("perceptron")
    project.data.augment = {"noise": 0.1}  # a photometric option on vectors: as the window does it
    project.training.device = "cpu"
    return project


@pytest.fixture(scope="module")
def lenet_package(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lenet") / "package"
    export_package(lenet(), folder)
    return folder


@pytest.fixture()
def package(lenet_package, tmp_path) -> Path:
    """A fresh copy of the LeNet-5 package (runs write into it)."""
    return Path(shutil.copytree(lenet_package, tmp_path / "package"))


def engine_scores(project: Project, checkpoint: dict, split: str) -> tuple[float, dict[str, float]]:
    """Loss and metrics of a checkpoint on a split, computed by the engine from the project alone."""
    compiled = compile_graph(project.graph, project.name)
    model = compiled.module
    model.load_state_dict(checkpoint["model"])
    model.eval()
    data = load_dataset(project.data, compiled.code.input_shapes[0])
    parts = dict(zip(("train", "val", "test"),
                     split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)))
    if checkpoint["normalizer"] is not None:
        parts = {k: Normalizer.from_dict(checkpoint["normalizer"]).apply(v) for k, v in parts.items()}
    (head,) = [n for n in project.graph.nodes.values() if n.spec.role == "head"]
    target = parts[split].targets[head_spec(head.type).target]
    with torch.no_grad():
        out = model(parts[split].x)
    metrics = MetricSum(head.type)
    metrics.update(out, target)
    return float(head_loss(head.type, out, target)), metrics.result()


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stdout.strip().splitlines()[-1]


def load_train_script():
    """train.py as a module, to check its parts against the engine's."""
    spec = importlib.util.spec_from_file_location("package_train", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------- the package
def test_the_package_holds_the_raw_data_and_the_windows_splits(lenet_package):
    project = lenet()
    data = load_dataset(project.data, (1, 32, 32))
    splits = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)
    with np.load(lenet_package / "data.npz") as npz:
        assert np.array_equal(npz["x"], data.x.numpy())  # raw: as the data set gives it, not normalized
        for name, part in zip(("train", "val", "test"), splits):
            assert np.array_equal(npz["x"][npz[name]], part.x.numpy())
            assert np.array_equal(npz["label"][npz[name]], part.targets["label"].numpy())
        assert sorted(npz.files) == ["label", "test", "train", "val", "x"]
    config = json.loads((lenet_package / "config.json").read_text())
    assert config["format"] == "net-designer-package" and config["model"]["class"] == "LeNet5"
    assert config["training"] == project.training.to_dict()
    assert config["data"]["augment"] == project.data.augment and config["data"]["seed"] == project.data.seed
    assert config["data"]["split_sizes"] == {"train": len(splits[0]), "val": len(splits[1]), "test": len(splits[2])}
    assert config["head"] == {"type": "ClassificationOutput", "name": "output", "target": "label",
                              "loss": "cross-entropy", "metric": "accuracy", "weight": 1.0}
    source = (lenet_package / "model.py").read_text()
    assert 'register_buffer("input_mean", torch.tensor([0.0])' in source  # identity until train.py fits it
    assert (lenet_package / "train.py").read_text(encoding="utf-8") == train_script()
    assert load_project(lenet_package / "project.json").graph.nodes.keys() == project.graph.nodes.keys()
    assert not (lenet_package / "model.pt").exists()


def test_split_indices_are_split_datasets_choice_for_labels_and_values():
    for project in (lenet(), regression_mlp()):
        shape = compile_graph(project.graph).code.input_shapes[0]
        data = load_dataset(project.data, shape)
        parts = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)
        for idx, part in zip(split_indices(data, project), parts):
            assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
            assert torch.equal(data.x[torch.from_numpy(idx)], part.x)


def test_a_run_exports_its_weights_and_normalization(tmp_path):
    from engine.codegen import InputSpec

    project = regression_mlp()
    model = compile_graph(project.graph).module
    spec = InputSpec(mean=(0.25,), std=(2.0,), value_range=(-3.0, 3.0))
    written = export_package(project, tmp_path / "p", state_dict=model.state_dict(), input_spec=spec)
    assert [p.name for p in written] == ["model.py", "model.pt", "train.py", "config.json", "data.npz", "project.json"]
    weights = torch.load(tmp_path / "p" / "model.pt", weights_only=True)
    assert weights["input_mean"].flatten().tolist() == [0.25] and weights["input_std"].flatten().tolist() == [2.0]
    export_package(project, tmp_path / "p")  # again, untrained: the run's weights do not stay behind
    assert not (tmp_path / "p" / "model.pt").exists()


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda p: setattr(p, "graph", box_only()), "is a Box output"),
        (lambda p: setattr(p, "graph", load_template("localization").graph), "trains one output block"),
        (lambda p: p.graph.remove_node(next(n for n, v in p.graph.nodes.items() if v.spec.role == "head")),
         "has no output block"),
    ],
)
def test_networks_train_py_cannot_train_are_refused_before_any_file(tmp_path, change, words):
    project = lenet()
    change(project)
    with pytest.raises(PackageError, match=words):
        export_package(project, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_a_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(PackageError, match="already holds other files"):
        export_package(regression_mlp(), tmp_path)
    with pytest.raises(PackageError, match="is a file"):
        export_package(regression_mlp(), tmp_path / "notes.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_command_line_writes_a_package(tmp_path, capsys):
    path = tmp_path / "sine.json"
    from engine.project import save_project

    save_project(regression_mlp(), path)
    assert cli_main(["export", str(path), "--package", str(tmp_path / "pkg")]) == 0
    out = capsys.readouterr().out
    assert "wrote " + str(tmp_path / "pkg" / "train.py") in out and "torchrun --nproc-per-node=N train.py" in out
    assert cli_main(["export", str(path), "--package", str(tmp_path / "pkg")]) == 0  # writing it again is fine
    with pytest.raises(SystemExit) as exit_:
        cli_main(["export", str(path)])
    assert exit_.value.code == 2
    assert "one of the arguments -o/--output --package is required" in capsys.readouterr().err


# ---------------------------------------------------------------------- train.py's parts against the engine's
def test_train_py_augments_as_the_window_does():
    script = load_train_script()
    x = torch.rand(6, 3, 12, 10)
    for spec in ({"flip": True, "shift": 0.1, "rotation": 20.0, "scale": 0.2},
                 {"noise": 0.3, "brightness": 0.5, "contrast": 0.4}, {"mixup": 0.4, "shift": 0.05}):
        ours = script.Augment(spec)(x, torch.Generator().manual_seed(3))
        theirs = Augmenter(spec)(x, {"label": torch.arange(6)}, torch.Generator().manual_seed(3))
        assert torch.equal(ours[0], theirs[0])
        assert (ours[1] is None) == (theirs[2] is None)
        if ours[1] is not None:
            assert torch.equal(ours[1][0], theirs[2][0]) and ours[1][1] == theirs[2][1]


def test_train_py_normalizes_and_scores_as_the_engine_does():
    script = load_train_script()
    gen = torch.Generator().manual_seed(0)
    for x in (torch.rand(50, 3, 5, 4, generator=gen) * 7, torch.cat([torch.ones(20, 1), torch.randn(20, 2)], 1)):
        from engine.data import Dataset

        ours = script.fit_normalization(x)
        theirs = Normalizer.fit(Dataset(x, {}, None, "t"))
        assert torch.equal(ours[0], theirs.mean) and torch.equal(ours[1], theirs.std)
    cases = {
        "ClassificationOutput": (torch.randn(40, 4, generator=gen), torch.randint(0, 4, (40,), generator=gen)),
        "BinaryOutput": (torch.randn(40, 1, generator=gen), torch.randint(0, 2, (40, 1), generator=gen).float()),
        "RegressionOutput": (torch.randn(40, 2, generator=gen), torch.randn(40, 2, generator=gen)),
    }
    for kind, (out, target) in cases.items():
        scores, reference = script.Scores(kind, torch.device("cpu")), MetricSum(kind)
        for part in range(0, 40, 15):  # several batches, as an evaluation adds them
            o, t = out[part : part + 15], target[part : part + 15]
            scores.add(script.head_loss(kind, o, t), o, t)
            reference.update(o, t)
        loss, metrics = scores.result()
        assert loss == pytest.approx(float(head_loss(kind, out, target)), rel=1e-6)
        assert metrics.keys() == reference.result().keys()
        for key, value in reference.result().items():
            assert metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("schedule", ["none", "step", "cosine", "plateau"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad"])
def test_train_py_optimizes_and_schedules_as_the_engine_does(optimizer, schedule):
    script = load_train_script()
    project = Project()
    cfg = project.training
    cfg.optimizer, cfg.schedule, cfg.lr, cfg.weight_decay, cfg.step_size, cfg.gamma = optimizer, schedule, 0.1, 1e-3, 3, 0.5
    cfg.momentum, cfg.nesterov = 0.8, True
    rates = []
    for make_opt, make_sched in ((make_optimizer, make_scheduler), (script.make_optimizer, script.make_scheduler)):
        param = torch.nn.Parameter(torch.ones(3))
        settings = cfg if make_opt is make_optimizer else cfg.to_dict()
        opt = make_opt([param], settings)
        sched = make_sched(opt, settings, 7)
        seen = []
        for epoch in range(9):
            param.grad = torch.full((3,), 0.5)
            opt.step()
            seen.append((opt.param_groups[0]["lr"], param.detach().clone()))
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(1.0)  # never better: the rate drops after the patience
            elif sched is not None:
                sched.step()
        rates.append(seen)
        assert type(opt) is type(make_optimizer([torch.nn.Parameter(torch.ones(1))], cfg))
    for (lr_a, p_a), (lr_b, p_b) in zip(*rates):
        assert lr_a == lr_b and torch.equal(p_a, p_b)


# ---------------------------------------------------------------------- train.py, run
@pytest.mark.slow
def test_train_py_alone_writes_a_run_the_window_and_explain_read(package, tmp_path, capsys):
    result = run_alone(package, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    run = read_run(package / "run")
    assert run.status == "finished" and [r["epoch"] for r in run.history] == [1]
    assert run.summary["epochs_run"] == 1 and run.epochs == 1
    checkpoint = torch.load(package / "run" / "last.pt", weights_only=True)
    assert sorted(checkpoint) == ["best_epoch", "best_loss", "data", "epoch", "model", "normalizer", "optimizer",
                                  "rng", "scheduler"]
    project = lenet()
    train = split_dataset(load_dataset(project.data, (1, 32, 32)), 0.15, 0.15, 0)[0]
    assert checkpoint["normalizer"] == Normalizer.fit(train).to_dict()  # fitted on the training split
    # The reported figures, measured again by the engine on the splits it makes itself.
    test_loss, test = engine_scores(project, checkpoint, "test")
    assert run.summary["test_loss"] == pytest.approx(test_loss, rel=1e-5)
    assert run.summary["test"]["accuracy"] == pytest.approx(test["accuracy"], abs=1e-12)
    assert last_line(result) == f"test accuracy {test['accuracy']:.4f}  (loss {test_loss:.4f}, 270 samples)"
    val_loss, val = engine_scores(project, checkpoint, "val")
    assert run.history[0]["val_loss"] == pytest.approx(val_loss, rel=1e-5)
    assert run.history[0]["val_accuracy"] == pytest.approx(val["accuracy"], abs=1e-12)
    assert run.history[0]["train_loss"] == pytest.approx(float(np.mean(run.batch_losses())), rel=1e-6)
    # model.pt goes into model.py as it is, and that module takes raw data.
    spec = importlib.util.spec_from_file_location("exported", package / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = module.LeNet5()
    exported.load_state_dict(torch.load(package / "run" / "model.pt", weights_only=True))
    raw = load_dataset(project.data, (1, 32, 32)).x[:64]
    trained = compile_graph(project.graph).module
    trained.load_state_dict(checkpoint["model"])
    with torch.no_grad():
        assert torch.allclose(exported.eval()(raw), trained.eval()(Normalizer.from_dict(checkpoint["normalizer"]).transform(raw)),
                              atol=1e-5)
    # main.py explain takes the rank-0 checkpoint.
    code = cli_main(["explain", str(package / "project.json"), "--weights", str(package / "run" / "last.pt"),
                     "--input", "0", "-o", str(tmp_path / "cam.png")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "cam.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("make, metric", [(binary_perceptron, "accuracy"), (regression_mlp, "r2")])
def test_train_py_trains_binary_and_regression_outputs(tmp_path, capsys, make, metric):
    project = make()
    export_package(project, tmp_path / "p")
    assert run_here(tmp_path / "p", "--epochs", "3") == 0
    out = capsys.readouterr().out
    run = read_run(tmp_path / "p" / "run")
    checkpoint = torch.load(tmp_path / "p" / "run" / "last.pt", weights_only=True)
    test_loss, test = engine_scores(project, checkpoint, "test")
    assert run.summary["test_loss"] == pytest.approx(test_loss, rel=1e-5)
    for key, value in test.items():
        assert run.summary["test"][key] == pytest.approx(value, rel=1e-5, abs=1e-9)
    assert out.strip().splitlines()[-1].startswith(f"test {metric} {test[metric]:.4f}")
    val_loss, val = engine_scores(project, checkpoint, "val")
    assert run.history[-1]["val_loss"] == pytest.approx(val_loss, rel=1e-5)


@pytest.mark.slow
def test_early_stopping_ends_the_run_and_keeps_the_best_epoch(tmp_path, capsys):
    project = regression_mlp()
    project.training.early_stopping_patience = 2
    project.training.lr = 1e-30  # NOTE: too small to change a float32 weight: the validation loss never improves
    export_package(project, tmp_path / "p")
    assert run_here(tmp_path / "p", "--epochs", "10") == 0
    assert "early stopping at epoch 3: the best validation loss was at epoch 1" in capsys.readouterr().out
    run = read_run(tmp_path / "p" / "run")
    assert run.status == "early stop" and [r["epoch"] for r in run.history] == [1, 2, 3]
    assert run.summary["best_epoch"] == 1 and run.summary["epochs_run"] == 3
    assert torch.load(tmp_path / "p" / "run" / "best.pt", weights_only=True)["epoch"] == 1


@pytest.mark.slow
def test_torchrun_trains_the_lenet5_package_with_two_processes_on_the_cpu(package):
    result = run_torchrun(package, 2, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "CPU, 2 processes" in result.stdout and "global batch 64 (32 per process)" in result.stdout
    assert result.stdout.count("epoch   1/1") == 1  # process 0 alone reports
    run = read_run(package / "run")
    assert run.status == "finished" and [r["epoch"] for r in run.history] == [1]
    assert run.summary["device"] == "CPU, 2 processes"
    checkpoint = torch.load(package / "run" / "last.pt", weights_only=True)
    assert len(checkpoint["rng"]["ranks"]) == 2  # every process's generators, to go on exactly
    test_loss, test = engine_scores(lenet(), checkpoint, "test")  # summed over both processes' halves
    assert run.summary["test_loss"] == pytest.approx(test_loss, rel=1e-5)
    assert run.summary["test"]["accuracy"] == pytest.approx(test["accuracy"], abs=1e-12)


@pytest.mark.slow
def test_one_and_two_processes_reach_the_same_losses(tmp_path):
    """With the same seed and global batch, two processes take the same steps as one.

    DistributedSampler draws one permutation per epoch from ``seed + epoch``, whatever the number of
    processes, and deals it round-robin: at step k, process r takes the samples at positions
    ``k·B + r, k·B + r + 2, ...`` of it, so the two halves together are exactly the one process's
    batch k. DDP averages the halves' gradients, which is the whole batch's mean gradient. The
    project has no dropout, BatchNorm or augmentation (which would draw different random numbers per
    process), and its 1216 training samples fill 19 whole batches of 64 (with a partial last batch the
    sampler would repeat a sample to even out the halves). What is left is the order of float32
    additions (a half's sum, then the all-reduce), about 1e-7 relative per step; after two epochs of
    Adam the losses agreed to 5e-8 relative when this was written. The tolerance, 1e-4 relative, leaves
    room for other CPUs and BLAS libraries while any real difference in the batches (1e-2 or more
    after one epoch) fails it.
    """
    export_package(lenet(augment=False, test_fraction=0.173), tmp_path / "p")
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    assert config["data"]["split_sizes"]["train"] % 64 == 0
    one = run_alone(tmp_path / "p", "--epochs", "2", "--out", "one")
    two = run_torchrun(tmp_path / "p", 2, "--epochs", "2", "--out", "two")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    a, b = read_run(tmp_path / "p" / "one"), read_run(tmp_path / "p" / "two")
    for row_a, row_b in zip(a.history, b.history, strict=True):
        for key in ("train_loss", "val_loss"):
            assert row_a[key] == pytest.approx(row_b[key], rel=1e-4)
        assert row_a["step"] == row_b["step"]
    assert a.summary["test_loss"] == pytest.approx(b.summary["test_loss"], rel=1e-4)
    assert abs(a.summary["test"]["accuracy"] - b.summary["test"]["accuracy"]) <= 1 / 311  # one sample at most
    assert np.allclose(a.batch_losses(), b.batch_losses(), rtol=1e-4)


@pytest.mark.slow
def test_a_run_goes_on_after_a_stop_as_if_it_never_stopped(package, capsys):
    assert run_here(package, "--epochs", "1") == 0
    capsys.readouterr()
    assert run_here(package, "--epochs", "2") == 0  # the same folder (run/): it goes on
    out = capsys.readouterr().out
    assert "going on after epoch 1" in out and "epoch   1/" not in out and "epoch   2/2" in out
    run = read_run(package / "run")
    assert [r["epoch"] for r in run.history] == [1, 2] and run.status == "finished"
    assert len(run.batch_losses()) == run.history[-1]["step"]
    assert run_here(package, "--epochs", "2", "--out", str(package / "straight")) == 0
    resumed = torch.load(package / "run" / "last.pt", weights_only=True)["model"]
    uninterrupted = torch.load(package / "straight" / "last.pt", weights_only=True)["model"]
    for key, value in uninterrupted.items():  # augmentation and the cosine schedule included
        assert torch.allclose(resumed[key], value, atol=1e-6), key
    straight = read_run(package / "straight")
    assert straight.history[-1]["val_loss"] == pytest.approx(run.history[-1]["val_loss"], rel=1e-6)
    assert np.allclose(straight.batch_losses(), run.batch_losses(), rtol=1e-6)
    capsys.readouterr()
    assert run_here(package, "--epochs", "2") == 2
    assert "give --epochs with more than 2" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_run_goes_on_from_its_last_checkpoint(package):
    """As torchrun restarts a failed job: the same command, the same folder."""
    command = [sys.executable, "-I", "-c", ISOLATED, "--epochs", "50"]
    child = subprocess.Popen(command, cwd=package, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:  # NOTE: an epoch's line is printed after its checkpoint is written
            if line.startswith("epoch "):
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(TIMEOUT)
        child.stdout.close()
        child.stderr.close()
    interrupted = read_run(package / "run")
    assert interrupted.status == "interrupted"
    kept = torch.load(package / "run" / "last.pt", weights_only=True)["epoch"]
    assert kept >= 1
    again = run_alone(package, "--epochs", str(kept + 1))
    assert again.returncode == 0, again.stderr
    assert f"going on after epoch {kept}" in again.stdout
    run = read_run(package / "run")
    assert [r["epoch"] for r in run.history] == list(range(1, kept + 2)) and run.status == "finished"


@pytest.mark.slow
def test_bad_arguments_and_a_missing_data_file_are_one_line_and_exit_2(package):
    for args, words in ((["--epochs", "0"], "--epochs: must be a whole number of at least 1, not '0'"),
                        (["--epochs", "ten"], "--epochs: must be a whole number of at least 1, not 'ten'"),
                        (["--batch-size", "-4"], "--batch-size: must be a whole number of at least 1, not '-4'")):
        result = run_alone(package, *args)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and words in result.stderr
    (package / "data.npz").rename(package / "elsewhere.npz")
    result = run_alone(package, "--epochs", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("train.py: ") and "data.npz: the data file is missing" in result.stderr
    assert not (package / "run").exists() or not (package / "run" / "last.pt").exists()

"""Small builders for engine tests: graphs from short recipes, event recorders, torch counts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from engine.graph import Graph, GraphEvent


def image_input(g: Graph, c: int, h: int, w: int | None = None, **kw) -> str:
    """Add an image Input block; returns its id."""
    return g.add_node("Input", {"kind": "image", "channels": c, "height": h, "width": w or h}, **kw).id


def vector_input(g: Graph, features: int, **kw) -> str:
    return g.add_node("Input", {"kind": "vector", "features": features}, **kw).id


def then(g: Graph, src: str, type_id: str, params: dict | None = None, **kw) -> str:
    """Add a block fed by ``src`` (port 0 to port 0); returns its id."""
    nid = g.add_node(type_id, params or {}, **kw).id
    g.connect(src, 0, nid, 0)
    return nid


def chain(g: Graph, src: str, *steps) -> list[str]:
    """Append blocks one after the other. Each step is a type id or ``(type_id, params)``."""
    ids = []
    for step in steps:
        type_id, params = (step, {}) if isinstance(step, str) else step
        src = then(g, src, type_id, params)
        ids.append(src)
    return ids


def merge(g: Graph, type_id: str, srcs: list[str], params: dict | None = None, **kw) -> str:
    """Add a merge block with ``srcs`` wired into its ports in order."""
    nid = g.add_node(type_id, params or {}, **kw).id
    for port, src in enumerate(srcs):
        g.connect(src, 0, nid, port)
    return nid


class Recorder:
    """Collects every event a graph announces."""

    def __init__(self, graph: Graph) -> None:
        self.events: list[GraphEvent] = []
        graph.subscribe(self.events.append)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def clear(self) -> None:
        self.events.clear()


def torch_counts(module) -> tuple[int, int]:
    """(trainable, frozen) of a real module: parameters that need grad, and buffers
    such as BatchNorm's running mean and variance (not its batch counter)."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    return trainable, frozen


def gap_net(channels: int = 3, classes: int = 3, filters: int = 8):
    """Input C×16×16 → Conv → ReLU → Conv (stride 2) → ReLU → GAP → Dense → Class output.

    Returns the graph and the block ids by role (``input``, ``conv1``, ``relu1``, ... ``out``).
    """
    g = Graph()
    x = image_input(g, channels, 16)
    ids = chain(
        g, x,
        ("Conv2d", {"filters": filters, "kernel_size": 3, "padding": 1}),
        "ReLU",
        ("Conv2d", {"filters": 6, "kernel_size": 3, "stride": 2, "padding": 1}),
        "ReLU",
        "GlobalAvgPool",
        ("Dense", {"units": classes}),
        "ClassificationOutput",
    )
    return g, dict(zip(("conv1", "relu1", "conv2", "relu2", "gap", "fc", "out"), ids), input=x)


def slow_csv_project(folder, rows: int = 500_000):
    """The MLP template on a CSV of ``rows`` 2-D points written in ``folder``: its data take seconds to load.

    For the tests of a Stop or Ctrl+C while the data load (written once per module: about a second).
    """
    import numpy as np

    from engine.templates import load_template

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2))
    labels = (x[:, 0] * x[:, 1] > 0).astype(int)
    path = folder / "points.csv"
    with open(path, "w") as f:
        f.write("a,b,label\n")
        f.write("\n".join(f"{a:.3f},{b:.3f},{c}" for (a, b), c in zip(x.tolist(), labels.tolist())))
    p = load_template("mlp")
    p.data.dataset = "csv"
    p.data.path = str(path)
    p.training.epochs = 2
    p.training.device = "cpu"
    return p


_SCORE_EXPORTED = textwrap.dedent(
    """
    import importlib.util, sys
    import numpy as np
    import torch
    spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = getattr(mod, sys.argv[2])()
    model.load_state_dict(torch.load(sys.argv[3], weights_only=True))
    model.eval()
    data = np.load(sys.argv[4])
    with torch.no_grad():
        predicted = model(torch.from_numpy(data["x"])).argmax(1).numpy()
    print(float((predicted == data["y"]).mean()), len(getattr(mod, "CLASSES", ())))
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("engine", "designer", "PySide6", "sklearn", "PIL"))
    assert not bad, bad
    """
)


def score_exported(code: Path, class_name: str, weights: Path, data: Path) -> tuple[float, int]:
    """Accuracy of an exported model on ``data`` (an .npz of raw ``x`` and labels ``y``), run in a fresh Python
    that imports only torch and numpy; and how many class names the file declares."""
    done = subprocess.run([sys.executable, "-c", _SCORE_EXPORTED, str(code), class_name, str(weights), str(data)],
                          capture_output=True, text=True, cwd=Path(data).parent)
    assert done.returncode == 0, done.stderr
    accuracy, classes = done.stdout.split()
    return float(accuracy), int(classes)

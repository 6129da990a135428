"""Build the built-in template projects and write them beside this script.

Run from the repository root after changing a template::

    python resources/templates/make_templates.py          # rewrite every template file
    python resources/templates/make_templates.py --check  # exit 1 if a file is out of date

Each template is built with the :class:`~engine.graph.Graph` API, arranged with
:mod:`engine.layout`, checked to have no analysis errors or warnings and to fit its own
data settings (:func:`engine.datacheck.check_against_data`: input size, class count), and saved
as ``<name>.json`` with :func:`engine.project.save_project`. The test suite
rebuilds them and compares, so the files and this script cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.analysis import analyze  # noqa: E402
from engine.config import DataConfig, ProbeConfig, TrainingConfig  # noqa: E402
from engine.datacheck import check_against_data  # noqa: E402
from engine.graph import Graph  # noqa: E402
from engine.layout import apply_layout, auto_layout  # noqa: E402
from engine.project import Project, save_project  # noqa: E402

# What the data sets deliver; the networks' input and output sizes must agree with them.
DIGITS_CLASSES = 10
SPIRAL_CLASSES = 2
SHAPES_CHANNELS = 1  # grayscale
SHAPES_CLASSES = 3  # circle, square, triangle
SEGMENT_CLASSES = 4  # background + one class per shape
UNET_SIZE = 32
LOC_ALPHA = 0.5
#: He initialization suits ReLU; without it a plain stack this deep starts with vanishing signals.
HE = "he_normal"


# ---------------------------------------------------------------------------- building
class Net:
    """A thin helper over :class:`Graph` for writing templates as short code."""

    def __init__(self) -> None:
        self.graph = Graph()

    def add(self, type_id: str, name: str, *sources: str, **params: Any) -> str:
        """Add a block fed by ``sources`` (one per input port, in port order); return its id."""
        node = self.graph.add_node(type_id, params, name=name)
        for port, src in enumerate(sources):
            self.graph.connect(src, 0, node.id, port)
        return node.id

    def image_input(self, channels: int, size: int) -> str:
        return self.add("Input", "input", kind="image", channels=channels, height=size, width=size)

    def vector_input(self, features: int) -> str:
        return self.add("Input", "input", kind="vector", features=features)

    def conv_relu(self, x: str, name: str, filters: int, kernel: int = 3, **kw: Any) -> str:
        """Conv2d + ReLU (``conv1`` + ``relu1``)."""
        x = self.add("Conv2d", name, x, filters=filters, kernel_size=kernel, **kw)
        return self.add("ReLU", _suffix(name, "relu"), x)

    def conv_bn_relu(self, x: str, name: str, filters: int, kernel: int = 3, relu: bool = True, **kw: Any) -> str:
        """Conv2d (no bias: BatchNorm's shift replaces it) + BatchNorm (+ ReLU)."""
        x = self.add("Conv2d", name, x, filters=filters, kernel_size=kernel, bias=False, **kw)
        x = self.add("BatchNorm", _suffix(name, "bn"), x)
        return self.add("ReLU", _suffix(name, "relu"), x) if relu else x


def _suffix(name: str, what: str) -> str:
    """The name of a block that follows ``name``: ``conv1`` -> ``relu1``,
    ``res1_conv2`` -> ``res1_relu2``, ``b2_3x3`` -> ``b2_3x3_relu``."""
    head, found, tail = name.rpartition("conv")
    return f"{head}{what}{tail}" if found else f"{name}_{what}"


# ---------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class Template:
    """One built-in template: file stem, title, one-line description, builder and configs."""

    name: str
    title: str
    description: str
    build: Callable[[], Graph]
    data: dict[str, Any]
    training: dict[str, Any]
    probes: dict[str, Any] = field(default_factory=dict)
    probe_layer: str | None = None  # name of the block the live views look at


def perceptron() -> Graph:
    net = Net()
    x = net.vector_input(2)
    x = net.add("Dense", "neuron", x, units=1)
    net.add("BinaryOutput", "output", x)
    return net.graph


def mlp() -> Graph:
    net = Net()
    x = net.vector_input(2)
    x = net.add("Dense", "fc1", x, units=16)
    x = net.add("ReLU", "relu1", x)
    x = net.add("Dense", "fc2", x, units=16)
    x = net.add("ReLU", "relu2", x)
    x = net.add("Dense", "fc3", x, units=SPIRAL_CLASSES)
    net.add("ClassificationOutput", "output", x)
    return net.graph


def lenet5() -> Graph:
    net = Net()
    x = net.image_input(1, 32)
    x = net.conv_relu(x, "conv1", 6, 5, padding="valid")  # 6×28×28
    x = net.add("AvgPool2d", "pool1", x, kernel_size=2, stride=2)  # 6×14×14
    x = net.conv_relu(x, "conv2", 16, 5, padding="valid")  # 16×10×10
    x = net.add("AvgPool2d", "pool2", x, kernel_size=2, stride=2)  # 16×5×5
    x = net.add("Flatten", "flatten", x)  # 400
    x = net.add("Dense", "fc1", x, units=120)
    x = net.add("ReLU", "relu3", x)
    x = net.add("Dense", "fc2", x, units=84)
    x = net.add("ReLU", "relu4", x)
    x = net.add("Dense", "fc3", x, units=DIGITS_CLASSES)
    net.add("ClassificationOutput", "output", x)
    return net.graph


def vgg() -> Graph:
    net = Net()
    x = net.image_input(1, 32)
    for block, filters in ((1, 16), (2, 32)):
        x = net.conv_bn_relu(x, f"conv{block}_1", filters)
        x = net.conv_bn_relu(x, f"conv{block}_2", filters)
        x = net.add("MaxPool2d", f"pool{block}", x, kernel_size=2, stride=2)
    x = net.add("Flatten", "flatten", x)  # 32×8×8 = 2048
    x = net.add("Dense", "fc1", x, units=64)
    x = net.add("ReLU", "relu_fc1", x)
    x = net.add("Dropout", "dropout", x, p=0.5)
    x = net.add("Dense", "fc2", x, units=DIGITS_CLASSES)
    net.add("ClassificationOutput", "output", x)
    return net.graph


def nin() -> Graph:
    net = Net()
    x = net.image_input(SHAPES_CHANNELS, 32)
    for block, (filters, kernel) in enumerate(((16, 5), (32, 3), (64, 3)), start=1):
        x = net.conv_relu(x, f"conv{block}", filters, kernel, init=HE)
        x = net.conv_relu(x, f"mlp{block}_a", filters, 1, init=HE)  # 1×1 convs: a small MLP at every pixel
        if block < 3:
            x = net.conv_relu(x, f"mlp{block}_b", filters, 1, init=HE)
            x = net.add("MaxPool2d", f"pool{block}", x, kernel_size=2, stride=2)
    # NOTE: one map per class; global average pooling turns each map into that class's score.
    x = net.add("Conv2d", "class_maps", x, filters=SHAPES_CLASSES, kernel_size=1, init=HE)
    x = net.add("GlobalAvgPool", "gap", x)
    net.add("ClassificationOutput", "output", x)
    return net.graph


def resnet() -> Graph:
    net = Net()
    x = net.image_input(1, 32)
    x = net.conv_bn_relu(x, "conv1", 16)
    stem = net.add("MaxPool2d", "pool1", x, kernel_size=2, stride=2)  # 16×16×16
    # Basic block with an identity shortcut: F(x) + x.
    y = net.conv_bn_relu(stem, "res1_conv1", 16)
    y = net.conv_bn_relu(y, "res1_conv2", 16, relu=False)
    y = net.add("Add", "res1_add", y, stem)
    block1 = net.add("ReLU", "res1_relu", y)
    # Downsampling block: stride 2 halves the size, so the shortcut needs a 1×1 projection.
    y = net.conv_bn_relu(block1, "res2_conv1", 32, stride=2, padding=1)
    y = net.conv_bn_relu(y, "res2_conv2", 32, relu=False)
    s = net.add("Conv2d", "res2_proj", block1, filters=32, kernel_size=1, stride=2, padding="valid", bias=False)
    s = net.add("BatchNorm", "res2_proj_bn", s)
    y = net.add("Add", "res2_add", y, s)
    y = net.add("ReLU", "res2_relu", y)
    y = net.add("GlobalAvgPool", "gap", y)
    y = net.add("Dense", "fc", y, units=DIGITS_CLASSES)
    net.add("ClassificationOutput", "output", y)
    return net.graph


def inception() -> Graph:
    net = Net()
    x = net.image_input(1, 32)
    x = net.conv_bn_relu(x, "conv1", 16)
    x = net.add("MaxPool2d", "pool1", x, kernel_size=2, stride=2)  # 16×16×16
    x = net.conv_bn_relu(x, "conv2", 32)
    stem = net.add("MaxPool2d", "pool2", x, kernel_size=2, stride=2)  # 32×8×8
    # Four branches see the same input at different scales; 'same' padding keeps 8×8 everywhere.
    b1 = net.conv_bn_relu(stem, "b1_1x1", 16, 1)
    b2 = net.conv_bn_relu(stem, "b2_reduce", 16, 1)  # 1×1 bottleneck: fewer channels, fewer MACs
    b2 = net.conv_bn_relu(b2, "b2_3x3", 24, 3)
    b3 = net.conv_bn_relu(stem, "b3_reduce", 8, 1)
    b3 = net.conv_bn_relu(b3, "b3_5x5", 8, 5)
    b4 = net.add("MaxPool2d", "b4_pool", stem, kernel_size=3, stride=1, padding=1)
    b4 = net.conv_bn_relu(b4, "b4_proj", 8, 1)
    x = net.add("Concatenate", "concat", b1, b2, b3, b4, inputs=4)  # 56×8×8
    x = net.add("GlobalAvgPool", "gap", x)
    x = net.add("Dense", "fc", x, units=DIGITS_CLASSES)
    net.add("ClassificationOutput", "output", x)
    return net.graph


def mobilenet() -> Graph:
    net = Net()
    x = net.image_input(SHAPES_CHANNELS, 32)
    x = net.conv_bn_relu(x, "conv1", 16, stride=2, padding=1)  # 16×16×16
    for i, (filters, stride) in enumerate(((32, 1), (64, 2), (64, 1), (128, 2), (128, 1)), start=1):
        x = net.add("SeparableConv2d", f"sep{i}", x, filters=filters, stride=stride, padding=1, bias=False)
        x = net.add("BatchNorm", f"sep{i}_bn", x)
        x = net.add("ReLU", f"sep{i}_relu", x)
    x = net.add("GlobalAvgPool", "gap", x)
    x = net.add("Dense", "fc", x, units=SHAPES_CLASSES)
    net.add("ClassificationOutput", "output", x)
    return net.graph


def unet() -> Graph:
    net = Net()
    x = net.image_input(SHAPES_CHANNELS, UNET_SIZE)
    enc1 = net.conv_relu(net.conv_relu(x, "enc1_conv1", 16), "enc1_conv2", 16)
    x = net.add("MaxPool2d", "pool1", enc1, kernel_size=2, stride=2)
    enc2 = net.conv_relu(net.conv_relu(x, "enc2_conv1", 32), "enc2_conv2", 32)
    x = net.add("MaxPool2d", "pool2", enc2, kernel_size=2, stride=2)
    x = net.conv_relu(net.conv_relu(x, "mid_conv1", 64), "mid_conv2", 64)
    x = net.add("ConvTranspose2d", "up2", x, filters=32, kernel_size=2, stride=2)
    x = net.add("Concatenate", "skip2", enc2, x)
    x = net.conv_relu(net.conv_relu(x, "dec2_conv1", 32), "dec2_conv2", 32)
    x = net.add("ConvTranspose2d", "up1", x, filters=16, kernel_size=2, stride=2)
    x = net.add("Concatenate", "skip1", enc1, x)
    x = net.conv_relu(net.conv_relu(x, "dec1_conv1", 16), "dec1_conv2", 16)
    x = net.add("Conv2d", "classifier", x, filters=SEGMENT_CLASSES, kernel_size=1)
    net.add("SegmentationOutput", "output", x)
    return net.graph


def localization() -> Graph:
    net = Net()
    x = net.image_input(SHAPES_CHANNELS, 32)
    for i, filters in enumerate((16, 32, 64), start=1):
        x = net.conv_relu(x, f"conv{i}", filters)
        x = net.add("MaxPool2d", f"pool{i}", x, kernel_size=2, stride=2)
    x = net.add("Flatten", "flatten", x)  # keeps where things are, which the box needs
    x = net.add("Dense", "fc1", x, units=128)
    trunk = net.add("ReLU", "relu_fc1", x)
    c = net.add("Dense", "class_fc", trunk, units=SHAPES_CLASSES)
    net.add("ClassificationOutput", "class_output", c, weight=LOC_ALPHA)
    b = net.add("Dense", "box_fc", trunk, units=4)
    b = net.add("Sigmoid", "box_sigmoid", b)  # box coordinates are fractions of the image
    net.add("BoxOutput", "box_output", b, weight=round(1.0 - LOC_ALPHA, 6))
    return net.graph


def _digits(**kw: Any) -> dict[str, Any]:
    return {"dataset": "digits", "image_size": 32, "task": "classification", **kw}


def _shapes(task: str, **kw: Any) -> dict[str, Any]:
    return {"dataset": "shapes", "image_size": 32, "samples": 2000, "task": task, **kw}


def _adam(epochs: int, lr: float = 1e-3, batch_size: int = 64, **kw: Any) -> dict[str, Any]:
    return {"optimizer": "adam", "lr": lr, "batch_size": batch_size, "epochs": epochs, **kw}


#: The templates in teaching order (engine.templates lists them in this order too).
TEMPLATES = (
    Template(
        "perceptron",
        "Perceptron",
        "One neuron, one straight boundary: it separates two Gaussian blobs, though no line can solve XOR.",
        perceptron,
        {"dataset": "gaussians", "samples": 400, "task": "binary"},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "batch_size": 32, "epochs": 30},
        probes={"cam_method": "off"},
    ),
    Template(
        "mlp",
        "Multi-layer perceptron",
        "Two hidden ReLU layers bend the decision boundary enough to untangle two interleaved spirals.",
        mlp,
        {"dataset": "spiral", "samples": 1000, "task": "classification"},
        _adam(200, lr=0.01, batch_size=32),
        probes={"cam_method": "off"},
        probe_layer="relu2",
    ),
    Template(
        "lenet5",
        "LeNet-5",
        "The classic digit reader: two convolution and average-pooling stages, then three dense layers.",
        lenet5,
        _digits(augment={"shift": 0.08, "rotation": 8}),
        _adam(30, lr=2e-3, schedule="cosine"),
        probe_layer="relu2",
    ),
    Template(
        "vgg",
        "VGG-style network",
        "Stacked 3×3 convolutions with batch norm, max pooling between blocks and a dropout-regularized dense head.",
        vgg,
        _digits(),
        _adam(15),
        probe_layer="relu2_2",
    ),
    Template(
        "nin",
        "Network in Network",
        "Convolutions followed by 1×1 mlpconv layers; one map per class and global average pooling replace the dense head.",
        nin,
        _shapes("classification"),
        _adam(20),
        probe_layer="mlp3_a_relu",
    ),
    Template(
        "resnet",
        "Small ResNet",
        "Residual blocks that learn F(x) + x: an identity shortcut, then a 1×1 projection where the block halves the size.",
        resnet,
        _digits(),
        _adam(15),
        probe_layer="res2_relu",
    ),
    Template(
        "inception",
        "Inception module",
        "Four parallel branches (1×1, 3×3 and 5×5 behind 1×1 bottlenecks, and pooling) concatenated along the channels.",
        inception,
        _digits(),
        _adam(20, lr=2e-3),
        probe_layer="b2_3x3_relu",
    ),
    Template(
        "mobilenet",
        "MobileNet-style network",
        "Depthwise-separable convolutions with batch norm: nearly a full convolution's power at a fraction of its cost.",
        mobilenet,
        _shapes("classification"),
        _adam(20),
        probe_layer="sep5_relu",
    ),
    Template(
        "unet",
        "U-Net",
        "Labels every pixel of the shapes: an encoder, a decoder that upsamples, and skips that concatenate encoder features.",
        unet,
        _shapes("segmentation", samples=1000, image_size=UNET_SIZE),
        _adam(20, batch_size=32),
        probes={"cam_method": "off"},
        probe_layer="mid_relu2",
    ),
    Template(
        "localization",
        "Classification + localization",
        "One CNN trunk, two heads: the shape's class and its bounding box, trained with loss weights α and 1−α.",
        localization,
        _shapes("localization"),
        _adam(25),
        probe_layer="relu3",
    ),
)


# ---------------------------------------------------------------------------- projects
def build_project(template: Template) -> Project:
    """The template as a laid-out, checked :class:`~engine.project.Project`."""
    graph = template.build()
    apply_layout(graph, auto_layout(graph))
    result = analyze(graph)
    problems = result.errors() + result.warnings()
    if problems:
        listed = "; ".join(p.message for p in problems)
        raise RuntimeError(f"template {template.name!r} has analysis problems: {listed}")
    probes = dict(template.probes)
    if template.probe_layer is not None:
        by_name = {n.name: nid for nid, n in graph.nodes.items()}
        probes["layer"] = by_name[template.probe_layer]
    project = Project(
        name=template.title,
        description=template.description,
        graph=graph,
        data=DataConfig.from_dict(template.data),
        training=TrainingConfig.from_dict(template.training),
        probes=ProbeConfig.from_dict(probes),
    )
    misfits = check_against_data(project, result)
    if misfits:
        listed = "; ".join(p.message for p in misfits)
        raise RuntimeError(f"template {template.name!r} does not fit its own data settings: {listed}")
    return project


def build_all() -> dict[str, Project]:
    """``{name: Project}`` for every template, in teaching order."""
    return {t.name: build_project(t) for t in TEMPLATES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ; write nothing")
    args = parser.parse_args(argv)
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, project in build_all().items():
            target = HERE / f"{name}.json"
            fresh = Path(tmp) / target.name
            save_project(project, fresh)
            if target.exists() and target.read_bytes() == fresh.read_bytes():
                continue
            stale.append(target.name)
            if not args.check:
                save_project(project, target)
    if args.check:
        print("out of date: " + ", ".join(stale) if stale else "all templates are up to date")
        return 1 if stale else 0
    print("wrote " + ", ".join(stale) if stale else "nothing to write: all templates are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build the built-in template projects and write them beside this script.

Run from the repository root after changing a template::

    python resources/templates/make_templates.py          # rewrite every template file
    python resources/templates/make_templates.py --check  # exit 1 if a file is out of date

Each template is built with the :class:`~engine.graph.Graph` API, arranged with
:mod:`engine.layout`, checked to have no analysis errors or warnings and to fit its own
data settings (:func:`engine.datacheck.check_against_data`: input size, class count), and saved
as ``<name>.json`` with :func:`engine.project.save_project`. The test suite
rebuilds them and compares, so the files and this script cannot drift apart.

The small templates train on data that ships or is generated; the full-size networks
(AlexNet to the paper's U-Net) are built layer for layer as torchvision builds them and
train on a person's own data, whose path they leave empty for Train to ask about. They are
made of units (:func:`define`, :meth:`Net.use`), as torchvision writes ``BasicBlock`` once
and composes it: one definition per distinct block (a block of other widths, or with a
``downsample`` projection, is another), stages of blocks where the network has them, so the
canvas shows stem, stages and head, and the exported code has one class per definition.
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
from engine.graph import UNIT_TYPE, Graph  # noqa: E402
from engine.layout import apply_layout, auto_layout  # noqa: E402
from engine.project import Project, save_project  # noqa: E402
from engine.units import UnitDef, UnitPort, flatten  # noqa: E402

# What the data sets deliver; the networks' input and output sizes must agree with them.
DIGITS_CLASSES = 10
DIGITS_SIZE = 8  # scikit-learn's digits as they are: 8×8 pixels
SPIRAL_CLASSES = 2
SHAPES_CHANNELS = 1  # grayscale
SHAPES_CLASSES = 3  # circle, square, triangle
SEGMENT_CLASSES = 4  # background + one class per shape
UNET_SIZE = 32
LOC_ALPHA = 0.5
IMAGENET_CLASSES = 1000
IMAGENET_SIZE = 224
UNET_PAPER_SIZE = 572  # the paper's input tile; its output is the 388×388 centre
UNET_PAPER_CLASSES = 2
#: the universal approximator's hidden sigmoids
APPROXIMATOR_UNITS = 16
APPROXIMATOR_EPOCHS = 100
#: a few passes: on the separable blobs the perceptron rule stops making mistakes well within them
PERCEPTRON_EPOCHS = 5
#: He initialization suits ReLU; without it a plain stack this deep starts with vanishing signals.
HE = "he_normal"


# ---------------------------------------------------------------------------- building
@dataclass
class Port:
    """A unit's input port while its inside is built: the inner block inputs it feeds, as they are added."""

    name: str
    ends: list[tuple[str, int]] = field(default_factory=list)


Source = str | Port  # a block's id, or an input port of the unit being built


class Net:
    """A thin helper over :class:`Graph` for writing templates as short code."""

    def __init__(self) -> None:
        self.graph = Graph()

    def add(self, type_id: str, name: str, *sources: Source, **params: Any) -> str:
        """Add a block fed by ``sources`` (one per input port, in port order); return its id."""
        node = self.graph.add_node(type_id, params, name=name)
        for port, src in enumerate(sources):
            if isinstance(src, Port):
                src.ends.append((node.id, port))
            else:
                self.graph.connect(src, 0, node.id, port)
        return node.id

    def use(self, unit: UnitDef, name: str, *sources: Source) -> str:
        """Add a block that uses ``unit`` (defined here on its first use), fed by ``sources``."""
        self.graph.define_unit(unit)
        return self.add(UNIT_TYPE, name, *sources, unit=unit.name)

    def image_input(self, channels: int, size: int) -> str:
        return self.add("Input", "input", kind="image", channels=channels, height=size, width=size)

    def vector_input(self, features: int) -> str:
        return self.add("Input", "input", kind="vector", features=features)

    def conv_relu(self, x: Source, name: str, filters: int, kernel: int = 3, **kw: Any) -> str:
        """Conv2d + ReLU (``conv1`` + ``relu1``)."""
        x = self.add("Conv2d", name, x, filters=filters, kernel_size=kernel, **kw)
        return self.add("ReLU", _suffix(name, "relu"), x)

    def conv_bn_relu(self, x: str, name: str, filters: int, kernel: int = 3, relu: bool = True, **kw: Any) -> str:
        """Conv2d (no bias: BatchNorm's shift replaces it) + BatchNorm (+ ReLU)."""
        x = self.add("Conv2d", name, x, filters=filters, kernel_size=kernel, bias=False, **kw)
        x = self.add("BatchNorm", _suffix(name, "bn"), x)
        return self.add("ReLU", _suffix(name, "relu"), x) if relu else x

    def conv_bn(
        self, x: Source, name: str, filters: int, kernel: int, stride: int = 1, act: str | None = "ReLU",
        eps: float = 1e-5, numbered: bool = False, **kw: Any,
    ) -> str:
        """Conv2d (no bias) + BatchNorm (+ activation), torchvision's padding ``(k − 1) / 2``:
        ``name``, ``name_bn``, ``name_act`` (``conv0``, ``conv0_bn`` ...), or with ``numbered`` as
        torchvision's blocks name them (``conv1``, ``bn1``, ``relu1``)."""
        kw.setdefault("padding", (kernel - 1) // 2)
        x = self.add("Conv2d", name, x, filters=filters, kernel_size=kernel, stride=stride, bias=False, **kw)
        x = self.add("BatchNorm", _suffix(name, "bn") if numbered else f"{name}_bn", x, eps=eps)
        if not act:
            return x
        return self.add(act, _suffix(name, act.lower()) if numbered else f"{name}_{act.lower()}", x)

    def classifier(self, x: str, classes: int, dropout: float | None = None, name: str = "fc") -> str:
        """Global average pooling (+ Dropout) + Dense + Class output: the head of every modern CNN here."""
        x = self.add("GlobalAvgPool", "avgpool", x)
        if dropout is not None:
            x = self.add("Dropout", "dropout", x, p=dropout)
        x = self.add("Dense", name, x, units=classes)
        return self.add("ClassificationOutput", "output", x)


def define(name: str, build: Callable[..., str], inputs: tuple[str, ...] = ("in",)) -> UnitDef:
    """A unit called ``name`` whose inside ``build(net, *ports)`` adds (one :class:`Port` per name in
    ``inputs``), returning the block that is its output.

    The inside is laid out as Arrange lays it out, so that opening the unit on the canvas shows it so.
    NOTE: build each definition once and pass it to every use: two definitions of one name are refused.
    """
    net, ports = Net(), [Port(p) for p in inputs]
    out = build(net, *ports)
    apply_layout(net.graph, auto_layout(net.graph))
    return UnitDef(
        name, net.graph, tuple(UnitPort(p.name, tuple(p.ends)) for p in ports), (UnitPort("out", ((out, 0),)),)
    )


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
    probe_layer: str | None = None  # the block the live views look at, by its path through units: layer4/block1/relu


def perceptron() -> Graph:
    net = Net()
    x = net.vector_input(2)
    x = net.add("Dense", "neuron", x, units=1)
    net.add("PerceptronOutput", "output", x)
    return net.graph


def universal_approximator() -> Graph:
    net = Net()
    x = net.vector_input(1)
    x = net.add("Dense", "hidden", x, units=APPROXIMATOR_UNITS)
    x = net.add("Sigmoid", "sigmoid", x)
    x = net.add("Dense", "out", x, units=1)
    net.add("RegressionOutput", "output", x)
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


def linear_classifier() -> Graph:
    net = Net()
    x = net.image_input(1, DIGITS_SIZE)
    x = net.add("Flatten", "flatten", x)  # 64 pixels, row by row
    x = net.add("Dense", "linear", x, units=DIGITS_CLASSES)  # one weight row, a template, per class
    net.add("ClassificationOutput", "output", x)
    return net.graph


def handcrafted_filters() -> Graph:
    """Two textbook edge detectors in parallel, frozen, then a small trained classifier reading their maps."""
    net = Net()
    x = net.image_input(SHAPES_CHANNELS, 32)
    # NOTE: Trainable off: the kernels stay Sobel's while everything after them trains.
    gx = net.add("Conv2d", "sobel_x", x, filters=1, kernel_size=3, bias=False, init="sobel_x", trainable=False)
    gy = net.add("Conv2d", "sobel_y", x, filters=1, kernel_size=3, bias=False, init="sobel_y", trainable=False)
    x = net.add("Concatenate", "edges", gx, gy)  # 2×32×32: brightness changing along x, along y
    x = net.add("ReLU", "relu_edges", x)
    x = net.add("MaxPool2d", "pool1", x, kernel_size=2, stride=2)  # 2×16×16
    x = net.conv_relu(x, "conv1", 8)
    x = net.add("MaxPool2d", "pool2", x, kernel_size=2, stride=2)  # 8×8×8
    x = net.conv_relu(x, "conv2", 16)
    x = net.add("GlobalAvgPool", "gap", x)
    x = net.add("Dense", "fc", x, units=SHAPES_CLASSES)
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


# ---------------------------------------------------------------------------- full-size networks
# NOTE: built block by block as torchvision builds them (layer sizes, padding, biases, BatchNorm eps), so
# their parameter counts equal torchvision's exactly; tests/engine/test_classic_templates.py checks that.
def alexnet() -> Graph:
    """torchvision's one-tower AlexNet (the "one weird trick" variant: 64-192-384-256-256 filters, no LRN)."""
    net = Net()
    x = net.image_input(3, IMAGENET_SIZE)
    x = net.conv_relu(x, "conv1", 64, 11, stride=4, padding=2)  # 64×55×55
    x = net.add("MaxPool2d", "pool1", x, kernel_size=3, stride=2)  # 64×27×27
    x = net.conv_relu(x, "conv2", 192, 5, padding=2)
    x = net.add("MaxPool2d", "pool2", x, kernel_size=3, stride=2)  # 192×13×13
    x = net.conv_relu(x, "conv3", 384, 3, padding=1)
    x = net.conv_relu(x, "conv4", 256, 3, padding=1)
    x = net.conv_relu(x, "conv5", 256, 3, padding=1)
    x = net.add("MaxPool2d", "pool5", x, kernel_size=3, stride=2)  # 256×6×6
    x = net.add("AdaptiveAvgPool2d", "avgpool", x, output_size=6)  # 6×6 whatever the input size
    x = net.add("Flatten", "flatten", x)  # 9216
    for i in (6, 7):
        x = net.add("Dropout", f"dropout{i}", x, p=0.5)
        x = net.add("Dense", f"fc{i}", x, units=4096)
        x = net.add("ReLU", f"relu{i}", x)
    x = net.add("Dense", "fc8", x, units=IMAGENET_CLASSES)
    net.add("ClassificationOutput", "output", x)
    return net.graph


def _vgg_block(block: int, filters: int, convs: int) -> UnitDef:
    """``convs`` 3×3 convolutions with ReLU (``conv1``, ``relu1`` ...), then a 2×2 max pool halving the size."""

    def build(net: Net, x: Port) -> str:
        y: Source = x
        for i in range(1, convs + 1):
            y = net.conv_relu(y, f"conv{i}", filters, 3, padding=1)
        return net.add("MaxPool2d", "pool", y, kernel_size=2, stride=2)

    return define(f"VGGBlock{block}", build)


def vgg16() -> Graph:
    """VGG16 (configuration D): 13 3×3 convolutions in five blocks (each a unit: ``block1`` ..), three dense layers."""
    net = Net()
    x = net.image_input(3, IMAGENET_SIZE)
    for block, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        x = net.use(_vgg_block(block, filters, convs), f"block{block}", x)  # 512×7×7 after the fifth
    x = net.add("AdaptiveAvgPool2d", "avgpool", x, output_size=7)
    x = net.add("Flatten", "flatten", x)  # 25088
    for i in (6, 7):
        x = net.add("Dense", f"fc{i}", x, units=4096)
        x = net.add("ReLU", f"relu{i}", x)
        x = net.add("Dropout", f"dropout{i}", x, p=0.5)
    x = net.add("Dense", "fc8", x, units=IMAGENET_CLASSES)
    net.add("ClassificationOutput", "output", x)
    return net.graph


#: GoogLeNet's nine Inception modules: (name, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool projection)
INCEPTIONS = (
    ("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64), ("4e", 256, 160, 320, 32, 128, 128),
    ("5a", 256, 160, 320, 32, 128, 128), ("5b", 384, 192, 384, 48, 128, 128),
)
#: GoogLeNet's BatchNorm eps (torchvision's BasicConv2d)
GOOGLENET_EPS = 1e-3


def _inception(name: str, c1: int, r3: int, c3: int, r5: int, c5: int, proj: int) -> UnitDef:
    """Four branches concatenated, each finished before the next (as torchvision writes ``forward``).

    NOTE: the "5×5" branch is a 3×3 convolution, as in torchvision's GoogLeNet (whose weights were
    trained so); its parameter count is torchvision's. Each module has its own widths, so its own definition.
    """
    eps = GOOGLENET_EPS

    def build(net: Net, x: Port) -> str:
        b1 = net.conv_bn(x, "branch1", c1, 1, eps=eps)
        b2 = net.conv_bn(net.conv_bn(x, "branch2_reduce", r3, 1, eps=eps), "branch2", c3, 3, eps=eps)
        b3 = net.conv_bn(net.conv_bn(x, "branch3_reduce", r5, 1, eps=eps), "branch3", c5, 3, eps=eps)
        b4 = net.add("MaxPool2d", "branch4_pool", x, kernel_size=3, stride=1, padding=1, ceil_mode=True)
        b4 = net.conv_bn(b4, "branch4", proj, 1, eps=eps)
        return net.add("Concatenate", "concat", b1, b2, b3, b4, inputs=4)

    return define(f"Inception{name}", build)


def googlenet() -> Graph:
    """GoogLeNet (Inception v1) in torchvision's layout, with BatchNorm and without the auxiliary heads;
    each Inception module is a unit (``inception3a`` ...)."""
    net = Net()
    x = net.image_input(3, IMAGENET_SIZE)
    x = net.conv_bn(x, "conv1", 64, 7, stride=2, eps=GOOGLENET_EPS)  # 64×112×112
    x = net.add("MaxPool2d", "maxpool1", x, kernel_size=3, stride=2, ceil_mode=True)  # 64×56×56
    x = net.conv_bn(x, "conv2", 64, 1, eps=GOOGLENET_EPS)
    x = net.conv_bn(x, "conv3", 192, 3, eps=GOOGLENET_EPS)
    x = net.add("MaxPool2d", "maxpool2", x, kernel_size=3, stride=2, ceil_mode=True)  # 192×28×28
    pools = {"3b": ("maxpool3", 3), "4e": ("maxpool4", 2)}  # after these modules: 480×14×14, 832×7×7
    for name, *sizes in INCEPTIONS:
        x = net.use(_inception(name, *sizes), f"inception{name}", x)
        if name in pools:
            pool, k = pools[name]
            x = net.add("MaxPool2d", pool, x, kernel_size=k, stride=2, ceil_mode=True)
    net.classifier(x, IMAGENET_CLASSES, dropout=0.2)
    return net.graph


def _resnet_stem(net: Net) -> str:
    """torchvision's stem, named as its attributes are: ``conv1``, ``bn1``, ``relu``, ``maxpool``."""
    x = net.image_input(3, IMAGENET_SIZE)
    x = net.add("Conv2d", "conv1", x, filters=64, kernel_size=7, stride=2, padding=3, bias=False)  # 64×112×112
    x = net.add("BatchNorm", "bn1", x)
    x = net.add("ReLU", "relu", x)
    return net.add("MaxPool2d", "maxpool", x, kernel_size=3, stride=2, padding=1)  # 64×56×56


def _residual(net: Net, x: Port, y: str, filters: int, stride: int, channels: int) -> str:
    """Add the block's input, or its 1×1 projection (+ BatchNorm) where the block changes size or width, then ReLU."""
    if stride == 1 and channels == filters:
        shortcut: Source = x
    else:
        shortcut = net.conv_bn(x, "downsample", filters, 1, stride=stride, act=None, numbered=True)
    return net.add("ReLU", "relu", net.add("Add", "add", y, shortcut))


def _basic_block(channels: int, filters: int, stride: int) -> UnitDef:
    """ResNet's basic block: two 3×3 convolutions (the first may stride) beside the shortcut."""

    def build(net: Net, x: Port) -> str:
        y = net.conv_bn(x, "conv1", filters, 3, stride=stride, numbered=True)
        y = net.conv_bn(y, "conv2", filters, 3, act=None, numbered=True)
        return _residual(net, x, y, filters, stride, channels)

    return define(f"BasicBlock{filters}{_down(channels, filters, stride)}", build)


def _bottleneck(channels: int, filters: int, stride: int) -> UnitDef:
    """ResNet v1.5's bottleneck: 1×1 narrows, 3×3 (with the stride) filters, 1×1 widens fourfold."""

    def build(net: Net, x: Port) -> str:
        y = net.conv_bn(x, "conv1", filters, 1, numbered=True)
        y = net.conv_bn(y, "conv2", filters, 3, stride=stride, numbered=True)
        y = net.conv_bn(y, "conv3", 4 * filters, 1, act=None, numbered=True)
        return _residual(net, x, y, 4 * filters, stride, channels)

    return define(f"Bottleneck{filters}{_down(channels, 4 * filters, stride)}", build)


def _down(channels: int, filters: int, stride: int) -> str:
    """``"Down"`` for a block with a ``downsample`` projection (a definition of its own, as in torchvision)."""
    return "" if stride == 1 and channels == filters else "Down"


def _resnet(block: Callable[[int, int, int], UnitDef], depths: tuple[int, ...], expansion: int) -> Graph:
    """The stem, four stages of blocks (``layer1`` .. ``layer4``, each a unit of ``block0`` ...) and the classifier."""
    net = Net()
    x, channels = _resnet_stem(net), 64
    for stage, (filters, depth) in enumerate(zip((64, 128, 256, 512), depths), start=1):
        stride = 1 if stage == 1 else 2
        first = block(channels, filters, stride)
        rest = first if (channels, stride) == (filters * expansion, 1) else block(filters * expansion, filters, 1)

        def build(inner: Net, y: Port, first: UnitDef = first, rest: UnitDef = rest, depth: int = depth) -> str:
            out = inner.use(first, "block0", y)
            for i in range(1, depth):
                out = inner.use(rest, f"block{i}", out)
            return out

        x = net.use(define(f"Stage{stage}", build), f"layer{stage}", x)
        channels = filters * expansion
    net.classifier(x, IMAGENET_CLASSES)
    return net.graph


def resnet18() -> Graph:
    return _resnet(_basic_block, (2, 2, 2, 2), 1)


def resnet50() -> Graph:
    return _resnet(_bottleneck, (3, 4, 6, 3), 4)


#: MobileNetV2's inverted residual stages: (expansion t, output channels c, blocks n, first stride s)
MOBILENET_V2 = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def _inverted_residual(channels: int, filters: int, stride: int, t: int) -> UnitDef:
    """Expand (1×1), filter (3×3 depthwise), project (1×1, linear: no activation); add the input when it fits.

    Named ``InvertedResidual24`` where it keeps its width (and adds its input), ``InvertedResidual16To24``
    where it changes it: the first block of each stage, a definition of its own.
    """
    hidden = channels * t

    def build(net: Net, x: Port) -> str:
        y: Source = net.conv_bn(x, "expand", hidden, 1, act="ReLU6") if t != 1 else x
        y = net.conv_bn(y, "dw", hidden, 3, stride=stride, groups=hidden, act="ReLU6")
        y = net.conv_bn(y, "project", filters, 1, act=None)
        return net.add("Add", "add", y, x) if stride == 1 and channels == filters else y

    widths = f"{filters}" if stride == 1 and channels == filters else f"{channels}To{filters}"
    return define(f"InvertedResidual{widths}", build)


def mobilenet_v2() -> Graph:
    """MobileNetV2 as torchvision builds it; each inverted residual block is a unit (``block1`` .. ``block17``)."""
    net = Net()
    x = net.image_input(3, IMAGENET_SIZE)
    x, channels, n = net.conv_bn(x, "conv1", 32, 3, stride=2, act="ReLU6"), 32, 0  # 32×112×112
    for t, filters, blocks, stride in MOBILENET_V2:
        first = _inverted_residual(channels, filters, stride, t)
        rest = _inverted_residual(filters, filters, 1, t) if blocks > 1 else first
        for i in range(blocks):
            n += 1
            x = net.use(first if i == 0 else rest, f"block{n}", x)
        channels = filters
    x = net.conv_bn(x, "conv_last", 1280, 1, act="ReLU6")  # 1280×7×7
    net.classifier(x, IMAGENET_CLASSES, dropout=0.2)
    return net.graph


DENSENET121_BLOCKS = (6, 12, 24, 16)
GROWTH = 32
BN_SIZE = 4  # the 1×1 bottleneck's width, in multiples of the growth rate


def _dense_layer(net: Net, x: Source, name: str) -> str:
    """BN-ReLU-conv 1×1 (bottleneck), BN-ReLU-conv 3×3 (``GROWTH`` new maps), concatenated onto the input.

    NOTE: torchvision concatenates all earlier maps before each layer; concatenating one layer's maps
    at a time onto the running stack gives the same tensor, channel for channel.
    """
    y = net.add("BatchNorm", f"{name}_bn1", x)
    y = net.add("ReLU", f"{name}_relu1", y)
    y = net.add("Conv2d", f"{name}_conv1", y, filters=BN_SIZE * GROWTH, kernel_size=1, padding=0, bias=False)
    y = net.add("BatchNorm", f"{name}_bn2", y)
    y = net.add("ReLU", f"{name}_relu2", y)
    y = net.add("Conv2d", f"{name}_conv2", y, filters=GROWTH, kernel_size=3, padding=1, bias=False)
    return net.add("Concatenate", f"{name}_concat", x, y)


def _dense_block(block: int, layers: int) -> UnitDef:
    """``layers`` dense layers (``layer1_bn1`` ...): each adds ``GROWTH`` maps to the stack it reads."""

    def build(net: Net, x: Port) -> str:
        y: Source = x
        for i in range(1, layers + 1):
            y = _dense_layer(net, y, f"layer{i}")
        return y

    return define(f"DenseBlock{block}", build)


def _transition(block: int, channels: int) -> UnitDef:
    """Between dense blocks: BN-ReLU, a 1×1 convolution to ``channels`` maps, a 2×2 average pool halving the size."""

    def build(net: Net, x: Port) -> str:
        y = net.add("BatchNorm", "bn", x)
        y = net.add("ReLU", "relu", y)
        y = net.add("Conv2d", "conv", y, filters=channels, kernel_size=1, padding=0, bias=False)
        return net.add("AvgPool2d", "pool", y, kernel_size=2, stride=2)

    return define(f"Transition{block}", build)


def densenet121() -> Graph:
    """DenseNet-121 as torchvision builds it; each dense block and each transition is a unit."""
    net = Net()
    x = net.image_input(3, IMAGENET_SIZE)
    x = net.conv_bn(x, "conv0", 64, 7, stride=2)
    x = net.add("MaxPool2d", "pool0", x, kernel_size=3, stride=2, padding=1)  # 64×56×56
    channels = 64
    for b, layers in enumerate(DENSENET121_BLOCKS, start=1):
        x = net.use(_dense_block(b, layers), f"denseblock{b}", x)
        channels += layers * GROWTH
        if b < len(DENSENET121_BLOCKS):  # transition: halve the maps and the size
            channels //= 2
            x = net.use(_transition(b, channels), f"transition{b}", x)
    x = net.add("BatchNorm", "bn5", x)  # 1024×7×7
    x = net.add("ReLU", "relu5", x)
    net.classifier(x, IMAGENET_CLASSES, name="classifier")
    return net.graph


#: EfficientNet-B0's MBConv stages: (expansion, kernel, first stride, output channels, blocks)
EFFICIENTNET_B0 = (
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def _squeeze_excitation(net: Net, x: str, channels: int, squeeze: int) -> str:
    """Average each channel, two 1×1 convolutions and a Sigmoid weigh the channels; Multiply applies the weights."""
    g = net.add("AdaptiveAvgPool2d", "se_pool", x, output_size=1)  # C×1×1
    g = net.add("Conv2d", "se_reduce", g, filters=squeeze, kernel_size=1, padding=0)
    g = net.add("SiLU", "se_silu", g)
    g = net.add("Conv2d", "se_expand", g, filters=channels, kernel_size=1, padding=0)
    g = net.add("Sigmoid", "se_gate", g)
    return net.add("Multiply", "se_scale", x, g)


def _mbconv(channels: int, filters: int, kernel: int, stride: int, t: int) -> UnitDef:
    """MobileNetV2's inverted residual with SiLU and squeeze-and-excitation (a quarter of the input's width).

    Named as :func:`_inverted_residual`'s are: ``MBConv40`` keeps its width, ``MBConv24To40`` changes it.
    """
    hidden = channels * t

    def build(net: Net, x: Port) -> str:
        y: Source = net.conv_bn(x, "expand", hidden, 1, act="SiLU") if t != 1 else x
        y = net.conv_bn(y, "dw", hidden, kernel, stride=stride, groups=hidden, act="SiLU")
        y = _squeeze_excitation(net, y, hidden, max(1, channels // 4))
        y = net.conv_bn(y, "project", filters, 1, act=None)
        # NOTE: torchvision drops the residual branch at random while training (stochastic depth); here it is kept.
        return net.add("Add", "add", y, x) if stride == 1 and channels == filters else y

    widths = f"{filters}" if stride == 1 and channels == filters else f"{channels}To{filters}"
    return define(f"MBConv{widths}", build)


def efficientnet_b0() -> Graph:
    """EfficientNet-B0 as torchvision builds it; each MBConv block is a unit (``block1`` .. ``block16``)."""
    net = Net()
    x = net.image_input(3, IMAGENET_SIZE)
    x, channels, n = net.conv_bn(x, "stem", 32, 3, stride=2, act="SiLU"), 32, 0  # 32×112×112
    for t, kernel, stride, filters, blocks in EFFICIENTNET_B0:
        first = _mbconv(channels, filters, kernel, stride, t)
        rest = _mbconv(filters, filters, kernel, 1, t) if blocks > 1 else first
        for i in range(blocks):
            n += 1
            x = net.use(first if i == 0 else rest, f"block{n}", x)
        channels = filters
    x = net.conv_bn(x, "head", 1280, 1, act="SiLU")  # 1280×7×7
    net.classifier(x, IMAGENET_CLASSES, dropout=0.2)
    return net.graph


def _twice(net: Net, x: Source, filters: int) -> str:
    """Two valid 3×3 convolutions with ReLU (``conv1``, ``relu1``, ``conv2``, ``relu2``): each trims 2 pixels."""
    x = net.conv_relu(x, "conv1", filters, 3, padding="valid")
    return net.conv_relu(x, "conv2", filters, 3, padding="valid")


def _unet_level(name: str, filters: int) -> UnitDef:
    """An encoder level (or the bottom): two valid convolutions."""
    return define(name, lambda net, x: _twice(net, x, filters))


def _unet_decoder(level: int, filters: int) -> UnitDef:
    """A decoder level: a 2×2 up-convolution of the level below, the encoder's maps (``skip``) cropped to its
    size and concatenated before it, two valid convolutions."""

    def build(net: Net, below: Port, skip: Port) -> str:
        up = net.add("ConvTranspose2d", "up", below, filters=filters, kernel_size=2, stride=2)
        crop = net.add("CropToMatch", "crop", skip, up)
        return _twice(net, net.add("Concatenate", "concat", crop, up), filters)

    return define(f"Decoder{level}", build, inputs=("below", "skip"))


def unet_paper() -> Graph:
    """U-Net as in Ronneberger et al. (2015): valid 3×3 convolutions, so every map shrinks, and the encoder's
    maps are cropped to the decoder's before they are concatenated; 572×572 in, 388×388 out. Each level of the
    encoder (``enc1`` ..), the bottom (``mid``) and each level of the decoder (``dec4`` ..) is a unit."""
    net = Net()
    x = net.image_input(1, UNET_PAPER_SIZE)
    skips = []
    for level, filters in enumerate((64, 128, 256, 512), start=1):
        x = net.use(_unet_level(f"Encoder{level}", filters), f"enc{level}", x)  # 568, 280, 136, 64
        skips.append(x)
        x = net.add("MaxPool2d", f"pool{level}", x, kernel_size=2, stride=2)
    x = net.use(_unet_level("Bottom", 1024), "mid", x)  # 1024×28×28
    x = net.add("Dropout", "dropout", x, p=0.5)  # the paper's drop-out at the end of the contracting path
    for level, filters in zip((4, 3, 2, 1), (512, 256, 128, 64)):
        x = net.use(_unet_decoder(level, filters), f"dec{level}", x, skips[level - 1])  # 52, 100, 196, 388
    x = net.add("Conv2d", "classifier", x, filters=UNET_PAPER_CLASSES, kernel_size=1, padding=0)
    net.add("SegmentationOutput", "output", x)
    return net.graph


def _digits(**kw: Any) -> dict[str, Any]:
    return {"dataset": "digits", "image_size": 32, "task": "classification", **kw}


def _shapes(task: str, **kw: Any) -> dict[str, Any]:
    return {"dataset": "shapes", "image_size": 32, "samples": 2000, "task": task, **kw}


def _adam(epochs: int, lr: float = 1e-3, batch_size: int = 64, **kw: Any) -> dict[str, Any]:
    return {"optimizer": "adam", "lr": lr, "batch_size": batch_size, "epochs": epochs, **kw}


def _image_folder() -> dict[str, Any]:
    """A person's own folder of class subfolders at ImageNet's 224×224: no path yet, so Train asks for one.

    NOTE: the data cannot be described before there is a path, so the data checks say nothing until then;
    set to a folder of fewer classes than 1000, they offer to set the last Dense layer's units.
    """
    return {"dataset": "image_folder", "image_size": IMAGENET_SIZE, "task": "classification", "augment": {"flip": True}}


def _sgd(epochs: int, lr: float = 0.01, batch_size: int = 32) -> dict[str, Any]:
    """SGD with momentum, weight decay and a cosine schedule, torchvision's recipe scaled to one GPU's batch."""
    return {
        "optimizer": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": batch_size,
        "epochs": epochs, "schedule": "cosine",
    }


#: The templates in teaching order (engine.templates lists them in this order too).
TEMPLATES = (
    Template(
        "perceptron",
        "Perceptron",
        "Rosenblatt's rule on two separable blobs: only a mistake moves the weights, by rate × target (±1) × input.",
        perceptron,
        {"dataset": "gaussians", "samples": 400, "task": "binary"},
        # NOTE: the perceptron rule is plain SGD on one sample at a time; the criterion is scale-free, so rate 1.
        {"optimizer": "sgd", "lr": 1.0, "momentum": 0.0, "batch_size": 1, "epochs": PERCEPTRON_EPOCHS},
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
        "universal_approximator",
        "Universal approximator: one hidden layer of sigmoids fits a curve",
        "Sixteen sigmoids in one hidden layer fit y = |x|, each a smooth step; data.function picks other curves.",
        universal_approximator,
        {"dataset": "regression1d", "samples": 1000, "noise": 0.05, "task": "regression", "function": "abs"},
        _adam(APPROXIMATOR_EPOCHS, lr=0.03, batch_size=32),
        probes={"cam_method": "off"},
        probe_layer="sigmoid",
    ),
    Template(
        "linear_classifier",
        "Linear classifier",
        "One Dense layer on the digits, its weights as templates: each class scores the image by one weighted sum.",
        linear_classifier,
        _digits(image_size=DIGITS_SIZE),
        _adam(30, lr=0.01),
        probes={"cam_method": "off"},
        probe_layer="linear",
    ),
    Template(
        "handcrafted_filters",
        "Hand-crafted filters",
        "Two frozen Sobel filters find the edges; small trained layers tell the shapes apart from those edge maps.",
        handcrafted_filters,
        _shapes("classification"),
        _adam(25, lr=3e-3),
        probe_layer="relu_edges",
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
    # The full-size networks: published parameter counts and multiply-accumulates (MACs) at 224×224.
    Template(
        "alexnet",
        "AlexNet",
        "torchvision's one-tower AlexNet: 5 convolutions, 3 dense layers; 61,100,840 parameters, 0.71 G MACs at 224×224.",
        alexnet,
        _image_folder(),
        _sgd(30),
        probe_layer="relu5",
    ),
    Template(
        "vgg16",
        "VGG16",
        "Thirteen 3×3 convolutions in five blocks, three dense layers: 138,357,544 parameters, 15.5 G MACs at 224×224.",
        vgg16,
        _image_folder(),
        _sgd(30),
        probe_layer="block5/relu3",
    ),
    Template(
        "googlenet",
        "GoogLeNet",
        "Inception v1 as torchvision builds it, no auxiliary heads: 6,624,904 parameters, 1.5 G MACs at 224×224.",
        googlenet,
        _image_folder(),
        _sgd(30),
        probe_layer="inception5b/branch2_relu",
    ),
    Template(
        "resnet18",
        "ResNet-18",
        "Eight basic residual blocks in four stages: 11,689,512 parameters, 1.8 G MACs at 224×224.",
        resnet18,
        _image_folder(),
        _sgd(30, lr=0.05, batch_size=64),
        probe_layer="layer4/block1/relu",
    ),
    Template(
        "resnet50",
        "ResNet-50",
        "Bottleneck blocks, stride on the 3×3 (v1.5): 25,557,032 parameters, 4.1 G MACs at 224×224.",
        resnet50,
        _image_folder(),
        _sgd(30, lr=0.05, batch_size=64),
        probe_layer="layer4/block2/relu",
    ),
    Template(
        "mobilenet_v2",
        "MobileNetV2",
        "Inverted residuals with linear bottlenecks and ReLU6: 3,504,872 parameters, 0.30 G MACs at 224×224.",
        mobilenet_v2,
        _image_folder(),
        _sgd(30, lr=0.05, batch_size=64),
        probe_layer="conv_last_relu6",
    ),
    Template(
        "densenet121",
        "DenseNet-121",
        "Every layer reads all earlier maps of its block: 7,978,856 parameters, 2.8 G MACs at 224×224.",
        densenet121,
        _image_folder(),
        _sgd(30, lr=0.05, batch_size=64),
        probe_layer="relu5",
    ),
    Template(
        "efficientnet_b0",
        "EfficientNet-B0",
        "MBConv blocks with SiLU and squeeze-and-excitation: 5,288,548 parameters, 0.39 G MACs at 224×224.",
        efficientnet_b0,
        _image_folder(),
        _sgd(30, lr=0.05, batch_size=64),
        probe_layer="head_silu",
    ),
    Template(
        "unet_paper",
        "U-Net (paper)",
        "The paper's U-Net: valid convolutions, cropped skips, 572×572 in, 388×388 out; 31,030,658 parameters, 150 G MACs.",
        unet_paper,
        # NOTE: the loaders size the masks like the Input (572×572), while the valid convolutions give
        # 388×388: until masks can be cut to the output's centre, the data checks refuse to train it.
        {"dataset": "npz", "image_size": UNET_PAPER_SIZE, "task": "segmentation"},
        {**_sgd(30, lr=0.01, batch_size=1), "momentum": 0.99},  # the paper's: one tile a batch, high momentum
        probes={"cam_method": "off"},
        probe_layer="mid/relu2",
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
    if template.probe_layer is not None:  # NOTE: a block inside units is named by its path (layer4/block1/relu)
        by_name = {n.name: nid for nid, n in flatten(graph).nodes.items()}
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

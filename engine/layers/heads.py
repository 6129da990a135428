"""Output heads: they mark a tensor as a model output and declare, once, how it trains.

A head has no module; in the generated ``forward`` its input is returned. A network
may have several heads (class + bounding box for localization); the model then
returns them as a tuple in the order the heads were added.

Each head's :class:`HeadSpec` (``LayerSpec.head``) says what it trains against, its
loss, its metrics with their bounds and direction, the score a run reports first,
the decision views that apply and how wide it must be for the data. The trainer,
the probes, the data checks, the dashboard and the sweep all read it. No PyTorch
here: the loss is named (a ``torch.nn.functional`` function, or one of
``engine.training.objectives.LOSSES`` where PyTorch has none) and the metrics'
accumulator too; :mod:`engine.training.objectives` resolves both.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.basics import TARGET_WORDS
from engine.errors import ShapeError
from engine.layers.registry import Code, LayerSpec, Param, register, shape_str

__all__ = ["LOSS", "VIEWS", "HeadSpec", "Metric"]

WEIGHT = Param(
    "weight",
    "float",
    1.0,
    "This head's share of the total loss, e.g. α for the class head and 1−α for the box head.",
    min=0.0,
    max=1000.0,
    label="Loss weight",
)

#: the decision views a head may offer (the Insight dock's), and what each shows
VIEWS = {
    "confusion": "confusion matrix and the accuracy of each class (needs class labels)",
    "regions": "decision regions over a 2-D input",
    "curve": "the fitted curve over a 1-D input",
    "masks": "the masks predicted for the probe images",
    "boxes": "the boxes predicted for the probe images",
    "class_maps": "class activation maps (CAM, Grad-CAM) of the class scores",
}

#: what a head's input holds -> the tags the analysis reads (a softmax or sigmoid before it is applied twice)
_OUTPUT_TAGS = {"class_scores": {"softmax_inside"}, "logits": {"sigmoid_inside"}, "signs": set(), "values": set()}


@dataclass(frozen=True)
class Metric:
    """One score: its key in the metrics, its title in words, the values it can take and which way is better.

    ``low`` / ``high`` are the bounds every value keeps to (None where unbounded): the plots reach
    exactly to them, and a test holds every computed value to them.
    """

    key: str
    title: str
    low: float | None = None
    high: float | None = None
    higher_is_better: bool = True

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        return self.low, self.high

    def better(self, new: float, old: float) -> bool:
        """Whether ``new`` beats ``old`` (False for equals, and for NaN)."""
        return new > old if self.higher_is_better else new < old

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies within the bounds."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


#: the loss, as every head reports it (summed over the heads by their weights): lower is better
LOSS = Metric("loss", "loss", low=0.0, higher_is_better=False)


@dataclass(frozen=True)
class HeadSpec:
    """How one output block trains and what it shows; see the module docstring.

    Attributes:
        target: the data set's target it trains against (a key of ``TARGET_WORDS``).
        output: what its input holds: ``"class_scores"`` (one raw score per class along the first
            dimension, against class indices), ``"logits"`` (raw scores of yes/no questions, against
            0/1 targets shaped like them), ``"signs"`` (raw scores of yes/no questions whose sign is the answer,
            above 0 for yes, against the same 0/1 targets coded ±1: a perceptron's) or ``"values"`` (the
            predictions themselves).
        loss: the loss, by name: a ``torch.nn.functional`` function, or one of
            ``engine.training.objectives.LOSSES``; ``loss_words`` the same in words.
        sums: how the metrics accumulate over batches (an accumulator of :mod:`engine.training.objectives`).
        metrics: the scores it reports, in that order; ``main`` the key of the one a run reports first
            and a sweep chooses by.
        views: the decision views that apply (keys of :data:`VIEWS`).
        width: how many outputs it must give for the data: a field of ``engine.datafacts.DataFacts``
            (``"classes"``), or a number; ``flat`` counts every number it gives (a regression's)
            rather than its first dimension.
    """

    target: str
    output: str
    loss: str
    loss_words: str
    sums: str
    metrics: tuple[Metric, ...]
    main: str
    views: frozenset[str]
    width: str | int
    flat: bool = False

    def __post_init__(self) -> None:
        if self.target not in TARGET_WORDS or self.output not in _OUTPUT_TAGS or not self.views <= set(VIEWS):
            raise ValueError(f"a head declaration names an unknown target, output or view: {self}")
        if self.main not in {m.key for m in self.metrics}:
            raise ValueError(f"the main metric {self.main!r} is not among the head's metrics")

    @property
    def target_words(self) -> str:
        """What the learner must provide, in words ("class labels")."""
        return TARGET_WORDS[self.target]

    @property
    def main_metric(self) -> Metric:
        return next(m for m in self.metrics if m.key == self.main)


def _check_classes(title):
    def check(s):
        if len(s) != 1 or s[0] < 2:
            raise ShapeError(
                f"{title} needs a vector of at least 2 class scores, not {shape_str(s)}: "
                "end with Dense(units = number of classes)"
            )

    return check


def _check_seg(s):
    if len(s) != 3 or s[0] < 2:
        raise ShapeError(
            f"Segmentation output needs classes×height×width scores, not {shape_str(s)}: end with a "
            "1×1 Conv2d whose filters equal the number of classes"
        )


def _check_box(s):
    if s != (4,):
        raise ShapeError(f"Box output needs 4 numbers (x, y, width, height), not {shape_str(s)}: end with Dense(4)")


def _check_binary(s):
    if len(s) != 1:
        raise ShapeError(f"Binary output needs a vector of scores, not {shape_str(s)}: end with Dense(1)")


def _check_perceptron(s):
    if len(s) != 1:
        raise ShapeError(f"Perceptron output needs a vector of scores, not {shape_str(s)}: end with Dense(1)")


def _head(type_id, title, torch_loss, head, doc, check, tags=()):
    def shape(p, ins):
        check(ins[0])
        return ins[0]

    register(
        LayerSpec(
            type_id=type_id,
            title=title,
            category="Output",
            doc=doc,
            params=(WEIGHT,),
            outputs=0,
            role="head",
            default_name=title.split()[0].lower(),
            brief=lambda p: f"loss ×{p['weight']:g}",
            torch_names=(torch_loss,) if torch_loss else (),
            shape=shape,
            code=lambda p, ins: Code(None),
            tags=frozenset(_OUTPUT_TAGS[head.output] | set(tags)),
            head=head,
        )
    )


ACCURACY = Metric("accuracy", "accuracy", 0.0, 1.0)

_head(
    "ClassificationOutput",
    "Class output",
    "CrossEntropyLoss",
    HeadSpec(
        target="label", output="class_scores", loss="cross_entropy", loss_words="cross-entropy", sums="classes",
        metrics=(ACCURACY,), main="accuracy", views=frozenset({"confusion", "regions", "class_maps"}),
        width="classes",
    ),
    "Marks the network's class scores (one raw score, or logit, per class) and trains them "
    "with cross-entropy, which applies softmax itself. Connect it to a Dense layer with one "
    "unit per class, without a Softmax in between.",
    _check_classes("Class output"),
    tags=("packaged",),
)
_head(
    "BinaryOutput",
    "Binary output",
    "BCEWithLogitsLoss",
    HeadSpec(
        target="binary", output="logits", loss="binary_cross_entropy_with_logits",
        loss_words="binary cross-entropy", sums="binary", metrics=(ACCURACY,), main="accuracy",
        views=frozenset({"confusion", "regions", "class_maps"}), width="binary_width",
    ),
    "Marks one raw score per yes/no question (one for binary classification, several for "
    "multi-label) and trains it with binary cross-entropy on logits, which applies the "
    "sigmoid itself.",
    _check_binary,
    tags=("packaged",),
)
_head(
    "PerceptronOutput",
    "Perceptron output",
    None,  # NOTE: PyTorch has no perceptron criterion: engine.training.objectives declares it
    HeadSpec(
        target="binary", output="signs", loss="perceptron_criterion", loss_words="perceptron criterion",
        sums="binary", metrics=(ACCURACY,), main="accuracy", views=frozenset({"confusion", "regions"}),
        width="binary_width",
    ),
    "Rosenblatt's perceptron: the sign of one raw score is the class (above 0: class 1). It trains "
    "with the perceptron criterion, which costs nothing for a correctly classified sample and the "
    "score's distance from 0 for a wrong one: with SGD on one sample at a time, the weights move "
    "only on mistakes, by the learning rate × the target (±1) × the input.",
    _check_perceptron,
    tags=("packaged",),
)
_head(
    "RegressionOutput",
    "Regression output",
    "MSELoss",
    HeadSpec(
        target="value", output="values", loss="mse_loss", loss_words="mean squared error", sums="values",
        metrics=(Metric("mae", "MAE", 0.0, None, higher_is_better=False), Metric("r2", "R²", None, 1.0)),
        main="r2", views=frozenset({"curve"}), width="value_width", flat=True,
    ),
    "Marks real-valued predictions and trains them with the mean squared error, the "
    "maximum-likelihood loss under Gaussian noise.",
    lambda s: None,
    tags=("packaged",),
)
_head(
    "SegmentationOutput",
    "Segmentation output",
    "CrossEntropyLoss",
    HeadSpec(
        target="mask", output="class_scores", loss="cross_entropy", loss_words="per-pixel cross-entropy",
        sums="pixels", metrics=(Metric("pixel_accuracy", "pixel accuracy", 0.0, 1.0), Metric("iou", "IoU", 0.0, 1.0)),
        main="iou", views=frozenset({"masks"}), width="mask_classes",
    ),
    "Marks per-pixel class scores (classes×height×width) and trains them with pixel-wise "
    "cross-entropy against a mask of class indices, as in U-Net.",
    _check_seg,
    tags=("packaged",),
)
_head(
    "BoxOutput",
    "Box output",
    "MSELoss",
    HeadSpec(
        target="box", output="values", loss="mse_loss", loss_words="mean squared error of the box", sums="boxes",
        metrics=(Metric("box_iou", "box IoU", 0.0, 1.0), Metric("box_mae", "box MAE", 0.0, None, higher_is_better=False)),
        main="box_iou", views=frozenset({"boxes"}), width=4,
    ),
    "Marks a bounding box of 4 numbers (x, y, width, height, as fractions of the image) and "
    "trains it by regression. Together with a class output and loss weights α and 1−α it "
    "makes a localization network.",
    _check_box,
)

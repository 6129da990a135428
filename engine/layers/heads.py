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

Where a real alternative exists (the course compares MSE on one-hot targets with cross-entropy), a head
declares several :class:`LossChoice` s, the first its default; the block then gets a ``loss`` setting
(:func:`loss_param`) that is saved only when it is not the default, so older projects read and write as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.basics import TARGET_WORDS
from engine.errors import ShapeError
from engine.layers.registry import Code, LayerSpec, Param, register, shape_str

__all__ = ["LOSS", "MEETS", "VIEWS", "HeadSpec", "LossChoice", "Metric", "loss_param"]

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

#: how a loss meets the target: what it is given as (output, target) (engine.training.objectives.loss_inputs)
MEETS = {
    "indices": "the raw class scores against the class indices",
    "one_hot": "the softmax of the class scores against one-hot targets",
    "sigmoid": "the sigmoid of the scores against the 0/1 targets",
    "shaped": "the output against the targets as numbers shaped like it",
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
class LossChoice:
    """One loss an output block can train with.

    Attributes:
        key: the value of the block's ``loss`` setting that picks it (saved in project files).
        words: its name in words ("mean absolute error"); ``short`` the same for the canvas ("MAE").
        function: a ``torch.nn.functional`` function, or one of ``engine.training.objectives.LOSSES``.
        meets: how the output meets the target (a key of :data:`MEETS`).
    """

    key: str
    words: str
    short: str
    function: str
    meets: str

    def __post_init__(self) -> None:
        if self.meets not in MEETS:
            raise ValueError(f"a loss choice names an unknown way to meet the target: {self}")


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
        losses: the losses it can train with, its default first (:class:`LossChoice`); ``loss`` and
            ``loss_words`` are the default's function and words.
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
    losses: tuple[LossChoice, ...]
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
        if not self.losses or len({c.key for c in self.losses}) != len(self.losses):
            raise ValueError(f"a head declares no loss, or two losses by one key: {self}")

    @property
    def target_words(self) -> str:
        """What the learner must provide, in words ("class labels")."""
        return TARGET_WORDS[self.target]

    @property
    def main_metric(self) -> Metric:
        return next(m for m in self.metrics if m.key == self.main)

    @property
    def default_loss(self) -> LossChoice:
        return self.losses[0]

    @property
    def loss(self) -> str:
        """The default loss's function name."""
        return self.default_loss.function

    @property
    def loss_words(self) -> str:
        """The default loss in words."""
        return self.default_loss.words

    def loss_choice(self, key: str | None = None) -> LossChoice:
        """The loss picked by the block's ``loss`` setting ``key`` (None: the default).

        KeyError naming the choices for a key this head does not offer (the block's setting refuses it first).
        """
        if key is None:
            return self.default_loss
        for choice in self.losses:
            if choice.key == key:
                return choice
        raise KeyError(f"there is no loss {key!r} here: choose {', '.join(repr(c.key) for c in self.losses)}")


def loss_param(head: HeadSpec, why: str) -> Param:
    """The ``loss`` setting of a block whose ``head`` offers several losses; ``why`` ends its tooltip."""
    words = "; ".join(f"{c.key}: {c.words}" for c in head.losses)
    return Param(
        "loss",
        "choice",
        head.default_loss.key,
        f"What this output trains with ({words}). {why}",
        choices=tuple(c.key for c in head.losses),
        label="Loss",
        omit_default=True,
    )


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


def _brief(head: HeadSpec):
    """The canvas line: the loss weight, and the loss where it is not the default ("loss ×1 · MAE")."""

    def brief(p):
        text = f"loss ×{p['weight']:g}"
        key = p.get("loss", head.default_loss.key)
        return text if key == head.default_loss.key else f"{text} · {head.loss_choice(key).short}"

    return brief


def _head(type_id, title, torch_loss, head, doc, check, tags=(), loss_why=""):
    def shape(p, ins):
        check(ins[0])
        return ins[0]

    params = (WEIGHT, loss_param(head, loss_why)) if len(head.losses) > 1 else (WEIGHT,)

    register(
        LayerSpec(
            type_id=type_id,
            title=title,
            category="Output",
            doc=doc,
            params=params,
            outputs=0,
            role="head",
            default_name=title.split()[0].lower(),
            brief=_brief(head),
            torch_names=(torch_loss,) if torch_loss else (),
            shape=shape,
            code=lambda p, ins: Code(None),
            tags=frozenset(_OUTPUT_TAGS[head.output] | set(tags)),
            head=head,
        )
    )


ACCURACY = Metric("accuracy", "accuracy", 0.0, 1.0)
CROSS_ENTROPY = LossChoice("cross_entropy", "cross-entropy", "CE", "cross_entropy", "indices")
MSE = LossChoice("mse", "mean squared error", "MSE", "mse_loss", "shaped")

_head(
    "ClassificationOutput",
    "Class output",
    "CrossEntropyLoss",
    HeadSpec(
        target="label", output="class_scores", sums="classes",
        losses=(
            CROSS_ENTROPY,
            LossChoice("mse_one_hot", "MSE on one-hot targets", "1-hot MSE", "mse_loss", "one_hot"),
            LossChoice("hinge", "multi-class hinge", "hinge", "multi_margin_loss", "indices"),
        ),
        metrics=(ACCURACY,), main="accuracy", views=frozenset({"confusion", "regions", "class_maps"}),
        width="classes",
    ),
    "Marks the network's class scores (one raw score, or logit, per class) and trains them "
    "with cross-entropy, which applies softmax itself. Connect it to a Dense layer with one "
    "unit per class, without a Softmax in between.",
    _check_classes("Class output"),
    tags=("packaged",),
    loss_why="Cross-entropy is the likelihood of the classes. MSE on one-hot targets learns slower: the softmax "
    "saturates, so a confidently wrong score gets almost no gradient, where cross-entropy's grows with the "
    "error. The multi-class hinge (an SVM's) stops pushing once the right score leads the others by a margin of 1.",
)
_head(
    "BinaryOutput",
    "Binary output",
    "BCEWithLogitsLoss",
    HeadSpec(
        target="binary", output="logits", sums="binary",
        losses=(
            LossChoice("bce", "binary cross-entropy", "BCE", "binary_cross_entropy_with_logits", "shaped"),
            LossChoice("mse_sigmoid", "MSE on the sigmoid", "σ MSE", "mse_loss", "sigmoid"),
        ), metrics=(ACCURACY,), main="accuracy",
        views=frozenset({"confusion", "regions", "class_maps"}), width="binary_width",
    ),
    "Marks one raw score per yes/no question (one for binary classification, several for "
    "multi-label) and trains it with binary cross-entropy on logits, which applies the "
    "sigmoid itself.",
    _check_binary,
    tags=("packaged",),
    loss_why="Binary cross-entropy is the likelihood of the 0/1 answers. MSE on the sigmoid learns slower: the "
    "sigmoid saturates, so a confidently wrong score gets almost no gradient.",
)
_head(
    "PerceptronOutput",
    "Perceptron output",
    None,  # NOTE: PyTorch has no perceptron criterion: engine.training.objectives declares it
    HeadSpec(
        target="binary", output="signs", sums="binary",
        losses=(LossChoice("perceptron", "perceptron criterion", "perceptron", "perceptron_criterion", "shaped"),), metrics=(ACCURACY,), main="accuracy", views=frozenset({"confusion", "regions"}),
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
        target="value", output="values", sums="values",
        losses=(
            MSE,
            LossChoice("mae", "mean absolute error", "MAE", "l1_loss", "shaped"),
            LossChoice("huber", "Huber", "Huber", "huber_loss", "shaped"),
        ),
        metrics=(Metric("mae", "MAE", 0.0, None, higher_is_better=False), Metric("r2", "R²", None, 1.0)),
        main="r2", views=frozenset({"curve"}), width="value_width", flat=True,
    ),
    "Marks real-valued predictions and trains them with the mean squared error, the "
    "maximum-likelihood loss under Gaussian noise.",
    lambda s: None,
    tags=("packaged",),
    loss_why="The mean squared error is the likelihood under Gaussian noise; the mean absolute error under "
    "Laplace noise (outliers weigh less); Huber is squared for errors below 1 and absolute above.",
)
_head(
    "SegmentationOutput",
    "Segmentation output",
    "CrossEntropyLoss",
    HeadSpec(
        target="mask", output="class_scores", sums="pixels",
        losses=(LossChoice("cross_entropy", "per-pixel cross-entropy", "CE", "cross_entropy", "indices"),), metrics=(Metric("pixel_accuracy", "pixel accuracy", 0.0, 1.0), Metric("iou", "IoU", 0.0, 1.0)),
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
        target="box", output="values", sums="boxes",
        losses=(LossChoice("mse", "mean squared error of the box", "MSE", "mse_loss", "shaped"),),
        metrics=(Metric("box_iou", "box IoU", 0.0, 1.0), Metric("box_mae", "box MAE", 0.0, None, higher_is_better=False)),
        main="box_iou", views=frozenset({"boxes"}), width=4,
    ),
    "Marks a bounding box of 4 numbers (x, y, width, height, as fractions of the image) and "
    "trains it by regression. Together with a class output and loss weights α and 1−α it "
    "makes a localization network.",
    _check_box,
)

"""Output heads: they mark a tensor as a model output and name the loss it trains with.

A head has no module; in the generated ``forward`` its input is returned. A network
may have several heads (class + bounding box for localization); the model then
returns them as a tuple in the order the heads were added.
"""

from engine.errors import ShapeError
from engine.layers.registry import Code, LayerSpec, Param, register, shape_str

WEIGHT = Param(
    "weight",
    "float",
    1.0,
    "This head's share of the total loss, e.g. α for the class head and 1−α for the box head.",
    min=0.0,
    max=1000.0,
    label="Loss weight",
)

#: type id -> (title, loss name, tags, explanation, shape check)
HEADS = {}


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


def _head(type_id, title, loss, torch_loss, tags, doc, check):
    def shape(p, ins):
        check(ins[0])
        return ins[0]

    HEADS[type_id] = loss
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
            torch_names=(torch_loss,),
            shape=shape,
            code=lambda p, ins: Code(None),
            tags=frozenset(tags),
        )
    )


_head(
    "ClassificationOutput",
    "Class output",
    "cross_entropy",
    "CrossEntropyLoss",
    {"softmax_inside"},
    "Marks the network's class scores (one raw score, or logit, per class) and trains them "
    "with cross-entropy, which applies softmax itself. Connect it to a Dense layer with one "
    "unit per class, without a Softmax in between.",
    _check_classes("Class output"),
)
_head(
    "BinaryOutput",
    "Binary output",
    "binary_cross_entropy",
    "BCEWithLogitsLoss",
    {"sigmoid_inside"},
    "Marks one raw score per yes/no question (one for binary classification, several for "
    "multi-label) and trains it with binary cross-entropy on logits, which applies the "
    "sigmoid itself.",
    _check_binary,
)
_head(
    "RegressionOutput",
    "Regression output",
    "mse",
    "MSELoss",
    set(),
    "Marks real-valued predictions and trains them with the mean squared error, the "
    "maximum-likelihood loss under Gaussian noise.",
    lambda s: None,
)
_head(
    "SegmentationOutput",
    "Segmentation output",
    "pixel_cross_entropy",
    "CrossEntropyLoss",
    {"softmax_inside"},
    "Marks per-pixel class scores (classes×height×width) and trains them with pixel-wise "
    "cross-entropy against a mask of class indices, as in U-Net.",
    _check_seg,
)
_head(
    "BoxOutput",
    "Box output",
    "box_mse",
    "MSELoss",
    set(),
    "Marks a bounding box of 4 numbers (x, y, width, height, as fractions of the image) and "
    "trains it by regression. Together with a class output and loss weights α and 1−α it "
    "makes a localization network.",
    _check_box,
)

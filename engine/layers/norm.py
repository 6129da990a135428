"""Batch normalization and dropout."""

from engine.errors import ShapeError
from engine.layers import shapes
from engine.layers.common import call
from engine.layers.registry import Code, LayerSpec, Param, register, shape_str


def _bn_shape(p, ins):
    (s,) = ins
    if len(s) not in (1, 3):
        raise ShapeError(f"BatchNorm works on vectors or images, not on a {shape_str(s)} tensor")
    return s


def _bn_code(p, ins):
    kind = "nn.BatchNorm1d" if len(ins[0]) == 1 else "nn.BatchNorm2d"
    return Code(
        call(
            kind,
            ins[0][0],
            eps=p["eps"] if p["eps"] != 1e-5 else None,
            momentum=p["momentum"] if p["momentum"] != 0.1 else None,
        )
    )


register(
    LayerSpec(
        type_id="BatchNorm",
        title="BatchNorm",
        torch_names=("BatchNorm1d", "BatchNorm2d"),
        category="Normalization",
        doc=(
            "Normalizes each feature (or channel) to zero mean and unit variance over the "
            "mini-batch, then rescales with a learned γ and shifts with a learned β. It "
            "steadies and speeds up training and allows higher learning rates. At test time "
            "it uses running averages kept during training. 1d for vectors, 2d for images, "
            "chosen from the input."
        ),
        params=(
            Param("momentum", "float", 0.1, "Weight of the newest batch in the running averages.", min=0.0, max=1.0),
            Param("eps", "float", 1e-5, "Small number added to the variance to avoid dividing by zero.", min=1e-12, max=1.0),
        ),
        default_name="bn",
        shape=_bn_shape,
        code=_bn_code,
        param_count=lambda p, ins, out: (2 * ins[0][0], 2 * ins[0][0]),
        tags=frozenset({"transparent"}),
    )
)

_P = "Probability that each value is zeroed during training."

register(
    LayerSpec(
        type_id="Dropout",
        title="Dropout",
        torch_names=("Dropout",),
        category="Regularization",
        doc=(
            "During training, zeroes each value at random with probability p and scales the "
            "rest by 1/(1−p); at test time it does nothing. Units cannot rely on each other, "
            "which reduces overfitting, like training an ensemble of thinner networks."
        ),
        params=(Param("p", "float", 0.5, _P, min=0.0, max=0.99),),
        default_name="dropout",
        shape=lambda p, ins: ins[0],
        code=lambda p, ins: Code(call("nn.Dropout", p=p["p"])),
        tags=frozenset({"transparent"}),
    )
)

register(
    LayerSpec(
        type_id="Dropout2d",
        title="Dropout2d",
        torch_names=("Dropout2d",),
        category="Regularization",
        doc=(
            "Spatial dropout: during training, zeroes whole channels of an image-shaped tensor "
            "at random with probability p. Neighbouring pixels are strongly correlated, so "
            "dropping whole feature maps regularizes convolutions better than single values."
        ),
        params=(Param("p", "float", 0.2, _P.replace("value", "channel"), min=0.0, max=0.99),),
        default_name="dropout2d",
        shape=lambda p, ins: shapes.image("Dropout2d", ins),
        code=lambda p, ins: Code(call("nn.Dropout2d", p=p["p"])),
        tags=frozenset({"transparent"}),
    )
)

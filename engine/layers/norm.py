"""Batch normalization, local response normalization and dropout."""

from engine.errors import ShapeError
from engine.layers import shapes
from engine.layers.common import call, num
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
        brief=lambda p: f"m={num(p['momentum'])} ε={num(p['eps'])}",
        shape=_bn_shape,
        code=_bn_code,
        param_count=lambda p, ins, out: (2 * ins[0][0], 2 * ins[0][0]),
        learns=True,
        tags=frozenset({"transparent", "linear_tail", "running_stats"}),
    )
)

def _lrn_code(p, ins):
    return Code(
        call(
            "nn.LocalResponseNorm",
            p["size"],
            alpha=p["alpha"] if p["alpha"] != 1e-4 else None,
            beta=p["beta"] if p["beta"] != 0.75 else None,
            k=p["k"] if p["k"] != 1.0 else None,
        )
    )


register(
    LayerSpec(
        type_id="LocalResponseNorm",
        title="LocalResponseNorm",
        torch_names=("LocalResponseNorm",),
        category="Normalization",
        doc=(
            "AlexNet's local response normalization: each value is divided by "
            "(k + α/n · sum of the squares of the n neighbouring channels at the same pixel)^β, "
            "so a strongly active channel damps its neighbours (lateral inhibition). It has no "
            "learned weights; batch normalization has since replaced it. AlexNet used n=5, "
            "α=1e-4, β=0.75, k=2."
        ),
        params=(
            Param("size", "int", 5, "How many neighbouring channels (n) each sum covers.", min=1, max=64),
            Param("alpha", "float", 1e-4, "Scale α of the sum of squares.", min=0.0, max=10.0),
            Param("beta", "float", 0.75, "Exponent β of the divisor.", min=0.0, max=10.0),
            Param("k", "float", 2.0, "Constant k added to the scaled sum.", min=0.0, max=100.0),
        ),
        default_name="lrn",
        brief=lambda p: f"n={p['size']} α={num(p['alpha'])} β={num(p['beta'])} k={num(p['k'])}",
        shape=lambda p, ins: shapes.image("LocalResponseNorm", ins),
        code=_lrn_code,
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
        brief=lambda p: f"p={num(p['p'])}",
        shape=lambda p, ins: ins[0],
        code=lambda p, ins: Code(call("nn.Dropout", p=p["p"])),
        tags=frozenset({"transparent", "linear_tail"}),
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
        brief=lambda p: f"p={num(p['p'])}",
        shape=lambda p, ins: shapes.image("Dropout2d", ins),
        code=lambda p, ins: Code(call("nn.Dropout2d", p=p["p"])),
        tags=frozenset({"transparent", "linear_tail"}),
    )
)

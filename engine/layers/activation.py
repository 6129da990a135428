"""Activation functions: elementwise nonlinearities (and Identity)."""

from engine.errors import ShapeError
from engine.layers.common import call, num
from engine.layers.registry import Code, LayerSpec, Param, register


def _activation(type_id, doc, code, params=(), tags=("nonlinear",), shape=None, brief=None):
    return register(
        LayerSpec(
            type_id=type_id,
            title=type_id,
            category="Activation",
            doc=doc,
            params=params,
            default_name=type_id.lower(),
            torch_names=(type_id,),  # NOTE: each is named as in torch.nn
            shape=shape or (lambda p, ins: ins[0]),
            code=lambda p, ins: Code(code(p)),
            tags=frozenset(tags),
            brief=brief,
        )
    )


_activation(
    "ReLU",
    "Rectified linear unit, max(0, x): passes positive values and zeroes negative ones. Its "
    "gradient is 1 wherever the unit is active, so deep stacks train well; a unit whose input "
    "stays negative for every sample stops learning (a 'dead' ReLU).",
    lambda p: "nn.ReLU()",
    tags=("nonlinear", "can_die"),
)
_activation(
    "LeakyReLU",
    "Like ReLU, but negative inputs are multiplied by a small slope instead of zeroed, so "
    "every unit keeps a gradient and cannot die.",
    lambda p: call("nn.LeakyReLU", negative_slope=p["negative_slope"] if p["negative_slope"] != 0.01 else None),
    params=(Param("negative_slope", "float", 0.01, "Slope for negative inputs.", min=0.0, max=1.0, label="Slope"),),
    brief=lambda p: f"slope {num(p['negative_slope'])}",
)
_activation(
    "ReLU6",
    "ReLU capped at 6, min(max(0, x), 6): MobileNet's activation. The cap keeps activations in a "
    "small range that low-precision arithmetic on phones represents well; below 0 a unit is off "
    "and can die as a ReLU's can.",
    lambda p: "nn.ReLU6()",
    tags=("nonlinear", "can_die"),
)
_activation(
    "SiLU",
    "Sigmoid-weighted linear unit, also called swish: x·sigmoid(x). Smooth, slightly negative for "
    "small negative inputs and close to ReLU for large ones; EfficientNet uses it throughout.",
    lambda p: "nn.SiLU()",
)
_activation(
    "ELU",
    "Exponential linear unit: x for positive inputs, α(eˣ − 1) for negative ones. Smooth, "
    "with mean activations closer to zero than ReLU's.",
    lambda p: call("nn.ELU", alpha=p["alpha"] if p["alpha"] != 1.0 else None),
    params=(Param("alpha", "float", 1.0, "Value the output approaches for very negative inputs (−α).", min=0.0, max=10.0),),
    brief=lambda p: f"α={num(p['alpha'])}",
)
_activation(
    "Tanh",
    "Hyperbolic tangent, output in (−1, 1), centred on zero. It saturates for large inputs, "
    "where its gradient is almost zero; many Tanh layers in a row make gradients vanish.",
    lambda p: "nn.Tanh()",
    tags=("nonlinear", "saturating"),
)
_activation(
    "Sigmoid",
    "Logistic function 1/(1 + e⁻ˣ), output in (0, 1). Its gradient is at most 0.25, so a "
    "stack of sigmoids shrinks gradients layer after layer (vanishing gradients). Useful as "
    "the last step of a binary output when the loss does not include it.",
    lambda p: "nn.Sigmoid()",
    tags=("nonlinear", "saturating", "sigmoid"),
)


def _softmax_shape(p, ins):
    if len(ins[0]) not in (1, 3):
        raise ShapeError("Softmax normalizes over features or channels; its input must be a vector or an image")
    return ins[0]


_activation(
    "Softmax",
    "Turns a vector of scores into probabilities that are positive and sum to one (over "
    "channels for images). Do not put it before a cross-entropy output: that loss already "
    "applies softmax to raw scores.",
    lambda p: "nn.Softmax(dim=1)",
    tags=("nonlinear", "softmax"),
    shape=_softmax_shape,
)
_activation(
    "Identity",
    "Passes its input through unchanged. Handy as a named junction or a placeholder while "
    "sketching.",
    lambda p: "nn.Identity()",
    tags=("transparent", "linear_tail"),
)

"""Dense (fully connected), Flatten and Reshape."""

from engine.errors import ShapeError
from engine.layers import shapes
from engine.layers.common import BIAS, call
from engine.layers.registry import MAX_SIZE, Code, LayerSpec, Param, numel, register, shape_str


def _dense_shape(p, ins):
    shapes.vector("Dense", ins)
    return (p["units"],)


def _dense_params(p, ins, out):
    (f,) = ins[0]
    return f * p["units"] + (p["units"] if p["bias"] else 0), 0


register(
    LayerSpec(
        type_id="Dense",
        title="Dense",
        torch_names=("Linear",),
        category="Dense",
        doc=(
            "A fully connected layer: every output unit is a weighted sum of every input "
            "feature plus a bias (y = Wx + b). On its own it is linear; follow it with an "
            "activation such as ReLU so that stacked layers can model more than a straight "
            "boundary. It needs a vector input: put Flatten or a global pooling before it "
            "when the input is an image."
        ),
        params=(Param("units", "int", 64, "How many output units (neurons).", min=1, max=MAX_SIZE), BIAS),
        default_name="fc",
        brief=lambda p: str(p["units"]) + ("" if p["bias"] else " no bias"),
        shape=_dense_shape,
        code=lambda p, ins: Code(call("nn.Linear", ins[0][0], p["units"], bias=None if p["bias"] else False)),
        param_count=_dense_params,
        macs=lambda p, ins, out: ins[0][0] * p["units"],
        has_weights=True,
        linear=True,
        tags=frozenset({"linear_tail"}),
    )
)

register(
    LayerSpec(
        type_id="Flatten",
        title="Flatten",
        torch_names=("Flatten",),
        category="Reshape",
        doc=(
            "Unrolls an image-shaped tensor (channels×height×width) into one long vector so "
            "that Dense layers can read it. It has no parameters; the spatial arrangement is "
            "lost, which is why a network that flattens is not shift invariant."
        ),
        shape=lambda p, ins: (numel(ins[0]),),
        code=lambda p, ins: Code("nn.Flatten()"),
        linear=True,
        tags=frozenset({"transparent", "linear_tail"}),
    )
)


def _reshape_shape(p, ins):
    target = tuple(p["shape"])
    if numel(target) != numel(ins[0]):
        raise ShapeError(
            f"Reshape to {shape_str(target)} ({numel(target)} values) cannot take "
            f"{shape_str(ins[0])} ({numel(ins[0])} values): the counts must be equal"
        )
    return target


def _reshape_code(p, ins):
    dims = ", ".join(str(d) for d in p["shape"])
    return Code(None, forward=lambda attr, args: f"{args[0]}.reshape(-1, {dims})")


register(
    LayerSpec(
        type_id="Reshape",
        title="Reshape",
        torch_names=("Unflatten", "Tensor.view", "torch.reshape"),
        category="Reshape",
        doc=(
            "Rearranges the values of each sample into a new shape with the same number of "
            "values, e.g. a vector of 256 into 16×4×4 so that convolutions can follow a "
            "Dense layer. Give the target as sizes separated by commas."
        ),
        params=(Param("shape", "shape", (16, 4, 4), "Target shape without the batch, e.g. 16,4,4.", min=1, max=MAX_SIZE * 16),),
        brief=lambda p: f"to {shape_str(tuple(p['shape']))}",
        shape=_reshape_shape,
        code=_reshape_code,
        linear=True,
        tags=frozenset({"transparent", "linear_tail"}),
    )
)

"""Merges: Add (residual), Multiply (gating), Concatenate (Inception, U-Net) and Crop-to-match (U-Net skips)."""

from engine.errors import ShapeError
from engine.layers import shapes
from engine.layers.registry import RF, Code, LayerSpec, Param, register, shape_str

_N_INPUTS = Param("inputs", "int", 2, "How many input ports.", min=2, max=8)


def _inputs_brief(p):
    """How many inputs a merge takes: its one setting."""
    return f"{p['inputs']} inputs"


def _add_shape(p, ins):
    first = ins[0]
    for other in ins[1:]:
        if other != first:
            raise ShapeError(
                f"Add needs equal shapes: {shape_str(first)} and {shape_str(other)} differ in "
                f"{shapes.describe_difference(first, other)}"
            )
    return first


register(
    LayerSpec(
        type_id="Add",
        title="Add",
        torch_names=("torch.add",),
        category="Merge",
        doc=(
            "Adds its inputs element by element; they must have exactly the same shape. This "
            "is ResNet's shortcut: a block learns a residual F(x) and outputs F(x) + x, so the "
            "gradient has a direct path back through the identity."
        ),
        params=(_N_INPUTS,),
        inputs="inputs",
        role="merge",
        default_name="add",
        brief=_inputs_brief,
        shape=_add_shape,
        code=lambda p, ins: Code(None, forward=lambda attr, args: " + ".join(args)),
    )
)


def _mul_shape(p, ins):
    """Torch's broadcasting, kept to what gating needs: every axis equal or 1, an image's height
    and width both equal or both 1 (a C×1×1 gate scales whole channels)."""
    first = ins[0]
    for other in ins[1:]:
        if len(other) != len(first):
            raise ShapeError(
                f"Multiply cannot combine {shape_str(first)} and {shape_str(other)}: "
                f"{shapes.describe_difference(first, other)} differs"
            )
    out = tuple(max(dims) for dims in zip(*ins))
    for s in ins:
        clash = [i for i, (d, o) in enumerate(zip(s, out)) if d not in (1, o)]
        if clash or (len(s) == 3 and (s[1] == 1) != (s[2] == 1) and s[1:] != out[1:]):
            raise ShapeError(
                f"Multiply needs each size equal to the others' or 1 (a C×1×1 gate scales a C×H×W map), "
                f"but {shape_str(s)} does not fit {shape_str(out)}"
            )
    return out


register(
    LayerSpec(
        type_id="Multiply",
        title="Multiply",
        torch_names=("torch.mul",),
        category="Merge",
        doc=(
            "Multiplies its inputs element by element. A size of 1 stretches to the other input's "
            "size, so a C×1×1 gate (global average pooling, two 1×1 convolutions and a Sigmoid) "
            "scales each channel of a C×H×W map by a learned weight between 0 and 1: the "
            "squeeze-and-excitation block of EfficientNet, and attention in general."
        ),
        params=(_N_INPUTS,),
        inputs="inputs",
        role="merge",
        default_name="mul",
        brief=_inputs_brief,
        shape=_mul_shape,
        code=lambda p, ins: Code(None, forward=lambda attr, args: " * ".join(args)),
        # NOTE: an input whose height and width are 1 while the output's are not is the same for every
        # output pixel; the analysis reads this tag to give it one window for all of them.
        tags=frozenset({"broadcast"}),
    )
)


def _cat_shape(p, ins):
    shapes.same_except_channels("Concatenate", ins)
    return (sum(s[0] for s in ins),) + ins[0][1:]


register(
    LayerSpec(
        type_id="Concatenate",
        title="Concatenate",
        torch_names=("torch.cat", "torch.concat"),
        category="Merge",
        doc=(
            "Stacks its inputs along the channel axis (or joins vectors end to end): 32 and 64 "
            "channels of the same height and width give 96. Inception modules concatenate "
            "parallel branches; U-Net concatenates encoder features onto the decoder."
        ),
        params=(_N_INPUTS,),
        inputs="inputs",
        role="merge",
        default_name="concat",
        brief=_inputs_brief,
        shape=_cat_shape,
        code=lambda p, ins: Code(None, forward=lambda attr, args: f"torch.cat([{', '.join(args)}], dim=1)"),
    )
)


def _crop_shape(p, ins):
    x, like = ins
    if len(x) != 3 or len(like) != 3:
        raise ShapeError("Crop to match works on images: both inputs must be channels×height×width")
    if x[1] < like[1] or x[2] < like[2]:
        raise ShapeError(
            f"Crop to match cannot grow {x[1]}×{x[2]} to {like[1]}×{like[2]}: the first input "
            "must be at least as large as the second"
        )
    return (x[0], like[1], like[2])


register(
    LayerSpec(
        type_id="CropToMatch",
        title="Crop to match",
        category="Merge",
        doc=(
            "Cuts the centre of its first input to the height and width of its second, keeping "
            "the first input's channels. The original U-Net uses 'valid' convolutions, so the "
            "encoder's maps are larger than the decoder's and are cropped before concatenation."
        ),
        inputs=2,
        input_names=("in", "like"),
        role="merge",
        default_name="crop",
        shape=_crop_shape,
        code=lambda p, ins: Code(None, forward=lambda attr, args: f"center_crop({args[0]}, {args[1]})", helpers=("center_crop",)),
        # The crop starts (H_in − H_like) // 2 pixels in, which moves the window centre
        # of the first output pixel that far (a negative padding in the RF rule).
        rf=lambda p, ins: RF(1, 1, -((ins[0][1] - ins[1][1]) // 2)),
        tags=frozenset({"rf_first_input"}),
    )
)

"""Pooling: max and average windows, global pooling and adaptive average pooling."""

from engine.errors import ShapeError
from engine.layers import shapes
from engine.layers.common import call, kernel, stride
from engine.layers.registry import RF, Code, LayerSpec, Param, register


CEIL_MODE = Param(
    "ceil_mode",
    "bool",
    False,
    "Round the output size up: a last window that hangs over the right or bottom border still "
    "counts (GoogLeNet's pools). Off, such a window is dropped.",
    label="Ceil mode",
)


def _ceil_out(size: int, k: int, s: int, pad: int) -> int:
    """Output length of a pooling window in ceil mode, as PyTorch computes it."""
    out = (size + 2 * pad - k + s - 1) // s + 1
    # NOTE: PyTorch drops a last window that would start inside the right padding.
    return out - 1 if (out - 1) * s >= size + pad else out


def _window_shape(title):
    def shape(p, ins):
        c, h, w = shapes.image(title, ins)
        k, s, pad = p["kernel_size"], p["stride"], p["padding"]
        if 2 * pad > k:
            raise ShapeError(f"{title}: padding ({pad}) can be at most half the {k}×{k} window")
        ho, wo = _ceil_out(h, k, s, pad), _ceil_out(w, k, s, pad)
        if not p["ceil_mode"] or min(ho, wo) < 1:  # NOTE: floor mode, or the refusal of a window that never fits
            ho, wo = shapes.spatial_out(title, ins[0], k, s, pad, what="window")
        return (c, ho, wo)

    return shape


def _window_brief(p):
    """``kK sS`` ("k3 s2"), with the padding and ceil mode where they are set."""
    text = f"k{p['kernel_size']} s{p['stride']}"
    if p["padding"]:
        text += f" p{p['padding']}"
    return text + (" ceil" if p["ceil_mode"] else "")


def _window_spec(type_id, torch_name, doc, default_name):
    return LayerSpec(
        type_id=type_id,
        title=type_id,
        category="Pooling",
        doc=doc,
        params=(
            kernel(2),
            stride(2),
            Param("padding", "int", 0, "Pixels added around the border.", min=0, max=32),
            CEIL_MODE,
        ),
        default_name=default_name,
        brief=_window_brief,
        torch_names=(torch_name,),
        shape=_window_shape(type_id),
        code=lambda p, ins: Code(
            call(
                f"nn.{torch_name}",
                kernel_size=p["kernel_size"],
                stride=p["stride"] if p["stride"] != p["kernel_size"] else None,
                padding=p["padding"] or None,
                ceil_mode=True if p["ceil_mode"] else None,
            )
        ),
        rf=lambda p, ins: RF(p["kernel_size"], p["stride"], p["padding"]),
    )


register(
    _window_spec(
        "MaxPool2d",
        "MaxPool2d",
        "Keeps the largest value in each window of every channel. With a 2×2 window and "
        "stride 2 it halves height and width (keeping a quarter of the values), adds no "
        "parameters, and makes the features a little tolerant to small shifts.",
        "maxpool",
    )
)
register(
    _window_spec(
        "AvgPool2d",
        "AvgPool2d",
        "Replaces each window of every channel by its mean. With a 2×2 window and stride 2 "
        "it halves height and width. LeNet-5's subsampling layers were average pools.",
        "avgpool",
    )
)


def _global_spec(type_id, torch_name, doc, default_name):
    return LayerSpec(
        type_id=type_id,
        title=type_id,
        category="Pooling",
        doc=doc,
        default_name=default_name,
        torch_names=(torch_name,),
        shape=lambda p, ins: (shapes.image(type_id, ins)[0],),
        code=lambda p, ins: Code(f"nn.Sequential(nn.{torch_name}(1), nn.Flatten())"),
        tags=frozenset({"global_pool"}),
    )


register(
    _global_spec(
        "GlobalAvgPool",
        "AdaptiveAvgPool2d",
        "Global average pooling (GAP): averages each channel over the whole image, turning "
        "C×H×W into a vector of C values. It has no parameters, works for any image size, "
        "and, followed directly by a Dense layer, lets CAM show where each class was seen "
        "(Network in Network, ResNet).",
        "gap",
    )
)
register(
    _global_spec(
        "GlobalMaxPool",
        "AdaptiveMaxPool2d",
        "Global max pooling: keeps the largest value of each channel over the whole image, "
        "turning C×H×W into a vector of C values, whatever the image size.",
        "gmp",
    )
)


def _adaptive_shape(p, ins):
    c, _, _ = shapes.image("AdaptiveAvgPool2d", ins)
    return (c, p["output_size"], p["output_size"])


def _adaptive_rf(p, ins):
    _, h, w = ins[0]
    # NOTE: fields are square; windows that differ between the axes have no one rule (None: unknown)
    return RF(h, p["output_size"], mode="adaptive") if h == w else None


register(
    LayerSpec(
        type_id="AdaptiveAvgPool2d",
        title="AdaptiveAvgPool2d",
        category="Pooling",
        doc=(
            "Average pooling to a fixed output size, whatever the input's: the windows are sized "
            "and placed to split the input evenly into S×S cells. S=1 averages each channel over "
            "the whole image but keeps it C×1×1, as squeeze-and-excitation needs; AlexNet and VGG "
            "pool to 6×6 and 7×7 before their dense layers."
        ),
        params=(Param("output_size", "int", 1, "Height and width (S) of the output.", min=1, max=256, label="Output size"),),
        default_name="adaptive_pool",
        brief=lambda p: f"to {p['output_size']}×{p['output_size']}",
        torch_names=("AdaptiveAvgPool2d",),
        shape=_adaptive_shape,
        code=lambda p, ins: Code(call("nn.AdaptiveAvgPool2d", p["output_size"])),
        rf=_adaptive_rf,
    )
)

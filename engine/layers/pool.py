"""Pooling: max and average windows, and global pooling."""

from engine.errors import ShapeError
from engine.layers import shapes
from engine.layers.common import call, kernel, stride
from engine.layers.registry import RF, Code, LayerSpec, Param, register


def _window_shape(title):
    def shape(p, ins):
        c, _, _ = shapes.image(title, ins)
        k, pad = p["kernel_size"], p["padding"]
        if 2 * pad > k:
            raise ShapeError(f"{title}: padding ({pad}) can be at most half the {k}×{k} window")
        ho, wo = shapes.spatial_out(title, ins[0], k, p["stride"], pad, what="window")
        return (c, ho, wo)

    return shape


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
        ),
        default_name=default_name,
        torch_names=(torch_name,),
        shape=_window_shape(type_id),
        code=lambda p, ins: Code(
            call(
                f"nn.{torch_name}",
                kernel_size=p["kernel_size"],
                stride=p["stride"] if p["stride"] != p["kernel_size"] else None,
                padding=p["padding"] or None,
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

"""Shape arithmetic shared by the layer declarations (pure tuple math, no torch)."""

from __future__ import annotations

from engine.errors import ShapeError
from engine.layers.registry import Shape, shape_str

AXES = ("channels", "height", "width")


def image(title: str, shapes: list[Shape]) -> Shape:
    """The single input shape, which must be an image (C, H, W)."""
    (shape,) = shapes
    if len(shape) != 3:
        raise ShapeError(
            f"{title} needs an image-shaped input (channels×height×width) but gets a vector of "
            f"{shape_str(shape)}: remove the Flatten before it, or use Dense for vectors"
        )
    return shape


def vector(title: str, shapes: list[Shape], hint: str = "insert Flatten or GlobalAvgPool") -> Shape:
    """The single input shape, which must be a feature vector (F,)."""
    (shape,) = shapes
    if len(shape) != 1:
        raise ShapeError(f"{title} after a {shape_str(shape)} tensor: {hint}")
    return shape


def padding_amount(padding: int | str, kernel: int, dilation: int, stride: int, title: str) -> int:
    """Total padding on one side for a convolution-like window.

    ``"valid"`` is 0; ``"same"`` keeps the size at stride 1 (and gives ceil(H/stride)
    at larger strides when the effective kernel is odd).
    """
    if padding == "valid":
        return 0
    if padding == "same":
        span = (kernel - 1) * dilation
        if span % 2 and stride > 1:
            raise ShapeError(
                f"{title}: 'same' padding with an even {kernel}×{kernel} kernel needs stride 1; "
                "use an odd kernel or a number for the padding"
            )
        return span // 2
    return int(padding)


def window_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Output length of a sliding window (conv or pooling), floor mode."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def spatial_out(
    title: str, shape: Shape, kernel: int, stride: int, pad: int, dilation: int = 1, what: str = "kernel"
) -> tuple[int, int]:
    """(H_out, W_out) for a window over an image, or a clear error when it does not fit."""
    _, h, w = shape
    ho = window_out(h, kernel, stride, pad, dilation)
    wo = window_out(w, kernel, stride, pad, dilation)
    if ho < 1 or wo < 1:
        eff = dilation * (kernel - 1) + 1
        raise ShapeError(
            f"{title}: the {eff}×{eff} {what} does not fit the {h}×{w} input (padding {pad}): "
            "use a smaller kernel, more padding, or fewer poolings before it"
        )
    return ho, wo


def describe_difference(a: Shape, b: Shape) -> str:
    """Which axes two shapes differ in, in words ("channels", "height and width")."""
    if len(a) != len(b):
        return "rank (one is an image, the other a vector)" if {len(a), len(b)} == {1, 3} else "rank"
    names = AXES if len(a) == 3 else ("features",) if len(a) == 1 else tuple(f"axis {i}" for i in range(len(a)))
    diff = [names[i] for i in range(len(a)) if a[i] != b[i]]
    return " and ".join(diff)


def same_except_channels(title: str, shapes: list[Shape]) -> None:
    """All shapes share rank and every axis but the first (Concatenate's rule)."""
    first = shapes[0]
    for other in shapes[1:]:
        if len(other) != len(first):
            raise ShapeError(
                f"{title} cannot join {shape_str(first)} and {shape_str(other)}: "
                f"{describe_difference(first, other)} differs"
            )
        if other[1:] != first[1:]:
            diff = describe_difference((0,) + first[1:], (0,) + other[1:])
            raise ShapeError(
                f"{title} joins along channels, so the other sizes must match: "
                f"{shape_str(first)} and {shape_str(other)} differ in {diff}"
            )

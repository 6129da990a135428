"""Convolutions: Conv2d, depthwise-separable conv, transposed conv, and Upsample."""

from engine.errors import ShapeError
from engine.layers import shapes
from engine.layers.common import BIAS, call, channels, conv_brief, dilation, kernel, stride
from engine.layers.registry import RF, Code, LayerSpec, Param, register

PADDING = Param(
    "padding",
    "int_or_choice",
    "same",
    "Zeros added around the border: a number of pixels, 'same' to keep the size "
    "(at stride 1), or 'valid' for none.",
    min=0,
    max=64,
    choices=("same", "valid"),
)


def _pad(p, title="Conv2d"):
    return shapes.padding_amount(p["padding"], p["kernel_size"], p["dilation"], p["stride"], title)


def _torch_padding(p):
    """The padding argument as PyTorch takes it (None when it is the default 0)."""
    if p["padding"] == "same" and ((p["kernel_size"] - 1) * p["dilation"]) % 2:
        return "same"  # even effective kernel at stride 1: PyTorch pads asymmetrically
    amount = _pad(p)
    return amount or None


def _conv_shape(p, ins, title="Conv2d"):
    c, _, _ = shapes.image(title, ins)
    g = p.get("groups", 1)
    if c % g or p["filters"] % g:
        raise ShapeError(
            f"{title}: groups={g} must divide both the {c} input channels and the {p['filters']} filters"
        )
    pad = _pad(p, title)
    if p["padding"] == "same" and p["stride"] == 1:
        # NOTE: an even effective kernel is padded one pixel more on the right/bottom
        # (PyTorch's 'same'), so the symmetric formula would be one pixel short.
        _, ho, wo = ins[0]
    else:
        ho, wo = shapes.spatial_out(title, ins[0], p["kernel_size"], p["stride"], pad, p["dilation"])
    return (p["filters"], ho, wo)


def _conv_rf(p, ins):
    return RF(p["kernel_size"], p["stride"], _pad(p), p["dilation"])


def _conv_code(p, ins):
    return Code(
        call(
            "nn.Conv2d",
            ins[0][0],
            p["filters"],
            kernel_size=p["kernel_size"],
            stride=p["stride"] if p["stride"] != 1 else None,
            padding=_torch_padding(p),
            dilation=p["dilation"] if p["dilation"] != 1 else None,
            groups=p["groups"] if p["groups"] != 1 else None,
            bias=None if p["bias"] else False,
        )
    )


def _conv_params(p, ins, out):
    cin = ins[0][0]
    k = p["kernel_size"]
    return p["filters"] * (cin // p["groups"]) * k * k + (p["filters"] if p["bias"] else 0), 0


def _conv_macs(p, ins, out):
    cout, ho, wo = out
    k = p["kernel_size"]
    return cout * ho * wo * (ins[0][0] // p["groups"]) * k * k


register(
    LayerSpec(
        type_id="Conv2d",
        title="Conv2d",
        torch_names=("Conv2d",),
        category="Convolution",
        doc=(
            "Slides small learned filters over the image. Each filter spans a k×k "
            "neighbourhood and all input channels, and produces one output channel; the same "
            "weights are reused at every position, so a conv layer has far fewer parameters "
            "than a Dense layer on the same image. Parameters: filters × (k·k·C_in/groups) "
            "weights plus one bias per filter. Stride > 1 shrinks the output."
        ),
        params=(
            channels(16),
            kernel(3),
            stride(1),
            PADDING,
            dilation(),
            Param("groups", "int", 1, "Split channels into groups convolved separately.", min=1, max=4096),
            BIAS,
        ),
        default_name="conv",
        brief=conv_brief,
        shape=_conv_shape,
        code=_conv_code,
        param_count=_conv_params,
        macs=_conv_macs,
        rf=_conv_rf,
        has_weights=True,
        linear=True,
        tags=frozenset({"kernels", "image_filters"}),
    )
)


def _sep_shape(p, ins):
    return _conv_shape({**p, "groups": 1}, ins, "Separable Conv2d")


def _sep_code(p, ins):
    cin = ins[0][0]
    depthwise = call(
        "nn.Conv2d",
        cin,
        cin,
        kernel_size=p["kernel_size"],
        stride=p["stride"] if p["stride"] != 1 else None,
        padding=_torch_padding(p),
        dilation=p["dilation"] if p["dilation"] != 1 else None,
        groups=cin,
        bias=None if p["bias"] else False,
    )
    pointwise = call("nn.Conv2d", cin, p["filters"], kernel_size=1, bias=None if p["bias"] else False)
    return Code(f"nn.Sequential(\n    {depthwise},  # depthwise\n    {pointwise},  # pointwise\n)")


def _sep_params(p, ins, out):
    cin, k, b = ins[0][0], p["kernel_size"], p["bias"]
    return cin * k * k + (cin if b else 0) + cin * p["filters"] + (p["filters"] if b else 0), 0


def _sep_macs(p, ins, out):
    cout, ho, wo = out
    cin, k = ins[0][0], p["kernel_size"]
    return cin * ho * wo * k * k + cout * ho * wo * cin


register(
    LayerSpec(
        type_id="SeparableConv2d",
        title="Separable Conv2d",
        torch_names=("Conv2d",),
        category="Convolution",
        doc=(
            "MobileNet's depthwise-separable convolution: first a k×k depthwise convolution "
            "that filters each input channel on its own, then a 1×1 pointwise convolution "
            "that mixes channels. It costs about 1/filters + 1/k² of a normal convolution's "
            "multiplications for a similar result."
        ),
        params=(channels(32), kernel(3), stride(1), PADDING, dilation(), BIAS),
        default_name="sepconv",
        brief=conv_brief,
        shape=_sep_shape,
        code=_sep_code,
        param_count=_sep_params,
        macs=_sep_macs,
        rf=_conv_rf,
        has_weights=True,
        linear=True,
        tags=frozenset({"kernels"}),
    )
)


def _tconv_shape(p, ins):
    c, h, w = shapes.image("ConvTranspose2d", ins)
    k, s, pad, op = p["kernel_size"], p["stride"], p["padding"], p["output_padding"]
    if op >= s:
        raise ShapeError(f"ConvTranspose2d: output padding ({op}) must be smaller than the stride ({s})")
    ho, wo = ((d - 1) * s - 2 * pad + (k - 1) + op + 1 for d in (h, w))
    if ho < 1 or wo < 1:
        raise ShapeError(f"ConvTranspose2d: padding {pad} removes the whole {h}×{w} output; lower it")
    return (p["filters"], ho, wo)


def _tconv_brief(p):
    """``F@k×k sS`` with the output trimming and padding where they are set."""
    k = p["kernel_size"]
    text = f"{p['filters']}@{k}×{k} s{p['stride']}"
    if p["padding"]:
        text += f" p{p['padding']}"
    if p["output_padding"]:
        text += f" op{p['output_padding']}"
    return text


register(
    LayerSpec(
        type_id="ConvTranspose2d",
        title="ConvTranspose2d",
        torch_names=("ConvTranspose2d",),
        category="Convolution",
        doc=(
            "A learned upsampling (sometimes called deconvolution): each input pixel spreads "
            "a k×k learned pattern into the output, and stride 2 doubles the height and width. "
            "U-Net's expanding path uses it to grow the feature maps back to the image size."
        ),
        params=(
            channels(16),
            kernel(2),
            stride(2),
            Param("padding", "int", 0, "Pixels trimmed from each border of the output.", min=0, max=64),
            Param("output_padding", "int", 0, "Extra rows/columns added on one side.", min=0, max=63),
            BIAS,
        ),
        default_name="upconv",
        brief=_tconv_brief,
        shape=_tconv_shape,
        code=lambda p, ins: Code(
            call(
                "nn.ConvTranspose2d",
                ins[0][0],
                p["filters"],
                kernel_size=p["kernel_size"],
                stride=p["stride"] if p["stride"] != 1 else None,
                padding=p["padding"] or None,
                output_padding=p["output_padding"] or None,
                bias=None if p["bias"] else False,
            )
        ),
        param_count=lambda p, ins, out: (
            ins[0][0] * p["filters"] * p["kernel_size"] ** 2 + (p["filters"] if p["bias"] else 0),
            0,
        ),
        macs=lambda p, ins, out: ins[0][0] * ins[0][1] * ins[0][2] * p["filters"] * p["kernel_size"] ** 2,
        rf=lambda p, ins: RF(p["kernel_size"], p["stride"], p["padding"], mode="transposed"),
        has_weights=True,
        linear=True,
        tags=frozenset({"kernels"}),
    )
)


def _upsample_code(p, ins):
    mode = p["mode"]
    return Code(
        call(
            "nn.Upsample",
            scale_factor=p["scale"],
            mode=mode,
            # NOTE: the receptive-field rule (RF mode "bilinear") is that of align_corners=False:
            # with True, which pixels an output pixel reads would depend on the image size.
            align_corners=False if mode == "bilinear" else None,
        )
    )


register(
    LayerSpec(
        type_id="Upsample",
        title="Upsample",
        torch_names=("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "F.interpolate"),
        category="Convolution",
        doc=(
            "Enlarges each feature map by a fixed factor with no learned weights: 'nearest' "
            "repeats pixels, 'bilinear' interpolates. Often followed by a convolution as a "
            "cheaper alternative to a transposed convolution."
        ),
        params=(
            Param("scale", "int", 2, "Factor applied to height and width.", min=1, max=16),
            Param("mode", "choice", "nearest", "How new pixels are filled.", choices=("nearest", "bilinear")),
        ),
        default_name="upsample",
        brief=lambda p: f"×{p['scale']} {p['mode']}",
        shape=lambda p, ins: (lambda c, h, w: (c, h * p["scale"], w * p["scale"]))(*shapes.image("Upsample", ins)),
        code=_upsample_code,
        rf=lambda p, ins: RF(stride=p["scale"], mode=p["mode"]),
    )
)

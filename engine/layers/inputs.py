"""The Input block: where images or feature vectors enter the network."""

from engine.layers.registry import MAX_SIZE, Code, LayerSpec, Param, register

IMAGE, VECTOR = ("kind", ("image",)), ("kind", ("vector",))  # which kind of Input a size applies to

def _brief(p):
    """What enters: ``image C×H×W`` or ``vector of F``."""
    if p["kind"] == "image":
        return f"image {p['channels']}×{p['height']}×{p['width']}"
    return f"vector of {p['features']}"


register(
    LayerSpec(
        type_id="Input",
        title="Input",
        category="Input",
        doc=(
            "Where data enters the network. An image input carries channels×height×width "
            "(1 channel for grayscale, 3 for RGB); a vector input carries a fixed number of "
            "features, such as the two coordinates of a point or the columns of a table. "
            "The batch dimension is implicit everywhere."
        ),
        params=(
            Param("kind", "choice", "image", "Image (C×H×W) or feature vector.", choices=("image", "vector")),
            Param("channels", "int", 1, "Image channels: 1 grayscale, 3 RGB.", min=1, max=4096, applies_if=IMAGE),
            Param("height", "int", 28, "Image height in pixels.", min=1, max=8192, applies_if=IMAGE),
            Param("width", "int", 28, "Image width in pixels.", min=1, max=8192, applies_if=IMAGE),
            Param("features", "int", 2, "Length of a feature vector.", min=1, max=MAX_SIZE * 16, applies_if=VECTOR),
        ),
        inputs=0,
        role="input",
        default_name="input",
        brief=_brief,
        shape=lambda p, _: (p["channels"], p["height"], p["width"]) if p["kind"] == "image" else (p["features"],),
        code=lambda p, _: Code(None),
        rf=lambda p, _: None,
    )
)

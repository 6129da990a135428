"""Parameter declarations that several layer families share."""

from engine.layers.registry import MAX_SIZE, Param

BIAS = Param("bias", "bool", True, "Add a learned offset to every output unit (or channel).")


def channels(default: int, doc: str = "How many filters, i.e. output channels.") -> Param:
    return Param("filters", "int", default, doc, min=1, max=MAX_SIZE)


def kernel(default: int) -> Param:
    return Param("kernel_size", "int", default, "Height and width of the square window.", min=1, max=64)


def stride(default: int) -> Param:
    return Param("stride", "int", default, "Step between window positions; 2 halves the size.", min=1, max=64)


def dilation() -> Param:
    return Param(
        "dilation", "int", 1, "Spacing between kernel taps: a 3×3 kernel with dilation 2 spans 5×5.", min=1, max=32
    )


def py(value) -> str:
    """A parameter value as Python source (numbers and quoted strings only)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    raise TypeError(f"cannot write {value!r} as source")


def kwargs(**items) -> str:
    """``a=1, b='x'`` for keyword arguments, skipping the ones set to PyTorch's defaults (None)."""
    return ", ".join(f"{k}={py(v)}" for k, v in items.items() if v is not None)


def call(fn: str, *args, **kw) -> str:
    parts = [py(a) for a in args]
    if kw:
        parts.append(kwargs(**kw))
    return f"{fn}({', '.join(p for p in parts if p)})"


def num(value: float) -> str:
    """A number as a block's one-line summary writes it: ``0.5``, ``1e-05``, ``2`` (no trailing zeros)."""
    return f"{value:g}"


def conv_brief(p: dict) -> str:
    """``F@k×k sS`` with the padding, dilation and groups where they differ from the plain case."""
    k = p["kernel_size"]
    text = f"{p['filters']}@{k}×{k} s{p['stride']}"
    pad = p["padding"]
    if pad != "same":
        text += " valid" if pad == "valid" else f" p{pad}"
    if p.get("dilation", 1) != 1:
        text += f" d{p['dilation']}"
    if p.get("groups", 1) != 1:
        text += f" g{p['groups']}"
    return text

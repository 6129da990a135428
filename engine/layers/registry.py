"""The layer registry: one declaration per layer type, read by everything else.

A :class:`LayerSpec` says, in one place, what a layer is (id, title, category,
tooltip paragraph), which parameters it takes (:class:`Param`), how many inputs
it has, how its output shape follows from its input shapes, how many parameters
and multiply-accumulates it costs, how it affects the receptive field, and how
it reads in generated PyTorch source. The inspector, palette, analysis, compile
and export all read the same declaration.

Shapes never include the batch dimension: ``(C, H, W)`` for images, ``(F,)``
for feature vectors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine.errors import GraphError, ParamError

if TYPE_CHECKING:  # pragma: no cover
    from engine.layers.heads import HeadSpec

Shape = tuple[int, ...]

#: The categories, in palette order.
CATEGORIES = (
    "Input",
    "Dense",
    "Convolution",
    "Pooling",
    "Normalization",
    "Activation",
    "Regularization",
    "Reshape",
    "Merge",
    "Output",
)

#: Hard ceiling on any size-like integer parameter: keeps a typo from allocating terabytes.
MAX_SIZE = 1 << 16


@dataclass(frozen=True)
class Param:
    """The declaration of one layer parameter.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``choice``, ``int_or_choice``
    (an int, or one of ``choices``, as Conv2d padding takes 1 or ``"same"``) and
    ``shape`` (a tuple of positive ints, as Reshape's target). ``applies_if`` is
    ``(other param, its values)`` when this one means something only while the other
    holds one of them (an Input's height for an image, its features for a vector): the
    value is still kept and saved, and the inspector hides the field otherwise.
    """

    name: str
    kind: str
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    label: str = ""
    applies_if: tuple[str, tuple[Any, ...]] | None = None
    #: left out of a saved file while it holds its default: a setting added after files were written
    #: (``trainable``), so those files, and the ones that leave it alone, read and save as they did
    omit_default: bool = False

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def applies(self, params: dict[str, Any]) -> bool:
        """Whether this parameter means anything beside the block's other ``params``."""
        if self.applies_if is None:
            return True
        other, values = self.applies_if
        return params.get(other) in values

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this param's type, or raise :class:`ParamError`."""
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise ParamError(f"'{self.name}' must be true or false, not {_show(value)}")
        if kind == "choice":
            if value in self.choices:
                return value
            raise ParamError(f"'{self.name}' must be one of {_or_list(self.choices)}, not {_show(value)}")
        if kind == "int_or_choice" and isinstance(value, str):
            if value in self.choices:
                return value
            raise ParamError(
                f"'{self.name}' must be a whole number or one of {_or_list(self.choices)}, not {_show(value)}"
            )
        if kind in ("int", "int_or_choice"):
            return self._check_range(_as_int(self.name, value))
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamError(f"'{self.name}' must be a number, not {_show(value)}")
            try:
                value = float(value)
            except OverflowError:
                raise ParamError(f"'{self.name}' is far too large") from None
            if not math.isfinite(value):
                raise ParamError(f"'{self.name}' must be a finite number, not {value}")
            return self._check_range(value)
        if kind == "shape":
            if isinstance(value, str):
                value = [v for v in value.replace("x", ",").replace("×", ",").split(",") if v.strip()]
            if not isinstance(value, (list, tuple)) or not value:
                raise ParamError(f"'{self.name}' must be a list of sizes such as 16,4,4, not {_show(value)}")
            dims = tuple(self._check_range(_as_int(self.name, v)) for v in value)
            if len(dims) > 3:
                raise ParamError(f"'{self.name}' can have at most 3 dimensions (C, H, W)")
            return dims
        raise AssertionError(f"unknown param kind {kind!r}")

    def _check_range(self, value: float) -> Any:
        if self.min is not None and value < self.min:
            raise ParamError(f"'{self.name}' must be at least {_num(self.min)}, not {_num(value)}")
        if self.max is not None and value > self.max:
            raise ParamError(f"'{self.name}' must be at most {_num(self.max)}, not {_num(value)}")
        return value


@dataclass(frozen=True)
class RF:
    """Which input pixels one output pixel of a layer reads, along each axis (both alike).

    ``mode`` says how output pixel ``i`` picks them (:meth:`taps`):

    * ``"window"`` (conv, pooling; a crop is a 1-pixel window with negative padding):
      ``stride·i − padding + dilation·t`` for ``t = 0 .. kernel−1``.
    * ``"transposed"`` (transposed convolution, output ``stride`` times finer): every input
      pixel ``j`` whose kernel lands on ``i``, ``0 ≤ i + padding − stride·j < kernel``.
    * ``"nearest"`` (Upsample by ``stride``): the pixel ``⌊i / stride⌋`` that ``i`` lies in.
    * ``"bilinear"`` (Upsample by ``stride`` with ``align_corners=False``): the two pixels
      around ``(i + ½) / stride − ½``, or the one pixel it falls on (the other's weight is 0).
    * ``"adaptive"`` (adaptive average pooling of ``kernel`` input pixels into ``stride`` output
      pixels): ``⌊i·kernel/stride⌋ .. ⌈(i+1)·kernel/stride⌉ − 1``.
    """

    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    mode: str = "window"

    def taps(self, i: int) -> Sequence[int]:
        """The input pixels that output pixel ``i`` reads (pixels of the padding included)."""
        s = self.stride
        if self.mode == "window":
            first = s * i - self.padding
            return range(first, first + self.dilation * (self.kernel - 1) + 1, self.dilation)
        if self.mode == "transposed":
            reach = i + self.padding
            return range(-((self.kernel - 1 - reach) // s), reach // s + 1)
        if self.mode == "nearest":
            return (i // s,)
        if self.mode == "bilinear":
            below, rest = divmod(2 * i + 1 - s, 2 * s)
            return (below,) if rest == 0 else (below, below + 1)
        if self.mode == "adaptive":
            return range(i * self.kernel // s, -(-(i + 1) * self.kernel // s))
        raise AssertionError(f"unknown receptive-field mode {self.mode!r}")

    def cycle(self) -> tuple[int, int]:
        """``(n, m)``: output pixel ``i + n`` reads the pixels ``i`` reads moved by ``m``."""
        if self.mode == "adaptive":
            g = math.gcd(self.kernel, self.stride)
            return self.stride // g, self.kernel // g
        return (1, self.stride) if self.mode == "window" else (self.stride, 1)


@dataclass(frozen=True)
class Code:
    """How a block reads in generated source.

    ``module`` is a constructor expression (``nn.Conv2d(1, 6, kernel_size=5)``) or
    None when the block has no module. ``forward`` turns the block's attribute
    (``self.conv1``) and its input variable names into the expression that computes
    its output. ``helpers`` names module-level helper functions the forward uses.
    """

    module: str | None
    forward: Callable[[str, list[str]], str] | None = None
    helpers: tuple[str, ...] = ()


def _call(attr: str, args: list[str]) -> str:
    return f"{attr}({', '.join(args)})"


@dataclass(frozen=True)
class LayerSpec:
    """Everything about one layer type. See the module docstring."""

    type_id: str
    title: str
    category: str
    doc: str
    shape: Callable[[dict, list[Shape]], Shape]
    code: Callable[[dict, list[Shape]], Code]
    params: tuple[Param, ...] = ()
    inputs: int | str = 1
    input_names: tuple[str, ...] = ()
    outputs: int = 1
    default_name: str = ""
    role: str = "layer"  # "input", "layer", "merge" or "head"
    param_count: Callable[[dict, list[Shape], Shape], tuple[int, int]] = lambda p, i, o: (0, 0)
    macs: Callable[[dict, list[Shape], Shape], int] = lambda p, i, o: 0
    rf: Callable[[dict, list[Shape]], RF | None] | None = None
    #: convolution or linear weights: the block gets the weight-init setting (:data:`INIT_PARAM`) and
    #: the trainable one (:data:`TRAINABLE_PARAM`)
    has_weights: bool = False
    #: trained parameters with no weight init of their own (BatchNorm's γ and β): the trainable setting only
    learns: bool = False
    linear: bool = False  # an affine map with no nonlinearity (for the collapse warning)
    #: what the analysis and the probes ask of a type instead of listing type ids: ``transparent``
    #: (shape-only or affine: looked through by the warnings), ``nonlinear``, ``saturating``, ``softmax``,
    #: ``sigmoid``, ``softmax_inside`` / ``sigmoid_inside`` (an output whose loss applies it), ``global_pool``,
    #: ``rf_first_input``, ``kernels`` (convolution kernels the Filters view shows), ``can_die`` (units that
    #: can be zero for every input), ``linear_tail`` (affine on a vector at inference: between global pooling
    #: and a class output the score stays linear, as CAM needs), ``packaged`` (an output the training package trains),
    #: ``broadcast`` (a merge whose 1×1 inputs stretch over every output pixel: Multiply's gates),
    #: ``running_stats`` (statistics kept while training, as BatchNorm's: a frozen one keeps them in eval mode),
    #: ``image_filters`` (its weight init offers the hand-crafted filters, :data:`FILTER_SCHEMES`: Conv2d's)
    tags: frozenset[str] = field(default_factory=frozenset)
    #: what PyTorch calls it: a ``torch.nn`` module by its class name (``Linear`` for Dense), anything
    #: else spelled out (``torch.cat``, ``F.interpolate``); the palette's search finds these
    torch_names: tuple[str, ...] = ()
    #: an output block's declaration (target, loss, metrics, views: :class:`engine.layers.heads.HeadSpec`)
    head: HeadSpec | None = None
    #: its key settings in one short line for the canvas ("6@5×5 s1", "×2 bilinear", "p=0.5"), from the
    #: resolved params; None for a type with nothing worth showing (ReLU, Flatten)
    brief: Callable[[dict], str] | None = None

    def __post_init__(self) -> None:
        if not self.default_name:
            object.__setattr__(self, "default_name", self.type_id.lower())

    # ---------------------------------------------------------------- params
    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParamError(f"{self.title} has no parameter '{name}'")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``, every value validated; unknown names refused."""
        out = self.defaults()
        for key, value in given.items():
            out[key] = self.param(key).validate(value)
        return out

    # ---------------------------------------------------------------- ports
    def input_ports(self, params: dict[str, Any]) -> list[str]:
        n = params[self.inputs] if isinstance(self.inputs, str) else self.inputs
        if self.input_names and len(self.input_names) == n:
            return list(self.input_names)
        if n == 1:
            return ["in"]
        return [str(i + 1) for i in range(n)]

    def output_ports(self, params: dict[str, Any]) -> list[str]:
        return ["out"] * self.outputs


_REGISTRY: dict[str, LayerSpec] = {}


def register(spec: LayerSpec) -> LayerSpec:
    """Add ``spec`` to the registry (each type id once). Returns it."""
    if spec.type_id in _REGISTRY:
        raise ValueError(f"layer type {spec.type_id!r} registered twice")
    if spec.category not in CATEGORIES:
        raise ValueError(f"{spec.type_id}: unknown category {spec.category!r}")
    if (spec.role == "head") != (spec.head is not None):
        raise ValueError(f"{spec.type_id}: an output block, and only one, declares its head (LayerSpec.head)")
    if spec.has_weights and not any(p.name == "init" for p in spec.params):
        spec = LayerSpec(**{**spec.__dict__, "params": spec.params + (init_param("image_filters" in spec.tags),)})
    if (spec.has_weights or spec.learns) and not is_freezable(spec):
        spec = LayerSpec(**{**spec.__dict__, "params": spec.params + (TRAINABLE_PARAM,)})
    _REGISTRY[spec.type_id] = spec
    return spec


def is_freezable(spec: LayerSpec) -> bool:
    """Whether blocks of ``spec`` have the trainable setting (every type with trained parameters)."""
    return any(p.name == TRAINABLE for p in spec.params)


def is_frozen(params: dict[str, Any]) -> bool:
    """Whether a block with these (resolved) ``params`` is frozen: its parameters are not trained."""
    return params.get(TRAINABLE, True) is False


def get(type_id: str) -> LayerSpec:
    _load_all()
    try:
        return _REGISTRY[type_id]
    except (KeyError, TypeError):
        raise GraphError(f"there is no layer type called {type_id!r}") from None


def all_specs() -> list[LayerSpec]:
    """Every registered layer, grouped by category in palette order."""
    _load_all()
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(_REGISTRY.values(), key=lambda s: order[s.category])


_LOADED = False


def _load_all() -> None:
    # NOTE: a flag, not an empty registry: a family imported on its own (engine.tasks imports the heads')
    # registers only its own types.
    global _LOADED
    if not _LOADED:
        import engine.layers.catalog  # noqa: F401  (registers every family)

        _LOADED = True


INIT_SCHEMES = (
    "default",
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
    "normal",
    "zeros",
)

#: hand-crafted image filters a convolution's kernels can start as, the classic filters the course shows before
#: learned ones; only a type tagged ``image_filters`` (Conv2d) offers them. The generated code's ``image_filter``
#: helper (:mod:`engine.codegen`) builds them, so the exported model starts from the same kernels.
FILTER_SCHEMES = ("sobel_x", "sobel_y", "laplacian", "gaussian_blur", "box_blur", "identity")

_INIT_DOC = (
    "How the weights start. 'default' is PyTorch's own; Xavier/Glorot suits tanh and "
    "sigmoid, He suits ReLU; 'normal' draws from N(0, 0.01); 'zeros' starts every "
    "weight at zero, so all units of the layer learn the same thing and never differ."
)

_FILTERS_DOC = (
    " Or a hand-crafted filter (an odd kernel size of at least 3): 'sobel_x' responds where brightness changes "
    "from left to right (vertical edges), 'sobel_y' from top to bottom (horizontal edges), 'laplacian' to spots "
    "and outlines in every direction, 'gaussian_blur' and 'box_blur' smooth (their weights sum to 1), "
    "'identity' passes the input through. Sobel and the Laplacian grow past 3×3 with Pascal's-triangle "
    "smoothing, and the Gaussian's sigma follows the size. Every filter (output channel) applies it to the mean "
    "of the input channels it reads (each weight is the filter divided by their number); the biases start at 0. "
    "Untick Trainable to keep the filter fixed, or leave it to see what training does to it."
)


def init_param(filters: bool = False) -> Param:
    """The weight-init setting; with ``filters`` (a type tagged ``image_filters``) the hand-crafted filters too.

    NOTE: one declaration for every type with weights; the choices differ per type, so Dense refuses 'sobel_x'.
    """
    return Param(
        "init",
        "choice",
        "default",
        _INIT_DOC + (_FILTERS_DOC if filters else ""),
        choices=INIT_SCHEMES + (FILTER_SCHEMES if filters else ()),
        label="Weight init",
    )


INIT_PARAM = init_param()


def filter_fits(kernel_size: int) -> bool:
    """Whether a hand-crafted filter fits a ``kernel_size``×``kernel_size`` kernel: odd, at least 3 (a centre)."""
    return kernel_size >= 3 and kernel_size % 2 == 1


TRAINABLE = "trainable"
#: what a frozen block's settings line starts with on the canvas ("❄ 6@5×5 s1"), and its row in the Model summary
FROZEN_MARK = "❄"

TRAINABLE_PARAM = Param(
    TRAINABLE,
    "bool",
    True,
    "Train this block's parameters. Untick to freeze them, as in transfer learning: keep a "
    "feature extractor trained on a large data set as it is and train only the layers after it, "
    "then tick it again to fine-tune. A frozen block's parameters are left out of the optimizer "
    "and never change; a frozen BatchNorm also stays in evaluation mode while the network trains, "
    "so it normalizes with its running statistics and they do not move either. The exported "
    "code freezes them the same way.",
    label="Trainable",
    omit_default=True,
)


# -------------------------------------------------------------------- helpers
def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ParamError(f"'{name}' must be a whole number, not {_show(value)}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,18}\s*", value):
        return int(value)
    if not isinstance(value, int):
        raise ParamError(f"'{name}' must be a whole number, not {_show(value)}")
    return value


def _show(value: Any) -> str:
    """A value for an error message, cut short when it is long."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _num(v: float) -> str:
    if isinstance(v, int):
        return str(v) if abs(v) < 10**15 else "a huge number"
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


def _or_list(items: Sequence[Any]) -> str:
    words = [repr(i) for i in items]
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]


def shape_str(shape: Shape | None) -> str:
    """``(64, 16, 16)`` -> ``64×16×16``; None -> ``?``."""
    if shape is None:
        return "?"
    return "×".join(str(d) for d in shape)


def numel(shape: Shape) -> int:
    return math.prod(shape)

"""Each layer type's one-line summary on the canvas (``LayerSpec.brief``) says its settings truly.

Every registered type is covered: a type with settings has a non-empty line, one without has none,
and for a spread of random valid settings the line is read back (parsed, independently of how it is
written) to the very values the block holds.
"""

from __future__ import annotations

import random
import re

import pytest

from engine.layers import registry

MAX_CHARS = 26  # about what a block's width shows at the canvas's text size


def _random_value(param: registry.Param, rng: random.Random):
    """A valid value for ``param``: small sizes for sizes, any choice, a float inside the range."""
    if param.kind == "bool":
        return rng.random() < 0.5
    if param.kind == "choice":
        return rng.choice(param.choices)
    if param.kind == "int_or_choice" and rng.random() < 0.4:
        return rng.choice(param.choices)
    if param.kind in ("int", "int_or_choice"):
        low = int(param.min or 0)
        high = min(int(param.max if param.max is not None else 512), low + 700)
        return rng.randint(low, high)
    if param.kind == "float":
        low, high = param.min or 0.0, min(param.max if param.max is not None else 10.0, 10.0)
        return min(max(round(rng.uniform(low, high), rng.choice((1, 2, 4, 8))), low), high)
    if param.kind == "shape":
        return tuple(rng.randint(1, 64) for _ in range(rng.randint(1, 3)))
    raise AssertionError(param.kind)


def _settings(spec: registry.LayerSpec, seed: int) -> dict:
    rng = random.Random(seed)
    return spec.resolve_params({p.name: _random_value(p, rng) for p in spec.params})


def _float(text: str) -> float:
    return float(text)


# ---------------------------------------------------------------- reading a line back
def _conv(p: dict, text: str) -> None:
    m = re.fullmatch(r"(\d+)@(\d+)×(\d+) s(\d+)(?: (valid)| p(\d+))?(?: d(\d+))?(?: g(\d+))?", text)
    assert m, text
    filters, k1, k2, stride, valid, pad, dil, groups = m.groups()
    assert (int(filters), int(k1), int(k2), int(stride)) == (p["filters"], p["kernel_size"], p["kernel_size"], p["stride"])
    padding = "valid" if valid else int(pad) if pad is not None else "same"
    assert padding == p["padding"]
    assert int(dil or 1) == p["dilation"]
    assert int(groups or 1) == p.get("groups", 1)


def _tconv(p: dict, text: str) -> None:
    m = re.fullmatch(r"(\d+)@(\d+)×(\d+) s(\d+)(?: p(\d+))?(?: op(\d+))?", text)
    assert m, text
    filters, k1, k2, stride, pad, op = m.groups()
    assert (int(filters), int(k1), int(k2), int(stride)) == (p["filters"], p["kernel_size"], p["kernel_size"], p["stride"])
    assert (int(pad or 0), int(op or 0)) == (p["padding"], p["output_padding"])


def _pool(p: dict, text: str) -> None:
    m = re.fullmatch(r"k(\d+) s(\d+)(?: p(\d+))?( ceil)?", text)
    assert m, text
    k, s, pad, ceil = m.groups()
    assert (int(k), int(s), int(pad or 0), bool(ceil)) == (p["kernel_size"], p["stride"], p["padding"], p["ceil_mode"])


def _dense(p: dict, text: str) -> None:
    m = re.fullmatch(r"(\d+)( no bias)?", text)
    assert m, text
    assert (int(m.group(1)), not m.group(2)) == (p["units"], p["bias"])


def _input(p: dict, text: str) -> None:
    if p["kind"] == "image":
        m = re.fullmatch(r"image (\d+)×(\d+)×(\d+)", text)
        assert m, text
        assert tuple(map(int, m.groups())) == (p["channels"], p["height"], p["width"])
    else:
        m = re.fullmatch(r"vector of (\d+)", text)
        assert m and int(m.group(1)) == p["features"], text


def _named_floats(names: dict[str, str]):
    """A reader for ``label=value`` pairs (``p=0.5``, ``α=1e-05``) naming the params they show."""

    def read(p: dict, text: str) -> None:
        pairs = dict(part.split("=", 1) for part in text.split(" "))
        assert set(pairs) == set(names), text
        for label, name in names.items():
            assert _float(pairs[label]) == pytest.approx(p[name], rel=1e-5), (label, text)

    return read


def _slope(p: dict, text: str) -> None:
    m = re.fullmatch(r"slope (\S+)", text)
    assert m and _float(m.group(1)) == pytest.approx(p["negative_slope"], rel=1e-5), text


def _reshape(p: dict, text: str) -> None:
    m = re.fullmatch(r"to ([\d×]+)", text)
    assert m and tuple(int(d) for d in m.group(1).split("×")) == tuple(p["shape"]), text


def _adaptive(p: dict, text: str) -> None:
    m = re.fullmatch(r"to (\d+)×(\d+)", text)
    assert m and (int(m.group(1)), int(m.group(2))) == (p["output_size"], p["output_size"]), text


def _upsample(p: dict, text: str) -> None:
    m = re.fullmatch(r"×(\d+) (nearest|bilinear)", text)
    assert m and (int(m.group(1)), m.group(2)) == (p["scale"], p["mode"]), text


def _inputs(p: dict, text: str) -> None:
    m = re.fullmatch(r"(\d+) inputs", text)
    assert m and int(m.group(1)) == p["inputs"], text


#: the canvas's word for each output block's loss setting other than its default
_LOSS_SHORT = {"1-hot MSE": "mse_one_hot", "hinge": "hinge", "σ MSE": "mse_sigmoid", "MAE": "mae", "Huber": "huber"}
_LOSS_DEFAULT = {"ClassificationOutput": "cross_entropy", "BinaryOutput": "bce", "RegressionOutput": "mse"}


def _head(p: dict, text: str) -> None:
    m = re.fullmatch(r"loss ×(\S+)(?: · (.+))?", text)
    assert m and _float(m.group(1)) == pytest.approx(p["weight"], rel=1e-5), text
    if m.group(2) is None:
        assert p.get("loss") in (None, *_LOSS_DEFAULT.values()), text
    else:
        assert _LOSS_SHORT[m.group(2)] == p["loss"], text


READERS = {
    "Input": _input,
    "Dense": _dense,
    "Conv2d": _conv,
    "SeparableConv2d": _conv,
    "ConvTranspose2d": _tconv,
    "Upsample": _upsample,
    "MaxPool2d": _pool,
    "AvgPool2d": _pool,
    "AdaptiveAvgPool2d": _adaptive,
    "BatchNorm": _named_floats({"m": "momentum", "ε": "eps"}),
    "LocalResponseNorm": _named_floats({"n": "size", "α": "alpha", "β": "beta", "k": "k"}),
    "LeakyReLU": _slope,
    "ELU": _named_floats({"α": "alpha"}),
    "Dropout": _named_floats({"p": "p"}),
    "Dropout2d": _named_floats({"p": "p"}),
    "Reshape": _reshape,
    "Add": _inputs,
    "Multiply": _inputs,
    "Concatenate": _inputs,
    **{head: _head for head in ("ClassificationOutput", "BinaryOutput", "PerceptronOutput",
                                "RegressionOutput", "SegmentationOutput", "BoxOutput")},
}

SPECS = registry.all_specs()


def test_every_type_with_settings_has_a_line_and_only_those():
    for spec in SPECS:
        settings = [p for p in spec.params if p.name != "init"]
        assert (spec.brief is not None) == bool(settings), spec.type_id
        assert (spec.type_id in READERS) == bool(settings), f"add a reader for {spec.type_id}'s line"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.brief is not None], ids=lambda s: s.type_id)
def test_the_line_reads_back_to_the_settings(spec):
    read = READERS[spec.type_id]
    read(spec.resolve_params({}), spec.brief(spec.resolve_params({})))
    for seed in range(40):
        params = _settings(spec, seed)
        text = spec.brief(params)
        assert text and text == text.strip() and "\n" not in text
        read(params, text)


@pytest.mark.parametrize(
    "type_id, params, text",
    [
        ("Conv2d", {"filters": 6, "kernel_size": 5}, "6@5×5 s1"),
        ("Conv2d", {"filters": 64, "kernel_size": 7, "stride": 2, "padding": 3}, "64@7×7 s2 p3"),
        ("Upsample", {"mode": "bilinear"}, "×2 bilinear"),
        ("Dropout", {"p": 0.5}, "p=0.5"),
        ("Dense", {"units": 128}, "128"),
        ("MaxPool2d", {"kernel_size": 3, "stride": 2}, "k3 s2"),
    ],
)
def test_the_issues_examples(type_id, params, text):
    spec = registry.get(type_id)
    assert spec.brief(spec.resolve_params(params)) == text


def test_lines_of_the_shipped_templates_are_short():
    """Every block of every template says its settings in what a block's width shows."""
    from engine.templates import list_templates

    for info in list_templates():
        name = info.name
        for node in info.project.graph.nodes.values():
            spec = node.spec
            if spec.brief is not None:
                line = spec.brief(spec.resolve_params(node.params))
                assert 0 < len(line) <= MAX_CHARS, (name, node.name, line)

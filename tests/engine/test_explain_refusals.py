"""``explain`` and the command line on hostile or unusual input: one plain line and exit 2, never a
traceback or a hang; a Binary output's maps for both classes; user text printed literally."""

import json
import os
import struct
import subprocess
import sys
import unicodedata
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine import cli
from engine.cli import main
from engine.compile import compile_graph
from engine.config import DataConfig
from engine.graph import Graph
from engine.probes import ProbeError
from engine.probes.explain import explain, load_image
from engine.project import Project, load_project, save_project
from engine.textsafe import terminal_safe
from tests.conftest import ROOT
from tests.engine.helpers import chain, image_input

#: what a terminal must never receive from user text
CONTROL = ("\x1b", "\x07", "\r", "\x9b", "\u202e", "\x00")
#: a block name may not hold \r, \n, \t or NUL (the graph refuses them); a project name may
EVIL = "\x1b[31mred\x1b]0;title\x07hid\u202eden\x9b"
EVIL_PROJECT = EVIL + "\r\x00"


def run_cli(*args, env=None):
    """``python main.py ARGS`` as a user runs it. NOTE: the timeout only stops a hung test; it is no speed bound."""
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, timeout=300,
        encoding="utf-8", errors="replace",
        env={**os.environ, **(env or {})},
    )


def one_error_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---------------------------------------------------------------------- projects
def binary_net(size: int = 12) -> Graph:
    """Input 1×size×size → Conv → ReLU → Conv (stride 2) → ReLU → GAP → Dense(1) → Binary output."""
    g = Graph()
    x = image_input(g, 1, size)
    chain(
        g, x,
        ("Conv2d", {"filters": 4, "kernel_size": 3, "padding": 1}),
        "ReLU",
        ("Conv2d", {"filters": 6, "kernel_size": 3, "stride": 2, "padding": 1}),
        "ReLU",
        "GlobalAvgPool",
        ("Dense", {"units": 1}),
        "BinaryOutput",
    )
    return g


@pytest.fixture
def binary_project(tmp_path):
    """A saved Binary-output project (shapes data, normalization off), random weights and a grey image."""
    g = binary_net()
    project = Project(name="binary", graph=g, data=DataConfig.from_dict({"dataset": "shapes", "samples": 40, "normalize": False}))
    path = tmp_path / "binary.json"
    save_project(project, path)
    torch.manual_seed(0)
    weights = tmp_path / "w.pt"
    torch.save(compile_graph(g).module.state_dict(), weights)
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 12), dtype=np.uint8)).save(image)
    return path, weights, image


def png_header_only(path, width: int, height: int) -> None:
    """A PNG that declares ``width``×``height`` but holds one row: decoding it would fail or take gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\0" * (width + 1))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", row) + chunk(b"IEND", b""))


# ---------------------------------------------------------------------- images and --input
@pytest.mark.slow
@pytest.mark.parametrize("side", [20_000, 10_000])
def test_a_decompression_bomb_is_refused_from_its_header(binary_project, tmp_path, side):
    """20000² is over Pillow's own hard limit (an exception); 10000² only warns there, on stderr."""
    project, weights, _ = binary_project
    bomb = tmp_path / f"bomb{side}.png"
    png_header_only(bomb, side, side)
    with pytest.raises(ProbeError, match=rf"bomb{side}\.png.* {side * side:,} pixels"):
        load_image(bomb, (1, 12, 12))
    line = one_error_line(run_cli("explain", project, "--weights", weights, "--input", bomb, "-o", tmp_path / "o.png"))
    assert f"bomb{side}.png" in line and "pixels" in line
    assert not (tmp_path / "o.png").exists()


def test_only_ascii_digits_are_a_sample_index(binary_project, tmp_path, capsys):
    project, weights, _ = binary_project
    base = ["explain", str(project), "--weights", str(weights), "-o", str(tmp_path / "o.png")]
    assert main([*base, "--input", "3"]) == 0
    assert "input sample 3" in capsys.readouterr().out
    for text in ("²", "٣", "３", "3\u200b"):  # superscript two, Arabic-Indic three, fullwidth three, 3 + zero-width space
        assert main([*base, "--input", text]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no such image file" in err[0] and "sample" not in err[0], err


@pytest.mark.parametrize("text", ["²", "٣", "1_0", " 1"])
def test_class_takes_only_ascii_digits(binary_project, tmp_path, text):
    project, weights, image = binary_project
    line = one_error_line(run_cli("explain", project, "--weights", weights, "--input", image, "-o", tmp_path / "o.png",
                                  "--class", text))
    assert "--class" in line


@pytest.mark.slow
def test_an_input_that_is_not_a_regular_file_is_refused(binary_project, tmp_path):
    project, weights, _ = binary_project
    with pytest.raises(ProbeError, match="folder"):
        load_image(tmp_path, (1, 12, 12))
    if not hasattr(os, "mkfifo"):
        return
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ProbeError, match="named pipe"):
        load_image(fifo, (1, 12, 12))
    line = one_error_line(run_cli("explain", project, "--weights", weights, "--input", fifo, "-o", tmp_path / "o.png"))
    assert "pipe.png" in line and "named pipe" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("which", ["project", "weights"])
def test_a_named_pipe_as_project_or_weights_never_hangs(binary_project, tmp_path, which):
    project, weights, image = binary_project
    fifo = tmp_path / f"{which}.fifo"
    os.mkfifo(fifo)
    args = {"project": project, "weights": weights, which: fifo}
    line = one_error_line(run_cli("explain", args["project"], "--weights", args["weights"], "--input", image,
                                  "-o", tmp_path / "o.png"))
    assert f"{which}.fifo" in line and "named pipe" in line
    if which == "project":
        assert "named pipe" in one_error_line(run_cli("analyze", fifo))


# ---------------------------------------------------------------------- checkpoints and models
@pytest.mark.slow
@pytest.mark.parametrize(
    "normalizer",
    [
        {"mean": [[0.5, 0.5, 0.5]], "std": [[1.0, 1.0, 1.0]]},  # nested: one row of three
        {"mean": [0.5, 0.5, 0.5], "std": [1.0, 1.0, 1.0]},  # three channels for a grey Input
    ],
)
def test_a_checkpoint_normalizer_of_the_wrong_shape_is_refused(binary_project, tmp_path, normalizer):
    project, weights, image = binary_project
    p = load_project(project)
    p.data.normalize = True
    save_project(p, project)
    ckpt = tmp_path / "ck.pt"
    torch.save({"model": torch.load(weights, weights_only=True), "normalizer": normalizer}, ckpt)
    line = one_error_line(run_cli("explain", project, "--weights", ckpt, "--input", image, "-o", tmp_path / "o.png"))
    assert "normalizer" in line and "1 channel" in line


@pytest.mark.slow
def test_a_network_too_large_to_allocate_is_a_plain_message(tmp_path):
    """A Dense layer of 2^54 weights: no machine can allocate it, whatever its overcommit setting."""
    g = Graph()
    x = image_input(g, 4096, 8192)
    chain(g, x, "Flatten", ("Dense", {"units": 65536}), ("Dense", {"units": 1}), "BinaryOutput")
    path = tmp_path / "huge.json"
    save_project(Project(name="huge", graph=g, data=DataConfig.from_dict({"normalize": False})), path)
    torch.save({}, tmp_path / "w.pt")
    line = one_error_line(run_cli("explain", path, "--weights", tmp_path / "w.pt", "--input", "0", "-o", tmp_path / "o.png"))
    assert "memory" in line and "parameters" in line


# ---------------------------------------------------------------------- main() catches everything
@pytest.mark.parametrize(
    "exc, words",
    [
        (MemoryError(), "out of memory"),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried\nto allocate 9 bytes"), "out of memory"),
        (RuntimeError("something\nbroke"), "something broke"),
        (ValueError("bad value"), "bad value"),
        (KeyError("k"), "KeyError"),
        (UnicodeEncodeError("ascii", "é", 0, 1, "no"), "encode"),
    ],
)
def test_main_turns_any_failure_into_one_line_and_exit_2(monkeypatch, capsys, exc, words):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.delenv("NET_DESIGNER_DEBUG", raising=False)
    monkeypatch.setattr("engine.templates.list_templates", fail)
    assert main(["templates"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


def test_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("engine.templates.list_templates", interrupted)
    assert main(["templates"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interrupted"]


def test_debug_variable_shows_the_traceback(monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("for developers")

    monkeypatch.setattr("engine.templates.list_templates", fail)
    monkeypatch.setenv("NET_DESIGNER_DEBUG", "1")
    with pytest.raises(ValueError, match="for developers"):
        main(["templates"])


# ---------------------------------------------------------------------- Binary output: both classes
def hand_maps(model: nn.Module, x: torch.Tensor, cls: int):
    """Grad-CAM and CAM of a Binary output by hand: class 1 is the logit z, class 0 is −z.

    Hooks on the last ReLU module (the default Grad-CAM block) and the Dense layer, found by type.
    """
    relu = [m for m in model.modules() if isinstance(m, nn.ReLU)][-1]
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    store = {}

    def keep(module, args, out):
        out.retain_grad()
        store["a"] = out

    handle = relu.register_forward_hook(keep)
    try:
        z = model(x.clone().requires_grad_(True))[0, 0]
    finally:
        handle.remove()
    sign = 1.0 if cls == 1 else -1.0
    (sign * z).backward()
    a, grad = store["a"].detach()[0], store["a"].grad[0]
    size = tuple(x.shape[-2:])

    def up(m):
        return torch.nn.functional.interpolate(m[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]

    g = up(torch.relu((grad.mean(dim=(1, 2))[:, None, None] * a).sum(0)))
    g = g / g.max() if g.max() > 0 else g
    c = up(sign * (fc.weight.detach()[0][:, None, None] * a).sum(0))
    c = (c - c.min()) / (c.max() - c.min())
    return g.numpy(), c.numpy(), float(z.detach())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_output_maps_both_classes(tmp_path, seed):
    g = binary_net()
    project = Project(name="binary", graph=g, data=DataConfig.from_dict({"normalize": False}))
    torch.manual_seed(seed)
    model = compile_graph(g).module.eval()
    image = tmp_path / "img.png"
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 12), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None, None]
    seen = {}
    for method in ("gradcam", "cam"):
        for cls in (0, 1):
            _, npy, info = explain(project, model.state_dict(), image, method=method, class_index=cls,
                                   out_png=tmp_path / f"{method}{cls}.png")
            grad_ref, cam_ref, z = hand_maps(model, x, cls)
            np.testing.assert_allclose(np.load(npy), grad_ref if method == "gradcam" else cam_ref, atol=1e-5)
            assert info["class_index"] == cls and info["predicted"] == int(z > 0)
            seen[method, cls] = np.load(npy)
        _, npy, info = explain(project, model.state_dict(), image, method=method, out_png=tmp_path / "p.png")
        assert info["class_index"] == info["predicted"]
        np.testing.assert_array_equal(np.load(npy), seen[method, info["predicted"]])
    assert not np.allclose(seen["cam", 0], seen["cam", 1])  # class 0's evidence is not class 1's
    with pytest.raises(ProbeError, match="out of range"):
        explain(project, model.state_dict(), image, class_index=2, out_png=tmp_path / "x.png")


def test_cli_binary_class_one_is_accepted_and_printed(binary_project, tmp_path, capsys):
    project, weights, image = binary_project
    base = ["explain", str(project), "--weights", str(weights), "--input", str(image), "-o", str(tmp_path / "o.png")]
    assert main([*base, "--class", "1"]) == 0
    assert "class_index 1" in capsys.readouterr().out
    assert main([*base, "--class", "2"]) == 2
    assert "0 to 1" in capsys.readouterr().err


# ---------------------------------------------------------------------- user text on the terminal
@pytest.mark.parametrize(
    "raw, shown",
    [
        ("plain name é × 中 🙂", "plain name é × 中 🙂"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("a\rb\nc\td", "a\\x0db\\x0ac\\x09d"),
        ("\x9b\x85\x7f", "\\x9b\\x85\\x7f"),
        ("left\u202eright\u2066", "left\\u202eright\\u2066"),
        ("bytes\udcff", "bytes\\udcff"),
        ("line\u2028sep", "line\\u2028sep"),
        ("C:\\runs\\x", "C:\\runs\\x"),
    ],
)
def test_terminal_safe(raw, shown):
    assert terminal_safe(raw) == shown


def test_terminal_safe_leaves_no_control_character():
    every = "".join(map(chr, range(0x3000))) + "\U0001f600\ud800\udfff\ufeff"
    safe = terminal_safe(every)
    bidi = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    assert not [ch for ch in safe if unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") or ch in bidi]
    assert "é" in safe and "\U0001f600" in safe and "\\x1b" in safe and "\\u202e" in safe
    safe.encode("utf-8")  # no lone surrogate is left to fail a UTF-8 stream


def evil_project(tmp_path):
    """A saved LeNet whose project name and every block name carry terminal escapes."""
    path = tmp_path / "evil.json"
    assert main(["new", "--template", "lenet5", "-o", str(path)]) == 0
    project = load_project(path)
    project.name = "proj" + EVIL_PROJECT
    for node in project.graph.nodes.values():
        project.graph.rename(node.id, node.name + EVIL)
    save_project(project, path)
    return path, project


def assert_no_control(text: str) -> None:
    found = [c for c in CONTROL if c in text]
    assert not found, found


def test_analyze_prints_user_text_safely(tmp_path, capsys):
    path, project = evil_project(tmp_path)
    capsys.readouterr()
    main(["analyze", str(path)])
    out = capsys.readouterr().out
    assert_no_control(out)
    assert "proj\\x1b[31mred" in out and "\\u202e" in out

    main(["analyze", str(path), "--json"])
    raw = capsys.readouterr().out
    assert_no_control(raw) and raw.isascii()
    doc = json.loads(raw)
    assert doc["name"] == project.name
    assert {b["name"] for b in doc["blocks"]} == {n.name for n in project.graph.nodes.values()}


def test_analyze_problems_quote_block_names_safely(tmp_path, capsys):
    path, project = evil_project(tmp_path)
    conv = next(n for n in project.graph.nodes.values() if n.type == "Conv2d")
    project.graph.set_params(conv.id, {"kernel_size": 31})  # too large for the image: a problem naming the block
    save_project(project, path)
    capsys.readouterr()
    assert main(["analyze", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Problems:" in out
    assert_no_control(out)


def test_explain_messages_print_user_text_safely(tmp_path, capsys):
    path = tmp_path / "bin.json"
    g = binary_net()
    for node in g.nodes.values():
        g.rename(node.id, node.name + EVIL)
    save_project(Project(name="b" + EVIL_PROJECT, graph=g, data=DataConfig.from_dict({"normalize": False})), path)
    torch.manual_seed(0)
    torch.save(compile_graph(g).module.state_dict(), tmp_path / "w.pt")
    image = tmp_path / ("img" + "\x1b[2J" + ".png")
    Image.fromarray(np.zeros((12, 12), dtype=np.uint8)).save(image)
    base = ["explain", str(path), "--weights", str(tmp_path / "w.pt"), "-o", str(tmp_path / "o.png")]
    assert main([*base, "--input", str(image)]) == 0
    captured = capsys.readouterr()
    assert_no_control(captured.out + captured.err)
    assert "\\x1b[2J" in captured.out and "\\x1b[31mred" in captured.out
    assert main([*base, "--input", str(image), "--layer", "nope"]) == 2  # the refusal lists every block's name
    captured = capsys.readouterr()
    assert_no_control(captured.err) and "conv\\x1b[31mred" in captured.err
    assert main([*base, "--input", str(tmp_path / "missing\x1b[31m.png")]) == 2
    captured = capsys.readouterr()
    assert_no_control(captured.err) and "missing\\x1b[31m.png" in captured.err


def test_error_lines_print_file_names_safely(tmp_path):
    line = one_error_line(run_cli("analyze", tmp_path / "gone\x1b]0;pwned\x07.json"))
    assert_no_control(line) and "gone\\x1b]0;pwned\\x07.json" in line
    usage = one_error_line(run_cli("analyze", tmp_path / "p.json", "extra\x1b[31m"))
    assert_no_control(usage) and "extra\\x1b[31m" in usage


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_prints(binary_project, tmp_path):
    """Latin-1 bytes in a POSIX file name reach Python as lone surrogates, which a UTF-8 stdout cannot encode."""
    if sys.platform == "win32":
        pytest.skip("POSIX file names are bytes")
    project, weights, image = binary_project
    line = one_error_line(run_cli("analyze", tmp_path / os.fsdecode(b"caf\xe9.json")))
    assert "caf\\udce9.json" in line
    out = tmp_path / os.fsdecode(b"map\xe9.png")
    result = run_cli("explain", project, "--weights", weights, "--input", image, "-o", out)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert "map\\udce9.png" in result.stdout and out.exists()


def test_cli_module_uses_the_helper_for_its_error_line():
    assert cli._one_line(ValueError("a\x1b[31m\n b")) == "a\\x1b[31m b"

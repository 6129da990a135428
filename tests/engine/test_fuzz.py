"""Fuzzing (issue #16): the files and arguments a person hands the program, mutated at random.

Every test here is seeded (``derandomize``: the same examples on every run, so a failure repeats)
and bounded (a few dozen small examples). The promises: a project file loads or is a
``ProjectError``, and what loads saves and loads back equal; a run folder reads or is a
``RunError``, and listing runs never fails; a CSV or npz file, with any settings, loads or is
refused in words, and what loads holds the file's numbers; an image is read, skipped or refused;
the command line ends with 0, 1 or 2, one line on stderr for 2, and never a traceback.
``test_project.py`` (mutated project data in memory, corrupted JSON punctuation) and
``test_data_refusals.py`` (random CSV text, damaged npz bytes) fuzz other corners of the same
promises; these go where they do not: real templates through the file, other encodings and
number spellings, run folders, data settings and arrays of every type, image bytes, argv.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import shutil
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.cli import build_parser, main
from engine.config import DataConfig
from engine.data import DataError, load_dataset
from engine.errors import ProjectError
from engine.graph import Graph
from engine.probes.base import ProbeError
from engine.probes.explain import load_image
from engine.project import FORMAT, Project, load_project, project_to_dict, save_project
from engine.templates import list_templates, load_template
from engine.training.runs import STATUSES, RunError, list_runs, read_run
from engine.training.trainer import Trainer
from tests.engine.helpers import gap_net

#: the full suite (CI) runs these; the quick loop over tests/engine (``-m 'not slow'``) leaves them out
pytestmark = pytest.mark.slow


def fuzz(examples: int):
    """Seeded, bounded hypothesis settings: the same ``examples`` every run, no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ---------------------------------------------------------------------- odd values
def now_and_then(draw, one_in: int) -> bool:
    """True about once in ``one_in`` draws. NOTE: False is the simpler value, which hypothesis draws more
    often than its share and shrinks towards, so the common case stays the common one."""
    return draw(st.integers(1, one_in)) == one_in


class Raw:
    """JSON text written as it is: what ``json.dumps`` would refuse or spell otherwise."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:30]!r})"


RAW_TOKENS = [
    Raw("1" * 5000),  # past Python's 4300-digit limit for int()
    Raw("-" + "9" * 101),
    Raw("1e99999"),
    Raw("-1e-99999"),
    Raw("NaN"),
    Raw("-Infinity"),
    Raw("1.7976931348623157e308"),
    Raw('"tab\there"'),  # a raw control character inside a JSON string
    Raw('"\\ud800"'),  # a lone surrogate, escaped
    Raw('"\\udfff\\ud800"'),
    Raw("[" * 99 + "]" * 99),
    Raw("[" * 150 + "]" * 150),
    Raw("[" * 50_000 + "]" * 50_000),
    Raw('{"a": ' * 120 + "1" + "}" * 120),
    Raw("01"),
]
ODD_STRINGS = [
    "", " ", "\x00", "\x1b[31mred\x1b[0m", "\u202eevil", "a\nb", "\r", "\ud800", "x\udc80y", "\ufeff",
    "n1", "n2", "Conv2d", "same", "relu", FORMAT, "1", "٣", "x" * 5000,
]
odd_text = st.one_of(
    st.text(max_size=10),
    st.text(st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Co"]), min_size=1, max_size=4),
    st.sampled_from(ODD_STRINGS),
)
odd_numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**99, 10**100, -(10**100), -0.0, 5e-324, 1e308, -1e308]),
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


leaves = st.one_of(
    st.none(), st.booleans(), odd_numbers, odd_text, st.sampled_from(RAW_TOKENS), st.integers(95, 105).map(_nested)
)
garbage = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3), max_leaves=6
)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside ``value``, at any depth."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    out = []
    for key, item in items:
        out += [(value, key), *_slots(item)]
    return out


RETYPES = [lambda v: [v], lambda v: {"value": v}, lambda v: to_json(v),
           lambda v: None, lambda v: True, lambda v: float(v) if isinstance(v, int) else 0]


def mutate(draw, doc: Any, edits: int) -> Any:
    """``doc`` (plain JSON data, changed in place) with ``edits`` fields replaced, dropped, added, retyped or
    given odd text."""
    for _ in range(edits):
        slots = _slots(doc)
        if not slots or now_and_then(draw, 20):
            return draw(garbage)
        parent, last = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["replace", "raw", "text", "delete", "add", "retype", "nudge"]))
        if op == "replace":
            parent[last] = draw(garbage)
        elif op == "raw":
            parent[last] = draw(st.sampled_from(RAW_TOKENS))
        elif op == "text":  # NOTE: odd but often valid: names, descriptions and labels take any text
            parent[last] = draw(odd_text) if isinstance(parent[last], str) else parent[last]
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(odd_text)] = draw(garbage)
        elif op == "add":
            parent.insert(last, draw(garbage))
        elif op == "retype":
            parent[last] = draw(st.sampled_from(RETYPES))(parent[last])
        elif isinstance(parent[last], (int, float)) and not isinstance(parent[last], bool):
            parent[last] = parent[last] + draw(st.sampled_from([-1, 1, 0.5, 10**6, -(10**9), 1e300]))
    return doc


def to_json(value: Any, ascii_only: bool = True) -> str:
    """JSON text of ``value``, with :class:`Raw` tokens as they are and NaN or infinity spelled as Python does."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=ascii_only)}: {to_json(v, ascii_only)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v, ascii_only) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def damaged_bytes(draw, raw: bytes) -> bytes:
    """``raw`` cut short, with bytes changed or inserted, in another encoding's shape, or replaced."""
    op = draw(st.sampled_from(["cut", "flip", "insert", "bom", "utf16", "random", "empty", "keep"]))
    if op == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if op in ("flip", "insert"):
        out = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(out)))
            special = st.sampled_from([0, 0x0A, 0x22, 0x2C, 0x7B, 0x80, 0xC3, 0xFF])
            byte = draw(special if draw(st.booleans()) else st.integers(0, 255))
            if op == "flip" and at < len(out):
                out[at] = byte
            else:
                out.insert(at, byte)
        return bytes(out)
    if op == "bom":
        return b"\xef\xbb\xbf" + raw
    if op == "utf16":
        return raw.decode("utf-8", "replace").encode("utf-16")
    if op == "random":
        return draw(st.binary(max_size=200))
    return b"" if op == "empty" else raw


def one_line_in_words(message: str) -> None:
    """A refusal a person can read: one line, text that UTF-8 can show, no reader's own exception text."""
    assert message.strip() and "\n" not in message and "Traceback" not in message, message
    message.encode("utf-8")  # NOTE: a lone surrogate here would crash a UTF-8 terminal or log


# ---------------------------------------------------------------------- project files
TEMPLATE_DOCS = {t.name: json.loads(json.dumps(project_to_dict(load_template(t.name)))) for t in list_templates()}


def free_text_edit(draw, doc: dict) -> None:
    """An edit a project may well take: odd text where any text goes, an unknown field where one is kept."""
    where = draw(st.sampled_from(["name", "description", "block", "extra"]))
    if where == "block" and doc["graph"]["nodes"]:
        draw(st.sampled_from(doc["graph"]["nodes"]))["name"] = draw(odd_text)
    elif where == "extra":
        section = draw(st.sampled_from([doc, doc["data"], doc["training"], doc["probes"]]))
        section[draw(st.sampled_from(["notes", "x_extra", "é", "\x1b"]))] = draw(garbage)
    else:
        doc[where] = draw(odd_text)


@st.composite
def project_bytes(draw) -> bytes:
    """A real template's JSON with odd text in free-text fields, fields changed, odd numbers, twin keys, and
    damaged bytes."""
    doc = json.loads(json.dumps(TEMPLATE_DOCS[draw(st.sampled_from(sorted(TEMPLATE_DOCS)))]))
    for _ in range(draw(st.integers(1, 3))):
        free_text_edit(draw, doc)
    if now_and_then(draw, 2):
        doc = mutate(draw, doc, draw(st.integers(1, 2)))
    ascii_only = draw(st.booleans())
    text = to_json(doc, ascii_only)
    if now_and_then(draw, 8) and text.startswith("{"):
        text = '{"name": "twin", ' + text[1:]  # a key given twice
    raw = text.encode("utf-8", "surrogatepass")  # NOTE: a raw lone surrogate becomes bytes UTF-8 refuses
    return draw(damaged_bytes(raw)) if now_and_then(draw, 4) else raw


def graph_state(g: Graph) -> tuple:
    return [(n.id, n.type, n.name, dict(n.params), n.pos) for n in g.nodes.values()], list(g.edges), g.flow


@fuzz(80)
@given(content=project_bytes())
def test_a_mutated_template_file_loads_or_is_a_project_error_and_saves_back_equal(tmp_path_factory, content):
    folder = tmp_path_factory.getbasetemp() / "projects"
    folder.mkdir(exist_ok=True)
    path = folder / "fuzz.json"
    path.write_bytes(content)
    try:
        project = load_project(path)
    except ProjectError as exc:
        event("refused")
        assert "fuzz.json" in str(exc)
        str(exc).encode("utf-8")  # NOTE: the loader escapes a lone surrogate it quotes, so the message can be shown
        return
    event("loaded")
    again = folder / "again.json"
    save_project(project, again)
    back = load_project(again)
    assert project_to_dict(back) == project_to_dict(project)
    assert graph_state(back.graph) == graph_state(project.graph)


@pytest.mark.parametrize("path", ["nul\x00.json", "", ".", "\udc80.json"])
def test_odd_project_paths_are_project_errors(tmp_path, path):
    """A path is user text too: a NUL or a lone surrogate in it is refused in words, not as a ValueError."""
    with contextlib.chdir(tmp_path), pytest.raises(ProjectError) as info:
        load_project(path)
    assert "\n" not in str(info.value) and "\x00" not in str(info.value)


# ---------------------------------------------------------------------- run folders
RUN_FILES = ("summary.json", "metrics.csv", "project.json")


def tiny_project(template: str = "perceptron") -> Project:
    """A template with so little data and one epoch that it trains in a moment."""
    project = load_template(template)
    project.data.samples = 40
    project.training.epochs = 1
    project.training.device = "cpu"
    return project


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A run folder written by a real one-epoch training, and the bytes of its files."""
    folder = tmp_path_factory.mktemp("runs") / "2026-01-01_00-00-00"
    for _ in Trainer(tiny_project(), out_dir=folder, label="Run 1").events():
        pass
    return folder, {name: (folder / name).read_bytes() for name in RUN_FILES}


ODD_CELLS = ["", "nan", "inf", "-inf", "1e999", "٣", "1_0", " 2", "x", "1" * 5000, '"', "\x00", "\x1b[2J",
             "a,b", "\r", "7" * 131_073, "2.5", "-1", "0x10", "１", "True"]


@st.composite
def metrics_bytes(draw, raw: bytes) -> bytes:
    """``metrics.csv`` with cells, columns and rows changed, written properly or joined by hand."""
    rows = list(csv.reader(io.StringIO(raw.decode())))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["cell", "column", "drop", "row", "twin"]))
        r = draw(st.integers(0, len(rows) - 1))
        if op == "cell":
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(st.sampled_from(ODD_CELLS) | odd_text)
        elif op == "column":
            for row in rows:
                row.append(draw(st.sampled_from(ODD_CELLS)))
        elif op == "drop" and rows[r]:
            rows[r].pop(draw(st.integers(0, len(rows[r]) - 1)))
        elif op == "row":
            rows.append([draw(st.sampled_from(ODD_CELLS)) for _ in rows[0]])
        else:
            rows[0][draw(st.integers(0, len(rows[0]) - 1))] = rows[0][0]
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):
        buf = io.StringIO()
        csv.writer(buf, lineterminator=end).writerows(rows)
        text = buf.getvalue()
    else:
        text = end.join(",".join(row) for row in rows) + draw(st.sampled_from([end, ""]))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def run_edits(draw, originals: dict[str, bytes]) -> list[tuple[str, Any]]:
    """One or two (file name, new bytes or "gone" / "folder" / "pipe") edits of a run folder."""
    edits = []
    for name in draw(st.lists(st.sampled_from(RUN_FILES), min_size=1, max_size=2)):
        kind = draw(st.sampled_from(["structure"] * 4 + ["bytes", "gone", "folder", "pipe"]))
        if kind == "structure" and name == "metrics.csv":
            edits.append((name, draw(metrics_bytes(originals[name]))))
        elif kind == "structure":
            doc = mutate(draw, json.loads(originals[name]), draw(st.sampled_from([1, 1, 2])))
            edits.append((name, to_json(doc, draw(st.booleans())).encode("utf-8", "surrogatepass")))
        elif kind == "bytes":
            edits.append((name, draw(damaged_bytes(originals[name]))))
        else:
            edits.append((name, kind))
    return edits


def _put(path: Path, content: Any) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if content == "folder":
        path.mkdir()
    elif content == "pipe" and hasattr(os, "mkfifo"):
        os.mkfifo(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)


def check_record(record) -> None:
    """What the Runs dock and the CLI rely on in a run that read."""
    assert isinstance(record.name, str) and isinstance(record.project, dict) and isinstance(record.summary, dict)
    assert isinstance(record.label, str) and record.label and record.label.isprintable()
    assert record.status in STATUSES
    assert record.parent is None or (isinstance(record.parent, dict) and isinstance(record.parent["run"], str))
    assert record.epochs is None or (isinstance(record.epochs, int) and not isinstance(record.epochs, bool))
    assert all(isinstance(getattr(record, k), str) for k in ("created", "message", "kind"))
    for row in record.history:
        assert isinstance(row["epoch"], int) and not isinstance(row["epoch"], bool)
    assert record.batch_losses().dtype == np.float32


@fuzz(70)
@given(data=st.data())
def test_a_damaged_run_folder_reads_or_is_a_run_error_and_listing_never_fails(real_run, data):
    folder, originals = real_run
    for name, raw in originals.items():
        _put(folder / name, raw)
    for name, content in data.draw(run_edits(originals)):
        _put(folder / name, content)
    try:
        record = read_run(folder)
    except RunError as exc:
        one_line_in_words(str(exc))
        record, message = None, str(exc)
        event("refused")
    else:
        event("read")
        check_record(record)
    records, problems = list_runs(folder.parent)
    if not (folder / "summary.json").exists():
        assert records == [] and problems == []
    elif record is None:
        assert records == [] and problems == [message]
    else:
        assert [r.label for r in records] == [record.label] and problems == []


# ---------------------------------------------------------------------- CSV settings
HEADERS = ["a", "b", "label", "a", "", " c ", "\ufeffd", "é", "x,y"]
CLEAN_NUMBERS = ["0", "1", "-2.5", "3e2", " 4 ", "0.1", "٣", "1e-45"]
NUMBER_CELLS = CLEAN_NUMBERS + ["1e39", "nan", "x", ""]
LABEL_CELLS = ["cat", "dog", "0", "1", "2", "1.0", "", "é"]


@st.composite
def csv_tables(draw) -> tuple[list[str], list[list[str]], str]:
    """A header (mostly distinct names), feature columns (mostly numbers) and a last column of labels or numbers."""
    if not now_and_then(draw, 4):
        header = draw(st.lists(st.sampled_from(["a", "b", " c ", "é", "label"]), min_size=2, max_size=4, unique=True))
    else:
        header = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=4))
    numbers = st.sampled_from(NUMBER_CELLS if now_and_then(draw, 3) else CLEAN_NUMBERS)
    last = st.sampled_from(LABEL_CELLS) if draw(st.booleans()) else numbers
    row = st.tuples(*[numbers] * (len(header) - 1), last).map(list)
    rows = draw(st.lists(row, min_size=0 if now_and_then(draw, 4) else 1, max_size=6))
    return header, rows, draw(st.sampled_from([",", ",", ";", "\t"]))


def _expected_x(names: list[str], rows: list[list[str]], features: list[str]) -> np.ndarray:
    """The feature values a loaded table must hold, read here with Python's own ``float``."""
    at = {name: i for i, name in enumerate(names)}
    return np.array([[float(row[at[f]]) for f in features] for row in rows], dtype=np.float32)


@fuzz(80)
@given(
    table=csv_tables(),
    features=st.none() | st.none() | st.lists(st.sampled_from(["a", "b", "c", "label", "zz", "\x00"]), max_size=3),
    target=st.none() | st.none() | st.sampled_from(["a", "b", "c", "label", "zz"]),
    task=st.sampled_from(["classification", "regression", "binary"] * 3 + ["segmentation", "localization"]),
    shape=st.sampled_from([(1,), (2,), (2,), (3,), (1, 2, 1), (2, 1, 1)]),
)
def test_csv_with_any_settings_loads_its_own_numbers_or_is_refused(tmp_path_factory, table, features, target, task,
                                                                   shape):
    header, rows, delimiter = table
    path = tmp_path_factory.getbasetemp() / "settings.csv"
    path.write_text("\n".join(delimiter.join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    try:
        cfg = DataConfig.from_dict({"dataset": "csv", "path": str(path), "task": task, "feature_columns": features,
                                    "target_column": target})
        ds = load_dataset(cfg, shape)
    except (DataError, ProjectError) as exc:
        one_line_in_words(str(exc))
        assert "Error" not in str(exc)
        event("refused")
        return
    event("loaded")
    # NOTE: a line of empty cells is blank, before the header too; a first name may read as a byte-order mark
    header, *rows = [row for row in [header, *rows] if any(cell.strip() for cell in row)]
    names = [h.strip() for h in header]
    names[0] = names[0].removeprefix("\ufeff")
    target = target if target is not None else names[-1]
    chosen = features if features is not None else [h for h in names if h != target]
    n = len(rows)
    assert ds.x.shape == (n, *shape) and ds.x.dtype == torch.float32
    assert np.array_equal(ds.x.reshape(n, -1).numpy(), _expected_x(names, rows, chosen))
    column = [row[names.index(target)].strip() for row in rows]
    if "label" in ds.targets:
        labels = ds.targets["label"].tolist()
        assert [ds.classes[k] for k in labels] == column
    if "value" in ds.targets:
        assert ds.targets["value"][:, 0].tolist() == [float(np.float32(float(c))) for c in column]


# ---------------------------------------------------------------------- npz arrays of every type
NUMERIC = ["<f4", "<f8", ">f8", "<f2", "<i8", "<i1", "<u8", "|b1"]
ODD_DTYPES = ["<c8", "<U3", "|S2", "|O"]
SHAPES_OF = {(2,): [(2,)], (1, 2, 2): [(4,), (1, 2, 2)], (4,): [(4,), (1, 2, 2)], (): [(1,)]}


@st.composite
def npz_arrays(draw) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """x, y and sometimes classes, mask and box, of any dtype and of fitting or unfitting shapes; an Input shape."""
    n = draw(st.sampled_from([5, 2, 5, 1, 0]))
    per = draw(st.sampled_from(sorted(SHAPES_OF)))

    def array(shape, dtype) -> np.ndarray:
        kind, size = np.dtype(dtype).kind, math.prod(shape)
        if kind == "O":
            return np.array([None] * size, dtype=object).reshape(shape)
        if kind in "US":
            return np.array(draw(st.lists(st.sampled_from(["a", "b", "ab"]), min_size=size, max_size=size)),
                            dtype=dtype).reshape(shape)
        odd = now_and_then(draw, 4)
        pool = {"f": [0.0, 1.0, -2.5, 0.5] + ([np.nan, np.inf, 1e39] if odd else []), "c": [0, 1j],
                "b": [False, True], "u": [0, 1, 2] + ([2**64 - 1] if odd else []),
                "i": [0, 1, 2] + ([-1, 127] if odd else [])}[kind]
        values = draw(st.lists(st.sampled_from(pool), min_size=size, max_size=size))
        with np.errstate(over="ignore", invalid="ignore"):
            return np.array(values).astype(dtype).reshape(shape)

    def dtype(common: list[str]) -> str:
        return draw(st.sampled_from(NUMERIC + ODD_DTYPES if now_and_then(draw, 3) else common))

    rows = lambda: n + now_and_then(draw, 8)  # noqa: E731 - one row too many now and then
    out = {
        "x": array((rows(), *per), dtype(["<f4", "<f8", "<i8"])),
        "y": array((rows(), *draw(st.sampled_from([(), (), (), (1,), (2,)]))), dtype(["<i8", "<f4", "<U3"])),
    }
    if now_and_then(draw, 4):
        out["classes"] = array((draw(st.integers(0, 4)),), draw(st.sampled_from(["<U3", "<U3", "<i8", "|O"])))
    if draw(st.booleans()):
        out["mask"] = array((rows(), 2, 2), draw(st.sampled_from(["<i8", "<i8", "<u8", "<i1", "<f4"])))
    if draw(st.booleans()):
        width, kind = 3 if now_and_then(draw, 4) else 4, draw(st.sampled_from(["<f4"] * 3 + ["<i8", "<U3"]))
        out["box"] = array((rows(), width), kind)
    if draw(st.booleans()):
        out["x"] = np.asfortranarray(out["x"])
    shape = draw(st.sampled_from([(2,), (1, 2, 2)] if now_and_then(draw, 5) else SHAPES_OF[per]))
    return out, shape


@fuzz(80)
@given(
    arrays_and_shape=npz_arrays(),
    compressed=st.booleans(),
    task=st.sampled_from(["classification", "regression", "binary"] * 2 + ["segmentation", "localization"]),
)
def test_npz_arrays_of_any_type_load_their_own_values_or_are_refused(tmp_path_factory, arrays_and_shape, compressed,
                                                                     task):
    arrays, shape = arrays_and_shape
    path = tmp_path_factory.getbasetemp() / "arrays.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    try:
        ds = load_dataset(DataConfig(dataset="npz", path=str(path), task=task), shape)
    except DataError as exc:
        one_line_in_words(str(exc))
        assert "Error" not in str(exc)
        event("refused")
        return
    event("loaded")
    x, y = arrays["x"], arrays["y"]
    n = len(x)
    assert ds.x.shape == (n, *shape) and torch.isfinite(ds.x).all()
    assert np.array_equal(ds.x.reshape(n, -1).numpy(), x.reshape(n, -1).astype(np.float32))
    for key, t in ds.targets.items():
        assert len(t) == n and (t.dtype == torch.int64 or torch.isfinite(t).all()), key
    if "label" in ds.targets:
        labels, flat = ds.targets["label"].tolist(), list(y.reshape(n))
        assert all(0 <= k < len(ds.classes) for k in labels)  # NOTE: a classes array may name classes no y holds
        assert all((labels[i] == labels[j]) == (flat[i] == flat[j]) for i in range(n) for j in range(n))
    if "mask" in ds.targets:
        assert ds.targets["mask"].min() >= 0, "a mask holds a negative class index"


# ---------------------------------------------------------------------- image bytes
def _png(width: int, height: int, value: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((height, width), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _declaring(raw: bytes, width: int, height: int, fix_crc: bool) -> bytes:
    """A PNG whose header declares ``width``×``height``, its checksum right or wrong."""
    ihdr = bytearray(raw[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF) if fix_crc else raw[29:33]
    return raw[:16] + bytes(ihdr) + crc + raw[33:]


SMALL_PNG = _png(6, 5)
image_bytes = st.one_of(
    damaged_bytes(SMALL_PNG),
    st.builds(_declaring, st.just(SMALL_PNG), st.sampled_from([0, 1, 7071, 8000, 2**31 - 1]),
              st.sampled_from([0, 1, 7072, 8000, 2**31 - 1]), st.booleans()),
)


@pytest.fixture(scope="module")
def pets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pets")
    for cls, value in (("cat", 40), ("dog", 200)):
        (root / cls).mkdir()
        for i in range(2):
            (root / cls / f"{i}.png").write_bytes(_png(8, 8, value))
    return root


@fuzz(40)
@given(content=image_bytes)
def test_a_damaged_image_is_read_skipped_or_refused(pets, content):
    path = pets / "cat" / "fuzz.png"
    path.write_bytes(content)
    try:
        ds = load_dataset(DataConfig(dataset="image_folder", path=str(pets)), (1, 4, 4))
    except DataError as exc:
        one_line_in_words(str(exc))
        assert "megapixels" in str(exc), str(exc)  # NOTE: only a picture too large refuses the whole folder
    else:
        assert len(ds) in (4, 5) and ds.x.shape[1:] == (1, 4, 4)
        assert (len(ds) == 5) == (not any("fuzz.png" in w for w in ds.warnings))
    try:
        image = load_image(path, (3, 4, 4))
    except ProbeError as exc:
        one_line_in_words(str(exc))
    else:
        assert image.shape == (3, 4, 4) and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0


# ---------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def cli_home(tmp_path_factory) -> Path:
    """A folder with every kind of thing an argument can name: good and bad projects, weights, images, a run."""
    home = tmp_path_factory.mktemp("cli")
    save_project(tiny_project(), home / "good.json")
    graph, _ = gap_net(channels=1, classes=3)
    cnn = Project(name="cnn", graph=graph, data=DataConfig(dataset="shapes", samples=24, image_size=16))
    cnn.training.epochs, cnn.training.device = 1, "cpu"
    save_project(cnn, home / "cnn.json")
    from engine.compile import compile_graph

    torch.save(compile_graph(graph).module.state_dict(), home / "w.pt")
    (home / "img.png").write_bytes(_png(16, 16))
    (home / "bad.png").write_bytes(SMALL_PNG[:40])
    (home / "bad.json").write_text('{"format": "net-designer-project", "version": 1, "graph": {"nodes": [')
    (home / "junk.pt").write_bytes(b"\x80\x04junk")
    (home / "keep.txt").write_text("not a project")
    (home / "dir").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(home / "pipe")
    with contextlib.chdir(home):
        assert main(["train", "good.json", "--out", "run"]) == 0
    return home


INPUTS = ["good.json", "cnn.json", "bad.json", "missing.json", "dir", "pipe", "img.png", "bad.png", "w.pt", "junk.pt",
          "run", "run/best.pt", "", "-", "\x1b[31m.json", "missing/é.json"]
NUMBERS = ["0", "1", "2", "-1", "٢", "１", "1_0", " 1", "1e3", "", "x", "\x1b[2J", "-99999999999999999999"]
#: NOTE: no output is ever an input: a project written over one (``new --force``) could train for minutes
OUTPUTS = ["dir", "missing/deeper/o", "", "keep.txt", "\x1b]0;title\x07"]
TEXTS = ["", "x", "a=1", "\x1b[31m", "٣", "\u202e"]

#: good values by (command, option), where the command's own files or names make it run through
GOOD = {
    ("new", "--template"): ["mlp", "perceptron", "unet"],
    ("new", "-o"): ["new.json", "é.json", "\x1b]0;t\x07.json"],
    ("export", "-o"): ["m.py", "out/m.py", "\x1b[1m.py"],
    ("export", "--weights"): ["run", "run/best.pt", "w.pt"],
    ("train", "--resume"): ["run", "run/last.pt", "run/best.pt"],
    ("train", "--out"): ["runs/a", "dir", "\x1b[7mrun"],
    ("explain", "project"): ["cnn.json"],
    ("explain", "--weights"): ["w.pt"],
    ("explain", "--input"): ["0", "3", "img.png"],
    ("explain", "--layer"): ["conv1", "n4", "relu"],
    ("explain", "-o"): ["o.png", "sub/o.png", "\x1b[5m.png"],
}
WRITES = {"-o", "--out", "--package"}


def subcommands() -> dict[str, list[argparse.Action]]:
    """Every sub-command of the real parser with its arguments (help left out)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: [a for a in p._actions if not isinstance(a, argparse._HelpAction)] for name, p in sub.choices.items()}


def values_for(command: str, action: argparse.Action) -> tuple[list[str], list[str]]:
    """(good, odd) values of one argument: the table's, else by what the argument takes.

    NOTE: numbers stay at 2 or less, so that a command that trains (any of them, as the parser grows) is quick.
    """
    name = action.option_strings[0] if action.option_strings else action.dest
    writes = name in WRITES
    if action.choices:
        good = [str(c) for c in action.choices]
    elif action.type is Path:
        good = ["out/a", "runs/b"] if writes else ["good.json", "cnn.json"] if name == "project" else ["run", "w.pt"]
    elif action.type is not None:
        good = ["1", "2"]
    else:
        good = TEXTS[1:3]
    odd = OUTPUTS if writes else NUMBERS if good == ["1", "2"] else INPUTS if action.type is Path else TEXTS + INPUTS
    return GOOD.get((command, name), good), odd


@st.composite
def argv(draw, command: str) -> list[str]:
    """``command`` with its arguments, each value mostly a good one and now and then an odd one; some junk."""

    def pick(good: list[str], odd: list[str]) -> str:
        return draw(st.sampled_from(odd if now_and_then(draw, 4) else good))

    words = [command]
    for action in subcommands().get(command, []):
        if not action.option_strings:  # a positional argument, nearly always given
            if not now_and_then(draw, 10):
                words.append(pick(*values_for(command, action)))
            continue
        if not (not now_and_then(draw, 10) if action.required else now_and_then(draw, 3)):
            continue
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            words.append(flag)
        elif not now_and_then(draw, 6):
            words += [flag, pick(*values_for(command, action))]
        else:
            words.append(f"{flag}={pick(*values_for(command, action))}")
    if now_and_then(draw, 8):
        words.insert(draw(st.integers(0, len(words))), draw(st.sampled_from(["--frob", "-x", "--", "extra", "-h"])))
    return words


def _printable(text: str) -> bool:
    return all(ch == "\n" or (ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF) for ch in text)


@pytest.mark.parametrize("command", [*subcommands(), "frobnicate"])
@fuzz(9)
@given(data=st.data())
def test_any_command_line_ends_in_0_1_or_2_with_one_line_for_2(cli_home, command, data):
    args = data.draw(argv(command))
    event(f"exit {check_command_line(cli_home, args)}")


@pytest.mark.parametrize(
    "args",
    [
        ["train", "good.json", "--epochs", "2", "--out", "\x1b[7mrun"],
        ["train", "good.json", "--resume", "run/best.pt", "--epochs", "3"],  # NOTE: the fuzzing trains 2 at most
        ["explain", "cnn.json", "--weights", "w.pt", "--input", "img.png", "-o", "o.png", "--method", "cam"],
        ["explain", "cnn.json", "--weights", "w.pt", "--input", "0", "-o", ""],  # NOTE: was a ValueError
        ["export", "good.json", "-o", "\x1b[1m.py"],
        ["new", "--template", "mlp", "-o", "\x1b]0;t\x07.json", "--force"],
    ],
)
def test_command_lines_that_run_with_odd_names_end_in_words(cli_home, args):
    """Each command run through to its end once, with a terminal control sequence or an empty name in a path."""
    assert check_command_line(cli_home, args) == (2 if args[-1] == "" else 0)


#: warnings Python does not show by default
QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def check_command_line(home: Path, args: list[str]) -> int:
    """Run ``main.py ARGS`` in ``home`` as the shell would, check what it prints, and return its exit code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(home), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # NOTE: as Python shows them to a person, each on stderr
        try:
            code = main(args)
        except SystemExit as exc:  # NOTE: argparse's own way out, for --help and usage errors
            code = exc.code
    shown = [w for w in caught if not issubclass(w.category, QUIET_WARNINGS)]
    stdout, stderr = out.getvalue(), err.getvalue() + "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in shown)
    assert code in (0, 1, 2), (args, code, stderr)
    assert "Traceback" not in stderr and "unexpected failure" not in stderr, (args, stderr)
    if code == 2:
        assert len(stderr.strip().splitlines()) == 1, (args, stderr)
    assert _printable(stdout) and _printable(stderr), (args, stdout, stderr)
    return code


# ---------------------------------------------------------------------- what the fuzzing found
def test_a_run_file_with_a_number_too_long_to_read_is_a_run_error(real_run):
    """json.loads refuses an integer of more than 4300 digits with a plain ValueError, which escaped read_run."""
    folder, originals = real_run
    for name, raw in originals.items():
        _put(folder / name, raw)
    _put(folder / "summary.json", b'{"format": "net-designer-run", "version": ' + b"1" * 5000 + b"}")
    with pytest.raises(RunError, match=r"summary.json is damaged \(a number too long to read\)"):
        read_run(folder)
    assert list_runs(folder.parent) == ([], [f"{folder.name}/summary.json is damaged (a number too long to read)"])
    _put(folder / "summary.json", originals["summary.json"])


@pytest.mark.parametrize(
    "mask, shown", [([[0, 1], [0, -1]], "-1"), (np.array([[0, 2**64 - 1]] * 2, np.uint64), "18446744073709551615")]
)
def test_a_negative_class_index_in_a_mask_is_refused_naming_the_sample(tmp_path, mask, shown):
    """A negative index (or an unsigned one that turns negative as int64) loaded, then failed training in torch's words."""
    masks = np.zeros((3, 2, 2), np.asarray(mask).dtype)
    masks[2] = mask
    np.savez(tmp_path / "m.npz", x=np.zeros((3, 1, 2, 2), np.float32), y=np.arange(3), mask=masks)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="npz", path=str(tmp_path / "m.npz"), task="segmentation"), (1, 2, 2))
    assert str(info.value) == (
        f"npz file {tmp_path / 'm.npz'}: mask[2] (sample 3) holds {shown}, which is not a class index: "
        "a mask holds whole numbers from 0 (the background) up"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["explain", "cnn.json", "--input", "0", "-o", "o.png", "--weights", "junk.pt"],
        ["export", "good.json", "--weights", "junk.pt"],
        ["train", "good.json", "--resume", "junk.pt", "--out", "runs/junk"],
    ],
)
def test_a_damaged_weights_file_is_one_line_without_torchs_warning(cli_home, args):
    """torch.load warned about the pickle protocol of a damaged file before failing: three lines on stderr."""
    assert check_command_line(cli_home, args) == 2


def test_a_path_with_a_nul_is_refused_by_the_command_line_in_words(cli_home):
    """A NUL cannot come from a shell, but main() takes a list from any caller: it was 'unexpected failure'."""
    assert check_command_line(cli_home, ["analyze", "nul\x00.json"]) == 2


def test_an_image_with_a_broken_chunk_is_unreadable_in_words(pets, tmp_path):
    """Pillow says SyntaxError for a chunk it cannot parse; explain let it out as an unexpected failure."""
    assert SMALL_PNG[37:41] == b"IDAT"
    broken = tmp_path / "broken.png"
    broken.write_bytes(SMALL_PNG[:33] + b"\x00\x00\x00\x00" + SMALL_PNG[37:])  # NOTE: an IDAT chunk of length 0
    with pytest.raises(ProbeError, match=r"broken.png: not an image that can be read \(broken PNG file"):
        load_image(broken, (1, 4, 4))
    (pets / "cat" / "fuzz.png").write_bytes(broken.read_bytes())
    ds = load_dataset(DataConfig(dataset="image_folder", path=str(pets)), (1, 4, 4))
    assert len(ds) == 4
    assert "skipped cat/fuzz.png: not a readable image (damaged, or not really a PNG file)" in ds.warnings

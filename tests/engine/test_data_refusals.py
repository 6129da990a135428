"""Refusals of the data layer: bad data or settings end in one line that names the file, row,
column or setting and says what to do; never a reader's own text, a hang, or a decoded bomb."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import cli
from engine.config import AUGMENT_OPTIONS, DataConfig
from engine.data import Augmenter, DataError, load_dataset
from engine.data import base as data_base
from engine.data import folder as data_folder
from engine.data import loading as data_loading
from engine.data import npzfile as data_npz
from engine.errors import ProjectError
from engine.project import load_project, project_to_dict
from engine.templates import load_template

ROOT = Path(__file__).resolve().parents[2]


def load(kind: str, path: Path, shape: tuple[int, ...], **kw):
    return load_dataset(DataConfig(dataset=kind, path=str(path), **kw), shape)


def refusal(kind: str, path: Path, shape: tuple[int, ...], **kw) -> str:
    """The one-line message of the DataError that loading raises."""
    with pytest.raises(DataError) as info:
        load(kind, path, shape, **kw)
    msg = str(info.value)
    assert "\n" not in msg and "Errno" not in msg and "Traceback" not in msg
    return msg


# ----------------------------------------------------------------------------- image folder
def _png(path: Path, size=(8, 8), value=0) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0]), value, np.uint8)).save(path)


def _blank_png(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of ``width``×``height`` black pixels, made row by row without the picture in memory."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    pytest.importorskip("PIL")
    root = tmp_path / "pets"
    for i in range(3):
        _png(root / "cat" / f"{i}.png", value=40)
        _png(root / "dog" / f"{i}.png", value=200)
    return root


def _refusing(monkeypatch, locked: Path) -> None:
    """Make listing ``locked`` fail as an unreadable folder does (the tests run as root, whom chmod does not stop)."""
    for name in ("scandir", "listdir"):
        real = getattr(os, name)

        def listing(path=".", _real=real):
            if os.fspath(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(locked))
            return _real(path)

        monkeypatch.setattr(os, name, listing)


@pytest.mark.parametrize("which, words", [("dog", "class folder"), ("", "image folder")])
def test_an_unreadable_folder_is_refused_naming_it(pets, monkeypatch, which, words):
    locked = pets / which if which else pets
    _refusing(monkeypatch, locked)
    msg = refusal("image_folder", pets, (1, 8, 8))
    assert f"{words} {locked} cannot be read (permission denied)" in msg


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="chmod does not stop root")
def test_a_class_folder_without_read_permission_is_refused(pets):
    (pets / "dog").chmod(0)
    try:
        assert "dog cannot be read (permission denied)" in refusal("image_folder", pets, (1, 8, 8))
    finally:
        (pets / "dog").chmod(0o755)


def test_an_unreadable_image_is_skipped_in_plain_words(pets, monkeypatch):
    real_open = os.open
    locked = str(pets / "cat" / "0.png")

    def opening(path, flags, *args, **kw):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", opening)
    ds = load("image_folder", pets, (1, 8, 8))
    assert len(ds) == 5 and ds.targets["label"].tolist() == [0, 0, 1, 1, 1]
    assert "skipped cat/0.png: it cannot be read (permission denied)" in ds.warnings


def test_a_damaged_image_is_skipped_without_the_decoders_words(pets):
    (pets / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ds = load("image_folder", pets, (1, 8, 8))
    assert len(ds) == 6
    assert "skipped cat/broken.png: not a readable image (damaged, or not really a PNG file)" in ds.warnings


@pytest.mark.parametrize(
    "width, height, words",
    [
        (20000, 20000, "is 400 megapixels"),  # beyond Pillow's own bomb limit: refused as it opens
        (8000, 8000, "is 8000×8000 pixels (64 megapixels)"),  # Pillow would decode this one
    ],
)
def test_a_huge_image_is_refused_before_decoding(pets, monkeypatch, width, height, words):
    from PIL import ImageFile

    huge = pets / "cat" / "huge.png"
    huge.write_bytes(_blank_png(width, height))
    assert huge.stat().st_size < 100_000
    decoded = []
    real_load = ImageFile.ImageFile.load

    def load_pixels(im):
        decoded.append(im.size)
        return real_load(im)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load_pixels)
    msg = refusal("image_folder", pets, (1, 8, 8))
    assert f"image {huge} {words}, more than the 50 megapixels Net Designer reads" in msg
    assert "shrink it, or take it out of the folder" in msg
    assert (width, height) not in decoded


def test_the_image_budget_counts_the_images_and_their_size(pets, monkeypatch):
    monkeypatch.setattr(data_base, "free_memory", lambda: 2000)
    msg = refusal("image_folder", pets, (1, 8, 8))
    need = 6 * 1 * 8 * 8 * 4  # images × channels × height × width × 4 bytes
    assert need == 1536
    assert (
        f"image folder {pets}: loading 6 images of 1×8×8 needs 1.5 kB of memory, and training keeps a "
        "second copy, but only 2.0 kB is free: use a smaller image size or fewer images"
    ) in msg


@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_fifty_thousand_large_images_are_refused_before_one_is_read(pets, monkeypatch):
    """The budget is checked from the listing: no file is opened, nothing is allocated."""
    monkeypatch.setattr(data_base, "free_memory", lambda: 16 * 10**9)
    monkeypatch.setattr(data_folder, "_class_files", lambda d, w: [d / f"{i}.png" for i in range(25_000)])
    monkeypatch.setattr(data_folder, "_decoded", lambda *a: pytest.fail("an image was read"))
    msg = refusal("image_folder", pets, (3, 224, 224))
    assert 50_000 * 3 * 224 * 224 * 4 == 30_105_600_000
    assert "loading 50,000 images of 3×224×224 needs 30.1 GB of memory" in msg and "16.0 GB is free" in msg


def test_running_out_of_memory_while_reading_images_names_the_folder(pets, monkeypatch):
    def no_memory(*args):
        raise MemoryError()

    monkeypatch.setattr(data_folder, "_read_image", no_memory)
    msg = refusal("image_folder", pets, (3, 32, 32))
    assert msg == (
        f"image folder {pets}: the computer ran out of memory loading it as samples of 3×32×32: "
        "use a smaller image size or fewer images"
    )


# ------------------------------------------------------------------------------------- memory
@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 bytes"),
        (999, "999 bytes"),
        (1000, "1.0 kB"),
        (1536, "1.5 kB"),
        (999_949, "999.9 kB"),
        (999_950, "1.0 MB"),
        (2_500_000, "2.5 MB"),
        (30_105_600_000, "30.1 GB"),
        (8 * 10**12, "8.0 TB"),
    ],
)
def test_sizes_read_as_a_person_writes_them(n, text):
    assert data_base.bytes_text(n) == text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the total is read the Linux way")
def test_free_memory_is_known_here_and_below_the_total():
    free = data_base.free_memory()
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert free is not None and 0 < free <= total


def test_an_allocator_failure_while_making_data_names_the_setting(monkeypatch):
    def refuse(*args):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 123456789 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(data_loading, "make_shapes", refuse)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="shapes", samples=1000), (1, 16, 16))
    assert str(info.value) == (
        "data.samples: the computer ran out of memory making 1,000 shapes samples of 1×16×16: "
        "use fewer samples or a smaller Input"
    )


def test_other_runtime_errors_are_not_called_memory(monkeypatch):
    def boom(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(data_loading, "make_shapes", boom)
    with pytest.raises(RuntimeError, match="boom"):
        load_dataset(DataConfig(dataset="shapes", samples=10), (1, 16, 16))


def test_generated_images_are_checked_against_memory_before_they_are_made(monkeypatch):
    monkeypatch.setattr(data_base, "free_memory", lambda: 10**9)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="shapes", samples=1_000_000), (3, 64, 64))
    need = 1_000_000 * (3 * 64 * 64 * 4 + 64 * 64 * 8 + 4 * 4 + 8)  # image, int64 mask, box, label
    assert need == 81_944_000_000
    assert "data.samples: 1,000,000 shape images of 3×64×64 with their masks needs 81.9 GB" in str(info.value)
    assert "1.0 GB is free: use fewer samples or a smaller image size" in str(info.value)


# ----------------------------------------------------------------------------------------- csv
def test_a_cell_over_the_csv_field_limit_names_row_and_column(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,b,label\n1,2,x\n3," + "9" * 140_000 + ",y\n")
    msg = refusal("csv", path, (2,))
    assert f"CSV file {path}, row 2 (line 3), column 'b' holds more than 131,072 characters" in msg
    path.write_text('a,b,label\n1,2,"x\n' + "3,4,y\n" * 30_000)  # a quote never closed
    msg = refusal("csv", path, (2,))
    assert "row 1 (line 2), column 'label' holds more than 131,072 characters" in msg
    assert "a quote that is never closed" in msg
    path.write_text("a,b," + "z" * 140_000 + "\n1,2,3\n")
    assert "the header row (line 1), column number 3 holds more than" in refusal("csv", path, (2,))


def test_commas_win_over_semicolons_inside_quoted_labels(tmp_path):
    path = tmp_path / "moods.csv"
    path.write_text('size,mood\n1,"happy;"\n2,";sad"\n3,"happy;"\n')
    ds = load("csv", path, (1,))
    assert ds.classes == [";sad", "happy;"] and ds.x[:, 0].tolist() == [1, 2, 3]
    assert ds.targets["label"].tolist() == [1, 0, 1]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_another_delimiter_is_taken_when_every_row_agrees(tmp_path, delimiter):
    path = tmp_path / "t.csv"
    rows = [["a", "b", "label"], ["1", "2", "x"], ["3", "4", "y"]]
    path.write_text("\n".join(delimiter.join(r) for r in rows))
    ds = load("csv", path, (2,))
    assert ds.x.tolist() == [[1, 2], [3, 4]] and ds.classes == ["x", "y"]


def test_rows_that_agree_on_no_delimiter_are_named_as_comma_rows(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,label\n1,2,x\n3;4;y\n")
    assert f"CSV file {path}, row 2 (line 3) has 1 values but the header names 3 columns" in refusal("csv", path, (2,))


@pytest.mark.parametrize(
    "cell, words",
    [
        ("nan", "'nan' is not a finite number (NaN or infinity)"),
        ("-inf", "'-inf' is not a finite number (NaN or infinity)"),
        ("1e39", "'1e39' is too large for the 32-bit numbers training uses (at most ±3.4e38)"),
    ],
)
@pytest.mark.parametrize("column, task", [("b", "classification"), ("label", "regression")])
def test_csv_numbers_that_would_train_as_nan_name_row_and_column(tmp_path, cell, words, column, task):
    path = tmp_path / "n.csv"
    rows = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]]
    rows[1][["a", "b", "label"].index(column)] = cell
    path.write_text("a,b,label\n" + "\n".join(",".join(r) for r in rows) + "\n")
    msg = refusal("csv", path, (2,), task=task)
    assert f"CSV file {path}, row 2 (line 3), column '{column}': {words}" in msg


def test_csv_text_that_is_not_utf8_says_where(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,b,label\n1,2,caf\xe9\n".encode("latin-1"))
    assert "is not UTF-8 text (the bytes at offset 17 are not): save it as CSV UTF-8" in refusal("csv", path, (2,))


# ----------------------------------------------------------------------------------------- npz
def _npy_header(shape: tuple[int, ...], descr: str, fortran: bool = False) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")


def _write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> None:
    """A zip of (name, payload as stored, method, crc, uncompressed size), written field by field so
    a member can declare what its payload does not hold."""
    body, central = b"", b""
    for name, payload, method, crc, size in members:
        raw = name.encode()
        central += _CENTRAL.pack(b"PK\x01\x02", 20, 0, 20, 0, 0, method, 0, 0x21, crc, len(payload), size,
                                 len(raw), 0, 0, 0, 0, 0, len(body)) + raw
        body += _LOCAL.pack(b"PK\x03\x04", 20, 0, 0, method, 0, 0x21, crc, len(payload), size, len(raw), 0) + raw + payload
    path.write_bytes(body + central + _END.pack(b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0))


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data)


def _deflated_zeros(header: bytes, zeros: int) -> tuple[bytes, int]:
    """Raw deflate data of ``header`` then ``zeros`` zero bytes, and its size, made without ``zeros`` bytes
    in memory: after a full flush a compressed block stands alone, so one block of zeros is repeated."""
    block = 1 << 20
    start = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = start.compress(header) + start.flush(zlib.Z_FULL_FLUSH)
    middle = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = middle.compress(bytes(block)) + middle.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(zeros, block)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(bytes(rest)) + last.flush()
    return head + piece * count + tail, len(header) + zeros


@pytest.fixture
def zip_reads(monkeypatch) -> list[int]:
    """Bytes read from any zip member; reading past 1 MB fails the test at once."""
    counts: list[int] = []
    for name in ("read", "read1"):
        real = getattr(zipfile.ZipExtFile, name)

        def reading(self, n=-1, _real=real):
            data = _real(self, n)
            counts.append(len(data))
            assert sum(counts) < 2**20, "array data was read before the headers were checked"
            return data

        monkeypatch.setattr(zipfile.ZipExtFile, name, reading)
    return counts


def test_a_3_mb_npz_declaring_375_million_rows_is_refused_from_its_headers(tmp_path, zip_reads):
    rows = 375_000_000
    header = _npy_header((rows, 1), "<f8")  # 3 GB of float64 once inflated
    payload, size = _deflated_zeros(header, rows * 8)
    y = _npy(np.arange(10))
    # NOTE: the crc of x is not computed (3 GB of work); nothing reads x to its end.
    _write_zip(tmp_path / "bomb.npz", [("x.npy", payload, zipfile.ZIP_DEFLATED, 0, size), _stored("y.npy", y)])
    assert (tmp_path / "bomb.npz").stat().st_size < 4_000_000
    msg = refusal("npz", tmp_path / "bomb.npz", (1,))
    assert "x has 375,000,000 samples but y has 10: save one target per sample" in msg
    assert sum(zip_reads) < 4096


def test_an_npz_declaring_a_trillion_rows_is_refused_without_reading(tmp_path, zip_reads):
    x = _npy_header((10**12, 2), "<f4") + bytes(64)
    y = _npy_header((10**12,), "<i8") + bytes(64)
    _write_zip(tmp_path / "t.npz", [_stored("x.npy", x), _stored("y.npy", y)])
    msg = refusal("npz", tmp_path / "t.npz", (2,))
    assert "array 'x' declares 1000000000000×2 of float32 (8.0 TB) but the file holds 64 bytes of it" in msg
    assert "the file is truncated or damaged" in msg


def test_npz_arrays_must_fit_free_memory(tmp_path, monkeypatch):
    x, y = np.zeros((10, 16), np.float64), np.arange(10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    monkeypatch.setattr(data_base, "free_memory", lambda: 1000)
    msg = refusal("npz", tmp_path / "d.npz", (16,))
    need = 10 * 16 * 4 + x.nbytes + y.nbytes  # float32 x for training, and the arrays as stored
    assert need == 2_000
    assert f"npz file {tmp_path / 'd.npz'}: 10 samples of 16 needs 2.0 kB of memory" in msg


def test_object_arrays_are_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    np.savez(tmp_path / "o.npz", x=np.array([Trap(), Trap()], dtype=object), y=np.arange(2))
    msg = refusal("npz", tmp_path / "o.npz", (1,))
    assert "array 'x' holds Python objects, which are not loaded (loading them could run code)" in msg
    assert not marker.exists()


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("order", ["C", "F"])
def test_npz_inputs_load_whole_whether_stored_or_compressed(tmp_path, zip_reads, save, order):
    x = np.asarray(np.random.default_rng(1).normal(size=(300, 4, 4)), order=order)
    save(tmp_path / "d.npz", x=x, y=np.arange(300) % 3, box=np.full((300, 4), 0.25))
    ds = load("npz", tmp_path / "d.npz", (1, 4, 4))
    assert torch.equal(ds.x, torch.from_numpy(x.astype(np.float32)).reshape(300, 1, 4, 4))
    assert ds.x.is_contiguous() and ds.targets["box"].shape == (300, 4)
    if save is np.savez:  # x is mapped from the file, not read through the zip reader
        assert sum(zip_reads) < x.nbytes


def _with_bad_values(rng: np.random.Generator) -> tuple[np.ndarray, int, str]:
    """A float64 x with NaN, infinity or float32-overflowing values at random places; the first bad
    sample and what it holds, found here one sample at a time."""
    n, f = int(rng.integers(1, 40)), int(rng.integers(1, 5))
    x = rng.normal(size=(n, f))
    for _ in range(int(rng.integers(1, 4))):
        x[rng.integers(n), rng.integers(f)] = rng.choice([np.nan, np.inf, -np.inf, 1e39, -5e38])
    for i in range(n):
        row = x[i]
        if np.isnan(row).any():
            return x, i, "NaN (not a number)"
        if np.isinf(row).any():
            return x, i, "an infinite value"
        if (np.abs(row) > 3.4028234663852886e38).any():
            return x, i, "a value too large for the 32-bit numbers training uses"
    raise AssertionError("no bad value was placed")


@pytest.mark.parametrize("seed", range(12))
def test_npz_nan_and_infinity_name_the_first_bad_sample(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(data_npz, "FINITE_CHECK_VALUES", 8)  # a few samples at a time: the slices' seams count too
    x, first, words = _with_bad_values(np.random.default_rng(seed))
    n, f = x.shape
    np.savez(tmp_path / "x.npz", x=x, y=np.arange(n) % 2)
    assert f"x[{first}] (sample {first + 1}) holds {words}" in refusal("npz", tmp_path / "x.npz", (f,))
    np.savez(tmp_path / "y.npz", x=np.zeros((n, 1)), y=x)
    msg = refusal("npz", tmp_path / "y.npz", (1,), task="regression")
    assert f"y[{first}] (sample {first + 1}) holds {words}" in msg and "fix or remove that sample" in msg


def test_npz_boxes_and_binary_targets_are_checked_per_sample(tmp_path):
    box = np.full((5, 4), 0.5)
    box[3, 2] = np.nan
    np.savez(tmp_path / "b.npz", x=np.zeros((5, 2)), y=np.arange(5) % 2, box=box)
    assert "box[3] (sample 4) holds NaN" in refusal("npz", tmp_path / "b.npz", (2,))
    np.savez(tmp_path / "bin.npz", x=np.zeros((4, 2)), y=np.array([0.0, 1.0, 0.5, 1.0]))
    msg = refusal("npz", tmp_path / "bin.npz", (2,), task="binary")
    assert "y[2] holds [0.5]: binary targets in y must be 0 or 1" in msg


def test_a_single_array_or_a_non_zip_is_named(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    assert "holds a single array, not named arrays" in refusal("npz", tmp_path / "one.npz", (1,))
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04K\x01.")
    msg = refusal("npz", tmp_path / "pickle.npz", (1,))
    assert "is not a readable .npz file (it is not a zip archive of NumPy arrays)" in msg


# ------------------------------------------------------------------------------------- fifos
FIFO_SCRIPT = r"""
import json, sys
from pathlib import Path
from engine.config import DataConfig
from engine.data import DataError, load_dataset
root = Path(sys.argv[1])
out = {}
for kind in ("csv", "npz"):
    try:
        load_dataset(DataConfig(dataset=kind, path=str(root / f"pipe.{kind}")), (2,))
        out[kind] = "loaded"
    except DataError as exc:
        out[kind] = str(exc)
ds = load_dataset(DataConfig(dataset="image_folder", path=str(root / "pets")), (1, 8, 8))
out["folder"] = [len(ds), ds.warnings]
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")
def test_named_pipes_are_refused_at_once_and_skipped_in_folders(pets):
    root = pets.parent
    for name in ("pipe.csv", "pipe.npz", "pets/cat/pipe.png"):
        os.mkfifo(root / name)
    try:
        # NOTE: in a child, so that a load that waits on a pipe fails the test instead of hanging the suite.
        done = subprocess.run(
            [sys.executable, "-c", FIFO_SCRIPT, str(root)], cwd=ROOT, capture_output=True, text=True, timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("loading from a named pipe waited for a writer instead of refusing it")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    for kind, what in (("csv", "CSV file"), ("npz", "npz file")):
        assert out[kind].startswith(f"{what} {root / f'pipe.{kind}'} is not a regular file (it is a pipe, socket or device)")
    count, warnings = out["folder"]
    assert count == 6
    assert any("in cat/ that are not regular files" in w and "such as pipe.png" in w for w in warnings)


# ---------------------------------------------------------------------------------- settings
def _project_file(tmp_path: Path, **data) -> Path:
    d = project_to_dict(load_template("mlp"))
    d["data"].update(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    return path


BAD_SETTINGS = [
    (
        {"augment": {"rotation": 1e300}},
        (
            "data.augment option 'rotation' (largest rotation, in degrees either way) must be a number from 0 to 180, "
            "not 1e+300"
        ),
    ),
    ({"augment": {"spin": 1}}, "data.augment has an unknown option 'spin'; the options are flip, shift, rotation"),
    ({"augment": {"flip": "yes"}}, "data.augment option 'flip'"),
    ({"augment": {"noise": -0.5}}, "data.augment option 'noise'"),
    ({"augment": [1, 2]}, "data.augment must be an object of augmentation option names to values"),
    (
        {"dataset": "spiral", "classes": "many"},
        'data.classes (the number of spiral arms) must be a whole number from 2 to 20, not "many"',
    ),
    ({"classes": 50}, "data.classes"),
    ({"feature_columns": []}, "data.feature_columns must be a list of one or more different column names"),
    ({"feature_columns": ["a", "a"]}, "data.feature_columns"),
    ({"path": "data\u0000.csv"}, 'data.path must be a path without NUL characters or null, not "data\\u0000.csv"'),
]


@pytest.mark.parametrize("data, words", BAD_SETTINGS, ids=[str(d) for d, _ in BAD_SETTINGS])
def test_bad_data_settings_are_refused_when_the_project_loads(tmp_path, data, words):
    path = _project_file(tmp_path, **data)
    with pytest.raises(ProjectError) as info:
        load_project(path)
    assert str(info.value).startswith("bad.json: ") and words in str(info.value)


@pytest.mark.parametrize("command", [["analyze"], ["export", "-o", "model.py"]])
def test_analyze_and_export_refuse_bad_settings_in_one_line(tmp_path, capsys, command):
    path = _project_file(tmp_path, augment={"rotation": 1e300})
    args = [command[0], str(path), *command[1:]]
    if command[0] == "export":
        args[-1] = str(tmp_path / "model.py")
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.augment option 'rotation'" in err
    assert not (tmp_path / "model.py").exists()


def test_good_settings_still_load_and_the_spiral_takes_its_arms(tmp_path):
    path = _project_file(tmp_path, dataset="spiral", classes=3.0, augment={"noise": 0.1, "flip": False})
    p = load_project(path)
    assert p.data.extra["classes"] == 3 and p.data.augment == {"noise": 0.1, "flip": False}
    ds = load_dataset(p.data, (2,))
    assert ds.classes == ["arm 0", "arm 1", "arm 2"]


@pytest.mark.parametrize("option", list(AUGMENT_OPTIONS))
def test_the_project_and_the_augmenter_agree_on_every_option(option):
    top = AUGMENT_OPTIONS[option][0]
    good = [True, False] if top is None else [0.0, top / 2, top]
    bad = ["yes", 2] if top is None else [-0.01, top * 1.01, float("nan"), True]
    for value in good:
        DataConfig.from_dict({"augment": {option: value}})
        Augmenter({option: value})
    for value in bad:
        with pytest.raises(ProjectError, match=f"option '{option}'"):
            DataConfig.from_dict({"augment": {option: value}})
        with pytest.raises(DataError, match=f"option '{option}'"):
            Augmenter({option: value})


# ------------------------------------------------------------------------------------ fuzzing
CELLS = ["1", "2.5", "-3e2", "0", "1", "x", "y", "nan", "inf", "1e39", "", '"q;r"', '"a,b"', '"', "  4 ", "\u00e9"]
LONG_CELL = "7" * 131_073  # one past the csv module's field limit


@st.composite
def csv_bytes(draw) -> bytes:
    """A table-like file (cells joined by a delimiter), arbitrary text, or arbitrary bytes."""
    kind = draw(st.sampled_from(["table", "text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(alphabet=st.sampled_from(list('01.,;\t"\n\r-e na\x00\u00e9\ufeff')), max_size=300)).encode()
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    width = draw(st.sampled_from([3, 3, 3, 1, 2, 4]))
    cells = st.sampled_from(CELLS[:7] * 3 + CELLS[7:] + [LONG_CELL])  # mostly numbers and labels
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width), min_size=0, max_size=8))
    lines = [delimiter.join(["a", "b", "label"])] + [delimiter.join(r) for r in rows]
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines).encode()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(content=csv_bytes(), task=st.sampled_from(["classification", "regression", "binary"]))
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_fuzzed_csv_loads_or_is_refused_in_words(tmp_path_factory, content, task):
    path = tmp_path_factory.getbasetemp() / "fuzz.csv"
    path.write_bytes(content)
    try:
        ds = load("csv", path, (2,), task=task)
    except DataError as exc:
        assert "\n" not in str(exc) and "Error" not in str(exc)
        return
    assert torch.isfinite(ds.x).all() and ds.x.shape[1:] == (2,)


def _real_npz(compressed: bool) -> bytes:
    out = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(out, x=np.arange(12, dtype=np.float32).reshape(6, 2), y=np.array([0, 1] * 3), box=np.full((6, 4), 0.5))
    return out.getvalue()


REAL_NPZ = [_real_npz(False), _real_npz(True)]
DESCRS = ["<f4", "<f8", "<i8", "|u1", "|b1", "|O", "<c8", "|V8", "<U3", ">f8", "bogus", "[('a', '<f4')]"]


def _mutated_header_npz(x_shape, x_descr, y_shape, fortran, extra) -> bytes:
    x = _npy_header(x_shape, x_descr, fortran) + bytes(extra)
    y = _npy(np.array([0, 1] * 3)) if y_shape is None else _npy_header(y_shape, "<i8") + bytes(extra)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("x.npy", x)
        z.writestr("y.npy", y)
    return out.getvalue()


shapes = st.lists(st.sampled_from([0, 1, 2, 6, 7, 10**12, 2**62]), min_size=0, max_size=3).map(tuple)
npz_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda b, cut: b[:cut], st.sampled_from(REAL_NPZ), st.integers(0, 2000)),
    st.builds(
        lambda b, flips: bytes(dict(flips).get(i, v) for i, v in enumerate(b)),
        st.sampled_from(REAL_NPZ),
        st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 255)), min_size=1, max_size=4),
    ),
    st.builds(
        _mutated_header_npz,
        shapes,
        st.sampled_from(DESCRS),
        st.one_of(st.none(), shapes),
        st.booleans(),
        st.integers(0, 128),
    ),
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(content=npz_bytes, task=st.sampled_from(["classification", "regression", "binary", "localization"]))
@pytest.mark.slow  # NOTE: a second or so, or a child process (tests/engine stays under 30 s without these)
def test_fuzzed_npz_loads_or_is_refused_in_words(tmp_path_factory, content, task):
    path = tmp_path_factory.getbasetemp() / "fuzz.npz"
    path.write_bytes(content)
    try:
        ds = load("npz", path, (2,), task=task)
    except DataError as exc:
        assert "\n" not in str(exc) and "Error" not in str(exc)
        return
    assert torch.isfinite(ds.x).all() and ds.x.shape[1:] == (2,)

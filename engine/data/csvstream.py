"""A CSV table larger than the memory budget, read once into a float32 file that training streams from.

Rows of a CSV file have no fixed length, so a row cannot be found without reading the rows
before it. :func:`open_csv_stream` therefore reads the table once, a row at a time (never the
whole text), checks every cell as :func:`engine.data.csvfile.load_csv` does, with the same
messages, and writes the features as float32 to a temporary file that DataLoader workers
memory-map. The targets (a class index or a value per row) stay in memory. The temporary file
is deleted when the data set is dropped.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from array import array
from pathlib import Path

import numpy as np
import torch

from engine.data.base import DataError, as_float, fit_vectors, labels_and_binary, open_regular, os_reason
from engine.data.csvfile import _agrees, _columns, _number, _records, _shown, _sorted_classes
from engine.data.stream_sources import MappedSource

__all__ = ["open_csv_stream"]

#: characters read to choose the delimiter, as the in-memory loader chooses it from the whole text
SNIFF_CHARS = 1 << 16
#: rows parsed before they are written out together
CHUNK_ROWS = 4096


def _delimiter(path: Path, text: io.TextIOBase) -> str:
    """The comma, or a semicolon or tab when every row of the file's start agrees on it."""
    sample = text.read(SNIFF_CHARS)
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    sample = sample[: cut + 1] if cut >= 0 and len(sample) == SNIFF_CHARS else sample
    if _agrees(_records(path, sample, ",")):
        return ","
    for other in (";", "\t"):
        try:
            if _agrees(_records(path, sample, other)):
                return other
        except DataError:
            continue
    return ","


def _rows(path: Path, text: io.TextIOBase, delimiter: str):
    """(line number, stripped cells) of each non-blank record, the header first."""
    reader = csv.reader(text, delimiter=delimiter)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise DataError(
                f"CSV file {path}, line {reader.line_num + 1} cannot be read as a row of a table: check that the "
                "file is a CSV table"
            ) from None
        except UnicodeDecodeError as exc:
            raise DataError(
                f"CSV file {path} is not UTF-8 text (near line {reader.line_num + 1}, a byte at {exc.start} of a "
                "block is not): save it as CSV UTF-8"
            ) from None
        except OSError as exc:
            raise DataError(f"CSV file {path} cannot be read ({os_reason(exc)})") from None
        if any(cell.strip() for cell in cells):
            yield reader.line_num, [cell.strip() for cell in cells]


class _Table:
    """Features written to ``out`` as float32 rows, and the target cells kept as they are needed."""

    def __init__(self, path: Path, header: list[str], features: list[str], target: str, task: str, out) -> None:
        self.path, self.header, self.features, self.target, self.task, self.out = path, header, features, target, task, out
        self.at = {name: i for i, name in enumerate(header)}
        self.chunk = np.empty((CHUNK_ROWS, len(features)), np.float32)
        self.filled = 0
        self.rows = 0
        self.values = array("d")
        self.class_ids: dict[str, int] = {}
        self.labels = array("q")

    def add(self, line: int, cells: list[str]) -> None:
        r = self.rows + 1
        if len(cells) != len(self.header):
            raise DataError(
                f"CSV file {self.path}, row {r} (line {line}) has {len(cells)} values "
                f"but the header names {len(self.header)} columns"
            )
        for j, name in enumerate(self.features):
            where = f"CSV file {self.path}, row {r} (line {line}), column {_shown(name)}"
            self.chunk[self.filled, j] = _number(cells[self.at[name]], where)
        cell = cells[self.at[self.target]]
        if self.task == "regression":
            self.values.append(_number(cell, f"CSV file {self.path}, row {r} (line {line}), column {_shown(self.target)}"))
        else:
            self.labels.append(self.class_ids.setdefault(cell, len(self.class_ids)))
        self.filled += 1
        self.rows += 1
        if self.filled == CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        self.chunk[: self.filled].tofile(self.out)
        self.filled = 0

    def targets(self) -> tuple[dict[str, torch.Tensor], list[str] | None, list[str]]:
        """The targets, class names and warnings, as :func:`~engine.data.csvfile.load_csv` makes them."""
        if self.task == "regression":
            return {"value": as_float(np.frombuffer(self.values, np.float64))[:, None]}, None, []
        classes = _sorted_classes(list(self.class_ids))
        rank = {name: k for k, name in enumerate(classes)}
        order = np.array([rank[name] for name in self.class_ids], np.int64)
        labels = order[np.frombuffer(self.labels, np.int64)]
        warnings = []
        if len(classes) > 20 and len(classes) > self.rows // 2:
            warnings.append(
                f"the target column {_shown(self.target)} has {len(classes)} distinct values in {self.rows} rows: "
                "if it holds numbers to predict, choose the regression task"
            )
        return labels_and_binary(labels, len(classes)), classes, warnings


def open_csv_stream(path: Path, input_shape: tuple[int, ...], task: str, feature_columns: list[str] | None = None,
                    target_column: str | None = None):
    """A :class:`~engine.data.streaming.StreamDataset` of the CSV table ``path``, streamed from a float32 copy."""
    from engine.data.streaming import StreamDataset

    fd, copy = tempfile.mkstemp(prefix="net-designer-", suffix=".f32")
    try:
        with os.fdopen(fd, "wb") as out, open_regular(path, "CSV file") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            delimiter = _delimiter(path, text)
            text.seek(0)
            rows = _rows(path, text, delimiter)
            first = next(rows, None)
            if first is None:
                raise DataError(f"CSV file {path} is empty: it needs a header row of column names, then one row per sample")
            header = first[1]
            features, target = _columns(path, header, feature_columns, target_column)
            fit_vectors(torch.empty(0, len(features)), input_shape, path.name, f"{len(features)} feature columns",
                        reshape=True)
            table = _Table(path, header, features, target, task, out)
            for line, cells in rows:
                table.add(line, cells)
            table.flush()
        if not table.rows:
            raise DataError(f"CSV file {path} has a header but no data rows")
        targets, classes, warnings = table.targets()
    except BaseException:
        os.remove(copy)
        raise
    source = MappedSource(copy, 0, "<f4", (table.rows, len(features)), False, tuple(input_shape),
                          f"CSV file {path}, sample", remove=True)
    return StreamDataset(source, np.arange(table.rows), targets, classes, path.name, warnings)

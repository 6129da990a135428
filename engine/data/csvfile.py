"""Data a person brings as a CSV table: a header row, numeric feature columns and one target column.

Every problem is a :class:`DataError` that names the file, row and column at fault and says
what to do; no reader's own error text reaches a person. Only a regular file is opened, so a
pipe or device never blocks a load.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import torch

from engine.data.base import (
    DataError,
    Dataset,
    as_float,
    fit_vectors,
    labels_and_binary,
    open_regular,
    os_reason,
)

__all__ = ["FLOAT32_MAX", "load_csv"]

#: the largest magnitude a float32 holds; a bigger value becomes infinity in training
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _shown(cell: str) -> str:
    """A cell's text for a message, cut short: a cell can be a megabyte long."""
    return repr(cell if len(cell) <= 40 else cell[:37] + "...")



def _number(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        shown = _shown(cell) if cell.strip() else "an empty cell"
        raise DataError(f"{where}: {shown} is not a number") from None
    if not np.isfinite(value):
        raise DataError(f"{where}: {_shown(cell)} is not a finite number (NaN or infinity): fix the value or remove the row")
    if abs(value) > FLOAT32_MAX:
        raise DataError(
            f"{where}: {_shown(cell)} is too large for the 32-bit numbers training uses (at most ±3.4e38): "
            "scale the column down"
        )
    return value


def _sorted_classes(values: list[str]) -> list[str]:
    distinct = set(values)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def _read_text(path: Path) -> str:
    with open_regular(path, "CSV file") as f:
        try:
            raw = f.read()
        except OSError as exc:
            raise DataError(f"CSV file {path} cannot be read ({os_reason(exc)})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"CSV file {path} is not UTF-8 text (the bytes at offset {exc.start} are not): "
            "save it as CSV UTF-8"
        ) from None


def _line_start(text: str, line: int) -> int:
    """The offset in ``text`` of its physical line ``line`` (from 1), counting lines as csv does."""
    if line <= 1:
        return 0
    for count, end in enumerate(re.finditer(r"\r\n|\r|\n", text), start=2):
        if count == line:
            return end.end()
    return len(text)


def _long_cell(text: str, start: int, delimiter: str, limit: int) -> int:
    """The index of the first cell longer than ``limit`` in the record starting at ``start``."""
    column, length, quoted = 0, 0, False
    for ch in text[start:]:
        if ch == '"':
            quoted = not quoted  # NOTE: a doubled quote flips twice; the count stays close enough.
        elif not quoted and ch == delimiter:
            column, length = column + 1, 0
        elif not quoted and ch in "\r\n":
            break
        else:
            length += 1
            if length > limit:
                break
    return column


def _csv_problem(
    path: Path, text: str, delimiter: str, records: list[tuple[int, list[str]]], line: int, exc: csv.Error
) -> str:
    """The message for a csv.Error on the record that starts at physical ``line``."""
    where = f"CSV file {path}, " + (f"row {len(records)} (line {line})" if records else f"the header row (line {line})")
    if "field larger than field limit" not in str(exc):
        return f"{where} cannot be read as a row of a table: check that the file is a CSV table"
    limit = csv.field_size_limit()
    index = _long_cell(text, _line_start(text, line), delimiter, limit)
    header = records[0][1] if records else []
    column = repr(header[index]) if index < len(header) else f"number {index + 1}"
    return (
        f"{where}, column {column} holds more than {limit:,} characters: no number or class name is that long; "
        "look for a quote that is never closed, which runs the rest of the file into one cell"
    )


def _records(path: Path, text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank record, the header first; cells are stripped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    done = 0  # physical lines read before the record being parsed
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:
            raise DataError(_csv_problem(path, text, delimiter, records, done + 1, exc)) from None
        done = reader.line_num
        if any(cell.strip() for cell in cells):
            records.append((reader.line_num, [cell.strip() for cell in cells]))


def _agrees(records: list[tuple[int, list[str]]]) -> bool:
    """True when every record has the same number of cells, two or more."""
    widths = {len(cells) for _, cells in records}
    return len(widths) == 1 and widths.pop() >= 2


def _table(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """The records of ``text`` split at commas, or at semicolons or tabs when every row agrees on those.

    NOTE: a guess from the characters (csv.Sniffer) took ";" inside quoted labels for the
    delimiter; the comma wins unless its rows disagree, and another delimiter must fit every row.
    """
    comma = _records(path, text, ",")
    if _agrees(comma):
        return comma
    for delimiter in (";", "\t"):
        try:
            other = _records(path, text, delimiter)
        except DataError:
            continue
        if _agrees(other):
            return other
    return comma  # NOTE: none fits every row: the comma's row errors name the row at fault


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of each non-blank data row."""
    records = _table(path, _read_text(path))
    if not records:
        raise DataError(f"CSV file {path} is empty: it needs a header row of column names, then one row per sample")
    return records[0][1], records[1:]


def _columns(path: Path, header: list[str], features: list[str] | None, target: str | None) -> tuple[list[str], str]:
    if len(set(header)) != len(header):
        twice = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"CSV file {path} names column {_shown(twice[0])} more than once")
    if len(header) < 2:
        raise DataError(
            f"CSV file {path} has one column ({_shown(header[0])}): it needs feature columns and a target column"
        )
    listed = ", ".join(_shown(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
    target = target if target is not None else header[-1]
    if target not in header:
        raise DataError(f"CSV file {path} has no target column {_shown(target)}; its columns are {listed}")
    features = features if features is not None else [h for h in header if h != target]
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(f"CSV file {path} has no feature column {_shown(missing[0])}; its columns are {listed}")
    if target in features:
        raise DataError(f"CSV file {path}: column {_shown(target)} cannot be both a feature and the target")
    if not features:
        raise DataError(f"CSV file {path}: no feature columns chosen")
    return features, target


def load_csv(
    path: Path,
    input_shape: tuple[int, ...],
    task: str,
    feature_columns: list[str] | None = None,
    target_column: str | None = None,
) -> Dataset:
    """A table with a header row: numeric feature columns and one target column.

    For regression the target must be numeric and becomes ``value``; otherwise its distinct
    values become the classes (sorted, numerically when they are all numbers). Every number
    must be finite and fit a float32: a NaN or infinity is refused naming its row and column.
    """
    header, rows = _read_rows(path)
    features, target = _columns(path, header, feature_columns, target_column)
    if not rows:
        raise DataError(f"CSV file {path} has a header but no data rows")
    at = {name: i for i, name in enumerate(header)}
    x = np.empty((len(rows), len(features)), np.float32)
    raw_target: list[str] = []
    for r, (line, cells) in enumerate(rows):
        if len(cells) != len(header):
            raise DataError(
                f"CSV file {path}, row {r + 1} (line {line}) has {len(cells)} values "
                f"but the header names {len(header)} columns"
            )
        for j, name in enumerate(features):
            x[r, j] = _number(cells[at[name]], f"CSV file {path}, row {r + 1} (line {line}), column {_shown(name)}")
        raw_target.append(cells[at[target]])
    xt = fit_vectors(torch.from_numpy(x), input_shape, path.name, f"{len(features)} feature columns", reshape=True)
    if task == "regression":
        values = [
            _number(cell, f"CSV file {path}, row {r + 1} (line {line}), column {_shown(target)}")
            for r, ((line, _), cell) in enumerate(zip(rows, raw_target))
        ]
        return Dataset(xt, {"value": as_float(values)[:, None]}, None, path.name)
    classes = _sorted_classes(raw_target)
    index = {name: k for k, name in enumerate(classes)}
    warnings = []
    if len(classes) > 20 and len(classes) > len(rows) // 2:
        warnings.append(
            f"the target column {_shown(target)} has {len(classes)} distinct values in {len(rows)} rows: "
            "if it holds numbers to predict, choose the regression task"
        )
    labels = np.array([index[v] for v in raw_target])
    return Dataset(xt, labels_and_binary(labels, len(classes)), classes, path.name, warnings)


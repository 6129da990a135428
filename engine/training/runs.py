"""A training run on disk: ``metrics.csv`` (one row per epoch) and ``summary.json``.

The CLI writes these next to the checkpoints; the window can read a run made this
way with :func:`read_run`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import NetDesignerError
from engine.fileio import atomic_write_text


@dataclass
class RunRecord:
    """One run: its config (project snapshot), per-epoch history and final summary."""

    name: str
    project: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _plain(v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def write_run(out_dir: Path, record: RunRecord) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(out_dir / "metrics.csv", record.history)
    doc = {"name": record.name, "summary": _plain(record.summary), "project": record.project}
    atomic_write_text(out_dir / "summary.json", json.dumps(doc, indent=2))


def read_run(out_dir: str | Path) -> RunRecord:
    """Read a run folder written by :func:`write_run` (the CLI's ``train --out DIR``)."""
    out_dir = Path(out_dir)
    try:
        doc = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        with open(out_dir / "metrics.csv", encoding="utf-8", newline="") as fh:
            rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    except FileNotFoundError as exc:
        raise NetDesignerError(f"{out_dir}: not a training run folder ({Path(exc.filename).name} is missing)") from None
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as exc:
        raise NetDesignerError(f"{out_dir}: the run files are damaged ({exc})") from None
    if not isinstance(doc, dict):
        raise NetDesignerError(f"{out_dir}/summary.json: expected an object")
    return RunRecord(str(doc.get("name", out_dir.name)), doc.get("project") or {}, rows, doc.get("summary") or {}, out_dir)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item"):
        return v.item()
    return v


def _number(text: str) -> Any:
    if text in ("", None):
        return None
    try:
        return float(text) if any(c in text for c in ".eEn") else int(text)
    except ValueError:
        return text

"""Copy and paste of blocks through the system clipboard.

The clipboard holds the engine's ``graph_to_dict`` form of the copied blocks and the
wires between them, as JSON, under the MIME type :data:`MIME_TYPE` and also as
plain text, so blocks move between documents (and between two running copies of
the program) and can be pasted into a text editor to read.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QClipboard, QGuiApplication

from engine.graph import Graph
from engine.project import graph_to_dict

MIME_TYPE = "application/x-netdesigner-graph"
_FORMAT = "netdesigner-blocks"


def blocks_to_mime(data: dict[str, Any]) -> QMimeData:
    """The MIME data for a ``graph_to_dict`` dict."""
    text = json.dumps({"format": _FORMAT, **data}, indent=1)
    mime = QMimeData()
    mime.setData(MIME_TYPE, text.encode("utf-8"))
    mime.setText(text)
    return mime


def blocks_from_mime(mime: QMimeData | None) -> dict[str, Any] | None:
    """The blocks held by ``mime``, or None when it holds none."""
    if mime is None:
        return None
    if mime.hasFormat(MIME_TYPE):
        raw = bytes(mime.data(MIME_TYPE).data()).decode("utf-8", errors="replace")
    elif mime.hasText():
        raw = mime.text()
    else:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        return None
    data.pop("format", None)
    return data


def copy_blocks(graph: Graph, node_ids: Iterable[str], clipboard: QClipboard | None = None) -> dict[str, Any]:
    """Put the blocks ``node_ids`` (and the wires between them) on the clipboard; returns the dict."""
    data = graph_to_dict(graph, list(node_ids))
    (clipboard or QGuiApplication.clipboard()).setMimeData(blocks_to_mime(data))
    return data


def release_clipboard(clipboard: QClipboard | None = None) -> None:
    """Clear the clipboard if it holds our blocks, while Python is still running.

    NOTE: the clipboard owns the QMimeData we gave it. Left there, Qt deletes it from a
    static destructor after the interpreter has shut down, and the process crashes on exit.
    """
    board = clipboard or QGuiApplication.clipboard()
    mime = board.mimeData()
    if mime is not None and mime.hasFormat(MIME_TYPE):
        board.clear()


def pasted_blocks(clipboard: QClipboard | None = None) -> dict[str, Any] | None:
    """The blocks on the clipboard, or None."""
    return blocks_from_mime((clipboard or QGuiApplication.clipboard()).mimeData())

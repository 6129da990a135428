"""User text made safe to print on a terminal.

Block names, project names, class names and file paths come from files a person may have been
sent. Printed raw, an escape sequence in one of them can recolour the terminal, retitle its
window, move the cursor or hide the rest of the line (``\\r``), and a bidi override (U+202E)
can make a line read in a different order than it is written. :func:`terminal_safe` shows
every such character as a visible escape instead, so the text reads literally.
"""

from __future__ import annotations

import unicodedata

__all__ = ["terminal_safe"]

#: characters that reorder text without being control characters: the bidi embeddings,
#: overrides and isolates, the direction marks, and the Arabic letter mark
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: Unicode categories never printed as they are: controls (C0, DEL, C1), line and paragraph
#: separators, and lone surrogates (a file name that was not valid UTF-8 arrives with them,
#: and a UTF-8 terminal stream cannot even encode them)
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


def _unsafe(ch: str) -> bool:
    return ch in _BIDI or unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_safe(text: object) -> str:
    """``str(text)`` with every control, bidi or unencodable character shown as ``\\xNN`` / ``\\uNNNN``.

    Printable text, accents, CJK and emoji pass unchanged, and so do backslashes (Windows paths
    stay readable). Newlines and tabs are escaped too: one value prints on one line.
    """
    s = str(text)
    if s.isprintable():
        return s  # NOTE: the common case; isprintable() is False for every character escaped here
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in s)

"""User text in Qt widgets, shown as the text it is and never as markup.

Block, project and class names, file paths and the engine's messages (which quote them) come
from files a person may have been sent. Qt guesses: a QLabel, a tooltip or a message box
renders its text as HTML when it *looks* like HTML (``Qt.mightBeRichText``), so a block named
``<u>x</u><img src=…>`` would be drawn underlined, with an image. pyqtgraph's titles, axis
labels, legends and text items are always HTML. Three tools cover every case:

* :func:`plain` / :func:`plain_label`: a QLabel that never renders markup.
* :func:`as_plain`: text for a widget that guesses (tooltip, message box), made to read literally.
* :func:`escape_rich`: user text put inside HTML the program writes on purpose.
"""

from __future__ import annotations

import html

from PySide6 import QtGui
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

__all__ = ["as_plain", "escape_rich", "plain", "plain_label"]


def plain(label: QLabel) -> QLabel:
    """``label`` set to show its text literally (``Qt.TextFormat.PlainText``); returns it."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel for user text: plain, whatever the text looks like."""
    return plain(QLabel(str(text), parent))


def escape_rich(text: object) -> str:
    """``text`` escaped for HTML that the program writes on purpose (``<b>{escape_rich(name)}</b>``)."""
    return html.escape(str(text))


def as_plain(text: object) -> str:
    """``text`` for a widget that guesses its format (a tooltip, a message box): it reads literally there.

    Text that does not look like markup is returned as it is; text that does is escaped and
    wrapped as rich text, line breaks kept (and long lines wrapped, as a message box needs).
    """
    s = str(text)
    if not QtGui.Qt.mightBeRichText(s):
        return s
    return QtGui.Qt.convertFromPlainText(s, Qt.WhiteSpaceMode.WhiteSpaceNormal)


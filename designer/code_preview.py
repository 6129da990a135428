"""A read-only preview of the generated PyTorch code, with copy and save."""

from __future__ import annotations

import keyword
import re
from typing import Callable

from PySide6.QtCore import QEvent, QRegularExpression
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from designer.file_ops import dialog_folder
from designer.plaintext import as_plain
from designer.theme import is_dark

_LIGHT = {"keyword": "#0033b3", "builtin": "#7a3e9d", "string": "#067d17", "comment": "#8c8c8c",
          "number": "#1750eb", "self": "#94558d", "defname": "#00627a"}
_DARK = {"keyword": "#cc7832", "builtin": "#b39ddb", "string": "#8bc34a", "comment": "#7f8a96",
         "number": "#6897bb", "self": "#c792ea", "defname": "#ffc66d"}


def _fmt(color: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


class PythonHighlighter(QSyntaxHighlighter):
    """Just enough Python highlighting for generated code: keywords, strings, comments, numbers."""

    def __init__(self, document) -> None:
        super().__init__(document)
        self.set_dark(is_dark())

    def set_dark(self, dark: bool) -> None:
        c = _DARK if dark else _LIGHT
        kw = r"\b(" + "|".join(keyword.kwlist) + r")\b"
        self._rules = [
            (QRegularExpression(r"\b(nn|torch|super|print|tuple|isinstance|Path|len|range)\b"), _fmt(c["builtin"])),
            (QRegularExpression(kw), _fmt(c["keyword"], bold=True)),
            (QRegularExpression(r"\bself\b"), _fmt(c["self"], italic=True)),
            (QRegularExpression(r"\b[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\b"), _fmt(c["number"])),
            (QRegularExpression(r"(?<=\bdef |\bclass )\w+"), _fmt(c["defname"], bold=True)),
        ]
        self._string = _fmt(c["string"])
        self._comment = _fmt(c["comment"], italic=True)
        self._strings = re.compile(r'"""|\'\'\'|"[^"\n]*"|\'[^\'\n]*\'')
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt's name
        for regex, fmt in self._rules:
            it = regex.globalMatch(text)
            while it.hasNext():
                m = it.next()
                self.setFormat(m.capturedStart(), m.capturedLength(), fmt)
        self._highlight_strings_and_comments(text)

    def _highlight_strings_and_comments(self, text: str) -> None:
        # NOTE: state 1 means "inside a triple-quoted string" carried over from the line before.
        pos = 0
        if self.previousBlockState() == 1:
            end = text.find('"""')
            if end < 0:
                self.setFormat(0, len(text), self._string)
                self.setCurrentBlockState(1)
                return
            self.setFormat(0, end + 3, self._string)
            pos = end + 3
        self.setCurrentBlockState(0)
        while pos < len(text):
            hash_at = text.find("#", pos)
            m = self._strings.search(text, pos)
            if m is None or (0 <= hash_at < m.start()):
                if hash_at >= 0:
                    self.setFormat(hash_at, len(text) - hash_at, self._comment)
                return
            if m.group() in ('"""', "'''"):
                end = text.find(m.group(), m.end())
                if end < 0:
                    self.setFormat(m.start(), len(text) - m.start(), self._string)
                    self.setCurrentBlockState(1)
                    return
                self.setFormat(m.start(), end + 3 - m.start(), self._string)
                pos = end + 3
            else:
                self.setFormat(m.start(), m.end() - m.start(), self._string)
                pos = m.end()


class CodePreviewDialog(QDialog):
    """Shows ``source`` in a monospace read-only view with Copy and Save… buttons.

    Args:
        source: the generated code.
        title: the project name, shown in the window title.
        on_save: called for Save…; by default a file dialog saves the text as it is.
    """

    def __init__(self, source: str, title: str = "", on_save: Callable[[], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"PyTorch code — {title}" if title else "PyTorch code")
        self._on_save = on_save
        self.editor = QPlainTextEdit(source)
        self.editor.setReadOnly(True)
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(font.pointSizeF(), 10.0))
        self.editor.setFont(font)
        self.highlighter = PythonHighlighter(self.editor.document())
        lines = source.count("\n") + 1
        note = QLabel(f"{lines} lines · standalone: needs only PyTorch")
        note.setProperty("role", "muted")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy to clipboard")
        self.save_button = QPushButton("Save…")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.save_button.clicked.connect(self._save)
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(820, 640)

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self.editor.toPlainText())
        self.copy_button.setText("Copied ✓")

    def _save(self) -> None:
        if self._on_save is not None:
            self._on_save()
            return
        start = str(dialog_folder(None) / "model.py")  # NOTE: the window passes on_save, which knows the project
        path, _ = QFileDialog.getSaveFileName(self, "Save code", start, "Python files (*.py)")
        if not path:
            return
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(self.editor.toPlainText())
        except OSError as exc:
            QMessageBox.critical(self, "Save code", as_plain(f"Could not write {path}:\n{exc}"))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self.highlighter.set_dark(is_dark())
        super().changeEvent(event)

"""The breadcrumb bar over the canvas: where in the network the canvas is ("network › stage1 › block0").

Shown only inside a unit. Each crumb but the last is a button that leads back up to that level;
names are user text, so they are shown as plain text (a "&" stays an "&").
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

#: the first crumb: the whole network
TOP_LABEL = "network"
SEPARATOR = "›"


class BreadcrumbBar(QFrame):
    """The path of opened units. Signals: ``crumb_clicked(int)``: go to that depth (0: the network)."""

    crumb_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("breadcrumb_bar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(6, 2, 6, 2)
        self._layout.setSpacing(4)
        self._labels: list[str] = []
        self.buttons: list[QToolButton] = []
        self.hide()

    def labels(self) -> list[str]:
        """The crumbs' texts, the network first."""
        return list(self._labels)

    def text(self) -> str:
        return f" {SEPARATOR} ".join(self._labels)

    def set_path(self, names: list[str]) -> None:
        """Show ``network › names[0] › ...``; hidden when ``names`` is empty (the network itself)."""
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._labels = [TOP_LABEL, *names]
        self.buttons = []
        last = len(self._labels) - 1
        for depth, label in enumerate(self._labels):
            if depth:
                self._layout.addWidget(_plain(SEPARATOR))
            if depth == last:
                current = _plain(label)
                current.setStyleSheet("font-weight: 600;")
                self._layout.addWidget(current)
                continue
            button = QToolButton(self)
            button.setText(label.replace("&", "&&"))
            button.setAutoRaise(True)
            button.setToolTip(f"Back to {label}" if depth else "Back to the whole network")
            button.clicked.connect(lambda _checked=False, d=depth: self.crumb_clicked.emit(d))
            self.buttons.append(button)
            self._layout.addWidget(button)
        self.setVisible(bool(names))
        self.adjustSize()


def _plain(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label

"""The start state: a centred panel over the empty canvas with New blank, Open… and templates.

NOTE: it is laid out to show at least two whole rows of template cards on a 1366×768 screen
(the buttons share the heading's row; a card's description keeps to two lines).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from designer.gallery import template_cards
from designer.palette import LAYER_MIME

CARD = QSize(170, 88)
_MARGIN = 24


class StartPanel(QFrame):
    """Floats centred over ``host`` (the canvas view). Drop a palette layer on it to start blank."""

    new_blank_requested = Signal()
    open_requested = Signal()
    template_requested = Signal(str)
    layer_dropped = Signal(str)

    def __init__(self, host: QWidget) -> None:
        super().__init__(host)
        self.setObjectName("start_panel")
        self.setProperty("role", "panel")
        self.setAcceptDrops(True)
        self.setAutoFillBackground(True)

        heading = QLabel("Build a neural network")
        heading.setProperty("role", "heading")
        intro = QLabel(
            "Start with a blank canvas and drag layers in from the palette, open a project, "
            "or begin from one of the classic networks below."
        )
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        self.new_button = QPushButton("New blank")
        self.new_button.setDefault(True)
        self.open_button = QPushButton("Open…")
        self.new_button.clicked.connect(self.new_blank_requested)
        self.open_button.clicked.connect(self.open_requested)
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addStretch(1)
        top.addWidget(self.new_button)
        top.addWidget(self.open_button)

        templates_label = QLabel("<b>Templates</b>")
        self.cards = template_cards(CARD, lines=2)
        for card in self.cards:
            card.clicked.connect(self.template_requested)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(10)
        self._columns = 0
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self._grid_host)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.setSpacing(10)
        layout.addLayout(top)
        layout.addWidget(intro)
        layout.addWidget(templates_label)
        layout.addWidget(self.scroll, 1)
        host.installEventFilter(self)
        self._place()

    def card_names(self) -> list[str]:
        return [c.name for c in self.cards]

    # ------------------------------------------------------------------ placement
    def _reflow(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for card in self.cards:
            self._grid.removeWidget(card)
        for i, card in enumerate(self.cards):
            self._grid.addWidget(card, i // columns, i % columns, Qt.AlignmentFlag.AlignTop)

    def _place(self) -> None:
        host = self.parentWidget()
        if host is None:
            return
        card_w = CARD.width() + 20 + self._grid.spacing()
        avail_w = max(260, host.width() - 2 * _MARGIN)
        columns = max(1, min(len(self.cards) or 1, 5, (avail_w - 2 * _MARGIN) // card_w))
        self._reflow(columns)
        width = min(avail_w, columns * card_w + 2 * _MARGIN + 4)
        self._grid_host.adjustSize()
        rows = -(-len(self.cards) // columns) if self.cards else 0
        card_h = self.cards[0].sizeHint().height() if self.cards else 0
        grid_h = rows * (card_h + self._grid.spacing())
        fixed = self.sizeHint().height() - self.scroll.sizeHint().height()
        height = min(max(260, host.height() - 2 * _MARGIN), fixed + grid_h + 4)
        self.setGeometry((host.width() - width) // 2, (host.height() - height) // 2, width, height)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if obj is self.parentWidget() and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self._place()
        return super().eventFilter(obj, event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._place()
        super().showEvent(event)

    # ------------------------------------------------------------------ drops
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasFormat(LAYER_MIME):
            type_id = bytes(event.mimeData().data(LAYER_MIME)).decode("utf-8")
            event.acceptProposedAction()
            self.layer_dropped.emit(type_id)
        else:
            event.ignore()

"""The template gallery: each built-in template as a card with a miniature of its diagram.

:func:`render_miniature` paints a graph as small coloured boxes at the blocks'
positions with lines for the wires. It reads only the engine's graph, not the
canvas items, so it works before any canvas exists.
"""

from __future__ import annotations

import html
import logging
import math

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from designer.colors import category_color
from designer.plaintext import plain_label
from designer.theme import colors, is_dark
from engine.graph import Graph
from engine.layout import DEFAULT_SPACING

#: A block's size in scene units (the canvas draws blocks about this big).
BLOCK_SIZE = (180.0, 70.0)
MINIATURE = QSize(220, 120)


def _positions(graph: Graph) -> dict[str, tuple[float, float]]:
    pos = {nid: n.pos for nid, n in graph.nodes.items()}
    if len(set(pos.values())) < len(pos):  # stacked or never placed: lay it out here
        try:
            from engine.layout import auto_layout

            pos = auto_layout(graph)
        except Exception:  # noqa: BLE001 - a miniature must never stop the gallery
            pos = {nid: (i * 230.0, 0.0) for i, nid in enumerate(graph.nodes)}
    return pos


def _fold(pos: dict[str, tuple[float, float]], aspect: float) -> dict[str, tuple[float, float]]:
    """Wrap a long left-to-right layout into rows so a thumbnail of ``aspect`` shows its blocks."""
    if not pos:
        return pos
    step_x = DEFAULT_SPACING[0]
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    x0, y0 = min(xs), min(ys)
    columns = round((max(xs) - x0) / step_x) + 1
    band = max(ys) - y0 + BLOCK_SIZE[1] + DEFAULT_SPACING[1] * 0.6

    def shape(k: int) -> float:
        rows = -(-columns // k)
        return (k * step_x) / (rows * band)

    if columns <= 5:  # short enough to read in one row
        return pos
    best = min(range(1, columns + 1), key=lambda k: abs(math.log(shape(k) / aspect)))
    if best == columns:
        return pos
    out = {}
    for nid, (x, y) in pos.items():
        c = round((x - x0) / step_x)
        row, col = divmod(c, best)
        out[nid] = (x0 + col * step_x + (x - x0 - c * step_x), y + row * band)
    return out


def render_miniature(graph: Graph, size: QSize = MINIATURE, dark: bool | None = None) -> QPixmap:
    """The graph drawn small: boxes in category colours at the blocks' positions, wires as lines."""
    dark = is_dark() if dark is None else dark
    c = colors(dark)
    ratio = max(1.0, QGuiApplication.primaryScreen().devicePixelRatio() if QGuiApplication.primaryScreen() else 1.0)
    pm = QPixmap(round(size.width() * ratio), round(size.height() * ratio))
    pm.setDevicePixelRatio(ratio)
    pm.fill(QColor(c["base"]))
    if not len(graph):
        return pm
    pos = _fold(_positions(graph), size.width() / size.height())
    bw, bh = BLOCK_SIZE
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    x0, y0 = min(xs), min(ys)
    width, height = max(xs) + bw - x0, max(ys) + bh - y0
    margin = 8.0
    scale = min((size.width() - 2 * margin) / width, (size.height() - 2 * margin) / height, 0.3)
    ox = (size.width() - width * scale) / 2
    oy = (size.height() - height * scale) / 2
    w, h = max(bw * scale, 4.0), max(bh * scale, 3.0)

    def rect(nid: str) -> QRectF:
        x, y = pos[nid]
        cx, cy = ox + (x - x0 + bw / 2) * scale, oy + (y - y0 + bh / 2) * scale
        return QRectF(cx - w / 2, cy - h / 2, w, h)

    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(QColor(c["muted"]), 1.0))
    for e in graph.edges:
        a, b = rect(e.src), rect(e.dst)
        p.drawLine(QPointF(a.center()), QPointF(b.center()))
    radius = min(w, h) * 0.2
    for nid, node in graph.nodes.items():
        color = category_color(node.spec.category, dark)
        p.setPen(QPen(color.darker(140), 0.8))
        p.setBrush(color)
        p.drawRoundedRect(rect(nid), radius, radius)
    p.end()
    return pm


class TemplateCard(QFrame):
    """One template: miniature, title and one-line description. Click selects, double-click opens."""

    clicked = Signal(str)
    activated = Signal(str)

    def __init__(self, name: str, title: str, description: str, graph: Graph | None,
                 error: str = "", size: QSize = MINIATURE, parent: QWidget | None = None,
                 lines: int | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setProperty("role", "card")
        self.setProperty("selected", False)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFixedWidth(size.width() + 20)
        self.setToolTip(f"<b>{html.escape(title)}</b><br>{html.escape(description)}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(4)
        self.picture = QLabel()
        self.picture.setFixedSize(size)
        self._graph, self._size = graph, size
        self._render()
        layout.addWidget(self.picture)
        bold = QFont(self.font())
        bold.setBold(True)
        # NOTE: a title longer than the card ends in "…" rather than being cut; the tooltip has it whole
        shown = QFontMetrics(bold).elidedText(title, Qt.TextElideMode.ElideRight, size.width())
        self.title = QLabel(f"<b>{html.escape(shown)}</b>")
        layout.addWidget(self.title)
        self.description = plain_label(error or description)  # NOTE: an error quotes the file
        self.description.setWordWrap(True)
        self.description.setProperty("role", "error" if error else "muted")
        self.description.setMinimumHeight(self.fontMetrics().height() * 2 + 2)
        if lines is not None and not error:  # NOTE: the whole description is in the tooltip
            metrics = self.description.fontMetrics()
            self.description.setWordWrap(False)
            self.description.setText(elide_lines(description, metrics, size.width(), lines))
            self.description.setFixedHeight(metrics.lineSpacing() * lines + 2)
        self.description.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.description)
        layout.addStretch(1)
        self.setEnabled(not error)

    def _render(self) -> None:
        if self._graph is not None:
            self.picture.setPixmap(render_miniature(self._graph, self._size))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self._render()
        super().changeEvent(event)

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        self.style().unpolish(self)
        self.style().polish(self)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.name)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit(self.name)
        super().mouseDoubleClickEvent(event)


def elide_lines(text: str, metrics: QFontMetrics, width: int, lines: int) -> str:
    """``text`` wrapped at spaces to ``width`` pixels on at most ``lines`` lines, the last ending in "…"
    when the text goes on."""
    rows: list[str] = []
    for word in text.split():
        joined = f"{rows[-1]} {word}" if rows else word
        if rows and metrics.horizontalAdvance(joined) <= width:
            rows[-1] = joined
        else:
            rows.append(word)
    if len(rows) > lines:
        rows = rows[: lines - 1] + [" ".join(rows[lines - 1:])]
    if rows:
        rows[-1] = metrics.elidedText(rows[-1], Qt.TextElideMode.ElideRight, width)
    return "\n".join(rows)


def template_cards(size: QSize = MINIATURE, lines: int | None = None) -> list[TemplateCard]:
    """A card for every built-in template, in the order the engine lists them; ``lines``, when given,
    is how many lines a card's description may take."""
    from engine.errors import NetDesignerError
    from engine.templates import list_templates

    try:
        infos = list_templates()
    except NetDesignerError as exc:  # a broken template file must not stop the window opening
        logging.getLogger(__name__).warning("templates could not be listed: %s", exc)
        return []
    cards = []
    for info in infos:
        cards.append(TemplateCard(info.name, info.title, info.description, info.project.graph, "", size, lines=lines))
    return cards


class TemplateGalleryDialog(QDialog):
    """Pick a template; :attr:`selected_name` is the choice after ``exec()`` accepts."""

    COLUMNS = 3

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from template")
        self.selected_name: str | None = None
        intro = QLabel("Start from a classic network. Every template opens ready to analyse and train.")
        intro.setProperty("role", "muted")
        intro.setWordWrap(True)
        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setSpacing(12)
        self.cards = template_cards()
        for i, card in enumerate(self.cards):
            grid.addWidget(card, i // self.COLUMNS, i % self.COLUMNS, Qt.AlignmentFlag.AlignTop)
            card.clicked.connect(self.select)
            card.activated.connect(self._activate)
        grid.setRowStretch(len(self.cards) // self.COLUMNS + 1, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_host)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        self.open_button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        self.open_button.setText("Create")
        self.open_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.buttons)
        card_w = MINIATURE.width() + 20
        self.resize(self.COLUMNS * (card_w + 12) + 60, 620)
        enabled = [c for c in self.cards if c.isEnabled()]
        if enabled:
            self.select(enabled[0].name)

    def select(self, name: str) -> None:
        self.selected_name = name
        for card in self.cards:
            card.set_selected(card.name == name)
        self.open_button.setEnabled(True)

    def _activate(self, name: str) -> None:
        self.select(name)
        self.accept()

"""The problems list: every error and warning of the analysis; a click selects the block."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap, QPolygonF
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from designer.theme import colors
from engine.analysis import ERROR, Analysis
from engine.graph import Graph

NODE_ROLE = Qt.ItemDataRole.UserRole


def severity_icon(severity: str, size: int = 16) -> QIcon:
    """A red disc with '!' for an error, an amber triangle with '!' for a warning."""
    c = colors()
    icon = QIcon()
    for ratio in (1.0, 2.0, 3.0):
        pm = QPixmap(round(size * ratio), round(size * ratio))
        pm.setDevicePixelRatio(ratio)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(1, 1, size - 2, size - 2)
        p.setPen(Qt.PenStyle.NoPen)
        if severity == ERROR:
            p.setBrush(QColor(c["error"]))
            p.drawEllipse(rect)
            text_color = QColor("#ffffff")
        else:
            p.setBrush(QColor(c["warning"]))
            p.drawPolygon(QPolygonF([QPointF(size / 2, 1), QPointF(size - 1, size - 1.5), QPointF(1, size - 1.5)]))
            text_color = QColor("#1e2227")
        font = QFont()
        font.setPixelSize(round(size * 0.7))
        font.setBold(True)
        p.setFont(font)
        p.setPen(text_color)
        p.drawText(rect.adjusted(0, 1 if severity != ERROR else 0, 0, 0), Qt.AlignmentFlag.AlignCenter, "!")
        p.end()
        icon.addPixmap(pm)
    return icon


class ProblemsWidget(QWidget):
    """Signals: ``problem_activated(node_id)`` on a click; ``counts_changed(errors, warnings)``."""

    problem_activated = Signal(str)
    counts_changed = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.list.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.list.itemClicked.connect(self._on_item)
        self.list.itemActivated.connect(self._on_item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        self.errors = 0
        self.warnings = 0
        self._last: tuple[Graph, Analysis] | None = None

    def set_analysis(self, graph: Graph, analysis: Analysis) -> None:
        self._last = (graph, analysis)
        self.list.clear()
        problems = [p for p in analysis.all_problems() if p.node_id in graph.nodes]
        problems.sort(key=lambda p: p.severity != ERROR)  # errors first, stable within
        icons = {ERROR: severity_icon(ERROR), "warning": severity_icon("warning")}
        for p in problems:
            item = QListWidgetItem(icons.get(p.severity, icons["warning"]), p.message)
            item.setData(NODE_ROLE, p.node_id)
            item.setToolTip(f"{'Error' if p.severity == ERROR else 'Warning'} ({p.rule}): {p.message}")
            self.list.addItem(item)
        if not problems:
            item = QListWidgetItem("No problems: every block checks out." if graph.nodes else "No blocks yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            item.setForeground(QColor(colors()["muted"]))
            self.list.addItem(item)
        self.errors = sum(p.severity == ERROR for p in problems)
        self.warnings = len(problems) - self.errors
        self.counts_changed.emit(self.errors, self.warnings)

    def title(self) -> str:
        """``Problems (2 errors, 1 warning)``, or ``Problems`` when there are none."""
        parts = []
        if self.errors:
            parts.append(f"{self.errors} error{'s' if self.errors != 1 else ''}")
        if self.warnings:
            parts.append(f"{self.warnings} warning{'s' if self.warnings != 1 else ''}")
        return f"Problems ({', '.join(parts)})" if parts else "Problems"

    def item_for(self, node_id: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(NODE_ROLE) == node_id:
                return self.list.item(i)
        return None

    def _on_item(self, item: QListWidgetItem) -> None:
        node_id = item.data(NODE_ROLE)
        if node_id:
            self.problem_activated.emit(node_id)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ApplicationPaletteChange and self._last is not None:
            self.set_analysis(*self._last)
        super().changeEvent(event)

"""The problems list: every error and warning of the analysis; a click selects the block.

A problem inside a unit is filed under the unit block (the analysis reports a unit as one block);
its entry names the inner block by path (``n7/n2/n9``, :func:`problem_paths`), so a click shows that
block, inside its unit, rather than the whole unit.

A block no wire touches yet gets one neutral line ("not connected yet") instead of its errors,
so the list does not fill while a network is being built; they are listed once it is wired.

A problem that comes with a one-click fix (``Problem.fix``) says so at the end of its text
("— click Fix to set fc3 to 10 units"); the Fix button under the list applies the selected
problem's fix (or, with none selected, the first one listed), and so does the entry's context
menu. The widget only asks (``fix_requested``); the window makes the fix one undo step.
"""

from __future__ import annotations

from collections import defaultdict, deque

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap, QPolygonF, QResizeEvent
from PySide6.QtWidgets import (
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from designer.plaintext import as_plain
from designer.theme import colors
from engine.analysis import ERROR, INFO, WARNING, Analysis, Fix, Problem, severity_word
from engine.graph import Graph
from engine.units import SEP

NODE_ROLE = Qt.ItemDataRole.UserRole
FIX_ROLE = Qt.ItemDataRole.UserRole + 1


#: the "severity" of a block's problems while no wire touches it: a neutral hint, not an error
PENDING = "pending"


def severity_icon(severity: str, size: int = 16) -> QIcon:
    """A red disc with '!' for an error, an amber triangle with '!' for a warning, a blue disc with
    'i' for a note (nothing to fix), a grey ring for a block not connected yet."""
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
        if severity == PENDING:
            p.setPen(QPen(QColor(c["muted"]), 1.6, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(rect.adjusted(1, 1, -1, -1))
            p.end()
            icon.addPixmap(pm)
            continue
        mark = "i" if severity == INFO else "!"
        if severity in (ERROR, INFO):
            p.setBrush(QColor(c["error" if severity == ERROR else "link"]))
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
        p.drawText(rect.adjusted(0, 1 if severity == WARNING else 0, 0, 0), Qt.AlignmentFlag.AlignCenter, mark)
        p.end()
        icon.addPixmap(pm)
    return icon


#: the order of the list: errors, warnings, notes
RANK = {ERROR: 0, WARNING: 1, INFO: 2}


def problem_text(p: Problem) -> str:
    """What the list shows for ``p``: its message, and how to fix it in one click when it can be."""
    if p.fix is None:
        return p.message
    return f"{p.message} — click Fix to {p.fix.label[:1].lower()}{p.fix.label[1:]}"


def problem_paths(analysis: Analysis, problems: list[Problem]) -> list[str]:
    """The block each of ``problems`` is about, by path: a top-level block's id, or for a problem the
    analysis files under a unit block, the inner block's path as the flattened analysis names it.

    NOTE: the unit block's problem is a copy of the flattened one with the same severity, rule and
    message, in the same order (the message names the block by its path of names, so each use of a
    unit has its own); copies alike are matched in turn.
    """
    inner: dict[tuple, deque[str]] = defaultdict(deque)
    for q in analysis.flat.all_problems() if analysis.flat is not None else ():
        owner = q.node_id.split(SEP, 1)[0]
        inner[(owner, q.severity, q.rule, q.message)].append(q.node_id)
    paths = []
    for p in problems:
        found = inner.get((p.node_id, p.severity, p.rule, p.message))
        paths.append(found.popleft() if found else p.node_id)
    return paths


def _plain(text: str) -> str:
    """``text`` for a button or menu, where "&" would otherwise mark a shortcut letter (block names are the user's)."""
    return text.replace("&", "&&")


class ProblemsWidget(QWidget):
    """Signals: ``problem_activated(path)`` on a click (a block's path, :func:`problem_paths`);
    ``counts_changed(errors, warnings)``;
    ``fix_requested(Fix)`` when the person asks for a problem's fix."""

    problem_activated = Signal(str)
    counts_changed = Signal(int, int)
    fix_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.list.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.list.itemClicked.connect(self._on_item)
        self.list.itemActivated.connect(self._on_item)
        self.list.itemSelectionChanged.connect(self._update_fix_button)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._show_menu)
        self.fix_button = QPushButton("Fix")
        self.fix_button.setObjectName("fix_button")
        self.fix_button.clicked.connect(self._on_fix_button)
        self._fix_text = "Fix"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addWidget(self.fix_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.errors = 0
        self.warnings = 0
        self.notes = 0  # worth knowing, nothing to fix (severity "info")
        self.pending = 0  # blocks not connected yet (a neutral line each, not counted as errors)
        self._last: tuple[Graph, Analysis] | None = None

    def set_analysis(self, graph: Graph, analysis: Analysis) -> None:
        self._last = (graph, analysis)
        self.list.clear()
        shown = [p for p in analysis.all_problems() if p.node_id in graph.nodes]
        problems = [p for p in shown if not analysis.is_pending(p)]
        listed = sorted(zip(problems, problem_paths(analysis, problems)), key=lambda pp: RANK.get(pp[0].severity, 1))
        icons = {s: severity_icon(s) for s in (ERROR, WARNING, INFO)}
        for p, path in listed:  # errors first, then warnings, then notes; stable within
            item = QListWidgetItem(icons.get(p.severity, icons[WARNING]), problem_text(p))
            item.setData(NODE_ROLE, path)
            item.setData(FIX_ROLE, p.fix)
            tip = f"{severity_word(p.severity)} ({p.rule}): {p.message}"
            if p.fix is not None:
                tip += f"\nFix: {p.fix.label} (the Fix button below, or right-click)"
            item.setToolTip(as_plain(tip))  # NOTE: the message quotes block names
            self.list.addItem(item)
        waiting = list(dict.fromkeys(p.node_id for p in shown if analysis.is_pending(p)))
        for nid in waiting:
            self.list.addItem(self._pending_item(graph.nodes[nid].name, nid))
        if not problems and not waiting:
            item = QListWidgetItem("No problems: every block checks out." if graph.nodes else "No blocks yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            item.setForeground(QColor(colors()["muted"]))
            self.list.addItem(item)
        self.errors = sum(p.severity == ERROR for p in problems)
        self.warnings = sum(p.severity not in (ERROR, INFO) for p in problems)  # NOTE: a note is nothing to fix
        self.notes = sum(p.severity == INFO for p in problems)
        self.pending = len(waiting)
        self._update_fix_button()
        self.counts_changed.emit(self.errors, self.warnings)

    def _pending_item(self, name: str, node_id: str) -> QListWidgetItem:
        """The one neutral line of a block no wire touches yet: its problems wait until it is wired."""
        item = QListWidgetItem(severity_icon(PENDING), f"'{name}' is not connected yet: wire it into the network")
        item.setData(NODE_ROLE, node_id)
        item.setData(FIX_ROLE, None)
        item.setForeground(QColor(colors()["muted"]))
        item.setToolTip(as_plain(f"'{name}' is not connected yet. Drag a wire from one of its ports to another "
                                 "block's; then it is checked like the rest of the network."))
        return item

    def title(self) -> str:
        """``Problems (2 errors, 1 warning, 1 note)``, or ``Problems`` when there are none."""
        parts = []
        if self.errors:
            parts.append(f"{self.errors} error{'s' if self.errors != 1 else ''}")
        if self.warnings:
            parts.append(f"{self.warnings} warning{'s' if self.warnings != 1 else ''}")
        if self.notes:
            parts.append(f"{self.notes} note{'s' if self.notes != 1 else ''}")
        if self.pending:
            parts.append(f"{self.pending} not connected yet")
        return f"Problems ({', '.join(parts)})" if parts else "Problems"

    def item_for(self, node_id: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(NODE_ROLE) == node_id:
                return self.list.item(i)
        return None

    def fix_target(self) -> Fix | None:
        """The fix the Fix button applies: the selected problem's, or with none selected the first listed."""
        selected = self.list.selectedItems()
        if selected:
            return selected[0].data(FIX_ROLE)
        fixes = (self.list.item(i).data(FIX_ROLE) for i in range(self.list.count()))
        return next((f for f in fixes if f is not None), None)

    def _on_item(self, item: QListWidgetItem) -> None:
        node_id = item.data(NODE_ROLE)
        if node_id:
            self.problem_activated.emit(node_id)

    def _update_fix_button(self) -> None:
        any_fix = any(self.list.item(i).data(FIX_ROLE) is not None for i in range(self.list.count()))
        fix = self.fix_target()
        self.fix_button.setVisible(any_fix)
        self.fix_button.setEnabled(fix is not None)
        self._fix_text = f"Fix: {fix.label}" if fix is not None else "Fix"
        self._fit_fix_text()
        tip = f"{self._fix_text} as one step (Ctrl+Z undoes it)" if fix is not None else "This problem has no one-click fix"
        self.fix_button.setToolTip(as_plain(tip))

    def _fit_fix_text(self) -> None:
        """The button's label, shortened with "…" to the panel's width (a long one must not widen the dock)."""
        room = max(self.width() - 24, 120)
        text = self.fix_button.fontMetrics().elidedText(self._fix_text, Qt.TextElideMode.ElideRight, room)
        self.fix_button.setText(_plain(text))

    def _on_fix_button(self) -> None:
        fix = self.fix_target()
        if fix is not None:
            self.fix_requested.emit(fix)

    def _show_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or not item.data(NODE_ROLE):
            return
        menu = QMenu(self)
        node_id, fix = item.data(NODE_ROLE), item.data(FIX_ROLE)
        if fix is not None:
            menu.addAction(f"Fix: {_plain(fix.label)}", lambda: self.fix_requested.emit(fix))
        menu.addAction("Show the block", lambda: self.problem_activated.emit(node_id))
        self.menu = menu
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_fix_text()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ApplicationPaletteChange and self._last is not None:
            self.set_analysis(*self._last)
        super().changeEvent(event)

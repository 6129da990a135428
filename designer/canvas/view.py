"""The canvas widget: zoom, pan, a background grid, drops from the palette, a read-only lock.

:class:`GraphView` owns a :class:`~designer.canvas.scene.GraphScene` for one document.
Wheel zooms around the cursor; the middle button, or Space with the left button,
pans; a layer dragged from the palette (MIME :data:`LAYER_MIME`, payload the layer
type id) lands where it is dropped, snapped to the grid; one added from the palette
by a double-click goes after the selected block, wired (:meth:`GraphView.add_next`).
The view remembers where the pointer is, so that a paste lands there. Fit shows every block
but never below the zoom at which the canvas's text is readable (a big network then shows
from its start, to scroll); Arrange wraps the network to what this view shows at that zoom.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QContextMenuEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QGraphicsView, QLabel, QMenu, QWidget

from designer.canvas import unit_edits
from designer.canvas.breadcrumb import BreadcrumbBar
from designer.canvas.items import GRID, READABLE_ZOOM, NodeItem
from designer.canvas.levels import UnitLevel
from designer.canvas.library import UNIT_MIME, add_unit_command, load_unit, save_unit
from designer.canvas.scene import LOCKED_MESSAGE, PASTE_STEP, GraphScene
from designer.colors import app_is_dark
from designer.commands import AddNodeCommand
from designer.document import Document
from engine.errors import GraphError, ProjectError
from engine.units import SEP

#: MIME type of a layer dragged from the palette; the payload is the layer type id (UTF-8).
LAYER_MIME = "application/x-netdesigner-layer"

MIN_ZOOM = 0.1
MAX_ZOOM = 4.0
#: fit_all() never magnifies beyond this, so a two-block network does not fill the screen.
MAX_FIT_ZOOM = 1.25
#: room Fit leaves around the blocks (scene units)
FIT_MARGIN = 60.0
ZOOM_STEP = 1.25


class GraphView(QGraphicsView):
    """The network canvas for one :class:`~designer.document.Document`.

    Inside an opened unit (double-click a unit block) it shows the unit's
    :class:`~designer.canvas.levels.UnitLevel` instead of the project's document; the
    :class:`~designer.canvas.breadcrumb.BreadcrumbBar` in its top-left corner leads back up.

    Signals:
        status_message(str): a refusal or hint to show in the status bar.
        level_changed(object): the canvas shows another document (the project's, or a unit's level).
        read_only_changed(bool): editing was locked or unlocked.
    """

    status_message = Signal(str)
    level_changed = Signal(object)
    read_only_changed = Signal(bool)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._scene = GraphScene(document, self)
        self.setScene(self._scene)
        self._scene.status_message.connect(self.status_message)
        self._read_only = False
        self._space = False
        self._pan_from: QPointF | None = None
        self._pointer: QPointF | None = None  # where the mouse is over the canvas (viewport pixels), or None
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.top_document = document
        self._levels: list[UnitLevel] = []
        self._level_names: list[str] = []
        self.breadcrumb = BreadcrumbBar(self)
        self.breadcrumb.move(8, 8)
        self.breadcrumb.crumb_clicked.connect(self.go_to_depth)
        self._scene.open_unit_requested.connect(self.open_unit)
        self._scene.leave_unit_requested.connect(self.leave_unit)
        self._banner = QLabel(LOCKED_MESSAGE, self)
        self._banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._banner.hide()
        self._style_banner()
        self.centerOn(QPointF(400.0, 200.0))

    # NOTE: QGraphicsView.scene() already returns our GraphScene; this only narrows the type.
    def scene(self) -> GraphScene:
        return self._scene

    # ------------------------------------------------------------------ zoom
    def zoom(self) -> float:
        """The current scale (1.0 = one scene unit per pixel)."""
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        """Scale to ``zoom`` about the viewport centre (clamped to the allowed range)."""
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self._scale_by(zoom / self.zoom())
        self.setTransformationAnchor(anchor)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def fit_all(self) -> None:
        """Show every block, magnifying no more than :data:`MAX_FIT_ZOOM` and shrinking no further than
        :data:`READABLE_ZOOM`: a network too big for that is shown from its start (top left), to scroll."""
        rect = self._scene.itemsBoundingRect()
        if rect.isEmpty():
            self.resetTransform()
            self.centerOn(QPointF(0.0, 0.0))
            return
        rect = rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        zoom = self.zoom()
        if zoom > MAX_FIT_ZOOM or zoom < READABLE_ZOOM:
            self.resetTransform()
            zoom = min(max(zoom, READABLE_ZOOM), MAX_FIT_ZOOM)
            self.scale(zoom, zoom)
        vp = self.viewport().rect()
        half_w, half_h = vp.width() / zoom / 2, vp.height() / zoom / 2
        # NOTE: along an axis that does not fit, the start shows (the inputs), not the middle
        x = rect.center().x() if rect.width() <= 2 * half_w else rect.left() + half_w
        y = rect.center().y() if rect.height() <= 2 * half_h else rect.top() + half_h
        self.centerOn(QPointF(x, y))

    def readable_room(self) -> tuple[float, float]:
        """The scene area the viewport shows at :data:`READABLE_ZOOM`, less Fit's margins: what Arrange fits to."""
        vp = self.viewport().rect()
        return (max(vp.width() / READABLE_ZOOM - 2 * FIT_MARGIN, NodeItem.WIDTH),
                max(vp.height() / READABLE_ZOOM - 2 * FIT_MARGIN, NodeItem.MIN_HEIGHT))

    def _scale_by(self, factor: float) -> None:
        zoom = self.zoom()
        target = min(max(zoom * factor, MIN_ZOOM), MAX_ZOOM)
        if not math.isclose(target, zoom):
            self.scale(target / zoom, target / zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            super().wheelEvent(event)
            return
        self._scale_by(1.0015 ** delta)
        event.accept()

    # ------------------------------------------------------------------ pan
    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._pointer = event.position()
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.pan_by(delta.x(), delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self._set_idle_cursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:
            self._pointer = None
        return super().viewportEvent(event)

    def pointer_scene_pos(self) -> QPointF | None:
        """Where the mouse pointer is over the canvas, in scene coordinates (None when it is elsewhere)."""
        return self.mapToScene(self._pointer.toPoint()) if self._pointer is not None else None

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the content by (dx, dy) pixels, as a hand dragging the canvas."""
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() - round(dx))
        v.setValue(v.value() - round(dy))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = True
                self._set_idle_cursor()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = False
                self._set_idle_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False
        self._set_idle_cursor()
        super().focusOutEvent(event)

    def _set_idle_cursor(self) -> None:
        if self._space:
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.viewport().unsetCursor()

    # ------------------------------------------------------------------ background
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        colors = self._scene.colors
        painter.fillRect(rect, colors.background_locked if self._read_only else colors.background)
        major = GRID * 5
        step = GRID if self.zoom() * GRID >= 9.0 else major if self.zoom() * major >= 9.0 else 0.0
        if not step:
            return
        minor_lines, major_lines = [], []
        x = math.floor(rect.left() / step) * step
        while x <= rect.right():
            (major_lines if x % major == 0 else minor_lines).append((x, rect.top(), x, rect.bottom()))
            x += step
        y = math.floor(rect.top() / step) * step
        while y <= rect.bottom():
            (major_lines if y % major == 0 else minor_lines).append((rect.left(), y, rect.right(), y))
            y += step
        for lines, color in ((minor_lines, colors.grid_minor), (major_lines, colors.grid_major)):
            if lines:
                painter.setPen(QPen(color, 0))
                painter.drawLines([QLineF(*line) for line in lines])

    # ------------------------------------------------------------------ drops and adding
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if not _droppable(event.mimeData()):
            event.ignore()
        elif self._read_only:
            self.status_message.emit(LOCKED_MESSAGE)
            event.ignore()
        else:
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if _droppable(event.mimeData()) and not self._read_only:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        if mime.hasFormat(UNIT_MIME):
            path = bytes(mime.data(UNIT_MIME).data()).decode("utf-8").strip()
            if self.add_library_unit(path, self.mapToScene(event.position().toPoint())) is None:
                event.ignore()
            else:
                event.acceptProposedAction()
            return
        if not mime.hasFormat(LAYER_MIME):
            event.ignore()
            return
        type_id = bytes(mime.data(LAYER_MIME).data()).decode("utf-8").strip()
        node_id = self.add_block(type_id, self.mapToScene(event.position().toPoint()))
        if node_id is None:
            event.ignore()
            return
        event.acceptProposedAction()

    def add_block(self, type_id: str, center: QPointF) -> str | None:
        """Add a block of ``type_id`` centred near ``center`` (scene coordinates), snapped; select it.

        Returns the new block's id, or None when it was refused (the reason goes to ``status_message``).
        """
        if self._read_only:
            self.status_message.emit(LOCKED_MESSAGE)
            return None
        x = round((center.x() - NodeItem.WIDTH / 2) / GRID) * GRID
        y = round((center.y() - NodeItem.MIN_HEIGHT / 2) / GRID) * GRID
        taken = {tuple(n.pos) for n in self.document.graph.nodes.values()}
        while (x, y) in taken:
            x, y = x + PASTE_STEP, y + PASTE_STEP
        return self._push_add(lambda: AddNodeCommand(self.document, type_id, (x, y)))

    def add_library_unit(self, path: str, center: QPointF) -> str | None:
        """Add a use of the library unit in file ``path`` near ``center``, defining it in the project if new."""
        if self._read_only:
            self.status_message.emit(LOCKED_MESSAGE)
            return None
        x, y = self._scene.free_spot(center.x() - NodeItem.WIDTH / 2, center.y() - NodeItem.MIN_HEIGHT / 2)
        try:
            unit = load_unit(path)
        except (ProjectError, OSError) as exc:
            self.status_message.emit(str(exc))
            return None
        return self._push_add(lambda: add_unit_command(self.document, unit, (x, y)))

    def save_unit_to_library(self, node_id: str) -> None:
        """Store the unit of block ``node_id`` in the user's library (the palette lists it under "My units")."""
        unit = self.document.graph.nodes[node_id].unit
        try:
            path = save_unit(unit)
        except (ProjectError, OSError) as exc:
            self.status_message.emit(str(exc))
            return
        self.status_message.emit(f"Saved unit '{unit.name}' to your library ({path.name})")

    def add_at_center(self, type_id: str) -> str | None:
        """Add a block in free room nearest the middle of what is shown, not on top of other blocks."""
        if self._read_only:
            self.status_message.emit(LOCKED_MESSAGE)
            return None
        center = self.mapToScene(self.viewport().rect().center())
        x, y = self._scene.free_spot(center.x() - NodeItem.WIDTH / 2, center.y() - NodeItem.MIN_HEIGHT / 2)
        return self._push_add(lambda: AddNodeCommand(self.document, type_id, (x, y)))

    def add_next(self, type_id: str) -> str | None:
        """Add a block from the palette (double-click, Enter) as one undo step, and select it.

        With one block selected it goes after that block, wired to it (into the wire that leaves
        it, when there is one); otherwise, or when it cannot take a wire there (an Input), it goes
        into free room in the middle of the view. Returns the new block's id (None: refused).
        """
        if self._read_only:
            self.status_message.emit(LOCKED_MESSAGE)
            return None
        ids = self._scene.selected_node_ids()
        if len(ids) == 1:
            try:
                cmd = self._scene.insert_command(type_id, ids[0])
            except GraphError:
                pass  # NOTE: it takes no wire there (an Input, or after an output block): placed on its own
            else:
                return self._push_add(lambda: cmd)
        return self.add_at_center(type_id)

    def _push_add(self, make) -> str | None:
        """Push the command ``make()`` builds and select its new block; a refusal goes to the status bar."""
        try:
            cmd = make()
        except GraphError as exc:
            self.status_message.emit(str(exc))
            return None
        self.document.push(cmd)
        self._scene.select_nodes([cmd.node_id])
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        return cmd.node_id

    def arrange(self, direction: str = "lr") -> None:
        """Auto-arrange the blocks (one undo step), wrapped to fit this view readably, and show them."""
        self._scene.arrange(direction, self.readable_room())
        self.fit_all()

    # ------------------------------------------------------------------ units: open and leave
    def open_unit(self, node_id: str) -> bool:
        """Show the inside of unit block ``node_id`` of what is shown now; the breadcrumb grows."""
        node = self.document.graph.nodes.get(node_id)
        if node is None or node.unit is None:
            return False
        path = f"{self._levels[-1].unit_path}{SEP}{node_id}" if self._levels else node_id
        level = UnitLevel(self.top_document, path, self)
        level.status_message.connect(self.status_message)
        level.closed.connect(self._on_level_closed)
        self._levels.append(level)
        self._level_names.append(node.name)
        self._show_level()
        return True

    def depth(self) -> int:
        """How many units deep the canvas is (0: the network)."""
        return len(self._levels)

    def leave_unit(self) -> None:
        """Go up one level (Escape or Backspace with nothing selected, or the breadcrumb)."""
        if self._levels:
            self.go_to_depth(len(self._levels) - 1)

    def go_to_depth(self, depth: int) -> None:
        """Show level ``depth`` of the breadcrumb (0: the whole network)."""
        if depth >= len(self._levels):
            return
        while len(self._levels) > depth:
            level = self._levels.pop()
            self._level_names.pop()
            level.closed.disconnect(self._on_level_closed)
            level.close()
            level.deleteLater()
        self._show_level()

    def _on_level_closed(self) -> None:
        # NOTE: a unit on the path went away (an undo, another project): show the deepest level still there
        keep = next((k for k, level in enumerate(self._levels) if not level.is_open), len(self._levels))
        self.go_to_depth(keep)

    def _show_level(self) -> None:
        doc = self._levels[-1] if self._levels else self.top_document
        self.document = doc
        self._scene.set_document(doc)
        self.breadcrumb.set_path(self._level_names)
        self.level_changed.emit(doc)
        self.fit_all()

    # ------------------------------------------------------------------ read-only
    def set_read_only(self, read_only: bool, message: str | None = None) -> None:
        """Lock editing (no moves, wires, drops, deletes or undo); a banner says so.

        ``message`` replaces the banner's default text (which speaks of training).
        """
        changed = bool(read_only) != self._read_only
        self._read_only = bool(read_only)
        self._scene.set_read_only(self._read_only)
        self._banner.setText(message or LOCKED_MESSAGE)
        self._banner.setVisible(self._read_only)
        self._place_banner()
        self.resetCachedContent()
        self.viewport().update()
        if changed:
            self.read_only_changed.emit(self._read_only)

    def is_read_only(self) -> bool:
        return self._read_only

    def _style_banner(self) -> None:
        c = self._scene.colors
        fg = c.warning.name()
        bg = QColor(c.background)
        self._banner.setStyleSheet(
            f"QLabel {{ color: {fg}; background: {bg.name()}; border: 1px solid {fg};"
            " border-radius: 6px; padding: 4px 10px; font-weight: 600; }"
        )

    def _place_banner(self) -> None:
        self._banner.adjustSize()
        w = min(self._banner.sizeHint().width(), max(self.width() - 16, 50))
        self._banner.setGeometry((self.width() - w) // 2, 8, w, self._banner.sizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_banner()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._scene.set_dark(app_is_dark())
            self._style_banner()
            self.resetCachedContent()
        super().changeEvent(event)

    # ------------------------------------------------------------------ context menu
    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        scene = self._scene
        item = self.itemAt(event.pos())
        if isinstance(item, NodeItem) and not item.isSelected():
            scene.select_nodes([item.node_id])
        has_sel = bool(scene.selected_node_ids())
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        at = self.mapToScene(event.pos())  # NOTE: the menu stays open after the event is gone
        entries = (
            ("Copy", scene.copy_selected, has_sel),
            ("Paste", lambda: scene.paste(at), not self._read_only),
            ("Duplicate", scene.duplicate_selected, has_sel and not self._read_only),
            ("Delete", scene.delete_selected, (has_sel or bool(scene.selected_edges())) and not self._read_only),
            (None, None, False),
            ("Select all", scene.select_all, True),
            ("Arrange left to right", lambda: self.arrange("lr"), not self._read_only),
            ("Arrange top to bottom", lambda: self.arrange("tb"), not self._read_only),
            ("Fit all", self.fit_all, True),
            *self._unit_entries(),
        )
        for text, slot, enabled in entries:
            if text is None:
                menu.addSeparator()
                continue
            action = QAction(text, menu)
            action.setEnabled(enabled)
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.popup(event.globalPos())
        event.accept()

    def _unit_entries(self) -> tuple:
        """The context menu's unit entries: Group for a selection, the rest for one unit block."""
        scene, edit = self._scene, not self._read_only
        has_sel = bool(scene.selected_node_ids())
        uid = unit_edits.selected_unit(scene)
        entries = [(None, None, False), ("Group…", lambda: unit_edits.ask_group(scene, self), has_sel and edit)]
        if uid is not None:
            entries += [
                ("Open unit", lambda: self.open_unit(uid), True),
                ("Ungroup", lambda: unit_edits.ungroup_selected(scene), edit),
                ("Repeat ×N…", lambda: unit_edits.ask_repeat(scene, self), edit),
                ("Make unique", lambda: unit_edits.make_unique_selected(scene), edit),
                ("Save unit to library", lambda: self.save_unit_to_library(uid), True),
            ]
        if self._levels:
            entries.append(("Leave unit", self.leave_unit, True))
        return tuple(entries)


def _droppable(mime) -> bool:
    """Whether a drag carries a layer or a library unit."""
    return mime.hasFormat(LAYER_MIME) or mime.hasFormat(UNIT_MIME)

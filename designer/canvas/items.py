"""Canvas items: a block (:class:`NodeItem`), its ports (:class:`PortItem`), a wire
(:class:`EdgeItem`) with its shape tag (:class:`EdgeLabelItem`), and the wire being drawn.

Items show the graph; they never change it. The scene creates, updates and removes
them in reaction to the document's events, and turns gestures into undo commands.

A block shows its name, its key settings in one line (``LayerSpec.brief``: "6@5×5 s1"), its
output shape and its counts (:func:`counts_line`: rounded to fit, never cut). Text sizes are
pixel sizes (:data:`FONT_PX`); :data:`READABLE_ZOOM` is the least zoom at which all of them are
at least 9 px on screen: the view's Fit never goes below it, and below it a block shows only its
name and a wire's shape only on hover. A wire's path
comes from the scene's router (:mod:`designer.canvas.routing`), around the blocks.

Painting is kept cheap for big graphs: a block fits its strings once per change, when
it is first painted, and paints into a device-coordinate cache (a drag only blits it);
tooltips are written only when asked for; a wire is one path; texts and tags are not
drawn when zoomed out too far to read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem, QWidget

from designer.canvas.routing import Route, Router
from designer.colors import CanvasPalette, body_color, category_color
from engine.analysis import ERROR, WARNING, NodeInfo, Problem, format_count, severity_word
from engine.errors import NetDesignerError
from engine.layers.registry import FROZEN_MARK, is_frozen, shape_str

if TYPE_CHECKING:  # pragma: no cover
    from engine.graph import Edge, Node

#: Grid step in scene units; blocks snap to it while dragged.
GRID = 20.0
#: what a block no wire touches yet says in place of its output shape
NOT_CONNECTED = "not connected yet"

_FONTS: dict[str, QFont] = {}
_METRICS: dict[str, QFontMetricsF] = {}
_ELIDED: dict[tuple[str, str, float, Qt.TextElideMode], str] = {}
_WIDTHS: dict[tuple[str, str], float] = {}

_LEFT = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
_RIGHT = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight
_CENTER = Qt.AlignmentFlag.AlignCenter

#: The canvas's text sizes in scene units (pixels at zoom 1), and whether bold. Pixel sizes, not
#: points, so that what a block shows at a zoom is the same on every screen.
FONT_PX = {"name": (13, True), "title": (12, False), "brief": (12, False), "shape": (13, True), "small": (12, False)}
#: The smallest text a person reads comfortably on screen, in pixels.
READABLE_PX = 9.0
#: The least zoom at which every text of a block and a wire is at least READABLE_PX on screen:
#: Fit never goes below it (it scrolls instead), and below it the details are not drawn.
READABLE_ZOOM = READABLE_PX / min(px for px, _ in FONT_PX.values())
#: Below this zoom the details are too small to read: a block shows only its name, drawn
#: large enough to stay legible, until BLANK_ZOOM where it is just a coloured box.
SIMPLE_ZOOM = READABLE_ZOOM
#: the name's largest size when zoomed out (scene units); below BLANK_ZOOM even it is under READABLE_PX
_NAME_ONLY_MAX_PX = 44
BLANK_ZOOM = READABLE_PX / _NAME_ONLY_MAX_PX


def font(role: str) -> QFont:
    """Shared fonts of the canvas (made on first use, after the QApplication exists)."""
    if not _FONTS:
        base = QFont()
        for key, (px, bold) in FONT_PX.items():
            f = QFont(base)
            f.setPixelSize(px)
            f.setBold(bold)
            _FONTS[key] = f
    return _FONTS[role]


def text_width(role: str, text: str) -> float:
    """Width of ``text`` in the canvas font ``role`` (cached: shapes and names repeat a lot)."""
    key = (role, text)
    width = _WIDTHS.get(key)
    if width is None:
        width = _WIDTHS[key] = _metrics(role).horizontalAdvance(text)
    return width


def elided(role: str, text: str, width: float, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> str:
    """``text`` cut with an ellipsis to fit ``width`` (cached)."""
    key = (role, text, width, mode)
    out = _ELIDED.get(key)
    if out is None:
        if len(_ELIDED) > 20_000:
            _ELIDED.clear()
        out = _ELIDED[key] = _metrics(role).elidedText(text, mode, width)
    return out


def node_brief(node: Node) -> str:
    """A block's key settings in one line (its type's ``LayerSpec.brief``); empty when it declares none.

    A unit block says it is one and how many blocks it holds ("unit · 3 blocks"); its ports show
    as ports, their shapes on its wires. A frozen block's line starts with a snowflake ("❄ 6@5×5 s1").
    """
    unit = node.unit
    if unit is not None:
        n = len(unit.graph)
        return f"unit · {n} block{'s' if n != 1 else ''}"
    spec = node.spec
    try:
        params = spec.resolve_params(node.params)
        text = spec.brief(params) if spec.brief is not None else ""
    except NetDesignerError:  # NOTE: a param the graph was given and cannot read; the Problems say why
        return ""
    return f"{FROZEN_MARK} {text or 'frozen'}" if is_frozen(params) else text


#: the significant digits of (params, MACs) a block's counts line tries, in order: the Model summary's
#: three first, then one number, then both, rounded to two
_COUNT_DIGITS = ((3, 3), (2, 3), (3, 2), (2, 2))


def counts_text(params: int, macs: int, digits: tuple[int, int] = (3, 3)) -> str:
    """A block's counts in words: "1.22M params · 1.03G MACs" ("no params" when it has none; no MACs when none).

    Args:
        digits: the significant digits of the parameters and of the MACs (see ``format_count``).
    """
    text = f"{format_count(params, digits[0])} params" if params else "no params"
    return text + (f" · {format_count(macs, digits[1])} MACs" if macs else "")


def counts_line(params: int, macs: int, room: float) -> str:
    """The most precise of a block's counts lines that fits ``room`` (scene units) in the ``small`` font.

    Three significant digits as the Model summary writes them; else a number rounded to two
    ("1.22M params · 1G MACs"), then both; else the parameters alone. The block's tooltip gives
    both numbers exactly. An ellipsis only where even the parameters alone do not fit.
    """
    forms = [counts_text(params, macs, digits) for digits in _COUNT_DIGITS] + [counts_text(params, 0)]
    fitting = next((text for text in forms if text_width("small", text) <= room), None)
    return fitting if fitting is not None else elided("small", forms[-1], room)


def _metrics(role: str) -> QFontMetricsF:
    m = _METRICS.get(role)
    if m is None:
        m = _METRICS[role] = QFontMetricsF(font(role))
    return m


class PortItem(QGraphicsItem):
    """An input or output port of a block (left and right edges, or top and bottom when the
    drawing runs top to bottom); drag from it to wire."""

    RADIUS = 5.5
    HIT = 10.0  # generous hit area: ports are small targets

    def __init__(self, node_item: NodeItem, is_output: bool, index: int, label: str) -> None:
        super().__init__(node_item)
        self.node_item = node_item
        self.is_output = is_output
        self.index = index
        self.label = label
        self.connected = False
        self.highlight: str | None = None  # None, "ok" or "bad" while a wire is dragged over it
        self._hover = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(1)
        if is_output:
            self.setToolTip("Output: drag from here onto an input port to wire")
        else:
            named = f" ({label})" if label not in ("in",) else ""
            self.setToolTip(f"Input {index + 1}{named}: drag from an output to here")

    @property
    def node_id(self) -> str:
        return self.node_item.node_id

    def scene_center(self) -> QPointF:
        return self.node_item.pos() + self.pos()

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.update()

    def set_highlight(self, highlight: str | None) -> None:
        if highlight != self.highlight:
            self.highlight = highlight
            self.update()

    def boundingRect(self) -> QRectF:
        return _PORT_BOUNDS

    def shape(self) -> QPainterPath:
        return _PORT_SHAPE

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        colors = self.node_item.colors
        accent = self.node_item.accent
        r = self.RADIUS + (1.5 if self._hover or self.highlight else 0.0)
        fill = accent if self.connected else colors.port_fill
        pen = QPen(accent, 1.6)
        if self.highlight == "ok":
            fill, pen = colors.port_ok, QPen(colors.port_ok.darker(130), 2.0)
        elif self.highlight == "bad":
            fill, pen = colors.error, QPen(colors.error.darker(130), 2.0)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawEllipse(QPointF(0, 0), r, r)

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()


_PORT_BOUNDS = QRectF(-PortItem.HIT, -PortItem.HIT, 2 * PortItem.HIT, 2 * PortItem.HIT)
_PORT_SHAPE = QPainterPath()
_PORT_SHAPE.addEllipse(_PORT_BOUNDS)


class NodeItem(QGraphicsItem):
    """A layer block: a rounded rectangle coloured by category, with ports on both sides.

    ``flow`` (see :data:`engine.graph.FLOWS`): ``"lr"`` puts the inputs on the left edge and the
    outputs on the right; ``"tb"`` puts them on the top and bottom edges.
    """

    WIDTH = 180.0
    MIN_HEIGHT = 80.0
    HEADER = 24.0
    LINE = 16.0  # one line of the body (the settings, the output shape, the counts)
    PORT_STEP = 20.0
    RADIUS = 7.0
    _BADGE_RADIUS = 8.0
    # NOTE: the body's text runs from the header name's left edge to just inside the right-hand ports
    # (radius 5.5 on the edge): the room "999M params · 999G MACs" needs in the canvas font
    _TEXT_LEFT = 9.0
    _TEXT_RIGHT = 6.0
    _LABEL_ABOVE = 16.0  # room above the block for port labels when the drawing runs top to bottom

    def __init__(self, node: Node, colors: CanvasPalette, dark: bool, flow: str = "lr") -> None:
        super().__init__()
        self.node_id = node.id
        self.flow = flow
        self.edges: list[EdgeItem] = []  # the wires touching this block (kept by the scene)
        self.in_ports: list[PortItem] = []
        self.out_ports: list[PortItem] = []
        spec = node.spec
        self.type_id = node.type
        self.category = spec.category
        self.title = spec.title
        self.is_head = spec.role == "head"
        self.name = node.name
        self.brief = ""  # the key settings in one line ("6@5×5 s1"), see set_brief
        self.shape_text = "…"
        self.out_label = "?"  # the output shape as wires show it
        self.stats_text = ""
        self.severity: str | None = None
        self.problems: tuple[Problem, ...] = ()
        self.unwired = False  # NOTE: no wire touches it yet: drawn neutral, its problems wait until it is wired
        self._analysis_key: Any = object()
        self._info: NodeInfo | None = None
        self._height = self.MIN_HEIGHT
        self._labels: list[str] = []
        self._label_w = 0.0
        self._text_x = self._TEXT_LEFT
        self._elided: dict[str, str] | None = None  # made on first paint: most blocks are off screen
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.set_colors(colors, dark)
        self.set_ports(node.input_ports(), len(node.output_ports()))
        self.set_brief(node_brief(node))
        self.setPos(QPointF(*node.pos))

    # ------------------------------------------------------------------ geometry
    @property
    def height(self) -> float:
        return self._height

    def rect(self) -> QRectF:
        return QRectF(0.0, 0.0, self.WIDTH, self._height)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._outline

    def _port_y(self, index: int, count: int) -> float:
        body = self._height - self.HEADER
        return self.HEADER + body * (index + 0.5) / max(count, 1)

    def _port_offset(self, is_output: bool, index: int, count: int) -> QPointF:
        """Where a port sits on the block (relative to its top-left corner)."""
        if self.flow == "tb":
            return QPointF(self.WIDTH * (index + 0.5) / max(count, 1), self._height if is_output else 0.0)
        return QPointF(self.WIDTH if is_output else 0.0, self._port_y(index, count))

    def in_port_scene_pos(self, index: int) -> QPointF:
        return self.pos() + self._port_offset(False, index, len(self.in_ports))

    def out_port_scene_pos(self, index: int) -> QPointF:
        return self.pos() + self._port_offset(True, index, len(self.out_ports))

    def set_flow(self, flow: str) -> None:
        """Move the ports to the sides ``flow`` calls for (the scene then re-routes the wires)."""
        if flow != self.flow:
            self.prepareGeometryChange()
            self.flow = flow
            self._place_ports()
            self.update()

    def set_ports(self, input_names: Sequence[str], n_outputs: int) -> None:
        """(Re)make the ports when their number changes (e.g. Add's ``inputs`` param)."""
        names = list(input_names)
        if names == [p.label for p in self.in_ports] and n_outputs == len(self.out_ports):
            return
        for port in self.in_ports + self.out_ports:
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        self.prepareGeometryChange()
        self.in_ports = [PortItem(self, False, i, label) for i, label in enumerate(names)]
        self.out_ports = [PortItem(self, True, i, "out") for i in range(n_outputs)]
        self._place_ports()

    def height_in(self, flow: str) -> float:
        """The block's height when the drawing runs ``flow``.

        NOTE: left to right, ports stack down the sides and a block with many grows taller; top to
        bottom they spread across its width, and it keeps the height the layout reckons with.
        """
        if flow != "lr":
            return self.MIN_HEIGHT
        most = max(len(self.in_ports), len(self.out_ports))
        return max(self.MIN_HEIGHT, self.HEADER + self.PORT_STEP * most + 10.0)

    def _place_ports(self) -> None:
        self._height = self.height_in(self.flow)
        for ports in (self.in_ports, self.out_ports):
            for port in ports:
                port.setPos(self._port_offset(port.is_output, port.index, len(ports)))
        # Port labels only where a block has several inputs (Add/Concatenate 1, 2; Crop in, like):
        # inside the left edge, or just above the top edge beside each port.
        self._labels = [p.label for p in self.in_ports] if len(self.in_ports) > 1 else []
        self._label_w = max((text_width("small", s) for s in self._labels), default=0.0)
        self._text_x = self._TEXT_LEFT + (self._label_w + 11.0 if self._labels and self.flow == "lr" else 0.0)
        self._build_paths()
        self._elided = None

    def _build_paths(self) -> None:
        rect = self.rect()
        outline = QPainterPath()
        outline.addRoundedRect(rect, self.RADIUS, self.RADIUS)
        band = QPainterPath()
        band.addRect(QRectF(0.0, 0.0, self.WIDTH, self.HEADER))
        self._outline = outline
        self._header = outline.intersected(band)
        above = self._LABEL_ABOVE if self._labels and self.flow == "tb" else 0.0
        self._bounds = rect.adjusted(-4.0, -4.0 - above, 4.0, 4.0)

    # ------------------------------------------------------------------ content
    def set_colors(self, colors: CanvasPalette, dark: bool) -> None:
        self.colors = colors
        self.accent = category_color(self.category, dark)
        self.body = body_color(self.category, dark)
        self.update()
        for port in self.in_ports + self.out_ports:
            port.update()

    def set_brief(self, brief: str) -> None:
        """Show the block's key settings (``LayerSpec.brief`` of its params) under its header."""
        if brief != self.brief:
            self.brief = brief
            self._elided = None
            self.update()

    def set_title(self, title: str) -> None:
        """Show another type title (a unit block made unique uses a unit of another name)."""
        if title != self.title:
            self.title = title
            self._elided = None
            self.update()

    def set_name(self, name: str) -> None:
        if name != self.name:
            self.name = name
            self._elided = None
            self.update()

    def set_analysis(self, info: NodeInfo | None, problems: Sequence[Problem], unwired: bool = False) -> bool:
        """Show what the analysis says about this block. Returns whether anything changed.

        ``unwired``: no wire touches the block yet; it looks neutral ("not connected yet"), not red.
        """
        key = (
            None if info is None else (info.out_shape, info.params, info.macs, info.rf),
            tuple(problems),
            unwired,
        )
        if key == self._analysis_key:
            return False
        self._analysis_key = key
        self._info = info
        self.problems = tuple(problems)
        self.unwired = unwired
        severities = {p.severity for p in self.problems}
        worst = ERROR if ERROR in severities else WARNING if WARNING in severities else None
        self.severity = None if unwired else worst
        if unwired and (info is None or info.out_shape is None):
            self.out_label = "?"
            self.shape_text = NOT_CONNECTED
            self.stats_text = ""
        elif info is None or info.out_shape is None:
            self.out_label = "?"
            self.shape_text = "shape unknown"
            self.stats_text = ""
        else:
            self.out_label = shape_str(info.out_shape)
            self.shape_text = f"in {self.out_label}" if self.is_head else self.out_label
            self.stats_text = counts_text(info.params, info.macs)
        self._elided = None
        self.update()
        return True

    def _elide(self) -> dict[str, str]:
        """Fit the strings to the block (once per change, when first painted)."""
        # NOTE: the name comes first; the type's title shares the header only where both fit
        # (the colour, the settings line and the tooltip say the type too).
        room = self.WIDTH - 18.0
        title_w = text_width("title", self.title) + 10.0
        show_title = text_width("name", self.name) + title_w <= room
        rooms = {role: rect.width() for role, rect in self.body_rows()}
        info = self._info
        counts = (info.params, info.macs) if self.stats_text and info is not None else None
        self._elided = {
            # NOTE: a long name loses its middle: "inception4a_b…reduce_relu" keeps its stage and its role
            "name": elided("name", self.name, room - (title_w if show_title else 0.0), Qt.TextElideMode.ElideMiddle),
            "title": self.title if show_title else "",
            "brief": elided("brief", self.brief, rooms.get("brief", 0.0)),
            "shape": elided("shape", self.shape_text, rooms["shape"]),
            "stats": counts_line(*counts, rooms["stats"]) if counts else "",
        }
        return self._elided

    def body_rows(self) -> list[tuple[str, QRectF]]:
        """The body's text rows, in order (the settings line when there is one, the output shape, the
        counts), each with its rectangle: the room its text gets, short of the problem badge where
        the row passes beside it."""
        roles = (["brief"] if self.brief else []) + ["shape", "stats"]
        hh, line, x = self.HEADER, self.LINE, self._text_x
        top = hh + (self._height - hh - line * len(roles)) / 2
        badge = self._badge_rect() if self.severity else None
        rows = []
        for k, role in enumerate(roles):
            rect = QRectF(x, top + k * line, self.WIDTH - self._TEXT_RIGHT - x, line)
            if badge is not None and rect.top() < badge.bottom() and badge.top() < rect.bottom():
                rect.setRight(badge.left() - 4.0)
            rows.append((role, rect))
        return rows

    def _badge_rect(self) -> QRectF:
        """Where the problem badge ("!") sits: at the right of the body, halfway down."""
        r = self._BADGE_RADIUS
        center = QPointF(self.WIDTH - 17.0, self.HEADER + (self._height - self.HEADER) / 2)
        return QRectF(center.x() - r, center.y() - r, 2 * r, 2 * r)

    def tooltip_text(self) -> str:
        """The tooltip: name, problems (each with its reason) and the numbers. Made when asked."""
        info = self._info
        lines = [f"{self.name} ({self.title})"]
        if self.unwired and self.problems:
            lines.append(f"{NOT_CONNECTED.capitalize()}: drag a wire from one of its ports to build it in")
        else:
            for p in self.problems:
                lines.append(f"{severity_word(p.severity)}: {p.message}")
        if info is not None and info.out_shape is not None:
            lines.append(f"output {shape_str(info.out_shape)}")
            if info.params:
                lines.append(f"{info.params:,} parameters" + (f", {info.frozen_params:,} frozen" if info.frozen_params else ""))
            if info.macs:
                lines.append(f"{info.macs:,} multiply-adds per sample")
            if info.rf is not None:
                lines.append(f"receptive field {info.rf}")
        return "\n".join(lines)

    def toolTip(self) -> str:
        # NOTE: QGraphicsItem.toolTip() is not virtual; this serves Python callers, and the
        # scene's helpEvent() shows tooltip_text() to the user.
        return self.tooltip_text()

    # ------------------------------------------------------------------ painting
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        c = self.colors
        rect = self.rect()
        if self.severity == ERROR:
            border, width, body = QPen(c.error, 2.2), 2.2, c.error_tint
        elif self.severity == WARNING:
            border, width, body = QPen(c.warning, 2.2), 2.2, self.body
        elif self.unwired:
            border, width, body = QPen(c.text_muted, 1.6, Qt.PenStyle.DashLine), 1.6, self.body
        else:
            border, width, body = QPen(self.accent.darker(115), 1.0), 1.0, self.body
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(body)
        painter.drawPath(self._outline)
        painter.setBrush(c.error_header if self.severity == ERROR else self.accent)
        painter.drawPath(self._header)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if width > 1.0:
            inset = width / 2
            painter.setPen(border)
            painter.drawRoundedRect(rect.adjusted(inset, inset, -inset, -inset), self.RADIUS, self.RADIUS)
        else:
            painter.setPen(border)
            painter.drawPath(self._outline)
        if self.isSelected():
            painter.setPen(QPen(c.selection, 2.5))
            painter.drawRoundedRect(rect.adjusted(-2.5, -2.5, 2.5, 2.5), self.RADIUS + 2, self.RADIUS + 2)

        w, hh = self.WIDTH, self.HEADER
        if self.severity:
            self._paint_badge(painter, self._badge_rect())
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < SIMPLE_ZOOM:
            if lod >= BLANK_ZOOM:
                self._paint_name_only(painter, lod)
            return
        texts = self._elided or self._elide()
        painter.setPen(c.header_text)
        painter.setFont(font("name"))
        painter.drawText(QRectF(9.0, 0.0, w - 18.0, hh), _LEFT, texts["name"])
        painter.setFont(font("title"))
        header_muted = QColor(c.header_text)
        header_muted.setAlpha(215)
        painter.setPen(header_muted)
        painter.drawText(QRectF(9.0, 0.0, w - 18.0, hh), _RIGHT, texts["title"])

        shape_pen = c.text if self._info is not None and self._info.out_shape is not None else c.text_muted
        pens = {"brief": c.text, "shape": shape_pen, "stats": c.text_muted}
        for role, rect in self.body_rows():
            painter.setPen(pens[role])
            painter.setFont(font("small" if role == "stats" else role))
            painter.drawText(rect, _LEFT, texts[role])
        painter.setPen(c.text_muted)
        painter.setFont(font("small"))
        for port, label in zip(self.in_ports, self._labels):
            at = port.pos()
            if self.flow == "tb":
                painter.drawText(QRectF(at.x() + 8.0, -self._LABEL_ABOVE, self._label_w + 1.0, self._LABEL_ABOVE - 1.0),
                                 _LEFT, label)
            else:
                painter.drawText(QRectF(self._TEXT_LEFT, at.y() - 8.0, self._label_w + 1.0, 16.0), _LEFT, label)

    def _paint_name_only(self, painter: QPainter, lod: float) -> None:
        """Zoomed out: the block's name alone, about 12 px high on screen, over the body."""
        f = QFont(font("name"))
        f.setPixelSize(max(8, min(int(12.0 / lod), _NAME_ONLY_MAX_PX)))
        painter.setFont(f)
        painter.setPen(self.colors.text)
        rect = QRectF(6.0, self.HEADER - 4.0, self.WIDTH - 12.0, self._height - self.HEADER + 4.0)
        name = QFontMetricsF(f).elidedText(self.name, Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, name)

    def _paint_badge(self, painter: QPainter, rect: QRectF) -> None:
        color = self.colors.error if self.severity == ERROR else self.colors.warning
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawEllipse(rect)
        painter.setPen(QColor("#ffffff"))
        painter.setFont(font("shape"))
        painter.drawText(rect, _CENTER, "!")

    # ------------------------------------------------------------------ changes
    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange:
            scene = self.scene()
            if scene is not None and getattr(scene, "snapping", False):
                return QPointF(round(value.x() / GRID) * GRID, round(value.y() / GRID) * GRID)
        elif change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            scene = self.scene()
            if scene is not None and hasattr(scene, "block_moved"):
                scene.block_moved(self)
            else:
                for edge in self.edges:
                    edge.update_path()
        elif change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setZValue(1.0 if value else 0.0)
        return super().itemChange(change, value)


def wire_path(start: QPointF, end: QPointF, flow: str) -> tuple[QPainterPath, QPointF]:
    """A wire's curve from an output port to an input port, and the curve's middle.

    It leaves and arrives along the flow: rightwards, or downwards when the drawing runs top to bottom.
    """
    if flow == "tb":
        d = max(40.0, abs(end.y() - start.y()) * 0.5)
        c1, c2 = QPointF(start.x(), start.y() + d), QPointF(end.x(), end.y() - d)
    else:
        d = max(40.0, abs(end.x() - start.x()) * 0.5)
        c1, c2 = QPointF(start.x() + d, start.y()), QPointF(end.x() - d, end.y())
    path = QPainterPath(start)
    path.cubicTo(c1, c2, end)
    return path, (start + 3 * c1 + 3 * c2 + end) / 8.0  # the middle: the cubic at t = 0.5


#: how round a routed wire's corners are (scene units; less than the router's clearance)
CORNER = 8.0


def route_path(route: Route) -> QPainterPath:
    """The path of a routed wire: its S-curve, or its orthogonal run with rounded corners."""
    pts = [QPointF(x, y) for x, y in route.points]
    path = QPainterPath(pts[0])
    if route.curve:
        path.cubicTo(pts[1], pts[2], pts[3])
        return path
    for k in range(1, len(pts) - 1):
        prev, at, nxt = pts[k - 1], pts[k], pts[k + 1]
        r = min(CORNER, _length(at - prev) / 2, _length(nxt - at) / 2)
        path.lineTo(at + (prev - at) * (r / max(_length(prev - at), 1e-9)))
        path.quadTo(at, at + (nxt - at) * (r / max(_length(nxt - at), 1e-9)))
    path.lineTo(pts[-1])
    return path


def _length(p: QPointF) -> float:
    return (p.x() ** 2 + p.y() ** 2) ** 0.5


class EdgeItem(QGraphicsItem):
    """A wire from an output port to an input port: an S-curve, or a detour around blocks in its way
    (see :mod:`designer.canvas.routing`).

    Its tensor shape is shown by :attr:`label_item`, a separate item stacked above
    the blocks, so the label stays readable where blocks sit close together.
    """

    def __init__(self, edge: Edge, src: NodeItem, dst: NodeItem, colors: CanvasPalette) -> None:
        super().__init__()
        self.edge = edge
        self.src_item = src
        self.dst_item = dst
        self.colors = colors
        self.label_item = EdgeLabelItem(self)
        self._path = QPainterPath()
        self._shape: QPainterPath | None = None
        self._bounds = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-1.0)
        self.update_path()

    @property
    def label(self) -> str:
        return self.label_item.text

    def set_colors(self, colors: CanvasPalette) -> None:
        self.colors = colors
        self.update()
        self.label_item.update()

    def set_label(self, text: str) -> bool:
        """Show ``text`` (a shape such as ``6×28×28``) at the wire's middle. Returns whether it changed."""
        return self.label_item.set_text(text)

    def update_path(self, router: Router | None = None) -> None:
        """Follow the ports (called when either block moves or changes its ports); with ``router``,
        around the blocks it knows, else the plain curve."""
        p1 = self.src_item.out_port_scene_pos(self.edge.src_port)
        p2 = self.dst_item.in_port_scene_pos(self.edge.dst_port)
        if router is None:
            self._path, middle = wire_path(p1, p2, self.src_item.flow)
        else:
            route = router.route((p1.x(), p1.y()), (p2.x(), p2.y()), self.src_item.flow)
            self._path, middle = route_path(route), QPointF(*route.label)
        self.label_item.place(middle)
        self._geometry_changed()

    def _geometry_changed(self) -> None:
        self.prepareGeometryChange()
        self._shape = None
        self._bounds = self._path.boundingRect().adjusted(-3.0, -3.0, 3.0, 3.0)

    def path(self) -> QPainterPath:
        return self._path

    def path_touches(self, rect: QRectF) -> bool:
        """Whether the wire's bounds meet ``rect`` (a block there may block or free its way)."""
        return self._bounds.intersects(rect)

    def tooltip_text(self) -> str:
        return self.label_item.tooltip_text()

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.label_item.update()
        elif change == QGraphicsItem.GraphicsItemChange.ItemVisibleHasChanged:
            self.label_item.setVisible(self.isVisible())
        return super().itemChange(change, value)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10.0)
            self._shape = stroker.createStroke(self._path)
        return self._shape

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        c = self.colors
        selected = self.isSelected()
        pen = QPen(c.wire_selected if selected else c.wire, 2.6 if selected else 1.8)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < 0.6:
            # NOTE: zoomed out, a thin cosmetic pen keeps wires visible and is much cheaper to stroke.
            pen.setCosmetic(True)
            pen.setWidthF(2.0 if selected else 1.1)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(pen)
        painter.drawPath(self._path)


class EdgeLabelItem(QGraphicsItem):
    """The shape tag of a wire, sitting just above the wire's middle and above the blocks.

    Clicking it selects its wire (Ctrl toggles), as clicking the wire itself does.
    """

    #: Below this zoom the labels would be under READABLE_PX on screen and are not drawn: hovering
    #: over the wire shows its shape instead (the scene's tooltip).
    MIN_ZOOM = READABLE_ZOOM

    def __init__(self, edge_item: EdgeItem) -> None:
        super().__init__()
        self.edge_item = edge_item
        self.text = ""
        self._rect = QRectF()
        self._bounds = QRectF()
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setZValue(2.0)  # NOTE: above every block, so a tag between close blocks stays readable

    def set_text(self, text: str) -> bool:
        if text == self.text:
            return False
        self.text = text
        rect = QRectF()
        if text:
            w, h = text_width("small", text) + 8.0, _metrics("small").height() + 2.0
            rect = QRectF(-w / 2, -h - 3.0, w, h)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
            self._bounds = rect.adjusted(-1.0, -1.0, 1.0, 1.0)
        self.update()
        return True

    def mousePressEvent(self, event) -> None:
        edge = self.edge_item
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            edge.setSelected(not edge.isSelected())
        else:
            if edge.scene() is not None:
                edge.scene().clearSelection()
            edge.setSelected(True)
        event.accept()

    def tooltip_text(self) -> str:
        if not self.text or self.text == "?":
            return "the shape on this wire is unknown until the blocks before it are fixed"
        return f"each sample's tensor on this wire is {self.text}"

    def place(self, mid: QPointF) -> None:
        """Put the label's bottom centre just above ``mid`` (the wire's middle)."""
        self.setPos(mid)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self.text or option.levelOfDetailFromTransform(painter.worldTransform()) < self.MIN_ZOOM:
            return
        c = self.edge_item.colors
        selected = self.edge_item.isSelected()
        painter.setPen(QPen(c.wire_selected if selected else c.grid_major, 1.0))
        painter.setBrush(c.label_bg)
        painter.drawRoundedRect(self._rect, 4.0, 4.0)
        painter.setPen(c.wire_selected if selected else c.label_text)
        painter.setFont(font("small"))
        painter.drawText(self._rect, _CENTER, self.text)


class TempWireItem(QGraphicsPathItem):
    """The dashed wire that follows the mouse while a connection is dragged."""

    def __init__(self, colors: CanvasPalette) -> None:
        super().__init__()
        self.colors = colors
        self.setZValue(10.0)
        self.set_valid(None)

    def set_valid(self, valid: bool | None) -> None:
        color = self.colors.wire_invalid if valid is False else self.colors.wire_selected
        pen = QPen(color, 2.0, Qt.PenStyle.DashLine)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.setPen(pen)
        self.setBrush(QBrush(Qt.BrushStyle.NoBrush))

    def set_ends(self, start: QPointF, end: QPointF, flow: str = "lr") -> None:
        """A curve from an output (``start``) to an input (``end``)."""
        self.setPath(wire_path(start, end, flow)[0])

    def shape(self) -> QPainterPath:
        return QPainterPath()  # never under the mouse: drops look through it

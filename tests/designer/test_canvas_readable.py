"""Every shipped template, arranged and fitted in the window as a person opens it, is readable.

At 1600×1000 and 1366×768: after Arrange and Fit every text of the canvas is at least 9 px on
screen (the zoom never goes below that; a big network scrolls instead), no two blocks overlap, a
network with enough blocks uses a fair share of the canvas's height, every block paints its name,
settings line and output shape, and no wire passes through a block. Below the readable zoom a
wire's shape is shown on hover instead of in tiny print.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QRectF
from PySide6.QtGui import QHelpEvent, QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyleOptionGraphicsItem, QToolTip

from designer.canvas.items import FONT_PX, READABLE_PX, READABLE_ZOOM, EdgeLabelItem, font
from designer.main_window import MainWindow
from engine.templates import list_templates

TEMPLATES = [info.name for info in list_templates()]
#: a network with at least this many blocks should use a fair share of the canvas's height
ENOUGH_BLOCKS = 10
HEIGHT_SHARE = 0.4
#: names longer than this may lose their middle to an ellipsis (a block is 180 units wide)
LONG_NAME = 20


@pytest.fixture
def sized_window(open_windows, monkeypatch, tmp_path):
    """A main window of a given size; closed without a prompt at the end."""
    monkeypatch.setenv("NET_DESIGNER_DATA", str(tmp_path))
    return open_windows


def _open_arranged(w: MainWindow, name: str, direction: str = "lr") -> None:
    """Open template ``name`` as a person does, then Arrange (left to right), which fits it."""
    w.document.undo_stack.setClean()  # NOTE: no unsaved-changes prompt between templates
    assert w.new_from_template(name)
    QApplication.processEvents()
    w.arrange(direction)
    QApplication.processEvents()
    w.view.scene().flush_routes()


def _block_rects(w: MainWindow) -> list[QRectF]:
    return [QRectF(item.pos(), item.rect().size()) for item in w.view.scene().node_items()]


def _overlapping(rects: list[QRectF]) -> list[tuple[int, int]]:
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects])
    bad = []
    for i in range(len(boxes)):
        o = boxes[i + 1:]
        hit = (o[:, 0] < boxes[i, 2]) & (o[:, 2] > boxes[i, 0]) & (o[:, 1] < boxes[i, 3]) & (o[:, 3] > boxes[i, 1])
        bad += [(i, i + 1 + j) for j in np.flatnonzero(hit)]
    return bad


def _path_points(path, step: float = 3.0) -> np.ndarray:
    """Points along a wire's path every ``step`` scene units (sampled by Qt's own path arithmetic)."""
    n = max(int(path.length() / step), 8)
    return np.array([[path.pointAtPercent(path.percentAtLength(path.length() * i / n)).x(),
                      path.pointAtPercent(path.percentAtLength(path.length() * i / n)).y()] for i in range(n + 1)])


def _wires_through_blocks(w: MainWindow) -> list[str]:
    """Wires with a point strictly inside a block other than their own ends (or deep inside their own)."""
    scene = w.view.scene()
    items = scene.node_items()
    boxes = np.array([[it.pos().x(), it.pos().y(), it.pos().x() + it.rect().width(), it.pos().y() + it.rect().height()]
                      for it in items])
    index = {it.node_id: k for k, it in enumerate(items)}
    bad = []
    for edge in scene.edge_items():
        pts = _path_points(edge.path())
        inside = ((pts[:, None, 0] > boxes[None, :, 0] + 0.5) & (pts[:, None, 0] < boxes[None, :, 2] - 0.5)
                  & (pts[:, None, 1] > boxes[None, :, 1] + 0.5) & (pts[:, None, 1] < boxes[None, :, 3] - 0.5))
        hits = set(np.flatnonzero(inside.any(axis=0)).tolist())
        ends = {index[edge.edge.src], index[edge.edge.dst]}
        deep = ((pts[:, None, 0] > boxes[None, :, 0] + 4) & (pts[:, None, 0] < boxes[None, :, 2] - 4)
                & (pts[:, None, 1] > boxes[None, :, 1] + 4) & (pts[:, None, 1] < boxes[None, :, 3] - 4))
        hits = (hits - ends) | (set(np.flatnonzero(deep.any(axis=0)).tolist()) & ends)
        if hits:
            names = ", ".join(items[k].name for k in sorted(hits))
            bad.append(f"{edge.src_item.name} → {edge.dst_item.name} through {names}")
    return bad


def _shows_name(text: str, name: str) -> bool:
    """The whole name, or for one wider than its block its start and its end around an ellipsis."""
    if text == name:
        return True
    head, sep, tail = text.partition("…")
    return bool(sep) and len(name) > LONG_NAME and name.startswith(head) and name.endswith(tail) \
        and min(len(head), len(tail)) >= 6


class _Recorder(QPainter):
    """A painter that notes every text drawn (and draws it too)."""

    def __init__(self, device) -> None:
        super().__init__(device)
        self.texts: list[tuple[str, int]] = []

    def drawText(self, *args) -> None:
        self.texts.append((args[-1], self.font().pixelSize()))
        super().drawText(*args)


def _painted_texts(item, zoom: float) -> list[tuple[str, int]]:
    image = QImage(400, 200, QImage.Format.Format_ARGB32)
    painter = _Recorder(image)
    painter.scale(zoom, zoom)
    painter.translate(10, 10)
    try:
        item.paint(painter, QStyleOptionGraphicsItem(), None)
    finally:
        painter.end()
    return painter.texts


@pytest.mark.parametrize("size", [(1600, 1000), (1366, 768)], ids=["1600x1000", "1366x768"])
def test_every_template_is_readable_after_arrange_and_fit(sized_window, size):
    w = sized_window(*size)
    problems = []
    for name in TEMPLATES:
        _open_arranged(w, name)
        view, scene = w.view, w.view.scene()
        zoom = view.transform().m11()
        smallest = min(font(role).pixelSize() for role in FONT_PX) * zoom
        if smallest < READABLE_PX - 1e-9 or zoom < EdgeLabelItem.MIN_ZOOM - 1e-9:
            problems.append(f"{name}: text {smallest:.1f} px at zoom {zoom:.2f}")
        overlaps = _overlapping(_block_rects(w))
        if overlaps:
            problems.append(f"{name}: {len(overlaps)} pairs of blocks overlap")
        drawing = view.mapFromScene(scene.itemsBoundingRect()).boundingRect()
        shown = min(drawing.height(), view.viewport().height()) / view.viewport().height()
        if len(w.document.graph) >= ENOUGH_BLOCKS and shown <= HEIGHT_SHARE:
            problems.append(f"{name}: uses {shown:.0%} of the canvas height")
        for item in scene.node_items():
            texts = [t for t, _ in _painted_texts(item, zoom)]
            expected = [item.shape_text] + ([item.brief] if item.brief else [])
            missing = [t for t in expected if t not in texts]
            if not any(_shows_name(t, item.name) for t in texts):
                missing.append(item.name)
            if missing:
                problems.append(f"{name}: block {item.name} does not show {missing} at zoom {zoom:.2f}")
        problems += [f"{name}: wire {bad}" for bad in _wires_through_blocks(w)]
    assert problems == []


def test_arranged_top_to_bottom_no_block_overlaps_and_no_wire_crosses_one(sized_window):
    w = sized_window(1600, 1000)
    problems = []
    for name in TEMPLATES:
        _open_arranged(w, name, "tb")
        assert w.document.graph.flow == "tb"
        if _overlapping(_block_rects(w)):
            problems.append(f"{name}: blocks overlap")
        problems += [f"{name}: wire {bad}" for bad in _wires_through_blocks(w)]
    assert problems == []


def test_painted_text_is_at_least_readable_size_on_screen(sized_window):
    """What a block paints at the picked zoom: every text's pixel size × the zoom is at least 9."""
    w = sized_window(1366, 768)
    _open_arranged(w, "resnet")
    zoom = w.view.transform().m11()
    for item in w.view.scene().node_items():
        sizes = [px for _, px in _painted_texts(item, zoom)]
        assert sizes and min(sizes) * zoom >= READABLE_PX - 1e-9, item.name


def test_a_big_network_scrolls_from_its_start_rather_than_shrinking(sized_window):
    w = sized_window(1366, 768)
    _open_arranged(w, "densenet121")
    view, scene = w.view, w.view.scene()
    assert view.transform().m11() == pytest.approx(READABLE_ZOOM)
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    drawing = scene.itemsBoundingRect()
    assert drawing.width() <= shown.width() + 1  # wrapped to the canvas's width: it scrolls one way only
    assert shown.top() <= drawing.top() <= shown.top() + 200  # the start (the input) is on screen
    inputs = [it for it in scene.node_items() if it.type_id == "Input"]
    assert inputs and all(shown.contains(QRectF(it.pos(), it.rect().size())) for it in inputs)


def test_below_the_readable_zoom_a_wire_shows_its_shape_on_hover(sized_window):
    w = sized_window(1366, 768)
    _open_arranged(w, "lenet5")
    view, scene = w.view, w.view.scene()
    view.set_zoom(READABLE_ZOOM * 0.7)
    edge = next(e for e in scene.edge_items() if e.label not in ("", "?"))
    assert font("small").pixelSize() * view.zoom() < READABLE_PX  # too small to print...
    painted = _painted_label(edge.label_item, view.zoom())
    assert painted == []  # ...so it is not printed
    scene.center_on_node(edge.src_item.node_id)
    QApplication.processEvents()
    mid = edge.path().pointAtPercent(0.5)
    at = view.mapFromScene(mid)
    QApplication.sendEvent(view.viewport(), QHelpEvent(QEvent.Type.ToolTip, at, view.viewport().mapToGlobal(at)))
    assert edge.label in QToolTip.text()
    QToolTip.hideText()
    view.set_zoom(READABLE_ZOOM)
    assert _painted_label(edge.label_item, view.zoom()) == [edge.label]
    assert font("small").pixelSize() * view.zoom() >= READABLE_PX - 1e-9


def _painted_label(label: EdgeLabelItem, zoom: float) -> list[str]:
    image = QImage(300, 100, QImage.Format.Format_ARGB32)
    painter = _Recorder(image)
    painter.scale(zoom, zoom)
    painter.translate(QPointF(100, 60))
    try:
        label.paint(painter, QStyleOptionGraphicsItem(), None)
    finally:
        painter.end()
    return [t for t, _ in painter.texts]


# ---------------------------------------------------------------------- the router on its own
def _grid_of_blocks(rng, columns: int = 6, rows: int = 5) -> dict[str, tuple[float, float, float, float]]:
    """Blocks in columns 280 apart and rows 130 apart, some cells left empty, as a layout places them."""
    blocks = {}
    for c in range(columns):
        for r in range(rows):
            if rng.random() < 0.7:
                x, y = c * 280.0, r * 130.0
                blocks[f"b{c}_{r}"] = (x, y, x + 180.0, y + 80.0)
    return blocks


@pytest.mark.parametrize("flow", ["lr", "tb"])
def test_routes_between_random_blocks_never_cross_another(flow):
    import random

    from designer.canvas.routing import Router, segment_hits

    rng = random.Random(7)
    for _ in range(20):
        blocks = _grid_of_blocks(rng)
        if flow == "tb":  # the same drawing turned: columns become rows
            blocks = {k: (y0, x0, y1, x1) for k, (x0, y0, x1, y1) in blocks.items()}
        router = Router()
        for key, rect in blocks.items():
            router.index.set(key, rect)
        keys = sorted(blocks)
        for _ in range(30):
            a, b = rng.sample(keys, 2)
            ra, rb = blocks[a], blocks[b]
            if flow == "lr":
                p1, p2 = (ra[2], (ra[1] + ra[3]) / 2), (rb[0], (rb[1] + rb[3]) / 2)
            else:
                p1, p2 = ((ra[0] + ra[2]) / 2, ra[3]), ((rb[0] + rb[2]) / 2, rb[1])
            route = router.route(p1, p2, flow)
            assert route.points[0] == p1 and route.points[-1] == p2
            if route.curve:
                continue  # checked by the router against sampled points; the templates' test samples the drawn path
            others = [r for k, r in blocks.items() if k not in (a, b)]
            crossed = [r for r in others for s, t in zip(route.points, route.points[1:]) if segment_hits(s, t, r)]
            assert crossed == [], (a, b, route.points)


def test_segment_hits_counts_the_inside_only():
    from designer.canvas.routing import segment_hits

    rect = (0.0, 0.0, 10.0, 10.0)
    assert segment_hits((-5.0, 5.0), (15.0, 5.0), rect)  # straight through
    assert segment_hits((5.0, 5.0), (6.0, 6.0), rect)  # wholly inside
    assert not segment_hits((-5.0, 0.0), (15.0, 0.0), rect)  # along its edge
    assert not segment_hits((10.0, 5.0), (20.0, 5.0), rect)  # leaving from its edge, outwards
    assert not segment_hits((-5.0, -5.0), (-1.0, 20.0), rect)  # beside it
    assert segment_hits((-1.0, -1.0), (11.0, 11.0), rect)  # across a corner

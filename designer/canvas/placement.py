"""Where new blocks go: free room on the canvas, and the step that inserts a block after another.

A block added from the palette or a paste must not land on top of others (it hid them); one
inserted after a selected block goes into the wire that leaves it, and the blocks after it move
along when there is no room. Positions are read from the scene's items, which show the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRectF

from designer.canvas.items import GRID, NodeItem
from designer.commands import InsertAfterCommand
from engine.layers import registry
from engine.layout import DEFAULT_SPACING

if TYPE_CHECKING:  # pragma: no cover
    from designer.canvas.scene import GraphScene

#: How far apart the places are that are tried, looking for room (scene units).
STEP = 40.0
#: How far around the wanted place room is looked for, in steps each way.
SEARCH_STEPS = 30

__all__ = ["STEP", "copied_box", "free_spot", "insert_command", "occupied"]


def occupied(scene: GraphScene, rect: QRectF, ignore: frozenset[str] = frozenset()) -> bool:
    """Whether a block (other than those in ``ignore``) meets ``rect``."""
    return any(isinstance(it, NodeItem) and it.node_id not in ignore for it in scene.items(rect))


def free_spot(scene: GraphScene, x: float, y: float, w: float = NodeItem.WIDTH,
              h: float = NodeItem.MIN_HEIGHT) -> tuple[float, float]:
    """The grid point nearest (x, y) where a ``w``×``h`` box overlaps no block, a grid step to spare.

    Falls back to (x, y) snapped when there is no room within SEARCH_STEPS steps.
    """
    sx, sy = round(x / GRID) * GRID, round(y / GRID) * GRID
    steps = range(-SEARCH_STEPS, SEARCH_STEPS + 1)
    for i, j in sorted(((i, j) for i in steps for j in steps), key=lambda ij: ij[0] ** 2 + ij[1] ** 2):
        cx, cy = sx + i * STEP, sy + j * STEP
        if not occupied(scene, _margin(QRectF(cx, cy, w, h))):
            return (cx, cy)
    return (sx, sy)


def insert_command(scene: GraphScene, type_id: str, after: str) -> InsertAfterCommand:
    """The one step that adds a ``type_id`` block after block ``after``, wired to its output.

    Into the one wire that leaves ``after`` (when the new block has an output), one step further
    along the flow; when the blocks after it stand there, they move along one step; when other
    blocks do, it goes into the nearest free room. Raises GraphError when a ``type_id`` block
    cannot be wired after ``after`` (an Input, or after an output block).
    """
    graph = scene.graph
    spec = registry.get(type_id)
    out = graph.edges_from(after)
    splice = out[0] if len(out) == 1 and spec.output_ports(spec.resolve_params({})) else None
    dx, dy = (DEFAULT_SPACING[0], 0.0) if graph.flow == "lr" else (0.0, DEFAULT_SPACING[1])
    x, y = graph.node(after).pos[0] + dx, graph.node(after).pos[1] + dy
    spot = _margin(QRectF(x, y, NodeItem.WIDTH, NodeItem.MIN_HEIGHT))
    after_it = frozenset(_downstream(graph, splice.dst)) if splice is not None else frozenset()
    moves: dict[str, tuple[Any, Any]] = {}
    if after_it and occupied(scene, spot) and not occupied(scene, spot, after_it):
        # NOTE: the chain goes on right there: it moves along one step to make room
        moves = {nid: (graph.nodes[nid].pos, (graph.nodes[nid].pos[0] + dx, graph.nodes[nid].pos[1] + dy))
                 for nid in after_it}
    elif occupied(scene, spot):
        x, y = free_spot(scene, x, y)
    return InsertAfterCommand(scene.document, type_id, after, (x, y), splice, moves)


def copied_box(data: dict) -> QRectF | None:
    """The area that copied blocks (``graph_to_dict`` form) cover, a block taken at its smallest size."""
    try:
        points = [(float(n.get("pos", (0.0, 0.0))[0]), float(n.get("pos", (0.0, 0.0))[1])) for n in data["nodes"]]
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return None
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return QRectF(min(xs), min(ys), max(xs) - min(xs) + NodeItem.WIDTH, max(ys) - min(ys) + NodeItem.MIN_HEIGHT)


def _margin(rect: QRectF) -> QRectF:
    return rect.adjusted(-GRID, -GRID, GRID, GRID)


def _downstream(graph, start: str) -> set[str]:
    """``start`` and every block it feeds, directly or not."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.successors(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen

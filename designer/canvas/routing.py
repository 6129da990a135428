"""Wire routes around block bodies: a smooth curve where it is clear, else an orthogonal detour.

The canvas asks :class:`Router` for the points of each wire. A wire leaves its source's port along
the flow and enters its destination's port along the flow. Where the plain S-curve between the two
ports meets no block it is kept (most wires: neighbours in a layered layout). Otherwise the wire goes
out a short stub, turns into the free horizontal channel nearest the ports (a lane between rows of
blocks, the gap between two wrapped rows), runs along it and turns back in: a skip runs in its lane
and a wrapped chain's wire returns under its row, never through a block.

Plain Python over ``(x0, y0, x1, y1)`` rectangles, worked out in a left-to-right frame; a top-to-bottom
drawing is routed with its axes swapped. A grid of buckets finds the blocks near a wire quickly.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1
Point = tuple[float, float]

#: how far a detour keeps from blocks (scene units); a corner's rounding stays inside it
CLEARANCE = 16.0
#: the straight stub out of a port before a detour turns
STUB = 20.0
#: how far apart wires that would run on one line are moved (scene units)
SPREAD = 6.0
#: how far apart along a shared channel the shape tags of different wires sit (about a tag's width)
LABEL_STEP = 80.0
#: side of a bucket of the block index (about a block and its gap)
CELL = 256.0
#: the most a wire kept as a curve climbs or falls (scene units): beyond, it leaves a row of blocks
#: (a wrapped drawing's next row), and an orthogonal route through the gaps reads better
CURVE_RISE = 300.0
#: points sampled along a curve to check it against blocks
CURVE_SAMPLES = 16

__all__ = ["CLEARANCE", "BlockIndex", "Route", "Router", "curve_points", "segment_hits"]


@dataclass(frozen=True)
class Route:
    """A wire's shape: ``curve`` (a cubic from ``points[0]`` to ``points[3]`` through two controls)
    or an orthogonal polyline through ``points``; ``label`` is where its shape tag sits."""

    points: tuple[Point, ...]
    curve: bool
    label: Point


class BlockIndex:
    """The blocks' rectangles by id, bucketed on a grid so that those near a wire are found fast."""

    def __init__(self) -> None:
        self.rects: dict[str, Rect] = {}
        self._cells: dict[tuple[int, int], set[str]] = {}

    def set(self, key: str, rect: Rect) -> None:
        """Add or move block ``key``."""
        if self.rects.get(key) == rect:
            return
        self.remove(key)
        self.rects[key] = rect
        for cell in _cells_of(rect):
            self._cells.setdefault(cell, set()).add(key)

    def remove(self, key: str) -> None:
        rect = self.rects.pop(key, None)
        if rect is None:
            return
        for cell in _cells_of(rect):
            bucket = self._cells.get(cell)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self._cells[cell]

    def near(self, area: Rect) -> list[Rect]:
        """The rectangles that may meet ``area`` (every one that does, and a few neighbours)."""
        keys: set[str] = set()
        for cell in _cells_of(area):
            keys.update(self._cells.get(cell, ()))
        return [self.rects[k] for k in sorted(keys)]


def _cells_of(rect: Rect):
    x0, y0, x1, y1 = rect
    for cx in range(int(x0 // CELL), int(x1 // CELL) + 1):
        for cy in range(int(y0 // CELL), int(y1 // CELL) + 1):
            yield (cx, cy)


def segment_hits(a: Point, b: Point, rect: Rect) -> bool:
    """Whether the segment ``a``–``b`` passes through the inside of ``rect`` (touching its edge is not)."""
    x0, y0, x1, y1 = rect
    (ax, ay), (bx, by) = a, b
    # NOTE: Liang–Barsky clipping against the open rectangle; a segment along an edge stays outside.
    t0, t1 = 0.0, 1.0
    dx, dy = bx - ax, by - ay
    for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
        if p == 0:
            if q <= 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 >= t1:
            return False
    return t1 - t0 > 1e-9


def curve_points(p1: Point, p2: Point) -> tuple[Point, Point, Point, Point]:
    """The S-curve's four control points from an output port to an input port, leaving and entering rightwards."""
    d = max(40.0, abs(p2[0] - p1[0]) * 0.5)
    return (p1, (p1[0] + d, p1[1]), (p2[0] - d, p2[1]), p2)


def _bezier(ctrl: tuple[Point, Point, Point, Point], t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = ctrl
    u = 1.0 - t
    a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
    return (a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3)


def _clear(points: list[Point] | tuple[Point, ...], rects: list[Rect]) -> bool:
    return not any(segment_hits(a, b, r) for a, b in pairwise(points) for r in rects)


def _bounds(points) -> Rect:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


class Router:
    """Routes wires among the blocks of a :class:`BlockIndex` (see the module docstring)."""

    def __init__(self, index: BlockIndex | None = None) -> None:
        self.index = index or BlockIndex()

    def route(self, p1: Point, p2: Point, flow: str = "lr") -> Route:
        """The route of a wire from output port ``p1`` to input port ``p2``."""
        if flow == "tb":
            flipped = self._route_lr(_swap(p1), _swap(p2), _swap_rect)
            return Route(tuple(_swap(p) for p in flipped.points), flipped.curve, _swap(flipped.label))
        return self._route_lr(p1, p2, None)

    # ------------------------------------------------------------------ left to right
    def _near(self, area: Rect, swap) -> list[Rect]:
        if swap is None:
            return self.index.near(area)
        return [swap(r) for r in self.index.near(swap(area))]

    def _route_lr(self, p1: Point, p2: Point, swap) -> Route:
        ctrl = curve_points(p1, p2)
        if p2[0] - p1[0] >= 2 * STUB and abs(p2[1] - p1[1]) <= CURVE_RISE:
            samples = [_bezier(ctrl, i / CURVE_SAMPLES) for i in range(CURVE_SAMPLES + 1)]
            if _clear(samples, self._near(_bounds(samples), swap)):
                return Route(ctrl, True, _bezier(ctrl, 0.5))
        return self._detour(p1, p2, swap)

    def _detour(self, p1: Point, p2: Point, swap) -> Route:
        """Out a stub, along the best free channel, back in: the orthogonal route with the fewest turns."""
        # NOTE: wires leaving one column (Inception's branches into the next row) turn at slightly
        # different places, so each stays a line of its own instead of drawing over the others
        xa, xb = p1[0] + STUB + _spread(p1[1]), p2[0] - STUB - _spread(p2[1])
        lo_x, hi_x = min(xa, xb), max(xa, xb)
        reach = max(abs(p2[1] - p1[1]), 400.0) + 400.0
        area = (lo_x - CLEARANCE, min(p1[1], p2[1]) - reach, hi_x + CLEARANCE, max(p1[1], p2[1]) + reach)
        rects = self._near(area, swap)
        fallback = None
        for y in self._channels(rects, lo_x, hi_x, p1, p2):
            points = _simplify([p1, (xa, p1[1]), (xa, y), (xb, y), (xb, p2[1]), p2])
            if _clear(points, rects):
                return Route(tuple(points), False, _label_spot(points))
            fallback = fallback or points
        points = fallback or _simplify([p1, (xa, p1[1]), (xa, p2[1]), p2])
        return Route(tuple(points), False, _label_spot(points))

    @staticmethod
    def _channels(rects: list[Rect], lo_x: float, hi_x: float, p1: Point, p2: Point) -> list[float]:
        """Heights of free horizontal channels over ``lo_x..hi_x``, the cheapest detour first."""
        spans = sorted(
            (r[1] - CLEARANCE, r[3] + CLEARANCE)
            for r in rects
            if r[0] - CLEARANCE < hi_x and r[2] + CLEARANCE > lo_x
        )
        free: list[tuple[float, float]] = []
        top = -1e12
        for y0, y1 in spans:
            if y0 > top:
                free.append((top, y0))
            top = max(top, y1)
        free.append((top, 1e12))
        low, high = min(p1[1], p2[1]), max(p1[1], p2[1])
        picks = []
        for a, b in free:
            if b < low:
                y = b
            elif a > high:
                y = a
            else:  # NOTE: between the ports every height costs the same: about the middle of what is free there
                y = min(max((max(a, low) + min(b, high)) / 2 + _spread(p1[1] + p2[0]) - SPREAD, a), b)
            # NOTE: of equally short detours, the widest channel: the gap between two wrapped rows
            # rather than the narrow one between two branches
            picks.append((round(abs(y - p1[1]) + abs(y - p2[1])), -(min(b, 1e6) - max(a, -1e6)), y))
        return [y for _, _, y in sorted(picks)]


def _spread(v: float) -> float:
    """A small offset (0 to 3 SPREAD) that differs between nearby wires, from one of their coordinates."""
    return SPREAD * (int(v // 10) % 4)


def _simplify(points: list[Point]) -> list[Point]:
    """Drop repeated points and the middle of three points on one line."""
    out: list[Point] = []
    for p in points:
        if out and abs(p[0] - out[-1][0]) < 1e-6 and abs(p[1] - out[-1][1]) < 1e-6:
            continue
        if len(out) >= 2:
            (ax, ay), (bx, by) = out[-2], out[-1]
            if (abs(ax - bx) < 1e-6 and abs(bx - p[0]) < 1e-6) or (abs(ay - by) < 1e-6 and abs(by - p[1]) < 1e-6):
                out[-1] = p
                continue
        out.append(p)
    return out


def _label_spot(points: list[Point]) -> Point:
    """About the middle of the route's longest horizontal run (where a tag reads along the wire).

    NOTE: moved along the run by up to two tags' widths, differently for wires from different
    rows, so that the tags of wires sharing a channel (a wrapped row's returns) do not cover each other.
    """
    best, spot = -1.0, points[len(points) // 2]
    for (ax, ay), (bx, by) in pairwise(points):
        if abs(ay - by) < 1e-6 and abs(bx - ax) > best:
            lo, hi = min(ax, bx), max(ax, bx)
            shift = LABEL_STEP * (int(points[0][1] // 10) % 4 - 1.5)
            x = (lo + hi) / 2
            if hi - lo > LABEL_STEP:
                x = min(max(x + shift, lo + LABEL_STEP / 2), hi - LABEL_STEP / 2)
            best, spot = hi - lo, (x, ay)
    return spot


def _swap(p: Point) -> Point:
    return (p[1], p[0])


def _swap_rect(r: Rect) -> Rect:
    return (r[1], r[0], r[3], r[2])

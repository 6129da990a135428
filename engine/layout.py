"""Automatic arrangement of a graph's blocks: a clean layered (Sugiyama-style) layout.

:func:`auto_layout` computes positions; :func:`apply_layout` moves the blocks there
in one batch. The steps are the classic ones:

1. **Layers.** Each block goes one column after the furthest block that feeds it
   (longest path from the inputs); output heads all go in the last column.
2. **Dummies.** A wire that skips columns gets an invisible stand-in in every column
   it crosses, so skips and branches claim their own row instead of running through
   blocks.
3. **Order.** Within a column, blocks are sorted by the mean position of their
   neighbours (barycenter), sweeping forward and back, keeping the order with the
   fewest wire crossings.
4. **Coordinates.** Each block is pulled towards its neighbours' rows while keeping
   the order and the minimum spacing (an exact weighted isotonic fit per column).
   Long wires weigh more, so skips run straight and branches sit side by side.
   Rows snap to half the row gap, so chains line up exactly.
5. **Wrapping.** A drawing wider than the room it should fit (``fit``: the canvas at the
   zoom where its text is readable) is cut into bands of columns stacked under each other,
   rows for a left-to-right drawing: as few bands as make it readable, cut where the
   fewest wires cross (between a ResNet's blocks), so that text keeps its size and a big
   network scrolls one way instead of shrinking. Skips and branches keep their lanes.

Separate pieces of the graph are laid out on their own and stacked. The result is
deterministic: ties follow the order in which the blocks were added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.graphrules import topological_walk

if TYPE_CHECKING:  # pragma: no cover
    from engine.graph import Graph

__all__ = ["BLOCK", "DEFAULT_FIT", "DEFAULT_SPACING", "apply_layout", "auto_layout"]

#: Distance between neighbouring blocks (x, y) in scene units; blocks are about BLOCK.
DEFAULT_SPACING = (280.0, 130.0)
#: A block's usual size on the canvas (scene units), for measuring a drawing.
BLOCK = (180.0, 80.0)
#: The room a drawing is fitted to by default: the canvas of a 1600×1000 window (about 1080×730
#: pixels) at the zoom where its text is readable (3/4), less the margins Fit keeps.
DEFAULT_FIT = (1320.0, 860.0)
#: Rows of space between two bands of a wrapped drawing (where the wires from one band to the next run).
BAND_GAP_ROWS = 0.5
#: What one more band costs, and each wire that crosses a cut between bands (see _cut): a wire that
#: leaves its row for the next reads worse than a short row.
BAND_COST, CROSS_COST = 3.0, 3.0
#: A drawing shown this much larger than readable (a zoom of 0.9) is comfortable: no band is cut to grow it.
COMFORTABLE = 1.2
#: A narrower band (one more row) must show the drawing larger than this share of the best fit.
WRAP_GAIN = 0.75
#: How much larger than readable a fitted drawing may be shown; a wider band beyond it only shrinks text.
MAX_FILL = 1.25 / 0.75

_ORDER_SWEEPS = 8
_COORD_SWEEPS = 8
#: Gansner's wire weights: real–real, real–dummy, dummy–dummy. Heavier keeps long wires straight.
_W_REAL, _W_MIXED, _W_DUMMY = 1.0, 2.0, 8.0


def auto_layout(
    graph: "Graph",
    direction: str = "lr",
    spacing: tuple[float, float] = DEFAULT_SPACING,
    origin: tuple[float, float] = (0.0, 0.0),
    fit: tuple[float, float] | None = DEFAULT_FIT,
    sizes: dict[str, float] | None = None,
) -> dict[str, tuple[float, float]]:
    """Positions (top-left corners) for every block of ``graph``.

    Args:
        graph: the document to arrange (it is not changed).
        direction: ``"lr"`` puts the inputs on the left and wires run rightwards;
            ``"tb"`` puts them at the top and wires run downwards.
        spacing: scene distance between neighbouring blocks along x and along y.
        origin: position of the top-left-most block.
        fit: the room (width, height in scene units) the drawing should fit at the zoom where its
            text is readable: a long network is wrapped into rows (columns top to bottom) to fit it,
            or, when it cannot, to its width so that it scrolls one way only. None: one long band.
        sizes: each block's size across the flow (its height when it runs left to right) where it is
            larger than BLOCK's: a merge with many inputs is drawn taller, and gets the room.

    Returns:
        ``{node_id: (x, y)}`` for every block, in the graph's insertion order.
    """
    if direction not in ("lr", "tb"):
        raise ValueError(f"direction must be 'lr' or 'tb', not {direction!r}")
    sx, sy = float(spacing[0]), float(spacing[1])
    if sx <= 0 or sy <= 0:
        raise ValueError("spacing must be positive")
    if fit is not None and not (fit[0] > 0 and fit[1] > 0):
        raise ValueError("fit must be a positive width and height")
    layer_gap, row_gap = (sx, sy) if direction == "lr" else (sy, sx)

    ids = list(graph.nodes)
    if not ids:
        return {}
    index = {nid: i for i, nid in enumerate(ids)}
    heads = [graph.nodes[nid].spec.role == "head" for nid in ids]
    edges = [(index[e.src], index[e.dst]) for e in graph.edges]

    comps = _components(len(ids), edges)
    comp_of = {v: k for k, comp in enumerate(comps) for v in comp}
    comp_edges: list[list[tuple[int, int]]] = [[] for _ in comps]
    for a, b in edges:
        comp_edges[comp_of[a]].append((a, b))
    across = BLOCK[1] if direction == "lr" else BLOCK[0]
    # NOTE: whole half rows, so that snapping rows to halves keeps a tall block's room
    extra = {index[nid]: math.ceil(2 * (size - across) / row_gap) / 2
             for nid, size in (sizes or {}).items() if nid in index and size > across}
    pieces = [_layout_component(comp, local, heads, extra) for comp, local in zip(comps, comp_edges)]

    room = None if fit is None else ((fit[0], fit[1]) if direction == "lr" else (fit[1], fit[0]))
    block = BLOCK if direction == "lr" else (BLOCK[1], BLOCK[0])
    width = _band_width(pieces, room, layer_gap, row_gap, block)
    out: dict[str, tuple[float, float]] = {}
    ox, oy = origin
    for piece, bands in zip(pieces, _stack(pieces, width)):
        for start, end, low, top in bands:
            for v, (layer, row) in piece.place.items():
                if start <= layer < end:
                    along, across = (layer - start) * layer_gap, round((top + row - low) * row_gap)
                    x, y = (along, across) if direction == "lr" else (across, along)
                    out[ids[v]] = (float(ox + x), float(oy + y))
    return {nid: out[nid] for nid in ids}


# ------------------------------------------------------------------------- wrapping
def _band_width(pieces: list[_Piece], room, layer_gap: float, row_gap: float, block) -> int | None:
    """How many columns a band holds: the most readable fit of the drawing in ``room``.

    None (no wrapping) when the drawing fits as it is. Else, among widths whose drawing fits ``room``,
    the widest that shows it nearly as large (WRAP_GAIN) as the best (up to MAX_FILL, beyond which
    blocks would only grow), or comfortably large: a row is cut only for a real gain. When none fits,
    the widest that fits across, so the drawing scrolls one way only.
    """
    longest = max(len(p.extents) for p in pieces)
    if room is None or longest <= 1:
        return None
    room_w, room_h = room
    if (longest - 1) * layer_gap + block[0] <= room_w and _drawing_height(pieces, None, row_gap, block[1]) <= room_h:
        return None  # NOTE: it fits readably as it is: a row is never cut only to show it larger
    widest = max(1, min(longest, int((room_w - block[0]) // layer_gap) + 1))
    scores = []
    for k in range(1, widest + 1):
        w = (k - 1) * layer_gap + block[0]
        h = _drawing_height(pieces, k, row_gap, block[1])
        scores.append((min(room_w / w, room_h / h, MAX_FILL), k))
    fitting = [(score, k) for score, k in scores if score >= 1.0]
    if not fitting:
        return widest if widest < longest else None
    enough = min(max(score for score, _ in fitting) * WRAP_GAIN, COMFORTABLE)
    best = max(k for score, k in fitting if score >= enough)
    return best if best < longest else None


def _drawing_height(pieces: list[_Piece], k: int | None, row_gap: float, block_h: float) -> float:
    """How tall the drawing is with bands of ``k`` columns (None: not wrapped), from its top row to its last block's foot."""
    last = _stack(pieces, k)[-1][-1]
    piece = pieces[-1]
    return (last[3] + _band_extent(piece, last[0], last[1])[1] - last[2]) * row_gap + block_h


def _stack(pieces: list[_Piece], width: int | None) -> list[list[tuple[int, int, float, float]]]:
    """Each piece's bands as (first column, end column, lowest row, top row in the drawing).

    Bands of one piece are BAND_GAP_ROWS apart (their wires between them run there); pieces one row.
    """
    out, top = [], 0.0
    for piece in pieces:
        bands = []
        for start, end in _cut(piece, width):
            low, high = _band_extent(piece, start, end)
            bands.append((start, end, low, top))
            top += high - low + 1.0 + BAND_GAP_ROWS
        top -= BAND_GAP_ROWS
        out.append(bands)
    return out


def _cut(piece: _Piece, width: int | None) -> list[tuple[int, int]]:
    """The piece's columns cut into bands of at most ``width``: the fewest bands and wires crossing cuts.

    An exact search over where to cut (dynamic programming over columns): each band costs BAND_COST,
    each wire crossing a cut CROSS_COST, so a ResNet is cut between its blocks, where one wire
    crosses, whenever a band can reach there.
    """
    n = len(piece.extents)
    if width is None or width >= n:
        return [(0, n)]
    inf = (math.inf, 0)
    best: list[tuple[float, int]] = [(0.0, 0)] + [inf] * n  # (cost, start of the last band) up to column j
    for j in range(1, n + 1):
        for i in range(max(0, j - width), j):
            if best[i][0] == math.inf:
                continue
            # NOTE: the square of the width, a little, makes equal bands (3 + 2, not 4 + 1)
            cut = CROSS_COST * piece.cross[i - 1] if i else 0.0
            cost = best[i][0] + BAND_COST + cut + 0.01 * (j - i) ** 2
            if cost < best[j][0]:
                best[j] = (cost, i)
    bands, j = [], n
    while j > 0:
        i = best[j][1]
        bands.append((i, j))
        j = i
    return bands[::-1]


def _band_extent(piece: _Piece, start: int, end: int) -> tuple[float, float]:
    spans = piece.extents[start:end]
    return min(lo for lo, _ in spans), max(hi for _, hi in spans)


def apply_layout(graph: "Graph", positions: dict[str, tuple[float, float]]) -> None:
    """Move each block to its position: one ``move`` per block, all in one batch."""
    with graph.batch():
        for nid, pos in positions.items():
            graph.move(nid, pos)


# ------------------------------------------------------------------------- structure
def _components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Weakly connected components, each sorted, ordered by their first node."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


@dataclass
class _Piece:
    """One connected piece laid out in one long band: (layer, row) per block, each column's
    (lowest, highest) row, dummies included, and how many wires cross from each column to the next."""

    place: dict[int, tuple[int, float]]
    extents: list[tuple[float, float]]
    cross: list[int]


def _layout_component(
    nodes: list[int], edges: list[tuple[int, int]], heads: list[bool], extra: dict[int, float]
) -> _Piece:
    """(layer, row) per node of one component, in one band; ``extra``: rows a tall block takes beyond one."""
    succ: dict[int, list[int]] = {v: [] for v in nodes}
    pred: dict[int, list[int]] = {v: [] for v in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    # NOTE: a loop (never built by Graph) is broken, not fatal: the drawing still shows it.
    order = topological_walk(nodes, edges, earliest_first=True, break_loops=True).order
    rank = {v: i for i, v in enumerate(order)}

    layer: dict[int, int] = {}
    for v in order:
        layer[v] = max((layer[u] + 1 for u in pred[v] if rank[u] < rank[v]), default=0)
    last = max(layer.values())
    for v in nodes:
        if heads[v] and pred[v]:
            layer[v] = last  # NOTE: a head's feeder sits at most at last - 1, so wires still go forward
    forward = [(a, b) if layer[a] < layer[b] else (b, a) for a, b in edges if layer[a] != layer[b]]

    # Split long wires into unit-length segments through dummy nodes (ids >= n_real).
    next_id = max(nodes) + 1
    is_dummy: dict[int, bool] = {v: False for v in nodes}
    lay = dict(layer)
    up: dict[int, list[int]] = {v: [] for v in nodes}
    down: dict[int, list[int]] = {v: [] for v in nodes}
    for a, b in forward:
        prev = a
        for k in range(lay[a] + 1, lay[b]):
            d = next_id
            next_id += 1
            is_dummy[d], lay[d], up[d], down[d] = True, k, [], []
            down[prev].append(d)
            up[d].append(prev)
            prev = d
        down[prev].append(b)
        up[b].append(prev)

    def first_order(v: int) -> tuple[int, int]:
        """Start from topological order; a dummy sorts with the block its wire leaves."""
        src = v
        while is_dummy[src]:
            src = up[src][0]
        return (rank[src], v)

    columns: list[list[int]] = [[] for _ in range(max(lay.values()) + 1)]
    for v in sorted(lay, key=first_order):
        columns[lay[v]].append(v)

    columns = _order_columns(columns, up, down)
    rows = _assign_rows(columns, up, down, is_dummy, extra)
    low = min(rows[v] for v in rows)
    # NOTE: a column's extent counts its dummies: a skip's lane is part of the drawing's height.
    extents = [(min(rows[v] for v in col) - low, max(rows[v] + extra.get(v, 0.0) for v in col) - low)
               for col in columns]
    cross = [0] * len(columns)
    for a, b in forward:
        for c in range(layer[a], layer[b]):
            cross[c] += 1
    return _Piece({v: (lay[v], rows[v] - low) for v in nodes}, extents, cross)


# ------------------------------------------------------------------------- ordering
def _order_columns(columns: list[list[int]], up: dict, down: dict) -> list[list[int]]:
    """Barycenter sweeps; returns the ordering with the fewest crossings seen."""
    best = [list(c) for c in columns]
    best_cross = _crossings(best, down)
    cols = [list(c) for c in columns]
    for sweep in range(_ORDER_SWEEPS):
        if best_cross == 0:
            break
        if sweep % 2 == 0:
            for i in range(1, len(cols)):
                cols[i] = _barycenter_sort(cols[i], cols[i - 1], up)
        else:
            for i in range(len(cols) - 2, -1, -1):
                cols[i] = _barycenter_sort(cols[i], cols[i + 1], down)
        cross = _crossings(cols, down)
        if cross < best_cross:
            best, best_cross = [list(c) for c in cols], cross
    return best


def _barycenter_sort(column: list[int], fixed: list[int], neighbours: dict) -> list[int]:
    pos = {v: i for i, v in enumerate(fixed)}
    keyed = []
    for i, v in enumerate(column):
        ns = neighbours[v]
        bc = sum(pos[u] for u in ns) / len(ns) if ns else None
        keyed.append((bc, i, v))
    # Nodes without neighbours on that side keep their slot; the others are sorted around them.
    movable = sorted((bc, i, v) for bc, i, v in keyed if bc is not None)
    out: list[int] = []
    it = iter(movable)
    for bc, _, v in keyed:
        out.append(v if bc is None else next(it)[2])
    return out


def _crossings(columns: list[list[int]], down: dict) -> int:
    total = 0
    for i in range(len(columns) - 1):
        lower = {v: k for k, v in enumerate(columns[i + 1])}
        seq = [lower[w] for v in columns[i] for w in sorted(down[v], key=lower.__getitem__)]
        total += _inversions(seq)
    return total


def _inversions(seq: list[int]) -> int:
    """Pairs i < j with seq[i] > seq[j] (Fenwick tree, O(n log n))."""
    if len(seq) < 2:
        return 0
    size = max(seq) + 2
    tree = [0] * size
    count = 0
    for seen, x in enumerate(seq):
        j, not_greater = x + 1, 0
        while j > 0:
            not_greater += tree[j]
            j -= j & -j
        count += seen - not_greater
        j = x + 1
        while j < size:
            tree[j] += 1
            j += j & -j
    return count


# ------------------------------------------------------------------------- coordinates
def _assign_rows(columns: list[list[int]], up: dict, down: dict, is_dummy: dict, extra: dict) -> dict[int, float]:
    """Row (in units of the row gap) for every node, order kept, gaps at least 1 (plus a tall block's ``extra``)."""
    rows: dict[int, float] = {}
    for col in columns:
        for k, v in enumerate(col):
            rows[v] = k - (len(col) - 1) / 2

    def weight(a: int, b: int) -> float:
        if is_dummy[a] and is_dummy[b]:
            return _W_DUMMY
        return _W_MIXED if is_dummy[a] or is_dummy[b] else _W_REAL

    w_up = {v: [(u, weight(v, u)) for u in up[v]] for v in rows}
    w_down = {v: [(u, weight(v, u)) for u in down[v]] for v in rows}
    w_both = {v: w_up[v] + w_down[v] for v in rows}

    def settle(col: list[int], side: dict[int, list[tuple[int, float]]]) -> None:
        targets, weights = [], []
        for v in col:
            total = pull = 0.0
            for u, w in side[v]:
                total += w
                pull += w * rows[u]
            if total:
                targets.append(pull / total)
                weights.append(total)
            else:  # nothing on that side: stay put, but give way easily
                targets.append(rows[v])
                weights.append(1e-3)
        gaps = [1.0 + extra.get(v, 0.0) for v in col[:-1]]
        for v, r in zip(col, _isotonic_spaced(targets, weights, gaps)):
            # NOTE: snapping to half rows keeps the gaps (rounding is monotone) and lets
            # chains line up exactly instead of drifting by fractions.
            rows[v] = math.floor(2 * r + 0.5) / 2

    for sweep in range(_COORD_SWEEPS):
        if sweep % 2 == 0:
            for col in columns[1:]:
                settle(col, w_up)
        else:
            for col in reversed(columns[:-1]):
                settle(col, w_down)
    for col in columns:
        settle(col, w_both)
    return rows


def _isotonic_spaced(targets: list[float], weights: list[float], gaps: list[float] | None = None) -> list[float]:
    """Rows closest (weighted least squares) to ``targets`` with ``row[k+1] - row[k] >= gaps[k]`` (1 each by default).

    Substituting ``z_k = row_k - (gaps[0] + ... + gaps[k-1])`` turns the gap constraint into ``z``
    non-decreasing, which pool-adjacent-violators solves exactly.
    """
    offsets = [0.0]
    for k in range(len(targets) - 1):
        offsets.append(offsets[-1] + (gaps[k] if gaps is not None else 1.0))
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for k, (t, w) in enumerate(zip(targets, weights)):
        blocks.append([w * (t - offsets[k]), w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, wt, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += wt
            blocks[-1][2] += c
    out: list[float] = []
    for s, wt, c in blocks:
        z = s / wt
        for _ in range(int(c)):
            out.append(z + offsets[len(out)])
    return out

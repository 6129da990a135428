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

Separate pieces of the graph are laid out on their own and stacked. The result is
deterministic: ties follow the order in which the blocks were added.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from engine.graphrules import topological_walk

if TYPE_CHECKING:  # pragma: no cover
    from engine.graph import Graph

__all__ = ["DEFAULT_SPACING", "apply_layout", "auto_layout"]

#: Distance between neighbouring blocks (x, y) in scene units; blocks are about 180×70.
DEFAULT_SPACING = (260.0, 120.0)

_ORDER_SWEEPS = 8
_COORD_SWEEPS = 8
#: Gansner's wire weights: real–real, real–dummy, dummy–dummy. Heavier keeps long wires straight.
_W_REAL, _W_MIXED, _W_DUMMY = 1.0, 2.0, 8.0


def auto_layout(
    graph: "Graph",
    direction: str = "lr",
    spacing: tuple[float, float] = DEFAULT_SPACING,
    origin: tuple[float, float] = (0.0, 0.0),
) -> dict[str, tuple[float, float]]:
    """Positions (top-left corners) for every block of ``graph``.

    Args:
        graph: the document to arrange (it is not changed).
        direction: ``"lr"`` puts the inputs on the left and wires run rightwards;
            ``"tb"`` puts them at the top and wires run downwards.
        spacing: scene distance between neighbouring blocks along x and along y.
        origin: position of the top-left-most block.

    Returns:
        ``{node_id: (x, y)}`` for every block, in the graph's insertion order.
    """
    if direction not in ("lr", "tb"):
        raise ValueError(f"direction must be 'lr' or 'tb', not {direction!r}")
    sx, sy = float(spacing[0]), float(spacing[1])
    if sx <= 0 or sy <= 0:
        raise ValueError("spacing must be positive")
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

    placed: dict[int, tuple[int, float]] = {}
    offset = 0.0
    for comp, local_edges in zip(comps, comp_edges):
        local, span = _layout_component(comp, local_edges, heads)
        for node, (layer, row) in local.items():
            placed[node] = (layer, offset + row)
        offset += span + 1.0

    out: dict[str, tuple[float, float]] = {}
    ox, oy = origin
    for i, nid in enumerate(ids):
        layer, row = placed[i]
        along, across = layer * layer_gap, round(row * row_gap)
        x, y = (along, across) if direction == "lr" else (across, along)
        out[nid] = (float(ox + x), float(oy + y))
    return out


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


def _layout_component(
    nodes: list[int], edges: list[tuple[int, int]], heads: list[bool]
) -> tuple[dict[int, tuple[int, float]], float]:
    """(layer, row) per node of one component, and the component's height in rows."""
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
    rows = _assign_rows(columns, up, down, is_dummy)
    low = min(rows[v] for v in rows)
    span = max(rows[v] for v in rows) - low
    return {v: (lay[v], rows[v] - low) for v in nodes}, span


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
def _assign_rows(columns: list[list[int]], up: dict, down: dict, is_dummy: dict) -> dict[int, float]:
    """Row (in units of the row gap) for every node, order kept, gaps at least 1."""
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
        for v, r in zip(col, _isotonic_spaced(targets, weights)):
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


def _isotonic_spaced(targets: list[float], weights: list[float]) -> list[float]:
    """Rows closest (weighted least squares) to ``targets`` with ``row[k+1] - row[k] >= 1``.

    Substituting ``z_k = row_k - k`` turns the gap constraint into ``z`` non-decreasing,
    which pool-adjacent-violators solves exactly.
    """
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for k, (t, w) in enumerate(zip(targets, weights)):
        blocks.append([w * (t - k), w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, wt, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += wt
            blocks[-1][2] += c
    out: list[float] = []
    for s, wt, c in blocks:
        z = s / wt
        for _ in range(int(c)):
            out.append(z + len(out))
    return out

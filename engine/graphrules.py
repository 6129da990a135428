"""The rules of a network's wiring, written once: the order it runs in, loops, and which wires may exist.

Plain functions over block ids and wires, so that everything holding a graph in its own form
(the :class:`~engine.graph.Graph` document, the project loader, the analysis, the layout, the
clipboard) walks it and checks it the same way. Each caller words the refusals itself: a
:class:`WireFault` says what is wrong, not how to say it to the person who did it.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

__all__ = [
    "INPUT_PORT",
    "LOOP",
    "NO_INPUT",
    "NO_OUTPUT",
    "OUTPUT_PORT",
    "PORT_TAKEN",
    "SELF_WIRE",
    "Walk",
    "WireFault",
    "check_wires",
    "find_cycle",
    "reaches",
    "topological_walk",
    "wire_fault",
]

T = TypeVar("T", bound=Hashable)

Wire = tuple[Any, int, Any, int]  # (source id, source port, target id, target port)

# What a WireFault can be.
SELF_WIRE = "self_wire"  # a block wired into itself
NO_OUTPUT = "no_output"  # the source has no output port at all
OUTPUT_PORT = "output_port"  # the source has no output port of that number
NO_INPUT = "no_input"  # the target takes no input at all
INPUT_PORT = "input_port"  # the target has no input port of that number
PORT_TAKEN = "port_taken"  # another wire already feeds that input port
LOOP = "loop"  # the wire would close a loop


@dataclass(frozen=True)
class Walk(Generic[T]):
    """The result of :func:`topological_walk`.

    ``order`` holds the blocks each of whose feeders comes before it; ``blocked`` the blocks
    left out because they are on a loop or fed, directly or not, from one (in the order given).
    """

    order: list[T]
    blocked: list[T]


def topological_walk(
    nodes: Sequence[T],
    edges: Iterable[tuple[T, T]],
    *,
    earliest_first: bool = False,
    depth_first: bool = False,
    break_loops: bool = False,
) -> Walk[T]:
    """Kahn's walk: each block once, after every block that feeds it.

    Args:
        nodes: every block, in the order that breaks ties (the order they were added).
        edges: (source, target) pairs; two wires between the same blocks count twice.
        earliest_first: of the blocks ready to go next, take the one earliest in ``nodes``;
            otherwise take them in the order they became ready (breadth first, the order
            the analysis lists blocks in).
        depth_first: of the blocks ready, take the one that became ready last, a block's
            first-wired successor before its others: at a fork each branch runs as far as it
            can (up to the merge) before the next starts, as a person writes ``forward``.
        break_loops: when only blocks on a loop are left, take the earliest of them as if its
            feeders were done, so every block gets a place (drawing); otherwise they are
            left out, in ``blocked``.
    """
    index = {n: k for k, n in enumerate(nodes)}
    waiting = [0] * len(nodes)  # feeders not yet placed
    feeds: list[list[int]] = [[] for _ in nodes]
    for a, b in edges:
        waiting[index[b]] += 1
        feeds[index[a]].append(index[b])
    ready = [k for k, w in enumerate(waiting) if w == 0]
    if earliest_first:
        heapq.heapify(ready)
        push, pop = (lambda k: heapq.heappush(ready, k)), (lambda: heapq.heappop(ready))
    elif depth_first:
        # NOTE: a stack; a block's successors are pushed last-wired first, so the first-wired pops first.
        ready.reverse()
        push, pop = ready.append, ready.pop
        feeds = [list(reversed(f)) for f in feeds]
    else:
        queue = deque(ready)
        push, pop = queue.append, queue.popleft
    placed = [False] * len(nodes)
    order: list[T] = []
    while len(order) < len(nodes):
        try:
            k = pop()
        except IndexError:  # nothing is ready: only loops, and what they feed, are left
            if not break_loops:
                break
            k = placed.index(False)
        if placed[k]:
            continue  # a block taken to break a loop, becoming ready later
        placed[k] = True
        order.append(nodes[k])
        for m in feeds[k]:
            waiting[m] -= 1
            if waiting[m] == 0 and not placed[m]:
                push(m)
    return Walk(order, [n for k, n in enumerate(nodes) if not placed[k]])


def find_cycle(nodes: Sequence[T], edges: Sequence[tuple[T, T]]) -> list[T]:
    """The blocks of one loop, in wire order with the first repeated at the end; [] if there is none."""
    left = set(topological_walk(nodes, edges).blocked)
    if not left:
        return []
    feeders: dict[T, list[T]] = {n: [] for n in left}
    for a, b in edges:
        if b in left:
            feeders[b].append(a)
    # NOTE: every blocked block has a feeder that is blocked too, so walking feeders loops.
    n, seen = next(n for n in nodes if n in left), {}
    while n not in seen:
        seen[n] = len(seen)
        n = next(p for p in feeders[n] if p in left)
    loop = list(seen)[seen[n] :]
    loop.reverse()
    return loop + [loop[0]]


def reaches(start: T, goal: T, successors: Callable[[T], Iterable[T]]) -> bool:
    """Whether following wires forward from ``start`` arrives at ``goal``."""
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        if n in seen:
            continue
        seen.add(n)
        stack.extend(successors(n))
    return False


@dataclass(frozen=True)
class WireFault:
    """Why a wire may not exist: ``kind`` is one of the constants above.

    ``wire`` is the wire's index when a list was checked (:func:`check_wires`); ``other`` is
    what already feeds the port (``PORT_TAKEN``: whatever the caller passed as ``feeder``)
    or the loop's blocks, first repeated at the end (``LOOP`` from :func:`check_wires`).
    """

    kind: str
    wire: int | None = None
    other: Any = None


def wire_fault(
    wire: Wire,
    *,
    outputs: int,
    inputs: int,
    feeder: Any = None,
    closes_loop: Callable[[], bool] | None = None,
) -> WireFault | None:
    """What is wrong with ``wire`` (source, port, target, port), or None when it may exist.

    Args:
        outputs: how many output ports the source has; ``inputs``, input ports the target has.
        feeder: what already feeds the target port (None: nothing).
        closes_loop: asked last, when all else is right: whether the target already reaches
            the source (None: loops are checked by the caller, as :func:`check_wires` does).
    """
    src, src_port, dst, dst_port = wire
    if src == dst:
        return WireFault(SELF_WIRE)
    if not outputs:
        return WireFault(NO_OUTPUT)
    if not 0 <= src_port < outputs:
        return WireFault(OUTPUT_PORT)
    if not inputs:
        return WireFault(NO_INPUT)
    if not 0 <= dst_port < inputs:
        return WireFault(INPUT_PORT)
    if feeder is not None:
        return WireFault(PORT_TAKEN, other=feeder)
    if closes_loop is not None and closes_loop():
        return WireFault(LOOP)
    return None


def check_wires(
    nodes: Sequence[T], wires: Sequence[Wire], ports: Callable[[T], tuple[int, int]]
) -> WireFault | None:
    """The first fault of a set of wires added together (a file being read, a paste), or None.

    ``ports(block)`` gives (output ports, input ports). Each wire is checked in turn, a
    port's second wire naming the first as ``other``; then the whole set for a loop.
    """
    fed: dict[tuple[T, int], int] = {}
    for i, wire in enumerate(wires):
        src, _, dst, dst_port = wire
        fault = wire_fault(wire, outputs=ports(src)[0], inputs=ports(dst)[1], feeder=fed.get((dst, dst_port)))
        if fault is not None:
            return replace(fault, wire=i)
        fed[dst, dst_port] = i
    loop = find_cycle(nodes, [(w[0], w[2]) for w in wires])
    return WireFault(LOOP, other=loop) if loop else None

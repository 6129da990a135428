"""What every probe shares: the error type, a block-by-block runner of a compiled net, and lookups.

:class:`Tap` evaluates a compiled network one block at a time, in the graph's order, calling the
same submodules and the same forward expressions the generated ``forward`` uses. A probe can so
read any block's output, including blocks without a module of their own (Add, Concatenate,
Reshape), stop early once the blocks it needs are computed, and make one block's output an
autograd leaf (Grad-CAM) without registering a single hook on anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from engine.analysis import Analysis
from engine.codegen import HELPERS, GeneratedModel
from engine.errors import ProbeError
from engine.graph import Graph
from engine.plan import compile_plan
from engine.tasks import heads_with_view

__all__ = ["Head", "ProbeError", "Tap", "class_head", "find_heads", "resolve_block"]


def _helper_namespace() -> dict:
    ns: dict = {"torch": torch, "nn": nn}
    for source in HELPERS.values():
        exec(source, ns)  # noqa: S102 - the code generator's own fixed helper source
    return ns


_NAMESPACE = _helper_namespace()


class Tap:
    """Run a compiled model block by block (see the module docstring).

    Args:
        graph: the graph the model was compiled from.
        code: the compiled model's :class:`GeneratedModel` (its ``attrs`` name each block's module).
        analysis: the graph's analysis, when the caller has it already.
    """

    def __init__(self, graph: Graph, code: GeneratedModel, analysis: Analysis | None = None) -> None:
        # NOTE: the compiled plan's blocks, in forward's order; with units, the flattened graph's
        plan = code.plan if code.plan is not None else compile_plan(graph, analysis=analysis)
        self.graph = plan.flat
        self.code = code
        self.analysis = plan.analysis
        self.order = [b.node_id for b in plan.blocks]
        self.inputs: dict[str, list[str]] = {b.node_id: list(b.inputs) for b in plan.blocks}
        self._paths = {b.node_id: b.path for b in plan.blocks}
        self._exprs: dict[str, object] = {}
        for b in plan.blocks:
            if b.role in ("input", "head"):
                continue
            if b.expr is None and b.path is None:
                raise ProbeError(f"'{self.graph.nodes[b.node_id].name}' has neither a module nor a forward expression")
            if b.expr is not None:
                self._exprs[b.node_id] = compile(b.expr, f"<probe {self.graph.nodes[b.node_id].name}>", "eval")

    # ------------------------------------------------------------------ queries
    def shape(self, node_id: str) -> tuple[int, ...] | None:
        """A block's output shape (no batch dimension)."""
        return self.analysis.nodes[node_id].out_shape

    def name(self, node_id: str) -> str:
        return self.graph.nodes[node_id].name

    def ancestors(self, targets: Iterable[str]) -> set[str]:
        """``targets`` and every block they depend on."""
        seen: set[str] = set()
        stack = list(targets)
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            stack.extend(self.inputs.get(nid, ()))
        return seen

    # ------------------------------------------------------------------ running
    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        want: Iterable[str],
        *,
        leaf: str | None = None,
        also: Iterable[str] = (),
        visit: Callable[[str, torch.Tensor], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """The outputs of the blocks in ``want`` for the batch ``x``.

        Only the blocks ``want`` and ``also`` depend on are computed, and a value is dropped as
        soon as nothing more reads it (the blocks in ``also`` are computed, shown to ``visit``
        and dropped). With ``leaf``, that block's output is detached and made to require grad,
        so gradients of anything computed after it can be taken with respect to it; the leaf
        is returned under its id too. ``visit(node_id, value)`` sees every computed block
        except Input and output heads.
        """
        want = set(want)
        if leaf is not None:
            want.add(leaf)
        also = set(also)
        for nid in want | also:
            if nid not in self.inputs:
                raise ProbeError(f"there is no block with id {nid!r} in this network")
        needed = self.ancestors(want | also)
        readers: dict[str, int] = dict.fromkeys(needed, 0)
        for nid in needed:
            for src in self.inputs[nid]:
                readers[src] += 1
        nodes = self.graph.nodes
        values: dict[str, torch.Tensor] = {}
        out: dict[str, torch.Tensor] = {}
        for nid in self.order:
            if nid not in needed:
                continue
            role = nodes[nid].spec.role
            args = [values[s] for s in self.inputs[nid]]
            if role == "input":
                value = x
            elif role == "head":
                value = args[0]
            elif nid in self._exprs:
                local = {f"_a{i}": a for i, a in enumerate(args)}
                local["self"] = model
                value = eval(self._exprs[nid], _NAMESPACE, local)  # noqa: S307 - declared layer source
            else:
                value = model.get_submodule(self._paths[nid])(*args)
            if nid == leaf:
                value = value.detach().requires_grad_(True)
            if visit is not None and role not in ("input", "head"):
                visit(nid, value)
            for s in self.inputs[nid]:
                readers[s] -= 1
                if readers[s] == 0 and s not in want:
                    del values[s]
            values[nid] = value
            if nid in want:
                out[nid] = value
        return out


# ---------------------------------------------------------------------- heads and blocks
@dataclass(frozen=True)
class Head:
    """One output of the model: its position in the returned tuple, block id and type."""

    index: int
    node_id: str
    type: str
    source: str  # the block that feeds the head


def find_heads(graph: Graph, code: GeneratedModel) -> list[Head]:
    """The model's output heads in the order the model returns them."""
    heads = []
    for i, nid in enumerate(code.output_ids):
        node = graph.nodes[nid]
        if node.spec.role == "head":
            src = graph.inputs_of(nid)[0]
            heads.append(Head(i, nid, node.type, src.src if src is not None else nid))
    return heads


def class_head(graph: Graph, code: GeneratedModel, what: str = "this view") -> Head:
    """The first class output (else a binary output: the heads with class maps, in the palette's order).

    ProbeError when there is none.
    """
    heads = find_heads(graph, code)
    for kind in heads_with_view("class_maps"):
        for h in heads:
            if h.type == kind:
                return h
    raise ProbeError(f"{what} needs a Class output (or Binary output): this network has none")


def head_output(outputs, head: Head) -> torch.Tensor:
    """The tensor of ``head`` among a model's outputs (one tensor or a tuple)."""
    return outputs[head.index] if isinstance(outputs, (tuple, list)) else outputs


def resolve_block(graph: Graph, block: str) -> str:
    """A block id from an id or a display name; ProbeError naming the blocks when neither fits."""
    if block in graph.nodes:
        return block
    for nid, node in graph.nodes.items():
        if node.name == block:
            return nid
    names = ", ".join(n.name for n in graph.nodes.values())
    raise ProbeError(f"there is no block called {block!r} (blocks: {names})")

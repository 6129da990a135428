"""Compile a graph into a ``torch.nn.Module`` by executing its generated source.

The model that trains is built from the same source that :mod:`engine.export`
writes, so an exported file reproduces the in-app model exactly. The source is
registered with :mod:`linecache`, so a traceback from ``forward`` shows readable
lines.
"""

from __future__ import annotations

import hashlib
import linecache
from dataclasses import dataclass

from torch import nn

from engine.analysis import Analysis
from engine.codegen import GeneratedModel, generate
from engine.graph import Graph


@dataclass
class CompiledModel:
    """A freshly built module and the generated code it came from."""

    module: nn.Module
    code: GeneratedModel

    def submodule(self, node_id: str) -> nn.Module | None:
        """The torch module of a block, or None for blocks without one (merges, inputs, heads)."""
        attr = self.code.attrs.get(node_id)
        return self.module.get_submodule(attr) if attr else None


def load_class(code: GeneratedModel) -> type[nn.Module]:
    """Execute generated source and return its model class."""
    digest = hashlib.sha1(code.source.encode()).hexdigest()[:10]
    filename = f"<net-designer {code.class_name} {digest}>"
    linecache.cache[filename] = (len(code.source), None, code.source.splitlines(True), filename)
    namespace: dict = {"__name__": f"net_designer_generated_{digest}"}
    exec(compile(code.source, filename, "exec"), namespace)  # noqa: S102 - our own generated source
    return namespace[code.class_name]


def compile_graph(
    graph: Graph, class_name: str = "Net", analysis: Analysis | None = None, title: str = ""
) -> CompiledModel:
    """Build the module for a valid graph. Raises :class:`CompileError` when it has errors."""
    code = generate(graph, class_name, analysis, title)
    return CompiledModel(load_class(code)(), code)


def build_module(graph: Graph, class_name: str = "Net") -> nn.Module:
    """Shortcut: the module alone."""
    return compile_graph(graph, class_name).module

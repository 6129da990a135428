"""Exceptions the engine raises. Each message names what is wrong in plain words."""


class NetDesignerError(Exception):
    """Base of every error the engine raises on purpose."""


class GraphError(NetDesignerError, ValueError):
    """An edit to the graph document was refused."""


class ParamError(GraphError):
    """A parameter value is outside what its declaration allows."""


class ShapeError(NetDesignerError):
    """A layer cannot accept the shapes flowing into it."""


class CompileError(NetDesignerError):
    """The graph cannot be turned into a torch module (it has errors)."""


class ProjectError(NetDesignerError):
    """A project file is malformed; the message names the file, block and field."""


class ProbeError(NetDesignerError):
    """A probe cannot be computed for this network or input; the message says why."""

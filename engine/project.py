"""Project files: one JSON document with the graph and the data, training and probe settings.

The layout (version 2)::

    {"format": "net-designer-project", "version": 2, "name": "LeNet-5", "description": "...",
     "graph": {"nodes": [{"id": "n1", "type": "Input", "name": "input",
                          "params": {...}, "pos": [x, y]}],
               "edges": [{"from": ["n1", 0], "to": ["n2", 0]}]},
     "units": [{"name": "BasicBlock", "graph": {"nodes": [...], "edges": [...]},
                "inputs": [{"name": "in", "to": [["n2", 0], ["n6", 1]]}],
                "outputs": [{"name": "out", "from": ["n7", 0]}]}],
     "data": {...}, "training": {...}, "probes": {...}, "weights": null}

A unit block is ``{"type": "Unit", "params": {"unit": "BasicBlock"}, ...}``; ``units`` (left out when
empty) holds each definition a graph uses once, a unit used inside another before it. Version 1
had no units; it reads as version 2 unchanged.

Every param of a block is written (missing ones read as their declared default).
Loading validates everything and raises :class:`ProjectError` naming the file,
the block (name and id) and the field at fault. Unknown fields at the top level
and inside ``data``/``training``/``probes`` are kept and written back; unknown
fields inside the graph, a block or a wire are refused (they would change what
the network means). Older versions are migrated through :data:`MIGRATIONS`.
Saving goes through :func:`engine.fileio.atomic_write` (temporary file, sync, rename; links and
read-only files handled as the user means) and writes only what loading would accept.
Loading reads only a regular file of at most :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from engine import graphrules
from engine.config import (
    DataConfig,
    ProbeConfig,
    TrainingConfig,
    plain_copy,
    show_value,
)
from engine.errors import GraphError, ProjectError
from engine.fileio import atomic_write_bytes
from engine.graph import FLOWS, UNIT_TYPE, Edge, Graph, Node
from engine.layers import registry
from engine.layers.registry import Param
from engine.userfiles import FileTooLarge, NotRegularFile, read_regular_file

__all__ = [
    "FORMAT",
    "MIGRATIONS",
    "VERSION",
    "Project",
    "graph_from_dict",
    "graph_to_dict",
    "load_project",
    "project_from_dict",
    "project_to_dict",
    "save_project",
    "weights_path",
]

FORMAT = "net-designer-project"
VERSION = 2
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_NODES = 10_000
MAX_DEPTH = 100  # nesting levels; a real project needs about 6
MAX_DIGITS = 100  # an integer longer than this is garbage, not a size
MAX_POS = 1e7  # canvas coordinates beyond this are off any screen
MAX_ID_LENGTH = 100

_TOP_FIELDS = ("format", "version", "name", "description", "graph", "units", "data", "training", "probes", "weights")
_UNIT_FIELDS = ("name", "graph", "inputs", "outputs")
_GRAPH_FIELDS = ("nodes", "edges", "flow")
_NODE_FIELDS = ("id", "type", "name", "params", "pos")
_EDGE_FIELDS = ("from", "to")
_MISSING = object()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")

Wire = tuple[str, int, str, int]  # (source id, source port, target id, target port)


@dataclass(eq=False)
class Project:
    """Everything a project file holds. ``weights`` is relative to the project file."""

    name: str = "Untitled"
    description: str = ""
    graph: Graph = field(default_factory=Graph)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    weights: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- writing
def graph_to_dict(graph: Graph, node_ids: Iterable[str] | None = None) -> dict[str, Any]:
    """The graph as JSON-ready data; with ``node_ids``, only those blocks and the wires between them."""
    if node_ids is None:
        chosen = set(graph.nodes)
    else:
        chosen = set(node_ids)
        for nid in chosen:
            graph.node(nid)  # raises GraphError for an unknown id
    nodes = [_node_to_dict(n) for nid, n in graph.nodes.items() if nid in chosen]
    edges = [
        {"from": [e.src, e.src_port], "to": [e.dst, e.dst_port]}
        for e in graph.edges
        if e.src in chosen and e.dst in chosen
    ]
    out: dict[str, Any] = {"nodes": nodes, "edges": edges}
    if graph.flow != "lr":  # NOTE: left to right is the default; files drawn that way stay as they were
        out["flow"] = graph.flow
    return out


def _node_to_dict(node: Node) -> dict[str, Any]:
    # NOTE: a setting added later (Param.omit_default) is written only when it differs from its default
    omit = {p.name for p in node.spec.params if p.omit_default and node.params.get(p.name) == p.default}
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in node.params.items() if k not in omit}
    return {"id": node.id, "type": node.type, "name": node.name, "params": params, "pos": [node.pos[0], node.pos[1]]}


def project_to_dict(project: Project) -> dict[str, Any]:
    """The whole project as JSON-ready data, unknown top-level fields last."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "name": project.name,
        "description": project.description,
        "graph": graph_to_dict(project.graph),
        "units": units_to_list(project.graph),
        "data": project.data.to_dict(),
        "training": project.training.to_dict(),
        "probes": project.probes.to_dict(),
        "weights": project.weights,
    }
    if not out["units"]:
        del out["units"]
    out.update({k: plain_copy(v) for k, v in project.extra.items() if k not in out})
    return out


def units_to_list(graph: Graph) -> list[dict[str, Any]]:
    """Each unit definition ``graph`` holds, once, inner ones first, as JSON-ready data."""
    from engine.units import units_in_order

    return [
        {
            "name": u.name,
            "graph": {k: v for k, v in graph_to_dict(u.graph).items() if k != "flow"},
            "inputs": [{"name": p.name, "to": [list(end) for end in p.ends]} for p in u.inputs],
            "outputs": [{"name": p.name, "from": list(p.ends[0])} for p in u.outputs],
        }
        for u in units_in_order(graph)
    ]


def save_project(project: Project, path: str | Path) -> None:
    """Write ``project`` to ``path`` as JSON, atomically (see :func:`engine.fileio.atomic_write`).

    Only what :func:`load_project` would read back is written; anything else, and every
    failure to write, is a :class:`ProjectError` naming the file.
    """
    path = Path(path)
    name = path.name or str(path)
    doc = project_to_dict(project)
    _check_plain(doc, f"{name} was not saved", "", 0)
    try:
        data = (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise ProjectError(f"{name} was not saved: the project holds something JSON cannot: {exc}") from None
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ProjectError(f"{name} could not be saved: {exc.strerror or exc}") from exc


def weights_path(project: Project, project_path: str | Path) -> Path | None:
    """Where the project's weights file is, resolved against the project file's folder."""
    if not project.weights:
        return None
    return Path(project_path).parent / project.weights


# ---------------------------------------------------------------------- reading
def load_project(path: str | Path) -> Project:
    """Read and validate a project file. Every problem is a :class:`ProjectError`."""
    path = Path(path)
    src = path.name or str(path)
    try:
        raw = _read_file(path, src)
    except FileNotFoundError:
        raise ProjectError(f"{src} does not exist (looked for {path})") from None
    except OSError as exc:
        raise ProjectError(f"{src} could not be opened: {exc.strerror or exc}") from None
    except ValueError:  # NOTE: os functions raise it for a path with a NUL character
        raise ProjectError(f"{src!r} could not be opened: the path holds a NUL character") from None
    return project_from_dict(_parse(raw, src), src)


def _read_file(path: Path, src: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; anything else is refused before reading.

    NOTE: a named pipe would block ``open`` and ``read`` forever, a device could stream without
    end: :func:`engine.userfiles.read_regular_file` looks at the file's type before and after
    opening it, without blocking.
    """
    too_large = f"{src} is larger than {MAX_FILE_BYTES // 2**20} MB, too large for a project file"
    try:
        return read_regular_file(path, "a project file", MAX_FILE_BYTES)
    except NotRegularFile as exc:
        raise ProjectError(f"{src} is not a regular file (it is {exc.kind})") from None
    except FileTooLarge as exc:
        grew = exc.size is None  # NOTE: it grew past the limit while being read
        raise ProjectError(too_large if grew else f"{too_large} (weights belong in a separate file)") from None


def project_from_dict(d: Any, source: str = "<memory>") -> Project:
    """Validate plain data (as read from JSON) and build a :class:`Project` from it."""
    src = source
    _check_plain(d, src, "", 0)
    if not isinstance(d, dict):
        raise ProjectError(f"{src} is not a Net Designer project: it holds {show_value(d)}, not an object")
    d = _upgrade(d, src)
    name = _optional_text(d, "name", "Untitled", src)
    description = _optional_text(d, "description", "", src)
    if "graph" not in d:
        raise ProjectError(f"{src}: the required field 'graph' is missing")
    units = _read_units(d.get("units", []), src)
    graph = _read_graph(d["graph"], src, units)
    for definition in units.values():  # NOTE: kept even where no block uses it yet, as any field is
        graph.define_unit(definition)
    data = DataConfig.from_dict(d.get("data", {}), f"{src}: data")
    training = TrainingConfig.from_dict(d.get("training", {}), f"{src}: training")
    probes = ProbeConfig.from_dict(d.get("probes", {}), f"{src}: probes")
    if probes.layer is not None and probes.layer not in graph.nodes and probes.layer not in _flat_ids(graph):
        raise ProjectError(f"{src}: probes.layer names block {probes.layer!r}, which is not in the graph")
    weights = d.get("weights")
    if weights is not None and (not isinstance(weights, str) or not weights.strip() or "\x00" in weights):
        raise ProjectError(f"{src}: weights must be the path of a weights file or null, not {show_value(weights)}")
    extra = {k: plain_copy(v) for k, v in d.items() if k not in _TOP_FIELDS}
    return Project(name, description, graph, data, training, probes, weights, extra)


def _flat_ids(graph: Graph) -> set[str]:
    """Every block's id with the units opened (``unit/inner``): what the probes name blocks by."""
    from engine.units import flatten

    return set(flatten(graph).nodes) if graph.units else set(graph.nodes)


def graph_from_dict(d: Any, source: str = "<memory>") -> Graph:
    """Validate a graph object (as :func:`graph_to_dict` writes it) and build a :class:`Graph`."""
    _check_plain(d, source, "graph", 0)
    return _read_graph(d, source)


def _optional_text(d: dict, key: str, default: str, src: str) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        raise ProjectError(f"{src}: {key} must be text, not {show_value(value)}")
    return value


# ---------------------------------------------------------------------- JSON text
class _BadNumber:
    """Stands in for NaN, Infinity or an absurd number while parsing, so the field can be named."""

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 20 else text[:17] + "..."


def _parse_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _BadNumber(text)


def _parse_int(text: str) -> Any:
    return int(text) if len(text) <= MAX_DIGITS else _BadNumber(text)


def _parse(raw: bytes, src: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{src} is not a text file (the bytes at offset {exc.start} are not UTF-8)") from None
    if not text.strip():
        raise ProjectError(f"{src} is empty")

    def no_twins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ProjectError(f"{src}: the field {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        return json.loads(
            text, parse_constant=_BadNumber, parse_float=_parse_float, parse_int=_parse_int, object_pairs_hook=no_twins
        )
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{src} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ProjectError(f"{src} is nested too deeply to be a project file") from None


def _check_plain(value: Any, src: str, path: str, depth: int, block: str = "") -> None:
    """Refuse anything that is not finite, reasonably nested JSON data, naming where it is.

    ``block`` names the block (name and id) that ``value`` belongs to, if any.
    """
    where = path or "the document"
    if depth > MAX_DEPTH:
        raise ProjectError(f"{src}: {where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ProjectError(f"{src}: {where} has a field name that is not text: {show_value(key)}")
            if _SURROGATE.search(key):
                _refuse_surrogate(key, src, f"{path}[{json.dumps(key[:40])}]", block, " (a field name)")
            _check_plain(item, src, _join(path, key), depth + 1, block)
    elif isinstance(value, (list, tuple)):
        in_nodes = path == "graph.nodes"
        for i, item in enumerate(value):
            where_i = f"{path}[{i}]"
            _check_plain(item, src, where_i, depth + 1, _block_of(item, where_i) if in_nodes else block)
    elif isinstance(value, str):
        if _SURROGATE.search(value):
            _refuse_surrogate(value, src, where, block)
    elif isinstance(value, _BadNumber) or (isinstance(value, float) and not math.isfinite(value)):
        text = value.text if isinstance(value, _BadNumber) else show_value(value)
        raise ProjectError(f"{src}: {where} is {text}: a project file holds only finite, ordinary numbers")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**MAX_DIGITS:
        raise ProjectError(f"{src}: {where} is a number too large to mean anything")
    elif value is not None and not isinstance(value, (str, bool, int, float)):
        raise ProjectError(f"{src}: {where} holds {show_value(value)}, which is not JSON data")


def _refuse_surrogate(text: str, src: str, where: str, block: str, what: str = "") -> None:
    """Refuse text holding a lone surrogate (a ``\\udc80`` escape): UTF-8 cannot store it, so it could not be saved."""
    bad = _SURROGATE.search(text).group()
    raise ProjectError(
        f"{src}: {block}{where}{what} holds {_escaped(bad)}, half of a character pair (a lone surrogate), "
        "which UTF-8 text cannot store"
    )


def _block_of(raw: Any, where: str) -> str:
    """``"block 'conv1' (id 'n2'): "`` for a block's raw data, every character printable."""
    if not isinstance(raw, dict):
        return ""
    nid, name = raw.get("id"), raw.get("name")
    ident = repr(nid[:40]) if isinstance(nid, str) else f"{show_value(nid)}, {where}"
    if isinstance(name, str):
        return f"block '{_escaped(name[:40])}' (id {ident}): "
    return f"block (id {ident}): "


def _escaped(text: str) -> str:
    """``text`` with every lone surrogate written as ``\\udXXX``, so the message can be shown."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _join(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{show_value(key)}]"


# ---------------------------------------------------------------------- versions
def _from_v0(d: dict[str, Any], src: str) -> dict[str, Any]:
    """Version 0 wrote each edge as a list ``[src, src_port, dst, dst_port]``."""
    d = dict(d)
    graph = d.get("graph")
    if isinstance(graph, dict) and isinstance(graph.get("edges"), (list, tuple)):
        edges = []
        for i, e in enumerate(graph["edges"]):
            if not isinstance(e, (list, tuple)) or len(e) != 4:
                raise ProjectError(
                    f"{src}: graph.edges[{i}] must be a list [source id, source port, target id, target port] "
                    f"in a version 0 file, not {show_value(e)}"
                )
            edges.append({"from": [e[0], e[1]], "to": [e[2], e[3]]})
        d["graph"] = {**graph, "edges": edges}
    d["version"] = 1
    return d


def _from_v1(d: dict[str, Any], src: str) -> dict[str, Any]:
    """Version 1 had no units: the same document is a version 2 one without them."""
    if "units" in d:
        raise ProjectError(f"{src}: a version 1 file has no 'units' (units came with version 2)")
    return {**d, "version": 2}


#: ``MIGRATIONS[v]`` turns a version ``v`` document into a version ``v + 1`` one.
MIGRATIONS: dict[int, Callable[[dict[str, Any], str], dict[str, Any]]] = {0: _from_v0, 1: _from_v1}


def _upgrade(d: dict[str, Any], src: str) -> dict[str, Any]:
    """Check the format name and version, and migrate an older document to :data:`VERSION`."""
    fmt = d.get("format", _MISSING)
    if fmt is _MISSING:
        raise ProjectError(f"{src} is not a Net Designer project: it has no 'format' field")
    if fmt != FORMAT:
        raise ProjectError(f"{src} is not a Net Designer project: its format is {show_value(fmt)}, not {FORMAT!r}")
    version = d.get("version", _MISSING)
    if version is _MISSING:
        raise ProjectError(f"{src}: the required field 'version' is missing")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProjectError(f"{src}: version must be a whole number, not {show_value(version)}")
    if version > VERSION:
        raise ProjectError(
            f"{src} was made by a newer Net Designer (file version {version}; this one reads versions "
            f"up to {VERSION}): update Net Designer to open it"
        )
    if version != VERSION and version not in MIGRATIONS:
        raise ProjectError(f"{src}: version {version} is not a version Net Designer ever wrote")
    while version < VERSION:
        d = MIGRATIONS[version](d, src)
        version += 1
    return d


# ---------------------------------------------------------------------- the graph
def _read_units(raw: Any, src: str) -> dict[str, Any]:
    """The unit definitions of a file, by name; each may use only the ones before it."""
    from engine.units import UnitDef

    if not isinstance(raw, (list, tuple)):
        raise ProjectError(f"{src}: units must be a list of unit definitions, not {show_value(raw)}")
    units: dict[str, UnitDef] = {}
    for i, u in enumerate(raw):
        where = f"units[{i}]"
        if not isinstance(u, dict):
            raise ProjectError(f"{src}: {where} must be an object describing a unit, not {show_value(u)}")
        _refuse_unknown(u, _UNIT_FIELDS, src, where, "a unit has only name, graph, inputs and outputs")
        name = u.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 80 or _CONTROL.search(name):
            raise ProjectError(f"{src}: {where}.name must be a short line of text, not {show_value(name)}")
        if name in units:
            raise ProjectError(f"{src}: two units are called '{name}': each definition is stored once")
        where = f"unit '{name}' ({where})"
        for key in _UNIT_FIELDS:
            if key not in u:
                raise ProjectError(f"{src}: {where}: the required field '{key}' is missing")
        inner = _read_graph(u["graph"], src, units, f"{where}: graph")
        for n in inner.nodes.values():
            if n.spec.role in ("input", "head"):
                raise ProjectError(f"{src}: {where}: {_label(n)} is a {n.spec.title}, which stays outside a unit")
        if not len(inner):
            raise ProjectError(f"{src}: {where}: a unit needs at least one block")
        inputs = _read_ports(u["inputs"], src, f"{where}: inputs", inner, "to")
        outputs = _read_ports(u["outputs"], src, f"{where}: outputs", inner, "from")
        units[name] = UnitDef(name, inner, inputs, outputs)
    return units


def _read_ports(raw: Any, src: str, where: str, inner: Graph, key: str) -> tuple:
    """A unit's input ports (``key`` "to": the inner inputs each feeds) or output ports ("from": one inner output)."""
    from engine.units import UnitPort

    if not isinstance(raw, (list, tuple)):
        raise ProjectError(f"{src}: {where} must be a list of ports, not {show_value(raw)}")
    ports, fed = [], {(e.dst, e.dst_port) for e in inner.edges}
    for i, p in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(p, dict):
            raise ProjectError(f"{src}: {at} must be an object with 'name' and '{key}', not {show_value(p)}")
        _refuse_unknown(p, ("name", key), src, at, f"a port has only 'name' and '{key}'")
        name = p.get("name")
        if not isinstance(name, str) or not name.strip() or _CONTROL.search(name):
            raise ProjectError(f"{src}: {at}.name must be a short line of text, not {show_value(name)}")
        ends = p.get(key, _MISSING)
        if key == "from":
            ends = [ends]
        elif not isinstance(ends, (list, tuple)) or not ends:
            raise ProjectError(f"{src}: {at}.to must be a list of the [block id, port]s it feeds, not {show_value(ends)}")
        checked = []
        for end in ends:
            nid, port = _read_end(end, src, f"{at}.{key}", inner)
            node = inner.nodes[nid]
            count = len(node.input_ports() if key == "to" else node.output_ports())
            if not port < count:
                raise ProjectError(f"{src}: {at}.{key}: {_label(node)} has no port {port}")
            if key == "to":
                if (nid, port) in fed:
                    raise ProjectError(f"{src}: {at}.to: input {port} of {_label(node)} is fed twice")
                fed.add((nid, port))
            checked.append((nid, port))
        ports.append(UnitPort(name, tuple(checked)))
    return tuple(ports)


def _read_end(end: Any, src: str, where: str, graph: Graph) -> tuple[str, int]:
    ok = (isinstance(end, (list, tuple)) and len(end) == 2 and isinstance(end[0], str)
          and isinstance(end[1], int) and not isinstance(end[1], bool) and end[1] >= 0)
    if not ok:
        raise ProjectError(f"{src}: {where} must be [block id, port number from 0], not {_show_list(end)}")
    if end[0] not in graph.nodes:
        raise ProjectError(f"{src}: {where} names block {end[0]!r}, which is not in the unit")
    return end[0], end[1]


def _read_graph(g: Any, src: str, units: dict[str, Any] | None = None, at: str = "graph") -> Graph:
    if not isinstance(g, dict):
        raise ProjectError(f"{src}: {at} must be an object with 'nodes' and 'edges', not {show_value(g)}")
    _refuse_unknown(g, _GRAPH_FIELDS, src, at, "the graph has only 'nodes', 'edges' and 'flow'")
    nodes = g.get("nodes", _MISSING)
    if nodes is _MISSING:
        raise ProjectError(f"{src}: the required field {at}.nodes is missing")
    if not isinstance(nodes, (list, tuple)):
        raise ProjectError(f"{src}: {at}.nodes must be a list of blocks, not {show_value(nodes)}")
    if len(nodes) > MAX_NODES:
        raise ProjectError(f"{src}: {at}.nodes has {len(nodes)} blocks; Net Designer opens at most {MAX_NODES}")
    edges = g.get("edges", [])
    if not isinstance(edges, (list, tuple)):
        raise ProjectError(f"{src}: {at}.edges must be a list of wires, not {show_value(edges)}")
    graph = Graph()
    named: dict[str, str] = {}
    for i, raw in enumerate(nodes):
        node = _read_node(raw, src, f"{at}.nodes[{i}]", graph, named, units or {})
        named[node.name] = node.id
    wires = [_read_edge(raw, src, f"{at}.edges[{i}]", graph) for i, raw in enumerate(edges)]
    _check_wires(wires, src, graph, at)
    _install_wires(graph, wires)
    flow = g.get("flow", "lr")
    if flow not in FLOWS:
        choices = " or ".join(f"'{k}' ({v})" for k, v in FLOWS.items())
        raise ProjectError(f"{src}: graph.flow must be {choices}, not {show_value(flow)}")
    graph.set_flow(flow)
    return graph


def _install_wires(graph: Graph, wires: list[Wire]) -> None:
    """Put the checked wires, in file order, into the graph (one pass, no events)."""
    graph.install_edges([Edge(*w) for w in wires])


def _label(node: Node) -> str:
    return f"block '{node.name}' (id {node.id!r})"


def _refuse_unknown(d: dict, allowed: tuple[str, ...], src: str, where: str, hint: str) -> None:
    for key in d:
        if key not in allowed:
            raise ProjectError(f"{src}: {where}: unknown field {show_value(key)} ({hint})")


def _read_node(raw: Any, src: str, where: str, graph: Graph, named: dict[str, str], units: dict[str, Any]) -> Node:
    """Read one block into ``graph``; ``named`` maps the names taken so far to their ids."""
    if not isinstance(raw, dict):
        raise ProjectError(f"{src}: {where} must be an object describing a block, not {show_value(raw)}")
    nid = raw.get("id", _MISSING)
    if nid is _MISSING:
        raise ProjectError(f"{src}: {where} has no 'id' field (every block needs one)")
    if not isinstance(nid, str) or not nid.strip() or len(nid) > MAX_ID_LENGTH or _CONTROL.search(nid):
        raise ProjectError(f"{src}: {where}.id must be a short piece of text such as \"n1\", not {show_value(nid)}")
    name = raw.get("name")
    label = f"block '{name}' (id {nid!r})" if isinstance(name, str) else f"block {nid!r} ({where})"
    if nid in graph.nodes:
        raise ProjectError(f"{src}: {label}: another block ('{graph.nodes[nid].name}') already has the id {nid!r}")
    _refuse_unknown(raw, _NODE_FIELDS, src, label, "a block has only id, type, name, params and pos")
    for key in ("type", "name"):
        if key not in raw:
            raise ProjectError(f"{src}: {label}: the required field '{key}' is missing")
    type_id = raw["type"]
    if not isinstance(type_id, str):
        raise ProjectError(f"{src}: {label}: type must be the name of a layer type, not {show_value(type_id)}")
    try:
        spec = _unit_for(raw, units, graph).spec if type_id == UNIT_TYPE else registry.get(type_id)
    except GraphError as exc:
        raise ProjectError(f"{src}: {label}: {exc}") from None
    if not isinstance(name, str):
        raise ProjectError(f"{src}: {label}: name must be text, not {show_value(name)}")
    if name.strip() in named:
        raise ProjectError(
            f"{src}: two blocks are called '{name.strip()}' (ids {named[name.strip()]!r} and {nid!r}): "
            "each block needs its own name"
        )
    params = _read_params(raw.get("params", {}), spec, src, label)
    pos = _read_pos(raw.get("pos", (0.0, 0.0)), src, label)
    try:
        return graph.add_node(type_id, params, name=name, pos=pos, node_id=nid)
    except GraphError as exc:
        raise ProjectError(f"{src}: {label}: {exc}") from None


def _unit_for(raw: dict, units: dict[str, Any], graph: Graph):
    """The definition a unit block names (``params.unit``), made known to ``graph``; GraphError if none."""
    params = raw.get("params")
    name = params.get("unit") if isinstance(params, dict) else None
    if not isinstance(name, str) or name not in units:
        raise GraphError(f"a unit block's params.unit must name a unit defined before it, not {show_value(name)}")
    graph.define_unit(units[name])
    return units[name]


def _read_params(raw: Any, spec: registry.LayerSpec, src: str, label: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ProjectError(f"{src}: {label}: params must be an object of parameter values, not {show_value(raw)}")
    known = [p.name for p in spec.params]
    out = {}
    for key, value in raw.items():
        if key not in known:
            have = ", ".join(known) if known else "none"
            raise ProjectError(f"{src}: {label}: {spec.title} has no parameter {key!r} (it has: {have})")
        param = spec.param(key)
        try:
            out[key] = param.validate(_strict(param, value))
        except (ValueError, TypeError, OverflowError) as exc:  # ParamError is a ValueError
            raise ProjectError(f"{src}: {label}: {exc}") from None
    return out


def _strict(param: Param, value: Any) -> Any:
    """Refuse what Param.validate would coerce from text: a file must say 16, not "16"."""
    if param.kind == "int" and isinstance(value, str):
        raise ValueError(f"'{param.name}' must be a whole number, not {show_value(value)}")
    if param.kind == "shape" and (
        not isinstance(value, (list, tuple)) or any(isinstance(v, str) for v in value)
    ):
        raise ValueError(f"'{param.name}' must be a list of whole numbers such as [16, 4, 4], not {show_value(value)}")
    return value


def _read_pos(raw: Any, src: str, label: str) -> tuple[float, float]:
    ok = (
        isinstance(raw, (list, tuple))
        and len(raw) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= MAX_POS for v in raw)
    )
    if not ok:
        raise ProjectError(
            f"{src}: {label}: pos must be two numbers [x, y] within ±{MAX_POS:g}, not {_show_list(raw)}"
        )
    return (float(raw[0]), float(raw[1]))


def _show_list(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) <= 4:
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return show_value(value)


def _read_edge(raw: Any, src: str, where: str, graph: Graph) -> Wire:
    shape = '{"from": [block id, port], "to": [block id, port]}'
    if not isinstance(raw, dict):
        raise ProjectError(f"{src}: {where} must be an object {shape}, not {show_value(raw)}")
    _refuse_unknown(raw, _EDGE_FIELDS, src, where, "a wire has only 'from' and 'to'")
    ends = []
    for key in _EDGE_FIELDS:
        if key not in raw:
            raise ProjectError(f"{src}: {where}: the required field '{key}' is missing")
        end = raw[key]
        ok = (
            isinstance(end, (list, tuple))
            and len(end) == 2
            and isinstance(end[0], str)
            and isinstance(end[1], int)
            and not isinstance(end[1], bool)
            and end[1] >= 0
        )
        if not ok:
            raise ProjectError(
                f"{src}: {where}.{key} must be [block id, port number from 0], not {_show_list(end)}"
            )
        if end[0] not in graph.nodes:
            raise ProjectError(f"{src}: {where}.{key} names block {end[0]!r}, which is not in the graph")
        ends.append((end[0], end[1]))
    (a, a_port), (b, b_port) = ends
    return (a, a_port, b, b_port)


def _check_wires(wires: list[Wire], src: str, graph: Graph, at: str = "graph") -> None:
    """Everything Graph.connect would refuse, in one pass, with the wire's place in the file."""
    nodes = graph.nodes
    fault = graphrules.check_wires(
        list(nodes), wires, lambda nid: (len(nodes[nid].output_ports()), len(nodes[nid].input_ports()))
    )
    if fault is None:
        return
    if fault.kind == graphrules.LOOP:
        path = " → ".join(f"'{nodes[n].name}'" for n in fault.other)
        raise ProjectError(f"{src}: the wires form a cycle ({path}): a network must flow one way")
    where = f"{at}.edges[{fault.wire}]"
    a, a_port, b, b_port = wires[fault.wire]
    if fault.kind == graphrules.SELF_WIRE:
        raise ProjectError(f"{src}: {where} wires {_label(nodes[a])} into itself")
    if fault.kind in (graphrules.NO_OUTPUT, graphrules.OUTPUT_PORT):
        outs = nodes[a].output_ports()
        has = "has no output" if not outs else f"has {len(outs)} output port(s), numbered from 0"
        raise ProjectError(f"{src}: {where}.from: {_label(nodes[a])} {has}, so port {a_port} does not exist")
    if fault.kind in (graphrules.NO_INPUT, graphrules.INPUT_PORT):
        ins = nodes[b].input_ports()
        has = "takes no input" if not ins else f"has {len(ins)} input port(s), numbered from 0"
        raise ProjectError(f"{src}: {where}.to: {_label(nodes[b])} {has}, so port {b_port} does not exist")
    raise ProjectError(
        f"{src}: {where} feeds input port {b_port} of {_label(nodes[b])}, which {at}.edges"
        f"[{fault.other}] already feeds: a port takes one wire (use Add or Concatenate to merge)"
    )

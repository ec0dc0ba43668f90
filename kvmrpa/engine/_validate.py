"""Reading and validating flow documents; every problem reported together.

:func:`read_document` / :func:`parse_document` turn bytes into a JSON object, raising
:class:`FlowFormatError` for what makes the file unreadable (not UTF-8, with the byte
offset; JSON syntax, with line and column; a newer ``schema_version``). ``NaN``,
``Infinity`` and numbers out of range are read as markers and reported by node and
field before anything else (:func:`number_problems`).
:func:`document_fields` (behind ``Flow.from_dict``) checks a document against the shipped JSON Schema, then node
by node (unknown types, duplicate ids, unknown parameters, wrong types and values via
``param``, missing required parameters, cross-field checks) and as a graph (dangling
edges, branch labels a node cannot produce, cycles named, size over
``settings.engine.max_nodes``), and raises one :class:`FlowValidationError` listing
every :class:`~kvmrpa.Problem` (node id + field + what is wrong). Documents in the
original system's format are detected and imported first (:mod:`kvmrpa.legacy`).
"""

from __future__ import annotations

import functools
import graphlib
import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import param

from .._errors import FlowFormatError, FlowValidationError, Problem
from .._limits import loads_strict, number_problem
from .._settings import get_settings
from ..nodes import COMMON_PARAMS, Node, get_node_class
from ._model import SCHEMA_VERSION, Edge, FlowNode

__all__ = [
    "MAX_REPORTED",
    "document_fields",
    "flow_problems",
    "flow_schema",
    "parse_document",
    "read_document",
]

#: Problems listed before the rest is summarised (a 10,000-node mess stays readable).
MAX_REPORTED = 500


@functools.cache
def flow_schema() -> dict[str, Any]:
    """The JSON Schema of the native flow format (package data)."""
    text = resources.files("kvmrpa.engine").joinpath("flow.schema.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(flow_schema())


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and parse a flow file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FlowFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_document(data, origin=str(path))


def parse_document(data: str | bytes, *, origin: str = "<string>") -> dict[str, Any]:
    """Decode (UTF-8) and parse JSON, with positions in every error."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise FlowFormatError(
                f"{origin}: not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                f"(line {line})") from None
    else:
        text = data
    try:
        doc = loads_strict(text)
    except json.JSONDecodeError as exc:
        raise FlowFormatError(
            f"{origin}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise FlowFormatError(f"{origin}: JSON nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        raise FlowFormatError(f"{origin}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FlowFormatError(
            f"{origin}: a flow file holds a JSON object, not {type(doc).__name__}")
    return doc


# -- node parameters ---------------------------------------------------------------------
def _coerce(p: param.Parameter, value: Any) -> Any:
    """JSON → parameter type where JSON cannot say it (lists for tuples)."""
    if isinstance(p, param.Tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(p, param.Number) and not isinstance(p, param.Integer) \
            and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def build_node(node_id: str, cls: type[Node], params: Mapping[str, Any],
               problems: list[Problem]) -> Node:
    """A node of ``cls`` with ``params`` set one by one; bad ones become problems."""
    node = cls()
    known = set(cls.param_names())
    for name, value in params.items():
        if name not in known:
            own = [n for n in cls.param_names() if n not in COMMON_PARAMS]
            problems.append(Problem(node_id, f"params.{name}",
                                    f"unknown parameter of {cls.type_name!r} "
                                    f"(known: {', '.join(own)})"))
            continue
        try:
            setattr(node, name, _coerce(cls.param[name], value))
        except (ValueError, TypeError) as exc:
            msg = str(exc).replace(f"{cls.__name__}.", "")
            problems.append(Problem(node_id, f"params.{name}", f"invalid value {value!r}: {msg}"))
    return node


def _node_checks(node_id: str, node: Node, problems: list[Problem]) -> None:
    for name in node.param_names():
        for sub, value in _numbers(getattr(node, name), f"params.{name}"):
            if (why := number_problem(value)) is not None:
                problems.append(Problem(node_id, sub, why))
                return  # a node with an unusable number is not checked further
    try:
        found = node.check()
    except Exception as exc:  # a buggy check must not crash validation
        problems.append(Problem(node_id, None, f"check failed: {type(exc).__name__}: {exc}"))
        return
    for fld, message in found:
        problems.append(Problem(node_id, f"params.{fld}", message))


def _numbers(value: Any, path: str, depth: int = 0) -> list[tuple[str, Any]]:
    """``(path, value)`` of every number (and NaN/Infinity marker) inside ``value``."""
    from .._limits import NonFinite

    if isinstance(value, NonFinite) or (isinstance(value, int | float)
                                        and not isinstance(value, bool)):
        return [(path, value)]
    if depth > 32 or isinstance(value, str):
        return []
    out: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            out += _numbers(v, f"{path}.{k}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            out += _numbers(v, f"{path}[{i}]", depth + 1)
    return out


def number_problems(doc: Mapping[str, Any]) -> list[Problem]:
    """NaN, Infinity and numbers out of range anywhere in a document (native or
    original), each named by node and field."""
    problems: list[Problem] = []
    nodes = v if isinstance(v := doc.get("nodes"), list) else []
    for key, value in doc.items():
        if key == "nodes" and value is nodes:
            continue
        for path, number in _numbers(value, str(key)):
            if (why := number_problem(number)) is not None:
                problems.append(Problem(None, path, why))
    for index, raw in enumerate(nodes):
        if not isinstance(raw, Mapping):
            continue
        nid = v if isinstance(v := raw.get("id"), str) else f"#{index}"
        for key, value in raw.items():
            for path, number in _numbers(value, str(key)):
                if (why := number_problem(number)) is not None:
                    problems.append(Problem(nid, path, why))
    return problems


def _run_problems(passes: Any, interval: Any, variables: Mapping[str, Any]) -> list[Problem]:
    out = []
    for fld, value in (("run.passes", passes), ("run.interval", interval)):
        if value is not None and (why := number_problem(value)) is not None:
            out.append(Problem(None, fld, why))
    if isinstance(interval, int | float) and not isinstance(interval, bool) \
            and interval == interval and interval < 0:
        out.append(Problem(None, "run.interval", f"must be >= 0, got {interval}"))
    for name, value in variables.items():
        for path, number in _numbers(value, f"variables.{name}"):
            if (why := number_problem(number)) is not None:
                out.append(Problem(None, path, why))
    return out


# -- graph -------------------------------------------------------------------------------
def graph_problems(nodes: Mapping[str, Node | None],
                   edges: Sequence[tuple[int, Any, Any, Any]]) -> list[Problem]:
    """Dangling edges, impossible branch labels, duplicates and cycles."""
    problems: list[Problem] = []
    graph: dict[str, set[str]] = {nid: set() for nid in nodes}
    seen: set[tuple[str, str, Any]] = set()

    def known(value: Any) -> bool:
        return isinstance(value, str) and value in nodes

    for index, source, target, branch in edges:
        where = f"edges[{index}]"
        owner = source if known(source) else (target if known(target) else None)
        ok = True
        for end, value in (("source", source), ("target", target)):
            if not known(value):
                problems.append(Problem(owner if isinstance(owner, str) else None, f"{where}.{end}",
                                        f"no node {value!r} (dangling edge)"))
                ok = False
        if not ok:
            continue
        if source == target:
            problems.append(Problem(source, where, f"edge from {source!r} to itself (cycle)"))
            continue
        key = (source, target, branch if isinstance(branch, str | None) else repr(branch))
        if key in seen:
            problems.append(Problem(source, where, f"duplicate edge to {target!r}"))
        seen.add(key)
        node = nodes[source]
        if isinstance(branch, str) and node is not None and not node.can_branch(branch):
            can = ", ".join(node.branches) or "none"
            problems.append(Problem(source, f"{where}.branch",
                                    f"{node.type_name!r} cannot produce branch {branch!r} "
                                    f"(it produces: {can}; 'error' on failure)"))
        graph[target].add(source)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        problems.append(Problem(cycle[0], "edges", "cycle " + " -> ".join(map(str, cycle))))
    return problems


def _limit(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_REPORTED:
        return problems
    extra = len(problems) - MAX_REPORTED
    return [*problems[:MAX_REPORTED], Problem(None, None, f"… and {extra} more problems")]


def flow_problems(nodes: Mapping[str, FlowNode], edges: Sequence[Edge], passes: Any,
                  interval: Any, variables: Mapping[str, Any]) -> list[Problem]:
    """Every problem of a flow built in code (its nodes, edges and run settings)."""
    problems: list[Problem] = []
    limit = get_settings().engine.max_nodes
    if len(nodes) > limit:
        return [Problem(None, "nodes", f"{len(nodes)} nodes; the limit is {limit} "
                                       "(settings engine.max_nodes)")]
    problems.extend(_run_problems(passes, interval, variables))
    for fn in nodes.values():
        for path, number in _numbers(list(fn.position), "position"):
            if (why := number_problem(number)) is not None:
                problems.append(Problem(fn.id, path, why))
        _node_checks(fn.id, fn.node, problems)
    numbered = [(i, e.source, e.target, e.branch) for i, e in enumerate(edges)]
    problems.extend(graph_problems({nid: fn.node for nid, fn in nodes.items()}, numbered))
    return _limit(problems)


# -- documents ---------------------------------------------------------------------------
def _schema_problems(doc: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    nodes = v if isinstance(v := doc.get("nodes"), list) else []
    for err in sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = list(err.absolute_path)
        node_id = None
        if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
            raw = nodes[path[1]] if path[1] < len(nodes) else None
            node_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) \
                else f"#{path[1]}"
            rest = path[2:]
        else:
            rest = path
        fld = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in rest).replace(".[", "[")
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for key in err.instance:
                if key not in allowed:
                    name = f"{fld}.{key}" if fld else str(key)
                    out.append(Problem(node_id, name, "unknown field"))
            continue
        out.append(Problem(node_id, fld or None, err.message))
    return out


def check_version(doc: Mapping[str, Any], origin: str) -> None:
    version = doc.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise FlowFormatError(
            f"{origin}: schema_version {version} was written by a newer kvmrpa; this release "
            f"reads up to {SCHEMA_VERSION}")


def document_fields(doc: Mapping[str, Any], *, origin: str = "<dict>") -> dict[str, Any]:
    """Check a document completely; the keyword arguments of the :class:`Flow` it
    describes (``Flow.from_dict`` builds it). Raises on every problem at once."""
    from ..legacy import import_original, is_original

    if not isinstance(doc, Mapping):
        raise FlowFormatError(f"{origin}: a flow document is a JSON object")
    warnings: list[Problem] = []
    problems: list[Problem] = []
    # NaN, Infinity and huge numbers are named by field before anything uses them
    bad_numbers = number_problems(doc)
    if bad_numbers:
        name = v if isinstance(v := doc.get("name"), str) else Path(origin).stem
        raise FlowValidationError(_limit(bad_numbers), flow=name)
    if is_original(doc):
        doc, warnings, problems = import_original(doc)
    check_version(doc, origin)
    name = v if isinstance(v := doc.get("name"), str) else Path(origin).stem
    raw_nodes = v if isinstance(v := doc.get("nodes"), list) else []
    limit = get_settings().engine.max_nodes
    if len(raw_nodes) > limit:
        raise FlowValidationError([Problem(None, "nodes", f"{len(raw_nodes)} nodes; the limit is "
                                                          f"{limit} (settings engine.max_nodes)")],
                                  flow=name)
    problems.extend(_schema_problems(doc))
    built: dict[str, Node | None] = {}
    flow_nodes: list[FlowNode] = []
    for index, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            continue  # reported by the schema
        nid = raw["id"]
        if nid in built:
            problems.append(Problem(nid, "id", f"duplicate node id (nodes[{index}])"))
            continue
        type_name = raw.get("type")
        cls = get_node_class(type_name) if isinstance(type_name, str) else None
        if cls is None:
            if isinstance(type_name, str):
                problems.append(Problem(nid, "type", f"unknown node type {type_name!r}"))
            built[nid] = None
            continue
        params = v if isinstance(v := raw.get("params"), dict) else {}
        node = build_node(nid, cls, params, problems)
        _node_checks(nid, node, problems)
        built[nid] = node
        pos = raw.get("position")
        position = (float(pos[0]), float(pos[1])) if isinstance(pos, list) and len(pos) == 2 \
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos) else (0.0, 0.0)
        label = v if isinstance(v := raw.get("label"), str) else ""
        flow_nodes.append(FlowNode(nid, node, label, position))
    raw_edges = v if isinstance(v := doc.get("edges"), list) else []
    edges: list[tuple[int, Any, Any, Any]] = [(i, e.get("source"), e.get("target"), e.get("branch"))
             for i, e in enumerate(raw_edges) if isinstance(e, dict)]
    problems.extend(graph_problems(built, edges))
    if problems:
        raise FlowValidationError(_limit(problems), flow=name)
    run = doc.get("run") or {}
    return dict(
        name=name, description=doc.get("description") or "",
        source=doc.get("source"), input=doc.get("input"),
        variables=dict(doc.get("variables") or {}), metadata=dict(doc.get("metadata") or {}),
        passes=run.get("passes"), interval=run.get("interval"),
        created=doc.get("created"), updated=doc.get("updated"),
        nodes={fn.id: fn for fn in flow_nodes},
        edges=[Edge(s, t, b) for _i, s, t, b in edges],
        import_warnings=list(warnings),
    )

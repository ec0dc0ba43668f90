"""Import of the original system's flow files (detected automatically).

The original format: top level ``id, name, description, version, nodes, edges,
variables, created_at, updated_at``; a node ``{id, type, label, x, y, properties,
text: {x, y, value}}``; an edge ``{id, source, target, sourceAnchor, targetAnchor, type,
properties: {branch}}``.

Each original node type is translated by an **import mapper**, registered with
:func:`kvmrpa.nodes.register_import_mapper` (the registry lives with the node registry,
so node modules register mappers without depending on the engine). A mapper receives an :class:`OriginalNode` and returns
:class:`Mapped`: one or more native node dicts (``{"id", "type", "params", ...}``), the
edges between them when there are several, which of them receives the incoming edges
(``entry``) and which one's outgoing edges carry the original node's (``exit``), plus
warnings and problems. A mapper reads properties with :meth:`OriginalNode.take`; every
property it did not take (or :meth:`OriginalNode.ignore`) is reported as a warning
naming the node and property, so nothing is ignored silently. A type without a mapper is
a problem (the flow does not validate). Several mappers may share a type: each may pass
``accepts`` (for example on ``condition_type``); the latest registered that accepts wins.

The logic types are mapped in :mod:`kvmrpa.nodes.logic`: ``wait``, ``variable``,
``condition`` (types ``variable`` and ``expression``), ``loop``. Vision and action
modules register theirs the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import Problem
from ..nodes._registry import (
    Mapped,
    OriginalNode,
    find_import_mapper,
    import_passes,
    register_import_mapper,
)
from ._flow import SCHEMA_VERSION

__all__ = [
    "Mapped",
    "OriginalNode",
    "import_original",
    "is_original",
    "register_import_mapper",
]

_NODE_KEYS = {"id", "type", "label", "x", "y", "properties", "text"}
_COSMETIC_NODE_KEYS = {"width", "height", "size", "style", "anchorPoints", "icon", "color",
                       "shape", "zIndex", "selected"}
_EDGE_KEYS = {"id", "source", "target", "sourceAnchor", "targetAnchor", "type", "properties",
              "startPoint", "endPoint", "pointsList", "text"}
_TOP_KEYS = {"id", "name", "description", "version", "nodes", "edges", "variables",
             "created_at", "updated_at"}


def _load_extra_mappers() -> None:
    # Node modules register their mappers when imported; the registry imports them.
    from ..nodes import node_types

    node_types()


def is_original(doc: Mapping[str, Any]) -> bool:
    """Whether ``doc`` is in the original system's format (not native)."""
    if "schema_version" in doc:
        return False
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        return False
    if any(isinstance(n, dict) and ("properties" in n or "x" in n) for n in nodes):
        return True
    return "created_at" in doc or "updated_at" in doc or "version" in doc


def import_original(doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem], list[Problem]]:
    """Translate an original-format document: ``(native document, warnings, problems)``."""
    _load_extra_mappers()
    warnings: list[Problem] = []
    problems: list[Problem] = []
    for key in doc:
        if key not in _TOP_KEYS:
            warnings.append(Problem(None, key, "unknown top-level field; ignored"))
    variables: dict[str, Any] = {}
    raw_vars = doc.get("variables")
    if isinstance(raw_vars, dict):
        variables = dict(raw_vars)
    elif isinstance(raw_vars, list):
        for i, item in enumerate(raw_vars):
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                variables[item["name"]] = item.get("value", item.get("default"))
            else:
                problems.append(Problem(None, f"variables[{i}]", "expected {name, value}"))
    elif raw_vars is not None:
        problems.append(Problem(None, "variables", "expected an object or a list"))
    metadata = {k: doc[k] for k in ("id", "version") if k in doc}
    metadata["imported_from"] = "original"
    native_nodes: list[dict[str, Any]] = []
    native_edges: list[dict[str, Any]] = []
    ends: dict[str, tuple[str, str]] = {}
    raw_nodes = doc.get("nodes") if isinstance(doc.get("nodes"), list) else []
    for i, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            problems.append(Problem(None, f"nodes[{i}]", "a node needs a string id"))
            continue
        nid = raw["id"]
        for key in raw:
            if key not in _NODE_KEYS and key not in _COSMETIC_NODE_KEYS:
                warnings.append(Problem(nid, key, "unknown node field; ignored"))
        text = raw.get("text")
        label = raw.get("label") if isinstance(raw.get("label"), str) else (
            text.get("value") if isinstance(text, dict) and isinstance(text.get("value"), str) else "")
        props = raw.get("properties") if isinstance(raw.get("properties"), dict) else {}
        if raw.get("properties") is not None and not isinstance(raw.get("properties"), dict):
            problems.append(Problem(nid, "properties", "must be an object"))
        x = raw.get("x") if isinstance(raw.get("x"), int | float) else 0.0
        y = raw.get("y") if isinstance(raw.get("y"), int | float) else 0.0
        onode = OriginalNode(nid, str(raw.get("type")), label or "", float(x), float(y), dict(props))
        mapper = find_import_mapper(onode)
        if mapper is None:
            problems.append(Problem(nid, "type", f"original node type {onode.type!r} cannot be "
                                                 "imported (no mapping)"))
            continue
        try:
            mapped = mapper(onode)
        except Exception as exc:
            problems.append(Problem(nid, None, f"import of {onode.type!r} failed: {exc}"))
            continue
        warnings.extend(mapped.warnings)
        problems.extend(mapped.problems)
        for key in onode.properties:
            if key not in onode.used:
                warnings.append(onode.warn(key, f"property of {onode.type!r} not mapped; ignored"))
        if not mapped.nodes:
            continue
        native_nodes.extend(mapped.nodes)
        native_edges.extend(mapped.edges)
        ends[nid] = (mapped.entry or mapped.nodes[0]["id"], mapped.exit or mapped.nodes[-1]["id"])
    raw_edges = doc.get("edges") if isinstance(doc.get("edges"), list) else []
    for i, raw in enumerate(raw_edges):
        if not isinstance(raw, dict):
            problems.append(Problem(None, f"edges[{i}]", "an edge is an object"))
            continue
        src, tgt = raw.get("source"), raw.get("target")
        for key in raw:
            if key not in _EDGE_KEYS:
                warnings.append(Problem(src if isinstance(src, str) else None,
                                        f"edges[{i}].{key}", "unknown edge field; ignored"))
        props = raw.get("properties") if isinstance(raw.get("properties"), dict) else {}
        branch = props.get("branch")
        for key in props:
            if key != "branch":
                warnings.append(Problem(src if isinstance(src, str) else None,
                                        f"edges[{i}].properties.{key}", "not mapped; ignored"))
        if isinstance(branch, bool):
            branch = "true" if branch else "false"
        if branch is not None and not isinstance(branch, str):
            problems.append(Problem(src if isinstance(src, str) else None,
                                    f"edges[{i}].properties.branch", f"invalid branch {branch!r}"))
            branch = None
        if branch == "":
            branch = None
        source = ends[src][1] if isinstance(src, str) and src in ends else src
        target = ends[tgt][0] if isinstance(tgt, str) and tgt in ends else tgt
        edge: dict[str, Any] = {"source": source if isinstance(source, str) else str(source),
                                "target": target if isinstance(target, str) else str(target)}
        if branch is not None:
            edge["branch"] = branch
        native_edges.append(edge)
    native: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": doc.get("name") if isinstance(doc.get("name"), str) and doc.get("name") else "imported",
        "description": doc.get("description") if isinstance(doc.get("description"), str) else "",
        "created": doc.get("created_at") if isinstance(doc.get("created_at"), str) else None,
        "updated": doc.get("updated_at") if isinstance(doc.get("updated_at"), str) else None,
        "variables": variables, "metadata": metadata,
        "nodes": native_nodes, "edges": native_edges,
    }
    for import_pass in import_passes():
        more_warnings, more_problems = import_pass(native)
        warnings.extend(more_warnings)
        problems.extend(more_problems)
    return native, warnings, problems

"""Reading the original system's flow files (detected automatically).

The format is described by ``original.schema.json`` beside this module: top level
``id, name, description, version, nodes, edges, variables, created_at, updated_at``; a
node ``{id, type, label, x, y, properties, text: {x, y, value}}``; an edge ``{id,
source, target, sourceAnchor, targetAnchor, type, properties: {branch}}``. The document
is checked against that schema (with ``jsonschema``): fields it does not name are
warnings, layout fields of the wrong type are warnings, anything else is a problem
naming the node and field.

Each original node type is translated by an **import mapper** (see
:mod:`kvmrpa.legacy._registry`). Every property a mapper did not take (or
:meth:`OriginalNode.ignore`) is reported as a warning naming the node and property, so
nothing is ignored silently. A type without a mapper is a problem (the flow does not
validate). After the nodes, the registered import passes rewrite the whole document
(the blackboard resolution in :mod:`kvmrpa.legacy._vision` is one).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema

from .._errors import Problem
from ._registry import OriginalNode, find_import_mapper, import_passes, load_mappers

__all__ = ["NATIVE_SCHEMA_VERSION", "import_original", "is_original", "original_schema"]

#: The ``schema_version`` of the native documents the import writes.
NATIVE_SCHEMA_VERSION = 1

#: Node fields that only place or label the node: a wrong type is reported and ignored.
_LAYOUT = {"label", "x", "y", "text"}


@functools.cache
def original_schema() -> dict[str, Any]:
    """The JSON Schema of the original format (``original.schema.json``)."""
    text = resources.files(__package__ or "kvmrpa.legacy").joinpath("original.schema.json")
    return json.loads(text.read_text("utf-8"))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = original_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _where(doc: Mapping[str, Any], path: list[Any]) -> tuple[str | None, str]:
    """``(node id, field)`` for a path in the document."""
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
        nodes = doc.get("nodes") or []
        raw = nodes[path[1]] if path[1] < len(nodes) else None
        nid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        rest = path[2:] if nid is not None else path
    else:
        nid, rest = None, path
    if len(path) >= 2 and path[0] == "edges" and isinstance(path[1], int):
        edges = doc.get("edges") or []
        raw = edges[path[1]] if path[1] < len(edges) else None
        src = raw.get("source") if isinstance(raw, dict) else None
        nid = src if isinstance(src, str) else None
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in rest).replace(".[", "[")
    return nid, field


def _check(doc: Mapping[str, Any]) -> tuple[list[Problem], list[Problem], set[tuple[Any, ...]]]:
    """Schema check: ``(warnings, problems, paths of the items that cannot be read)``."""
    warnings: list[Problem] = []
    problems: list[Problem] = []
    broken: set[tuple[Any, ...]] = set()
    errors = sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    for err in errors:
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            what = {0: "top-level field", 2: "node field"}.get(len(path), "field")
            if path[:1] == ["edges"]:
                what = "edge field"
            for key in err.instance:
                if key not in allowed:
                    nid, field = _where(doc, [*path, key])
                    warnings.append(Problem(nid, field, f"unknown {what}; ignored"))
            continue
        nid, field = _where(doc, path)
        if len(path) >= 3 and path[0] == "nodes" and path[2] in _LAYOUT:
            warnings.append(Problem(nid, field, f"{err.message}; ignored"))
            continue
        problems.append(Problem(nid, field or None, err.message))
        if len(path) >= 2 and path[0] in ("nodes", "edges", "variables"):
            broken.add(tuple(path[:2]))
        elif path:
            broken.add(tuple(path[:1]))
    return warnings, problems, broken


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
    load_mappers()
    warnings, problems, broken = _check(doc)

    def items(key: str) -> list[tuple[int, Any]]:
        raw = doc.get(key)
        if not isinstance(raw, list) or (key,) in broken:
            return []
        return [(i, item) for i, item in enumerate(raw) if (key, i) not in broken]

    def text(key: str) -> str | None:
        value = doc.get(key)
        return value if isinstance(value, str) else None

    variables: dict[str, Any] = {}
    raw_vars = doc.get("variables")
    if isinstance(raw_vars, dict):
        variables = dict(raw_vars)
    else:
        for _i, item in items("variables"):
            variables[item["name"]] = item.get("value", item.get("default"))
    metadata = {k: doc[k] for k in ("id", "version") if k in doc}
    metadata["imported_from"] = "original"
    native_nodes: list[dict[str, Any]] = []
    native_edges: list[dict[str, Any]] = []
    ends: dict[str, tuple[str, str]] = {}
    for _i, raw in items("nodes"):
        nid = raw["id"]
        caption = raw.get("text")
        label = raw.get("label") if isinstance(raw.get("label"), str) else (
            caption.get("value") if isinstance(caption, dict)
            and isinstance(caption.get("value"), str) else "")
        x = raw.get("x") if isinstance(raw.get("x"), int | float) else 0.0
        y = raw.get("y") if isinstance(raw.get("y"), int | float) else 0.0
        onode = OriginalNode(nid, str(raw.get("type")), label or "", float(x), float(y),
                             dict(raw.get("properties") or {}))
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
    for _i, raw in items("edges"):
        src, tgt = raw.get("source"), raw.get("target")
        branch = (raw.get("properties") or {}).get("branch")
        if isinstance(branch, bool):
            branch = "true" if branch else "false"
        source = ends[src][1] if isinstance(src, str) and src in ends else src
        target = ends[tgt][0] if isinstance(tgt, str) and tgt in ends else tgt
        edge: dict[str, Any] = {"source": source if isinstance(source, str) else str(source),
                                "target": target if isinstance(target, str) else str(target)}
        if branch:
            edge["branch"] = branch
        native_edges.append(edge)
    native: dict[str, Any] = {
        "schema_version": NATIVE_SCHEMA_VERSION,
        "name": text("name") or "imported",
        "description": text("description") or "",
        "created": text("created_at"),
        "updated": text("updated_at"),
        "variables": variables, "metadata": metadata,
        "nodes": native_nodes, "edges": native_edges,
    }
    for import_pass in import_passes():
        more_warnings, more_problems = import_pass(native)
        warnings.extend(more_warnings)
        problems.extend(more_problems)
    return native, warnings, problems

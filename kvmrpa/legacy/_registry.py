"""The import-mapper registry: original node types → native node dicts.

A mapper translates one original node type. Register it with
``register_import_mapper("ocr_recognition", fn, accepts=...)`` where ``fn`` takes an
:class:`OriginalNode` and returns :class:`Mapped` (native node dicts, internal edges,
entry / exit node, warnings, problems). Read properties with :meth:`OriginalNode.take`
or :meth:`OriginalNode.number`; properties not taken are reported as warnings. Several
mappers may share a type: each may pass ``accepts``; the latest registered that accepts
wins. :func:`register_import_pass` adds a rewrite of the whole imported document.

The built-in mappers live in this package; other packages register theirs through
the entry-point group ``kvmrpa.import_mappers`` (each entry point names a module that
registers its mappers when imported).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from .._errors import Problem

__all__ = [
    "ENTRY_POINT_GROUP",
    "Mapped",
    "OriginalNode",
    "find_import_mapper",
    "import_passes",
    "load_mappers",
    "register_import_mapper",
    "register_import_pass",
]

#: Entry-point group through which other packages add import-mapper modules.
ENTRY_POINT_GROUP = "kvmrpa.import_mappers"
_BUILTIN = ("kvmrpa.legacy._logic", "kvmrpa.legacy._vision")
log = logging.getLogger("kvmrpa.legacy")
_MISSING: Any = object()
_load_lock = threading.RLock()
_loaded = False


def load_mappers() -> None:
    """Import the built-in mapper modules and the entry points (once)."""
    global _loaded
    with _load_lock:
        if _loaded:
            return
        _loaded = True
        for name in _BUILTIN:
            importlib.import_module(name)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception:
                log.exception("cannot load import-mapper entry point %s = %s", ep.name, ep.value)


@dataclass
class OriginalNode:
    """One node of an original-format file, with a record of properties taken."""

    id: str
    type: str
    label: str
    x: float
    y: float
    properties: dict[str, Any]
    used: set[str] = field(default_factory=set)

    def take(self, key: str, default: Any = _MISSING) -> Any:
        """A property's value (marked as mapped); ``default`` when absent."""
        self.used.add(key)
        if key in self.properties:
            return self.properties[key]
        return None if default is _MISSING else default

    def number(self, key: str, default: Any = _MISSING) -> Any:
        """Like :meth:`take`, with numbers written as strings turned into numbers."""
        value = self.take(key, default)
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                try:
                    return float(text)
                except ValueError:
                    return value
        return value

    def has(self, key: str) -> bool:
        """Whether the original node has property ``key``."""
        return key in self.properties

    def ignore(self, *keys: str) -> None:
        """Mark properties that carry no meaning for the native flow (display only)."""
        self.used.update(keys)

    def native(self, type_name: str, params: Mapping[str, Any], *, suffix: str = "") -> dict[str, Any]:
        """A native node dict placed where this node was."""
        out: dict[str, Any] = {"id": self.id + suffix, "type": type_name,
                               "params": {k: v for k, v in params.items() if v is not None},
                               "position": [self.x, self.y]}
        if self.label:
            out["label"] = self.label
        return out

    def warn(self, prop: str | None, message: str) -> Problem:
        """A problem naming this node and ``properties.<prop>``."""
        return Problem(self.id, f"properties.{prop}" if prop else None, message)


@dataclass
class Mapped:
    """What a mapper returns (see the module docstring)."""

    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]] = field(default_factory=list)
    entry: str | None = None
    exit: str | None = None
    warnings: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


Mapper = Callable[[OriginalNode], Mapped]
_mappers_lock = threading.Lock()
_mappers: dict[str, list[tuple[Mapper, Callable[[OriginalNode], bool] | None]]] = {}


def register_import_mapper(type_name: str, mapper: Mapper, *,
                           accepts: Callable[[OriginalNode], bool] | None = None) -> Mapper:
    """Map original nodes of ``type_name`` with ``mapper`` (see the module docstring)."""
    with _mappers_lock:
        _mappers.setdefault(type_name, []).append((mapper, accepts))
    return mapper


def find_import_mapper(onode: OriginalNode) -> Mapper | None:
    """The mapper for an original node: the latest registered that accepts it."""
    with _mappers_lock:
        candidates = list(reversed(_mappers.get(onode.type, [])))
    for mapper, accepts in candidates:
        if accepts is None or accepts(onode):
            return mapper
    return None


ImportPass = Callable[[dict[str, Any]], tuple[list[Problem], list[Problem]]]
_passes: list[ImportPass] = []


def register_import_pass(fn: ImportPass) -> ImportPass:
    """Run ``fn(native_document)`` on every imported flow after all nodes are mapped.

    A pass rewrites the document in place (for example, to turn the original system's
    shared blackboard into explicit edges) and returns ``(warnings, problems)``.
    """
    with _mappers_lock:
        if fn not in _passes:
            _passes.append(fn)
    return fn


def import_passes() -> tuple[ImportPass, ...]:
    """The registered whole-flow import passes, in registration order."""
    with _mappers_lock:
        return tuple(_passes)

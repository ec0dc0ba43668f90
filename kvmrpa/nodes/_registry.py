"""The node registry: stable type names → :class:`~kvmrpa.nodes.Node` classes.

Built-in modules register their classes with the :func:`register_node` decorator when
imported: every public module of the ``kvmrpa.nodes`` package is imported on the first
lookup of an unknown name or on :func:`node_types`. Third-party packages register through the
entry-point group ``kvmrpa.nodes``: each entry point names either a ``Node`` subclass
or a module; loading it (on the first lookup) registers its types::

    [project.entry-points."kvmrpa.nodes"]
    my_node = "my_pkg.nodes:MyNode"

Type names are part of the flow file format: never rename one, add a new type instead.

The same module keeps the **import mappers** for the original system's flow format
(see :mod:`kvmrpa.engine._import` for the format): a node module calls
``register_import_mapper("ocr_recognition", fn, accepts=...)`` where ``fn`` takes an
:class:`OriginalNode` and returns :class:`Mapped` (native node dicts, internal edges,
entry / exit node, warnings, problems). Read properties with :meth:`OriginalNode.take`
or :meth:`OriginalNode.number`; properties not taken are reported as warnings.
Registering a name twice with another class is an error (a mistake, not an override),
unless ``replace=True``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar

from .._errors import Problem
from ._base import Node

__all__ = [
    "ENTRY_POINT_GROUP",
    "Mapped",
    "OriginalNode",
    "find_import_mapper",
    "get_node_class",
    "import_passes",
    "node_types",
    "register_import_mapper",
    "register_import_pass",
    "register_node",
]

ENTRY_POINT_GROUP = "kvmrpa.nodes"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
log = logging.getLogger("kvmrpa.nodes")

_lock = threading.RLock()
_types: dict[str, type[Node]] = {}
_entry_points_loaded = False
_loading = False
_load_lock = threading.RLock()  # held while the built-ins and entry points load

N = TypeVar("N", bound=type[Node])
_MISSING: Any = object()


def register_node(cls: N | None = None, *, name: str | None = None,
                  replace: bool = False) -> N | Callable[[N], N]:
    """Register a node class under ``name`` (default: its ``type_name``).

    Usable as ``@register_node`` or ``@register_node(name="x")``.
    """

    def _register(klass: N) -> N:
        if not (inspect.isclass(klass) and issubclass(klass, Node)):
            raise TypeError(f"register_node expects a Node subclass, got {klass!r}")
        type_name = name or klass.type_name
        if not type_name or not _NAME.match(type_name):
            raise ValueError(
                f"node class {klass.__qualname__} needs a type name of lower-case letters, "
                f"digits and '_' (got {type_name!r})")
        if klass.__doc__ is None or not klass.__doc__.strip():
            raise ValueError(f"node type {type_name!r} needs a docstring stating inputs and outputs")
        with _lock:
            old = _types.get(type_name)
            same = old is not None and (old.__module__, old.__qualname__) == (
                klass.__module__, klass.__qualname__)
            if old is not None and old is not klass and not replace and not same:
                raise ValueError(
                    f"node type {type_name!r} is already registered by "
                    f"{old.__module__}.{old.__qualname__}")
            if not klass.type_name:
                klass.type_name = type_name
            _types[type_name] = klass
        return klass

    if cls is not None:
        return _register(cls)
    return _register


def _load_builtins() -> None:
    """Import every public module of this package (each registers its node types)."""
    package = importlib.import_module(__package__ or "kvmrpa.nodes")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        mod = f"{package.__name__}.{info.name}"
        try:
            importlib.import_module(mod)
        except Exception as exc:  # one broken node module must not hide all the others
            log.error("cannot import node module %s: %s: %s", mod, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))


def _load_entry_points() -> None:
    """Load the built-in modules and the entry points once. Other threads wait until it is
    done (none sees a half-filled registry); a nested call from a module being loaded
    returns at once."""
    global _entry_points_loaded, _loading
    with _load_lock:
        if _entry_points_loaded or _loading:
            return
        _loading = True
        try:
            _load_builtins()
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    obj = ep.load()
                except Exception:
                    log.exception("cannot load node entry point %s = %s", ep.name, ep.value)
                    continue
                if inspect.isclass(obj) and issubclass(obj, Node):
                    try:
                        register_node(obj, name=obj.type_name or ep.name)
                    except (TypeError, ValueError):
                        log.exception("entry point %s = %s is not a valid node type",
                                      ep.name, ep.value)
        finally:
            _entry_points_loaded = True
            _loading = False


def get_node_class(type_name: str) -> type[Node] | None:
    """The class registered as ``type_name``, or ``None``."""
    cls = _types.get(type_name)
    if cls is None and not _entry_points_loaded:
        _load_entry_points()
        cls = _types.get(type_name)
    return cls


def node_types() -> dict[str, type[Node]]:
    """Every registered type, by name (built-ins and entry points loaded)."""
    _load_entry_points()
    with _lock:
        return dict(sorted(_types.items()))


# -- import mappers for the original system's flow format --------------------------------
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

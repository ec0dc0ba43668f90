"""The node registry: stable type names → :class:`~kvmrpa.nodes.Node` classes.

Built-in modules register their classes with the :func:`register_node` decorator when
imported: every public module of the ``kvmrpa.nodes`` package is imported on the first
lookup of an unknown name or on :func:`node_types`. Third-party packages register through the
entry-point group ``kvmrpa.nodes``: each entry point names either a ``Node`` subclass
or a module; loading it (on the first lookup) registers its types::

    [project.entry-points."kvmrpa.nodes"]
    my_node = "my_pkg.nodes:MyNode"

Type names are part of the flow file format: never rename one, add a new type instead.

The registry is :data:`NODES`, a :class:`kvmrpa._registry.Registry` like the source and
driver registries: registering a name twice with another class is an error (a mistake,
not an override) unless ``replace=True``; :func:`unregister_node` and
``NODES.temporarily(name, cls)`` take one away again. A node module or entry point that
cannot be imported is an error naming it.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import re
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

from .._registry import Registry
from ._base import Node

__all__ = [
    "ENTRY_POINT_GROUP",
    "NODES",
    "get_node_class",
    "node_types",
    "register_node",
    "unregister_node",
]

#: Entry-point group through which other packages add node types.
ENTRY_POINT_GROUP = "kvmrpa.nodes"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
log = logging.getLogger("kvmrpa.nodes")

#: Type name -> node class: the registry every lookup goes through.
NODES: Registry[type[Node]] = Registry("node type")
_entry_points_loaded = False
_loading = False
_load_lock = threading.RLock()  # held while the built-ins and entry points load

N = TypeVar("N", bound=type[Node])


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
        old = NODES.get(type_name)
        # the same class defined again (a module imported twice) replaces itself
        same = old is not None and (old.__module__, old.__qualname__) == (
            klass.__module__, klass.__qualname__)
        NODES.register(type_name, klass, replace=replace or same)
        if not klass.type_name:
            klass.type_name = type_name
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
        importlib.import_module(f"{package.__name__}.{info.name}")


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
                except Exception as exc:
                    raise ValueError(f"node type entry point {ep.name} = {ep.value!r} "
                                     f"(group {ENTRY_POINT_GROUP}) cannot be loaded: "
                                     f"{type(exc).__name__}: {exc}") from exc
                if inspect.isclass(obj) and issubclass(obj, Node):
                    register_node(obj, name=obj.type_name or ep.name)
        finally:
            _entry_points_loaded = True
            _loading = False


def get_node_class(type_name: str) -> type[Node] | None:
    """The class registered as ``type_name``, or ``None``."""
    cls = NODES.get(type_name)
    if cls is None and not _entry_points_loaded:
        _load_entry_points()
        cls = NODES.get(type_name)
    return cls


def node_types() -> dict[str, type[Node]]:
    """Every registered type, by name (built-ins and entry points loaded)."""
    _load_entry_points()
    return NODES.items()


def unregister_node(type_name: str) -> None:
    """Forget a node type (with :meth:`Registry.temporarily <kvmrpa._registry.Registry.temporarily>`
    on :data:`NODES`, for tests)."""
    NODES.unregister(type_name)

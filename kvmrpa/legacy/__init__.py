"""The original system's flow format: reading it, and mapping it onto native flows.

* :func:`is_original`, :func:`import_original` — detect and translate a document
  (checked against :func:`original_schema`, the format's JSON Schema);
* :func:`register_import_mapper` (with :class:`OriginalNode`, :class:`Mapped`) — how one
  original node type maps onto native nodes; other packages declare their mapper
  modules in the entry-point group ``kvmrpa.import_mappers``;
* :func:`register_import_pass` — a rewrite of the whole imported document (the shared
  blackboard made explicit, the flow's source chosen);
* :func:`secure_secrets` — plain-text passwords replaced by ``${env:NAME}`` references.

The engine reads original files through this package; this package builds on
:mod:`kvmrpa.nodes` (the native node types) and nothing above it.
"""

from __future__ import annotations

from . import _logic  # noqa: F401 - registers before _vision (same type, other kinds)
from ._reader import NATIVE_SCHEMA_VERSION, import_original, is_original, original_schema
from ._registry import (
    ENTRY_POINT_GROUP,
    Mapped,
    OriginalNode,
    find_import_mapper,
    import_passes,
    load_mappers,
    register_import_mapper,
    register_import_pass,
)
from ._vision import env_name_for, resolve_blackboard, secure_secrets

__all__ = [
    "ENTRY_POINT_GROUP",
    "NATIVE_SCHEMA_VERSION",
    "Mapped",
    "OriginalNode",
    "env_name_for",
    "find_import_mapper",
    "import_original",
    "import_passes",
    "is_original",
    "load_mappers",
    "original_schema",
    "register_import_mapper",
    "register_import_pass",
    "resolve_blackboard",
    "secure_secrets",
]

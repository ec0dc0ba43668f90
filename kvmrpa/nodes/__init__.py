"""Nodes: the base class, the registry and the node library.

* :class:`Node` — a ``param.Parameterized`` node type (see :mod:`kvmrpa.nodes._base`
  for how to write one: parameters, ``run``, branches, ``check``);
* :func:`register_node`, :func:`get_node_class`, :func:`node_types` — the registry of
  stable type names; third-party types use the entry-point group ``kvmrpa.nodes``;
* :func:`register_import_mapper` (with :class:`OriginalNode`, :class:`Mapped`) — how a
  node module maps original-format node types onto its native types, and
  :func:`register_import_pass` for rewrites of the whole imported flow;
* logic nodes (:mod:`kvmrpa.nodes.logic`): ``wait``, ``variable``, ``condition``,
  ``loop``, ``python``. Vision, action and source nodes live in their own modules of
  this package and register themselves the same way.
"""

from __future__ import annotations

from ._base import ANY_BRANCH, COMMON_PARAMS, ENV_REF, Node, resolve_env_refs
from ._registry import (
    ENTRY_POINT_GROUP,
    Mapped,
    OriginalNode,
    find_import_mapper,
    get_node_class,
    import_passes,
    node_types,
    register_import_mapper,
    register_import_pass,
    register_node,
)
from .logic import Condition, Loop, PythonCode, Variable, Wait, evaluate

__all__ = [
    "ANY_BRANCH",
    "COMMON_PARAMS",
    "ENTRY_POINT_GROUP",
    "ENV_REF",
    "Condition",
    "Loop",
    "Mapped",
    "Node",
    "OriginalNode",
    "PythonCode",
    "Variable",
    "Wait",
    "evaluate",
    "find_import_mapper",
    "get_node_class",
    "import_passes",
    "node_types",
    "register_import_mapper",
    "register_import_pass",
    "register_node",
    "resolve_env_refs",
]

"""Nodes: the base class, the registry and the node library.

* :class:`Node` — a ``param.Parameterized`` node type (see :mod:`kvmrpa.nodes._base`
  for how to write one: parameters, ``run``, branches, ``check``);
* :func:`register_node`, :func:`get_node_class`, :func:`node_types` — the registry of
  stable type names; third-party types use the entry-point group ``kvmrpa.nodes``;
* :class:`Inputs`, :class:`NodeContext` — what ``run(inputs, ctx)`` receives;
* the node library, one class per type: :class:`Source` (``source``), :class:`Crop`,
  :class:`Preprocess` (``crop``, ``preprocess``), :class:`Ocr`, :class:`MatchTemplate`,
  :class:`Detect`, :class:`VisionCondition`, :class:`WaitUntil` (``ocr``,
  ``match_template``, ``detect``, ``vision_condition``, ``wait_until``), :class:`Mouse`,
  :class:`Keyboard` (``mouse``, ``keyboard``), :class:`Wait`, :class:`Variable`,
  :class:`Condition`, :class:`Loop`, :class:`PythonCode` (``wait``, ``variable``,
  ``condition``, ``loop``, ``python``).
"""

from __future__ import annotations

from ._base import ANY_BRANCH, COMMON_PARAMS, ENV_REF, Inputs, Node, NodeContext, resolve_env_refs
from ._registry import (
    ENTRY_POINT_GROUP,
    NODES,
    get_node_class,
    node_types,
    register_node,
    unregister_node,
)
from .actions import Keyboard, Mouse
from .image import Crop, Preprocess
from .logic import Condition, Loop, PythonCode, Variable, Wait, evaluate
from .source import Source
from .vision import Detect, MatchTemplate, Ocr, VisionCondition, WaitUntil

__all__ = [
    "ANY_BRANCH",
    "COMMON_PARAMS",
    "ENTRY_POINT_GROUP",
    "ENV_REF",
    "NODES",
    "Condition",
    "Crop",
    "Detect",
    "Inputs",
    "Keyboard",
    "Loop",
    "MatchTemplate",
    "Mouse",
    "Node",
    "NodeContext",
    "Ocr",
    "Preprocess",
    "PythonCode",
    "Source",
    "Variable",
    "VisionCondition",
    "Wait",
    "WaitUntil",
    "evaluate",
    "get_node_class",
    "node_types",
    "register_node",
    "resolve_env_refs",
    "unregister_node",
]

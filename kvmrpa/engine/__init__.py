"""The flow engine: model, JSON I/O and import, validation, executor, debugger, events,
run records and the FlowManager.

* :class:`Flow` — nodes + edges + variables; ``add`` / ``connect``; ``save`` / ``load``
  (native format or the original system's, auto-detected); ``validate``;
* :class:`FlowRun` — one run (passes) on the runtime loop; :class:`RunResult`;
  :class:`NodeRecord` (per-node inputs / outputs of the last pass);
* :class:`Debugger` — breakpoints, pause, step, resume, run-to, re-runs;
* events (:class:`Event` and subclasses) as async iterators and callbacks;
* run records (:func:`list_runs`, :func:`read_run`);
* :class:`FlowManager` — the thread-safe owner of active flows;
* :func:`register_import_mapper` — how node modules map original-format node types.
"""

from __future__ import annotations

import os

from ._context import Inputs, NodeContext
from ._debugger import Debugger
from ._events import (
    Event,
    FlowFinished,
    FlowStarted,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    PassFinished,
    PassStarted,
    Paused,
    Resumed,
    Subscription,
)
from ._executor import FlowRun, NodeRecord, RunResult
from ._flow import SCHEMA_VERSION, Edge, Flow, FlowNode
from ._import import Mapped, OriginalNode, register_import_mapper
from ._manager import FlowManager
from ._records import list_runs, read_run
from ._validate import flow_schema

__all__ = [
    "SCHEMA_VERSION",
    "Debugger",
    "Edge",
    "Event",
    "Flow",
    "FlowFinished",
    "FlowManager",
    "FlowNode",
    "FlowRun",
    "FlowStarted",
    "Inputs",
    "Mapped",
    "NodeContext",
    "NodeFailed",
    "NodeFinished",
    "NodeRecord",
    "NodeSkipped",
    "NodeStarted",
    "OriginalNode",
    "PassFinished",
    "PassStarted",
    "Paused",
    "Resumed",
    "RunResult",
    "Subscription",
    "flow_schema",
    "list_runs",
    "load_flow",
    "read_run",
    "register_import_mapper",
]


def load_flow(path: str | os.PathLike[str]) -> Flow:
    """Read a flow file (native or original format); raises on any problem."""
    return Flow.load(path)

"""The flow engine: model, JSON I/O and import, validation, executor, debugger, events,
run records and the FlowManager.

* :class:`Flow` — nodes + edges + variables; ``add`` / ``connect``; ``save`` / ``load``
  (native format or the original system's, auto-detected); ``validate``;
* :class:`FlowRun` — one run (passes) on the runtime loop; :class:`RunResult`;
  :class:`NodeRecord` (per-node inputs / outputs of the last pass);
* :class:`Debugger` — breakpoints, pause, step, resume, run-to, re-runs; it is an
  :class:`ExecutionGate`, the public protocol through which a controller holds nodes;
* :class:`NodeStatus` — a node's state (a ``str`` enum: ``status == "done"`` works);
* events (:class:`Event` and subclasses) as async iterators and callbacks;
* run records (:func:`list_runs`, :func:`read_run`), their reports (:class:`RunReport`,
  ``RunResult.report()``) and ``replay://RUN_ID`` (a source playing a run's frames);
* macro text (DuckyScript-like): :func:`macro_to_flow`, :func:`read_macro`,
  :func:`flow_to_macro`;
* :class:`FlowManager` — the thread-safe owner of active flows;
* :class:`TemplateStore` — a flow's template images (``templates/`` beside the flow
  file): save a crop of a frame with its capture metadata, list, rename, delete, load.
* :class:`Recorder` — console actions (clicks, keys, typed text) turned into a flow of
  anchored steps.

Files in the original system's format are read through :mod:`kvmrpa.legacy`.
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
    NodeStatus,
    NodeStopped,
    PassFinished,
    PassStarted,
    Paused,
    Resumed,
    StopRequested,
    Subscription,
)
from ._executor import FlowRun, NodeRecord, RunResult
from ._flow import SCHEMA_VERSION, Edge, Flow, FlowNode
from ._hooks import ExecutionGate
from ._macro import flow_to_macro, macro_to_flow, read_macro
from ._manager import FlowManager
from ._recorder import Recorder
from ._records import list_runs, read_run
from ._report import RunReport
from ._sources import override_sources, source_nodes
from ._templates import TemplateInfo, TemplateStore, safe_template_name
from ._validate import flow_schema

#: The engine's debugger under the name the top-level package exports (the widget of
#: the same purpose is :class:`kvmrpa.widgets.Debugger`).
FlowDebugger = Debugger

__all__ = [
    "SCHEMA_VERSION",
    "Debugger",
    "Edge",
    "Event",
    "ExecutionGate",
    "Flow",
    "FlowDebugger",
    "FlowFinished",
    "FlowManager",
    "FlowNode",
    "FlowRun",
    "FlowStarted",
    "Inputs",
    "NodeContext",
    "NodeFailed",
    "NodeFinished",
    "NodeRecord",
    "NodeSkipped",
    "NodeStarted",
    "NodeStatus",
    "NodeStopped",
    "PassFinished",
    "PassStarted",
    "Paused",
    "Recorder",
    "Resumed",
    "RunReport",
    "RunResult",
    "StopRequested",
    "Subscription",
    "TemplateInfo",
    "TemplateStore",
    "flow_schema",
    "flow_to_macro",
    "list_runs",
    "load_flow",
    "macro_to_flow",
    "override_sources",
    "read_macro",
    "read_run",
    "safe_template_name",
    "source_nodes",
]


def load_flow(path: str | os.PathLike[str]) -> Flow:
    """Read a flow file (native or original format); raises on any problem."""
    return Flow.load(path)

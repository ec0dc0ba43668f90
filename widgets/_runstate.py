"""Run state for the UI: node states, timeline and status text folded from run events.

:class:`RunState` is fed the executor's typed events (from any thread) and answers what
the widgets draw: each node's state (``pending``, ``running``, ``done``, ``failed``,
``skipped``, ``paused``), the timeline of the last pass (start/end per node, seconds from
the pass start), and the flow status text (``idle``, ``running``, ``paused``, ``ok``,
``stopped``, ``failed: <node> <reason>``). Widgets poll :attr:`version` from their own
thread and redraw when it changed, so no UI object is touched from the runtime thread.
:func:`layered_layout` places a flow's nodes in columns by topological depth.
No UI package here.
"""

from __future__ import annotations

import graphlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NODE_STATES", "NodeTiming", "RunState", "event_field", "layered_layout"]

NODE_STATES = ("pending", "running", "done", "failed", "skipped", "paused")


def event_field(event: Any, name: str, default: Any = None) -> Any:
    """A field of a typed event or of its dict form."""
    if isinstance(event, Mapping):
        return event.get(name, default)
    return getattr(event, name, default)


@dataclass
class NodeTiming:
    """When a node ran in the last pass (seconds from the pass start)."""

    start: float | None = None
    end: float | None = None
    runs: int = 0


@dataclass
class RunState:
    """Node states, timeline and status of one flow's current (or last) run."""

    nodes: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    timing: dict[str, NodeTiming] = field(default_factory=dict)
    status: str = "idle"
    paused_at: str | None = None
    passes: int = 0
    failures: int = 0
    version: int = 0
    log: list[str] = field(default_factory=list)
    _pass_t0: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self, nodes: Iterable[str]) -> None:
        """Forget the last run: every node pending, status idle."""
        with self._lock:
            self.nodes = list(nodes)
            self.states = dict.fromkeys(self.nodes, "pending")
            self.timing = {n: NodeTiming() for n in self.nodes}
            self.status = "idle"
            self.paused_at = None
            self.version += 1

    def set_status(self, status: str) -> None:
        with self._lock:
            self.status = status
            self.version += 1

    def _note(self, line: str) -> None:
        self.log.append(line)
        if len(self.log) > 200:
            del self.log[:-200]

    def apply(self, event: Any) -> None:
        """Fold one event (typed event or its dict) into the state (thread-safe)."""
        kind = event_field(event, "kind")
        node = event_field(event, "node")
        t = float(event_field(event, "t", 0.0) or 0.0)
        with self._lock:
            self.version += 1
            if kind == "flow_started":
                self.states = dict.fromkeys(self.nodes, "pending")
                self.timing = {n: NodeTiming() for n in self.nodes}
                self.status, self.paused_at = "running", None
                self._note(f"{t:7.2f}s run started")
            elif kind == "pass_started":
                self.states = dict.fromkeys(self.nodes, "pending")
                self.timing = {n: NodeTiming() for n in self.nodes}
                self._pass_t0 = t
                if self.status != "paused":
                    self.status = "running"
            elif kind == "pass_finished":
                self.passes += 1
                if event_field(event, "status") == "failed":
                    self.failures += 1
            elif kind == "node_started" and node is not None:
                self._ensure(node)
                self.states[node] = "running"
                tm = self.timing[node]
                tm.start, tm.end = t - self._pass_t0, None
                tm.runs += 1
                if self.paused_at == node:
                    self.paused_at = None
            elif kind == "node_finished" and node is not None:
                self._ensure(node)
                self.states[node] = "done"
                self._end(node, t)
                self._note(f"{t:7.2f}s {node} done ({float(event_field(event, 'duration', 0)) * 1000:.0f} ms)")
            elif kind == "node_failed" and node is not None:
                self._ensure(node)
                self.states[node] = "failed"
                self._end(node, t)
                error = str(event_field(event, "error", ""))
                self._note(f"{t:7.2f}s {node} failed: {error}")
                if not event_field(event, "handled", False):
                    self.status = f"failed: {node} {_short(error)}"
            elif kind == "node_skipped" and node is not None:
                self._ensure(node)
                self.states[node] = "skipped"
            elif kind == "paused":
                self.paused_at = node
                if node is not None:
                    self._ensure(node)
                    if self.states.get(node) == "pending":
                        self.states[node] = "paused"
                self.status = "paused"
                self._note(f"{t:7.2f}s paused before {node} ({event_field(event, 'reason', '')})")
            elif kind == "resumed":
                if self.paused_at is not None and self.states.get(self.paused_at) == "paused":
                    self.states[self.paused_at] = "pending"
                self.paused_at = None
                self.status = "running"
            elif kind == "flow_finished":
                status = str(event_field(event, "status", "ok"))
                error = event_field(event, "error")
                if status == "failed":
                    if not self.status.startswith("failed"):
                        self.status = f"failed: {_short(str(error or 'error'))}"
                else:
                    self.status = status
                self.paused_at = None
                for n, s in self.states.items():
                    if s == "paused":
                        self.states[n] = "pending"
                self._note(f"{t:7.2f}s run {status}" + (f": {error}" if error else ""))

    def _ensure(self, node: str) -> None:
        if node not in self.states:
            self.nodes.append(node)
            self.states[node] = "pending"
            self.timing[node] = NodeTiming()

    def _end(self, node: str, t: float) -> None:
        tm = self.timing[node]
        tm.end = t - self._pass_t0
        if tm.start is None:
            tm.start = tm.end

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy: states, timing, status, paused_at, passes, failures, log."""
        with self._lock:
            return {
                "version": self.version, "states": dict(self.states),
                "timing": {n: (t.start, t.end) for n, t in self.timing.items()},
                "status": self.status, "paused_at": self.paused_at, "passes": self.passes,
                "failures": self.failures, "log": list(self.log[-50:]),
            }


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layered_layout(nodes: Iterable[str], edges: Iterable[tuple[str, str]],
                   dx: float = 190.0, dy: float = 74.0) -> dict[str, tuple[float, float]]:
    """Positions ``{node: (x, y)}``: column = longest path from a source node, rows in
    insertion order. Cycles (invalid flows) fall back to insertion order."""
    order = list(nodes)
    preds: dict[str, set[str]] = {n: set() for n in order}
    for s, t in edges:
        if s in preds and t in preds:
            preds[t].add(s)
    depth: dict[str, int] = {}
    try:
        topo = list(graphlib.TopologicalSorter(preds).static_order())
    except graphlib.CycleError:
        topo = order
        preds = {n: set() for n in order}
    for n in topo:
        depth[n] = max((depth.get(p, 0) + 1 for p in preds[n]), default=0)
    rows: dict[int, int] = {}
    out: dict[str, tuple[float, float]] = {}
    for n in order:
        d = depth.get(n, 0)
        r = rows.get(d, 0)
        rows[d] = r + 1
        out[n] = (20 + d * dx, 20 + r * dy)
    return out

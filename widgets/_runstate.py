"""Run state for the UI: node states, timeline, status, outcome, log and metrics folded
from run events, and the feed that follows a flow's runs.

:class:`RunState` is fed the executor's typed events (from any thread) and answers what
the widgets draw: each node's state (``pending``, ``running``, ``done``, ``failed``,
``stopped`` — cut by Stop, not an error —, ``skipped``, ``paused``), the timeline of the
last pass (start/end per node, seconds from the pass start), the flow status text
(``idle``, ``running``, ``paused``, ``ok``, ``stopped``, ``failed: <node> <reason>``), the
outcome of the last pass a person can read (``ok · 1 action`` or ``ok · nothing done
(trigger → false; 2 skipped)``), the last 500 log lines and passes/min over a sliding
window of completed passes. Listeners (:meth:`RunState.subscribe`) are told after each
change, from the thread that applied it: they push the change to their views.

:class:`FlowFeed` follows one flow's current run: it subscribes to the run's events on the
runtime loop and seeds the state from the run's records in the same step, so no event is
lost or counted twice however late a view opens. :func:`layered_layout` places a flow's
nodes in columns by topological depth. No UI package here.
"""

from __future__ import annotations

import collections
import graphlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kvmrpa._redact import redact

__all__ = ["NODE_STATES", "FlowFeed", "NodeTiming", "RunState", "StateChanges", "StateMark",
           "event_field", "layered_layout"]

NODE_STATES = ("pending", "running", "done", "failed", "stopped", "skipped", "paused")
#: Node types whose run sends input to the target (an "action" for the outcome).
ACTION_TYPES = frozenset({"mouse", "keyboard"})
LOG_LINES = 500
#: Seconds of completed passes that passes/min is computed over.
RATE_WINDOW = 60.0
_RECORD_STATE = {"held": "paused", "created": "pending"}


def event_field(event: Any, name: str, default: Any = None) -> Any:
    """A field of a typed event or of its dict form."""
    if isinstance(event, Mapping):
        return event.get(name, default)
    return getattr(event, name, default)


def _text(value: Any) -> str:
    """An enum member's value, or the string itself."""
    return str(getattr(value, "value", value))


_TABLES = itertools.count(1)


class _NodeStates(dict[str, str]):
    """Node id → state, remembering the order entries were last set in, so what changed
    after a :class:`StateMark` is read in the number of changes (a thousand-node view
    pushing a few changes many times a second). A new table (a new run or pass) is a new
    ``table`` id: marks of the old one ask for all states."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.table = next(_TABLES)
        self.sets = 0
        self._touched: dict[str, int] = {}

    def __setitem__(self, key: str, value: str) -> None:
        if key in self and dict.__getitem__(self, key) == value:
            return
        super().__setitem__(key, value)
        self.sets += 1
        self._touched.pop(key, None)  # to the end: the newest change
        self._touched[key] = self.sets

    def changed_after(self, sets: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, at in reversed(self._touched.items()):
            if at <= sets:
                break
            out[key] = dict.__getitem__(self, key)
        return out


class StateMark(NamedTuple):
    """Where a reader of :meth:`RunState.state_changes` got to."""

    table: int
    #: How many settings of that table had been made.
    sets: int


class StateChanges(NamedTuple):
    """The answer of :meth:`RunState.state_changes`: ``full`` (every node's state) when
    no difference can be given, else ``changed`` (the nodes set since the mark)."""

    mark: StateMark
    full: dict[str, str] | None
    changed: dict[str, str]


@dataclass
class NodeTiming:
    """When a node ran in the last pass (seconds from the pass start)."""

    start: float | None = None
    end: float | None = None
    runs: int = 0


@dataclass
class RunState:
    """Node states, timeline, status, outcome, log and metrics of one flow's runs."""

    nodes: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=_NodeStates)
    timing: dict[str, NodeTiming] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    status: str = "idle"
    outcome: str = ""
    paused_at: str | None = None
    passes: int = 0
    failures: int = 0
    version: int = 0
    run_id: str | None = None
    #: Wall time (epoch s) of the newest event folded in.
    last_wall: float = 0.0
    #: Wall time each node last finished (its results are that fresh).
    finished_wall: dict[str, float] = field(default_factory=dict)
    log: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=LOG_LINES))
    _pass_ends: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=10_000), repr=False)
    _pass_t0: float = 0.0
    _actions: int = 0
    _skipped: int = 0
    _branches: list[tuple[str, str]] = field(default_factory=list, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)

    # -- listeners ------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every change (from the changing thread); returns an
        unsubscribe function. Listeners must be quick: schedule, do not render."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _changed(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # a view's problem never stops the state
                import logging

                logging.getLogger("kvmrpa.widgets").debug("run-state listener failed",
                                                          exc_info=True)

    # -- changes --------------------------------------------------------------------------
    def reset(self, nodes: Iterable[str], types: Mapping[str, str] | None = None) -> None:
        """Forget the last run's node states: every node pending, status idle (the log
        and its lines stay)."""
        with self._lock:
            self.nodes = list(nodes)
            self.types = dict(types or {})
            self.states = _NodeStates(dict.fromkeys(self.nodes, "pending"))
            self.timing = {n: NodeTiming() for n in self.nodes}
            self.status, self.outcome, self.paused_at = "idle", "", None
            self.version += 1
        self._changed()

    def set_status(self, status: str) -> None:
        with self._lock:
            self.status = status
            self.version += 1
        self._changed()

    def note(self, line: str) -> None:
        """Add a line to the log (from outside the run: a stop request, a save)."""
        with self._lock:
            self.log.append(redact(line))
            self.version += 1
        self._changed()

    def seed(self, run: Any) -> None:
        """Take the state of ``run`` from its records (when following it mid-way)."""
        with self._lock:
            flow = run.flow
            self.nodes = list(flow.nodes)
            self.types = {nid: fn.type for nid, fn in flow.nodes.items()}
            self.run_id = getattr(run, "run_id", None)
            self.states, self.timing = _NodeStates(), {}
            for nid in self.nodes:
                rec = run.nodes.get(nid)
                status = "pending" if rec is None else _text(rec.status)
                self.states[nid] = _RECORD_STATE.get(status, status)
                self.timing[nid] = NodeTiming(getattr(rec, "started", None),
                                              getattr(rec, "finished", None),
                                              getattr(rec, "runs", 0))
            status = _text(run.status)
            self.paused_at = getattr(run, "paused_at", None)
            if getattr(run, "paused", False):
                self.status = "paused"
            elif status in ("created", "running"):
                self.status = "running"
            elif status == "failed":
                self.status = f"failed: {_short(str(run.error or 'error'))}"
            else:
                self.status = status
            self.passes = int(getattr(run, "passes", 0) or 0)
            self.version += 1
        self._changed()

    def apply(self, event: Any) -> None:
        """Fold one event (typed event or its dict) into the state (thread-safe)."""
        with self._lock:
            self._apply(event)
        self._changed()

    def _apply(self, event: Any) -> None:
        kind = event_field(event, "kind")
        node = event_field(event, "node")
        t = float(event_field(event, "t", 0.0) or 0.0)
        self.version += 1
        self.last_wall = float(event_field(event, "wall", 0.0) or 0.0) or time.time()
        if node is not None and event_field(event, "type"):
            self.types[node] = str(event_field(event, "type"))
        if kind == "flow_started":
            self.states = _NodeStates(dict.fromkeys(self.nodes, "pending"))
            self.timing = {n: NodeTiming() for n in self.nodes}
            self.status, self.outcome, self.paused_at = "running", "", None
            self.passes = self.failures = 0
            self._pass_ends.clear()
            self.run_id = event_field(event, "run_id", self.run_id)
            planned = int(event_field(event, "passes", 1) or 0)
            what = "in a loop" if planned == 0 else ("once" if planned == 1 else f"{planned} passes")
            self._note(t, f"run started ({what})")
        elif kind == "pass_started":
            self.states = _NodeStates(dict.fromkeys(self.nodes, "pending"))
            self.timing = {n: NodeTiming() for n in self.nodes}
            self._pass_t0 = t
            self._actions = self._skipped = 0
            self._branches = []
            if self.status != "paused":
                self.status = "running"
        elif kind == "pass_finished":
            status = _text(event_field(event, "status", "ok"))
            self.passes += 1
            self._pass_ends.append(self.last_wall)
            if status == "failed":
                self.failures += 1
            if status == "stopped":
                self._cut()
            self.outcome = str(event_field(event, "outcome") or self._outcome(status, event))
            self._note(t, f"pass {self.passes} {self.outcome}")
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
            self.finished_wall[node] = self.last_wall
            if self.types.get(node) in ACTION_TYPES:
                self._actions += 1
            branch = event_field(event, "branch")
            if branch is not None:
                self._branches.append((node, str(branch)))
            ms = float(event_field(event, "duration", 0) or 0) * 1000
            self._note(t, f"{node} done ({ms:.0f} ms)" + (f" → {branch}" if branch else ""))
        elif kind in ("node_stopped", "node_cancelled") and node is not None:
            self._ensure(node)
            self.states[node] = "stopped"
            self._end(node, t)
            self._note(t, f"{node} stopped")
        elif kind == "node_failed" and node is not None:
            self._ensure(node)
            error = str(event_field(event, "error", ""))
            if _text(event_field(event, "status", "")) == "stopped" or event_field(event, "stopped"):
                self.states[node] = "stopped"
                self._end(node, t)
                self._note(t, f"{node} stopped")
                return
            self.states[node] = "failed"
            self._end(node, t)
            self._note(t, f"{node} failed: {_short(error)}")
            if not event_field(event, "handled", False):
                self.status = f"failed: {node} {_short(error)}"
        elif kind == "node_skipped" and node is not None:
            self._ensure(node)
            self.states[node] = "skipped"
            self._skipped += 1
        elif kind == "paused":
            self.paused_at = node
            if node is not None:
                self._ensure(node)
                if self.states.get(node) == "pending":
                    self.states[node] = "paused"
            self.status = "paused"
            reason = event_field(event, "reason", "") or ""
            if node is not None:
                self._note(t, f"paused before {node}" + (f" ({reason})" if reason else ""))
            else:
                self._note(t, "paused")
        elif kind == "resumed":
            if self.paused_at is not None and self.states.get(self.paused_at) == "paused":
                self.states[self.paused_at] = "pending"
            self.paused_at = None
            self.status = "running"
            self._note(t, "resumed")
        elif kind == "flow_finished":
            status = _text(event_field(event, "status", "ok"))
            error = event_field(event, "error")
            if status == "failed":
                if not self.status.startswith("failed"):
                    self.status = f"failed: {_short(str(error or 'error'))}"
            else:
                self.status = status
            if status == "stopped":
                self._cut()
                self.outcome = "stopped"
            elif event_field(event, "outcome"):
                self.outcome = str(event_field(event, "outcome"))
            self.paused_at = None
            for n, s in self.states.items():
                if s == "paused":
                    self.states[n] = "pending"
            self._note(t, f"run {status}" + (f": {_short(str(error))}" if error else ""))

    def _cut(self) -> None:
        """Nodes still running when the run was stopped: stopped, not failed."""
        for n, s in self.states.items():
            if s == "running":
                self.states[n] = "stopped"

    def _outcome(self, status: str, event: Any) -> str:
        if status == "stopped":
            return "stopped"
        if status == "failed":
            failed = next((n for n, s in self.states.items() if s == "failed"), None)
            return "failed" + (f" · {failed}" if failed else "")
        if self._actions:
            return f"ok · {self._actions} action" + ("s" if self._actions != 1 else "")
        has_actions = any(self.types.get(n) in ACTION_TYPES for n in self.nodes)
        if not has_actions:
            return "ok"
        why = [f"{n} → {b}" for n, b in self._branches[-1:]]
        if self._skipped:
            why.append(f"{self._skipped} skipped")
        return "ok · nothing done" + (f" ({'; '.join(why)})" if why else "")

    def _note(self, t: float, line: str) -> None:
        self.log.append(redact(f"{t:7.2f}s {line}"))  # what pages show is redacted

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

    # -- reading --------------------------------------------------------------------------
    def passes_per_min(self) -> float | None:
        """Passes per minute over the completed passes of the last minute before the
        latest one (None with fewer than two)."""
        with self._lock:
            ends = list(self._pass_ends)
        if len(ends) < 2:
            return None
        last = ends[-1]
        window = [e for e in ends if e >= last - RATE_WINDOW]
        if len(window) < 2 or window[-1] <= window[0]:
            return None
        return (len(window) - 1) / (window[-1] - window[0]) * 60.0

    @property
    def outcome_kind(self) -> str:
        """``nothing`` when the last pass did nothing, else the outcome's first word."""
        if "nothing done" in self.outcome:
            return "nothing"
        return (self.outcome or self.status).split(" ")[0].split(":")[0]

    def state_changes(self, since: StateMark | None = None) -> StateChanges:
        """The node states set after ``since`` (a mark an earlier call returned), in the
        number of changes; every state (``full``) with no mark, or when the states were
        replaced since (a new run or pass)."""
        with self._lock:
            table = self.states
            if not isinstance(table, _NodeStates):  # replaced from outside
                table = self.states = _NodeStates(table)
            mark = StateMark(table.table, table.sets)
            if since is None or since.table != table.table:
                return StateChanges(mark, dict(table), {})
            return StateChanges(mark, None, table.changed_after(since.sets))

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy: states, timing, status, outcome, paused_at, passes, failures,
        log, passes_per_min, last_wall, finished_wall."""
        rate = self.passes_per_min()
        with self._lock:
            return {
                "version": self.version, "states": dict(self.states),
                "timing": {n: (t.start, t.end) for n, t in self.timing.items()},
                "status": self.status, "outcome": self.outcome,
                "outcome_kind": self.outcome_kind, "paused_at": self.paused_at,
                "passes": self.passes, "failures": self.failures, "log": list(self.log),
                "passes_per_min": rate, "last_wall": self.last_wall,
                "finished_wall": dict(self.finished_wall), "run_id": self.run_id,
            }


class FlowFeed:
    """Follows the runs of one flow into one :class:`RunState` (process-wide: every view
    of the flow reads the same state)."""

    def __init__(self, name: str, nodes: Iterable[str] = (),
                 types: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.state = RunState()
        self.state.reset(nodes, types)
        self.run: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def follow(self, run: Any) -> None:
        """Show ``run`` from now on: subscribe to its events and take its current state,
        in one step on the runtime loop (no event is missed or applied twice)."""
        from kvmrpa._runtime import get_runtime

        runtime = get_runtime()

        async def follow() -> None:
            self._follow(run)

        try:
            import asyncio

            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is runtime.loop:
            self._follow(run)
        else:
            runtime.run(follow(), timeout=30)

    def _follow(self, run: Any) -> None:
        with self._lock:
            if run is self.run:
                return
            if self._unsubscribe is not None:
                self._unsubscribe()
            self.run = run
            self._unsubscribe = run.on_event(self.state.apply)
        self.state.seed(run)

    def close(self) -> None:
        """Stop following (the run goes on)."""
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._unsubscribe = None


def _short(text: str, limit: int = 160) -> str:
    """One line of at most ``limit`` characters, redacted before it is cut (so a cut
    never shows part of a secret)."""
    text = " ".join(redact(text).split())
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

"""The concurrent DAG executor: :class:`FlowRun` runs passes of a flow on the runtime loop.

Semantics of one pass (DESIGN "Flows and their execution"):

* a node is **ready** when every incoming edge is resolved; it starts at once, so every
  ready node runs concurrently (a blocking ``run`` goes to the runtime's thread pool);
* an edge is *live* when its source finished and the edge has no branch label or the
  label the source returned; an ``error`` edge is live when its source failed; any other
  edge resolves as *skipped*. A node whose incoming edges are all skipped is skipped and
  propagates the skip; a join runs when its last live input arrives (its inputs are the
  live ones);
* a failure fails the pass fast (running siblings cancelled), unless the node's
  ``on_error`` is ``continue`` (its unlabelled edges go on, without output) or an
  ``error`` edge handles it; ``timeout`` and ``retries`` apply per node;
* :meth:`FlowRun.stop` cancels in-flight work at once and releases sources and drivers
  (a source still opening when the stop comes is released as soon as it lands). A
  *blocking* ``run`` cannot be interrupted inside its thread: on stop or timeout its
  result is discarded when it returns, and its pool thread is busy until then.

A node's status in the last pass is ``pending`` (not started), ``held`` (ready but held
by the debugger; ``pending`` in results), ``running``, ``done``, ``failed`` (raised,
timed out, or cancelled by fail-fast / stop: ``NodeRecord.error`` says which) or
``skipped``.

Loop mode (``passes=0`` or ``passes>1``) repeats passes, ``interval`` seconds apart
(start to start), until stopped or a node calls ``ctx.finish_run()``; variables and each
node's ``ctx.state`` persist; a failed pass does not end the run unless ``stop_on_error``.

Debugging hooks (:mod:`._debugger`) act at one point, the moment a node becomes ready
(``_gate``); with no debugger attached the check is a single ``is None``.

All scheduling state lives on the runtime loop; the public methods are thread-safe
(sync forms block on the loop, async forms work from any loop).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import copy
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import FlowStateError, NodeError, NodeTimeoutError
from .._runtime import get_runtime
from .._settings import get_settings
from .._urls import redact_url
from ..nodes import Node
from ._context import CURRENT_NODE, Inputs, NodeContext, Resources
from ._events import (
    Event,
    EventBus,
    FlowFinished,
    FlowStarted,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    PassFinished,
    PassStarted,
    Subscription,
    summarize,
)
from ._flow import Flow
from ._records import RunRecord, get_run_store

if TYPE_CHECKING:  # pragma: no cover
    from ._debugger import Debugger

__all__ = ["FlowRun", "NodeRecord", "RunResult"]

log = logging.getLogger("kvmrpa.engine")

PENDING, HELD, RUNNING, DONE, FAILED, SKIPPED = (
    "pending", "held", "running", "done", "failed", "skipped")


@dataclass(slots=True)
class NodeRecord:
    """What the last pass did with one node (kept for inspection)."""

    id: str
    type: str
    status: str = PENDING
    runs: int = 0
    attempts: int = 0
    started: float | None = None
    finished: float | None = None
    inputs: Inputs | None = None
    output: dict[str, Any] | None = None
    branch: str | None = None
    error: BaseException | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "status": self.status if self.status != HELD else PENDING,
                "runs": self.runs,
                "started_s": None if self.started is None else round(self.started, 6),
                "finished_s": None if self.finished is None else round(self.finished, 6)}


@dataclass
class RunResult:
    """The outcome of a run (``as_dict`` is the ``kvmrpa run --json`` object)."""

    flow: str
    status: str
    passes: int
    error: str | None
    nodes: dict[str, dict[str, Any]]
    variables: dict[str, Any]
    actions: list[dict[str, Any]]
    source: dict[str, Any]
    run_id: str = ""
    record: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "status": self.status, "passes": self.passes,
                "error": self.error, "nodes": self.nodes, "variables": self.variables,
                "actions": self.actions, "source": self.source}


class _Graph:
    """The structure of a flow, compiled once per run."""

    __slots__ = ("blocking", "indeg", "order", "out", "policy", "preds", "types")

    def __init__(self, flow: Flow) -> None:
        self.order: list[str] = list(flow.nodes)
        self.types = {nid: fn.type for nid, fn in flow.nodes.items()}
        self.blocking = {nid: fn.node.is_blocking() for nid, fn in flow.nodes.items()}
        #: (attempts, timeout, retry_delay, continue_on_error, has_env_refs) per node,
        #: read once: param attribute access is too slow for the hot path.
        self.policy: dict[str, tuple[int, float, float, bool, bool]] = {}
        for nid in self.order:
            self.refresh(flow, nid)
        self.preds: dict[str, list[str]] = {nid: [] for nid in self.order}
        self.out: dict[str, list[tuple[str, str | None]]] = {nid: [] for nid in self.order}
        self.indeg: dict[str, int] = dict.fromkeys(self.order, 0)
        for e in flow.edges:
            self.out[e.source].append((e.target, e.branch))
            self.indeg[e.target] += 1
            if e.source not in self.preds[e.target]:
                self.preds[e.target].append(e.source)

    def refresh(self, flow: Flow, nid: str) -> None:
        """Re-read a node's execution policy (after its parameters changed)."""
        node = flow.nodes[nid].node
        self.policy[nid] = (node.retries + 1, float(node.timeout), float(node.retry_delay),
                            node.on_error == "continue", bool(node.env_refs()))

    def descendants(self, start: str) -> set[str]:
        seen = {start}
        stack = [start]
        while stack:
            for target, _b in self.out[stack.pop()]:
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen


class _Pass:
    """Scheduling state of one pass."""

    __slots__ = ("done", "error", "error_in", "held", "index", "live", "outputs",
                 "outstanding", "remaining", "t0", "tasks")

    def __init__(self, graph: _Graph, index: int, loop: asyncio.AbstractEventLoop) -> None:
        self.index = index
        self.remaining = dict(graph.indeg)
        self.live = dict.fromkeys(graph.order, 0)
        self.error_in: dict[str, BaseException] = {}
        self.outputs: dict[str, dict[str, Any] | None] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.held: list[str] = []
        self.outstanding = len(graph.order)
        self.error: NodeError | None = None
        self.done: asyncio.Future[None] = loop.create_future()
        self.t0 = time.perf_counter()


def _run_blocking(ctx_vars: contextvars.Context, fn: Callable[..., Any], *args: Any) -> Any:
    return ctx_vars.run(fn, *args)


class FlowRun:
    """One run of a flow: one or more passes, with events, records and debug hooks.

    Options: ``passes`` (1; 0 = until stopped), ``interval`` (seconds between pass
    starts), ``duration`` (stop after so many seconds), ``source`` / ``input`` (override
    the flow's URLs), ``variables`` (initial values over the flow's), ``record`` (write
    a run record), ``debug`` (attach a :class:`~kvmrpa.engine.Debugger`),
    ``breakpoints``, ``stop_on_error``.
    """

    def __init__(self, flow: Flow, *, passes: int | None = None, interval: float | None = None,
                 duration: float | None = None, source: str | None = None,
                 input: str | None = None, variables: Mapping[str, Any] | None = None,
                 record: bool = True, debug: bool = False,
                 breakpoints: Iterable[str] = (), stop_on_error: bool = False) -> None:
        flow.validate()
        settings = get_settings().engine
        self.flow = flow
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        passes = flow.passes if passes is None else passes
        self.planned = 1 if passes is None else int(passes)
        if self.planned < 0:
            raise ValueError(f"passes must be >= 0, got {passes}")
        self.interval = float(flow.interval or 0.0) if interval is None else float(interval)
        self.duration_limit = duration
        self.source_url = source or flow.source
        self.input_url = input or flow.input
        self.stop_on_error = stop_on_error
        self.variables: dict[str, Any] = copy.deepcopy(flow.variables)
        if variables:
            self.variables.update(variables)
        self.status = "created"
        self.passes = 0
        self.error: str | None = None
        #: The errors of the last failed passes (bounded: loop mode may fail forever).
        self.errors: collections.deque[str] = collections.deque(maxlen=100)
        self.actions: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
        self.last_pass_duration: float | None = None
        self._graph = _Graph(flow)
        self.nodes: dict[str, NodeRecord] = {
            nid: NodeRecord(nid, t) for nid, t in self._graph.types.items()}
        self.history: collections.deque[dict[str, NodeRecord]] = collections.deque(
            maxlen=max(0, settings.keep_passes - 1))
        self._node_state: dict[str, dict[str, Any]] = {}
        self._bus = EventBus(settings.event_buffer)
        self._record_wanted = record
        self._record: RunRecord | None = None
        self._resources = Resources(self)
        self._pass: _Pass | None = None
        self._gate: Debugger | None = None
        self._stop_requested = False
        self._finish_requested = False
        self._source_info: dict[str, Any] = {}
        self._started = False
        self._stop_reason: str | None = None
        self._stop_event: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._done = concurrent.futures.Future[RunResult]()
        self._waiters: list[asyncio.Future[None]] = []
        self._t_start = 0.0
        self._wall_start = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._any_failed = False
        self._pass_failed = False
        self._grace = settings.stop_grace
        #: Coroutines blocking nodes are waiting on through ``ctx.call`` (cancelled on stop).
        self._calls: set[concurrent.futures.Future[Any]] = set()
        if debug or breakpoints:
            from ._debugger import Debugger

            Debugger(self, breakpoints=breakpoints)

    # -- public: lifecycle ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.flow.name

    @property
    def done(self) -> bool:
        """True once the run has ended (ok, failed or stopped)."""
        return self._done.done()

    @property
    def debugger(self) -> Debugger:
        """The debugger of this run (attached on first access)."""
        if self._gate is None:
            from ._debugger import Debugger

            Debugger(self)
        assert self._gate is not None
        return self._gate

    @property
    def paused(self) -> bool:
        """True while the run's debugger holds it paused (by :meth:`Debugger.pause`, a
        breakpoint or a run-to); False once the run has ended. Reading it, unlike
        :attr:`debugger`, attaches no debugger."""
        gate = self._gate
        return gate is not None and gate.paused and not self.done

    @property
    def paused_at(self) -> str | None:
        """The node the paused run stopped before (a breakpoint or a run-to target);
        ``None`` when it is not paused, or was paused between nodes by a plain pause.
        Reading it attaches no debugger."""
        gate = self._gate
        return gate.paused_at if gate is not None and gate.paused and not self.done else None

    @property
    def record_path(self) -> str | None:
        return str(self._record.path) if self._record else None

    def start(self) -> FlowRun:
        """Start in the background (thread-safe, returns at once)."""
        runtime = get_runtime()
        if runtime.in_loop_thread():
            self._begin()
        else:
            runtime.run(self._abegin())
        return self

    async def astart(self) -> FlowRun:
        """Async form of :meth:`start`, from any loop."""
        await self._on_loop(self._abegin())
        return self

    async def _abegin(self) -> None:
        self._begin()

    def _begin(self) -> None:
        if self._started or self._done.done():
            raise FlowStateError(f"run {self.run_id} of flow {self.name!r} was already started "
                                 "or stopped", flow=self.name)
        self._started = True
        self.status = "paused" if self._gate is not None and self._gate.paused else "running"
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._main = self._loop.create_task(self._run_main(), name=f"kvmrpa-flow-{self.name}")

    def result(self, timeout: float | None = None) -> RunResult:
        """Block until the run ends; returns its :class:`RunResult`."""
        if get_runtime().in_loop_thread():
            raise FlowStateError("result() would block the runtime loop; await aresult()",
                                 flow=self.name)
        try:
            return self._done.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"flow {self.name!r} did not finish within {timeout} s") from None

    async def aresult(self) -> RunResult:
        """Wait for the end of the run (from any event loop)."""
        return await asyncio.wrap_future(self._done)

    def stop(self, timeout: float | None = 5.0) -> RunResult | None:
        """Stop now (cancel in-flight nodes, release resources); wait for the end."""
        if not self._started:
            self._finish_unstarted()
            return self._done.result()
        get_runtime().call_soon(self._request_stop, "stop")
        if get_runtime().in_loop_thread():
            return None
        return self.result(timeout)

    async def astop(self) -> RunResult:
        """Async form of :meth:`stop`."""
        if not self._started:
            self._finish_unstarted()
        else:
            get_runtime().call_soon(self._request_stop, "stop")
        return await self.aresult()

    def _finish_unstarted(self) -> None:
        self.status = "stopped"
        if not self._done.done():
            self._done.set_result(self._result())

    # -- public: events ------------------------------------------------------------------
    def events(self, maxsize: int | None = None) -> Subscription:
        """Subscribe before starting: an async iterator (or ``.get()``) of :class:`Event`."""
        return self._bus.subscribe(maxsize)

    def on_event(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for each event (from a dispatcher task); returns an
        unsubscribe function."""
        return self._bus.on_event(callback, get_runtime().loop)

    # -- internals: loop helpers ---------------------------------------------------------
    async def _on_loop(self, coro: Any) -> Any:
        runtime = get_runtime()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - always called from a coroutine
            running = None
        if running is runtime.loop:
            return await coro
        return await asyncio.wrap_future(runtime.submit(coro))

    def _notify(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def _until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut

    def _t(self) -> float:
        return time.monotonic() - self._t_start

    def _emit(self, cls: type[Event], **fields: Any) -> None:
        self._bus.publish(cls(flow=self.flow.name, run_id=self.run_id, t=self._t(),
                              wall=time.time(), **fields))

    def _record_action(self, node_id: str, action: Mapping[str, Any]) -> None:
        data = {"node": node_id, **action}
        self.actions.append(data)
        if self._record is not None:
            self._record.write({"kind": "action", "t": self._t(), **data})

    def _sink(self, event: Event) -> None:
        if self._record is not None:
            self._record.write(event.as_dict())

    # -- the run -------------------------------------------------------------------------
    async def _run_main(self) -> None:
        self._t_start = time.monotonic()
        self._wall_start = time.time()
        timer = None
        try:
            if self._record_wanted:
                self._record = get_run_store().open(self.run_id, self.flow.name)
                self._record.write({
                    "kind": "run", "run_id": self.run_id, "flow": self.flow.name,
                    "started": self._wall_start, "passes": self.planned,
                    "source": redact_url(self.source_url) if self.source_url else None,
                    "input": redact_url(self.input_url) if self.input_url else None,
                    "nodes": len(self.flow.nodes)})
                self._bus.add_sink(self._sink)
            if self.duration_limit:
                timer = asyncio.get_running_loop().call_later(
                    self.duration_limit, self._request_stop, "duration")
            if self._bus.active:
                self._emit(FlowStarted, passes=self.planned)
            while not self._stop_requested:
                pass_start = time.monotonic()
                await self._run_pass()
                if self._stop_requested:
                    break
                if self._pass_failed and self.stop_on_error:
                    break
                if self._finish_requested:
                    break
                if self.planned and self.passes >= self.planned:
                    break
                delay = self.interval - (time.monotonic() - pass_start)
                if delay > 0:
                    assert self._stop_event is not None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop_event.wait(), delay)
                else:
                    await asyncio.sleep(0)  # let stop requests and other flows in
        except asyncio.CancelledError:
            self._stop_requested = True
            self._stop_reason = self._stop_reason or "cancelled"
        except Exception as exc:  # an executor bug must still end the run cleanly
            log.exception("flow %r: executor error", self.flow.name)
            self._any_failed = True
            self.error = f"flow {self.flow.name!r}: internal error: {type(exc).__name__}: {exc}"
        finally:
            if timer is not None:
                timer.cancel()
            await self._finish()

    async def _finish(self) -> None:
        self._source_info = self._resources.source_info()  # health before release
        try:
            await asyncio.shield(self._resources.release_all())
        except Exception:
            log.exception("flow %r: releasing resources failed", self.flow.name)
        if self._stop_requested:
            self.status = "stopped"
        elif self._any_failed:
            self.status = "failed"
        else:
            self.status = "ok"
        if self._bus.active:
            self._emit(FlowFinished, status=self.status, passes=self.passes, error=self.error)
        self._bus.close()
        result = self._result()
        if self._record is not None:
            self._record.close()
            with contextlib.suppress(Exception):
                await get_runtime().to_thread(self._record.wait_closed, 5.0)
        if not self._done.done():
            self._done.set_result(result)
        self._notify()

    def _result(self) -> RunResult:
        return RunResult(
            flow=self.flow.name, status=self.status if self.status != "created" else "stopped",
            passes=self.passes, error=self.error,
            nodes={nid: rec.as_dict() for nid, rec in self.nodes.items()},
            variables=copy.copy(self.variables), actions=list(self.actions),
            source={"url": redact_url(self.source_url) if self.source_url else None,
                    "input": redact_url(self.input_url) if self.input_url else None,
                    "metrics": self._resources.source_info() or self._source_info},
            run_id=self.run_id, record=self.record_path,
            duration=(time.monotonic() - self._t_start) if self._t_start else 0.0)

    def _request_stop(self, reason: str = "stop") -> None:
        # after the end, a debugger re-run (rerun_from) may still be running a pass
        if self._stop_requested or (self._done.done() and self._pass is None):
            return
        self._stop_requested = True
        self._stop_reason = reason
        if self._stop_event is not None:
            self._stop_event.set()
        for call in list(self._calls):  # unblocks the worker threads waiting on them
            call.cancel()
        p = self._pass
        if p is not None:
            p.held.clear()
            for task in p.tasks.values():
                task.cancel()
            if not p.done.done():
                p.done.set_result(None)
        self._notify()

    # -- one pass ------------------------------------------------------------------------
    async def _run_pass(self, reuse: Mapping[str, NodeRecord] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.passes += 1
        if self.history.maxlen:
            self.history.append({k: copy.copy(v) for k, v in self.nodes.items()})
        for rec in self.nodes.values():
            if reuse is None or rec.id not in reuse:  # reused records keep the last pass
                rec.status, rec.started, rec.finished = PENDING, None, None
                rec.inputs = rec.output = rec.error = None
                rec.branch = None
                rec.attempts = 0
        p = _Pass(self._graph, self.passes, loop)
        self._pass = p
        self._pass_failed = False
        if self._bus.active:
            self._emit(PassStarted, pass_index=p.index)
        try:
            if p.outstanding == 0:
                p.done.set_result(None)
            elif reuse is not None:
                self._replay(p, reuse)
            else:
                for nid in self._graph.order:
                    if p.remaining[nid] == 0:
                        self._ready(p, nid)
            self._notify()
            await p.done
        except asyncio.CancelledError:
            self._stop_requested = True
            raise
        finally:
            await self._settle(p)
            duration = time.perf_counter() - p.t0
            self.last_pass_duration = duration
            self._pass = None
            status = "stopped" if self._stop_requested and p.outstanding else (
                "failed" if p.error else "ok")
            if p.error is not None:
                self._pass_failed = True
                self._any_failed = True
                self.error = str(p.error)
                self.errors.append(self.error)
                if self._record is not None:
                    self._record.write({"kind": "error", "t": self._t(), "pass_index": p.index,
                                        "node": p.error.node_id, "error": self.error,
                                        "cause": repr(p.error.cause) if p.error.cause else None})
            if self._bus.active:
                self._emit(PassFinished, pass_index=p.index, status=status, duration=duration,
                           error=str(p.error) if p.error else None)
            self._notify()

    async def _settle(self, p: _Pass) -> None:
        """Cancel what still runs (fail-fast or stop) and wait for it briefly."""
        running = [t for t in p.tasks.values() if not t.done()]
        for t in running:
            t.cancel()
        if running:
            _done, pending = await asyncio.wait(running, timeout=max(self._grace, 0.01))
            for t in pending:
                log.warning("flow %r: a node did not stop within %.2f s of cancellation",
                            self.flow.name, self._grace)
                t.add_done_callback(_consume)
        why = "the run was stopped" if self._stop_requested else (
            f"node {p.error.node_id} failed" if p.error else "the pass ended")
        now = time.perf_counter() - p.t0
        for nid in p.tasks:
            rec = self.nodes[nid]
            if rec.status == RUNNING:
                rec.status, rec.finished = FAILED, now
                rec.error = NodeError(f"cancelled: {why}", node_id=nid, flow=self.flow.name)
        for nid in p.held:
            self.nodes[nid].status = PENDING
        p.held.clear()

    def _replay(self, p: _Pass, reuse: Mapping[str, NodeRecord]) -> None:
        """Resolve reused nodes from their last outcome (upstream first); the others are
        scheduled by the normal rules as their inputs resolve."""
        for nid in reuse:
            p.remaining[nid] = 1 << 60  # never becomes ready by itself
        for nid in _topological(self._graph):
            rec = reuse.get(nid)
            if rec is None:
                continue
            p.outstanding -= 1
            if rec.status == DONE:
                p.outputs[nid] = rec.output
                self._resolve(p, nid, DONE, rec.branch, policy_continue=False)
            elif rec.status == FAILED:
                p.outputs[nid] = None
                self._resolve(p, nid, FAILED, None, policy_continue=self._graph.policy[nid][3],
                              error=rec.error)
            else:
                self._resolve(p, nid, SKIPPED, None, policy_continue=False)
        for nid in self._graph.order:
            if nid not in reuse and self._graph.indeg[nid] == 0:
                self._ready(p, nid)
        if p.outstanding == 0 and not p.done.done():
            p.done.set_result(None)

    def _ready(self, p: _Pass, nid: str) -> None:
        self.nodes[nid].inputs = Inputs(nid, self._graph.preds, p.outputs, p.error_in.get(nid))
        gate = self._gate
        if gate is not None and gate._hold(p, nid):
            self.nodes[nid].status = HELD
            p.held.append(nid)
            self._notify()
            return
        self._launch(p, nid)

    def _launch(self, p: _Pass, nid: str) -> None:
        rec = self.nodes[nid]
        rec.status = RUNNING
        # the node's task is _invoke itself (one coroutine layer per node: it is the hot
        # path), which hands its outcome to _landed
        task = asyncio.get_running_loop().create_task(
            self._invoke(nid, rec.inputs, p.index, p))  # type: ignore[arg-type]
        p.tasks[nid] = task

    def _landed(self, p: _Pass, nid: str, output: dict[str, Any] | None,
                error: NodeError | None) -> None:
        """A node's task of pass ``p`` has its outcome: record it, resolve the edges."""
        rec = self.nodes[nid]
        rec.finished = time.perf_counter() - p.t0
        if p.done.done():  # the pass ended (stop or fail-fast) while this node finished
            rec.status, rec.output, rec.error = (DONE, output, None) if error is None \
                else (FAILED, None, error)
            return
        p.tasks.pop(nid, None)
        if error is None:
            self._node_done(p, nid, output)
        else:
            self._node_failed(p, nid, error)

    async def _invoke(self, nid: str, inputs: Inputs, pass_index: int, p: _Pass | None = None,
                      ) -> tuple[dict[str, Any] | None, NodeError | None]:
        """Run one node with its timeout and retries; returns (output, error).

        With ``p`` it is the node's task in that pass: it also counts and times the run
        and hands the outcome to :meth:`_landed` (not when cancelled)."""
        rec = self.nodes[nid]
        if p is not None:
            rec.started = time.perf_counter() - p.t0
            rec.runs += 1
        fnode = self.flow.nodes[nid]
        node: Node = fnode.node
        attempts, timeout, retry_delay, _cont, env_refs = self._graph.policy[nid]
        error: NodeError | None = None
        active = self._bus.active
        for attempt in range(attempts):
            rec.attempts = attempt + 1
            if active:
                self._emit(NodeStarted, node=nid, type=fnode.type, pass_index=pass_index,
                           attempt=attempt + 1)
            t0 = time.perf_counter()
            ctx = NodeContext(self, nid, attempt)
            token = CURRENT_NODE.set(ctx)
            try:
                runnable = node.resolved(nid) if env_refs else node
                if self._graph.blocking[nid]:
                    call = get_runtime().to_thread(
                        _run_blocking, contextvars.copy_context(), runnable.run, inputs, ctx)
                else:
                    call = runnable.run(inputs, ctx)
                if timeout:
                    try:
                        async with asyncio.timeout(timeout) as scope:
                            output = await call
                    except TimeoutError as exc:
                        if scope.expired():
                            raise NodeTimeoutError(f"timed out after {timeout:g} s", node_id=nid,
                                                   flow=self.flow.name, cause=exc) from None
                        raise
                else:
                    output = await call
                if output is not None and not isinstance(output, dict):
                    raise NodeError(f"run() returned {type(output).__name__}, expected a dict "
                                    "or None", node_id=nid, flow=self.flow.name)
                if output is not None and "branch" in output and output["branch"] is not None:
                    output["branch"] = str(output["branch"])
                error = None
                if active:
                    self._emit(NodeFinished, node=nid, type=fnode.type, pass_index=pass_index,
                               duration=time.perf_counter() - t0,
                               branch=output.get("branch") if output else None,
                               summary=summarize(output))
                break
            except asyncio.CancelledError:
                raise
            except NodeError as exc:
                error = exc if exc.flow else _name_flow(exc, self.flow.name)
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                # user code calling sys.exit() fails its node, not the runtime's loop
                error = NodeError(f"{type(exc).__name__}: {exc}", node_id=nid,
                                  flow=self.flow.name, cause=exc)
            finally:
                CURRENT_NODE.reset(token)
            last = attempt + 1 >= attempts
            if active:
                self._emit(NodeFailed, node=nid, type=fnode.type, pass_index=pass_index,
                           duration=time.perf_counter() - t0, error=str(error),
                           handled=not last or self._handled(nid))
            if not last and retry_delay:
                await asyncio.sleep(retry_delay)
        else:  # every attempt failed
            output = None
        if p is not None:
            self._landed(p, nid, output, error)
        return output, error

    def _handled(self, nid: str) -> bool:
        return self._graph.policy[nid][3] or any(b == "error" for _t, b in self._graph.out[nid])

    def _node_done(self, p: _Pass, nid: str, output: dict[str, Any] | None) -> None:
        rec = self.nodes[nid]
        rec.status = DONE
        rec.output = output
        branch = output.get("branch") if output else None
        rec.branch = branch
        p.outputs[nid] = output
        p.outstanding -= 1
        self._resolve(p, nid, DONE, branch, policy_continue=False)
        if p.outstanding == 0 and not p.done.done():
            p.done.set_result(None)
        if self._waiters:
            self._notify()

    def _node_failed(self, p: _Pass, nid: str, error: NodeError) -> None:
        rec = self.nodes[nid]
        rec.status = FAILED
        rec.error = error
        policy_continue = self._graph.policy[nid][3]
        has_error_edge = any(b == "error" for _t, b in self._graph.out[nid])
        if not policy_continue and not has_error_edge:
            p.error = error
            p.outstanding -= 1
            if not p.done.done():
                p.done.set_result(None)  # fail fast: _settle cancels the siblings
            self._notify()
            return
        p.outputs[nid] = None
        p.outstanding -= 1
        self._resolve(p, nid, FAILED, None, policy_continue=policy_continue, error=error)
        if p.outstanding == 0 and not p.done.done():
            p.done.set_result(None)
        self._notify()

    def _resolve(self, p: _Pass, nid: str, outcome: str, branch: str | None, *,
                 policy_continue: bool, error: BaseException | None = None) -> None:
        """Resolve ``nid``'s outgoing edges; start or skip targets that became resolved."""
        stack = [(nid, outcome, branch, policy_continue, error)]
        while stack:
            src, outcome, branch, cont, err = stack.pop()
            for target, label in self._graph.out[src]:
                if outcome == DONE:
                    live = label is None or (label == branch and label != "error")
                elif outcome == FAILED:
                    live = label == "error" or (cont and label is None)
                else:
                    live = False
                if live:
                    p.live[target] += 1
                    if outcome == FAILED and err is not None:
                        p.error_in[target] = err
                p.remaining[target] -= 1
                if p.remaining[target] == 0:
                    if p.live[target]:
                        self._ready(p, target)
                    else:
                        rec = self.nodes[target]
                        rec.status = SKIPPED
                        p.outstanding -= 1
                        if self._bus.active:
                            self._emit(NodeSkipped, node=target, type=rec.type, pass_index=p.index)
                        stack.append((target, SKIPPED, None, False, None))

    # -- debugger support ----------------------------------------------------------------
    def _release(self, p: _Pass, nids: Iterable[str]) -> None:
        for nid in nids:
            if nid in p.held:
                p.held.remove(nid)
                self._launch(p, nid)
        self._notify()

    def __repr__(self) -> str:
        return f"FlowRun({self.flow.name!r}, status={self.status}, passes={self.passes})"


def _topological(graph: _Graph) -> list[str]:
    indeg = dict(graph.indeg)
    queue = collections.deque(n for n in graph.order if indeg[n] == 0)
    order = []
    while queue:
        n = queue.popleft()
        order.append(n)
        for t, _b in graph.out[n]:
            indeg[t] -= 1
            if indeg[t] == 0:
                queue.append(t)
    return order


def _name_flow(exc: NodeError, flow: str) -> NodeError:
    """A node's own ``NodeError`` raised without the flow name gets it (message too)."""
    exc.flow = flow
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (f"flow {flow!r}: {exc.args[0]}", *exc.args[1:])
    return exc


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()

"""The concurrent DAG executor: :class:`FlowRun` runs passes of a flow on the runtime loop.

The executor is in parts: :mod:`._scheduler` decides which nodes are ready, resolved and
skipped (pure, synchronous), :mod:`._invoke` runs one node (timeout, retry,
cancellation), :mod:`._recording` writes the run record and words each pass's outcome,
and :mod:`._hooks` is the execution-gate protocol a debugger implements. This module
joins them: tasks, stop, loop mode, events and results.

Semantics of one pass:

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
* :meth:`FlowRun.stop` first closes the run's :class:`~kvmrpa.kvm.InputGate` (from
  that moment no input primitive of the run reaches a target, and an action cut midway
  releases what it pressed), then cancels in-flight work and releases sources and
  drivers (a source still opening when the stop comes is released as soon as it lands).
  A *blocking* ``run`` cannot be interrupted inside its thread: on stop or timeout its
  result is discarded when it returns, and its pool thread is busy until then (its
  input still goes through the closed gate: nothing is sent; the runtime tracks it as
  abandoned, see :meth:`FlowRun.stuck_nodes`). While the run is paused the gate holds
  every primitive back.

A node's status in the last pass is a :class:`~kvmrpa.engine.NodeStatus`: ``pending``
(not started), ``held`` (ready but held by the debugger; ``pending`` in results),
``running``, ``done``, ``failed`` (raised, timed out, or cancelled because another node
failed: ``NodeRecord.error`` says which), ``stopped`` (running when the run was
stopped) or ``skipped``.

Loop mode (``passes=0`` or ``passes>1``) repeats passes, ``interval`` seconds apart
(start to start), until stopped or a node calls ``ctx.finish_run()``; variables and each
node's ``ctx.state`` persist; a failed pass does not end the run unless ``stop_on_error``.

All scheduling state lives on the runtime loop; the public methods are thread-safe
(sync forms block on the loop, async forms work from any loop).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import copy
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import FlowStateError, NodeError
from .._runtime import get_runtime
from .._settings import get_settings
from .._urls import redact_url
from ..kvm import InputGate
from ._context import Inputs, Resources
from ._events import (
    Event,
    EventBus,
    FlowFinished,
    FlowStarted,
    NodeSkipped,
    NodeStatus,
    NodeStopped,
    PassFinished,
    PassStarted,
    Paused,
    Resumed,
    StopRequested,
    Subscription,
)
from ._flow import Flow
from ._hooks import ExecutionGate
from ._invoke import NodeInvoker
from ._recording import RunRecorder, pass_outcome
from ._scheduler import Graph, Scheduler

if TYPE_CHECKING:  # pragma: no cover
    from ._debugger import Debugger
    from ._report import RunReport

__all__ = ["FlowRun", "NodeRecord", "RunResult", "pass_outcome"]

T = TypeVar("T")
log = logging.getLogger("kvmrpa.engine")

PENDING, HELD, RUNNING, DONE, FAILED, SKIPPED, STOPPED = (
    NodeStatus.PENDING, NodeStatus.HELD, NodeStatus.RUNNING, NodeStatus.DONE,
    NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.STOPPED)

#: Kept for code that imported the compiled graph under its former name.
_Graph = Graph


@dataclass(slots=True)
class NodeRecord:
    """What the last pass did with one node (kept for inspection)."""

    id: str
    type: str
    status: NodeStatus = PENDING
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
        return {"type": self.type,
                "status": str(self.status if self.status != HELD else PENDING),
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
    #: What the last pass did, in a few words (``ok · 2 actions``).
    outcome: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def report(self) -> RunReport:
        """The run's report from its record: it displays inline in a notebook and
        ``.save(path)`` writes one self-contained HTML file."""
        from .._errors import FlowStateError
        from ._report import RunReport

        if not self.record:
            raise FlowStateError(f"run {self.run_id} of flow {self.flow!r} kept no record "
                                 "(record=False)", flow=self.flow)
        return RunReport.load(self.record)

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "status": self.status, "passes": self.passes,
                "error": self.error, "nodes": self.nodes, "variables": self.variables,
                "actions": self.actions, "source": self.source, "outcome": self.outcome}


class _Pass:
    """The asynchronous side of one pass: its scheduler, node tasks, held nodes."""

    __slots__ = ("actions", "done", "held", "index", "sched", "t0", "tasks")

    def __init__(self, graph: Graph, index: int, loop: asyncio.AbstractEventLoop) -> None:
        self.index = index
        self.sched = Scheduler(graph)
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.held: list[str] = []
        self.actions = 0
        self.done: asyncio.Future[None] = loop.create_future()
        self.t0 = time.perf_counter()

    @property
    def error(self) -> NodeError | None:
        return self.sched.error  # type: ignore[return-value]


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
        if _replays(self.source_url):
            from ._replay import own_player

            if input is None:  # a replay acts on nothing
                self.input_url = "dryrun://replay"
            self.source_url = own_player(self.source_url or "", self.run_id)
        self.stop_on_error = stop_on_error
        self.variables: dict[str, Any] = _resolve_variables(flow)
        if variables:
            self.variables.update(variables)
        self.status = "created"
        self.passes = 0
        self.error: str | None = None
        #: The errors of the last failed passes (bounded: loop mode may fail forever).
        self.errors: collections.deque[str] = collections.deque(maxlen=100)
        self.actions: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
        self.last_pass_duration: float | None = None
        #: What the last pass did, in a few words (see :func:`pass_outcome`).
        self.outcome = ""
        #: The flow's structure, compiled for this run.
        self.graph = Graph(flow)
        self.nodes: dict[str, NodeRecord] = {
            nid: NodeRecord(nid, t) for nid, t in self.graph.types.items()}
        self.history: collections.deque[dict[str, NodeRecord]] = collections.deque(
            maxlen=max(0, settings.keep_passes - 1))
        self._node_state: dict[str, dict[str, Any]] = {}
        self._bus = EventBus(settings.event_buffer)
        self._record_wanted = record
        self._recorder = RunRecorder(self._t)
        #: Nodes whose decisions (frame, results) the run record keeps.
        self._watched: frozenset[str] = frozenset()
        self._resources = Resources(self)
        self._invoker = NodeInvoker(self)
        self._pass: _Pass | None = None
        self._gate: ExecutionGate | None = None
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
        #: What lets this run's input reach a target (closed for good by a stop).
        self.input_gate = InputGate(on_change=self._gate_changed)
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
    def started(self) -> bool:
        """True once :meth:`start` was called."""
        return self._started

    @property
    def settled(self) -> bool:
        """True once the run has ended and no debugger re-run pass is running."""
        return self._done.done() and self._pass is None

    @property
    def current_pass(self) -> int | None:
        """The index of the pass running now (None between passes and after the end)."""
        p = self._pass
        return p.index if p is not None else None

    @property
    def stopping(self) -> bool:
        """True once stop was requested."""
        return self._stop_requested or self.input_gate.stopped

    @property
    def debugger(self) -> Debugger:
        """The debugger of this run (attached on first access)."""
        from ._debugger import Debugger

        if not isinstance(self._gate, Debugger):
            Debugger(self)
        assert isinstance(self._gate, Debugger)
        return self._gate

    @property
    def gate(self) -> ExecutionGate | None:
        """The execution gate attached to this run (a :class:`Debugger`), if any."""
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
        return self._recorder.path

    @property
    def stop_requested_at(self) -> float | None:
        """``time.monotonic()`` when stop was requested (the input gate closed)."""
        return self.input_gate.stopped_at

    def stuck_nodes(self) -> list[str]:
        """Blocking nodes of this run abandoned on timeout or stop whose threads still
        run (``node ID of flow 'NAME'``)."""
        return get_runtime().abandoned(owner=self)

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
        await self.on_loop(self._abegin())
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

    def request_stop(self, reason: str = "stop") -> None:
        """Stop without waiting (thread-safe): the input gate closes before this returns
        (no further input primitive of this run reaches a target), the rest of the stop
        (cancelling nodes, releasing held keys and resources) follows on the loop."""
        if self._done.done() and self._pass is None:
            return
        self.input_gate.stop(reason)
        runtime = get_runtime()
        if runtime.in_loop_thread():
            self._request_stop(reason)
        else:
            runtime.call_soon(self._request_stop, reason)

    def stop(self, timeout: float | None = 5.0) -> RunResult | None:
        """Stop now (no further input, cancel in-flight nodes, release what they held and
        the resources); wait for the end. From the runtime loop it returns ``None`` at
        once (the gate is closed already)."""
        if not self._started:
            self.input_gate.stop("stop")
            self._finish_unstarted()
            return self._done.result()
        self.request_stop("stop")
        if get_runtime().in_loop_thread():
            return None
        return self.result(timeout)

    async def astop(self) -> RunResult:
        """Async form of :meth:`stop`."""
        if not self._started:
            self.input_gate.stop("stop")
            self._finish_unstarted()
        else:
            self.request_stop("stop")
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

    @property
    def listened(self) -> bool:
        """Whether anyone receives this run's events (else none is built)."""
        return self._bus.active

    def emit(self, cls: type[Event], **fields: Any) -> None:
        """Publish an event of this run (on the runtime loop)."""
        self._bus.publish(cls(flow=self.flow.name, run_id=self.run_id, t=self._t(),
                              wall=time.time(), **fields))

    _emit = emit

    # -- public: node services (used by NodeContext) --------------------------------------
    def node_state(self, node_id: str) -> dict[str, Any]:
        """The dict private to ``node_id`` that persists across passes."""
        return self._node_state.setdefault(node_id, {})

    def finish_after_pass(self) -> None:
        """End the run after the current pass (status ``ok``, not ``stopped``)."""
        self._finish_requested = True

    @property
    def resources(self) -> Resources:
        """The sources and drivers this run opened (released when it ends)."""
        return self._resources

    def record_action(self, node_id: str, action: Mapping[str, Any]) -> None:
        """Add an entry to the audit trail (and the run record)."""
        data = {"node": node_id, **action}
        if data.get("ok", True) and not data.get("cut"):
            p = self._pass
            if p is not None:
                p.actions += 1
        self.actions.append(data)
        self._recorder.action(data)

    _record_action = record_action

    def observe(self, node_id: str, frame: Any, results: Mapping[str, Any]) -> None:
        """``node_id`` looked at ``frame`` and found ``results`` (texts, matches …): kept
        for the run's report when the node fails or the pass is recorded in full."""
        evidence = self._recorder.evidence
        if evidence is not None and node_id in self._watched:
            evidence.observe(self.passes, node_id, frame, results)

    @contextlib.contextmanager
    def tracking_call(self, future: concurrent.futures.Future[Any]) -> Any:
        """While inside, ``future`` (a coroutine a blocking node waits on) is cancelled
        if the run stops; cancelled at once when the run is stopping already."""
        self._calls.add(future)
        try:
            if self._stop_requested and not self.done:  # (not a debugger re-run)
                future.cancel()
            yield future
        finally:
            self._calls.discard(future)

    # -- public: the execution-gate API (see ._hooks) -------------------------------------
    def attach_gate(self, gate: ExecutionGate) -> None:
        """Attach ``gate`` (asked :meth:`ExecutionGate.hold` as each node becomes ready)."""
        self._gate = gate

    @property
    def held(self) -> list[str]:
        """Nodes of the current pass ready to start but held by the gate."""
        p = self._pass
        return list(p.held) if p is not None else []

    def offer_held(self, order: Iterable[str] | None = None) -> None:
        """Ask the gate again about every held node (in ``order`` first, then the rest);
        those it does not hold start now."""
        p = self._pass
        if p is None or not p.held:
            self.notify()
            return
        held = list(p.held)
        if order is not None:
            first = [n for n in order if n in held]
            held = first + [n for n in held if n not in first]
        p.held.clear()
        for nid in held:
            self.nodes[nid].status = PENDING
            self._ready(p, nid)
        self.notify()

    def start_held(self, node_ids: Iterable[str]) -> None:
        """Start the given held nodes now, without asking the gate."""
        p = self._pass
        if p is not None:
            for nid in node_ids:
                if nid in p.held:
                    p.held.remove(nid)
                    self._launch(p, nid)
        self.notify()

    _release = start_held

    def in_flight(self) -> list[str]:
        """Nodes running now, except those waiting at the paused input gate."""
        p = self._pass
        if p is None:
            return []
        parked = self.input_gate.parked
        return [nid for nid in p.tasks if nid not in parked]

    def set_paused(self, node_id: str | None, reason: str) -> None:
        """The gate paused the run (before ``node_id``, or between nodes): no input is
        sent from now on, the status is ``paused``, a ``paused`` event goes out."""
        self.input_gate.pause()
        if not self.done and self._started:
            self.status = "paused"
        if self._bus.active:
            self.emit(Paused, node=node_id, reason=reason)
        self.notify()

    def set_resumed(self) -> None:
        """The gate resumed the run: input flows again, status ``running``."""
        self.input_gate.resume()
        if not self.done and self._started:
            self.status = "running"
        if self._bus.active:
            self.emit(Resumed)
        self.notify()

    def allow_input(self, node_id: str) -> None:
        """Let ``node_id`` send input while the run is paused (a step, a re-run)."""
        self.input_gate.allow(node_id)

    def refresh_node(self, node_id: str) -> None:
        """Re-read ``node_id``'s execution policy after its parameters changed."""
        self.graph.refresh(self.flow, node_id)

    async def on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the runtime loop, from any loop."""
        runtime = get_runtime()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - always called from a coroutine
            running = None
        if running is runtime.loop:
            return await coro
        return await asyncio.wrap_future(runtime.submit(coro))

    _on_loop = on_loop

    def notify(self) -> None:
        """Wake :meth:`wait_until` waiters to check their predicate again."""
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    _notify = notify

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait (on the runtime loop) until ``predicate()`` holds; it is checked whenever
        the run's state changes."""
        while not predicate():
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut

    _until = wait_until

    async def run_node_again(self, node_id: str) -> NodeRecord:
        """Run ``node_id`` alone on its cached inputs (its parameters may have changed);
        the current pass (paused) sees its new output. Refused while it is running."""
        self.check_idle_for(node_id)
        rec = self.nodes[node_id]
        p = self._pass
        t0 = time.perf_counter()
        rec.status = RUNNING
        rec.runs += 1
        if self.input_gate.stopped and self.done:  # a re-run after the stop may act again
            self.input_gate = InputGate(on_change=self._gate_changed)
        self.input_gate.allow(node_id)  # a re-run while paused may act
        try:
            assert rec.inputs is not None
            output, error = await self._invoker.invoke(node_id, rec.inputs, self.passes, rec)
        except asyncio.CancelledError:  # the re-run was cancelled: the node is idle again
            rec.status, rec.output = FAILED, None
            rec.error = NodeError("cancelled: the re-run was cancelled", node_id=node_id,
                                  flow=self.flow.name)
            rec.finished = (rec.started or 0.0) + time.perf_counter() - t0
            self.notify()
            raise
        finally:
            self.input_gate.disallow(node_id)
            if self._main is not None and self._main.done():
                await asyncio.shield(self._resources.release_all())
        rec.finished = (rec.started or 0.0) + time.perf_counter() - t0
        if error is None:
            rec.status, rec.output, rec.error = DONE, output, None
            rec.branch = output.get("branch") if output else None
        else:
            rec.status, rec.output, rec.error = FAILED, None, error
        if p is not None and error is None:
            p.sched.outputs[node_id] = output
        self.notify()
        return rec

    def check_idle_for(self, node_id: str) -> None:
        """Raise :class:`FlowStateError` unless ``node_id`` may be re-run now."""
        rec = self.nodes[node_id]
        p = self._pass
        if rec.status in (RUNNING, HELD) or (p is not None and node_id in p.tasks):
            raise FlowStateError(f"node {node_id} is {rec.status}; pause until it is idle",
                                 flow=self.flow.name)
        if rec.inputs is None:
            raise FlowStateError(f"node {node_id} has no cached inputs (it did not run in "
                                 "the last pass)", flow=self.flow.name)

    async def run_again_from(self, node_id: str) -> RunResult:
        """Run ``node_id`` and everything downstream again in one pass, reusing the last
        outcomes upstream; the run must have ended."""
        if self._main is None or not self._main.done() or self._pass is not None:
            raise FlowStateError("re-run from a node needs the run to be stopped or finished; "
                                 "use rerun_node() while it is paused", flow=self.flow.name)
        again = self.graph.descendants(node_id)
        reuse = {nid: rec for nid, rec in self.nodes.items()
                 if nid not in again and rec.status in (DONE, FAILED, SKIPPED)}
        self._stop_requested = False
        self.input_gate = InputGate(on_change=self._gate_changed)  # a new gate for the re-run
        self._bus.reopen()
        self.status = "running"
        try:
            await self._run_pass(reuse)
        finally:
            await self._resources.release_all()
            self.status = "stopped" if self._stop_requested else (
                "failed" if self._pass_failed else "ok")
            self._bus.close()  # subscribers of the re-run reach their end, as after a run
            self.notify()
        return self._result()

    # -- internals -----------------------------------------------------------------------
    def _gate_changed(self) -> None:
        """A primitive parked at (or left) the paused input gate: wake quiet-waiters."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.notify()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.notify)

    def _t(self) -> float:
        return time.monotonic() - self._t_start

    # -- the run -------------------------------------------------------------------------
    async def _run_main(self) -> None:
        self._t_start = time.monotonic()
        self._wall_start = time.time()
        timer = None
        try:
            if self._record_wanted:
                self._recorder.open(self.run_id, self.flow.name, self._wall_start,
                                    self.planned, self.source_url, self.input_url,
                                    len(self.flow.nodes), graph=self.flow)
                self._bus.add_sink(self._recorder.event)
                self._watched = self._recorder.watch(self._t_start, self.graph.types)
            if self.duration_limit:
                timer = asyncio.get_running_loop().call_later(
                    self.duration_limit, self._request_stop, "duration")
            if self._bus.active:
                self.emit(FlowStarted, passes=self.planned)
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
        gate = self.input_gate
        if gate.stopped:  # keys / buttons still down (a key_down, a cut action)
            released: list[str] = []
            try:
                released = await asyncio.shield(gate.release_held())
            except Exception:
                log.exception("flow %r: releasing held keys failed", self.flow.name)
            self._recorder.input_released(released, gate.held(), gate.refused)
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
            self.emit(FlowFinished, status=self.status, passes=self.passes, error=self.error,
                      outcome=self.outcome)
        self._bus.close()
        result = self._result()
        await self._recorder.aclose()  # on the loop: pool threads may all be stuck in nodes
        if not self._done.done():
            self._done.set_result(result)
        self.notify()

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
            duration=(time.monotonic() - self._t_start) if self._t_start else 0.0,
            outcome=self.outcome or ("stopped · before the first pass" if not self.passes
                                     else ""))

    def _request_stop(self, reason: str = "stop") -> None:
        # after the end, a debugger re-run (rerun_from) may still be running a pass
        if self._stop_requested or (self._done.done() and self._pass is None):
            return
        self._stop_requested = True
        self._stop_reason = reason
        gate = self.input_gate
        gate.stop(reason)  # (already closed when the request came from request_stop)
        self._recorder.stop_requested(reason, gate.stopped_wall)
        if self._bus.active:
            self.emit(StopRequested, reason=reason)
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
        self.notify()

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
        p = _Pass(self.graph, self.passes, loop)
        self._pass = p
        self._pass_failed = False
        if self._bus.active:
            self.emit(PassStarted, pass_index=p.index)
        try:
            if p.sched.outstanding == 0:
                p.done.set_result(None)
            else:
                ready: list[str] = []
                skipped: list[str] = []
                if reuse is not None:
                    p.sched.reuse({nid: (rec.status, rec.output, rec.error)
                                   for nid, rec in reuse.items()}, ready, skipped)
                else:
                    ready = p.sched.roots()
                self._advance(p, ready, skipped)
            self.notify()
            await p.done
        except asyncio.CancelledError:
            self._stop_requested = True
            raise
        finally:
            await self._settle(p)
            duration = time.perf_counter() - p.t0
            self.last_pass_duration = duration
            self._pass = None
            status = "stopped" if self._stop_requested and p.sched.outstanding else (
                "failed" if p.error else "ok")
            if p.error is not None:
                self._pass_failed = True
                self._any_failed = True
                self.error = str(p.error)
                self.errors.append(self.error)
                self._recorder.error(p.index, p.error.node_id, self.error, p.error.cause)
            self.outcome = pass_outcome(status, self.graph, self.nodes, p.actions, p.error)
            if self._bus.active:
                self.emit(PassFinished, pass_index=p.index, status=status, duration=duration,
                          error=str(p.error) if p.error else None, outcome=self.outcome)
            if self._recorder.evidence is not None:  # after pass_finished in the record
                self._recorder.evidence.pass_end(p.index, status)
            self.notify()

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
        stopped = self._stop_requested
        why = "the run was stopped" if stopped else (
            f"node {p.error.node_id} failed" if p.error else "the pass ended")
        now = time.perf_counter() - p.t0
        for nid in p.tasks:
            rec = self.nodes[nid]
            if rec.status == RUNNING:
                rec.status, rec.finished = (STOPPED if stopped else FAILED), now
                rec.error = NodeError(f"cancelled: {why}", node_id=nid, flow=self.flow.name)
                if stopped and self._bus.active:
                    self.emit(NodeStopped, node=nid, type=rec.type, pass_index=p.index,
                              duration=now - (rec.started or now))
        for nid in p.held:
            self.nodes[nid].status = PENDING
        p.held.clear()

    def _advance(self, p: _Pass, ready: list[str], skipped: list[str]) -> None:
        """Apply what the scheduler decided: mark the skipped, start (or hold) the ready."""
        if skipped:
            active = self._bus.active
            for nid in skipped:
                rec = self.nodes[nid]
                rec.status = SKIPPED
                if active:
                    self.emit(NodeSkipped, node=nid, type=rec.type, pass_index=p.index)
        for nid in ready:
            self._ready(p, nid)
        s = p.sched
        if (s.outstanding == 0 or s.error is not None) and not p.done.done():
            p.done.set_result(None)

    def _ready(self, p: _Pass, nid: str) -> None:
        s = p.sched
        self.nodes[nid].inputs = Inputs(nid, self.graph.preds, s.outputs, s.error_in.get(nid))
        gate = self._gate
        if gate is not None and gate.hold(nid):
            self.nodes[nid].status = HELD
            p.held.append(nid)
            self.notify()
            return
        self._launch(p, nid)

    def _launch(self, p: _Pass, nid: str) -> None:
        rec = self.nodes[nid]
        rec.status = RUNNING
        rec.started = time.perf_counter() - p.t0
        rec.runs += 1
        # the node's task is the invoker's coroutine itself (one coroutine layer per node:
        # it is the hot path), which hands its outcome to _landed
        p.tasks[nid] = asyncio.get_running_loop().create_task(self._invoker.invoke(
            nid, rec.inputs, p.index, rec, self._landed, p))  # type: ignore[arg-type]

    def _landed(self, p: _Pass, nid: str, output: dict[str, Any] | None,
                error: NodeError | None) -> None:
        """A node's task of pass ``p`` has its outcome: record it, resolve the edges."""
        rec = self.nodes[nid]
        rec.finished = time.perf_counter() - p.t0
        evidence = self._recorder.evidence if nid in self._watched else None
        if evidence is not None:
            evidence.node(p.index, nid, rec.inputs, output, error, rec.started, rec.finished)
        if p.done.done():  # the pass ended (stop or fail-fast) while this node finished
            rec.status, rec.output, rec.error = (DONE, output, None) if error is None \
                else (FAILED, None, error)
            return
        p.tasks.pop(nid, None)
        ready: list[str] = []
        skipped: list[str] = []
        if error is None:
            rec.status = DONE
            rec.output = output
            rec.branch = output.get("branch") if output else None
            p.sched.done(nid, output, ready, skipped)
        else:
            rec.status = FAILED
            rec.error = error
            p.sched.failed(nid, error, ready, skipped)
        self._advance(p, ready, skipped)
        if self._waiters:
            self.notify()

    def __repr__(self) -> str:
        return f"FlowRun({self.flow.name!r}, status={self.status}, passes={self.passes})"


def _resolve_variables(flow: Flow) -> dict[str, Any]:
    """The flow's variables, ``${env:NAME}`` references in string values resolved."""
    from .._errors import FlowValidationError, Problem
    from ..nodes import ENV_REF, resolve_env_refs

    out = copy.deepcopy(flow.variables)
    for name, value in out.items():
        if isinstance(value, str) and ENV_REF.search(value):
            try:
                out[name] = resolve_env_refs(value)
            except KeyError as exc:
                raise FlowValidationError([Problem(None, f"variables.{name}", str(exc.args[0]))],
                                          flow=flow.name) from None
    return out


def _replays(url: str | None) -> bool:
    """Whether ``url`` replays a recorded run (``replay://``)."""
    return isinstance(url, str) and url.strip().lower().startswith("replay://")


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()

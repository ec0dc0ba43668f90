"""Step-through debugging, as an execution gate on the executor (no second code path).

:class:`Debugger` implements :class:`~kvmrpa.engine.ExecutionGate`: the run asks it one
question, at the moment a node becomes ready: *hold it?* Everything else follows from
that, through the run's public gate API (:mod:`._hooks`):

* **breakpoints**: a node with a breakpoint is held (the run pauses before it starts);
* **pause**: every node that becomes ready is held; nodes in flight finish, and send no
  input while paused (their input waits at the run's input gate);
* **step**: start exactly one held (or the next ready) node, then stay paused;
* **resume** (continue): start the held nodes and go on; **run_to**: resume until a node
  is about to start; **stop**: stop the run.

Each node's inputs and outputs of the last pass are on ``run.nodes`` (see
:class:`~kvmrpa.engine.NodeRecord`). :meth:`Debugger.rerun_node` edits a node's
parameters and runs only that node on its cached inputs; :meth:`Debugger.rerun_from`
runs a node and everything downstream again, reusing the outcomes upstream.

Every command has a sync form (for a notebook cell or a script; it waits until the run
is quiet again — paused with nothing in flight, or ended) and an async form
(``a``-prefixed) usable from any event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._errors import FlowStateError, FlowValidationError, Problem
from .._runtime import get_runtime

if TYPE_CHECKING:  # pragma: no cover
    from . import FlowRun, NodeRecord, RunResult  # the package's names: the run makes its debugger

__all__ = ["Debugger"]


class Debugger:
    """Breakpoints, pause / step / resume / run-to, inspection and re-runs of a run."""

    def __init__(self, run: FlowRun, breakpoints: Iterable[str] = ()) -> None:
        self._run = run
        self.breakpoints: set[str] = set()
        for nid in breakpoints:
            self._check_id(nid)
            self.breakpoints.add(nid)
        self._paused = False
        self._step_budget = 0
        self._stepped: str | None = None
        self._run_to: str | None = None
        self._skip: set[str] = set()
        #: The node the run paused before (breakpoint / run_to), if any.
        self.paused_at: str | None = None
        run.attach_gate(self)

    @property
    def run(self) -> FlowRun:
        return self._run

    # -- the ExecutionGate hook ------------------------------------------------------------
    def hold(self, node_id: str) -> bool:
        """Whether ``node_id``, just ready, waits (a breakpoint, a pause, a run-to)."""
        if node_id in self._skip:
            self._skip.discard(node_id)
            return False
        if self._step_budget > 0:
            self._step_budget -= 1
            self._stepped = node_id
            self._run.allow_input(node_id)
            return False
        if self._paused:
            return True
        if node_id in self.breakpoints or node_id == self._run_to:
            reason = "run_to" if node_id == self._run_to else "breakpoint"
            if node_id == self._run_to:
                self._run_to = None
            self._set_paused(node_id, reason)
            return True
        return False

    def _set_paused(self, nid: str | None, reason: str) -> None:
        self._paused = True
        self.paused_at = nid
        self._run.set_paused(nid, reason)

    # -- state ---------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def held(self) -> list[str]:
        """Nodes ready to start but held by the debugger."""
        return self._run.held

    def _quiet(self) -> bool:
        run = self._run
        if run.settled:
            return True
        return self._paused and not run.in_flight()

    def _check_id(self, nid: str) -> None:
        if nid not in self._run.flow.nodes:
            raise FlowStateError(f"flow {self._run.flow.name!r} has no node {nid!r}",
                                 flow=self._run.flow.name)

    def _sync(self, coro: Any, timeout: float | None) -> Any:
        return get_runtime().run(coro, timeout=timeout)

    # -- breakpoints ---------------------------------------------------------------------
    def add_breakpoint(self, node_id: str) -> None:
        self._check_id(node_id)
        self.breakpoints.add(node_id)

    def remove_breakpoint(self, node_id: str) -> None:
        self.breakpoints.discard(node_id)

    def clear_breakpoints(self) -> None:
        self.breakpoints.clear()

    # -- commands (async, on the runtime loop) -------------------------------------------
    async def _pause(self, wait: bool) -> None:
        if not self._paused:
            self._set_paused(None, "pause")
        if wait:
            await self._run.wait_until(self._quiet)

    async def _resume(self) -> None:
        run = self._run
        was_at = self.paused_at
        self._paused = False
        self.paused_at = None
        self._step_budget = 0
        run.set_resumed()
        order: list[str] = []
        if was_at is not None and was_at in run.held:
            order.append(was_at)
            self._skip.add(was_at)  # it already stopped here once: let it through
        run.offer_held(order)

    async def _step(self) -> str | None:
        run = self._run
        self._paused = True
        if not run.done and run.started:
            run.status = "paused"
        held = run.held
        self._stepped = None
        if held:
            nid = held[0]
            self._stepped = nid
            run.allow_input(nid)
            run.start_held([nid])
        else:
            self._step_budget = 1
        await run.wait_until(lambda: self._quiet() and (self._stepped is None or run.nodes[
            self._stepped].status not in ("running", "held") or run.current_pass is None) and (
            self._step_budget == 0 or run.done))
        self._step_budget = 0
        return self._stepped

    async def _run_to_node(self, node_id: str, wait: bool) -> None:
        self._check_id(node_id)
        self._run_to = node_id
        await self._resume()
        if wait:
            await self._run.wait_until(self._quiet)

    # -- public sync / async facade --------------------------------------------------------
    def pause(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """No new node starts and no input is sent; with ``wait``, return once in-flight
        nodes finished (or wait at the input gate)."""
        self._sync(self._pause(wait), timeout)

    async def apause(self, wait: bool = True) -> None:
        await self._run.on_loop(self._pause(wait))

    def resume(self) -> None:
        """Continue: start the held nodes and go on (breakpoints still apply)."""
        self._sync(self._resume(), 30.0)

    continue_ = resume

    async def aresume(self) -> None:
        await self._run.on_loop(self._resume())

    def step(self, timeout: float | None = 30.0) -> str | None:
        """Start exactly one ready node, wait for it, stay paused; returns its id."""
        return self._sync(self._step(), timeout)

    async def astep(self) -> str | None:
        return await self._run.on_loop(self._step())

    def run_to(self, node_id: str, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Resume until ``node_id`` is about to start (or the run ends)."""
        self._sync(self._run_to_node(node_id, wait), timeout)

    async def arun_to(self, node_id: str, wait: bool = True) -> None:
        await self._run.on_loop(self._run_to_node(node_id, wait))

    def wait_paused(self, timeout: float | None = 30.0) -> None:
        """Block until the run is paused with nothing in flight, or has ended."""
        self._sync(self._run.wait_until(self._quiet), timeout)

    async def await_paused(self) -> None:
        await self._run.on_loop(self._run.wait_until(self._quiet))

    def stop(self, timeout: float | None = 5.0) -> RunResult | None:
        return self._run.stop(timeout)

    # -- inspection ----------------------------------------------------------------------
    def node(self, node_id: str) -> NodeRecord:
        """What the last pass did with ``node_id`` (status, inputs, output, error, times)."""
        self._check_id(node_id)
        return self._run.nodes[node_id]

    def inputs(self, node_id: str) -> Any:
        return self.node(node_id).inputs

    def output(self, node_id: str) -> dict[str, Any] | None:
        return self.node(node_id).output

    # -- re-runs -------------------------------------------------------------------------
    async def _apply_params(self, node_id: str, params: dict[str, Any]) -> None:
        node = self._run.flow.nodes[node_id].node
        problems: list[Problem] = []
        if params:
            known = set(node.param_names())
            for name, value in params.items():
                if name not in known:
                    problems.append(Problem(node_id, name, "unknown parameter"))
                    continue
                try:
                    setattr(node, name, value)
                except (ValueError, TypeError) as exc:
                    problems.append(Problem(node_id, name, f"invalid value {value!r}: {exc}"))
        # a node's check may load a model or a template: in the pool, not on the loop
        problems.extend(Problem(node_id, f, m) for f, m in await get_runtime().to_thread(node.check))
        self._run.refresh_node(node_id)
        if problems:
            raise FlowValidationError(problems, flow=self._run.flow.name)

    async def _rerun_node(self, node_id: str, params: dict[str, Any]) -> NodeRecord:
        self._check_id(node_id)
        self._run.check_idle_for(node_id)
        await self._apply_params(node_id, params)
        # checked again by the run: it may have moved on while the node was checked
        return await self._run.run_node_again(node_id)

    def rerun_node(self, node_id: str, timeout: float | None = 60.0, **params: Any) -> NodeRecord:
        """Set ``params`` on the node and run only it, on its cached inputs."""
        return self._sync(self._rerun_node(node_id, params), timeout)

    async def arerun_node(self, node_id: str, **params: Any) -> NodeRecord:
        return await self._run.on_loop(self._rerun_node(node_id, params))

    async def _rerun_from(self, node_id: str, params: dict[str, Any]) -> RunResult:
        run = self._run
        self._check_id(node_id)
        if not run.settled:
            raise FlowStateError("re-run from a node needs the run to be stopped or finished; "
                                 "use rerun_node() while it is paused", flow=run.flow.name)
        await self._apply_params(node_id, params)
        return await run.run_again_from(node_id)

    def rerun_from(self, node_id: str, timeout: float | None = 60.0, **params: Any) -> RunResult:
        """Run ``node_id`` and everything downstream again; upstream outcomes are reused."""
        return self._sync(self._rerun_from(node_id, params), timeout)

    async def arerun_from(self, node_id: str, **params: Any) -> RunResult:
        return await self._run.on_loop(self._rerun_from(node_id, params))

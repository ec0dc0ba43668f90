"""FlowManager: the single, thread-safe owner of the active flows of a process.

Every operation (add, start, stop, pause, resume, status) runs on the runtime loop, one
at a time, so the registry cannot be corrupted by concurrent callers; the sync methods
block until their operation ran there and work from any thread, the ``a``-prefixed ones
from any event loop. A flow has at most one active run: starting
it again while it runs is a :class:`~kvmrpa.FlowStateError`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._errors import FlowStateError
from .._runtime import get_runtime
from ._executor import FlowRun, RunResult
from ._flow import Flow

__all__ = ["FlowManager"]

T = TypeVar("T")
_ACTIVE = ("created", "running", "paused")


class FlowManager:
    """Registry of flows and their runs; start / stop / pause / resume / status."""

    def __init__(self, **run_defaults: Any) -> None:
        #: Options given to every run unless the start call overrides them.
        self.run_defaults = dict(run_defaults)
        self._flows: dict[str, Flow] = {}
        self._runs: dict[str, FlowRun] = {}
        self._starting: set[str] = set()
        self._lock = threading.Lock()  # guards snapshots read from other threads
        self.starts = 0

    # -- plumbing ------------------------------------------------------------------------
    def _sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        return get_runtime().run(coro, timeout=timeout)

    async def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        runtime = get_runtime()
        if asyncio.get_running_loop() is runtime.loop:
            return await coro
        return await asyncio.wrap_future(runtime.submit(coro))

    def _flow(self, name: str) -> Flow:
        flow = self._flows.get(name)
        if flow is None:
            raise FlowStateError(f"no flow named {name!r} in the manager", flow=name)
        return flow

    def _active(self, name: str) -> FlowRun | None:
        run = self._runs.get(name)
        return run if run is not None and not run.done else None

    # -- registry ------------------------------------------------------------------------
    async def _add(self, flow: Flow, replace: bool) -> None:
        if flow.name in self._flows and not replace:
            raise FlowStateError(f"a flow named {flow.name!r} is already registered", flow=flow.name)
        if self._active(flow.name) is not None:
            raise FlowStateError(f"flow {flow.name!r} is running; stop it before replacing it",
                                 flow=flow.name)
        with self._lock:
            self._flows[flow.name] = flow

    def add(self, flow: Flow, replace: bool = False) -> None:
        """Register a flow under its name."""
        self._sync(self._add(flow, replace))

    async def aadd(self, flow: Flow, replace: bool = False) -> None:
        await self._on_loop(self._add(flow, replace))

    async def _remove(self, name: str) -> None:
        self._flow(name)
        with self._lock:  # first, so that no start can find the flow while its run stops
            self._flows.pop(name, None)
        run = self._active(name)
        if run is not None:
            run.request_stop("removed")
            await run.aresult()
        with self._lock:
            if name not in self._flows:  # not added again while the run stopped
                self._runs.pop(name, None)

    def remove(self, name: str) -> None:
        """Stop (if running) and forget a flow."""
        self._sync(self._remove(name))

    @property
    def names(self) -> list[str]:
        with self._lock:
            return list(self._flows)

    def run_of(self, name: str) -> FlowRun | None:
        """The current (or last) run of a flow."""
        with self._lock:
            return self._runs.get(name)

    # -- operations ----------------------------------------------------------------------
    async def _start(self, name: str, options: dict[str, Any]) -> FlowRun:
        flow = self._flow(name)
        if name in self._starting or self._active(name) is not None:
            raise FlowStateError(f"flow {name!r} is already running", flow=name)
        self._starting.add(name)
        try:
            opts = {**self.run_defaults, **options}
            # validation and compilation may take a while for big flows: off the loop
            run = await get_runtime().to_thread(lambda: FlowRun(flow, **opts))
            if self._flows.get(name) is not flow:  # removed or replaced meanwhile
                raise FlowStateError(f"flow {name!r} was removed or replaced while it was "
                                     "starting", flow=name)
            run.start()  # on the loop: starts at once
            with self._lock:
                self._runs[name] = run
                self.starts += 1
        finally:
            self._starting.discard(name)
        return run

    def start(self, name: str, **options: Any) -> FlowRun:
        """Start a run of ``name`` (options as for :class:`FlowRun`)."""
        return self._sync(self._start(name, options))

    async def astart(self, name: str, **options: Any) -> FlowRun:
        return await self._on_loop(self._start(name, options))

    async def _stop(self, name: str) -> RunResult | None:
        self._flow(name)
        run = self._active(name)
        if run is None:
            return None
        run.request_stop("stop")
        return await run.aresult()

    def stop(self, name: str, timeout: float | None = 30.0) -> RunResult | None:
        """Stop the flow's run (no-op when it is not running); returns its result."""
        return self._sync(self._stop(name), timeout)

    async def astop(self, name: str) -> RunResult | None:
        return await self._on_loop(self._stop(name))

    async def _pause(self, name: str) -> None:
        self._flow(name)
        run = self._active(name)
        if run is None:
            raise FlowStateError(f"flow {name!r} is not running", flow=name)
        await run.debugger.apause(wait=False)

    def pause(self, name: str) -> None:
        """Pause: no new node of the flow starts (in-flight ones finish)."""
        self._sync(self._pause(name))

    async def apause(self, name: str) -> None:
        await self._on_loop(self._pause(name))

    async def _resume(self, name: str) -> None:
        self._flow(name)
        run = self._active(name)
        if run is None:
            raise FlowStateError(f"flow {name!r} is not running", flow=name)
        await run.debugger.aresume()

    def resume(self, name: str) -> None:
        self._sync(self._resume(name))

    async def aresume(self, name: str) -> None:
        await self._on_loop(self._resume(name))

    async def _status(self, name: str) -> dict[str, Any]:
        self._flow(name)
        run = self._runs.get(name)
        if run is None:
            return {"flow": name, "status": "idle", "passes": 0, "error": None, "run_id": None}
        return {"flow": name, "status": run.status, "passes": run.passes, "error": run.error,
                "run_id": run.run_id}

    def status(self, name: str) -> dict[str, Any]:
        """``{flow, status, passes, error, run_id}``; status ``idle`` before any run."""
        return self._sync(self._status(name))

    async def astatus(self, name: str) -> dict[str, Any]:
        return await self._on_loop(self._status(name))

    async def _statuses(self) -> dict[str, dict[str, Any]]:
        return {name: await self._status(name) for name in list(self._flows)}

    def statuses(self) -> dict[str, dict[str, Any]]:
        """The status of every registered flow."""
        return self._sync(self._statuses())

    async def _stop_all(self) -> None:
        runs = [r for r in self._runs.values() if not r.done]
        for run in runs:
            run.request_stop("stop")
        for run in runs:
            await run.aresult()

    def stop_all(self, timeout: float | None = 30.0) -> None:
        """Stop every running flow and wait for them."""
        self._sync(self._stop_all(), timeout)

    async def astop_all(self) -> None:
        await self._on_loop(self._stop_all())

    def __repr__(self) -> str:
        with self._lock:
            active = sum(1 for r in self._runs.values() if not r.done)
            return f"FlowManager(flows={len(self._flows)}, active={active})"

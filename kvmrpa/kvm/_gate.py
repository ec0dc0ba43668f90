"""The input gate: a run's permission to send input, checked before every primitive.

An :class:`InputGate` belongs to one run. The engine binds it, with the node's id, to the
context a node's code runs in (:func:`bind_gate`); every driver primitive sent from that
context first passes the gate (:class:`~kvmrpa.kvm.InputDriver` does this in its base
class, under the gate's lock, which it holds until the primitive was handed to the
transport). So:

* once :meth:`InputGate.stop` returned, no primitive of that run passes the gate again —
  whatever thread or loop it was sent from, also a blocking node's thread that outlives
  the run; an action cut this way raises :class:`~kvmrpa.InputStoppedError` after
  releasing the keys and buttons it held;
* while the gate is paused, primitives wait at the gate (they are *parked*) until it is
  resumed, except those of nodes explicitly allowed (a debugger step or re-run).

The lock is a ``threading.Lock`` so that a stop from another thread is ordered exactly
against the primitives: :attr:`InputGate.stopped_at` is taken under it. It is never
waited on by the event loop: primitives try it without blocking and yield while another
primitive of the same run holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from .._errors import InputStoppedError

__all__ = ["InputGate", "bind_gate", "current_gate", "unbind_gate"]

#: (gate, node id) of the node whose code is running, set by the engine.
_GATE: contextvars.ContextVar[tuple[InputGate, str] | None] = contextvars.ContextVar(
    "kvmrpa_input_gate", default=None)

#: How long a stop from another thread waits for a primitive in flight to be handed over.
_STOP_LOCK_TIMEOUT = 2.0


def current_gate() -> tuple[InputGate, str] | None:
    """The gate (and node id) bound to the running code, if any."""
    return _GATE.get()


def bind_gate(gate: InputGate | None, node: str) -> contextvars.Token[Any]:
    """Bind ``gate`` for ``node`` to the current context (a node's task); give the
    returned token to :func:`unbind_gate` when the node's code is done."""
    return _GATE.set(None if gate is None else (gate, node))


def unbind_gate(token: contextvars.Token[Any]) -> None:
    """Undo :func:`bind_gate` (``token`` is what it returned)."""
    _GATE.reset(token)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class InputGate:
    """Stop (final) and pause (until resumed) for the input of one run."""

    def __init__(self, on_change: Callable[[], Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._paused = False
        self._allowed: set[str] = set()
        self._parked: dict[str, int] = {}
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        #: Drivers (``InputDriver``; the driver module imports this one) that hold keys
        #: or buttons pressed through this gate.
        self._holders: set[Any] = set()
        self._on_change = on_change
        #: ``time.monotonic()`` at the moment the gate was stopped (taken under its lock).
        self.stopped_at: float | None = None
        #: ``time.time()`` at that moment.
        self.stopped_wall: float | None = None
        self.reason: str | None = None
        #: Primitives that passed the gate / were refused after the stop.
        self.passed = 0
        self.refused = 0

    # -- state -------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def parked(self) -> set[str]:
        """Nodes with a primitive waiting at the paused gate."""
        return {n for n, c in self._parked.items() if c > 0}

    def _acquire_for_change(self) -> bool:
        if _in_event_loop():
            # never block a loop: a primitive holding the lock is on some loop already
            # (it passed before this change); the change is still ordered after it
            return self._lock.acquire(blocking=False)
        return self._lock.acquire(timeout=_STOP_LOCK_TIMEOUT)

    def stop(self, reason: str = "stop") -> float:
        """Refuse every further primitive; returns the moment (``time.monotonic()``).

        From a thread without an event loop, waits (briefly) for a primitive being
        handed to its transport, so the moment is exactly ordered after it."""
        if self._stopped:
            assert self.stopped_at is not None
            return self.stopped_at
        got = self._acquire_for_change()
        try:
            if not self._stopped:
                self.stopped_at = time.monotonic()
                self.stopped_wall = time.time()
                self.reason = reason
                self._stopped = True
        finally:
            if got:
                self._lock.release()
        self._wake()
        assert self.stopped_at is not None
        return self.stopped_at

    def pause(self) -> None:
        """Primitives wait at the gate from now on (except allowed nodes')."""
        got = self._acquire_for_change()
        try:
            self._paused = True
            self._allowed.clear()
        finally:
            if got:
                self._lock.release()

    def resume(self) -> None:
        self._paused = False
        self._allowed.clear()
        self._wake()

    def allow(self, node: str) -> None:
        """Let ``node``'s primitives through while paused (a debugger step or re-run)."""
        self._allowed.add(node)
        self._wake()

    def disallow(self, node: str) -> None:
        self._allowed.discard(node)

    # -- the check (used by InputDriver) -----------------------------------------------
    async def _enter(self, node: str) -> None:
        """Return holding the lock when ``node`` may send; raise once stopped."""
        while True:
            if not self._lock.acquire(blocking=False):
                await asyncio.sleep(0.0005)  # another primitive of this run, or a stop
                continue
            if self._stopped:
                self.refused += 1
                self._lock.release()
                raise InputStoppedError(f"the run was stopped ({self.reason})")
            if not self._paused or node in self._allowed:
                self.passed += 1
                return
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
            self._parked[node] = self._parked.get(node, 0) + 1
            self._lock.release()
            self._changed()
            try:
                await fut
            finally:
                self._parked[node] -= 1
                if not self._parked[node]:
                    del self._parked[node]
                self._changed()

    def _exit(self) -> None:
        self._lock.release()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is gone
                loop.call_soon_threadsafe(_set_done, fut)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def held(self) -> list[str]:
        """``kind:name`` of every key and button still held through this gate."""
        out: list[str] = []
        for driver in list(self._holders):
            out.extend(f"{kind}:{name}" for kind, name, gate in driver._held_items()
                       if gate is self)
        return sorted(out)

    async def release_held(self) -> list[str]:
        """Release every key and button still held through this gate (after a stop);
        returns what was released."""
        released: list[str] = []
        for driver in list(self._holders):
            released.extend(await driver.release_held(self))
        self._holders = {d for d in self._holders
                         if any(g is self for _k, _n, g in d._held_items())}
        return released

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "paused" if self._paused else "open"
        return f"InputGate({state}, passed={self.passed}, refused={self.refused})"


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)

"""Typed run events, delivered as async iterators and callbacks without blocking the run.

Every event has ``kind``, ``flow``, ``run_id``, ``t`` (seconds since the run started)
and ``wall`` (epoch seconds). Subscribers each have a bounded buffer
(``settings.engine.event_buffer``); when a subscriber falls behind, the oldest events
are dropped and counted (:attr:`Subscription.dropped`), and the executor never waits.
Callbacks are called by a dispatcher task owned by the bus, never inline by the
executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

__all__ = [
    "Event",
    "EventBus",
    "FlowFinished",
    "FlowStarted",
    "NodeFailed",
    "NodeFinished",
    "NodeSkipped",
    "NodeStarted",
    "NodeStatus",
    "NodeStopped",
    "PassFinished",
    "PassStarted",
    "Paused",
    "Resumed",
    "StopRequested",
    "Subscription",
]

log = logging.getLogger("kvmrpa.engine")


class NodeStatus(enum.StrEnum):
    """The state of one node in a pass; a ``str`` enum, so ``status == "done"`` works.

    ``held`` is what :attr:`FlowRun.nodes` says of a node that is ready but held by the
    debugger (results and records report it as ``pending``; views draw it as
    ``paused``). ``stopped``: the node was running when the run was stopped (its action
    was cut), distinct from ``failed`` (raised, timed out, or cancelled because another
    node failed).
    """

    PENDING = "pending"
    HELD = "held"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event."""

    kind: ClassVar[str] = "event"
    flow: str
    run_id: str
    t: float
    wall: float

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStarted(Event):
    """The run started (``passes`` planned; 0 = until stopped)."""

    kind: ClassVar[str] = "flow_started"
    passes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowFinished(Event):
    """The run ended: ``status`` is ``ok``, ``failed`` or ``stopped``; ``outcome`` is the
    last pass's."""

    kind: ClassVar[str] = "flow_finished"
    status: str
    passes: int
    error: str | None
    outcome: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PassStarted(Event):
    kind: ClassVar[str] = "pass_started"
    pass_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PassFinished(Event):
    """A pass ended; ``outcome`` says in a few words what it did (``ok · 2 actions``,
    ``ok · nothing done (trigger → false; 3 skipped)``)."""

    kind: ClassVar[str] = "pass_finished"
    pass_index: int
    status: str
    duration: float
    error: str | None
    outcome: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStarted(Event):
    kind: ClassVar[str] = "node_started"
    node: str
    type: str
    pass_index: int
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFinished(Event):
    """A node returned; ``summary`` describes its output briefly."""

    kind: ClassVar[str] = "node_finished"
    node: str
    type: str
    pass_index: int
    duration: float
    branch: str | None
    summary: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFailed(Event):
    """A node failed; ``handled`` when policy ``continue`` or an ``error`` edge took it."""

    kind: ClassVar[str] = "node_failed"
    node: str
    type: str
    pass_index: int
    duration: float
    error: str
    handled: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSkipped(Event):
    kind: ClassVar[str] = "node_skipped"
    node: str
    type: str
    pass_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStopped(Event):
    """A node was running when the run was stopped; it was cancelled (status
    ``stopped``). A blocking node's thread may still be running: its result is dropped."""

    kind: ClassVar[str] = "node_stopped"
    node: str
    type: str
    pass_index: int
    duration: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRequested(Event):
    """Stop was requested (``reason``: stop, duration, removed …): from this moment the
    run sends no input; nodes in flight are being cut."""

    kind: ClassVar[str] = "stop_requested"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused(Event):
    """The run paused before ``node`` (``reason``: breakpoint, pause, step, run_to)."""

    kind: ClassVar[str] = "paused"
    node: str | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed(Event):
    kind: ClassVar[str] = "resumed"


def summarize(output: Any, limit: int = 80) -> dict[str, str]:
    """A short, JSON-safe description of a node output (never the full data)."""
    if not isinstance(output, dict):
        return {} if output is None else {"value": _short(output, limit)}
    return {str(k): _short(v, limit) for k, v in list(output.items())[:20]}


def _short(value: Any, limit: int) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"array{tuple(value.shape)} {value.dtype}"
    if isinstance(value, list | tuple) and len(value) > 5:
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_END = object()


class Subscription:
    """A bounded buffer of events; async-iterate it (or call :meth:`get`)."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._buf: deque[Any] = deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._closed = False
        #: Events dropped because this subscriber fell behind.
        self.dropped = 0

    def _push(self, item: Any) -> None:
        with self._cond:
            if self._closed:
                return
            if item is _END:
                self._closed = True
            elif len(self._buf) >= self._maxsize:
                self._buf.popleft()
                self.dropped += 1
            self._buf.append(item)
            self._cond.notify_all()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            loop, fut = waiter
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                if not fut.done():
                    fut.set_result(None)
            else:
                with contextlib.suppress(RuntimeError):  # the subscriber's loop is gone
                    loop.call_soon_threadsafe(_set_done, fut)

    def get(self, timeout: float | None = None) -> Event | None:
        """Blocking: the next event, or ``None`` at the end of the run or on timeout."""
        with self._cond:
            if not self._buf:
                self._cond.wait_for(lambda: bool(self._buf) or self._closed, timeout)
            if not self._buf:
                return None
            item = self._buf.popleft()
        if item is _END:
            with self._cond:
                self._buf.appendleft(_END)
            return None
        return item

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        try:
            while True:
                with self._cond:
                    if self._buf:
                        item = self._buf.popleft()
                        fut = None
                    elif self._closed:  # closed by the subscriber (unsubscribed)
                        return
                    else:
                        fut = loop.create_future()
                        self._waiter = (loop, fut)
                if fut is not None:
                    await fut
                    continue
                if item is _END:
                    return
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus._remove(self)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:  # wake an async iterator waiting for the next event
            loop, fut = waiter
            with contextlib.suppress(RuntimeError):  # the subscriber's loop is gone
                loop.call_soon_threadsafe(_set_done, fut)


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class EventBus:
    """Fan-out of one run's events to subscribers, callbacks and a recorder sink."""

    def __init__(self, buffer: int) -> None:
        self._buffer = buffer
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._sinks: list[Callable[[Event], None]] = []
        self._dispatchers: list[asyncio.Task[None]] = []
        self._closed = False
        #: True when anyone listens (the executor skips building events otherwise).
        self.active = False

    def _update(self) -> None:
        self.active = bool(self._subs or self._sinks)

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, maxsize or self._buffer)
        with self._lock:
            if self._closed:
                sub._push(_END)
                return sub
            self._subs.append(sub)
            self._update()
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
                self._update()

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """A fast, non-blocking consumer called inline (the run recorder)."""
        with self._lock:
            self._sinks.append(sink)
            self._update()

    def on_event(self, callback: Callable[[Event], Any],
                 loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Call ``callback(event)`` (sync or async) from a dispatcher task on ``loop``."""
        sub = self.subscribe()

        async def _dispatch() -> None:
            async for event in sub:
                try:
                    result = callback(event)
                    if inspect.isawaitable(result):
                        await result
                except (Exception, SystemExit, KeyboardInterrupt):  # never end the loop
                    log.exception("event callback %r failed", callback)

        def _start() -> None:
            task = loop.create_task(_dispatch())
            self._dispatchers.append(task)
            task.add_done_callback(self._dispatchers.remove)

        loop.call_soon_threadsafe(_start)
        return sub.close

    def publish(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:
                log.exception("event sink failed")
        for sub in tuple(self._subs):
            sub._push(event)

    def reopen(self) -> None:
        """Accept subscribers again after :meth:`close` (debugger re-runs)."""
        with self._lock:
            self._closed = False

    def close(self) -> None:
        """End every subscription (after the events already buffered)."""
        with self._lock:
            self._closed = True
            subs = list(self._subs)
            self._subs.clear()
            self._update()
        for sub in subs:
            sub._push(_END)

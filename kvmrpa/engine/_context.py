"""What a running node sees: its :class:`Inputs` and its :class:`NodeContext`.

``Inputs`` maps each live predecessor's id to its output ``dict`` and finds the
*nearest upstream* value of a well-known key (``inputs.frame()``, ``inputs.texts()`` …):
the first output holding it, searching predecessors breadth-first in edge order.

``NodeContext`` gives a node the flow's video source and input driver (opened lazily,
shared through the capture / kvm hubs, released when the run ends), the variables that
persist across passes, a per-node ``state`` dict that persists too, the audit trail,
a logger, the settings and the runtime.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import NodeError
from .._runtime import Runtime, get_runtime
from .._settings import Settings, get_settings
from .._urls import redact_url
from ..nodes._base import resolve_env_refs

if TYPE_CHECKING:  # pragma: no cover
    from . import FlowRun  # the package's name: the executor imports this module

__all__ = ["Inputs", "NodeContext"]

T = TypeVar("T")
log = logging.getLogger("kvmrpa.engine")

#: The context of the node whose code is running (set inside node tasks).
CURRENT_NODE: contextvars.ContextVar[NodeContext | None] = contextvars.ContextVar(
    "kvmrpa_current_node", default=None)

_EMPTY: dict[str, Any] = {}


class Inputs(Mapping[str, Mapping[str, Any]]):
    """The outputs of a node's live predecessors, with nearest-upstream accessors."""

    __slots__ = ("_node_id", "_outputs", "_preds", "error")

    def __init__(self, node_id: str, preds: Mapping[str, list[str]],
                 outputs: Mapping[str, Mapping[str, Any] | None],
                 error: BaseException | None = None) -> None:
        self._node_id = node_id
        self._preds = preds
        self._outputs = outputs
        #: The failure of the predecessor when this node runs on an ``error`` edge.
        self.error = error

    # Mapping: direct live predecessors only
    def __getitem__(self, key: str) -> Mapping[str, Any]:
        if key in self._preds.get(self._node_id, ()) and key in self._outputs:
            return self._outputs[key] or _EMPTY
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (p for p in self._preds.get(self._node_id, ()) if p in self._outputs)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def merged(self) -> dict[str, Any]:
        """All direct predecessors' outputs merged (later edges win)."""
        out: dict[str, Any] = {}
        for p in self:
            out.update(self[p])
        return out

    def nearest(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` from the nearest upstream node that produced one."""
        seen = {self._node_id}
        queue: deque[str] = deque(self._preds.get(self._node_id, ()))
        while queue:
            nid = queue.popleft()
            if nid in seen:
                continue
            seen.add(nid)
            out = self._outputs.get(nid)
            if out and key in out and key != "branch":
                return out[key]
            queue.extend(self._preds.get(nid, ()))
        return default

    def frame(self) -> Any:
        """The nearest upstream ``frame`` (a :class:`~kvmrpa.Frame`) or ``None``."""
        return self.nearest("frame")

    def texts(self) -> Any:
        """The nearest upstream ``texts`` (OCR ``TextBoxes``) or ``None``."""
        return self.nearest("texts")

    def matches(self) -> Any:
        """The nearest upstream ``matches`` (template ``Matches``) or ``None``."""
        return self.nearest("matches")

    def detections(self) -> Any:
        """The nearest upstream ``detections`` or ``None``."""
        return self.nearest("detections")

    def point(self) -> Any:
        """The nearest upstream ``point`` ``(x, y)`` in source pixels, or ``None``."""
        return self.nearest("point")

    def __repr__(self) -> str:
        return f"Inputs(node={self._node_id!r}, from={list(self)})"


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Resources:
    """Sources and drivers one run opened; released together when the run ends."""

    def __init__(self, run: FlowRun) -> None:
        self._run = run
        self._sources: dict[str, Any] = {}
        self._drivers: dict[str, Any] = {}
        self._unsubscribe: list[Callable[[], Any]] = []
        self._late: set[asyncio.Task[None]] = set()
        self._closed = False
        self._lock = asyncio.Lock()

    async def _open(self, store: dict[str, Any], url: str, opener: Callable[[], Any],
                    kind: str) -> Any:
        """Open once per URL. An open cancelled midway (stop) still lands in ``store`` or,
        when the run already released everything, is released at once: never leaked."""
        self._closed = False
        if url in store:
            return store[url]
        fut = asyncio.ensure_future(opener())

        def _landed(f: asyncio.Future[Any]) -> None:
            if f.cancelled() or f.exception() is not None:
                return
            obj = f.result()
            if self._closed:
                task = asyncio.get_running_loop().create_task(self._release_one(kind, url, obj))
                self._late.add(task)
                task.add_done_callback(self._late.discard)
            else:
                store.setdefault(url, obj)

        fut.add_done_callback(_landed)
        obj = await asyncio.shield(fut)
        return store.get(url, obj)

    async def source(self, url: str) -> Any:
        async with self._lock:
            from ..capture import open_source  # lazily: capture is optional here

            return await self._open(self._sources, url,
                                    lambda: _call(open_source, resolve_env_refs(url)), "source")

    async def driver(self, url: str) -> Any:
        async with self._lock:
            if url in self._drivers:
                return self._drivers[url]
            from ..kvm import open_driver

            frame_size = None
            for src in self._sources.values():
                latest = getattr(src, "latest", None)
                frame = latest() if callable(latest) else None
                if frame is not None:
                    frame_size = frame.size
                    break
            drv = await self._open(self._drivers, url,
                                   lambda: _call(open_driver, resolve_env_refs(url), frame_size),
                                   "driver")
            on_action = getattr(drv, "on_action", None)
            if callable(on_action):
                self._unsubscribe.append(on_action(self._on_action))
            return drv

    async def _release_one(self, kind: str, url: str, obj: Any) -> None:
        try:
            if kind == "driver":
                from ..kvm import release_driver

                await _call(release_driver, obj)
            else:
                from ..capture import release_source

                await _call(release_source, obj)
        except Exception:
            log.exception("cannot release %s %s", kind, redact_url(url))

    def _on_action(self, record: Any) -> None:
        ctx = CURRENT_NODE.get()
        if ctx is None or ctx.run is not self._run:
            return  # another flow's action on a shared driver
        data = record.as_dict() if hasattr(record, "as_dict") else dict(record)
        ctx.record_action(data)

    def source_info(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for url, src in self._sources.items():
            metrics = getattr(src, "metrics", None)
            try:
                m: Any = metrics() if callable(metrics) else None
                out[redact_url(url)] = m.as_dict() if hasattr(m, "as_dict") else m
            except Exception as exc:  # a broken source must not break the report
                out[redact_url(url)] = {"error": str(exc)}
        return out

    async def release_all(self) -> None:
        """Release every source and driver this run opened (idempotent)."""
        self._closed = True
        for unsub in self._unsubscribe:
            try:
                unsub()
            except Exception:
                log.exception("cannot unsubscribe from a driver")
        self._unsubscribe.clear()
        drivers, self._drivers = self._drivers, {}
        sources, self._sources = self._sources, {}
        for url, drv in drivers.items():
            await self._release_one("driver", url, drv)
        for url, src in sources.items():
            await self._release_one("source", url, src)


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a hub function: a coroutine function is awaited, a plain one is offloaded."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    return await _maybe_await(await get_runtime().to_thread(fn, *args))


class NodeContext:
    """The services a running node uses (see the module docstring)."""

    __slots__ = ("_log", "_run", "attempt", "node_id")

    def __init__(self, run: FlowRun, node_id: str, attempt: int = 0) -> None:
        self._run = run
        self.node_id = node_id
        self.attempt = attempt
        self._log: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def run(self) -> FlowRun:
        """The run this node belongs to."""
        return self._run

    @property
    def flow_name(self) -> str:
        return self._run.flow.name

    @property
    def pass_index(self) -> int:
        """Number of the current pass (1-based)."""
        return self._run.passes

    @property
    def variables(self) -> dict[str, Any]:
        """Flow variables; they persist across passes of the run."""
        return self._run.variables

    @property
    def state(self) -> dict[str, Any]:
        """A dict private to this node that persists across passes (counters, last seq)."""
        return self._run.node_state(self.node_id)

    @property
    def settings(self) -> Settings:
        return get_settings()

    @property
    def runtime(self) -> Runtime:
        return get_runtime()

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        if self._log is None:
            self._log = logging.LoggerAdapter(
                logging.getLogger("kvmrpa.flow"),
                {"flow": self.flow_name, "node": self.node_id})
        return self._log

    @property
    def stopping(self) -> bool:
        """True once stop was requested (long loops inside a node should return)."""
        return self._run.stopping

    def finish_run(self) -> None:
        """End the run after the current pass (normally: status ``ok``, not ``stopped``)."""
        self._run.finish_after_pass()

    async def source(self, url: str | None = None) -> Any:
        """The flow's video source (or ``url``), opened on first use and shared."""
        url = url or self._run.source_url
        if not url:
            raise NodeError("the flow has no video source (set Flow.source or --source)",
                            node_id=self.node_id, flow=self.flow_name, field="source")
        return await self._run.resources.source(url)

    async def input(self, url: str | None = None) -> Any:
        """The flow's input driver (or ``url``), opened on first use and shared."""
        url = url or self._run.input_url
        if not url:
            raise NodeError("the flow has no input driver (set Flow.input or --input)",
                            node_id=self.node_id, flow=self.flow_name, field="input")
        return await self._run.resources.driver(url)

    def record_action(self, action: Mapping[str, Any]) -> None:
        """Add an entry to the run's audit trail (and its run record)."""
        self._run.record_action(self.node_id, action)

    def observe(self, frame: Any, **results: Any) -> None:
        """Report a frame this node looked at and what it found there (``texts=``,
        ``matches=``, ``detections=``): the run's report shows it, also when the node
        then fails (a wait that timed out shows what it last saw)."""
        self._run.observe(self.node_id, frame, results)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """From a blocking ``run`` (a worker thread): run ``coro`` on the runtime loop.

        ``coro`` is cancelled when ``timeout`` passes (``TimeoutError``) or the run stops
        (``concurrent.futures.CancelledError``), so the worker thread is never left
        waiting on work nobody wants.
        """
        runtime = get_runtime()
        if runtime.in_loop_thread():
            coro.close()
            raise RuntimeError("ctx.call() is for blocking nodes; an async node awaits directly")

        async def _with_ctx() -> T:
            CURRENT_NODE.set(self)
            return await coro

        future = runtime.submit(_with_ctx())
        with self._run.tracking_call(future):  # cancelled if the run stops
            try:
                return future.result(timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                raise TimeoutError(f"flow {self.flow_name!r}: node {self.node_id}: ctx.call() "
                                   f"did not finish within {timeout:g} s") from None

    def __repr__(self) -> str:
        return f"NodeContext(flow={self.flow_name!r}, node={self.node_id!r})"

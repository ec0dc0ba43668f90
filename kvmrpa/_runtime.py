"""The background runtime: one asyncio loop per process in a daemon thread, plus a
bounded thread pool for CPU work.

Flows keep running while notebook cells execute because the loop is not the kernel's.
:meth:`Runtime.run` blocks on a coroutine from anywhere: a plain script, a notebook
cell (the kernel's own loop is running in that thread, which does not matter because
ours is elsewhere), another thread, or even the runtime's own thread (through
``nest_asyncio``, the one case where a caller must block on the loop it runs on).

A blocking call whose awaiting side gave up (a node's timeout, a stop) keeps its pool
thread until it returns: :meth:`Runtime.run_blocking` tracks such *abandoned* calls by
label (:meth:`Runtime.abandoned`), and once they occupy every pool thread, new pool work
fails at once with a :class:`~kvmrpa.PoolExhaustedError` naming them, instead of
queueing behind threads that may never come back.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ._errors import PoolExhaustedError, RuntimeClosedError
from ._settings import get_settings

__all__ = ["Runtime", "get_runtime", "run_sync"]

T = TypeVar("T")
log = logging.getLogger("kvmrpa.runtime")


class Runtime:
    """An event loop in a daemon thread and a bounded worker pool.

    Use :func:`get_runtime` for the process-wide instance; create your own only in tests.
    """

    def __init__(self, pool_size: int | None = None, name: str = "kvmrpa") -> None:
        settings = get_settings().runtime
        self._pool_size = pool_size or settings.pool_size
        self._shutdown_timeout = settings.shutdown_timeout
        self._name = name
        self._lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._pool_size, thread_name_prefix=f"{name}-worker"
        )
        self._loop.set_default_executor(self._pool)
        #: pool calls still running although nobody awaits them any more -> label
        self._abandoned: dict[concurrent.futures.Future[Any], tuple[str, object]] = {}
        self._abandoned_lock = threading.Lock()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name=f"{name}-loop", daemon=True
        )
        self._thread.start()
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        try:
            self._loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    # -- properties ----------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The runtime's event loop (runs in :attr:`thread`)."""
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The bounded pool for CPU-heavy work."""
        return self._pool

    @property
    def pool_size(self) -> int:
        return self._pool_size

    @property
    def closed(self) -> bool:
        return self._closed

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    # -- scheduling ----------------------------------------------------------------
    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the runtime loop; returns a concurrent future."""
        if self._closed:
            coro.close()
            raise RuntimeClosedError("the kvmrpa runtime is shut down")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the runtime loop and block until it finishes.

        Works from a script, a notebook cell, any thread, and the loop's own thread.
        On timeout the coroutine is cancelled and :class:`TimeoutError` is raised.
        """
        if self.in_loop_thread():
            import nest_asyncio

            nest_asyncio.apply(self._loop)
            return self._loop.run_until_complete(asyncio.wait_for(coro, timeout))
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except TimeoutError:
            # On 3.11 concurrent.futures.TimeoutError *is* TimeoutError: a coroutine that
            # raised a TimeoutError subclass itself has a done future; re-raise its own.
            if future.done() and not future.cancelled():
                raise
            future.cancel()
            raise TimeoutError(f"operation did not finish within {timeout} s") from None
        except KeyboardInterrupt:
            future.cancel()
            raise

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop thread (thread-safe)."""
        if self._closed:
            raise RuntimeClosedError("the kvmrpa runtime is shut down")
        self._loop.call_soon_threadsafe(fn, *args)

    async def to_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn`` in the bounded pool without blocking the loop (fails at
        once when abandoned calls hold every pool thread)."""
        self._check_pool()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def run_blocking(self, label: str, fn: Callable[..., T], /, *args: Any,
                           owner: object = None) -> T:
        """Like :meth:`to_thread`; if the awaiting side gives up (cancelled, timed out)
        while ``fn`` still runs, the call is remembered as abandoned under ``label``
        (and ``owner``) until it returns."""
        self._check_pool()
        cf = self._pool.submit(fn, *args)
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            if not cf.done() and not cf.cancel():  # started: its thread is taken
                with self._abandoned_lock:
                    self._abandoned[cf] = (label, owner)
                cf.add_done_callback(self._forget)
            raise

    def _forget(self, cf: concurrent.futures.Future[Any]) -> None:
        with self._abandoned_lock:
            self._abandoned.pop(cf, None)

    def abandoned(self, owner: object = None) -> list[str]:
        """Labels of pool calls still running that nobody waits for any more (those of
        ``owner`` only, when given)."""
        with self._abandoned_lock:
            return [label for cf, (label, who) in self._abandoned.items()
                    if not cf.done() and (owner is None or who is owner)]

    def _check_pool(self) -> None:
        stuck = self.abandoned()
        if len(stuck) >= self._pool_size:
            shown = ", ".join(sorted(set(stuck))[:8])
            raise PoolExhaustedError(
                f"all {self._pool_size} worker threads are held by calls that timed out or "
                f"were stopped and have not returned: {shown} (raise runtime.pool_size, or "
                "make those nodes return)")

    # -- shutdown ------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel every task, stop the loop and the pool. A second call does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread.is_alive() and not self.in_loop_thread():
            fut = asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(self._shutdown_timeout + 1)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self._shutdown_timeout + 1)
        elif self.in_loop_thread():
            self._loop.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        log.debug("runtime %s shut down", self._name)

    async def _cancel_all(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks(self._loop) if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self._shutdown_timeout)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime, started on first use and shut down at exit."""
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.closed:
            _runtime = Runtime()
            atexit.register(_runtime.shutdown)
        return _runtime


def run_sync(awaitable: Awaitable[T], timeout: float | None = None) -> T:
    """Block on ``awaitable`` using the process-wide runtime (the sync face of the API)."""

    async def _wrap() -> T:
        return await awaitable

    return get_runtime().run(_wrap(), timeout=timeout)

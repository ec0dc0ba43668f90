"""The VNC framebuffer as a video source (``vnc://[password@]host:port``), on asyncvnc.

One thread per source runs a private asyncio loop that owns the RFB connection (the
input driver of the same URL keeps its own connection; x11vnc and most servers are
``-shared``). After one full update it asks for incremental updates and keeps the
framebuffer current; a publisher publishes a BGR copy of it at ``fps`` (query parameter,
default ``capture.default_fps``), so consumers see a steady frame rate even on a still
screen. A heartbeat (a non-incremental request for one pixel) goes out every third of
``stall_timeout``; if the server sends nothing for ``stall_timeout`` the connection is
dropped and reopened with backoff, like the RTSP reader. URL forms match the VNC input
driver: ``vnc://host:5900``, ``vnc://secret@host:5900``, ``vnc://user:secret@host``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any

import cv2
import numpy as np

from .._errors import SourceOpenError, UrlError
from .._rfb import rfb_connect  # the same handshake as the input driver
from .._settings import get_settings
from .._urls import query_params, vnc_address
from ._backoff import Backoff
from ._reader import ReaderOptions
from ._source import FrameSource, SourceState

__all__ = ["VncSource"]

log = logging.getLogger("kvmrpa.capture")


class VncSource(FrameSource):
    """Frames from a VNC server's framebuffer, at a steady rate, with reconnect."""

    def __init__(self, url: str, options: ReaderOptions | None = None, **overrides: Any) -> None:
        super().__init__(url)
        self.options = options if options is not None else ReaderOptions.from_settings(**overrides)
        self.host, self.port, self._user, self._password = vnc_address(url)
        raw_fps = query_params(url).get("fps")
        try:
            self.fps = float(raw_fps) if raw_fps else get_settings().capture.default_fps
        except ValueError:
            raise UrlError(f"{self.display_url}: fps={raw_fps!r} is not a number") from None
        if not 0 < self.fps <= 240:
            raise UrlError(f"{self.display_url}: fps must be in (0, 240], got {self.fps:g}")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None
        self._ready = threading.Event()

    # -- lifecycle -----------------------------------------------------------------
    def _start(self) -> None:
        self._ready.clear()
        self._thread = threading.Thread(target=self._thread_main, daemon=True,
                                        name=f"kvmrpa-vnc {self.display_url}")
        self._thread.start()
        self._ready.wait(5)

    def _stop(self) -> None:
        loop, halt = self._loop, self._halt
        if loop is not None and halt is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(halt.set)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def threads(self) -> list[threading.Thread]:
        return [t for t in (self._thread,) if t is not None and t.is_alive()]

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._supervise())
        except Exception:
            log.exception("source %s: VNC reader failed", self.display_url)
            self._set_state(SourceState.STOPPED, "internal error in the VNC reader")
        finally:
            self._ready.set()

    # -- supervisor ----------------------------------------------------------------
    async def _supervise(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._halt = halt = asyncio.Event()
        self._ready.set()
        opts = self.options
        backoff = Backoff(opts.reconnect_initial, opts.reconnect_max, opts.reconnect_jitter)
        failures = 0
        while not halt.is_set():
            self._note_attempt()
            frames_before = self.metrics().frames
            try:
                await _until(halt, self._session(halt))
                error = None
            except (OSError, EOFError, asyncio.IncompleteReadError, SourceOpenError,
                    TimeoutError, ValueError, PermissionError) as exc:
                error = _describe(exc, self)
            if halt.is_set():
                break
            if self.metrics().frames > frames_before:
                backoff.reset()
                failures = 0
            failures += 1
            if opts.max_reconnects and failures > opts.max_reconnects:
                self._set_state(SourceState.STOPPED,
                                f"gave up after {opts.max_reconnects} reconnect attempts: {error}")
                break
            delay = backoff.next()
            self._set_state(SourceState.RECONNECTING, error or "connection closed")
            log.warning("source %s: %s; retrying in %.2f s", self.display_url, error, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(halt.wait(), delay)

    async def _session(self, halt: asyncio.Event) -> None:
        opts = self.options
        try:
            # closes its socket on a timeout: a server that accepts and hangs leaks nothing
            client = await rfb_connect(self.host, self.port, self._user, self._password,
                                       opts.open_timeout)
        except TimeoutError:
            raise SourceOpenError(f"no VNC handshake within {opts.open_timeout:g} s") from None
        try:
            video = client.video
            video.data = None
            video.refresh()  # full update first
            async with asyncio.timeout(opts.open_timeout + opts.read_timeout):
                while not video.is_complete():
                    await client.read()
            state = {"progress": time.monotonic()}
            video.refresh()  # incremental from now on
            await client.drain()
            tasks = [asyncio.create_task(self._pump(client, state)),
                     asyncio.create_task(self._publisher(video)),
                     asyncio.create_task(self._heartbeat(client)),
                     asyncio.create_task(self._watchdog(state)),
                     asyncio.create_task(halt.wait())]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for t in done:
                exc = t.exception()
                if exc is not None:
                    raise exc
        finally:
            with contextlib.suppress(Exception):
                client.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.writer.wait_closed(), 1.0)

    async def _pump(self, client: Any, state: dict[str, float]) -> None:
        import asyncvnc

        while True:
            kind = await client.read()
            state["progress"] = time.monotonic()
            if kind is asyncvnc.UpdateType.VIDEO:
                client.video.refresh()  # ask for the next change at once
                await client.drain()

    async def _publisher(self, video: Any) -> None:
        interval = 1.0 / self.fps
        start, index = time.monotonic(), 0
        while True:
            rgba = video.as_rgba()
            self._publish(cv2.cvtColor(np.ascontiguousarray(rgba), cv2.COLOR_RGBA2BGR))
            index += 1
            delay = start + index * interval - time.monotonic()
            if delay < -interval:  # fell behind: restart the schedule, no burst
                start, index, delay = time.monotonic(), 0, 0
            await asyncio.sleep(max(0.0, delay))

    async def _heartbeat(self, client: Any) -> None:
        period = self.options.stall_timeout / 3
        while True:
            await asyncio.sleep(period)
            # FramebufferUpdateRequest, non-incremental, one pixel: always answered.
            client.writer.write(b"\x03\x00\x00\x00\x00\x00\x00\x01\x00\x01")
            await client.drain()

    async def _watchdog(self, state: dict[str, float]) -> None:
        stall = self.options.stall_timeout
        while True:
            await asyncio.sleep(min(0.1, stall / 10))
            idle = time.monotonic() - state["progress"]
            if idle > stall:
                raise TimeoutError(f"stalled: nothing from the server for {idle:.1f} s "
                                   f"(stall_timeout {stall:g} s)")


async def _until(halt: asyncio.Event, coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` until it ends or ``halt`` is set (then it is cancelled), so that
    stop() is prompt even while a handshake or the first update is still pending."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(halt.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if not task.cancelled():
        task.result()


def _describe(exc: BaseException, src: VncSource) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {src.host}:{src.port} (nothing listening)"
    if isinstance(exc, PermissionError):
        return f"VNC authentication failed at {src.host}:{src.port}: {exc}"
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return f"{src.host}:{src.port} closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot connect to {src.host}:{src.port} ({exc.strerror})"
    text = str(exc) or type(exc).__name__
    return text if "stalled" in text or "handshake" in text else f"{type(exc).__name__}: {text}"

"""The FrameSource contract and its latest-frame mailbox.

A producer (reader thread, simulator, file player) calls :meth:`FrameSource._publish`;
consumers call :meth:`latest` (never blocks) or ``await next_frame(after_seq)``. There is
no queue: the mailbox holds one frame, so a slow consumer always gets the newest one and
nothing has to be drained: a consumer never acts on a stale backlog.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from .._errors import FrameTimeoutError
from .._frame import Frame
from .._settings import get_settings
from .._urls import redact_url

__all__ = ["FrameSource", "SourceMetrics", "SourceState"]

log = logging.getLogger("kvmrpa.capture")


class SourceState(enum.StrEnum):
    """Lifecycle of a source."""

    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SourceMetrics:
    """A snapshot of a source's health."""

    state: SourceState
    fps: float
    frames: int
    dropped: int
    reconnects: int
    age_s: float | None
    last_error: str | None
    #: Connection attempts made (the first open counts; 0 for sources without one).
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state), "fps": round(self.fps, 2), "frames": self.frames,
            "dropped": self.dropped, "reconnects": self.reconnects,
            "age_s": None if self.age_s is None else round(self.age_s, 4),
            "last_error": self.last_error, "attempts": self.attempts,
        }


class FrameSource(abc.ABC):
    """A video source that delivers the latest frame.

    Subclasses implement :meth:`_start` and :meth:`_stop` and call :meth:`_publish` for
    every new image and :meth:`_set_state` on state changes. Everything here is
    thread-safe: producers may run in any thread.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.display_url = redact_url(url)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._latest: Frame | None = None
        self._seq = 0
        self._state = SourceState.STOPPED
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._state_callbacks: list[Callable[[SourceState], None]] = []
        self._frames = 0
        self._consumed_seq = 0
        self._dropped = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._attempts = 0
        self._times: deque[float] = deque(maxlen=512)
        self._started = False
        self._release_to: Callable[[FrameSource], None] | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> Self:
        """Start producing frames (idempotent). Returns ``self``."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        self._set_state(SourceState.CONNECTING)
        self._start()
        return self

    def stop(self) -> None:
        """Stop producing and release everything (idempotent)."""
        with self._lock:
            if not self._started:
                return
            self._started = False
        try:
            self._stop()
        finally:
            self._set_state(SourceState.STOPPED)
            self._wake_all()

    @abc.abstractmethod
    def _start(self) -> None:
        """Begin producing (start a thread or task); must not block for long."""

    @abc.abstractmethod
    def _stop(self) -> None:
        """Stop producing and release every resource; must return promptly."""

    def owned_by(self, release: Callable[[FrameSource], None]) -> None:
        """Hand the source's lifetime to a hub: leaving a ``with`` block then calls
        ``release(self)`` (one reference given back) instead of :meth:`stop`."""
        self._release_to = release

    def __enter__(self) -> FrameSource:
        """``with source:`` starts it, or, for one from a hub (``with open_source(url)``),
        holds the reference just taken."""
        return self if self._release_to is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        if self._release_to is not None:
            self._release_to(self)
        else:
            self.stop()

    @property
    def running(self) -> bool:
        return self._started

    # -- state ---------------------------------------------------------------------
    @property
    def state(self) -> SourceState:
        return self._state

    def on_state(self, callback: Callable[[SourceState], None]) -> Callable[[], None]:
        """Call ``callback(state)`` on every change; returns a function that unsubscribes.

        Callbacks run in the thread that changed the state (often a reader thread):
        keep them short, and hop to a loop with ``call_soon_threadsafe`` if needed.
        """
        with self._lock:
            self._state_callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._state_callbacks:
                    self._state_callbacks.remove(callback)

        return unsubscribe

    def _set_state(self, state: SourceState, error: str | None = None) -> None:
        with self._lock:
            changed = state != self._state
            self._state = state
            if error is not None:
                self._last_error = error
            if state == SourceState.RECONNECTING and changed:
                self._reconnects += 1
            callbacks = list(self._state_callbacks)
        if changed:
            log.info("source %s: %s%s", self.display_url, state, f" ({error})" if error else "")
            for cb in callbacks:
                try:
                    cb(state)
                except Exception:  # a bad observer must not kill the producer
                    log.exception("state callback failed for %s", self.display_url)

    def _note_error(self, error: str) -> None:
        with self._lock:
            self._last_error = error

    def _note_attempt(self) -> None:
        """Count one connection attempt (shown in :meth:`metrics`)."""
        with self._lock:
            self._attempts += 1

    # -- producing -----------------------------------------------------------------
    def _publish(self, image: np.ndarray, captured: float | None = None) -> Frame:
        """Put a new image in the mailbox and wake every waiter."""
        captured = time.monotonic() if captured is None else captured
        with self._lock:
            self._seq += 1
            if self._latest is not None and self._latest.seq > self._consumed_seq:
                self._dropped += 1
            frame = Frame(image, seq=self._seq, captured=captured, source_id=self.display_url)
            self._latest = frame
            self._frames += 1
            self._times.append(captured)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, set()
        if self._state != SourceState.LIVE:
            self._set_state(SourceState.LIVE)
        _resolve_all(waiters)
        return frame

    def _wake_all(self) -> None:
        with self._lock:
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, set()
        _resolve_all(waiters)

    # -- consuming -----------------------------------------------------------------
    def latest(self) -> Frame | None:
        """The newest frame, or ``None`` before the first one. Never blocks."""
        with self._lock:
            frame = self._latest
            if frame is not None and frame.seq > self._consumed_seq:
                self._consumed_seq = frame.seq
            return frame

    async def next_frame(self, after_seq: int | None = None, timeout: float | None = None) -> Frame:
        """Wait for a frame newer than ``after_seq`` (any frame if ``None``).

        Raises :class:`FrameTimeoutError` after ``timeout`` seconds (default from settings).
        """
        timeout = get_settings().capture.next_frame_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                frame = self._latest
                if frame is not None and (after_seq is None or frame.seq > after_seq):
                    self._consumed_seq = max(self._consumed_seq, frame.seq)
                    return frame
                fut: asyncio.Future[None] = loop.create_future()
                entry = (loop, fut)
                self._waiters.add(entry)
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result
                # when a cancel lands just as the frame arrives, and the cancel is lost
                async with asyncio.timeout(remaining):
                    await fut
            except TimeoutError:
                with self._lock:
                    self._waiters.discard(entry)
                raise self._timeout_error(after_seq, timeout) from None
            finally:
                with self._lock:
                    self._waiters.discard(entry)

    def wait_frame(self, after_seq: int | None = None, timeout: float | None = None) -> Frame:
        """Blocking form of :meth:`next_frame` for scripts, notebook cells and threads.

        Waits on the mailbox's condition directly (no event loop involved); never call it
        on an event loop's thread.
        """
        timeout = get_settings().capture.next_frame_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._latest
                if frame is not None and (after_seq is None or frame.seq > after_seq):
                    self._consumed_seq = max(self._consumed_seq, frame.seq)
                    return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout_error(after_seq, timeout)
                self._cond.wait(remaining)

    def _timeout_error(self, after_seq: int | None, timeout: float) -> FrameTimeoutError:
        err = f"; last error: {self._last_error}" if self._last_error else ""
        return FrameTimeoutError(
            f"source {self.display_url}: no frame newer than seq {after_seq} within "
            f"{timeout:g} s (state {self._state}{err})")

    # -- metrics -------------------------------------------------------------------
    def metrics(self) -> SourceMetrics:
        window = get_settings().capture.fps_window
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._times if now - t <= window]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
            age = None if self._latest is None else now - self._latest.captured
            return SourceMetrics(self._state, fps, self._frames, self._dropped,
                                 self._reconnects, age, self._last_error, self._attempts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_url!r}, state={self._state})"


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _resolve_all(waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
    for loop, fut in waiters:
        with contextlib.suppress(RuntimeError):  # the waiter's loop is closed
            loop.call_soon_threadsafe(_resolve, fut)

"""The encoder service: JPEG frames for viewers, encoded once however many watch.

This module owns the streaming rule: JPEG encoding happens once per frame and size,
however many viewers watch, and never on the event loop.

* :class:`FrameEncoder` encodes a frame once per ``(source, seq, width, quality)`` key.
  Concurrent requests for the same key share one encode (a future per key), finished
  encodes are kept in a small bounded cache, and the work runs in the runtime's bounded
  pool (``Runtime.to_thread``), never on the event loop.
* :class:`FrameStreamer` is one viewer's pump: it waits for a newer frame, respects the
  display fps cap, asks the shared encoder for the JPEG at the viewer's displayed width
  and hands it to a ``send`` callback. It runs only while the viewer is watching, so a
  source nobody watches costs no encode at all. Flow control: at most ``max_in_flight``
  frames are sent without an acknowledgement from the viewer.

It needs no UI package (only numpy, OpenCV and the kvmrpa core), so the widgets and the
stream benchmark both build on it; ``kvmrpa.widgets`` re-exports it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .._errors import FrameTimeoutError, KvmrpaError
from .._frame import Frame
from .._runtime import Runtime, get_runtime
from .._settings import get_settings
from ._source import FrameSource

__all__ = [
    "EncodedFrame",
    "FrameEncoder",
    "FrameStreamer",
    "choose_width",
    "encode_jpeg",
    "get_encoder",
]

log = logging.getLogger("kvmrpa.widgets.stream")

#: Widths are rounded up to a multiple of this, so viewers of nearly the same size share
#: one encode.
WIDTH_STEP = 160


@dataclass(frozen=True)
class EncodedFrame:
    """One JPEG-encoded frame and what a viewer needs to draw and map it."""

    seq: int
    jpeg: bytes
    width: int
    height: int
    frame_width: int
    frame_height: int
    captured: float
    wall: float
    quality: int

    @property
    def nbytes(self) -> int:
        return len(self.jpeg)


def choose_width(frame_width: int, display_width: int | None, max_width: int | None = None) -> int:
    """The width to encode at: the displayed width rounded up to :data:`WIDTH_STEP`,
    never wider than the frame nor than ``max_width`` (settings.stream.max_width)."""
    if frame_width <= 0:
        raise ValueError(f"frame width must be positive, got {frame_width}")
    max_width = get_settings().stream.max_width if max_width is None else max_width
    width = frame_width if not display_width or display_width <= 0 else display_width
    width = -(-int(width) // WIDTH_STEP) * WIDTH_STEP
    return max(1, min(width, frame_width, max_width))


def encode_jpeg(image: np.ndarray, width: int, quality: int) -> tuple[bytes, int, int]:
    """Downscale ``image`` (BGR) to ``width`` (keeping the aspect) and JPEG-encode it.

    Returns ``(jpeg, width, height)``. Blocking and CPU-bound: call it in a worker.

    A downscale by at most 2 (1080p to 1280 wide, the common case) is bilinear: there
    it weighs every source pixel, as an area average does, with nearly the same weights
    (identical at exactly 2), at a third to a fifth of ``INTER_AREA``'s cost for a
    non-integer factor (~9 ms a 1080p frame here). Larger downscales average areas.
    """
    h, w = image.shape[:2]
    if width < w:
        height = max(1, round(h * width / w))
        interpolation = cv2.INTER_LINEAR if w <= 2 * width else cv2.INTER_AREA
        image = cv2.resize(image, (width, height), interpolation=interpolation)
    else:
        width, height = w, h
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid input
        raise KvmrpaError(f"JPEG encoding failed for a {w}x{h} frame")
    return buf.tobytes(), width, height


class FrameEncoder:
    """Shared, deduplicating JPEG encoder.

    ``await encoder.encode(frame, width, quality)`` returns the :class:`EncodedFrame`
    for that key, encoding at most once per key. Call it on one event loop (the
    runtime's). ``inline=True`` encodes on the loop itself: only the benchmark uses it,
    as the baseline that shows what offloading saves.
    """

    def __init__(self, runtime: Runtime | None = None, cache_size: int = 16,
                 inline: bool = False, history: int = 1024) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self._runtime = runtime
        self._cache_size = cache_size
        self._inline = inline
        self._done: collections.OrderedDict[tuple[str, int, int, int], EncodedFrame] = (
            collections.OrderedDict())
        self._pending: dict[tuple[str, int, int, int], asyncio.Task[EncodedFrame]] = {}
        self._lock = threading.Lock()
        self._history = history
        self.encodes = 0
        self.requests = 0
        #: Encodes per ``(source_id, seq)`` of the last ``history`` frames encoded (a
        #: diagnostic: every value is 1 when the streaming rule holds; bounded, since
        #: the process-wide encoder runs as long as the server).
        self.encoded_seqs: collections.Counter[tuple[str, int]] = collections.Counter()

    @property
    def runtime(self) -> Runtime:
        return self._runtime or get_runtime()

    def reset_counters(self) -> None:
        with self._lock:
            self.encodes = 0
            self.requests = 0
            self.encoded_seqs.clear()

    def _encode(self, frame: Frame, width: int, quality: int) -> EncodedFrame:
        jpeg, w, h = encode_jpeg(frame.image, width, quality)
        with self._lock:
            self.encodes += 1
            self.encoded_seqs[(frame.source_id, frame.seq)] += 1
            while len(self.encoded_seqs) > self._history:  # oldest first (insertion order)
                del self.encoded_seqs[next(iter(self.encoded_seqs))]
        return EncodedFrame(frame.seq, jpeg, w, h, frame.width, frame.height,
                            frame.captured, frame.wall, quality)

    async def encode(self, frame: Frame, width: int | None = None,
                     quality: int | None = None) -> EncodedFrame:
        """The JPEG of ``frame`` at ``width`` (see :func:`choose_width`) and ``quality``."""
        stream = get_settings().stream
        quality = stream.jpeg_quality if quality is None else int(quality)
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
        width = choose_width(frame.width, width, stream.max_width)
        key = (frame.source_id, frame.seq, width, quality)
        with self._lock:
            self.requests += 1
        done = self._done.get(key)
        if done is not None:
            return done
        task = self._pending.get(key)
        if task is None:
            # The encode is its own task: a requester that goes away (a viewer closing,
            # cancelled) never cancels it under the others waiting for the same key.
            task = asyncio.get_running_loop().create_task(self._produce(key, frame, width, quality))
            task.add_done_callback(_consume)
            self._pending[key] = task
        return await asyncio.shield(task)

    async def _produce(self, key: tuple[str, int, int, int], frame: Frame, width: int,
                       quality: int) -> EncodedFrame:
        try:
            if self._inline:
                result = self._encode(frame, width, quality)
            else:
                result = await self.runtime.to_thread(self._encode, frame, width, quality)
        finally:
            self._pending.pop(key, None)
        self._done[key] = result
        while len(self._done) > self._cache_size:
            self._done.popitem(last=False)
        return result


def _consume(task: asyncio.Task[EncodedFrame]) -> None:
    """Mark a finished encode's error as seen (every waiter gets it re-raised)."""
    if not task.cancelled():
        task.exception()


_encoder: FrameEncoder | None = None
_encoder_lock = threading.Lock()


def get_encoder() -> FrameEncoder:
    """The process-wide encoder every viewer shares."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            _encoder = FrameEncoder()
        return _encoder


class FrameStreamer:
    """One viewer's frame pump, running on the runtime loop while the viewer watches.

    ``send(encoded)`` is called (on the runtime loop) for every frame to show; it must
    not block. ``width()`` returns the displayed width in pixels (``None``: full size).
    The viewer calls :meth:`ack` with the seq of each frame it has drawn.
    """

    def __init__(
        self,
        source: FrameSource,
        send: Callable[[EncodedFrame], None],
        *,
        width: Callable[[], int | None] = lambda: None,
        quality: Callable[[], int | None] = lambda: None,
        fps: Callable[[], float | None] = lambda: None,
        encoder: FrameEncoder | None = None,
        runtime: Runtime | None = None,
        max_in_flight: int = 2,
        ack_timeout: float = 1.0,
    ) -> None:
        self.source = source
        self._send = send
        self._width = width
        self._quality = quality
        self._fps = fps
        self._encoder = encoder
        self._runtime = runtime
        self._max_in_flight = max(1, max_in_flight)
        self._ack_timeout = ack_timeout
        self._task: asyncio.Task[None] | None = None
        self._active = False
        self._generation = 0
        self._exited = threading.Event()
        self._exited.set()
        self._lock = threading.Lock()
        self._in_flight: collections.deque[tuple[int, float]] = collections.deque(maxlen=64)
        self._acked: asyncio.Event | None = None  # created on the runtime loop
        self.sent = 0
        self.last_seq = 0
        self.last_error: str | None = None

    @property
    def runtime(self) -> Runtime:
        return self._runtime or get_runtime()

    @property
    def encoder(self) -> FrameEncoder:
        return self._encoder or get_encoder()

    @property
    def running(self) -> bool:
        """Whether the pump task is alive."""
        return not self._exited.is_set()

    def start(self) -> None:
        """Start pumping (idempotent, thread-safe)."""
        with self._lock:
            if self._active:
                return
            self._active = True
            self._exited = exited = threading.Event()
            self._generation += 1
            generation = self._generation
        try:
            self.runtime.call_soon(self._spawn, generation, exited)
        except KvmrpaError:
            exited.set()
            with self._lock:
                self._active = False
            raise
        log.debug("streamer started for %s", self.source.display_url)

    def _spawn(self, generation: int, exited: threading.Event) -> None:
        # On the loop. start/stop calls reach the loop in order, so a stop issued
        # after this start always finds the task.
        with self._lock:
            if generation != self._generation or not self._active:
                exited.set()
                return
        task = asyncio.get_running_loop().create_task(self._pump())

        def ended(t: asyncio.Task[None]) -> None:
            exited.set()
            if not t.cancelled():
                t.exception()  # retrieved, so asyncio does not log it as never retrieved

        task.add_done_callback(ended)
        self._task = task

    def _cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    def stop(self, wait: float | None = None) -> None:
        """Stop pumping (idempotent, thread-safe). With ``wait``, block up to that many
        seconds until the pump has exited (never do that on the runtime loop)."""
        with self._lock:
            was_active, self._active = self._active, False
            self._generation += 1
            exited = self._exited
        if was_active:
            with contextlib.suppress(KvmrpaError):
                self.runtime.call_soon(self._cancel)
            log.debug("streamer stopped for %s", self.source.display_url)
        if wait:
            exited.wait(wait)

    def ack(self, seq: int) -> None:
        """The viewer has drawn frame ``seq`` (thread-safe)."""
        with contextlib.suppress(KvmrpaError):
            self.runtime.call_soon(self._on_ack, int(seq))

    def _on_ack(self, seq: int) -> None:
        while self._in_flight and self._in_flight[0][0] <= seq:
            self._in_flight.popleft()
        if self._acked is not None:
            self._acked.set()

    async def _wait_window(self) -> None:
        """Wait until fewer than ``max_in_flight`` frames are unacknowledged; a frame
        unacknowledged for ``ack_timeout`` seconds is given up (a viewer went away)."""
        assert self._acked is not None
        while len(self._in_flight) >= self._max_in_flight:
            oldest = self._in_flight[0][1]
            remaining = oldest + self._ack_timeout - time.monotonic()
            if remaining <= 0:
                self._in_flight.popleft()
                continue
            self._acked.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):  # a Stop is never lost (see _source)
                    await self._acked.wait()

    async def _pump(self) -> None:
        self._acked = asyncio.Event()
        after: int | None = None
        # the fps cap paces frames by when each was taken up, before its encode: paced
        # from the send, every encode would stretch the period (a 30 fps view drew 19-27)
        last_taken = 0.0
        while True:
            try:
                frame = await self.source.next_frame(after, timeout=1.0)
            except FrameTimeoutError:
                continue
            after = frame.seq
            fps = self._fps() or get_settings().stream.display_fps
            wait = last_taken + 1.0 / fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                latest = self.source.latest()
                if latest is not None and latest.seq > frame.seq:
                    frame = latest
                    after = frame.seq
            await self._wait_window()
            last_taken = time.monotonic()
            try:
                encoded = await self.encoder.encode(frame, self._width(), self._quality())
            except Exception as exc:  # a bad frame or setting must not end the stream
                self.last_error = str(exc)
                log.warning("stream of %s: cannot encode frame %d: %s",
                            self.source.display_url, frame.seq, exc)
                await asyncio.sleep(0.5)
                continue
            self._in_flight.append((encoded.seq, time.monotonic()))
            try:
                self._send(encoded)
            except Exception as exc:  # a broken viewer must not kill the pump
                self.last_error = str(exc)
                log.exception("stream of %s: sending frame %d failed",
                              self.source.display_url, encoded.seq)
            self.sent += 1
            self.last_seq = encoded.seq

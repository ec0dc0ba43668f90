"""The encoder service: JPEG frames for viewers, encoded once however many watch.

This module owns the streaming rule: JPEG encoding happens once per frame and size,
however many viewers watch, and never on the event loop.

* :class:`FrameEncoder` encodes a frame once per ``(source, seq, width, quality)`` key,
  whole or, asked with the frame a viewer already has (``after``), as patches: JPEGs of
  the parts that changed since that frame (:func:`encode_patches`; a screen mostly stands
  still, so a clock ticking costs a clock's encode, not a frame's).
  Concurrent requests for the same key share one encode (a future per key), finished
  encodes are kept in a small bounded cache, and the work runs in the runtime's bounded
  pool (``Runtime.to_thread``), never on the event loop.
* :class:`FrameStreamer` is one viewer's pump: it waits for a newer frame, respects the
  display fps cap, asks the shared encoder for the JPEG at the viewer's displayed width
  and hands it to a ``send`` callback. It runs only while the viewer is watching, so a
  source nobody watches costs no encode at all. Flow control: at most ``max_in_flight``
  frames are sent without an acknowledgement from the viewer. It sends patches over the
  frame it sent last, and a whole frame first, when the viewer asks for one
  (:meth:`FrameStreamer.want_keyframe`), when most of the picture changed, and at least
  every ``settings.stream.keyframe_interval`` seconds.

It needs no UI package (only numpy, OpenCV and the kvmrpa core), so the widgets and the
stream benchmark both build on it; ``kvmrpa.widgets`` re-exports it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
    "Patch",
    "changed_tiles",
    "choose_width",
    "encode_jpeg",
    "encode_patches",
    "get_encoder",
]

log = logging.getLogger("kvmrpa.widgets.stream")

#: Widths are rounded up to a multiple of this, so viewers of nearly the same size share
#: one encode.
WIDTH_STEP = 160
#: Side of the square tiles (source pixels) the patch change test works on.
TILE = 16
#: A frame whose patches would cover more than this fraction of it is sent whole.
PATCH_MAX_FRACTION = 0.5
#: At most this many patches a frame; more changed groups are sent as their bounding box.
MAX_PATCHES = 8


@dataclass(frozen=True)
class Patch:
    """One changed part of a frame: a JPEG to draw at ``(x, y)`` of the encoded picture."""

    x: int
    y: int
    width: int
    height: int
    jpeg: bytes


@dataclass(frozen=True)
class EncodedFrame:
    """One JPEG-encoded frame and what a viewer needs to draw and map it.

    A whole frame has ``base_seq`` None and its picture in ``jpeg``. A patch frame has
    ``base_seq`` (the frame it is drawn over, at the same width and quality), no ``jpeg``
    and its changed parts in ``patches`` (none: nothing changed).
    """

    seq: int
    jpeg: bytes
    width: int
    height: int
    frame_width: int
    frame_height: int
    captured: float
    wall: float
    quality: int
    base_seq: int | None = None
    patches: tuple[Patch, ...] = ()

    @property
    def whole(self) -> bool:
        return self.base_seq is None

    @property
    def nbytes(self) -> int:
        return len(self.jpeg) + sum(len(p.jpeg) for p in self.patches)


def choose_width(frame_width: int, display_width: int | None, max_width: int | None = None) -> int:
    """The width to encode at: the displayed width rounded up to :data:`WIDTH_STEP`,
    never wider than the frame nor than ``max_width`` (settings.stream.max_width)."""
    if frame_width <= 0:
        raise ValueError(f"frame width must be positive, got {frame_width}")
    max_width = get_settings().stream.max_width if max_width is None else max_width
    width = frame_width if not display_width or display_width <= 0 else display_width
    width = -(-int(width) // WIDTH_STEP) * WIDTH_STEP
    return max(1, min(width, frame_width, max_width))


def _scaled(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` downscaled to ``width`` (keeping the aspect; see :func:`encode_jpeg`)."""
    h, w = image.shape[:2]
    if width >= w:
        return image
    width, height = _scaled_size(w, h, width)
    interpolation = cv2.INTER_LINEAR if w <= 2 * width else cv2.INTER_AREA
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid input
        raise KvmrpaError(f"JPEG encoding failed for a {image.shape[1]}x{image.shape[0]} picture")
    return bytes(buf.data)


def encode_jpeg(image: np.ndarray, width: int, quality: int) -> tuple[bytes, int, int]:
    """Downscale ``image`` (BGR) to ``width`` (keeping the aspect) and JPEG-encode it.

    Returns ``(jpeg, width, height)``. Blocking and CPU-bound: call it in a worker.

    A downscale by at most 2 (1080p to 1280 wide, the common case) is bilinear: there
    it weighs every source pixel, as an area average does, with nearly the same weights
    (identical at exactly 2), at a third to a fifth of ``INTER_AREA``'s cost for a
    non-integer factor (~9 ms a 1080p frame here). Larger downscales average areas.
    """
    scaled = _scaled(image, width)
    return _jpeg(scaled, quality), scaled.shape[1], scaled.shape[0]


#: Rows of pixels compared at a time: a band this small stays in the CPU's cache and
#: under OpenCV's threshold for splitting work across its threads (whose spinning
#: would cost more CPU than the comparison itself).
_BAND_ROWS = 2 * TILE


def changed_tiles(image: np.ndarray, base: np.ndarray, threshold: int,
                  tile: int = TILE) -> np.ndarray:
    """Which ``tile`` x ``tile`` tiles of ``image`` differ from ``base`` (same shape):
    a ``bool`` array (rows, cols), true where some pixel's channel moved by more than
    ``threshold``. Rows equal to the byte are found first (8 bytes at a time); the
    others get a difference and two maximum passes, in bands of rows. About 0.6 ms of
    one core for a 720p desktop whose clock ticked, the frames not in the cache."""
    h, w = image.shape[:2]
    flat, flat_base = image.reshape(h, -1), base.reshape(h, -1)
    channels = flat.shape[1] // w
    step = max(tile, _BAND_ROWS // tile * tile)
    buf = np.empty((step, flat.shape[1]), np.uint8)
    rows = -(-h // tile)
    band = np.zeros((rows, flat.shape[1]), np.uint8)
    differs: np.ndarray | None = None
    if flat.shape[1] % 8 == 0 and flat.flags.c_contiguous and flat_base.flags.c_contiguous:
        differs = np.asarray(
            np.not_equal(flat.view(np.uint64), flat_base.view(np.uint64)).any(axis=1))
    for y in range(0, h, step):
        n = min(step, h - y)
        if differs is not None and not differs[y:y + n].any():
            continue  # these rows are the same to the byte
        d = cv2.absdiff(flat[y:y + n], flat_base[y:y + n], dst=buf[:n])
        r0, full = y // tile, n // tile
        if full:
            np.max(d[:full * tile].reshape(full, tile, -1), axis=1, out=band[r0:r0 + full])
        if full * tile < n:  # the last, shorter band of rows
            np.max(d[full * tile:n], axis=0, out=band[r0 + full])
    cols = -(-w // tile)
    if cols * tile != w:  # a last, narrower column of tiles
        band = np.pad(band, ((0, 0), (0, (cols * tile - w) * channels)))
    return np.asarray(band.reshape(rows, cols, tile * channels).max(axis=2) > threshold)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` of the runs of true values, a gap of one false value bridged."""
    idx = np.flatnonzero(flags)
    if not idx.size:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 2)
    starts = [int(idx[0]), *(int(i) for i in idx[breaks + 1])]
    ends = [*(int(i) + 1 for i in idx[breaks]), int(idx[-1]) + 1]
    return list(zip(starts, ends, strict=True))


def _tile_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes ``(col0, row0, col1, row1)`` (tiles, end exclusive) around the changed
    tiles: bands of changed rows, split where no tile in a column changed, each box's
    rows tightened; one box around all when there are more than MAX_PATCHES. (Pure
    numpy on a small array: OpenCV's connected components would wake its thread pool.)"""
    boxes: list[tuple[int, int, int, int]] = []
    for r0, r1 in _runs(np.asarray(mask.any(axis=1))):
        for c0, c1 in _runs(np.asarray(mask[r0:r1].any(axis=0))):
            rows = np.flatnonzero(mask[r0:r1, c0:c1].any(axis=1))
            boxes.append((c0, r0 + int(rows[0]), c1, r0 + int(rows[-1]) + 1))
    if len(boxes) > MAX_PATCHES:
        boxes = [(min(b[0] for b in boxes), min(b[1] for b in boxes),
                  max(b[2] for b in boxes), max(b[3] for b in boxes))]
    return boxes


def encode_patches(image: np.ndarray, base: np.ndarray, width: int, quality: int,
                   threshold: int) -> tuple[list[Patch], int, int] | None:
    """The parts of ``image`` that changed since ``base``, as JPEG patches of the picture
    :func:`encode_jpeg` would make at ``width``: ``(patches, width, height)``; no patch
    when nothing changed. ``None`` when the frame is better sent whole (another size,
    or patches covering more than PATCH_MAX_FRACTION of it). Blocking: call it in a
    worker.

    A patch is a box around a group of changed 16 px tiles (see :func:`_tile_boxes`),
    grown by one encoded pixel on each side (a downscaled pixel mixes its neighbours)
    and cut from the downscaled picture, so it matches the whole frame's pixels.
    """
    if image.shape != base.shape:
        return None
    h, w = image.shape[:2]
    boxes = _tile_boxes(changed_tiles(image, base, threshold))
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes) * TILE * TILE
    if area > PATCH_MAX_FRACTION * w * h:
        return None
    ew, eh = _scaled_size(w, h, width)
    if not boxes:
        return [], ew, eh
    scaled = _scaled(image, width)
    sx, sy = ew / w, eh / h
    grow = 1 if ew < w else 0
    patches: list[Patch] = []
    for c0, r0, c1, r1 in boxes:
        x0 = max(0, math.floor(c0 * TILE * sx) - grow)
        y0 = max(0, math.floor(r0 * TILE * sy) - grow)
        x1 = min(ew, math.ceil(min(w, c1 * TILE) * sx) + grow)
        y1 = min(eh, math.ceil(min(h, r1 * TILE) * sy) + grow)
        if x1 > x0 and y1 > y0:
            patches.append(Patch(x0, y0, x1 - x0, y1 - y0,
                                 _jpeg(scaled[y0:y1, x0:x1], quality)))
    return patches, ew, eh


def _scaled_size(w: int, h: int, width: int) -> tuple[int, int]:
    return (width, max(1, round(h * width / w))) if width < w else (w, h)


_T = TypeVar("_T")

#: An encode's key: source, seq, width, quality, and the seq patches are over (-1: whole).
_Key = tuple[str, int, int, int, int]


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
        self._done: collections.OrderedDict[_Key, EncodedFrame] = collections.OrderedDict()
        self._pending: dict[_Key, asyncio.Task[EncodedFrame]] = {}
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

    def _count(self, frame: Frame) -> None:
        with self._lock:
            self.encodes += 1
            self.encoded_seqs[(frame.source_id, frame.seq)] += 1
            while len(self.encoded_seqs) > self._history:  # oldest first (insertion order)
                del self.encoded_seqs[next(iter(self.encoded_seqs))]

    def _encode(self, frame: Frame, width: int, quality: int) -> EncodedFrame:
        jpeg, w, h = encode_jpeg(frame.image, width, quality)
        self._count(frame)
        return EncodedFrame(frame.seq, jpeg, w, h, frame.width, frame.height,
                            frame.captured, frame.wall, quality)

    def _encode_patches(self, frame: Frame, after: Frame, width: int, quality: int,
                        threshold: int) -> EncodedFrame | None:
        found = encode_patches(frame.image, after.image, width, quality, threshold)
        if found is None:
            return None
        patches, w, h = found
        if patches:  # nothing changed costs no encode
            self._count(frame)
        return EncodedFrame(frame.seq, b"", w, h, frame.width, frame.height, frame.captured,
                            frame.wall, quality, base_seq=after.seq, patches=tuple(patches))

    async def encode(self, frame: Frame, width: int | None = None,
                     quality: int | None = None, *, after: Frame | None = None) -> EncodedFrame:
        """The JPEG of ``frame`` at ``width`` (see :func:`choose_width`) and ``quality``.

        With ``after`` (an earlier frame of the same source, which the viewer has at the
        same width and quality), the result is patches over it where that is smaller
        (see :func:`encode_patches`), else the whole frame. Viewers asking with the same
        ``after`` share one encode too.
        """
        stream = get_settings().stream
        quality = stream.jpeg_quality if quality is None else int(quality)
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
        width = choose_width(frame.width, width, stream.max_width)
        if after is not None and (after.source_id != frame.source_id or after.seq >= frame.seq):
            after = None
        key = (frame.source_id, frame.seq, width, quality, -1 if after is None else after.seq)
        with self._lock:
            self.requests += 1
        done = self._done.get(key)
        if done is not None:
            return done
        task = self._pending.get(key)
        if task is None:
            # The encode is its own task: a requester that goes away (a viewer closing,
            # cancelled) never cancels it under the others waiting for the same key.
            task = asyncio.get_running_loop().create_task(
                self._produce(key, frame, width, quality, after, stream.patch_threshold))
            task.add_done_callback(_consume)
            self._pending[key] = task
        return await asyncio.shield(task)

    async def _work(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in the runtime's pool (on the loop itself when ``inline``)."""
        return fn(*args) if self._inline else await self.runtime.to_thread(fn, *args)

    async def _produce(self, key: _Key, frame: Frame, width: int, quality: int,
                       after: Frame | None, threshold: int) -> EncodedFrame:
        try:
            if after is None:
                result = await self._work(self._encode, frame, width, quality)
            else:
                patched = await self._work(self._encode_patches, frame, after, width, quality,
                                           threshold)
                # better sent whole: share the whole frame's own encode
                result = patched if patched is not None else await self.encode(frame, width, quality)
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
        # patches: the frame the viewer has, the (width, quality) it was asked at, when
        # the next whole frame is due, and how many frames to send whole before patches
        # are tried again after a frame that changed too much (doubling, up to 32)
        self._after: Frame | None = None
        self._after_asked: tuple[int | None, int | None] = (None, None)
        self._keyframe_due = 0.0
        self._keyframe_wanted = True
        self._whole_for = 0
        self._whole_backoff = 1
        self.sent = 0
        self.keyframes = 0
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
            self._keyframe_wanted = True  # whoever watches now may not have the last one
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

    def want_keyframe(self) -> None:
        """Send the next frame whole (thread-safe): a viewer joined, or lost a patch."""
        with contextlib.suppress(KvmrpaError):
            self.runtime.call_soon(self._on_keyframe_wanted)

    def _on_keyframe_wanted(self) -> None:
        self._keyframe_wanted = True  # on the loop, as every read of it

    def _patch_base(self, asked: tuple[int | None, int | None], now: float) -> Frame | None:
        """The frame to send the next one as patches over, or None: send it whole."""
        wanted, self._keyframe_wanted = self._keyframe_wanted, False
        if (wanted or self._after is None or asked != self._after_asked
                or now >= self._keyframe_due or not get_settings().stream.patches):
            return None
        if self._whole_for > 0:
            self._whole_for -= 1
            return None
        return self._after

    def _sent_as(self, frame: Frame, encoded: EncodedFrame, after: Frame | None,
                 asked: tuple[int | None, int | None], now: float) -> None:
        self._after, self._after_asked = frame, asked
        if encoded.whole:
            self.keyframes += 1
            self._keyframe_due = now + get_settings().stream.keyframe_interval
            if after is not None:  # patches were tried; the picture changed too much
                self._whole_for = self._whole_backoff
                self._whole_backoff = min(32, self._whole_backoff * 2)
        else:
            self._whole_backoff = 1

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
            asked = (self._width(), self._quality())
            base = self._patch_base(asked, last_taken)
            try:
                encoded = await self.encoder.encode(frame, *asked, after=base)
            except Exception as exc:  # a bad frame or setting must not end the stream
                self.last_error = str(exc)
                self._keyframe_wanted = True
                log.warning("stream of %s: cannot encode frame %d: %s",
                            self.source.display_url, frame.seq, exc)
                await asyncio.sleep(0.5)
                continue
            self._sent_as(frame, encoded, base, asked, last_taken)
            self._in_flight.append((encoded.seq, time.monotonic()))
            try:
                self._send(encoded)
            except Exception as exc:  # a broken viewer must not kill the pump
                self.last_error = str(exc)
                self._keyframe_wanted = True
                log.exception("stream of %s: sending frame %d failed",
                              self.source.display_url, encoded.seq)
            self.sent += 1
            self.last_seq = encoded.seq

"""Shared recognition: one OCR, template match or detection per (frame, region, engine,
parameters), whoever asks — every node, flow and view of the process.

:class:`RecognitionCache` maps a key to a result. A frame is identified by its source,
``seq``, capture time, crop/scale and the array holding its pixels (kept as a weak
reference, so a result never outlives its frame's identity and a recycled address is
never mistaken for it); a plain array has no identity and is not cached. Concurrent
asks for one key wait for a single computation (single flight): blocking callers on a
``concurrent.futures.Future``, coroutines on the runtime loop without taking a pool
thread. Memory is bounded by ``settings.vision.cache_entries`` and ``cache_bytes``
(least recently used first).

On a miss, change detection (``settings.vision.change_detection``) looks at the same
region of the same source as last time: when its pixels did not change since the frame
last recognised there (:mod:`._change`), that result is reused; when only parts changed
in a full read, only those parts are read again and merged with the rest of the previous
result (:meth:`RecognitionCache.ocr`).

:func:`shared_ocr`, :func:`shared_match_template`, :func:`shared_detect` (and their
``a``-prefixed async twins) are the faces nodes and views call; ``ocr``,
``match_template`` and ``detect`` stay uncached.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .._errors import PoolExhaustedError, RuntimeClosedError
from .._frame import Frame
from .._runtime import get_runtime
from .._settings import get_settings
from ._change import Signature, changed_boxes, region_signature
from ._detect import YoloDetector, get_detector
from ._geometry import Box, clip_roi
from ._image import ImageLike, to_bgr
from ._match import TemplateLike, _as_template, match_template
from ._ocr import OcrEngine, get_ocr_engine, ocr
from ._results import Detections, Matches, TextBox, TextBoxes

__all__ = [
    "RecognitionCache",
    "ashared_detect",
    "ashared_match_template",
    "ashared_ocr",
    "get_recognition_cache",
    "shared_detect",
    "shared_match_template",
    "shared_ocr",
]

log = logging.getLogger("kvmrpa.vision.cache")
T = TypeVar("T")

#: Pixels around a changed area re-read with it (a glyph's anti-aliasing, the
#: detector's margin around a line).
_REREAD_MARGIN = 12
#: More separate changed areas than this: read the whole region again.
_MAX_PARTS = 8


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def frame_identity(image: ImageLike) -> tuple[Hashable, np.ndarray] | None:
    """``(token, anchor)`` naming the pixels of ``image`` (a frame) for the cache, or
    ``None`` for a plain array (no identity: not cached)."""
    if not isinstance(image, Frame):
        return None
    img = image.image
    root = _root(img)
    token = (image.source_id, image.seq, image.captured, image.offset, image.scale,
             img.shape, img.__array_interface__["data"][0], img.strides, id(root))
    return token, root


def _stream_of(image: Frame) -> Hashable:
    """What stays the same across the frames of one source seen the same way."""
    return (image.source_id, image.offset, image.scale, image.image.shape)


def _result_bytes(value: Any) -> int:
    items = getattr(value, "items", None)
    if not isinstance(items, tuple):
        return 256
    return 200 + sum(160 + 4 * len(getattr(i, "text", "") or getattr(i, "label", "") or "")
                     for i in items)


@dataclass
class _Entry:
    value: Any
    nbytes: int
    anchor: weakref.ref[np.ndarray] | None


@dataclass
class _Flight:
    """One computation under way: its result for every asker, and whether a thread has
    started it (a blocking asker takes over one still queued for the pool, so waiters
    that fill the pool can never wait on work queued behind them)."""

    fut: concurrent.futures.Future[Any]
    started: bool


@dataclass
class _Seen:
    """The last recognised frame of one stream and region: its signature and result."""

    signature: Signature
    value: Any
    captured: float
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = self.signature.nbytes + _result_bytes(self.value)


class RecognitionCache:
    """Results by key, bounded, with single-flight computation (thread- and async-safe).

    ``max_entries`` / ``max_bytes`` default to the settings' ``vision.cache_entries`` /
    ``cache_bytes`` (read at each insertion). ``stats`` counts hits, misses,
    computations, waits (asks that waited for another's computation), evictions, and
    what change detection did: ``unchanged`` (previous result reused), ``partial``
    (only changed areas re-read), ``full`` (whole region read).
    """

    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._inflight: dict[Hashable, _Flight] = {}
        self._seen: OrderedDict[Hashable, _Seen] = OrderedDict()
        self._bytes = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("hits", "misses", "computations", "waits", "evictions", "unchanged", "partial",
             "full"), 0)

    # -- bounds -----------------------------------------------------------------------------
    def _limits(self) -> tuple[int, int]:
        vs = get_settings().vision
        return (int(self._max_entries or vs.cache_entries), int(self._max_bytes or vs.cache_bytes))

    def _trim(self) -> None:  # with self._lock
        """Drop least recently used results, then change references, until within
        bounds (change references are capped at a quarter of the entries, at least 8)."""
        max_entries, max_bytes = self._limits()
        while self._entries and (len(self._entries) > max_entries or self._bytes > max_bytes):
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.nbytes
            self.stats["evictions"] += 1
        while self._seen and (len(self._seen) > max(8, max_entries // 4)
                              or self._bytes > max_bytes):
            _, seen = self._seen.popitem(last=False)
            self._bytes -= seen.nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held now (estimated: results and signatures)."""
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        """Forget every result and every change reference (in-flight work finishes)."""
        with self._lock:
            self._entries.clear()
            self._seen.clear()
            self._bytes = 0

    # -- the single-flight core ---------------------------------------------------------------
    def _lookup(self, key: Hashable, anchor: np.ndarray) -> tuple[bool, Any]:  # with self._lock
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry.anchor is not None and entry.anchor() is not anchor:
            self._bytes -= entry.nbytes  # another array took the dead one's address
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        self.stats["hits"] += 1
        return True, entry.value

    def _claim(self, key: Hashable, anchor: np.ndarray, here: bool
               ) -> tuple[bool, Any, concurrent.futures.Future[Any] | None, bool]:
        """``(hit, value, future, owner)``: a stored value, or the future to wait on,
        created (``owner``: see that it is computed) when nobody computes this key yet.
        ``here``: the caller computes in its own thread, and so also takes over a
        computation that no thread has started yet."""
        with self._lock:
            hit, value = self._lookup(key, anchor)
            if hit:
                return True, value, None, False
            flight = self._inflight.get(key)
            if flight is not None:
                if here and not flight.started:
                    flight.started = True
                    return False, None, flight.fut, True
                self.stats["waits"] += 1
                return False, None, flight.fut, False
            flight = _Flight(concurrent.futures.Future(), started=here)
            self._inflight[key] = flight
            self.stats["misses"] += 1
            return False, None, flight.fut, True

    def _begin(self, key: Hashable) -> bool:
        """Whether the pool job for ``key`` should compute it (no thread took it over)."""
        with self._lock:
            flight = self._inflight.get(key)
            if flight is None or flight.started:
                return False
            flight.started = True
            return True

    def _finish(self, key: Hashable, anchor: np.ndarray, fut: concurrent.futures.Future[Any],
                compute: Callable[[], Any]) -> Any:
        """Compute ``key`` as its owner, store it, resolve ``fut`` for the waiters."""
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
            fut.set_exception(exc)
            raise
        nbytes = _result_bytes(value) + 96
        with self._lock:
            self._inflight.pop(key, None)
            self.stats["computations"] += 1
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = _Entry(value, nbytes, weakref.ref(anchor))
            self._bytes += nbytes
            self._trim()
        fut.set_result(value)
        return value

    def get(self, key: Hashable, image: ImageLike, compute: Callable[[], T]) -> T:
        """The value of ``key`` for the pixels of ``image``: stored, computed by another
        caller now (waited for), or computed here (blocking)."""
        ident = frame_identity(image)
        if ident is None or not get_settings().vision.cache:
            return compute()
        token, anchor = ident
        full = (token, key)
        hit, value, fut, owner = self._claim(full, anchor, here=True)
        if hit:
            return value
        assert fut is not None
        if not owner:
            return fut.result()
        return self._finish(full, anchor, fut, compute)

    async def aget(self, key: Hashable, image: ImageLike, compute: Callable[[], T]) -> T:
        """:meth:`get` for coroutines: a hit returns at once, a wait takes no thread, a
        computation runs in the runtime's pool (a cancelled asker leaves it to finish
        for the others)."""
        runtime = get_runtime()
        ident = frame_identity(image)
        if ident is None or not get_settings().vision.cache:
            return await runtime.to_thread(compute)
        token, anchor = ident
        full = (token, key)
        hit, value, fut, owner = self._claim(full, anchor, here=False)
        if hit:
            return value
        assert fut is not None
        if owner:
            self._start(runtime, full, anchor, fut, compute)
        return await asyncio.shield(asyncio.wrap_future(fut))

    def _start(self, runtime: Any, key: Hashable, anchor: np.ndarray,
               fut: concurrent.futures.Future[Any], compute: Callable[[], Any]) -> None:
        def work() -> None:
            if not self._begin(key):
                return  # a blocking asker took it over
            # an error reaches every waiter (the asker included) through fut
            with contextlib.suppress(BaseException):
                self._finish(key, anchor, fut, compute)

        def lost(job: concurrent.futures.Future[Any]) -> None:
            if not job.cancelled():
                return
            with self._lock:  # the pool shut down before it ran, and nobody took it over
                flight = self._inflight.get(key)
                if flight is None or flight.started or flight.fut is not fut:
                    return
                del self._inflight[key]
            fut.set_exception(RuntimeClosedError("the kvmrpa runtime is shut down"))

        def fail(exc: BaseException) -> None:
            with self._lock:
                self._inflight.pop(key, None)
            fut.set_exception(exc)

        stuck = runtime.abandoned()
        if len(stuck) >= runtime.pool_size:
            fail(PoolExhaustedError(
                f"all {runtime.pool_size} worker threads are held by calls that timed out or "
                f"were stopped and have not returned: {', '.join(sorted(set(stuck))[:8])}"))
            return
        try:
            job = runtime.pool.submit(work)
        except RuntimeError:  # the pool is shut down
            fail(RuntimeClosedError("the kvmrpa runtime is shut down"))
            return
        job.add_done_callback(lost)

    # -- change-aware recognition ---------------------------------------------------------------
    def _previous(self, where: Hashable) -> _Seen | None:
        with self._lock:
            seen = self._seen.get(where)
            if seen is not None:
                self._seen.move_to_end(where)
            return seen

    def _remember(self, where: Hashable, seen: _Seen) -> None:
        with self._lock:
            old = self._seen.get(where)
            if old is not None and old.captured > seen.captured:
                return  # a newer frame was recognised meanwhile
            if old is not None:
                self._bytes -= old.nbytes
            self._seen[where] = seen
            self._seen.move_to_end(where)
            self._bytes += seen.nbytes
            self._trim()

    def recognise(self, image: ImageLike, region: Box, what: Hashable,
                  read: Callable[[], T]) -> T:
        """``read()`` unless ``region`` of ``image`` looks as it did on the last frame of
        the same stream recognised with ``what``; then that frame's result."""
        vs = get_settings().vision
        if not isinstance(image, Frame) or not vs.change_detection:
            return read()
        where = (_stream_of(image), region, what)
        sig = region_signature(image, region)
        prev = self._previous(where)
        if prev is not None and not sig.changed(prev.signature):
            with self._lock:
                self.stats["unchanged"] += 1
            return prev.value
        value = read()
        with self._lock:
            self.stats["full"] += 1
        self._remember(where, _Seen(sig, value, image.captured))
        return value

    # -- OCR ------------------------------------------------------------------------------------
    def ocr(self, image: ImageLike, roi: Sequence[int] | None = None, *,
            engine: str | OcrEngine | None = None, rec_only: bool = False,
            min_confidence: float = 0.0) -> TextBoxes:
        """:func:`~kvmrpa.vision.ocr` through the cache: boxes in image pixels."""
        eng = engine if isinstance(engine, OcrEngine) else get_ocr_engine(engine)
        region = _region(image, roi)
        key = ("ocr", region, eng, bool(rec_only))
        boxes = self.get(key, image, lambda: self._read_text(image, region, eng, rec_only))
        return boxes.filter(min_confidence=min_confidence) if min_confidence > 0 else boxes

    async def aocr(self, image: ImageLike, roi: Sequence[int] | None = None, *,
                   engine: str | OcrEngine | None = None, rec_only: bool = False,
                   min_confidence: float = 0.0) -> TextBoxes:
        """:meth:`ocr` for coroutines (see :meth:`aget`)."""
        eng = engine if isinstance(engine, OcrEngine) else get_ocr_engine(engine)
        region = _region(image, roi)
        key = ("ocr", region, eng, bool(rec_only))
        boxes = await self.aget(key, image, lambda: self._read_text(image, region, eng, rec_only))
        return boxes.filter(min_confidence=min_confidence) if min_confidence > 0 else boxes

    def _read_text(self, image: ImageLike, region: Box, eng: OcrEngine,
                   rec_only: bool) -> TextBoxes:
        def read(roi: Box = region) -> TextBoxes:
            return ocr(image, roi, engine=eng, rec_only=rec_only)

        vs = get_settings().vision
        if not isinstance(image, Frame) or not vs.change_detection:
            return read()
        where = (_stream_of(image), region, ("ocr", eng, rec_only))
        sig = region_signature(image, region)
        prev = self._previous(where)
        outcome = "full"
        if prev is None or not sig.comparable(prev.signature):
            boxes = read()
        else:
            parts = changed_boxes(prev.signature, sig, margin=_REREAD_MARGIN)
            if not parts:
                with self._lock:
                    self.stats["unchanged"] += 1
                return prev.value
            merged = None if rec_only else _partial_read(prev.value, parts, region,
                                                        vs.change_max_area, read)
            if merged is None:
                boxes = read()
            else:
                boxes, outcome = merged, "partial"
        with self._lock:
            self.stats[outcome] += 1
        self._remember(where, _Seen(sig, boxes, image.captured))
        return boxes

    # -- template matching and detection --------------------------------------------------------
    def match_template(self, image: ImageLike, template: TemplateLike,
                       roi: Sequence[int] | None = None, **options: Any) -> Matches:
        """:func:`~kvmrpa.vision.match_template` through the cache."""
        key, compute = self._match_job(image, template, roi, options)
        return self.get(key, image, compute)

    async def amatch_template(self, image: ImageLike, template: TemplateLike,
                              roi: Sequence[int] | None = None, **options: Any) -> Matches:
        key, compute = self._match_job(image, template, roi, options)
        return await self.aget(key, image, compute)

    def _match_job(self, image: ImageLike, template: TemplateLike, roi: Sequence[int] | None,
                   options: dict[str, Any]) -> tuple[Hashable, Callable[[], Matches]]:
        tpl = _as_template(template)
        region = _region(image, roi)
        opts = tuple(sorted((k, _hashable(v)) for k, v in options.items()))
        what = ("match", _template_digest(tpl), opts)

        def compute() -> Matches:
            return self.recognise(image, region, what,
                                  lambda: match_template(image, tpl, region, **options))

        return (what, region), compute

    def detect(self, image: ImageLike, model: str | os.PathLike[str] | YoloDetector,
               roi: Sequence[int] | None = None, *, conf: float | None = None,
               iou: float | None = None, labels: Iterable[str] | None = None,
               **options: Any) -> Detections:
        """:func:`~kvmrpa.vision.detect` through the cache."""
        key, compute = self._detect_job(image, model, roi, conf, iou, labels, options)
        return self.get(key, image, compute)

    async def adetect(self, image: ImageLike, model: str | os.PathLike[str] | YoloDetector,
                      roi: Sequence[int] | None = None, *, conf: float | None = None,
                      iou: float | None = None, labels: Iterable[str] | None = None,
                      **options: Any) -> Detections:
        key, compute = self._detect_job(image, model, roi, conf, iou, labels, options)
        return await self.aget(key, image, compute)

    def _detect_job(self, image: ImageLike, model: Any, roi: Sequence[int] | None,
                    conf: float | None, iou: float | None, labels: Iterable[str] | None,
                    options: dict[str, Any]) -> tuple[Hashable, Callable[[], Detections]]:
        det = model if isinstance(model, YoloDetector) else get_detector(model, **options)
        region = _region(image, roi)
        wanted = None if labels is None else tuple(labels)
        what = ("detect", det, conf, iou, wanted)

        def compute() -> Detections:
            return self.recognise(image, region, what,
                                  lambda: det.detect(image, region, conf=conf, iou=iou,
                                                     labels=wanted))

        return (what, region), compute


def _region(image: ImageLike, roi: Sequence[int] | None) -> Box:
    img = to_bgr(image)
    h, w = img.shape[:2]
    return (0, 0, w, h) if roi is None else clip_roi(tuple(int(v) for v in roi), w, h)


def _hashable(value: Any) -> Hashable:
    if isinstance(value, np.ndarray):
        return ("array", value.shape, hashlib.blake2b(value.tobytes(), digest_size=16).digest())
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _template_digest(tpl: Any) -> Hashable:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(tpl.image).tobytes())
    if tpl.mask is not None:
        h.update(np.ascontiguousarray(tpl.mask).tobytes())
    return (h.digest(), tpl.image.shape, tpl.name, tpl.capture_size, tpl.click_offset,
            tpl.threshold)


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _union(a: Box, b: Box) -> Box:
    x1, y1 = min(a[0], b[0]), min(a[1], b[1])
    x2, y2 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x1, y1, x2 - x1, y2 - y1


def _clip(box: Box, region: Box) -> Box:
    x1, y1 = max(box[0], region[0]), max(box[1], region[1])
    x2 = min(box[0] + box[2], region[0] + region[2])
    y2 = min(box[1] + box[3], region[1] + region[3])
    return x1, y1, max(0, x2 - x1), max(0, y2 - y1)


def _grow(box: Box, margin: int) -> Box:
    return box[0] - margin, box[1] - margin, box[2] + 2 * margin, box[3] + 2 * margin


def _partial_read(previous: TextBoxes, changed: list[Box], region: Box, max_area: float,
                  read: Callable[[Box], TextBoxes]) -> TextBoxes | None:
    """``previous`` with the text of the changed areas read again, or ``None`` when a
    whole read is due (too much changed, too many areas). Each area grows to take in
    every previous line it touches (with a margin), areas that touch merge, until
    nothing changes: no line is read cut."""
    if max_area <= 0 or len(changed) > _MAX_PARTS:
        return None
    old = list(previous)
    parts = [_clip(b, region) for b in changed]
    grown = True
    while grown:
        grown = False
        for i, part in enumerate(parts):
            for box in old:
                if _overlaps(part, box.bbox):
                    bigger = _clip(_union(part, _grow(box.bbox, _REREAD_MARGIN // 2)), region)
                    if bigger != part:
                        parts[i] = part = bigger
                        grown = True
        merged: list[Box] = []
        for part in parts:
            for j, other in enumerate(merged):
                if _overlaps(part, other):
                    merged[j] = _union(part, other)
                    grown = True
                    break
            else:
                merged.append(part)
        parts = merged
    area = sum(p[2] * p[3] for p in parts)
    if area > max_area * region[2] * region[3] or len(parts) > _MAX_PARTS:
        return None
    kept: list[TextBox] = [b for b in old if not any(_overlaps(b.bbox, p) for p in parts)]
    for part in parts:
        if part[2] > 0 and part[3] > 0:
            kept.extend(read(part))
    kept.sort(key=lambda b: (b.bbox[1], b.bbox[0]))
    return TextBoxes(kept)


_cache: RecognitionCache | None = None
_cache_lock = threading.Lock()


def get_recognition_cache() -> RecognitionCache:
    """The process-wide :class:`RecognitionCache` (bounds from the settings)."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = RecognitionCache()
        return _cache


def shared_ocr(image: ImageLike, roi: Sequence[int] | None = None, *,
               engine: str | OcrEngine | None = None, rec_only: bool = False,
               min_confidence: float = 0.0) -> TextBoxes:
    """:func:`~kvmrpa.vision.ocr` shared through the process-wide cache (blocking)."""
    return get_recognition_cache().ocr(image, roi, engine=engine, rec_only=rec_only,
                                       min_confidence=min_confidence)


async def ashared_ocr(image: ImageLike, roi: Sequence[int] | None = None, *,
                      engine: str | OcrEngine | None = None, rec_only: bool = False,
                      min_confidence: float = 0.0) -> TextBoxes:
    """:func:`shared_ocr` for coroutines: hits and waits take no pool thread."""
    return await get_recognition_cache().aocr(image, roi, engine=engine, rec_only=rec_only,
                                              min_confidence=min_confidence)


def shared_match_template(image: ImageLike, template: TemplateLike,
                          roi: Sequence[int] | None = None, **options: Any) -> Matches:
    """:func:`~kvmrpa.vision.match_template` shared through the process-wide cache."""
    return get_recognition_cache().match_template(image, template, roi, **options)


async def ashared_match_template(image: ImageLike, template: TemplateLike,
                                 roi: Sequence[int] | None = None, **options: Any) -> Matches:
    """:func:`shared_match_template` for coroutines."""
    return await get_recognition_cache().amatch_template(image, template, roi, **options)


def shared_detect(image: ImageLike, model: str | os.PathLike[str] | YoloDetector,
                  roi: Sequence[int] | None = None, **kwargs: Any) -> Detections:
    """:func:`~kvmrpa.vision.detect` shared through the process-wide cache."""
    return get_recognition_cache().detect(image, model, roi, **kwargs)


async def ashared_detect(image: ImageLike, model: str | os.PathLike[str] | YoloDetector,
                         roi: Sequence[int] | None = None, **kwargs: Any) -> Detections:
    """:func:`shared_detect` for coroutines."""
    return await get_recognition_cache().adetect(image, model, roi, **kwargs)

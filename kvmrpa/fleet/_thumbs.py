"""Screen thumbnails of a fleet's targets, encoded on the worker that owns each source.

:class:`Thumbnailer` is a Dask actor: one lives on each worker of a fleet dashboard.
:meth:`Thumbnailer.grab` takes the targets placed on that worker and returns, for each,
the latest frame of its source as a small JPEG (``encode_jpeg`` of the capture layer),
or why there is none. The source is opened through the worker's source hub, so a
target's run on that worker and its thumbnail share one decoder; a frame is encoded
once (an unchanged ``seq`` returns nothing new), only while someone asks, and a source
nobody asked for within :data:`IDLE_RELEASE` seconds is released. Sizes and counts are
bounded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["IDLE_RELEASE", "MAX_SOURCES", "Thumbnailer"]

log = logging.getLogger("kvmrpa.fleet")

#: Seconds a source stays open after the last request for its thumbnail.
IDLE_RELEASE = 30.0
#: Seconds before a source that failed to open is tried again.
RETRY_OPEN = 5.0
#: Most sources one thumbnailer keeps open.
MAX_SOURCES = 512
#: Bounds on the requested size and quality.
WIDTH_BOUNDS = (32, 1280)
QUALITY_BOUNDS = (10, 95)


@dataclass
class _Open:
    url: str
    source: Any = None
    error: str | None = None
    failed_at: float = 0.0
    used: float = 0.0
    seq: int = -1
    width: int = 0


def _bounded(value: Any, lo: int, hi: int, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"thumbnail {name} {value!r} is not a number") from None
    if not lo <= number <= hi:
        raise ValueError(f"thumbnail {name} {number} is outside [{lo}, {hi}]")
    return number


class Thumbnailer:
    """The thumbnails of the targets on one worker (create it as a Dask actor)."""

    def __init__(self) -> None:
        from ._preload import apply_native_threads

        apply_native_threads()
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()
        self._closed = False

    def grab(self, sources: dict[str, str], width: int = 240,
             quality: int = 60) -> dict[str, dict[str, Any]]:
        """For each ``target id → source URL``: ``{"seq", "jpeg", "width", "height",
        "frame_width", "frame_height", "captured"}`` when a newer frame than the last
        one returned exists, ``{"seq"}`` alone when it has not changed, or
        ``{"error"}``."""
        from ..capture import open_source
        from ..capture._encoder import encode_jpeg

        width = _bounded(width, *WIDTH_BOUNDS, "width")
        quality = _bounded(quality, *QUALITY_BOUNDS, "quality")
        if len(sources) > MAX_SOURCES:
            raise ValueError(f"{len(sources)} thumbnails asked at once; at most {MAX_SOURCES}")
        now = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            if self._closed:
                return {tid: {"error": "the thumbnailer is closed"} for tid in sources}
            for tid, url in sources.items():
                entry = self._open.get(tid)
                if entry is not None and entry.url != url:
                    self._release(entry)
                    entry = None
                if entry is None:
                    entry = self._open[tid] = _Open(url)
                entry.used = now
                if entry.source is None:
                    if entry.error and now - entry.failed_at < RETRY_OPEN:
                        out[tid] = {"error": entry.error}
                        continue
                    try:
                        entry.source = open_source(url)
                        entry.error = None
                    except Exception as exc:  # a source that is down fails alone
                        entry.error = " ".join(str(exc).split())[:300] or type(exc).__name__
                        entry.failed_at = now
                        out[tid] = {"error": entry.error}
                        continue
                frame = entry.source.latest()
                if frame is None:
                    out[tid] = {"error": "no frame yet"}
                    continue
                if frame.seq == entry.seq and entry.width == width:
                    out[tid] = {"seq": frame.seq}
                    continue
                jpeg, w, h = encode_jpeg(frame.image, width, quality)
                entry.seq, entry.width = frame.seq, width
                fh, fw = frame.image.shape[:2]
                out[tid] = {"seq": frame.seq, "jpeg": jpeg, "width": w, "height": h,
                            "frame_width": fw, "frame_height": fh,
                            "captured": float(getattr(frame, "captured", 0.0) or 0.0)}
            self._release_idle(now)
        return out

    def _release(self, entry: _Open) -> None:
        from ..capture import release_source

        if entry.source is not None:
            with contextlib.suppress(Exception):
                release_source(entry.source)
            entry.source = None

    def _release_idle(self, now: float) -> None:
        for tid, entry in list(self._open.items()):
            if now - entry.used > IDLE_RELEASE:
                self._release(entry)
                del self._open[tid]

    def open_count(self) -> int:
        with self._lock:
            return sum(1 for e in self._open.values() if e.source is not None)

    def close(self) -> None:
        """Release every source (idempotent)."""
        with self._lock:
            self._closed = True
            for entry in self._open.values():
                self._release(entry)
            self._open.clear()


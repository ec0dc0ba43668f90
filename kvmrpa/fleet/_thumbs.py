"""Screen thumbnails of a fleet's targets, encoded on the worker that owns each source.

:class:`Thumbnailer` is a Dask actor: one lives on each worker of a fleet dashboard.
:meth:`Thumbnailer.grab` takes the targets placed on that worker and returns, for each,
the latest frame of its source as a small JPEG (``encode_jpeg`` of the capture layer),
or why there is none. The source is opened through the worker's source hub, so a
target's run on that worker and its thumbnail share one decoder; a frame is encoded
once (an unchanged ``seq`` returns nothing new), only while someone asks.

Each open source is held by the thumbnailer for its owner, the dashboard's board, and
given back to the hub (which stops it, and so frees a simulated desktop, once no run
uses it either) when the board says so: :meth:`Thumbnailer.release` with the ids it
still wants (a target that left this worker, a closer look that was closed) or none
(nobody watches the dashboard any more), and :meth:`Thumbnailer.close`. Should the
board vanish without saying so, a source nobody asked for within
:data:`IDLE_RELEASE` seconds is released by the thumbnailer's own reaper thread (it
ends with :meth:`close`, or when the thumbnailer is dropped). Sizes and counts are
bounded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["IDLE_RELEASE", "MAX_SOURCES", "Thumbnailer"]

log = logging.getLogger("kvmrpa.fleet")

#: Seconds a source stays open after the last request for its thumbnail when its owner
#: never released it (the board releases it itself as soon as nobody watches).
IDLE_RELEASE = 15.0
#: Seconds between the reaper's looks at idle sources.
REAP_EVERY = 1.0
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


def _release_entry(entry: _Open) -> bool:
    """Give ``entry``'s source back to the hub; whether it held one."""
    from ..capture import release_source

    source, entry.source = entry.source, None
    if source is None:
        return False
    with contextlib.suppress(Exception):
        release_source(source)
    return True


def _release_all(entries: dict[str, _Open], lock: threading.Lock) -> None:
    """Release every entry (the finalizer of a dropped thumbnailer: no reference to it)."""
    with lock:
        for entry in entries.values():
            _release_entry(entry)
        entries.clear()


def _reap(ref: weakref.ReferenceType[Thumbnailer], stop: threading.Event) -> None:
    """The reaper thread: release sources idle for :data:`IDLE_RELEASE` seconds until
    the thumbnailer is closed or dropped (it holds only a weak reference)."""
    while not stop.wait(REAP_EVERY):
        thumbs = ref()
        if thumbs is None:
            return
        thumbs.release_idle()
        del thumbs


class Thumbnailer:
    """The thumbnails of the targets on one worker (create it as a Dask actor)."""

    def __init__(self) -> None:
        from ._preload import apply_native_threads

        apply_native_threads()
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        # a thumbnailer dropped without close() (its actor released) still gives back
        # its sources, and its reaper ends
        self._finalizer = weakref.finalize(self, _release_all, self._open, self._lock)
        weakref.finalize(self, self._stop.set)

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=_reap, args=(weakref.ref(self), self._stop),
                                            name="kvmrpa-fleet-thumbs-reaper", daemon=True)
            self._reaper.start()

    def grab(self, sources: dict[str, str], width: int = 240,
             quality: int = 60) -> dict[str, dict[str, Any]]:
        """For each ``target id → source URL``: ``{"seq", "jpeg", "width", "height",
        "frame_width", "frame_height", "captured"}`` when a newer frame than the last
        one returned exists, ``{"seq"}`` alone when it has not changed, or
        ``{"error"}``. The sources stay open until :meth:`release` (or idle)."""
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
                    _release_entry(entry)
                    entry = None
                if entry is None:
                    if len(self._open) >= MAX_SOURCES:
                        out[tid] = {"error": f"more than {MAX_SOURCES} thumbnails open"}
                        continue
                    entry = self._open[tid] = _Open(url)
                entry.used = now
                if entry.source is None:
                    if entry.error and now - entry.failed_at < RETRY_OPEN:
                        out[tid] = {"error": entry.error}
                        continue
                    try:
                        entry.source = open_source(url)
                        entry.error = None
                        entry.seq = -1
                    except Exception as exc:  # a source that is down fails alone
                        entry.error = " ".join(str(exc).split())[:300] or type(exc).__name__
                        entry.failed_at = now
                        out[tid] = {"error": entry.error}
                        continue
                    self._start_reaper()
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
        return out

    def release(self, keep: Iterable[str] | None = None) -> list[str]:
        """Give back every source except those of the ids in ``keep`` (None or empty:
        every one); returns the ids whose source was released, sorted."""
        wanted = set(keep or ())
        with self._lock:
            return self._release_except(wanted)

    def release_idle(self, idle: float | None = None) -> list[str]:
        """Give back the sources nobody asked for within ``idle`` seconds (default
        :data:`IDLE_RELEASE`); returns their ids."""
        limit = IDLE_RELEASE if idle is None else float(idle)
        now = time.monotonic()
        with self._lock:
            return self._release_except({t for t, e in self._open.items()
                                         if now - e.used <= limit})

    def _release_except(self, keep: set[str]) -> list[str]:
        """(Under the lock.) Release every entry not in ``keep``."""
        released = []
        for tid in [t for t in self._open if t not in keep]:
            if _release_entry(self._open.pop(tid)):
                released.append(tid)
        return sorted(released)

    def open_ids(self) -> list[str]:
        """The ids whose source is open here, sorted."""
        with self._lock:
            return sorted(t for t, e in self._open.items() if e.source is not None)

    def open_count(self) -> int:
        with self._lock:
            return sum(1 for e in self._open.values() if e.source is not None)

    def close(self) -> None:
        """Release every source and end the reaper (idempotent)."""
        with self._lock:
            self._closed = True
            for entry in self._open.values():
                _release_entry(entry)
            self._open.clear()
        self._stop.set()
        reaper = self._reaper
        if reaper is not None and reaper is not threading.current_thread():
            reaper.join(5)

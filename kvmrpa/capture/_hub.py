"""The URL registry and the SourceHub: one shared source per URL.

``register_source(scheme, factory)`` maps a URL scheme to ``factory(url) -> FrameSource``
(unstarted). ``open_source(url)`` returns a started source from the process-wide hub:
every caller with the same normalized URL gets the same object, reference-counted;
``release_source(src)`` gives one reference back, and the source stops ``hub_linger``
seconds after the last one (a reopen within the linger reuses it). Ten flows and two
viewers on one URL open exactly one capture.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .._errors import CaptureError, UrlError
from .._settings import get_settings
from .._urls import normalize_url, redact_url, split_url
from ._files import file_source, parse_file_url
from ._pattern import PatternSource
from ._reader import DeviceSource, StreamSource
from ._source import FrameSource, SourceState
from ._vnc import VncSource

__all__ = [
    "SourceFactory",
    "SourceHub",
    "get_hub",
    "open_source",
    "register_source",
    "registered_schemes",
    "release_source",
    "source_key",
]

log = logging.getLogger("kvmrpa.capture")

SourceFactory = Callable[[str], FrameSource]

_registry: dict[str, SourceFactory] = {}
_registry_lock = threading.Lock()

#: Schemes read by OpenCV's FFmpeg backend on a reader thread.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp")


def register_source(scheme: str, factory: SourceFactory, *, replace: bool = True) -> None:
    """Make ``scheme://…`` URLs open with ``factory(url) -> FrameSource`` (unstarted)."""
    scheme = scheme.lower().rstrip(":/")
    if not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise UrlError(f"invalid URL scheme {scheme!r}")
    if not callable(factory):
        raise TypeError(f"source factory for {scheme!r} must be callable")
    with _registry_lock:
        if not replace and scheme in _registry:
            raise UrlError(f"a source factory for {scheme!r} is already registered")
        _registry[scheme] = factory


def registered_schemes() -> list[str]:
    with _registry_lock:
        return sorted(_registry)


#: Schemes whose module registers them on import (loaded on first use of the scheme).
_LAZY_MODULES = {"sim": "kvmrpa.sim"}
#: Entry-point group through which other packages add source schemes (name = scheme,
#: value = the factory).
ENTRY_POINT_GROUP = "kvmrpa.sources"


def _load_scheme(scheme: str) -> None:
    """Give a module or an installed plug-in the chance to register ``scheme``."""
    module = _LAZY_MODULES.get(scheme)
    if module is not None:
        importlib.import_module(module)  # registers the scheme on import
        return
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        try:
            register_source(scheme, ep.load())
        except Exception:
            log.warning("source plug-in %s for %s:// failed to load", ep.value, scheme,
                        exc_info=True)
        return


def _factory_for(url: str) -> SourceFactory:
    if "://" not in url:
        return file_source
    scheme = split_url(url).scheme.lower()
    with _registry_lock:
        missing = scheme not in _registry
    if missing:
        _load_scheme(scheme)
    with _registry_lock:
        factory = _registry.get(scheme)
        known = sorted(_registry)
    if factory is None:
        raise UrlError(f"no source for scheme {scheme!r} in {redact_url(url)!r}; "
                       f"known: {', '.join(known)} (or a plain file path)")
    return factory


def source_key(url: str) -> str:
    """The sharing key of ``url``: normalized, with plain paths as absolute file URLs."""
    if not isinstance(url, str) or not url.strip():
        raise UrlError(f"empty or non-string source URL: {url!r}")
    url = url.strip()
    if "://" not in url or url.lower().startswith("file://"):
        path, query = parse_file_url(url)
        q = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
        return f"file://{path}" + (f"?{q}" if q else "")
    return normalize_url(url)


for _scheme in STREAM_SCHEMES:
    register_source(_scheme, StreamSource)
register_source("device", DeviceSource)
register_source("vnc", VncSource)
register_source("file", file_source)
register_source("pattern", PatternSource)


@dataclass
class _Entry:
    source: FrameSource
    refs: int
    timer: threading.Timer | None = None


class SourceHub:
    """Shares one started source per URL among all users (thread-safe).

    ``linger`` (default ``capture.hub_linger``) keeps a source open that long after its
    last release, so a flow restarted at once does not reconnect.
    """

    def __init__(self, linger: float | None = None) -> None:
        self._linger = linger
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._closed = False

    @property
    def linger(self) -> float:
        return get_settings().capture.hub_linger if self._linger is None else self._linger

    def open(self, url: str) -> FrameSource:
        """A started source for ``url``, shared with every other user of the same URL."""
        key = source_key(url)
        dead: FrameSource | None = None
        try:
            with self._lock:
                if self._closed:
                    raise CaptureError("the source hub is closed")
                entry = self._entries.get(key)
                if (entry is not None and entry.refs == 0
                        and entry.source.state == SourceState.STOPPED):
                    # Lingering but finished (end of file, gave up): start afresh. The old
                    # one is stopped after the lock is let go (its stop may wait for a
                    # reader stuck in FFmpeg; nobody else's open or release waits on it).
                    if entry.timer is not None:
                        entry.timer.cancel()
                    del self._entries[key]
                    dead, entry = entry.source, None
                if entry is not None:
                    entry.refs += 1
                    if entry.timer is not None:
                        entry.timer.cancel()
                        entry.timer = None
                    return entry.source
                factory = _factory_for(url)
                # Built and started under the lock so two users of one URL can never open
                # two captures; factories and start() return promptly by contract.
                source = factory(url.strip() if "://" in url else key)
                if not isinstance(source, FrameSource):
                    raise CaptureError(f"the factory for {redact_url(url)!r} returned "
                                       f"{type(source).__name__}, not a FrameSource")
                try:
                    source.start()
                except BaseException:
                    with contextlib.suppress(Exception):  # release what it began
                        source.stop()
                    raise
                self._entries[key] = _Entry(source, 1)
                log.debug("hub: opened %s", source.display_url)
                return source
        finally:
            if dead is not None:
                dead.stop()

    def release(self, source: FrameSource) -> None:
        """Give back one reference; the source stops after the linger when none are left."""
        stop_now = False
        with self._lock:
            key, entry = self._find(source)
            if entry.refs <= 0:
                raise CaptureError(f"source {source.display_url} released more often than opened")
            entry.refs -= 1
            if entry.refs == 0:
                linger = self.linger
                if linger <= 0 or self._closed:
                    del self._entries[key]
                    stop_now = True
                else:
                    timer = threading.Timer(linger, self._expire, args=(key, entry))
                    timer.daemon = True
                    timer.name = f"kvmrpa-hub-linger {source.display_url}"
                    entry.timer = timer
                    timer.start()
        if stop_now:
            source.stop()

    def _find(self, source: FrameSource) -> tuple[str, _Entry]:
        for key, entry in self._entries.items():
            if entry.source is source:
                return key, entry
        raise CaptureError(f"source {source.display_url} was not opened through this hub")

    def _expire(self, key: str, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is not entry or entry.refs > 0:
                return
            del self._entries[key]
            entry.timer = None
        log.debug("hub: closing %s after linger", entry.source.display_url)
        entry.source.stop()

    @contextlib.contextmanager
    def use(self, url: str) -> Iterator[FrameSource]:
        """``with hub.use(url) as src:`` open, then release on every path."""
        src = self.open(url)
        try:
            yield src
        finally:
            self.release(src)

    def refcounts(self) -> dict[str, int]:
        """``{redacted key: references}`` of every source the hub holds (lingering: 0)."""
        with self._lock:
            return {redact_url(k): e.refs for k, e in self._entries.items()}

    def sources(self) -> list[FrameSource]:
        with self._lock:
            return [e.source for e in self._entries.values()]

    def close(self) -> None:
        """Stop every source now, lingering or not. Later :meth:`open` calls fail."""
        with self._lock:
            self._closed = True
            entries, self._entries = list(self._entries.values()), {}
        for e in entries:
            if e.timer is not None:
                e.timer.cancel()
            try:
                e.source.stop()
            except Exception:
                log.exception("hub: stopping %s failed", e.source.display_url)
        for e in entries:
            if e.timer is not None and e.timer.is_alive() and e.timer is not threading.current_thread():
                e.timer.join()

    def __enter__(self) -> SourceHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_hub: SourceHub | None = None
_hub_lock = threading.Lock()


def get_hub() -> SourceHub:
    """The process-wide hub (closed at interpreter exit, releasing every capture)."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = SourceHub()
            atexit.register(_hub.close)
        return _hub


def open_source(url: str) -> FrameSource:
    """A started, shared source for ``url`` from the process-wide hub."""
    return get_hub().open(url)


def release_source(source: FrameSource) -> None:
    """Give back a source obtained from :func:`open_source`."""
    get_hub().release(source)

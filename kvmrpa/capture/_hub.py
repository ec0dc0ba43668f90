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
import logging
import threading
from collections.abc import Callable, Iterator

from .._errors import CaptureError, UrlError
from .._registry import RefPool, Registry
from .._settings import get_settings
from .._urls import check_scheme, normalize_url, redact_url, split_url
from ._files import file_source, parse_file_url
from ._pattern import PatternSource
from ._reader import DeviceSource, StreamSource
from ._source import FrameSource, SourceState
from ._vnc import VncSource

__all__ = [
    "ENTRY_POINT_GROUP",
    "SOURCES",
    "SourceFactory",
    "SourceHub",
    "get_hub",
    "open_source",
    "register_source",
    "registered_schemes",
    "release_source",
    "source_key",
    "unregister_source",
]

log = logging.getLogger("kvmrpa.capture")

SourceFactory = Callable[[str], FrameSource]

#: Schemes read by OpenCV's FFmpeg backend on a reader thread.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp")
#: Entry-point group through which other packages add source schemes (name = scheme,
#: value = the factory).
ENTRY_POINT_GROUP = "kvmrpa.sources"


def _check(scheme: str, factory: SourceFactory) -> None:
    check_scheme(scheme)
    if not callable(factory):
        raise TypeError(f"source factory for {scheme!r} must be callable")


#: URL scheme → ``factory(url) -> FrameSource`` (unstarted).
SOURCES: Registry[SourceFactory] = Registry(
    "source scheme", ENTRY_POINT_GROUP, error=UrlError,
    normalize=lambda s: s.lower().rstrip(":/") if isinstance(s, str) else s, check=_check)


def register_source(scheme: str, factory: SourceFactory, *, replace: bool = False) -> None:
    """Make ``scheme://…`` URLs open with ``factory(url) -> FrameSource`` (unstarted).

    A scheme registered with another factory is refused unless ``replace``.
    """
    SOURCES.register(scheme, factory, replace=replace)


def unregister_source(scheme: str) -> None:
    """Forget a source scheme."""
    SOURCES.unregister(scheme)


def registered_schemes() -> list[str]:
    """The schemes sources are registered for (entry points included)."""
    return SOURCES.names()


def _factory_for(url: str) -> SourceFactory:
    if "://" not in url:
        return file_source
    scheme = split_url(url).scheme.lower()
    factory = SOURCES.get(scheme)
    if factory is None:
        raise UrlError(f"no source for scheme {scheme!r} in {redact_url(url)!r}; "
                       f"known: {', '.join(SOURCES.names())} (or a plain file path)")
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


class SourceHub:
    """Shares one started source per URL among all users (thread-safe).

    ``linger`` (default ``capture.hub_linger``) keeps a source open that long after its
    last release, so a flow restarted at once does not reconnect. The same operations
    as the driver hub: :meth:`open`, :meth:`release`, :meth:`use`, :meth:`refs`,
    :meth:`refcounts`, :meth:`close`.
    """

    def __init__(self, linger: float | None = None) -> None:
        self._linger = linger
        self._pool: RefPool[FrameSource] = RefPool("source", error=CaptureError)
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False

    @property
    def linger(self) -> float:
        """Seconds a source stays open after its last release."""
        return get_settings().capture.hub_linger if self._linger is None else self._linger

    def open(self, url: str) -> FrameSource:
        """A started source for ``url``, shared with every other user of the same URL.

        ``with hub.open(url) as src:`` gives the reference back when the block ends.
        """
        key = source_key(url)
        dead: FrameSource | None = None
        try:
            with self._pool.lock:
                if self._closed:
                    raise CaptureError("the source hub is closed")
                held = self._pool.get(key)
                if (held is not None and self._pool.refs(held) == 0
                        and held.state == SourceState.STOPPED):
                    # Lingering but finished (end of file, gave up): start afresh. The old
                    # one is stopped after the lock is let go (its stop may wait for a
                    # reader stuck in FFmpeg; nobody else's open or release waits on it).
                    self._cancel_timer(key)
                    self._pool.discard(key, held)
                    dead = held
                self._cancel_timer(key)

                def create() -> FrameSource:
                    factory = _factory_for(url)
                    # Built and started under the lock so two users of one URL can never
                    # open two captures; factories and start() return promptly by contract.
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
                    source.owned_by(self.release)
                    log.debug("hub: opened %s", source.display_url)
                    return source

                return self._pool.acquire(key, create)
        finally:
            if dead is not None:
                dead.stop()

    def _cancel_timer(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def release(self, source: FrameSource) -> None:
        """Give back one reference; the source stops after the linger when none are left."""
        stop_now = False
        with self._pool.lock:
            if self._pool.key_of(source) is None:
                raise CaptureError(f"source {source.display_url} was not opened through this hub")
            key, left = self._pool.release(source)
            if left == 0:
                linger = self.linger
                if linger <= 0 or self._closed:
                    self._pool.discard(key, source)
                    stop_now = True
                else:
                    timer = threading.Timer(linger, self._expire, args=(key, source))
                    timer.daemon = True
                    timer.name = f"kvmrpa-hub-linger {source.display_url}"
                    self._timers[key] = timer
                    timer.start()
        if stop_now:
            source.stop()

    def _expire(self, key: str, source: FrameSource) -> None:
        with self._pool.lock:
            if self._pool.get(key) is not source or self._pool.refs(source) > 0:
                return
            self._pool.discard(key, source)
            if self._timers.get(key) is threading.current_thread():
                del self._timers[key]
        log.debug("hub: closing %s after linger", source.display_url)
        source.stop()

    @contextlib.contextmanager
    def use(self, url: str) -> Iterator[FrameSource]:
        """``with hub.use(url) as src:`` open, then release on every path."""
        src = self.open(url)
        try:
            yield src
        finally:
            self.release(src)

    def refs(self, source: FrameSource) -> int:
        """How many users hold ``source`` (0 when lingering or not in the hub)."""
        return self._pool.refs(source)

    def refcounts(self) -> dict[str, int]:
        """``{redacted key: references}`` of every source the hub holds (lingering: 0)."""
        return {redact_url(k): n for k, n in self._pool.refcounts().items()}

    def sources(self) -> list[FrameSource]:
        """Every source the hub holds (lingering ones included)."""
        return self._pool.objects()

    def close(self) -> None:
        """Stop every source now, lingering or not. Later :meth:`open` calls fail."""
        with self._pool.lock:
            self._closed = True
            sources = self._pool.drain()
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        for src in sources:
            try:
                src.stop()
            except Exception:
                log.exception("hub: stopping %s failed", src.display_url)
        for timer in timers:
            if timer.is_alive() and timer is not threading.current_thread():
                timer.join()


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
    """A started, shared source for ``url`` from the process-wide hub.

    Give it back with :func:`release_source`, or open it in a ``with`` statement:
    ``with open_source(url) as src:`` releases it when the block ends.
    """
    return get_hub().open(url)


def release_source(source: FrameSource) -> None:
    """Give back a source obtained from :func:`open_source`."""
    get_hub().release(source)

"""Reader-thread sources: network streams (OpenCV's FFmpeg backend) and capture devices.

One *supervisor* thread per source owns the connection lifecycle. For each connection
attempt it starts a *reader* thread that opens the capture, reads frames into the
mailbox and releases the capture when it leaves (the reader is the only thread that
ever touches its ``VideoCapture``). The supervisor is the watchdog: it does not depend
on ``read()`` returning. When a reader makes no progress for ``stall_timeout`` (or an
open takes longer than ``open_timeout + stall_timeout``) the attempt is *abandoned*:
its frames are no longer published, the state becomes ``reconnecting`` and a new
attempt starts after an exponential backoff with jitter. An abandoned reader is still
blocked inside FFmpeg; it notices the abandonment when the read returns (FFmpeg's read
timeout bounds that) and releases its capture then. Abandoned readers are kept in a
bounded list and joined by :meth:`stop`, so no thread outlives the source.

``OPENCV_FFMPEG_CAPTURE_OPTIONS`` is process-wide and read by OpenCV when a capture
opens, so it is set under a module lock around each open (and restored after).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np

from .._errors import ConfigError, SourceOpenError
from .._settings import CaptureSettings, get_settings
from .._urls import query_params
from . import _native
from ._backoff import Backoff
from ._source import FrameSource, SourceState

__all__ = ["DeviceSource", "ReaderOptions", "ReaderSource", "StreamSource", "open_ffmpeg"]

log = logging.getLogger("kvmrpa.capture")

FFMPEG_OPTIONS_VAR = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_OPEN_LOCK = threading.Lock()
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935,
                  "rtmps": 443, "srt": 0, "tcp": 0}
#: Most abandoned readers a source keeps waiting for before it stops reconnecting.
MAX_ABANDONED = 4
_LIVE_SOURCES: weakref.WeakSet[ReaderSource] = weakref.WeakSet()


#: The capture settings' parameters, whose defaults are the reader options' defaults.
_CAPTURE = CaptureSettings.param


@dataclass(frozen=True)
class ReaderOptions:
    """Timeouts and reconnect policy of one reader source: the capture settings of the
    same names (their defaults here; :meth:`from_settings` takes the current values)."""

    open_timeout: float = _CAPTURE.open_timeout.default
    read_timeout: float = _CAPTURE.read_timeout.default
    stall_timeout: float = _CAPTURE.stall_timeout.default
    reconnect_initial: float = _CAPTURE.reconnect_initial.default
    reconnect_max: float = _CAPTURE.reconnect_max.default
    reconnect_jitter: float = _CAPTURE.reconnect_jitter.default
    max_reconnects: int = _CAPTURE.max_reconnects.default
    transport: str = _CAPTURE.transport.default
    #: Short-probe FFmpeg options; ``None`` opens with FFmpeg's defaults (slow probing).
    probe_options: str | None = _CAPTURE.probe_options.default or None

    @classmethod
    def from_settings(cls, **overrides: Any) -> ReaderOptions:
        """The options from ``settings.capture``, with ``overrides`` (checked) on top."""
        s = get_settings().capture
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown reader option(s) {sorted(unknown)}; known: {sorted(names)}")
        base = cls(**{n: getattr(s, n) for n in names})
        base = replace(base, probe_options=base.probe_options or None)
        opts = replace(base, **overrides)
        for name in ("open_timeout", "read_timeout", "stall_timeout", "reconnect_initial",
                     "reconnect_max"):
            if not getattr(opts, name) > 0:
                raise ConfigError(f"reader option {name} must be > 0, got {getattr(opts, name)!r}")
        if opts.transport not in ("tcp", "udp"):
            raise ConfigError(f"reader option transport must be 'tcp' or 'udp', got {opts.transport!r}")
        return opts


def ffmpeg_options(url: str, opts: ReaderOptions) -> str | None:
    """The ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` value for ``url`` (``None``: leave as is)."""
    scheme = urlsplit(url).scheme.lower()
    parts = []
    if scheme in ("rtsp", "rtsps"):
        parts.append(f"rtsp_transport;{opts.transport}")
    if opts.probe_options:
        parts.append(opts.probe_options)
    return "|".join(parts) or None


def open_ffmpeg(url: str, options: str | None, open_timeout: float, read_timeout: float,
                on_locked: Callable[[], None] | None = None,
                messages: list[str] | None = None) -> cv2.VideoCapture:
    """Open ``url`` with OpenCV's FFmpeg backend, ``options`` in the environment.

    Returns the capture (check ``isOpened()``). The user's own
    ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` is kept after ours, so it wins on conflicts.
    FFmpeg's error and warning lines of the open are appended to ``messages``.
    """
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000)]
    with _OPEN_LOCK:
        if on_locked is not None:
            on_locked()
        old = os.environ.get(FFMPEG_OPTIONS_VAR)
        try:
            if options:
                os.environ[FFMPEG_OPTIONS_VAR] = f"{options}|{old}" if old else options
            with _native.opening() as lines:
                cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
            if messages is not None:
                messages.extend(lines)
            return cap
        finally:
            if old is None:
                os.environ.pop(FFMPEG_OPTIONS_VAR, None)
            else:
                os.environ[FFMPEG_OPTIONS_VAR] = old


def diagnose(url: str, timeout: float, cause: str | None = None) -> str:
    """Why a network URL did not open: unknown host, refused, silent, or wrong path;
    ``cause`` (what FFmpeg said, e.g. ``authentication failed``) replaces the guess
    when the host accepts connections."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return "the URL has no host"
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        return "the URL has an invalid port"
    try:
        socket.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve host {host!r} ({exc.strerror})"
    if not port or parts.scheme.lower() in ("udp", "srt"):
        return "the stream could not be opened"
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 2.0)):
            pass
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port} (nothing listening)"
    except TimeoutError:
        return f"no answer from {host}:{port}"
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    if cause:
        return f"{host}:{port} accepts connections but the stream could not be opened: {cause}"
    return (f"{host}:{port} accepts connections but the stream could not be opened "
            f"(wrong path, bad credentials, or not a video stream)")


class _Attempt:
    """One connection attempt: its reader thread and what the watchdog looks at."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.progress = time.monotonic()  # last open success or frame
        self.phase = "opening"
        self.frames = 0
        self.error: str | None = None
        self.abandoned = threading.Event()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None


class ReaderSource(FrameSource):
    """Base of sources read by a dedicated thread from a ``cv2.VideoCapture``.

    Subclasses implement :meth:`_open_capture`. Options come from the settings, or from
    ``options`` / keyword overrides (see :class:`ReaderOptions`).
    """

    def __init__(self, url: str, options: ReaderOptions | None = None, **overrides: Any) -> None:
        super().__init__(url)
        self.options = options if options is not None else ReaderOptions.from_settings(**overrides)
        if options is not None and overrides:
            self.options = replace(options, **overrides)
        self._stop_evt = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._current: _Attempt | None = None
        self._abandoned: list[_Attempt] = []
        self._attempt_count = 0

    #: Whether FFmpeg's read timeout applies (stale-frame detection); not for devices.
    _timeouts_apply = True

    # -- to implement --------------------------------------------------------------
    def _open_capture(self, attempt: _Attempt) -> cv2.VideoCapture:
        """Open and return an opened capture, or raise :class:`SourceOpenError`."""
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------------
    def _start(self) -> None:
        self._stop_evt.clear()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"kvmrpa-capture {self.display_url}", daemon=True)
        _LIVE_SOURCES.add(self)
        self._supervisor.start()

    def _stop(self) -> None:
        self._stop_evt.set()
        sup, self._supervisor = self._supervisor, None
        if sup is not None and sup is not threading.current_thread():
            sup.join()
        _LIVE_SOURCES.discard(self)

    def threads(self) -> list[threading.Thread]:
        """The threads this source owns now (supervisor, reader, abandoned readers)."""
        out = [t for t in (self._supervisor,) if t is not None and t.is_alive()]
        attempts = [self._current, *self._abandoned]
        out += [a.thread for a in attempts if a is not None and a.thread is not None
                and a.thread.is_alive()]
        return out

    # -- the supervisor (watchdog + reconnect) ---------------------------------------
    def _supervise(self) -> None:
        opts = self.options
        backoff = Backoff(opts.reconnect_initial, opts.reconnect_max, opts.reconnect_jitter)
        tick = max(0.01, min(0.1, opts.stall_timeout / 10))
        failures = 0
        try:
            while not self._stop_evt.is_set():
                self._reap(block=len(self._abandoned) >= MAX_ABANDONED)
                if self._stop_evt.is_set():
                    break
                attempt = self._launch()
                error = self._watch(attempt, tick)
                if self._stop_evt.is_set():
                    break
                if attempt.frames:
                    backoff.reset()
                    failures = 0
                failures += 1
                if opts.max_reconnects and failures > opts.max_reconnects:
                    msg = f"gave up after {opts.max_reconnects} reconnect attempts: {error}"
                    log.error("source %s: %s", self.display_url, msg)
                    self._set_state(SourceState.STOPPED, msg)
                    break
                delay = backoff.next()
                self._set_state(SourceState.RECONNECTING, error)
                log.warning("source %s: attempt %d failed (%s); retrying in %.2f s",
                            self.display_url, attempt.number, error, delay)
                if self._stop_evt.wait(delay):
                    break
        except Exception:  # the supervisor must never die silently
            log.exception("source %s: supervisor failed", self.display_url)
            self._set_state(SourceState.STOPPED, "internal error in the capture supervisor")
        finally:
            self._shutdown_readers()

    def _launch(self) -> _Attempt:
        self._attempt_count += 1
        attempt = _Attempt(self._attempt_count)
        self._note_attempt()
        attempt.thread = threading.Thread(
            target=self._read_loop, args=(attempt,), daemon=True,
            name=f"kvmrpa-reader#{attempt.number} {self.display_url}")
        self._current = attempt
        attempt.thread.start()
        return attempt

    def _watch(self, attempt: _Attempt, tick: float) -> str:
        """Wait until the attempt ends, stalls or the source stops; returns the error."""
        opts = self.options
        while not attempt.done.wait(tick):
            if self._stop_evt.is_set():
                return "stopped"
            limit = opts.stall_timeout + (opts.open_timeout if attempt.phase == "opening" else 0)
            idle = time.monotonic() - attempt.progress
            if idle > limit:
                attempt.abandoned.set()
                self._abandoned.append(attempt)
                self._current = None
                what = "opening" if attempt.phase == "opening" else "no new frame"
                return f"stalled: {what} for {idle:.1f} s (stall_timeout {opts.stall_timeout:g} s)"
        self._current = None
        if attempt.thread is not None:
            attempt.thread.join()
        return attempt.error or "stream ended"

    def _reap(self, block: bool) -> None:
        if block:
            log.warning("source %s: %d readers still blocked in FFmpeg; waiting for one",
                        self.display_url, len(self._abandoned))
            while (not self._stop_evt.is_set()
                   and all(not a.done.is_set() for a in self._abandoned)):
                self._stop_evt.wait(0.1)
        for a in [a for a in self._abandoned if a.done.is_set()]:
            if a.thread is not None:
                a.thread.join()
            self._abandoned.remove(a)

    def _shutdown_readers(self) -> None:
        opts = self.options
        attempts = [a for a in (self._current, *self._abandoned) if a is not None]
        for a in attempts:
            a.abandoned.set()
        # A reader blocked in FFmpeg returns within its read/open timeouts (FFmpeg checks
        # its interrupt callback about three times per timeout).
        deadline = time.monotonic() + 3 * opts.read_timeout + opts.open_timeout + 2
        for a in attempts:
            if a.thread is not None:
                a.thread.join(max(0.0, deadline - time.monotonic()))
                if a.thread.is_alive():
                    log.warning("source %s: reader #%d still blocked after stop",
                                self.display_url, a.number)
        self._current = None
        self._abandoned = [a for a in attempts if a.thread is not None and a.thread.is_alive()]

    # -- the reader ----------------------------------------------------------------
    def _read_loop(self, attempt: _Attempt) -> None:
        with _native.collect() as said:  # FFmpeg's lines on this thread: the causes
            self._read_frames(attempt, said)

    def _read_frames(self, attempt: _Attempt, said: deque[str]) -> None:
        cap: cv2.VideoCapture | None = None
        try:
            cap = self._open_capture(attempt)
            if attempt.abandoned.is_set() or self._stop_evt.is_set():
                return
            attempt.phase = "reading"
            attempt.progress = time.monotonic()
            log.info("source %s: opened (attempt %d)", self.display_url, attempt.number)
            # A read that lasted about the read timeout returned only because FFmpeg's
            # timeout fired: a hung server makes it hand out stale buffered frames then.
            # Those are neither published nor counted as progress by the watchdog.
            stale_after = 0.9 * self.options.read_timeout
            while not (attempt.abandoned.is_set() or self._stop_evt.is_set()):
                before = time.monotonic()
                ok, image = cap.read()
                now = time.monotonic()
                if attempt.abandoned.is_set() or self._stop_evt.is_set():
                    break
                if not ok or image is None:
                    why = _native.cause(said)
                    attempt.error = (f"read failed: {why}" if why else
                                     "read failed: the stream ended or the connection was lost")
                    break
                if now - before >= stale_after and self._timeouts_apply:
                    attempt.error = (f"read timed out after {now - before:.1f} s "
                                     f"(server hung?)")
                    continue
                image = _to_bgr(image)
                attempt.frames += 1
                attempt.progress = now
                self._publish(image, now)
                self._after_frame(cap, attempt)
        except SourceOpenError as exc:
            attempt.error = str(exc)
        except Exception as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
            log.exception("source %s: reader failed", self.display_url)
        finally:
            if cap is not None:
                with contextlib.suppress(Exception):
                    cap.release()
            attempt.done.set()

    def _after_frame(self, cap: cv2.VideoCapture, attempt: _Attempt) -> None:
        """Hook after each published frame (pacing for files)."""


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class StreamSource(ReaderSource):
    """Any URL OpenCV's FFmpeg backend opens: ``rtsp://``, ``rtsps://``, ``http://``
    (MJPEG, HLS), ``rtmp://``, ``srt://``, ``udp://``…

    Opens with open/read timeouts, TCP transport for RTSP (``transport``), and short
    probing; a failed open is diagnosed (unknown host, refused, wrong path) in
    ``metrics().last_error``. Credentials in the URL never appear in logs or errors.
    """

    def _open_capture(self, attempt: _Attempt) -> cv2.VideoCapture:
        opts = self.options

        # The wait for the open lock is not a stall: progress restarts when it is held.
        began = [time.monotonic()]

        def locked() -> None:
            attempt.progress = began[0] = time.monotonic()

        said: list[str] = []
        cap = open_ffmpeg(self.url, ffmpeg_options(self.url, opts), opts.open_timeout,
                          opts.read_timeout, on_locked=locked, messages=said)
        if not cap.isOpened():
            cap.release()
            took = time.monotonic() - began[0]
            if took >= 0.9 * opts.open_timeout:
                reason = f"no answer within the open timeout ({opts.open_timeout:g} s; server hung?)"
            else:
                reason = diagnose(self.url, opts.open_timeout, _native.cause(said))
            raise SourceOpenError(f"cannot open {self.display_url}: {reason}")
        return cap


class DeviceSource(ReaderSource):
    """A local capture device through V4L2: ``device:///dev/video0`` or ``device://0``.

    Query parameters ``width``, ``height``, ``fps`` and ``fourcc`` (e.g. ``MJPG``) are
    requested from the device. A missing or busy device is retried (hot-plug), with the
    reason in ``metrics().last_error``.
    """

    _timeouts_apply = False

    def __init__(self, url: str, options: ReaderOptions | None = None, **overrides: Any) -> None:
        super().__init__(url, options, **overrides)
        self.device: int | str = parse_device_url(url)
        self._props = query_params(url)

    def _open_capture(self, attempt: _Attempt) -> cv2.VideoCapture:
        dev = self.device
        if isinstance(dev, str) and not os.path.exists(dev):
            raise SourceOpenError(f"cannot open {self.display_url}: no such device {dev}")
        with _native.opening():
            cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise SourceOpenError(f"cannot open {self.display_url}: the device did not open "
                                  f"(busy, no permission, or not a capture device)")
        props = self._props
        if "fourcc" in props and len(props["fourcc"]) == 4:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*props["fourcc"]))
        for key, prop in (("width", cv2.CAP_PROP_FRAME_WIDTH),
                          ("height", cv2.CAP_PROP_FRAME_HEIGHT), ("fps", cv2.CAP_PROP_FPS)):
            if key in props:
                try:
                    cap.set(prop, float(props[key]))
                except ValueError:
                    cap.release()
                    raise SourceOpenError(
                        f"{self.display_url}: {key}={props[key]!r} is not a number") from None
        return cap


def parse_device_url(url: str) -> int | str:
    """``device://0`` → 0, ``device:///dev/video0`` → ``"/dev/video0"``."""
    from .._errors import UrlError

    parts = urlsplit(url)
    if parts.netloc and parts.path not in ("", "/"):
        raise UrlError(f"device URL {url!r}: use device://N or device:///dev/videoN")
    if parts.netloc:
        if not parts.netloc.isdigit():
            raise UrlError(f"device URL {url!r}: {parts.netloc!r} is not a device index")
        return int(parts.netloc)
    path = unquote(parts.path)
    if not path or path == "/":
        raise UrlError(f"device URL {url!r} names no device (device://0 or device:///dev/video0)")
    return path


def stop_all_readers() -> None:
    """Stop every reader source still running (called at interpreter exit)."""
    for src in list(_LIVE_SOURCES):
        with contextlib.suppress(Exception):
            src.stop()


atexit.register(stop_all_readers)

"""What FFmpeg and OpenCV say, routed through the ``kvmrpa.native.*`` loggers.

FFmpeg (the copy OpenCV loaded) reports through ``av_log``, which writes raw lines to
stderr by default. :func:`install` replaces that with a callback (``ctypes``) that
formats each line with ``av_log_format_line2`` and

* logs it on ``kvmrpa.native.ffmpeg`` at the matching level, but only while that logger
  is enabled for DEBUG (``kvmrpa --debug``): these are diagnostics, silent by default;
* hands it to the thread's collector, if the thread registered one with
  :func:`collect` (the capture layer classifies the cause of a failed open or read
  with :func:`cause`).

OpenCV's own log (``[ WARN:0@0.1] global cap.cpp:…``) has no callback reachable from
Python: it is silenced by default (``cv2.utils.logging``), and while
``kvmrpa.native.opencv`` is enabled for DEBUG it is set to warnings (OpenCV writes its
info and debug lines to stdout) and the lines it writes during an open
(:func:`opening`) are read from a pipe put on file descriptor 2 for that moment and
logged there; everything else written to stderr meanwhile is passed through unchanged.
A log level the user set on OpenCV themselves (``OPENCV_LOG_LEVEL``, or
``setLogLevel`` after kvmrpa's) is left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2

from .._urls import redact_url

__all__ = ["cause", "collect", "install", "opening"]

ffmpeg_log = logging.getLogger("kvmrpa.native.ffmpeg")
opencv_log = logging.getLogger("kvmrpa.native.opencv")

# av_log levels (libavutil/log.h)
AV_LOG_QUIET, AV_LOG_ERROR, AV_LOG_WARNING, AV_LOG_INFO, AV_LOG_VERBOSE = -8, 16, 24, 32, 40

#: Most lines a thread's collector keeps (the newest).
COLLECT_LINES = 32

_LOCK = threading.Lock()
_WINDOW = threading.Lock()  # one fd-2 window at a time
_collectors: dict[int, deque[str]] = {}
_state: dict[str, Any] = {}  # lib, callback, default, cv_level_set
_POINTER = re.compile(r" @ 0x[0-9a-fA-F]+\]")
_OPENCV_LINE = re.compile(rb"^\[\s*(FATAL|ERROR|WARN|INFO|DEBUG|VERBOSE)[:\]][^\]]*\]\s?(.*)$")
_OPENCV_LEVELS = {b"FATAL": logging.CRITICAL, b"ERROR": logging.ERROR,
                  b"WARN": logging.WARNING, b"INFO": logging.INFO,
                  b"DEBUG": logging.DEBUG, b"VERBOSE": logging.DEBUG}

_LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                           ctypes.c_void_p)


def _python_level(av_level: int) -> int:
    if av_level <= AV_LOG_ERROR:
        return logging.ERROR if av_level > 8 else logging.CRITICAL
    if av_level <= AV_LOG_WARNING:
        return logging.WARNING
    if av_level <= AV_LOG_INFO:
        return logging.INFO
    return logging.DEBUG


def _find_avutil() -> str | None:
    """The libavutil OpenCV loaded (its own copy in the wheel, or the system's)."""
    with contextlib.suppress(OSError):
        paths = [line.split(None, 5)[-1] for line in
                 Path("/proc/self/maps").read_text().splitlines()
                 if "libavutil" in line and "/" in line]
        paths = list(dict.fromkeys(p.strip() for p in paths))
        cv2_dir = str(Path(cv2.__file__).resolve().parent.parent)
        paths.sort(key=lambda p: not p.startswith(cv2_dir))
        if paths:
            return paths[0]
    return None


def _on_ffmpeg(avcl: int | None, level: int, fmt: int | None, vl: int | None) -> None:
    try:
        if level > _state.get("av_level", AV_LOG_WARNING):  # OpenCV may have raised it
            return
        lib = _state["lib"]
        buf = ctypes.create_string_buffer(1024)
        prefix = ctypes.c_int(1)
        lib.av_log_format_line2(avcl, level, fmt, vl, buf, len(buf), ctypes.byref(prefix))
        text = buf.value.decode("utf-8", "replace").strip()
        if not text:
            return
        text = redact_url(_POINTER.sub("]", text))
        sink = _collectors.get(threading.get_ident())
        if sink is not None and level <= AV_LOG_WARNING:
            sink.append(text)
        if ffmpeg_log.isEnabledFor(logging.DEBUG):
            ffmpeg_log.log(_python_level(level), "%s", text)
    except Exception:  # never let an exception cross into C
        pass


def _ffmpeg_level() -> int:
    """The av_log threshold: errors always (causes), more while debugging."""
    if not ffmpeg_log.isEnabledFor(logging.DEBUG):
        return AV_LOG_WARNING
    return AV_LOG_VERBOSE


def _opencv_level() -> int:
    # never INFO or below: OpenCV writes those to stdout, which may be a --json answer
    L = cv2.utils.logging
    if not opencv_log.isEnabledFor(logging.DEBUG):
        return L.LOG_LEVEL_SILENT
    return L.LOG_LEVEL_WARNING


def install() -> bool:
    """Route FFmpeg's log (once) and apply the current logger levels to both libraries;
    ``False`` when no libavutil can be found (FFmpeg's lines are then not routed)."""
    with _LOCK:
        if "lib" not in _state:
            _state["lib"] = None
            path = _find_avutil()
            if path is not None:
                try:
                    lib = ctypes.CDLL(path)
                    lib.av_log_format_line2.argtypes = [
                        ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                        ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
                    lib.av_log_set_callback.argtypes = [ctypes.c_void_p]
                    lib.av_log_set_level.argtypes = [ctypes.c_int]
                    callback = _LOG_CB(_on_ffmpeg)
                    _state["lib"], _state["callback"] = lib, callback
                    _state["default"] = ctypes.cast(lib.av_log_default_callback,
                                                    ctypes.c_void_p).value
                    lib.av_log_set_callback(ctypes.cast(callback, ctypes.c_void_p))
                    atexit.register(_uninstall)
                except (OSError, AttributeError) as exc:
                    _state["lib"] = None
                    ffmpeg_log.debug("FFmpeg's log is not routed: %s", exc)
        lib = _state["lib"]
        if lib is not None:
            _state["av_level"] = _ffmpeg_level()
            lib.av_log_set_level(_state["av_level"])
        level = _opencv_level()
        mine = _state.get("cv_level_set")
        current = cv2.utils.logging.getLogLevel()
        # the user's own setting wins: OPENCV_LOG_LEVEL, or a level set since ours
        if "OPENCV_LOG_LEVEL" not in os.environ and (mine is None or current == mine):
            cv2.utils.logging.setLogLevel(level)
            _state["cv_level_set"] = level
        return lib is not None


def _uninstall() -> None:
    """At exit: FFmpeg's own (silent) logging again, so no thread calls into Python late."""
    lib = _state.get("lib")
    if lib is not None:
        lib.av_log_set_level(AV_LOG_QUIET)
        lib.av_log_set_callback(_state.get("default"))


@contextlib.contextmanager
def collect() -> Iterator[deque[str]]:
    """FFmpeg's error and warning lines of this thread while the block runs (newest
    :data:`COLLECT_LINES`)."""
    sink: deque[str] = deque(maxlen=COLLECT_LINES)
    ident = threading.get_ident()
    previous = _collectors.get(ident)
    _collectors[ident] = sink
    try:
        yield sink
    finally:
        if previous is None:
            _collectors.pop(ident, None)
        else:
            previous.extend(sink)
            _collectors[ident] = previous


@contextlib.contextmanager
def opening() -> Iterator[deque[str]]:
    """Around one open: :func:`install`, :func:`collect`, and OpenCV's lines to its
    logger while it is enabled for DEBUG."""
    install()
    try:
        with collect() as sink:
            if not opencv_log.isEnabledFor(logging.DEBUG):
                yield sink
                return
            with _WINDOW:
                window = _Window()
                try:
                    yield sink
                finally:
                    for level, text in window.close():
                        opencv_log.log(level, "%s", redact_url(text))
    finally:
        install()  # OpenCV sets FFmpeg's level when its first capture opens


class _Window:
    """File descriptor 2 on a pipe until :meth:`close`; a thread reads it."""

    def __init__(self) -> None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        self.saved = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.read = read
        self.found: list[tuple[int, str]] = []
        self.thread = threading.Thread(target=self._pump, name="kvmrpa-native-stderr",
                                       daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line, b"\n")
        if pending:
            self._line(pending, b"")

    def _line(self, line: bytes, end: bytes) -> None:
        match = _OPENCV_LINE.match(line)
        if match and len(self.found) < COLLECT_LINES:
            self.found.append((_OPENCV_LEVELS[match.group(1)],
                               match.group(2).decode("utf-8", "replace")))
        elif not match:
            with contextlib.suppress(OSError):
                os.write(self.saved, line + end)

    def close(self) -> list[tuple[int, str]]:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(self.saved, 2)  # the write end's last copy goes: the pump reads EOF
        self.thread.join()
        os.close(self.read)
        os.close(self.saved)
        return self.found


#: FFmpeg's wording → the cause a person reads, most specific first.
_CAUSES = (
    (re.compile(r"Unauthorized|authori[sz]ation failed|authentication failed", re.I),
     "authentication failed"),
    (re.compile(r"Forbidden", re.I), "access forbidden"),
    (re.compile(r"Not Found", re.I), "stream not found"),
    (re.compile(r"Connection refused", re.I), "connection refused"),
    (re.compile(r"No route to host|Network is unreachable|Host is unreachable", re.I),
     "host unreachable"),
    (re.compile(r"Failed to resolve|Name or service not known|nodename nor servname", re.I),
     "unknown host"),
    (re.compile(r"timed out|\btimeout\b(?!=)", re.I), "timed out"),
    (re.compile(r"Connection reset|End of file|Broken pipe", re.I), "connection lost"),
)


def cause(lines: deque[str] | list[str]) -> str | None:
    """The cause FFmpeg's lines name (``connection refused``, ``authentication failed``,
    ``host unreachable``, ``timed out``…), newest line first; ``None`` if none does."""
    for text in reversed(lines):
        for pattern, name in _CAUSES:
            if pattern.search(text):
                return name
    return None

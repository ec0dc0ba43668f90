"""The driver hub: one shared, reference-counted driver per input target.

Schemes register a factory with :func:`register_driver`; :func:`open_driver` returns the
driver for a URL, creating it on first use and counting users; :func:`release_driver`
gives it back and closes it when the last user leaves. All flows driving one target
therefore share one driver, and with it one arbitration lock (see
:meth:`InputDriver.session`). Drivers connect lazily, on their first action, so
opening never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import InputError, UrlError
from .._urls import normalize_url, redact_url, split_url
from ._driver import InputDriver

__all__ = ["DriverHub", "get_hub", "open_driver", "parse_size", "register_driver",
           "registered_schemes", "release_driver"]

log = logging.getLogger("kvmrpa.kvm")

DriverFactory = Callable[[str], InputDriver]

_factories: dict[str, DriverFactory] = {}
_factories_lock = threading.Lock()


def register_driver(scheme: str, factory: DriverFactory) -> None:
    """Make ``scheme://…`` URLs open drivers built by ``factory(url)`` (unconnected)."""
    if not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"invalid URL scheme {scheme!r}")
    with _factories_lock:
        _factories[scheme.lower()] = factory


def registered_schemes() -> list[str]:
    """The schemes drivers are registered for."""
    _ensure_builtin()
    with _factories_lock:
        return sorted(_factories)


def parse_size(text: str, what: str = "size") -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)``, with a clear error otherwise."""
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or size[0] <= 0 or size[1] <= 0 or max(size) > 65535:
        raise UrlError(f"{what} must look like WIDTHxHEIGHT (e.g. 1920x1080), got {text!r}")
    return size


_builtin_loaded = False


def _ensure_builtin() -> None:
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    from . import _builtin  # noqa: F401 - registers the built-in schemes


@dataclass
class _Entry:
    driver: InputDriver
    refs: int


class DriverHub:
    """Shares one driver per normalised URL among all users, reference-counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def open(self, url: str, frame_size: tuple[int, int] | None = None) -> InputDriver:
        """The shared driver for ``url`` (created on first use); count one more user."""
        _ensure_builtin()
        parts = split_url(url)
        key = normalize_url(url)
        if frame_size is not None:
            frame_size = (int(frame_size[0]), int(frame_size[1]))
            if frame_size[0] <= 0 or frame_size[1] <= 0:
                raise InputError(f"{redact_url(url)}: frame size must be positive, got {frame_size}")
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                drv = entry.driver
                if frame_size is not None and drv.frame_size is None:
                    drv.frame_size = frame_size
                elif frame_size is not None and drv.frame_size != frame_size:
                    raise InputError(
                        f"{drv.display_url}: already shared with frame size "
                        f"{drv.frame_size[0]}x{drv.frame_size[1]}, asked for "
                        f"{frame_size[0]}x{frame_size[1]}; use one capture resolution per target")
                entry.refs += 1
                return drv
            with _factories_lock:
                factory = _factories.get(parts.scheme.lower())
            if factory is None:
                known = ", ".join(f"{s}://" for s in sorted(_factories))
                raise UrlError(f"no input driver for {redact_url(url)!r}; known schemes: {known}")
            drv = factory(url)
            if frame_size is not None:
                drv.frame_size = frame_size
            self._entries[key] = _Entry(drv, 1)
            log.debug("opened input driver %s", drv.display_url)
            return drv

    def release(self, driver: InputDriver) -> None:
        """One user fewer; the last one closes the driver."""
        with self._lock:
            for key, entry in self._entries.items():
                if entry.driver is driver:
                    entry.refs -= 1
                    if entry.refs > 0:
                        return
                    del self._entries[key]
                    break
            else:
                raise InputError(f"{driver.display_url}: released more often than opened")
        self._close(driver)

    def _close(self, driver: InputDriver) -> None:
        """Close on the loop the driver's transport lives on, without raising."""
        if not driver.connected:
            return
        loop = driver.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop.is_closed():
            driver._connected = False
            return
        if loop is running:
            task = loop.create_task(driver.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            return
        if not loop.is_running():
            driver._connected = False
            return
        fut = asyncio.run_coroutine_threadsafe(driver.aclose(), loop)
        try:
            fut.result(timeout=5)
        except Exception as exc:  # closing must never raise into the caller's cleanup
            fut.cancel()
            log.warning("%s: close failed: %s", driver.display_url, exc)

    def refs(self, driver: InputDriver) -> int:
        """How many users hold ``driver`` (0 when not in the hub)."""
        with self._lock:
            for entry in self._entries.values():
                if entry.driver is driver:
                    return entry.refs
        return 0

    def drivers(self) -> list[InputDriver]:
        with self._lock:
            return [e.driver for e in self._entries.values()]

    def close_all(self) -> None:
        """Close every driver regardless of users (process shutdown, tests)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for e in entries:
            with contextlib.suppress(Exception):
                self._close(e.driver)


_hub = DriverHub()


def get_hub() -> DriverHub:
    """The process-wide driver hub."""
    return _hub


def open_driver(url: str, frame_size: tuple[int, int] | None = None) -> InputDriver:
    """The shared driver for ``url`` from the process-wide hub (connects on first action).

    ``frame_size`` is the capture resolution the caller's coordinates are in; the
    driver maps them to the target's resolution.
    """
    return _hub.open(url, frame_size)


def release_driver(driver: InputDriver) -> None:
    """Give back a driver from :func:`open_driver`; the last user closes it."""
    _hub.release(driver)

"""The driver hub: one shared, reference-counted driver per input target.

Schemes register a factory with :func:`register_driver` (the built-in ones in
:mod:`kvmrpa.kvm._builtin`, other packages' through the entry-point group
``kvmrpa.drivers``: scheme → factory); :func:`open_driver` returns the
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
from collections.abc import Callable, Iterator

from .._errors import InputError, UrlError
from .._registry import RefPool, Registry
from .._urls import check_scheme, normalize_url, parse_size, redact_url, split_url
from ._builtin import BUILTIN_DRIVERS
from ._driver import InputDriver

__all__ = ["DRIVERS", "ENTRY_POINT_GROUP", "DriverHub", "get_hub", "open_driver",
           "parse_size", "register_driver", "registered_schemes", "release_driver",
           "unregister_driver", "use_driver"]


log = logging.getLogger("kvmrpa.kvm")

DriverFactory = Callable[[str], InputDriver]

#: Entry-point group through which other packages add driver schemes (name = scheme,
#: value = the factory).
ENTRY_POINT_GROUP = "kvmrpa.drivers"


def _check(scheme: str, factory: DriverFactory) -> None:
    check_scheme(scheme)
    if not callable(factory):
        raise TypeError(f"driver factory for {scheme!r} must be callable")


#: URL scheme → ``factory(url) -> InputDriver`` (unconnected).
DRIVERS: Registry[DriverFactory] = Registry("input driver scheme", ENTRY_POINT_GROUP,
                                            error=UrlError, normalize=str.lower, check=_check)


for _scheme, _factory in BUILTIN_DRIVERS.items():
    DRIVERS.register(_scheme, _factory)


def register_driver(scheme: str, factory: DriverFactory, *, replace: bool = False) -> None:
    """Make ``scheme://…`` URLs open drivers built by ``factory(url)`` (unconnected).

    A scheme registered with another factory is refused unless ``replace``.
    """
    DRIVERS.register(scheme, factory, replace=replace)


def unregister_driver(scheme: str) -> None:
    """Forget a driver scheme."""
    DRIVERS.unregister(scheme)


def registered_schemes() -> list[str]:
    """The schemes drivers are registered for (entry points included)."""
    return DRIVERS.names()


class DriverHub:
    """Shares one driver per normalised URL among all users, reference-counted.

    The same operations as the source hub: :meth:`open`, :meth:`release`, :meth:`use`,
    :meth:`refs`, :meth:`refcounts`, :meth:`close`.
    """

    def __init__(self) -> None:
        self._pool: RefPool[InputDriver] = RefPool("input driver", error=InputError)
        self._closing: set[asyncio.Future[None]] = set()

    def open(self, url: str, frame_size: tuple[int, int] | None = None) -> InputDriver:
        """The shared driver for ``url`` (created on first use); count one more user."""
        parts = split_url(url)
        key = normalize_url(url)
        if frame_size is not None:
            frame_size = (int(frame_size[0]), int(frame_size[1]))
            if frame_size[0] <= 0 or frame_size[1] <= 0:
                raise InputError(f"{redact_url(url)}: frame size must be positive, got {frame_size}")
        with self._pool.lock:
            drv = self._pool.get(key)
            if drv is not None and frame_size is not None:
                if drv.frame_size is None:
                    drv.frame_size = frame_size
                elif drv.frame_size != frame_size:
                    raise InputError(
                        f"{drv.display_url}: already shared with frame size "
                        f"{drv.frame_size[0]}x{drv.frame_size[1]}, asked for "
                        f"{frame_size[0]}x{frame_size[1]}; use one capture resolution per target")

            def create() -> InputDriver:
                factory = DRIVERS.get(parts.scheme)
                if factory is None:
                    known = ", ".join(f"{s}://" for s in DRIVERS.names())
                    raise UrlError(f"no input driver for {redact_url(url)!r}; known schemes: {known}")
                made = factory(url)
                if frame_size is not None:
                    made.frame_size = frame_size
                made.owned_by(self.release)
                log.debug("opened input driver %s", made.display_url)
                return made

            return self._pool.acquire(key, create)

    def release(self, driver: InputDriver) -> None:
        """One user fewer; the last one closes the driver."""
        with self._pool.lock:
            key, left = self._pool.release(driver)
            if left > 0:
                return
            self._pool.discard(key, driver)
        self._close(driver)

    @contextlib.contextmanager
    def use(self, url: str, frame_size: tuple[int, int] | None = None) -> Iterator[InputDriver]:
        """``with hub.use(url) as drv:`` open, then release on every path."""
        drv = self.open(url, frame_size)
        try:
            yield drv
        finally:
            self.release(drv)

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
            driver.forget_connection()
            return
        if loop is running:
            task = loop.create_task(driver.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            return
        if not loop.is_running():
            driver.forget_connection()
            return
        fut = asyncio.run_coroutine_threadsafe(driver.aclose(), loop)
        try:
            fut.result(timeout=5)
        except Exception as exc:  # closing must never raise into the caller's cleanup
            fut.cancel()
            log.warning("%s: close failed: %s", driver.display_url, exc)

    def refs(self, driver: InputDriver) -> int:
        """How many users hold ``driver`` (0 when not in the hub)."""
        return self._pool.refs(driver)

    def refcounts(self) -> dict[str, int]:
        """``{redacted URL: users}`` of every driver the hub holds."""
        return {redact_url(k): n for k, n in self._pool.refcounts().items()}

    def drivers(self) -> list[InputDriver]:
        """Every driver the hub holds."""
        return self._pool.objects()

    def close(self) -> None:
        """Close every driver regardless of users (process shutdown, tests)."""
        for drv in self._pool.drain():
            with contextlib.suppress(Exception):
                self._close(drv)


_hub = DriverHub()


def get_hub() -> DriverHub:
    """The process-wide driver hub."""
    return _hub


def open_driver(url: str, frame_size: tuple[int, int] | None = None) -> InputDriver:
    """The shared driver for ``url`` from the process-wide hub (connects on first action).

    Give it back with :func:`release_driver`, or open it in a ``with`` statement:
    ``with open_driver(url) as drv:`` releases it when the block ends.

    ``frame_size`` is the capture resolution the caller's coordinates are in; the
    driver maps them to the target's resolution.
    """
    return _hub.open(url, frame_size)


def release_driver(driver: InputDriver) -> None:
    """Give back a driver from :func:`open_driver`; the last user closes it."""
    _hub.release(driver)


@contextlib.contextmanager
def use_driver(url: str, frame_size: tuple[int, int] | None = None) -> Iterator[InputDriver]:
    """``with use_driver(url) as drv:`` :func:`open_driver`, released on every path."""
    with _hub.use(url, frame_size) as drv:
        yield drv

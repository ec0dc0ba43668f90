"""The InputDriver contract: keyboard and mouse actions in frame pixels.

A driver implements a few primitives in *target screen* pixels (``_move``, ``_button``,
``_scroll``, ``_key``, optionally ``_type_text``). This base class owns everything
shared: mapping frame pixels to the target (calibration = scale + offset), the
per-target lock that makes one node's action sequence atomic against other flows,
retries of safe actions only, the audit trail, and the sync face.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .._errors import (
    ArbitrationTimeoutError,
    CoordinateError,
    DriverConnectionError,
    InputError,
)
from .._runtime import run_sync
from .._settings import get_settings
from .._urls import redact_url

__all__ = [
    "ActionRecord",
    "Calibration",
    "DriverCapabilities",
    "InputDriver",
    "MouseButton",
]

log = logging.getLogger("kvmrpa.kvm")

MouseButton = Literal["left", "right", "middle"]
SAFE_TO_RETRY = frozenset({"move", "key_up", "release"})


@dataclass(frozen=True)
class DriverCapabilities:
    """What a driver can do; asking for more raises :class:`UnsupportedActionError`."""

    unicode_text: bool = False
    scroll: bool = True
    key_down_up: bool = True
    absolute_mouse: bool = True


@dataclass(frozen=True)
class Calibration:
    """Maps frame pixels to target pixels: ``target = frame * scale + offset``."""

    scale_x: float = 1.0
    scale_y: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    @classmethod
    def between(cls, frame_size: tuple[int, int], target_size: tuple[int, int]) -> Calibration:
        """Plain scaling from a capture resolution to the target resolution."""
        fw, fh = frame_size
        tw, th = target_size
        if fw <= 0 or fh <= 0 or tw <= 0 or th <= 0:
            raise ValueError(f"sizes must be positive: frame {frame_size}, target {target_size}")
        return cls(tw / fw, th / fh)

    def apply(self, x: float, y: float) -> tuple[int, int]:
        return round(x * self.scale_x + self.offset_x), round(y * self.scale_y + self.offset_y)


@dataclass(frozen=True)
class ActionRecord:
    """One action for the audit trail (time, driver, action, arguments, result, latency)."""

    time: float
    driver: str
    action: str
    args: dict[str, Any]
    ok: bool
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, "driver": self.driver, "action": self.action,
                "args": self.args, "ok": self.ok, "latency_ms": round(self.latency_ms, 3),
                "error": self.error}


@dataclass
class _Owner:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: asyncio.Task[Any] | None = None
    depth: int = 0


class InputDriver(abc.ABC):
    """Keyboard and mouse injection into one target.

    Coordinates given to the public methods are **frame pixels**: the driver maps them
    with its :class:`Calibration` (from ``frame_size`` and the target's size, or given).
    """

    scheme: ClassVar[str] = ""
    capabilities: ClassVar[DriverCapabilities] = DriverCapabilities()

    def __init__(
        self,
        url: str,
        *,
        frame_size: tuple[int, int] | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.url = url
        self.display_url = redact_url(url)
        self.frame_size = frame_size
        self._calibration = calibration
        self._owner: _Owner | None = None
        self._audit: list[Callable[[ActionRecord], None]] = []
        self._connected = False

    # -- primitives (target pixels), implemented by drivers --------------------------
    async def _connect(self) -> None:  # noqa: B027 - optional hook
        """Open the transport. Default: nothing to open."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Close the transport. Default: nothing to close."""

    @abc.abstractmethod
    async def _move(self, x: int, y: int) -> None: ...

    @abc.abstractmethod
    async def _button(self, button: MouseButton, down: bool) -> None: ...

    @abc.abstractmethod
    async def _scroll(self, dx: int, dy: int) -> None: ...

    @abc.abstractmethod
    async def _key(self, key: str, down: bool) -> None:
        """Press or release one key by its canonical name (see :mod:`kvmrpa.kvm.keys`)."""

    async def _type_text(self, text: str) -> None:
        """Type text; default: one key press per character."""
        from .keys import keys_for_char

        for ch in text:
            for key, shift in [keys_for_char(ch, self)]:
                if shift:
                    await self._key("Shift_L", True)
                await self._key(key, True)
                await self._key(key, False)
                if shift:
                    await self._key("Shift_L", False)

    def target_size(self) -> tuple[int, int] | None:
        """The target screen size in pixels when known (used for calibration)."""
        return None

    # -- connection ------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> InputDriver:
        if not self._connected:
            await self._connect()
            self._connected = True
        return self

    async def aclose(self) -> None:
        if self._connected:
            self._connected = False
            await self._close()

    async def __aenter__(self) -> InputDriver:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Blocking close for scripts and notebook cells."""
        run_sync(self.aclose())

    # -- calibration -----------------------------------------------------------------
    @property
    def calibration(self) -> Calibration:
        if self._calibration is not None:
            return self._calibration
        target = self.target_size()
        if self.frame_size and target:
            return Calibration.between(self.frame_size, target)
        return Calibration()

    def set_calibration(self, calibration: Calibration | None) -> None:
        self._calibration = calibration

    def map_point(self, x: float, y: float) -> tuple[int, int]:
        """Frame pixels → target pixels, refusing points outside the frame."""
        if self.frame_size is not None:
            fw, fh = self.frame_size
            if not (0 <= x < fw and 0 <= y < fh):
                raise CoordinateError(
                    f"{self.display_url}: point ({x:g}, {y:g}) is outside the {fw}x{fh} frame"
                )
        elif x < 0 or y < 0:
            raise CoordinateError(f"{self.display_url}: point ({x:g}, {y:g}) is negative")
        return self.calibration.apply(x, y)

    # -- arbitration -----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def session(self, timeout: float | None = None) -> AsyncIterator[InputDriver]:
        """Hold the target for an atomic action sequence (re-entrant within one task).

        Waiters are served in arrival order (asyncio.Lock is FIFO).
        """
        if self._owner is None:
            self._owner = _Owner()
        owner = self._owner
        task = asyncio.current_task()
        if owner.holder is task and task is not None:
            owner.depth += 1
            try:
                yield self
            finally:
                owner.depth -= 1
            return
        timeout = get_settings().input.lock_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(owner.lock.acquire(), timeout)
        except TimeoutError:
            raise ArbitrationTimeoutError(
                f"{self.display_url}: another flow held the input for more than {timeout:g} s"
            ) from None
        owner.holder, owner.depth = task, 1
        try:
            yield self
        finally:
            owner.holder, owner.depth = None, 0
            owner.lock.release()

    # -- audit -----------------------------------------------------------------------
    def on_action(self, callback: Callable[[ActionRecord], None]) -> Callable[[], None]:
        """Call ``callback(record)`` after every action; returns an unsubscribe function."""
        self._audit.append(callback)
        return lambda: self._audit.remove(callback) if callback in self._audit else None

    def _redact_args(self, args: dict[str, Any]) -> dict[str, Any]:
        return args

    async def _do(self, action: str, args: dict[str, Any], op: Callable[[], Any],
                  retry: bool | None = None) -> None:
        """Run one action with connect, timeout, safe retries and an audit record."""
        settings = get_settings().input
        retries = settings.retries if (retry if retry is not None else action in SAFE_TO_RETRY) else 0
        start = time.monotonic()
        error: BaseException | None = None
        for attempt in range(retries + 1):
            try:
                await self.connect()
                await asyncio.wait_for(op(), settings.action_timeout)
                error = None
                break
            except TimeoutError as exc:
                error = DriverConnectionError(
                    f"{self.display_url}: {action} timed out after {settings.action_timeout:g} s")
                error.__cause__ = exc
            except (ConnectionError, OSError) as exc:
                error = exc
                self._connected = False
                with contextlib.suppress(Exception):
                    await self._close()
            except InputError as exc:
                error = exc
                break
            if attempt < retries:
                await asyncio.sleep(settings.retry_delay)
        latency = (time.monotonic() - start) * 1000
        record = ActionRecord(time.time(), self.display_url, action, self._redact_args(args),
                              error is None, latency, None if error is None else str(error))
        for cb in list(self._audit):
            try:
                cb(record)
            except Exception:
                log.exception("audit callback failed")
        if error is not None:
            if isinstance(error, InputError):
                raise error
            raise DriverConnectionError(f"{self.display_url}: {action} failed: {error}") from error

    # -- public API (frame pixels) -----------------------------------------------------
    async def move(self, x: float, y: float) -> None:
        tx, ty = self.map_point(x, y)
        await self._do("move", {"x": x, "y": y}, lambda: self._move(tx, ty))

    async def press(self, button: MouseButton = "left") -> None:
        await self._do("press", {"button": button}, lambda: self._button(button, True))

    async def release(self, button: MouseButton = "left") -> None:
        await self._do("release", {"button": button}, lambda: self._button(button, False))

    async def click(self, x: float | None = None, y: float | None = None,
                    button: MouseButton = "left", double: bool = False,
                    retry: bool = False) -> None:
        """Click at ``(x, y)`` (frame pixels) or where the pointer is."""
        target = None if x is None or y is None else self.map_point(x, y)

        async def op() -> None:
            if target is not None:
                await self._move(*target)
            for _ in range(2 if double else 1):
                await self._button(button, True)
                await self._button(button, False)

        async with self.session():
            await self._do("double_click" if double else "click",
                           {"x": x, "y": y, "button": button}, op, retry=retry)

    async def drag(self, x1: float, y1: float, x2: float, y2: float,
                   button: MouseButton = "left", steps: int = 10) -> None:
        a, b = self.map_point(x1, y1), self.map_point(x2, y2)

        async def op() -> None:
            await self._move(*a)
            await self._button(button, True)
            for i in range(1, steps + 1):
                await self._move(round(a[0] + (b[0] - a[0]) * i / steps),
                                 round(a[1] + (b[1] - a[1]) * i / steps))
                await asyncio.sleep(0.005)
            await self._button(button, False)

        async with self.session():
            await self._do("drag", {"from": [x1, y1], "to": [x2, y2], "button": button}, op)

    async def scroll(self, dy: int, dx: int = 0, x: float | None = None,
                     y: float | None = None) -> None:
        from .._errors import UnsupportedActionError

        if not self.capabilities.scroll:
            raise UnsupportedActionError(f"{self.display_url}: scroll is not supported")
        target = None if x is None or y is None else self.map_point(x, y)

        async def op() -> None:
            if target is not None:
                await self._move(*target)
            await self._scroll(dx, dy)

        await self._do("scroll", {"dx": dx, "dy": dy, "x": x, "y": y}, op)

    async def key(self, name: str) -> None:
        """Press and release one key (``Enter``, ``a``, ``F5``, …)."""
        from .keys import normalize_key

        k = normalize_key(name, self)

        async def op() -> None:
            await self._key(k, True)
            await self._key(k, False)

        await self._do("key", {"key": name}, op)

    async def key_down(self, name: str) -> None:
        from .keys import normalize_key

        k = normalize_key(name, self)
        await self._do("key_down", {"key": name}, lambda: self._key(k, True))

    async def key_up(self, name: str) -> None:
        from .keys import normalize_key

        k = normalize_key(name, self)
        await self._do("key_up", {"key": name}, lambda: self._key(k, False))

    async def hotkey(self, *names: str) -> None:
        """Press keys in order and release them in reverse: ``hotkey("ctrl+a")`` or
        ``hotkey("ctrl", "a")``."""
        from .keys import parse_hotkey

        keys: Sequence[str] = parse_hotkey(names, self)

        async def op() -> None:
            pressed: list[str] = []
            try:
                for k in keys:
                    await self._key(k, True)
                    pressed.append(k)
            finally:
                for k in reversed(pressed):
                    await self._key(k, False)

        async with self.session():
            await self._do("hotkey", {"keys": list(names)}, op)

    async def type_text(self, text: str, retry: bool = False) -> None:
        """Type ``text``; raises :class:`UnsupportedActionError` naming characters the
        driver cannot type, before sending anything."""
        from .keys import check_typable

        check_typable(text, self)
        async with self.session():
            await self._do("type", {"text": text}, lambda: self._type_text(text), retry=retry)

    # -- sync face -------------------------------------------------------------------
    @property
    def sync(self) -> _SyncDriver:
        """Blocking versions of every action: ``driver.sync.click(10, 20)``."""
        return _SyncDriver(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_url!r})"


class _SyncDriver:
    def __init__(self, driver: InputDriver) -> None:
        self._driver = driver

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self._driver, name)
        if not asyncio.iscoroutinefunction(fn):
            raise AttributeError(name)
        return lambda *a, **kw: run_sync(fn(*a, **kw))

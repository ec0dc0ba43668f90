"""The InputDriver contract: keyboard and mouse actions in frame pixels.

A driver implements a few primitives in *target screen* pixels (``_move``, ``_button``,
``_scroll``, ``_key``, optionally ``_type_text``, ``_connect``/``_close``). This base
class owns everything shared: mapping frame pixels to the target (calibration = scale +
offset, from ``frame_size`` and the target's size, or given, or ``?calibration=sx,sy,ox,oy``
in the URL), the per-target lock that makes one node's action sequence atomic against
other flows (FIFO, so no flow starves), retries of safe actions only, the audit trail
(with secrets redacted), capability checks before anything is sent, the sync face, and
the run's :class:`~kvmrpa.kvm.InputGate`: every primitive passes the gate bound to the
calling node first (nothing is sent once its run was stopped, nothing while it is
paused), and an action cut by a stop releases the keys and buttons it held.

Primitives go out in *units*: a click's button press and release, one key's press and
release, one typed character (with its Shift) pass the gate together, so a stop never
lands between a press and its release (which would complete the click anyway).

Conventions for driver authors:

* ``_scroll(dx, dy)``: positive ``dy`` scrolls down (towards the user, like a browser's
  ``deltaY``), positive ``dx`` right; one unit is one wheel notch.
* ``_key(name, down)`` receives canonical X keysym names (:mod:`kvmrpa.kvm.keys`);
  override :meth:`InputDriver.supports_key` / :meth:`InputDriver.can_type` to declare
  what the transport can send.
* transport failures raise ``ConnectionError``/``OSError`` or
  :class:`DriverConnectionError`; the connection is dropped and safe actions retried.
  Wrap a :class:`DriverConnectionError` that retrying cannot fix (bad credentials,
  untrusted certificate) in :func:`permanent` (it sets ``exc.transient = False``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .._errors import (
    ArbitrationTimeoutError,
    CoordinateError,
    DriverConnectionError,
    InputError,
    InputStoppedError,
    UnsupportedActionError,
)
from .._runtime import run_sync
from .._settings import get_settings
from .._urls import redact_url
from ._gate import InputGate, current_gate

__all__ = [
    "ActionRecord",
    "Calibration",
    "DriverCapabilities",
    "InputDriver",
    "MouseButton",
]

log = logging.getLogger("kvmrpa.kvm")

#: A mouse button name.
MouseButton = Literal["left", "right", "middle"]
SAFE_TO_RETRY = frozenset({"move", "key_up", "release"})
#: Characters per text primitive (each chunk passes the gate on its own).
TEXT_CHUNK = 32

#: True inside a unit of primitives that already passed the gate.
_IN_UNIT: contextvars.ContextVar[bool] = contextvars.ContextVar("kvmrpa_input_unit",
                                                                default=False)
#: What the current action pressed (``("key", name)`` / ``("button", name)``).
_PRESSED: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar(
    "kvmrpa_input_pressed", default=None)


def permanent(exc: DriverConnectionError) -> DriverConnectionError:
    """Mark ``exc`` as a failure retrying cannot fix (bad credentials, untrusted
    certificate): :meth:`InputDriver._do` then neither retries nor reconnects for it."""
    exc.transient = False  # type: ignore[attr-defined]
    return exc


@dataclass(frozen=True)
class DriverCapabilities:
    """What a driver can do; asking for more raises :class:`UnsupportedActionError`."""

    #: can type characters outside US-layout ASCII (Chinese, accents, …)
    unicode_text: bool = False
    #: vertical wheel
    scroll: bool = True
    #: horizontal wheel
    hscroll: bool = True
    #: separate key down / key up (hold a key across actions)
    key_down_up: bool = True
    #: absolute pointer positioning
    absolute_mouse: bool = True
    #: mouse buttons it can press
    buttons: frozenset[str] = frozenset({"left", "right", "middle"})


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

    def as_dict(self) -> dict[str, float]:
        return {"scale_x": self.scale_x, "scale_y": self.scale_y,
                "offset_x": self.offset_x, "offset_y": self.offset_y}

    @classmethod
    def parse(cls, text: str) -> Calibration:
        """``"sx,sy,ox,oy"`` (as stored in a URL's ``calibration=`` parameter)."""
        try:
            sx, sy, ox, oy = (float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(
                f"calibration must be 'scale_x,scale_y,offset_x,offset_y', got {text!r}") from None
        if not (sx > 0 and sy > 0) or not all(math.isfinite(v) for v in (sx, sy, ox, oy)):
            raise ValueError(f"calibration scales must be positive and finite, got {text!r}")
        return cls(sx, sy, ox, oy)


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
    #: When the action began (epoch seconds); ``time`` is when it ended.
    started: float | None = None
    #: The run was stopped: the action was cut (or is the release of what it held).
    cut: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = {"time": self.time, "driver": self.driver, "action": self.action,
               "args": self.args, "ok": self.ok, "latency_ms": round(self.latency_ms, 3),
               "error": self.error, "started": self.started}
        if self.cut:
            out["cut"] = True
        return out


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
        self._connect_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: keys / buttons pressed and not yet released, with the gate they went through
        self._held_keys: dict[str, InputGate | None] = {}
        self._held_buttons: dict[str, InputGate | None] = {}
        if calibration is None:
            from .._urls import query_params

            text = query_params(url).get("calibration")
            if text:
                from .._errors import UrlError

                try:
                    self._calibration = Calibration.parse(text)
                except ValueError as exc:
                    raise UrlError(f"{self.display_url}: {exc}") from None

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
    async def _scroll(self, dx: int, dy: int) -> None:
        """Turn the wheel: ``dy > 0`` down, ``dx > 0`` right, in notches."""

    @abc.abstractmethod
    async def _key(self, key: str, down: bool) -> None:
        """Press or release one key by its canonical name (see :mod:`kvmrpa.kvm.keys`)."""

    async def _type_text(self, text: str) -> None:
        """Type text; default: one US-layout key press per character (Shift as needed)."""
        from .keys import keys_for_char

        interval = get_settings().input.type_interval
        for ch in text:
            key, shift = keys_for_char(ch, self)
            async with self._unit():  # one character passes the gate as a whole
                if shift:
                    await self._send_key("Shift_L", True)
                await self._send_key(key, True)
                await self._send_key(key, False)
                if shift:
                    await self._send_key("Shift_L", False)
            if interval:
                await asyncio.sleep(interval)

    # -- gated sending (every primitive goes through these) ------------------------------
    @contextlib.asynccontextmanager
    async def _unit(self) -> AsyncIterator[None]:
        """Primitives sent inside pass the bound gate once, together (see module doc)."""
        bound = current_gate()
        if bound is None or _IN_UNIT.get():
            yield
            return
        gate, node = bound
        await gate._enter(node)  # raises InputStoppedError once the run was stopped
        token = _IN_UNIT.set(True)
        try:
            yield
        finally:
            _IN_UNIT.reset(token)
            gate._exit()

    def _note_pressed(self, kind: str, name: str) -> None:
        bound = current_gate()
        gate = bound[0] if bound is not None else None
        (self._held_keys if kind == "key" else self._held_buttons)[name] = gate
        if gate is not None:
            gate._holders.add(self)
        pressed = _PRESSED.get()
        if pressed is not None:
            pressed.append((kind, name))

    async def _send_move(self, x: int, y: int) -> None:
        async with self._unit():
            await self._move(x, y)

    async def _send_button(self, button: MouseButton, down: bool) -> None:
        if not down and button in self._held_buttons:
            await self._button(button, False)  # releasing what is held is always sent
            self._held_buttons.pop(button, None)
            return
        async with self._unit():
            await self._button(button, down)
            if down:
                self._note_pressed("button", button)

    async def _send_key(self, key: str, down: bool) -> None:
        if not down and key in self._held_keys:
            await self._key(key, False)  # releasing what is held is always sent
            self._held_keys.pop(key, None)
            return
        async with self._unit():
            await self._key(key, down)
            if down:
                self._note_pressed("key", key)

    async def _send_scroll(self, dx: int, dy: int) -> None:
        async with self._unit():
            await self._scroll(dx, dy)

    async def _send_text(self, text: str) -> None:
        if type(self)._type_text is InputDriver._type_text:
            await self._type_text(text)  # key by key: each character is a unit
            return
        for i in range(0, len(text), TEXT_CHUNK):
            async with self._unit():
                await self._type_text(text[i:i + TEXT_CHUNK])

    def _held_items(self) -> list[tuple[str, str, InputGate | None]]:
        return [("button", n, g) for n, g in list(self._held_buttons.items())] + [
            ("key", n, g) for n, g in list(self._held_keys.items())]

    @property
    def held(self) -> dict[str, list[str]]:
        """Keys and buttons pressed through this driver and not released yet."""
        return {"keys": sorted(self._held_keys), "buttons": sorted(self._held_buttons)}

    async def release_held(self, gate: InputGate | None = None,
                           only: list[tuple[str, str]] | None = None) -> list[str]:
        """Release the keys and buttons held (through ``gate``, or those in ``only``);
        returns what was released. Releases bypass the gate: they are how a cut action
        leaves the target clean."""
        released: list[str] = []
        timeout = get_settings().input.action_timeout
        for kind, table in (("button", self._held_buttons), ("key", self._held_keys)):
            for name, owner in list(table.items()):
                if only is not None and (kind, name) not in only:
                    continue
                if only is None and gate is not None and owner is not gate:
                    continue
                table.pop(name, None)
                try:
                    if kind == "button":
                        await asyncio.wait_for(self._button(name, False), timeout)  # type: ignore[arg-type]
                    else:
                        await asyncio.wait_for(self._key(name, False), timeout)
                    released.append(f"{kind}:{name}")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("%s: cannot release %s %s: %s", self.display_url, kind, name,
                                self._clean(str(exc)))
        return released

    def target_size(self) -> tuple[int, int] | None:
        """The target screen size in pixels when known (used for calibration)."""
        return None

    # -- capability hooks (used by kvmrpa.kvm.keys) ------------------------------------
    def supports_key(self, key: str) -> bool:
        """Whether this driver can send the canonical key ``key``."""
        return True

    def extra_key(self, name: str) -> str | None:
        """A canonical name for ``name`` beyond kvmrpa's own table (e.g. any X keysym)."""
        return None

    def can_type(self, ch: str) -> bool:
        """Whether :meth:`type_text` can produce the character ``ch``."""
        from .keys import _us_typable

        return (self.capabilities.unicode_text and ch.isprintable()) or _us_typable(ch)

    def secrets(self) -> list[str]:
        """Strings never to show in audit records or errors (passwords, tokens)."""
        from .._urls import split_url

        parts = split_url(self.url)
        out = [v for v in (parts.password,) if v]
        if parts.username and parts.password is None and parts.scheme == "vnc":
            out.append(parts.username)
        from .._urls import is_secret_param, query_params

        for k, v in query_params(self.url).items():
            if is_secret_param(k) and v:
                out.append(v)
        return out

    # -- connection ------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> InputDriver:
        """Open the transport now (actions also connect on demand). Idempotent."""
        if self._connected:
            return self
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if not self._connected:
                await self._connect()
                self._loop = asyncio.get_running_loop()
                self._connected = True
        return self

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the transport was opened on (None before the first connect)."""
        return self._loop

    async def aclose(self) -> None:
        if self._connected:
            self._connected = False
            await self._close()

    def forget_connection(self) -> None:
        """Mark the driver unconnected without closing the transport: for an owner whose
        loop is gone (the transport went with it); the next action reconnects."""
        self._connected = False

    async def __aenter__(self) -> InputDriver:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Blocking close for scripts and notebook cells."""
        run_sync(self.aclose())

    def owned_by(self, release: Callable[[InputDriver], None]) -> None:
        """Hand the driver's lifetime to a hub: leaving a ``with`` block then calls
        ``release(self)`` (one reference given back) instead of :meth:`close`."""
        self._release_to: Callable[[InputDriver], None] | None = release

    def __enter__(self) -> InputDriver:
        """``with open_driver(url) as drv:`` holds the reference just taken."""
        return self

    def __exit__(self, *exc: object) -> None:
        release = getattr(self, "_release_to", None)
        if release is not None:
            release(self)
        else:
            self.close()

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

    def check_point(self, x: float, y: float) -> None:
        """Refuse a point that is not a finite number pair or lies outside the frame."""
        if not (isinstance(x, int | float) and isinstance(y, int | float)
                and math.isfinite(x) and math.isfinite(y)):
            raise CoordinateError(f"{self.display_url}: point ({x!r}, {y!r}) is not a pair of numbers")
        if self.frame_size is not None:
            fw, fh = self.frame_size
            if not (0 <= x < fw and 0 <= y < fh):
                raise CoordinateError(
                    f"{self.display_url}: point ({x:g}, {y:g}) is outside the {fw}x{fh} frame"
                )
        elif x < 0 or y < 0:
            raise CoordinateError(f"{self.display_url}: point ({x:g}, {y:g}) is negative")

    def map_point(self, x: float, y: float) -> tuple[int, int]:
        """Frame pixels → target pixels, refusing points outside the frame.

        The target's size may only be known once connected (VNC), so actions map their
        points after connecting.
        """
        self.check_point(x, y)
        return self.calibration.apply(x, y)

    # -- arbitration -----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def session(self, timeout: float | None = None) -> AsyncIterator[InputDriver]:
        """Hold the target for an atomic action sequence (re-entrant within one task).

        Waiters are served in arrival order (asyncio.Lock is FIFO). Every action takes
        the session too, so a single action from another flow waits until the holder's
        sequence is finished instead of landing in the middle of it.
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
            async with asyncio.timeout(timeout):
                await owner.lock.acquire()
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
        secrets = [x for x in self.secrets() if x]
        if not secrets:
            return args

        def clean(v: Any) -> Any:
            if isinstance(v, str):
                for sec in secrets:
                    v = v.replace(sec, "***")
                return v
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return v

        return {k: clean(v) for k, v in args.items()}

    def _clean(self, text: str) -> str:
        for sec in self.secrets():
            if sec:
                text = text.replace(sec, "***")
        return text

    async def _do(self, action: str, args: dict[str, Any], op: Callable[[], Any],
                  retry: bool | None = None, timeout: float | None = None) -> None:
        """Run one action with connect, timeout, safe retries and an audit record.

        Transport failures (``ConnectionError``/``OSError``, or a
        :class:`DriverConnectionError` not marked ``transient = False``) drop the
        connection; the next attempt reconnects. Only actions safe to repeat (moves, key
        and button releases), or those whose caller asks (``retry=True``), are retried.
        """
        settings = get_settings().input
        safe = retry if retry is not None else action in SAFE_TO_RETRY
        retries = settings.retries if safe else 0
        timeout = settings.action_timeout if timeout is None else timeout
        start = time.monotonic()
        started = time.time()
        error: BaseException | None = None
        attempts = 0
        pressed: list[tuple[str, str]] = []
        pressed_token = _PRESSED.set(pressed)
        try:
            for attempt in range(retries + 1):
                attempts = attempt + 1
                transient = False
                try:
                    await self.connect()
                    await asyncio.wait_for(op(), timeout)
                    error = None
                    break
                except InputStoppedError:
                    raise
                except TimeoutError as exc:
                    error = DriverConnectionError(
                        f"{self.display_url}: {action} timed out after {timeout:g} s")
                    error.__cause__ = exc
                    transient = True
                except InputError as exc:
                    error = exc
                    transient = isinstance(exc, DriverConnectionError) and getattr(exc, "transient", True)
                except (ConnectionError, OSError, EOFError) as exc:
                    error = exc
                    transient = True
                if not transient:
                    break
                await self._drop()
                if attempt < retries:
                    log.info("%s: %s failed (%s); retry %d of %d", self.display_url, action,
                             self._clean(str(error)), attempt + 1, retries)
                    await asyncio.sleep(settings.retry_delay)
        except BaseException as exc:  # cut by a stop, cancelled, or a driver bug
            bound = current_gate()
            gate = bound[0] if bound is not None else None
            cut = gate is not None and gate.stopped
            released: list[str] = []
            if cut or isinstance(exc, asyncio.CancelledError):
                # leave no key or button down: all the stopped run holds, else this action's
                try:
                    released = await self.release_held(gate if cut else None,
                                                       None if cut else pressed)
                except BaseException:  # cancelled again: what is left stays recorded
                    log.warning("%s: %s: could not release what it held", self.display_url,
                                action)
            why = "stopped: the run was stopped" if cut else (
                "cancelled" if isinstance(exc, asyncio.CancelledError) else
                f"{type(exc).__name__}: {self._clean(str(exc))}")
            rec_args = self._redact_args(args)
            if released:
                rec_args = {**rec_args, "released": released}
            self._emit(ActionRecord(time.time(), self.display_url, action, rec_args, False,
                                    (time.monotonic() - start) * 1000,
                                    f"{self.display_url}: {action}: {why}", started, cut))
            if isinstance(exc, InputStoppedError):
                raise InputStoppedError(f"{self.display_url}: {action}: {why}") from None
            raise
        finally:
            _PRESSED.reset(pressed_token)
        latency = (time.monotonic() - start) * 1000
        if error is not None and not isinstance(error, InputError):
            wrapped = DriverConnectionError(
                f"{self.display_url}: {action} failed: {self._clean(str(error)) or type(error).__name__}")
            wrapped.__cause__ = error
            error = wrapped
        if error is not None:
            # name the action the caller asked for, not only the primitive that failed
            prefix = f"{self.display_url}: "
            msg = self._clean(str(error))
            body = msg[len(prefix):] if msg.startswith(prefix) else msg
            if not body.startswith(f"{action}:") and not body.startswith(f"{action} "):
                body = f"{action}: {body}"
            if attempts > 1:
                body += f" (after {attempts} attempts)"
            error.args = (prefix + body,)
        self._emit(ActionRecord(time.time(), self.display_url, action, self._redact_args(args),
                                error is None, latency,
                                None if error is None else self._clean(str(error)), started))
        if error is not None:
            raise error

    def _emit(self, record: ActionRecord) -> None:
        """Give ``record`` to every audit callback (a failing one is logged, not raised)."""
        for cb in list(self._audit):
            try:
                cb(record)
            except Exception:
                log.exception("audit callback failed")

    async def _drop(self) -> None:
        """Forget a broken connection so the next action reconnects."""
        if self._connected:
            self._connected = False
            with contextlib.suppress(Exception):
                await self._close()

    # -- public API (frame pixels) -----------------------------------------------------
    def _check_xy(self, x: float | None, y: float | None, action: str) -> bool:
        """Whether a point was given; both coordinates or neither."""
        if (x is None) != (y is None):
            raise CoordinateError(f"{self.display_url}: {action}: give both x and y, or neither")
        if x is not None and y is not None:
            self.check_point(x, y)
            return True
        return False

    def _check_button(self, button: str, action: str) -> None:
        if button not in ("left", "right", "middle"):
            raise UnsupportedActionError(
                f"{self.display_url}: {action}: unknown mouse button {button!r} "
                "(left, right or middle)")
        if button not in self.capabilities.buttons:
            raise UnsupportedActionError(
                f"{self.display_url}: {action}: this driver has no {button} mouse button")

    async def move(self, x: float, y: float) -> None:
        """Move the pointer to ``(x, y)`` in frame pixels (retried on transport errors)."""
        self.check_point(x, y)
        async with self.session():
            await self._do("move", {"x": x, "y": y},
                           lambda: self._send_move(*self.map_point(x, y)))

    async def press(self, button: MouseButton = "left") -> None:
        """Press and hold a mouse button where the pointer is."""
        self._check_button(button, "press")
        async with self.session():
            await self._do("press", {"button": button}, lambda: self._send_button(button, True))

    async def release(self, button: MouseButton = "left") -> None:
        """Release a mouse button (retried on transport errors)."""
        self._check_button(button, "release")
        async with self.session():
            await self._do("release", {"button": button},
                           lambda: self._send_button(button, False))

    async def click(self, x: float | None = None, y: float | None = None,
                    button: MouseButton = "left", double: bool = False,
                    retry: bool = False) -> None:
        """Click at ``(x, y)`` (frame pixels) or where the pointer is.

        Not retried on transport errors unless ``retry=True`` (a repeated click may act
        twice).
        """
        action = "double_click" if double else "click"
        self._check_button(button, action)
        at = self._check_xy(x, y, action)

        async def op() -> None:
            if at:
                await self._send_move(*self.map_point(x, y))  # type: ignore[arg-type]
            for i in range(2 if double else 1):
                if i:
                    await asyncio.sleep(0.03)
                async with self._unit():  # press and release pass the gate together
                    await self._send_button(button, True)
                    await self._send_button(button, False)

        async with self.session():
            await self._do(action, {"x": x, "y": y, "button": button}, op, retry=retry)

    async def drag(self, x1: float, y1: float, x2: float, y2: float,
                   button: MouseButton = "left", steps: int = 10) -> None:
        """Press at ``(x1, y1)``, move in ``steps`` steps to ``(x2, y2)``, release."""
        self._check_button(button, "drag")
        if not 1 <= steps <= 1000:
            raise InputError(f"{self.display_url}: drag: steps must be 1..1000, got {steps}")
        self.check_point(x1, y1)
        self.check_point(x2, y2)

        async def op() -> None:
            a, b = self.map_point(x1, y1), self.map_point(x2, y2)
            await self._send_move(*a)
            await self._send_button(button, True)
            try:
                for i in range(1, steps + 1):
                    await self._send_move(round(a[0] + (b[0] - a[0]) * i / steps),
                                          round(a[1] + (b[1] - a[1]) * i / steps))
                    await asyncio.sleep(0.005)
            finally:
                if button in self._held_buttons:
                    await self._send_button(button, False)

        async with self.session():
            await self._do("drag", {"from": [x1, y1], "to": [x2, y2], "button": button}, op,
                           timeout=get_settings().input.action_timeout + steps * 0.05)

    async def scroll(self, dy: int, dx: int = 0, x: float | None = None,
                     y: float | None = None) -> None:
        """Turn the wheel ``dy`` notches (positive: down, towards the user, like a
        browser's ``deltaY``; negative: up) and ``dx`` notches (positive: right),
        optionally after moving to ``(x, y)`` in frame pixels."""
        if not isinstance(dy, int) or not isinstance(dx, int):
            raise InputError(f"{self.display_url}: scroll: notches must be integers, got {dy!r}, {dx!r}")
        if dy and not self.capabilities.scroll:
            raise UnsupportedActionError(f"{self.display_url}: scroll: this driver has no wheel")
        if dx and not self.capabilities.hscroll:
            raise UnsupportedActionError(
                f"{self.display_url}: scroll: this driver cannot scroll horizontally (dx={dx})")
        at = self._check_xy(x, y, "scroll")

        async def op() -> None:
            if at:
                await self._send_move(*self.map_point(x, y))  # type: ignore[arg-type]
            await self._send_scroll(dx, dy)

        async with self.session():
            await self._do("scroll", {"dx": dx, "dy": dy, "x": x, "y": y}, op)

    async def key(self, name: str) -> None:
        """Press and release one key (``Enter``, ``a``, ``F5``, …)."""
        from .keys import normalize_key

        k = normalize_key(name, self, action="key")

        async def op() -> None:
            async with self._unit():
                await self._send_key(k, True)
                await self._send_key(k, False)

        async with self.session():
            await self._do("key", {"key": name}, op)

    async def key_down(self, name: str) -> None:
        """Press and hold one key until :meth:`key_up`."""
        from .keys import normalize_key

        if not self.capabilities.key_down_up:
            raise UnsupportedActionError(f"{self.display_url}: key_down: this driver cannot hold keys")
        k = normalize_key(name, self, action="key_down")
        async with self.session():
            await self._do("key_down", {"key": name}, lambda: self._send_key(k, True))

    async def key_up(self, name: str) -> None:
        """Release one key (retried on transport errors)."""
        from .keys import normalize_key

        if not self.capabilities.key_down_up:
            raise UnsupportedActionError(f"{self.display_url}: key_up: this driver cannot hold keys")
        k = normalize_key(name, self, action="key_up")
        async with self.session():
            await self._do("key_up", {"key": name}, lambda: self._send_key(k, False))

    async def hotkey(self, *names: str) -> None:
        """Press keys in order and release them in reverse: ``hotkey("ctrl+a")`` or
        ``hotkey("ctrl", "a")``."""
        from .keys import parse_hotkey

        keys: Sequence[str] = parse_hotkey(names, self)

        async def op() -> None:
            pressed: list[str] = []
            async with self._unit():  # the whole combination passes the gate together
                try:
                    for k in keys:
                        await self._send_key(k, True)
                        pressed.append(k)
                finally:
                    for k in reversed(pressed):
                        if k in self._held_keys:
                            await self._send_key(k, False)

        async with self.session():
            await self._do("hotkey", {"keys": list(names)}, op)

    async def type_text(self, text: str, retry: bool = False, secret: bool = False) -> None:
        """Type ``text``; raises :class:`UnsupportedActionError` naming characters the
        driver cannot type, before sending anything. ``secret=True`` keeps the text out
        of the audit trail (only its length is recorded)."""
        from .keys import check_typable

        check_typable(text, self, secret=secret)
        settings = get_settings().input
        budget = settings.action_timeout + len(text) * (settings.type_interval + 0.1)
        args: dict[str, Any] = ({"text": "***", "length": len(text)} if secret
                                else {"text": text})
        async with self.session():
            await self._do("type", args, lambda: self._send_text(text), retry=retry,
                           timeout=budget)

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

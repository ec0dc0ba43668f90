"""VNC / RFB input (``vnc://[password@]host:port``), on asyncvnc.

asyncvnc does the RFB handshake and authentication; this driver then writes RFB
``PointerEvent`` and ``KeyEvent`` messages itself and awaits ``drain()`` after each
primitive (asyncvnc buffers writes until then). A background task reads what the
server sends (clipboard updates, bells) so its socket never fills up, and notices when
the server goes away; the next action then reconnects, retrying refused connections
until ``input.connect_timeout`` has passed (a first connection to a closed port fails at
once).

Keys are X keysyms. Text is typed one keysym per character; characters outside
Latin-1 are sent as X11 Unicode keysyms (``0x01000000 + code point``), which x11vnc
maps onto a spare keycode by changing the keyboard mapping; the driver waits
``_UNICODE_SETTLE`` seconds after each such key so the application has read the new
mapping before the next character remaps a keycode. Add ``?unicode=0`` for servers that do not accept them: the
driver then refuses such text with a clear error instead of dropping it.

URL forms: ``vnc://host:5900``, ``vnc://secret@host:5900`` (VNC password),
``vnc://user:secret@host`` (servers that ask for a user). The target size is the
server's framebuffer size.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from typing import Any, ClassVar

import param

from .._errors import CoordinateError, DriverConnectionError, UnsupportedActionError
from .._options import url_option
from .._rfb import rfb_connect
from .._settings import get_settings
from .._urls import vnc_address
from ._driver import DriverCapabilities, InputDriver, MouseButton, permanent

__all__ = ["VncDriver", "keysym_code"]

log = logging.getLogger("kvmrpa.kvm.vnc")

_BUTTON_MASK = {"left": 1, "middle": 2, "right": 4}
_CONTROL = {"\n": "Return", "\r": "Return", "\t": "Tab", "\b": "BackSpace"}
_UNICODE_SETTLE = 0.03  # seconds: x11vnc remaps a spare keycode for each Unicode keysym


def _key_codes() -> dict[str, int]:
    from asyncvnc import key_codes

    return key_codes


def keysym_code(name: str) -> int | None:
    """The X keysym number of a canonical key name (``Return``, ``a``, ``U4E2D``)."""
    codes = _key_codes()
    if name in codes:
        return codes[name]
    m = re.fullmatch(r"U([0-9A-F]{4,6})", name)
    if m:
        cp = int(m.group(1), 16)
        if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF:
            return cp
        if cp <= 0x10FFFF:
            return 0x01000000 + cp
    return None


class VncDriver(InputDriver):
    """Keyboard and pointer over RFB."""

    scheme: ClassVar[str] = "vnc"
    capabilities: ClassVar[DriverCapabilities] = DriverCapabilities(unicode_text=True)

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.host, self.port, self._user, self._password = vnc_address(url)
        if not url_option(url, "unicode", param.Boolean(default=True)):
            self.capabilities = dataclasses.replace(type(self).capabilities, unicode_text=False)  # type: ignore[misc]
        self._client: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._size: tuple[int, int] | None = None
        self._ever_connected = False
        self._buttons = 0
        self._pos = (0, 0)
        #: how many times the transport was (re)opened
        self.connections = 0

    def target_size(self) -> tuple[int, int] | None:
        return self._size

    # -- transport -------------------------------------------------------------------
    async def _handshake(self, timeout: float) -> Any:
        return await rfb_connect(self.host, self.port, self._user, self._password, timeout)

    async def _connect(self) -> None:
        timeout = get_settings().input.connect_timeout
        deadline = time.monotonic() + timeout
        delay = 0.05
        where = f"{self.display_url}: connect"
        while True:
            remaining = deadline - time.monotonic()
            try:
                client = await self._handshake(max(remaining, 0.01))
                break
            except TimeoutError:
                raise DriverConnectionError(
                    f"{where}: no VNC handshake within {timeout:g} s (host unreachable or not a VNC server?)"
                ) from None
            except PermissionError as exc:
                raise permanent(DriverConnectionError(
                    f"{where}: authentication failed ({exc}); check the password")) from None
            except ValueError as exc:
                raise permanent(DriverConnectionError(f"{where}: {exc}")) from None
            except (ConnectionRefusedError, asyncio.IncompleteReadError, ConnectionResetError) as exc:
                # Refused: the server is not (yet) listening. After a drop, keep trying
                # until the connect timeout so a restarting server is picked up.
                if not self._ever_connected or deadline - time.monotonic() <= delay:
                    why = ("connection refused (is the VNC server running?)"
                           if isinstance(exc, ConnectionRefusedError)
                           else "the server closed the connection during the handshake")
                    raise DriverConnectionError(f"{where}: {why}") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            except OSError as exc:
                raise DriverConnectionError(f"{where}: {exc.strerror or exc}") from None
        self._client = client
        self._size = (client.video.width, client.video.height)
        self._buttons = 0
        self._ever_connected = True
        self.connections += 1
        self._pump = asyncio.get_running_loop().create_task(self._read_forever(client))
        log.debug("%s: connected, screen %dx%d", self.display_url, *self._size)

    async def _read_forever(self, client: Any) -> None:
        """Consume server messages; on EOF mark the connection lost."""
        try:
            while True:
                await client.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%s: server connection lost (%s)", self.display_url, type(exc).__name__)
        finally:
            if self._client is client:
                self._client = None
                self._connected = False
            client.writer.close()

    async def _close(self) -> None:
        client, self._client = self._client, None
        pump, self._pump = self._pump, None
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
        if client is not None:
            client.writer.close()
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(client.writer.wait_closed(), 1.0)

    async def _send(self, data: bytes) -> None:
        await asyncio.sleep(0)  # let the reader task see a closed connection first
        client = self._client
        if client is None or client.writer.is_closing():
            raise ConnectionResetError("the VNC server closed the connection")
        client.writer.write(data)
        await client.writer.drain()

    # -- capability hooks ------------------------------------------------------------
    def supports_key(self, key: str) -> bool:
        return keysym_code(key) is not None

    def extra_key(self, name: str) -> str | None:
        return name if name in _key_codes() else None

    def can_type(self, ch: str) -> bool:
        if ch in _CONTROL:
            return True
        cp = ord(ch)
        if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF:
            return True
        return self.capabilities.unicode_text and ch.isprintable()

    # -- primitives ------------------------------------------------------------------
    def _pointer(self) -> bytes:
        x, y = self._pos
        return b"\x05" + bytes((self._buttons,)) + x.to_bytes(2, "big") + y.to_bytes(2, "big")

    async def _move(self, x: int, y: int) -> None:
        size = self._size
        if size is not None and not (0 <= x < size[0] and 0 <= y < size[1]):
            raise CoordinateError(
                f"{self.display_url}: move: target point ({x}, {y}) is outside the "
                f"{size[0]}x{size[1]} screen (check the calibration)")
        self._pos = (x, y)
        await self._send(self._pointer())

    async def _button(self, button: MouseButton, down: bool) -> None:
        mask = _BUTTON_MASK[button]
        self._buttons = self._buttons | mask if down else self._buttons & ~mask
        await self._send(self._pointer())

    async def _scroll(self, dx: int, dy: int) -> None:
        data = b""
        for count, mask in ((dy, 16 if dy > 0 else 8), (dx, 64 if dx > 0 else 32)):
            for _ in range(abs(count)):
                self._buttons |= mask
                data += self._pointer()
                self._buttons &= ~mask
                data += self._pointer()
        await self._send(data)

    async def _key(self, key: str, down: bool) -> None:
        code = keysym_code(key)
        if code is None:
            raise UnsupportedActionError(f"{self.display_url}: key: no X keysym for {key!r}")
        await self._send(b"\x04" + bytes((1 if down else 0,)) + b"\x00\x00" + code.to_bytes(4, "big"))

    async def _type_text(self, text: str) -> None:
        interval = get_settings().input.type_interval
        for ch in text:
            code = keysym_code(_CONTROL[ch]) if ch in _CONTROL else ord(ch)
            remapped = code is None or not (0x20 <= code <= 0xFF or ch in _CONTROL)
            if remapped:
                code = 0x01000000 + ord(ch)
            assert code is not None
            sym = code.to_bytes(4, "big")
            await self._send(b"\x04\x01\x00\x00" + sym + b"\x04\x00\x00\x00" + sym)
            pause = max(interval, _UNICODE_SETTLE) if remapped else interval
            if pause:
                await asyncio.sleep(pause)

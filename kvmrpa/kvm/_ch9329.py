"""CH9329 serial-to-USB-HID bridge (``ch9329:///dev/ttyUSB0?baud=9600``).

The CH9329 is a USB keyboard + absolute mouse on the target's USB port, driven over a
UART. Every command is one frame::

    0x57 0xAB | address | command | length | data… | checksum

where ``checksum`` is the low byte of the sum of every byte before it. The chip answers
each command with a frame of the same shape whose command byte is ``command | 0x80``
(success; for send commands one status byte, 0x00 = done) or ``command | 0xC0`` (error,
with a status byte: 0xE1 byte timeout, 0xE2 bad header, 0xE3 bad command, 0xE4 bad
checksum, 0xE5 bad parameter, 0xE6 operation failed). Commands used here:

* 0x01 ``GET_INFO`` on connect (is a chip answering on this port at this baud rate?);
* 0x02 keyboard report: modifier byte, 0x00, six HID usage IDs;
* 0x04 absolute mouse report: 0x02, buttons, X and Y little-endian in 0..4095 across
  the screen, wheel as a signed byte (positive = up).

Every acknowledgement is read and checked; a missing, truncated or corrupted one, or an
error status, raises an error naming the port, the command and what came back. Serial
I/O is blocking (pyserial) and runs in the runtime's worker pool, one command at a time.

URL parameters: ``baud`` (9600 by default, the chip's factory setting), ``addr`` (0),
``size=WxH`` the target screen (else the frame size), ``ack_timeout`` seconds (0.5).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from .._errors import (
    CoordinateError,
    DriverConnectionError,
    InputError,
    UnsupportedActionError,
    UrlError,
)
from .._runtime import get_runtime
from .._urls import parse_size, query_params, split_url
from ._driver import DriverCapabilities, InputDriver, MouseButton
from ._hid import MODIFIER_BITS, USB_USAGE, in_table

__all__ = [
    "CMD_GET_INFO",
    "CMD_KEYBOARD",
    "CMD_MOUSE_ABS",
    "Ch9329Driver",
    "checksum",
    "encode_frame",
]

log = logging.getLogger("kvmrpa.kvm.ch9329")

HEADER = b"\x57\xab"
CMD_GET_INFO = 0x01
CMD_KEYBOARD = 0x02
CMD_MOUSE_ABS = 0x04
_BAUDS = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200)
_STATUS = {
    0xE1: "byte timeout on the chip's UART",
    0xE2: "bad frame header",
    0xE3: "unknown command",
    0xE4: "checksum mismatch",
    0xE5: "bad parameter",
    0xE6: "operation failed",
}
_LINE_ERRORS = {0xE1, 0xE2, 0xE4}  # the frame was damaged on the wire: safe to resend
_BUTTON_BITS = {"left": 0x01, "right": 0x02, "middle": 0x04}
_CMD_NAMES = {CMD_GET_INFO: "get_info", CMD_KEYBOARD: "keyboard report",
              CMD_MOUSE_ABS: "mouse report"}


def checksum(data: bytes) -> int:
    """Low byte of the sum of ``data``."""
    return sum(data) & 0xFF


def encode_frame(address: int, command: int, data: bytes) -> bytes:
    """One CH9329 frame with header, length and checksum."""
    if len(data) > 64:
        raise ValueError(f"CH9329 frames carry at most 64 data bytes, got {len(data)}")
    body = HEADER + bytes((address & 0xFF, command & 0xFF, len(data))) + bytes(data)
    return body + bytes((checksum(body),))


class Ch9329Driver(InputDriver):
    """Keyboard and absolute mouse through a CH9329 on a serial port."""

    scheme: ClassVar[str] = "ch9329"
    capabilities: ClassVar[DriverCapabilities] = DriverCapabilities(
        unicode_text=False, hscroll=False)

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        parts = split_url(url)
        self.port = parts.path or parts.netloc
        if not self.port:
            raise UrlError(f"{self.display_url}: no serial port (ch9329:///dev/ttyUSB0)")
        q = query_params(url)
        try:
            self.baud = int(q.get("baud", "9600"))
            self.address = int(q.get("addr", "0"), 0)
            self.ack_timeout = float(q.get("ack_timeout", "0.5"))
        except ValueError as exc:
            raise UrlError(f"{self.display_url}: bad parameter: {exc}") from None
        if self.baud not in _BAUDS:
            raise UrlError(f"{self.display_url}: baud must be one of {', '.join(map(str, _BAUDS))}")
        if not 0 <= self.address <= 0xFF:
            raise UrlError(f"{self.display_url}: addr must be 0..255")
        if not 0.01 <= self.ack_timeout <= 10:
            raise UrlError(f"{self.display_url}: ack_timeout must be 0.01..10 s")
        self._size = parse_size(q["size"], "CH9329 screen size") if "size" in q else None
        self._serial: Any = None
        self._io: asyncio.Lock | None = None
        self._mods = 0
        self._keys: list[int] = []
        self._buttons = 0
        self._pos = (0, 0)
        #: the chip's reply to GET_INFO on connect (version, USB state, LEDs)
        self.info: bytes = b""

    def target_size(self) -> tuple[int, int] | None:
        return self._size or self.frame_size

    # -- transport -------------------------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        return await get_runtime().to_thread(fn, *args)

    def _open_blocking(self) -> Any:
        import serial

        try:
            return serial.serial_for_url(self.port, baudrate=self.baud, timeout=self.ack_timeout,
                                         write_timeout=max(1.0, self.ack_timeout))
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DriverConnectionError(f"{self.display_url}: cannot open serial port {self.port}: {exc}") from exc

    async def _connect(self) -> None:
        self._serial = await self._run(self._open_blocking)
        self._io = asyncio.Lock()
        try:
            self.info = await self._xfer(CMD_GET_INFO, b"", "connect")
        except BaseException:
            await self._close()
            raise
        self._mods, self._keys, self._buttons = 0, [], 0

    async def _close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            await self._run(ser.close)

    def _xfer_blocking(self, ser: Any, command: int, data: bytes, action: str) -> bytes:
        import serial

        what = f"{self.display_url}: {action}: {_CMD_NAMES.get(command, hex(command))}"
        try:
            ser.reset_input_buffer()
            ser.write(encode_frame(self.address, command, data))
            ser.flush()
            head = ser.read(5)
            if len(head) < 5:
                raise DriverConnectionError(
                    f"{what}: no acknowledgement from the CH9329 within {self.ack_timeout:g} s"
                    + (f" (got {head.hex(' ')})" if head else "")
                    + f" (port {self.port}, {self.baud} baud: powered, right port and baud?)")
            length = head[4]
            rest = ser.read(length + 1)
        except serial.SerialException as exc:
            raise DriverConnectionError(f"{what}: serial port error: {exc}") from exc
        frame = head + rest
        if head[:2] != HEADER:
            self._discard(ser)
            raise DriverConnectionError(f"{what}: corrupted acknowledgement (bad header): {frame.hex(' ')}")
        if len(rest) < length + 1:
            raise DriverConnectionError(f"{what}: truncated acknowledgement: {frame.hex(' ')}")
        if checksum(frame[:-1]) != frame[-1]:
            self._discard(ser)
            raise DriverConnectionError(
                f"{what}: corrupted acknowledgement (checksum {frame[-1]:#04x}, expected "
                f"{checksum(frame[:-1]):#04x}): {frame.hex(' ')}")
        reply, payload = head[3], rest[:-1]
        if reply == command | 0xC0:
            status = payload[0] if payload else -1
            text = _STATUS.get(status, f"status {status:#04x}")
            err_cls = DriverConnectionError if status in _LINE_ERRORS else InputError
            raise err_cls(f"{what}: the CH9329 reported an error: {text} ({status:#04x})")
        if reply != command | 0x80:
            self._discard(ser)
            raise DriverConnectionError(
                f"{what}: unexpected acknowledgement for command {reply:#04x}: {frame.hex(' ')}")
        if command != CMD_GET_INFO and payload[:1] not in (b"\x00",):
            status = payload[0] if payload else -1
            raise InputError(f"{what}: the CH9329 did not accept it (status {status:#04x})")
        return bytes(payload)

    @staticmethod
    def _discard(ser: Any) -> None:
        try:
            ser.reset_input_buffer()
        except Exception:  # the port may already be gone
            log.debug("could not flush the serial input", exc_info=True)

    async def _xfer(self, command: int, data: bytes, action: str) -> bytes:
        ser, io = self._serial, self._io
        if ser is None or io is None:
            raise DriverConnectionError(f"{self.display_url}: {action}: not connected")
        async with io:
            transfer = asyncio.ensure_future(
                self._run(self._xfer_blocking, ser, command, data, action))
            try:
                return await asyncio.shield(transfer)
            except asyncio.CancelledError:
                # The worker thread is still writing and reading the port: keep the line
                # until it is done (at most the ack/write timeouts), so the next command
                # cannot take this one's acknowledgement for its own.
                await asyncio.wait({transfer})
                if not transfer.cancelled():
                    transfer.exception()  # retrieved: the caller was cancelled anyway
                raise

    # -- reports ---------------------------------------------------------------------
    async def _send_keyboard(self, action: str) -> None:
        keys = (self._keys + [0] * 6)[:6]
        await self._xfer(CMD_KEYBOARD, bytes((self._mods, 0, *keys)), action)

    async def _send_mouse(self, action: str, wheel: int = 0) -> None:
        size = self.target_size()
        if size is None:
            raise CoordinateError(
                f"{self.display_url}: {action}: the target's size is unknown; give the frame "
                "size (open_driver(url, frame_size=...) or --frame-size) or ?size=WxH in the URL")
        x = min(4095, max(0, self._pos[0] * 4096 // size[0]))
        y = min(4095, max(0, self._pos[1] * 4096 // size[1]))
        data = bytes((0x02, self._buttons, x & 0xFF, x >> 8, y & 0xFF, y >> 8, wheel & 0xFF))
        await self._xfer(CMD_MOUSE_ABS, data, action)

    # -- primitives ------------------------------------------------------------------
    def supports_key(self, key: str) -> bool:
        return in_table(key, USB_USAGE)

    async def _move(self, x: int, y: int) -> None:
        self._pos = (x, y)
        await self._send_mouse("move")

    async def _button(self, button: MouseButton, down: bool) -> None:
        bit = _BUTTON_BITS[button]
        self._buttons = self._buttons | bit if down else self._buttons & ~bit
        await self._send_mouse("mouse_button")

    async def _scroll(self, dx: int, dy: int) -> None:
        wheel = -dy  # HID: positive is up; kvmrpa: positive dy is down
        while wheel:
            step = max(-127, min(127, wheel))
            await self._send_mouse("scroll", step)
            wheel -= step

    def _set_key(self, name: str, down: bool) -> None:
        if name in MODIFIER_BITS:
            bit = MODIFIER_BITS[name]
            self._mods = self._mods | bit if down else self._mods & ~bit
            return
        usage = USB_USAGE[name]
        if down and usage not in self._keys:
            if len(self._keys) >= 6:
                raise UnsupportedActionError(
                    f"{self.display_url}: key: cannot hold more than 6 keys at once (plus modifiers)")
            self._keys.append(usage)
        elif not down and usage in self._keys:
            self._keys.remove(usage)

    async def _key(self, key: str, down: bool) -> None:
        from .keys import keys_for_char, keysym_char

        if key in USB_USAGE:
            self._set_key(key, down)
        else:  # a shifted character such as "A" or "plus"
            base, shift = keys_for_char(keysym_char(key) or key, self)
            self._set_key(base, down)
            if shift:
                self._set_key("Shift_L", down)
        await self._send_keyboard("key")

"""CH9329 serial HID bridge through a pseudo-terminal pair and a device emulator thread
that checks every frame's checksum and answers like the chip."""

from __future__ import annotations

import asyncio
import os
import select
import threading
import tty
from collections.abc import Iterator
from typing import Any

import pytest

from kvmrpa import DriverConnectionError, InputError, UnsupportedActionError
from kvmrpa.kvm._ch9329 import Ch9329Driver, checksum, encode_frame


class Emulator:
    """The chip's side of the serial line.

    ``mode``: ``ok`` (acknowledge), ``silent`` (never answer), ``corrupt`` (bad checksum
    in the answer), ``reject`` (error frame, status 0xE5), ``garbage`` (bytes that are
    not a frame).
    """

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.mode = "ok"
        #: seconds the chip takes to answer; a frame arriving meanwhile is an overlap
        self.delay = 0.0
        self.overlaps = 0
        self.frames: list[tuple[int, int, bytes]] = []  # (address, command, data)
        self.bad_frames: list[bytes] = []
        self._stop = threading.Event()
        self._buf = b""
        self.thread = threading.Thread(target=self._serve, name="ch9329-emulator", daemon=True)
        self.thread.start()

    def _answer(self, addr: int, cmd: int, data: bytes) -> bytes:
        if self.mode == "silent":
            return b""
        if self.mode == "garbage":
            return b"\x00\x11\x22\x33\x44\x55\x66"
        if self.mode == "reject":
            return encode_frame(addr, cmd | 0xC0, b"\xe5")
        payload = bytes((0x30, 0x01, 0x00, 0, 0, 0, 0, 0)) if cmd == 0x01 else b"\x00"
        frame = encode_frame(addr, cmd | 0x80, payload)
        if self.mode == "corrupt":
            frame = frame[:-1] + bytes(((frame[-1] + 1) & 0xFF,))
        return frame

    def _serve(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = os.read(self.master, 1024)
            except OSError:
                return
            self._buf += chunk
            while True:
                start = self._buf.find(b"\x57\xab")
                if start < 0 or len(self._buf) - start < 6:
                    break
                buf = self._buf[start:]
                length = buf[4]
                if len(buf) < 6 + length:
                    break
                frame, self._buf = buf[:6 + length], buf[6 + length:]
                if checksum(frame[:-1]) != frame[-1]:
                    self.bad_frames.append(frame)
                    os.write(self.master, encode_frame(frame[2], frame[3] | 0xC0, b"\xe4"))
                    continue
                self.frames.append((frame[2], frame[3], frame[5:5 + length]))
                answer = self._answer(frame[2], frame[3], frame[5:5 + length])
                if self.delay:
                    self._stop.wait(self.delay)
                    if self._buf or select.select([self.master], [], [], 0)[0]:
                        self.overlaps += 1  # the host sent more before our answer
                if answer:
                    os.write(self.master, answer)

    def reports(self, cmd: int) -> list[bytes]:
        return [d for _a, c, d in self.frames if c == cmd]

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def chip() -> Iterator[Emulator]:
    emu = Emulator()
    try:
        yield emu
    finally:
        emu.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_frame_encoding() -> None:
    frame = encode_frame(0, 0x02, bytes((0x02, 0, 0x04, 0, 0, 0, 0, 0)))
    assert frame[:5] == bytes((0x57, 0xAB, 0x00, 0x02, 0x08))
    assert frame[-1] == (sum(frame[:-1]) & 0xFF)
    # the GET_INFO frame from the datasheet: 57 AB 00 01 00 03
    assert encode_frame(0, 0x01, b"") == bytes.fromhex("57ab00010003")


def test_mouse_and_keyboard_reports(chip: Emulator, fast_input: Any) -> None:
    drv = Ch9329Driver(f"ch9329://{chip.path}?baud=115200&size=1920x1080", frame_size=(1280, 720))

    async def main() -> None:
        await drv.click(640, 360)
        await drv.type_text("aB!")
        await drv.hotkey("ctrl", "alt", "Delete")
        await drv.scroll(2)
        await drv.aclose()

    run(main())
    assert chip.bad_frames == []  # every frame we sent had a valid checksum
    assert chip.frames[0][1] == 0x01  # GET_INFO on connect
    mouse = chip.reports(0x04)
    # centre: x = 960*4096/1920 = 2048 -> 00 08 little-endian; y = 540*4096/1080 = 2048
    assert mouse[0] == bytes((0x02, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00))
    assert mouse[1][1] == 0x01 and mouse[2][1] == 0x00  # left down, up
    assert mouse[3] == bytes((0x02, 0x00, 0x00, 0x08, 0x00, 0x08, 0xFE))  # wheel -2 = down 2
    keys = [(d[0], d[2]) for d in chip.reports(0x02)]
    # a; then B as Shift down, Shift+b, Shift, nothing; then "!" as Shift + 1 (0x1E)
    assert keys[:10] == [(0x00, 0x04), (0x00, 0x00),
                         (0x02, 0x00), (0x02, 0x05), (0x02, 0x00), (0x00, 0x00),
                         (0x02, 0x00), (0x02, 0x1E), (0x02, 0x00), (0x00, 0x00)]
    # ctrl+alt+Delete: modifiers accumulate, Delete = 0x4C, then released in reverse
    assert keys[-6:] == [(0x01, 0x00), (0x05, 0x00), (0x05, 0x4C), (0x05, 0x00), (0x01, 0x00),
                         (0x00, 0x00)]


def test_missing_acknowledgement_is_a_clear_error(chip: Emulator, fast_input: Any) -> None:
    drv = Ch9329Driver(f"ch9329://{chip.path}?ack_timeout=0.2&size=100x100")
    run(drv.connect())
    chip.mode = "silent"
    with pytest.raises(DriverConnectionError) as err:
        run(drv.click(10, 10))
    msg = str(err.value)
    assert "no acknowledgement from the CH9329 within 0.2 s" in msg and chip.path in msg
    assert "click" in msg


def test_corrupted_or_rejected_acknowledgements(chip: Emulator, fast_input: Any) -> None:
    drv = Ch9329Driver(f"ch9329://{chip.path}?size=100x100")
    run(drv.connect())
    chip.mode = "corrupt"
    with pytest.raises(DriverConnectionError, match=r"corrupted acknowledgement \(checksum"):
        run(drv.key("a"))
    n = len(chip.frames)
    with pytest.raises(DriverConnectionError, match=r"corrupted.*\(after 3 attempts\)"):
        run(drv.key_up("a"))  # a release is retried, reopening the port each time
    # each attempt reopened the port and asked GET_INFO, whose answer was corrupted too
    assert [f[1] for f in chip.frames[n:]] == [0x01, 0x01, 0x01]
    chip.mode = "garbage"
    with pytest.raises(DriverConnectionError, match="bad header"):
        run(drv.click(1, 1))
    chip.mode = "reject"
    with pytest.raises(InputError, match=r"reported an error: bad parameter \(0xe5\)"):
        run(drv.key("b"))
    chip.mode = "ok"
    run(drv.key("c"))
    assert chip.reports(0x02)[-2][2] == 0x06  # recovered: 'c' went through


def test_bad_port_and_rollover(chip: Emulator, fast_input: Any) -> None:
    with pytest.raises(DriverConnectionError, match="cannot open serial port /dev/kvmrpa-no-such-tty"):
        run(Ch9329Driver("ch9329:///dev/kvmrpa-no-such-tty").key("a"))
    drv = Ch9329Driver(f"ch9329://{chip.path}")

    async def hold_seven() -> None:
        for k in "abcdefg":
            await drv.key_down(k)

    with pytest.raises(UnsupportedActionError, match="more than 6 keys"):
        run(hold_seven())
    with pytest.raises(UnsupportedActionError, match="horizontally"):
        run(drv.scroll(0, dx=1))


def test_a_cancelled_command_keeps_the_line_until_its_acknowledgement(
        chip: Emulator, fast_input: Any) -> None:
    # A flow stopped while the chip is still answering must not let the next command
    # onto the wire before that answer: it would read the other command's
    # acknowledgement as its own.
    drv = Ch9329Driver(f"ch9329://{chip.path}?ack_timeout=2&size=100x100")

    async def main() -> None:
        await drv.connect()
        chip.delay = 0.3
        sent = len(chip.frames)
        task = asyncio.create_task(drv.move(10, 10))
        while len(chip.frames) == sent:  # the move is on the wire, not yet answered
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await drv.key("a")  # must wait for the move's acknowledgement first
        await drv.aclose()

    run(main())
    assert chip.overlaps == 0
    assert [c for _a, c, _d in chip.frames[-3:]] == [0x04, 0x02, 0x02]

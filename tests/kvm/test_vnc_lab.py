"""The VNC driver against the real lab: Xvfb + the Tk test app + x11vnc on loopback.

Every action is verified through the application's own event log.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kvmrpa import DriverConnectionError
from kvmrpa.kvm import open_driver, release_driver
from kvmrpa.kvm._vnc import VncDriver
from kvmrpa.lab import LabApp, ManagedProcess, XvfbDisplay, free_port

from ._support import closed_port

pytestmark = pytest.mark.lab


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def x11vnc(display: XvfbDisplay, port: int, *extra: str) -> Iterator[ManagedProcess]:
    """Our own x11vnc on a fixed port (so it can be restarted on the same URL)."""
    exe = shutil.which("x11vnc")
    assert exe, "x11vnc is not installed (scripts/setup.sh)"
    proc = ManagedProcess("x11vnc-kvm-test", [
        exe, "-display", display.display, "-rfbport", str(port), "-localhost", "-forever",
        "-shared", "-noxdamage", "-nonap", "-quiet", "-norc", "-no6", *(extra or ("-nopw",))],
        env=display.env)
    proc.start()
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            proc.check_alive()
            assert time.monotonic() < deadline, f"x11vnc did not listen on {port}: {proc.log_tail()}"
            time.sleep(0.05)
        yield proc
    finally:
        proc.stop()
        proc.remove_log()


@pytest.fixture
def vnc(lab_vnc: str, lab_app: LabApp, fast_input: Any) -> Iterator[VncDriver]:
    drv = open_driver(lab_vnc, frame_size=(1280, 720))
    try:
        assert isinstance(drv, VncDriver)
        yield drv
    finally:
        release_driver(drv)


def test_click_a_button(vnc: VncDriver, lab_app: LabApp) -> None:
    x, y = lab_app.element_centre("ok")
    vnc.sync.click(x, y)
    assert lab_app.wait_event("button")["name"] == "ok"
    assert vnc.target_size() == (1280, 720)
    lab_app.mark()
    x, y = lab_app.element_centre("confirm")
    vnc.sync.click(x, y, button="right")
    ev = lab_app.wait_event("click")
    assert ev["button"] == 3 and (ev["x"], ev["y"]) == (x, y)
    vnc.sync.scroll(2, x=x, y=y)
    assert lab_app.wait_event("scroll")["direction"] in ("down", 5, "5")


def test_click_through_calibration(lab_vnc: str, lab_app: LabApp, fast_input: Any) -> None:
    # coordinates from a half-resolution capture (640x360) land on the 1280x720 screen
    drv = open_driver(lab_vnc + "?capture=half", frame_size=(640, 360))
    try:
        x, y = lab_app.element_centre("cancel")
        drv.sync.click(x / 2, y / 2)
        assert lab_app.wait_event("button")["name"] == "cancel"
    finally:
        release_driver(drv)


def test_type_ascii_and_unicode_into_the_entry(vnc: VncDriver, lab_app: LabApp) -> None:
    x, y = lab_app.element_centre("entry")
    vnc.sync.click(x, y)
    vnc.sync.type_text("Hello, kvmrpa! ~{x}@#")
    lab_app.wait_event(lambda e: e["type"] == "entry" and e["text"] == "Hello, kvmrpa! ~{x}@#")
    vnc.sync.type_text(" 测试3")  # X11 Unicode keysyms
    lab_app.wait_event(lambda e: e["type"] == "entry" and e["text"].endswith("! ~{x}@# 测试3"))


def test_hotkey_and_keys(vnc: VncDriver, lab_app: LabApp) -> None:
    x, y = lab_app.element_centre("entry")
    vnc.sync.click(x, y)
    vnc.sync.hotkey("ctrl+a")
    ev = lab_app.wait_event(lambda e: e["type"] == "key" and e["keysym"] == "a")
    assert "ctrl" in ev["modifiers"]
    vnc.sync.key("F5")
    lab_app.wait_event(lambda e: e["type"] == "key" and e["keysym"] == "F5")
    vnc.sync.key("ENTER")
    lab_app.wait_event(lambda e: e["type"] == "key" and e["keysym"] == "Return")


def test_server_killed_and_restarted_driver_reconnects(
        lab_display: XvfbDisplay, lab_app: LabApp, fast_input: Any) -> None:
    fast_input.connect_timeout = 8.0  # a reconnect keeps trying while x11vnc comes back
    port = free_port()
    drv = VncDriver(f"vnc://127.0.0.1:{port}", frame_size=(1280, 720))
    try:
        ok = lab_app.element_centre("ok")
        with x11vnc(lab_display, port):
            drv.sync.click(*ok)
            lab_app.wait_event("button")
        # x11vnc is gone: an action now fails with a clear error (a click is not retried)
        deadline = time.monotonic() + 10
        while drv.connected and time.monotonic() < deadline:
            time.sleep(0.05)  # the reader task notices the closed connection
        assert not drv.connected
        fast_input.connect_timeout = 0.5
        with pytest.raises(DriverConnectionError, match=f"vnc://127.0.0.1:{port}: click"):
            drv.sync.click(*ok)
        fast_input.connect_timeout = 8.0
        lab_app.mark()
        with x11vnc(lab_display, port):
            cancel = lab_app.element_centre("cancel")
            drv.sync.click(*cancel)  # reconnects, and the click lands
            assert lab_app.wait_event("button")["name"] == "cancel"
            assert drv.connections == 2
        # killed again; this time the action comes while the server is still down and
        # the reconnect keeps trying until it is back
        while drv.connected and time.monotonic() < deadline + 20:
            time.sleep(0.05)
        fast_input.connect_timeout = 15.0
        lab_app.mark()
        errors: list[BaseException] = []

        def act() -> None:
            try:
                drv.sync.click(*ok)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=act)
        worker.start()
        try:
            time.sleep(0.3)
            with x11vnc(lab_display, port):
                worker.join(30)
                assert not errors, errors
                assert lab_app.wait_event("button")["name"] == "ok"
                assert drv.connections == 3
        finally:
            worker.join(30)
    finally:
        drv.close()


def test_password_and_closed_port(lab_display: XvfbDisplay, lab_app: LabApp, fast_input: Any) -> None:
    start = time.monotonic()
    with pytest.raises(DriverConnectionError, match="connection refused"):
        VncDriver(f"vnc://127.0.0.1:{closed_port()}").sync.key("a")
    assert time.monotonic() - start < 30  # at once, not after retries or hangs

    port = free_port()
    with x11vnc(lab_display, port, "-passwd", "labpass1"):
        bad = VncDriver(f"vnc://wrongpw@127.0.0.1:{port}")
        with pytest.raises(DriverConnectionError, match="authentication failed") as err:
            bad.sync.move(5, 5)  # retry-safe action, but a bad password is not retried
        assert "wrongpw" not in str(err.value)
        good = VncDriver(f"vnc://labpass1@127.0.0.1:{port}")
        try:
            lab_app.mark()
            good.sync.click(*lab_app.element_centre("dismiss"))
            assert lab_app.wait_event("button")["name"] == "dismiss"
        finally:
            good.close()

"""The lab itself: the test app reports real X input, servers listen, everything stops."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from kvmrpa import LabError
from kvmrpa.lab import Lab, LabApp, RtspServer, XvfbDisplay

pytestmark = pytest.mark.lab


def xdotool(display: XvfbDisplay, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=display.env, check=True, timeout=20)


def test_the_app_reports_buttons_entry_keys_and_clicks(
        lab_display: XvfbDisplay, lab_app: LabApp) -> None:
    assert lab_app.geometry["screen"] == [1280, 720]
    x, y = lab_app.element_centre("confirm")
    xdotool(lab_display, "mousemove", str(x), str(y), "click", "1")
    ev = lab_app.wait_event("button")
    assert (ev["name"], ev["text"]) == ("confirm", "确定")
    click = lab_app.wait_event("click")
    assert abs(click["x"] - x) <= 1 and abs(click["y"] - y) <= 1 and click["button"] == 1
    assert click["widget"] == "confirm"
    assert lab_app.pointer() == (x, y)

    ex, ey = lab_app.element_centre("entry")
    xdotool(lab_display, "mousemove", str(ex), str(ey), "click", "1", "type", "abc")
    assert lab_app.wait_event(lambda e: e["type"] == "entry" and e["text"] == "abc")["text"] == "abc"
    xdotool(lab_display, "key", "ctrl+a")
    key = lab_app.wait_event(lambda e: e["type"] == "key" and e["keysym"] == "a"
                             and "ctrl" in e["modifiers"])
    assert key["widget"] == "entry"


def test_reset_restores_the_screen_and_forgets_old_events(lab_app: LabApp) -> None:
    lab_app.set_text("entry", "typed")
    lab_app.set_text("big", "NEW", fg="#00ff00")
    assert lab_app.events("entry")[-1]["text"] == "typed"
    lab_app.reset()
    assert lab_app.events("entry") == []
    geo = lab_app.refresh_geometry()
    assert geo["widgets"]["big"]["text"] == "KVMRPA LAB"
    assert geo["widgets"]["entry"]["text"] == ""


def test_app_errors_are_clear(lab_app: LabApp) -> None:
    with pytest.raises(LabError, match="no element 'nope'"):
        lab_app.element_centre("nope")
    with pytest.raises(LabError, match="no element"):
        lab_app.set_text("nope", "x")
    with pytest.raises(LabError, match="no matching event"):
        lab_app.wait_event("button", timeout=0.1)


def test_vnc_server_speaks_rfb_on_loopback(lab_vnc: str) -> None:
    assert lab_vnc.startswith("vnc://127.0.0.1:")
    port = int(lab_vnc.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(12).startswith(b"RFB 003.")


def test_a_whole_lab_starts_and_leaves_no_process_behind() -> None:
    with Lab(fps=10) as lab:
        assert lab.rtsp_url.startswith("rtsp://127.0.0.1:")
        assert lab.vnc_url.startswith("vnc://127.0.0.1:")
        pids = [p.pid for p in (lab.display._proc, lab.app._proc, lab.rtsp._proc,  # type: ignore[union-attr]
                                lab.vnc._proc) if p is not None]  # type: ignore[union-attr]
        assert len(pids) == 4
    for pid in pids:
        with pytest.raises(ChildProcessError):  # reaped: no zombie left to wait for
            os.waitpid(pid, os.WNOHANG)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_lab_errors_name_the_program(lab_display: XvfbDisplay) -> None:
    with pytest.raises(LabError, match="too small"):
        XvfbDisplay(10, 10)
    with pytest.raises(LabError, match="must start with"):
        RtspServer(lab_display, mount="screen")
    broken = XvfbDisplay()
    broken.number = 9999  # a display that does not exist
    with pytest.raises(LabError, match="RTSP server"), RtspServer(broken, start_timeout=5):
        pass

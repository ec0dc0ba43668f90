"""The VNC framebuffer source against the lab's real x11vnc."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kvmrpa.capture import SourceHub, SourceState, VncSource
from kvmrpa.lab import LabApp, VncServer, XvfbDisplay, free_port

from .conftest import StateLog, wait_until

pytestmark = pytest.mark.lab


@pytest.fixture
def private_vnc(lab_display: XvfbDisplay, lab_app_session: LabApp) -> Iterator[VncServer]:
    with VncServer(lab_display) as server:
        yield server


def test_vnc_frames_come_at_the_requested_rate_and_show_changes(
        lab_vnc: str, lab_app: LabApp) -> None:
    x0, y0, _w, h = lab_app.element_box("big")
    hub = SourceHub(linger=0)
    try:
        src = hub.open(lab_vnc + "?fps=10")
        assert isinstance(src, VncSource) and src.fps == 10
        first = src.wait_frame(None, timeout=10)
        assert first.size == (1280, 720)
        assert int(first.image[y0 + h // 2, x0 + 8].min()) > 200  # white label background
        frame = first
        while frame.captured - first.captured < 2.0:
            frame = src.wait_frame(frame.seq, timeout=5)
        fps = (frame.seq - first.seq) / (frame.captured - first.captured)
        assert 9.0 <= fps <= 11.0, f"{fps:.2f} fps for fps=10"
        lab_app.set_text("big", bg="#ff0000")
        changed = time.monotonic()
        while True:
            frame = src.wait_frame(frame.seq, timeout=5)
            b, g, r = (int(v) for v in frame.image[y0 + h // 2, x0 + 8])
            if r > 200 and g < 60 and b < 60:
                break
            assert time.monotonic() - changed < 10, f"still {(b, g, r)} after 10 s"
        hub.release(src)
        assert src.state == SourceState.STOPPED and src.threads() == []
    finally:
        hub.close()


def test_a_hung_vnc_server_is_detected_and_recovers(private_vnc: VncServer) -> None:
    stall = 1.0
    src = VncSource(private_vnc.url, stall_timeout=stall, reconnect_initial=0.05,
                    reconnect_max=0.5, open_timeout=1.0)
    log = StateLog(src)
    with src:
        src.wait_frame(None, timeout=10)
        t_stop = time.monotonic()
        private_vnc.pause()
        try:
            wait_until(lambda: log.first_after(t_stop, SourceState.RECONNECTING) is not None,
                       stall + 10, "stall detection")
            detected = log.first_after(t_stop, SourceState.RECONNECTING)
            assert detected is not None
            # The heartbeat goes out every stall/3, so silence is noticed within about
            # stall_timeout + one heartbeat period.
            assert detected - t_stop <= stall + stall / 3 + 0.5
            assert "stalled" in (src.metrics().last_error or "")
        finally:
            private_vnc.resume()
        t_cont = time.monotonic()
        wait_until(lambda: log.first_after(t_cont, SourceState.LIVE) is not None, 20,
                   "recovery after SIGCONT")
        assert src.metrics().reconnects >= 1
    assert src.threads() == []


def test_a_vnc_address_with_nothing_listening_is_reported() -> None:
    src = VncSource(f"vnc://secret-pw@127.0.0.1:{free_port()}", open_timeout=1.0,
                    reconnect_initial=0.2)
    with src:
        wait_until(lambda: src.state == SourceState.RECONNECTING, 3, "a refused connection")
        err = src.metrics().last_error or ""
        assert "refused" in err and "secret-pw" not in err
        assert "secret-pw" not in src.display_url
    assert src.state == SourceState.STOPPED and src.threads() == []

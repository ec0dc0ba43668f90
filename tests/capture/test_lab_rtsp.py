"""The RTSP source against the real lab: GStreamer's RTSP server publishing an Xvfb
display where the Tk test app runs. Nothing here is mocked."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from kvmrpa import SourceOpenError, UrlError
from kvmrpa.capture import SourceHub, SourceState, StreamSource
from kvmrpa.lab import LabApp, RtspServer, XvfbDisplay, free_port

from .conftest import StateLog, fd_count, own_threads, sockets_to, wait_until

pytestmark = pytest.mark.lab

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.5, "open_timeout": 2.0,
        "read_timeout": 2.0, "stall_timeout": 2.0}


@pytest.fixture
def private_rtsp(lab_display: XvfbDisplay, lab_app_session: LabApp) -> Iterator[RtspServer]:
    """An RTSP server of this test's own, free to kill, restart and SIGSTOP."""
    with RtspServer(lab_display, fps=15) as server:
        yield server


def test_frames_arrive_at_the_source_rate(lab_rtsp: str) -> None:
    with StreamSource(lab_rtsp, **FAST) as src:
        first = src.wait_frame(None, timeout=10)
        assert first.size == (1280, 720)
        while src.latest().captured - first.captured < 1.0:  # type: ignore[union-attr]
            src.wait_frame(src.latest().seq, timeout=5)  # type: ignore[union-attr]
        frames = [src.latest()]
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            frames.append(src.wait_frame(frames[-1].seq, timeout=5))
        span = frames[-1].captured - frames[0].captured
        delivered = frames[-1].seq - frames[0].seq  # every frame the reader decoded
        fps = delivered / span
        assert 13.5 <= fps <= 16.5, f"{fps:.2f} fps from a 15 fps stream"
        m = src.metrics()
        assert m.state == SourceState.LIVE and m.attempts == 1 and m.reconnects == 0


def test_a_change_on_the_display_is_seen_in_a_decoded_frame(
        lab_rtsp: str, lab_app: LabApp) -> None:
    x0, y0, _w, h = lab_app.element_box("big")
    y = y0 + h // 2

    def colour(frame_image: np.ndarray) -> np.ndarray:
        # The label's left padding: background only, no glyphs.
        return frame_image[y - 5:y + 5, x0 + 4:x0 + 14].reshape(-1, 3).mean(axis=0)

    with StreamSource(lab_rtsp, **FAST) as src:
        before = src.wait_frame(None, timeout=10)
        b, g, r = colour(before.image)
        assert min(b, g, r) > 200, "the big label starts white"
        lab_app.set_text("big", bg="#ff0000")
        changed_at = time.monotonic()
        frame = before
        while True:
            frame = src.wait_frame(frame.seq, timeout=5)
            b, g, r = colour(frame.image)
            if r > 200 and g < 60 and b < 60:
                break
            assert time.monotonic() - changed_at < 10, f"still {b, g, r} after 10 s"
        assert frame.captured > changed_at


def test_kill_and_restart_five_times_reconnects_without_leaks(private_rtsp: RtspServer) -> None:
    url, port = private_rtsp.url, private_rtsp.port
    src = StreamSource(url, **FAST)
    log = StateLog(src)
    fds_before = fd_count()
    src.start()
    try:
        src.wait_frame(None, timeout=10)
        live_fds = fd_count()
        assert sockets_to(port) == 1
        assert len(own_threads(url)) == 2  # the supervisor and one reader
        for cycle in range(5):
            t_kill = time.monotonic()
            private_rtsp.kill()
            wait_until(lambda: src.state == SourceState.RECONNECTING, 10,
                       f"reconnecting after kill #{cycle + 1}")
            private_rtsp.start()  # same port, so the same URL
            last = src.latest()
            wait_until(lambda: src.state == SourceState.LIVE, 15, f"live after restart #{cycle + 1}")
            fresh = src.wait_frame(last.seq if last else None, timeout=10)
            assert fresh.captured > t_kill
        m = src.metrics()
        assert m.reconnects == 5
        assert m.attempts >= 6
        states = log.states()
        assert states[:2] == [SourceState.CONNECTING, SourceState.LIVE]
        assert states[2:] == [SourceState.RECONNECTING, SourceState.LIVE] * 5
        # As many threads, connections and descriptors as when it was first live
        # (other tests' lingering sources may close descriptors meanwhile, never open).
        wait_until(lambda: len(own_threads(url)) == 2 and sockets_to(port) == 1
                   and fd_count() <= live_fds, 10,
                   f"threads/sockets/fds back to 2/1/{live_fds}, now {own_threads(url)}/"
                   f"{sockets_to(port)}/{fd_count()}")
    finally:
        src.stop()
    assert src.threads() == [] and own_threads(url) == []
    assert sockets_to(port) == 0
    wait_until(lambda: fd_count() <= fds_before, 10,
               f"descriptors back to {fds_before} after stop, now {fd_count()}")


def test_a_hung_server_is_detected_by_the_watchdog_and_recovers(
        private_rtsp: RtspServer) -> None:
    stall = 1.0
    src = StreamSource(private_rtsp.url, **{**FAST, "stall_timeout": stall})
    log = StateLog(src)
    with src:
        src.wait_frame(None, timeout=10)
        time.sleep(0.5)  # steady state
        t_stop = time.monotonic()
        private_rtsp.pause()  # SIGSTOP: sockets stay open, nothing is sent
        try:
            wait_until(lambda: log.first_after(t_stop, SourceState.RECONNECTING) is not None,
                       stall + 10, "stall detection")
            detected = log.first_after(t_stop, SourceState.RECONNECTING)
            assert detected is not None
            assert detected - t_stop <= stall + 0.5, f"stall seen after {detected - t_stop:.2f} s"
            assert "stalled" in (src.metrics().last_error or "")
            stale = src.latest()
        finally:
            private_rtsp.resume()
        t_cont = time.monotonic()
        wait_until(lambda: log.first_after(t_cont, SourceState.LIVE) is not None, 20,
                   "recovery after SIGCONT")
        fresh = src.wait_frame(stale.seq if stale else None, timeout=10)
        assert fresh.captured > t_cont
        # The abandoned reader, once FFmpeg let go of it, is gone too.
        wait_until(lambda: len(src.threads()) == 2, 15, "the abandoned reader to exit")
    assert src.threads() == []


@pytest.mark.parametrize(("make_url", "expected"), [
    (lambda _: f"rtsp://127.0.0.1:{free_port()}/screen", "refused"),
    (lambda _: "rtsp://no-such-host.invalid:554/screen", "cannot resolve host"),
    (lambda srv: srv.url.replace("/screen", "/wrong-path"), "could not be opened"),
], ids=["nothing-listening", "unknown-host", "wrong-path"])
def test_bad_network_addresses_give_a_clear_state_within_the_open_timeout(
        lab_rtsp_server: RtspServer, make_url, expected: str) -> None:
    url = make_url(lab_rtsp_server)
    open_timeout = 1.0
    src = StreamSource(url, open_timeout=open_timeout, read_timeout=1.0, reconnect_initial=0.2,
                       reconnect_max=1.0)
    t0 = time.monotonic()
    with src:
        wait_until(lambda: src.state == SourceState.RECONNECTING, open_timeout + 2.0,
                   f"a failed open of {url}")
        took = time.monotonic() - t0
        m = src.metrics()
        assert expected in (m.last_error or ""), m.last_error
        assert m.frames == 0 and src.latest() is None
    assert took <= open_timeout + 2.0


def test_credentials_never_appear_in_errors_or_names() -> None:
    port = free_port()
    url = f"rtsp://admin:s3cret-pw@127.0.0.1:{port}/screen"
    with StreamSource(url, open_timeout=1.0, reconnect_initial=0.2) as src:
        wait_until(lambda: src.metrics().last_error is not None, 5, "an open error")
        shown = [src.display_url, repr(src), src.metrics().last_error or "",
                 *(t.name for t in src.threads())]
        assert all("s3cret-pw" not in s for s in shown), shown
        assert "admin:***@" in src.display_url


def test_an_rtsp_server_that_hangs_during_open_is_bounded() -> None:
    """A TCP listener that never answers RTSP: the open gives up within its timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"rtsp://127.0.0.1:{listener.getsockname()[1]}/screen"
        src = StreamSource(url, open_timeout=1.0, read_timeout=1.0, reconnect_initial=0.5)
        t0 = time.monotonic()
        with src:
            wait_until(lambda: src.metrics().last_error is not None, 5, "the open to time out")
            assert time.monotonic() - t0 <= 1.0 + 2.0
            assert "no answer within the open timeout" in (src.metrics().last_error or "")
            assert src.state == SourceState.RECONNECTING


def test_bad_local_addresses_fail_at_once(tmp_path) -> None:
    hub = SourceHub(linger=0)
    try:
        with pytest.raises(UrlError, match="garbage"):
            hub.open("garbage://whatever/x")
        with pytest.raises(SourceOpenError, match="no such file"):
            hub.open(str(tmp_path / "missing.mp4"))
        bad = tmp_path / "unreadable.jpg"
        bad.write_bytes(b"\xff\xd8 not really a jpeg")
        with pytest.raises(SourceOpenError, match="not a readable image"):
            hub.open(f"file://{bad}")
    finally:
        hub.close()


def test_ten_flows_and_two_viewers_on_one_rtsp_url_open_one_capture(lab_rtsp: str) -> None:
    hub = SourceHub(linger=0)
    try:
        sources = [hub.open(lab_rtsp) for _ in range(12)]
        assert len({id(s) for s in sources}) == 1
        src = sources[0]
        src.wait_frame(None, timeout=10)
        assert src.metrics().attempts == 1
        readers = [t for t in src.threads() if "reader" in t.name]
        assert len(readers) == 1
        for s in sources:
            hub.release(s)
        assert src.state == SourceState.STOPPED and src.threads() == []
    finally:
        hub.close()


def test_interpreter_exit_without_stop_releases_and_exits(lab_rtsp: str) -> None:
    """A script that forgets stop(): the atexit hook stops the reader; no hang at exit."""
    code = (
        "from kvmrpa.capture import StreamSource, open_source\n"
        f"s = StreamSource({lab_rtsp!r}).start()\n"
        "s.wait_frame(None, timeout=10)\n"
        f"h = open_source({lab_rtsp!r})\n"
        "h.wait_frame(None, timeout=10)\n"
        "print('ok', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"

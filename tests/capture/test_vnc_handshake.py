"""The VNC source's handshake against small RFB servers on loopback written here: a
server that accepts and then says nothing, and one that refuses the VNC password."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from kvmrpa.capture import VncSource

from .conftest import sockets_to, wait_until


class FakeRfb:
    """Accepts on 127.0.0.1; ``mode="hang"`` never writes, ``mode="deny"`` offers VNC
    authentication and refuses any answer. Keeps every accepted socket open."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-rfb", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)
            if self.mode == "deny":
                try:
                    conn.settimeout(5)
                    conn.sendall(b"RFB 003.008\n")
                    conn.recv(12)
                    conn.sendall(b"\x01\x02")  # one security type: VNC authentication
                    conn.recv(1)
                    conn.sendall(bytes(range(16)))  # the challenge
                    got = b""
                    while len(got) < 16:
                        chunk = conn.recv(16 - len(got))
                        if not chunk:
                            break
                        got += chunk
                    if len(got) == 16:
                        self.answers += 1
                    conn.sendall(b"\x00\x00\x00\x01")  # SecurityResult: failed
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def fake_rfb(request: pytest.FixtureRequest) -> Iterator[FakeRfb]:
    server = FakeRfb(request.param)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("fake_rfb", ["hang"], indirect=True)
def test_handshake_timeouts_leave_no_socket_open(fake_rfb: FakeRfb) -> None:
    src = VncSource(f"vnc://127.0.0.1:{fake_rfb.port}", open_timeout=0.3,
                    reconnect_initial=0.05, reconnect_max=0.1)
    src.start()
    try:
        wait_until(lambda: len(fake_rfb.accepted) >= 4, 30, "four handshake attempts")
        wait_until(lambda: "no VNC handshake" in (src.metrics().last_error or ""), 10,
                   "the handshake timeout in last_error")
        # at most the attempt in progress holds a socket; timed-out ones were closed
        assert sockets_to(fake_rfb.port) <= 1
    finally:
        src.stop()
    assert sockets_to(fake_rfb.port) == 0


@pytest.mark.parametrize("fake_rfb", ["deny"], indirect=True)
def test_wrong_password_is_reported_as_such(fake_rfb: FakeRfb) -> None:
    src = VncSource(f"vnc://secret@127.0.0.1:{fake_rfb.port}", open_timeout=2,
                    reconnect_initial=0.05, reconnect_max=0.1)
    src.start()
    try:
        wait_until(lambda: "authentication failed" in (src.metrics().last_error or ""), 30,
                   "an authentication error in last_error")
        assert fake_rfb.answers >= 1  # the client answered the DES challenge
        assert "secret" not in (src.metrics().last_error or "")
    finally:
        src.stop()


@pytest.mark.parametrize("fake_rfb", ["hang"], indirect=True)
def test_stop_during_a_pending_handshake_does_not_wait_for_its_timeout(
        fake_rfb: FakeRfb) -> None:
    # open_timeout is far beyond the test's own timeout: stop() must abandon the
    # handshake rather than sit it out
    src = VncSource(f"vnc://127.0.0.1:{fake_rfb.port}", open_timeout=600)
    src.start()
    try:
        wait_until(lambda: len(fake_rfb.accepted) >= 1, 30, "the handshake to begin")
    finally:
        stopper = threading.Thread(target=src.stop, name="stop-vnc-source", daemon=True)
        stopper.start()
        stopper.join(60)
    assert not stopper.is_alive(), "stop() waited for the handshake timeout"
    assert src.threads() == []
    assert sockets_to(fake_rfb.port) == 0

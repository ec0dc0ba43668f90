"""The live view's frame route on a real tornado server on loopback (in this process):
who may open it, what it sends, how old frames are dropped and when it closes; and which
path a LiveView's frames take."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.web
import tornado.websocket
from bokeh.document import Document
from kvmrpa.widgets import LiveView
from kvmrpa.widgets._encoder import EncodedFrame
from kvmrpa.widgets._frameroute import (
    HEADER,
    MAGIC,
    PATH,
    SUBPROTOCOL,
    FrameSocket,
    Grant,
    frame_packet,
    grant,
)

from kvmrpa._auth import AuthFile, set_account


def enc(seq: int, size: int = 1000) -> EncodedFrame:
    return EncodedFrame(seq, bytes([seq % 256]) * size, 160, 90, 320, 180, 1.0, 1234.5, 80)


class Owner:
    """Stands in for a LiveView: records what its grants tell it."""

    def __init__(self) -> None:
        self.attached: list[Grant] = []
        self.detached: list[Grant] = []
        self.acks: list[int] = []

    def _route_attached(self, g: Grant) -> None:
        self.attached.append(g)

    def _route_detached(self, g: Grant) -> None:
        self.detached.append(g)

    def _route_ack(self, seq: int) -> None:
        self.acks.append(seq)


@asynccontextmanager
async def route_server() -> AsyncIterator[str]:
    """A tornado app with the frame route on a free loopback port; yields host:port."""
    app = tornado.web.Application([(PATH, FrameSocket)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    host = f"127.0.0.1:{sock.getsockname()[1]}"
    app.websocket_origins = {host}  # type: ignore[attr-defined]  # as BokehTornado has
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield host
    finally:
        server.stop()
        await server.close_all_connections()


async def connect(host: str, token: str | None, cookie: str | None = None,
                  origin: str | None = None) -> tornado.websocket.WebSocketClientConnection:
    headers = {"Origin": f"http://{origin or host}"}
    if cookie is not None:
        headers["Cookie"] = f"user={cookie}"
    request = tornado.httpclient.HTTPRequest(f"ws://{host}{PATH}", headers=headers)
    protocols = [SUBPROTOCOL, token] if token is not None else None
    return await tornado.websocket.websocket_connect(request, subprotocols=protocols)


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


def status_of(exc: BaseException) -> int | None:
    return getattr(exc, "code", None)


def test_a_granted_socket_gets_frames_and_sends_acks() -> None:
    async def main() -> None:
        owner = Owner()
        g = grant(owner, "ref-1", cookie=None, user=None)
        async with route_server() as host:
            ws = await connect(host, g.token)
            try:
                assert ws.selected_subprotocol == SUBPROTOCOL
                await until(lambda: owner.attached == [g] and g.socket is not None)
                assert g.socket is not None
                g.socket.offer(frame_packet(enc(7), stream=3))
                msg = await asyncio.wait_for(ws.read_message(), 5)
                assert isinstance(msg, bytes)
                magic, stream, seq, w, h, fw, fh, wall = HEADER.unpack_from(msg)
                assert (magic, stream, seq, w, h, fw, fh, wall) == (
                    MAGIC, 3, 7, 160, 90, 320, 180, 1234.5)
                assert msg[HEADER.size:] == enc(7).jpeg
                await ws.write_message("a7")
                await until(lambda: owner.acks == [7])
            finally:
                ws.close()
            await until(lambda: owner.detached == [g])
        g.revoke()

    asyncio.run(main())


def test_a_slow_viewer_gets_the_newest_frame_not_a_queue() -> None:
    async def main() -> None:
        owner = Owner()
        g = grant(owner, "ref-1", cookie=None, user=None)
        async with route_server() as host:
            ws = await connect(host, g.token)
            try:
                await until(lambda: g.socket is not None)
                sock = g.socket
                assert sock is not None
                for seq in (1, 2, 3):  # offered before the server's loop writes any
                    sock.offer(frame_packet(enc(seq)))
                msg = await asyncio.wait_for(ws.read_message(), 5)
                assert HEADER.unpack_from(msg)[2] == 3  # type: ignore[arg-type]
                assert sock.dropped == 2
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.read_message(), 0.3)
            finally:
                ws.close()
        g.revoke()

    asyncio.run(main())


def test_refused_without_the_token_the_login_or_the_origin() -> None:
    async def main() -> None:
        owner = Owner()
        g = grant(owner, "ref-1", cookie="signed-cookie-of-the-session", user=None)
        async with route_server() as host:
            for token, cookie, origin, status in (
                    ("not-a-token", "signed-cookie-of-the-session", None, 404),
                    (None, "signed-cookie-of-the-session", None, 404),
                    (g.token, None, None, 403),                    # another browser
                    (g.token, "someone-elses-cookie", None, 403),
                    (g.token, "signed-cookie-of-the-session", "evil.example:80", 403)):
                with pytest.raises(tornado.httpclient.HTTPClientError) as err:
                    await connect(host, token, cookie, origin)
                assert status_of(err.value) == status, (token, cookie, origin)
            assert owner.attached == []
            ws = await connect(host, g.token, "signed-cookie-of-the-session")
            await until(lambda: owner.attached == [g])
            g.revoke()  # the view's model went away: the socket is closed, the token gone
            assert await asyncio.wait_for(ws.read_message(), 5) is None
            ws.close()
            with pytest.raises(tornado.httpclient.HTTPClientError) as err:
                await connect(host, g.token, "signed-cookie-of-the-session")
            assert status_of(err.value) == 404

    asyncio.run(main())


def test_with_an_auth_file_the_account_must_still_hold_a_role(tmp_path) -> None:
    from kvmrpa.widgets._auth import Policy, configure
    from tornado.web import create_signed_value

    users = tmp_path / "users"
    set_account(users, "alice", "pw-a", "viewer")
    set_account(users, "bob", "pw-b", "viewer")
    secret = "s" * 32
    cookie = {u: create_signed_value(secret, "user", u).decode() for u in ("alice", "bob")}
    configure(Policy(accounts=AuthFile(users), cookie_secret=secret))
    try:
        async def main() -> None:
            owner = Owner()
            g = grant(owner, "ref-1", cookie=cookie["alice"], user="alice")
            async with route_server() as host:
                with pytest.raises(tornado.httpclient.HTTPClientError) as err:
                    await connect(host, g.token, cookie["bob"])  # a valid login, not hers
                assert status_of(err.value) == 403
                ws = await connect(host, g.token, cookie["alice"])
                await until(lambda: owner.attached == [g])
                ws.close()
                await until(lambda: owner.detached == [g])
                kept = [line for line in users.read_text("utf-8").splitlines()
                        if not line.startswith("alice:")]
                users.write_text("\n".join(kept) + "\n", "utf-8")  # her account is gone
                with pytest.raises(tornado.httpclient.HTTPClientError) as err:
                    await connect(host, g.token, cookie["alice"])
                assert status_of(err.value) == 403
            g.revoke()

        asyncio.run(main())
    finally:
        configure(None)


class FakeSocket:
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.closed = False

    def offer(self, packet: bytes, whole: bool = True) -> None:
        self.packets.append(packet)

    def close_soon(self) -> None:
        self.closed = True


def test_frames_go_on_the_route_once_every_model_has_a_socket() -> None:
    lv = LiveView(None)
    doc = Document()
    root = lv.get_root(doc)
    ref = root.ref["id"]
    bokeh: list[Any] = []
    lv._send_msg = bokeh.append  # type: ignore[method-assign]
    lv._send_frame(enc(1), stream=1)
    assert [m["seq"] for m in bokeh] == [1]  # no socket yet: Bokeh's path

    sock = FakeSocket()
    g = grant(lv, ref, cookie=None, user=None)
    lv._grants[ref] = g
    g.socket = sock  # type: ignore[assignment]
    lv._route_attached(g)
    assert lv.route_sockets == 1
    lv._send_frame(enc(2), stream=1)
    assert [m["seq"] for m in bokeh] == [1]  # not on Bokeh's path any more
    assert [HEADER.unpack_from(p)[2] for p in sock.packets] == [2]

    lv._cleanup(root)  # the model went away: grant revoked, socket closed
    assert sock.closed and g.revoked and lv.route_sockets == 0 and lv._grants == {}


def test_the_route_is_offered_only_where_a_server_has_it() -> None:
    # A model of a plain Document (a notebook, no session) is never granted the route.
    lv = LiveView(None)
    doc = Document()
    root = lv.get_root(doc)
    lv._offer_route(root)
    assert lv._grants == {}
    lv._cleanup(root)


def test_a_view_dropped_without_cleanup_leaves_no_token() -> None:
    import gc

    from kvmrpa.widgets import _frameroute

    owner = Owner()
    g = grant(owner, "ref-1", cookie=None, user=None)
    assert g.token in _frameroute._grants
    del owner
    gc.collect()
    assert g.revoked and g.token not in _frameroute._grants

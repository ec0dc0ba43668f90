"""The live view's frame route: JPEG frames on a websocket of their own, beside Bokeh's.

Owns ``/kvmrpa/frames``, a binary websocket a served :class:`~kvmrpa.widgets.LiveView`
sends its frames on instead of Bokeh's message path (which serialises, locks and
dispatches every frame, and every acknowledgement coming back, as a document event).
A server has it when it was started with :func:`frame_route_patterns` among its
``extra_patterns`` (``kvmrpa serve`` does); elsewhere (notebooks, a plain ``panel serve``)
the live view keeps sending frames in Bokeh messages.

Access is granted per displayed view: when a view's page says hello, the view asks
:func:`grant` for an unguessable token bound to that model and to the session's login
(its signed ``user`` cookie and, under ``kvmrpa serve`` with an auth file, its user) and
sends it to that model only. The browser opens the route with the token in its
subprotocol header (never in a URL, so never in an access log). The server checks the
origin against the server's websocket origins, the token, the cookie and (with an auth
file) that the account still holds a role; the grant is revoked, and its socket closed,
when the view's model is cleaned up or the view is closed.

One message per frame. A whole frame is :data:`HEADER` (magic ``KVF1``, stream, seq,
sizes, wall clock) followed by the JPEG bytes; a patch frame is :data:`PATCH_HEADER`
(magic ``KVP1``, the same fields with the seq it is drawn over, and a patch count), one
:data:`PATCH_ENTRY` (x, y, width, height, JPEG bytes) per patch, then their JPEGs in
that order. Per socket at most one message is being written; a whole frame replaces
everything still waiting, so a slow viewer drops old frames, while patches wait in order
behind it (each is drawn over the one before), at most :data:`MAX_WAITING` of them: past
that they are dropped and the view asks for a whole frame.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import logging
import secrets
import struct
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from kvmrpa._auth import role_at_least
from kvmrpa._errors import ConfigError

from ._auth import _decode_user, get_policy
from ._encoder import EncodedFrame

__all__ = [
    "HEADER", "MAGIC", "MAX_WAITING", "PATCH_ENTRY", "PATCH_HEADER", "PATCH_MAGIC", "PATH",
    "SUBPROTOCOL", "FrameSocket", "Grant", "frame_packet",
    "frame_route_patterns", "grant", "route_installed",
]

log = logging.getLogger("kvmrpa.widgets.frameroute")

#: The route's path (below the server's prefix).
PATH = "/kvmrpa/frames"
#: The websocket subprotocol; the token is the second one the browser offers.
SUBPROTOCOL = "kvmrpa-frames"
MAGIC = b"KVF1"
#: magic, stream, seq, width, height, frame_width, frame_height, wall (little-endian).
HEADER = struct.Struct("<4sIQIIIId")
PATCH_MAGIC = b"KVP1"
#: magic, stream, seq, base seq, width, height, frame_width, frame_height, wall, count.
PATCH_HEADER = struct.Struct("<4sIQQIIIIdI")
#: x, y, width, height (encoded pixels), JPEG bytes.
PATCH_ENTRY = struct.Struct("<IIIII")
#: Patch messages a socket holds back while one is being written.
MAX_WAITING = 16

_installed = False


def frame_packet(enc: EncodedFrame, stream: int = 0) -> bytes:
    """The route's message for one frame: :data:`HEADER` then the JPEG, or (patches)
    :data:`PATCH_HEADER`, the entries and the patches' JPEGs."""
    if enc.base_seq is None:
        return HEADER.pack(MAGIC, stream, enc.seq, enc.width, enc.height, enc.frame_width,
                           enc.frame_height, enc.wall) + enc.jpeg
    parts = [PATCH_HEADER.pack(PATCH_MAGIC, stream, enc.seq, enc.base_seq, enc.width,
                               enc.height, enc.frame_width, enc.frame_height, enc.wall,
                               len(enc.patches))]
    parts += [PATCH_ENTRY.pack(p.x, p.y, p.width, p.height, len(p.jpeg)) for p in enc.patches]
    parts += [p.jpeg for p in enc.patches]
    return b"".join(parts)


def frame_route_patterns() -> list[tuple[str, type[FrameSocket]]]:
    """The ``extra_patterns`` that give a Panel/Bokeh server the frame route.

    Live views grant tokens for the route only once some server of this process was
    given these patterns (a browser whose server lacks it falls back to Bokeh's path).
    """
    global _installed
    _installed = True
    return [(PATH, FrameSocket)]


def route_installed() -> bool:
    """Whether some server of this process serves the frame route."""
    return _installed


class RouteOwner(Protocol):
    """What a grant tells its view (a LiveView): sockets attaching, leaving, acking."""

    def _route_attached(self, grant: Grant) -> None: ...
    def _route_detached(self, grant: Grant) -> None: ...
    def _route_ack(self, seq: int) -> None: ...


@dataclass(eq=False)
class Grant:
    """One displayed model's permission to receive frames on the route."""

    token: str
    ref: str
    owner: weakref.ref[Any]
    cookie: str | None = field(repr=False)
    user: str | None
    socket: FrameSocket | None = field(default=None, repr=False)
    revoked: bool = False
    finalizer: weakref.finalize[Any, Any] | None = field(default=None, repr=False)

    def revoke(self) -> None:
        """Forget the token and close its socket (thread-safe, idempotent)."""
        if self.finalizer is not None:
            self.finalizer.detach()
        with _lock:
            self.revoked = True
            if _grants.get(self.token) is self:
                del _grants[self.token]
            sock, self.socket = self.socket, None
        if sock is not None:
            sock.close_soon()


_lock = threading.Lock()
_grants: dict[str, Grant] = {}


def grant(owner: RouteOwner, ref: str, cookie: str | None, user: str | None) -> Grant:
    """A new token for ``owner``'s model ``ref``, bound to the session's login."""
    g = Grant(secrets.token_urlsafe(32), ref, weakref.ref(owner), cookie, user)
    with _lock:
        _grants[g.token] = g
    # a view dropped without cleanup leaves no token behind
    g.finalizer = weakref.finalize(owner, _forget, g.token)
    return g


def _forget(token: str) -> None:
    g = _lookup(token)
    if g is not None:
        g.revoke()


def _lookup(token: str) -> Grant | None:
    with _lock:
        return _grants.get(token)


def _same(a: str | None, b: str | None) -> bool:
    return hmac.compare_digest((a or "").encode(), (b or "").encode())


def _allowed(handler: WebSocketHandler, g: Grant) -> bool:
    """The request comes from the login the token was granted to, and (under a policy
    with an auth file) that account still has a role."""
    raw = handler.get_cookie("user")
    if not _same(raw, g.cookie):
        return False
    policy = get_policy()
    if policy is None or policy.accounts is None:
        return True
    user = _decode_user(policy, raw)
    try:
        role = policy.accounts.role_of(user)
    except ConfigError as exc:
        log.error("%s", exc)
        return False
    return user is not None and user == g.user and role_at_least(role, "viewer")


class FrameSocket(WebSocketHandler):
    """One browser's frame socket (tornado handler, on the server's loop)."""

    _grant: Grant | None = None
    _loop: IOLoop | None = None

    def initialize(self) -> None:
        self._io_lock = threading.Lock()
        self._waiting: collections.deque[bytes] = collections.deque()
        self._writing = False
        self._scheduled = False
        self._closed = False
        self.sent = 0
        self.dropped = 0

    def _token(self) -> str | None:
        offered = [p.strip() for p in self.request.headers.get(
            "Sec-WebSocket-Protocol", "").split(",")]
        if len(offered) != 2 or offered[0] != SUBPROTOCOL or not offered[1]:
            return None
        return offered[1]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Checked before the upgrade: a refused request gets a plain HTTP status.
        token = self._token()
        g = _lookup(token) if token else None
        if g is None or g.revoked:
            self.set_status(404)
            self.finish()
            return
        if not _allowed(self, g):
            log.warning("frame route: refused a connection from %s (not the session's login)",
                        self.request.remote_ip)
            self.set_status(403)
            self.finish()
            return
        self._grant = g
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        """The server's websocket origins (Bokeh's allowlist), as for its own socket."""
        from urllib.parse import urlparse

        from bokeh.server.util import check_allowlist
        from bokeh.settings import settings

        allowed = getattr(self.application, "websocket_origins", None)
        if settings.allowed_ws_origin():
            allowed = set(settings.allowed_ws_origin())
        if allowed is None:
            return bool(super().check_origin(origin))
        ok = bool(check_allowlist(urlparse(origin).netloc.lower(), allowed))
        if not ok:
            log.warning("frame route: refused origin %r", origin)
        return ok

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return SUBPROTOCOL if subprotocols and subprotocols[0] == SUBPROTOCOL else None

    def get_compression_options(self) -> dict[str, Any] | None:
        return None  # JPEG does not deflate; compressing would only cost CPU

    def open(self, *args: Any, **kwargs: Any) -> None:
        g = self._grant
        self._loop = IOLoop.current()
        owner = g.owner() if g is not None else None
        if g is None or owner is None:
            self.close()
            return
        with _lock:
            if g.revoked:
                old, replaced = None, True
            else:
                old, g.socket, replaced = g.socket, self, False
        if replaced:
            self.close()
            return
        if old is not None:  # the page reconnected: one socket per grant
            old.close_soon()
        self.set_nodelay(True)
        owner._route_attached(g)

    def on_message(self, message: str | bytes) -> None:
        # "a<seq>": the browser drew frame seq
        g = self._grant
        if isinstance(message, bytes):
            message = message.decode("ascii", "replace")
        if g is None or not message.startswith("a"):
            return
        try:
            seq = int(message[1:21])
        except ValueError:
            return
        owner = g.owner()
        if owner is not None:
            owner._route_ack(seq)

    def on_close(self) -> None:
        with self._io_lock:
            self._closed = True
            self._waiting.clear()
        g = self._grant
        if g is None:
            return
        with _lock:
            mine = g.socket is self
            if mine:
                g.socket = None
        owner = g.owner()
        if mine and owner is not None:
            owner._route_detached(g)

    # -- sending (any thread) ---------------------------------------------------------
    def offer(self, packet: bytes, whole: bool = True) -> None:
        """Send ``packet`` soon (thread-safe). A ``whole`` frame replaces every packet
        still waiting; a patch waits behind them, unless MAX_WAITING already do: then
        they are all dropped (the view sees the gap and asks for a whole frame)."""
        with self._io_lock:
            if self._closed:
                return
            if whole or len(self._waiting) >= MAX_WAITING:
                self.dropped += len(self._waiting)
                self._waiting.clear()
                if not whole:
                    self.dropped += 1
                    return
            self._waiting.append(packet)
            schedule = not self._scheduled and not self._writing
            if schedule:
                self._scheduled = True
        if schedule and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the server's loop is closed
                self._loop.add_callback(self._flush)

    def close_soon(self) -> None:
        """Close the socket on its loop (thread-safe)."""
        with self._io_lock:
            self._closed = True
            self._waiting.clear()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.add_callback(self.close)

    def _flush(self) -> None:
        with self._io_lock:
            self._scheduled = False
            if self._closed or self._writing or not self._waiting:
                return
            packet = self._waiting.popleft()
            self._writing = True
        try:
            done = self.write_message(packet, binary=True)
        except WebSocketClosedError:
            with self._io_lock:
                self._writing = False
            return
        self.sent += 1
        done.add_done_callback(self._written)

    def _written(self, fut: Any) -> None:
        with self._io_lock:
            self._writing = False
            more = bool(self._waiting) and not self._closed
        if not fut.cancelled() and fut.exception() is not None:
            return  # closed meanwhile; on_close cleans up
        if more:
            self._flush()

"""Helpers for the input-driver tests: fast timeouts, a recording loopback HTTP server."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kvmrpa import get_settings


@pytest.fixture
def fast_input() -> Iterator[Any]:
    """Short timeouts and retry delays for these tests; restores the settings after."""
    section = get_settings().input
    names = ("connect_timeout", "action_timeout", "retry_delay", "retries", "lock_timeout",
             "http_token", "type_interval")
    saved = {n: getattr(section, n) for n in names}
    section.param.update(connect_timeout=1.0, action_timeout=3.0, retry_delay=0.01, retries=2)
    try:
        yield section
    finally:
        section.param.update(**saved)


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


Responder = Callable[[Request], tuple[int, Any]]


@dataclass
class LoopbackHTTP:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers through
    ``respond(request) -> (status, json_body)``."""

    respond: Responder
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, parts.path,
                              {k: v[-1] for k, v in parse_qs(parts.query).items()},
                              {k.lower(): v for k, v in self.headers.items()}, body)
                outer.requests.append(req)
                status, payload = outer.respond(req)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="test-http", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def http_server() -> Iterator[Callable[[Responder], LoopbackHTTP]]:
    """Factory of recording loopback servers, all stopped at the end of the test."""
    servers: list[LoopbackHTTP] = []

    def make(respond: Responder) -> LoopbackHTTP:
        srv = LoopbackHTTP(respond)
        servers.append(srv)
        return srv

    try:
        yield make
    finally:
        for s in servers:
            s.close()


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port that never completes a TCP handshake (a full accept queue), as an
    unreachable host behaves."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(4):  # fill the accept queue (never accepted)
            c = socket.socket()
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect(("127.0.0.1", port))
            fillers.append(c)
        yield port
    finally:
        for c in fillers:
            c.close()
        listener.close()

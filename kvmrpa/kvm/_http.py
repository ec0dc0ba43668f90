"""A generic HTTP keystroke service (``http+keys://host:port/path?token=…``).

The interface of the system kvmrpa descends from: a small HTTP service next to (or on)
the target that injects keys and mouse events. ``https+keys://`` uses TLS (verified
unless ``?verify=0``). The bearer token comes from ``?token=`` or, when absent, from the
setting ``input.http_token``; it is sent as ``Authorization: Bearer <token>`` and never
logged.

Every primitive is one ``POST`` of a JSON object to the URL's path (``/`` when none),
``Content-Type: application/json``:

=====================================================  ====================================
``{"type": "move", "x": 640, "y": 360}``               absolute pointer move, target pixels
``{"type": "button", "button": "left", "down": true}`` mouse button press (``false``: release)
``{"type": "scroll", "dx": 0, "dy": 3}``               wheel notches, positive ``dy`` = down
``{"type": "key", "key": "Return", "down": true}``     key by X keysym name (``false``: release)
``{"type": "text", "text": "hello 世界"}``             type text (the service picks the layout)
=====================================================  ====================================

Any 2xx answer is success (a JSON body ``{"ok": false, "error": "…"}`` is not). 401/403
mean a bad token; other 4xx are rejected commands (the ``error`` field is shown); 5xx and
transport errors are connection errors (retried for safe actions). ``?size=WxH`` gives the
target's pixel size for calibration (else coordinates are sent as mapped from the frame).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from .._errors import DriverConnectionError, UrlError
from .._settings import get_settings
from .._urls import parse_size, query_params, split_url
from ._driver import DriverCapabilities, InputDriver, MouseButton
from ._httpcall import checked_call, http_origin, new_client, verify_tls

__all__ = ["HttpKeysDriver"]


def _why(body: Any, resp: httpx.Response) -> str:
    return str((body.get("error") if isinstance(body, dict) else None)
               or resp.text[:200] or resp.reason_phrase)


class HttpKeysDriver(InputDriver):
    """Sends JSON commands to an HTTP keystroke service."""

    scheme: ClassVar[str] = "http+keys"
    capabilities: ClassVar[DriverCapabilities] = DriverCapabilities(unicode_text=True)

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        parts = split_url(url)
        proto = parts.scheme.lower().partition("+")[0]
        if proto not in ("http", "https") or not parts.hostname:
            raise UrlError(f"{self.display_url}: expected http+keys://host:port/path or https+keys://")
        q = query_params(url)
        self._token = q.get("token") or get_settings().input.http_token
        self._verify = verify_tls(q, url)
        self._size = parse_size(q["size"], "screen size") if "size" in q else None
        self.endpoint = http_origin(proto, parts) + (parts.path or "/")
        self._client: httpx.AsyncClient | None = None

    def secrets(self) -> list[str]:
        return [*super().secrets(), *([self._token] if self._token else [])]

    def target_size(self) -> tuple[int, int] | None:
        return self._size

    async def _connect(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        self._client = new_client(headers, self._verify)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _send(self, command: dict[str, Any]) -> None:
        kind = command["type"]
        if self._client is None:
            raise DriverConnectionError(f"{self.display_url}: {kind}: not connected")
        client = self._client
        await checked_call(
            self, kind, lambda: client.post(self.endpoint, json=command),
            unreachable="cannot reach the keystroke service",
            auth_failed="the keystroke service refused the token (HTTP {status}); "
                        "check ?token= or input.http_token",
            server_error="service error", why=_why)

    async def _move(self, x: int, y: int) -> None:
        await self._send({"type": "move", "x": x, "y": y})

    async def _button(self, button: MouseButton, down: bool) -> None:
        await self._send({"type": "button", "button": button, "down": down})

    async def _scroll(self, dx: int, dy: int) -> None:
        await self._send({"type": "scroll", "dx": dx, "dy": dy})

    async def _key(self, key: str, down: bool) -> None:
        await self._send({"type": "key", "key": key, "down": down})

    async def _type_text(self, text: str) -> None:
        await self._send({"type": "text", "text": text})

"""PiKVM-compatible HTTP HID API (``pikvm+https://user:pass@host``).

Talks to kvmd's HTTP API with ``httpx.AsyncClient``:

* ``GET  /api/hid`` on connect (checks the credentials and that the HID is reachable);
* ``POST /api/hid/events/send_key?key=<KeyboardEvent.code>&state=true|false``;
* ``POST /api/hid/events/send_mouse_button?button=left|right|middle&state=true|false``;
* ``POST /api/hid/events/send_mouse_move?to_x=&to_y=``, absolute, in PiKVM's int16 space
  (-32768..32767 across the screen, 0 at its centre);
* ``POST /api/hid/events/send_mouse_wheel?delta_x=&delta_y=`` (-127..127, positive
  ``delta_y`` is up, as in USB HID);
* ``POST /api/hid/print?limit=0`` with the text as a ``text/plain`` body.

Authentication: ``X-KVMD-User`` / ``X-KVMD-Passwd`` headers from the URL's user and
password. TLS certificates are verified unless the URL says ``?verify=0`` (PiKVM ships a
self-signed certificate). ``pikvm+http://`` is plain HTTP (tests, reverse proxies).

Coordinates: the target's pixel size is ``?size=WxH`` when given, else the frame size;
frame pixels are mapped to that size, then to the int16 space. An optional path after the
host is a prefix before ``/api`` (``pikvm+https://host/kvm`` → ``https://host/kvm/api/…``).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import unquote

import httpx

from .._errors import CoordinateError, DriverConnectionError, UrlError
from .._urls import parse_size, query_params, split_url
from ._driver import DriverCapabilities, InputDriver, MouseButton
from ._hid import WEB_CODE, in_table
from ._httpcall import checked_call, http_origin, new_client, verify_tls

__all__ = ["PiKvmDriver", "to_pikvm"]

log = logging.getLogger("kvmrpa.kvm.pikvm")

_TEXT_OK = frozenset(chr(c) for c in range(0x20, 0x7F)) | {"\n", "\t"}


def to_pikvm(value: int, size: int) -> int:
    """Target pixel ``value`` on an axis of ``size`` pixels -> PiKVM's int16 coordinate."""
    if size <= 1:
        return 0
    v = min(max(value, 0), size - 1)
    return round(v * 65535 / (size - 1)) - 32768


class PiKvmDriver(InputDriver):
    """Drives a PiKVM (or a compatible kvmd) through its HTTP HID API."""

    scheme: ClassVar[str] = "pikvm+https"
    capabilities: ClassVar[DriverCapabilities] = DriverCapabilities(unicode_text=False)

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        parts = split_url(url)
        proto = parts.scheme.lower().partition("+")[2]
        if parts.scheme.lower().partition("+")[0] != "pikvm" or proto not in ("http", "https"):
            raise UrlError(f"{self.display_url}: expected pikvm+https:// or pikvm+http://")
        if not parts.hostname:
            raise UrlError(f"{self.display_url}: no host")
        q = query_params(url)
        self._verify = verify_tls(q, url)
        self._size = parse_size(q["size"], "PiKVM screen size") if "size" in q else None
        self._base = http_origin(proto, parts) + parts.path.rstrip("/") + "/api"
        self._user = unquote(parts.username or "")
        self._password = unquote(parts.password or "")
        self._client: httpx.AsyncClient | None = None

    # -- transport -------------------------------------------------------------------
    def target_size(self) -> tuple[int, int] | None:
        return self._size or self.frame_size

    async def _connect(self) -> None:
        headers = {"X-KVMD-User": self._user, "X-KVMD-Passwd": self._password} if self._user else {}
        client = new_client(headers, self._verify)
        try:
            state = await self._request(client, "GET", "/hid", action="connect")
        except BaseException:
            await client.aclose()
            raise
        result = state.get("result") if isinstance(state, dict) else None
        if isinstance(result, dict) and result.get("online") is False:
            log.warning("%s: PiKVM reports its HID offline", self.display_url)
        self._client = client

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _request(self, client: httpx.AsyncClient, method: str, path: str, *,
                       action: str, params: dict[str, Any] | None = None,
                       content: str | None = None) -> Any:
        return await checked_call(
            self, action,
            lambda: client.request(
                method, self._base + path, params=params,
                content=content.encode("utf-8") if content is not None else None,
                headers={"Content-Type": "text/plain; charset=utf-8"} if content is not None else None),
            unreachable="cannot connect",
            auth_failed=f"authentication failed for user {self._user!r} (HTTP {{status}}); "
                        "check the user and password",
            server_error="server error", why=self._why)

    @staticmethod
    def _why(body: Any, resp: httpx.Response) -> str:
        if isinstance(body, dict) and isinstance(body.get("result"), dict):
            r = body["result"]
            return str(r.get("error_msg") or r.get("error") or r)
        return resp.text[:200] or resp.reason_phrase

    async def _post(self, path: str, action: str, **kw: Any) -> Any:
        if self._client is None:
            raise DriverConnectionError(f"{self.display_url}: {action}: not connected")
        return await self._request(self._client, "POST", path, action=action, **kw)

    # -- primitives ------------------------------------------------------------------
    def supports_key(self, key: str) -> bool:
        return in_table(key, WEB_CODE)

    def can_type(self, ch: str) -> bool:
        return ch in _TEXT_OK

    async def _move(self, x: int, y: int) -> None:
        size = self.target_size()
        if size is None:
            raise CoordinateError(
                f"{self.display_url}: move: the target's size is unknown; give the frame size "
                "(open_driver(url, frame_size=...) or --frame-size) or ?size=WxH in the URL")
        await self._post("/hid/events/send_mouse_move", "move",
                         params={"to_x": to_pikvm(x, size[0]), "to_y": to_pikvm(y, size[1])})

    async def _button(self, button: MouseButton, down: bool) -> None:
        await self._post("/hid/events/send_mouse_button", "mouse_button",
                         params={"button": button, "state": "true" if down else "false"})

    async def _scroll(self, dx: int, dy: int) -> None:
        # kvmd clamps each delta to int8; positive delta_y scrolls up (USB HID).
        while dx or dy:
            sx = max(-127, min(127, dx))
            sy = max(-127, min(127, dy))
            await self._post("/hid/events/send_mouse_wheel", "scroll",
                             params={"delta_x": sx, "delta_y": -sy})
            dx, dy = dx - sx, dy - sy

    async def _key(self, key: str, down: bool) -> None:
        from .keys import keys_for_char, keysym_char

        web = WEB_CODE.get(key)
        shift = False
        if web is None:  # a shifted character such as "A" or "plus"
            base, shift = keys_for_char(keysym_char(key) or key, self)
            web = WEB_CODE[base]
        if shift and down:
            await self._post_key(WEB_CODE["Shift_L"], True)
        await self._post_key(web, down)
        if shift and not down:
            await self._post_key(WEB_CODE["Shift_L"], False)

    async def _post_key(self, web: str, down: bool) -> None:
        await self._post("/hid/events/send_key", "key",
                         params={"key": web, "state": "true" if down else "false"})

    async def _type_text(self, text: str) -> None:
        await self._post("/hid/print", "type", params={"limit": 0}, content=text)


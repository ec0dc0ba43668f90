"""The HTTP transport shared by the HTTP-based drivers (PiKVM, HTTP keystroke service):
base URL and TLS options from the driver URL, the client, and one mapping of transport
failures and HTTP statuses to kvmrpa's input errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import SplitResult

import httpx
import param

from .._errors import DriverConnectionError, InputError
from .._options import url_option
from .._settings import get_settings
from ._driver import InputDriver, permanent

__all__ = ["checked_call", "http_origin", "new_client", "verify_tls"]


def http_origin(proto: str, parts: SplitResult) -> str:
    """``proto://host[:port]`` of a driver URL (IPv6 hosts bracketed)."""
    host = parts.hostname or ""
    host = host if ":" not in host else f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{proto}://{host}{port}"


def verify_tls(query: dict[str, str], url: str = "") -> bool:
    """TLS verification is on unless the URL says ``?verify=0`` (or false/no/off)."""
    return url_option(url or "https://?", "verify", param.Boolean(default=True), query=query)


def new_client(headers: dict[str, str], verify: bool) -> httpx.AsyncClient:
    """A client with the input settings' timeouts; redirects are not followed."""
    s = get_settings().input
    return httpx.AsyncClient(headers=headers, verify=verify, follow_redirects=False,
                             timeout=httpx.Timeout(s.action_timeout, connect=s.connect_timeout))


async def checked_call(
    driver: InputDriver,
    action: str,
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    unreachable: str,
    auth_failed: str,
    server_error: str,
    why: Callable[[Any, httpx.Response], str],
) -> Any:
    """Send one request and return its JSON body (or ``None``), raising
    :class:`DriverConnectionError` for transport failures, refused credentials (never
    retried) and server errors, and :class:`InputError` for a rejected request.

    ``unreachable`` and ``auth_failed`` complete the messages for a failed connection
    and for HTTP 401/403 (``{status}`` in it becomes the status code); ``server_error`` names the peer in 5xx messages; ``why``
    extracts the peer's reason from the body.
    """
    where = f"{driver.display_url}: {action}"
    try:
        resp = await send()
    except httpx.ConnectTimeout as exc:
        raise DriverConnectionError(
            f"{where}: no connection within {get_settings().input.connect_timeout:g} s "
            "(host unreachable?)") from exc
    except httpx.TimeoutException as exc:
        raise DriverConnectionError(f"{where}: no answer in time") from exc
    except httpx.HTTPError as exc:
        text = driver._clean(str(exc))
        if isinstance(exc, httpx.ConnectError) and "certificate" in text.lower():
            raise permanent(DriverConnectionError(
                f"{where}: TLS certificate not trusted ({text}); add ?verify=0 to the URL to "
                "accept a self-signed certificate")) from exc
        raise DriverConnectionError(
            f"{where}: {unreachable}: {text or type(exc).__name__}") from exc
    if resp.status_code in (401, 403):
        raise permanent(DriverConnectionError(
            f"{where}: {auth_failed.replace('{status}', str(resp.status_code))}"))
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code >= 500:
        raise DriverConnectionError(
            f"{where}: {server_error} HTTP {resp.status_code}: {driver._clean(why(body, resp))}")
    if resp.status_code >= 400 or (isinstance(body, dict) and body.get("ok") is False):
        raise InputError(
            f"{where}: rejected (HTTP {resp.status_code}): {driver._clean(why(body, resp))}")
    return body

"""URL helpers shared by sources and drivers: parsing, and redaction of credentials
(:mod:`._redact`, re-exported here)."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qs, unquote, urlsplit, urlunsplit

from ._errors import UrlError
from ._redact import is_secret_param, redact, redact_url

__all__ = ["check_scheme", "is_secret_param", "normalize_url", "parse_size", "query_params", "redact", "redact_url",
           "split_url", "vnc_address"]


def check_scheme(scheme: str) -> str:
    """``scheme`` when it is a valid URL scheme name (letters, digits, ``+ - .``)."""
    if (not isinstance(scheme, str) or not scheme
            or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()):
        raise UrlError(f"invalid URL scheme {scheme!r}")
    return scheme


def split_url(url: str) -> SplitResult:
    """``urlsplit`` with a clear error for things that are not URLs."""
    if not isinstance(url, str) or not url.strip():
        raise UrlError(f"empty or non-string URL: {url!r}")
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # "Invalid IPv6 URL", bad characters
        raise UrlError(f"{redact_url(url.strip())!r}: not a valid URL ({exc})") from None
    if not parts.scheme:
        # "user:pw@host" without a scheme: nothing marks the credentials but the "@"
        shown = redact_url(url) if "@" not in url else f"***@{url.rpartition('@')[2]}"
        raise UrlError(f"URL {shown!r} has no scheme (expected e.g. rtsp://, file://, sim://)")
    return parts


def normalize_url(url: str) -> str:
    """Canonical form used as a sharing key: lower-case scheme and host, no fragment."""
    p = split_url(url)
    netloc = p.netloc
    if "@" in netloc:
        cred, _, host = netloc.rpartition("@")
        netloc = f"{cred}@{host.lower()}"
    else:
        netloc = netloc.lower()
    return urlunsplit((p.scheme.lower(), netloc, p.path, p.query, ""))


def query_params(url: str) -> dict[str, str]:
    """Query parameters of a URL, last value wins."""
    return {k: v[-1] for k, v in parse_qs(split_url(url).query).items()}


def vnc_address(url: str) -> tuple[str, int, str | None, str | None]:
    """``(host, port, user, password)`` of a ``vnc://`` URL (port 5900 by default).

    ``vnc://secret@host`` carries the VNC password where a user would be;
    ``vnc://user:secret@host`` is for servers that also ask for a user.
    """
    parts = split_url(url)
    if not parts.hostname:
        raise UrlError(f"{redact_url(url)}: no host (vnc://host:5900)")
    try:
        port = parts.port or 5900
    except ValueError:
        raise UrlError(f"{redact_url(url)}: bad port") from None
    if parts.password is not None:
        return parts.hostname, port, unquote(parts.username or "") or None, unquote(parts.password)
    return parts.hostname, port, None, unquote(parts.username) if parts.username else None


def parse_size(text: str, what: str = "size") -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)``, with a clear error otherwise."""
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or size[0] <= 0 or size[1] <= 0 or max(size) > 65535:
        raise UrlError(f"{what} must look like WIDTHxHEIGHT (e.g. 1920x1080), got {text!r}")
    return size

"""URL helpers shared by sources and drivers: parsing and redaction of credentials."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

from ._errors import UrlError

__all__ = ["normalize_url", "query_params", "redact_url", "split_url"]

_CRED = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/]*)(?::(?P<pw>[^@/]*))?@")


def redact_url(url: str) -> str:
    """Hide the password (and bare tokens) of a URL: ``rtsp://u:***@host/...``."""

    def _sub(m: re.Match[str]) -> str:
        user, pw = m.group("user"), m.group("pw")
        if pw is None:
            # vnc://secret@host puts the password where a user would be.
            return f"{m.group('scheme')}***@" if user else m.group(0)
        return f"{m.group('scheme')}{user}:***@"

    out = _CRED.sub(_sub, url)
    return re.sub(r"(?i)([?&](?:token|password|pass|key|secret)=)[^&]*", r"\1***", out)


def split_url(url: str) -> SplitResult:
    """``urlsplit`` with a clear error for things that are not URLs."""
    if not isinstance(url, str) or not url.strip():
        raise UrlError(f"empty or non-string URL: {url!r}")
    parts = urlsplit(url.strip())
    if not parts.scheme:
        raise UrlError(f"URL {redact_url(url)!r} has no scheme (expected e.g. rtsp://, file://, sim://)")
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

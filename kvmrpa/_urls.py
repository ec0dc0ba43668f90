"""URL helpers shared by sources and drivers: parsing and redaction of credentials."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit, urlunsplit

from ._errors import UrlError

__all__ = ["is_secret_param", "normalize_url", "query_params", "redact_url", "split_url",
           "vnc_address"]

# The credentials run to the *last* "@" of the authority (as urlsplit reads them), so a
# password with a bare "@" in it ("rtsp://admin:p@ss@cam/") is hidden whole.
_CRED = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/?#\s]*)@")


def redact_url(url: str) -> str:
    """Hide the password (and bare tokens) of a URL: ``rtsp://u:***@host/...``."""

    def _sub(m: re.Match[str]) -> str:
        user, colon, _pw = m.group("cred").partition(":")
        if not colon:
            # vnc://secret@host puts the password where a user would be.
            return f"{m.group('scheme')}***@" if user else m.group(0)
        return f"{m.group('scheme')}{user}:***@"

    out = _CRED.sub(_sub, url)
    return _SECRET_PARAM.sub(r"\1***", out)


#: Query parameters whose values are secrets: ``token``, ``access_token``, ``api_key``,
#: ``password``, ``passwd``, ``pwd``, ``secret``, ``auth`` … (a suffix, any prefix).
_SECRET_NAME = r"[\w.-]*?(?:token|password|passwd|pass|pwd|key|secret|auth)"
_SECRET_PARAM = re.compile(rf"(?i)([?&]{_SECRET_NAME}=)[^&#\s]*")


def is_secret_param(name: str) -> bool:
    """Whether the query parameter ``name`` holds a secret (its value is redacted)."""
    return re.fullmatch(_SECRET_NAME, name, re.IGNORECASE) is not None


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

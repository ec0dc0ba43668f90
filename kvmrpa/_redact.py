"""Redaction: the one function that hides secrets in text before anyone sees it.

:func:`redact` is applied to every log record of the ``kvmrpa`` loggers (installed by
:func:`install_log_redaction`, done on import), to errors printed by the command line,
to JSON output and run records (:func:`redact_data`) and to strings shown in pages.

What it hides:

* the credentials of a URL of any scheme (``rtsp://``, ``vnc://``, ``device://``,
  ``sim://`` …), percent-encoded or not. A password may hold ``/ # ? @ %`` or spaces
  unencoded: the credentials run from ``scheme://`` to the *last* ``@`` before the end of
  the line or the next ``scheme://``, so ``rtsp://admin:p/a s@s#w@cam/x`` becomes
  ``rtsp://admin:***@cam/x``. Without a ``:`` the whole user part is hidden
  (``vnc://secret@host`` carries the VNC password there). A URL that starts with a
  plain host (``rtsp://cam/x``) has no credentials. This errs on the side of hiding:
  after ``user:``, an ``@`` later on the same line hides what is in between
  (``rtsp://u:pw@h/a@b`` shows as ``rtsp://u:***@b``).
* the value of a query parameter whose name ends in one of :data:`SECRET_KEYS`
  (case-insensitive, any prefix: ``access_token``, ``X-Api-Key``), up to the next ``&``,
  ``#`` or whitespace.
* values registered with :func:`register_secret` (secrets resolved at run time, such
  as ``${env:NAME}`` references), wherever they appear.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["MASK", "SECRET_KEYS", "install_log_redaction", "is_secret_name", "is_secret_param",
           "password_span", "plain_secret_in_url", "redact", "redact_data", "redact_url",
           "register_secret"]

MASK = "***"

#: Query parameter names (suffixes, case-insensitive) whose values are secrets.
SECRET_KEYS: tuple[str, ...] = ("password", "passwd", "pass", "pwd", "token", "apikey",
                                "api_key", "key", "secret", "sig", "signature", "auth")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_FIRST_PART = re.compile(r"[^/?#\s]*")
_SECRET_NAME = r"[\w.-]*?(?:" + "|".join(sorted(map(re.escape, SECRET_KEYS), key=len,
                                                       reverse=True)) + ")"
_SECRET_PARAM = re.compile(rf"(?i)([?&;]{_SECRET_NAME}=)[^&#\s]*")
#: Names of variables and parameters that hold secrets (``db_password``, ``API-TOKEN``).
_SECRET_WORD = re.compile(r"(?i)(?:^|[\W_])(?:password|passwd|pass|pwd|token|apikey|api_key|"
                          r"secret|signature|auth|credentials?|(?:api|secret|private|access|signing)[_-]?key)s?"
                          r"(?:$|[\W_])")

_secrets_lock = threading.Lock()
_secrets: dict[str, None] = {}  # insertion-ordered, bounded
_MAX_SECRETS = 256
_MIN_SECRET = 4


def register_secret(value: str) -> None:
    """Hide ``value`` (and its percent-encoded form) wherever :func:`redact` sees it.

    For secrets resolved at run time; values shorter than four characters are ignored
    (they would hide ordinary words), and only the most recent 256 are kept.
    """
    if not isinstance(value, str) or len(value) < _MIN_SECRET:
        return
    with _secrets_lock:
        for v in {value, quote(value, safe="")}:
            _secrets.pop(v, None)
            _secrets[v] = None
        while len(_secrets) > _MAX_SECRETS:
            _secrets.pop(next(iter(_secrets)))


def _hide_credentials(text: str) -> str:
    if "@" not in text:
        return text
    schemes = list(_SCHEME.finditer(text))
    out: list[str] = []
    pos = 0
    for i, m in enumerate(schemes):
        begin = m.end()
        if begin < pos:  # a "scheme://" inside credentials already hidden
            continue
        end = schemes[i + 1].start() if i + 1 < len(schemes) else len(text)
        newline = text.find("\n", begin, end)
        if newline >= 0:
            end = newline
        at = text.rfind("@", begin, end)
        if at < 0:
            continue
        if m.group(0).lower() != "vnc://":
            # "rtsp://cam/x … ops@corp": a host first, so no credentials to hide
            part = _FIRST_PART.match(text, begin)
            assert part is not None  # the pattern matches the empty string too
            first = part.group(0)
            if first.startswith("[") or (":" not in first and "@" not in first):
                continue
        user, colon, pw = text[begin:at].partition(":")
        # vnc://secret@host with an empty "password": the whole part is the secret
        vnc_only = m.group(0).lower() == "vnc://" and not pw
        shown = (f"{user}:{MASK}" if colon and not vnc_only
                 and not any(c in user for c in "/?# \t") else MASK)
        out += [text[pos:begin], shown]
        pos = at
    out.append(text[pos:])
    return "".join(out)


def password_span(url: str) -> tuple[int, int] | None:
    """Where the password of a single URL is (``url[start:end]``), or ``None``.

    The same reading as :func:`redact`: credentials run to the last ``@``; a user part
    holding ``/ ? #`` or whitespace is a path, not credentials. ``vnc://secret@host``
    has its password where a user would be. Leading whitespace is skipped.
    """
    if not isinstance(url, str):
        return None
    # ${env:NAME} has a ":" of its own: read the URL with each reference masked
    url = _ENV_REF.sub(lambda r: "\0" * len(r.group(0)), url)
    m = _SCHEME.match(url, len(url) - len(url.lstrip()))
    if m is None:
        return None
    begin = m.end()
    end = len(url)
    nxt = _SCHEME.search(url, begin)
    if nxt is not None:
        end = nxt.start()
    at = url.rfind("@", begin, end)
    if at < 0:
        return None
    user, colon, pw = url[begin:at].partition(":")
    vnc = url[m.start():begin].lower() == "vnc://"
    if not vnc and any(c in user for c in "/?# \t\r\n"):
        return None
    if colon and not (vnc and (not pw or any(c in user for c in "/?# \t\r\n"))):
        return begin + len(user) + 1, at
    if vnc and (user or colon):  # vnc://secret@host: the password where a user would be
        return begin, at
    return None


def plain_secret_in_url(url: str) -> str | None:
    """What in ``url`` is a secret written in plain text (``None`` when nothing is):
    a password, or the value of a secret query parameter, that is not entirely
    ``${env:NAME}`` references."""
    if not isinstance(url, str):
        return None
    span = password_span(url)
    if span is not None and _ENV_ONLY.sub("", url[span[0]:span[1]]):
        return "a plain-text password"
    query = url.partition("?")[2].partition("#")[0]
    for part in re.split(r"[&;]", query):
        name, eq, value = part.partition("=")
        if eq and value.strip() and is_secret_param(name.strip()) and _ENV_ONLY.sub("", value):
            return f"a plain-text {name.strip()}= value"
    return None


_ENV_REF = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}")
_ENV_ONLY = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}|\s+")


def redact(text: Any) -> Any:
    """``text`` with URL credentials, secret query values and registered secrets hidden.

    Anything that is not a ``str`` is returned unchanged.
    """
    if not isinstance(text, str) or not text:
        return text
    out = _hide_credentials(text)
    if "=" in out:
        out = _SECRET_PARAM.sub(rf"\1{MASK}", out)
    if _secrets:
        with _secrets_lock:
            known = list(_secrets)
        for value in known:
            if value in out:
                out = out.replace(value, MASK)
    return out


def redact_url(url: str) -> str:
    """Hide the password (and secret query values) of a URL: ``rtsp://u:***@host/...``."""
    return redact(url)


def redact_data(value: Any, _depth: int = 0) -> Any:
    """A copy of a JSON-like value with every string (keys too) passed through
    :func:`redact`; values of keys that name a secret (:func:`is_secret_name`) become
    ``***``."""
    if isinstance(value, str):
        return redact(value)
    if _depth > 64:
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = redact(k) if isinstance(k, str) else k
            if isinstance(k, str) and isinstance(v, str) and v and is_secret_name(k) \
                    and not v.startswith("${env:"):
                out[key] = MASK
            else:
                out[key] = redact_data(v, _depth + 1)
        return out
    if isinstance(value, list | tuple):
        return type(value)(redact_data(v, _depth + 1) for v in value) \
            if isinstance(value, list) else tuple(redact_data(v, _depth + 1) for v in value)
    return value


def is_secret_param(name: str) -> bool:
    """Whether the query parameter ``name`` holds a secret (its value is redacted)."""
    return re.fullmatch(_SECRET_NAME, name, re.IGNORECASE) is not None


def is_secret_name(name: str) -> bool:
    """Whether a variable or field called ``name`` looks like it holds a secret
    (``password``, ``db_pass``, ``apiKey``, ``auth_token`` …)."""
    if not isinstance(name, str):
        return False
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # camelCase → camel_Case
    return _SECRET_WORD.search(spaced) is not None


# -- logging -----------------------------------------------------------------------------
_installed = False
_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Make every log record of a ``kvmrpa`` logger pass through :func:`redact`.

    A log record factory (chained to the one in place) renders the message and any
    exception text once, redacted, whatever handler or formatter later shows it.
    Idempotent.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if record.name == "kvmrpa" or record.name.startswith("kvmrpa."):
                _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to logging's own error report
        return
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact(text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


install_log_redaction()

"""App-mode security of the dashboard: who a session's user is, what their role allows,
the audit log, and the login pages (a Panel auth provider).

``kvmrpa serve`` installs a :class:`Policy` with :func:`configure`. Handlers that change
anything call :func:`require` (or are decorated with :func:`requires`) first: the
session's user is read from its signed ``user`` cookie, their role from the auth file,
and the action is allowed or refused with :class:`~kvmrpa.AccessDenied`; either way it
is written to the audit log. Roles, weakest first, and what each adds:

* ``viewer``: watch (live view, states, logs);
* ``operator``: run, stop, pause, step, "Run on current frame", console mode;
* ``editor``: edit and save flows, save templates;
* ``admin``: everything, and code-bearing nodes (``Node.evaluates_code``, e.g.
  ``python``) from the browser, only when the server was started with ``--allow-code``.

A code node loaded from a flow file still runs for an operator; it just cannot be
created, edited or tried from a browser. With no auth file (loopback only) the single
local user is ``admin``. Without a policy (a notebook, ``panel serve`` of a notebook)
the kernel's user is the local admin and code is allowed, as in any notebook.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import inspect
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kvmrpa._auth import AuthFile, LoginThrottle, role_at_least
from kvmrpa._errors import AccessDenied, ConfigError

__all__ = [
    "ACTIONS",
    "AuditLog",
    "Policy",
    "Principal",
    "auth_provider",
    "can",
    "configure",
    "current_principal",
    "get_policy",
    "is_code_type",
    "palette_types",
    "require",
    "requires",
    "session_banner",
]

log = logging.getLogger("kvmrpa.widgets.auth")

#: The weakest role allowed each action.
ACTIONS: dict[str, str] = {
    "watch": "viewer",
    "run": "operator", "stop": "operator", "pause": "operator", "step": "operator",
    "try": "operator", "console": "operator",
    "edit": "editor", "save": "editor", "template": "editor",
    "code": "admin",
}

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """The user behind a request: name, role (None: no valid login) and address."""

    user: str | None
    role: str | None
    address: str | None = None


LOCAL = Principal("local", "admin", None)


class AuditLog:
    """Who did what when: one JSON object per line, appended with one ``write`` on an
    ``O_APPEND`` descriptor. Console input and refusals are coalesced per user and
    action (at most one line per ``coalesce_s``); the ones left out are counted on the
    next line of that user and action, or on a ``coalesced`` summary line written by
    :meth:`flush` (called by any later write once the window has passed, and when the
    server stops), so no burst goes uncounted. The file is rotated to ``<name>.1`` past
    ``max_bytes``."""

    def __init__(self, path: str | Path, max_bytes: int = 16 * 2 ** 20,
                 coalesce_s: float = 2.0) -> None:
        self.path = Path(path)
        self.max_bytes, self.coalesce_s = max_bytes, coalesce_s
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str, bool], float] = {}
        self._suppressed: dict[tuple[str, str, bool], int] = {}
        self._suppressed_by: dict[tuple[str, str, bool], Principal] = {}

    def flush(self, force: bool = True) -> None:
        """Write a summary line for every user and action with coalesced lines not yet
        counted (only those whose window has passed unless ``force``)."""
        now = time.monotonic()
        with self._lock:
            for key in list(self._suppressed):
                if not force and now - self._last.get(key, -1e9) < self.coalesce_s:
                    continue
                count = self._suppressed.pop(key)
                who = self._suppressed_by.pop(key)
                self._append({"ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                              "user": who.user, "role": who.role, "address": who.address,
                              "action": key[1], "allowed": key[2], "coalesced": count,
                              "summary": True})

    def write(self, who: Principal, action: str, allowed: bool, target: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        key = (who.user or "", action, allowed)
        now = time.monotonic()
        with self._lock:
            coalesced = ((action == "console" or not allowed)
                         and now - self._last.get(key, -1e9) < self.coalesce_s)
            if coalesced:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                self._suppressed_by[key] = who
            else:
                if action == "console" or not allowed:
                    self._last[key] = now
                    if len(self._last) > 4096:
                        self._last.clear()
                record: dict[str, Any] = {
                    "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "user": who.user, "role": who.role, "address": who.address,
                    "action": action, "allowed": allowed}
                if target is not None:
                    record["target"] = str(target)[:200]
                if detail:
                    record["detail"] = detail
                if self._suppressed.get(key):
                    record["coalesced"] = self._suppressed.pop(key)
                    self._suppressed_by.pop(key, None)
                self._append(record)
        if self._suppressed:
            self.flush(force=False)

    def _append(self, record: dict[str, Any]) -> None:
        """One line, one ``write`` (the lock is held)."""
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False, default=str)
                + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("audit log %s: cannot write (%s); action %s by %s was %s",
                      self.path, exc.strerror, record["action"], record["user"],
                      "allowed" if record["allowed"] else "refused")

    def read(self) -> list[dict[str, Any]]:
        """Every record of the current file (for tests and tools)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Policy:
    """What ``kvmrpa serve`` was started with."""

    accounts: AuthFile | None = None  # None: the single local user, admin
    allow_code: bool = False
    audit: AuditLog | None = None
    cookie_secret: str | None = None
    tls: bool = False
    insecure_http: bool = False
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


_policy: Policy | None = None


def configure(policy: Policy | None) -> None:
    """Install the process-wide policy (None: notebook mode, the local user is admin)."""
    global _policy
    _policy = policy


def get_policy() -> Policy | None:
    return _policy


def _session_request() -> Any | None:
    import panel as pn

    doc = pn.state.curdoc
    ctx = getattr(doc, "session_context", None) if doc is not None else None
    return getattr(ctx, "request", None) if ctx is not None else None


def _decode_user(policy: Policy, cookie: str | None) -> str | None:
    if not cookie or not policy.cookie_secret:
        return None
    from panel.config import config
    from tornado.web import decode_signed_value

    value = decode_signed_value(policy.cookie_secret, "user", cookie,
                                max_age_days=config.oauth_expiry)
    return None if value is None else value.decode("utf-8", "replace")


def current_principal() -> Principal:
    """The user of the session whose callback is running (fails closed: with an auth
    file and no session or no valid cookie, a principal with no role)."""
    policy = _policy
    if policy is None:
        return LOCAL
    request = _session_request()
    address = getattr(request, "remote_ip", None) if request is not None else None
    if policy.accounts is None:
        return Principal("local", "admin", address)
    if request is None:
        return Principal(None, None, None)
    user = _decode_user(policy, request.cookies.get("user"))
    try:
        role = policy.accounts.role_of(user)
    except ConfigError as exc:  # the file became wrong: nobody gets a role until fixed
        log.error("%s", exc)
        role = None
    return Principal(user if role else None, role, address)


def _allows(who: Principal, action: str, code: bool) -> bool:
    needed = ACTIONS.get(action, "admin")
    if not role_at_least(who.role, needed):
        return False
    if code or action == "code":
        policy = _policy
        return role_at_least(who.role, "admin") and (policy is None or policy.allow_code)
    return True


def can(action: str, *, code: bool = False) -> bool:
    """Whether the current user may do ``action`` (``code``: on a code-bearing node).
    For showing or hiding controls; the handlers still call :func:`require`."""
    return _allows(current_principal(), action, code)


def _why(who: Principal, action: str, code: bool) -> str:
    if who.role is None:
        return "no valid login"
    if code or action == "code":
        return ("code-bearing nodes need the admin role on a server started with "
                "--allow-code")
    return f"needs the {ACTIONS.get(action, 'admin')} role"


def require(action: str, target: str | None = None, *, code: bool = False,
            detail: dict[str, Any] | None = None) -> Principal:
    """Allow ``action`` for the current user or raise :class:`AccessDenied`; audited
    either way (in app mode). ``code``: the action touches a code-bearing node."""
    who = current_principal()
    ok = _allows(who, action, code)
    policy = _policy
    if policy is not None and policy.audit is not None:
        extra = dict(detail or {})
        if code:
            extra["code"] = True
        policy.audit.write(who, action, ok, target, extra or None)
    if not ok:
        what = f"{action} {target}" if target else action
        message = (f"{who.user or 'anonymous'} ({who.role or 'no role'}) may not "
                   f"{what}: {_why(who, action, code)}")
        log.warning("refused: %s", message)
        raise AccessDenied(message)
    return who


def _default_target(self: Any, args: tuple[Any, ...]) -> str | None:
    if args and isinstance(args[0], str):
        return args[0]
    node_id = getattr(self, "node_id", None)
    if isinstance(node_id, str):
        return node_id
    flow = getattr(self, "flow", None)
    name = getattr(flow, "name", None)
    return name if isinstance(name, str) else None


def _tell(self: Any, text: str) -> None:
    for attr in ("_show_error", "_tell"):
        fn = getattr(self, attr, None)
        if callable(fn):
            try:
                if attr == "_tell" and len(inspect.signature(fn).parameters) >= 2:
                    fn(text, "danger")
                else:
                    fn(text)
            except Exception:  # showing the refusal must never break the handler
                log.debug("could not show the refusal", exc_info=True)
            return
    send = getattr(self, "_send_msg", None)
    if callable(send):
        try:
            send({"kind": "note", "text": text})
        except Exception:
            log.debug("could not show the refusal", exc_info=True)


def requires(action: str, *, code: Callable[..., bool] | None = None) -> Callable[[_F], _F]:
    """Decorate a UI handler method: :func:`require` ``action`` first; when refused,
    show the reason on the component (its error pane or a note) and return None.
    ``code(self, *args, **kwargs)`` says whether the call touches a code-bearing node."""

    def wrap(fn: _F) -> _F:
        def check(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
            try:
                require(action, _default_target(self, args),
                        code=bool(code(self, *args, **kwargs)) if code else False)
            except AccessDenied as exc:
                _tell(self, str(exc))
                return False
            return True

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                if not check(self, args, kwargs):
                    return None
                return await fn(self, *args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not check(self, args, kwargs):
                return None
            return fn(self, *args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return wrap


def is_code_type(node_or_type: Any) -> bool:
    """Whether a node, node class or registered type name evaluates code."""
    if isinstance(node_or_type, str):
        from kvmrpa.nodes import node_types

        cls = node_types().get(node_or_type)
        return bool(getattr(cls, "evaluates_code", node_or_type == "python"))
    return bool(getattr(node_or_type, "evaluates_code", False))


def palette_types(types: list[str]) -> list[str]:
    """The node types the current user may create from the browser."""
    if can("code"):
        return list(types)
    return [t for t in types if not is_code_type(t)]


# -- the page header ---------------------------------------------------------------------
def session_banner() -> str:
    """HTML for the top of the page: who is signed in (with log out) and, on a server
    that was told to use plain HTTP off loopback, a warning."""
    policy = _policy
    if policy is None:
        return ""
    who = current_principal()
    parts = []
    if policy.insecure_http:
        parts.append('<div role="alert" aria-label="Insecure connection" style="background:'
                     '#c62828;color:#fff;font:bold 13px sans-serif;padding:6px 10px">'
                     "Warning: this dashboard is served over plain HTTP (--insecure-http): "
                     "passwords and session cookies can be read on the network.</div>")
    if policy.accounts is not None and who.user:
        mode = "" if policy.allow_code else " · code nodes off"
        parts.append(f'<div aria-label="Signed in" style="font:12px sans-serif;color:#37474f">'
                     f"signed in as <b>{html.escape(who.user)}</b> ({html.escape(who.role or '')})"
                     f'{mode} · <a href="./logout">log out</a></div>')
    return "".join(parts)


# -- login ---------------------------------------------------------------------------------
_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kvmrpa: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px sans-serif;background:#eceff1;display:flex;justify-content:center;
margin:0;padding-top:12vh}}form{{background:#fff;padding:24px 28px;border-radius:6px;
box-shadow:0 1px 4px #0003;width:300px}}label{{display:block;margin:10px 0 4px}}
input{{width:100%;box-sizing:border-box;padding:7px;font-size:15px}}
button{{margin-top:16px;width:100%;padding:8px;font-size:15px;background:#1565c0;color:#fff;
border:0;border-radius:4px}}.error{{color:#c62828;margin-top:10px}}
.warn{{background:#c62828;color:#fff;padding:6px;margin-bottom:10px;font-weight:bold}}</style>
</head><body><form action="{action}" method="post">{warning}
<h2 style="margin-top:0">kvmrpa</h2>
<label for="username">User</label><input id="username" name="username" autocomplete="username" autofocus required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>{error}</form></body></html>"""

_INSECURE = ('<div class="warn" role="alert">Plain HTTP (--insecure-http): the password '
             "travels unencrypted.</div>")


def _login_handler_class() -> type[Any]:
    import tornado.escape
    from panel.auth import BasicLoginHandler, _validate_next_url
    from panel.config import config
    from panel.io.state import state

    class LoginHandler(BasicLoginHandler):
        """The login form: scrypt check off the loop, throttled per user and address,
        cookies HttpOnly, SameSite=Strict and (with TLS) Secure."""

        def set_cookie(self, name: str, value: str | bytes, *args: Any, **kw: Any) -> None:
            kw["httponly"] = True
            kw["samesite"] = "Strict"
            policy = _policy
            if policy is not None and policy.tls:
                kw["secure"] = True
            super().set_cookie(name, value, *args, **kw)

        def get(self) -> None:
            error = self.get_argument("error", "")
            next_url = _validate_next_url(self.get_argument("next", state.base_url))
            if next_url:
                self.set_cookie("next_url", next_url)
            policy = _policy
            self.set_header("Cache-Control", "no-store")
            self.write(_LOGIN_PAGE.format(
                action=html.escape(self._login_endpoint),
                warning=_INSECURE if policy is not None and policy.insecure_http else "",
                error=f'<div class="error" role="alert">{html.escape(error[:200])}</div>'
                if error else ""))

        async def post(self) -> None:
            policy = _policy
            user = self.get_argument("username", "")[:256]
            password = self.get_argument("password", "")[:4096]
            address = self.request.remote_ip or "?"
            if policy is None or policy.accounts is None:
                self.set_status(404)
                return
            try:
                known = user in policy.accounts.accounts()
            except ConfigError as exc:
                log.error("%s", exc)
                known = False
            shown = repr(user) if known else "(unknown user)"
            keys = [f"user:{user}", f"addr:{address}"]
            throttle = policy.throttle
            wait = throttle.reserve(keys)
            failures = max(throttle.failures(k) for k in keys)
            if wait == float("inf"):
                log.warning("login: refused an attempt for %s from %s unchecked: %d recent "
                            "failures, the queue of delayed attempts is full", shown, address,
                            failures)
                self._fail("Too many attempts; wait a minute and try again.", 429)
                return
            if wait > 0:
                log.warning("login: delaying the attempt for %s from %s by %.2f s "
                            "(%d failed attempts in the last %.0f s)", shown, address, wait,
                            failures, throttle.window)
                await asyncio.sleep(wait)
            loop = asyncio.get_running_loop()
            try:
                ok = await loop.run_in_executor(None, policy.accounts.check, user, password)
            except ConfigError as exc:
                log.error("%s", exc)
                ok = False
            who = Principal(user if known else None,
                            policy.accounts.role_of(user) if ok else None, address)
            if policy.audit is not None:
                policy.audit.write(who, "login", ok, None,
                                   {"delayed_s": round(wait, 3)} if wait else None)
            if not ok:
                throttle.failed(keys)
                self._fail("Invalid username or password.")
                return
            throttle.succeeded(keys)
            self.set_current_user(user)
            self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)) or "/")

        def _fail(self, text: str, status: int | None = None) -> None:
            uri = self.request.uri.split("?", 1)[0]
            if status is not None:
                self.set_status(status)
                self.write(_LOGIN_PAGE.format(
                    action=html.escape(self._login_endpoint), warning="",
                    error=f'<div class="error" role="alert">{html.escape(text)}</div>'))
                return
            self.redirect(uri + "?error=" + tornado.escape.url_escape(text))

        def set_current_user(self, user: str) -> None:
            self.clear_cookie("is_guest")
            self.set_secure_cookie("user", user, expires_days=config.oauth_expiry,
                                   path=config.cookie_path)

    return LoginHandler


def auth_provider() -> Any:
    """The Panel auth provider ``kvmrpa serve`` passes to the server: our login page and
    handler; a request is logged in when its signed ``user`` cookie names an account that
    is still in the auth file (``is_guest`` cookies are never honoured)."""
    from panel.auth import BasicAuthProvider
    from panel.config import config

    handler = _login_handler_class()

    from panel.auth import LogoutHandler

    class Logout(LogoutHandler):
        """Clear the session cookies and go back to the login page (no CDN page)."""

        def get(self) -> None:
            for name in ("user", "id_token", "access_token", "refresh_token", "is_guest",
                         "next_url"):
                self.clear_cookie(name, path=config.cookie_path)
            self.redirect(self._login_endpoint)

    class Provider(BasicAuthProvider):
        @property
        def login_handler(self) -> type:
            handler._login_endpoint = self._login_endpoint
            return handler

        @property
        def logout_handler(self) -> type:
            Logout._login_endpoint = self._login_endpoint
            return Logout

        @property
        def get_user(self) -> Callable[[Any], Any]:  # bokeh's User: the name, or None
            def get_user(request_handler: Any) -> str | None:
                raw = request_handler.get_secure_cookie("user", max_age_days=config.oauth_expiry)
                if not raw:
                    return None
                user = raw.decode("utf-8", "replace")
                policy = _policy
                try:
                    known = policy is not None and policy.accounts is not None and \
                        policy.accounts.role_of(user) is not None
                except ConfigError as exc:
                    log.error("%s", exc)
                    known = False
                if not known:
                    return None
                from panel.io.state import state
                from tornado.websocket import WebSocketHandler

                if isinstance(request_handler, WebSocketHandler):
                    state._active_users[user] += 1
                return user
            return get_user

        def _remove_user(self, session_context: Any) -> None:
            with contextlib.suppress(KeyError):
                super()._remove_user(session_context)

    return Provider()



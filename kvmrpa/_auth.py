"""Dashboard accounts without any UI package: roles, password hashes, the auth file,
and the login throttle.

The auth file has one ``user:hash:role`` line per account (blank lines and ``#``
comments ignored). ``hash`` is :func:`hash_password`'s self-describing scrypt string
``$scrypt$n=32768,r=8,p=1$<salt>$<key>`` (URL-safe base64, no padding), made by
``kvmrpa passwd``; a line holding a plain-text password is refused. Roles are ordered
``viewer < operator < editor < admin``.

:class:`LoginThrottle` limits login attempts per key (a user name, a client address):
a few free failures per window, then each attempt is scheduled an exponentially growing
delay after the previous one, so parallel attempts queue instead of multiplying.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ConfigError

__all__ = [
    "ROLES",
    "Account",
    "AuthFile",
    "LoginThrottle",
    "hash_password",
    "parse_auth_file",
    "role_at_least",
    "set_account",
    "verify_password",
]

#: Roles, weakest first: each includes what the ones before it may do.
ROLES: tuple[str, ...] = ("viewer", "operator", "editor", "admin")

_SCHEME = "$scrypt$"
_N, _R, _P = 2 ** 15, 8, 1
_SALT_BYTES, _KEY_BYTES = 16, 32
# Bounds on parameters read from a file, so a hostile line cannot ask for gigabytes.
_MAX_N, _MAX_R, _MAX_P = 2 ** 20, 32, 16


def role_at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` includes ``needed`` (``None``, or an unknown role: never)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2) + (1 << 20)


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """A salted scrypt hash of ``password`` in the self-describing format above."""
    if not password:
        raise ConfigError("password: must not be empty")
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                         maxmem=_maxmem(n, r, p), dklen=_KEY_BYTES)
    return f"{_SCHEME}n={n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, key) of a hash string; ValueError when it is not one."""
    if not text.startswith(_SCHEME):
        raise ValueError("not a scrypt hash")
    params, salt, key = text[len(_SCHEME):].split("$")
    values = dict(item.split("=", 1) for item in params.split(","))
    n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise ValueError("scrypt parameters out of range")
    salt_b, key_b = _unb64(salt), _unb64(key)
    if len(salt_b) < 8 or len(key_b) < 16:
        raise ValueError("salt or key too short")
    return n, r, p, salt_b, key_b


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the hash ``stored`` (compared in constant time)."""
    try:
        n, r, p, salt, key = _parse_hash(stored)
    except (ValueError, KeyError):
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                         maxmem=_maxmem(n, r, p), dklen=len(key))
    return hmac.compare_digest(got, key)


@functools.cache
def _dummy_hash() -> str:
    """A hash nobody's password matches, checked for unknown users so that a wrong user
    name takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Account:
    """One line of the auth file."""

    user: str
    hash: str = field(repr=False)
    role: str


def _passwd_hint(path: Path, user: str, role: str = "ROLE") -> str:
    return f"set a hash with: kvmrpa passwd {user} --role {role} {path}"


def parse_auth_file(path: str | Path) -> dict[str, Account]:
    """The accounts of an auth file, by user name.

    Raises :class:`ConfigError` naming the file and line for an unreadable file, a line
    that is not ``user:hash:role``, a plain-text password (naming ``kvmrpa passwd``) or
    an unknown role.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"auth file {path}: cannot read it ({reason})") from exc
    accounts: dict[str, Account] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, rest = line.partition(":")
        secret, sep2, role = rest.rpartition(":")
        if not sep or not user:
            raise ConfigError(f"auth file {path}, line {n}: expected 'user:hash:role'")
        if not sep2 or not secret.startswith(_SCHEME):
            role_hint = role if sep2 and role in ROLES else "ROLE"
            raise ConfigError(f"auth file {path}, line {n}: user {user!r} has a plain-text "
                              f"password, which is refused; {_passwd_hint(path, user, role_hint)}")
        try:
            _parse_hash(secret)
        except (ValueError, KeyError):
            raise ConfigError(f"auth file {path}, line {n}: user {user!r}: the password hash "
                              f"is damaged; {_passwd_hint(path, user)}") from None
        if role not in ROLES:
            raise ConfigError(f"auth file {path}, line {n}: user {user!r}: role {role!r} is "
                              f"not one of {', '.join(ROLES)}")
        accounts[user] = Account(user, secret, role)
    if not accounts:
        raise ConfigError(f"auth file {path}: no 'user:hash:role' line; add one with: "
                          f"kvmrpa passwd USER --role ROLE {path}")
    return accounts


class AuthFile:
    """An auth file read again whenever it changes on disk (a role changed with
    ``kvmrpa passwd`` applies to the next action); a file that became unreadable or
    wrong keeps the last good accounts and the error is logged by the caller."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._accounts = parse_auth_file(self.path)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def accounts(self) -> dict[str, Account]:
        stamp = self._stat()
        with self._lock:
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                self._accounts = parse_auth_file(self.path)
            return self._accounts

    def role_of(self, user: str | None) -> str | None:
        if not user:
            return None
        account = self.accounts().get(user)
        return None if account is None else account.role

    def check(self, user: str, password: str) -> bool:
        """Whether ``user`` / ``password`` is an account (slow on purpose: scrypt; as
        slow for an unknown user)."""
        account = self.accounts().get(user)
        ok = verify_password(password, account.hash if account else _dummy_hash())
        return ok and account is not None


def set_account(path: str | Path, user: str, password: str, role: str | None) -> str:
    """Create or update ``user``'s line in the auth file (atomically: a temporary file in
    the same folder replaces it). ``role`` None keeps the user's role. Returns the role."""
    path = Path(path)
    if not user or any(c in user for c in ":\r\n#") or user != user.strip():
        raise ConfigError(f"user name {user!r}: must be non-empty, without ':', '#', "
                          "line breaks or surrounding spaces")
    if role is not None and role not in ROLES:
        raise ConfigError(f"--role {role!r}: not one of {', '.join(ROLES)}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"auth file {path}: cannot read it ({exc})") from exc
    out, found = [], False
    for raw in lines:
        name = raw.strip().partition(":")[0]
        if raw.strip() and not raw.strip().startswith("#") and name == user:
            if found:
                continue  # a duplicate line of the same user is dropped
            old_role = raw.strip().rpartition(":")[2]
            role = role or (old_role if old_role in ROLES else None)
            if role is None:
                raise ConfigError(f"user {user!r} has no valid role in {path}; give --role")
            out.append(f"{user}:{hash_password(password)}:{role}")
            found = True
        else:
            out.append(raw)
    if not found:
        if role is None:
            raise ConfigError(f"user {user!r} is new: give --role ({', '.join(ROLES)})")
        out.append(f"{user}:{hash_password(password)}:{role}")
    folder = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o770 if path.exists() else 0o600  # never world-readable
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    assert role is not None  # the loop above set it or refused
    return role


class LoginThrottle:
    """Per-key login limits: ``free`` failures per ``window`` seconds without delay;
    after that each attempt waits ``delay * 2**k`` (k = failures beyond the free ones,
    capped at ``max_delay``) after the key's previous attempt. Thread-safe; the caller
    sleeps (asynchronously) for what :meth:`reserve` returns.
    """

    def __init__(self, free: int = 5, window: float = 60.0, delay: float = 1.0,
                 max_delay: float = 30.0, max_keys: int = 10_000) -> None:
        self.free, self.window, self.delay, self.max_delay = free, window, delay, max_delay
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._next: dict[str, float] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window]
        if times:
            self._failures[key] = times[-(self.free + 64):]
        else:
            self._failures.pop(key, None)
        return times

    def delay_for(self, failures: int) -> float:
        """The wait before the next attempt after ``failures`` recent failures."""
        excess = failures - self.free
        if excess < 0:
            return 0.0
        return min(self.delay * 2 ** min(excess, 30), self.max_delay)

    @property
    def max_wait(self) -> float:
        """The longest an attempt is queued; one that would wait longer is refused."""
        return 4 * self.max_delay

    def reserve(self, keys: list[str], now: float | None = None) -> float:
        """Seconds the attempt for ``keys`` must wait before it is checked (0: at once),
        or ``inf`` when it would wait over :attr:`max_wait` (refuse it unchecked).
        Reserves the slot, so the next attempt on the same key waits after this one."""
        now = time.monotonic() if now is None else now
        with self._lock:
            start = now
            for key in keys:
                wait = self.delay_for(len(self._recent(key, now)))
                if wait > 0:
                    start = max(start, max(self._next.get(key, now), now) + wait)
            if start - now > self.max_wait:
                return float("inf")
            for key in keys:
                if start > now:
                    self._next[key] = start
            if len(self._next) > self.max_keys:  # forget the stalest slots
                for key in sorted(self._next, key=self._next.__getitem__)[: len(self._next) // 2]:
                    del self._next[key]
            return start - now

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, []).append(now)
            if len(self._failures) > self.max_keys:
                for key in list(self._failures)[: len(self._failures) // 2]:
                    del self._failures[key]

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
                self._next.pop(key, None)

    def failures(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            return len(self._recent(key, now))

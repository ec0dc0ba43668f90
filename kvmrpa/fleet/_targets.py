"""Targets files: the machines a fleet runs on (TOML, read with :mod:`tomllib`).

::

    [[target]]
    id = "b2-01"
    source = "rtsp://kvm-b2-01.lab/stream"
    input = "vnc://${env:B2_VNC_PASSWORD}@kvm-b2-01.lab:5900"
    labels = { room = "b2", os = "win11" }
    variables = { asset = "PC-0042" }
    secrets = { bios_password = "${env:B2_BIOS_PASSWORD}" }

``id`` (letters, digits, ``_ . : -``), ``source`` and ``input`` are required; ``labels``
(string values), ``variables`` (any TOML values) and ``secrets`` are optional. A secret
is always a ``${env:NAME}`` reference, resolved from the environment of the worker
that runs the target and given to the flow as a variable of that name; its value never
travels to or from the caller, and results show the reference. A plain-text secret, or a
URL with a plain-text password, is refused with one line naming the file, the target
and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import TargetsError
from .._redact import plain_secret_in_url
from .._urls import redact_url
from ..nodes import ENV_REF

__all__ = ["Target", "load_targets", "parse_selector", "parse_targets", "select"]

_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_KEYS = {"id", "source", "input", "labels", "variables", "secrets"}
#: Most targets one file may name (each becomes a task and a run record).
MAX_TARGETS = 10_000


def _plain_password(url: str) -> bool:
    return plain_secret_in_url(url) is not None


@dataclass(frozen=True)
class Target:
    """One machine: where to see it (``source``), where to drive it (``input``)."""

    id: str
    source: str
    input: str
    labels: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)

    def matches(self, selector: Mapping[str, str]) -> bool:
        """True when every ``label=value`` of ``selector`` holds (``id`` selects by id)."""
        for key, want in selector.items():
            have = self.id if key == "id" else self.labels.get(key)
            if have != want:
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        """A plain description (URLs redacted; secrets as their references)."""
        return {"id": self.id, "source": redact_url(self.source), "input": redact_url(self.input),
                "labels": dict(self.labels), "variables": dict(self.variables),
                "secrets": dict(self.secrets)}

    def to_wire(self) -> dict[str, Any]:
        """What a worker needs (references, never resolved secrets)."""
        return {"id": self.id, "source": self.source, "input": self.input,
                "labels": dict(self.labels), "variables": dict(self.variables),
                "secrets": dict(self.secrets)}


def _fail(origin: str, where: str, what: str) -> TargetsError:
    return TargetsError(f"targets file {origin}: {where}: {what}")


def _table(origin: str, where: str, name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(origin, where, f"{name} must be a table")
    return value


def _target(origin: str, index: int, raw: Any) -> Target:
    where = f"target #{index + 1}"
    if not isinstance(raw, dict):
        raise _fail(origin, where, "must be a table ([[target]])")
    tid = raw.get("id")
    if not isinstance(tid, str) or not _ID.match(tid):
        raise _fail(origin, where, f"id: {tid!r} is not a valid id (letters, digits, _ . : -)")
    where = f"target {tid!r}"
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise _fail(origin, where, f"unknown field(s) {', '.join(unknown)}; "
                                   f"known: {', '.join(sorted(_KEYS))}")
    urls = {}
    for name in ("source", "input"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _fail(origin, where, f"{name}: is required (a URL)")
        if _plain_password(value):
            raise _fail(origin, where, f"{name}: a URL with a plain-text password; "
                                       "use ${env:NAME}")
        urls[name] = value.strip()
    labels = _table(origin, where, "labels", raw.get("labels"))
    for key, value in labels.items():
        if not isinstance(value, str | int | bool) or not _NAME.match(key):
            raise _fail(origin, where, f"labels.{key}: must be a name = a string")
    variables = _table(origin, where, "variables", raw.get("variables"))
    for key in variables:
        if not _NAME.match(key):
            raise _fail(origin, where, f"variables.{key}: not a valid variable name")
    secrets = _table(origin, where, "secrets", raw.get("secrets"))
    for key, value in secrets.items():
        if not _NAME.match(key):
            raise _fail(origin, where, f"secrets.{key}: not a valid variable name")
        if not isinstance(value, str) or not ENV_REF.fullmatch(value):
            raise _fail(origin, where, f"secrets.{key}: a secret in plain text; use ${{env:NAME}}")
        if key in variables:
            raise _fail(origin, where, f"secrets.{key}: also named in variables")
    return Target(tid, urls["source"], urls["input"],
                  {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in labels.items()},
                  dict(variables), dict(secrets))


def parse_targets(data: Mapping[str, Any], origin: str = "<dict>") -> list[Target]:
    """Targets from parsed TOML (``{"target": [...]}``); raises :class:`TargetsError`."""
    unknown = sorted(set(data) - {"target"})
    if unknown:
        raise _fail(origin, "top level", f"unknown table(s) {', '.join(unknown)}; "
                                         "expected [[target]] entries")
    raw = data.get("target")
    if not isinstance(raw, list) or not raw:
        raise _fail(origin, "top level", "no [[target]] entries")
    if len(raw) > MAX_TARGETS:
        raise _fail(origin, "top level", f"{len(raw)} targets; at most {MAX_TARGETS}")
    out: list[Target] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        target = _target(origin, i, item)
        if target.id in seen:
            raise _fail(origin, f"target {target.id!r}", "id: named twice")
        seen.add(target.id)
        out.append(target)
    return out


def load_targets(path: str | Path) -> list[Target]:
    """Read a targets file; one-line :class:`TargetsError` on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetsError(f"targets file {p}: does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetsError(f"targets file {p}: cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetsError(f"targets file {p}: {' '.join(str(exc).split())}") from None
    return parse_targets(data, str(p))


def parse_selector(items: str | Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``"room=b2,os=win11"`` (or a list of ``k=v``, or a mapping) as a dict."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    if isinstance(items, str):
        items = [items]
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            key, sep, value = part.strip().partition("=")
            if not sep or not key.strip():
                raise TargetsError(f"--select {part.strip()!r}: expected LABEL=VALUE")
            out[key.strip()] = value.strip()
    return out


def select(targets: Sequence[Target], selector: Mapping[str, str] | None) -> list[Target]:
    """The targets every label of ``selector`` matches (all of them without one)."""
    if not selector:
        return list(targets)
    return [t for t in targets if t.matches(selector)]

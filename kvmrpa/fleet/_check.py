"""Probing targets before a fleet run: is each source delivering frames, is each input
reachable? Every target is probed at once (a bounded thread pool in this process)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from typing import Any

from .._urls import redact_url
from ._targets import Target

__all__ = ["check_target", "check_targets"]

#: Targets probed at the same moment.
MAX_PARALLEL = 32


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, Exception) and str(exc) else f"{type(exc).__name__}: {text}"


def _check_source(url: str, timeout: float) -> dict[str, Any]:
    from ..capture import open_source, release_source
    from ..nodes import resolve_env_refs

    start = time.monotonic()
    src = open_source(resolve_env_refs(url))
    try:
        frame = src.wait_frame(None, timeout=timeout)
        return {"ok": True, "size": list(frame.size),
                "first_frame_s": round(time.monotonic() - start, 3), "state": str(src.state)}
    finally:
        release_source(src)


def _check_input(url: str, timeout: float) -> dict[str, Any]:
    from .._runtime import get_runtime
    from ..kvm import open_driver, release_driver
    from ..nodes import resolve_env_refs

    start = time.monotonic()
    drv = open_driver(resolve_env_refs(url))
    try:
        get_runtime().run(drv.connect(), timeout=timeout)
        return {"ok": True, "connect_s": round(time.monotonic() - start, 3)}
    finally:
        release_driver(drv)


def check_target(target: Target, timeout: float = 5.0) -> dict[str, Any]:
    """``{"target", "ok", "source": {...}, "input": {...}}``; never raises."""
    out: dict[str, Any] = {"kind": "target", "target": target.id,
                           "labels": dict(target.labels)}
    for part, fn, url in (("source", _check_source, target.source),
                          ("input", _check_input, target.input)):
        try:
            out[part] = {"url": redact_url(url), **fn(url, timeout)}
        except KeyError as exc:  # an unset ${env:NAME}
            out[part] = {"url": redact_url(url), "ok": False, "error": str(exc.args[0])}
        except Exception as exc:
            out[part] = {"url": redact_url(url), "ok": False, "error": _one_line(exc)}
    out["ok"] = bool(out["source"]["ok"] and out["input"]["ok"])
    return out


def check_targets(targets: Sequence[Target], timeout: float = 5.0) -> list[dict[str, Any]]:
    """Probe every target at once; results in the targets' order."""
    if not targets:
        return []
    workers = min(MAX_PARALLEL, len(targets))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="kvmrpa-check") as pool:
        return list(pool.map(lambda t: check_target(t, timeout), targets))

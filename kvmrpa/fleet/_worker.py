"""What runs on a Dask worker: one target's whole run, start to end, in one task.

:func:`run_target` is the task. It leaves the worker's thread pool (``secede``) so that
every target placed on a worker runs at once on that worker's kvmrpa runtime (its
source decoder and input driver live there), runs the flow with the engine's
:class:`~kvmrpa.engine.FlowRun`, and returns a plain dict: the outcome and the lines of
the run record, which the worker's own store only spools (the file is deleted once
read; the caller writes it into its store).

Stop: a watcher thread, owned by the task and ended with it, waits on the fleet's Dask
:class:`distributed.Event`; when it is set, or the caller no longer wants the task (it
cancelled it, or its client went away), the run is stopped on the runtime loop with the
engine's stop (no input primitive starts after it), and the wall time of that stop
comes back as ``stopped_at``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["run_target"]

log = logging.getLogger("kvmrpa.fleet")
#: Seconds one wait on the stop event may take before it is renewed (a long poll: a
#: stop ends the wait at once, so this only bounds how late an abandoned task notices
#: it has no caller). Each renewal is a round trip to the scheduler per target: at 0.5 s,
#: 100 targets on one worker cost the scheduler 200 requests a second.
_STOP_POLL = 2.0


def _failed(target: dict[str, Any], worker: str, error: str, started: float) -> dict[str, Any]:
    return {"target": target["id"], "status": "failed", "passes": 0, "error": error,
            "run_id": None, "duration": time.monotonic() - started, "actions": 0,
            "worker": worker, "record_name": None, "record_lines": [], "stopped_at": None,
            "variables": {}, "pid": os.getpid()}


def _take_record(path: str | None) -> tuple[str | None, list[str]]:
    """The record's name and lines; the spooled file is removed."""
    if not path:
        return None, []
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError:
        log.exception("cannot read the run record %s", p)
        return p.name, []
    with contextlib.suppress(OSError):
        p.unlink()
    return p.name, lines


def run_target(flow_doc: dict[str, Any], target: dict[str, Any], options: dict[str, Any],
               stop_name: str) -> dict[str, Any]:
    """Run ``flow_doc`` on ``target`` here; returns the outcome (never raises for the
    target's own failures)."""
    started = time.monotonic()
    worker = ""
    dask_worker: Any = None
    key = None
    stop_event: type[Any] | None = None
    try:
        from distributed import Event, get_client, get_worker, secede

        dask_worker = get_worker()
        worker = dask_worker.address
        key = dask_worker.get_current_task()
        secede()
        stop_event = Event
    except (ImportError, ValueError):  # not inside a Dask worker (a direct call)
        stop_event = None
    try:
        from ..engine import Flow, FlowRun
        from ..nodes import resolve_env_refs
        from ._preload import apply_native_threads

        apply_native_threads()

        flow = Flow.from_dict(flow_doc, origin=f"fleet flow {flow_doc.get('name')!r}")
        variables = dict(target.get("variables") or {})
        for name, ref in (target.get("secrets") or {}).items():
            try:
                variables[name] = resolve_env_refs(ref)
            except KeyError as exc:
                return _failed(target, worker, f"target {target['id']!r}: secrets.{name}: "
                                               f"{exc.args[0]}", started)
        run = FlowRun(flow, source=target["source"], input=target["input"],
                      variables=variables, passes=options.get("passes"),
                      duration=options.get("duration"), interval=options.get("interval"),
                      record=True)
    except Exception as exc:  # a flow or target the engine refuses: this target fails
        return _failed(target, worker, f"target {target['id']!r}: {' '.join(str(exc).split())}",
                       started)

    from .._runtime import get_runtime

    stopped_at: list[float] = []
    finished = threading.Event()

    def _stop_on_loop() -> None:
        # on the loop, in one step: nothing can send input between these two lines
        run.request_stop("stop")  # the input gate closes before this returns
        stopped_at.append(time.time())

    # made here, in the task's thread: it finds the worker's client from there
    event = (stop_event(stop_name, client=get_client())
             if stop_event is not None and stop_name else None)

    def _abandoned() -> bool:
        """The caller no longer wants this task (it cancelled it, or its client left)."""
        if dask_worker is None or key is None:
            return False
        ts = dask_worker.state.tasks.get(key)  # a read: one dict lookup
        return ts is None or ts.state in ("cancelled", "released", "forgotten")

    def _watch() -> None:
        while not finished.is_set():
            if event is None:
                finished.wait(_STOP_POLL)
                continue
            try:
                if event.wait(timeout=_STOP_POLL) or _abandoned():
                    if not finished.is_set():
                        get_runtime().call_soon(_stop_on_loop)
                    return
            except Exception as exc:  # the scheduler is briefly unreachable: ask again
                log.debug("fleet: waiting on the stop event failed: %s", exc)
                finished.wait(_STOP_POLL)

    watcher = threading.Thread(target=_watch, name=f"kvmrpa-fleet-stop-{target['id']}",
                               daemon=True)
    run.start()
    watcher.start()
    try:
        result = run.result()
    finally:
        finished.set()  # the watcher returns within one poll
    name, lines = _take_record(result.record)
    secret_names = set(target.get("secrets") or {})
    shown = {k: (target["secrets"][k] if k in secret_names else v)
             for k, v in result.variables.items()}
    return {"target": target["id"], "status": result.status, "passes": result.passes,
            "error": result.error, "run_id": result.run_id, "duration": result.duration,
            "actions": len(result.actions), "worker": worker, "record_name": name,
            "record_lines": lines, "stopped_at": stopped_at[0] if stopped_at else None,
            "variables": shown, "pid": os.getpid()}

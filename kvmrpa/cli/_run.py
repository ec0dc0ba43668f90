"""``kvmrpa run FLOW``: run a flow file headless.

Options: ``--source URL`` / ``--input URL`` override the flow's video source and input
driver (``--source NODE=URL`` replaces one source node's URL, for a flow that reads
several sources); ``--passes N`` (0: until stopped; Ctrl-C stops cleanly); ``--duration S`` stops
after S seconds; ``--interval S`` between passes; ``--var NAME=JSON`` sets a variable;
``--json`` prints one JSON object at the end::

    {"flow", "status": "ok"|"failed"|"stopped", "passes", "error",
     "nodes": {id: {"type", "status", "runs", "started_s", "finished_s"}},
     "variables", "actions", "source", "outcome"}

``outcome`` says what the last pass did in a few words: ``ok · 2 actions``,
``ok · nothing done (trigger → false; 3 skipped)``, ``failed · node read: …``,
``stopped · click cut; 1 action``. A node's status is ``stopped`` when it was cut by
the stop (``failed`` means it raised, timed out or was cancelled by another's failure).

``started_s`` / ``finished_s`` are seconds from the start of the last pass. Exit status:
0 ok (or stopped by ``--duration``), 1 failed, 2 the flow cannot be loaded (one line per
problem, as ``kvmrpa validate``), 130 stopped by Ctrl-C.

Ctrl-C stops the run and prints its result as usual; a blocking node whose worker
thread is still running then (a ``time.sleep`` in a python node cannot be interrupted)
does not hold the process: once the result is printed it exits at once. The same after
any run: when a node's thread is still stuck (a blocking node that timed out), one
warning on stderr names it and the process exits at once, with the usual exit status.
A node calling ``os._exit()`` fails (as one calling ``sys.exit()`` does) instead of
ending the process without a result. If the run has
not stopped within ``--stop-timeout`` seconds (default 10; a node blocking the event
loop, a driver that hangs while closing), or Ctrl-C is pressed again meanwhile, one line
on stderr says so and the process exits at once with 130, without the result: nothing
is left to wait on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import FlowRun, RunResult


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a flow file")
    p.add_argument("flow", metavar="FLOW", help="flow file (native or original format)")
    p.add_argument("--source", action="append", metavar="URL|NODE=URL",
                   help="video source URL (overrides the flow's); NODE=URL replaces the URL "
                        "of one source node of a flow that reads several (repeatable)")
    p.add_argument("--input", metavar="URL", help="input driver URL (overrides the flow's)")
    p.add_argument("--passes", type=int, default=None,
                   help="passes to run; 0 runs until stopped (default: the flow's, else 1)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds")
    p.add_argument("--interval", type=float, default=None, metavar="S",
                   help="seconds between pass starts in loop mode")
    p.add_argument("--var", action="append", default=[], metavar="NAME=JSON",
                   help="set a variable (value parsed as JSON, else taken as a string)")
    p.add_argument("--no-record", action="store_true", help="do not write a run record")
    p.add_argument("--strict", action="store_true", help="refuse flows with import warnings")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--stop-timeout", type=float, default=10.0, metavar="S",
                   help="after Ctrl-C, seconds to wait for the run to stop before exiting "
                        "without its result (default 10)")
    p.set_defaults(func=run)


log = logging.getLogger("kvmrpa.cli.run")


def _variables(items: list[str]) -> dict[str, Any]:
    from .._errors import KvmrpaError
    from .._limits import loads_strict, number_problem

    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.isidentifier():
            raise KvmrpaError(f"--var {item!r}: expected NAME=VALUE")
        try:
            out[name] = loads_strict(raw)
        except (json.JSONDecodeError, RecursionError):
            out[name] = raw
        if any(number_problem(v) for v in _leaves(out[name])):
            raise KvmrpaError(f"--var {name}: {raw[:40]!r} is not a finite number in range")
    return out


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


_REAL_EXIT = os._exit


def _exit_now(code: int) -> NoReturn:
    """End the process at once: a run that did not stop may hold the event loop or a
    worker thread forever, and a normal interpreter exit would wait for it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _REAL_EXIT(code)


def _busy_workers() -> int:
    """Worker threads of the runtime's pool still running a call.

    A normal interpreter exit joins them (concurrent.futures does), so a blocking node
    left running after its run stopped would hold the process until it returns.
    """
    from .._runtime import get_runtime

    pool = get_runtime().pool
    alive = sum(1 for t in getattr(pool, "_threads", ()) if t.is_alive())
    # Each idle worker holds one count of the pool's idle semaphore (CPython 3.8+).
    idle = getattr(getattr(pool, "_idle_semaphore", None), "_value", None)
    if not isinstance(idle, int):
        return alive  # cannot tell: count every live worker as busy
    return max(0, alive - idle)


def _exit_code_after(code: int, run_: FlowRun) -> int:
    """``code``; when a node's worker thread is still stuck, one warning naming it and
    the process exits at once (a normal interpreter exit would join it and hang)."""
    stuck = run_.stuck_nodes()
    if not stuck:
        return code
    print(f"warning: {', '.join(sorted(set(stuck)))} still running in a worker thread; "
          "exiting without waiting for it", file=sys.stderr)
    _exit_now(code)


class _NodeExit(SystemExit):
    """``os._exit()`` called by a node's code during ``kvmrpa run``."""


@contextlib.contextmanager
def _guard_os_exit() -> Iterator[None]:
    """While the run runs, a node calling ``os._exit`` fails instead of ending the
    process without a result (called outside a node, it exits as usual)."""
    from ..engine._context import CURRENT_NODE

    def _exit(code: int) -> NoReturn:
        ctx = CURRENT_NODE.get()
        if ctx is None:
            _REAL_EXIT(code)
        raise _NodeExit(f"os._exit({code}) called by node {ctx.node_id} (kvmrpa run keeps "
                        "the process and fails the node)")

    os._exit = _exit  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = _REAL_EXIT


def _stop_after_ctrl_c(run_: FlowRun, timeout: float) -> RunResult:
    """Stop the run after Ctrl-C; exits the process (130) with one line on stderr when
    it does not stop within ``timeout`` seconds or Ctrl-C comes again."""
    try:
        return run_.stop(timeout=timeout) or run_.result(timeout=timeout)
    except TimeoutError:
        why = f"did not stop within {timeout:g} s of Ctrl-C"
    except KeyboardInterrupt:
        why = "was interrupted again while stopping"
    print(f"kvmrpa run: flow {run_.name!r} {why}; exiting without its result "
          "(a node may still be running)", file=sys.stderr)
    _exit_now(130)


def run(args: argparse.Namespace) -> int:
    from .._errors import KvmrpaError
    from ..engine import FlowRun, override_sources
    from ._validate import load_checked

    if args.passes is not None and args.passes < 0:
        raise KvmrpaError(f"--passes must be >= 0, got {args.passes}")
    if args.duration is not None and args.duration <= 0:
        raise KvmrpaError(f"--duration must be > 0, got {args.duration}")
    if not args.stop_timeout > 0:
        raise KvmrpaError(f"--stop-timeout must be > 0, got {args.stop_timeout}")
    flow, problems, warnings = load_checked(args.flow, args.strict)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    if problems:
        for line in problems:
            print(line, file=sys.stderr if args.json else sys.stdout)
        return 2
    assert flow is not None  # no problems: a flow
    flow, source = override_sources(flow, args.source)
    if not args.no_record:
        from ..engine._records import get_run_store

        get_run_store().check_writable()  # a run must not lose its record silently
    run_ = FlowRun(flow, passes=args.passes, interval=args.interval,
                   duration=args.duration, source=source, input=args.input,
                   variables=_variables(args.var), record=not args.no_record)
    interrupted = False
    with _guard_os_exit():
        try:
            run_.start()
            while True:
                try:
                    result = run_.result(timeout=0.25)
                    break
                except TimeoutError:
                    continue
        except KeyboardInterrupt:
            interrupted = True
            result = _stop_after_ctrl_c(run_, args.stop_timeout)
    if args.json:
        from .._limits import dumps_strict
        from .._redact import redact_data

        print(dumps_strict(redact_data(result.as_dict()), ensure_ascii=False, default=repr))
    else:
        from . import safe_text

        print(safe_text(f"flow {result.flow!r}: {result.status}, {result.passes} pass(es), "
                        f"{result.duration:.3f} s"))
        if result.outcome:
            print(f"outcome: {result.outcome}")
        for nid, info in result.nodes.items():
            t = "" if info["started_s"] is None or info["finished_s"] is None else \
                f"  {info['started_s']:.3f}-{info['finished_s']:.3f} s"
            print(f"  {nid:<20} {info['type']:<12} {info['status']:<8} runs={info['runs']}{t}")
        if result.error:
            print(f"error: {safe_text(result.error)}")
        if result.record:
            print(f"record: {result.record}")
    if interrupted:
        busy = _busy_workers()
        if busy:
            log.debug("flow %r: %d worker thread(s) still running after Ctrl-C; exiting "
                      "with 130 without waiting for them", result.flow, busy)
            _exit_now(130)
        return 130
    from ..engine._records import get_run_store

    lost = get_run_store().errors.get(str(result.record)) if result.record else None
    if lost:
        print(f"kvmrpa run: error: {lost}", file=sys.stderr)
        return _exit_code_after(2, run_)
    return _exit_code_after(1 if result.status == "failed" else 0, run_)

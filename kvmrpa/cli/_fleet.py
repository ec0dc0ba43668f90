"""``kvmrpa fleet run FLOW --targets FILE``: run a flow on many targets through Dask.

Options: ``--select LABEL=VALUE`` (repeat or comma-separate) picks targets by label
(``id=`` by id); ``--scheduler tcp://host:8786`` uses a running Dask cluster, else
``--local N`` starts a LocalCluster of N worker processes on loopback (default 2,
``--threads`` each); ``--wait-workers N`` waits for N workers of a running cluster; ``--reruns N`` runs a target whose worker was lost mid-run again on
another worker, up to N times (default 1); ``--passes``, ``--duration``,
``--interval`` as for ``kvmrpa run``. ``--json`` prints one JSON object per target,
then a summary object::

    {"kind": "target", "target", "status": "ok"|"failed"|"stopped"|"interrupted",
     "passes", "error", "worker", "attempts", "run_id", "record", "duration",
     "actions", "labels", "interrupted": [{"run_id", "worker", "reason", "record"}],
     "stopped_at"}
    {"kind": "summary", "flow", "targets", "ok", "failed", "stopped", "interrupted",
     "reruns", "passes", "duration", "passes_per_min", "workers", "stop_requested"}

Every target's run record lands in this machine's run store (``kvmrpa runs``). Ctrl-C
stops every target's run (the engine's stop: no input after it), prints the results
and exits 130; a second Ctrl-C exits at once. Exit status: 0 every target ok, 1 one was
not, 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="run a flow on many targets (Dask distributed)")
    fsub = p.add_subparsers(dest="fleet_command", metavar="ACTION")
    r = fsub.add_parser("run", help="run FLOW on every selected target of a targets file")
    r.add_argument("flow", metavar="FLOW", help="flow file (native or original format)")
    r.add_argument("--targets", required=True, metavar="FILE", help="targets file (TOML)")
    r.add_argument("--select", action="append", default=[], metavar="LABEL=VALUE",
                   help="only targets with these labels (repeat or comma-separate)")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler (tcp://host:8786)")
    where.add_argument("--local", type=int, default=None, metavar="N",
                       help="start a LocalCluster of N worker processes (default 2)")
    r.add_argument("--wait-workers", type=int, default=1, metavar="N",
                   help="with --scheduler: wait for N workers before placing targets (default 1)")
    r.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads per LocalCluster worker (default 1)")
    r.add_argument("--reruns", type=int, default=1, metavar="N",
                   help="re-runs of a target whose worker was lost (default 1)")
    r.add_argument("--passes", type=int, default=None, help="passes per target (0: until stopped)")
    r.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop each target's run after S seconds")
    r.add_argument("--interval", type=float, default=None, metavar="S",
                   help="seconds between pass starts in loop mode")
    r.add_argument("--stop-timeout", type=float, default=30.0, metavar="S",
                   help="after Ctrl-C, seconds to wait for the targets to stop (default 30)")
    r.add_argument("--connect-timeout", type=float, default=30.0, metavar="S",
                   help="seconds to reach the scheduler and for its workers to join (default 30)")
    r.add_argument("--dashboard", action="store_true",
                   help="serve the LocalCluster's Dask dashboard on loopback")
    r.add_argument("--json", action="store_true", help="one JSON object per target + a summary")
    r.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _line(res: Any) -> str:
    extra = f", {res.attempts} attempts" if res.attempts > 1 else ""
    err = f": {res.error}" if res.error else ""
    return (f"  {res.target:<24} {res.status:<11} passes={res.passes} worker={res.worker}"
            f"{extra}{err}")


def run(args: argparse.Namespace) -> int:
    from .._errors import KvmrpaError
    from ..fleet import Fleet, load_targets
    from ._validate import load_checked

    if args.passes is not None and args.passes < 0:
        raise KvmrpaError(f"--passes must be >= 0, got {args.passes}")
    if args.duration is not None and args.duration <= 0:
        raise KvmrpaError(f"--duration must be > 0, got {args.duration}")
    targets = load_targets(args.targets)
    flow, problems, warnings = load_checked(args.flow, False)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    if problems:
        for line in problems:
            print(line, file=sys.stderr if args.json else sys.stdout)
        return 2
    if not args.debug:
        from ..fleet._fleet import quiet_dask_logs

        quiet_dask_logs()
    fleet = Fleet(targets, scheduler=args.scheduler, local=args.local or 2,
                  threads=args.threads, reruns=args.reruns, dashboard=args.dashboard,
                  stop_timeout=args.stop_timeout, wait_workers=args.wait_workers,
                  connect_timeout=args.connect_timeout)
    interrupted = False

    def _on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: leave now (the clusters close on the way out)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        interrupted = True
        print("kvmrpa fleet: stopping every target (Ctrl-C again to leave at once)",
              file=sys.stderr)
        fleet.stop()

    def _progress(res: Any) -> None:
        if not args.json:
            print(_line(res), flush=True)

    def _started(info: dict[str, Any]) -> None:
        print(f"kvmrpa fleet: {len(info['workers'])} worker(s)"
              + (f"; Dask dashboard {info['dashboard']}" if info["dashboard"] else ""),
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        report = fleet.execute(flow, select_labels=args.select or None, passes=args.passes,
                               duration=args.duration, interval=args.interval,
                               on_result=_progress, on_start=_started)
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, previous)
    summary = report.summary()
    if args.json:
        for res in report.results:
            print(json.dumps(res.as_dict(), ensure_ascii=False, default=repr))
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"flow {report.flow!r} on {summary['targets']} target(s), {summary['workers']} "
              f"worker(s): {summary['ok']} ok, {summary['failed']} failed, "
              f"{summary['stopped']} stopped, {summary['interrupted']} interrupted, "
              f"{summary['reruns']} re-run(s), {report.duration:.1f} s")
    if interrupted:
        return 130
    return 0 if summary["ok"] == summary["targets"] else 1

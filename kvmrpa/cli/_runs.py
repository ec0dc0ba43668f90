"""``kvmrpa runs``: list recent run records (or print one with ``--show``)."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list recent runs from the run store")
    p.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--show", metavar="RUN_ID", help="print the record of one run (JSONL)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import KvmrpaError
    from .._limits import dumps_strict
    from .._redact import redact_data
    from .._settings import get_settings
    from ..engine import list_runs

    if args.show:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,200}", args.show) or ".." in args.show:
            raise KvmrpaError(f"--show takes a run id (letters, digits, '-', '_', '.'), "
                              f"got {args.show!r}")
        matches = sorted(get_settings().store.runs_dir.glob(f"{args.show}*.jsonl"))
        if not matches:
            raise KvmrpaError(f"no run record {args.show!r} in {get_settings().store.runs_dir}")
        print(Path(matches[0]).read_text(encoding="utf-8"), end="")
        return 0
    runs = list_runs(limit=max(1, args.limit))
    if args.json:
        print(dumps_strict(redact_data(runs), indent=2, ensure_ascii=True))
        return 0
    if not runs:
        print(f"no runs in {get_settings().store.runs_dir}")
        return 0
    from . import safe_text

    for r in runs:
        started = dt.datetime.fromtimestamp(r["started"]).strftime("%Y-%m-%d %H:%M:%S") \
            if isinstance(r.get("started"), int | float) else "?"
        passes = "-" if r["passes"] is None else r["passes"]
        line = f"{r['id']}  {started}  {r['status']:<11} passes={passes:<4} {r['flow']}"
        if r.get("outcome"):
            line += f"  ({r['outcome']})"
        if r.get("error"):
            line += f"  error: {' '.join(str(r['error']).split())[:120]}"
        print(safe_text(line))  # a flow name may hold terminal escapes
    return 0

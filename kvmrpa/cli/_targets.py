"""``kvmrpa targets check FILE``: probe every target of a targets file at once.

For each target: does its source deliver a first frame, does its input driver connect?
One line per target (``--json``: one JSON object per target, then a summary object).
Exit status 0 when every target is healthy, 1 when one is not, 2 when the file is bad.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("targets", help="targets files for fleet runs")
    tsub = p.add_subparsers(dest="targets_command", metavar="ACTION")
    c = tsub.add_parser("check", help="probe each target's source and input, in parallel")
    c.add_argument("file", metavar="FILE", help="targets file (TOML)")
    c.add_argument("--select", action="append", default=[], metavar="LABEL=VALUE",
                   help="only targets with these labels (repeat or comma-separate)")
    c.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds each probe may take (default 5)")
    c.add_argument("--json", action="store_true", help="one JSON object per target")
    c.set_defaults(func=check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def check(args: argparse.Namespace) -> int:
    from .._errors import KvmrpaError
    from ..fleet import check_targets, load_targets, parse_selector, select

    if not 0 < args.timeout <= 600:
        raise KvmrpaError(f"--timeout must be in (0, 600], got {args.timeout}")
    targets = select(load_targets(args.file), parse_selector(args.select))
    if not targets:
        raise KvmrpaError(f"targets file {args.file}: no target matches the selection")
    results = check_targets(targets, args.timeout)
    healthy = sum(1 for r in results if r["ok"])
    if args.json:
        for r in results:
            print(json.dumps(r, ensure_ascii=False))
        print(json.dumps({"kind": "summary", "targets": len(results), "ok": healthy,
                          "failed": len(results) - healthy}))
    else:
        for r in results:
            parts = []
            for name in ("source", "input"):
                info = r[name]
                parts.append(f"{name} ok" if info["ok"] else f"{name} FAILED: {info['error']}")
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['target']}: {'; '.join(parts)}")
        print(f"{healthy}/{len(results)} target(s) healthy")
    return 0 if healthy == len(results) else 1

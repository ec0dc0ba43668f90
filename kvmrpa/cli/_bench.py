"""``kvmrpa bench``: run the performance suite and print a table or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from ..bench import GROUPS

    p = sub.add_parser("bench", help="run the performance suite (ratios against baselines)")
    p.add_argument("--quick", action="store_true", help="short runs (under 2 minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object of figures")
    p.add_argument("--only", action="append", choices=GROUPS, metavar="GROUP",
                   help=f"run only this group (repeatable): {', '.join(GROUPS)}")
    p.set_defaults(func=run)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def run(args: argparse.Namespace) -> int:
    from ..bench import GROUPS, TARGETS, run_groups

    groups = tuple(args.only) if args.only else GROUPS

    def progress(group: str) -> None:
        print(f"bench: {group} …", file=sys.stderr, flush=True)

    results = run_groups(groups, quick=args.quick, progress=progress)
    for res in results:
        if res.skipped:
            print(f"bench: {res.group} skipped: {res.skipped}", file=sys.stderr)
    if args.json:
        print(json.dumps({k: v for res in results for k, v in res.values.items()}))
        return 0
    print(f"{'figure':<42} {'value':>9} {'baseline':>9} {'ratio':>7} {'target':>9}")
    for res in results:
        figures = {**res.values, **res.extra}
        for key, value in figures.items():
            cmp, target, base_key = TARGETS.get(key, ("", float("nan"), None))
            base = figures.get(base_key) if base_key else None
            ratio = value / base if value is not None and base else None
            tgt = f"{cmp}{target:g}" if cmp else ""
            print(f"{key:<42} {_fmt(value):>9} {_fmt(base):>9} {_fmt(ratio):>7} {tgt:>9}")
        if res.skipped:
            print(f"  ({res.group} skipped: {res.skipped})")
    return 0

"""``kvmrpa bench``: run the performance suite and print a table or one JSON object.

While the groups run, whatever they (or the libraries, native code and programs they
start) write to stdout goes to stderr, so stdout holds the table or the JSON only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator


def register(sub: argparse._SubParsersAction) -> None:
    from ..bench import GROUPS

    p = sub.add_parser("bench", help="run the performance suite (ratios against baselines)")
    p.add_argument("--quick", action="store_true", help="short runs (under 2 minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object of figures")
    p.add_argument("--only", action="append", choices=GROUPS, metavar="GROUP",
                   help=f"run only this group (repeatable): {', '.join(GROUPS)}")
    p.set_defaults(func=run)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send stdout to stderr until the block ends: ``sys.stdout`` and, when it is file
    descriptor 1, the descriptor itself (native writes, child processes)."""
    sys.stdout.flush()
    try:
        fd, err = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not real files (captured output)
        fd = err = -1
    saved = os.dup(fd) if fd >= 0 else -1
    try:
        if saved >= 0:
            os.dup2(err, fd)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if saved >= 0:
            os.dup2(saved, fd)
            os.close(saved)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def run(args: argparse.Namespace) -> int:
    from ..bench import GROUPS, KEYS, TARGETS, run_groups

    groups = tuple(args.only) if args.only else GROUPS

    def progress(group: str) -> None:
        print(f"bench: {group} …", file=sys.stderr, flush=True)

    with stdout_to_stderr():
        results = run_groups(groups, quick=args.quick, progress=progress)
    for res in results:
        if res.skipped:
            print(f"bench: {res.group} skipped: {res.skipped}", file=sys.stderr)
    if args.json:
        print(json.dumps({k: v for res in results if res.group in KEYS
                          for k, v in res.values.items()}))
        return 0
    print(f"{'figure':<42} {'value':>9} {'baseline':>9} {'target':>12} {'met':>4}")
    for res in results:
        figures = {**res.values, **res.extra}
        for key, value in figures.items():
            target = TARGETS.get(key)
            base = figures.get(target.baseline) if target and target.baseline else None
            met = target.met(figures, key) if target else None
            mark = {True: "yes", False: "NO", None: ""}[met]
            print(f"{key:<42} {_fmt(value):>9} {_fmt(base):>9} {target or ''!s:>12} {mark:>4}")
        if res.skipped:
            print(f"  ({res.group} skipped: {res.skipped})")
    return 0

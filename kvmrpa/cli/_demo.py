"""``kvmrpa demo``: run the three reference scenarios on the simulated desktop.

Each example flow (``kvmrpa/sim/flows/scenarioN.json``, the same as
``notebooks/flows/``) runs once on its own ``sim://scenarioN?seed=…`` desktop, with its
nodes' progress printed as they finish, then a short table: status, time, what the
screen shows afterwards and what it should show. Exit status 0 when all passed, 1
otherwise.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import sys
import time
import unicodedata
from typing import Any

#: What each scenario's screen shows when its flow did the right thing.
EXPECTED = {"scenario1": "已确定", "scenario2": "第2步", "scenario3": "测试3"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the three reference scenarios on the simulated desktop")
    p.add_argument("--seed", type=int, default=None,
                   help="layout seed of the simulated desktops (default: random)")
    p.add_argument("--scenario", action="append", choices=sorted(EXPECTED), default=None,
                   help="run only this scenario (repeatable)")
    p.add_argument("--no-realism", action="store_true",
                   help="clean frames (no JPEG artefacts, noise or clock)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds allowed per scenario (default 60)")
    p.add_argument("--record", action="store_true", help="write run records")
    p.add_argument("--json", action="store_true", help="print the result table as JSON")
    p.set_defaults(func=run)


def _pad(text: str, width: int) -> str:
    """Left-justify for the terminal, counting CJK characters as two columns."""
    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - cols)


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, flush=True)


def _progress(args: argparse.Namespace, events: queue.SimpleQueue[Any], until: float) -> bool:
    """Print queued node events; True once the flow_finished event was seen."""
    while True:
        try:
            ev = events.get(timeout=max(0.0, until - time.monotonic()))
        except queue.Empty:
            return False
        kind = getattr(ev, "kind", "")
        if kind == "node_finished":
            branch = f" → {ev.branch}" if ev.branch else ""
            _say(args, f"    ✓ {ev.node:<10} {ev.type:<16} {ev.duration:6.2f} s{branch}")
        elif kind == "node_failed":
            _say(args, f"    ✗ {ev.node:<10} {ev.type:<16} {ev.duration:6.2f} s  {ev.error}")
        elif kind == "node_skipped":
            _say(args, f"    - {ev.node:<10} {ev.type:<16} skipped")
        elif kind == "flow_finished":
            return True


def run(args: argparse.Namespace) -> int:
    from ..engine import Flow, FlowRun
    from ..sim import flow_path, get_desktop

    scenarios = args.scenario or list(EXPECTED)
    seed = random.randrange(10_000) if args.seed is None else args.seed
    _say(args, f"kvmrpa demo: {len(scenarios)} scenario(s) on the simulated desktop, seed {seed}")
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(scenarios, 1):
        url = f"sim://{name}?seed={seed}" + ("&realism=0" if args.no_realism else "")
        desktop = get_desktop(url)  # held so the screen can be checked afterwards
        flow = Flow.load(flow_path(name))
        _say(args, f"[{i}/{len(scenarios)}] {name}: {flow.description}")
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        flow_run = FlowRun(flow, passes=1, source=url, input=url, record=args.record)
        unsubscribe = flow_run.on_event(events.put)
        start = time.monotonic()
        try:
            flow_run.start()
            deadline = start + args.timeout
            finished = False
            while not finished and time.monotonic() < deadline:
                finished = _progress(args, events, min(deadline, time.monotonic() + 0.2))
            result = (flow_run.result(timeout=0.5) if finished
                      else flow_run.stop(timeout=10.0) or flow_run.result(timeout=10.0))
        finally:
            unsubscribe()
        state = desktop.state()
        shows = state["entry"] if name == "scenario3" else state["status"]
        rows.append({"scenario": name, "url": url, "status": result.status,
                     "seconds": round(time.monotonic() - start, 2), "screen": shows or "",
                     "expected": EXPECTED[name], "error": result.error})
        if result.error:
            _say(args, f"    error: {result.error}")
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print()
        print(f"{'scenario':<10}  {'status':<7}  {'time':>7}  {'screen shows':<12}  expected")
        for r in rows:
            mark = "✓" if r["status"] == "ok" and r["screen"] == r["expected"] else "✗"
            print(f"{r['scenario']:<10}  {r['status']:<7}  {r['seconds']:6.2f}s  "
                  f"{_pad(r['screen'], 12)}  {_pad(r['expected'], 8)} {mark}")
    ok = all(r["status"] == "ok" and r["screen"] == r["expected"] for r in rows)
    if not ok and not args.json:
        print("demo: not every scenario reached its result", file=sys.stderr)
    return 0 if ok else 1

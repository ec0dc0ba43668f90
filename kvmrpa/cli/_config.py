"""``kvmrpa config``: print the effective settings and where each came from (the store
path as it is used, secrets redacted)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show effective settings and their origins")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._limits import dumps_strict
    from .._settings import get_settings

    settings = get_settings()
    rows = [(key, settings.display_value(key), origin, p.doc or "")
            for key, _value, origin, p in settings.items()]
    if args.json:
        print(dumps_strict({k: {"value": v, "origin": o} for k, v, o, _ in rows}, indent=2))
        return 0
    width = max(len(k) for k, *_ in rows)
    vwidth = min(40, max(len(v) for _, v, *_ in rows))
    for key, value, origin, _doc in rows:
        print(f"{key:<{width}}  {value:<{vwidth}}  ({origin})")
    return 0

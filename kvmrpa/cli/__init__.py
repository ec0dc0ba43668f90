"""The ``kvmrpa`` command line: one sub-module per command, one error policy.

Each command module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its
parser and sets ``func(args) -> int``. A :class:`KvmrpaError` becomes one line on
stderr and exit code 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .._errors import KvmrpaError

__all__ = ["main"]

#: Command modules, in help order (``kvmrpa.cli._<name>``).
COMMANDS: tuple[str, ...] = (
    "config",
    "validate",
    "run",
    "runs",
    "schema",
    "convert",
    "send",
    "demo",
    "serve",
    "bench",
    "probe",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvmrpa", description="Visual RPA over KVM: flows that see a screen and drive it.")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $KVMRPA_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}._{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}._{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from .._settings import configure, load_settings

        if args.config:
            configure(load_settings(args.config))
        return int(args.func(args) or 0)
    except KvmrpaError as exc:
        if args.debug:
            raise
        print(f"kvmrpa {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

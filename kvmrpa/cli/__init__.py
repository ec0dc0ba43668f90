"""The ``kvmrpa`` command line: one sub-module per command, one error policy.

Each command module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its
parser and sets ``func(args) -> int``. A :class:`KvmrpaError` becomes one line on
stderr and exit code 2 (a traceback only with ``--debug``); so does an ``OSError`` or
``ValueError`` that bad input carried into a library. Everything printed goes through
:func:`safe_text` (redacted, control characters escaped).
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
    "report",
    "schema",
    "convert",
    "send",
    "demo",
    "serve",
    "notebooks",
    "passwd",
    "bench",
    "probe",
    "targets",
    "fleet",
)


def _version() -> str:
    from .. import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvmrpa", description="Visual RPA over KVM: flows that see a screen and drive it.")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $KVMRPA_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"kvmrpa {_version()}")
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
        from .._settings import configure, load_settings, warn_unknown_env

        if args.config:
            configure(load_settings(args.config))
        for line in warn_unknown_env():
            print(f"kvmrpa: warning: {safe_text(line)}", file=sys.stderr)
        return int(args.func(args) or 0)
    except KvmrpaError as exc:
        if args.debug:
            raise
        print(f"kvmrpa {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        # bad input that reached a library unchecked: still one line, never a traceback
        if args.debug:
            raise
        print(f"kvmrpa {args.command}: error: {type(exc).__name__}: {one_line(exc)} "
              "(--debug shows where)", file=sys.stderr)
        return 2


_CONTROL = str.maketrans({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c not in (0x09,)}
                         | {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


def safe_text(text: object) -> str:
    """``text`` redacted, with control characters (terminal escapes, CR, LF) escaped."""
    from .._redact import redact

    out = redact(str(text)).translate(_CONTROL)
    # C1 controls (U+0080–U+009F) are escapes on some terminals too
    return "".join(f"\\x{ord(c):02x}" if 0x80 <= ord(c) <= 0x9F else c for c in out)


def one_line(exc: object) -> str:
    """An error as one safe line: redacted, whitespace runs folded, controls escaped."""
    return safe_text(" ".join(str(exc).split()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``kvmrpa validate FLOW``: check a flow file without running it.

Exit 0 when valid; exit 2 and one line per problem (``node <id>: <field>: <what is
wrong>``) on stdout when not; never a traceback. Import warnings (original-format
properties that were not mapped) go to stderr as ``warning: …`` lines; ``--strict``
turns them into problems.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Flow


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a flow file (native or original format)")
    p.add_argument("flow", metavar="FLOW", help="flow file (.json)")
    p.add_argument("--strict", action="store_true", help="treat import warnings as problems")
    p.set_defaults(func=run)


def one_line(item: object) -> str:
    """A problem or warning as exactly one line: redacted, control characters (newlines,
    terminal escapes) escaped."""
    from . import safe_text

    return safe_text(item)


def load_checked(path: str, strict: bool) -> tuple[Flow | None, list[str], list[str]]:
    """``(flow or None, problem lines, warning lines)`` for a flow file; never raises."""
    from .._errors import FlowFormatError, FlowValidationError, KvmrpaError
    from ..engine import Flow

    try:
        flow = Flow.load(path)
    except FlowValidationError as exc:
        return None, [one_line(p) for p in exc.problems], []
    except FlowFormatError as exc:
        return None, [f"flow: {one_line(' '.join(str(exc).split()))}"], []
    except KvmrpaError as exc:
        return None, [f"flow: {one_line(' '.join(str(exc).split()))}"], []
    except Exception as exc:  # the contract: never a traceback
        return None, [f"flow: internal error: {type(exc).__name__}: {one_line(exc)}"], []
    warnings = [one_line(w) for w in flow.import_warnings]
    if strict and warnings:
        return None, warnings, []
    return flow, [], warnings


def run(args: argparse.Namespace) -> int:
    flow, problems, warnings = load_checked(args.flow, args.strict)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    if problems:
        for line in problems:
            print(line)
        return 2
    assert flow is not None
    print(one_line(f"ok: flow {flow.name!r}: {len(flow.nodes)} nodes, "
                   f"{len(flow.edges)} edges"))
    return 0

"""``kvmrpa convert IN OUT``: write a flow file in the native format, or macro text.

``IN`` is a flow in the original system's format (detected automatically), a native
one, or macro text (DuckyScript-like, by suffix: ``.txt``, ``.ducky``, ``.macro``,
``.dd``; see :mod:`kvmrpa.engine._macro`); an ``OUT`` (or ``-o``) with such a suffix
gets the flow written back as macro text. Without ``OUT`` a macro becomes
``<name>.json`` beside it. The original's shared blackboard is made explicit (edges added, each reported),
plain-text passwords are replaced by ``${env:NAME}`` references (each reported with
the variable to set), and the result is validated, then written atomically (a temporary
file, fsync, rename). Warnings go to stderr as ``warning: …`` lines (``--strict`` turns
them into problems); problems go to stdout, one per line, with exit code 2 and no file
written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a flow file (original format, or macro text) to the native format, or a flow to macro text")
    p.add_argument("source", metavar="IN", help="flow file to read (original or native format)")
    p.add_argument("target", metavar="OUT", nargs="?", default=None,
                   help="file to write: a native flow (.json), or macro text (.txt)")
    p.add_argument("-o", "--output", metavar="OUT", dest="output", default=None,
                   help="the file to write (the same as OUT)")
    p.add_argument("--input", metavar="URL", default=None,
                   help="macro import: the flow's input driver URL (else given at run time)")
    p.add_argument("--strict", action="store_true", help="treat import warnings as problems")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=run)


def convert_document(doc: dict[str, Any]) -> tuple[Any, list[str], list[str], list[tuple[str, str, str]]]:
    """``(flow or None, problem lines, warning lines, secrets replaced)`` for a parsed
    document; never raises a :class:`~kvmrpa.KvmrpaError`."""
    from .._errors import FlowValidationError, KvmrpaError
    from ..engine import Flow
    from ..legacy import import_original, is_original, secure_secrets
    from ._validate import one_line

    warnings: list[Any] = []
    problems: list[Any] = []
    native: dict[str, Any] = doc
    if is_original(doc):
        native, warnings, problems = import_original(doc)
    secrets = secure_secrets(native)
    flow = None
    try:
        flow = Flow.from_dict(native, origin="<converted>")
    except FlowValidationError as exc:
        problems.extend(exc.problems)
    except KvmrpaError as exc:
        problems.append(f"flow: {' '.join(str(exc).split())}")
    return ((None if problems else flow), [one_line(p) for p in problems],
            [one_line(w) for w in warnings], secrets)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._errors import KvmrpaError
    from ..engine._macro import is_macro_path
    from ..engine._validate import read_document

    if args.target and args.output and args.target != args.output:
        print(f"flow: two files to write ({args.target}, {args.output}); give one")
        return 2
    out = args.output or args.target
    if out is None:
        if not is_macro_path(args.source):
            print("flow: name the file to write (OUT or -o FILE)")
            return 2
        out = str(Path(args.source).with_suffix(".json"))
    target = Path(out)
    if target.exists() and not args.force:
        print(f"flow: {target} exists (use --force to overwrite)")
        return 2
    if is_macro_path(args.source):
        return _from_macro(args, target)
    try:
        doc = read_document(args.source)
    except KvmrpaError as exc:
        print(f"flow: {' '.join(str(exc).split())}")
        return 2
    flow, problems, warnings, secrets = convert_document(doc)
    if args.strict and warnings:
        problems = warnings + problems
        warnings = []
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    for owner, key, name in secrets:
        where = "flow" if owner == "flow" else f"node {owner}"
        print(f"warning: {where}: {key}: plain-text password replaced by ${{env:{name}}}; "
              f"set {name} (URL-encoded) before running", file=sys.stderr)
    if problems:
        for line in problems:
            print(line)
        return 2
    if is_macro_path(target):
        return _to_macro(flow, target)
    try:
        flow.save(target)
    except OSError as exc:
        print(f"flow: cannot write {target}: {exc.strerror or exc}")
        return 2
    print(f"ok: wrote {target}: flow {flow.name!r}, {len(flow.nodes)} nodes, "
          f"{len(flow.edges)} edges")
    return 0


def _from_macro(args: argparse.Namespace, target: Any) -> int:
    """Macro text in, a native flow (or macro text again) out."""
    from .._errors import KvmrpaError
    from ..engine._macro import is_macro_path, read_macro
    from ._validate import one_line

    try:
        flow = read_macro(args.source, input=args.input)
    except KvmrpaError as exc:
        print(f"flow: {one_line(exc)}")
        return 2
    if is_macro_path(target):
        return _to_macro(flow, target)
    try:
        flow.save(target)
    except KvmrpaError as exc:
        print(f"flow: {one_line(exc)}")
        return 2
    except OSError as exc:
        print(f"flow: cannot write {target}: {exc.strerror or exc}")
        return 2
    print(f"ok: wrote {target}: flow {flow.name!r}, {len(flow.nodes)} steps from macro text")
    return 0


def _to_macro(flow: Any, target: Any) -> int:
    """A flow written as macro text, atomically."""
    from .._errors import KvmrpaError
    from ..engine._flow import atomic_write
    from ..engine._macro import flow_to_macro
    from ._validate import one_line

    try:
        text = flow_to_macro(flow)
    except KvmrpaError as exc:
        print(f"flow: {one_line(exc)}")
        return 2
    try:
        atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        print(f"flow: cannot write {target}: {exc.strerror or exc}")
        return 2
    print(f"ok: wrote {target}: flow {flow.name!r} as {text.count(chr(10))} lines of macro text")
    return 0

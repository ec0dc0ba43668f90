"""``kvmrpa report RUN_ID [-o report.html]``: one self-contained HTML page of a run.

The page (see :mod:`kvmrpa.engine._report`) embeds the frames the run's vision nodes
decided on with what they recognised drawn over them, the flow graph with each node's
state, the timings, the actions, the outcome and the errors; it needs no network.
``RUN_ID`` is an id ``kvmrpa runs`` lists (or its start), or a record file.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a run's report: one self-contained HTML file")
    p.add_argument("run", metavar="RUN_ID", help="run id (kvmrpa runs), or a run record file")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="HTML file to write (default: <RUN_ID>.html here)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._errors import KvmrpaError
    from ..engine._report import RunReport
    from . import safe_text

    report = RunReport.load(args.run)
    target = Path(args.output or f"{report.run_id or 'run'}.html")
    if target.exists() and not args.force:
        raise KvmrpaError(f"{target} exists (use --force to overwrite)")
    try:
        report.save(target)
    except OSError as exc:
        raise KvmrpaError(f"cannot write {target}: {exc.strerror or exc}") from None
    frames = sum(1 for x in report.lines if x.get("kind") == "frame")
    print(safe_text(f"ok: wrote {target}: run {report.run_id} of flow {report.flow!r}, "
                    f"{report.status}, {frames} frame{'s' if frames != 1 else ''}"))
    return 0

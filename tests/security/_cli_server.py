"""Runs ``kvmrpa`` commands for the hostile-input corpus, each in its own process.

Started once by ``test_corpus.py``: it imports the command line (the slow part) once,
then for each JSON case read from stdin forks a child that runs ``kvmrpa.cli.main``
with the case's arguments, environment and working folder under an address-space limit,
its stdout/stderr sent to files. The parent waits with a wall-clock limit (the child is
killed past it) and answers one JSON line: exit code, wall seconds, peak RSS (MB), and
whether it was killed. Only single-threaded imports happen before a fork.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time


def _child(case: dict) -> None:
    try:
        limit = int(case.get("max_as_mb", 4096)) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.chdir(case["cwd"])
        for key in case.get("unset", []):
            os.environ.pop(key, None)
        os.environ.update(case.get("env", {}))
        import kvmrpa._settings

        kvmrpa._settings._current = None  # the case's environment decides
        for fd, path in ((1, case["stdout"]), (2, case["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        from kvmrpa.cli import main

        try:
            rc = main(case["args"])
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException:  # reported through stderr: the test fails on "Traceback"
        import traceback

        traceback.print_exc()
        rc = 99
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(int(rc or 0) & 0xFF)


def _run(case: dict) -> dict:
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(case)
    deadline = start + float(case.get("max_s", 60))
    killed = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline and not killed:
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.005)
    rc = os.waitstatus_to_exitcode(status)
    return {"rc": rc, "wall": time.monotonic() - start, "rss_mb": usage.ru_maxrss / 1024,
            "killed": killed}


def main() -> None:
    import kvmrpa.engine  # the imports every case shares
    from kvmrpa.cli import build_parser

    build_parser()  # imports every command module
    # load the node types, import mappers and JSON Schemas once (no threads start)
    import kvmrpa.legacy
    from kvmrpa.engine._validate import _validator
    from kvmrpa.nodes._registry import node_types

    node_types()
    _validator()
    kvmrpa.legacy.load_mappers()
    import threading

    assert threading.active_count() == 1, threading.enumerate()

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(_run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()

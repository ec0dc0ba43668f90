"""``kvmrpa bench --json``: stdout is exactly the JSON, whatever a group prints."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap

from kvmrpa.bench import KEYS

NOISY = textwrap.dedent("""
    import os, subprocess, sys
    import kvmrpa.bench._executor as group
    from kvmrpa.bench import KEYS

    def noisy(quick):
        print("Launching server at http://127.0.0.1:5006")       # Python (Panel did this)
        os.write(1, b"native noise on fd 1\\n")                  # native code
        subprocess.run(["echo", "child noise"], check=True)      # a program it starts
        return dict.fromkeys(KEYS["executor"], 1.5)

    group.run = noisy
    from kvmrpa.cli import main
    sys.exit(main(["bench", "--only", "executor", "--quick", *sys.argv[1:]]))
""")


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    """The noisy bench in a process group of its own, killed as a group on every path."""
    argv = [sys.executable, "-c", NOISY, *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(10)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_json_stdout_is_only_the_json_and_the_noise_goes_to_stderr() -> None:
    out = _bench("--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == dict.fromkeys(KEYS["executor"], 1.5)
    assert out.stdout.count("\n") == 1
    for noise in ("Launching server at", "native noise on fd 1", "child noise"):
        assert noise in out.stderr


def test_the_table_is_not_interleaved_with_noise_either() -> None:
    out = _bench()
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("figure")
    assert "noise" not in out.stdout and "Launching" not in out.stdout

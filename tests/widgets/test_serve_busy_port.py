"""``kvmrpa serve`` on a port that is taken: one line, exit 2, no dashboard line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "KVMRPA_HOME": str(tmp_path / "home")}
        proc = subprocess.Popen([sys.executable, "-m", "kvmrpa", "serve", "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    assert proc.returncode == 2, err
    assert out == ""
    assert err.splitlines() == [
        f"kvmrpa serve: port {port} is in use; pick another with --port"]

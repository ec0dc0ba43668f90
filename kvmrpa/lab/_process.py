"""One managed child process: started in its own session, output captured to a log
file, stopped with terminate-then-kill on every path and always reaped (no zombies)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from .._errors import LabError

__all__ = ["ManagedProcess", "free_port", "wait_for"]

log = logging.getLogger("kvmrpa.lab")

#: The system interpreter: it has python3-gi and python3-tk, the venv does not.
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02,
    alive: Callable[[], None] | None = None,
) -> None:
    """Poll ``predicate`` until it is true; :class:`LabError` naming ``what`` on timeout.

    ``alive`` is called between polls and should raise when the awaited program died.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            raise LabError(f"{what} not ready within {timeout:g} s")
        time.sleep(interval)


class ManagedProcess:
    """A child program with a name, a log file and a reliable :meth:`stop`.

    The child runs in a new session (its own process group), so stopping it also stops
    anything it spawned. stdout can be a pipe (``stdout_pipe=True``) for programs that
    announce readiness there; stderr (and stdout otherwise) goes to a log file whose
    tail is quoted in errors.
    """

    def __init__(
        self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
        stdout_pipe: bool = False, stdin_pipe: bool = False, pass_fds: Sequence[int] = (),
        cwd: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._env = env
        self._stdout_pipe = stdout_pipe
        self._stdin_pipe = stdin_pipe
        self._pass_fds = tuple(pass_fds)
        self._cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise LabError(f"{self.name} is not running")
        return self._proc

    def start(self) -> ManagedProcess:
        """Start the program (it must not already run)."""
        if self._proc is not None:
            raise LabError(f"{self.name} already started (pid {self._proc.pid})")
        fd, path = tempfile.mkstemp(prefix=f"kvmrpa-lab-{self.name}-", suffix=".log")
        self._log = os.fdopen(fd, "w+b")
        self.log_path = Path(path)
        env = dict(os.environ if self._env is None else self._env)
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE if self._stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if self._stdout_pipe else self._log,
                stderr=self._log, env=env, cwd=self._cwd, start_new_session=True,
                pass_fds=self._pass_fds,
            )
        except OSError as exc:
            self._close_log()
            raise LabError(f"cannot start {self.name} ({self.argv[0]}): {exc}") from exc
        log.debug("started %s pid %d: %s", self.name, self._proc.pid, " ".join(self.argv))
        return self

    def poll(self) -> int | None:
        """Exit status, or ``None`` while it runs (or before start)."""
        return None if self._proc is None else self._proc.poll()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def check_alive(self) -> None:
        """Raise :class:`LabError` with the log tail if the program has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise LabError(
                f"{self.name} exited with status {self._proc.returncode}: {self.log_tail()}")

    def log_tail(self, limit: int = 1500) -> str:
        if self.log_path is None:
            return ""
        try:
            data = self.log_path.read_bytes()[-limit:]
        except OSError:
            return ""
        return data.decode("utf-8", "replace").strip() or "(no output)"

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the program's process group."""
        proc = self.popen
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def stop(self, timeout: float = 3.0) -> int | None:
        """Terminate (SIGTERM, after SIGCONT in case it is stopped), then kill; reap.

        Safe to call twice and on a program that already exited. Returns the exit status.
        """
        proc = self._proc
        if proc is None:
            self._close_log()
            return None
        try:
            if proc.poll() is None:
                for sig in (signal.SIGTERM, signal.SIGCONT):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s (pid %d) ignored SIGTERM; killing", self.name, proc.pid)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout)
            else:
                # The leader exited; its group may still hold children.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        finally:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            self._close_log()
        code = proc.returncode
        log.debug("stopped %s pid %d (status %s)", self.name, proc.pid, code)
        return code

    def reset(self) -> None:
        """Forget a stopped process so :meth:`start` can run it again."""
        if self.running():
            raise LabError(f"{self.name} still running; stop it first")
        self.stop()
        self._proc = None

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def remove_log(self) -> None:
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        return f"ManagedProcess({self.name!r}, pid={self.pid}, {state})"

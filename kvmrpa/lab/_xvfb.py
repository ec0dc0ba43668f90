"""An Xvfb virtual display on a free display number, local connections only."""

from __future__ import annotations

import logging
import os
import select
import shutil
import socket
import time

from .._errors import LabError
from ._process import ManagedProcess

__all__ = ["XvfbDisplay"]

log = logging.getLogger("kvmrpa.lab")


class XvfbDisplay:
    """``Xvfb -displayfd`` picks a free display number itself (no race with other
    Xvfb instances) and announces it once it accepts connections.

    Use as a context manager; :attr:`display` is ``":N"`` and :attr:`env` an
    environment for programs that should draw on it.
    """

    def __init__(self, width: int = 1280, height: int = 720, depth: int = 24,
                 start_timeout: float = 15.0) -> None:
        if width < 64 or height < 64:
            raise LabError(f"Xvfb screen {width}x{height} too small (at least 64x64)")
        self.width = width
        self.height = height
        self.depth = depth
        self.start_timeout = start_timeout
        self.number: int | None = None
        self._proc: ManagedProcess | None = None

    @property
    def display(self) -> str:
        if self.number is None:
            raise LabError("Xvfb display not started")
        return f":{self.number}"

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def env(self) -> dict[str, str]:
        """``os.environ`` with ``DISPLAY`` pointing here."""
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def start(self) -> XvfbDisplay:
        exe = shutil.which("Xvfb")
        if exe is None:
            raise LabError("Xvfb not found; install the Debian package xvfb (scripts/setup.sh)")
        read_fd, write_fd = os.pipe()
        proc = ManagedProcess(
            "Xvfb",
            [exe, "-displayfd", str(write_fd), "-screen", "0",
             f"{self.width}x{self.height}x{self.depth}", "-nolisten", "tcp",
             "-noreset"],
            pass_fds=(write_fd,),
        )
        self._proc = proc
        try:
            try:
                proc.start()
            finally:
                os.close(write_fd)
            self.number = self._read_number(read_fd, proc)
            self._wait_connectable(proc)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(read_fd)
        log.info("Xvfb %s started (%dx%d, pid %s)", self.display, self.width, self.height, proc.pid)
        return self

    def _read_number(self, fd: int, proc: ManagedProcess) -> int:
        deadline = time.monotonic() + self.start_timeout
        data = b""
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LabError(f"Xvfb did not report its display within {self.start_timeout:g} s: "
                               f"{proc.log_tail()}")
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
            if ready:
                chunk = os.read(fd, 64)
                if not chunk:
                    proc.check_alive()
                    raise LabError(f"Xvfb closed its display pipe: {proc.log_tail()}")
                data += chunk
            else:
                proc.check_alive()
        try:
            return int(data.strip())
        except ValueError:
            raise LabError(f"Xvfb reported a bad display number {data!r}") from None

    def _wait_connectable(self, proc: ManagedProcess) -> None:
        path = f"/tmp/.X11-unix/X{self.number}"
        deadline = time.monotonic() + self.start_timeout
        while True:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(path)
                    return
                except OSError as exc:
                    err = exc
            proc.check_alive()
            if time.monotonic() > deadline:
                raise LabError(f"Xvfb :{self.number} does not accept connections on {path}: {err}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc.remove_log()
            self._proc = None

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    def screenshot(self) -> bytes:
        """A PNG of the whole display, grabbed with ffmpeg's x11grab."""
        import subprocess

        exe = shutil.which("ffmpeg")
        if exe is None:
            raise LabError("ffmpeg not found; needed for a screenshot of the display")
        try:
            out = subprocess.run(
                [exe, "-loglevel", "error", "-f", "x11grab", "-video_size",
                 f"{self.width}x{self.height}", "-i", f"{self.display}+0,0", "-frames:v", "1",
                 "-f", "image2pipe", "-vcodec", "png", "-"],
                capture_output=True, timeout=20, env=self.env, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise LabError(f"screenshot of {self.display} failed: {exc}") from exc
        return out.stdout

    def __enter__(self) -> XvfbDisplay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"XvfbDisplay({self.number and self.display}, {self.width}x{self.height})"

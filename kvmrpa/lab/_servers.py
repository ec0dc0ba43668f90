"""The lab's network servers for a display: GStreamer RTSP (H.264) and x11vnc."""

from __future__ import annotations

import functools
import logging
import select
import shutil
import signal
import socket
import time
from pathlib import Path

from .._errors import LabError
from ._process import SYSTEM_PYTHON, ManagedProcess, free_port, wait_for
from ._xvfb import XvfbDisplay

__all__ = ["RtspServer", "VncServer"]

log = logging.getLogger("kvmrpa.lab")
_RTSP_SCRIPT = Path(__file__).with_name("_rtsp_server.py")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class RtspServer:
    """GStreamer's RTSP server publishing ``display`` as H.264 at ``fps``.

    :attr:`url` is ``rtsp://127.0.0.1:<port><mount>``. The port is chosen on the first
    start and kept by :meth:`restart`, so a reader's URL stays valid across restarts.
    :meth:`pause`/:meth:`resume` send SIGSTOP/SIGCONT (a hung server).
    """

    def __init__(self, display: XvfbDisplay, *, fps: int = 15, mount: str = "/screen",
                 port: int = 0, bitrate: int = 4000, start_timeout: float = 20.0) -> None:
        if not mount.startswith("/"):
            raise LabError(f"RTSP mount {mount!r} must start with '/'")
        self.display = display
        self.fps = fps
        self.mount = mount
        self.port = port
        self.bitrate = bitrate
        self.start_timeout = start_timeout
        self._proc: ManagedProcess | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        if not self.port:
            raise LabError("RTSP server not started yet: no port")
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> RtspServer:
        if self._proc is not None and self._proc.running():
            raise LabError(f"RTSP server already running on port {self.port}")
        if not Path(SYSTEM_PYTHON).exists():
            raise LabError(f"{SYSTEM_PYTHON} not found; the RTSP server needs python3-gi")
        last: Exception | None = None
        for _attempt in range(3):
            try:
                self._start_once()
                self.starts += 1
                return self
            except LabError as exc:
                last = exc
                if self.starts:  # a restart must keep its port: retry the same one
                    time.sleep(0.3)
        raise LabError(f"RTSP server did not start: {last}")

    def _start_once(self) -> None:
        proc = ManagedProcess(
            "rtsp-server",
            [SYSTEM_PYTHON, "-u", str(_RTSP_SCRIPT), "--display", self.display.display,
             "--port", str(self.port), "--mount", self.mount, "--fps", str(self.fps),
             "--bitrate", str(self.bitrate)],
            env=self.display.env, stdout_pipe=True,
        )
        self._proc = proc
        try:
            proc.start()
            line = self._read_line(proc)
            if not line.startswith("READY "):
                raise LabError(f"RTSP server said {line!r}: {proc.log_tail()}")
            self.port = int(line.split()[1])
            wait_for(lambda: _port_open(self.port), self.start_timeout,
                     f"RTSP server port {self.port}", alive=proc.check_alive)
        except BaseException:
            proc.stop()
            proc.remove_log()
            self._proc = None
            raise
        log.info("RTSP server %s started (pid %s, %d fps)", self.url, proc.pid, self.fps)

    def _read_line(self, proc: ManagedProcess) -> str:
        stdout = proc.popen.stdout
        assert stdout is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LabError(f"RTSP server silent for {self.start_timeout:g} s: {proc.log_tail()}")
            ready, _, _ = select.select([stdout], [], [], min(remaining, 0.2))
            if ready:
                line = stdout.readline()
                if not line:
                    proc.stop()
                    raise LabError(f"RTSP server exited ({proc.poll()}): {proc.log_tail()}")
                return line.decode("utf-8", "replace").strip()
            proc.check_alive()

    def stop(self) -> None:
        """Stop the server (terminate, then kill); the port is kept for :meth:`start`."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
            proc.remove_log()

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL): a crashed KVM."""
        if self._proc is not None and self._proc.running():
            self._proc.signal(signal.SIGKILL)
        self.stop()

    def restart(self) -> RtspServer:
        self.stop()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP the server: it keeps its sockets open but sends nothing (a hang)."""
        if self._proc is None:
            raise LabError("RTSP server not running")
        self._proc.signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is None:
            raise LabError("RTSP server not running")
        self._proc.signal(signal.SIGCONT)

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RtspServer(port={self.port}, running={self.running()})"


class VncServer:
    """x11vnc serving ``display`` on 127.0.0.1 (``-localhost``), no password.

    :attr:`url` is ``vnc://127.0.0.1:<port>``.
    """

    def __init__(self, display: XvfbDisplay, *, start_timeout: float = 20.0) -> None:
        self.display = display
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise LabError("VNC server not started yet: no port")
        return f"vnc://127.0.0.1:{self.port}"

    def start(self) -> VncServer:
        exe = shutil.which("x11vnc")
        if exe is None:
            raise LabError("x11vnc not found; install the Debian package x11vnc (scripts/setup.sh)")
        last: Exception | None = None
        for _attempt in range(4):  # a free port can be taken between choice and bind
            port = free_port()
            proc = ManagedProcess(
                "x11vnc",
                [exe, "-display", self.display.display, "-rfbport", str(port), "-localhost",
                 "-nopw", "-forever", "-shared", "-noxdamage", "-nonap", "-quiet",
                 "-norc", "-no6"],
                env=self.display.env,
            )
            try:
                proc.start()
                wait_for(functools.partial(_port_open, port), self.start_timeout,
                         f"x11vnc on port {port}", alive=proc.check_alive)
            except LabError as exc:
                last = exc
                proc.stop()
                proc.remove_log()
                continue
            self._proc = proc
            self.port = port
            log.info("x11vnc %s started (pid %s)", self.url, proc.pid)
            return self
        raise LabError(f"x11vnc did not start: {last}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
            proc.remove_log()

    def pause(self) -> None:
        """SIGSTOP x11vnc: connections stay open, nothing is answered (a hang)."""
        if self._proc is None:
            raise LabError("x11vnc not running")
        self._proc.signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is None:
            raise LabError("x11vnc not running")
        self._proc.signal(signal.SIGCONT)

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    def __enter__(self) -> VncServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"VncServer(port={self.port}, running={self.running()})"

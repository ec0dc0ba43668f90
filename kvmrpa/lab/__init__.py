"""The lab: real programs on loopback for tests, benchmarks and demos.

Each program is a context manager that starts on enter and is stopped (terminate, then
kill, always reaped) on exit, on every path:

- :class:`XvfbDisplay`: a virtual X display on a free display number, ``-nolisten tcp``;
- :class:`LabApp`: the Tk test application full-screen on that display (text lines in
  English and Chinese, buttons OK/Cancel/确定/取消, an entry, a status label); it
  reports every event as JSON lines and takes commands (see :mod:`kvmrpa.lab._app`);
- :class:`RtspServer`: GStreamer's RTSP server publishing the display as H.264 on
  ``rtsp://127.0.0.1:<free port>/screen``;
- :class:`VncServer`: x11vnc on ``vnc://127.0.0.1:<free port>``.

:class:`Lab` starts all four together::

    with Lab(fps=15) as lab:
        lab.rtsp_url, lab.vnc_url, lab.app.element_centre("ok")

Failures raise :class:`kvmrpa.LabError` with the program's own output.
"""

from __future__ import annotations

import contextlib

from ._app import LabApp
from ._process import ManagedProcess, free_port
from ._servers import RtspServer, VncServer
from ._xvfb import XvfbDisplay

__all__ = ["Lab", "LabApp", "ManagedProcess", "RtspServer", "VncServer", "XvfbDisplay", "free_port"]


class Lab:
    """Xvfb + the test app + (optionally) the RTSP and VNC servers, as one unit."""

    def __init__(self, *, width: int = 1280, height: int = 720, fps: int = 15,
                 rtsp: bool = True, vnc: bool = True) -> None:
        self.display = XvfbDisplay(width, height)
        self.app = LabApp(self.display)
        self.rtsp: RtspServer | None = RtspServer(self.display, fps=fps) if rtsp else None
        self.vnc: VncServer | None = VncServer(self.display) if vnc else None
        self._stack = contextlib.ExitStack()

    @property
    def rtsp_url(self) -> str:
        if self.rtsp is None:
            raise AttributeError("this Lab was built with rtsp=False")
        return self.rtsp.url

    @property
    def vnc_url(self) -> str:
        if self.vnc is None:
            raise AttributeError("this Lab was built with vnc=False")
        return self.vnc.url

    def start(self) -> Lab:
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.display)
            stack.enter_context(self.app)
            if self.rtsp is not None:
                stack.enter_context(self.rtsp)
            if self.vnc is not None:
                stack.enter_context(self.vnc)
            self._stack = stack.pop_all()
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The ``sim://`` source and input driver: two faces of one shared :class:`SimDesktop`.

:class:`SimSource` owns the render thread (started and stopped with the source): on
every tick it asks the desktop for its image (re-rendered only when something changed),
applies the realism pass to changed images, adds per-frame noise and publishes. Only
pixels leave through it. :class:`SimDriver` turns the driver primitives into desktop
events; it can type any Unicode text.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from ..capture import FrameSource
from ..kvm import Calibration, DriverCapabilities, InputDriver, MouseButton
from ._desktop import SimDesktop
from ._realism import Realism
from ._registry import get_desktop

__all__ = ["SimDriver", "SimSource"]

log = logging.getLogger("kvmrpa.sim")


class SimSource(FrameSource):
    """Frames of the simulated desktop at its frame rate (``sim://<scenario>?…``)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._desktop: SimDesktop = get_desktop(url)
        self._fps = self._desktop.options.fps
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    @property
    def fps(self) -> float:
        return self._fps

    def _start(self) -> None:
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"kvmrpa-sim-{self._desktop.url}",
                                        daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
            if thread.is_alive():  # pragma: no cover - a render never takes seconds
                log.warning("sim source %s: render thread did not stop", self.display_url)

    def _run(self) -> None:
        desktop = self._desktop
        opts = desktop.options
        realism = Realism(desktop.size, opts.seed) if opts.realism else None
        period = 1.0 / self._fps
        last_key: tuple[int, str] | None = None
        processed: np.ndarray | None = None
        next_tick = time.monotonic()
        try:
            while not self._stop_event.is_set():
                captured = time.monotonic()
                key, rgb = desktop.render()
                if key != last_key or processed is None:
                    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
                    processed = realism.on_change(bgr) if realism is not None else bgr
                    last_key = key
                out = realism.per_frame(processed) if realism is not None else processed
                self._publish(out, captured)
                next_tick += period
                now = time.monotonic()
                if next_tick < now - period:  # fell behind (busy machine): skip, never burst
                    next_tick = now
                self._stop_event.wait(max(0.0, next_tick - now))
        except Exception as exc:  # keep the error observable instead of a dead thread
            log.exception("sim source %s: render failed", self.display_url)
            self._note_error(f"render failed: {exc}")


class SimDriver(InputDriver):
    """Keyboard and mouse into the simulated desktop (any Unicode text can be typed)."""

    scheme = "sim"
    capabilities = DriverCapabilities(unicode_text=True, scroll=True, key_down_up=True,
                                      absolute_mouse=True)

    def __init__(self, url: str, *, frame_size: tuple[int, int] | None = None,
                 calibration: Calibration | None = None) -> None:
        super().__init__(url, frame_size=frame_size, calibration=calibration)
        self._desktop: SimDesktop = get_desktop(url)

    def target_size(self) -> tuple[int, int]:
        return self._desktop.size

    async def _move(self, x: int, y: int) -> None:
        self._desktop.pointer_move(x, y)

    async def _button(self, button: MouseButton, down: bool) -> None:
        self._desktop.mouse_button(button, down)

    async def _scroll(self, dx: int, dy: int) -> None:
        self._desktop.scroll(dx, dy)

    async def _key(self, key: str, down: bool) -> None:
        self._desktop.key(key, down)

    async def _type_text(self, text: str) -> None:
        self._desktop.type_text(text)

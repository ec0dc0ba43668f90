"""Input benchmark: ``click()`` over VNC until the application sees it, next to xdotool.

Starts the lab (Xvfb + the Tk test app + x11vnc with ``-nonap``, no RTSP), then
alternates clicks on a text line: one through :class:`kvmrpa.kvm` ``vnc://`` (the shared
driver from the hub, with its arbitration and audit), one with ``xdotool mousemove …
click 1`` on the same display (the baseline; it includes starting the xdotool process,
as a user running it would). Latency is from just before the call to the timestamp the
application puts on the first pointer event of that click it logs (same machine clock).

Figures: ``input.vnc_click_ms_p50`` / ``_p90``, ``input.xdotool_click_ms_p50`` / ``_p90``,
``input.samples``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

from . import BenchSkipped

__all__ = ["run"]

log = logging.getLogger("kvmrpa.bench")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _at(x: int, y: int) -> Callable[[dict[str, Any]], bool]:
    """The first pointer event of a click at ``(x, y)``. Tk sometimes folds a quick
    press into a multi-click pattern and logs only the release; that still marks the
    click's arrival (a release never precedes its press)."""

    def match(e: dict[str, Any]) -> bool:
        return (e["type"] in ("click", "double_click", "release")
                and (e.get("x"), e.get("y")) == (x, y))

    return match


def run(quick: bool) -> dict[str, float | None]:
    from ..kvm import open_driver, release_driver
    from ..lab import Lab

    xdotool = shutil.which("xdotool")
    if xdotool is None or shutil.which("x11vnc") is None or shutil.which("Xvfb") is None:
        raise BenchSkipped("needs Xvfb, x11vnc and xdotool (scripts/setup.sh)")
    samples = 10 if quick else 40
    vnc_ms: list[float] = []
    xdo_ms: list[float] = []
    with Lab(rtsp=False) as lab:
        app = lab.app
        drv = open_driver(lab.vnc_url, frame_size=lab.display.size)
        try:
            drv.sync.connect()
            targets = [app.element_centre(n) for n in ("line0", "line2")]
            for i in range(samples):
                x, y = targets[i % 2]
                app.mark()
                t0 = time.time()
                drv.sync.click(x, y)
                ev = app.wait_event(_at(x, y), timeout=5.0)
                vnc_ms.append((ev["t"] - t0) * 1000)
                x, y = targets[(i + 1) % 2]
                app.mark()
                t0 = time.time()
                subprocess.run([xdotool, "mousemove", str(x), str(y), "click", "1"],
                               env=lab.display.env, check=True, timeout=10,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                ev = app.wait_event(_at(x, y), timeout=5.0)
                xdo_ms.append((ev["t"] - t0) * 1000)
        finally:
            release_driver(drv)
    return {
        "input.vnc_click_ms_p50": _p(vnc_ms, 0.5),
        "input.vnc_click_ms_p90": _p(vnc_ms, 0.9),
        "input.xdotool_click_ms_p50": _p(xdo_ms, 0.5),
        "input.xdotool_click_ms_p90": _p(xdo_ms, 0.9),
        "input.samples": float(samples),
    }

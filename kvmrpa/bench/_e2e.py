"""End-to-end benchmark: a change on the target's screen → the flow's click delivered.

Both figures run the same reacting loop, which does what a flow's nodes do: wait for a
fresh frame from the source, ROI OCR on the trigger's area (in the runtime pool),
decide (is the trigger text read?) and click the button through the input driver (with
its arbitration and audit). Where to look and where to click were found beforehand by
one full-frame OCR, as a user exploring in a notebook would. The trigger is shown at
random moments; the reaction is measured from that change to the click reaching the
target and split into its parts: frame wait (includes capture latency and any OCR still
busy with an older frame), OCR, decision, input.

- ``e2e.sim_reaction_ms_p50``: in-process on the simulated desktop (``scenario1``, 720p,
  20 fps, realism on): the 测试 dialog appears, 确定 is clicked. Side-by-side baseline
  (``e2e.sim_baseline_ms_p50``): an ideal consumer, half a frame period plus one ROI OCR
  of the same region measured in the same run.
- ``e2e.lab_reaction_ms_p50``: the real lab (Xvfb + the Tk test app, its display as
  H.264 over RTSP from GStreamer at 15 fps, input through x11vnc): the app's status
  label changes to 触发, 确定 is clicked, and the app's own event log (wall clock) says
  when the click arrived. When the lab cannot run, the value is ``None`` and
  :data:`SKIPPED_REASONS` says why.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._runtime import get_runtime, run_sync

__all__ = ["SKIPPED_REASONS", "run"]

log = logging.getLogger("kvmrpa.bench")

#: Figures reported as ``None`` in the last :func:`run`, with the reason.
SKIPPED_REASONS: dict[str, str] = {}

_PARTS = ("reaction", "frame_wait", "ocr", "decision", "input")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _expand(box: tuple[int, ...], margin: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in box)
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(size[0], x + w + margin), min(size[1], y + h + margin)
    return x0, y0, x1 - x0, y1 - y0


@dataclass
class _Target:
    """One screen to react to: how to change it, and when a click arrived there."""

    source: Any
    driver: Any
    trigger: str
    button: str
    clock: Callable[[], float]  # the clock show() and delivered() report on
    show: Callable[[], Awaitable[float]]  # make the trigger appear; returns t0
    hide: Callable[[], Awaitable[None]]  # make it disappear (and forget old clicks)
    delivered: Callable[[], Awaitable[float]]  # when the last click reached the target
    latency: float  # seconds before a frame reflects a change (capture pipeline)


async def _explore(t: _Target) -> tuple[tuple[int, int, int, int], tuple[float, float]]:
    from ..vision._ocr import ocr

    await t.show()
    await asyncio.sleep(t.latency + 0.2)
    frame = await t.source.next_frame(None, timeout=10)
    boxes = await get_runtime().to_thread(ocr, frame)
    label = next((b for b in boxes if b.text.strip() == t.trigger), None)
    button = next((b for b in boxes if b.text.strip() == t.button), None)
    if label is None or button is None:
        raise RuntimeError(f"exploration OCR did not read {t.trigger}/{t.button}: "
                           f"{[b.text for b in boxes]}")
    t.driver.frame_size = frame.size
    return _expand(label.bbox, 12, frame.size), button.centre


async def _react(t: _Target, roi: tuple[int, int, int, int], point: tuple[float, float],
                 samples: int, seed: int) -> dict[str, list[float]]:
    from ..vision._ocr import ocr

    runtime = get_runtime()
    rng = random.Random(seed)
    parts: dict[str, list[float]] = {k: [] for k in _PARTS}
    for _ in range(samples):
        await t.hide()
        hidden_at = time.monotonic()
        await asyncio.sleep(t.latency + rng.uniform(0.05, 0.15))
        frame = await t.source.next_frame(None, timeout=10)
        while frame.captured <= hidden_at + t.latency:  # a frame that shows the hiding
            frame = await t.source.next_frame(frame.seq, timeout=10)
        seq = frame.seq
        shown: dict[str, float] = {}

        async def show_later(delay: float, shown: dict[str, float] = shown) -> None:
            await asyncio.sleep(delay)
            shown["t0"] = await t.show()

        shower = asyncio.ensure_future(show_later(rng.uniform(0.15, 0.4)))
        try:
            while True:
                f = await t.source.next_frame(seq, timeout=10)
                got = t.clock()
                seq = f.seq
                texts = await runtime.to_thread(ocr, f, roi)
                ocr_done = t.clock()
                if "t0" not in shown or not any(b.text.strip() == t.trigger for b in texts):
                    continue
                decided = t.clock()
                await t.driver.click(*point)
                delivered = await t.delivered()
                t0 = shown["t0"]
                for key, value in (("reaction", delivered - t0), ("frame_wait", got - t0),
                                   ("ocr", ocr_done - got), ("decision", decided - ocr_done),
                                   ("input", delivered - decided)):
                    parts[key].append(value * 1000)
                break
        finally:
            await shower
    return parts


async def _sim(samples: int, seed: int) -> tuple[dict[str, list[float]], float]:
    from ..sim import SimDriver, SimSource, get_desktop
    from ..vision._ocr import ocr

    url = f"sim://scenario1?seed={seed}&fps=20"
    desktop = get_desktop(url)
    source = SimSource(url).start()
    driver = SimDriver(url)

    async def show() -> float:
        t0 = time.monotonic()
        desktop.set_window_visible("dialog", True)
        return t0

    async def hide() -> None:
        desktop.set_window_visible("dialog", False)
        desktop.set_status("")

    async def delivered() -> float:
        st = desktop.state()
        if st["page"] != "confirmed":
            raise RuntimeError("bench e2e: the click did not confirm the dialog")
        return float(st["last_click_at"])

    target = _Target(source, driver, "测试", "确定", time.monotonic, show, hide, delivered, 0.0)
    try:
        roi, point = await _explore(target)
        frame = await source.next_frame(None, timeout=10)
        base = []
        for _ in range(max(3, samples // 2)):  # baseline, side by side: ROI OCR alone
            t = time.perf_counter()
            await get_runtime().to_thread(ocr, frame, roi)
            base.append((time.perf_counter() - t) * 1000)
        parts = await _react(target, roi, point, samples, seed)
        return parts, 1000 / source.fps / 2 + statistics.median(base)
    finally:
        await driver.aclose()
        await get_runtime().to_thread(source.stop)  # joins the render thread: off the loop


async def _lab(samples: int, seed: int) -> dict[str, list[float]]:
    from ..capture import StreamSource
    from ..kvm import open_driver, release_driver
    from ..lab import Lab

    runtime = get_runtime()
    lab = Lab(fps=15)
    await runtime.to_thread(lab.start)
    source = driver = None
    try:
        app = lab.app
        # Our own source (not the hub's, which lingers): stopped before the lab stops.
        source = await runtime.to_thread(StreamSource(lab.rtsp_url).start)
        first = await source.next_frame(None, timeout=15)
        driver = open_driver(lab.vnc_url, first.size)

        async def show() -> float:
            ack = await runtime.to_thread(app.command, "set_text", name="status", text="触发")
            return float(ack["t"])

        async def hide() -> None:
            await runtime.to_thread(app.command, "set_text", name="status", text="")
            await runtime.to_thread(app.mark)

        async def delivered() -> float:
            ev = await runtime.to_thread(
                app.wait_event, lambda e: e["type"] == "button" and e.get("name") == "confirm", 5.0)
            return float(ev["t"])

        target = _Target(source, driver, "触发", "确定", time.time, show, hide, delivered, 0.4)
        roi, point = await _explore(target)
        return await _react(target, roi, point, samples, seed)
    finally:
        if driver is not None:
            await runtime.to_thread(release_driver, driver)
        if source is not None:
            await runtime.to_thread(source.stop)
        await runtime.to_thread(lab.stop)


def _summary(prefix: str, parts: dict[str, list[float]]) -> dict[str, float | None]:
    med = {k: statistics.median(v) for k, v in parts.items()}
    return {
        f"e2e.{prefix}_reaction_ms_p50": round(med["reaction"], 2),
        f"e2e.{prefix}_reaction_ms_p90": round(_p(parts["reaction"], 0.9), 2),
        f"e2e.{prefix}_frame_wait_ms_p50": round(med["frame_wait"], 2),
        f"e2e.{prefix}_ocr_ms_p50": round(med["ocr"], 2),
        f"e2e.{prefix}_decision_ms_p50": round(med["decision"], 3),
        f"e2e.{prefix}_input_ms_p50": round(med["input"], 3),
        f"e2e.{prefix}_samples": float(len(parts["reaction"])),
    }


def run(quick: bool) -> dict[str, float | None]:
    """Measure both reaction times (and their parts); see the module docstring."""
    SKIPPED_REASONS.clear()
    parts, baseline = run_sync(_sim(8 if quick else 30, seed=7), timeout=300)
    out = _summary("sim", parts)
    out["e2e.sim_baseline_ms_p50"] = round(baseline, 2)
    reaction = out["e2e.sim_reaction_ms_p50"]
    assert reaction is not None  # every sample has a reaction time
    out["e2e.sim_ratio_to_baseline"] = round(reaction / baseline, 3)
    out["e2e.sim_frame_period_ms"] = 50.0
    try:
        out.update(_summary("lab", run_sync(_lab(5 if quick else 15, seed=7), timeout=300)))
    except Exception as exc:  # the lab needs Xvfb, GStreamer, x11vnc: report, never hide
        reason = f"lab not measured: {type(exc).__name__}: {exc}"
        log.warning("e2e: %s", reason)
        SKIPPED_REASONS["e2e.lab_reaction_ms_p50"] = reason
        out["e2e.lab_reaction_ms_p50"] = None
    return out

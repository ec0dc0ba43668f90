"""Benchmark group ``stream``: live video to viewers.

Figures, each next to its baseline in the same run:

* ``stream.encodes_per_frame_4_viewers``: JPEG encodes per frame shown while four
  viewers watch one source (target 1.0; per-viewer encoding would be 4.0);
* ``stream.encodes_per_frame_no_viewer``: encodes per frame produced while nobody
  watches (target 0);
* ``stream.loop_stall_p99_ms``: p99 lateness of a 1 ms ticker on the runtime loop while
  four viewers watch a 1080p 15 fps source, encoding offloaded to the pool;
  ``stream.loop_stall_p99_ms_inline_baseline``: the same with encoding on the loop;
* ``stream.loop_stalled_ms_per_s``: the ticker's stalls, summed per second of the run
  (how long the loop could not answer), next to
  ``stream.loop_stalled_ms_per_s_inline_baseline``. A stall is a tick later than the
  machine's floor (the median lateness with nobody watching: a 1 ms sleep overshoots on
  every tick by itself) by more than :data:`STALL` (1 ms); it counts from the floor.
  Each inline encode delays one tick, so a p99 over thousands of ticks sits near the
  noise when encodes are few; the sum counts every one of them. Lateness under the
  threshold is the loop's own scheduling of four pumps (about 50 ms/s here with the
  encode replaced by a sleep that costs no CPU), not a stall;
* ``stream.loop_stall_p99_ms_no_viewer`` (extra): the same ticker with nobody watching,
  the machine's noise floor;
* ``stream.wire_bytes_per_jpeg_byte``: websocket bytes per JPEG byte for one frame, the
  larger of the frame route's (``_route``: one binary message) and Bokeh's message
  path's (``_bokeh``: binary buffers; base64 would cost 1.33); for a frame sent as
  patches (a clock ticking on a desktop) ``stream.wire_bytes_per_jpeg_byte_patches`` and
  ``stream.patch_bytes_per_whole_frame_byte`` (its bytes against the whole frame's), both
  extra.

In full mode (not ``--quick``), when Playwright and the system Chromium are there, extra
figures: ``stream.browser_fps_720p30`` (frames drawn per second by a headless browser
watching a 30 fps 720p desktop, a clock ticking in its corner, through a served
LiveView: frames on the frame route, as patches of what changed; target >= 25) and
``stream.server_cpu_pct`` (CPU of this process meanwhile, % of one core; target <= 10)
and ``stream.server_cpu_ms_per_frame`` (that CPU per frame drawn), each next to its
``_bokeh_baseline``: the same page with every frame whole in Bokeh messages (the path
before the route and patches; a notebook's path with patches off), and its
``_route_whole`` (extra): the route with every frame whole (what patches save).

The encoder is :mod:`kvmrpa.capture._encoder`; the wire cost and the browser figures
need the widgets (Panel), imported only when those parts run, so importing this module
loads no UI package.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import numpy as np

from .._frame import Frame
from .._runtime import Runtime
from ..capture import FrameSource
from ..capture import _encoder as enc_mod

__all__ = ["run"]


class _SyntheticSource(FrameSource):
    """A 1080p source at ``fps`` from pre-rendered noisy pictures (realistic JPEG sizes)."""

    def __init__(self, fps: float = 15.0, size: tuple[int, int] = (1920, 1080),
                 desktop: bool = False) -> None:
        super().__init__("bench://stream")
        self._fps = fps
        w, h = size
        if desktop:  # flat colours, windows and text, a changing clock: a screen's content
            self._pictures = [_desktop(w, h, i) for i in range(8)]
        else:  # noisy gradients: the expensive case for JPEG
            rng = np.random.default_rng(1)
            base = np.zeros((h, w, 3), np.uint8)
            base[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
            base[:, :, 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
            self._pictures = [
                np.clip(base.astype(np.int16) + rng.integers(-12, 12, base.shape), 0, 255)
                .astype(np.uint8) for _ in range(4)]
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name="bench-source", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        i = 0
        period = 1.0 / self._fps
        next_t = time.monotonic()
        while not self._halt.is_set():
            self._publish(self._pictures[i % len(self._pictures)])
            i += 1
            next_t += period
            self._halt.wait(max(0.0, next_t - time.monotonic()))


def _desktop(w: int, h: int, i: int) -> np.ndarray:
    import cv2

    img = np.full((h, w, 3), (140, 100, 40), np.uint8)
    for k, (x, y) in enumerate(((60, 60), (w // 2, 90), (200, h // 2))):
        cv2.rectangle(img, (x, y), (x + 420, y + 220), (236, 236, 236), -1)
        cv2.rectangle(img, (x, y), (x + 420, y + 28), (150, 90, 40), -1)
        cv2.putText(img, f"Window {k} - kvmrpa", (x + 10, y + 20), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(img, "Hello kvmrpa 123", (x + 20, y + 90), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                    (20, 20, 20), 2, cv2.LINE_AA)
    cv2.rectangle(img, (0, h - 40), (w, h), (40, 40, 40), -1)
    cv2.putText(img, f"12:00:{i:02d}", (w - 150, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                (230, 230, 230), 2, cv2.LINE_AA)
    return img


def _frame_of(image: np.ndarray, seq: int) -> Frame:
    return Frame(image, seq=seq, captured=time.monotonic(), source_id="bench://desktop")


async def _ticker(stop_at: float, lateness: list[float]) -> None:
    while time.monotonic() < stop_at:
        t = time.monotonic()
        await asyncio.sleep(0.001)
        lateness.append(max(0.0, time.monotonic() - t - 0.001))


def _watch(runtime: Runtime, encoder: Any, source: FrameSource, viewers: int,
           seconds: float) -> tuple[list[float], set[int]]:
    shown: set[int] = set()
    streamers: list[Any] = []
    lock = threading.Lock()

    for _ in range(viewers):
        def send(e: Any, idx: int = len(streamers)) -> None:
            with lock:
                shown.add(e.seq)
            streamers[idx].ack(e.seq)

        streamers.append(enc_mod.FrameStreamer(
            source, send, encoder=encoder, runtime=runtime, fps=lambda: 15.0))
    lateness: list[float] = []
    try:
        for s in streamers:
            s.start()
        time.sleep(0.3)  # warm up: first frames, pool threads
        runtime.run(_ticker(time.monotonic() + seconds, lateness), timeout=seconds + 30)
    finally:
        for s in streamers:
            s.stop(wait=5)
    return lateness, shown


def _p99_ms(values: list[float]) -> float | None:
    if len(values) < 10:
        return None
    return statistics.quantiles(values, n=100)[98] * 1000


#: Lateness beyond the floor that counts as a stall (seconds).
STALL = 0.001


def _stalled_ms_per_s(lateness: list[float], floor: float, seconds: float) -> float:
    """Milliseconds per second the ticker was stalled: the lateness beyond ``floor``
    (the median lateness of the same ticker with nobody watching: the timer's own
    overshoot) of every tick later than that by more than :data:`STALL`."""
    return sum(late - floor for late in lateness if late - floor > STALL) * 1000 / seconds


def run(quick: bool) -> dict[str, float | None]:
    seconds = 3.0 if quick else 10.0
    runtime = Runtime(name="bench-stream")
    source = _SyntheticSource().start()
    out: dict[str, float | None] = {}
    try:
        # Nobody watches: frames are produced, none is encoded.
        # The ticker runs meanwhile: its lateness is this machine's noise floor.
        idle = enc_mod.FrameEncoder(runtime=runtime)
        first = source.metrics().frames
        idle_lateness: list[float] = []
        runtime.run(_ticker(time.monotonic() + min(seconds, 2.0), idle_lateness),
                    timeout=seconds + 30)
        produced = source.metrics().frames - first
        out["stream.encodes_per_frame_no_viewer"] = idle.encodes / max(1, produced)
        out["stream.loop_stall_p99_ms_no_viewer"] = _p99_ms(idle_lateness)
        # a 1 ms sleep itself overshoots on every tick: that is not a stall
        floor = statistics.median(idle_lateness) if idle_lateness else 0.0

        # Four viewers, encoding offloaded to the pool.
        offloaded = enc_mod.FrameEncoder(runtime=runtime)
        lateness, shown = _watch(runtime, offloaded, source, 4, seconds)
        out["stream.encodes_per_frame_4_viewers"] = offloaded.encodes / max(1, len(shown))
        out["stream.loop_stall_p99_ms"] = _p99_ms(lateness)
        out["stream.loop_stalled_ms_per_s"] = _stalled_ms_per_s(lateness, floor, seconds)
        out["stream.frames_shown_offloaded"] = float(len(shown))

        # Baseline: the same viewers with encoding on the loop.
        inline = enc_mod.FrameEncoder(runtime=runtime, inline=True)
        lateness_inline, shown_inline = _watch(runtime, inline, source, 4, seconds)
        out["stream.loop_stall_p99_ms_inline_baseline"] = _p99_ms(lateness_inline)
        out["stream.loop_stalled_ms_per_s_inline_baseline"] = \
            _stalled_ms_per_s(lateness_inline, floor, seconds)
        out["stream.frames_shown_inline"] = float(len(shown_inline))

        frame = source.latest()
        if frame is None:
            out["stream.wire_bytes_per_jpeg_byte"] = None
        else:
            # Bokeh's protocol: UI packages
            from ..widgets._wire import frame_wire_bytes, route_wire_bytes

            encoded = runtime.run(offloaded.encode(frame), timeout=30)
            route = route_wire_bytes(encoded) / encoded.nbytes
            bokeh = frame_wire_bytes(encoded) / encoded.nbytes
            out["stream.wire_bytes_per_jpeg_byte"] = max(route, bokeh)  # both paths count
            out["stream.wire_bytes_per_jpeg_byte_route"] = route
            out["stream.wire_bytes_per_jpeg_byte_bokeh"] = bokeh
            out["stream.jpeg_kib"] = encoded.nbytes / 1024
            # a desktop's clock ticking, sent as patches (extra: small JPEGs, so the
            # fixed per-message bytes weigh more; the frame's bytes are what fell)
            desk = [_frame_of(_desktop(1280, 720, i), i + 1) for i in range(2)]
            whole = runtime.run(offloaded.encode(desk[1]), timeout=30)
            patch = runtime.run(offloaded.encode(desk[1], after=desk[0]), timeout=30)
            if not patch.whole:
                out["stream.wire_bytes_per_jpeg_byte_patches"] = \
                    route_wire_bytes(patch) / patch.nbytes
                out["stream.patch_bytes_per_whole_frame_byte"] = \
                    route_wire_bytes(patch) / route_wire_bytes(whole)
    finally:
        source.stop()
        runtime.shutdown()
    # the browser figures (None in quick mode: no Chromium is started)
    out.update(_browser_fps() if not quick else dict.fromkeys(
        ("stream.server_cpu_pct", "stream.server_cpu_pct_bokeh_baseline")))
    return out


_COUNT_FRAMES = """(ms) => new Promise((resolve) => {
  const canvas = document.querySelector('[aria-label="Live view"]')
    || [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
         .map(r => r.querySelector('[aria-label="Live view"]')).find(Boolean);
  let n = 0;
  const obs = new MutationObserver(() => { n += 1 });
  obs.observe(canvas, {attributes: true, attributeFilter: ["data-frame-seq"]});
  setTimeout(() => { obs.disconnect(); resolve(n) }, ms);
})"""


def _browser_fps(seconds: float = 6.0, rounds: int = 2) -> dict[str, float | None]:
    """Frames per second a headless Chromium draws from a 30 fps 720p source, and the
    CPU this process spends serving them: on the frame route (``stream.*``) and on
    Bokeh's message path (``stream.*_bokeh_baseline``, what a server without the route
    and a notebook use). One server (with the route) and one browser; the two paths are
    measured in turns, ``rounds`` times each, on fresh pages, and averaged."""
    import os
    import socket

    paths = {"route": "", "route_whole": "_route_whole", "bokeh": "_bokeh_baseline"}
    none: dict[str, float | None] = {
        f"stream.{key}{base}": None for base in paths.values()
        for key in ("browser_fps_720p30", "server_cpu_pct", "server_cpu_ms_per_frame")}
    chromium = "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return none
    if not os.path.exists(chromium):
        return none
    import panel as pn

    from ..widgets import LiveView
    from ..widgets._frameroute import frame_route_patterns
    source = _SyntheticSource(fps=30.0, size=(1280, 720), desktop=True).start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    views: list[Any] = []

    def app() -> Any:
        route = pn.state.session_args.get("route", [b"1"])[0] == b"1"
        view = LiveView(source, fps=30.0, width=1280, height=760, sizing_mode="fixed",
                        frame_route=route)
        views.append(view)
        return view

    server = pn.serve(app, address="127.0.0.1", port=port, threaded=True, show=False,
                      websocket_origin=[f"127.0.0.1:{port}"], verbose=False,
                      extra_patterns=frame_route_patterns())
    figures: dict[str, list[float]] = {f"{path}_{what}": [] for path in paths
                                       for what in ("fps", "cpu")}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync"])
            try:
                for _ in range(rounds):
                    for path in paths:
                        fps, cpu = _watch_page(browser, port, path != "bokeh", seconds, views,
                                               patches=path == "route")
                        if fps is not None and cpu is not None:
                            figures[f"{path}_fps"].append(fps)
                            figures[f"{path}_cpu"].append(cpu)
            finally:
                browser.close()
    finally:
        for view in views:
            view.close()
        server.stop()
        source.stop()

    def mean(values: list[float]) -> float | None:
        return statistics.fmean(values) if len(values) == rounds else None

    out: dict[str, float | None] = {}
    for path, base in paths.items():
        fps, cpu = mean(figures[f"{path}_fps"]), mean(figures[f"{path}_cpu"])
        out[f"stream.browser_fps_720p30{base}"] = fps
        out[f"stream.server_cpu_pct{base}"] = cpu
        # CPU per frame drawn: the comparison that does not depend on the frame rate
        # each path reached on this (shared, noisy) machine
        out[f"stream.server_cpu_ms_per_frame{base}"] = \
            cpu * 10 / fps if fps and cpu is not None else None
    return out


def _watch_page(browser: Any, port: int, route: bool, seconds: float,
                views: list[Any], patches: bool = True) -> tuple[float | None, float | None]:
    """One page watching the served LiveView: (frames drawn per second, this process's
    CPU meanwhile in % of a core); (None, None) when the route was asked for and frames
    did not come on it. ``patches`` False sends every frame whole."""
    from .._settings import get_settings

    stream = get_settings().stream
    was, stream.patches = stream.patches, patches
    page = browser.new_page(viewport={"width": 1300, "height": 800})
    before = len(views)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/?route={int(route)}", timeout=10_000)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        page.get_by_label("Live view").wait_for(timeout=60_000)
        time.sleep(1.5)  # warm up
        if len(views) == before or views[-1].route_sockets != int(route):
            return None, None
        # The server's CPU: the whole process minus this thread (the browser driver's
        # client, which waits in evaluate()).
        cpu0, own0, wall0 = time.process_time(), time.thread_time(), time.monotonic()
        frames = page.evaluate(_COUNT_FRAMES, int(seconds * 1000))
        cpu1, own1, wall1 = time.process_time(), time.thread_time(), time.monotonic()
        return frames / seconds, ((cpu1 - cpu0) - (own1 - own0)) / (wall1 - wall0) * 100
    finally:
        page.close()
        if len(views) > before:
            views[-1].paused = True  # its session lingers a while: stop its stream now
        stream.patches = was

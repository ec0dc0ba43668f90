"""Benchmark group ``capture``: the RTSP reader against a bare OpenCV loop, on the lab.

The group starts its own lab (Xvfb, the Tk test app, GStreamer's RTSP server at 15 fps)
and measures, each next to its baseline in the same run:

* ``capture.frame_age_ms_p50``: the app changes a label's colour; milliseconds until a
  consumer awaiting ``StreamSource.next_frame`` holds a frame showing it;
  ``capture.bare_loop_frame_age_ms_p50``: the same change seen by a bare
  ``cv2.VideoCapture.read()`` loop on the same stream, running at the same time
  (target: at most 2 ms more);
* ``capture.open_s``: open + first frame with the short-probe options;
  ``capture.open_s_default_options``: the same with FFmpeg's default probing;
* extras: ``capture.frame_age_ms_p95``, ``capture.bare_loop_frame_age_ms_p95``,
  ``capture.paired_extra_ms_p50`` (median over changes of our age minus the bare one),
  ``capture.samples``,
  ``capture.process_cpu_ratio`` (process CPU while the source reads, over the bare loop
  reading alone for as long; target <= 1.1).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time

import numpy as np

from ..capture._reader import ReaderOptions, StreamSource, ffmpeg_options, open_ffmpeg
from ..lab import LabApp, RtspServer, XvfbDisplay

__all__ = ["run"]

_COLOURS = {"#ff0000": (0, 0, 255), "#0000ff": (255, 0, 0)}


def _matcher(box: tuple[int, int, int, int]):
    x0, y0, _w, h = box
    y = y0 + h // 2

    def colour_of(image: np.ndarray) -> tuple[int, int, int]:
        patch = image[y - 4:y + 4, x0 + 4:x0 + 14].reshape(-1, 3).mean(axis=0)
        return int(patch[0]), int(patch[1]), int(patch[2])

    def shows(image: np.ndarray, bgr: tuple[int, int, int]) -> bool:
        c = colour_of(image)
        return all(abs(a - b) < 60 for a, b in zip(c, bgr, strict=True))

    return shows


class _Watcher:
    """Records when a consumer first sees the awaited colour."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.target: tuple[int, int, int] | None = None
        self.seen_at: float | None = None
        self.done = threading.Event()

    def arm(self, bgr: tuple[int, int, int]) -> None:
        with self.lock:
            self.target, self.seen_at = bgr, None
            self.done.clear()

    def check(self, image: np.ndarray, shows) -> None:
        with self.lock:
            target = self.target
        if target is not None and shows(image, target):
            with self.lock:
                if self.target == target and self.seen_at is None:
                    self.seen_at = time.monotonic()
                    self.done.set()


def _frame_ages(url: str, app: LabApp, samples: int) -> tuple[list[float], list[float]]:
    shows = _matcher(app.element_box("big"))
    stop = threading.Event()
    src_watch, bare_watch = _Watcher(), _Watcher()
    opts = ReaderOptions.from_settings()

    def bare_loop() -> None:
        cap = open_ffmpeg(url, ffmpeg_options(url, opts), opts.open_timeout, opts.read_timeout)
        try:
            while not stop.is_set():
                ok, image = cap.read()
                if not ok:
                    time.sleep(0.01)
                    continue
                bare_watch.check(image, shows)
        finally:
            cap.release()

    async def consume(src: StreamSource) -> None:
        last = None
        while not stop.is_set():
            try:
                frame = await src.next_frame(last, timeout=0.5)
            except TimeoutError:
                continue
            last = frame.seq
            src_watch.check(frame.image, shows)

    src = StreamSource(url)
    src.start()
    bare = threading.Thread(target=bare_loop, name="bench-bare-loop", daemon=True)
    consumer = threading.Thread(target=lambda: asyncio.run(consume(src)),
                                name="bench-consumer", daemon=True)
    ages_src: list[float] = []
    ages_bare: list[float] = []
    try:
        bare.start()
        consumer.start()
        src.wait_frame(None, timeout=10)
        time.sleep(1.0)  # both readers steady
        rng = random.Random(4)
        colours = list(_COLOURS.items())
        for i in range(samples + 1):
            name, bgr = colours[i % 2]
            src_watch.arm(bgr)
            bare_watch.arm(bgr)
            app.set_text("big", bg=name)
            changed = time.monotonic()
            ok = src_watch.done.wait(5) and bare_watch.done.wait(5)
            seen_src, seen_bare = src_watch.seen_at, bare_watch.seen_at  # set when done
            if ok and i > 0 and seen_src is not None and seen_bare is not None:
                # (the first change only sets the stage)
                ages_src.append((seen_src - changed) * 1000)
                ages_bare.append((seen_bare - changed) * 1000)
            time.sleep(rng.uniform(0.1, 0.3))  # decorrelate from the frame phase
    finally:
        stop.set()
        consumer.join(5)
        bare.join(10)
        src.stop()
        app.reset()
    return ages_src, ages_bare


def _open_times(url: str, rounds: int) -> tuple[float, float]:
    opts = ReaderOptions.from_settings()
    short: list[float] = []
    default: list[float] = []
    for _ in range(rounds):
        for options, out in ((ffmpeg_options(url, opts), short),
                             (f"rtsp_transport;{opts.transport}", default)):
            t0 = time.monotonic()
            cap = open_ffmpeg(url, options, 10.0, 5.0)
            try:
                ok = cap.isOpened() and cap.read()[0]
                if ok:
                    out.append(time.monotonic() - t0)
            finally:
                cap.release()
    return statistics.median(short), statistics.median(default)


def _cpu_ratio(url: str, seconds: float) -> float:
    opts = ReaderOptions.from_settings()
    cap = open_ffmpeg(url, ffmpeg_options(url, opts), opts.open_timeout, opts.read_timeout)
    try:
        cap.read()
        c0, t_end = time.process_time(), time.monotonic() + seconds
        while time.monotonic() < t_end:
            cap.read()
        bare = time.process_time() - c0
    finally:
        cap.release()
    with StreamSource(url) as src:
        src.wait_frame(None, timeout=10)
        c0 = time.process_time()
        time.sleep(seconds)
        ours = time.process_time() - c0
    return ours / bare if bare > 0 else float("nan")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(quick: bool = False) -> dict[str, float | None]:
    samples, rounds, cpu_s = (10, 3, 2.0) if quick else (40, 8, 6.0)
    with XvfbDisplay(1280, 720) as display, LabApp(display) as app, \
            RtspServer(display, fps=15) as server:
        url = server.url
        ages_src, ages_bare = _frame_ages(url, app, samples)
        open_s, open_default = _open_times(url, rounds)
        cpu = _cpu_ratio(url, cpu_s)
    return {
        "capture.frame_age_ms_p50": _pct(ages_src, 0.5),
        "capture.bare_loop_frame_age_ms_p50": _pct(ages_bare, 0.5),
        "capture.open_s": round(open_s, 4),
        "capture.open_s_default_options": round(open_default, 4),
        "capture.frame_age_ms_p95": _pct(ages_src, 0.95),
        "capture.bare_loop_frame_age_ms_p95": _pct(ages_bare, 0.95),
        "capture.paired_extra_ms_p50": _pct([a - b for a, b in zip(ages_src, ages_bare,
                                                                      strict=True)], 0.5),
        "capture.samples": float(len(ages_src)),
        "capture.process_cpu_ratio": round(cpu, 3),
    }


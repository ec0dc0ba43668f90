"""Benchmark group ``recognition``: what shared, change-aware recognition saves, each
figure next to its baseline measured in the same run on the same simulated desktop
(``sim://scenario1``, 1280x720 at 20 fps, realism on: JPEG artefacts, noise and a
ticking clock).

CPU figures are this process's CPU seconds (every thread: the simulator, the loop, the
pool, onnxruntime) over a window, per minute; the simulator's own cost alone
(``recognition.cpu_s_per_min_idle``) is measured in the same run and taken off the
``…_net`` figures.

* ``recognition.cpu_s_per_min_10_flows``: ten flows, each a ``wait_until`` for a text
  that never appears, anywhere on the screen (default poll interval), next to
  ``recognition.cpu_s_per_min_1_flow`` (target: ratio <= 1.3) and to the baseline
  ``recognition.cpu_s_per_min_10_flows_uncached`` (the same ten with the shared cache and
  change detection off: each flow reads the screen itself, every poll).
* ``recognition.static_wait_core_pct``: one flow waiting on a static region (all of the
  screen above the taskbar) checking every frame, in % of one core net of the
  simulator (target <= 5); baseline ``recognition.static_wait_core_pct_every_frame``:
  change detection off, so OCR on every frame.
* ``recognition.ocr_full_720p_ms``: the default engine reading a whole 720p screen
  (median), after checking that it reads every line of the synthetic screen of the
  ``vision`` group and every label of the simulated desktop exactly
  (``recognition.ocr_full_720p_exact`` is 1.0; a wrong read fails the group). Baseline
  ``recognition.ocr_full_720p_ms_rapidocr_defaults``: RapidOCR with its own batch,
  memory and thread settings, same detector limits, alternated with it.
* ``recognition.change_test_ms_720p``: one change test (signature + comparison) of a
  720p region (target <= 1 ms).
* ``recognition.reaction_ms_p50_10_watchers``: ten flows wait for 测试; the dialog
  appears; the median time until a flow's wait has finished, next to
  ``recognition.reaction_ms_p50_1_watcher`` (target: ratio <= 1.2).
"""

from __future__ import annotations

import contextlib
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["run"]

_URL = "sim://scenario1?seed=7&fps=20"
_ABOVE_TASKBAR = (0, 0, 1280, 660)
_NEVER = "这段文字不会出现"
_SIM_LABELS = ("提示", "测试", "取消", "确定", "开始")
_CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")


@contextlib.contextmanager
def _vision(**values: Any) -> Iterator[None]:
    """Vision settings changed for a block (and the shared cache emptied around it)."""
    from .._settings import configure, get_settings
    from ..vision import get_recognition_cache

    vs = get_settings().vision
    saved = {k: getattr(vs, k) for k in values}
    configure(**{f"vision__{k}": v for k, v in values.items()})
    get_recognition_cache().clear()
    try:
        yield
    finally:
        configure(**{f"vision__{k}": v for k, v in saved.items()})
        get_recognition_cache().clear()


def _waiting_flows(n: int, text: str, roi: tuple[int, int, int, int] | None,
                   poll: float | None) -> list[Any]:
    from ..engine import Flow

    runs = []
    for i in range(n):
        flow = Flow(name=f"bench-watch-{i}")
        params: dict[str, Any] = {"kind": "text_appears", "text": text, "match_mode": "exact",
                                  "wait_timeout": 3600.0, "roi": roi}
        if poll is not None:
            params["poll_interval"] = poll
        flow.add("wait_until", "wait", **params)
        runs.append(flow.start(source=_URL, record=False))
    return runs


def _stop_all(runs: list[Any]) -> None:
    for r in runs:
        r.request_stop()
    for r in runs:
        r.stop(timeout=30)


def _cpu_per_min(window: float, settle: float, setup: Callable[[], list[Any]],
                 steady: Callable[[], bool] | None = None) -> float:
    """CPU seconds per minute of this process over ``window`` s, once ``steady()`` holds
    (the first reads of the screen are done; at most a minute) and ``settle`` s more."""
    runs = setup()
    try:
        deadline = time.monotonic() + 60.0
        while steady is not None and not steady() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(settle)
        c0, t0 = time.process_time(), time.monotonic()
        time.sleep(window)
        c1, t1 = time.process_time(), time.monotonic()
    finally:
        _stop_all(runs)
    return (c1 - c0) / (t1 - t0) * 60.0


def _skipping(frames: int = 3) -> Callable[[], bool]:
    """True once change detection skipped ``frames`` more frames than now (the screen's
    first read is behind: what follows is the steady state)."""
    from ..vision import get_recognition_cache

    cache = get_recognition_cache()
    start = cache.stats["unchanged"]
    return lambda: cache.stats["unchanged"] - start >= frames


def _cpu_figures(quick: bool) -> dict[str, float | None]:
    window, settle = (3.0, 0.5) if quick else (15.0, 2.0)
    out: dict[str, float | None] = {}
    out["recognition.cpu_s_per_min_idle"] = _cpu_per_min(window, settle, list)
    with _vision(cache=True, change_detection=True):
        out["recognition.cpu_s_per_min_1_flow"] = _cpu_per_min(
            window, settle, lambda: _waiting_flows(1, _NEVER, None, None), _skipping())
        out["recognition.cpu_s_per_min_10_flows"] = _cpu_per_min(
            window, settle, lambda: _waiting_flows(10, _NEVER, None, None), _skipping())
    with _vision(cache=False, change_detection=False):
        out["recognition.cpu_s_per_min_1_flow_uncached"] = _cpu_per_min(
            window, settle, lambda: _waiting_flows(1, _NEVER, None, None))
        out["recognition.cpu_s_per_min_10_flows_uncached"] = _cpu_per_min(
            window, settle, lambda: _waiting_flows(10, _NEVER, None, None))
    idle = out["recognition.cpu_s_per_min_idle"] or 0.0
    for k in ("1_flow", "10_flows", "1_flow_uncached", "10_flows_uncached"):
        value = out[f"recognition.cpu_s_per_min_{k}"]
        out[f"recognition.cpu_s_per_min_{k}_net"] = round(max(0.0, (value or 0.0) - idle), 3)
    with _vision(cache=True, change_detection=True):
        on = _cpu_per_min(window, settle,
                          lambda: _waiting_flows(1, _NEVER, _ABOVE_TASKBAR, 0.0), _skipping())
    with _vision(cache=True, change_detection=False):
        off = _cpu_per_min(window, settle,
                           lambda: _waiting_flows(1, _NEVER, _ABOVE_TASKBAR, 0.0))
    out["recognition.static_wait_core_pct"] = round(max(0.0, on - idle) / 60 * 100, 2)
    out["recognition.static_wait_core_pct_every_frame"] = round(max(0.0, off - idle) / 60 * 100, 2)
    for k, v in list(out.items()):
        if k.startswith("recognition.cpu_s_per_min_") and v is not None:
            out[k] = round(v, 3)
    return out


def _norm(text: str) -> str:
    return " ".join(text.split())


def _check_exact(what: str, got: list[str], want: list[str]) -> None:
    if sorted(_norm(t) for t in got) != sorted(_norm(t) for t in want):
        raise RuntimeError(f"recognition bench: full OCR of {what} read {sorted(got)!r}, "
                           f"expected {sorted(want)!r}")


def _sim_frame() -> Any:
    from .._runtime import run_sync
    from ..sim import SimSource

    source = SimSource(_URL).start()
    try:
        return run_sync(source.next_frame(None, 10), timeout=30)
    finally:
        source.stop()


def _ocr_figures(quick: bool) -> dict[str, float | None]:
    from rapidocr import RapidOCR

    from .._frame import Frame
    from .._settings import get_settings
    from ..sim import get_desktop
    from ..vision import get_ocr_engine, region_signature
    from ._vision import _LINES, _screen

    engine = get_ocr_engine()
    engine.load()
    screen = _screen(1.0)
    _check_exact("the synthetic screen", engine.read(screen).texts,
                 [t for t, _, _ in _LINES] + ["确定 OK"])
    get_desktop(_URL).set_window_visible("dialog", True)
    sim = _sim_frame()
    texts = engine.read(sim.image).texts
    clock = [t for t in texts if _CLOCK.match(t)]
    _check_exact("the simulated desktop", [t for t in texts if t not in clock], list(_SIM_LABELS))
    if len(clock) != 1:
        raise RuntimeError(f"recognition bench: the simulated desktop's clock read as {texts!r}")

    vs = get_settings().vision
    defaults = RapidOCR(params={"Global.log_level": "warning", "Global.text_score": 0.5,
                                "Global.use_cls": False, "Det.limit_type": vs.det_limit_type,
                                "Det.limit_side_len": vs.det_limit_side_len})
    defaults(screen, use_det=True, use_cls=False, use_rec=True)  # loads its models
    engine.read(screen)
    times: dict[str, list[tuple[float, float]]] = {"tuned": [], "base": []}
    for _ in range(3 if quick else 8):  # alternated: both see the same machine load
        for name, read in (("tuned", lambda: engine.read(screen)),
                           ("base", lambda: defaults(screen, use_det=True, use_cls=False,
                                                     use_rec=True))):
            t, c = time.perf_counter(), time.process_time()
            read()
            times[name].append((time.perf_counter() - t, time.process_time() - c))
    frame = Frame(screen)
    region_signature(frame)
    n = 50 if quick else 300
    t, c = time.perf_counter(), time.process_time()
    ref = region_signature(frame)
    for _ in range(n):
        region_signature(frame).changed(ref)
    change = ((time.perf_counter() - t) / n * 1000, (time.process_time() - c) / n * 1000)

    def med(name: str, i: int) -> float:
        return round(statistics.median(v[i] for v in times[name]) * 1000, 1)

    return {
        "recognition.ocr_full_720p_ms": med("tuned", 0),
        "recognition.ocr_full_720p_ms_rapidocr_defaults": med("base", 0),
        "recognition.ocr_full_720p_cpu_ms": med("tuned", 1),
        "recognition.ocr_full_720p_cpu_ms_rapidocr_defaults": med("base", 1),
        "recognition.ocr_full_720p_exact": 1.0,
        "recognition.change_test_ms_720p": round(change[0], 3),
        "recognition.change_test_cpu_ms_720p": round(change[1], 3),
    }


def _reaction_round(n: int, timeout: float = 30.0) -> list[float]:
    """Hide the dialog, let ``n`` flows wait for 测试, show it: seconds until each
    flow's wait finished."""
    from ..sim import get_desktop

    desktop = get_desktop(_URL)
    desktop.set_window_visible("dialog", False)
    time.sleep(0.3)
    runs = _waiting_flows(n, "测试", _ABOVE_TASKBAR, 0.0)
    done: list[float] = []
    lock = threading.Lock()
    try:
        time.sleep(1.0)  # every flow is waiting, the static screen recognised once
        if any(r.done for r in runs):
            raise RuntimeError("recognition bench: a watcher finished before the text showed")
        waiters = []
        t0 = time.monotonic()
        desktop.set_window_visible("dialog", True)

        def wait(r: Any) -> None:
            res = r.result(timeout=timeout)
            t = time.monotonic()
            if res.status == "ok":
                with lock:
                    done.append(t - t0)

        for r in runs:
            th = threading.Thread(target=wait, args=(r,), name="bench-watcher")
            th.start()
            waiters.append(th)
        for th in waiters:
            th.join(timeout + 5)
    finally:
        _stop_all(runs)
    if len(done) != n:
        raise RuntimeError(f"recognition bench: {n - len(done)} of {n} watchers missed the text")
    return done


def _reaction_figures(quick: bool) -> dict[str, float | None]:
    rounds = 2 if quick else 8
    with _vision(cache=True, change_detection=True):
        one = [t for _ in range(rounds) for t in _reaction_round(1)]
        ten = [t for _ in range(rounds) for t in _reaction_round(10)]
    return {"recognition.reaction_ms_p50_1_watcher": round(statistics.median(one) * 1000, 1),
            "recognition.reaction_ms_p50_10_watchers": round(statistics.median(ten) * 1000, 1)}


def run(quick: bool) -> dict[str, float | None]:
    """Measure the ``recognition`` figures (see the module docstring)."""
    from ..capture import open_source, release_source

    out: dict[str, float | None] = {}
    out.update(_ocr_figures(quick))
    src = open_source(_URL)  # held: every phase shares one running simulator
    try:
        from ..sim import get_desktop

        get_desktop(_URL).set_window_visible("dialog", False)
        out.update(_cpu_figures(quick))
        out.update(_reaction_figures(quick))
    finally:
        release_source(src)
    ten, one = out["recognition.cpu_s_per_min_10_flows"], out["recognition.cpu_s_per_min_1_flow"]
    if ten is not None and one:
        out["recognition.cpu_ratio_10_vs_1"] = round(ten / one, 3)
    return out

"""``kvmrpa probe URL``: is my stream OK? Resolution, fps, frame age, state changes."""

from __future__ import annotations

import argparse
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._frame import Frame


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="open a video source and report its health")
    p.add_argument("url", help="source URL (rtsp://…, file path, device://0, sim://…)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to watch (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def probe(url: str, seconds: float) -> dict[str, Any]:
    """Watch ``url`` for ``seconds`` through the source hub and summarise what came."""
    from .._errors import FrameTimeoutError
    from ..capture import open_source, release_source

    start = time.monotonic()
    src = open_source(url)
    transitions: list[list[Any]] = [[0.0, str(src.state)]]
    lock = threading.Lock()

    def on_state(state: Any) -> None:
        with lock:
            transitions.append([round(time.monotonic() - start, 3), str(state)])

    unsubscribe = src.on_state(on_state)
    ages: list[float] = []
    first_seq = first_t = last_t = None
    last = None
    try:
        deadline = start + seconds
        frame: Frame | None
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = src.wait_frame(last.seq if last else None, timeout=min(remaining, 0.05))
            except FrameTimeoutError:
                frame = src.latest()
            else:
                if first_seq is None:
                    first_seq, first_t = frame.seq, frame.captured
                last_t, last = frame.captured, frame
            if frame is not None:
                ages.append(frame.age() * 1000)
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        m = src.metrics()
        state = str(src.state)
    finally:
        unsubscribe()
        release_source(src)
    frames = 0 if last is None or first_seq is None else last.seq - first_seq + 1
    span = (last_t - first_t) if last_t is not None and first_t is not None else 0.0
    with lock:
        trans = list(transitions)
    return {
        "url": src.display_url,
        "state": state,
        "resolution": list(last.size) if last is not None else None,
        "fps": round((frames - 1) / span, 2) if frames > 1 and span > 0 else 0.0,
        "frames": frames,
        "frame_age_ms_p50": _pct(ages, 0.5),
        "frame_age_ms_p95": _pct(ages, 0.95),
        "reconnects": m.reconnects,
        "transitions": trans,
        "error": m.last_error or (None if frames else
                                  f"no frame arrived in {seconds:g} s (state {state})"),
    }


def run(args: argparse.Namespace) -> int:
    if not 0 < args.seconds <= 3600:
        from .._errors import ConfigError

        raise ConfigError(f"--seconds must be in (0, 3600], got {args.seconds}")
    from .._limits import dumps_strict
    from .._redact import redact_data
    from . import safe_text

    report = redact_data(probe(args.url, args.seconds))
    if args.json:
        print(dumps_strict(report, ensure_ascii=False))
    else:
        report["url"] = safe_text(report["url"])
        report["error"] = safe_text(report["error"]) if report["error"] else None
        res = report["resolution"]
        print(f"source      {report['url']}")
        print(f"state       {report['state']}")
        print(f"resolution  {f'{res[0]}x{res[1]}' if res else '-'}")
        print(f"fps         {report['fps']}")
        print(f"frames      {report['frames']}")
        print(f"frame age   p50 {report['frame_age_ms_p50']} ms, "
              f"p95 {report['frame_age_ms_p95']} ms")
        print(f"reconnects  {report['reconnects']}")
        for t, state in report["transitions"]:
            print(f"  {t:8.3f} s  {state}")
        if report["error"]:
            print(f"last error  {report['error']}")
    return 0 if report["frames"] > 0 else 2

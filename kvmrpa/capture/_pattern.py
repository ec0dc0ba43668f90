"""Test-pattern sources (``pattern://``), like GStreamer's ``videotestsrc``.

``pattern://KIND?width=W&height=H&fps=F`` publishes a cheap moving picture with the
frame number drawn on it, from a thread owned by the source (started and stopped with
it): for trying the live view, the dashboard and benchmarks without hardware.

Kinds:

- ``bars``: colour bars that scroll one step per frame, with a box moving across them;
- ``noise``: noisy colour gradients (a few pre-rendered fields, cycled): the expensive
  case for JPEG;
- ``counter``: a flat background whose grey level changes each frame.

Every frame carries ``frame N`` (N = 1, 2, … in publishing order) in its top-left
corner, so two consecutive frames always differ. Query parameters: ``width`` (16..7680,
default 1280), ``height`` (16..4320, default 720), ``fps`` (0.1..240, default 30).
An unknown kind, an unknown parameter or a value out of range raises
:class:`~kvmrpa.UrlError` naming the URL when the source is built.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import cv2
import numpy as np

from .._errors import UrlError
from .._urls import query_params, split_url
from ._source import FrameSource

__all__ = ["PATTERNS", "PatternSource"]

log = logging.getLogger("kvmrpa.capture")

#: The pattern kinds ``pattern://KIND`` accepts.
PATTERNS = ("bars", "noise", "counter")

# BGR: white, yellow, cyan, green, magenta, red, blue, black (SMPTE order).
_BAR_COLOURS = np.array([(235, 235, 235), (16, 235, 235), (235, 235, 16), (16, 235, 16),
                         (235, 16, 235), (16, 16, 235), (235, 16, 16), (16, 16, 16)], np.uint8)


def _number(text: str, lo: float, hi: float, what: str, url: str, cast: Callable[[str], float]) -> float:
    try:
        value = cast(text)
    except ValueError:
        raise UrlError(f"{url}: {what} must be a number, got {text!r}") from None
    if not lo <= value <= hi:
        raise UrlError(f"{url}: {what} must be {lo:g}..{hi:g}, got {text!r}")
    return value


class PatternSource(FrameSource):
    """A synthetic moving picture (see the module docstring for the URL)."""

    #: Parameters a ``pattern://`` URL may carry.
    PARAMS: ClassVar[tuple[str, ...]] = ("width", "height", "fps")

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = split_url(url)
        if parts.scheme.lower() != "pattern":
            raise UrlError(f"{self.display_url}: not a pattern:// URL")
        kind = (parts.hostname or "bars").lower()
        if kind not in PATTERNS:
            raise UrlError(f"{self.display_url}: unknown pattern {kind!r}; "
                           f"known: {', '.join(PATTERNS)}")
        q = query_params(url)
        unknown = sorted(set(q) - set(self.PARAMS))
        if unknown:
            raise UrlError(f"{self.display_url}: unknown parameter(s) {', '.join(unknown)}; "
                           f"known: {', '.join(self.PARAMS)}")
        self.kind: str = kind
        self.width = int(_number(q.get("width", "1280"), 16, 7680, "width", self.display_url, int))
        self.height = int(_number(q.get("height", "720"), 16, 4320, "height", self.display_url, int))
        self.fps = float(_number(q.get("fps", "30"), 0.1, 240, "fps", self.display_url, float))
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._fields: list[np.ndarray] = []
        self._scale = max(0.4, self.height / 720)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames."""
        return self.width, self.height

    @property
    def thread(self) -> threading.Thread | None:
        """The publishing thread while the source runs."""
        return self._thread

    # -- lifecycle -----------------------------------------------------------------
    def _start(self) -> None:
        if self.kind == "noise" and not self._fields:
            self._fields = self._noise_fields(4)
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name="kvmrpa-pattern", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._halt.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
            if thread.is_alive():
                log.warning("%s: pattern thread did not stop within 5 s", self.display_url)

    def _loop(self) -> None:
        period = 1.0 / self.fps
        next_t = time.monotonic()
        n = 0
        try:
            while not self._halt.is_set():
                n += 1
                self._publish(self.render(n))
                next_t += period
                now = time.monotonic()
                if next_t < now - period:  # fell behind (slow machine): do not burst
                    next_t = now
                self._halt.wait(max(0.0, next_t - now))
        except Exception:
            log.exception("%s: pattern thread failed", self.display_url)

    # -- pictures ------------------------------------------------------------------
    def render(self, n: int) -> np.ndarray:
        """Picture number ``n`` (a new BGR array)."""
        w, h = self.size
        if self.kind == "bars":
            bar = max(1, w // len(_BAR_COLOURS))
            cols = ((np.arange(w) + n * max(1, w // 160)) // bar) % len(_BAR_COLOURS)
            img = np.empty((h, w, 3), np.uint8)
            img[:] = _BAR_COLOURS[cols][None, :, :]
            side = max(8, h // 8)
            x = (n * max(1, w // 120)) % max(1, w - side)
            y0 = h - side - max(4, h // 20)
            img[y0:y0 + side, x:x + side] = (40, 40, 40)
        elif self.kind == "noise":
            img = self._fields[n % len(self._fields)].copy()
        else:
            img = np.full((h, w, 3), 40 + (n * 7) % 180, np.uint8)
        self._label(img, n)
        return img

    def _label(self, img: np.ndarray, n: int) -> None:
        s = self._scale
        text = f"frame {n}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, s, max(1, round(2 * s)))
        pad = max(2, round(6 * s))
        cv2.rectangle(img, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), -1)
        cv2.putText(img, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, s, (255, 255, 255),
                    max(1, round(2 * s)), cv2.LINE_AA)

    def _noise_fields(self, count: int) -> list[np.ndarray]:
        w, h = self.size
        rng = np.random.default_rng(1)
        base = np.zeros((h, w, 3), np.int16)
        base[:, :, 0] = np.linspace(0, 255, w, dtype=np.int16)[None, :]
        base[:, :, 1] = np.linspace(0, 255, h, dtype=np.int16)[:, None]
        return [np.clip(base + rng.integers(-12, 12, base.shape, dtype=np.int16), 0, 255)
                .astype(np.uint8) for _ in range(count)]

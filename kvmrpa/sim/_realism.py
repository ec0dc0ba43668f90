"""The realism pass: make the simulator's clean image look like a real capture.

Per screen change (cheap enough at a few changes a second): a slight down-and-up
rescale (the softening of a capture scaler; geometry is kept), a small colour cast and
JPEG artefacts. Per frame (a few milliseconds at 720p): sensor-like colour noise from
one precomputed noise field seen through shifting windows, so consecutive frames differ.
"""

from __future__ import annotations

import functools
import random

import cv2
import numpy as np

__all__ = ["Realism"]


@functools.lru_cache(maxsize=4)
def _noise_field(w: int, h: int, amplitude: int) -> np.ndarray:
    field = np.random.default_rng(12345).integers(0, amplitude + 1, (h, w, 3), dtype=np.uint8)
    field.flags.writeable = False
    return field


class Realism:
    """Capture-like degradation of BGR frames; deterministic for a given seed."""

    def __init__(self, size: tuple[int, int], seed: int = 0, *, jpeg_quality: int = 78,
                 rescale: float = 0.88, noise: int = 3, variants: int = 4) -> None:
        w, h = size
        self.size = size
        self.jpeg_quality = jpeg_quality
        self.rescale = rescale
        rng = np.random.default_rng(seed)
        # One noise field a little larger than the frame (shared by every source of that
        # size); each frame adds and subtracts two windows of it at seed-chosen offsets.
        self._pad = 8
        self._noise = _noise_field(w + self._pad, h + self._pad, noise)
        self._offsets = [(int(a), int(b), int(c), int(d))
                         for a, b, c, d in rng.integers(0, self._pad + 1, (max(2, variants), 4))]
        r = random.Random(seed)
        gains = [r.uniform(0.96, 1.03) for _ in range(3)]
        offsets = [r.uniform(-4, 4) for _ in range(3)]
        ramp = np.arange(256, dtype=np.float32)
        lut = np.stack([np.clip(ramp * g + o, 0, 255) for g, o in zip(gains, offsets, strict=True)], -1)
        self._lut = lut.astype(np.uint8).reshape(256, 1, 3)
        self._i = 0

    def on_change(self, bgr: np.ndarray) -> np.ndarray:
        """The per-change part: rescale softening, colour cast, JPEG round trip."""
        h, w = bgr.shape[:2]
        small = cv2.resize(bgr, (max(1, round(w * self.rescale)), max(1, round(h * self.rescale))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        out = cv2.LUT(out, self._lut)
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if ok:
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if decoded is not None:
                out = decoded
        return out

    def per_frame(self, bgr: np.ndarray) -> np.ndarray:
        """The per-frame part: a new array with a little noise."""
        h, w = bgr.shape[:2]
        if (w, h) != self.size:
            return bgr.copy()
        self._i = (self._i + 1) % len(self._offsets)
        ay, ax, sy, sx = self._offsets[self._i]
        add = self._noise[ay : ay + h, ax : ax + w]
        sub = self._noise[sy : sy + h, sx : sx + w]
        return cv2.subtract(cv2.add(bgr, add), sub)

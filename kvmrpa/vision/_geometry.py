"""Box arithmetic shared by every vision result: validation, clipping, IoU, NMS, ROI.

A box is ``(x, y, w, h)`` in integer pixels of the image it was computed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import cv2
import numpy as np

from .._errors import VisionError

__all__ = [
    "Box",
    "as_box",
    "clip_roi",
    "iou",
    "nms",
    "peaks",
    "round_box",
]

Box = tuple[int, int, int, int]


def as_box(value: object, what: str = "bbox") -> Box:
    """Check that ``value`` is four integers ``(x, y, w, h)`` with ``w, h >= 0``.

    Numpy integers are accepted and converted; floats are refused (round them first
    with :func:`round_box`), so that a sub-pixel value never passes unnoticed.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 4:
        raise ValueError(f"{what} must be (x, y, w, h), got {value!r}")
    out: list[int] = []
    for name, v in zip(("x", "y", "w", "h"), value, strict=True):
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise ValueError(f"{what}.{name} must be an integer, got {v!r}")
        out.append(int(v))
    if out[2] < 0 or out[3] < 0:
        raise ValueError(f"{what} width and height must be >= 0, got {tuple(out)!r}")
    return out[0], out[1], out[2], out[3]


def round_box(x: float, y: float, w: float, h: float) -> Box:
    """Round a float box to integer pixels by its corners (``x2 = round(x + w)``)."""
    for v in (x, y, w, h):
        if not isinstance(v, Real) or not np.isfinite(float(v)):
            raise ValueError(f"box value must be a finite number, got {v!r}")
    x1, y1 = round(float(x)), round(float(y))
    x2, y2 = round(float(x) + float(w)), round(float(y) + float(h))
    return int(x1), int(y1), int(max(0, x2 - x1)), int(max(0, y2 - y1))


def clip_roi(roi: object, width: int, height: int) -> Box:
    """Validate a region of interest and clip it to a ``width`` x ``height`` image.

    Raises :class:`VisionError` naming the ROI when it is malformed or lies entirely
    outside the image.
    """
    try:
        x, y, w, h = as_box(roi, "roi")
    except ValueError as exc:
        raise VisionError(str(exc)) from None
    x1, y1 = max(0, x), max(0, y)
    x2, y2 = min(width, x + w), min(height, y + h)
    if x2 <= x1 or y2 <= y1:
        raise VisionError(f"roi {(x, y, w, h)!r} lies outside the {width}x{height} image")
    return x1, y1, x2 - x1, y2 - y1


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes (0 when both are empty)."""
    ax2, ay2 = a[0] + a[2], a[1] + a[3]
    bx2, by2 = b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        classes: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    ``boxes`` is ``(N, 4)`` as ``(x, y, w, h)``. A box is dropped when its IoU with a
    kept box of the same class (all one class when ``classes`` is None) is greater
    than ``iou_threshold``. Ties keep the earlier index, so the result is stable.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"nms: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if classes is not None:
        classes = np.asarray(classes).reshape(-1)
        # Shift each class far apart so boxes of different classes never overlap.
        span = float(np.max(boxes[:, :2] + boxes[:, 2:]) - min(0.0, float(boxes[:, :2].min())) + 1)
        boxes = boxes.copy()
        boxes[:, :2] += classes[:, None].astype(np.float64) * span
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    areas = boxes[:, 2] * boxes[:, 3]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            overlap = np.where(union > 0, inter / union, 0.0)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def peaks(scores: np.ndarray, threshold: float, template_size: tuple[int, int],
          limit: int = 256) -> list[tuple[int, int, float]]:
    """Local maxima ``(x, y, score)`` of a score map at or above ``threshold``, best first,
    at most ``limit`` of them (NaN and inf, which masked matching can give, count as -1)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float32), nan=-1.0, posinf=-1.0, neginf=-1.0)
    if s.size == 0:
        return []
    best = float(s.max())
    if best < threshold:
        return []
    kw = max(3, (min(template_size[0], s.shape[1]) // 4) | 1)
    kh = max(3, (min(template_size[1], s.shape[0]) // 4) | 1)
    dil = cv2.dilate(s, cv2.getStructuringElement(cv2.MORPH_RECT, (kw, kh)))
    # A point equal to the maximum of its neighbourhood (dilation) is a local maximum.
    ys, xs = np.nonzero((s >= threshold) & (s >= dil))
    vals = s[ys, xs]
    if vals.size > limit:
        part = np.argpartition(-vals, limit - 1)[:limit]
        xs, ys, vals = xs[part], ys[part], vals[part]
    order = np.argsort(-vals, kind="stable")
    return [(int(xs[i]), int(ys[i]), float(vals[i])) for i in order]

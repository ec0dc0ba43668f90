"""Overlays: vision results turned into drawable shapes, for the browser and for images.

:func:`overlays_from` converts ``TextBoxes`` / ``Matches`` / ``Detections`` (or single
results, a point, a region) into plain JSON-able dicts ``{kind, bbox, label}`` that the
LiveView canvas draws. :func:`draw_overlays` renders the same dicts on a BGR image (used
for result images of the NodeEditor and the Debugger's inspector) through
``kvmrpa.vision.annotate`` when it is there, OpenCV otherwise. :class:`OverlayStamp`
ties overlays to the frame they were computed on: each shape carries that frame's
``seq`` and capture time, and the stamp says when they are stale (the screen changed
since, or ``settings.stream.overlay_ttl`` passed). No UI package needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np

__all__ = ["OverlayStamp", "draw_overlays", "overlays_from", "png_bytes", "result_image",
           "to_jsonable"]

log = logging.getLogger("kvmrpa.widgets.overlays")

_BGR = {"text": (118, 230, 0), "match": (40, 202, 255), "detection": (255, 196, 64),
        "point": (68, 23, 255), "region": (251, 64, 224)}


def _bbox(obj: Any) -> list[float] | None:
    bbox = getattr(obj, "bbox", None)
    if bbox is None and isinstance(obj, Mapping):
        bbox = obj.get("bbox")
    if bbox is None:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    return [x, y, w, h]


def _one(obj: Any) -> dict[str, Any] | None:
    if isinstance(obj, Mapping) and "kind" in obj:
        return dict(obj)
    bbox = _bbox(obj)
    if bbox is None:
        return None
    text = getattr(obj, "text", None)
    if text is not None:
        conf = getattr(obj, "confidence", None)
        label = f"{text} {conf:.2f}" if isinstance(conf, float) else str(text)
        return {"kind": "text", "bbox": bbox, "label": label}
    name = getattr(obj, "label", None)
    if name is not None:
        conf = getattr(obj, "confidence", None)
        return {"kind": "detection", "bbox": bbox,
                "label": f"{name} {conf:.2f}" if isinstance(conf, float) else str(name)}
    score = getattr(obj, "score", None)
    if score is not None:
        return {"kind": "match", "bbox": bbox, "label": f"{float(score):.2f}"}
    return {"kind": "region", "bbox": bbox, "label": None}


def overlays_from(*results: Any, point: tuple[float, float] | None = None) -> list[dict[str, Any]]:
    """Drawable overlay dicts for any mix of vision results (containers or single ones)."""
    out: list[dict[str, Any]] = []
    for res in results:
        if res is None:
            continue
        single = _one(res)
        if single is not None:
            out.append(single)
            continue
        if isinstance(res, Iterable) and not isinstance(res, (str, bytes)):
            for item in res:
                shape = _one(item)
                if shape is not None:
                    out.append(shape)
    if point is not None:
        out.append({"kind": "point", "point": [float(point[0]), float(point[1])], "label": None})
    return out


def draw_overlays(image: np.ndarray, overlays: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """A copy of BGR ``image`` with ``overlays`` drawn on it."""
    out = np.ascontiguousarray(image).copy()
    for o in overlays:
        kind = o.get("kind", "text")
        color = _BGR.get(kind, (255, 255, 255))
        if kind == "point":
            x, y = (round(v) for v in (o.get("point") or o.get("bbox") or (0, 0))[:2])
            cv2.circle(out, (x, y), 8, color, 2)
            cv2.line(out, (x - 12, y), (x + 12, y), color, 2)
            cv2.line(out, (x, y - 12), (x, y + 12), color, 2)
            continue
        bbox = o.get("bbox")
        if not bbox:
            continue
        x, y, w, h = (round(v) for v in bbox)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 2)
        label = o.get("label")
        if label and label.isascii():  # OpenCV's Hershey fonts have no CJK glyphs
            cv2.putText(out, label, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1,
                        cv2.LINE_AA)
    return out


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-able summary of a node output (frames become their size and seq)."""
    if depth > 6:
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"array": list(value.shape), "dtype": str(value.dtype)}
    image = getattr(value, "image", None)
    if isinstance(image, np.ndarray) and hasattr(value, "seq"):
        return {"type": "frame", "seq": int(value.seq),
                "size": [int(image.shape[1]), int(image.shape[0])],
                "offset": list(getattr(value, "offset", (0, 0))),
                "scale": float(getattr(value, "scale", 1.0))}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, depth + 1) for k, v in value.items()}
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        try:
            return to_jsonable(as_dict(), depth + 1)
        except Exception:  # a summary must never fail the UI
            log.debug("as_dict failed on %r", type(value), exc_info=True)
    if hasattr(value, "bbox"):
        shape = _one(value)
        return shape if shape is not None else repr(value)
    if isinstance(value, (list, tuple, set, frozenset)) or (
            isinstance(value, Iterable) and not isinstance(value, (str, bytes))):
        return [to_jsonable(v, depth + 1) for v in list(value)[:200]]
    return repr(value)


def result_image(output: Any, inputs: Any = None) -> np.ndarray | None:
    """The image that best shows a node's result: its output frame (or the nearest
    input frame) with the texts / matches / detections / point it produced drawn on it.

    Node outputs give boxes and points in source pixels; they are mapped back onto the
    (possibly cropped or scaled) frame through its ``offset`` and ``scale``.
    """
    output = output or {}
    frame = output.get("frame") if isinstance(output, dict) else None
    if frame is None and inputs is not None:
        try:
            frame = inputs.frame()
        except Exception:  # no upstream frame: nothing to show
            frame = None
    image = getattr(frame, "image", None)
    if image is None:
        return None
    results = [output[k] for k in ("texts", "matches", "detections") if output.get(k) is not None]
    point = output.get("point")
    offset = tuple(getattr(frame, "offset", (0, 0)))
    scale = float(getattr(frame, "scale", 1.0))
    if frame is not None and hasattr(frame, "from_source"):
        try:  # the one renderer (CJK captions), on any frame: cropped, scaled or whole
            from kvmrpa.vision import annotate

            items: list[Any] = [r.from_source(frame) if hasattr(r, "from_source") else r
                                for r in results]
            if point is not None:
                items.append(tuple(round(v) for v in frame.from_source(*point[:2])))
            return annotate(image, items) if items else np.array(image)
        except Exception:  # fall back to the plain drawing below
            log.debug("annotate failed", exc_info=True)
    shapes = overlays_from(*results, point=point)
    for shape in shapes:
        for key in ("bbox", "point"):
            v = shape.get(key)
            if v:
                xy = [(v[0] - offset[0]) * scale, (v[1] - offset[1]) * scale]
                shape[key] = xy + [c * scale for c in v[2:]]
    return draw_overlays(image, shapes)


def png_bytes(image: np.ndarray) -> bytes | None:
    """PNG-encode a BGR image (for image panes)."""
    ok, buf = cv2.imencode(".png", image)
    return buf.tobytes() if ok else None


#: Mean absolute difference (0-255) of two thumbnails above which the screen changed.
CHANGED = 3.0
#: Seconds faded overlays stay before they go.
FADE_S = 1.5


def _thumb(frame: Any) -> np.ndarray | None:
    image = getattr(frame, "image", None)
    if image is None:
        return None
    image = np.asarray(image)
    step = max(1, min(image.shape[0] // 54, image.shape[1] // 96))
    small = cv2.resize(image[::step, ::step], (48, 27), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16) if small.ndim == 3 \
        else small.astype(np.int16)


class OverlayStamp:
    """The frame a set of overlays was computed on, and whether they are still current."""

    def __init__(self, frame: Any, ttl: float | None = None) -> None:
        if ttl is None:
            from kvmrpa._settings import get_settings

            ttl = float(get_settings().stream.overlay_ttl)
        self.ttl = ttl
        self.seq = None if frame is None else int(getattr(frame, "seq", 0))
        self.captured = None if frame is None else getattr(frame, "captured", None)
        self.created = time.monotonic()
        self.faded = False
        self._faded_at: float | None = None
        self._thumb = _thumb(frame)

    def stamp(self, shapes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The shapes with the frame's ``seq`` (and ``alpha`` 1)."""
        return [{**s, "seq": self.seq, "alpha": 1.0} for s in shapes]

    def fade(self, shapes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The shapes drawn faded (the screen changed since they were computed)."""
        self._faded_at = time.monotonic()
        return [{**s, "alpha": 0.3} for s in shapes]

    def verdict(self, latest: Any) -> str:
        """``fresh``, ``faded`` (the screen differs from the stamped frame) or
        ``expired`` (past the TTL, or faded for a while)."""
        now = time.monotonic()
        if now - self.created > self.ttl or (
                self._faded_at is not None and now - self._faded_at > FADE_S):
            return "expired"
        if self.faded:
            return "faded"
        if latest is None or self._thumb is None or getattr(latest, "seq", None) == self.seq:
            return "fresh"
        thumb = _thumb(latest)
        if thumb is None or thumb.shape != self._thumb.shape:
            return "faded"
        return "faded" if float(np.abs(thumb - self._thumb).mean()) > CHANGED else "fresh"

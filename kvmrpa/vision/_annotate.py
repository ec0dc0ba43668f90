"""Overlays: one verb, :func:`annotate`, draws any vision result on a copy of an image.

Boxes (and OCR polygons) are drawn with OpenCV; labels with Pillow and a CJK font
(Noto Sans CJK, found by :func:`find_cjk_font`), because OpenCV's ``putText`` cannot
draw Chinese. Points (``(x, y)`` tuples) are drawn as cross-hair markers.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .._errors import ModelNotFoundError, VisionError
from .._settings import get_settings
from ._image import ImageLike, to_bgr
from ._results import Detection, Detections, Match, Matches, TextBox, TextBoxes

__all__ = ["annotate", "find_cjk_font"]

#: Where Debian/Ubuntu (fonts-noto-cjk), Fedora, Arch and macOS keep a CJK font.
_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)

#: BGR colours per result kind, and a palette for detection classes.
_KIND_COLOURS = {"text": (40, 170, 40), "match": (200, 120, 0), "detection": (0, 80, 230),
                 "point": (0, 0, 255)}
_PALETTE = ((0, 80, 230), (200, 120, 0), (40, 170, 40), (180, 0, 180), (0, 170, 200),
            (120, 60, 0), (90, 90, 220), (0, 140, 90))

_draw_lock = threading.Lock()


def find_cjk_font(path: str | os.PathLike[str] | None = None) -> str:
    """Path of a font that can draw Chinese: ``path``, else ``settings.vision.font_path``,
    else the first Noto Sans CJK (or similar) installed. None found:
    :class:`~kvmrpa.ModelNotFoundError` saying what to install."""
    wanted = path or get_settings().vision.font_path
    if wanted:
        p = Path(wanted).expanduser()
        if not p.is_file():
            raise ModelNotFoundError(f"font {str(p)!r} (vision.font_path) is not on disk")
        return str(p)
    for cand in _FONT_CANDIDATES:
        if os.path.isfile(cand):
            return cand
    raise ModelNotFoundError(
        "no CJK font found (looked in " + ", ".join(_FONT_CANDIDATES[:3]) + "); install "
        "fonts-noto-cjk or set vision.font_path (KVMRPA_VISION_FONT_PATH)")


@functools.lru_cache(maxsize=32)
def _font(path: str, size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size)
    except OSError as exc:
        raise VisionError(f"font {path!r} cannot be loaded: {exc}") from None


def _flatten(results: Any) -> list[Any]:
    """Single results, containers, points and lists of those, as one flat list."""
    if results is None:
        return []
    if isinstance(results, TextBox | Match | Detection):
        return [results]
    if isinstance(results, TextBoxes | Matches | Detections):
        return list(results)
    if isinstance(results, tuple) and len(results) == 2 and all(
            isinstance(v, int | float | np.integer | np.floating) for v in results):
        return [(float(results[0]), float(results[1]))]
    if isinstance(results, Iterable) and not isinstance(results, str | bytes | np.ndarray):
        out: list[Any] = []
        for r in results:
            out.extend(_flatten(r))
        return out
    raise VisionError(f"annotate: cannot draw a {type(results).__name__}; expected TextBoxes, "
                      "Matches, Detections, one of their items, or an (x, y) point")


def _caption(item: Any, show_score: bool) -> str:
    if isinstance(item, TextBox):
        return f"{item.text} {item.confidence:.2f}" if show_score else item.text
    if isinstance(item, Match):
        name = item.label or "match"
        return f"{name} {item.score:.2f}" if show_score else name
    if isinstance(item, Detection):
        return f"{item.label} {item.confidence:.2f}" if show_score else item.label
    return ""


def _colour(item: Any, colour: tuple[int, int, int] | None) -> tuple[int, int, int]:
    if colour is not None:
        return colour
    if isinstance(item, Detection):
        return _PALETTE[item.class_id % len(_PALETTE)]
    if isinstance(item, tuple):
        return _KIND_COLOURS["point"]
    return _KIND_COLOURS[item.kind]


def annotate(
    image: ImageLike,
    results: Any,
    *,
    colour: tuple[int, int, int] | None = None,
    thickness: int = 2,
    labels: bool = True,
    scores: bool = True,
    font_size: int | None = None,
    font_path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Draw ``results`` on a copy of ``image`` and return it (BGR ``uint8``).

    ``results``: :class:`TextBoxes`, :class:`Matches`, :class:`Detections`, any of their
    items, ``(x, y)`` points, or a list mixing them. Boxes are in the image's pixels.
    ``colour`` (BGR) overrides the per-kind / per-class colours; ``labels`` draws
    captions (text, template or class name; with the score when ``scores``) in a CJK
    font (size defaults to about 2.5 % of the image height, at least 14 px).
    """
    canvas = np.array(to_bgr(image), dtype=np.uint8, copy=True)
    items = _flatten(results)
    if not items:
        return canvas
    h = canvas.shape[0]
    thickness = max(1, int(thickness))
    captions: list[tuple[int, int, str, tuple[int, int, int]]] = []
    for item in items:
        col = _colour(item, colour)
        if isinstance(item, tuple):
            x, y = round(item[0]), round(item[1])
            r = max(6, h // 80)
            cv2.drawMarker(canvas, (x, y), col, cv2.MARKER_CROSS, 2 * r, thickness)
            cv2.circle(canvas, (x, y), r, col, thickness)
            continue
        x, y, w, bh = item.bbox
        if isinstance(item, TextBox):
            pts = np.array(item.polygon, dtype=np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [pts], True, col, thickness)
        else:
            cv2.rectangle(canvas, (x, y), (x + w - 1, y + bh - 1), col, thickness)
        if isinstance(item, Match) and item.click_offset is not None:
            cv2.drawMarker(canvas, item.target, col, cv2.MARKER_CROSS, 12, thickness)
        if labels:
            text = _caption(item, scores)
            if text:
                captions.append((x, y, text, col))
    if captions:
        _draw_captions(canvas, captions, font_size or max(14, round(h * 0.025)),
                       find_cjk_font(font_path))
    return canvas


def _draw_captions(canvas: np.ndarray, captions: list[tuple[int, int, str, tuple[int, int, int]]],
                   size: int, font_path: str) -> None:
    """Caption boxes above (or inside, at the top edge) each result, drawn with Pillow."""
    from PIL import Image, ImageDraw

    font = _font(font_path, int(size))
    ih, iw = canvas.shape[:2]
    with _draw_lock:  # FreeType faces are shared by the cached font objects
        pil = Image.fromarray(cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB))
        draw = ImageDraw.Draw(pil)
        for x, y, text, (b, g, r) in captions:
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tw, th = right - left + 6, bottom - top + 4
            bx = min(max(0, x), max(0, iw - tw))
            by = y - th if y - th >= 0 else min(y, max(0, ih - th))
            draw.rectangle((bx, by, bx + tw, by + th), fill=(r, g, b))
            draw.text((bx + 3 - left, by + 2 - top), text, font=font, fill=(255, 255, 255))
        canvas[:] = cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR)

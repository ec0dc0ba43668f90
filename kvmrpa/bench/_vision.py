"""Benchmark group ``vision``: OCR and template matching on synthetic screens.

Figures (milliseconds, median of repeats, all measured in this run on the same frame):

* ``vision.ocr_full_720p_ms``: RapidOCR detection + recognition on a whole 1280x720
  screen — the baseline of
* ``vision.ocr_roi_ms``: the same engine on a single-line region (target <= 80 ms), and
* ``vision.ocr_rec_only_ms``: recognition only on that region;
* ``vision.match_full_720p_ms``: grayscale TM_CCOEFF_NORMED over the whole 720p frame
  (one exhaustive search) — the baseline of
* ``vision.match_roi_ms``: the same template in a 320x200 region (target <= 3 ms), and
* ``vision.match_coarse_to_fine_720p_ms``: the whole frame, coarse-to-fine (target
  <= 5 ms).

Extra keys (full mode only): the same at 1920x1080 (``…_1080p_ms``) and the colour
full search (``vision.match_color_full_720p_ms``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .._frame import Frame

__all__ = ["run"]

#: Lines drawn on the synthetic screen at scale 1: text, (x, y), font size.
_LINES = (
    ("KVMRPA benchmark screen", (60, 40), 30),
    ("Hello kvmrpa 123", (60, 110), 24),
    ("请输入用户名和密码", (60, 160), 24),
    ("Username: admin    Password: ******", (60, 210), 22),
    ("系统设置 System Settings", (60, 270), 24),
    ("Network 网络  Display 显示  Sound 声音", (60, 320), 22),
    ("The quick brown fox jumps over the lazy dog", (60, 380), 22),
    ("状态：已连接  Status: connected", (60, 440), 22),
    ("版本 Version 1.2.3 (build 4567)", (60, 640), 20),
)
_BUTTON = (900, 560, 160, 48)  # the template: a labelled button
_ROI_LINE = 2  # the single line read in the ROI figures


def _screen(scale: float) -> np.ndarray:
    """A desktop-like BGR screen of 1280x720 times ``scale``, drawn at that size."""
    from PIL import Image, ImageDraw, ImageFont

    from ..vision import find_cjk_font

    w, h = round(1280 * scale), round(720 * scale)
    font = find_cjk_font()
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([200 + 30 * xx / w, 205 + 25 * yy / h, 215 + 20 * (xx + yy) / (w + h)], -1)
    img = Image.fromarray(bg.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for text, (x, y), px in _LINES:
        d.text((x * scale, y * scale), text, font=ImageFont.truetype(font, round(px * scale)),
               fill=(25, 25, 25))
    bx, by, bw, bh = (v * scale for v in _BUTTON)
    d.rounded_rectangle((bx, by, bx + bw - 1, by + bh - 1), radius=6 * scale,
                        fill=(250, 250, 250), outline=(60, 90, 160), width=max(1, round(2 * scale)))
    d.text((bx + 30 * scale, by + 10 * scale), "确定 OK",
           font=ImageFont.truetype(font, round(22 * scale)), fill=(20, 20, 20))
    for i in range(6):  # icons in a dock
        ix = (700 + 70 * i) * scale
        d.rectangle((ix, 650 * scale, ix + 48 * scale, 698 * scale), fill=(60 + 30 * i, 120, 200))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def _ms(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def _line_roi(scale: float, index: int) -> tuple[int, int, int, int]:
    from PIL import ImageFont

    from ..vision import find_cjk_font

    text, (x, y), px = _LINES[index]
    font = ImageFont.truetype(find_cjk_font(), round(px * scale))
    left, top, right, bottom = (round(v) for v in font.getbbox(text))
    m = round(8 * scale)
    return (round(x * scale) + left - m, round(y * scale) + top - m,
            right - left + 2 * m, bottom - top + 2 * m)


def _figures(scale: float, quick: bool, suffix: str, with_ocr_parts: bool) -> dict[str, float]:
    from ..vision import Template, match_template, ocr

    frame = Frame(_screen(scale))
    b = [round(v * scale) for v in _BUTTON]
    tpl = Template.from_frame(frame, (b[0], b[1], b[2], b[3]))
    roi = _line_roi(scale, _ROI_LINE)
    expected = _LINES[_ROI_LINE][0]
    got = ocr(frame, roi, rec_only=True).texts
    if got != [expected]:  # a benchmark of wrong answers measures nothing
        raise RuntimeError(f"vision bench: rec-only OCR read {got!r}, expected {expected!r}")
    want = tpl.region
    assert want is not None  # a template cut from a frame knows where it came from
    for c2f in (False, True):
        found = match_template(frame, tpl, coarse_to_fine=c2f).bboxes
        if found != [want]:
            raise RuntimeError(f"vision bench: match (coarse_to_fine={c2f}) found {found}, "
                               f"expected {[want]}")
    bx, by = want[0], want[1]
    match_roi = (max(0, bx - 80), max(0, by - 76), round(320 * scale), round(200 * scale))
    out: dict[str, float] = {}
    out[f"vision.ocr_full_{suffix}_ms"] = _ms(lambda: ocr(frame), 2 if quick else 5)
    if with_ocr_parts:
        out["vision.ocr_roi_ms"] = _ms(lambda: ocr(frame, roi), 5 if quick else 20)
        out["vision.ocr_rec_only_ms"] = _ms(lambda: ocr(frame, roi, rec_only=True),
                                            10 if quick else 40)
    out[f"vision.match_full_{suffix}_ms"] = _ms(
        lambda: match_template(frame, tpl, coarse_to_fine=False), 5 if quick else 20)
    if with_ocr_parts:
        out["vision.match_roi_ms"] = _ms(
            lambda: match_template(frame, tpl, match_roi, coarse_to_fine=False),
            20 if quick else 100)
    out[f"vision.match_coarse_to_fine_{suffix}_ms"] = _ms(
        lambda: match_template(frame, tpl, coarse_to_fine=True), 20 if quick else 100)
    if not quick and with_ocr_parts:
        out[f"vision.match_color_full_{suffix}_ms"] = _ms(
            lambda: match_template(frame, tpl, color=True, coarse_to_fine=False), 3)
    return out


def run(quick: bool) -> dict[str, float | None]:
    """Measure the ``vision`` figures (quick: fewer repeats, 720p only)."""
    from ..vision import get_ocr_engine

    get_ocr_engine().load()  # model loading is not part of any figure
    out: dict[str, float | None] = dict(_figures(1.0, quick, "720p", with_ocr_parts=True))
    if not quick:
        out.update(_figures(1.5, quick, "1080p", with_ocr_parts=False))
    return out

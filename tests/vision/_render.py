"""Synthetic screens for vision tests: text drawn with Pillow and Noto Sans CJK."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kvmrpa.vision import find_cjk_font

Line = tuple[str, tuple[int, int], int]  # text, (x, y) top-left, font size in px


def render_lines(lines: Sequence[Line], size: tuple[int, int] = (800, 300),
                 bg: tuple[int, int, int] = (245, 245, 245),
                 fg: tuple[int, int, int] = (20, 20, 20)) -> np.ndarray:
    """A BGR image of ``size`` ``(w, h)`` with each line drawn at its position."""
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    path = find_cjk_font()
    for text, (x, y), px in lines:
        draw.text((x, y), text, font=ImageFont.truetype(path, px), fill=fg)
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def text_box(text: str, xy: tuple[int, int], px: int) -> tuple[int, int, int, int]:
    """The ink box ``(x, y, w, h)`` :func:`render_lines` gives ``text`` at ``xy``."""
    font = ImageFont.truetype(find_cjk_font(), px)
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox(
        xy, text, font=font)
    return left, top, right - left, bottom - top


#: Elements of :func:`render_desktop` at scale 1: name -> (x, y, w, h).
DESKTOP = {
    "window": (80, 60, 760, 460),
    "ok": (560, 440, 120, 44),
    "cancel": (700, 440, 120, 44),
    "title": (100, 80, 300, 40),
    "icons": ((940, 120, 48, 48), (1040, 120, 48, 48), (940, 420, 48, 48)),
    "red": (940, 560, 110, 40),
    "green": (1100, 560, 110, 40),
}


def render_desktop(scale: float = 1.0) -> np.ndarray:
    """A 1280x720 desktop (times ``scale``) drawn natively at that size, as a capture at
    another resolution would show it: a window with a title and two buttons, three
    identical icons, and a red and a green button of equal gray level."""
    w, h = round(1280 * scale), round(720 * scale)
    s = scale
    font = find_cjk_font()

    def box(b: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
        return b[0] * s, b[1] * s, (b[0] + b[2]) * s - 1, (b[1] + b[3]) * s - 1

    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([120 + 40 * xx / w, 90 + 50 * yy / h, 60 + 30 * (xx + yy) / (w + h)], -1)
    img = Image.fromarray(bg.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    d.rectangle(box(DESKTOP["window"]), fill=(236, 236, 236), outline=(90, 90, 90), width=max(1, round(2 * s)))
    d.text((DESKTOP["title"][0] * s, DESKTOP["title"][1] * s), "设置向导 Setup",
           font=ImageFont.truetype(font, round(28 * s)), fill=(30, 30, 30))
    d.text((100 * s, 180 * s), "请选择安装位置，然后点击确定。",
           font=ImageFont.truetype(font, round(20 * s)), fill=(40, 40, 40))
    for name, label in (("ok", "确定"), ("cancel", "取消")):
        x1, y1, x2, y2 = box(DESKTOP[name])
        d.rounded_rectangle((x1, y1, x2, y2), radius=6 * s, fill=(250, 250, 250),
                            outline=(60, 90, 160), width=max(1, round(2 * s)))
        f = ImageFont.truetype(font, round(20 * s))
        tl, tt, tr, tb = d.textbbox((0, 0), label, font=f)
        d.text(((x1 + x2 - (tr - tl)) / 2 - tl, (y1 + y2 - (tb - tt)) / 2 - tt), label,
               font=f, fill=(20, 20, 20))
    for b in DESKTOP["icons"]:
        x1, y1, x2, y2 = box(b)
        d.rectangle((x1, y1, x2, y2), fill=(250, 210, 60), outline=(120, 80, 0), width=max(1, round(2 * s)))
        d.ellipse((x1 + 10 * s, y1 + 10 * s, x2 - 10 * s, y2 - 10 * s), fill=(30, 110, 200))
        d.line((x1 + 6 * s, y2 - 6 * s, x2 - 6 * s, y1 + 6 * s), fill=(255, 255, 255), width=max(1, round(3 * s)))
    # equal luminance (0.299 R + 0.587 G + 0.114 B = 60): same in gray, not in colour
    for name, fill in (("red", (200, 0, 1)), ("green", (0, 102, 1))):
        x1, y1, x2, y2 = box(DESKTOP[name])
        d.rectangle((x1, y1, x2, y2), fill=fill)
        d.text((x1 + 14 * s, y1 + 8 * s), "GO", font=ImageFont.truetype(font, round(20 * s)),
               fill=(255, 255, 255))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])

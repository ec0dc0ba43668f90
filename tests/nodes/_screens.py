"""Synthetic screens for the node tests, drawn with Pillow and Noto Sans CJK.

Each screen knows where it drew every text (``boxes``: name → ``(x, y, w, h)`` of the
ink), so tests can check that a click landed on the right word without trusting OCR's
own boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kvmrpa import Frame

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"

#: The dialog of the reference scenarios: a label, two buttons, a form with an input box.
DIALOG_ITEMS: tuple[tuple[str, str, tuple[int, int]], ...] = (
    ("label", "测试", (120, 90)),
    ("cancel", "取消", (420, 280)),
    ("ok", "确定", (640, 280)),
    ("prompt", "请输入", (80, 440)),
    ("hello", "Hello kvmrpa 123", (700, 440)),
)
INPUT_BOX = (80, 495, 420, 50)


@dataclass
class Screen:
    """A rendered screen: BGR pixels and where each text's ink is."""

    image: np.ndarray
    boxes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    def frame(self, seq: int = 1) -> Frame:
        return Frame.from_array(self.image, seq=seq, source_id="test://screen")

    def centre(self, name: str) -> tuple[float, float]:
        x, y, w, h = self.boxes[name]
        return x + w / 2, y + h / 2

    def contains(self, name: str, point: tuple[float, float], margin: float = 4) -> bool:
        x, y, w, h = self.boxes[name]
        px, py = point
        return x - margin <= px <= x + w + margin and y - margin <= py <= y + h + margin

    def save(self, path: Path) -> str:
        """Write a PNG and return its ``file://`` URL."""
        Image.fromarray(self.image[:, :, ::-1]).save(path)
        return path.resolve().as_uri()


def render(
    items: tuple[tuple[str, str, tuple[int, int]], ...] = DIALOG_ITEMS,
    size: tuple[int, int] = (1280, 720),
    font_size: int = 40,
    input_box: tuple[int, int, int, int] | None = INPUT_BOX,
    extra_rects: tuple[tuple[int, int, int, int], ...] = (),
) -> Screen:
    """Draw black text on white at the given positions (top-left of the ink box)."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, font_size)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for name, text, (x, y) in items:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        draw.text((x - left, y - top), text, fill="black", font=font)
        boxes[name] = (x, y, right - left, bottom - top)
    if input_box is not None:
        bx, by, bw, bh = input_box
        draw.rectangle((bx, by, bx + bw, by + bh), outline=(90, 90, 90), width=2)
        boxes["input"] = input_box
    for i, (rx, ry, rw, rh) in enumerate(extra_rects):
        draw.rectangle((rx, ry, rx + rw, ry + rh), fill=(30, 120, 200))
        boxes[f"rect{i}"] = (rx, ry, rw, rh)
    return Screen(np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), boxes)


def blank(size: tuple[int, int] = (1280, 720)) -> Screen:
    """A white screen with nothing on it."""
    return render(items=(), size=size, input_box=None)

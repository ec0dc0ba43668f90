"""Overlays: one verb draws every kind of result, with Chinese captions."""

from __future__ import annotations

import numpy as np
import pytest

from kvmrpa import Frame, ModelNotFoundError, VisionError, configure
from kvmrpa.vision import (
    Detection,
    Detections,
    Match,
    Matches,
    TextBox,
    TextBoxes,
    annotate,
    find_cjk_font,
)


def _changed(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> int:
    x, y, w, h = box
    return int(np.count_nonzero(np.any(a[y:y + h, x:x + w] != b[y:y + h, x:x + w], axis=2)))


def test_find_cjk_font() -> None:
    path = find_cjk_font()
    assert path.endswith((".ttc", ".otf", ".ttf"))
    assert find_cjk_font(path) == path


def test_missing_font_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="not on disk"):
        find_cjk_font(tmp_path / "nope.ttc")
    settings = configure()
    old = settings.vision.font_path
    try:
        configure(vision__font_path=str(tmp_path / "gone.ttc"))
        with pytest.raises(ModelNotFoundError, match=r"vision\.font_path"):
            annotate(np.zeros((50, 50, 3), np.uint8), TextBoxes([TextBox("测试", 0.9, (5, 20, 20, 10))]))
    finally:
        configure(vision__font_path=old)


def test_chinese_caption_is_drawn_in_the_label_area() -> None:
    base = np.full((200, 300, 3), 255, np.uint8)
    frame = Frame(base)
    boxes = TextBoxes([TextBox("测试确定", 0.97, (60, 100, 120, 40))])
    out = annotate(frame, boxes, scores=False, font_size=24)
    assert out.shape == base.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, frame.image) and (frame.image == 255).all()
    # the caption sits above the box: a filled background plus white glyph pixels
    label_area = (60, 60, 110, 37)
    assert _changed(out, base, label_area) > 1000
    caption = out[60:97, 60:170]
    white = np.all(caption == 255, axis=2)
    assert 50 < np.count_nonzero(white) < white.size // 2  # glyphs, not an empty box
    # the same box without labels leaves the label area alone
    plain = annotate(frame, boxes, labels=False)
    assert _changed(plain, base, label_area) == 0
    # the outline is drawn on the box edge; the inside stays untouched
    assert _changed(plain, base, (60, 100, 120, 2)) > 100
    assert _changed(plain, base, (70, 110, 100, 20)) == 0
    # different texts draw different pixels (real glyphs, not tofu boxes)
    other = annotate(frame, TextBoxes([TextBox("取消按钮", 0.97, (60, 100, 120, 40))]),
                     scores=False, font_size=24)
    assert _changed(out, other, label_area) > 50


def test_every_result_kind_and_points() -> None:
    base = np.zeros((240, 320, 3), np.uint8)
    results = [
        Matches([Match((20, 40, 50, 30), 0.93, 1.0, "ok", click_offset=(5, 5))]),
        Detections([Detection("人", 2, 0.8, (150, 60, 60, 80))]),
        Detection("icon", 1, 0.7, (240, 150, 40, 40)),
        (100, 200),
    ]
    out = annotate(base, results)
    assert _changed(out, base, (20, 40, 50, 2)) > 30  # match box top edge
    assert _changed(out, base, (150, 60, 60, 2)) > 30  # detection box
    assert _changed(out, base, (240, 150, 40, 2)) > 20
    assert _changed(out, base, (90, 190, 21, 21)) > 20  # point marker
    assert _changed(out, base, (150, 30, 60, 28)) > 100  # "人 0.80" caption above the box
    # per-class colours differ
    assert not np.array_equal(out[60, 170], out[150, 250])
    # a single colour for everything
    one = annotate(base, results, colour=(0, 255, 255), labels=False)
    assert tuple(one[40, 30]) == (0, 255, 255) and tuple(one[60, 170]) == (0, 255, 255)
    assert np.array_equal(annotate(base, []), base)
    with pytest.raises(VisionError, match="cannot draw"):
        annotate(base, "text")

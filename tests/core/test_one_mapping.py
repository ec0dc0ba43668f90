"""One crop/scale mapping (Frame.to_source / from_source) and one overlay renderer."""

from __future__ import annotations

import numpy as np

from kvmrpa import Frame
from kvmrpa.vision import TextBox, TextBoxes, annotate


def _cropped() -> Frame:
    full = Frame.from_array(np.full((400, 600, 3), 200, np.uint8), seq=3)
    return full.derive(np.full((200, 300, 3), 200, np.uint8), offset=(100, 50), scale=2.0)


def test_from_source_inverts_to_source() -> None:
    frame = _cropped()
    for p in ((100, 50), (160.5, 75.25), (0, 0)):
        assert frame.to_source(*frame.from_source(*p)) == p
    texts = TextBoxes([TextBox("确定", 0.9, (120, 60, 40, 20), ((120, 60), (160, 60),
                                                                (160, 80), (120, 80)))])
    inside = texts.from_source(frame)
    assert inside[0].bbox == (40, 20, 80, 40)
    assert inside.to_source(frame)[0].bbox == texts[0].bbox


def test_a_cropped_frame_gets_the_same_cjk_overlay_as_a_whole_one() -> None:
    from kvmrpa.widgets._overlays import result_image

    frame = _cropped()
    texts = TextBoxes([TextBox("确定", 0.9, (120, 60, 40, 20), ((120, 60), (160, 60),
                                                                (160, 80), (120, 80)))])
    drawn = result_image({"frame": frame, "texts": texts})
    expected = annotate(frame.image, texts.from_source(frame))
    assert drawn is not None and np.array_equal(drawn, expected)
    # the caption is there: more than the box outline changed
    no_caption = annotate(frame.image, texts.from_source(frame), labels=False)
    assert (drawn != no_caption).any()

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


def test_a_template_cut_from_a_cropped_scaled_frame_is_placed_through_the_frame() -> None:
    from kvmrpa.vision import Template

    frame = _cropped()  # offset (100, 50) in source pixels, scale 2
    tpl = Template.from_frame(frame, (10, 20, 30, 40))
    sx, sy = frame.to_source(10, 20)
    assert tpl.region == (round(sx * frame.scale), round(sy * frame.scale), 30, 40) == (210, 120, 30, 40)
    assert tpl.capture_size is None  # a crop does not know the whole image's size


def test_only_the_frame_maps_a_frames_offset() -> None:
    # A frame's crop offset is read by Frame.to_source / from_source alone: code that
    # reads ``.offset[i]`` to do the arithmetic itself is what this catches.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"\.offset\[[01]\]")
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}"
             for part in ("kvmrpa", "widgets") for path in sorted((root / part).rglob("*.py"))
             if path != root / "kvmrpa" / "_frame.py"
             for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert found == [], "map through Frame.to_source / from_source:\n" + "\n".join(found)

"""ocr, match_template, detect and vision_condition on synthetic frames (try_on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kvmrpa import Frame
from kvmrpa.nodes.image import Crop, Preprocess
from kvmrpa.nodes.vision import Detect, MatchTemplate, Ocr, VisionCondition, WaitUntil
from kvmrpa.vision import Detection, Detections, Match, Matches, Template, TextBox, TextBoxes

from ._screens import Screen, render


def test_ocr_reads_every_line_in_source_pixels(dialog: Screen) -> None:
    out = Ocr().try_on(dialog.frame())
    texts = out["texts"]
    assert sorted(texts.texts) == sorted(["测试", "取消", "确定", "请输入", "Hello kvmrpa 123"])
    for name, want in (("label", "测试"), ("ok", "确定"), ("cancel", "取消"), ("prompt", "请输入")):
        box = next(b for b in texts if b.text == want)
        assert dialog.contains(name, box.centre), (want, box.bbox, dialog.boxes[name])
    assert out["text"].splitlines()[0] == "测试"
    assert out["frame"].seq == 1


def test_ocr_after_crop_and_upscale_maps_back(dialog: Screen) -> None:
    cropped = Crop(x=380, y=250, width=420, height=110).try_on(dialog.frame())["frame"]
    big = Preprocess(resize="scale", scale_factor=1.5, sharpen=True).try_on(cropped)["frame"]
    texts = Ocr(min_confidence=0.6).try_on(big)["texts"]
    assert sorted(texts.texts) == ["取消", "确定"]
    ok = next(b for b in texts if b.text == "确定")
    assert dialog.contains("ok", ok.centre)
    # and a region of interest limits reading, in the incoming frame's pixels
    only = Ocr(roi=(0, 0, 315, 165)).try_on(big)["texts"]
    assert only.texts == ["取消"]


def test_ocr_rec_only_reads_a_known_line(dialog: Screen) -> None:
    x, y, w, h = dialog.boxes["hello"]
    texts = Ocr(roi=(x - 6, y - 6, w + 12, h + 12), rec_only=True).try_on(dialog.frame())["texts"]
    assert texts.texts == ["Hello kvmrpa 123"]
    assert dialog.contains("hello", texts[0].centre)


def test_ocr_check_names_a_missing_model(tmp_path: Path) -> None:
    problems = Ocr(det_model=str(tmp_path / "nope.onnx")).check()
    assert problems and problems[0][0] == "det_model" and "nope.onnx" in problems[0][1]


def _tiles() -> Screen:
    return render(items=(("a", "OK", (100, 100)),), extra_rects=(
        (300, 200, 60, 40), (700, 500, 60, 40), (1000, 100, 60, 40)), input_box=None)


def test_match_template_finds_every_copy_and_maps_back(tmp_path: Path) -> None:
    screen = _tiles()
    frame = screen.frame()
    patch = frame.image[195:245, 295:365]  # one blue tile with a white margin
    tpl_path = tmp_path / "tile.png"
    Template(patch, name="tile", capture_size=frame.size).save(tpl_path)
    node = MatchTemplate(template=str(tpl_path), max_results=5, threshold=0.9)
    assert node.check() == []
    matches = node.try_on(frame)["matches"]
    assert len(matches) == 3
    tops = sorted((m.bbox[0], m.bbox[1]) for m in matches)
    assert tops == [(295, 195), (695, 495), (995, 95)]
    # on a crop, the boxes still come back in source pixels
    cropped = Crop(x=600, y=400, width=300, height=200).try_on(frame)["frame"]
    found = node.try_on(cropped)["matches"]
    assert [(m.bbox[0], m.bbox[1]) for m in found] == [(695, 495)]
    # a region of interest excludes the others
    assert len(MatchTemplate(template=str(tpl_path), max_results=5, threshold=0.9,
                             roi=(0, 0, 640, 360)).try_on(frame)["matches"]) == 1


def test_match_template_check_names_a_missing_template(tmp_path: Path) -> None:
    problems = MatchTemplate(template=str(tmp_path / "gone.png")).check()
    assert [p[0] for p in problems] == ["template"]
    assert "gone.png" in problems[0][1]
    assert MatchTemplate().check() == [("template", "is required")]


def test_detect_decodes_the_model_into_source_pixels(yolo_model: Path, dialog: Screen) -> None:
    node = Detect(model=str(yolo_model), conf_threshold=0.5)
    assert node.check() == []
    dets = node.try_on(dialog.frame())["detections"]
    assert sorted((d.label, d.bbox) for d in dets) == [("button", (540, 320, 200, 80)),
                                                      ("icon", (160, 80, 80, 80))]
    only = Detect(model=str(yolo_model), labels=["icon"]).try_on(dialog.frame())["detections"]
    assert only.labels == ["icon"]
    missing = Detect(model=str(yolo_model.with_name("absent.onnx"))).check()
    assert [p[0] for p in missing] == ["model"] and "absent.onnx" in missing[0][1]


def _texts(*items: str) -> TextBoxes:
    return TextBoxes(TextBox(t, 0.9, (10, 10 + 40 * i, 100, 30)) for i, t in enumerate(items))


@pytest.mark.parametrize(("mode", "text", "expected"), [
    ("contains", "Build", True),
    ("contains", "build", False),
    ("exact", "Build 2024", False),
    ("exact", "Build 20241", True),
    ("regex", r"Build \d{5}$", True),
    ("regex", r"^Version", False),
    ("fuzzy", "Bui1d 20241", True),   # OCR read l as 1: one edit allowed
    ("fuzzy", "Release", False),
])
def test_text_condition_modes(mode: str, text: str, expected: bool) -> None:
    out = VisionCondition(kind="text_found", text=text, match_mode=mode).try_on(
        texts=_texts("Welcome", "Build 20241"))
    assert out["result"] is expected
    assert out["branch"] == ("true" if expected else "false")
    assert out["count"] == (1 if expected else 0)


def test_other_condition_kinds() -> None:
    assert VisionCondition(kind="any_text").try_on(texts=_texts("x"))["result"] is True
    assert VisionCondition(kind="any_text").try_on(texts=TextBoxes())["result"] is False
    dets = Detections([Detection("button", 0, 0.9, (1, 1, 5, 5)), Detection("icon", 1, 0.8, (9, 9, 3, 3))])
    assert VisionCondition(kind="detection_found", object_label="icon").try_on(detections=dets)["result"]
    assert not VisionCondition(kind="detection_found", object_label="cat").try_on(detections=dets)["result"]
    assert VisionCondition(kind="detection_found", min_count=2).try_on(detections=dets)["count"] == 2
    matches = Matches([Match((1, 1, 4, 4), 0.95, 1.0, "tile")])
    assert VisionCondition(kind="match_found", object_label="tile").try_on(matches=matches)["result"]
    assert not VisionCondition(kind="match_found", min_count=2).try_on(matches=matches)["result"]


def test_condition_check_and_visibility() -> None:
    assert VisionCondition(kind="text_found").check() == [("text", "is required for kind 'text_found'")]
    bad = VisionCondition(kind="text_found", text="(", match_mode="regex").check()
    assert bad and bad[0][0] == "text" and "regex" in bad[0][1]
    node = VisionCondition(kind="detection_found")
    assert node.param["text"].precedence < 0 and node.param["object_label"].precedence > 0


def test_condition_try_on_a_frame_reads_it(dialog: Screen) -> None:
    node = VisionCondition(kind="text_found", text="请输入", match_mode="exact")
    out = node.try_on(dialog.frame())
    assert out["result"] is True
    assert dialog.contains("prompt", tuple(out["found"][0]["centre"]))


def test_wait_until_try_on_says_whether_it_already_holds(dialog: Screen) -> None:
    frame = dialog.frame()
    roi = (380, 250, 420, 110)
    assert WaitUntil(kind="text_appears", text="确定", roi=roi).try_on(frame)["result"] is True
    assert WaitUntil(kind="text_disappears", text="确定", roi=roi).try_on(frame)["result"] is False
    blank = Frame.from_array(np.full((720, 1280, 3), 255, np.uint8))
    assert WaitUntil(kind="text_appears", text="确定", roi=roi).try_on(blank)["result"] is False
    with pytest.raises(ValueError, match="stream of frames"):
        WaitUntil(kind="screen_stable").try_on(frame)

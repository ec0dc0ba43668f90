"""Result values and containers: validation, filtering, best, mapping, JSON, from_*."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kvmrpa import Frame
from kvmrpa.vision import Detection, Detections, Match, Matches, TextBox, TextBoxes
from kvmrpa.vision._geometry import iou, nms


def test_values_are_validated_and_frozen() -> None:
    box = TextBox("OK", 0.9, (np.int64(10), 20, 30, 40))
    assert box.bbox == (10, 20, 30, 40) and type(box.bbox[0]) is int
    assert box.polygon == ((10, 20), (40, 20), (40, 60), (10, 60))
    assert box.centre == (25, 40)
    with pytest.raises(AttributeError):
        box.text = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"TextBox\.bbox\.x must be an integer"):
        TextBox("OK", 0.9, (1.5, 2, 3, 4))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="width and height"):
        Match((0, 0, -1, 4), 0.5)
    with pytest.raises(ValueError, match=r"Detection\.confidence"):
        Detection("cat", 0, 1.5, (0, 0, 1, 1))
    with pytest.raises(ValueError, match="class_id"):
        Detection("cat", -1, 0.5, (0, 0, 1, 1))
    with pytest.raises(ValueError, match=r"Match\.scale"):
        Match((0, 0, 1, 1), 0.5, scale=0)
    # OpenCV's 1.0000001 is a rounding error, not a bad value
    assert Match((0, 0, 1, 1), 1.0000001).score == 1.0
    with pytest.raises(TypeError, match=r"TextBoxes\[1\] must be a TextBox"):
        TextBoxes([box, Match((0, 0, 1, 1), 0.5)])  # type: ignore[list-item]


def _boxes() -> TextBoxes:
    return TextBoxes([
        TextBox("取消", 0.95, (100, 200, 60, 30)),
        TextBox("确定", 0.99, (300, 200, 60, 30)),
        TextBox("请输入用户名", 0.80, (100, 100, 200, 30)),
        TextBox("Cancel OK", 0.70, (100, 300, 150, 30)),
    ])


def test_text_filter_best_and_sequence_protocol() -> None:
    boxes = _boxes()
    assert len(boxes) == 4 and boxes[1].text == "确定"
    assert isinstance(boxes[1:], TextBoxes) and len(boxes[1:]) == 3
    assert boxes.best() is not None and boxes.best().text == "确定"
    assert TextBoxes().best() is None
    assert boxes.filter("确定", "exact").texts == ["确定"]
    assert boxes.filter("OK").texts == ["Cancel OK"]
    assert boxes.filter("请输人", "fuzzy").texts == ["请输入用户名"]
    assert boxes.filter(r"^.{2}$", "regex").texts == ["取消", "确定"]
    assert boxes.filter(min_confidence=0.9).texts == ["取消", "确定"]
    assert boxes.filter(region=(250, 150, 200, 100)).texts == ["确定"]
    assert boxes.reading_order().texts == ["请输入用户名", "取消", "确定", "Cancel OK"]
    assert boxes.text.splitlines()[0] == "请输入用户名"
    assert boxes == TextBoxes(list(boxes)) and boxes != boxes[1:]
    assert len(boxes + boxes[:1]) == 5


def test_to_source_maps_through_offset_and_scale() -> None:
    full = Frame(np.zeros((720, 1280, 3), np.uint8))
    # a crop at (200, 100), then shrunk to half size
    crop = full.derive(np.zeros((100, 200, 3), np.uint8), offset=(200, 100), scale=0.5)
    boxes = TextBoxes([TextBox("x", 0.9, (10, 20, 30, 40))])
    mapped = boxes.to_source(crop)
    assert mapped[0].bbox == (220, 140, 60, 80)
    assert mapped[0].polygon[2] == (280, 220)
    assert crop.to_source(*boxes[0].centre) == mapped[0].centre
    m = Matches([Match((10, 10, 20, 20), 0.9, 1.0, "btn", click_offset=(5, 5))]).to_source(crop)
    assert m[0].bbox == (220, 120, 40, 40) and m[0].target == (230, 130) and m[0].scale == 2.0
    d = Detections([Detection("cat", 0, 0.9, (0, 0, 10, 10))]).to_source(crop)
    assert d[0].bbox == (200, 100, 20, 20)
    assert boxes.to_source(full) is boxes


def test_as_dicts_is_json_and_round_trips() -> None:
    boxes = _boxes()
    text = json.dumps(boxes.as_dicts(), ensure_ascii=False)
    assert TextBoxes.from_dicts(json.loads(text)) == boxes
    ms = Matches([Match((1, 2, 3, 4), 0.5, 0.75, "icon", (1, 1))])
    assert Matches.from_dicts(json.loads(json.dumps(ms.as_dicts()))) == ms
    ds = Detections([Detection("person", 0, 0.5, (1, 2, 3, 4))])
    assert Detections.from_dicts(json.loads(json.dumps(ds.as_dicts()))) == ds
    assert ms.as_dicts()[0]["target"] == [2, 3]


def test_from_rapidocr_both_formats() -> None:
    from rapidocr.utils.output import RapidOCROutput

    out = RapidOCROutput(
        boxes=np.array([[[10.2, 20.0], [70.0, 20.0], [70.0, 50.7], [10.2, 50.7]]]),
        txts=("确定",), scores=(0.98,))
    boxes = TextBoxes.from_rapidocr(out, offset=(100, 200))
    assert boxes[0].text == "确定" and boxes[0].bbox == (110, 220, 60, 31)
    assert boxes[0].polygon[0] == (110, 220)
    legacy = [[[[0, 0], [10, 0], [10, 5], [0, 5]], "OK", 0.4],
              [[[0, 9], [10, 9], [10, 15], [0, 15]], " ", 0.9]]
    assert TextBoxes.from_rapidocr(legacy).texts == ["OK"]
    assert TextBoxes.from_rapidocr(legacy, min_confidence=0.5).texts == []
    assert len(TextBoxes.from_rapidocr(RapidOCROutput())) == 0


def test_from_tesseract_tsv_groups_words_into_lines() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "5\t1\t1\t1\t1\t1\t20\t10\t40\t20\t90\tHello",
        "5\t1\t1\t1\t1\t2\t70\t12\t50\t20\t80\tWorld",
        "5\t1\t1\t1\t2\t1\t20\t50\t20\t20\t96\t测",
        "5\t1\t1\t1\t2\t2\t42\t50\t20\t20\t94\t试",
        "5\t1\t1\t1\t3\t1\t20\t90\t20\t20\t-1\t ",
    ]
    boxes = TextBoxes.from_tesseract_tsv("\n".join([header, *rows]), scale=2.0)
    assert boxes.texts == ["Hello World", "测试"]
    assert boxes[0].bbox == (10, 5, 50, 11)
    assert boxes[0].confidence == pytest.approx(0.85)


def test_from_xyxy_and_names() -> None:
    d = Detections.from_xyxy([[10.4, 20.6, 30.4, 40.6]], [0.8], [1], ["cat", "dog"])
    assert d[0].label == "dog" and d[0].bbox == (10, 21, 20, 20)
    assert Detections.from_xyxy([[0, 0, 1, 1]], [0.8], [7], {0: "a"})[0].label == "7"
    ds = Detections([Detection("cat", 0, 0.9, (0, 0, 5, 5)), Detection("dog", 1, 0.6, (9, 9, 5, 5))])
    assert ds.filter("dog").labels == ["dog"]
    assert ds.filter(["cat", "dog"], min_confidence=0.7).labels == ["cat"]
    assert ds.filter(class_id=1).labels == ["dog"]
    assert ds.best().label == "cat"


def test_matches_from_score_map_with_nms() -> None:
    scores = np.zeros((50, 80), np.float32)
    scores[10, 10] = 0.95
    scores[11, 12] = 0.93  # same place, one pixel off: suppressed
    scores[30, 60] = 0.90
    scores[40, 5] = 0.5  # below threshold
    ms = Matches.from_score_map(scores, (20, 10), threshold=0.8, max_results=5, offset=(100, 0))
    assert [m.bbox for m in ms] == [(110, 10, 20, 10), (160, 30, 20, 10)]
    assert [round(m.score, 2) for m in ms] == [0.95, 0.9]
    assert len(Matches.from_score_map(scores, (20, 10), threshold=0.8)) == 1
    assert ms.filter(0.92).bboxes == [(110, 10, 20, 10)]


def test_iou_and_nms() -> None:
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10]])
    scores = np.array([0.9, 0.95, 0.5, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    # different classes never suppress each other
    assert nms(boxes, scores, 0.5, classes=np.array([0, 0, 0, 1])).tolist() == [1, 3, 2]

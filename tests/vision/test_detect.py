"""YOLO decoding checked exactly with tiny ONNX models whose output is a constant:
v5 and v8 layouts, letterbox arithmetic, thresholds, NMS, class names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kvmrpa import Frame, ModelNotFoundError, VisionError, run_sync
from kvmrpa.vision import Detections, YoloDetector, adetect, detect, get_detector
from kvmrpa.vision._detect import letterbox, load_names


def make_model(path: Path, output: np.ndarray, names: dict[int, str] | None = None,
               input_shape: tuple[int, ...] = (1, 3, 640, 640)) -> Path:
    """An ONNX model that ignores its input image and emits ``output``."""
    out = np.asarray(output, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["output0"], value=numpy_helper.from_array(out))],
        "constant-yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if names is not None:
        helper.set_model_props(model, {"names": repr(names)})  # as Ultralytics writes it
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


NAMES = {0: "button", 1: "icon", 2: "人"}


def v8_rows() -> np.ndarray:
    """Rows (cx, cy, w, h, score per class) in 640x640 input pixels."""
    return np.array([
        [320, 320, 100, 50, 0.90, 0.05, 0.00],  # button, the reference box
        [325, 320, 100, 50, 0.80, 0.10, 0.00],  # button, IoU 0.9 with it: suppressed
        [325, 320, 100, 50, 0.00, 0.00, 0.70],  # 人, same place, other class: kept
        [100, 200, 40, 40, 0.10, 0.20, 0.05],  # below the 0.25 threshold
        [600, 450, 80, 40, 0.02, 0.60, 0.01],  # icon in the bottom padding (clipped)
    ], dtype=np.float32)


def test_letterbox_arithmetic() -> None:
    img = np.full((720, 1280, 3), 200, np.uint8)
    out, lb = letterbox(img, (640, 640))
    assert out.shape == (640, 640, 3)
    assert lb.ratio == 0.5 and lb.pad == (0, 140)
    assert (out[:140] == 114).all() and (out[500:] == 114).all() and (out[140:500] == 200).all()
    out, lb = letterbox(np.zeros((600, 1000, 3), np.uint8), (640, 640))
    assert lb.ratio == 0.64 and lb.pad == (0, 128) and out.shape == (640, 640, 3)
    # a box in input pixels maps back through padding and scale
    assert lb.to_image(np.array([[160, 192, 224, 256]])).tolist() == [[250, 100, 350, 200]]


def test_v8_layout_decoding_is_exact(tmp_path: Path) -> None:
    model = make_model(tmp_path / "v8.onnx", v8_rows().T[None], NAMES)  # [1, 4+C, N]
    det = YoloDetector(model)
    assert det.names == NAMES and det.input_size == (640, 640)
    got = det.detect(np.zeros((720, 1280, 3), np.uint8))
    # ratio 0.5, pad (0, 140): x = cx*2 -w, y = (cy-140)*2 - h
    assert got.as_dicts() == [
        {"label": "button", "class_id": 0, "confidence": 0.9, "bbox": [540, 310, 200, 100],
         "centre": [640, 360]},
        {"label": "人", "class_id": 2, "confidence": 0.7, "bbox": [550, 310, 200, 100],
         "centre": [650, 360]},
        {"label": "icon", "class_id": 1, "confidence": 0.6, "bbox": [1120, 580, 160, 80],
         "centre": [1200, 620]},
    ]
    # thresholds per call; class-agnostic NMS drops the 人 box under the button
    assert det.detect(np.zeros((720, 1280, 3), np.uint8), conf=0.65).labels == ["button", "人"]
    agnostic = YoloDetector(model, class_agnostic=True)
    assert agnostic.detect(np.zeros((720, 1280, 3), np.uint8)).labels == ["button", "icon"]
    loose = det.detect(np.zeros((720, 1280, 3), np.uint8), iou=0.95)
    assert loose.labels == ["button", "button", "人", "icon"]


def test_v5_layout_multiplies_objectness(tmp_path: Path) -> None:
    rows = np.array([
        # cx, cy, w, h, objectness, class scores
        [192, 224, 64, 64, 0.5, 0.9, 0.1, 0.0],  # 0.45 as button
        [400, 300, 50, 50, 0.9, 0.0, 0.2, 0.0],  # 0.18: dropped at 0.25
        [400, 300, 50, 50, 0.2, 0.0, 0.0, 1.0],  # 0.20: dropped
    ], dtype=np.float32)
    model = make_model(tmp_path / "v5.onnx", rows[None], NAMES)  # [1, N, 5+C]
    got = YoloDetector(model).detect(np.zeros((600, 1000, 3), np.uint8))
    assert len(got) == 1
    d = got[0]
    assert (d.label, d.class_id, d.bbox) == ("button", 0, (250, 100, 100, 100))
    assert d.confidence == pytest.approx(0.45)


def test_layout_auto_uses_names_and_can_be_forced(tmp_path: Path) -> None:
    # 7 x 6: the shape alone would say v5; three class names say v8
    model = make_model(tmp_path / "amb.onnx", v8_rows()[[0, 1, 2, 3, 4, 0]].T[None], NAMES)
    assert YoloDetector(model).detect(np.zeros((640, 640, 3), np.uint8)).labels == ["button", "人", "icon"]
    forced = YoloDetector(model, layout="v5")  # read wrongly on purpose: rows become columns
    with pytest.raises(VisionError, match=r"scores outside 0\.\.1"):
        forced.detect(np.zeros((640, 640, 3), np.uint8))
    with pytest.raises(VisionError, match="too narrow"):
        forced.decode(np.zeros((1, 7, 4)), letterbox(np.zeros((8, 8, 3), np.uint8), (640, 640))[1])


def test_names_from_file_roi_and_frames(tmp_path: Path) -> None:
    model = make_model(tmp_path / "plain.onnx", v8_rows().T[None])  # no metadata
    assert YoloDetector(model).detect(np.zeros((720, 1280, 3), np.uint8)).labels[0] == "0"
    txt = tmp_path / "names.txt"
    txt.write_text("button\nicon\n人\n", encoding="utf-8")
    js = tmp_path / "names.json"
    js.write_text(json.dumps({"names": {"0": "b", "1": "i", "2": "p"}}), encoding="utf-8")
    yml = tmp_path / "data.yaml"
    yml.write_text("path: x\nnames:\n  0: button\n  1: icon\n  2: 人\n", encoding="utf-8")
    assert load_names(txt) == NAMES and load_names(yml) == NAMES
    assert load_names(js) == {0: "b", 1: "i", 2: "p"}
    det = get_detector(model, names=str(txt))
    assert det is get_detector(model, names=str(txt))
    # an ROI: the model sees the 640x360 crop (ratio 1, pad (0, 140)); boxes shift back
    got = detect(Frame(np.zeros((720, 1280, 3), np.uint8)), det, roi=(100, 50, 640, 360))
    assert got[0].label == "button" and got[0].bbox == (370, 205, 100, 50)
    got = run_sync(adetect(np.zeros((720, 1280, 3), np.uint8), det, labels=["icon"]), timeout=30)
    assert isinstance(got, Detections) and got.labels == ["icon"]


def test_missing_files_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="detection model"):
        YoloDetector(tmp_path / "nope.onnx")
    with pytest.raises(ModelNotFoundError, match="detection model"):
        get_detector(tmp_path / "nope.onnx")
    model = make_model(tmp_path / "m.onnx", v8_rows().T[None])
    with pytest.raises(ModelNotFoundError, match="names file"):
        YoloDetector(model, names=tmp_path / "names.txt")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(VisionError, match="cannot be loaded"):
        YoloDetector(bad)

"""crop and preprocess: pixels, and the offset/scale that map points back to the source."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kvmrpa import Frame
from kvmrpa.nodes import get_node_class
from kvmrpa.nodes.image import Crop, Preprocess


def _gradient(w: int = 320, h: int = 200) -> Frame:
    xs = np.tile(np.arange(w, dtype=np.uint16), (h, 1))
    ys = np.tile(np.arange(h, dtype=np.uint16)[:, None], (1, w))
    img = np.stack([(xs % 256), (ys % 256), ((xs + ys) % 256)], axis=2).astype(np.uint8)
    return Frame.from_array(img, seq=7)


def test_node_types_are_registered() -> None:
    for name in ("source", "crop", "preprocess", "ocr", "match_template", "detect",
                 "vision_condition", "wait_until", "mouse", "keyboard"):
        cls = get_node_class(name)
        assert cls is not None, name
        assert cls.type_name == name
        assert "Outputs" in (cls.__doc__ or ""), f"{name} docstring must state its outputs"
        for pname in cls.param_names():
            assert cls.param[pname].doc, f"{name}.{pname} has no doc"


def test_crop_keeps_pixels_and_offset() -> None:
    frame = _gradient()
    out = Crop(x=50, y=30, width=100, height=40).try_on(frame)
    cropped = out["frame"]
    assert cropped.size == (100, 40)
    assert np.array_equal(cropped.image, frame.image[30:70, 50:150])
    assert cropped.offset == (50, 30)
    assert cropped.seq == frame.seq
    # a point of the crop maps to the same pixel of the full frame
    assert cropped.to_source(10, 5) == (60, 35)
    px = cropped.image[5, 10]
    assert np.array_equal(px, frame.image[35, 60])
    assert out["region"] == [50, 30, 100, 40]


def test_crop_of_a_crop_accumulates_and_clips() -> None:
    frame = _gradient()
    first = Crop(x=100, y=50, width=200, height=120).try_on(frame)["frame"]
    second = Crop(x=150, y=100, width=500, height=500).try_on(first)
    assert second["frame"].size == (50, 20)  # clipped to the first crop
    assert second["frame"].offset == (250, 150)
    assert second["region"] == [250, 150, 50, 20]


def test_crop_outside_the_frame_is_an_error_naming_the_region() -> None:
    with pytest.raises(ValueError, match=r"crop \(400, 0, 10, 10\) lies outside the 320x200"):
        Crop(x=400, y=0, width=10, height=10).try_on(_gradient())


def test_preprocess_resize_keeps_mapping_through_crop() -> None:
    frame = _gradient()
    cropped = Crop(x=40, y=20, width=100, height=50).try_on(frame)["frame"]
    big = Preprocess(resize="fit", target_width=300, target_height=600).try_on(cropped)["frame"]
    assert big.size == (300, 150)
    assert big.scale == pytest.approx(3.0)
    # pixel (30, 15) of the 3x image is pixel (10, 5) of the crop = (50, 25) of the source
    assert big.to_source(30, 15) == pytest.approx((50, 25))
    small = Preprocess(resize="scale", scale_factor=0.5).try_on(frame)["frame"]
    assert small.size == (160, 100)
    assert small.to_source(80, 50) == pytest.approx((160, 100))


def test_preprocess_filters() -> None:
    frame = _gradient()
    gray = Preprocess(gray=True).try_on(frame)["frame"].image
    assert np.array_equal(gray[:, :, 0], gray[:, :, 1]) and np.array_equal(gray[:, :, 1], gray[:, :, 2])
    binary = Preprocess(threshold="binary", threshold_value=100).try_on(frame)["frame"].image
    assert set(np.unique(binary)) <= {0, 255} and len(np.unique(binary)) == 2
    inverted = Preprocess(invert=True).try_on(frame)["frame"].image
    assert np.array_equal(inverted.astype(int), 255 - frame.image.astype(int))
    noisy = frame.image.copy()
    noisy[::7, ::5] = 255
    cleaned = Preprocess(denoise="median", denoise_strength=3).try_on(noisy)["frame"].image
    assert np.abs(cleaned.astype(int) - frame.image.astype(int)).mean() < \
        np.abs(noisy.astype(int) - frame.image.astype(int)).mean()
    sharp = Preprocess(sharpen=True, sharpen_amount=2.0).try_on(frame)["frame"].image
    assert sharp.shape == frame.image.shape and not np.array_equal(sharp, frame.image)
    untouched = Preprocess().try_on(frame)["frame"]
    assert untouched is frame


def test_only_relevant_parameters_are_shown() -> None:
    node = Preprocess()
    assert node.param["scale_factor"].precedence < 0
    assert node.param["target_width"].precedence < 0
    node.resize = "fit"
    assert node.param["target_width"].precedence > 0
    assert node.param["scale_factor"].precedence < 0
    assert Preprocess().param["target_width"].precedence < 0  # per instance
    assert node.check() == [("target_width", "resize 'fit' needs target_width or target_height")]


def test_every_library_node_round_trips_through_json(tmp_path: Path) -> None:
    from kvmrpa.engine import Flow

    flow = Flow("all", source="file:///tmp/none.png", input="dryrun://roundtrip")
    flow.add("source", "src", url="rtsp://cam/${env:CAM_PATH}", wait_new_frame=False)
    flow.add("crop", "crop", x=1, y=2, width=30, height=40)
    flow.add("preprocess", "prep", resize="fit", target_width=640, gray=True, denoise="gaussian")
    flow.add("ocr", "ocr", roi=(1, 2, 3, 4), rec_only=True, min_confidence=0.7)
    flow.add("vision_condition", "cond", kind="text_found", text="OK", match_mode="fuzzy", max_distance=1)
    flow.add("wait_until", "wait", kind="screen_stable", stable_seconds=0.5, roi=(0, 0, 10, 10))
    flow.add("mouse", "mouse", target="text", text="OK", anchor="right", distance=12, offset_y=-3)
    flow.add("keyboard", "keys", action="hotkey", hotkey="ctrl+shift+Escape", repeat=2)
    for a, b in (("src", "crop"), ("crop", "prep"), ("prep", "ocr"), ("ocr", "cond"),
                 ("cond", "wait"), ("wait", "mouse"), ("mouse", "keys")):
        flow.connect(a, b, branch="true" if a == "cond" else None)
    path = flow.save(tmp_path / "all.flow.json")
    again = Flow.load(path)
    assert again.to_dict()["nodes"] == flow.to_dict()["nodes"]
    assert again["ocr"].roi == (1, 2, 3, 4)
    assert again["mouse"].anchor == "right" and again["src"].url.endswith("${env:CAM_PATH}")


def test_source_waits_for_a_newer_frame_only_from_the_same_source() -> None:
    import asyncio
    from typing import Any

    from kvmrpa import FrameTimeoutError
    from kvmrpa.nodes.source import Source

    class _Src:
        def __init__(self, seq: int) -> None:
            self.frame = Frame.from_array(np.zeros((4, 4, 3), np.uint8), seq=seq)

        def latest(self) -> Frame:
            return self.frame

        async def next_frame(self, after: int | None, timeout: float) -> Frame:
            if after is None or self.frame.seq > after:  # captured now, like a live source
                return Frame(self.frame.image, seq=self.frame.seq)
            raise FrameTimeoutError(f"no frame after {after}")

        def metrics(self) -> Any:
            return SimpleNamespace(last_error=None)

    class _Ctx:
        node_id, flow_name = "src", "f"

        def __init__(self) -> None:
            self.state: dict[str, Any] = {}
            self.current: Any = None

        async def source(self, url: str | None = None) -> Any:
            return self.current

    node, ctx = Source(frame_timeout=0.01), _Ctx()
    ctx.current = _Src(500)
    assert asyncio.run(node.run({}, ctx))["frame"].seq == 500  # type: ignore[arg-type]
    with pytest.raises(Exception, match="no new frame"):  # same source, nothing newer
        asyncio.run(node.run({}, ctx))  # type: ignore[arg-type]
    ctx.current = _Src(1)  # opened again: it counts from 1
    assert asyncio.run(node.run({}, ctx))["frame"].seq == 1  # type: ignore[arg-type]

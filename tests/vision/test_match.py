"""Template matching at the capture resolution and at 0.75x, ROI, several matches with
NMS, coarse-to-fine against the full search, colour, mask, multi-scale, template files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kvmrpa import Frame, ModelNotFoundError, VisionError, run_sync
from kvmrpa.vision import Matches, Template, amatch_template, match_template
from kvmrpa.vision._geometry import iou

from ._render import DESKTOP, render_desktop


@pytest.fixture(scope="module")
def desk() -> Frame:
    return Frame(render_desktop(1.0))


@pytest.fixture(scope="module")
def desk75() -> Frame:
    return Frame(render_desktop(0.75))


def _scaled(b: tuple[int, int, int, int], s: float) -> tuple[int, int, int, int]:
    return round(b[0] * s), round(b[1] * s), round(b[2] * s), round(b[3] * s)


def _near(a: tuple[int, int, int, int], b: tuple[int, int, int, int], tol: int = 2) -> bool:
    return all(abs(p - q) <= tol for p, q in zip(a, b, strict=True))


def test_match_at_capture_resolution(desk: Frame) -> None:
    tpl = Template.from_frame(desk, DESKTOP["ok"], name="ok", click_offset=(10, 22))
    assert tpl.capture_size == (1280, 720) and tpl.region == DESKTOP["ok"]
    got = match_template(desk, tpl)
    assert len(got) == 1
    m = got[0]
    assert m.bbox == DESKTOP["ok"] and m.score > 0.99 and m.scale == 1.0
    assert m.label == "ok" and m.target == (570, 462)
    # the other button looks alike but is not it
    assert match_template(desk, tpl, threshold=0.95, max_results=5).bboxes == [DESKTOP["ok"]]


def test_match_at_075_capture_resolution(desk: Frame, desk75: Frame) -> None:
    tpl = Template.from_frame(desk, DESKTOP["ok"], name="ok", click_offset=(10, 22))
    got = match_template(desk75, tpl, threshold=0.8)
    assert len(got) == 1
    want = _scaled(DESKTOP["ok"], 0.75)
    assert _near(got[0].bbox, want), (got[0].bbox, want)
    assert got[0].scale == pytest.approx(0.75)
    assert got[0].click_offset == (8, 16)  # 10 x 0.75 rounded, 22 x 0.75 rounded
    # without rescaling the 1.0x template finds nothing at 0.75x
    assert len(match_template(desk75, tpl, threshold=0.8, rescale=False)) == 0
    # the other way round: a template cut at 0.75x found at 1.0x
    small = Template.from_frame(desk75, want)
    back = match_template(desk, small, threshold=0.8)
    assert _near(back[0].bbox, DESKTOP["ok"], 3) and back[0].scale == pytest.approx(4 / 3)


def test_multi_scale_finds_an_unknown_scale(desk: Frame, desk75: Frame) -> None:
    tpl = Template.from_frame(desk, DESKTOP["cancel"])
    got = match_template(desk75, tpl, threshold=0.8, rescale=False, scales=(1.0, 0.9, 0.75, 0.6))
    assert len(got) == 1 and got[0].scale == pytest.approx(0.75)
    assert _near(got[0].bbox, _scaled(DESKTOP["cancel"], 0.75))


def test_roi_limits_the_search_and_keeps_image_pixels(desk: Frame) -> None:
    icon = Template.from_frame(desk, DESKTOP["icons"][0])
    x, y, w, h = DESKTOP["icons"][2]
    got = match_template(desk, icon, roi=(x - 40, y - 30, w + 80, h + 60))
    assert got.bboxes == [DESKTOP["icons"][2]]
    assert len(match_template(desk, icon, roi=(0, 0, 400, 300))) == 0
    # an ROI smaller than the template finds nothing; one outside the frame is an error
    assert len(match_template(desk, icon, roi=(x, y, 20, 20))) == 0
    with pytest.raises(VisionError, match="outside"):
        match_template(desk, icon, roi=(2000, 0, 50, 50))


@pytest.mark.parametrize("coarse", [False, True])
def test_multiple_matches_with_nms(desk: Frame, coarse: bool) -> None:
    icon = Template.from_frame(desk, DESKTOP["icons"][1])
    got = match_template(desk, icon, max_results=10, threshold=0.9, coarse_to_fine=coarse)
    assert sorted(got.bboxes) == sorted(DESKTOP["icons"])
    assert all(m.score > 0.99 for m in got)
    for i, a in enumerate(got):  # no two overlap
        assert all(iou(a.bbox, b.bbox) == 0 for b in got[i + 1:])
    # equal scores: the first ones in reading order
    two = match_template(desk, icon, max_results=2, threshold=0.9, coarse_to_fine=coarse)
    assert two.bboxes == [DESKTOP["icons"][0], DESKTOP["icons"][1]]


def test_coarse_to_fine_equals_full_search(desk: Frame, desk75: Frame) -> None:
    regions = [DESKTOP["ok"], DESKTOP["title"], DESKTOP["icons"][0], (100, 180, 300, 30)]
    for frame in (desk, desk75):
        for region in regions:
            tpl = Template.from_frame(desk, region)
            full = match_template(frame, tpl, threshold=0.6, max_results=3, coarse_to_fine=False)
            fast = match_template(frame, tpl, threshold=0.6, max_results=3, coarse_to_fine=True)
            assert full.bboxes == fast.bboxes, (frame.size, region)
            assert len(full) >= 1
            assert [m.score for m in fast] == pytest.approx([m.score for m in full], abs=1e-5)


def test_colour_tells_apart_what_gray_cannot(desk: Frame) -> None:
    red = Template.from_frame(desk, DESKTOP["red"])
    gray = match_template(desk, red, threshold=0.9, max_results=5)
    assert sorted(gray.bboxes) == sorted([DESKTOP["red"], DESKTOP["green"]])
    colour = match_template(desk, red, threshold=0.9, max_results=5, color=True)
    assert colour.bboxes == [DESKTOP["red"]]


def test_mask_ignores_the_masked_pixels(desk: Frame) -> None:
    # a template with a margin of background around the icon; the same icon elsewhere
    # on a noisy background: only the masked template still finds it perfectly
    x, y, w, h = DESKTOP["icons"][0]
    tpl = Template.from_frame(desk, (x - 12, y - 12, w + 24, h + 24))
    mask = np.zeros((h + 24, w + 24), np.uint8)
    mask[12:12 + h, 12:12 + w] = 255
    scene = desk.image.copy()
    tx, ty = 300, 600
    noise = np.random.default_rng(7).integers(0, 256, (h + 24, w + 24, 3), dtype=np.uint8)
    scene[ty - 12:ty + h + 12, tx - 12:tx + w + 12] = noise
    scene[ty:ty + h, tx:tx + w] = desk.image[y:y + h, x:x + w]
    roi = (tx - 40, ty - 40, w + 80, h + 80)
    plain = match_template(scene, tpl, threshold=-1, roi=roi)
    masked = match_template(scene, tpl, threshold=-1, mask=mask, roi=roi)
    assert masked[0].bbox == (tx - 12, ty - 12, w + 24, h + 24)
    assert masked[0].score > 0.99
    assert plain[0].score < 0.9
    in_colour = match_template(scene, tpl, mask=mask, roi=roi, color=True)
    assert in_colour.bboxes == [masked[0].bbox] and in_colour[0].score > 0.99
    # a template's own mask is used by default
    assert match_template(scene, tpl.with_(mask=mask), roi=roi)[0].score > 0.99


def test_cropped_frame_results_map_to_source(desk: Frame, desk75: Frame) -> None:
    tpl = Template.from_frame(desk, DESKTOP["cancel"])
    crop = desk.derive(np.ascontiguousarray(desk.image[400:520, 500:900]), offset=(500, 400))
    got = match_template(crop, tpl)
    x, y, w, h = DESKTOP["cancel"]
    assert got.bboxes == [(x - 500, y - 400, w, h)]
    assert got.to_source(crop).bboxes == [DESKTOP["cancel"]]
    # a crop of a 0.75x capture: its full size is unknown unless the caller says it
    want = _scaled(DESKTOP["cancel"], 0.75)
    crop75 = desk75.derive(np.ascontiguousarray(desk75.image[300:400, 400:700]), offset=(400, 300))
    assert len(match_template(crop75, tpl)) == 0
    got = match_template(crop75, tpl, source_size=(960, 540))
    assert len(got) == 1 and got[0].scale == pytest.approx(0.75)
    assert _near(got.to_source(crop75)[0].bbox, want)


def test_template_file_round_trip(desk: Frame, desk75: Frame, tmp_path) -> None:
    mask = np.full((44, 120), 255, np.uint8)
    mask[:, :4] = 0
    tpl = Template.from_frame(desk, DESKTOP["ok"], name="确定按钮", click_offset=(60, 22),
                              threshold=0.85, mask=mask)
    path = tpl.save(tmp_path / "ok.png")
    back = Template.load(path)
    assert back.name == "确定按钮" and back.capture_size == (1280, 720)
    assert back.region == DESKTOP["ok"] and back.click_offset == (60, 22)
    assert back.threshold == 0.85 and back.path == str(path)
    assert np.array_equal(back.image, tpl.image) and np.array_equal(back.mask, tpl.mask)
    # loaded by path, rescaled for the 0.75x capture, threshold from the file
    got = match_template(desk75, str(path))
    assert len(got) == 1 and _near(got[0].bbox, _scaled(DESKTOP["ok"], 0.75))
    # a plain PNG with a sidecar JSON (made by another tool)
    plain = tmp_path / "cancel.png"
    x, y, w, h = DESKTOP["cancel"]
    cv2.imwrite(str(plain), np.ascontiguousarray(desk.image[y:y + h, x:x + w]))
    plain.with_suffix(".json").write_text(json.dumps({"capture_size": [1280, 720]}))
    side = Template.load(plain)
    assert side.capture_size == (1280, 720) and side.name == "cancel"
    assert _near(match_template(desk75, side)[0].bbox, _scaled(DESKTOP["cancel"], 0.75))
    with pytest.raises(ModelNotFoundError, match="not on disk"):
        Template.load(tmp_path / "missing.png")
    with pytest.raises(VisionError, match=r"must end in \.png"):
        tpl.save(tmp_path / "x.jpg")


def test_async_matching_and_validation(desk: Frame) -> None:
    tpl = Template.from_frame(desk, DESKTOP["ok"])
    got = run_sync(amatch_template(desk, tpl, max_results=1), timeout=30)
    assert isinstance(got, Matches) and got.bboxes == [DESKTOP["ok"]]
    with pytest.raises(VisionError, match="max_results"):
        match_template(desk, tpl, max_results=0)
    with pytest.raises(VisionError, match="template must be"):
        match_template(desk, 42)  # type: ignore[arg-type]

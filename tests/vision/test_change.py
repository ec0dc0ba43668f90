"""Change detection: blind to the simulator's realism noise and JPEG artefacts, sees a
clock digit tick, says where; and a waiting flow that skips recognition on a static
screen still sees the text the moment it appears (no stale result)."""

from __future__ import annotations

import time

import numpy as np

from kvmrpa import Frame
from kvmrpa.engine import Flow
from kvmrpa.sim import Realism, get_desktop
from kvmrpa.vision import changed_boxes, get_recognition_cache, region_signature

from ._render import render_lines, text_box

CLOCK = ("14:12:23", (1180, 690), 14)


def _captured(realism: Realism, clean: np.ndarray, frames: int) -> list[np.ndarray]:
    """What a capture of ``clean`` delivers: JPEG'd once, per-frame noise on top."""
    once = realism.on_change(clean)
    return [realism.per_frame(once) for _ in range(frames)]


def test_realism_noise_is_no_change_but_a_clock_tick_is() -> None:
    size = (1280, 720)
    lines = [("设置 Settings", (60, 60), 24), CLOCK]
    before = render_lines(lines, size)
    after = render_lines([lines[0], ("14:12:24", CLOCK[1], CLOCK[2])], size)
    realism = Realism(size, seed=5)
    frames = _captured(realism, before, 8)
    ref = region_signature(frames[0])
    for img in frames[1:]:
        sig = region_signature(img)
        assert not sig.changed(ref), int(sig.diff(ref).max())
        assert changed_boxes(ref, sig) == []
    ticked = region_signature(_captured(realism, after, 1)[0])
    assert ticked.changed(ref)
    boxes = changed_boxes(ref, ticked, margin=4)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    ix, iy, iw, ih = text_box(*CLOCK)
    # around the last digit of the clock, nowhere else
    assert ix <= x + w and x <= ix + iw and iy - 12 <= y and y + h <= iy + ih + 12
    assert w * h < 40 * 40


def test_a_region_only_sees_its_own_pixels() -> None:
    size = (640, 360)
    a = render_lines([("左 left", (20, 20), 24), ("右 right", (400, 20), 24)], size)
    b = render_lines([("左 left", (20, 20), 24), ("变 changed", (400, 20), 24)], size)
    left = (0, 0, 300, 100)
    assert not region_signature(b, left).changed(region_signature(a, left))
    assert region_signature(b).changed(region_signature(a))
    # another region, size or cell is not comparable: counted as a change
    assert region_signature(a, left).changed(region_signature(a, (0, 0, 296, 100)))
    assert region_signature(a, left, cell=4).changed(region_signature(a, left))
    assert changed_boxes(region_signature(a, (0, 0, 296, 100)),
                         region_signature(a, left)) == [(0, 0, 300, 100)]


def test_odd_regions_and_tiny_images_have_signatures() -> None:
    img = render_lines([("x", (2, 2), 12)], (37, 23))
    sig = region_signature(img)
    assert sig.grid.shape == (3, 5, 3) and sig.region == (0, 0, 37, 23)
    frame = Frame(render_lines([("ok", (10, 10), 20)], (101, 67)))
    part = region_signature(frame, (95, 60, 30, 30))  # clipped to the image
    assert part.region == (95, 60, 6, 7) and not part.changed(region_signature(frame, (95, 60, 6, 7)))


def test_waiting_on_a_static_sim_screen_skips_ocr_then_sees_the_text_at_once() -> None:
    url = "sim://scenario1?seed=211&fps=20"  # realism on: JPEG, noise, a ticking clock
    desktop = get_desktop(url)
    desktop.set_window_visible("dialog", False)
    flow = Flow(name="wait-for-dialog")
    flow.add("wait_until", "wait", kind="text_appears", text="测试", match_mode="exact",
             roi=(0, 0, 1280, 660), wait_timeout=60, poll_interval=0.0)  # above the taskbar
    cache = get_recognition_cache()
    before = dict(cache.stats)
    run = flow.start(source=url, input=url, record=False)
    try:
        deadline = time.monotonic() + 60
        while cache.stats["unchanged"] - before["unchanged"] < 5:  # frames skipped
            assert time.monotonic() < deadline and not run.done, "no frame was skipped"
            time.sleep(0.02)
        reads = cache.stats["full"] + cache.stats["partial"] - before["full"] - before["partial"]
        assert reads <= 2  # the first frame (and at most one more): not one per frame
        desktop.set_window_visible("dialog", True)
        result = run.result(timeout=60)
    finally:
        run.stop(timeout=10)
    assert result.status == "ok", result.error
    output = run.nodes["wait"].output
    assert output is not None and "测试" in output["texts"].texts

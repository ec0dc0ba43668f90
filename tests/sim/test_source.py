"""The sim:// source: frames at its rate from a render thread it owns, only pixels out."""

from __future__ import annotations

import re
import threading

import numpy as np

from kvmrpa import Frame, run_sync
from kvmrpa.capture import FrameSource, SourceState
from kvmrpa.sim import Realism, SimDesktop, SimDriver, SimSource, get_desktop
from kvmrpa.sim._widgets import Widget, Window

from .conftest import centre


def _frames(src: SimSource, n: int) -> list[Frame]:
    out: list[Frame] = []
    seq = None
    for _ in range(n):
        f = src.wait_frame(seq, timeout=10)
        out.append(f)
        seq = f.seq
    return out


def test_clean_frames_are_the_screen(source_factory) -> None:
    url = "sim://scenario1?seed=21&realism=0&fps=30"
    src = source_factory(url)
    frames = _frames(src, 3)
    assert [f.seq for f in frames] == sorted({f.seq for f in frames})
    assert frames[-1].size == (1280, 720) and frames[-1].source_id == url
    assert np.array_equal(frames[-1].image, get_desktop(url).snapshot())
    assert src.state == SourceState.LIVE and isinstance(src, FrameSource)
    assert get_desktop(url).clock_text() == ""


def test_realistic_frames_are_close_but_never_clean(source_factory) -> None:
    url = "sim://scenario2?seed=21&width=640&height=360&fps=30"
    src = source_factory(url)
    a, b = _frames(src, 2)
    clean = get_desktop(url).snapshot().astype(int)
    diff = np.abs(a.image.astype(int) - clean)
    assert 0.5 < diff.mean() < 12  # degraded like a capture, still the same picture
    assert not np.array_equal(a.image, b.image)  # per-frame noise
    assert re.fullmatch(r"\d\d:\d\d:\d\d", get_desktop(url).clock_text())


def test_realism_is_deterministic_per_seed() -> None:
    img = np.full((90, 160, 3), 128, np.uint8)
    img[30:60, 40:120] = 20
    one, two = Realism((160, 90), 7), Realism((160, 90), 7)
    assert np.array_equal(one.on_change(img), two.on_change(img))
    assert not np.array_equal(one.on_change(img), Realism((160, 90), 8).on_change(img))


def test_a_click_shows_up_in_later_frames(source_factory) -> None:
    url = "sim://scenario1?seed=22&realism=0&fps=30"
    src = source_factory(url)
    drv = SimDriver(url)
    before = src.wait_frame(timeout=10)
    x, y, w, h = get_desktop(url).find("dialog")
    run_sync(drv.click(*centre(get_desktop(url).find("ok"))))
    after = src.wait_frame(before.seq, timeout=10)
    region = (slice(y, y + h), slice(x, x + w))
    assert np.abs(after.image[region].astype(int) - before.image[region].astype(int)).mean() > 20
    run_sync(drv.aclose())


def test_stop_ends_the_render_thread(source_factory) -> None:
    src = source_factory("sim://scenario3?seed=23&realism=0&fps=25")
    src.wait_frame(timeout=10)
    names = {t.name for t in threading.enumerate()}
    assert any(n.startswith("kvmrpa-sim-sim://scenario3?") for n in names)
    src.stop()
    assert src.state == SourceState.STOPPED
    assert not any(t.name.startswith("kvmrpa-sim-sim://scenario3?fps=25")
                   for t in threading.enumerate())
    src.start()  # restartable
    src.wait_frame(src.latest().seq if src.latest() else None, timeout=10)


def test_the_source_exposes_only_pixels(source_factory) -> None:
    """No public attribute of the source or its frames leads to the desktop's geometry."""
    src = source_factory("sim://scenario1?seed=24&realism=0")
    frame = src.wait_frame(timeout=10)
    forbidden = (SimDesktop, Widget, Window)
    for obj in (src, frame):
        for name in dir(obj):
            if name.startswith("_"):
                continue
            value = getattr(obj, name)
            assert not isinstance(value, forbidden), name
            if callable(value):
                continue
            assert not isinstance(value, dict | list) or not any(
                isinstance(v, forbidden) for v in (value.values() if isinstance(value, dict) else value)), name
    public_frame_fields = {n for n in vars(frame) if not n.startswith("_")}
    assert public_frame_fields == {"image", "seq", "captured", "wall", "source_id", "offset", "scale"}

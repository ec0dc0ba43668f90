"""``pattern://`` test-pattern sources: moving pictures with the frame number, URL
validation, a thread owned by the source and joined by stop()."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from kvmrpa import UrlError
from kvmrpa.capture import PATTERNS, PatternSource, SourceState, open_source, release_source


def _pattern_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kvmrpa-pattern"]


@pytest.mark.parametrize("kind", PATTERNS)
def test_frames_come_with_increasing_seq_and_differ(kind: str) -> None:
    src = PatternSource(f"pattern://{kind}?width=320&height=180&fps=60").start()
    try:
        first = src.wait_frame(timeout=10)
        second = src.wait_frame(after_seq=first.seq, timeout=10)
        third = src.wait_frame(after_seq=second.seq, timeout=10)
        assert first.seq < second.seq < third.seq
        for frame in (first, second, third):
            assert frame.size == (320, 180)
            assert frame.image.shape == (180, 320, 3) and frame.image.dtype == np.uint8
        assert not np.array_equal(first.image, second.image)
        assert not np.array_equal(second.image, third.image)
        assert src.state == SourceState.LIVE
    finally:
        src.stop()


def test_the_frame_number_is_drawn_and_pictures_are_deterministic() -> None:
    src = PatternSource("pattern://counter?width=200&height=100")
    a, b = src.render(7), src.render(7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, src.render(8))
    # the label box in the top-left corner holds white text on black
    corner = a[:20, :60]
    assert corner.max() == 255 and corner.min() == 0


def test_defaults() -> None:
    src = PatternSource("pattern://bars")
    assert (src.kind, src.size, src.fps) == ("bars", (1280, 720), 30.0)
    assert src.render(1).shape == (720, 1280, 3)


@pytest.mark.parametrize(("url", "match"), [
    ("pattern://plaid", "unknown pattern 'plaid'"),
    ("pattern://bars?width=8", "width must be 16..7680"),
    ("pattern://bars?height=99999", "height must be 16..4320"),
    ("pattern://bars?width=wide", "width must be a number"),
    ("pattern://bars?fps=0", "fps must be 0.1..240"),
    ("pattern://bars?fps=nan", "fps must be 0.1..240"),
    ("pattern://bars?colour=red", "unknown parameter"),
])
def test_bad_urls_are_refused_naming_the_url(url: str, match: str) -> None:
    with pytest.raises(UrlError, match=match) as info:
        PatternSource(url)
    assert url.split("?")[0] in str(info.value)
    with pytest.raises(UrlError, match=match):
        open_source(url)  # the hub builds it from the scheme


def test_stop_joins_the_thread_and_start_again_works() -> None:
    before = set(_pattern_threads())
    src = PatternSource("pattern://noise?width=64&height=48&fps=50")
    assert src.thread is None
    src.start()
    thread = src.thread
    assert thread is not None and thread.is_alive() and thread not in before
    src.wait_frame(timeout=10)
    src.stop()
    assert not thread.is_alive() and src.thread is None
    assert src.state == SourceState.STOPPED
    seq = src.latest().seq
    src.start()  # a stopped source can be started again, with a new thread
    try:
        assert src.wait_frame(after_seq=seq, timeout=10).seq > seq
        assert src.thread is not None and src.thread is not thread
    finally:
        src.stop()
    assert set(_pattern_threads()) <= before


def test_open_source_shares_a_pattern_by_url() -> None:
    a = open_source("pattern://counter?width=32&height=32&fps=20")
    b = open_source("pattern://counter?width=32&height=32&fps=20")
    try:
        assert a is b and isinstance(a, PatternSource)
        assert a.wait_frame(timeout=10).size == (32, 32)
    finally:
        release_source(a)
        release_source(b)

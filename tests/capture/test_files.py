"""Replay sources (video file, image, image folder) and the device source's errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kvmrpa import SourceOpenError, UrlError
from kvmrpa.capture import (
    DeviceSource,
    FrameSource,
    ImageFolderSource,
    ImageSource,
    SourceHub,
    SourceState,
    VideoFileSource,
)
from kvmrpa.capture._reader import parse_device_url

from .conftest import wait_until


def make_video(path: Path, frames: int = 12, fps: float = 25.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    try:
        for i in range(frames):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, :, 2] = (i * 20) % 240  # red channel encodes the frame index
            writer.write(img)
    finally:
        writer.release()


def red(frame_image: np.ndarray) -> int:
    return round(float(frame_image[:, :, 2].mean()) / 20)


def spy_published(src: FrameSource) -> list[int]:
    """The red level of every image ``src`` publishes from now on, in order."""
    seen: list[int] = []
    orig = src._publish

    def spy(image: np.ndarray, captured: float | None = None):
        seen.append(red(image))
        return orig(image, captured)

    src._publish = spy  # type: ignore[method-assign]
    return seen


@pytest.fixture
def hub():
    h = SourceHub(linger=0)
    yield h
    h.close()


def test_video_file_as_fast_as_possible_plays_every_frame_then_stops(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    make_video(path, frames=12)
    src = VideoFileSource(f"file://{path}?realtime=0")
    assert src.size == (64, 48) and src.fps == pytest.approx(25.0)
    seen = spy_published(src)
    with src:
        wait_until(lambda: src.state == SourceState.STOPPED, 20, "end of file")
        assert src.metrics().last_error == "end of file clip.avi"
    assert seen == list(range(12))
    assert src.threads() == []


def test_video_file_loops(tmp_path: Path) -> None:
    path = tmp_path / "loop.avi"
    make_video(path, frames=5)
    with VideoFileSource(f"file://{path}?realtime=0&loop=1") as src:
        wait_until(lambda: src.metrics().frames >= 12, 20, "three passes of a looped video")
        assert src.state == SourceState.LIVE
    assert src.state == SourceState.STOPPED and src.threads() == []


def test_video_file_realtime_is_paced_by_the_file_rate(tmp_path: Path) -> None:
    path = tmp_path / "slow.avi"
    make_video(path, frames=200, fps=10)
    with VideoFileSource(str(path), path, realtime=True) as src:
        first = src.wait_frame(None, timeout=10)
        second = src.wait_frame(first.seq, timeout=10)
        # Paced: the second frame comes about 0.1 s after the first, far from instantly
        # (200 frames unpaced decode in a few ms on any machine).
        assert second.captured - first.captured >= 0.05
        assert src.metrics().frames < 200


def test_plain_path_and_file_url_open_the_same_shared_source(tmp_path: Path, hub) -> None:
    path = tmp_path / "still.png"
    img = np.zeros((30, 40, 3), np.uint8)
    img[:, :, 1] = 200
    cv2.imwrite(str(path), img)
    a = hub.open(str(path))
    b = hub.open(f"file://{path}")
    assert a is b and isinstance(a, ImageSource)
    frame = a.wait_frame(None, timeout=10)
    assert frame.size == (40, 30) and int(frame.image[0, 0, 1]) == 200
    # The image is republished so a wait for a fresh frame works.
    again = a.wait_frame(frame.seq, timeout=10)
    assert again.seq > frame.seq
    assert np.array_equal(again.image, frame.image)
    hub.release(a)
    hub.release(b)
    assert a.state == SourceState.STOPPED


def test_image_folder_plays_images_in_name_order_and_skips_bad_ones(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        img = np.full((10, 10, 3), 0, np.uint8)
        img[:, :, 2] = i * 20
        cv2.imwrite(str(tmp_path / f"shot{i}.png"), img)
    (tmp_path / "shot1b.png").write_bytes(b"not an image at all")
    (tmp_path / "notes.txt").write_text("ignored")
    src = ImageFolderSource(f"file://{tmp_path}?fps=200&loop=0")
    assert [p.name for p in src.files] == ["shot0.png", "shot1.png", "shot1b.png", "shot2.png"]
    seen = spy_published(src)
    with src:
        wait_until(lambda: src.state == SourceState.STOPPED, 20, "end of the folder")
    assert seen == [0, 1, 2]
    # The unreadable file was reported; the end of the folder is the last word.
    assert src.metrics().last_error is not None


def test_missing_and_unreadable_inputs_fail_at_open_naming_the_path(tmp_path: Path, hub) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceOpenError, match=r"nope\.mp4"):
        hub.open(str(missing))
    with pytest.raises(SourceOpenError, match=r"nope\.mp4"):
        hub.open(f"file://{missing}")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(SourceOpenError, match=r"broken\.png"):
        hub.open(str(bad))
    badvid = tmp_path / "broken.mp4"
    badvid.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceOpenError, match=r"broken\.mp4"):
        hub.open(str(badvid))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceOpenError, match="no image files"):
        hub.open(str(empty))
    assert hub.refcounts() == {}


def test_bad_query_values_are_url_errors(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    make_video(path, frames=2)
    with pytest.raises(UrlError, match="loop"):
        VideoFileSource(f"file://{path}?loop=maybe")
    with pytest.raises(UrlError, match="fps"):
        VideoFileSource(f"file://{path}?fps=-3")


def test_device_urls_parse() -> None:
    assert parse_device_url("device://0") == 0
    assert parse_device_url("device://3") == 3
    assert parse_device_url("device:///dev/video0") == "/dev/video0"
    for bad in ("device://abc", "device://", "device://0/dev/video0"):
        with pytest.raises(UrlError):
            parse_device_url(bad)


def test_a_missing_device_is_reported_and_retried() -> None:
    src = DeviceSource("device:///dev/video-kvmrpa-missing", reconnect_initial=0.05,
                       reconnect_max=0.1)
    with src:
        wait_until(lambda: src.metrics().attempts >= 2, 20, "two attempts to open the device")
        m = src.metrics()
        assert m.state == SourceState.RECONNECTING
        assert "no such device /dev/video-kvmrpa-missing" in (m.last_error or "")
    assert src.state == SourceState.STOPPED and src.threads() == []


def test_max_reconnects_gives_up_with_a_stopped_state() -> None:
    src = DeviceSource("device:///dev/video-kvmrpa-missing", reconnect_initial=0.01,
                       reconnect_max=0.01, max_reconnects=2)
    with src:
        wait_until(lambda: src.state == SourceState.STOPPED, 20, "giving up")
        m = src.metrics()
        assert m.attempts == 3
        assert "gave up after 2 reconnect attempts" in (m.last_error or "")
        wait_until(lambda: src.threads() == [], 10, "the supervisor to exit")

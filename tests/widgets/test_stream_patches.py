"""Patches: a viewer gets JPEGs of what changed since the frame it has, and the picture it
builds from them is the picture a whole frame would give; whole frames come first, when
asked for, when most of the screen changed and every keyframe interval."""

from __future__ import annotations

import asyncio
import collections
import struct
import time

import cv2
import numpy as np
import pytest
from kvmrpa.widgets._frameroute import (
    HEADER,
    MAX_WAITING,
    PATCH_ENTRY,
    PATCH_HEADER,
    PATCH_MAGIC,
    FrameSocket,
    frame_packet,
)
from kvmrpa.widgets._liveview import LiveView, frame_message

from kvmrpa import Frame, get_runtime, get_settings
from kvmrpa.capture import FrameSource
from kvmrpa.capture._encoder import (
    EncodedFrame,
    FrameEncoder,
    FrameStreamer,
    changed_tiles,
    encode_jpeg,
    encode_patches,
)

from .test_encoder import wait_until


def desktop(w: int = 1280, h: int = 720, clock: int = 0) -> np.ndarray:
    img = np.full((h, w, 3), (140, 100, 40), np.uint8)
    cv2.rectangle(img, (60, 60), (480, 280), (236, 236, 236), -1)
    cv2.putText(img, "Hello kvmrpa", (80, 150), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2)
    cv2.putText(img, f"12:00:{clock:02d}", (w - 150, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                (230, 230, 230), 2)
    return img


def decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def tiles_by_hand(a: np.ndarray, b: np.ndarray, threshold: int, t: int = 16) -> np.ndarray:
    d = np.abs(a.astype(int) - b.astype(int)).max(axis=2)
    rows, cols = -(-d.shape[0] // t), -(-d.shape[1] // t)
    return np.array([[d[r * t:(r + 1) * t, c * t:(c + 1) * t].max() > threshold
                      for c in range(cols)] for r in range(rows)])


@pytest.mark.parametrize("size", [(720, 1280), (601, 1000), (15, 17), (100, 1366), (1080, 1920)])
def test_changed_tiles_finds_every_changed_pixel_and_only_those(size) -> None:
    rng = np.random.default_rng(sum(size))
    a = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    b = a.copy()
    for _ in range(6):  # strong and faint changes, anywhere (edges included)
        y, x, c = rng.integers(0, size[0]), rng.integers(0, size[1]), rng.integers(0, 3)
        b[y, x, c] ^= 0x40
        y, x, c = rng.integers(0, size[0]), rng.integers(0, size[1]), rng.integers(0, 3)
        b[y, x, c] ^= 0x03
    b[-1, -1, 2] ^= 0x80
    for threshold in (0, 8):
        assert (changed_tiles(b, a, threshold) == tiles_by_hand(b, a, threshold)).all()
    assert not changed_tiles(a, a.copy(), 0).any()


@pytest.mark.parametrize(("w", "h", "width"), [(1280, 720, 1280), (1920, 1080, 1280),
                                                (1366, 768, 640), (1000, 601, 1000)])
def test_a_picture_built_from_patches_is_the_whole_frames_picture(w, h, width) -> None:
    before, after = desktop(w, h, 1), desktop(w, h, 2)
    cv2.circle(after, (w // 3, h // 3), 20, (0, 0, 255), -1)  # a second, separate change
    whole_before, ew, eh = encode_jpeg(before, width, 80)
    picture = decode(whole_before)
    found = encode_patches(after, before, width, 80, threshold=8)
    assert found is not None
    patches, pw, ph = found
    assert (pw, ph) == (ew, eh) and len(patches) == 2
    for p in patches:
        part = decode(p.jpeg)
        assert part.shape[:2] == (p.height, p.width)
        assert p.x >= 0 and p.x + p.width <= ew and p.y >= 0 and p.y + p.height <= eh
        picture[p.y:p.y + p.height, p.x:p.x + p.width] = part
    truth = cv2.resize(after, (ew, eh), interpolation=cv2.INTER_LINEAR) if width < w else after
    direct = decode(encode_jpeg(after, width, 80)[0])
    error = np.abs(picture.astype(int) - truth).mean()
    assert error <= np.abs(direct.astype(int) - truth).mean() + 0.05
    # the patches are a small part of a whole frame's bytes
    assert sum(len(p.jpeg) for p in patches) < 0.25 * len(encode_jpeg(after, width, 80)[0])


def test_nothing_changed_gives_no_patch_and_a_repaint_gives_a_whole_frame() -> None:
    a = desktop()
    assert encode_patches(a, a.copy(), 1280, 80, 8) == ([], 1280, 720)
    noise = np.random.default_rng(0).integers(0, 255, a.shape, dtype=np.uint8)
    assert encode_patches(noise, a, 1280, 80, 8) is None  # most of it changed
    assert encode_patches(desktop(640, 360), a, 640, 80, 8) is None  # another size
    # a change below the threshold is not sent
    faint = a.copy()
    faint[300:340, 300:340] += 5
    assert encode_patches(faint, a, 1280, 80, 8) == ([], 1280, 720)
    assert len(encode_patches(faint, a, 1280, 80, 0)[0]) == 1


def test_many_scattered_changes_are_sent_as_one_box() -> None:
    a = desktop()
    b = a.copy()
    for i in range(12):  # twelve separate dots on a diagonal
        b[40 + i * 25, 60 + i * 45] = (0, 0, 255)
    found = encode_patches(b, a, 1280, 80, 8)
    assert found is not None
    patches = found[0]
    assert len(patches) == 1
    p = patches[0]
    assert p.x <= 60 and p.y <= 40 and p.x + p.width > 60 + 11 * 45 and p.y + p.height > 315
    # spread over more than half the screen, they are sent as a whole frame
    c = a.copy()
    for i in range(12):
        c[40 + i * 50, 60 + i * 90] = (0, 0, 255)
    assert encode_patches(c, a, 1280, 80, 8) is None


def frame(img: np.ndarray, seq: int) -> Frame:
    return Frame(img, seq=seq, source_id="desk")


def test_the_encoder_shares_a_patch_encode_and_falls_back_to_the_whole_frame() -> None:
    enc = FrameEncoder()
    f1, f2 = frame(desktop(clock=1), 1), frame(desktop(clock=2), 2)

    async def both():
        return await asyncio.gather(*(enc.encode(f2, after=f1) for _ in range(4)))

    results = get_runtime().run(both(), timeout=30)
    assert all(r is results[0] for r in results) and enc.encodes == 1
    patch = results[0]
    assert patch.base_seq == 1 and not patch.whole and len(patch.patches) == 1
    assert patch.jpeg == b"" and patch.nbytes == len(patch.patches[0].jpeg)
    # A repaint is sent whole, and shares the whole frame's own encode.
    noise = frame(np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8), 3)
    whole = get_runtime().run(enc.encode(noise, after=f2), timeout=30)
    assert whole.whole and whole.jpeg and get_runtime().run(enc.encode(noise), timeout=30) is whole
    assert enc.encoded_seqs[("desk", 3)] == 1
    # A base that is not older than the frame (or of another source) means whole.
    assert get_runtime().run(enc.encode(f1, after=f2), timeout=30).whole


def test_packets_carry_patches_on_both_paths() -> None:
    f1, f2 = frame(desktop(clock=1), 1), frame(desktop(clock=2), 2)
    enc = FrameEncoder()
    patch = get_runtime().run(enc.encode(f2, after=f1), timeout=30)
    packet = frame_packet(patch, stream=5)
    fields = PATCH_HEADER.unpack_from(packet)
    assert fields[0] == PATCH_MAGIC and fields[1:4] == (5, 2, 1) and fields[-1] == 1
    x, y, w, h, n = PATCH_ENTRY.unpack_from(packet, PATCH_HEADER.size)
    p = patch.patches[0]
    assert (x, y, w, h) == (p.x, p.y, p.width, p.height)
    assert packet[PATCH_HEADER.size + PATCH_ENTRY.size:] == p.jpeg and n == len(p.jpeg)
    msg = frame_message(patch, stream=5)
    assert msg["base"] == 1 and msg["patches"][0]["jpeg"] == p.jpeg
    whole = get_runtime().run(enc.encode(f2), timeout=30)
    assert HEADER.unpack_from(frame_packet(whole))[0] == b"KVF1" and "base" not in frame_message(whole)


class DeskSource(FrameSource):
    """Publishes desktops by hand: the clock ticks, or the whole screen is repainted."""

    def __init__(self) -> None:
        super().__init__("desk://test")
        self.clock = 0

    def _start(self) -> None:
        pass

    def _stop(self) -> None:
        pass

    def tick(self) -> int:
        self.clock += 1
        return self._publish(desktop(clock=self.clock % 60)).seq

    def repaint(self) -> int:
        rng = np.random.default_rng(self.clock)
        self.clock += 1
        return self._publish(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)).seq


def pump(got: list[EncodedFrame], step) -> int:
    """Publish a frame with ``step`` and wait until the viewer got it."""
    seq = step()
    wait_until(lambda: got and got[-1].seq == seq)
    return seq


def test_a_viewer_gets_a_whole_frame_then_patches_over_the_frame_before() -> None:
    src = DeskSource().start()
    got: list[EncodedFrame] = []
    streamer = FrameStreamer(src, lambda e: (got.append(e), streamer.ack(e.seq)),
                             fps=lambda: 120.0, encoder=FrameEncoder())
    streamer.start()
    try:
        for _ in range(5):
            pump(got, src.tick)
        assert got[0].whole
        assert [e.base_seq for e in got[1:]] == [e.seq for e in got[:-1]]
        assert all(len(e.patches) == 1 for e in got[1:])
        # The viewer asks for a whole frame (it joined, or lost a patch).
        streamer.want_keyframe()
        pump(got, src.tick)
        assert got[-1].whole
        pump(got, src.tick)
        assert not got[-1].whole
        # A repaint goes whole; patches are tried again after a while (not every frame).
        for _ in range(4):
            pump(got, src.repaint)
        assert all(e.whole for e in got[-4:])
        for _ in range(6):
            pump(got, src.tick)
        assert not got[-1].whole
    finally:
        streamer.stop(wait=5)
        src.stop()


def test_whole_frames_come_every_keyframe_interval_and_when_patches_are_off() -> None:
    stream = get_settings().stream
    src = DeskSource().start()
    got: list[EncodedFrame] = []
    streamer = FrameStreamer(src, lambda e: (got.append(e), streamer.ack(e.seq)),
                             fps=lambda: 120.0, encoder=FrameEncoder())
    was = stream.keyframe_interval, stream.patches
    stream.keyframe_interval = 0.3
    streamer.start()
    try:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pump(got, src.tick)
            time.sleep(0.02)
        wholes = [e for e in got if e.whole]
        assert 4 <= len(wholes) <= 7, len(wholes)  # 1.5 s at one per 0.3 s, the first too
        assert len(got) - len(wholes) > 20
        stream.patches = False
        n = len(got)
        for _ in range(4):
            pump(got, src.tick)
        assert all(e.whole for e in got[n:])
    finally:
        stream.keyframe_interval, stream.patches = was
        streamer.stop(wait=5)
        src.stop()


def socket_for_test() -> FrameSocket:
    sock = FrameSocket.__new__(FrameSocket)
    sock.initialize()
    sock._writing = True  # one message is being written: the others wait
    return sock


def test_the_socket_keeps_patches_in_order_and_a_whole_frame_replaces_them() -> None:
    sock = socket_for_test()
    sock.offer(b"w1")
    sock.offer(b"p1", whole=False)
    sock.offer(b"p2", whole=False)
    assert list(sock._waiting) == [b"w1", b"p1", b"p2"]
    sock.offer(b"w2")
    assert list(sock._waiting) == [b"w2"] and sock.dropped == 3
    for i in range(MAX_WAITING - 1):
        sock.offer(b"p%d" % i, whole=False)
    assert len(sock._waiting) == MAX_WAITING
    sock.offer(b"late", whole=False)  # too many: all dropped, the view asks for a whole one
    assert not sock._waiting and sock.dropped == 3 + MAX_WAITING + 1


def test_a_view_asking_for_a_keyframe_gets_a_whole_frame_next() -> None:
    view = LiveView()
    asked = collections.Counter()

    class Streamer:
        def want_keyframe(self) -> None:
            asked["keyframe"] += 1

    view._streamer = Streamer()  # type: ignore[assignment]
    view._update_streaming = lambda *a: None  # type: ignore[method-assign]
    view._handle_msg({"kind": "keyframe"})
    view._handle_msg({"kind": "hello"})
    assert asked["keyframe"] == 2
    assert struct.calcsize("<4sIQQIIIIdI") == PATCH_HEADER.size == 52

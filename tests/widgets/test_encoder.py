"""The encoder service: one encode per frame however many viewers, none without viewers,
never on the event loop, downscaled to the displayed size."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from kvmrpa.widgets._encoder import FrameEncoder, FrameStreamer, choose_width, encode_jpeg

from kvmrpa import Frame, get_runtime
from kvmrpa.capture import _encoder

from ._sources import ManualSource


def wait_until(pred, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_choose_width_rounds_up_and_caps() -> None:
    assert choose_width(1920, 700, 1280) == 800
    assert choose_width(1920, 1500, 1280) == 1280
    assert choose_width(640, 1500, 1280) == 640
    assert choose_width(1920, None, 1280) == 1280
    assert choose_width(1920, 0, 4000) == 1920
    with pytest.raises(ValueError):
        choose_width(0, 100, 100)


def test_encode_jpeg_downscales_and_decodes() -> None:
    img = np.zeros((720, 1280, 3), np.uint8)
    img[100:200, 100:300] = (0, 0, 255)
    jpeg, w, h = encode_jpeg(img, 640, 80)
    assert (w, h) == (640, 360)
    back = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert back.shape == (360, 640, 3)
    assert back[75, 100, 2] > 200 and back[75, 100, 0] < 60  # the red block, halved
    _jpeg2, w2, h2 = encode_jpeg(img, 2000, 80)
    assert (w2, h2) == (1280, 720)


def test_concurrent_requests_share_one_encode() -> None:
    enc = FrameEncoder()
    frame = Frame(np.zeros((360, 640, 3), np.uint8), seq=7, source_id="x")

    async def many():
        import asyncio

        return await asyncio.gather(*(enc.encode(frame, 640, 80) for _ in range(8)))

    results = get_runtime().run(many(), timeout=30)
    assert enc.encodes == 1 and enc.requests == 8
    assert all(r is results[0] for r in results)
    # Another size or quality is another key.
    get_runtime().run(enc.encode(frame, 320, 80), timeout=30)
    get_runtime().run(enc.encode(frame, 640, 50), timeout=30)
    assert enc.encodes == 3


def test_four_viewers_encode_each_frame_once_off_the_loop(monkeypatch) -> None:
    threads: list[threading.Thread] = []
    real = _encoder.encode_jpeg

    def spy(*a, **kw):
        threads.append(threading.current_thread())
        return real(*a, **kw)

    monkeypatch.setattr(_encoder, "encode_jpeg", spy)
    src = ManualSource().start()
    enc = FrameEncoder()
    received: list[list[int]] = [[] for _ in range(4)]
    streamers = []
    for i in range(4):
        def send(e, i=i):
            received[i].append(e.seq)
            streamers[i].ack(e.seq)
        streamers.append(FrameStreamer(src, send, width=lambda: 640, fps=lambda: 120.0,
                                       encoder=enc))
    try:
        for s in streamers:
            s.start()
        for _ in range(12):
            seq = src.push()
            wait_until(lambda seq=seq: all(r and r[-1] == seq for r in received))
    finally:
        for s in streamers:
            s.stop()
        src.stop()
    sent_seqs = set().union(*map(set, received))
    assert len(sent_seqs) == 12
    assert enc.encodes == len(enc.encoded_seqs) == 12
    assert set(enc.encoded_seqs.values()) == {1}
    assert enc.requests >= 4 * 12
    loop_thread = get_runtime().thread
    assert threads and all(t is not loop_thread for t in threads)


def test_no_viewer_no_encode() -> None:
    src = ManualSource().start()
    enc = FrameEncoder()
    s = FrameStreamer(src, lambda e: None, encoder=enc, fps=lambda: 120.0)
    try:
        for _ in range(5):
            src.push()
        assert enc.encodes == 0 and not s.running
        s.start()
        wait_until(lambda: s.sent >= 1)
        s.stop(wait=10)
        assert not s.running
        time.sleep(0.2)  # an encode already in the pool when the viewer left may finish
        before = enc.encodes
        for _ in range(5):
            src.push()
        time.sleep(0.2)
        assert enc.encodes == before
    finally:
        s.stop()
        src.stop()


def test_unacknowledged_frames_are_bounded() -> None:
    src = ManualSource().start()
    enc = FrameEncoder()
    sent: list[int] = []
    s = FrameStreamer(src, lambda e: sent.append(e.seq), encoder=enc, fps=lambda: 120.0,
                      max_in_flight=2, ack_timeout=30.0)
    try:
        s.start()
        for _ in range(2):
            seq = src.push()
            wait_until(lambda seq=seq: sent and sent[-1] == seq)
        src.push()
        time.sleep(0.3)
        assert len(sent) == 2  # the window is full: nothing more until an ack
        s.ack(sent[-1])
        wait_until(lambda: len(sent) == 3)
    finally:
        s.stop()
        src.stop()


def test_display_rate_is_capped() -> None:
    src = ManualSource().start()
    enc = FrameEncoder()
    sent: list[float] = []
    s = FrameStreamer(src, lambda e: (sent.append(time.monotonic()), s.ack(e.seq)),
                      encoder=enc, fps=lambda: 2.0)
    try:
        s.start()
        src.push()
        wait_until(lambda: len(sent) == 1)
        for _ in range(5):
            src.push()
        # Frames published right after one was sent wait for the next slot (0.5 s at
        # 2 fps). The callback times carry scheduling jitter on a loaded machine, so the
        # bound is loose; without the cap the gap would be a few milliseconds.
        wait_until(lambda: len(sent) == 2)
        assert sent[1] - sent[0] >= 0.3
        assert s.last_seq == 6  # the newest frame was sent, not a stale one
    finally:
        s.stop()
        src.stop()


def test_a_viewer_leaving_mid_encode_does_not_stop_the_others(monkeypatch) -> None:
    gate = threading.Event()
    started = threading.Event()
    real = _encoder.encode_jpeg

    def slow(*a, **kw):
        started.set()
        gate.wait(20)
        return real(*a, **kw)

    monkeypatch.setattr(_encoder, "encode_jpeg", slow)
    src = ManualSource().start()
    enc = FrameEncoder()
    got_a: list[int] = []
    got_b: list[int] = []
    a = FrameStreamer(src, got_a.append, encoder=enc, fps=lambda: 120.0)
    b = FrameStreamer(src, lambda e: (got_b.append(e.seq), b.ack(e.seq)), encoder=enc,
                      fps=lambda: 120.0)
    try:
        a.start()
        b.start()
        seq = src.push()
        assert started.wait(20)
        wait_until(lambda: enc.requests >= 2)  # both wait on the one encode
        a.stop(wait=10)  # viewer A leaves while the encode runs
        gate.set()
        wait_until(lambda: got_b == [seq])
        seq2 = src.push()
        wait_until(lambda: got_b == [seq, seq2])
        assert got_a == [] and b.running and enc.encodes == 2
    finally:
        gate.set()
        a.stop()
        b.stop()
        src.stop()


def test_the_per_frame_encode_count_stays_bounded() -> None:
    # The process-wide encoder serves for hours: its per-frame diagnostics must not grow
    # with every frame ever shown.
    enc = FrameEncoder(history=5)

    async def encode_all():
        for seq in range(1, 21):
            await enc.encode(Frame(np.zeros((36, 64, 3), np.uint8), seq=seq, source_id="x"), 64, 80)

    get_runtime().run(encode_all(), timeout=60)
    assert enc.encodes == 20
    assert list(enc.encoded_seqs) == [("x", s) for s in range(16, 21)]
    assert set(enc.encoded_seqs.values()) == {1}
    with pytest.raises(ValueError, match="history"):
        FrameEncoder(history=0)

"""The latest-frame mailbox: no backlog, newest frame, timeouts, thread safety, state."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from kvmrpa import FrameTimeoutError
from kvmrpa.capture import SourceState
from kvmrpa.capture._backoff import Backoff

from .conftest import ManualSource


def test_latest_is_none_before_the_first_frame(manual_source: ManualSource) -> None:
    assert manual_source.latest() is None
    assert manual_source.state == SourceState.CONNECTING


def test_first_frame_makes_the_source_live(manual_source: ManualSource) -> None:
    seq = manual_source.push(7)
    frame = manual_source.latest()
    assert frame is not None and frame.seq == seq == 1
    assert manual_source.state == SourceState.LIVE
    assert int(frame.image[0, 0, 0]) == 7
    assert frame.source_id == "manual://test"


def test_frames_are_read_only(manual_source: ManualSource) -> None:
    manual_source.push(1)
    frame = manual_source.latest()
    assert frame is not None
    with pytest.raises(ValueError):
        frame.image[0, 0, 0] = 9


def test_no_backlog_a_slow_consumer_gets_the_newest_frame(manual_source: ManualSource) -> None:
    first = manual_source.push(0)
    got = asyncio.run(manual_source.next_frame(None, timeout=1))
    assert got.seq == first
    for i in range(1, 50):
        manual_source.push(i)
    # The consumer was slow: it must get frame 50 now, not frame 2.
    got = asyncio.run(manual_source.next_frame(got.seq, timeout=1))
    assert got.seq == 50
    assert int(got.image[0, 0, 0]) == 49
    # And there is nothing left to drain: the next wait needs a new frame.
    with pytest.raises(FrameTimeoutError):
        asyncio.run(manual_source.next_frame(got.seq, timeout=0.05))
    m = manual_source.metrics()
    assert m.frames == 50
    assert m.dropped == 48  # frames 2..49 were replaced before anyone looked at them


def test_next_frame_timeout_is_a_timeout_error_naming_the_source(
        manual_source: ManualSource) -> None:
    with pytest.raises(TimeoutError) as info:
        asyncio.run(manual_source.next_frame(None, timeout=0.05))
    assert isinstance(info.value, FrameTimeoutError)
    assert "manual://test" in str(info.value)
    assert "connecting" in str(info.value)


def test_next_frame_wakes_when_another_thread_publishes(manual_source: ManualSource) -> None:
    manual_source.push(0)

    async def consume() -> int:
        waiter = asyncio.ensure_future(manual_source.next_frame(1, timeout=10))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        threading.Thread(target=manual_source.push, args=(3,)).start()
        return (await waiter).seq

    assert asyncio.run(consume()) == 2


def test_a_cancel_as_the_frame_arrives_is_not_lost(manual_source: ManualSource) -> None:
    """A waiter cancelled in the same loop turn its frame arrives is cancelled (a
    viewer's pump stopped by Hold must stop; asyncio.wait_for on 3.11 returned the frame)."""
    manual_source.push(0)

    async def cancel_on_arrival() -> object:
        waiter = asyncio.ensure_future(manual_source.next_frame(1, timeout=10))
        await asyncio.sleep(0.01)
        manual_source.push(3)      # on this loop's thread: the wake-up is scheduled
        await asyncio.sleep(0)     # the frame's future resolves
        waiter.cancel()            # before the waiter has run again
        try:
            return await waiter
        except asyncio.CancelledError:
            return "cancelled"

    assert asyncio.run(cancel_on_arrival()) == "cancelled"


def test_wait_frame_is_the_blocking_face(manual_source: ManualSource) -> None:
    timer = threading.Timer(0.05, manual_source.push, args=(5,))
    timer.start()
    try:
        frame = manual_source.wait_frame(None, timeout=10)
    finally:
        timer.join()
    assert frame.seq == 1
    with pytest.raises(FrameTimeoutError):
        manual_source.wait_frame(frame.seq, timeout=0.05)


def test_many_producers_and_consumers_are_thread_safe(manual_source: ManualSource) -> None:
    producers, per_producer = 4, 500
    seen: list[list[int]] = []
    stop = threading.Event()

    def produce() -> None:
        for i in range(per_producer):
            manual_source.push(i)

    async def consume(n: int) -> list[int]:
        seqs: list[int] = []
        last = None
        while not stop.is_set():
            try:
                f = await manual_source.next_frame(last, timeout=0.2)
            except FrameTimeoutError:
                continue
            seqs.append(f.seq)
            last = f.seq
        return seqs

    def consumer_thread() -> None:
        seen.append(asyncio.run(consume(0)))

    consumers = [threading.Thread(target=consumer_thread) for _ in range(3)]
    for t in consumers:
        t.start()
    threads = [threading.Thread(target=produce) for _ in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in consumers:
        t.join()
    total = producers * per_producer
    m = manual_source.metrics()
    assert m.frames == total
    latest = manual_source.latest()
    assert latest is not None and latest.seq == total
    assert len(seen) == 3
    for seqs in seen:
        # Every consumer saw strictly increasing sequence numbers, never one twice.
        assert seqs == sorted(set(seqs))
        assert all(1 <= s <= total for s in seqs)


def test_state_callbacks_and_unsubscribe() -> None:
    src = ManualSource()
    states: list[SourceState] = []
    unsubscribe = src.on_state(states.append)
    src.start()
    src.push(1)
    src._set_state(SourceState.RECONNECTING, "lost")
    src.push(2)
    unsubscribe()
    src.stop()
    assert states == [SourceState.CONNECTING, SourceState.LIVE, SourceState.RECONNECTING,
                      SourceState.LIVE]
    assert src.state == SourceState.STOPPED
    m = src.metrics()
    assert m.reconnects == 1 and m.last_error == "lost"


def test_a_failing_callback_does_not_break_the_producer(manual_source: ManualSource) -> None:
    def bad(_: SourceState) -> None:
        raise RuntimeError("observer bug")

    manual_source.on_state(bad)
    manual_source.push(1)
    assert manual_source.state == SourceState.LIVE


def test_start_and_stop_are_idempotent() -> None:
    src = ManualSource()
    src.start()
    src.start()
    src.stop()
    src.stop()
    assert (src.starts, src.stops) == (1, 1)
    with src:
        assert src.running
    assert not src.running and src.state == SourceState.STOPPED


def test_metrics_fps_and_age(manual_source: ManualSource) -> None:
    start = time.monotonic() - 1.0  # ten intervals of 0.1 s ending now
    for i in range(11):
        manual_source._publish(np.zeros((2, 2, 3), np.uint8), captured=start + i * 0.1)
    m = manual_source.metrics()
    assert m.frames == 11
    assert m.fps == pytest.approx(10.0, rel=1e-6)
    assert m.age_s is not None and m.age_s >= 0
    d = m.as_dict()
    assert d["state"] == "live" and d["frames"] == 11 and d["reconnects"] == 0


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    b = Backoff(0.5, 4.0, 0.0)
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 0.5


def test_backoff_jitter_stays_within_its_fraction() -> None:
    b = Backoff(1.0, 1.0, 0.25)
    delays = [b.next() for _ in range(200)]
    assert all(0.75 <= d <= 1.25 for d in delays)
    assert len({round(d, 6) for d in delays}) > 50  # really random


@pytest.mark.parametrize(("initial", "maximum", "jitter"), [(0, 1, 0), (1, 1, 2)])
def test_backoff_rejects_bad_values(initial: float, maximum: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum, jitter)


def test_frames_name_their_source_without_its_password() -> None:
    src = ManualSource("rtsp://admin:hunter2@kvm.local/stream")
    with src:
        src.push(1)
        frame = src.latest()
    assert frame is not None
    assert frame.source_id == "rtsp://admin:***@kvm.local/stream"
    assert "hunter2" not in repr(frame) and "hunter2" not in repr(src)

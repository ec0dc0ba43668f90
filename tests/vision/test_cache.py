"""The shared recognition cache: one computation per key whoever asks (threads and
coroutines), keys kept apart, bounded memory, failures not cached, frames not kept alive,
and change-aware reuse that never serves a stale result."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kvmrpa import Frame, get_runtime, run_sync
from kvmrpa._settings import configure, get_settings
from kvmrpa.vision import (
    OcrEngine,
    RecognitionCache,
    Template,
    TextBox,
    TextBoxes,
    get_recognition_cache,
    shared_match_template,
    shared_ocr,
)

from ._render import render_lines


class CountingEngine(OcrEngine):
    """Reads a region as one box whose text is its mean grey level; counts its calls and
    can hold every call until released."""

    name = "counting"

    def __init__(self, hold: bool = False, fail: bool = False) -> None:
        self.calls = 0
        self.regions: list[tuple[int, int]] = []
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.fail = fail
        self._lock = threading.Lock()

    def _read(self, image: np.ndarray) -> TextBoxes:
        with self._lock:
            self.calls += 1
            self.regions.append(image.shape[:2])
        assert self.release.wait(30)
        if self.fail:
            raise RuntimeError("engine broke")
        h, w = image.shape[:2]
        return TextBoxes([TextBox(f"mean {round(float(image.mean()))}", 0.9, (0, 0, w, h))])

    def read(self, image: np.ndarray) -> TextBoxes:
        return self._read(image)

    def read_line(self, image: np.ndarray) -> TextBoxes:
        return self._read(image)


def _wait_for(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _frame(value: int = 128, seq: int = 1, size: tuple[int, int] = (160, 96)) -> Frame:
    img = np.full((size[1], size[0], 3), value, np.uint8)
    return Frame(img, seq=seq, source_id="test://cache")


@pytest.fixture
def settings() -> Iterator[None]:
    """Restores the vision settings a test changes."""
    vs = get_settings().vision
    saved = {k: getattr(vs, k) for k in ("cache", "change_detection", "change_threshold",
                                         "cache_entries", "cache_bytes")}
    yield
    configure(**{f"vision__{k}": v for k, v in saved.items()})


def test_concurrent_threads_share_one_computation() -> None:
    cache, eng = RecognitionCache(), CountingEngine(hold=True)
    frame = _frame()
    results: list[TextBoxes] = []
    threads = [threading.Thread(target=lambda: results.append(cache.ocr(frame, engine=eng)))
               for _ in range(8)]
    for t in threads:
        t.start()
    _wait_for(lambda: cache.stats["waits"] == 7 and eng.calls == 1)
    eng.release.set()
    for t in threads:
        t.join(30)
    assert eng.calls == 1 and len(results) == 8
    assert all(r is results[0] for r in results) and results[0].texts == ["mean 128"]
    assert cache.stats["computations"] == 1 and cache.stats["misses"] == 1
    assert cache.ocr(frame, engine=eng) is results[0] and cache.stats["hits"] == 1


def test_concurrent_coroutines_and_threads_share_one_computation() -> None:
    cache, eng = RecognitionCache(), CountingEngine(hold=True)
    frame = _frame()
    from_thread: list[TextBoxes] = []

    async def main() -> list[TextBoxes]:
        tasks = [asyncio.ensure_future(cache.aocr(frame, engine=eng)) for _ in range(10)]
        await asyncio.sleep(0)
        t = threading.Thread(target=lambda: from_thread.append(cache.ocr(frame, engine=eng)))
        t.start()
        # one computation has started (in the pool, or in the thread, which takes over
        # work still queued for the pool) and the other askers wait for it
        while eng.calls < 1 or cache.stats["waits"] < 9:
            await asyncio.sleep(0.005)
        eng.release.set()
        out = await asyncio.gather(*tasks)
        await asyncio.get_running_loop().run_in_executor(None, t.join, 30)
        return list(out)

    got = run_sync(main(), timeout=60)
    assert eng.calls == 1
    assert all(r is got[0] for r in got) and from_thread == [got[0]]


def test_blocking_askers_take_over_work_still_queued_for_the_pool() -> None:
    cache, eng = RecognitionCache(), CountingEngine()
    frame = _frame()
    runtime = get_runtime()
    gate = threading.Event()
    results: list[TextBoxes] = []

    def blocker() -> None:  # holds a pool thread, then asks like a node's process()
        assert gate.wait(30)
        results.append(cache.ocr(frame, engine=eng))

    jobs = [runtime.pool.submit(blocker) for _ in range(runtime.pool_size)]

    async def ask() -> TextBoxes:
        task = asyncio.ensure_future(cache.aocr(frame, engine=eng))
        await asyncio.sleep(0.05)  # claimed; its pool job is queued behind the blockers
        gate.set()
        return await task

    got = run_sync(ask(), timeout=60)
    for job in jobs:
        job.result(30)
    assert eng.calls == 1 and len(results) == runtime.pool_size
    assert all(r is got for r in results)


def test_a_cancelled_asker_leaves_the_computation_to_the_others() -> None:
    cache, eng = RecognitionCache(), CountingEngine(hold=True)
    frame = _frame()

    async def main() -> TextBoxes:
        first = asyncio.ensure_future(cache.aocr(frame, engine=eng))
        second = asyncio.ensure_future(cache.aocr(frame, engine=eng))
        while eng.calls < 1 or cache.stats["waits"] < 1:
            await asyncio.sleep(0.005)
        first.cancel()
        await asyncio.sleep(0.01)
        eng.release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert run_sync(main(), timeout=60).texts == ["mean 128"]
    assert eng.calls == 1


def test_a_failure_reaches_every_waiter_and_is_not_cached() -> None:
    cache, eng = RecognitionCache(), CountingEngine(hold=True, fail=True)
    frame = _frame()
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            cache.ocr(frame, engine=eng)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    _wait_for(lambda: cache.stats["waits"] == 2)
    eng.release.set()
    for t in threads:
        t.join(30)
    assert len(errors) == 3 and all("engine broke" in str(e) for e in errors)
    assert eng.calls == 1 and len(cache) == 0
    eng.fail = False
    assert cache.ocr(frame, engine=eng).texts == ["mean 128"] and eng.calls == 2


def test_keys_keep_region_parameters_engine_and_frame_apart(settings: None) -> None:
    configure(vision__change_detection=False)  # identical pixels must not be reused here
    cache, eng, other = RecognitionCache(), CountingEngine(), CountingEngine()
    frame = _frame()
    a = cache.ocr(frame, engine=eng)
    assert cache.ocr(frame, (0, 0, 80, 96), engine=eng) is not a
    assert cache.ocr(frame, engine=eng, rec_only=True) is not a
    assert cache.ocr(frame, engine=other) is not a
    assert eng.calls == 3 and other.calls == 1
    # a whole-frame region is the same key as no region; min_confidence only filters
    assert cache.ocr(frame, (0, 0, 160, 96), engine=eng) is a
    assert cache.ocr(frame, engine=eng, min_confidence=0.95).texts == []
    assert eng.calls == 3
    # the next frame of the source, even with the same pixels, is another key
    cache.ocr(_frame(seq=2), engine=eng)
    assert eng.calls == 4
    # a plain array has no identity: never cached
    arr = np.full((96, 160, 3), 128, np.uint8)
    cache.ocr(arr, engine=eng)
    cache.ocr(arr, engine=eng)
    assert eng.calls == 6


def test_a_derived_frame_with_the_same_seq_is_not_its_source(settings: None) -> None:
    configure(vision__change_detection=False)
    cache, eng = RecognitionCache(), CountingEngine()
    frame = _frame(100)
    darker = frame.derive(np.full((96, 160, 3), 20, np.uint8))
    assert darker.seq == frame.seq and darker.source_id == frame.source_id
    assert cache.ocr(frame, engine=eng).texts == ["mean 100"]
    assert cache.ocr(darker, engine=eng).texts == ["mean 20"]


def test_disabled_cache_computes_every_time(settings: None) -> None:
    configure(vision__cache=False, vision__change_detection=False)
    cache, eng = RecognitionCache(), CountingEngine()
    frame = _frame()
    cache.ocr(frame, engine=eng)
    cache.ocr(frame, engine=eng)
    assert eng.calls == 2 and len(cache) == 0


def test_entries_and_bytes_are_bounded(settings: None) -> None:
    configure(vision__change_detection=False)
    cache, eng = RecognitionCache(max_entries=3), CountingEngine()
    frames = [_frame(seq=i) for i in range(1, 6)]
    for f in frames:
        cache.ocr(f, engine=eng)
    assert len(cache) == 3 and cache.stats["evictions"] == 2
    cache.ocr(frames[-1], engine=eng)  # the newest stayed
    assert eng.calls == 5
    cache.ocr(frames[0], engine=eng)  # the oldest went
    assert eng.calls == 6
    small = RecognitionCache(max_bytes=2048)
    for i in range(1, 40):
        small.ocr(_frame(seq=i), engine=eng)
    assert small.nbytes <= 2048 and 0 < len(small) < 39


def test_results_do_not_keep_frames_alive(settings: None) -> None:
    configure(vision__change_detection=False)
    cache, eng = RecognitionCache(), CountingEngine()
    frame = _frame()
    root = weakref.ref(frame.image.base if frame.image.base is not None else frame.image)
    cache.ocr(frame, engine=eng)
    del frame
    gc.collect()
    assert root() is None and len(cache) == 1


def test_unchanged_region_reuses_the_result_and_a_change_reads_again(settings: None) -> None:
    configure(vision__change_detection=True, vision__change_threshold=4.0)
    cache, eng = RecognitionCache(), CountingEngine()
    rng = np.random.default_rng(1)
    base = np.full((96, 160, 3), 128, np.uint8)
    for seq in range(1, 6):  # new frames, same screen, a little sensor noise
        noisy = np.clip(base.astype(np.int16) + rng.integers(-3, 4, base.shape), 0, 255)
        got = cache.ocr(Frame(noisy.astype(np.uint8), seq=seq, source_id="test://noise"),
                        engine=eng, rec_only=True)
        assert got.texts == ["mean 128"]
    assert eng.calls == 1 and cache.stats["unchanged"] == 4
    changed = Frame(np.full((96, 160, 3), 60, np.uint8), seq=6, source_id="test://noise")
    assert cache.ocr(changed, engine=eng, rec_only=True).texts == ["mean 60"]
    assert eng.calls == 2
    # another region of the same frames is its own reference
    cache.ocr(changed, (0, 0, 40, 40), engine=eng, rec_only=True)
    assert eng.calls == 3


def test_a_full_read_rereads_only_the_changed_lines() -> None:
    lines = [("Hello kvmrpa 123", (30, 30), 28), ("测试", (30, 110), 28),
             ("Cancel OK 确定", (420, 110), 26)]
    before = render_lines(lines, (800, 200))
    after = render_lines([*lines[:2], ("状态 Ready", (420, 110), 26)], (800, 200))
    cache = RecognitionCache()
    first = cache.ocr(Frame(before, seq=1, source_id="test://lines"))
    assert sorted(first.texts) == sorted(t for t, _, _ in lines)
    second = cache.ocr(Frame(after, seq=2, source_id="test://lines"))
    assert sorted(second.texts) == sorted(["Hello kvmrpa 123", "测试", "状态 Ready"])
    assert cache.stats["partial"] == 1
    kept = {b.text: b for b in first}
    assert second.filter("测试", "exact")[0] is kept["测试"]  # untouched lines were not re-read
    # and back: the old line is read again, nothing of the new one stays
    third = cache.ocr(Frame(before, seq=3, source_id="test://lines"))
    assert sorted(third.texts) == sorted(t for t, _, _ in lines)


def test_process_wide_cache_serves_nodes_views_and_matching(settings: None) -> None:
    configure(vision__change_detection=False)
    screen = render_lines([("确定", (40, 20), 28)], (240, 80))
    frame = Frame(screen, seq=7, source_id="test://shared")
    cache = get_recognition_cache()
    a = shared_ocr(frame, rec_only=True)
    b = shared_ocr(frame, rec_only=True, min_confidence=0.5)
    assert a.texts == b.texts == ["确定"]
    hits = cache.stats["hits"]
    shared_ocr(frame, rec_only=True)
    assert cache.stats["hits"] == hits + 1
    tpl = Template(screen[15:60, 35:100].copy(), name="ok")
    m1 = shared_match_template(frame, tpl, threshold=0.9)
    m2 = shared_match_template(frame, Template(screen[15:60, 35:100].copy(), name="ok"),
                               threshold=0.9)
    assert m1 is m2 and len(m1) == 1  # the same template content is the same key
    assert shared_match_template(frame, tpl, threshold=0.95) is not m1

"""SourceHub and the URL registry: one capture per URL, refcount, linger."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kvmrpa import CaptureError, UrlError
from kvmrpa.capture import (
    SOURCES,
    FrameSource,
    SourceHub,
    SourceState,
    register_source,
    registered_schemes,
    source_key,
)

from .conftest import ManualSource, wait_until


class Counting:
    """A factory that counts how many sources it built."""

    def __init__(self) -> None:
        self.built: list[ManualSource] = []
        self.lock = threading.Lock()

    def __call__(self, url: str) -> FrameSource:
        src = ManualSource(url)
        with self.lock:
            self.built.append(src)
        return src


@pytest.fixture
def counting() -> Iterator[Counting]:
    factory = Counting()
    with SOURCES.temporarily("counting", factory):
        yield factory
    for src in factory.built:
        src.stop()


def test_ten_flows_and_two_viewers_share_one_capture(counting: Counting) -> None:
    hub = SourceHub(linger=0)
    got: list[FrameSource] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def user() -> None:
        barrier.wait()
        src = hub.open("counting://kvm-1/stream")
        with lock:
            got.append(src)

    threads = [threading.Thread(target=user) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(counting.built) == 1
    src = counting.built[0]
    assert all(g is src for g in got) and len(got) == 12
    assert src.starts == 1 and src.running
    assert hub.refcounts() == {"counting://kvm-1/stream": 12}
    for g in got[:-1]:
        hub.release(g)
    assert src.running and src.stops == 0
    hub.release(got[-1])
    assert src.stops == 1 and src.state == SourceState.STOPPED
    assert hub.refcounts() == {}
    hub.close()


def test_equivalent_urls_share_and_different_urls_do_not(counting: Counting) -> None:
    with SourceHub(linger=0) as hub:
        a = hub.open("counting://KVM-1/stream")
        b = hub.open("COUNTING://kvm-1/stream#fragment")
        c = hub.open("counting://kvm-2/stream")
        assert a is b and a is not c
        assert len(counting.built) == 2
    assert all(s.stops == 1 for s in counting.built)  # close() stopped everything


def test_linger_keeps_a_released_source_for_a_quick_reopen(counting: Counting) -> None:
    hub = SourceHub(linger=60)
    try:
        first = hub.open("counting://a")
        hub.release(first)
        assert first.running  # lingering
        assert hub.refcounts() == {"counting://a": 0}
        again = hub.open("counting://a")
        assert again is first and len(counting.built) == 1
        hub.release(again)
    finally:
        hub.close()
    assert not first.running and first.stops == 1


def test_the_source_stops_after_the_linger_expires(counting: Counting) -> None:
    hub = SourceHub(linger=0.05)
    src = hub.open("counting://b")
    hub.release(src)
    wait_until(lambda: not src.running, 10, "the lingering source to stop")
    assert hub.refcounts() == {}
    fresh = hub.open("counting://b")
    assert fresh is not src and len(counting.built) == 2
    hub.release(fresh)
    hub.close()


def test_use_releases_on_every_path(counting: Counting) -> None:
    hub = SourceHub(linger=0)
    with pytest.raises(RuntimeError), hub.use("counting://c") as src:
        assert hub.refcounts() == {"counting://c": 1}
        raise RuntimeError("flow failed")
    assert not src.running and hub.refcounts() == {}
    hub.close()


def test_release_errors_name_the_source(counting: Counting) -> None:
    hub = SourceHub(linger=60)
    src = hub.open("counting://d")
    hub.release(src)
    with pytest.raises(CaptureError, match="counting://d"):
        hub.release(src)
    stranger = ManualSource("manual://stranger")
    with pytest.raises(CaptureError, match="not opened through this hub"):
        hub.release(stranger)
    hub.close()
    with pytest.raises(CaptureError, match="closed"):
        hub.open("counting://d")


def test_unknown_scheme_is_a_url_error_listing_the_known_ones() -> None:
    hub = SourceHub(linger=0)
    with pytest.raises(UrlError) as info:
        hub.open("garbage://host/x")
    assert "garbage" in str(info.value) and "rtsp" in str(info.value)
    hub.close()


def test_builtin_schemes_are_registered() -> None:
    schemes = registered_schemes()
    for scheme in ("rtsp", "rtsps", "http", "https", "file", "device"):
        assert scheme in schemes


def test_source_key_treats_plain_paths_as_file_urls(tmp_path) -> None:
    p = tmp_path / "clip.mp4"
    assert source_key(str(p)) == f"file://{p}"
    assert source_key(f"file://{p}") == f"file://{p}"
    assert source_key(f"file://{p}?loop=1&fps=5") == f"file://{p}?fps=5&loop=1"
    assert source_key("RTSP://User:pw@KVM.local:554/s") == "rtsp://User:pw@kvm.local:554/s"
    with pytest.raises(UrlError):
        source_key("  ")


def test_a_factory_error_leaves_nothing_behind(counting: Counting, tmp_path) -> None:
    hub = SourceHub(linger=0)
    with pytest.raises(CaptureError):
        hub.open(str(tmp_path / "missing.png"))
    assert hub.refcounts() == {}
    hub.close()


def test_register_source_validates_its_arguments() -> None:
    with pytest.raises(UrlError):
        register_source("bad scheme", ManualSource)
    with pytest.raises(TypeError):
        register_source("notcallable", "nope")  # type: ignore[arg-type]


def test_a_finished_lingering_source_is_replaced_on_reopen(counting: Counting) -> None:
    hub = SourceHub(linger=60)
    try:
        src = hub.open("counting://e")
        src._set_state(SourceState.STOPPED, "end of file")
        hub.release(src)
        again = hub.open("counting://e")
        assert again is not src and again.running
        assert src.stops == 1 and len(counting.built) == 2
        hub.release(again)
    finally:
        hub.close()


class SlowToStop(ManualSource):
    """Stopping blocks until the test lets it go (a reader stuck in FFmpeg)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.stopping = threading.Event()
        self.let_go = threading.Event()

    def _stop(self) -> None:
        self.stopping.set()
        self.let_go.wait(60)
        super()._stop()


def test_replacing_a_finished_source_does_not_hold_the_hub() -> None:
    built: list[SlowToStop] = []
    register_source("slowstop", lambda url: built.append(SlowToStop(url)) or built[-1])
    hub = SourceHub(linger=60)
    try:
        first = hub.open("slowstop://cam")
        hub.release(first)  # lingering
        first._set_state(SourceState.STOPPED, "gave up")  # finished while lingering
        reopened: list[FrameSource] = []
        opener = threading.Thread(target=lambda: reopened.append(hub.open("slowstop://cam")))
        opener.start()
        assert built[0].stopping.wait(30)
        # while the finished source is still stopping, the hub answers everyone else
        other = threading.Thread(target=hub.refcounts)
        other.start()
        other.join(30)
        assert not other.is_alive(), "the hub lock was held while a source stopped"
        built[0].let_go.set()
        opener.join(30)
        assert reopened and reopened[0] is built[1] and reopened[0] is not first
        assert hub.refcounts() == {"slowstop://cam": 1}
    finally:
        for src in built:
            src.let_go.set()
        hub.close()

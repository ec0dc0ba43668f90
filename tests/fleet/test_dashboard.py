"""The fleet dashboard's grid model (:class:`FleetBoard`) on a stand-in cluster, the
worker-side thumbnailer on a real simulated desktop, and the page's card markup."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import pytest

from kvmrpa import FleetError
from kvmrpa.engine import Flow
from kvmrpa.fleet import Target, TargetResult
from kvmrpa.fleet._board import MAX_THUMB_FPS, FleetBoard, label_filter, matches_filter
from kvmrpa.fleet._thumbs import Thumbnailer


def _targets(n: int = 4) -> list[Target]:
    return [Target(f"t{i}", f"sim://desktop?seed={i}", f"sim://desktop?seed={i}",
                   {"room": "b2" if i % 2 else "a1", "os": "win11" if i < 2 else "linux"})
            for i in range(n)]


def _flow(name: str = "f") -> Flow:
    flow = Flow(name)
    flow.add("wait", "w", ms=1)
    return flow


class FakeExecution:
    """A fleet execution the test drives: it reports when told to, records stops."""

    def __init__(self, backend: FakeBackend, targets: Sequence[Target]) -> None:
        self.backend, self.targets = backend, list(targets)
        self.stopped: list[list[str] | None] = []
        self.release = threading.Event()
        self.options: dict[str, Any] = {}

    def execute(self, flow: Any, **options: Any) -> None:
        self.options = options
        options["on_start"]({"workers": self.backend.workers(), "dashboard": None})
        self.backend.started.set()
        assert self.release.wait(30), "the test never released the execution"
        for t in self.targets:
            status = self.backend.outcomes.get(t.id, "ok")
            if self.stopped and any(s is None or t.id in s for s in self.stopped):
                status = "stopped"
            options["on_result"](TargetResult(t.id, status, passes=1,
                                              worker=options["placement"].get(t.id)))

    def stop(self, targets: Iterable[str] | None = None) -> None:
        self.stopped.append(None if targets is None else list(targets))


class FakeBackend:
    dashboard_link = "http://127.0.0.1:8787/status"

    def __init__(self, workers: Sequence[str] = ("tcp://w1", "tcp://w2")) -> None:
        self._workers = list(workers)
        self.executions: list[FakeExecution] = []
        self.outcomes: dict[str, str] = {}
        self.started = threading.Event()
        self.asked: list[tuple[dict[str, dict[str, str]], int]] = []
        self.released: list[dict[str, set[str]] | None] = []
        self.closed = False
        self.seq = 0

    def open(self) -> None:
        pass

    def workers(self) -> list[str]:
        return list(self._workers)

    def fleet(self, targets: Sequence[Target]) -> FakeExecution:
        ex = FakeExecution(self, targets)
        self.executions.append(ex)
        return ex

    def thumbnails(self, assignment: Mapping[str, Mapping[str, str]], width: int,
                   quality: int) -> dict[str, dict[str, Any]]:
        self.asked.append(({w: dict(s) for w, s in assignment.items()}, width))
        self.seq += 1
        out = {}
        for sources in assignment.values():
            for tid in sources:
                out[tid] = ({"error": "source down"} if tid == "t3" else
                            {"seq": self.seq, "jpeg": b"\xff\xd8" + tid.encode(),
                             "width": width, "height": width // 2})
        return out

    def release_thumbnails(self, keep: Mapping[str, Collection[str]] | None) -> None:
        self.released.append(None if keep is None else {w: set(i) for w, i in keep.items()})

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def board() -> Any:
    backend = FakeBackend()
    b = FleetBoard(_targets(), backend, flows={"f": _flow()})
    # placed, but no thumbnail thread: the tests ask for thumbnails themselves
    b.backend.open()
    b._place()
    yield b
    for ex in backend.executions:
        ex.release.set()
    b.close()


def test_targets_are_spread_over_the_workers_and_keep_their_place(board: FleetBoard) -> None:
    placed = {t.id: t.worker for t in board.snapshot()}
    assert placed == {"t0": "tcp://w1", "t1": "tcp://w2", "t2": "tcp://w1", "t3": "tcp://w2"}
    board.backend._workers.remove("tcp://w1")  # a worker left: its targets move
    board._place()
    assert {t.id: t.worker for t in board.snapshot()} == dict.fromkeys(placed, "tcp://w2")


def test_label_filter_ors_values_of_one_label_and_ands_labels(board: FleetBoard) -> None:
    assert board.labels() == ["os=linux", "os=win11", "room=a1", "room=b2"]
    assert [t.id for t in board.snapshot(["room=b2"])] == ["t1", "t3"]
    assert [t.id for t in board.snapshot(["room=b2", "room=a1"])] == ["t0", "t1", "t2", "t3"]
    assert [t.id for t in board.snapshot(["room=b2", "os=win11"])] == ["t1"]
    assert [t.id for t in board.snapshot(["id=t2"])] == ["t2"]
    assert label_filter(["a=1", "a=2"]) == {"a": {"1", "2"}}
    assert not matches_filter("x", {}, {"room": {"b2"}})
    with pytest.raises(FleetError, match="label filter 'room': expected LABEL=VALUE"):
        board.snapshot(["room"])


def test_start_runs_on_the_tiles_workers_and_records_outcomes(board: FleetBoard) -> None:
    backend = board.backend
    backend.outcomes = {"t1": "failed"}
    started = board.start(["t0", "t1"], "f", passes=3)
    assert started == ["t0", "t1"]
    assert backend.started.wait(10)
    assert {t.id: t.state for t in board.snapshot()} == {
        "t0": "running", "t1": "running", "t2": "idle", "t3": "idle"}
    assert board.start(["t0", "t2"], "f") == ["t2"]  # t0 is running already
    (ex, ex2) = backend.executions
    assert [t.id for t in ex.targets] == ["t0", "t1"]
    ex.release.set()
    ex2.release.set()
    assert board.wait_idle(10)
    assert ex.options["placement"] == {"t0": "tcp://w1", "t1": "tcp://w2"}
    assert ex.options["passes"] == 3
    t0, t1 = board.tile("t0"), board.tile("t1")
    assert (t0.state, t0.runs, t0.oks, t0.pass_rate) == ("ok", 1, 1, 1.0)
    assert (t1.state, t1.runs, t1.oks, t1.pass_rate) == ("failed", 1, 0, 0.0)
    assert board.tile("t3").pass_rate is None
    assert board.counts()["ok"] == 2 and board.counts()["failed"] == 1


def test_stop_goes_to_the_execution_that_runs_the_target(board: FleetBoard) -> None:
    backend = board.backend
    board.start(["t0", "t1"], "f", passes=0)
    assert backend.started.wait(10)
    assert board.stop(["t1", "t2"]) == ["t1"]  # t2 is not running
    (ex,) = backend.executions
    assert ex.stopped == [["t1"]]
    assert board.tile("t1").state == "stopping"
    assert board.tile("t0").state == "running"
    ex.release.set()
    assert board.wait_idle(10)
    # a user's stop is not a failed run: it does not count in the pass rate
    assert (board.tile("t1").state, board.tile("t1").runs) == ("stopped", 0)
    assert board.tile("t0").state == "ok"


def test_stop_all_reaches_every_active_execution(board: FleetBoard) -> None:
    backend = board.backend
    board.start(["t0"], "f", passes=0)
    board.start(["t2", "t3"], "f", passes=0)
    assert board.stop() == ["t0", "t2", "t3"]
    assert [ex.stopped for ex in backend.executions] == [[["t0"]], [["t2", "t3"]]]


def test_a_start_that_fails_marks_its_targets_failed(board: FleetBoard) -> None:
    class Broken(FakeExecution):
        def execute(self, flow: Any, **options: Any) -> None:
            raise FleetError("fewer than 2 Dask worker(s) joined within 30 s")

    board.backend.fleet = lambda targets: Broken(board.backend, targets)  # type: ignore[method-assign]
    board.start(["t0"], "f")
    assert board.wait_idle(10)
    tile = board.tile("t0")
    assert tile.state == "failed" and "fewer than 2" in (tile.last.error or "")
    assert board.take_errors() == ["start on 1 target(s): fewer than 2 Dask worker(s) "
                                   "joined within 30 s"]
    assert board.take_errors() == []


def test_bad_starts_are_one_line_errors(board: FleetBoard) -> None:
    with pytest.raises(FleetError, match="no flow 'nope' on this dashboard; have: f"):
        board.start(["t0"], "nope")
    with pytest.raises(FleetError, match="no target 'zz' on this dashboard"):
        board.start(["zz"], "f")
    with pytest.raises(FleetError, match=r"passes -1 is outside"):
        board.start(["t0"], "f", passes=-1)
    with pytest.raises(FleetError, match=r"thumb_fps 2 is outside \(0, 1\]"):
        FleetBoard(_targets(), FakeBackend(), thumb_fps=2)
    assert MAX_THUMB_FPS == 1.0


def test_thumbnails_come_per_worker_and_errors_stay_on_their_tile(board: FleetBoard) -> None:
    assert board.refresh_thumbnails() == 3
    (asked, width), = board.backend.asked
    assert asked == {"tcp://w1": {"t0": "sim://desktop?seed=0", "t2": "sim://desktop?seed=2"},
                     "tcp://w2": {"t1": "sim://desktop?seed=1", "t3": "sim://desktop?seed=3"}}
    assert width == 240
    t0, t3 = board.tile("t0"), board.tile("t3")
    assert t0.thumb == b"\xff\xd8t0" and t0.thumb_size == (240, 120)
    assert t3.thumb is None and t3.thumb_error == "source down"
    v = t3.version
    board.refresh_thumbnails()  # the same error again changes nothing
    assert board.tile("t3").version == v


def test_the_closer_look_asks_its_worker_for_a_larger_picture(board: FleetBoard) -> None:
    board.focus("t1", 640)
    board.refresh_thumbnails()
    _grid, detail = board.backend.asked
    assert detail == ({"tcp://w2": {"t1@detail": "sim://desktop?seed=1"}}, 640)
    assert board.detail()["target"] == "t1" and board.detail()["width"] == 640
    board.focus(None)
    assert board.detail() is None
    with pytest.raises(FleetError, match="no target 'zz'"):
        board.focus("zz")


def test_thumbnails_are_fetched_only_while_watched() -> None:
    backend = FakeBackend()
    board = FleetBoard(_targets(2), backend, thumb_fps=1.0)
    board._watched = -1e9  # nobody looked
    board.open()
    try:
        board._closed.wait(1.3)
        assert backend.asked == []
        board.snapshot()  # a page looks: thumbnails start within one period
        for _ in range(100):
            if backend.asked:
                break
            board._closed.wait(0.05)
        assert backend.asked
    finally:
        board.close()
    assert backend.closed


def test_the_board_owns_its_thumbnail_sources_and_gives_them_back(board: FleetBoard) -> None:
    backend = board.backend
    board.refresh_thumbnails()
    assert board.held == {"tcp://w1": {"t0", "t2"}, "tcp://w2": {"t1", "t3"}}
    assert backend.released == []  # nothing to give back yet
    board.focus("t1", 640)
    board.refresh_thumbnails()
    assert board.held["tcp://w2"] == {"t1", "t3", "t1@detail"} and backend.released == []
    board.focus(None)  # the closer look closed: its source goes back at the next refresh
    board.refresh_thumbnails()
    assert backend.released == [{"tcp://w1": {"t0", "t2"}, "tcp://w2": {"t1", "t3"}}]
    backend._workers = ["tcp://w1"]  # w2 left: its targets move, and nothing stays there
    board.refresh_thumbnails()
    assert backend.released[-1] == {"tcp://w1": {"t0", "t1", "t2", "t3"}}
    assert board.held == {"tcp://w1": {"t0", "t1", "t2", "t3"}}
    board.release_thumbnails()  # nobody watches: every source goes back, once
    board.release_thumbnails()
    assert backend.released[-1] is None and len(backend.released) == 3
    assert board.held == {}


def test_thumbnail_sources_go_back_when_nobody_watches() -> None:
    backend = FakeBackend()
    board = FleetBoard(_targets(2), backend, thumb_fps=1.0)
    board.open()
    try:
        board.snapshot()  # a page looks
        for _ in range(100):
            if board.held:
                break
            board._closed.wait(0.05)
        assert board.held and backend.released == []
        board._watched = -1e9  # the page went away (WATCH_TTL passed)
        for _ in range(100):
            if not board.held:
                break
            board._closed.wait(0.05)
        assert board.held == {} and backend.released == [None]
    finally:
        board.close()


def test_close_stops_the_active_runs() -> None:
    backend = FakeBackend()
    board = FleetBoard(_targets(2), backend, flows={"f": _flow()})
    board.open()
    board.start(["t0", "t1"], "f", passes=0)
    assert backend.started.wait(10)
    (ex,) = backend.executions
    threading.Timer(0.2, ex.release.set).start()
    board.close()
    assert ex.stopped == [["t0", "t1"]]
    assert backend.closed
    with pytest.raises(FleetError, match="closed"):
        board.start(["t0"], "f")


# -- the worker side: thumbnails of a real simulated desktop ---------------------------------
def test_thumbnailer_encodes_small_jpegs_once_per_frame_and_releases() -> None:
    import cv2
    import numpy as np

    url = "sim://desktop?seed=77&fps=5"
    thumbs = Thumbnailer()
    try:
        got: dict[str, Any] = {}
        for _ in range(200):
            got = thumbs.grab({"a": url, "down": "nosuchscheme://x"},
                              width=200)
            if "jpeg" in got["a"]:
                break
            threading.Event().wait(0.05)
        a = got["a"]
        image = cv2.imdecode(np.frombuffer(a["jpeg"], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[1] == a["width"] == 200 and a["frame_width"] > 200
        assert "error" in got["down"]  # a source that is down fails alone
        assert thumbs.open_count() == 1
        again = thumbs.grab({"a": url}, width=200)["a"]
        assert "jpeg" not in again or again["seq"] > a["seq"]  # never the same frame twice
        with pytest.raises(ValueError, match=r"width 5000 is outside \[32, 1280\]"):
            thumbs.grab({"a": url}, width=5000)
    finally:
        thumbs.close()
    assert thumbs.open_count() == 0
    assert "closed" in thumbs.grab({"a": url})["a"]["error"]


def _desktop_alive(url: str) -> bool:
    """Whether the simulated desktop of ``url`` still exists (kept by a source or driver)."""
    import gc

    from kvmrpa.sim import _registry

    gc.collect()
    _, key = _registry.parse_sim_url(url)
    with _registry._lock:
        return _registry._desktops.get(key) is not None


def test_thumbnail_sources_are_released_and_free_the_simulated_desktop() -> None:
    from kvmrpa import configure, get_settings

    old_linger = get_settings().capture.hub_linger
    configure(capture__hub_linger=0)  # a released source stops at once
    try:
        _check_release("sim://desktop?seed=81&fps=5", "sim://desktop?seed=82&fps=5")
    finally:
        configure(capture__hub_linger=old_linger)


def _check_release(a: str, b: str) -> None:
    import gc

    from kvmrpa.capture import get_hub

    thumbs = Thumbnailer()
    try:
        for _ in range(200):
            got = thumbs.grab({"a": a, "b": b}, width=120)
            if "jpeg" in got["a"] and "jpeg" in got["b"]:
                break
            threading.Event().wait(0.05)
        hub = get_hub()
        ra, rb = (hub.refs(thumbs._open[t].source) for t in ("a", "b"))
        assert (ra, rb) == (1, 1) and thumbs.open_ids() == ["a", "b"]
        assert _desktop_alive(a) and _desktop_alive(b)
        reaper = thumbs._reaper
        assert reaper is not None and reaper.is_alive()
        assert thumbs.release(keep=["b"]) == ["a"]  # "a" left this worker
        assert thumbs.open_ids() == ["b"] and not _desktop_alive(a) and _desktop_alive(b)
        assert thumbs.release_idle(60.0) == []  # "b" was asked for just now
        assert thumbs.release_idle(0.0) == ["b"]  # nobody asked since
        assert thumbs.open_count() == 0 and not _desktop_alive(b)
        assert "jpeg" in thumbs.grab({"a": a})["a"] or _desktop_alive(a)  # reopens on demand
        assert thumbs.release() == ["a"] and not _desktop_alive(a)
    finally:
        thumbs.close()
    assert reaper is not None and not reaper.is_alive()
    # a thumbnailer dropped without close() (its actor released) gives its sources back
    dropped = Thumbnailer()
    dropped.grab({"c": a})
    assert _desktop_alive(a)
    reaper = dropped._reaper
    del dropped
    gc.collect()
    assert not _desktop_alive(a)
    assert reaper is not None
    reaper.join(5)
    assert not reaper.is_alive()


# -- the page's markup -----------------------------------------------------------------------
def test_card_shows_state_outcome_rate_and_escapes() -> None:
    from kvmrpa.widgets._fleet import card_html

    from kvmrpa.fleet._board import Tile

    tile = Tile("t<1>", {"room": "b&2"}, state="failed", worker="tcp://w1",
                last=TargetResult("t<1>", "failed", passes=2, error="node <x> failed"),
                runs=4, oks=3, thumb=b"\xff\xd8", thumb_size=(240, 150), thumb_seq=9)
    out = card_html(tile)
    assert 'data-state="failed"' in out and 'data-target="t&lt;1&gt;"' in out
    assert "pass rate: 75% of 4 runs" in out
    assert "node &lt;x&gt; failed" in out and "room=b&amp;2" in out
    assert 'src="data:image/jpeg;base64,/9g="' in out and 'data-seq="9"' in out
    missing = card_html(Tile("t2", {}, thumb_error="connection refused"))
    assert "connection refused" in missing and "<img" not in missing


# -- on a real LocalCluster ----------------------------------------------------------------
def _hub_refs() -> dict[str, int]:
    """(On a worker.) The references its source hub holds, by source."""
    from kvmrpa.capture import get_hub

    return get_hub().refcounts()


@pytest.mark.timeout(240)
def test_one_target_stops_alone_on_its_own_worker(home: Any, tmp_path: Any) -> None:
    from kvmrpa.fleet._board import DaskBackend

    from .conftest import marker_flow, records

    flow = marker_flow("loop", wait_ms=40, loop=True)
    flow.nodes["mark"].node.code = "open(variables['marker'], 'a').write('x')"
    marks = {tid: tmp_path / tid for tid in ("s0", "s1")}
    targets = [Target(tid, f"sim://desktop?seed={40 + i}&fps=5", f"sim://desktop?seed={40 + i}&fps=5",
                      variables={"marker": str(marks[tid])}) for i, tid in enumerate(marks)]
    board = FleetBoard(targets, DaskBackend(local=2, dashboard=False), flows={"loop": flow})
    board.open()
    try:
        placed = {t.id: t.worker for t in board.snapshot()}
        assert len(set(placed.values())) == 2  # one target per worker
        board.start(["s0", "s1"], "loop")

        def passes(tid: str) -> int:
            return len(marks[tid].read_text()) if marks[tid].exists() else 0

        deadline = threading.Event()
        for _ in range(1500):
            if passes("s0") >= 3 and passes("s1") >= 3:
                break
            deadline.wait(0.1)
        assert board.stop(["s0"]) == ["s0"]
        for _ in range(600):
            if board.tile("s0").state == "stopped":
                break
            deadline.wait(0.1)
        assert board.tile("s0").state == "stopped"
        before = passes("s1")
        for _ in range(600):  # s1 keeps running
            if passes("s1") > before + 2:
                break
            deadline.wait(0.1)
        assert board.tile("s1").state == "running" and passes("s1") > before + 2
        assert board.stop() == ["s1"]
        assert board.wait_idle(90)
        assert board.tile("s1").state == "stopped"
        for tid in marks:  # each ran where its tile (and its thumbnail) is
            assert board.tile(tid).last.worker == placed[tid]
        # the thumbnails' sources are held on the workers while someone watches, and
        # given back (refcount 0 in each worker's hub) once nobody does
        client = board.backend._client

        def refs() -> int:
            return sum(sum(c.values()) for c in client.run(_hub_refs).values())

        board.snapshot()
        for _ in range(300):
            if refs() >= 2:
                break
            deadline.wait(0.1)
        assert refs() == 2 and set().union(*board.held.values()) == {"s0", "s1"}
        board._watched = -1e9  # the page went away
        for _ in range(300):
            if refs() == 0:
                break
            deadline.wait(0.1)
        assert refs() == 0 and board.held == {}
    finally:
        board.close()
    from tests.fixtures.input_probe import record_after_stop

    recs = records(home / "runs")
    for tid in marks:
        (lines,) = recs[tid]
        last = board.tile(tid).last
        assert last.stopped_at and last.record
        # what went through after the stop (an action the closed gate refused does not)
        res = record_after_stop(last.record)
        assert res["stopped"] and res["after"] == [], f"{tid}: input after the stop: {res}"
        assert res["still_held"] == []
        assert sum(1 for a in lines if a["kind"] == "action" and a.get("ok")) >= 6

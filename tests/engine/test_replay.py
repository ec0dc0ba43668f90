"""``replay://RUN_ID``: a recorded run's frames played again, so a corrected flow runs
(and is debugged) against what the target showed, with no target and no input sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from kvmrpa import FlowRun, RunResult, SourceOpenError, configure, get_settings
from kvmrpa.capture import SOURCES, open_source, release_source
from kvmrpa.kvm import DRIVERS
from kvmrpa.sim import reset
from tests.engine.test_report import SIM, confirm_flow


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunResult]:
    """A failed run of scenario 1: the wait looks for 已确定了, the screen says 已确定."""
    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(tmp_path_factory.mktemp("replay-home")))
    try:
        reset(SIM)
        result = confirm_flow("已确定了").run(timeout=90)
        assert result.status == "failed"
        yield result
    finally:
        settings.store.home = old


@pytest.fixture
def in_store(failed_run: RunResult) -> Iterator[None]:
    """The run store of ``failed_run`` is the current one during the test."""
    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(Path(failed_run.record or "").parent.parent))
    try:
        yield
    finally:
        settings.store.home = old


def _no_simulator(url: str) -> Any:
    raise AssertionError(f"the simulator was asked for: {url}")


@pytest.mark.parametrize("speed", ["", "?speed=max"])
def test_the_corrected_flow_reaches_ok_on_the_replay_without_the_simulator(
        failed_run: RunResult, in_store: None, speed: str) -> None:
    flow = confirm_flow("已确定", wait_timeout=20.0)  # the corrected flow
    with SOURCES.temporarily("sim", _no_simulator), DRIVERS.temporarily("sim", _no_simulator):
        result = flow.run(timeout=90, source=f"replay://{failed_run.run_id}{speed}")
    assert result.status == "ok", result.error
    assert result.source["input"] == "dryrun://replay"  # nothing is sent anywhere
    assert result.source["url"].startswith(f"replay://{failed_run.run_id}")
    assert [(a["action"], a["args"]["x"], a["args"]["y"]) for a in result.actions] == [
        (a["action"], a["args"]["x"], a["args"]["y"]) for a in failed_run.actions]


def test_the_debugger_works_on_a_replay(failed_run: RunResult, in_store: None) -> None:
    flow = confirm_flow("已确定", wait_timeout=20.0)
    run = FlowRun(flow, source=f"replay://{failed_run.run_id}?speed=max",
                  breakpoints=["click"]).start()
    try:
        run.debugger.wait_paused(60)
        assert run.paused_at == "click"
        assert "确定" in [t.text for t in run.nodes["read"].output["texts"]]  # type: ignore[index]
        assert not run.actions  # held before the click
        run.debugger.resume()
        result = run.result(60)
    finally:
        run.stop()
    assert result.status == "ok", result.error
    assert [a["action"] for a in result.actions] == ["click"]


def _record(store: Path, run_id: str, times: list[float], frames: bool = True) -> None:
    """A hand-made record whose frames are plain colours (frame i has blue = 40 * i)."""
    runs = store / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rec = runs / f"{run_id}-hand.jsonl"
    rec.write_text("{}\n", encoding="utf-8")  # first: retention drops frames without one
    folder = runs / f"{run_id}-hand.frames"
    folder.mkdir()
    lines: list[dict[str, Any]] = [{"kind": "run", "run_id": run_id, "flow": "hand",
                                    "source": "sim://x"}]
    for i, t in enumerate(times):
        name = f"p00001-{i + 1:05d}.jpg"
        if frames:
            img = np.full((60, 80, 3), (40 * i, 0, 0), np.uint8)
            (folder / name).write_bytes(cv2.imencode(".jpg", img)[1].tobytes())
        lines.append({"kind": "frame", "file": name, "t": t, "seq": i + 1, "source": "sim://x",
                      "width": 80, "height": 60, "full": True})
    lines.append({"kind": "flow_finished", "status": "ok"})
    rec.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def _blue(frame: Any) -> int:
    return round(float(frame.image[..., 0].mean()) / 40)


def test_frames_play_in_order_with_their_timing_then_the_last_one_holds(store: Path) -> None:
    _record(store.parent, "20260101-000000-aaaa0001", [0.0, 1.5, 1.6])

    async def watch(url: str) -> list[int]:
        src = open_source(url)
        try:
            seen: list[int] = []
            first = await src.next_frame(None, 10)
            seen.append(_blue(first))
            if "max" not in url:  # the second frame is due 1.5 s later: not there yet
                assert _blue(src.latest()) == 0
            after = first.seq
            while len(seen) < 5:
                frame = await src.next_frame(after, 10)
                after = frame.seq
                seen.append(_blue(frame))
            return seen
        finally:
            release_source(src)

    assert asyncio.run(watch("replay://20260101-000000-aaaa0001"))[:3] == [0, 1, 2]
    seen = asyncio.run(watch("replay://20260101-000000-aaaa0001?speed=max&hold_fps=50"))
    assert seen == [0, 1, 2, 2, 2]  # as fast as taken, none skipped, then the last holds


@pytest.mark.parametrize(("url", "says"), [
    ("replay://no-such-run", "no run record 'no-such-run'"),
    ("replay://20260101-000000-aaaa0002", "kept no frames"),
    ("replay://20260101-000000-aaaa0003", "frames are gone"),
    ("replay://20260101-000000-aaaa0003?speed=fast", "speed must be"),
    ("replay://20260101-000000-aaaa0003?pace=1", "unknown parameter(s) pace"),
    ("replay://", "name the run"),
])
def test_bad_replays_are_one_line_errors(store: Path, url: str, says: str) -> None:
    _record(store.parent, "20260101-000000-aaaa0002", [])
    _record(store.parent, "20260101-000000-aaaa0003", [0.0, 1.0], frames=False)
    with pytest.raises(Exception) as info:
        open_source(url)
    assert says in str(info.value) and "\n" not in str(info.value)
    if "speed" not in says and "parameter" not in says and "name the" not in says:
        assert isinstance(info.value, SourceOpenError)

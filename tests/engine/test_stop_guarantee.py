"""Stop is a guarantee: once stop is requested no input primitive of the run reaches the
target, a cut action leaves nothing pressed, and a paused run sends nothing."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from kvmrpa import FlowRun
from kvmrpa.engine import Flow, FlowManager, NodeStatus
from kvmrpa.kvm import InputGate, bind_gate, unbind_gate
from kvmrpa.kvm._dryrun import DryRunDriver
from kvmrpa.sim import get_desktop
from tests.fixtures.input_probe import InputProbe, fast_click_flow, record_after_stop

URL = "sim://scenario1?seed=3&reset=0"


def _wait(pred: Any, what: str, timeout: float = 20.0) -> None:
    import time

    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_stop_at_50_random_moments_sends_nothing_after_and_leaves_nothing_held(
        store: Any) -> None:
    desktop = get_desktop(URL)
    probe = InputProbe(desktop)
    rng = random.Random(14)
    late_in_record = cut_actions = 0
    manager = FlowManager()  # half the stops come the way the dashboard's do
    try:
        for trial in range(50):
            flow = fast_click_flow(URL, f"clicker{trial}")
            via_manager = trial % 2 == 1
            if via_manager:
                manager.add(flow)
                run = manager.start(flow.name, record=True)
            else:
                run = FlowRun(flow, record=True)
                run.start()
            start = probe.count()
            # some input must have gone out, then a random moment within the next few ms
            _wait(lambda: probe.count() > start, "the first click")  # noqa: B023
            _wait_some(rng.random() * 0.02)
            result = manager.stop(flow.name) if via_manager else run.stop(timeout=20)
            moment = run.stop_requested_at
            assert result is not None and result.status == "stopped" and moment is not None
            assert probe.after(moment) == [], f"trial {trial}: input after the stop"
            assert probe.held() == set(), f"trial {trial}: left held: {probe.held()}"
            assert not any(v["status"] == "failed" for v in result.nodes.values()), result.nodes
            assert result.record is not None
            rec = record_after_stop(result.record)
            assert rec["stopped"] and rec["still_held"] == []
            late_in_record += len(rec["after"])
            cut_actions += len(rec["cut"])
        assert late_in_record == 0
    finally:
        manager.stop_all()
        probe.close()
    # the stops did land in the middle of things at least sometimes (the test can fail)
    assert len(probe.arrivals) > 200


def _wait_some(seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_node_cut_by_stop_is_stopped_not_failed() -> None:
    flow = Flow("cut")
    flow.add("wait", "w", ms=60_000)
    run = flow.start(record=False)
    sub = run.events()
    _wait(lambda: run.nodes["w"].status == "running", "the wait to start")
    result = run.stop(timeout=10)
    assert result is not None and result.status == "stopped"
    assert run.nodes["w"].status is NodeStatus.STOPPED and result.nodes["w"]["status"] == "stopped"
    kinds = []
    while (ev := sub.get(5)) is not None:
        kinds.append(ev.kind)
    assert "stop_requested" in kinds and "node_stopped" in kinds and "node_failed" not in kinds


def test_a_drag_cut_midway_releases_its_button_and_sends_nothing_more() -> None:
    drv = DryRunDriver("dryrun://cut?size=400x300")
    gate = InputGate()

    async def main() -> None:
        token = bind_gate(gate, "drag")
        try:
            task = asyncio.ensure_future(drv.drag(10, 10, 300, 200, steps=200))
            while sum(1 for a in drv.actions if a["op"] == "move") < 5:
                await asyncio.sleep(0.001)
            gate.stop()
            n = len(drv.actions)
            with pytest.raises(Exception, match="stopped"):
                await task
            after = drv.actions[n:]
        finally:
            unbind_gate(token)
        # nothing but the release of the held button after the stop
        assert after == [{"op": "button", "button": "left", "down": False}]
        assert drv.held == {"keys": [], "buttons": []}

    asyncio.run(main())


def test_key_down_held_when_the_run_stops_is_released() -> None:
    drv = DryRunDriver("dryrun://held-key")
    gate = InputGate()

    async def main() -> None:
        token = bind_gate(gate, "k")
        try:
            await drv.key_down("shift")
            await drv.key_down("ctrl")
            gate.stop()
            assert gate.held() == ["key:Control_L", "key:Shift_L"]
            assert await gate.release_held() == ["key:Shift_L", "key:Control_L"]
            await drv.key_down("alt")  # refused: nothing pressed, nothing to release
        except Exception as exc:
            assert "stopped" in str(exc)
        else:
            raise AssertionError("key_down after the stop was sent")
        finally:
            unbind_gate(token)
        assert drv.actions[-2:] == [{"op": "key", "key": "Shift_L", "down": False},
                                    {"op": "key", "key": "Control_L", "down": False}]
        assert [a for a in drv.actions if a.get("key") == "Alt_L"] == []
        assert gate.held() == [] and drv.held == {"keys": [], "buttons": []}

    asyncio.run(main())


def test_a_paused_gate_holds_input_back_until_resumed() -> None:
    drv = DryRunDriver("dryrun://paused")
    gate = InputGate()

    async def main() -> None:
        token = bind_gate(gate, "n")
        try:
            gate.pause()
            task = asyncio.ensure_future(drv.click(1, 1))
            while "n" not in gate.parked:
                await asyncio.sleep(0.001)
            assert drv.actions == []
            gate.resume()
            await task
        finally:
            unbind_gate(token)
        assert [a["op"] for a in drv.actions] == ["move", "button", "button"]

    asyncio.run(main())


def test_pausing_a_run_holds_its_input_and_pause_waits_for_parked_nodes(store: Any) -> None:
    desktop = get_desktop(URL)
    probe = InputProbe(desktop)
    try:
        run = FlowRun(fast_click_flow(URL, "pausable"), record=False)
        run.start()
        _wait(lambda: probe.count() > 0, "the first click")
        run.debugger.pause()  # returns once in-flight nodes finished or wait at the gate
        n = probe.count()
        _wait_some(0.05)
        assert probe.count() == n  # paused: nothing sent
        run.debugger.resume()
        _wait(lambda: probe.count() > n, "input after resume")
        result = run.stop(timeout=20)
        assert result is not None and result.status == "stopped"
        assert probe.held() == set()
    finally:
        probe.close()

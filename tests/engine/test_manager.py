"""FlowManager: the single thread-safe owner of active flows, under concurrent stress."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from kvmrpa import Flow, FlowManager, FlowRun, FlowStateError, get_runtime


def _flow(i: int) -> Flow:
    flow = Flow(f"f{i:02d}", variables={"n": 0})
    flow.add("variable", "inc", variable="n", operation="increment")
    flow.add("wait", "w", ms=2)
    flow.connect("inc", "w")
    return flow


async def _tasks_left() -> int:
    me = asyncio.current_task()
    return len([t for t in asyncio.all_tasks() if t is not me and not t.done()])


def test_basic_lifecycle() -> None:
    mgr = FlowManager(record=False)
    mgr.add(_flow(0))
    assert mgr.status("f00")["status"] == "idle"
    run = mgr.start("f00", passes=0)
    with pytest.raises(FlowStateError, match="already running"):
        mgr.start("f00")
    mgr.pause("f00")
    run.debugger.wait_paused()
    assert mgr.status("f00")["status"] == "paused"
    mgr.resume("f00")
    assert mgr.status("f00")["status"] == "running"
    result = mgr.stop("f00")
    assert result is not None and result.status == "stopped"
    assert mgr.stop("f00") is None  # stopping a stopped flow is a no-op
    with pytest.raises(FlowStateError, match="not running"):
        mgr.pause("f00")
    with pytest.raises(FlowStateError, match="no flow named"):
        mgr.start("nope")
    with pytest.raises(FlowStateError, match="already registered"):
        mgr.add(_flow(0))
    mgr.remove("f00")
    assert mgr.names == []


def test_stress_8_threads_1000_random_ops_over_20_flows() -> None:
    runtime = get_runtime()
    mgr = FlowManager(record=False, passes=0)
    for i in range(20):
        mgr.add(_flow(i))
    names = mgr.names
    threads_before = {t.ident for t in threading.enumerate()}
    started: list[FlowRun] = []
    started_lock = threading.Lock()
    errors: list[BaseException] = []
    counts = {"start": 0, "stop": 0, "pause": 0, "resume": 0, "status": 0, "refused": 0}
    count_lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(1000):
                name = rng.choice(names)
                op = rng.choice(("start", "stop", "pause", "resume", "status"))
                try:
                    if op == "start":
                        run = mgr.start(name)
                        with started_lock:
                            started.append(run)
                    elif op == "stop":
                        mgr.stop(name)
                    elif op == "pause":
                        mgr.pause(name)
                    elif op == "resume":
                        mgr.resume(name)
                    else:
                        st = mgr.status(name)
                        assert st["flow"] == name
                        assert st["status"] in ("idle", "running", "paused", "stopped", "ok", "failed")
                except FlowStateError:
                    with count_lock:
                        counts["refused"] += 1
                with count_lock:
                    counts[op] += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(100)
    assert not any(t.is_alive() for t in workers)
    assert errors == []
    assert sum(v for k, v in counts.items() if k != "refused") == 8000
    assert len(started) > 100 and counts["refused"] > 100  # both paths were exercised

    # invariants: no flow lost, never two active runs of one flow, statuses consistent
    assert sorted(mgr.names) == sorted(names)
    assert mgr.starts == len(started)
    for name in names:
        runs = [r for r in started if r.name == name]
        active = [r for r in runs if not r.done]
        assert len(active) <= 1
        current = mgr.run_of(name)
        if runs:
            assert current is runs[-1] or current in runs
        status = mgr.status(name)
        if active:
            assert current is active[0] and status["status"] in ("running", "paused")
        elif current is not None:
            assert status["status"] in ("stopped", "ok", "failed")
    ids = [r.run_id for r in started]
    assert len(ids) == len(set(ids))

    mgr.stop_all()
    assert all(r.done for r in started)
    assert all(r.status in ("stopped", "ok", "failed") for r in started)
    assert runtime.run(_tasks_left(), timeout=10) == 0
    leaked = [t for t in threading.enumerate()
              if t.ident not in threads_before and not t.name.startswith("kvmrpa-worker")]
    assert leaked == []


def test_a_flow_removed_while_its_run_is_starting_does_not_start() -> None:
    from typing import Any, ClassVar

    from kvmrpa import Node, register_node

    entered, release = threading.Event(), threading.Event()

    @register_node
    class GatedCheck(Node):
        """Its check (run while a start validates the flow) waits for the test."""

        type_name: ClassVar[str] = "test_gated_check"

        def check(self) -> list[tuple[str, str]]:
            if threading.current_thread() is not threading.main_thread():
                entered.set()
                release.wait(20)
            return super().check()

        async def run(self, inputs: Any, ctx: Any) -> dict[str, Any]:
            await asyncio.sleep(60)
            return {}

    flow = Flow("gated")
    flow.add("test_gated_check", "g")
    mgr = FlowManager(record=False)
    mgr.add(flow)
    starting = get_runtime().submit(mgr.astart("gated"))
    try:
        assert entered.wait(20)  # the start is validating, off the loop
        mgr.remove("gated")
    finally:
        release.set()
    with pytest.raises(FlowStateError, match="removed or replaced while it was starting"):
        starting.result(20)
    assert mgr.names == [] and mgr.run_of("gated") is None

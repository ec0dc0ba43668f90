"""The executor's semantics: concurrency, joins, skips, failures, timeouts, stop, loop mode."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import kvmrpa.capture
from kvmrpa import Flow, FlowRun
from kvmrpa.engine import Event


def _wait_for_event(run: FlowRun, sub: Any, kind: str, node: str | None = None,
                    timeout: float = 20.0) -> Event:
    while True:
        ev = sub.get(timeout)
        assert ev is not None, f"no {kind} event (run {run.status})"
        if ev.kind == kind and (node is None or getattr(ev, "node", None) == node):
            return ev


def test_independent_branches_overlap_and_the_join_waits_for_both() -> None:
    flow = Flow("par")
    flow.add("wait", "a", ms=300)
    flow.add("wait", "b", ms=300)
    flow.add("python", "join", code="seen = sorted(inputs)", outputs=["seen"])
    flow.connect("a", "join")
    flow.connect("b", "join")
    run = flow.start(record=False)
    result = run.result(30)
    assert result.status == "ok"
    a, b, j = (result.nodes[n] for n in ("a", "b", "join"))
    # both started before either finished: they ran at the same time
    assert b["started_s"] < a["finished_s"] and a["started_s"] < b["finished_s"]
    assert j["started_s"] >= max(a["finished_s"], b["finished_s"])
    assert j["runs"] == 1 and run.nodes["join"].output == {"seen": ["a", "b"]}


def test_skips_propagate_and_a_join_runs_on_its_live_inputs() -> None:
    flow = Flow("skip", variables={"x": 1})
    flow.add("condition", "c", expression="x > 5")
    flow.add("wait", "t1", ms=0)
    flow.add("wait", "t2", ms=0)
    flow.add("wait", "f1", ms=0)
    flow.add("python", "join", code="seen = sorted(inputs)", outputs=["seen"])
    flow.add("wait", "only_true", ms=0)
    flow.connect("c", "t1", branch="true")
    flow.connect("t1", "t2")
    flow.connect("t2", "only_true")
    flow.connect("c", "f1", branch="false")
    flow.connect("t2", "join")
    flow.connect("f1", "join")
    run = flow.start(record=False)
    result = run.result(30)
    statuses = {n: v["status"] for n, v in result.nodes.items()}
    assert statuses == {"c": "done", "t1": "skipped", "t2": "skipped", "f1": "done",
                        "join": "done", "only_true": "skipped"}
    assert run.nodes["join"].output == {"seen": ["f1"]}


def test_a_failure_fails_the_pass_fast_and_cancels_siblings() -> None:
    flow = Flow("fail")
    flow.add("wait", "slow", ms=60_000)
    flow.add("python", "boom", code="1 / 0")
    flow.add("wait", "after", ms=0)
    flow.connect("boom", "after")
    result = flow.run(record=False, timeout=30)
    assert result.status == "failed"
    assert "node boom" in result.error and "ZeroDivisionError" in result.error
    assert result.nodes["slow"]["status"] == "failed"  # cancelled, not waited for
    assert result.nodes["slow"]["finished_s"] < 30
    assert result.nodes["after"]["status"] == "pending"


def test_policy_continue_and_error_edges_handle_failures() -> None:
    flow = Flow("handled")
    flow.add("python", "soft", code="raise ValueError('soft')", on_error="continue")
    flow.add("wait", "after_soft", ms=0)
    flow.add("python", "hard", code="raise KeyError('hard')")
    flow.add("python", "handler", code="why = str(inputs.error)", outputs=["why"])
    flow.add("wait", "after_hard", ms=0)
    flow.connect("soft", "after_soft")
    flow.connect("hard", "handler", branch="error")
    flow.connect("hard", "after_hard")
    run = flow.start(record=False)
    result = run.result(30)
    assert result.status == "ok", result.error
    assert result.nodes["soft"]["status"] == "failed"
    assert result.nodes["after_soft"]["status"] == "done"
    assert result.nodes["hard"]["status"] == "failed"
    assert result.nodes["after_hard"]["status"] == "skipped"
    assert "node hard" in run.nodes["handler"].output["why"]


def test_timeout_and_retries() -> None:
    flow = Flow("tr")
    flow.add("wait", "stuck", ms=30_000, timeout=0.05)
    result = flow.run(record=False, timeout=30)
    assert result.status == "failed" and "node stuck: timed out after 0.05 s" in result.error

    flaky = Flow("flaky")
    flaky.add("python", "f", retries=2, code=(
        "ctx.state['n'] = ctx.state.get('n', 0) + 1\n"
        "if ctx.state['n'] < 3:\n    raise RuntimeError('flaky')\nok = ctx.state['n']"),
        outputs=["ok"])
    run = flaky.start(record=False)
    assert run.result(30).status == "ok"
    assert run.nodes["f"].attempts == 3 and run.nodes["f"].output == {"ok": 3}

    flaky2 = Flow("flaky2")
    flaky2.add("python", "f", retries=1, code="raise RuntimeError('always')")
    run2 = flaky2.start(record=False)
    assert run2.result(30).status == "failed" and run2.nodes["f"].attempts == 2


def test_bad_outputs_fail_with_the_node_named() -> None:
    from typing import ClassVar

    from kvmrpa import Node, register_node

    @register_node
    class ReturnsList(Node):
        """Outputs a list (wrongly)."""

        type_name: ClassVar[str] = "test_returns_list"

        async def run(self, inputs: Any, ctx: Any) -> Any:
            return [1, 2]

    flow = Flow("bad-out")
    flow.add("test_returns_list", "r")
    result = flow.run(record=False, timeout=30)
    assert result.status == "failed" and "node r: run() returned list" in result.error


def test_a_node_error_raised_without_the_flow_name_gets_it() -> None:
    flow = Flow("named")
    flow.add("condition", "c", mode="variable", variable="missing", operator="==", value=1)
    result = flow.run(record=False, timeout=30)
    assert result.status == "failed"
    assert result.error.startswith("flow 'named': node c: variable: variable 'missing'")


class _FakeSource:
    def __init__(self, url: str) -> None:
        self.url = url
        self.released = 0

    def latest(self) -> None:
        return None


def _fake_hub(monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[_FakeSource]:
    opened: list[_FakeSource] = []

    def open_source(url: str) -> _FakeSource:
        time.sleep(delay)  # runs in the pool, like a real open
        src = _FakeSource(url)
        opened.append(src)
        return src

    def release_source(src: _FakeSource) -> None:
        src.released += 1

    monkeypatch.setattr(kvmrpa.capture, "open_source", open_source, raising=False)
    monkeypatch.setattr(kvmrpa.capture, "release_source", release_source, raising=False)
    return opened


def _watch_flow() -> Flow:
    from typing import ClassVar

    from kvmrpa import Node, register_node

    @register_node
    class Watch(Node):
        """Opens the flow's source and waits a long time. Outputs nothing."""

        type_name: ClassVar[str] = "test_watch"

        async def run(self, inputs: Any, ctx: Any) -> None:
            src = await ctx.source()
            same = await ctx.source()
            assert src is same
            ctx.state["opened"] = True
            await asyncio.sleep(60)

    flow = Flow("stop", source="test://${env:HOME}/cam")
    flow.add("test_watch", "w")
    flow.add("wait", "next", ms=0)
    flow.connect("w", "next")
    return flow


def test_stop_cancels_in_flight_work_and_releases_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _fake_hub(monkeypatch)
    flow = _watch_flow()
    run = FlowRun(flow, record=False)
    run.start()
    for _ in range(400):
        if run._node_state.get("w", {}).get("opened"):
            break
        time.sleep(0.025)
    result = run.stop(timeout=10)
    assert result is not None and result.status == "stopped"
    assert result.nodes["w"]["status"] == "stopped" and result.nodes["next"]["status"] == "pending"
    assert "stopped" in str(run.nodes["w"].error)
    assert len(opened) == 1 and opened[0].released == 1
    assert "${env:HOME}" not in opened[0].url  # resolved for the open only
    assert flow.source == "test://${env:HOME}/cam"


def test_a_source_opening_while_the_run_stops_is_released_not_leaked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _fake_hub(monkeypatch, delay=0.3)
    run = FlowRun(_watch_flow(), record=False)
    sub = run.events()
    run.start()
    _wait_for_event(run, sub, "node_started", "w")
    assert run.stop(timeout=10).status == "stopped"  # type: ignore[union-attr]
    for _ in range(400):
        if opened and opened[0].released:
            break
        time.sleep(0.025)
    assert len(opened) == 1 and opened[0].released == 1


def test_loop_mode_persists_variables_and_stops_on_request() -> None:
    flow = Flow("loop", variables={"n": 0})
    flow.add("variable", "inc", variable="n", operation="increment")
    flow.add("wait", "w", ms=5)
    flow.connect("inc", "w")
    result = flow.run(passes=4, interval=0.01, record=False, timeout=30)
    assert result.passes == 4 and result.variables["n"] == 4 and result.status == "ok"

    run = FlowRun(flow, passes=0, record=False)
    sub = run.events()
    run.start()
    for _ in range(3):
        _wait_for_event(run, sub, "pass_finished")
    result = run.stop(timeout=10)
    assert result is not None and result.status == "stopped"
    assert result.passes >= 3 and result.variables["n"] >= 3


def test_an_exception_fails_only_its_pass_in_loop_mode() -> None:
    flow = Flow("onepass", variables={"seen": []})
    flow.add("python", "p", code=(
        "if ctx.pass_index == 2:\n    raise RuntimeError('pass two')\n"
        "variables['seen'] = variables['seen'] + [ctx.pass_index]"))
    result = flow.run(passes=3, record=False, timeout=30)
    assert result.passes == 3 and result.variables["seen"] == [1, 3]
    assert result.status == "failed" and "node p" in result.error and "pass two" in result.error


def test_events_as_async_iterator_and_callbacks_with_bounded_buffers() -> None:
    flow = Flow("ev")
    flow.add("wait", "a", ms=1)
    flow.add("condition", "c", expression="1 == 2")
    flow.add("wait", "t", ms=0)
    flow.connect("a", "c")
    flow.connect("c", "t", branch="true")
    called: list[str] = []

    async def consume() -> list[Event]:
        run = FlowRun(flow, record=False)
        sub = run.events()
        run.on_event(lambda ev: called.append(ev.kind))
        await run.astart()
        return [ev async for ev in sub]

    events = asyncio.run(consume())  # a foreign event loop
    kinds = [e.kind for e in events]
    assert kinds[0] == "flow_started" and kinds[1] == "pass_started"
    assert kinds[-2:] == ["pass_finished", "flow_finished"]
    finished = [e for e in events if e.kind == "node_finished"]
    assert [e.node for e in finished] == ["a", "c"] and finished[1].branch == "false"
    assert finished[1].summary["result"] == "False" and finished[0].duration >= 0
    assert [e.node for e in events if e.kind == "node_skipped"] == ["t"]
    run_ids = {e.run_id for e in events}
    assert len(run_ids) == 1

    # a subscriber that never reads does not hold the run up; the excess is counted
    big = Flow("many")
    for i in range(100):
        big.add("wait", f"n{i}", ms=0)
    run = FlowRun(big, record=False)
    slow = run.events(maxsize=5)
    run.start()
    assert run.result(30).status == "ok"
    assert slow.dropped == 202 + 2 - 5 and slow.get(1).kind != "flow_started"
    for _ in range(100):
        if len(called) >= len(kinds):
            break
        asyncio.run(asyncio.sleep(0.05))
    assert called == kinds


class _FakeDriver:
    """Stands in for a hub driver: audit callbacks like InputDriver.on_action."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []
        self.released = 0

    def on_action(self, cb: Any) -> Any:
        self.callbacks.append(cb)
        return lambda: self.callbacks.remove(cb)

    async def click(self, x: int, y: int) -> None:
        for cb in list(self.callbacks):
            cb({"driver": "fake://", "action": "click", "args": {"x": x, "y": y}, "ok": True})


def test_actions_of_this_flow_are_recorded_and_drivers_released(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import kvmrpa.kvm

    shared = _FakeDriver()
    monkeypatch.setattr(kvmrpa.kvm, "open_driver", lambda url, frame_size=None: shared,
                        raising=False)

    def release_driver(drv: _FakeDriver) -> None:
        drv.released += 1

    monkeypatch.setattr(kvmrpa.kvm, "release_driver", release_driver, raising=False)

    from typing import ClassVar

    from kvmrpa import Node, register_node

    @register_node
    class Clicker(Node):
        """Clicks once at (3, 4) through the flow's input driver. Outputs nothing."""

        type_name: ClassVar[str] = "test_clicker"

        async def run(self, inputs: Any, ctx: Any) -> None:
            drv = await ctx.input()
            await drv.click(3, 4)

    flow = Flow("clicks", input="fake://target")
    flow.add("test_clicker", "c")
    flow.add("python", "blocking", code=(
        "import asyncio\nfive = ctx.call(asyncio.sleep(0, result=5))"), outputs=["five"])
    run = flow.start(record=False)
    result = run.result(30)
    assert result.status == "ok", result.error
    assert result.actions == [{"node": "c", "driver": "fake://", "action": "click",
                               "args": {"x": 3, "y": 4}, "ok": True}]
    assert run.nodes["blocking"].output == {"five": 5}
    assert shared.released == 1 and shared.callbacks == []
    # another flow's use of the shared driver is not in this flow's audit trail
    asyncio.run(shared.click(9, 9))
    assert len(run.actions) == 1


def test_unsubscribing_ends_the_async_iterator_the_blocking_get_and_the_dispatcher() -> None:
    import threading

    flow = Flow("unsub")
    flow.add("wait", "w", ms=60_000)
    run = FlowRun(flow, record=False)
    sub = run.events()
    blocking = run.events()
    unsubscribe = run.on_event(lambda ev: None)
    run.start()
    try:
        async def consume() -> list[str]:
            it = sub.__aiter__()
            kinds = [(await it.__anext__()).kind]
            while kinds[-1] != "node_started":
                kinds.append((await it.__anext__()).kind)
            nxt = asyncio.ensure_future(it.__anext__())  # waits: the node runs for 60 s
            await asyncio.sleep(0)
            sub.close()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(nxt, 20)
            return kinds

        assert asyncio.run(consume())[-1] == "node_started"
        _wait_for_event(run, blocking, "node_started", "w")  # after it, nothing comes
        got: list[Any] = []
        reader = threading.Thread(target=lambda: got.append(blocking.get(None)), daemon=True)
        reader.start()
        blocking.close()
        reader.join(20)
        assert not reader.is_alive() and got == [None]
        unsubscribe()
        for _ in range(400):
            if not run._bus._dispatchers:
                break
            time.sleep(0.05)
        assert run._bus._dispatchers == []  # the callback's dispatcher task ended
    finally:
        assert run.stop(10).status == "stopped"


def test_the_errors_kept_by_a_run_that_fails_every_pass_are_bounded() -> None:
    flow = Flow("fails-always")
    flow.add("condition", "c", mode="variable", variable="missing", operator="==", value=1)
    run = FlowRun(flow, passes=150, record=False)
    run.start()
    result = run.result(60)
    assert result.passes == 150 and result.status == "failed"
    assert len(run.errors) == 100 and "node c" in run.errors[-1]


def test_a_run_stopped_before_it_started_cannot_be_started() -> None:
    from kvmrpa import FlowStateError

    flow = Flow("never")
    flow.add("wait", "w", ms=0)
    run = FlowRun(flow, record=False)
    assert run.stop().status == "stopped"
    with pytest.raises(FlowStateError, match="already started or stopped"):
        run.start()
    assert run.passes == 0 and run.nodes["w"].runs == 0


def test_stop_and_timeouts_cancel_what_a_blocking_node_awaits_through_ctx_call() -> None:
    flow = Flow("calls")
    flow.add("python", "p", code=(
        "import asyncio\n"
        "try:\n"
        "    ctx.call(asyncio.sleep(60), timeout=0.05)\n"
        "except TimeoutError as exc:\n"
        "    variables['timeout'] = str(exc)\n"
        "try:\n"
        "    ctx.call(asyncio.sleep(60))\n"
        "    variables['outcome'] = 'slept'\n"
        "except BaseException as exc:\n"
        "    variables['outcome'] = type(exc).__name__\n"))
    run = FlowRun(flow, record=False)
    sub = run.events()
    run.start()
    _wait_for_event(run, sub, "node_started", "p")
    while "timeout" not in run.variables:  # the first call timed out; the second waits
        time.sleep(0.01)
    assert "node p: ctx.call() did not finish within 0.05 s" in run.variables["timeout"]
    assert run.stop(10).status == "stopped"
    for _ in range(400):  # the worker thread is released by the stop, not after 60 s
        if "outcome" in run.variables:
            break
        time.sleep(0.05)
    assert run.variables.get("outcome") == "CancelledError"


def test_a_node_calling_sys_exit_fails_its_pass_not_the_runtime() -> None:
    flow = Flow("exits")
    flow.add("python", "blocking", code="import sys\nsys.exit(3)")
    result = flow.run(record=False, timeout=30)
    assert result.status == "failed" and "node blocking: SystemExit: 3" in result.error

    from typing import ClassVar

    from kvmrpa import Node, register_node

    @register_node
    class Interrupts(Node):
        """Raises KeyboardInterrupt from async code (outputs nothing)."""

        type_name: ClassVar[str] = "test_interrupts"

        async def run(self, inputs: Any, ctx: Any) -> Any:
            raise KeyboardInterrupt

    again = Flow("interrupts")
    again.add("test_interrupts", "k")
    assert again.run(record=False, timeout=30).status == "failed"
    after = Flow("after")
    after.add("wait", "w", ms=1)
    assert after.run(record=False, timeout=30).status == "ok"  # the loop still runs

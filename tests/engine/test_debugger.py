"""Step-through debugging on the same executor: breakpoints, pause, step, run-to, re-runs."""

from __future__ import annotations

import asyncio

import pytest

from kvmrpa import Flow, FlowRun, FlowStateError, FlowValidationError


def _chain() -> Flow:
    flow = Flow("dbg", variables={"n": 0})
    flow.add("variable", "a", variable="n", operation="increment")
    flow.add("python", "b", code="doubled = variables['n'] * 2", outputs=["doubled"])
    flow.add("variable", "c", variable="n", operation="increment", value=10)
    flow.add("python", "d", inputs=["doubled"], code="final = doubled + 1", outputs=["final"])
    flow.connect("a", "b")
    flow.connect("b", "c")
    flow.connect("c", "d")
    return flow


def test_breakpoint_pauses_before_the_node_and_inspection_shows_io() -> None:
    run = FlowRun(_chain(), record=False, breakpoints=["c"])
    dbg = run.debugger
    run.start()
    dbg.wait_paused()
    assert run.status == "paused" and dbg.paused_at == "c" and dbg.held == ["c"]
    assert run.nodes["a"].status == "done" and run.nodes["b"].output == {"doubled": 2}
    assert run.nodes["c"].status == "held" and run.nodes["d"].status == "pending"
    assert list(dbg.inputs("c")) == ["b"] and dbg.inputs("c")["b"] == {"doubled": 2}
    dbg.resume()
    result = run.result(30)
    assert result.status == "ok" and result.variables["n"] == 11
    assert run.nodes["d"].output == {"final": 3}


def test_step_starts_exactly_one_node_then_stays_paused() -> None:
    flow = Flow("steps")
    for n in ("x", "y", "z"):
        flow.add("wait", n, ms=0)
    flow.add("wait", "join", ms=0)
    for n in ("x", "y", "z"):
        flow.connect(n, "join")
    run = FlowRun(flow, record=False, debug=True)
    dbg = run.debugger
    dbg.pause(wait=False)
    run.start()
    dbg.wait_paused()
    assert sorted(dbg.held) == ["x", "y", "z"]
    first = dbg.step()
    assert first == "x" and run.nodes["x"].status == "done"
    assert sorted(dbg.held) == ["y", "z"] and run.status == "paused"
    assert dbg.step() == "y"
    assert dbg.step() == "z"
    assert dbg.step() == "join"  # became ready when z finished; started by this step
    assert run.nodes["join"].status == "done"
    assert run.result(30).status == "ok"


def test_pause_lets_in_flight_nodes_finish_and_run_to_stops_before_a_node() -> None:
    flow = Flow("runto")
    flow.add("wait", "slow", ms=200)
    flow.add("wait", "mid", ms=0)
    flow.add("wait", "end", ms=0)
    flow.connect("slow", "mid")
    flow.connect("mid", "end")
    run = FlowRun(flow, record=False, debug=True)
    dbg = run.debugger
    sub = run.events()
    run.start()
    while (ev := sub.get(10)) is not None and ev.kind != "node_started":
        pass
    dbg.pause()  # waits until "slow" has finished; "mid" is held
    assert run.nodes["slow"].status == "done" and dbg.held == ["mid"]
    dbg.run_to("end")
    assert dbg.paused_at == "end" and run.nodes["mid"].status == "done"
    assert run.nodes["end"].status == "held"
    kinds = []
    while (ev := sub.get(0.5)) is not None and ev.kind != "flow_finished":
        kinds.append((ev.kind, getattr(ev, "node", None), getattr(ev, "reason", None)))
    assert ("paused", None, "pause") in kinds and ("paused", "end", "run_to") in kinds
    dbg.resume()
    assert run.result(30).status == "ok"


def test_rerun_node_with_edited_params_on_cached_inputs() -> None:
    flow = _chain()
    run = FlowRun(flow, record=False, breakpoints=["d"])
    dbg = run.debugger
    run.start()
    dbg.wait_paused()
    rec = dbg.rerun_node("b", code="doubled = variables['n'] * 100")
    assert rec.status == "done" and rec.output == {"doubled": 1100}  # n is 11 now
    assert run.nodes["a"].runs == 1 and run.nodes["c"].runs == 1  # nothing else re-ran
    assert flow["b"].code == "doubled = variables['n'] * 100"
    with pytest.raises(FlowValidationError, match="node b: code"):
        dbg.rerun_node("b", code="(")
    with pytest.raises(FlowStateError, match="held"):
        dbg.rerun_node("d")
    dbg.resume()
    run.result(30)
    assert run.nodes["d"].output == {"final": 1101}  # d saw b's new output


def test_rerun_from_reuses_upstream_and_invalidates_downstream() -> None:
    flow = _chain()
    run = FlowRun(flow, record=False, debug=True)
    run.start()
    first = run.result(30)
    assert first.variables["n"] == 11 and run.nodes["d"].output == {"final": 3}
    with pytest.raises(FlowStateError):
        asyncio.run(run.debugger.arerun_node("zz"))
    result = run.debugger.rerun_from("c", value=5)
    assert result.status == "ok"
    assert result.nodes["a"]["runs"] == 1 and result.nodes["b"]["runs"] == 1  # reused
    assert result.nodes["c"]["runs"] == 2 and result.nodes["d"]["runs"] == 2
    assert result.variables["n"] == 16
    assert run.nodes["d"].output == {"final": 3}  # b's cached output (2) + 1


def test_debugger_commands_work_from_async_code() -> None:
    async def scenario() -> tuple[str | None, str]:
        run = FlowRun(_chain(), record=False, breakpoints=["b"])
        await run.astart()
        await run.debugger.await_paused()
        at = run.debugger.paused_at
        stepped = await run.debugger.astep()
        await run.debugger.aresume()
        result = await run.aresult()
        return at, f"{stepped}:{result.status}"

    assert asyncio.run(scenario()) == ("b", "b:ok")


def test_stop_while_paused() -> None:
    run = FlowRun(_chain(), record=False, breakpoints=["b"])
    run.start()
    run.debugger.wait_paused()
    result = run.stop(timeout=10)
    assert result is not None and result.status == "stopped"
    assert result.nodes["b"]["status"] == "pending"


def test_sync_facade_works_where_an_event_loop_is_already_running() -> None:
    # A notebook cell runs synchronously while the kernel's own loop is running.
    async def cell() -> tuple[str | None, str]:
        run = FlowRun(_chain(), record=False, breakpoints=["c"])
        run.start()
        run.debugger.wait_paused()
        at = run.debugger.paused_at
        run.debugger.resume()
        return at, run.result(30).status

    assert asyncio.run(cell()) == ("c", "ok")


def test_stop_cancels_a_rerun_from_after_the_run_ended() -> None:
    from kvmrpa import get_runtime

    flow = Flow("rerun-stop")
    flow.add("variable", "a", variable="n", value=1)
    flow.add("wait", "w", ms=0)
    flow.connect("a", "w")
    run = FlowRun(flow, record=False)
    run.start()
    assert run.result(30).status == "ok"
    pending = get_runtime().submit(run.debugger.arerun_from("w", ms=60_000))
    while run.nodes["w"].status != "running":  # the re-run pass is in flight
        assert not pending.done(), pending.result()
        asyncio.run(asyncio.sleep(0.01))
    run.stop()
    result = pending.result(20)  # not 60 s: the stop reached the re-run
    assert result.status == "stopped" and run.nodes["w"].status == "stopped"
    assert "stopped" in str(run.nodes["w"].error)


def test_node_checks_run_off_the_event_loop_in_arun_and_rerun_node() -> None:
    import threading
    from typing import Any, ClassVar

    from kvmrpa import Node, get_runtime, register_node

    checked_in: list[int] = []

    @register_node
    class SlowCheck(Node):
        """A node whose check stands for loading a model (blocking work)."""

        type_name: ClassVar[str] = "test_slow_check"

        def check(self) -> list[tuple[str, str]]:
            checked_in.append(threading.get_ident())
            return super().check()

        async def run(self, inputs: Any, ctx: Any) -> dict[str, Any]:
            return {"ok": True}

    flow = Flow("checks")
    flow.add("test_slow_check", "s")

    async def main() -> tuple[int, Any]:
        result = await flow.arun(record=False)
        return threading.get_ident(), result

    caller, result = asyncio.run(main())
    assert result.status == "ok" and checked_in and caller not in checked_in

    run = FlowRun(flow, record=False)
    run.start()
    assert run.result(30).status == "ok"
    checked_in.clear()
    loop_thread = get_runtime().run(_ident())
    assert run.debugger.rerun_node("s").status == "done"
    assert checked_in and loop_thread not in checked_in


async def _ident() -> int:
    import threading

    return threading.get_ident()


def test_a_subscription_taken_during_a_rerun_from_ends_with_it() -> None:
    from kvmrpa import get_runtime

    flow = Flow("rerun-events")
    flow.add("wait", "w", ms=0)
    run = FlowRun(flow, record=False)
    run.start()
    assert run.result(30).status == "ok"
    pending = get_runtime().submit(run.debugger.arerun_from("w", ms=1500))
    while run.nodes["w"].status != "running":
        assert not pending.done(), pending.result()
        asyncio.run(asyncio.sleep(0.01))
    sub = run.events()
    assert pending.result(20).status == "ok"

    async def drain() -> list[str]:
        return [ev.kind async for ev in sub]

    kinds = asyncio.run(asyncio.wait_for(drain(), 20))  # ends: no wait for more, forever
    assert kinds[-1] == "pass_finished"


def test_a_rerun_node_that_times_out_leaves_the_node_idle() -> None:
    flow = Flow("rerun-timeout")
    flow.add("wait", "w", ms=0)
    run = FlowRun(flow, record=False)
    run.start()
    assert run.result(30).status == "ok"
    with pytest.raises(TimeoutError):
        run.debugger.rerun_node("w", timeout=0.2, ms=60_000)
    rec = run.nodes["w"]
    for _ in range(400):  # the cancellation reaches the loop just after the timeout
        if rec.status != "running":
            break
        asyncio.run(asyncio.sleep(0.025))
    assert rec.status == "failed" and "cancelled" in str(rec.error)
    assert run.debugger.rerun_node("w", ms=0).status == "done"  # not "w is running"


def test_run_paused_state_is_public_and_reading_it_attaches_no_debugger() -> None:
    plain = FlowRun(_chain(), record=False)
    assert plain.paused is False and plain.paused_at is None
    assert plain._gate is None  # reading the state attached nothing
    assert plain.start().result(30).status == "ok"
    assert plain.paused is False and plain.paused_at is None and plain._gate is None

    run = FlowRun(_chain(), record=False, breakpoints=["c"])
    assert run.paused is False and run.paused_at is None
    run.start()
    run.debugger.wait_paused()
    assert run.paused is True and run.paused_at == "c"
    run.debugger.resume()
    assert run.paused is False and run.paused_at is None
    assert run.result(30).status == "ok"

    held = FlowRun(_chain(), record=False, debug=True)
    held.debugger.pause(wait=False)  # a plain pause: between nodes, at no node
    held.start()
    held.debugger.wait_paused()
    assert held.paused is True and held.paused_at is None
    held.stop(timeout=30)
    assert held.done and held.paused is False and held.paused_at is None

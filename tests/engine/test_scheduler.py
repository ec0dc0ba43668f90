"""The pass scheduler alone (no event loop), and the public execution-gate protocol."""

from __future__ import annotations

import time

from kvmrpa import Flow, FlowRun
from kvmrpa.engine import Debugger, ExecutionGate
from kvmrpa.engine._scheduler import Graph, Scheduler


def _branchy() -> Flow:
    flow = Flow("branchy")
    flow.add("condition", "c", expression="True")
    flow.add("wait", "t", ms=0)
    flow.add("wait", "f", ms=0)
    flow.add("wait", "after_f", ms=0)
    flow.add("wait", "join", ms=0)
    flow.add("wait", "soft", ms=0, on_error="continue")
    flow.add("wait", "handler", ms=0)
    flow.add("wait", "hard", ms=0)
    flow.connect("c", "t", branch="true")
    flow.connect("c", "f", branch="false")
    flow.connect("f", "after_f")
    flow.connect("t", "join")
    flow.connect("after_f", "join")
    flow.connect("join", "soft")
    flow.connect("soft", "handler")
    flow.connect("soft", "hard", branch="error")
    return flow


def test_branches_skip_and_joins_resolve_without_an_event_loop() -> None:
    s = Scheduler(Graph(_branchy()))
    assert s.roots() == ["c"] and not s.complete
    ready: list[str] = []
    skipped: list[str] = []
    s.done("c", {"branch": "true"}, ready, skipped)
    assert ready == ["t"] and skipped == ["f", "after_f"]  # the skip propagates
    ready, skipped = [], []
    s.done("t", None, ready, skipped)
    assert ready == ["join"] and skipped == []  # the join runs on its live input
    ready, skipped = [], []
    s.done("join", {"x": 1}, ready, skipped)
    assert ready == ["soft"]
    ready, skipped = [], []
    assert s.failed("soft", RuntimeError("soft"), ready, skipped) is True  # continue
    assert ready == ["handler", "hard"]  # edge order
    assert isinstance(s.error_in["hard"], RuntimeError) and s.outputs["soft"] is None
    for nid in ready:
        s.done(nid, None, [], [])
    assert s.complete and s.outstanding == 0 and s.error is None


def test_an_unhandled_failure_ends_the_pass_and_reuse_resolves_upstream() -> None:
    g = Graph(_branchy())
    s = Scheduler(g)
    ready: list[str] = []
    assert s.failed("c", RuntimeError("boom"), ready, []) is False
    assert s.complete and ready == [] and str(s.error) == "boom"

    again = Scheduler(g)
    ready, skipped = [], []
    reuse = {"c": ("done", {"branch": "false"}, None), "t": ("skipped", None, None)}
    again.reuse(reuse, ready, skipped)
    assert ready == ["f"] and skipped == []  # t was reused as skipped, not re-skipped


class HoldOnce:
    """A minimal execution gate: holds node ``b`` the first time it is ready."""

    def __init__(self, run: FlowRun) -> None:
        self.seen: list[str] = []
        self._held = False
        run.attach_gate(self)

    def hold(self, node_id: str) -> bool:
        self.seen.append(node_id)
        if node_id == "b" and not self._held:
            self._held = True
            return True
        return False

    @property
    def paused(self) -> bool:
        return False

    @property
    def paused_at(self) -> str | None:
        return None


def test_a_custom_execution_gate_holds_and_offers_nodes_through_the_public_api() -> None:
    flow = Flow("gated")
    flow.add("wait", "a", ms=0)
    flow.add("wait", "b", ms=0)
    flow.connect("a", "b")
    run = FlowRun(flow, record=False)
    gate = HoldOnce(run)
    assert isinstance(gate, ExecutionGate) and isinstance(Debugger(FlowRun(flow)), ExecutionGate)
    run.attach_gate(gate)
    run.start()
    end = time.monotonic() + 20
    while run.held != ["b"]:
        assert time.monotonic() < end, "b was not held"
        time.sleep(0.005)
    assert run.nodes["b"].status == "held" and not run.done
    from kvmrpa._runtime import get_runtime

    get_runtime().call_soon(run.offer_held)
    result = run.result(20)
    assert result.status == "ok" and gate.seen == ["a", "b", "b"]

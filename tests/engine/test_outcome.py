"""Each pass says what it did: actions sent, or why nothing was done."""

from __future__ import annotations

from pathlib import Path

from kvmrpa import Flow
from kvmrpa.engine import read_run


def _clicker(n: int) -> Flow:
    flow = Flow("outcome", input="dryrun://outcome", variables={"n": n})
    flow.add("condition", "trigger", expression="n > 0")
    flow.add("mouse", "click", x=5, y=5)
    flow.add("mouse", "again", x=6, y=6)
    flow.add("wait", "confirm", ms=0)
    flow.connect("trigger", "click", branch="true")
    flow.connect("click", "again")
    flow.connect("again", "confirm")
    return flow


def test_a_pass_that_acted_says_how_many_actions(store: Path) -> None:
    result = _clicker(1).run(timeout=30)
    assert result.status == "ok" and result.outcome == "ok · 2 actions"
    assert result.as_dict()["outcome"] == "ok · 2 actions"
    assert result.record is not None
    lines = read_run(result.record)
    passes = [line for line in lines if line.get("kind") == "pass_finished"]
    assert passes and passes[-1]["outcome"] == "ok · 2 actions"
    assert lines[-1]["kind"] == "flow_finished" and lines[-1]["outcome"] == "ok · 2 actions"


def test_a_pass_whose_trigger_was_false_says_nothing_was_done() -> None:
    result = _clicker(0).run(record=False, timeout=30)
    assert result.status == "ok"
    assert result.outcome == "ok · nothing done (trigger → false; 3 skipped)"


def test_failed_and_computing_passes_say_so() -> None:
    bad = Flow("bad")
    bad.add("python", "p", code="raise RuntimeError('nope')")
    result = bad.run(record=False, timeout=30)
    assert result.outcome.startswith("failed · node p: RuntimeError: nope"), result.outcome
    calc = Flow("calc", variables={"n": 0})
    calc.add("variable", "inc", variable="n", operation="increment")
    assert calc.run(record=False, timeout=30).outcome == "ok · no actions (1 node done)"

"""Run records: JSONL per run, flushed per line, retention, ``kvmrpa runs``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kvmrpa import Flow, configure, get_settings
from kvmrpa.cli import main
from kvmrpa.engine import list_runs, read_run
from kvmrpa.engine._records import get_run_store


def _flow(fail: bool = False) -> Flow:
    flow = Flow("rec")
    flow.add("python", "act", code="ctx.record_action({'action': 'click', 'x': 1, 'y': 2})")
    flow.add("python", "maybe", code="raise RuntimeError('bad thing')" if fail else "pass")
    flow.connect("act", "maybe")
    return flow


def test_a_run_writes_events_actions_and_errors(store: Path) -> None:
    result = _flow(fail=True).run(timeout=30)
    assert result.status == "failed"
    assert result.actions == [{"node": "act", "action": "click", "x": 1, "y": 2}]
    assert result.record is not None and Path(result.record).parent == store
    lines = read_run(result.record)
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "run" and kinds[-1] == "flow_finished"
    assert lines[0]["flow"] == "rec" and lines[0]["run_id"] == result.run_id
    assert {"flow_started", "pass_started", "node_started", "node_finished", "node_failed",
            "action", "error", "pass_finished"} <= set(kinds)
    error = next(line for line in lines if line["kind"] == "error")
    assert error["node"] == "maybe" and "bad thing" in error["error"]
    assert lines[-1]["status"] == "failed"
    # every line is complete JSON on its own line
    raw = Path(result.record).read_text("utf-8")
    assert raw.endswith("\n") and len(raw.splitlines()) == len(lines)


def test_lines_are_flushed_while_the_run_goes_on(store: Path) -> None:
    flow = Flow("live")
    flow.add("wait", "w", ms=60_000)
    run = flow.start()
    sub_path = None
    for _ in range(400):
        files = list(store.glob("*.jsonl"))
        if files:
            sub_path = files[0]
            kinds = [line["kind"] for line in read_run(sub_path)]
            if "node_started" in kinds:
                break
        time.sleep(0.025)
    assert sub_path is not None and "node_started" in kinds
    assert "flow_finished" not in kinds
    run.stop(timeout=10)
    assert read_run(sub_path)[-1]["status"] == "stopped"


def test_retention_and_runs_listing(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = get_settings()
    old = settings.store.runs_keep
    configure(store__runs_keep=3)
    try:
        ids = [_flow().run(timeout=30).run_id for _ in range(5)]
        get_run_store().prune()
        files = sorted(store.glob("*.jsonl"))
        assert len(files) == 3
        listed = list_runs(limit=10)
        assert [r["id"] for r in listed] == ids[::-1][:3] or {r["id"] for r in listed} == set(ids[2:])
        assert all(r["status"] == "ok" and r["passes"] == 1 for r in listed)
        assert main(["runs", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert {r["id"] for r in data} == {r["id"] for r in listed}
        assert main(["runs"]) == 0
        out = capsys.readouterr().out
        assert all(r["id"] in out for r in listed)
        assert main(["runs", "--show", listed[0]["id"]]) == 0
        assert '"kind": "flow_finished"' in capsys.readouterr().out
    finally:
        settings.store.runs_keep = old


def test_old_records_are_deleted_by_age(store: Path) -> None:
    _flow().run(timeout=30)
    old_file = next(store.glob("*.jsonl"))
    ancient = time.time() - 90 * 86400
    os.utime(old_file, (ancient, ancient))
    _flow().run(timeout=30)
    get_run_store().prune()
    assert not old_file.exists() and len(list(store.glob("*.jsonl"))) == 1


def test_the_writer_survives_a_failing_retention_and_a_failing_record(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kvmrpa.engine._records import RunRecord, RunStore

    def broken_prune(self: RunStore) -> list[Path]:
        raise RuntimeError("retention broke")

    with monkeypatch.context() as m:
        m.setattr(RunStore, "prune", broken_prune)
        first = _flow().run(timeout=30)
    assert read_run(first.record)[-1]["kind"] == "flow_finished"

    real_drain = RunRecord._drain

    def broken_drain(self: RunRecord) -> bool:
        if "writer-dies" in self.path.name:
            raise RuntimeError("writer broke")
        return real_drain(self)

    with monkeypatch.context() as m:
        m.setattr(RunRecord, "_drain", broken_drain)
        dying = Flow("writer-dies")
        dying.add("wait", "w", ms=0)
        assert dying.run(timeout=30).status == "ok"  # its record is abandoned, not awaited
    for _ in range(200):
        if get_run_store().idle():
            break
        time.sleep(0.025)
    after = _flow().run(timeout=30)  # a new writer thread takes the next records
    lines = read_run(after.record)
    assert lines[0]["kind"] == "run" and lines[-1]["kind"] == "flow_finished"

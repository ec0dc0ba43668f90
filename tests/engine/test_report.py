"""Run reports: the frames vision nodes decided on are kept (within the budget, failures
always), and one self-contained, redacted HTML page is made from the record."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kvmrpa import Flow, RunResult, configure, get_settings
from kvmrpa.cli import main
from kvmrpa.engine import read_run
from kvmrpa.engine._records import get_run_store
from kvmrpa.engine._report import find_record
from kvmrpa.sim import reset

SIM = "sim://scenario1?seed=7"


def confirm_flow(expect: str, wait_timeout: float = 2.0, url: str = SIM) -> Flow:
    """Scenario 1: read, see 测试, click 确定, wait for ``expect``."""
    flow = Flow("confirm", source=url, input=url)
    flow.add("source", "grab")
    flow.add("ocr", "read")
    flow.add("vision_condition", "trigger", text="测试", match_mode="exact")
    flow.add("mouse", "click", target="text", text="确定", match_mode="exact")
    flow.add("wait_until", "confirm", text=expect, match_mode="exact",
             wait_timeout=wait_timeout)
    flow.connect("grab", "read")
    flow.connect("read", "trigger")
    flow.connect("trigger", "click", branch="true")
    flow.connect("click", "confirm")
    return flow


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunResult]:
    """One failed run of scenario 1 (the wait looks for a text that never shows)."""
    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(tmp_path_factory.mktemp("report-home")))
    try:
        reset(SIM)
        yield confirm_flow("已确定了").run(timeout=90)
    finally:
        settings.store.home = old


def test_the_failing_node_keeps_its_frame_and_texts(failed_run: RunResult) -> None:
    assert failed_run.status == "failed" and "confirm" in (failed_run.error or "")
    lines = read_run(failed_run.record)
    evidence = {x["node"]: x for x in lines if x["kind"] == "evidence"}
    assert set(evidence) == {"grab", "read", "trigger", "click", "confirm"}
    failed = evidence["confirm"]
    assert failed["status"] == "failed" and "did not appear" in failed["error"]
    assert "已确定" in [t["text"] for t in failed["texts"]]  # what it saw when it gave up
    assert evidence["click"]["point"] == list(failed_run.actions[0]["args"].values())[:2]
    frames = {x["file"]: x for x in lines if x["kind"] == "frame"}
    assert failed["frame"] in frames and evidence["read"]["frame"] in frames
    assert failed["frame"] != evidence["read"]["frame"]  # the screen after the click
    folder = Path(failed_run.record).with_name(Path(failed_run.record).name[:-6] + ".frames")
    for name in frames:
        data = (folder / name).read_bytes()
        assert data[:2] == b"\xff\xd8" and len(data) > 1000
    assert frames[failed["frame"]]["width"] == 1280 and frames[failed["frame"]]["full"]
    head = lines[0]
    assert [n["id"] for n in head["graph"]["nodes"]] == ["grab", "read", "trigger", "click",
                                                         "confirm"]
    assert "params" not in head["graph"]["nodes"][0]  # the shape only: no secret in it


def test_the_report_is_one_page_with_frames_texts_graph_and_errors(
        failed_run: RunResult, tmp_path: Path) -> None:
    report = failed_run.report()
    assert report.status == "failed" and report.run_id == failed_run.run_id
    page = report.page()
    images = re.findall(r"<img src='data:image/jpeg;base64,([A-Za-z0-9+/=]+)'", page)
    frames = [x for x in report.lines if x.get("kind") == "frame"]
    assert len(images) == len(frames) >= 2  # each kept frame once (a wait may add its first)
    assert all(base64.b64decode(i)[:2] == b"\xff\xd8" for i in images)
    assert re.search(r"https?://", page) is None  # nothing to fetch: it opens offline
    assert "<script" not in page
    assert "已确定" in page and "did not appear" in page
    assert "data-node='confirm'" in page and "state-failed" in page
    assert "已确定" in report.texts("confirm")
    assert report._repr_html_().startswith("<style>")
    saved = report.save(tmp_path / "r.html")
    assert saved.read_text(encoding="utf-8") == page


def test_kvmrpa_report_writes_the_file(failed_run: RunResult, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.html"
    folder = Path(failed_run.record or "").parent
    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(folder.parent))
    try:
        assert find_record(failed_run.run_id) == Path(failed_run.record or "")
        assert main(["report", failed_run.run_id, "-o", str(target)]) == 0
        assert re.search(r"failed, [2-9] frames", capsys.readouterr().out)
        assert "<img src='data:image/jpeg" in target.read_text(encoding="utf-8")
        assert main(["report", failed_run.run_id, "-o", str(target)]) == 2  # exists
        assert "exists" in capsys.readouterr().err
        assert main(["report", "no-such-run"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "no run record 'no-such-run'" in err
        assert main(["report", "../etc"]) == 2
    finally:
        settings.store.home = old


def test_the_report_is_escaped_and_redacted(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVMRPA_TEST_SECRET", "hunter2-very-secret")
    flow = Flow("<script>alert(1)</script>", source="pattern://counter?width=320&height=180",
                input="dryrun://x?token=abc123tok")
    flow.add("source", "grab")
    flow.add("keyboard", "pw", text="${env:KVMRPA_TEST_SECRET}")
    flow.add("python", "boom", code="raise ValueError('<b>bad</b> hunter2-very-secret')")
    flow.connect("grab", "pw")
    flow.connect("pw", "boom")
    result = flow.run(timeout=60)
    assert result.status == "failed"
    page = result.report().page()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt;" in page
    assert "hunter2-very-secret" not in page and "abc123tok" not in page
    assert "<img src='data:image/jpeg" in page  # the grab frame of the failed pass


def test_frames_stay_within_the_budget_and_failures_are_kept(store: Path) -> None:
    configure(store__record_detail_passes=3)
    try:
        flow = Flow("loop", source="pattern://counter?width=320&height=180&fps=60")
        flow.add("source", "grab")
        flow.add("condition", "fourth", expression="pass_no % 4 == 0")
        flow.add("python", "fail", code="raise RuntimeError('every fourth pass')")
        flow.add("variable", "count", variable="pass_no", operation="increment")
        flow.variables["pass_no"] = 0
        flow.connect("grab", "count")
        flow.connect("count", "fourth")
        flow.connect("fourth", "fail", branch="true")
        result = flow.run(timeout=90, passes=12)
    finally:
        configure(store__record_detail_passes=10)
    assert result.passes == 12
    lines = read_run(result.record)
    kept = sorted({x["pass_index"] for x in lines if x["kind"] == "frame"})
    assert kept == [1, 2, 4, 8, 12]  # the first 3 - 1 in full, then only failed passes
    folder = Path(result.record or "").with_suffix(".frames")
    assert len(list(folder.glob("*.jpg"))) == 5


def test_a_run_past_its_frame_budget_keeps_only_failures(store: Path) -> None:
    configure(store__frames_max_bytes=1)
    try:
        flow = Flow("small", source="pattern://noise?width=320&height=180&fps=60")
        flow.add("source", "grab")
        result = flow.run(timeout=60, passes=4)
    finally:
        configure(store__frames_max_bytes=32 * 2**20)
    lines = read_run(result.record)
    assert [x["pass_index"] for x in lines if x["kind"] == "frame"] == [1]


def test_frames_off_keeps_none(store: Path) -> None:
    configure(store__frames=False)
    try:
        flow = Flow("off", source="pattern://counter?width=320&height=180")
        flow.add("source", "grab")
        result = flow.run(timeout=60)
    finally:
        configure(store__frames=True)
    assert not [x for x in read_run(result.record) if x["kind"] in ("frame", "evidence")]


def test_retention_deletes_the_oldest_frames_past_the_store_budget(store: Path) -> None:
    import os
    import time

    store.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for i in range(3):
        rec = store / f"2026010{i}-000000-aaaa000{i}-f.jsonl"
        rec.write_text(json.dumps({"kind": "run", "run_id": rec.stem}) + "\n")
        os.utime(rec, (now - 100 + i, now - 100 + i))
        frames = rec.with_suffix(".frames")
        frames.mkdir()
        (frames / "p00001-00001.jpg").write_bytes(np.zeros(700_000, np.uint8).tobytes())
    orphan = store / "20250101-000000-bbbb0000-gone.frames"
    orphan.mkdir()
    configure(store__frames_total_bytes=2**20)
    try:
        removed = get_run_store().prune()
    finally:
        configure(store__frames_total_bytes=1024 * 2**20)
    left = sorted(p.name for p in store.glob("*.frames"))
    assert left == ["20260102-000000-aaaa0002-f.frames"]
    assert orphan in removed
    assert len(list(store.glob("*.jsonl"))) == 3  # the records stay


def test_the_runs_view_filters_by_flow_status_and_time(failed_run: RunResult) -> None:
    from kvmrpa.widgets._runs import RunsView

    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(Path(failed_run.record or "").parent.parent))
    try:
        ok = Flow("other", source="pattern://counter?width=320&height=180")
        ok.add("source", "grab")
        assert ok.run(timeout=60).status == "ok"
        view = RunsView()
        assert {r["flow"] for r in view.visible_runs()} == {"confirm", "other"}
        view.status = "failed"
        assert [r["id"] for r in view.visible_runs()] == [failed_run.run_id]
        assert list(view.list.options.values()) == [failed_run.run_id]
        view.status, view.flow = "any", "other"
        assert [r["flow"] for r in view.visible_runs()] == ["other"]
        view.flow, view.since = "any", "last hour"
        assert len(view.visible_runs()) == 2
        view.open_run(failed_run.run_id)  # no server loop: read at once
        assert "<img src='data:image/jpeg" in view.report.object
        assert view.download.filename == f"{failed_run.run_id}.html" and not view.download.disabled
        assert b"<!DOCTYPE html>" in view._page().getvalue()
        view.open_run("no-such-run")
        assert "no run record" in view.report.object and view.download.disabled
    finally:
        settings.store.home = old

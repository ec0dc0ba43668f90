"""The flow model: building in code, JSON round trip, atomic save, versions, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kvmrpa import Flow, FlowError, FlowFormatError, FlowValidationError
from kvmrpa.engine import SCHEMA_VERSION, flow_schema
from kvmrpa.nodes import Wait


def _sample() -> Flow:
    flow = Flow("sample", description="测试 flow", source="sim://scenario1",
                input="vnc://${env:KVMRPA_TEST_VNC_PW}@127.0.0.1:5900",
                variables={"count": 0, "names": ["a"]}, metadata={"author": "t"})
    flow.add("condition", "check", expression="count > 2", label="Check", position=(10, 20))
    flow.add(Wait(ms=250, retries=2), "pause")
    flow.add("variable", "inc", variable="count", operation="increment")
    flow.connect("check", "pause", branch="true")
    flow.connect("check", "inc", branch="false")
    return flow


def test_json_round_trip_keeps_everything(tmp_path: Path) -> None:
    flow = _sample()
    path = flow.save(tmp_path / "f.json")
    data = json.loads(path.read_text("utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["nodes"][1] == {"id": "pause", "type": "wait", "params": {"ms": 250, "retries": 2},
                                "position": [0.0, 0.0]}
    again = Flow.load(path)
    assert again.to_dict() == flow.to_dict()
    assert again["pause"].ms == 250 and again["pause"].retries == 2
    assert again.nodes["check"].label == "Check" and again.nodes["check"].position == (10, 20)
    assert [(e.source, e.target, e.branch) for e in again.edges] == [
        ("check", "pause", "true"), ("check", "inc", "false")]
    # the JSON Schema shipped with the package accepts what we write
    import jsonschema

    jsonschema.validate(data, flow_schema())


def test_building_errors_name_the_node() -> None:
    flow = Flow("b")
    flow.add("wait", "a")
    with pytest.raises(FlowError, match="'a' is already used"):
        flow.add("wait", "a")
    with pytest.raises(FlowError, match="unknown node type 'nope'"):
        flow.add("nope")
    with pytest.raises(FlowError, match="no node 'zz'"):
        flow.connect("a", "zz")
    auto = flow.add("wait")
    assert flow.id_of(auto) == "wait2"
    flow.remove("a")
    assert "a" not in flow


def test_newer_schema_version_is_a_clear_error() -> None:
    data = _sample().to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(FlowFormatError, match="newer kvmrpa"):
        Flow.from_dict(data)


def test_secret_references_are_resolved_at_run_time_only(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    flow = Flow("secret")
    flow.add("python", "p", code="seen = token", inputs=[], outputs=["seen"])
    flow["p"].code = "seen = '${env:KVMRPA_TEST_TOKEN}'"
    monkeypatch.setenv("KVMRPA_TEST_TOKEN", "s3cr3t")
    run = flow.start(record=False)
    assert run.result(30).status == "ok"
    assert run.nodes["p"].output == {"seen": "s3cr3t"}
    assert flow["p"].code == "seen = '${env:KVMRPA_TEST_TOKEN}'"
    saved = flow.save(tmp_path / "s.json").read_text("utf-8")
    assert "s3cr3t" not in saved and "${env:KVMRPA_TEST_TOKEN}" in saved
    monkeypatch.delenv("KVMRPA_TEST_TOKEN")
    result = flow.run(record=False, timeout=30)
    assert result.status == "failed"
    assert "KVMRPA_TEST_TOKEN is not set" in result.error and "node p: code" in result.error


def test_plain_text_passwords_are_refused_on_save(tmp_path: Path) -> None:
    flow = Flow("plain", source="rtsp://admin:hunter2@127.0.0.1/stream")
    with pytest.raises(FlowValidationError) as err:
        flow.save(tmp_path / "p.json")
    assert "hunter2" not in str(err.value) and "source" in str(err.value)
    assert not (tmp_path / "p.json").exists()
    flow.source = "rtsp://admin:${env:CAM_PW}@127.0.0.1/stream"
    flow.save(tmp_path / "p.json")


def test_killed_mid_save_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    target = tmp_path / "big.json"
    script = textwrap.dedent(f"""
        import sys
        from kvmrpa import Flow
        flow = Flow("big")
        for i in range(1500):
            flow.add("wait", f"n{{i}}", ms=i)
        i = 0
        while True:
            flow.description = f"version {{i}}"
            flow.save({str(target)!r})
            if i == 0:
                print("saved", flush=True)
            i += 1
    """)
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "saved"
            time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            if proc.stdout:
                proc.stdout.close()
        flow = Flow.load(target)  # never a broken file
        assert len(flow.nodes) == 1500 and flow.description.startswith("version ")
    leftovers = [p for p in os.listdir(tmp_path) if p != "big.json"]
    assert all(p.startswith(".big.json.") for p in leftovers)  # only abandoned temp files


def test_saving_keeps_the_file_mode_and_a_new_file_follows_the_umask(tmp_path: Path) -> None:
    import stat

    old_mask = os.umask(0o027)
    try:
        flow = Flow("modes")
        flow.add("wait", "w", ms=1)
        new = flow.save(tmp_path / "new.json")
        assert stat.S_IMODE(new.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0600
        os.chmod(new, 0o664)
        flow.save(new)
        assert stat.S_IMODE(new.stat().st_mode) == 0o664
    finally:
        os.umask(old_mask)

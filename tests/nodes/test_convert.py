"""``kvmrpa convert IN OUT``: native output that runs like the original, secrets turned
into ``${env:…}`` references, problems reported with exit code 2 and no file written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kvmrpa.cli import main
from kvmrpa.engine import Flow
from kvmrpa.nodes import resolve_env_refs

from ._screens import Screen
from .test_import import DATA, load_doc


def _write(tmp_path: Path, name: str, **subs: str) -> Path:
    path = tmp_path / f"{name}.original.json"
    path.write_text(json.dumps(load_doc(name, **subs), ensure_ascii=False), encoding="utf-8")
    return path


def test_convert_round_trip_runs_the_same(tmp_path: Path, dialog: Screen, dialog_url: str,
                                          dryrun: tuple[str, Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, "ocr_click", IMAGE_URL=dialog_url)
    out = tmp_path / "native.flow.json"
    assert main(["convert", str(src), str(out)]) == 0
    printed = capsys.readouterr()
    assert "ok: wrote" in printed.out
    assert "warning: node node_src: properties.fps" in printed.err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and data["source"] == dialog_url
    assert sorted(os.listdir(tmp_path)) == sorted([src.name, out.name, "dialog.png"])  # no temp files
    converted = Flow.load(out)
    original = Flow.load(src)
    assert converted.to_dict()["nodes"] == original.to_dict()["nodes"]
    results = [f.run(timeout=90, input=dryrun[0]) for f in (original, converted)]
    assert [r.status for r in results] == ["ok", "ok"]
    actions = [[(a["node"], a["action"], a["args"]) for a in r.actions] for r in results]
    assert actions[0] == actions[1]
    x, y = actions[1][0][2]["x"], actions[1][0][2]["y"]
    assert dialog.contains("ok", (x, y))
    # a native file converts to itself
    again = tmp_path / "again.json"
    assert main(["convert", str(out), str(again)]) == 0
    assert json.loads(again.read_text(encoding="utf-8"))["nodes"] == data["nodes"]


def test_convert_replaces_the_password_by_an_env_reference(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "kvm.json"
    src.write_bytes((DATA / "kvm_password.json").read_bytes())
    out = tmp_path / "kvm.flow.json"
    assert main(["convert", str(src), str(out)]) == 0
    err = capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert "hunter2" not in text and "hunter2" not in err
    data = json.loads(text)
    kvm = next(n for n in data["nodes"] if n["id"] == "kvm")
    assert "url" not in kvm.get("params", {})  # the flow's one device: the node reads the flow's source
    assert data["source"] == "rtsp://admin:${env:KVMRPA_KVM_PASSWORD}@192.168.1.50:554/1"
    assert "set KVMRPA_KVM_PASSWORD" in err
    flow = Flow.load(out)
    monkeypatch.setenv("KVMRPA_KVM_PASSWORD", "s3cret")
    assert resolve_env_refs(flow.source or "") == "rtsp://admin:s3cret@192.168.1.50:554/1"
    assert flow["kvm"].url == ""


def test_convert_replaces_a_password_holding_a_raw_at_sign_whole(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "cam.json"
    src.write_text(json.dumps({
        "id": "f1", "name": "cam", "version": "1.0", "created_at": "2024-01-01",
        "nodes": [{"id": "cam", "type": "rtsp_source", "x": 0, "y": 0,
                   "properties": {"url": "rtsp://admin:p@ss@10.0.0.5:554/live"}}],
        "edges": []}), encoding="utf-8")
    out = tmp_path / "cam.flow.json"
    assert main(["convert", str(src), str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "p@ss" not in text and "ss@10" not in text
    assert json.loads(text)["source"] == "rtsp://admin:${env:KVMRPA_CAM_PASSWORD}@10.0.0.5:554/live"
    assert "p@ss" not in capsys.readouterr().err


def test_convert_refuses_problems_and_writes_nothing(tmp_path: Path, dialog_url: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, "no_ocr", IMAGE_URL=dialog_url)
    out = tmp_path / "out.json"
    assert main(["convert", str(src), str(out)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("node click_ok: ") and "ocr_recognition" in line for line in lines)
    assert any(line.startswith("node found: ") and "yolo_detection" in line for line in lines)
    assert not out.exists()


def test_convert_strict_and_force(tmp_path: Path, dialog_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, "blackboard", IMAGE_URL=dialog_url)
    out = tmp_path / "out.json"
    out.write_text("keep me", encoding="utf-8")
    assert main(["convert", str(src), str(out)]) == 2
    assert "exists" in capsys.readouterr().out and out.read_text(encoding="utf-8") == "keep me"
    assert main(["convert", "--strict", "--force", str(src), str(out)]) == 2
    strict = capsys.readouterr().out
    assert "node click: in the original it read the last texts" in strict
    assert out.read_text(encoding="utf-8") == "keep me"
    assert main(["convert", "--force", str(src), str(out)]) == 0
    edges = json.loads(out.read_text(encoding="utf-8"))["edges"]
    assert {"source": "ocr", "target": "click"} in edges


def test_convert_command_line_reports_bad_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": [', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kvmrpa", "convert", str(bad), str(tmp_path / "o.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "invalid JSON at line 1" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_convert_reports_an_unwritable_target_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "w.json"
    src.write_text(json.dumps({
        "id": "f1", "name": "w", "version": "1.0", "created_at": "2024-01-01",
        "nodes": [{"id": "w", "type": "wait", "x": 0, "y": 0, "properties": {"duration_ms": 5}}],
        "edges": []}), encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    assert main(["convert", str(src), str(blocker / "out.json")]) == 2  # parent is a file
    assert capsys.readouterr().out.startswith(f"flow: cannot write {blocker / 'out.json'}")

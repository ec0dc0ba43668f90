"""Import of the original system's flow format (logic node types), auto-detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvmrpa import Flow, FlowValidationError
from kvmrpa.cli import main

ORIGINAL = {
    "id": "flow-123", "name": "原流程", "description": "imported", "version": "1.0",
    "created_at": "2024-01-01T00:00:00", "updated_at": "2024-01-02T00:00:00",
    "variables": {"count": 0},
    "nodes": [
        {"id": "n1", "type": "variable", "label": "计数", "x": 100, "y": 50,
         "properties": {"variable_name": "count", "value": "1", "operation": "increment"},
         "text": {"x": 100, "y": 50, "value": "计数"}},
        {"id": "n2", "type": "condition", "x": 300, "y": 50,
         "properties": {"condition_type": "variable", "variable_name": "count",
                        "compare_operator": ">=", "compare_value": "1"},
         "text": {"x": 300, "y": 50, "value": "够了吗"}},
        {"id": "n3", "type": "wait", "x": 500, "y": 0, "properties": {"duration_ms": 10}},
        {"id": "n4", "type": "condition", "x": 500, "y": 100,
         "properties": {"condition_type": "expression", "expression": "${count} > 100"}},
        {"id": "n5", "type": "loop", "x": 700, "y": 0,
         "properties": {"loop_type": "count", "count": "2"}},
        {"id": "n6", "type": "loop", "x": 700, "y": 100,
         "properties": {"loop_type": "while", "while_condition": "count < 5"}},
    ],
    "edges": [
        {"id": "e1", "source": "n1", "target": "n2", "sourceAnchor": 1, "targetAnchor": 0,
         "type": "polyline", "properties": {}},
        {"id": "e2", "source": "n2", "target": "n3", "type": "polyline", "properties": {"branch": "true"}},
        {"id": "e3", "source": "n2", "target": "n4", "type": "polyline", "properties": {"branch": "false"}},
        {"id": "e4", "source": "n3", "target": "n5", "properties": {}},
        {"id": "e5", "source": "n4", "target": "n6", "properties": {"branch": "true"}},
    ],
}


def test_original_flow_imports_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "orig.json"
    path.write_text(json.dumps(ORIGINAL, ensure_ascii=False), "utf-8")
    flow = Flow.load(path)
    assert flow.name == "原流程" and flow.import_warnings == []
    assert flow.metadata["id"] == "flow-123" and flow.created == "2024-01-01T00:00:00"
    assert flow.nodes["n1"].label == "计数" and flow.nodes["n2"].label == "够了吗"
    assert flow.nodes["n3"].position == (500, 0)
    assert flow["n1"].operation == "increment" and flow["n1"].value == 1
    assert (flow["n2"].mode, flow["n2"].operator, flow["n2"].value) == ("variable", ">=", "1")
    assert flow["n3"].ms == 10
    assert flow["n4"].expression == "${count} > 100"
    assert (flow["n5"].mode, flow["n5"].count) == ("count", 2)
    assert (flow["n6"].mode, flow["n6"].condition) == ("while", "count < 5")
    assert [(e.source, e.target, e.branch) for e in flow.edges][:3] == [
        ("n1", "n2", None), ("n2", "n3", "true"), ("n2", "n4", "false")]
    result = flow.run(record=False, timeout=30)
    assert result.status == "ok", result.error
    statuses = {k: v["status"] for k, v in result.nodes.items()}
    assert statuses == {"n1": "done", "n2": "done", "n3": "done", "n4": "skipped",
                        "n5": "done", "n6": "skipped"}
    # saved in the native format, it loads back identically
    native = flow.save(tmp_path / "native.json")
    assert Flow.load(native).to_dict() == flow.to_dict()


def test_unmapped_properties_and_types_are_reported_never_ignored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(json.dumps(ORIGINAL))
    doc["nodes"][2]["properties"]["jitter_ms"] = 5
    path = tmp_path / "warn.json"
    path.write_text(json.dumps(doc), "utf-8")
    flow = Flow.load(path)
    assert [str(w) for w in flow.import_warnings] == [
        "node n3: properties.jitter_ms: property of 'wait' not mapped; ignored"]
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning: node n3: properties.jitter_ms" in err
    assert main(["validate", "--strict", str(path)]) == 2

    doc["nodes"].append({"id": "n9", "type": "teleport", "x": 0, "y": 0, "properties": {}})
    doc["nodes"][0]["properties"]["operation"] = "multiply"
    doc["nodes"][4]["properties"]["loop_type"] = "forever"
    with pytest.raises(FlowValidationError) as exc:
        Flow.from_dict(doc)
    lines = {str(p) for p in exc.value.problems}
    assert "node n9: type: original node type 'teleport' cannot be imported (no mapping)" in lines
    assert any(line.startswith("node n1: properties.operation: operation 'multiply'") for line in lines)
    assert any(line.startswith("node n5: properties.loop_type: loop type 'forever'") for line in lines)


def test_cli_run_accepts_the_original_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "orig.json"
    path.write_text(json.dumps(ORIGINAL), "utf-8")
    assert main(["run", str(path), "--json", "--no-record", "--passes", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok" and out["passes"] == 3 and out["variables"]["count"] == 3


def test_other_modules_extend_the_import_with_their_own_mappers() -> None:
    from kvmrpa.legacy import Mapped, OriginalNode, register_import_mapper

    def map_double(o: OriginalNode) -> Mapped:
        ms = o.number("ms", 1)
        o.ignore("colour")
        first = o.native("wait", {"ms": ms}, suffix="_a")
        second = o.native("wait", {"ms": ms}, suffix="_b")
        return Mapped([first, second], edges=[{"source": first["id"], "target": second["id"]}],
                      entry=first["id"], exit=second["id"])

    register_import_mapper("test_double_wait", map_double)
    doc = {
        "name": "ext", "version": "1",
        "nodes": [
            {"id": "s", "type": "wait", "x": 0, "y": 0, "properties": {"duration_ms": 0}},
            {"id": "d", "type": "test_double_wait", "x": 1, "y": 1,
             "properties": {"ms": "2", "colour": "red"}},
            {"id": "e", "type": "wait", "x": 2, "y": 2, "properties": {"duration_ms": 0}},
        ],
        "edges": [{"source": "s", "target": "d"}, {"source": "d", "target": "e"}],
    }
    flow = Flow.from_dict(doc)
    assert flow.import_warnings == []
    assert [(e.source, e.target) for e in flow.edges] == [("d_a", "d_b"), ("s", "d_a"), ("d_b", "e")]
    assert flow["d_a"].ms == 2
    assert flow.run(record=False, timeout=30).status == "ok"

"""Validation: every problem reported together, naming node and field; bad input never crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvmrpa import Flow, FlowFormatError, FlowValidationError, configure, get_settings
from kvmrpa.cli import main


def _doc(nodes: list[dict], edges: list[dict], **top: object) -> dict:
    return {"schema_version": 1, "name": "v", "nodes": nodes, "edges": edges, **top}


BAD = _doc(
    [
        {"id": "a", "type": "wait", "params": {"ms": -5}},
        {"id": "b", "type": "nope"},
        {"id": "a", "type": "wait"},
        {"id": "c", "type": "condition", "params": {"expression": "1 +"}},
        {"id": "d", "type": "wait", "params": {"bogus": 1, "ms": "soon"}},
        {"id": "e", "type": "variable"},
        {"id": "f", "type": "wait", "colour": "red"},
    ],
    [
        {"source": "a", "target": "zz"},
        {"source": "c", "target": "d", "branch": "maybe"},
        {"source": "d", "target": "e"},
        {"source": "e", "target": "c"},
    ],
    extra=1,
)


def test_all_problems_are_reported_together_with_node_and_field() -> None:
    with pytest.raises(FlowValidationError) as err:
        Flow.from_dict(BAD)
    lines = {str(p) for p in err.value.problems}
    expected = {
        "flow: extra: unknown field",
        "node f: colour: unknown field",
        "node b: type: unknown node type 'nope'",
        "node a: id: duplicate node id (nodes[2])",
        "node a: edges[0].target: no node 'zz' (dangling edge)",
        "node e: params.variable: is required",
    }
    assert expected <= lines, lines
    assert any(line.startswith("node a: params.ms: invalid value -5") for line in lines)
    assert any(line.startswith("node d: params.ms: invalid value 'soon'") for line in lines)
    assert any(line.startswith("node d: params.bogus: unknown parameter") for line in lines)
    assert any(line.startswith("node c: params.expression: invalid expression") for line in lines)
    assert any(line.startswith("node c: edges[1].branch: 'condition' cannot produce branch 'maybe'")
               for line in lines)
    cycle = [line for line in lines if "cycle" in line]
    assert len(cycle) == 1 and all(n in cycle[0] for n in ("c", "d", "e")), cycle


def test_code_built_flows_validate_too() -> None:
    flow = Flow("code")
    flow.add("condition", "c", expression="")
    flow.add("wait", "w")
    flow.connect("c", "w", branch="other")
    flow.connect("w", "c")
    with pytest.raises(FlowValidationError) as err:
        flow.start(record=False)
    text = str(err.value)
    assert "node c: params.expression: is empty" in text
    assert "cannot produce branch 'other'" in text and "cycle" in text


def test_cli_validate_prints_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(BAD), "utf-8")
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) >= 12
    assert all(line.startswith(("node ", "flow: ")) for line in out)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_doc([{"id": "a", "type": "wait"}], [])), "utf-8")
    assert main(["validate", str(good)]) == 0


@pytest.mark.parametrize(("data", "message"), [
    (b'{"schema_version": 1, "nodes": [\n  {"id": "a",', "line 2, column"),
    (b'\xff\xfe{"a": 1}', "not UTF-8: byte 0xff at offset 0"),
    (b'[1, 2]', "a JSON object"),
    (b'{"a": ' * 100_000, "JSON"),
])
def test_unreadable_files_give_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              data: bytes, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(data)
    with pytest.raises(FlowFormatError, match=message.split(":")[0]):
        Flow.load(path)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.err


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().out


def test_ten_thousand_node_flow_validates_and_the_limit_applies(tmp_path: Path) -> None:
    nodes = [{"id": f"n{i}", "type": "wait", "params": {"ms": 0}} for i in range(10_000)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(9_999)]
    flow = Flow.from_dict(_doc(nodes, edges))
    assert len(flow.nodes) == 10_000
    settings = get_settings()
    old = settings.engine.max_nodes
    configure(engine__max_nodes=5_000)
    try:
        with pytest.raises(FlowValidationError, match="10000 nodes; the limit is 5000"):
            Flow.from_dict(_doc(nodes, edges))
    finally:
        settings.engine.max_nodes = old


def test_a_mess_of_bad_nodes_is_summarised() -> None:
    nodes = [{"id": f"n{i}", "type": "wait", "params": {"ms": -1}} for i in range(2_000)]
    with pytest.raises(FlowValidationError) as err:
        Flow.from_dict(_doc(nodes, []))
    assert len(err.value.problems) == 501
    assert "1500 more problems" in str(err.value.problems[-1])


def test_wrong_types_at_top_level_are_problems_not_crashes() -> None:
    with pytest.raises(FlowValidationError) as err:
        Flow.from_dict({"schema_version": 1, "name": 3, "nodes": {"a": 1}, "edges": "x",
                        "variables": []})
    text = str(err.value)
    assert "name" in text and "nodes" in text and "edges" in text and "variables" in text

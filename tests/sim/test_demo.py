"""``kvmrpa demo``: progress lines and the result table."""

from __future__ import annotations

import json

from kvmrpa.cli import main


def test_demo_runs_a_scenario_with_progress_and_table(capsys) -> None:
    assert main(["demo", "--seed", "1017", "--scenario", "scenario2"]) == 0
    out = capsys.readouterr().out
    assert "[1/1] scenario2:" in out
    for node in ("grab", "read", "trigger", "click", "confirm"):
        assert f"✓ {node}" in out
    table = out.split("scenario    status")[1]
    assert "scenario2   ok" in table and "第2步" in table and "✓" in table


def test_demo_json(capsys) -> None:
    assert main(["demo", "--seed", "1018", "--scenario", "scenario1", "--no-realism", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["scenario"], r["status"], r["screen"], r["url"]) for r in rows] == [
        ("scenario1", "ok", "已确定", "sim://scenario1?seed=1018&realism=0")]

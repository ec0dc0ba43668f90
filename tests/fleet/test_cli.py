"""``kvmrpa fleet run``: bad input is one line and exit 2, before any cluster starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmrpa.cli import main
from kvmrpa.engine import Flow

from .conftest import sim_targets, write_targets


def _flow(tmp_path: Path) -> str:
    flow = Flow("tiny")
    flow.add("wait", "w", ms=1)
    return str(flow.save(tmp_path / "tiny.json"))


def test_bad_targets_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text('[[target]]\nid = "x"\nsource = "sim://desktop"\ninput = "sim://desktop"\n'
                   'secrets = { pw = "letmein" }\n', "utf-8")
    assert main(["fleet", "run", _flow(tmp_path), "--targets", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == (f"kvmrpa fleet: error: targets file {bad}: target 'x': secrets.pw: a secret "
                   "in plain text; use ${env:NAME}\n")
    assert "letmein" not in err


def test_bad_flow_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = str(write_targets(tmp_path / "t.toml", sim_targets(1)))
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 1, "name": "x", "nodes": [{"id": "a", "type": "wait", '
                      '"params": {"ms": -1}}], "edges": []}', "utf-8")
    assert main(["fleet", "run", str(broken), "--targets", targets]) == 2
    assert capsys.readouterr().out.startswith("node a: params.ms: invalid value -1")
    assert main(["fleet", "run", _flow(tmp_path), "--targets", targets, "--passes", "-1"]) == 2
    assert "--passes must be >= 0" in capsys.readouterr().err
    assert main(["fleet", "run", _flow(tmp_path), "--targets", targets, "--select",
                 "room=nowhere"]) == 2
    assert capsys.readouterr().err.startswith("kvmrpa fleet: error: no target matches")


def test_unreachable_scheduler_is_one_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    targets = str(write_targets(tmp_path / "t.toml", sim_targets(1)))
    assert main(["fleet", "run", _flow(tmp_path), "--targets", targets, "--scheduler",
                 "tcp://127.0.0.1:9", "--connect-timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kvmrpa fleet: error: cannot reach the Dask scheduler "
                          "tcp://127.0.0.1:9") and err.count("\n") == 1


def test_without_dask_a_run_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    targets = str(write_targets(tmp_path / "t.toml", sim_targets(1)))
    assert main(["fleet", "run", _flow(tmp_path), "--targets", targets]) == 2
    assert capsys.readouterr().err == ("kvmrpa fleet: error: fleet runs need Dask distributed: "
                                       "pip install 'kvmrpa[fleet]'\n")

"""``kvmrpa run`` / ``schema``: the exact JSON contract, exit codes, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmrpa import Flow
from kvmrpa.cli import main
from kvmrpa.engine import flow_schema


def _save(flow: Flow, tmp_path: Path) -> str:
    return str(flow.save(tmp_path / f"{flow.name}.json"))


def test_run_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = Flow("contract", variables={"n": 0}, source="sim://one")
    flow.add("variable", "inc", variable="n", operation="increment")
    flow.add("condition", "c", expression="n > 100")
    flow.add("wait", "never", ms=0)
    flow.connect("inc", "c")
    flow.connect("c", "never", branch="true")
    path = _save(flow, tmp_path)
    code = main(["run", path, "--json", "--no-record", "--passes", "2",
                 "--input", "vnc://${env:NOPE}@127.0.0.1:5999", "--var", "n=10"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["flow", "status", "passes", "error", "nodes", "variables", "actions",
                         "source", "outcome"]
    assert out["outcome"] == "ok · nothing done (c → false; 1 skipped)"
    assert out["flow"] == "contract" and out["status"] == "ok" and out["passes"] == 2
    assert out["error"] is None and out["variables"] == {"n": 12} and out["actions"] == []
    assert set(out["nodes"]) == {"inc", "c", "never"}
    inc = out["nodes"]["inc"]
    assert set(inc) == {"type", "status", "runs", "started_s", "finished_s"}
    assert inc["type"] == "variable" and inc["status"] == "done" and inc["runs"] == 2
    assert 0 <= inc["started_s"] <= inc["finished_s"] <= out["nodes"]["c"]["started_s"]
    assert out["nodes"]["never"] == {"type": "wait", "status": "skipped", "runs": 0,
                                     "started_s": None, "finished_s": None}
    assert out["source"]["url"] == "sim://one"
    assert out["source"]["input"].startswith("vnc://")


def test_run_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = Flow("boom")
    bad.add("python", "p", code="raise RuntimeError('nope')")
    assert main(["run", _save(bad, tmp_path), "--json", "--no-record"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "failed" and "node p" in out["error"] and "nope" in out["error"]

    endless = Flow("endless")
    endless.add("wait", "w", ms=20)
    assert main(["run", _save(endless, tmp_path), "--json", "--no-record", "--passes", "0",
                 "--duration", "0.3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "stopped" and out["passes"] >= 1

    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 1, "name": "x", "nodes": [{"id": "a", "type": "wait", '
                      '"params": {"ms": -1}}], "edges": []}', "utf-8")
    assert main(["run", str(broken)]) == 2
    assert capsys.readouterr().out.startswith("node a: params.ms: invalid value -1")


# Runs ``kvmrpa run`` with default SIGINT handling even if this test process inherited
# "ignore", waits until the flow touched ``marker``, then presses Ctrl-C.
_CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from kvmrpa.cli import main; sys.exit(main(sys.argv[1:]))")


def _interrupt(path: str, marker: Path, *args: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of a run interrupted once ``marker`` exists."""
    proc = subprocess.Popen([sys.executable, "-c", _CLI, "run", path, "--json", "--no-record",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the run did not start"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # far less than any wedge in these flows
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    flow = Flow("forever")
    flow.add("python", "mark", code=f"open({str(marker)!r}, 'w').close()")
    flow.add("wait", "w", ms=30_000)
    flow.connect("mark", "w")
    returncode, out, err = _interrupt(_save(flow, tmp_path), marker, "--passes", "0")
    assert returncode == 130, err
    assert "Traceback" not in err
    data = json.loads(out)
    assert data["status"] == "stopped" and data["nodes"]["w"]["status"] == "stopped"
    assert data["nodes"]["mark"]["status"] == "done"


def test_ctrl_c_when_the_run_does_not_stop_exits_130_with_one_line(tmp_path: Path) -> None:
    """A node wedges the event loop (so the stop cannot happen): after --stop-timeout the
    CLI says so in one line, with no traceback, and exits 130 without waiting for it."""
    marker = tmp_path / "wedged"
    flow = Flow("wedge")
    flow.add("python", "block", code=(
        "import time\n"
        "ctx.runtime.loop.call_soon_threadsafe(time.sleep, 120)\n"
        f"open({str(marker)!r}, 'w').close()"))
    flow.add("wait", "w", ms=30_000)
    flow.connect("block", "w")
    returncode, out, err = _interrupt(_save(flow, tmp_path), marker, "--stop-timeout", "0.5")
    assert returncode == 130, err
    assert out == ""
    assert err.splitlines() == ["kvmrpa run: flow 'wedge' did not stop within 0.5 s of "
                                "Ctrl-C; exiting without its result (a node may still be "
                                "running)"]


def test_schema_command_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == flow_schema()
    assert main(["schema", "--nodes"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["nodes"]["wait"]["params"]["ms"]["minimum"] == 0


def test_ctrl_c_does_not_wait_for_a_blocking_node_at_exit(tmp_path: Path) -> None:
    """A python node sleeping in a worker thread cannot be interrupted: after Ctrl-C the
    run stops and prints its result, and the process exits then instead of joining the
    sleeping thread (90 s) at interpreter exit."""
    marker = tmp_path / "sleeping"
    flow = Flow("sleeper")
    flow.add("python", "nap", code=(
        "import time\n"
        f"open({str(marker)!r}, 'w').close()\n"
        "time.sleep(90)"))
    # The sleep alone would take 90 s; _interrupt allows 60.
    returncode, out, err = _interrupt(_save(flow, tmp_path), marker, "--stop-timeout", "25")
    assert returncode == 130, err
    assert "Traceback" not in err and "did not stop" not in err
    data = json.loads(out)
    assert data["flow"] == "sleeper" and data["status"] == "stopped"
    assert data["nodes"]["nap"]["status"] != "done"

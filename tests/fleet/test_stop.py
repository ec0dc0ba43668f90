"""Ctrl-C on ``kvmrpa fleet run`` (SIGINT to its process group, as a terminal sends it,
so its LocalCluster's workers get it too): every target's run stops, no input after the
stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .conftest import (
    finished,
    json_lines,
    kill_group,
    marker_flow,
    records,
    start_cli,
    write_targets,
)


@pytest.mark.timeout(240)
def test_sigint_stops_every_target(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    targets = [{"id": f"s{i}", "source": f"sim://desktop?seed={i}",
                "input": f"sim://desktop?seed={i}", "labels": {"room": "b2"},
                "variables": {"marker": str(marks / f"s{i}")}} for i in range(3)]
    tfile = write_targets(tmp_path / "targets.toml", targets)
    flow = marker_flow("until-stopped", wait_ms=50, loop=True)
    flow.nodes["mark"].node.code = "open(variables['marker'], 'a').write('x')"
    flow_file = str(flow.save(tmp_path / "loop.json"))
    home = tmp_path / "caller-home"
    cli = start_cli(["fleet", "run", flow_file, "--targets", str(tfile), "--local", "2",
                     "--json"], home)
    try:
        deadline = time.monotonic() + 150
        # every target is in its third pass or later: it has sent input already
        while not all((marks / f"s{i}").exists() and len((marks / f"s{i}").read_text()) >= 3
                      for i in range(3)):
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "the targets did not start"
            time.sleep(0.05)
        os.killpg(cli.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
        out, err = cli.communicate(timeout=90)
    finally:
        kill_group(cli)
    assert cli.returncode == 130, out + err
    assert "Traceback" not in err
    lines = json_lines(out)
    results = {o["target"]: o for o in lines if o["kind"] == "target"}
    assert sorted(results) == ["s0", "s1", "s2"]
    assert lines[-1]["kind"] == "summary" and lines[-1]["stop_requested"] is True
    recs = records(home / "runs")
    for tid, res in results.items():
        assert res["status"] == "stopped" and res["stopped_at"], out + err
        (lines_,) = recs[tid]
        stop = [line for line in lines_ if line["kind"] == "fleet" and line["event"] == "stopped"]
        assert [s["wall"] for s in stop] == [res["stopped_at"]]
        actions = [line for line in lines_ if line["kind"] == "action"]
        assert len(actions) >= 2
        assert all(a["driver"] == f"sim://desktop?seed={tid[1:]}" for a in actions)
        late = [a for a in actions if a["time"] > res["stopped_at"]]
        assert late == [], f"{tid}: input after the stop: {late}"
        assert finished(lines_)["status"] == "stopped"

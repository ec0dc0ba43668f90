"""A LocalCluster fleet: 12 simulated targets on 2 worker processes, and a dead source."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from kvmrpa.fleet import Fleet, Target
from kvmrpa.sim import flow_path

from .conftest import finished, records, sim_targets


@pytest.mark.timeout(300)
def test_twelve_sim_targets_on_two_workers(home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    targets = [Target(t["id"], t["source"], t["input"], t["labels"]) for t in sim_targets(12)]
    inputs = {t.id: t.input for t in targets}
    targets.append(Target("dead", "rtsp://127.0.0.1:9/nothing-listens",
                          "sim://scenario1?seed=999", {"room": "x"}))
    table = Fleet(targets, local=2, threads=1).run(flow_path("scenario1"))

    # a pandas table, one row per target in the targets' order; progress lines meanwhile
    assert isinstance(table, pd.DataFrame) and list(table.index) == [t.id for t in targets]
    progress = re.findall(r"^\[(\d+)/13\] (\S+): (\w+)", capsys.readouterr().out, re.M)
    assert sorted(int(n) for n, _t, _s in progress) == list(range(1, 14))
    assert {t: s for _n, t, s in progress} == dict(table["status"])

    # the dead source fails alone, with its own error
    assert table.loc["dead", "status"] == "failed" and "node grab" in table.loc["dead", "error"]
    ok = table.drop(index="dead")
    assert set(ok["status"]) == {"ok"} and set(ok["attempts"]) == {1}
    assert ok["worker"].nunique() == 2  # spread over both workers

    # records came back to this process's store; each target's actions went to its own
    # desktop only (and the desktops differ: the click points do)
    recs = records(home / "runs")
    assert sorted(recs) == sorted(table.index)
    clicks = {}
    for tid, row in ok.iterrows():
        (lines,) = recs[tid]
        assert lines[0]["kind"] == "run" and lines[0]["run_id"] == row["run_id"]
        assert lines[0]["fleet"] == {"target": tid, "attempt": 1, "worker": row["worker"],
                                     "rerun_of": None, "labels": row["labels"]}
        assert finished(lines)["status"] == "ok"
        actions = [line for line in lines if line["kind"] == "action"]
        assert [a["driver"] for a in actions] == [inputs[tid]]
        assert actions[0]["action"] == "click"
        clicks[tid] = (actions[0]["args"]["x"], actions[0]["args"]["y"])
        assert row["record"] == str(next((home / "runs").glob(f"{row['run_id']}-*.jsonl")))
    assert len(set(clicks.values())) > 1
    assert finished(recs["dead"][0])["status"] == "failed"

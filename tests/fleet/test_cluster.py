"""A real ``dask scheduler`` and two ``dask worker`` processes on loopback, started by the
test; one worker is SIGKILLed mid-run: its targets run again on the other and end ok."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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

DASK = str(Path(sys.executable).with_name("dask"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, what: str, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class _Proc:
    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._fh = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in kill()
        self.proc = subprocess.Popen(args, stdout=self._fh, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, text=True)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        kill_group(self.proc)
        self._fh.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[tuple[_Proc, str]]]]:
    """``(scheduler address, [(worker process, worker address), ...])``."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[_Proc] = []
    try:
        env = {**os.environ}
        sched = _Proc([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                       "--no-dashboard", "--no-show"], tmp_path / "scheduler.log", env)
        procs.append(sched)
        _wait_for(lambda: "Scheduler at:" in sched.text() or sched.proc.poll() is not None,
                  "the scheduler")
        assert sched.proc.poll() is None, sched.text()
        workers = []
        for i in range(2):
            wenv = {**env, "KVMRPA_HOME": str(tmp_path / f"worker{i}-home")}
            w = _Proc([DASK, "worker", address, "--nthreads", "1", "--no-nanny",
                       "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                       "--death-timeout", "60"], tmp_path / f"worker{i}.log", wenv)
            procs.append(w)
            workers.append(w)
        found = []
        for w in workers:
            _wait_for(lambda w=w: "Registered to:" in w.text() or w.proc.poll() is not None,
                      "a worker to register")
            m = re.search(r"Start worker at:\s+(tcp://\S+)", w.text())
            assert m and w.proc.poll() is None, w.text()
            found.append((w, m.group(1)))
        yield address, found
    finally:
        for p in reversed(procs):
            p.kill()


@pytest.mark.timeout(240)
def test_sigkill_a_worker_mid_run(tmp_path: Path, cluster: tuple[str, list]) -> None:  # type: ignore[type-arg]
    address, workers = cluster
    marks = tmp_path / "marks"
    marks.mkdir()
    targets = [{"id": f"k{i}", "source": f"sim://desktop?seed={i}",
                "input": f"sim://desktop?seed={i}", "labels": {"room": "b2"},
                "variables": {"marker": str(marks / f"k{i}")}} for i in range(4)]
    tfile = write_targets(tmp_path / "targets.toml", targets)
    flow = marker_flow("hold-on", wait_ms=4000)
    flow_file = str(flow.save(tmp_path / "hold.json"))
    home = tmp_path / "caller-home"
    cli = start_cli(["fleet", "run", flow_file, "--targets", str(tfile), "--scheduler", address,
                     "--wait-workers", "2", "--json"], home)
    try:
        _wait_for(lambda: len(list(marks.iterdir())) == 4 or cli.poll() is not None,
                  "every target to start")
        assert cli.poll() is None, cli.communicate()
        victim, victim_address = workers[0]
        victim.kill()  # SIGKILL, mid-run: every target is inside its 4 s wait
        out, err = cli.communicate(timeout=150)
    finally:
        kill_group(cli)
    assert cli.returncode == 0, out + err
    lines = json_lines(out)
    results = {o["target"]: o for o in lines if o["kind"] == "target"}
    summary = lines[-1]
    assert summary["kind"] == "summary" and summary["ok"] == 4
    survivor = workers[1][1]
    moved = [r for r in results.values() if r["attempts"] == 2]
    assert moved, "no target was placed on the killed worker"
    assert summary["reruns"] == len(moved)
    for r in results.values():
        assert r["status"] == "ok"
        if r["attempts"] == 2:
            assert r["worker"] == survivor
            (first,) = r["interrupted"]
            assert first["worker"] == victim_address and "lost mid-run" in first["reason"]
        else:
            assert r["interrupted"] == []
    # records complete: an interrupted record and a finished one for each moved target
    recs = records(home / "runs")
    assert sorted(recs) == sorted(results)
    for tid, r in results.items():
        if r["attempts"] == 1:
            (only,) = recs[tid]
            assert finished(only)["status"] == "ok" and only[0]["fleet"]["attempt"] == 1
            continue
        cut, rerun = recs[tid]
        assert cut[0]["fleet"] == {"target": tid, "attempt": 1, "worker": victim_address,
                                   "rerun_of": None, "labels": {"room": "b2"}}
        assert finished(cut)["status"] == "interrupted"
        assert rerun[0]["fleet"]["rerun_of"] == cut[0]["run_id"]
        assert rerun[0]["fleet"]["attempt"] == 2 and rerun[0]["fleet"]["worker"] == survivor
        assert finished(rerun)["status"] == "ok"
        assert [a["action"] for a in rerun if a["kind"] == "action"] == ["key", "key"]

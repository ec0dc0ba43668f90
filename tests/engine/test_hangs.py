"""Processes end: ``kvmrpa run`` with nodes stuck in worker threads, exhausted pools,
nodes that end the process, and runs whose process died."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kvmrpa import Flow
from kvmrpa.engine import list_runs


def _save(flow: Flow, tmp_path: Path) -> str:
    return str(flow.save(tmp_path / f"{flow.name}.json"))


def _kvmrpa(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> tuple[int, str, str, float]:
    """``(exit code, stdout, stderr, seconds)`` of ``kvmrpa ARGS`` in its own group."""
    full_env = {**os.environ, "KVMRPA_HOME": str(tmp_path / "home"), **(env or {})}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kvmrpa", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out, err, time.monotonic() - t0


def test_a_timed_out_spinning_node_does_not_keep_kvmrpa_run_alive(tmp_path: Path) -> None:
    flow = Flow("spin")
    flow.add("python", "spin", code="while True:\n    pass", timeout=1)
    code, out, err, _s = _kvmrpa(tmp_path, "run", _save(flow, tmp_path), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["status"] == "failed" and "timed out after 1 s" in data["error"]
    assert data["nodes"]["spin"]["status"] == "failed"
    assert "warning: node spin of flow 'spin' still running in a worker thread" in err
    assert "Traceback" not in err


def test_abandoned_threads_exhaust_the_pool_then_nodes_fail_at_once_naming_them(
        tmp_path: Path) -> None:
    flow = Flow("naps", passes=5)
    flow.add("python", "nap", code="import time\ntime.sleep(3600)", timeout=0.2)
    code, out, err, _s = _kvmrpa(tmp_path, "run", _save(flow, tmp_path), "--json",
                                 env={"KVMRPA_RUNTIME_POOL_SIZE": "2"})
    assert code == 1, err
    data = json.loads(out)  # printed: the record's write does not need a pool thread
    assert data["passes"] == 5
    assert "all 2 worker threads are held" in data["error"]
    assert "node nap of flow 'naps'" in data["error"]
    runs = list_runs(folder=tmp_path / "home" / "runs")
    assert runs and runs[0]["status"] == "failed"


def test_a_node_calling_os_exit_fails_instead_of_ending_the_process(tmp_path: Path) -> None:
    for code_line, expected in (("import os\nos._exit(0)", "os._exit(0) called by node bye"),
                                ("import sys\nsys.exit(3)", "SystemExit: 3")):
        flow = Flow("quitter")
        flow.add("python", "bye", code=code_line)
        code, out, err, _s = _kvmrpa(tmp_path, "run", _save(flow, tmp_path), "--json")
        assert code == 1, err
        data = json.loads(out)
        assert data["status"] == "failed" and data["nodes"]["bye"]["status"] == "failed"
        assert expected in data["error"]


def test_a_run_whose_process_was_killed_is_listed_as_interrupted(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    flow = Flow("victim")
    flow.add("python", "mark", code=f"open({str(marker)!r}, 'w').close()")
    flow.add("wait", "w", ms=60_000)
    flow.connect("mark", "w")
    env = {**os.environ, "KVMRPA_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "kvmrpa", "run", _save(flow, tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        for _ in range(1200):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the run did not start"
        for _ in range(1200):  # the record's first line is written by the writer thread
            runs = list_runs(folder=tmp_path / "home" / "runs")
            if runs and runs[0]["id"]:
                break
            time.sleep(0.05)
        assert [r["status"] for r in runs] == ["running"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    runs = list_runs(folder=tmp_path / "home" / "runs")
    assert [r["status"] for r in runs] == ["interrupted"]
    code, out, err, _s = _kvmrpa(tmp_path, "runs")
    assert code == 0 and "interrupted" in out, err


def test_runtime_refuses_pool_work_once_abandoned_calls_hold_every_thread() -> None:
    import asyncio
    import threading

    from kvmrpa import PoolExhaustedError
    from kvmrpa._runtime import Runtime

    rt = Runtime(pool_size=1, name="kvmrpa-test-exhaust")
    release = threading.Event()
    try:
        async def main() -> Any:
            with_timeout = asyncio.wait_for(
                rt.run_blocking("node x of flow 'f'", release.wait, 30), 0.05)
            with contextlib.suppress(TimeoutError):
                await with_timeout
            assert rt.abandoned() == ["node x of flow 'f'"]
            try:
                await rt.to_thread(lambda: 1)
            except PoolExhaustedError as exc:
                return str(exc)
            return None

        msg = rt.run(main(), timeout=30)
        assert msg is not None and "node x of flow 'f'" in msg
        release.set()
        for _ in range(400):
            if not rt.abandoned():
                break
            time.sleep(0.01)
        assert rt.abandoned() == []
        assert rt.run(rt.to_thread(lambda: 2), timeout=30) == 2
    finally:
        release.set()
        rt.shutdown()

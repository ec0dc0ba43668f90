"""Fleet test helpers: a private caller store, targets files, flows, the CLI in a child."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kvmrpa import configure, get_settings
from kvmrpa.engine import Flow, read_run

# ``kvmrpa`` with default SIGINT handling even if this test process inherited "ignore".
CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
       "from kvmrpa.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """The caller's kvmrpa home of this test (its run store is ``home / "runs"``)."""
    settings = get_settings()
    old = settings.store.home
    folder = tmp_path / "home"
    configure(store__home=str(folder))
    try:
        yield folder
    finally:
        settings.store.home = old


def sim_targets(n: int, scenario: str = "scenario1", **variables: Any) -> list[dict[str, Any]]:
    """``n`` targets, each on its own simulated desktop (distinct seeds; 5 fps, so that
    a dozen desktops rendering at once stay cheap on a busy machine)."""
    return [{"id": f"sim-{i:02d}", "source": f"sim://{scenario}?seed={100 + i}&fps=5",
             "input": f"sim://{scenario}?seed={100 + i}&fps=5",
             "labels": {"room": "b2" if i % 2 else "a1"},
             "variables": {k: (v.format(i=i) if isinstance(v, str) else v)
                           for k, v in variables.items()}}
            for i in range(n)]


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def write_targets(path: Path, targets: Sequence[dict[str, Any]]) -> Path:
    lines = []
    for t in targets:
        lines.append("[[target]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in t.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def marker_flow(name: str, *, wait_ms: int, loop: bool = False) -> Flow:
    """Touch ``variables["marker"]``, press a key on the target, wait ``wait_ms``,
    press another (no recognition: cheap on a busy machine)."""
    flow = Flow(name)
    flow.add("python", "mark", code="open(variables['marker'], 'w').close()")
    flow.add("keyboard", "first", action="key", key="a")
    flow.add("wait", "hold", ms=wait_ms)
    flow.add("keyboard", "second", action="key", key="b")
    flow.connect("mark", "first")
    flow.connect("first", "hold")
    flow.connect("hold", "second")
    if loop:
        flow.passes = 0
    return flow


def records(runs_dir: Path) -> dict[str, list[list[dict[str, Any]]]]:
    """Every record in ``runs_dir`` by fleet target, oldest first."""
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for path in sorted(runs_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
        lines = read_run(path)
        fleet = lines[0].get("fleet") or {}
        out.setdefault(fleet.get("target", "?"), []).append(lines)
    for recs in out.values():
        recs.sort(key=lambda r: r[0]["fleet"]["attempt"])
    return out


def finished(lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``flow_finished`` line of a record."""
    (last,) = [line for line in lines if line["kind"] == "flow_finished"]
    return last


def start_cli(args: Sequence[str], home: Path, **popen: Any) -> subprocess.Popen[str]:
    """``kvmrpa ARGS`` in its own process group, with ``home`` as its kvmrpa home."""
    env = {**os.environ, "KVMRPA_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, **popen)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc``'s process group (it was started with ``start_new_session``)."""
    # the whole group, even when its leader has exited: children may remain
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
        proc.communicate(timeout=10)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

"""The example flows on the simulator: 20 seeds each, a wrong flow, the CLI, only pixels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kvmrpa import FrameTimeoutError
from kvmrpa.capture import FrameSource, register_source
from kvmrpa.engine import Flow
from kvmrpa.sim import SimSource, flow_path, get_desktop

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_FLOWS = ROOT / "notebooks" / "flows"

EXPECTED = {
    "scenario1": lambda st: st["page"] == "confirmed" and st["status"] == "已确定",
    "scenario2": lambda st: st["page"] == "step2" and st["status"] == "第2步",
    "scenario3": lambda st: st["entry"] == "测试3" and st["focused"] == "entry",
}


def _run(flow: Flow, url: str, source: str | None = None):
    return flow.run(timeout=90, source=source or url, input=url, record=False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_flow_passes_on_20_seeds(name: str) -> None:
    flow = Flow.load(NOTEBOOK_FLOWS / f"{name}.json")
    clicks = set()
    for seed in range(100, 120):
        url = f"sim://{name}?seed={seed}"
        desktop = get_desktop(url)  # held so the run's desktop can be inspected afterwards
        result = _run(flow, url)
        assert result.status == "ok", (seed, result.error)
        st = desktop.state()
        assert EXPECTED[name](st), (seed, st)
        first = result.actions[0]
        assert first["action"] == "click" and first["ok"]
        clicks.add((first["args"]["x"], first["args"]["y"]))
    assert len(clicks) == 20  # every layout differed; nothing could be hard-coded


def test_wrong_flow_fails_naming_the_wait_until_node() -> None:
    flow = Flow.load(NOTEBOOK_FLOWS / "scenario1.json")
    flow["click"].text = "取消"
    flow["confirm"].wait_timeout = 1.5
    url = "sim://scenario1?seed=131"
    desktop = get_desktop(url)
    result = _run(flow, url)
    assert result.status == "failed"
    assert "confirm" in result.error and result.nodes["confirm"]["status"] == "failed"
    assert desktop.state()["page"] == "cancelled" and desktop.state()["status"] == "已取消"


def test_cli_run_json() -> None:
    url = "sim://scenario2?seed=141"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "kvmrpa", "run", str(NOTEBOOK_FLOWS / "scenario2.json"),
         "--source", url, "--input", url, "--passes", "1", "--json", "--no-record"],
        capture_output=True, text=True, timeout=100, cwd=ROOT, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "ok" and out["nodes"]["confirm"]["status"] == "done"
    assert [a["node"] for a in out["actions"]] == ["click"]


def test_package_flows_are_the_notebook_flows() -> None:
    for name in EXPECTED:
        assert flow_path(name).read_bytes() == (NOTEBOOK_FLOWS / f"{name}.json").read_bytes()
        flow = Flow.load(flow_path(name))
        assert flow.source == flow.input == f"sim://{name}"
        assert flow[flow_trigger(flow)].text  # the trigger is read, not hard-coded


def flow_trigger(flow: Flow) -> str:
    return next(fn.id for fn in flow if fn.type == "vision_condition")


class PixelRelay(FrameSource):
    """A plain source that republishes copies of the simulator's pixels and nothing else."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._inner = SimSource("sim://" + url.split("://", 1)[1])
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._inner.start()
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._relay, name="test-pixel-relay", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        seq = None
        while not self._stop_event.is_set():
            try:
                frame = self._inner.wait_frame(seq, timeout=0.5)
            except FrameTimeoutError:
                continue
            seq = frame.seq
            self._publish(frame.image.copy(), frame.captured)

    def _stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(5)
        self._inner.stop()


def test_flows_need_nothing_but_pixels() -> None:
    """The flow passes when its video comes from a source that only relays pixels."""
    register_source("pixels", PixelRelay)
    url = "sim://scenario1?seed=151"
    desktop = get_desktop(url)
    flow = Flow.load(NOTEBOOK_FLOWS / "scenario1.json")
    result = _run(flow, url, source="pixels://scenario1?seed=151")
    assert result.status == "ok", result.error
    assert result.source["url"].startswith("pixels://")
    assert desktop.state()["page"] == "confirmed"


def test_all_three_flows_on_the_default_desktop() -> None:
    """The dashboard's default desktop: every example flow works there, one after another,
    and the 重置 button brings a new layout."""
    from kvmrpa import run_sync
    from kvmrpa.sim import SimDriver

    url = "sim://desktop?seed=161&reset=600"
    desktop = get_desktop(url)
    before = desktop.find("ok")
    result = _run(Flow.load(NOTEBOOK_FLOWS / "scenario1.json"), url)
    assert result.status == "ok", result.error
    assert desktop.state()["status"] == "已确定" and "dialog" not in desktop.state()["windows"]
    driver = SimDriver(url)
    x, y, w, h = desktop.find("reset")
    run_sync(driver.click(x + w / 2, y + h / 2))
    run_sync(driver.aclose())
    assert desktop.state()["resets"] == 1 and desktop.find("ok") != before
    # The shared source may still hold a frame of the old layout: the flows' source node
    # waits for a frame captured after it started, so none of them acts on it.
    for name in ("scenario2", "scenario3"):
        result = _run(Flow.load(NOTEBOOK_FLOWS / f"{name}.json"), url)
        assert result.status == "ok", (name, result.error)
    st = desktop.state()
    assert st["clicks"] == ["ok", "reset", "next", "entry"] and st["status"] == "第2步"
    assert st["entries"]["entry"] == "测试3" and st["focused"] == "entry"

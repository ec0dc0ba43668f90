"""The fleet dashboard in Chromium: ``kvmrpa serve --fleet`` on a LocalCluster of two
workers and three simulated targets. Thumbnails load, "Start all shown" brings every
target to ok, a loop flow stopped from the page sends no input after the stop on any
target (checked in each target's run record), and the closer look shows its screen."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from kvmrpa.engine import Flow, read_run
from tests.fixtures.input_probe import record_after_stop

from .conftest import new_page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

IDS = ("sim-0", "sim-1", "sim-2")


def _targets(path: Path) -> Path:
    rows = []
    for i, tid in enumerate(IDS):
        url = f"sim://desktop?seed={300 + i}&fps=5"
        rows += ["[[target]]", f'id = "{tid}"', f'source = "{url}"', f'input = "{url}"',
                 f'labels = {{ room = "{"b2" if i else "a1"}" }}', ""]
    path.write_text("\n".join(rows), encoding="utf-8")
    return path


def _flow(name: str, passes: int) -> Flow:
    flow = Flow(name, passes=passes)
    flow.add("keyboard", "first", action="key", key="a")
    flow.add("wait", "hold", ms=40)
    flow.add("mouse", "click", x=30, y=30)
    flow.connect("first", "hold")
    flow.connect("hold", "click")
    return flow


def _states(p: object) -> dict[str, str]:
    return p.evaluate("""() => {
        const out = {};
        const walk = (root) => {
            root.querySelectorAll('*').forEach((el) => {
                if (el.classList && el.classList.contains('fleet-card'))
                    out[el.dataset.target] = el.dataset.state;
                if (el.shadowRoot) walk(el.shadowRoot);
            });
        };
        walk(document);
        return out;
    }""")


def _wait(cond: object, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_fleet_dashboard_thumbnails_start_and_stop(serve_dashboard, chromium, tmp_path,
                                                   artifacts_dir) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    _flow("keys", 1).save(flows / "keys.json")
    _flow("keys-loop", 0).save(flows / "keys-loop.json")
    home = tmp_path / "home"
    env = {**os.environ, "KVMRPA_HOME": str(home)}
    with serve_dashboard("--fleet", str(_targets(tmp_path / "targets.toml")), "--flows",
                         str(flows), "--local", "2", env=env, timeout=150) as server:
        context, pg = new_page(chromium, viewport={"width": 1300, "height": 900})
        try:
            p = pg.page
            p.goto(server.url)
            # every target's thumbnail, encoded on its worker, is shown
            thumbs = p.locator("img.thumb")
            _wait(lambda: thumbs.count() == 3, "three thumbnails")
            for i in range(3):
                assert thumbs.nth(i).evaluate("img => img.complete && img.naturalWidth") == 240
            assert _states(p) == dict.fromkeys(IDS, "idle")
            link = p.locator("a.dask-dashboard")
            href = link.get_attribute("href")
            assert href.startswith("http://127.0.0.1:")
            assert httpx.get(href, timeout=20, follow_redirects=True).status_code == 200
            # the label filter
            p.locator("input[placeholder='every target']").click()
            p.get_by_role("option", name="room=a1", exact=True).click()
            _wait(lambda: list(_states(p)) == ["sim-0"], "the filter")
            p.keyboard.press("Escape")
            p.locator(".choices__button").first.click()  # remove the chip
            _wait(lambda: len(_states(p)) == 3, "every target again")

            # start all shown → every target ok
            p.get_by_role("button", name="Start all shown", exact=True).click()
            _wait(lambda: _states(p) == dict.fromkeys(IDS, "ok"), "every target ok", 120)
            assert "pass rate: 100% of 1 run" in p.locator(".fleet-card").first.inner_text()

            # a loop flow, stopped from the page
            p.locator("select").first.select_option("keys-loop")
            p.get_by_role("button", name="Start all shown", exact=True).click()
            _wait(lambda: set(_states(p).values()) == {"running"}, "every target running")
            p.wait_for_timeout(2500)  # several passes on every target
            p.get_by_role("button", name="Stop all shown", exact=True).click()
            _wait(lambda: _states(p) == dict.fromkeys(IDS, "stopped"), "every target stopped")

            # the closer look: a larger picture from the target's worker
            p.get_by_role("button", name="Open", exact=True).first.click()
            big = p.locator("img.detail-screen")
            _wait(lambda: big.count() == 1, "the closer look")
            assert big.evaluate("img => img.naturalWidth") == 640
            p.screenshot(path=os.path.join(artifacts_dir, "fleet-dashboard.png"), full_page=True)
            assert pg.errors == [] and pg.blocked == []
        finally:
            context.close()
    loops = {}
    for path in (home / "runs").glob("*keys-loop*.jsonl"):
        lines = read_run(path)
        loops[lines[0]["fleet"]["target"]] = (path, lines)
    assert sorted(loops) == list(IDS)
    for tid, (path, lines) in loops.items():
        res = record_after_stop(path)
        assert res["stopped"], tid
        assert res["after"] == [], f"{tid}: input after the stop: {res['after']}"
        assert res["still_held"] == []
        actions = [line for line in lines if line["kind"] == "action"]
        assert len(actions) >= 4, f"{tid}: the loop sent too little before the stop"
        assert all(a["driver"].startswith(f"sim://desktop?seed={300 + IDS.index(tid)}")
                   for a in actions)
        (fin,) = [line for line in lines if line["kind"] == "flow_finished"]
        assert fin["status"] == "stopped"

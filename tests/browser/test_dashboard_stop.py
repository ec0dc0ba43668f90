"""Stop from the dashboard in Chromium: a loop flow clicking as fast as it can, stopped at
random moments; the run record shows no action after the stop and nothing held down."""

from __future__ import annotations

import os
import random

import pytest

from tests.fixtures.input_probe import fast_click_flow, record_after_stop

from .conftest import new_page
from .test_dashboard_state import node_states, status_of, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TRIALS = 25


def test_stop_from_the_dashboard_sends_nothing_after(serve_dashboard, chromium, tmp_path,
                                                     artifacts_dir) -> None:
    from kvmrpa.engine import list_runs

    flows = tmp_path / "flows"
    flows.mkdir()
    fast_click_flow("sim://desktop", name="clicker").save(flows / "clicker.json")
    rng = random.Random(14)
    with serve_dashboard("--flows", str(flows)) as server:
        context, pg = new_page(chromium, viewport={"width": 1440, "height": 900})
        try:
            p = pg.page
            p.goto(server.url)
            p.get_by_label("Live view").wait_for(timeout=90_000)
            wait_for(lambda: len(node_states(p)) == 3, what="flow graph")
            seen_runs: set[str] = set()
            results = []
            for trial in range(TRIALS):
                p.get_by_role("button", name="Run in a loop", exact=True).click()
                wait_for(lambda: status_of(p) == "running", timeout=60, what="running")
                p.wait_for_timeout(rng.uniform(50, 1200))  # a random moment of the loop
                p.get_by_role("button", name="Stop", exact=True).click()
                wait_for(lambda: status_of(p) == "stopped", timeout=60, what="stopped")
                runs = [r for r in list_runs(limit=50) if r.get("flow") == "clicker"
                        and r.get("path") and r.get("path") not in seen_runs]
                assert runs, "no run record of the trial"
                path = runs[0]["path"]
                seen_runs.add(path)
                wait_for(lambda path=path: record_after_stop(path)["stopped"], timeout=30,
                         what="stop in the record")
                res = record_after_stop(path)
                results.append(res)
                assert res["after"] == [], f"trial {trial}: actions after the stop: {res['after']}"
                assert res["still_held"] == [], f"trial {trial}: held: {res['still_held']}"
                # A node cut by Stop is drawn as stopped, never as failed.
                assert "failed" not in node_states(p).values(), node_states(p)
            p.screenshot(path=os.path.join(artifacts_dir, "dashboard-stopped.png"))
            assert sum(1 for r in results if r["stopped"]) == TRIALS
            assert pg.errors == []
        finally:
            context.close()

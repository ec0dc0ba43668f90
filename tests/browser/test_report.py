"""Run reports in headless Chromium: a failed run on the simulator (a wrong target text)
gives a page, read offline, where the failing node's frame loads and its recognised
texts are listed; replaying that run with the corrected flow reaches ok without the
simulator; the dashboard's Runs tab shows the same report."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvmrpa import RunResult, configure, get_settings
from kvmrpa.capture import SOURCES
from kvmrpa.kvm import DRIVERS
from kvmrpa.sim import reset
from tests.engine.test_report import SIM, confirm_flow

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunResult]:
    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(tmp_path_factory.mktemp("browser-report-home")))
    try:
        reset(SIM)
        result = confirm_flow("已确定了").run(timeout=90)  # the screen says 已确定
        assert result.status == "failed"
        yield result
    finally:
        settings.store.home = old


def _failing_section(p: Any) -> Any:
    return p.locator("section.frame.failed")


def test_the_failed_run_s_report_shows_the_frame_and_texts_offline(
        failed_run: RunResult, page: Any, artifacts_dir: str, tmp_path: Path) -> None:
    target = failed_run.report().save(tmp_path / "report.html")
    p = page.page
    p.goto(target.as_uri())
    section = _failing_section(p)
    section.wait_for(timeout=30_000)
    img = section.locator("img")
    p.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(),
                        timeout=30_000)
    assert img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [1280, 720]
    failing = section.locator(".ev.st-failed[data-node='confirm']")
    assert "did not appear" in failing.locator(".error").inner_text()
    texts = failing.locator("ol.texts li .txt").all_inner_texts()
    assert "已确定" in texts
    assert section.locator("svg.overlay rect").count() >= len(texts)  # boxes drawn over it
    assert p.locator("svg.graph g.state-failed[data-node='confirm']").count() == 1
    assert p.locator("svg.graph g.state-done").count() == 4
    section.scroll_into_view_if_needed()
    p.screenshot(path=os.path.join(artifacts_dir, "report-failed-run.png"), full_page=True)
    assert page.errors == [] and page.blocked == []

    # the same run replayed with the corrected flow: ok, and the simulator is never asked
    def no_simulator(url: str) -> Any:
        raise AssertionError(f"the simulator was asked for: {url}")

    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(Path(failed_run.record or "").parent.parent))
    try:
        with SOURCES.temporarily("sim", no_simulator), DRIVERS.temporarily("sim", no_simulator):
            again = confirm_flow("已确定", wait_timeout=20.0).run(
                timeout=90, source=f"replay://{failed_run.run_id}?speed=max")
    finally:
        settings.store.home = old
    assert again.status == "ok", again.error
    assert again.source["input"] == "dryrun://replay"


def test_the_dashboard_runs_tab_shows_the_report(failed_run: RunResult, serve_dashboard: Any,
                                                 page: Any, artifacts_dir: str) -> None:
    home = Path(failed_run.record or "").parent.parent
    env = {**os.environ, "KVMRPA_HOME": str(home)}
    with serve_dashboard(env=env, timeout=240) as server:  # a loaded machine starts slowly
        p = page.page
        p.goto(server.url)
        p.get_by_role("button", name="Runs").click()
        runs = p.get_by_role("listbox")
        runs.wait_for(timeout=120_000)
        p.get_by_label("Status", exact=True).select_option("failed")
        option = p.get_by_role("option", name=failed_run.run_id)
        option.wait_for(timeout=90_000)
        runs.select_option(label=option.inner_text())
        section = _failing_section(p)
        section.wait_for(timeout=120_000)
        img = section.locator("img")
        p.wait_for_function("img => img.complete && img.naturalWidth > 0",
                            arg=img.element_handle(), timeout=90_000)
        assert "已确定" in section.locator(".ev.st-failed ol.texts li .txt").all_inner_texts()
        p.screenshot(path=os.path.join(artifacts_dir, "report-runs-tab.png"), full_page=True)
        assert page.errors == []

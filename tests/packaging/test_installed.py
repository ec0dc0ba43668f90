"""The wheel as a user installs it: a fresh virtual environment, a working folder outside
the repository, no PYTHONPATH; the CLI, the widgets and the dashboard in Chromium."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.conftest import new_page, serve

from .conftest import ROOT, Built, Installed

# the first test also builds and installs the wheel; the last serves and runs a flow
pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SCENARIOS = ("scenario1", "scenario2", "scenario3")


def wait_for(pred: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.2)


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_the_installed_copy_is_what_runs(installed: Installed) -> None:
    out = installed.run(installed.python, "-c", (
        "import json, sys, kvmrpa, kvmrpa.widgets, kvmrpa.cli\n"
        "from importlib import metadata\n"
        "print(json.dumps([kvmrpa.__file__, kvmrpa.widgets.__file__, kvmrpa.cli.__file__,"
        " metadata.version('kvmrpa'), sys.path]))")).stdout
    core, widgets, cli, version, path = json.loads(out)
    for f in (core, widgets, cli):
        assert _inside(f, installed.venv), f
        assert not _inside(f, ROOT), f
    # the checkout is not on the path (only its environment's site-packages, for the deps)
    assert ROOT.resolve() not in {Path(p).resolve() for p in path if p}
    assert installed.run(installed.bin / "kvmrpa", "--version").stdout.strip() == f"kvmrpa {version}"


def test_demo_runs_from_the_installed_package(installed: Installed) -> None:
    proc = installed.run(installed.bin / "kvmrpa", "demo", "--seed", "11", "--json", timeout=240)
    rows = json.loads(proc.stdout)
    assert [r["scenario"] for r in rows] == list(SCENARIOS)
    assert all(r["status"] == "ok" and r["screen"] == r["expected"] for r in rows), rows


def test_notebooks_copies_the_shipped_examples(installed: Installed, built: Built) -> None:
    proc = installed.run(installed.bin / "kvmrpa", "notebooks", "examples")
    target = installed.work / "examples"
    assert "jupyter lab examples" in proc.stdout
    for path in (built.src / "notebooks").glob("*.ipynb"):
        assert (target / path.name).read_bytes() == path.read_bytes()
    for path in (built.src / "kvmrpa" / "sim" / "flows").glob("*.json"):
        assert (target / "flows" / path.name).read_bytes() == path.read_bytes()
    again = installed.run(installed.bin / "kvmrpa", "notebooks", "examples", check=False)
    assert again.returncode == 2 and "--force" in again.stderr
    assert installed.run(installed.bin / "kvmrpa", "notebooks", "--force", "examples")


def test_served_dashboard_lists_the_scenarios_and_runs_one(
        installed: Installed, chromium: object, tmp_path: Path, artifacts_dir: str) -> None:
    with serve(tmp=tmp_path, command=[str(installed.bin / "kvmrpa"), "serve"],
               cwd=installed.work, env=installed.env) as server:
        context, page = new_page(chromium)
        shot = Path(artifacts_dir) / "packaging-installed-dashboard.png"
        try:
            p = page.page
            p.goto(server.url)
            p.get_by_label("Live view").wait_for(timeout=60_000)
            tabs = p.get_by_role("tablist", name="Flows").get_by_role("tab")
            wait_for(lambda: tabs.count() == 3, what="three flows listed")
            names = tabs.evaluate_all("els => els.map(e => e.dataset.flow)")
            assert sorted(names) == list(SCENARIOS), names
            p.get_by_role("tab", name="scenario1").click()
            wait_for(lambda: p.locator(".kv-node[data-node]").count() >= 2, what="flow graph")
            status = p.get_by_label("Flow status")
            p.get_by_role("button", name=re.compile(r"^Run( once)?$")).click()
            wait_for(lambda: status.inner_text() == "ok" or status.inner_text().startswith("failed"),
                     timeout=90, what="run end")
            p.screenshot(path=str(shot), full_page=True)
            assert status.inner_text() == "ok"
            assert page.errors == [] and page.blocked == []
        except Exception as exc:
            with contextlib.suppress(Exception):
                page.page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"{exc}\npage errors: {page.errors}\nblocked: {page.blocked}"
                                 f"\nserver log (end):\n{server.output()[-3000:]}") from exc
        finally:
            context.close()
        log = server.output()
        flows_line = next(ln for ln in log.splitlines() if "dashboard at" in ln)
        # the user's copy of the package's flows: Save never writes into the package
        assert str(installed.env["HOME"]) in flows_line, flows_line
        assert "Launching server" not in log  # one line says where, not two

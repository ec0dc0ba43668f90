"""App mode in headless Chromium: each role logs in, sees what it may do, and the server
refuses (and audits) the rest, also when the page is tampered with: disabled controls
re-enabled and values forced through BokehJS models, as a crafted client would.

A flow file with a Python node that appends to a marker file is served: running the flow
(from disk) appends for operators and up; creating, editing or trying a Python node from
the browser is refused for every role unless an admin on a ``--allow-code`` server.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kvmrpa._auth import set_account

from .conftest import new_page, wait_for

pytestmark = pytest.mark.browser

ROLES = ("viewer", "operator", "editor", "admin")

#: Sets properties of every BokehJS model whose label/title is ``label`` (as a tampered
#: page would); changes sync to the server like user input.
FORCE = """([label, props]) => {
  const ms = [...Bokeh.documents[0].all_models].filter(m => m.label === label || m.title === label);
  for (const m of ms) for (const [k, v] of Object.entries(props)) m[k] = v;
  return ms.length }"""

OPTIONS = """(label) => {
  const m = [...Bokeh.documents[0].all_models].find(m => m.title === label && m.options);
  return m ? m.options.map(o => Array.isArray(o) ? o[0] : o) : null }"""



def make_site(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    """Flows folder, auth file (one user per role), marker file, and the server's env."""
    from kvmrpa.widgets._engine import flow_class

    flows = tmp_path / "flows"
    flows.mkdir()
    marker = tmp_path / "marker"
    Flow = flow_class()
    flow = Flow("codeflow", description="a flow with a Python node from its file")
    flow.add("wait", "w", ms=10)
    flow.add("python", "py", code=f"with open({str(marker)!r}, 'a') as f: f.write('x')")
    flow.connect("w", "py")
    flow.save(flows / "codeflow.json")
    users = tmp_path / "users"
    for role in ROLES:
        set_account(users, role, f"{role}-pw", role)
    env = {**os.environ, "KVMRPA_HOME": str(tmp_path / "home")}
    return flows, users, marker, env


def login(chromium, url: str, user: str, password: str, **context_args):
    context, page = new_page(chromium, **context_args)
    p = page.page
    p.goto(url)
    p.fill("#username", user)
    p.fill("#password", password)
    p.click("button[type=submit]")
    try:
        p.get_by_label("Live view").wait_for(timeout=90_000)
    except Exception:
        context.close()
        raise
    return context, page


def audit(tmp_path: Path) -> list[dict]:
    path = tmp_path / "home" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def graph_nodes(p) -> dict[str, str]:
    return dict(p.locator(".kv-node[data-node]").evaluate_all(
        "els => els.map(e => [e.dataset.node, e.textContent])"))


def shoot(p, artifacts_dir: str, name: str) -> None:
    p.screenshot(path=os.path.join(artifacts_dir, f"browser-auth-{name}.png"), full_page=True)


def check_role(chromium, url: str, role: str, tmp_path: Path, flows: Path, marker: Path,
               runs: int, artifacts_dir: str) -> int:
    """One role's session on the served codeflow; returns the runs made so far."""
    context, page = login(chromium, url, role, f"{role}-pw")
    p = page.page
    try:
        assert f"signed in as {role} ({role})" in p.get_by_label("Signed in").inner_text()
        wait_for(lambda: "py" in graph_nodes(p), what="flow graph")
        p.locator('.kv-node[data-node="py"]').click()
        p.get_by_text("Edit node", exact=True).click()
        p.get_by_text("Edit flow", exact=True).click()
        # The palette never offers Python here; viewers/operators get no editor.
        options = p.evaluate(OPTIONS, "Node type")
        if role in ("viewer", "operator"):
            assert options is None
            assert p.get_by_text("Editing flows needs the editor role").is_visible()
        else:
            assert "wait" in options and "python" not in options
            # a permitted edit, saved to the file
            p.get_by_label("Node type").select_option("wait")
            p.get_by_label("Node id").fill(f"w_{role}")
            p.get_by_role("button", name="Add node").click()
            try:
                wait_for(lambda: f"w_{role}" in graph_nodes(p), what="added node")
            except AssertionError as exc:
                shoot(p, artifacts_dir, f"role-{role}-add-failed")
                said = p.locator(".alert").all_inner_texts()
                raise AssertionError(f"{exc}; the editor said {said!r}") from None
            p.get_by_role("button", name="Save", exact=True).click()
            wait_for(lambda: f"w_{role}" in (flows / "codeflow.json").read_text(),
                     what="saved flow")
            # forced past the palette: still no Python node
            p.evaluate(FORCE, ["Node type", {"options": ["python"], "value": "python"}])
            p.get_by_role("button", name="Add node").click()
            time.sleep(1.0)
            assert [n for n, t in graph_nodes(p).items() if "python" in t] == ["py"]
        if role in ("viewer", "operator"):
            save = p.get_by_role("button", name="Save", exact=True)
            assert save.is_disabled()
            p.evaluate(FORCE, ["Save", {"disabled": False}])
            wait_for(save.is_enabled, what="tampered Save enabled")
            save.click()
            wait_for(lambda: any(r["user"] == role and r["action"] == "save"
                                 for r in audit(tmp_path)), what="audited save")
            # console mode: an operator's clicks reach the target, a viewer's not
            p.get_by_role("button", name="console").click()
            box = p.get_by_label("Live view").bounding_box()
            # the audit coalesces console lines per user (one per 2 s): click until one lands
            def clicked_and_audited() -> bool:
                p.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                p.wait_for_timeout(2500)
                return any(r["user"] == role and r["action"] == "console"
                           for r in audit(tmp_path))
            wait_for(clicked_and_audited, what="audited console")
        # "Run on current frame" on the Python node: disabled; re-enabled, refused.
        run_button = p.get_by_role("button", name="Run on current frame")
        assert run_button.is_disabled()
        assert p.evaluate(FORCE, ["Run on current frame", {"disabled": False}]) >= 1
        wait_for(run_button.is_enabled, what="tampered button enabled")
        run_button.click()
        wait_for(lambda: p.get_by_text(f"{role} ({role}) may not try py").count() > 0,
                 what="refusal of try")
        # Its code field: read-only; forced, the server refuses and keeps the code.
        assert p.evaluate(FORCE, ["Code", {"disabled": False,
                                           "value": "open('/tmp/pwned','w')"}]) >= 1
        wait_for(lambda: any(r["user"] == role and r["action"] == "edit"
                             and r.get("target") == "py" for r in audit(tmp_path)),
                 what="audited edit")
        # Run the flow from its file: operators and up; a viewer is refused.
        run_once = p.get_by_role("button", name="Run once")
        if role == "viewer":
            assert run_once.is_disabled()
            p.evaluate(FORCE, ["Run once", {"disabled": False}])
            wait_for(run_once.is_enabled, what="tampered Run once enabled")
            run_once.click()
            wait_for(lambda: any(r["user"] == "viewer" and r["action"] == "run"
                                 for r in audit(tmp_path)), what="audited run")
            assert p.get_by_label("Flow status").inner_text() == "idle"
        else:
            run_once.click()
            runs += 1
            wait_for(lambda: marker.exists() and len(marker.read_text()) == runs,
                     what=f"the file's Python node ran for {role}")
            # the run has ended (not just reached its last node) before the next login,
            # whose editor is locked while a run of the flow is active
            wait_for(lambda: p.get_by_label("Flow status").inner_text().startswith("ok"),
                     what=f"{role}'s run ended ok")
        shoot(p, artifacts_dir, f"role-{role}")
        assert not Path("/tmp/pwned").exists()
        assert page.blocked == []
    finally:
        context.close()
    return runs


@pytest.mark.timeout(360)  # four logins and runs on a loaded 2-core machine
def test_each_role_without_allow_code(serve_dashboard, chromium, tmp_path, artifacts_dir) -> None:
    flows, users, marker, env = make_site(tmp_path)
    with serve_dashboard("--flows", str(flows), "--auth-file", str(users),
                         ready_status=(302,), env=env) as server:
        runs = 0
        for role in ROLES:
            runs = check_role(chromium, server.url, role, tmp_path, flows, marker, runs,
                              artifacts_dir)
        assert marker.read_text() == "xxx"
        records = audit(tmp_path)
        verdict: dict[tuple[str, str, bool], bool] = {}
        for r in records:
            key = (r["user"], r["action"], bool(r.get("detail", {}).get("code")))
            verdict[key] = verdict.get(key, r["allowed"]) and r["allowed"]
        for role in ROLES:
            assert verdict[(role, "login", False)] is True
            assert verdict[(role, "try", True)] is False
            assert verdict[(role, "edit", True)] is False
            assert verdict[(role, "run", False)] is (role != "viewer")
            assert verdict[(role, "save", False)] is (role in ("editor", "admin"))
        assert verdict[("viewer", "console", False)] is False
        assert verdict[("operator", "console", False)] is True
        saved = (flows / "codeflow.json").read_text()
        assert "w_editor" in saved and "w_admin" in saved and "pwned" not in saved
        assert all(r["ts"] and r["address"] == "127.0.0.1" for r in records)
        assert "-pw" not in server.output() + json.dumps(records)


def code_palette(chromium, url: str, role: str, artifacts_dir: str) -> None:
    """On a --allow-code server: only an admin gets Python in the palette, adds one and
    may try the file's Python node."""
    context, page = login(chromium, url, role, f"{role}-pw")
    p = page.page
    try:
        wait_for(lambda: "py" in graph_nodes(p), what="flow graph")
        p.get_by_text("Edit flow", exact=True).click()
        options = p.evaluate(OPTIONS, "Node type")
        assert ("python" in options) == (role == "admin")
        if role == "admin":
            p.get_by_label("Node type").select_option("python")
            p.get_by_label("Node id").fill("admin_code")
            p.get_by_role("button", name="Add node").click()
            wait_for(lambda: "admin_code" in graph_nodes(p), what="admin's Python node")
            p.locator('.kv-node[data-node="py"]').click()
            p.get_by_text("Edit node", exact=True).click()
            assert p.get_by_role("button", name="Run on current frame").is_enabled()
            shoot(p, artifacts_dir, "admin-allow-code")
        assert page.blocked == []
    finally:
        context.close()


@pytest.mark.timeout(240)
def test_admin_with_allow_code_may_create_python(serve_dashboard, chromium, tmp_path,
                                                 artifacts_dir) -> None:
    flows, users, _marker, env = make_site(tmp_path)
    with serve_dashboard("--flows", str(flows), "--auth-file", str(users), "--allow-code",
                         ready_status=(302,), env=env) as server:
        code_palette(chromium, server.url, "editor", artifacts_dir)
        code_palette(chromium, server.url, "admin", artifacts_dir)
    allowed = [r for r in audit(tmp_path) if r.get("detail", {}).get("code")]
    assert any(r["user"] == "admin" and r["action"] == "edit" and r["allowed"] for r in allowed)

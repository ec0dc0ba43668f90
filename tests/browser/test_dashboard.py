"""``kvmrpa serve`` in headless Chromium: live video, running scenario1, debugging."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from .conftest import wait_for

pytestmark = pytest.mark.browser



def node_states(page) -> dict[str, str]:
    return dict(page.locator(".kv-node[data-node]").evaluate_all(
        "els => els.map(e => [e.dataset.node, e.dataset.state])"))


def shoot(page, artifacts_dir: str, name: str) -> None:
    page.screenshot(path=os.path.join(artifacts_dir, f"browser-{name}.png"), full_page=True)


def test_live_view_streams_without_console_errors(serve_dashboard, page, artifacts_dir) -> None:
    with serve_dashboard() as server:
        p = page.page
        p.goto(server.url)
        canvas = p.get_by_label("Live view")
        canvas.wait_for(timeout=60_000)
        wait_for(lambda: int(canvas.get_attribute("data-frame-seq")) > 0, what="first frame")
        s0 = int(canvas.get_attribute("data-frame-seq"))
        p.wait_for_timeout(2000)  # time.sleep would stall the routed page
        s1 = int(canvas.get_attribute("data-frame-seq"))
        shoot(p, artifacts_dir, "live")
        assert s1 - s0 >= 20, f"data-frame-seq advanced by {s1 - s0} in 2 s"
        assert p.get_by_label("Flow status").inner_text() == "idle"
        # The flows are tabs: the three scenarios, the first one selected.
        tabs = p.get_by_role("tab")
        assert tabs.count() == 3
        assert p.get_by_role("tab", name="scenario1").get_attribute("aria-selected") == "true"
        # Drag a region on the video and save it as a template (the name is prompted).
        box = canvas.bounding_box()
        p.mouse.move(box["x"] + 100, box["y"] + 100)
        p.mouse.down()
        p.mouse.move(box["x"] + 180, box["y"] + 140, steps=5)
        p.mouse.up()
        p.once("dialog", lambda d: d.accept("browser_tpl"))
        p.get_by_role("button", name="Save region as template").click()
        png = Path(os.environ["KVMRPA_HOME"]) / "templates" / "browser_tpl.png"
        wait_for(png.is_file, timeout=30, what="template file")
        img = cv2.imread(str(png))
        assert img is not None and img.shape[0] > 10 and img.shape[1] > 20
        assert page.errors == []


def canvas_text(canvas) -> str:
    from kvmrpa.vision import ocr

    png = canvas.screenshot()
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return "".join(t.text for t in ocr(img))


def test_run_scenario1_to_ok(serve_dashboard, page, artifacts_dir) -> None:
    with serve_dashboard() as server:
        p = page.page
        p.goto(server.url)
        p.get_by_label("Live view").wait_for(timeout=60_000)
        p.get_by_role("tab", name="scenario1").click()
        status = p.get_by_label("Flow status")
        wait_for(lambda: len(node_states(p)) >= 2, what="flow graph")
        p.get_by_role("button", name="Run once", exact=True).click()
        wait_for(lambda: status.inner_text() != "idle", what="run start")
        shoot(p, artifacts_dir, "scenario1-running")
        wait_for(lambda: status.inner_text() in ("ok",) or status.inner_text().startswith("failed"),
                 timeout=90, what="run end")
        shoot(p, artifacts_dir, "scenario1-ok")
        assert status.inner_text() == "ok"
        states = node_states(p)
        assert states and set(states.values()) == {"done"}, states
        canvas = p.get_by_label("Live view")
        wait_for(lambda: "已确定" in canvas_text(canvas), timeout=30, what="已确定 on the live view")
        assert page.errors == []


def test_breakpoint_step_continue(serve_dashboard, page, artifacts_dir) -> None:
    with serve_dashboard() as server:
        p = page.page
        p.goto(server.url)
        p.get_by_label("Live view").wait_for(timeout=60_000)
        p.get_by_role("tab", name="scenario1").click()
        wait_for(lambda: len(node_states(p)) >= 2, what="flow graph")
        order = list(node_states(p))
        target = order[1]
        p.get_by_role("checkbox", name=target, exact=True).check()
        status = p.get_by_label("Flow status")
        p.get_by_role("button", name="Run once", exact=True).click()
        wait_for(lambda: status.inner_text() == "paused", timeout=90, what="pause at breakpoint")
        wait_for(lambda: node_states(p)[target] == "paused", what=f"{target} paused")
        shoot(p, artifacts_dir, "breakpoint-paused")
        done_before = [n for n, s in node_states(p).items() if s == "done"]
        assert target not in done_before
        p.get_by_role("button", name="Step", exact=True).click()
        wait_for(lambda: node_states(p)[target] in ("done", "failed"), timeout=60,
                 what=f"{target} stepped")
        assert node_states(p)[target] == "done"
        assert status.inner_text() == "paused"
        shoot(p, artifacts_dir, "breakpoint-stepped")
        p.get_by_role("button", name="Continue", exact=True).click()
        wait_for(lambda: status.inner_text() == "ok" or status.inner_text().startswith("failed"),
                 timeout=90, what="run end")
        shoot(p, artifacts_dir, "breakpoint-continued")
        assert status.inner_text() == "ok"
        assert set(node_states(p).values()) == {"done"}
        assert page.errors == []


def test_auth_required_off_loopback_and_login_page(serve_dashboard, tmp_path) -> None:
    auth = tmp_path / "users"
    from kvmrpa._auth import set_account

    auth.write_text("# users\n", encoding="utf-8")
    set_account(auth, "alice", "s3cret", "viewer")
    with serve_dashboard("--auth-file", str(auth), ready_status=(200, 302)) as server:
        r = httpx.get(server.url, follow_redirects=False, timeout=10)
        assert r.status_code == 302 and "login" in r.headers["location"]
        assert "s3cret" not in server.output()


def find_text(canvas, text: str) -> tuple[float, float] | None:
    """Centre of ``text`` on the canvas, in CSS pixels relative to the canvas."""
    from kvmrpa.vision import ocr

    png = canvas.screenshot()
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    box = canvas.bounding_box()
    sx, sy = box["width"] / img.shape[1], box["height"] / img.shape[0]
    for t in ocr(img):
        if t.text == text:
            x, y, w, h = t.bbox
            return (x + w / 2) * sx, (y + h / 2) * sy
    return None


def test_console_mode_drives_the_target(serve_dashboard, page, artifacts_dir) -> None:
    with serve_dashboard("--source", "sim://scenario1", "--input", "sim://scenario1") as server:
        p = page.page
        p.goto(server.url)
        canvas = p.get_by_label("Live view")
        canvas.wait_for(timeout=60_000)
        wait_for(lambda: int(canvas.get_attribute("data-frame-seq")) > 0, what="first frame")
        at = None

        def found() -> bool:
            nonlocal at
            at = find_text(canvas, "确定")
            return at is not None

        wait_for(found, timeout=30, what="确定 on the live view")
        p.get_by_role("button", name="Console mode").click()
        assert p.get_by_role("button", name="Console mode").get_attribute("aria-pressed") == "true"
        canvas.click(position={"x": at[0], "y": at[1]})
        wait_for(lambda: "已确定" in canvas_text(canvas), timeout=30, what="已确定 after the click")
        shoot(p, artifacts_dir, "console-click")
        assert page.errors == []


def test_notebook_serves_the_same_dashboard(serve_dashboard, page) -> None:
    import sys

    panel = [sys.executable, "-m", "panel", "serve", "notebooks/03-dashboard.ipynb",
             "--address", "127.0.0.1"]
    with serve_dashboard(command=panel, path="03-dashboard") as server:
        p = page.page
        p.goto(server.url)
        canvas = p.get_by_label("Live view")
        canvas.wait_for(timeout=60_000)
        wait_for(lambda: int(canvas.get_attribute("data-frame-seq")) > 0, what="first frame")
        # 03 serves notebooks/my-flows: the flow saved by 01, or the copied scenario flow
        folder = Path(__file__).resolve().parents[2] / "notebooks" / "my-flows"
        names = sorted(f.stem for f in folder.glob("*.json"))
        assert names, "03 left no flow in notebooks/my-flows"
        assert p.get_by_role("tab").count() == len(names)
        assert p.get_by_role("tab", name=names[0]).get_attribute("aria-selected") == "true"
        assert p.get_by_label("Flow status").inner_text() == "idle"
        assert page.errors == []

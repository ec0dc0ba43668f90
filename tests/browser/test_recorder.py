"""Recording in the served dashboard: console mode, Record, scenario 3 by mouse and
keyboard in headless Chromium, Stop → a new draft flow, saved, that passes on another
seed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from kvmrpa.sim import flow_path

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
RECORD_URL = "sim://scenario3?seed=7&realism=1"


def wait_for(pred: Callable[[], bool], page, timeout: float = 60.0,
             what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        page.wait_for_timeout(200)  # time.sleep would stall the routed page


def canvas_texts(canvas) -> list[tuple[str, tuple[float, float, float, float]]]:
    """The texts on the live view, boxes in CSS pixels relative to the canvas."""
    from kvmrpa.vision import ocr

    png = canvas.screenshot()
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    box = canvas.bounding_box()
    sx, sy = box["width"] / img.shape[1], box["height"] / img.shape[0]
    return [(t.text, (t.bbox[0] * sx, t.bbox[1] * sy, t.bbox[2] * sx, t.bbox[3] * sy))
            for t in ocr(img)]


def type_key(cdp, p, ch: str) -> None:
    """One key press of a character, as a keyboard with that character sends it (a
    Chinese layout for 测 and 试: Playwright's US layout has no such key)."""
    cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": ch, "text": ch,
                                        "unmodifiedText": ch})
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})


def test_record_scenario3_through_the_live_view(serve_dashboard, page, artifacts_dir,
                                               tmp_path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(flow_path("scenario3"), flows / "scenario3.json")
    with serve_dashboard("--flows", str(flows), "--source", RECORD_URL,
                         "--input", RECORD_URL) as server:
        p = page.page
        p.goto(server.url)
        canvas = p.get_by_label("Live view")
        canvas.wait_for(timeout=60_000)
        wait_for(lambda: int(canvas.get_attribute("data-frame-seq")) > 0, p, what="first frame")
        record = p.get_by_role("button", name="● Record")
        assert not record.is_visible()  # only in console mode
        label: tuple[float, float, float, float] | None = None

        def label_seen() -> bool:
            nonlocal label
            label = next((b for t, b in canvas_texts(canvas) if t == "请输入"), None)
            return label is not None

        wait_for(label_seen, p, timeout=30, what="请输入 on the live view")
        p.get_by_role("button", name="Console mode").click()
        record.wait_for(state="visible", timeout=10_000)
        record.click()
        status = p.get_by_label("Recorder status")
        wait_for(lambda: "recording" in status.inner_text(), p, timeout=10, what="recording")
        shoot = lambda name: p.screenshot(  # noqa: E731
            path=os.path.join(artifacts_dir, f"browser-recorder-{name}.png"), full_page=True)

        # click just below 请输入 (in its box), then type 测试3 and press Enter
        x, y, w, h = label
        canvas.click(position={"x": x + w / 2, "y": y + h + h * 0.6})
        cdp = p.context.new_cdp_session(p)
        for ch in "测试":
            type_key(cdp, p, ch)
        p.keyboard.press("3")
        wait_for(lambda: any(t == "测试3" for t, _ in canvas_texts(canvas)), p, timeout=30,
                 what="测试3 in the box")
        shoot("typed")
        p.keyboard.press("Enter")
        wait_for(lambda: any(t == "已提交" for t, _ in canvas_texts(canvas)), p, timeout=30,
                 what="已提交 after Enter")
        wait_for(lambda: "recording: 3 steps" in status.inner_text(), p, timeout=30,
                 what="the steps counted")  # a click, the typed text, Enter
        record.click()  # stop: the flow is built and opened as a new draft
        tab = p.get_by_role("tab", name="recorded")
        tab.wait_for(timeout=60_000)
        wait_for(lambda: tab.get_attribute("aria-selected") == "true", p, timeout=30,
                 what="the recorded flow selected")
        draft = p.get_by_label("Draft state")
        wait_for(lambda: "not saved" in draft.inner_text(), p, timeout=10, what="unsaved")
        wait_for(lambda: "new flow recorded:" in status.inner_text(), p, timeout=20,
                 what="the recorder's summary")
        shoot("recorded")
        p.get_by_role("button", name="Save", exact=True).click()
        saved = flows / "recorded.json"
        wait_for(saved.is_file, p, timeout=20, what="the recorded flow saved")
        wait_for(lambda: draft.inner_text() == "saved", p, timeout=10, what="saved state")
        shoot("saved")
        assert page.errors == []

    data = json.loads(saved.read_text(encoding="utf-8"))
    kinds = [(n["type"], n.get("params", {}).get("text")) for n in data["nodes"]]
    assert ("mouse", "请输入") in kinds and ("keyboard", "测试3") in kinds, kinds
    assert data["metadata"]["recording"]["fragile"] == []
    other = "sim://scenario3?seed=31"
    proc = subprocess.run(
        [sys.executable, "-m", "kvmrpa", "run", str(saved), "--source", other, "--input", other,
         "--passes", "1", "--json", "--no-record"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
        env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "ok" and {n["status"] for n in out["nodes"].values()} == {"done"}
    assert [a["action"] for a in out["actions"]][:1] == ["click"]

"""End to end on the real lab: the Tk app on Xvfb, seen through GStreamer's RTSP server
(H.264 decoded by OpenCV/FFmpeg) and driven through x11vnc. The app's own event log
confirms what the flows did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvmrpa import Frame, run_sync
from kvmrpa.capture import open_source, release_source
from kvmrpa.engine import Flow
from kvmrpa.kvm import open_driver, release_driver
from kvmrpa.lab import LabApp
from kvmrpa.nodes.vision import Ocr

pytestmark = pytest.mark.lab

DATA = Path(__file__).resolve().parents[1] / "nodes" / "data"

#: Every line of text the lab app shows after a reset, by element.
LAB_TEXT = {
    "big": "KVMRPA LAB", "line0": "Hello kvmrpa 123", "line1": "测试",
    "line2": "请输入 Chinese 中文", "ok": "OK", "cancel": "Cancel", "confirm": "确定",
    "dismiss": "取消", "entry_label": "Input:", "status": "ready",
}


def _inside(point: tuple[float, float], box: tuple[int, int, int, int], margin: int = 2) -> bool:
    x, y, w, h = box
    return x - margin <= point[0] <= x + w + margin and y - margin <= point[1] <= y + h + margin


def _fresh_frame(url: str, skip: int = 8) -> Frame:
    """A frame decoded ``skip`` frames after the first one (the app's reset is on screen)."""
    src = open_source(url)
    try:
        frame = src.wait_frame(None, timeout=20)
        target = frame.seq + skip
        while frame.seq < target:
            frame = src.wait_frame(frame.seq, timeout=20)
        return frame
    finally:
        release_source(src)


def test_ocr_reads_every_lab_line_from_rtsp(lab_app: LabApp, lab_rtsp: str, lab_vnc: str) -> None:
    # the stream shows the pointer: park it in a corner where no text is
    driver = open_driver(lab_vnc)
    try:
        driver.sync.move(1275, 715)
    finally:
        release_driver(driver)
    frame = _fresh_frame(lab_rtsp)
    assert frame.size == (1280, 720)
    texts = Ocr().try_on(frame)["texts"]
    read = {t.text: t for t in texts}
    for element, text in LAB_TEXT.items():
        assert text in read, f"{text!r} ({element}) not read exactly; read {sorted(read)}"
        assert _inside(read[text].centre, lab_app.element_box(element)), (element, read[text])


def test_flow_sees_rtsp_and_drives_the_app_through_vnc(lab_app: LabApp, lab_rtsp: str,
                                                        lab_vnc: str) -> None:
    flow = Flow("lab", source=lab_rtsp, input=lab_vnc)
    flow.add("source", "screen")
    flow.add("ocr", "read")
    flow.add("vision_condition", "is_test", kind="text_found", text="测试", match_mode="exact")
    flow.add("mouse", "confirm", target="text", text="确定", match_mode="exact")
    flow.add("mouse", "focus", target="text", text="Input:", match_mode="exact",
             anchor="right", distance=60)
    flow.add("keyboard", "type", action="type", text="hello kvmrpa")
    flow.add("keyboard", "enter", action="key", key="Return")
    flow.add("mouse", "cancel", target="text", text="Cancel", match_mode="exact")
    flow.connect("screen", "read")
    flow.connect("read", "is_test")
    flow.connect("is_test", "confirm", branch="true")
    flow.connect("is_test", "cancel", branch="false")
    for a, b in (("confirm", "focus"), ("focus", "type"), ("type", "enter")):
        flow.connect(a, b)
    result = flow.run(timeout=110)
    assert result.status == "ok", result.error
    assert [a["node"] for a in result.actions] == ["confirm", "focus", "type", "enter"]
    assert all(a["ok"] for a in result.actions)
    pressed = lab_app.wait_event(lambda e: e["type"] == "button", timeout=10)
    assert (pressed["name"], pressed["text"]) == ("confirm", "确定")
    typed = lab_app.wait_event(lambda e: e["type"] == "entry" and e["text"] == "hello kvmrpa",
                               timeout=10)
    assert typed["text"] == "hello kvmrpa"
    lab_app.wait_event(lambda e: e["type"] == "key" and e["keysym"] == "Return", timeout=10)
    clicks = lab_app.events("click")
    assert _inside((clicks[0]["x"], clicks[0]["y"]), lab_app.element_box("confirm"))
    assert _inside((clicks[1]["x"], clicks[1]["y"]), lab_app.element_box("entry"))
    assert [e["name"] for e in lab_app.events("button")] == ["confirm"]


def test_imported_original_flow_runs_on_the_lab(lab_app: LabApp, lab_rtsp: str, lab_vnc: str) -> None:
    text = (DATA / "ocr_click.json").read_text(encoding="utf-8").replace("@IMAGE_URL@", lab_rtsp)
    flow = Flow.from_dict(json.loads(text))
    result = flow.run(timeout=110, input=lab_vnc)
    assert result.status == "ok", result.error
    assert [a["node"] for a in result.actions] == ["node_click", "node_type"]
    pressed = lab_app.wait_event("button", timeout=10)
    assert pressed["name"] == "confirm"
    typed = lab_app.wait_event(lambda e: e["type"] == "entry" and e["text"] == "ok", timeout=10)
    assert typed["text"] == "ok"


def test_wait_until_sees_the_app_change(lab_app: LabApp, lab_rtsp: str) -> None:
    _x, y, _w, h = lab_app.element_box("status")
    flow = Flow("change", source=lab_rtsp)
    flow.add("wait_until", "appear", kind="text_appears", text="DONE 42", match_mode="exact",
             roi=(0, y - 10, 1280, h + 20), wait_timeout=30)

    async def scenario() -> Any:
        import asyncio

        task = asyncio.ensure_future(flow.arun())
        await asyncio.sleep(1.0)
        assert not task.done()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: lab_app.set_text("status", "DONE 42"))
        return await task

    result = run_sync(scenario(), timeout=110)
    assert result.status == "ok", result.error

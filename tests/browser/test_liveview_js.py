"""The LiveView ESM module in headless Chromium with a stand-in model (no server): the
rules for which frames it draws."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.browser

ESM = (Path(__file__).resolve().parents[2] / "widgets" / "_liveview.js").read_text(encoding="utf-8")

# A stand-in for Panel's model: the parameters the module reads, on()/send_msg(), and
# emit() to deliver a custom message as Panel does (the JPEG as an ArrayBuffer).
HARNESS = """
const handlers = {}
const model = {
  overlays: [], region: null, point: null, paused: false, console: false, zoom: 1,
  view_width: 0, sent: [],
  on(names, cb) { for (const n of [].concat(names)) (handlers[n] ||= []).push(cb) },
  send_msg(m) { this.sent.push(m) },
}
window.kvModel = model
window.kvEmit = (msg) => { for (const cb of handlers["msg:custom"] || []) cb(msg) }
const el = document.createElement("div")
el.style.width = "640px"
document.body.appendChild(el)
const mod = await import("data:text/javascript;base64," + MODULE_B64)
mod.render({model, el})
window.kvReady = true
"""

EMIT = """([frame, b64]) => {
  const bin = atob(b64)
  const bytes = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i)
  window.kvEmit({...frame, kind: "frame", jpeg: bytes.buffer})
}"""


def jpeg_b64(value: int) -> str:
    img = np.full((90, 160, 3), value, np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def test_a_new_stream_is_drawn_even_with_lower_seqs(page) -> None:
    p = page.page
    p.set_content("<html><body></body></html>")
    module_b64 = base64.b64encode(ESM.encode()).decode()
    p.add_script_tag(content=HARNESS.replace("MODULE_B64", json.dumps(module_b64)), type="module")
    p.wait_for_function("window.kvReady === true", timeout=30_000)
    canvas = p.get_by_label("Live view")

    def emit(stream: int, seq: int, value: int) -> None:
        frame = {"stream": stream, "seq": seq, "width": 160, "height": 90, "frame_width": 160,
                 "frame_height": 90, "wall": 0}
        p.evaluate(EMIT, [frame, jpeg_b64(value)])

    def shown() -> str:
        return canvas.get_attribute("data-frame-seq")

    emit(1, 50, 40)
    p.wait_for_function("() => window.kvModel && document.querySelector('canvas')"
                        ".dataset.frameSeq === '50'", timeout=10_000)
    emit(2, 3, 200)  # the view switched to another source: its seqs start low
    p.wait_for_function("document.querySelector('canvas').dataset.frameSeq === '3'",
                        timeout=10_000)
    emit(1, 60, 40)  # a late frame of the previous stream
    emit(2, 2, 90)   # an older frame of the current stream
    emit(2, 4, 220)  # then a newer one: drawn, and nothing dropped above drawn after it
    p.wait_for_function("document.querySelector('canvas').dataset.frameSeq === '4'",
                        timeout=10_000)
    assert shown() == "4"
    pixel = p.evaluate("""() => {
      const c = document.querySelector('canvas')
      return Array.from(c.getContext('2d').getImageData(80, 45, 1, 1).data.slice(0, 3))
    }""")
    assert all(abs(v - 220) <= 6 for v in pixel), pixel
    assert page.errors == []


def test_the_wheel_in_the_browser_scrolls_the_simulator_the_same_way(page) -> None:
    # End to end: a real wheel event in Chromium -> the view's message -> LiveView's
    # console mode -> the sim:// driver -> the simulated desktop's scroll position.
    from kvmrpa.widgets import LiveView

    from kvmrpa.capture import open_source, release_source
    from kvmrpa.kvm import open_driver, release_driver
    from kvmrpa.sim import get_desktop

    p = page.page
    p.set_content("<html><body></body></html>")
    module_b64 = base64.b64encode(ESM.encode()).decode()
    p.add_script_tag(content=HARNESS.replace("MODULE_B64", json.dumps(module_b64)), type="module")
    p.wait_for_function("window.kvReady === true", timeout=30_000)
    p.evaluate("window.kvModel.console = true")
    frame = {"stream": 1, "seq": 1, "width": 160, "height": 90, "frame_width": 160,
             "frame_height": 90, "wall": 0}
    p.evaluate(EMIT, [frame, jpeg_b64(128)])
    p.wait_for_function("document.querySelector('canvas').dataset.frameSeq === '1'",
                        timeout=10_000)
    box = p.get_by_label("Live view").bounding_box()
    p.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def wheel(delta: float) -> dict:
        before = p.evaluate("window.kvModel.sent.length")
        p.mouse.wheel(0, delta)  # positive deltaY: the page would scroll down
        p.wait_for_function(f"window.kvModel.sent.length > {before}", timeout=10_000)
        msg = p.evaluate("window.kvModel.sent[window.kvModel.sent.length - 1]")
        assert msg["kind"] == "wheel"
        return msg

    url = "sim://desktop?seed=5"
    src, drv = open_source(url), open_driver(url)
    lv = LiveView(src, driver=drv, console=True)
    desktop = get_desktop(url)
    try:
        start = desktop.state()["scrolled"][1]
        assert lv.forward_input(wheel(120))
        wait_for(lambda: desktop.state()["scrolled"][1] == start + 1)  # down
        assert lv.forward_input(wheel(-120))
        assert lv.forward_input(wheel(-120))
        wait_for(lambda: desktop.state()["scrolled"][1] == start - 1)  # up, twice
    finally:
        lv.console = False
        release_driver(drv)
        release_source(src)
    assert page.errors == []


def wait_for(cond, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)

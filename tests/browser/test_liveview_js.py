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
    return jpeg_of(value, 160, 90)


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


PATCHES = """([frame, patches]) => {
  const bytes = (b64) => {
    const bin = atob(b64)
    const out = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out.buffer
  }
  window.kvEmit({...frame, kind: "frame", jpeg: new ArrayBuffer(0),
                 patches: patches.map((p) => ({...p, jpeg: bytes(p.jpeg)}))})
}"""

PIXEL = """([x, y]) => Array.from(document.querySelector('canvas').getContext('2d')
  .getImageData(x, y, 1, 1).data.slice(0, 3))"""


def jpeg_of(value: int, w: int, h: int) -> str:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), value, np.uint8))
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def test_patches_are_drawn_over_the_picture_they_were_made_for(page) -> None:
    p = page.page
    p.set_content("<html><body></body></html>")
    module_b64 = base64.b64encode(ESM.encode()).decode()
    p.add_script_tag(content=HARNESS.replace("MODULE_B64", json.dumps(module_b64)), type="module")
    p.wait_for_function("window.kvReady === true", timeout=30_000)
    size = {"stream": 1, "width": 160, "height": 90, "frame_width": 160, "frame_height": 90,
            "wall": 0}

    def shown_seq(seq: int) -> None:
        p.wait_for_function(f"document.querySelector('canvas').dataset.frameSeq === '{seq}'",
                            timeout=10_000)

    def near(pixel: list[int], value: int) -> bool:
        return all(abs(v - value) <= 8 for v in pixel)

    p.evaluate(EMIT, [{**size, "seq": 10}, jpeg_b64(40)])
    shown_seq(10)
    # Three patch frames sent at once: each waits for the one before (none is skipped,
    # as an older whole frame would be), each drawn where it says.
    for seq, base, x, value in ((11, 10, 0, 200), (12, 11, 64, 120), (13, 12, 128, 250)):
        p.evaluate(PATCHES, [{**size, "seq": seq, "base": base},
                             [{"x": x, "y": 16, "w": 32, "h": 32, "jpeg": jpeg_of(value, 32, 32)}]])
    shown_seq(13)
    assert p.get_by_label("Live view").get_attribute("data-frame-kind") == "patch"
    assert near(p.evaluate(PIXEL, [16, 32]), 200)
    assert near(p.evaluate(PIXEL, [80, 32]), 120)
    assert near(p.evaluate(PIXEL, [144, 32]), 250)
    assert near(p.evaluate(PIXEL, [80, 75]), 40)  # the rest is the whole frame's
    assert not [m for m in p.evaluate("window.kvModel.sent") if m.get("kind") == "keyframe"]
    # An empty patch frame (nothing changed) moves the seq and keeps the picture.
    p.evaluate(PATCHES, [{**size, "seq": 14, "base": 13}, []])
    shown_seq(14)
    assert near(p.evaluate(PIXEL, [144, 32]), 250)

    # A patch over a frame this view never drew (one was lost) is not drawn; the view
    # asks for a whole frame, and draws patches again once it has one.
    p.evaluate(PATCHES, [{**size, "seq": 16, "base": 15},
                         [{"x": 0, "y": 0, "w": 160, "h": 90, "jpeg": jpeg_of(0, 160, 90)}]])
    p.wait_for_function("window.kvModel.sent.some((m) => m.kind === 'keyframe')", timeout=10_000)
    assert p.get_by_label("Live view").get_attribute("data-frame-seq") == "14"
    assert near(p.evaluate(PIXEL, [80, 75]), 40)
    p.evaluate(EMIT, [{**size, "seq": 17}, jpeg_b64(90)])
    shown_seq(17)
    assert p.get_by_label("Live view").get_attribute("data-frame-kind") == "whole"
    p.evaluate(PATCHES, [{**size, "seq": 18, "base": 17},
                         [{"x": 0, "y": 0, "w": 32, "h": 32, "jpeg": jpeg_of(180, 32, 32)}]])
    shown_seq(18)
    assert near(p.evaluate(PIXEL, [16, 16]), 180) and near(p.evaluate(PIXEL, [80, 75]), 90)
    assert page.errors == []

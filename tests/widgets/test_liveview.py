"""LiveView without a browser: streaming follows views, messages set point/region,
console mode drives the input driver, templates are written."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
from kvmrpa.widgets import LiveView, overlays_from
from kvmrpa.widgets._liveview import browser_key

from kvmrpa import VisionError
from kvmrpa.capture import PatternSource

from ._sources import ManualSource, RecordingDriver
from .test_encoder import wait_until


class Box:
    def __init__(self, bbox, **kw):
        self.bbox = bbox
        self.__dict__.update(kw)


def test_streams_only_while_displayed_and_not_held() -> None:
    src = PatternSource("pattern://bars?width=640&height=360&fps=30").start()
    lv = LiveView(src, fps=60)
    try:
        assert not lv.watching and not lv.streaming
        time.sleep(0.2)
        assert lv.frames_sent == 0
        root = lv.get_root()
        assert lv.watching
        wait_until(lambda: lv.frames_sent >= 3)
        lv.paused = True
        wait_until(lambda: not lv.streaming)
        held = lv.frames_sent
        time.sleep(0.3)
        assert lv.frames_sent <= held + 1  # at most one frame already in flight
        lv.paused = False
        wait_until(lambda: lv.frames_sent >= held + 3)
        lv._cleanup(root)
        assert not lv.watching
        wait_until(lambda: not lv.streaming)
    finally:
        lv.close()
        src.stop()


def test_model_carries_view_state_not_python_objects() -> None:
    src = ManualSource()
    lv = LiveView(src, region=(1, 2, 3, 4))
    root = lv.get_root()
    try:
        data = root.data
        assert tuple(data.region) == (1, 2, 3, 4)
        assert not hasattr(data, "source") and not hasattr(data, "driver")
        esm = root.esm
        assert 'canvas.setAttribute("aria-label", "Live view")' in esm
        assert "canvas.dataset.frameSeq = String(seq)" in esm
    finally:
        lv._cleanup(root)
        lv.close()


def test_point_and_region_messages() -> None:
    lv = LiveView(ManualSource())
    lv._handle_msg({"kind": "point", "x": 10, "y": 20})
    assert lv.point == (10.0, 20.0)
    lv._handle_msg({"kind": "region", "x": 5, "y": 6, "w": 100, "h": 50})
    assert lv.region == (5.0, 6.0, 100.0, 50.0)
    lv._handle_msg({"kind": "region", "x": 5, "y": 6, "w": 0, "h": 50})  # a click, not a drag
    assert lv.region == (5.0, 6.0, 100.0, 50.0)
    lv.clear()
    assert lv.point is None and lv.region is None and lv.overlays == []


def test_show_converts_results_to_overlays() -> None:
    lv = LiveView(ManualSource())
    texts = [Box((1, 2, 3, 4), text="确定", confidence=0.9)]
    matches = [Box((5, 6, 7, 8), score=0.95)]
    dets = [Box((9, 9, 9, 9), label="button", confidence=0.5)]
    lv.show(texts, matches, dets, point=(3, 4))
    kinds = [o["kind"] for o in lv.overlays]
    assert kinds == ["text", "match", "detection", "point"]
    assert lv.overlays[0]["label"].startswith("确定")
    assert lv.overlays[1]["bbox"] == [5.0, 6.0, 7.0, 8.0]
    assert overlays_from(None) == []


def test_save_template_writes_png_and_metadata(tmp_path) -> None:
    src = ManualSource().start()
    src.push()
    lv = LiveView(src)
    with pytest.raises(VisionError, match="draw a region"):
        lv.save_template("ok", tmp_path)
    lv.region = (10, 20, 100, 40)
    png = lv.save_template("ok_button", tmp_path)
    img = cv2.imread(str(png))
    assert img.shape == (40, 100, 3)
    assert np.array_equal(img, src.latest().image[20:60, 10:110])
    meta = json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["region"] == [10, 20, 100, 40] and meta["name"] == "ok_button"
    assert meta["capture_size"] == [640, 360]
    from kvmrpa.vision import Template

    assert Template.load(png).region == (10, 20, 100, 40)
    with pytest.raises(VisionError, match="plain file name"):
        lv.save_template("../evil", tmp_path)
    src.stop()


def test_console_mode_forwards_to_driver() -> None:
    drv = RecordingDriver()
    lv = LiveView(ManualSource(), driver=drv)
    lv._handle_msg({"kind": "mouse", "action": "down", "x": 10, "y": 20, "button": "left"})
    time.sleep(0.1)
    assert drv.sent == []  # console mode is off: nothing is forwarded
    lv.console = True
    lv._handle_msg({"kind": "mouse", "action": "down", "x": 10, "y": 20, "button": "left"})
    wait_until(lambda: len(drv.sent) >= 2)
    lv._handle_msg({"kind": "mouse", "action": "up", "x": 12, "y": 20, "button": "left"})
    wait_until(lambda: len(drv.sent) >= 4)
    lv._handle_msg({"kind": "key", "action": "down", "key": "Enter"})
    lv._handle_msg({"kind": "key", "action": "up", "key": "Enter"})
    lv._handle_msg({"kind": "key", "action": "down", "key": "Unidentified"})
    wait_until(lambda: len(drv.sent) >= 6)
    time.sleep(0.1)
    assert drv.sent == [("move", 10, 20), ("button", "left", True),
                        ("move", 12, 20), ("button", "left", False),
                        ("key", "Return", True), ("key", "Return", False)]


def test_browser_key_names() -> None:
    assert browser_key("Enter") == "Return"
    assert browser_key("a") == "a"
    assert browser_key("F5") == "F5"
    assert browser_key("ArrowLeft") == "Left"
    assert browser_key("Dead") is None


def test_save_template_message_reports_back(tmp_path, monkeypatch) -> None:
    from kvmrpa import configure

    src = ManualSource().start()
    src.push()
    lv = LiveView(src, region=(0, 0, 50, 20))
    sent: list[dict] = []
    monkeypatch.setattr(lv, "_send_msg", sent.append)
    settings = configure()
    old = settings.store.home
    settings.store.home = str(tmp_path)
    try:
        lv._handle_msg({"kind": "save_template", "name": "btn"})
        lv._handle_msg({"kind": "save_template", "name": "../x"})
    finally:
        settings.store.home = old
        src.stop()
    assert (tmp_path / "templates" / "btn.png").is_file()
    assert sent[0] == {"kind": "note", "text": "saved btn.png"}
    assert "plain file name" in sent[1]["text"]


def test_frames_after_a_source_switch_carry_a_newer_stream() -> None:
    # Seqs are per source: after switching to a source whose seqs are lower, the browser
    # must still draw its frames, so each frame names the stream (streamer) it belongs to.
    a, b = ManualSource("manual://a").start(), ManualSource("manual://b", size=(320, 180)).start()
    for _ in range(30):
        a.push()
    lv = LiveView(a, fps=60)
    sent: list[dict] = []
    lv._send_msg = sent.append  # type: ignore[method-assign]
    root = lv.get_root()
    try:
        wait_until(lambda: lv.streaming)
        a.push()
        wait_until(lambda: any(m["frame_width"] == 640 for m in sent))
        old = [m for m in sent if m["frame_width"] == 640][-1]
        lv.source = b
        wait_until(lambda: lv.streaming and lv._streamer.source is b)
        b.push()
        wait_until(lambda: any(m["frame_width"] == 320 for m in sent))
        new = next(m for m in sent if m["frame_width"] == 320)
        assert new["seq"] < old["seq"]
        assert new["stream"] > old["stream"]
    finally:
        lv._cleanup(root)
        lv.close()
        a.stop()
        b.stop()


def test_console_events_reach_the_driver_in_the_browser_order() -> None:
    # A drag: down at one point, up at another. The up event must not overtake the
    # down's button press while its pointer move is still in flight (which would turn
    # the drag into a click at the end point).
    import asyncio

    class SlowMoves(RecordingDriver):
        async def _move(self, x: int, y: int) -> None:
            await asyncio.sleep(0.05)
            await super()._move(x, y)

    drv = SlowMoves()
    lv = LiveView(ManualSource(), driver=drv, console=True)
    lv._handle_msg({"kind": "mouse", "action": "down", "x": 10, "y": 20, "button": "left"})
    lv._handle_msg({"kind": "mouse", "action": "up", "x": 50, "y": 60, "button": "left"})
    lv._handle_msg({"kind": "key", "action": "down", "key": "a"})
    wait_until(lambda: len(drv.sent) >= 5)
    time.sleep(0.1)
    assert drv.sent == [("move", 10, 20), ("button", "left", True),
                        ("move", 50, 60), ("button", "left", False), ("key", "a", True)]


def test_console_clicks_follow_the_frame_size_to_the_target() -> None:
    # A capture at 640x360 of a 1280x720 screen: a click at frame pixel (100, 50) lands
    # at target pixel (200, 100); after the capture switches to 320x180 the same target
    # pixel is frame pixel (50, 25).
    from kvmrpa.kvm import open_driver, release_driver

    drv = open_driver("dryrun://liveview-console?size=1280x720")
    src = ManualSource(size=(640, 360)).start()
    lv = LiveView(src, driver=drv, console=True)
    try:
        src.push()
        lv._handle_msg({"kind": "mouse", "action": "down", "x": 100, "y": 50, "button": "left"})
        wait_until(lambda: len(drv.actions) >= 2)
        assert drv.frame_size == (640, 360)
        assert drv.actions[0] == {"op": "move", "x": 200, "y": 100}
        src.size = (320, 180)
        src.push()
        lv._handle_msg({"kind": "mouse", "action": "up", "x": 50, "y": 25, "button": "left"})
        lv._handle_msg({"kind": "wheel", "dy": 1, "x": 319, "y": 179})
        wait_until(lambda: len(drv.actions) >= 6)
        assert drv.frame_size == (320, 180)
        assert drv.actions[2] == {"op": "move", "x": 200, "y": 100}
        assert drv.actions[4] == {"op": "move", "x": 1276, "y": 716}
    finally:
        lv.close()
        src.stop()
        release_driver(drv)


def test_a_view_with_a_bound_height_contains_the_frame() -> None:
    assert LiveView(height=420).height_bound
    assert LiveView(sizing_mode="stretch_both").height_bound
    wide = LiveView()
    assert not wide.height_bound and wide.fit == "auto"
    wide.height = 300
    assert wide.height_bound
    root = wide.get_root()
    try:
        assert root.data.height_bound is True and root.data.fit == "auto"
    finally:
        wide._cleanup(root)


def test_resources_are_local_in_a_kernel_unless_cdn_is_asked_for(monkeypatch) -> None:
    import panel as pn
    from kvmrpa.widgets import use_local_resources

    from kvmrpa import configure

    monkeypatch.delenv("PANEL_INLINE", raising=False)
    settings = configure()
    was_inline, was_cdn = pn.config._inline, settings.stream.cdn_resources
    try:
        pn.config.inline = False
        assert use_local_resources(load=False) is False  # a server process: left alone
        assert use_local_resources(load=True) is True
        settings.stream.cdn_resources = True
        assert use_local_resources(load=True) is False
        settings.stream.cdn_resources = False
        monkeypatch.setenv("PANEL_INLINE", "0")  # the environment wins over the setting
        assert use_local_resources(load=True) is False
    finally:
        settings.stream.cdn_resources = was_cdn
        pn.config.inline = was_inline


def test_notebook_output_says_in_words_that_the_js_has_not_drawn_it() -> None:
    from kvmrpa.widgets._resources import FALLBACK_TEXT, NotebookFallback

    class Base:
        def _repr_mimebundle_(self, include=None, exclude=None):
            return ({"text/html": "<div id='p1001'>…</div>", "application/x": ""},
                    {"application/x": {"id": "p1001"}})

    class Shown(NotebookFallback, Base):
        pass

    data, meta = Shown()._repr_mimebundle_()
    html = data["text/html"]
    assert html.index("kvmrpa-nojs") < html.index("id='p1001'")  # the notice comes first
    assert "BokehJS and Panel" in FALLBACK_TEXT and FALLBACK_TEXT.split(":")[1].strip()[:20] in html
    assert "getElementById('p1001')" in html  # the script that removes it watches the output
    assert meta == {"application/x": {"id": "p1001"}} and data["application/x"] == ""


def test_messages_from_two_threads_leave_a_comm_in_one_piece() -> None:
    import threading

    from kvmrpa.widgets._resources import atomic_comm_sends
    from panel.io import notebook

    class Msg:
        def __init__(self, tag: str) -> None:
            self.header_json = self.metadata_json = self.content_json = tag
            self.buffers = []

    class Comm:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, data=None, buffers=None) -> None:
            self.sent.append(data)
            time.sleep(0.001)  # a thread switch between the parts of one message

    atomic_comm_sends()
    atomic_comm_sends()  # idempotent
    comm = Comm()
    threads = [threading.Thread(target=lambda t=t: [notebook.send(comm, Msg(t)) for _ in range(20)])
               for t in "ab"]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    parts = [comm.sent[i:i + 3] for i in range(0, len(comm.sent), 3)]
    assert len(parts) == 40 and all(len(set(p)) == 1 for p in parts)

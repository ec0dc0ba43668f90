"""Indicate on screen: regions and clicks on a live view edit the selected node."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from kvmrpa.widgets import Debugger, Indicator, LiveView
from kvmrpa.widgets._indicate import map_region, text_changes

from kvmrpa import Frame
from kvmrpa.capture import open_source, release_source
from kvmrpa.engine import Flow, TemplateStore
from kvmrpa.sim import flow_path
from kvmrpa.vision import ocr

SIM = "sim://scenario3?seed=11"


@pytest.fixture
def sim():
    src = open_source(SIM)
    try:
        deadline = time.monotonic() + 30
        while src.latest() is None:
            assert time.monotonic() < deadline, "no frame from the simulator"
            time.sleep(0.05)
        yield src
    finally:
        release_source(src)


def scenario3(tmp_path: Path) -> tuple[Flow, Path]:
    flow = Flow.load(flow_path("scenario3"))
    path = tmp_path / "flows" / "scenario3.json"
    flow.source = flow.input = SIM
    flow.save(path)
    return Flow.load(path), path


def label_box(frame: Frame, text: str = "请输入") -> tuple[int, int, int, int]:
    """Where ``text`` is on the frame, found independently of the Indicator."""
    box = next(b for b in ocr(frame) if b.text.strip() == text)
    return box.bbox


def make(tmp_path: Path, sim, selected: str):
    flow, path = scenario3(tmp_path)
    dbg = Debugger(flow)
    edits: list[str] = []
    dbg.editor.on_edit = edits.append
    dbg.selected = selected
    view = LiveView(sim)
    ind = Indicator(view, dbg, flow_path=str(path))
    return flow, dbg, view, ind, edits


def test_map_region_through_crop_and_scale() -> None:
    full = Frame(np.zeros((720, 1280, 3), np.uint8))
    shown = full.derive(full.image[100:400, 200:800], offset=(200, 100))  # a cropped view
    # a region drawn at (10, 20, 100, 50) of the cropped view is (210, 120, …) of the source
    assert map_region((10, 20, 100, 50), shown) == (210, 120, 100, 50)
    # ... and in the pixels of a node reading a frame cropped at (150, 80), upscaled 2x
    node_frame = full.derive(full.image[:10, :10], offset=(150, 80), scale=2.0)
    assert map_region((10, 20, 100, 50), shown, node_frame) == (120, 80, 200, 100)
    with pytest.raises(Exception, match="not finite"):
        map_region((float("inf"), 0, 1, 1), shown)


def test_region_sets_roi_in_source_pixels_and_marks_the_draft(tmp_path, sim) -> None:
    flow, dbg, view, ind, edits = make(tmp_path, sim, "read")
    view.region = (400.0, 60.4, 300.0, 120.0)
    assert flow["read"].roi == (400, 60, 300, 120)  # the rounded source pixels
    assert edits == ["roi"]
    assert "roi set to 400, 60, 300, 120" in ind.message
    assert 'data-field="roi">400, 60, 300, 120<' in ind.summary.object
    # the editor's form shows it too
    assert dbg.editor.form.roi == "400, 60, 300, 120"
    # a node without a roi keeps its fields; the region is kept for a template
    dbg.selected = "type"
    before = flow["type"].values()
    view.region = (1.0, 2.0, 30.0, 40.0)
    assert flow["type"].values() == before and "has no roi" in ind.message
    # switched off, drawing edits nothing
    dbg.selected = "read"
    ind.active = False
    view.region = (5.0, 5.0, 50.0, 50.0)
    assert flow["read"].roi == (400, 60, 300, 120)
    # the node choice and the debugger's selection follow each other
    ind.node_select.value = "trigger"
    assert dbg.selected == "trigger"
    flow.add("ocr", "read2")
    dbg._on_flow()  # the flow edited in place
    dbg.selected = "read2"
    assert ind.node_select.options[-1] == "read2" and ind.node_select.value == "read2"
    assert dbg.selected == "read2"
    dbg.selected = "read"
    # the notebook spelling: debugger.indicate(view)
    other = dbg.indicate(view)
    assert isinstance(other, Indicator) and other.debugger is dbg and other.view is view
    assert dbg.editor.source is sim  # "Run on current frame" reads the same video
    view.region = (0.0, 0.0, 64.0, 32.0)
    assert flow["read"].roi == (0, 0, 64, 32) and edits[-1] == "roi"


def test_roi_follows_the_crop_the_node_reads(tmp_path, sim) -> None:
    flow = Flow("cropped", source=SIM, input=SIM)
    flow.add("crop", "cut", x=300, y=50, width=600, height=300)
    flow.add("preprocess", "big", resize="scale", scale_factor=2.0)
    flow.add("ocr", "read")
    flow.connect("cut", "big")
    flow.connect("big", "read")
    dbg = Debugger(flow)
    dbg.start()
    deadline = time.monotonic() + 60
    while dbg.run is None or not dbg.run.done:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.05)
    dbg.selected = "read"
    view = LiveView(sim)
    ind = Indicator(view, dbg)
    view.region = (400.0, 100.0, 200.0, 50.0)
    # the ocr node reads the crop at (300, 50) upscaled 2x: its roi is in those pixels
    assert flow["read"].roi == (200, 100, 400, 100)
    # the crop node itself takes the region as its x, y, width, height (source pixels)
    dbg.selected = "cut"
    view.region = (10.0, 20.0, 640.0, 360.0)
    assert (flow["cut"].x, flow["cut"].y, flow["cut"].width, flow["cut"].height) == \
        (10, 20, 640, 360)
    ind.active = False


def test_click_on_sim_text_fills_the_target(tmp_path, sim) -> None:
    flow, dbg, view, ind, edits = make(tmp_path, sim, "focus")
    flow["focus"].param.update(target="point", text="", match_mode="contains")
    x, y, w, h = label_box(sim.latest())
    view.point = (x + w / 2, y + h / 2)  # no served page, no loop: read inline
    node = flow["focus"]
    assert (node.target, node.text, node.match_mode) == ("text", "请输入", "exact")
    assert set(edits) == {"target", "text", "match_mode"}
    assert "text '请输入' (exact" in ind.message
    # a wait_until node turns to waiting for that text
    dbg.selected = "confirm"
    flow["confirm"].kind = "screen_stable"
    assert ind.read_text_at((x + 3, y + h / 2)) == {"kind": "text_appears", "text": "请输入",
                                                     "match_mode": "exact"}
    assert flow["confirm"].kind == "text_appears"
    # a click where there is no text changes nothing
    dbg.selected = "trigger"
    flow["trigger"].text = "x"
    view.point = (5.0, 300.0)
    assert flow["trigger"].text == "x" and "no text at 5, 300" in ind.message
    # the keyboard node's text is what it types, not a target: left alone
    dbg.selected = "type"
    view.point = (x + w / 2 + 1, y + h / 2)
    assert flow["type"].text == "测试3"


def test_text_changes_per_node_type() -> None:
    flow = Flow("t")
    m = flow.add("mouse", "m")
    c = flow.add("vision_condition", "c", kind="any_text")
    k = flow.add("keyboard", "k")
    assert text_changes(m, "OK", 0.5) == {"target": "text", "text": "OK", "match_mode": "fuzzy"}
    assert text_changes(c, "OK", 0.99) == {"kind": "text_found", "text": "OK",
                                           "match_mode": "exact"}
    assert text_changes(k, "OK", 0.99) == {}


def test_capture_template_saves_beside_the_flow_and_is_found(tmp_path, sim) -> None:
    flow, dbg, view, ind, edits = make(tmp_path, sim, "read")
    flow.add("match_template", "find_label")
    flow.connect("read", "find_label")
    dbg.flow = flow  # edited in place: the debugger refreshes
    dbg._on_flow()
    dbg.selected = "find_label"
    x, y, w, h = label_box(sim.latest())
    view.region = (float(x - 4), float(y - 4), float(w + 8), float(h + 8))
    assert flow["find_label"].roi is not None  # drawing set the roi first…
    info = ind.capture_template()
    assert info is not None and info.name == "find_label"
    png = tmp_path / "flows" / "templates" / "find_label.png"
    assert info.path == png and png.is_file() and png.with_suffix(".json").is_file()
    assert info.source_size == sim.latest().size and info.region == (x - 4, y - 4, w + 8, h + 8)
    node = flow["find_label"]
    assert node.template == str(png)
    assert node.roi is None  # …and the capture took that region back: it was the template's
    assert "template" in edits
    # it ran on the next frame and found the template where it was cut
    assert "found on frame" in ind.message, ind.message
    assert f"at {x - 4}, {y - 4}" in ind.message
    assert ind.gallery.options == ["find_label"]
    # a second capture for the same node gets its own file; rename follows in the flow
    view.region = (float(x), float(y), float(w), float(h))
    again = ind.capture_template()
    assert again.name == "find_label-2" and node.template == str(again.path)
    renamed = ind.rename_template("find_label-2", "label 请输入")
    assert renamed.name == "label_请输入" and node.template == str(renamed.path)
    assert TemplateStore.beside(tmp_path / "flows" / "x.json").names() == \
        ["find_label", "label_请输入"]
    assert ind.use_template("find_label") and node.template == str(png)
    # pick in the gallery: a preview
    ind.gallery.value = "label_请输入"
    assert ind.preview.object is not None


def test_only_editors_indicate(tmp_path, sim, monkeypatch) -> None:
    import kvmrpa.widgets._auth as auth

    flow, dbg, view, ind, edits = make(tmp_path, sim, "read")
    monkeypatch.setattr(auth, "current_principal",
                        lambda: auth.Principal("val", "viewer", "127.0.0.1"))
    viewer = Indicator(view, dbg, flow_path=str(tmp_path / "flows" / "scenario3.json"))
    assert viewer.active is False and viewer.toggle.disabled
    assert viewer.capture_button.disabled
    ind.active = False
    viewer.active = True  # even switched on in code, the edit is refused on the server
    view.region = (1.0, 1.0, 50.0, 50.0)
    assert flow["read"].roi is None and edits == []
    assert "may not edit read" in viewer.message
    assert viewer.capture_template() is None
    assert not (tmp_path / "flows" / "templates").exists()

"""Indicate on screen in the served dashboard: the live view edits the selected node.

The flows folder holds scenario3 on a seeded simulator, so the test knows where 请输入
is on the screen (the same seeded desktop, laid out here) without asking the dashboard.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kvmrpa.sim import flow_path, get_desktop

from .conftest import wait_for

pytestmark = pytest.mark.browser

SIM = "sim://scenario3?seed=5"



def label_on_screen() -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """The box of the 请输入 label on the seeded desktop (source pixels) and the screen
    size: the same seed lays the desktop out the same in this process."""
    desktop = get_desktop(SIM)
    return desktop.find("label"), desktop.size


def field(p, name: str) -> str:
    loc = p.locator(f'[aria-label="Indicated node"] [data-field="{name}"]')
    return loc.inner_text() if loc.count() else ""


def shoot(p, artifacts_dir: str, name: str) -> None:
    p.screenshot(path=os.path.join(artifacts_dir, f"browser-indicate-{name}.png"), full_page=True)


def test_select_draw_click_and_capture_edit_the_draft(serve_dashboard, page, artifacts_dir,
                                                      tmp_path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    doc = json.loads(Path(flow_path("scenario3")).read_text(encoding="utf-8"))
    doc["source"] = doc["input"] = SIM
    for node in doc["nodes"]:  # the click target and the roi start empty
        if node["id"] == "focus":
            node["params"] = {"target": "point"}
    (flows / "scenario3.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (lx, ly, lw, lh), (fw, fh) = label_on_screen()

    with serve_dashboard("--flows", str(flows)) as server:
        p = page.page
        p.goto(server.url)
        canvas = p.get_by_label("Live view")
        canvas.wait_for(timeout=90_000)
        wait_for(lambda: int(canvas.get_attribute("data-frame-seq")) > 0, what="first frame")
        node_select = p.get_by_label("Node to edit", exact=True)
        node_select.wait_for(timeout=30_000)

        # zoomed in: the picture is larger than the view, and still maps to source pixels
        p.locator(".kv-live").get_by_role("button", name="Zoom in", exact=True).click()
        wait_for(lambda: canvas.bounding_box()["width"] > 0 and
                 abs(canvas.bounding_box()["width"] / fw * fh - canvas.bounding_box()["height"]) < 3,
                 what="zoomed layout")

        def client(x: float, y: float) -> tuple[float, float]:
            # measured each time: the page above the view may grow (the draft marker)
            box = canvas.bounding_box()
            return box["x"] + x / fw * box["width"], box["y"] + y / fh * box["height"]

        def drag(x0: float, y0: float, x1: float, y1: float) -> None:
            p.mouse.move(*client(x0, y0))
            p.mouse.down()
            p.mouse.move(*client((x0 + x1) / 2, (y0 + y1) / 2), steps=3)
            p.mouse.move(*client(x1, y1), steps=3)
            p.mouse.up()

        # 1. the ocr node: a region drawn on the video becomes its roi, in source pixels
        node_select.select_option("read")
        wait_for(lambda: field(p, "roi") == "" and "read (ocr)" in
                 p.get_by_label("Indicated node").inner_text(), what="read selected")
        drag(300, 40, 900, 240)
        wait_for(lambda: field(p, "roi") != "", what="roi set")
        x, y, w, h = (int(v) for v in field(p, "roi").split(", "))
        assert abs(x - 300) <= 2 and abs(y - 40) <= 2 and abs(w - 600) <= 3 and abs(h - 200) <= 3
        wait_for(lambda: p.get_by_label("Draft state").get_attribute("data-modified") == "true",
                 what="draft modified")
        shoot(p, artifacts_dir, "roi")

        # 2. the mouse node: a click on 请输入 makes it the click target
        node_select.select_option("focus")
        wait_for(lambda: field(p, "target") == "point", what="focus selected")
        p.mouse.click(*client(lx + lw / 2, ly + lh / 2))
        wait_for(lambda: field(p, "text") == "请输入", timeout=90, what="text filled")
        assert field(p, "match_mode") == "exact" and field(p, "target") == "text"
        shoot(p, artifacts_dir, "text")

        # 3. the wait_until node: capture the label as its template
        node_select.select_option("confirm")
        wait_for(lambda: field(p, "kind") == "text_appears", what="confirm selected")
        drag(lx - 6, ly - 6, lx + lw + 6, ly + lh + 6)
        wait_for(lambda: field(p, "roi") != "", what="region drawn")
        p.get_by_role("button", name="Capture template").click()
        status = p.get_by_label("Indicate status")
        wait_for(lambda: "found on frame" in status.inner_text(), timeout=90,
                 what=f"template found (status: {status.inner_text()!r})")
        png = flows / "templates" / "confirm.png"
        meta = json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))
        assert png.is_file() and meta["source_size"] == [fw, fh]
        rx, ry, rw, rh = meta["source_region"]
        assert abs(rx - (lx - 6)) <= 2 and abs(ry - (ly - 6)) <= 2
        assert abs(rw - (lw + 12)) <= 3 and abs(rh - (lh + 12)) <= 3
        assert field(p, "template") == "confirm.png" and field(p, "kind") == "image_appears"
        assert field(p, "roi") == ""  # the region was for the template
        shoot(p, artifacts_dir, "template")

        # 4. everything is in this tab's draft until saved; saving writes it to the file
        p.get_by_role("button", name="Save", exact=True).click()
        wait_for(lambda: p.get_by_label("Draft state").get_attribute("data-modified") == "false",
                 what="saved")
        saved = {n["id"]: n.get("params", {}) for n in json.loads(
            (flows / "scenario3.json").read_text(encoding="utf-8"))["nodes"]}
        assert saved["read"]["roi"] == [x, y, w, h]
        assert saved["focus"]["text"] == "请输入" and saved["focus"]["target"] == "text"
        # the flow file names its template relative to itself (the folder can move)
        assert saved["confirm"]["template"] == "templates/confirm.png"
        assert (flows / saved["confirm"]["template"]).resolve() == png.resolve()
        assert saved["confirm"]["kind"] == "image_appears"

        # 5. the gallery: pick, preview, rename (the node follows the new name)
        p.get_by_text("Template gallery").click()
        gallery = p.get_by_label("Templates", exact=True)
        gallery.wait_for(timeout=30_000)
        gallery.select_option("confirm")
        new_name = p.get_by_label("New name", exact=True)
        wait_for(lambda: new_name.input_value() == "confirm", what="picked")
        new_name.fill("label 请输入")
        new_name.press("Enter")
        p.get_by_role("button", name="Rename", exact=True).click()
        wait_for(lambda: field(p, "template") == "label_请输入.png", what="renamed")
        assert (flows / "templates" / "label_请输入.png").is_file() and not png.exists()
        p.wait_for_timeout(300)
        shoot(p, artifacts_dir, "gallery")
        assert not page.errors, page.errors
        assert not page.blocked, page.blocked

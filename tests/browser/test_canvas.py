"""FlowCanvas in the served dashboard, by mouse: build scenario 3 from an empty canvas
(palette drags, wires, a ``true`` branch, the parameter form beside the canvas), save, and
the saved file validates and runs to ok on the simulator; undo/redo; a cycle refused with
the reason; multi-select by Ctrl-click and by a Shift-drawn box, copy/paste and delete of
the selection."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kvmrpa.engine import Flow

from .conftest import ROOT, new_page, wait_for

pytestmark = pytest.mark.browser

NODE = ".kv-node[data-node]"



def node_ids(p) -> list[str]:
    return p.locator(NODE).evaluate_all("els => els.map(e => e.dataset.node)")


def edge_count(p) -> int:
    return int(p.get_by_label("Flow graph").get_attribute("data-edges"))


def centre(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(p, start: tuple[float, float], end: tuple[float, float]) -> None:
    p.mouse.move(*start)
    p.mouse.down()
    p.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=4)
    p.mouse.move(*end, steps=4)
    p.mouse.up()


def add_from_palette(p, node_type: str, x: float, y: float) -> str:
    """Drag a palette entry to (x, y) of the canvas pane; returns the new node's id."""
    before = set(node_ids(p))
    item = p.locator(f'[data-palette-type="{node_type}"]')
    item.scroll_into_view_if_needed()
    flow_box = p.locator(".kv-flow").bounding_box()
    drag(p, centre(item),
         (flow_box["x"] + x, flow_box["y"] + y))
    wait_for(lambda: len(set(node_ids(p)) - before) == 1, what=f"{node_type} added")
    (new,) = set(node_ids(p)) - before
    # React Flow shows a node (and connects to its ports) once it has measured it
    wrapper = p.locator(f'.react-flow__node[data-id="{new}"]')
    wait_for(lambda: wrapper.evaluate("e => getComputedStyle(e).visibility") == "visible",
             what=f"{new} measured")
    return new


def handle(p, node: str, handle_id: str):
    return p.locator(f'.kv-node[data-node="{node}"] [data-handleid="{handle_id}"]')


def wire(p, source: str, target: str, branch: str = "out") -> None:
    before = edge_count(p)
    drag(p, centre(handle(p, source, branch)), centre(handle(p, target, "in")))
    try:
        wait_for(lambda: edge_count(p) == before + 1, timeout=20,
                 what=f"edge {source} → {target} ({branch}); message: {message(p)!r}")
    except AssertionError:
        p.screenshot(path=str(ROOT / "test-artifacts" / "canvas-wire-failed.png"))
        raise


def message(p) -> str:
    return p.get_by_label("Canvas message").inner_text()


def open_scenario3(p, url: str) -> None:
    """The dashboard at ``url`` with scenario 3's graph drawn and in view."""
    p.goto(url)
    p.get_by_role("tab", name="scenario3").click()
    wait_for(lambda: "trigger" in node_ids(p) and "type" in node_ids(p), what="graph")
    p.get_by_label("Flow graph").scroll_into_view_if_needed()


def select(p, node: str, form: str | None = None) -> None:
    """Click a node; with ``form`` (its type), wait until the server shows its form."""
    p.locator(f'.kv-node[data-node="{node}"] .kv-id').click()
    wait_for(lambda: "kv-sel" in (p.locator(f'.kv-node[data-node="{node}"]')
                                  .get_attribute("class") or ""), what=f"{node} selected")
    if form is not None:
        heading = p.locator("p", has=p.locator("strong", has_text=re.compile(f"^{form}$")))
        heading.first.wait_for(timeout=30_000)


def fill(p, label: str, value: str) -> None:
    box = p.get_by_role("textbox", name=re.compile(f"^{label}"))
    box.fill(value)
    box.press("Enter")


def choose(p, label: str, value: str) -> None:
    p.get_by_role("combobox", name=re.compile(f"^{label}")).select_option(value)


def assert_beside(p) -> None:
    """The node form ("Edit node") is on the right of the canvas, level with it."""
    graph = p.get_by_label("Flow graph").bounding_box()
    head = p.get_by_text("Edit node", exact=True)
    head.wait_for(timeout=30_000)
    box = head.bounding_box()
    assert graph is not None and box is not None
    assert box["x"] >= graph["x"] + graph["width"] - 2, (graph, box)
    assert graph["y"] - 40 <= box["y"] <= graph["y"] + graph["height"] / 2, (graph, box)


def selected_ids(p) -> list[str]:
    return sorted(p.locator(".react-flow__node.selected").evaluate_all(
        "els => els.map(e => e.dataset.id)"))


def saved(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.timeout(300)  # a browser session, then three runs of the saved flow
def test_build_scenario3_by_mouse_save_and_run(serve_dashboard, chromium, artifacts_dir,
                                               tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    empty = Flow("built", description="scenario 3 built on the canvas",
                 source="sim://scenario3", input="sim://scenario3")
    path = empty.save(flows / "built.json")
    with serve_dashboard("--flows", str(flows)) as server:
        context, pg = new_page(chromium, viewport={"width": 1400, "height": 1000})
        p = pg.page
        try:
            p.goto(server.url)
            graph = p.get_by_label("Flow graph")
            graph.wait_for(timeout=90_000)
            graph.scroll_into_view_if_needed()
            assert node_ids(p) == []
            grab = add_from_palette(p, "source", 60, 60)
            read = add_from_palette(p, "ocr", 260, 60)
            check = add_from_palette(p, "vision_condition", 460, 60)
            click = add_from_palette(p, "mouse", 260, 220)
            typing = add_from_palette(p, "keyboard", 460, 220)
            confirm = add_from_palette(p, "wait_until", 660, 220)
            assert [grab, read, check, click, typing, confirm] == [
                "source1", "ocr2", "vision_condition3", "mouse4", "keyboard5", "wait_until6"]
            wire(p, grab, read)
            wire(p, read, check)
            wire(p, check, click, "true")
            wire(p, click, typing)
            wire(p, typing, confirm)
            p.screenshot(path=os.path.join(artifacts_dir, "canvas-wired.png"))
            # the true branch is drawn as its own kind of edge, labelled
            assert p.locator(".react-flow__edge.kv-e-true").count() == 1
            # a cycle is refused while dragging, with the engine's reason
            before = edge_count(p)
            drag(p, centre(handle(p, confirm, "out")), centre(handle(p, grab, "in")))
            wait_for(lambda: "cycle" in message(p), timeout=20, what="cycle refused")
            assert "cannot connect wait_until6 → source1" in message(p)
            assert p.get_by_label("Canvas message").get_attribute("data-kind") == "error"
            assert edge_count(p) == before
            # parameters through the selected node's form, beside the canvas
            assert_beside(p)
            select(p, check, "vision_condition")
            fill(p, "Text", "请输入")
            choose(p, "Match mode", "exact")
            select(p, click, "mouse")
            choose(p, "Target", "text")
            # the canvas shows the node's new problem (its text is required now) …
            wait_for(lambda: "text" in (p.locator(f'.kv-node[data-node="{click}"] .kv-warn')
                                        .get_attribute("data-problems") or ""),
                     what="problem shown on the node")
            # … and the form shows the fields of the new target at once (no reselecting)
            fill(p, "Text", "请输入")
            choose(p, "Match mode", "fuzzy")
            fuzzy_only = p.get_by_text(re.compile(r"^Max distance")).first
            fuzzy_only.wait_for(timeout=20_000)
            choose(p, "Match mode", "exact")
            fuzzy_only.wait_for(state="hidden", timeout=20_000)
            choose(p, "Anchor", "below")
            select(p, typing, "keyboard")
            fill(p, "Text", "测试3")
            select(p, confirm, "wait_until")
            fill(p, "Text", "测试3")
            marker = p.get_by_label("Draft state")
            wait_for(lambda: marker.get_attribute("data-modified") == "true", what="modified")
            p.screenshot(path=os.path.join(artifacts_dir, "canvas-scenario3.png"), full_page=True)
            p.get_by_role("button", name="Save", exact=True).click()
            wait_for(lambda: len(saved(path)["nodes"]) == 6, timeout=30, what="saved")
            wait_for(lambda: marker.get_attribute("data-modified") == "false", what="saved marker")
            assert pg.errors == [] and pg.blocked == []
        finally:
            context.close()
    data = saved(path)
    by_id = {n["id"]: n for n in data["nodes"]}
    assert by_id[check]["params"] == {"text": "请输入", "match_mode": "exact"}
    assert by_id[click]["params"]["anchor"] == "below"
    assert all(len(n["position"]) == 2 for n in data["nodes"])
    assert {"source": check, "target": click, "branch": "true"} in data["edges"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, "-m", "kvmrpa", "validate", str(path)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60,
                         start_new_session=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # three seeds at once, each its own process group (killed on every path)
    procs = {seed: subprocess.Popen(
        [sys.executable, "-m", "kvmrpa", "run", str(path), "--no-record", "--json",
         "--source", f"sim://scenario3?seed={seed}", "--input", f"sim://scenario3?seed={seed}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True) for seed in (301, 302, 303)}
    try:
        for seed, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 0, (seed, stdout, stderr)
            assert json.loads(stdout)["status"] == "ok", (seed, stdout)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def test_undo_redo_delete_and_the_marker_toggles_a_breakpoint(serve_dashboard, chromium,
                                                              artifacts_dir) -> None:
    with serve_dashboard() as server:
        context, pg = new_page(chromium, viewport={"width": 1400, "height": 1000})
        p = pg.page
        try:
            open_scenario3(p, server.url)
            start = sorted(node_ids(p))
            edges = edge_count(p)
            select(p, "focus")
            p.keyboard.press("Delete")
            wait_for(lambda: "focus" not in node_ids(p), what="focus deleted")
            assert edge_count(p) == edges - 2  # its two edges went with it
            p.get_by_role("button", name="Undo", exact=True).click()
            wait_for(lambda: sorted(node_ids(p)) == start, what="undo")
            assert edge_count(p) == edges
            p.get_by_role("button", name="Redo", exact=True).click()
            wait_for(lambda: "focus" not in node_ids(p), what="redo")
            p.get_by_label("Flow graph").press("Control+z")
            wait_for(lambda: sorted(node_ids(p)) == start and edge_count(p) == edges,
                     what="undo by keyboard")
            marker = p.get_by_label("Draft state")
            wait_for(lambda: marker.get_attribute("data-modified") == "false",
                     what="back to the saved flow")
            # the breakpoint marker on a node sets the debugger's breakpoint
            p.get_by_label("breakpoint read", exact=True).click()
            wait_for(lambda: p.get_by_label("breakpoint read", exact=True).get_attribute(
                "data-on") == "true", what="breakpoint on")
            box = p.locator('input[type="checkbox"][value="read"], label:has-text("read") input')
            wait_for(lambda: box.first.is_checked(), what="breakpoint box ticked")
            p.screenshot(path=os.path.join(artifacts_dir, "canvas-breakpoint.png"))
            assert pg.errors == [] and pg.blocked == []
        finally:
            context.close()


def test_multi_select_copy_paste_and_delete(serve_dashboard, chromium, artifacts_dir) -> None:
    with serve_dashboard() as server:
        context, pg = new_page(chromium, viewport={"width": 1440, "height": 900})
        p = pg.page
        try:
            open_scenario3(p, server.url)
            start, edges = set(node_ids(p)), edge_count(p)
            # Ctrl-click adds to the selection
            select(p, "focus", "mouse")
            p.keyboard.down("Control")
            p.locator('.kv-node[data-node="type"] .kv-id').click()
            p.keyboard.up("Control")
            wait_for(lambda: selected_ids(p) == ["focus", "type"], what="two nodes selected")
            assert_beside(p)
            p.screenshot(path=os.path.join(artifacts_dir, "canvas-layout-1440x900.png"))
            # copy and paste: two new nodes of the same types, the edge between them too
            p.keyboard.press("Control+c")
            p.keyboard.press("Control+v")
            wait_for(lambda: len(set(node_ids(p)) - start) == 2, what="two nodes pasted")
            pasted = sorted(set(node_ids(p)) - start)
            assert edge_count(p) == edges + 1
            assert "pasted" in message(p)
            types = {n: p.locator(f'.kv-node[data-node="{n}"]').get_attribute("data-type")
                     for n in pasted}
            assert sorted(types.values()) == ["keyboard", "mouse"], types
            copy_focus = next(n for n, t in types.items() if t == "mouse")
            copy_type = next(n for n, t in types.items() if t == "keyboard")
            for n in pasted:  # measured, so the box can select them
                wrapper = p.locator(f'.react-flow__node[data-id="{n}"]')
                wait_for(lambda w=wrapper: w.evaluate(
                    "e => getComputedStyle(e).visibility") == "visible", what=f"{n} shown")
            # a box drawn with Shift held selects what lies wholly inside it: the copies
            # (pasted 40 px right and down of the originals, which stick out of the box)
            a = p.locator(f'.react-flow__node[data-id="{copy_focus}"]').bounding_box()
            b = p.locator(f'.react-flow__node[data-id="{copy_type}"]').bounding_box()
            assert a is not None and b is not None
            p.locator(".react-flow__pane").click(position={"x": 5, "y": 5})  # clear
            wait_for(lambda: selected_ids(p) == [], what="selection cleared")
            p.keyboard.down("Shift")
            drag(p, (b["x"] + b["width"] + 14, b["y"] + b["height"] + 14),
                 (a["x"] - 6, a["y"] - 6))
            p.keyboard.up("Shift")
            wait_for(lambda: selected_ids(p) == pasted,
                     what=f"the copies box-selected (now {selected_ids(p)})")
            p.get_by_label("Flow graph").press("Delete")
            wait_for(lambda: set(node_ids(p)) == start, what="the copies deleted")
            assert edge_count(p) == edges  # their edge went with them
            p.set_viewport_size({"width": 1024, "height": 768})
            select(p, "focus", "mouse")
            assert_beside(p)
            p.get_by_label("Flow graph").scroll_into_view_if_needed()
            p.screenshot(path=os.path.join(artifacts_dir, "canvas-layout-1024x768.png"))
            assert pg.errors == [] and pg.blocked == []
        finally:
            context.close()

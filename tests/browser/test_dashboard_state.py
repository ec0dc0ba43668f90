"""The dashboard in Chromium: one state pushed to every tab, outcome, drafts, layout."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from .conftest import new_page, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

# Records, in the page, when each (node, state) first appears in the FlowView's SVG
# (inside the component's shadow root), on the page's clock (Date.now(): the same system
# clock the server's event walls use).
OBSERVE = """() => {
  function find(root) {
    const svg = root.querySelector('[aria-label="Flow graph"]')
    if (svg) return svg
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const s = find(el.shadowRoot); if (s) return s }
    }
    return null
  }
  const svg = find(document)
  window.__seen = []
  const seen = new Set()
  const record = () => {
    const now = Date.now()
    for (const g of svg.querySelectorAll('.kv-node[data-node]')) {
      const key = g.dataset.node + '|' + g.dataset.state
      if (!seen.has(key)) { seen.add(key); window.__seen.push([g.dataset.node, g.dataset.state, now]) }
    }
  }
  record()
  new MutationObserver(record).observe(svg, {subtree: true, childList: true, attributes: true})
  return true
}"""


# The page's own round trip, measured beside the pushes (while the run reads the screen):
# tick a breakpoint box, until the server's answer (the red dot on that node of the
# graph) is in the page; then untick it. Returns the milliseconds of each.
ROUND_TRIPS = """async ([node, n]) => {
  function findAll(root, sel, out) {
    out.push(...root.querySelectorAll(sel))
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) findAll(el.shadowRoot, sel, out)
    return out
  }
  const svg = findAll(document, '[aria-label="Flow graph"]', [])[0]
  const box = findAll(document, 'input[type="checkbox"]', []).find(
    (i) => i.value === node || (i.parentElement && i.parentElement.textContent.trim() === node))
  const out = []
  for (let i = 0; i < n; i++) {
    const want = !box.checked
    const t0 = Date.now()
    await new Promise((resolve) => {
      const done = () => {
        const g = svg.querySelector(`.kv-node[data-node="${node}"]`)
        if (g && !!g.querySelector('.kv-bp[data-on="true"]') === want) { clearInterval(poll); resolve() }
      }
      const poll = setInterval(done, 2)
      box.click()
    })
    out.push(Date.now() - t0)
    await new Promise((r) => setTimeout(r, 100))
  }
  return out
}"""


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]



def node_states(page) -> dict[str, str]:
    return dict(page.locator(".kv-node[data-node]").evaluate_all(
        "els => els.map(e => [e.dataset.node, e.dataset.state])"))


def open_dashboard(chromium, url: str, width: int = 1440, height: int = 900):
    context, pg = new_page(chromium, viewport={"width": width, "height": height})
    p = pg.page
    p.goto(url)
    p.get_by_label("Live view").wait_for(timeout=90_000)
    wait_for(lambda: len(node_states(p)) >= 2, what="flow graph")
    return context, pg


def status_of(p) -> str:
    return p.get_by_label("Flow status").inner_text()


def run_record(run_id: str) -> list[dict]:
    from kvmrpa.engine import list_runs, read_run

    for info in list_runs(limit=50):
        if info.get("run_id", info.get("id")) == run_id:
            return read_run(info["path"])
    raise AssertionError(f"no record of run {run_id}")


def newest_record(flow: str) -> list[dict]:
    from kvmrpa.engine import list_runs, read_run

    runs = [r for r in list_runs(limit=50) if r.get("flow") == flow]
    assert runs, f"no run record of {flow}"
    return read_run(runs[0]["path"])


def tab(page, flow: str):
    return page.locator(f'[role="tab"][data-flow="{flow}"]')


def finished_runs(page) -> int:
    log = page.get_by_label("Run log").inner_text()
    return len(re.findall(r"\brun (ok|stopped|failed)", log))


def flows_with_a_false_trigger(folder: Path) -> Path:
    """scenario1, and a copy whose trigger text is never on screen (nothing to do)."""
    import kvmrpa.sim

    src = Path(kvmrpa.sim.__file__).parent / "flows" / "scenario1.json"
    folder.mkdir()
    data = json.loads(src.read_text(encoding="utf-8"))
    (folder / "scenario1.json").write_text(json.dumps(data), encoding="utf-8")
    data["name"] = "scenario1_nothing"
    data["description"] = "As scenario1, waiting for a text that never shows."
    for node in data["nodes"]:
        if node["id"] == "trigger":
            node["params"]["text"] = "从未出现"
    (folder / "scenario1_nothing.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_two_tabs_one_pushed_state_outcome_and_latency(serve_dashboard, chromium, tmp_path,
                                                       artifacts_dir) -> None:
    flows = flows_with_a_false_trigger(tmp_path / "flows")
    with serve_dashboard("--flows", str(flows)) as server:
        ctx_a, a = open_dashboard(chromium, server.url)
        ctx_b = None
        try:
            pa = a.page
            assert tab(pa, "scenario1").get_attribute("aria-selected") == "true"
            assert pa.evaluate(OBSERVE)
            pa.get_by_role("button", name="Run once", exact=True).click()
            wait_for(lambda: node_states(pa).get("read") in ("running", "done"), timeout=90,
                     what=f"read running (status {status_of(pa)!r})")
            trips = pa.evaluate(ROUND_TRIPS, ["grab", 6])  # grab has run: no pause
            wait_for(lambda: status_of(pa) in ("ok", "stopped") or status_of(pa).startswith(
                "failed"), timeout=90, what="first run end")
            assert status_of(pa) == "ok"
            assert "1 action" in pa.get_by_label("Outcome").inner_text()
            seen = pa.evaluate("window.__seen")
            events = newest_record("scenario1")
            # engine event (wall) -> DOM change (page clock), per node state shown
            walls = {}
            for ev in events:
                kind = {"node_started": "running", "node_finished": "done"}.get(ev.get("kind"))
                if kind and "wall" in ev:
                    walls.setdefault((ev["node"], kind), ev["wall"] * 1000)
            lat = sorted(t - walls[(n, s)] for n, s, t in seen if (n, s) in walls)
            assert len(lat) >= 5, (seen, walls)
            assert min(lat) > -50, lat  # one clock: the DOM never precedes the event
            push_p95, trip_p95 = p95(lat), p95(trips)
            figure = {"push_ms": lat, "push_p50_ms": lat[len(lat) // 2], "push_p95_ms": push_p95,
                      "round_trip_ms": sorted(trips), "round_trip_p95_ms": trip_p95,
                      "load": os.getloadavg()}
            with open(os.path.join(artifacts_dir, "dashboard-push-latency.json"), "w",
                      encoding="utf-8") as fh:
                json.dump(figure, fh)
            print(f"engine event -> DOM: p50 {lat[len(lat) // 2]:.1f} ms, p95 {push_p95:.1f} ms "
                  f"(n={len(lat)}); click round trip p95 {trip_p95:.1f} ms; "
                  f"load {os.getloadavg()}")
            # States are pushed, not polled: the typical push takes no longer than two of
            # the page's own round trips in the same run (or 100 ms). The p95 of these 6-10
            # samples is their slowest one, one scheduling hiccup on a loaded machine; it is
            # recorded above, and the speed figures live in `kvmrpa bench`.
            push_p50, trip_p50 = lat[len(lat) // 2], sorted(trips)[len(trips) // 2]
            assert push_p50 <= max(100.0, 2 * trip_p50), figure
            # A flow whose trigger is false: "ok", and the outcome says nothing was done,
            # in a neutral colour.
            tab(pa, "scenario1_nothing").click()
            wait_for(lambda: "never shows" in pa.get_by_label("Flow description").inner_text(),
                     what="scenario1_nothing selected")
            pa.get_by_role("button", name="Run once", exact=True).click()
            wait_for(lambda: finished_runs(pa) >= 1, timeout=90, what="scenario1_nothing run")
            outcome = pa.get_by_label("Outcome")
            assert status_of(pa) == "ok"
            assert "nothing done" in outcome.inner_text(), outcome.inner_text()
            assert "trigger → false" in outcome.inner_text()
            assert outcome.get_attribute("data-kind") == "nothing"
            assert outcome.evaluate("e => getComputedStyle(e).color") == "rgb(69, 90, 100)"
            assert tab(pa, "scenario1_nothing").get_attribute(
                "data-state") == "ok"
            pa.screenshot(path=os.path.join(artifacts_dir, "dashboard-nothing-done.png"))
            tab(pa, "scenario1").click()
            wait_for(lambda: "taskbar" in pa.get_by_label("Flow description").inner_text(),
                     what="scenario1 selected again")
            outcome = pa.get_by_label("Outcome")
            # A second tab opened now shows the same state and the whole log.
            ctx_b, b = open_dashboard(chromium, server.url)
            pb = b.page
            wait_for(lambda: status_of(pb) == status_of(pa), what="same status in tab b")
            log_a = pa.get_by_label("Run log").inner_text()
            wait_for(lambda: pb.get_by_label("Run log").inner_text() == log_a,
                     what="same log in tab b")
            assert "run started (once)" in log_a and "None" not in log_a
            assert pb.get_by_label("Outcome").inner_text() == outcome.inner_text()
            assert node_states(pb) == node_states(pa)
            # A run started in tab b shows in tab a.
            done = finished_runs(pa)
            pb.get_by_role("button", name="Run once", exact=True).click()
            wait_for(lambda: finished_runs(pa) > done, timeout=90, what="tab b's run in tab a")
            wait_for(lambda: pa.get_by_label("Run log").inner_text()
                     == pb.get_by_label("Run log").inner_text(), what="logs agree")
            assert status_of(pa) == status_of(pb)
            assert a.errors == [] and b.errors == []
            # Closing a tab logs nothing above DEBUG.
            before = server.output()
            ctx_b.close()
            ctx_b = None
            pa.wait_for_timeout(3000)
            after = server.output()[len(before):]
            assert "Traceback" not in after and "WebSocketClosedError" not in after, after
        finally:
            ctx_a.close()
            if ctx_b is not None:
                ctx_b.close()


def test_layout_at_1440_and_1024(serve_dashboard, chromium, artifacts_dir) -> None:
    with serve_dashboard() as server:
        for width, height in ((1440, 900), (1024, 768)):
            ctx, pg = open_dashboard(chromium, server.url, width, height)
            try:
                p = pg.page
                p.wait_for_timeout(1000)
                p.screenshot(path=os.path.join(artifacts_dir, f"dashboard-{width}x{height}.png"))
                sw, iw, ih = p.evaluate("[document.documentElement.scrollWidth, innerWidth, "
                                        "innerHeight]")
                assert sw <= iw, f"horizontal scroll at {width}x{height}: {sw} > {iw}"
                graph = p.get_by_label("Flow graph").bounding_box()
                # the canvas starts on the first screen (it is taller than what is left)
                assert graph["y"] >= 0 and graph["y"] + min(graph["height"], 150) <= ih, graph
                assert graph["x"] + graph["width"] <= iw, graph
                st = p.get_by_label("Flow status").bounding_box()
                assert st["y"] + st["height"] <= ih
                # Node boxes fit their text ("vision_condition · pending" included).
                over = p.locator(".kv-node[data-node]").evaluate_all("""gs => gs.flatMap(g =>
                    [...g.querySelectorAll('.kv-id, .kv-type')].filter(t => t.scrollWidth > t.clientWidth + 1)
                      .map(t => t.textContent))""")
                assert over == []
                assert any("vision_condition · " in t for t in p.locator(
                    ".kv-node[data-node] .kv-type").evaluate_all("ts => ts.map(t => t.textContent)"))
                assert p.get_by_role("tab").count() == 3
                assert p.get_by_role("tablist").count() >= 1
                for label in ("Run once", "Run in a loop", "Pause", "Stop"):
                    assert p.get_by_role("button", name=label, exact=True).is_visible()
                assert p.title()
                desc = p.get_by_label("Flow description")
                assert "测试" in desc.inner_text() and desc.is_visible()
                assert pg.errors == [] and pg.blocked == []
            finally:
                ctx.close()


def test_edits_are_drafts_and_clearing_roi_works(serve_dashboard, chromium,
                                                 artifacts_dir) -> None:
    with serve_dashboard() as server:
        ctx_a, a = open_dashboard(chromium, server.url)
        ctx_b, b = open_dashboard(chromium, server.url)
        try:
            pa, pb = a.page, b.page
            pa.locator('.kv-node[data-node="read"]').click()
            pa.get_by_text("Edit node", exact=True).click()
            roi = pa.get_by_role("textbox", name="Roi")
            roi.wait_for(timeout=30_000)
            roi.fill("0, 0, 40, 20")  # a region where nothing can be read
            roi.press("Enter")
            marker_a = pa.get_by_label("Draft state")
            wait_for(lambda: marker_a.get_attribute("data-modified") == "true", what="modified")
            pa.get_by_role("button", name="Apply", exact=True).click()
            wait_for(lambda: "applied" in marker_a.inner_text(), what="applied")
            pa.screenshot(path=os.path.join(artifacts_dir, "dashboard-draft.png"))
            # Tab b: not modified, its form is the saved flow, and its run uses that.
            assert pb.get_by_label("Draft state").get_attribute("data-modified") == "false"
            pb.get_by_role("button", name="Run once", exact=True).click()
            wait_for(lambda: status_of(pb) not in ("idle", "running"), timeout=90,
                     what="tab b's run")
            assert status_of(pb) == "ok"
            assert "1 action" in pb.get_by_label("Outcome").inner_text()
            # Clearing the field sets the default (None) without a traceback.
            before = server.output()
            roi.fill("")
            roi.press("Enter")
            wait_for(lambda: marker_a.get_attribute("data-modified") == "false",
                     what="back to the saved flow")
            pa.wait_for_timeout(1000)
            after = server.output()[len(before):]
            assert "Traceback" not in after and "ValueError" not in after, after
            assert a.errors == [] and b.errors == []
        finally:
            ctx_a.close()
            ctx_b.close()

"""FlowView, Debugger, NodeEditor, Dashboard and the run state, without a browser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kvmrpa.widgets import Dashboard, DashboardApp, Debugger, FlowView, NodeEditor, RunState
from kvmrpa.widgets._debugger import status_html
from kvmrpa.widgets._engine import flow_class
from kvmrpa.widgets._runstate import layered_layout

import kvmrpa.nodes  # noqa: F401 - registers the logic node types
from kvmrpa import Frame

from .test_encoder import wait_until


def diamond(ms: tuple[int, int, int, int] = (50, 300, 150, 20)):
    Flow = flow_class()
    f = Flow("diamond")
    for nid, t in zip("abcd", ms, strict=True):
        f.add("wait", nid, ms=t)
    f.connect("a", "b")
    f.connect("a", "c")
    f.connect("b", "d")
    f.connect("c", "d")
    return f


def test_layered_layout_columns_by_depth() -> None:
    pos = layered_layout("abcd", [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    assert pos["a"][0] < pos["b"][0] == pos["c"][0] < pos["d"][0]
    assert pos["b"][1] != pos["c"][1]
    # A cycle does not break the layout.
    assert set(layered_layout("ab", [("a", "b"), ("b", "a")])) == {"a", "b"}


def test_run_state_folds_events() -> None:
    rs = RunState()
    rs.reset(["a", "b"])
    rs.apply({"kind": "flow_started", "t": 0})
    rs.apply({"kind": "pass_started", "t": 0})
    rs.apply({"kind": "node_started", "node": "a", "t": 0.1})
    assert rs.states["a"] == "running" and rs.status == "running"
    rs.apply({"kind": "node_finished", "node": "a", "t": 0.3, "duration": 0.2})
    rs.apply({"kind": "paused", "node": "b", "reason": "breakpoint", "t": 0.3})
    assert rs.states["b"] == "paused" and rs.status == "paused" and rs.paused_at == "b"
    rs.apply({"kind": "resumed", "t": 0.4})
    rs.apply({"kind": "node_started", "node": "b", "t": 0.4})
    rs.apply({"kind": "node_failed", "node": "b", "t": 0.5, "error": "no text 确定", "handled": False})
    rs.apply({"kind": "flow_finished", "status": "failed", "error": "x", "t": 0.5})
    snap = rs.snapshot()
    assert snap["states"] == {"a": "done", "b": "failed"}
    assert snap["status"] == "failed: b no text 确定"
    assert snap["timing"]["a"] == pytest.approx((0.1, 0.3))


def test_run_state_shows_no_secret() -> None:
    """Errors and log lines from a run pass the one redaction before a page sees them:
    URL credentials and secrets resolved at run time (``${env:…}``)."""
    from kvmrpa._redact import register_secret

    register_secret("hunter2-resolved")
    rs = RunState()
    rs.reset(["a"])
    rs.apply({"kind": "flow_started", "t": 0})
    rs.apply({"kind": "node_started", "node": "a", "t": 0.1})
    rs.apply({"kind": "node_failed", "node": "a", "t": 0.2, "handled": False,
              "error": "cannot open rtsp://admin:s3cret@cam/x after typing hunter2-resolved"})
    rs.apply({"kind": "flow_finished", "status": "failed", "t": 0.3,
              "error": "vnc://:pw-of-vnc@host:5900 refused"})
    rs.note("saved by rtsp://u:other-pw@cam")
    snap = rs.snapshot()
    shown = repr(snap)
    for secret in ("s3cret", "hunter2-resolved", "pw-of-vnc", "other-pw"):
        assert secret not in shown, secret
    assert "rtsp://admin:***@cam/x" in shown


def test_flowview_graph_and_selection() -> None:
    f = diamond()
    fv = FlowView(f)
    ids = [n["id"] for n in fv.graph["nodes"]]
    assert ids == ["a", "b", "c", "d"] and len(fv.graph["edges"]) == 4
    assert fv.states == dict.fromkeys("abcd", "pending") and fv.selected == "a"
    f.add("wait", "e", ms=1)
    f.connect("d", "e")
    fv.refresh()
    assert "e" in fv.states and len(fv.graph["edges"]) == 5
    root = fv.get_root()
    assert root.data.graph["nodes"][0]["id"] == "a"
    fv._cleanup(root)


def test_debugger_breakpoint_step_continue() -> None:
    dbg = Debugger(diamond())
    assert dbg.status == "idle"
    assert [b.label for b in dbg.buttons.values()] == [
        "Run once", "Run in a loop", "Pause", "Step", "Continue", "Stop"]
    assert all(b.description for b in dbg.buttons.values())  # every control has a tooltip
    dbg.breakpoint_toggles.value = ["c"]
    assert dbg.breakpoints == ["c"] and dbg.flow_view.breakpoints == ["c"]
    dbg.buttons["Run once"].clicks += 1

    def refreshed(pred):
        def check():
            dbg.refresh()
            return pred()
        return check

    wait_until(refreshed(lambda: dbg.status == "paused" and dbg.flow_view.states["c"] == "paused"))
    assert dbg.flow_view.states["a"] == "done"
    dbg.buttons["Step"].clicks += 1
    wait_until(refreshed(lambda: dbg.flow_view.states["c"] == "done"))
    assert dbg.status == "paused" and dbg.flow_view.states["d"] != "done"
    dbg.buttons["Continue"].clicks += 1
    wait_until(refreshed(lambda: dbg.status == "ok"))
    assert set(dbg.flow_view.states.values()) == {"done"}
    assert dbg.status_pane.object == status_html("ok", dbg.state.last_wall)
    assert 'aria-label="Flow status"' in dbg.status_pane.object
    # The timeline has one bar per node; b and c overlap (parallel branches).
    html = dbg.timeline.object
    assert all(f'data-node="{n}"' in html for n in "abcd")
    t = {n: (r.started, r.finished) for n, r in dbg.run.nodes.items()}
    assert t["b"][0] < t["c"][1] and t["c"][0] < t["b"][1]
    dbg.selected = "b"
    info = dbg.inspect()
    assert info["output"] == {"waited_ms": 300} and "a" in info["inputs"]
    assert any("paused before c" in line for line in dbg.state.log)
    dbg.close()


def test_debugger_step_without_run_pauses_before_first_node() -> None:
    dbg = Debugger(diamond((10, 10, 10, 10)))
    dbg.step()

    def check():
        dbg.refresh()
        return dbg.status == "paused"

    wait_until(check)
    assert dbg.flow_view.states["a"] == "paused"
    dbg.buttons["Stop"].clicks += 1

    def stopped():
        dbg.refresh()
        return dbg.status == "stopped"

    wait_until(stopped)


def test_debugger_reports_failure_with_node() -> None:
    Flow = flow_class()
    f = Flow("bad")
    f.add("wait", "a", ms=10)
    f.add("python", "boom", code="raise ValueError('kaputt')")
    f.connect("a", "boom")
    dbg = Debugger(f)
    dbg.start()

    def check():
        dbg.refresh()
        return dbg.status.startswith("failed")

    wait_until(check)
    assert dbg.status.startswith("failed: boom") and "kaputt" in dbg.status


class FakeOcrNode:
    """A stand-in with the try_on contract of the vision nodes."""

    type_name = "fake"

    def __init__(self):
        import param

        class P(param.Parameterized):
            threshold = param.Number(0.5, bounds=(0, 1), doc="How sure.")
            timeout = param.Number(0.0, bounds=(0, 10), doc="Seconds.")

        self.p = P()
        self.param = self.p.param
        self.calls = []

    def try_on(self, frame):
        self.calls.append(frame.seq)
        return {"frame": frame, "point": (5.0, 6.0), "text": "确定"}


def test_node_editor_form_and_run_on_frame() -> None:
    node = FakeOcrNode()
    frame = Frame(np.zeros((60, 80, 3), np.uint8), seq=9)
    ed = NodeEditor(node.p, frame=frame)
    ed.node.try_on = node.try_on  # the Parameterized carries the try_on contract
    out = ed.try_on()
    assert node.calls == [9] and out["point"] == (5.0, 6.0)
    assert ed.json.object["text"] == "确定" and ed.json.object["frame"]["seq"] == 9
    assert ed.image.object[:8] == b"\x89PNG\r\n\x1a\n"
    assert not ed.error.visible
    # The form: own parameters first, the execution policy grouped apart.
    form = ed._form.objects
    assert "threshold" in form[1].parameters and "timeout" not in form[1].parameters
    assert "timeout" in form[2].objects[0].parameters


def test_dashboard_lists_flows_and_runs(tmp_path) -> None:
    diamond((10, 10, 10, 10)).save(tmp_path / "one.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    app = DashboardApp(tmp_path, source_url="manual://none")
    try:
        assert list(app.flows) == ["diamond"] and "broken" in app.load_errors
        dash = Dashboard(app=app)
        assert dash.selected == "diamond" and dash.debugger is not None
        assert dash.live.source is None  # the URL cannot be opened: no source, no crash
        dash.debugger.buttons["Run in a loop"].clicks += 1

        def check():
            dash.refresh()
            dash.debugger.refresh()
            return app.current_run("diamond") is not None and app.current_run("diamond").passes >= 2

        wait_until(check)
        assert dash.debugger.run is app.current_run("diamond")  # the page follows the app's run
        assert app.flow_state("diamond") == "running"
        assert {"name": "diamond", "state": "running", "title": "diamond"} in dash.tabs.items
        assert "passes" in dash.metrics.object
        dash.debugger.buttons["Stop"].clicks += 1
        wait_until(lambda: app.flow_state("diamond") == "stopped")
        dash.close()
    finally:
        app.close()
    assert json.loads((tmp_path / "one.json").read_text(encoding="utf-8"))["name"] == "diamond"


def test_node_editor_on_real_nodes() -> None:
    from kvmrpa.nodes import get_node_class

    crop = get_node_class("crop")(x=10, y=5, width=30, height=20)
    img = np.zeros((60, 80, 3), np.uint8)
    img[5:25, 10:40] = 200
    ed = NodeEditor(crop, frame=Frame(img, seq=3))
    out = ed.try_on()
    assert out["frame"].size == (30, 20) and out["frame"].offset == (10, 5)
    assert ed.image.object is not None and not ed.error.visible
    # Parameters that only matter for some modes appear and disappear with the mode.
    ocr = get_node_class("ocr")()
    form = NodeEditor(ocr)._form.objects[1]

    def shown() -> list[str]:
        return [w.label for w in form._widget_box.objects]

    assert "Det model" in shown()
    ocr.engine = "tesseract"
    assert "Det model" not in shown() and "Min confidence" in shown()


def test_node_editor_shows_node_errors() -> None:
    ed = NodeEditor(FakeOcrNode().p)  # a node without try_on
    with pytest.raises(Exception, match="cannot run outside a flow"):
        ed.try_on(Frame(np.zeros((10, 10, 3), np.uint8)))
    assert ed.error.visible and "cannot run outside a flow" in ed.error.object


def test_debugger_editor_follows_selection() -> None:
    f = diamond()
    dbg = Debugger(f)
    assert dbg.editor.node is f["a"]
    dbg.flow_view.selected = "c"  # a click in the graph
    assert dbg.selected == "c" and dbg.editor.node is f["c"]


def test_flow_editor_palette_connect_delete_save(tmp_path) -> None:
    f = diamond((10, 10, 10, 10))
    dbg = Debugger(f)
    ed = dbg.flow_editor
    ed.path = str(tmp_path / "edited.json")
    ed.node_type.value = "wait"
    ed.node_id.value = "e"
    ed.add_button.clicks += 1
    assert "e" in f.nodes and "e" in dbg.flow_view.states and "e" in dbg.breakpoint_toggles.options
    ed.source_node.value, ed.target_node.value = "d", "e"
    ed.connect_button.clicks += 1
    assert ("d", "e") in {(x.source, x.target) for x in f.edges}
    assert len(dbg.flow_view.graph["edges"]) == 5
    ed.source_node.value, ed.target_node.value = "a", "d"
    ed.disconnect_button.clicks += 1
    assert ed.message.alert_type == "danger" and "no edge" in ed.message.object
    ed.delete_node.value = "b"
    ed.delete_button.clicks += 1
    assert "b" not in f.nodes and "b" not in dbg.flow_view.states
    ed.save_button.clicks += 1
    saved = json.loads((tmp_path / "edited.json").read_text(encoding="utf-8"))
    assert {n["id"] for n in saved["nodes"]} == {"a", "c", "d", "e"}
    # The edited flow runs.
    dbg.start()

    def done():
        dbg.refresh()
        return dbg.status == "ok"

    wait_until(done)
    assert set(dbg.flow_view.states.values()) == {"done"}
    # Edits are refused while a run is active.
    ed.locked = True
    ed.delete_button.clicks += 1
    assert "stop the run" in ed.message.object and "c" in f.nodes


def test_debugger_follows_a_run_started_in_code() -> None:
    f = diamond((10, 10, 10, 10))
    run = f.start(debug=True, breakpoints=["d"])
    dbg = Debugger(run)
    assert dbg.flow is f and dbg.run is run
    run.debugger.wait_paused(timeout=30)
    dbg.refresh()
    assert dbg.status == "paused" and dbg.flow_view.states["d"] == "paused"
    run.debugger.resume()
    run.result(timeout=30)
    dbg.refresh()
    assert dbg.status == "ok"


def test_closing_a_page_detaches_it_and_leaves_the_run_going(tmp_path) -> None:
    diamond((10, 10, 10, 10)).save(tmp_path / "one.json")
    app = DashboardApp(tmp_path, source_url="manual://none")
    try:
        dash = Dashboard(app=app)
        dash.debugger.buttons["Run in a loop"].clicks += 1
        wait_until(lambda: app.flow_state("diamond") == "running")
        dbg = dash.debugger
        dbg.refresh()
        assert dbg.run is app.current_run("diamond") and dash._unsubscribe
        dash.close()
        assert dash._unsubscribe == [] and not dash.pusher.bound
        run = app.current_run("diamond")
        passes = run.passes
        wait_until(lambda: run.passes > passes)  # another tab may still watch it
        assert app.flow_state("diamond") == "running"
    finally:
        app.close()
    assert app.current_run("diamond").done


def test_a_served_page_stops_with_its_session_and_can_close_its_app(tmp_path) -> None:
    import types

    from bokeh.document import Document
    from panel.io.state import set_curdoc

    diamond((10, 10, 10, 10)).save(tmp_path / "one.json")
    shared = DashboardApp(tmp_path, source_url="manual://none")
    own = DashboardApp(tmp_path, source_url="manual://none")
    try:
        docs = []
        for app, close_app in ((shared, False), (own, True)):
            doc = Document()
            request = types.SimpleNamespace(arguments={}, cookies={}, headers={})
            ctx = types.SimpleNamespace(id="s", request=request)
            doc._session_context = lambda ctx=ctx: ctx  # as under a server: a live session
            with set_curdoc(doc):
                app.view(close_app=close_app)
            docs.append(doc)
        own.start("diamond")
        wait_until(lambda: own.flow_state("diamond") == "running")
        for doc in docs:  # the sessions end (browser tabs closed)
            assert len(doc.session_destroyed_callbacks) == 1
            for cb in doc.session_destroyed_callbacks:
                cb(None)
        wait_until(lambda: own.current_run("diamond").done)  # a per-session app is closed
        assert own._closed
        assert not shared._closed  # a process-wide app outlives its pages
    finally:
        shared.close()
        own.close()


def test_dashboard_console_maps_clicks_from_the_capture_size(tmp_path) -> None:
    # The capture (a 640x360 image) is smaller than the target screen (1280x720): the
    # console's driver is opened with the frame size, so a click at frame pixel
    # (100, 50) arrives at target pixel (200, 100).
    import cv2

    image = tmp_path / "screen.png"
    cv2.imwrite(str(image), np.full((360, 640, 3), 90, np.uint8))
    app = DashboardApp(None, source_url=str(image),
                       input_url="dryrun://dashboard-console?size=1280x720")
    try:
        src = app.source(str(image))
        wait_until(lambda: src.latest() is not None)
        dash = Dashboard(app=app)
        drv = dash.live.driver
        assert drv is not None and drv.frame_size == (640, 360)
        dash.live.console = True
        dash.live._handle_msg({"kind": "mouse", "action": "down", "x": 100, "y": 50,
                               "button": "left"})
        wait_until(lambda: len(drv.actions) >= 2)
        assert drv.actions[:2] == [{"op": "move", "x": 200, "y": 100},
                                   {"op": "button", "button": "left", "down": True}]
        dash.close()
    finally:
        app.close()


def test_run_state_stopped_outcome_log_and_rate() -> None:
    rs = RunState()
    rs.reset(["grab", "trigger", "click"], {"grab": "source", "trigger": "vision_condition",
                                            "click": "mouse"})
    seen = []
    unsubscribe = rs.subscribe(lambda: seen.append(rs.version))
    rs.apply({"kind": "flow_started", "t": 0, "passes": 0, "wall": 100.0})
    rs.apply({"kind": "pass_started", "t": 0, "wall": 100.0})
    rs.apply({"kind": "node_finished", "node": "grab", "t": 0.1, "wall": 100.1})
    rs.apply({"kind": "node_finished", "node": "trigger", "t": 0.2, "branch": "false",
              "wall": 100.2})
    rs.apply({"kind": "node_skipped", "node": "click", "t": 0.2, "wall": 100.2})
    rs.apply({"kind": "pass_finished", "status": "ok", "t": 0.3, "wall": 100.3})
    assert rs.outcome == "ok · nothing done (trigger → false; 1 skipped)"
    assert rs.outcome_kind == "nothing" and seen  # listeners were told
    rs.apply({"kind": "pass_started", "t": 1, "wall": 101.0})
    rs.apply({"kind": "node_finished", "node": "click", "t": 1.1, "wall": 101.1})
    rs.apply({"kind": "pass_finished", "status": "ok", "t": 1.2, "wall": 101.3})
    assert rs.outcome == "ok · 1 action" and rs.outcome_kind == "ok"
    assert rs.passes_per_min() == pytest.approx(60.0)  # 2 passes 1 s apart
    rs.apply({"kind": "paused", "node": None, "reason": "pause", "t": 1.5, "wall": 101.5})
    assert rs.log[-1].endswith("paused") and "None" not in rs.log[-1]
    rs.apply({"kind": "resumed", "t": 1.6, "wall": 101.6})
    rs.apply({"kind": "pass_started", "t": 2, "wall": 102.0})
    rs.apply({"kind": "node_started", "node": "grab", "t": 2.1, "wall": 102.1})
    rs.apply({"kind": "flow_finished", "status": "stopped", "t": 2.2, "wall": 102.2})
    assert rs.states["grab"] == "stopped" and rs.status == "stopped"  # cut, not failed
    assert rs.passes_per_min() == pytest.approx(60.0)  # does not decay after the end
    for i in range(700):
        rs.note(f"line {i}")
    assert len(rs.log) == 500 and rs.log[-1] == "line 699"
    unsubscribe()
    n = len(seen)
    rs.note("after")
    assert len(seen) == n


def test_node_editor_clearing_a_field_sets_its_default(caplog) -> None:
    from kvmrpa.nodes import get_node_class

    ocr = get_node_class("ocr")(roi=(10, 20, 300, 40))
    ed = NodeEditor(ocr, node_id="read")
    edits = []
    ed.on_edit = edits.append
    roi = next(w for w in ed._form.objects[1]._widget_box.objects if w.name == "Roi")
    assert roi.value == "10, 20, 300, 40"
    with caplog.at_level("DEBUG"):
        roi.value = ""  # cleared in the browser
        assert ocr.roi is None and not ed.message.visible and edits == ["roi"]
        roi.value = "1, 2"
        assert ocr.roi is None and ed.message.visible
        assert ed.message.object == "read.roi: needs 4 numbers (2 given)"
        assert roi.value == ""  # the form shows the node's value (None) again
        roi.value = "5 6 7 8"
        assert ocr.roi == (5, 6, 7, 8) and not ed.message.visible
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING") or r.exc_info]


def test_dashboard_drafts_apply_save_revert(tmp_path) -> None:
    diamond((10, 10, 10, 10)).save(tmp_path / "one.json")
    app = DashboardApp(tmp_path, source_url="manual://none")
    try:
        a, b = Dashboard(app=app), Dashboard(app=app)
        draft = a.draft("diamond")
        assert draft is not app.flows["diamond"] and not a.is_modified("diamond")
        a.debugger.editor.node = draft["b"]
        a.debugger.editor.form.ms = 40  # an edit in tab a's form
        assert draft["b"].ms == 40 and a.is_modified("diamond")
        assert 'data-modified="true"' in a.modified.object
        assert app.flows["diamond"]["b"].ms == 10 and b.draft("diamond")["b"].ms == 10
        assert b.run_flow("diamond")["b"].ms == 10
        # Not applied: tab a's run uses the saved flow; applied: its draft (a snapshot).
        assert a.run_flow("diamond")["b"].ms == 10
        a.apply_draft()
        assert a.run_flow("diamond")["b"].ms == 40 and a.run_flow("diamond") is not draft
        run = a.debugger.start()
        run.result(timeout=30)
        assert run.flow["b"].ms == 40 and run.flow is not draft
        draft["b"].ms = 70  # edits after the start never reach the run
        assert run.flow["b"].ms == 40
        run = b.debugger.start()  # tab b's run is the saved flow
        run.result(timeout=30)
        assert run.flow["b"].ms == 10
        # Save: atomic write through the app; tab b is told instead of changed silently.
        a.save_draft()
        saved = json.loads((tmp_path / "one.json").read_text(encoding="utf-8"))
        assert next(n for n in saved["nodes"] if n["id"] == "b")["params"]["ms"] == 70
        assert not a.is_modified("diamond")
        b.refresh()
        assert b.notice.visible and "changed in another session" in b.notice.object
        assert b.draft("diamond")["b"].ms == 10
        b.revert_draft()  # Reload
        assert b.draft("diamond")["b"].ms == 70 and not b.notice.visible
        assert b.debugger.flow is b.draft("diamond")
        a.close()
        b.close()
    finally:
        app.close()


def test_overlay_stamp_fades_when_the_screen_changes() -> None:
    from kvmrpa.widgets._overlays import OverlayStamp

    img = np.zeros((90, 160, 3), np.uint8)
    stamp = OverlayStamp(Frame(img, seq=3), ttl=60)
    shapes = stamp.stamp([{"kind": "text", "bbox": [1, 2, 3, 4], "label": "x"}])
    assert shapes[0]["seq"] == 3 and shapes[0]["alpha"] == 1.0
    assert stamp.verdict(Frame(img.copy(), seq=4)) == "fresh"  # same picture, newer frame
    changed = img.copy()
    changed[20:70, 30:130] = 255
    assert stamp.verdict(Frame(changed, seq=5)) == "faded"
    assert stamp.fade(shapes)[0]["alpha"] < 1
    assert OverlayStamp(Frame(img, seq=1), ttl=0.0).verdict(None) == "expired"

"""FlowCanvas's server side: the document it edits, its undo history, and what the
engine's validation refuses (no browser: the messages the page would send)."""

from __future__ import annotations

import json
import re

import pytest
from kvmrpa.widgets._flowcanvas import CanvasDocument, FlowCanvas, canvas_positions, node_palette

from kvmrpa.engine import Flow


def chain() -> Flow:
    flow = Flow("chain")
    flow.add("source", "grab", position=(0, 0))
    flow.add("ocr", "read", position=(200, 0))
    flow.add("vision_condition", "check", position=(400, 0), text="x")
    flow.add("keyboard", "type", position=(600, 0), text="hi")
    flow.connect("grab", "read")
    flow.connect("read", "check")
    flow.connect("check", "type", branch="true")
    return flow


def doc_of(flow: Flow) -> dict:
    data = flow.to_dict()
    data.pop("created")
    data.pop("updated")
    return data


def test_add_connect_and_refuse_a_cycle_with_the_engines_reason() -> None:
    flow = chain()
    doc = CanvasDocument(flow)
    nid = doc.add("wait", (800, 0))
    assert nid == "wait5" and flow.nodes[nid].position == (800.0, 0.0)
    doc.connect("type", nid)
    assert flow.edges[-1].source == "type" and flow.edges[-1].target == nid
    assert doc.refusal(nid, "grab") is not None
    with pytest.raises(Exception, match=r"cannot connect wait5 → grab: cycle"):
        doc.connect(nid, "grab")
    assert len(flow.edges) == 4  # nothing added
    with pytest.raises(Exception, match="cannot produce branch 'maybe'"):
        doc.connect("check", nid, "maybe")
    refused = doc.refusals("read")
    assert set(refused) == {"grab", "read", "check"}  # ancestors, itself, the duplicate
    assert "cycle" in refused["grab"] and "duplicate" in refused["check"]
    assert doc.refusals("check", "true")["type"].startswith("duplicate")
    assert "wait5" not in doc.refusals("check", "true")


def test_undo_and_redo_restore_the_exact_document() -> None:
    flow = chain()
    doc = CanvasDocument(flow)
    states = [doc_of(flow)]
    doc.add("mouse", (800, 100), "click")
    states.append(doc_of(flow))
    doc.connect("type", "click")
    states.append(doc_of(flow))
    doc.set_param("click", "text", "请输入")
    states.append(doc_of(flow))
    doc.move({"click": (850, 120), "grab": (-10, 5)})
    states.append(doc_of(flow))
    doc.layout()
    states.append(doc_of(flow))
    for want in reversed(states[:-1]):
        assert doc.undo()
        assert doc_of(flow) == want
    assert not doc.undo() and not doc.can_undo
    for want in states[1:]:
        assert doc.redo()
        assert doc_of(flow) == want
    assert not doc.redo()
    # an edit after undo drops the redo steps
    doc.undo()
    doc.add("wait", (0, 300))
    assert not doc.can_redo


def test_an_edit_made_elsewhere_becomes_its_own_undo_step() -> None:
    flow = chain()
    doc = CanvasDocument(flow)
    before = doc_of(flow)
    flow["type"].text = "edited in the form"
    edited = doc_of(flow)
    doc.add("wait", (0, 200))
    assert doc.undo() and doc_of(flow) == edited
    assert doc.undo() and doc_of(flow) == before


def test_delete_removes_the_node_with_its_edges_and_undo_brings_them_back() -> None:
    flow = chain()
    doc = CanvasDocument(flow)
    before = doc_of(flow)
    doc.delete(["read"])
    assert "read" not in flow.nodes
    assert [(e.source, e.target) for e in flow.edges] == [("check", "type")]
    doc.undo()
    assert doc_of(flow) == before
    doc.delete([], [2])  # an edge by index
    assert [(e.source, e.target) for e in flow.edges] == [("grab", "read"), ("read", "check")]


def test_paste_copies_nodes_and_the_edges_between_them() -> None:
    flow = chain()
    doc = CanvasDocument(flow)
    new = doc.paste(["check", "type"])
    assert len(new) == 2
    a, b = new
    assert flow.nodes[a].type == "vision_condition" and flow[a].text == "x"
    assert flow.nodes[a].position == (440.0, 40.0)
    assert any(e.source == a and e.target == b and e.branch == "true" for e in flow.edges)
    assert flow[a] is not flow["check"]


def test_set_param_refuses_a_bad_value_and_keeps_the_document() -> None:
    flow = chain()
    doc = CanvasDocument(flow)
    before = doc_of(flow)
    with pytest.raises(Exception, match="node read: roi"):
        doc.set_param("read", "roi", [1, 2])
    with pytest.raises(Exception, match="no parameter 'nope'"):
        doc.set_param("read", "nope", 1)
    assert doc_of(flow) == before and not doc.can_undo
    doc.set_param("read", "roi", [0, 0, 40, 20])  # JSON list → the tuple it declares
    assert flow["read"].roi == (0, 0, 40, 20)


def test_flows_without_positions_get_a_layered_layout() -> None:
    flow = Flow("imported")
    for nid in ("a", "b", "c"):
        flow.add("wait", nid)
    flow.connect("a", "b")
    flow.connect("a", "c")
    pos = canvas_positions(flow)
    assert pos["a"][0] < pos["b"][0] == pos["c"][0] and pos["b"][1] != pos["c"][1]
    doc = CanvasDocument(flow)
    doc.move({"a": (5, 5)})  # the drawn positions are written with the first edit
    assert flow.nodes["b"].position == pos["b"] and flow.nodes["a"].position == (5.0, 5.0)


def test_canvas_component_answers_the_pages_messages() -> None:
    flow = chain()
    changes = []
    canvas = FlowCanvas(flow, on_change=lambda: changes.append(1))
    graph = canvas.graph
    check = next(n for n in graph["nodes"] if n["id"] == "check")
    assert [o["id"] for o in check["outs"]] == ["out", "true", "false", "error"]
    assert graph["edges"][2]["branch"] == "true"
    canvas._handle_msg({"op": "add", "node_type": "mouse", "position": [800, 0]})
    assert "mouse5" in flow.nodes and canvas.selected == "mouse5" and changes == [1]
    canvas._handle_msg({"op": "probe", "source": "mouse5", "branch": None})
    assert json.loads(canvas.refusals_json)["targets"] == {"mouse5": "edge from 'mouse5' to itself (cycle)"}
    canvas._handle_msg({"op": "connect", "source": "type", "target": "mouse5", "branch": None})
    canvas._handle_msg({"op": "probe", "source": "mouse5", "branch": None})
    refused = json.loads(canvas.refusals_json)
    assert refused["key"] == "mouse5|" and "cycle" in refused["targets"]["grab"]
    canvas._handle_msg({"op": "connect", "source": "mouse5", "target": "grab"})
    assert canvas.message_kind == "error" and "cycle" in canvas.message
    assert len(flow.edges) == 4
    canvas._handle_msg({"op": "undo"})
    assert len(flow.edges) == 3 and canvas.can_redo
    canvas._handle_msg({"op": "redo"})
    assert len(flow.edges) == 4
    canvas._handle_msg({"op": "delete", "nodes": ["mouse5"], "edges": []})
    assert "mouse5" not in flow.nodes and len(flow.edges) == 3
    canvas.locked = True
    canvas._handle_msg({"op": "add", "node_type": "wait", "position": [0, 0]})
    assert "stop the run" in canvas.message and len(flow.nodes) == 4
    canvas.locked = False
    canvas._handle_msg({"op": "move", "positions": {"grab": ["x", 1]}})
    assert canvas.message_kind == "error" and flow.nodes["grab"].position == (0.0, 0.0)


def test_problems_are_shown_on_their_node_and_edge() -> None:
    flow = Flow("bad")
    flow.add("mouse", "click", position=(0, 0), target="text")  # text required
    flow.add("wait", "pause", position=(200, 0))
    flow.connect("click", "pause", branch="true")  # mouse cannot produce 'true'
    graph = FlowCanvas(flow).graph
    click = next(n for n in graph["nodes"] if n["id"] == "click")
    assert any("text" in p for p in click["problems"])
    assert any("cannot produce branch 'true'" in p for p in graph["edges"][0]["problems"])


def test_palette_lists_every_type_with_category_and_doc_but_code_only_when_allowed() -> None:
    from kvmrpa.widgets import _auth

    from kvmrpa.nodes import node_types

    assert {it["type"] for it in node_palette()} == set(node_types())  # local admin
    _auth.configure(_auth.Policy(accounts=None, allow_code=False))  # a server without --allow-code
    try:
        items = {it["type"]: it for it in node_palette()}
        assert set(items) == set(node_types()) - {"python"}
        assert items["ocr"]["category"] == "vision" and items["ocr"]["doc"]
        with pytest.raises(Exception, match="code-bearing"):
            CanvasDocument(Flow("f")).add("python", (0, 0))
    finally:
        _auth.configure(None)


def test_bundle_is_shipped_and_has_no_bare_imports() -> None:
    from kvmrpa.widgets._flowcanvas import BUNDLE

    text = BUNDLE.read_text(encoding="utf-8")
    assert len(text) > 100_000
    # everything is inside: no module is imported at run time (from a CDN or elsewhere)
    assert re.findall(r'\bfrom\s*"[^"]*"|\bimport\s*"[^"]*"|\bimport\(', text) == []
    assert BUNDLE.with_name(BUNDLE.name + ".LICENSE.txt").is_file()
    root = FlowCanvas(chain()).get_root()
    assert root.bundle and root.esm == text  # the bundle itself, no runtime compile


def test_new_flow_save_as_and_open_write_files_and_list_them(tmp_path) -> None:
    from kvmrpa.widgets import Dashboard, DashboardApp

    folder = tmp_path / "flows"
    chain().save(folder / "chain.json")
    app = DashboardApp(folder, source_url="sim://desktop")
    try:
        dash = Dashboard(app=app)
        _files_on(dash, folder)
        dash.close()
    finally:
        app.close()


def _files_on(dash, folder) -> None:
    """New flow, Save as and Open on a Dashboard of ``folder``."""
    files = dash.files
    files.name_input.value = "fresh"
    assert files.new_flow() == "created fresh"
    assert (folder / "fresh.json").is_file() and dash.selected == "fresh"
    assert Flow.load(folder / "fresh.json").nodes == {}
    assert "fresh" in [it["name"] for it in dash.tabs.items]
    # save as: this tab's draft (with an edit) under a new name; the original stays
    dash.selected = "chain"
    dash.debugger.flow_view.add_node("wait", (0, 300))
    files.name_input.value = "chain_copy"
    assert files.save_as() == "saved as chain_copy"
    assert "wait5" in Flow.load(folder / "chain_copy.json").nodes
    assert "wait5" not in Flow.load(folder / "chain.json").nodes
    # open: the original format (no positions) comes in laid out
    original = {"version": "1.0", "name": "old", "nodes": [
        {"id": "a", "type": "wait", "properties": {"duration_ms": 10}},
        {"id": "b", "type": "wait", "properties": {"duration_ms": 10}}],
        "edges": [{"id": "e1", "source": "a", "target": "b", "properties": {}}]}
    text = files.open_bytes(json.dumps(original).encode(), "old.json")
    assert text.startswith("opened old.json as old")
    opened = Flow.load(folder / "old.json")
    assert opened.nodes["a"].position[0] < opened.nodes["b"].position[0]
    assert dash.selected == "old"
    files.name_input.value = "bad name!"
    files._guard(files.new_flow)
    assert files.message.alert_type == "danger" and "bad name!" in files.message.object
    with pytest.raises(Exception, match=r"broken\.json"):
        files.open_bytes(b"{nope", "broken.json")


def test_live_states_reach_the_page_as_one_string_of_what_changed() -> None:
    from bokeh.document import Document

    def shown(text: str, base: dict) -> dict:  # what the page draws (FlowCanvas.jsx)
        msg = json.loads(text)
        if "full" in msg:
            base.clear()
            base.update(msg["full"])
        return {**base, **msg.get("set", {})}

    flow = chain()
    canvas = FlowCanvas(flow)
    doc = Document()
    root = canvas.get_root(doc)
    doc.add_root(root)
    # the states dict is not a model property (Bokeh would walk it entry by entry)
    assert "states" not in root.data.properties() and "states" not in canvas._synced_params
    page: dict = {}
    assert shown(root.data.states_json, page) == dict.fromkeys(flow.nodes, "pending")
    sent: list[str] = []
    canvas.param.watch(lambda e: sent.append(e.new), ["states_json"])
    running = {**canvas.states, "read": "running"}
    canvas.states = running
    assert json.loads(sent[-1]) == {"set": {"read": "running"}}  # only what changed
    assert shown(root.data.states_json, page) == running
    canvas.states = dict(running)  # the same states again: nothing is sent
    assert len(sent) == 1
    later = {**running, "read": "done", "check": "running"}
    canvas.states = later
    assert json.loads(sent[-1]) == {"set": {"read": "done", "check": "running"}}
    assert shown(sent[-1], page) == later
    # a view made now starts from the base and the changes
    other = Document()
    late = canvas.get_root(other)
    assert shown(late.data.states_json, {}) == later
    back = dict.fromkeys(flow.nodes, "pending")  # a reset (a new run): all back to base
    canvas.states = back
    assert shown(sent[-1], page) == back
    # many changes at once: a new base
    canvas.states = dict.fromkeys(flow.nodes, "done")
    assert "full" in json.loads(sent[-1]) or len(json.loads(sent[-1])["set"]) == len(back)
    assert shown(sent[-1], page) == dict.fromkeys(flow.nodes, "done")


def test_the_canvas_follows_a_run_state_by_its_changes_only() -> None:
    """show_run_state reads what was set since its last call (RunState.state_changes);
    a new pass or an edited graph gives every state again, and what the page is sent
    is the same as setting the whole dict."""
    from kvmrpa.widgets import RunState

    flow = chain()
    canvas = FlowCanvas(flow)
    state = RunState()
    state.reset(list(flow.nodes))
    canvas.show_run_state(state)
    assert canvas.states == dict.fromkeys(flow.nodes, "pending")
    first = state.state_changes()
    assert first.full == canvas.states and first.changed == {}
    state.apply({"kind": "node_started", "node": "read", "t": 0.1})
    state.apply({"kind": "node_finished", "node": "read", "t": 0.2})
    state.apply({"kind": "node_started", "node": "check", "t": 0.2})
    later = state.state_changes(first.mark)
    assert later.full is None and later.changed == {"read": "done", "check": "running"}
    assert state.state_changes(later.mark).changed == {}  # nothing new since
    sent: list[str] = []
    canvas.param.watch(lambda e: sent.append(e.new), ["states_json"])
    canvas.show_run_state(state)
    assert canvas.states == {**dict.fromkeys(flow.nodes, "pending"),
                             "read": "done", "check": "running"}
    assert json.loads(sent[-1]) == {"set": {"read": "done", "check": "running"}}
    state.apply({"kind": "node_finished", "node": "check", "t": 0.3})
    canvas.show_run_state(state)
    assert json.loads(sent[-1]) == {"set": {"read": "done", "check": "done"}}
    # a state set back to the base's value leaves the changes
    canvas.update_states({"read": "pending", "nope": "done"})  # unknown ids: ignored
    assert json.loads(sent[-1]) == {"set": {"check": "done"}} and "nope" not in canvas.states
    # a new pass replaces the table: every state again
    state.apply({"kind": "pass_started", "t": 1.0})
    canvas.show_run_state(state)
    assert canvas.states == dict.fromkeys(flow.nodes, "pending")
    # an edited graph: the new node is drawn with its state
    flow.add("wait", "pause", ms=1)
    canvas.refresh()
    state.apply({"kind": "node_started", "node": "pause", "t": 1.1})
    canvas.show_run_state(state)
    assert canvas.states["pause"] == "running"


def test_a_run_of_a_long_chain_pushes_coalesced_states_to_the_canvas() -> None:
    """The bench's follower (the Debugger's path) with a FlowCanvas: the run ends with
    every node done on the canvas, in far fewer pushes than events."""
    import asyncio

    from kvmrpa.bench import _canvas

    async def go() -> tuple[list[float], int]:
        return await _canvas._live_once(150, "canvas")

    lateness, renders = asyncio.run(go())
    assert lateness and 1 <= renders < 150

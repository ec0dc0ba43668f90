"""Import of hand-written original-format flows (tests/nodes/data): every node type of
the original's vision/action set maps, runs with the same behaviour, and whatever cannot
be mapped is reported naming node and property."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvmrpa import FlowValidationError
from kvmrpa.engine import Flow
from kvmrpa.legacy import import_original, resolve_blackboard

from ._screens import Screen, blank

DATA = Path(__file__).with_name("data")


def load_doc(name: str, **subs: str) -> dict[str, Any]:
    text = (DATA / f"{name}.json").read_text(encoding="utf-8")
    for key, value in subs.items():
        text = text.replace(f"@{key}@", value)
    return json.loads(text)


def keys_down(driver: Any) -> list[str]:
    return [o["key"] for o in driver.actions if o.get("op") == "key" and o["down"]]


def test_the_data_files_cover_every_original_type() -> None:
    types: set[str] = set()
    kinds: set[str] = set()
    for path in DATA.glob("*.json"):
        for node in json.loads(path.read_text(encoding="utf-8"))["nodes"]:
            types.add(node["type"])
            if node["type"] == "condition":
                kinds.add(node["properties"]["condition_type"])
            if node["type"] == "mouse_action":
                kinds.add("mouse:" + node["properties"]["position_mode"])
                kinds.add("mouse:" + node["properties"]["action_type"])
            if node["type"] == "keyboard_action":
                kinds.add("keyboard:" + node["properties"]["action_type"])
    assert {"rtsp_source", "kvm_source", "image_crop", "preprocessing", "yolo_detection",
            "ocr_recognition", "condition", "mouse_action", "keyboard_action", "wait",
            "variable"} <= types
    assert {"ocr_text_found", "ocr_has_result", "detection_found", "mouse:ocr_match",
            "mouse:fixed", "mouse:detection", "mouse:click", "mouse:double_click", "mouse:move",
            "keyboard:input", "keyboard:key", "keyboard:hotkey"} <= kinds


def test_dialog_flow_clicks_ok_and_types(dialog: Screen, dialog_url: str,
                                         dryrun: tuple[str, Any]) -> None:
    url, driver = dryrun
    flow = Flow.from_dict(load_doc("ocr_click", IMAGE_URL=dialog_url))
    assert [fn.type for fn in flow] == ["source", "ocr", "vision_condition", "mouse", "wait",
                                        "keyboard", "keyboard"]
    warned = {(w.node, w.field) for w in flow.import_warnings}
    assert ("node_src", "properties.fps") in warned
    result = flow.run(timeout=90, input=url)
    assert result.status == "ok", result.error
    assert [(a["node"], a["action"]) for a in result.actions] == [("node_click", "click"),
                                                                   ("node_type", "type")]
    click = result.actions[0]["args"]
    assert dialog.contains("ok", (click["x"], click["y"]))
    assert result.actions[1]["args"]["text"] == "ok"
    assert result.nodes["node_esc"]["status"] == "skipped"
    assert keys_down(driver) == []


def test_dialog_flow_takes_the_false_branch_on_another_screen(tmp_path: Path,
                                                              dryrun: tuple[str, Any]) -> None:
    url, driver = dryrun
    empty = blank().save(tmp_path / "blank.png")
    result = Flow.from_dict(load_doc("ocr_click", IMAGE_URL=empty)).run(timeout=90, input=url)
    assert result.status == "ok", result.error
    assert [a["node"] for a in result.actions] == ["node_esc"]
    assert keys_down(driver) == ["Escape"]
    assert result.nodes["node_click"]["status"] == "skipped"


def test_crop_preprocess_flow_clicks_below_the_label(dialog: Screen, dialog_url: str,
                                                     dryrun: tuple[str, Any]) -> None:
    url, driver = dryrun
    flow = Flow.from_dict(load_doc("crop_input", IMAGE_URL=dialog_url))
    prep = flow["prep"]
    assert (prep.resize, prep.target_width, prep.target_height, prep.sharpen) == ("fit", 900, 300, True)
    assert prep.denoise != "none"
    assert (flow["crop"].x, flow["crop"].y, flow["crop"].width, flow["crop"].height) == (40, 400, 600, 200)
    result = flow.run(timeout=90, input=url)
    assert result.status == "ok", result.error
    assert [a["node"] for a in result.actions] == ["click_below", "type_text", "tab", "select_all"]
    click = result.actions[0]["args"]
    assert dialog.contains("input", (click["x"], click["y"]), margin=0)
    assert result.actions[1]["args"]["text"] == "测试3"
    assert keys_down(driver) == ["Tab", "Control_L", "a"]


def test_detection_flow(yolo_model: Path, dialog_url: str, dryrun: tuple[str, Any]) -> None:
    url, _driver = dryrun
    flow = Flow.from_dict(load_doc("detection", IMAGE_URL=dialog_url, MODEL_PATH=str(yolo_model)))
    assert flow["yolo"].labels == ["button", "icon"]
    assert flow["found"].kind == "detection_found" and flow["found"].object_label == "button"
    result = flow.run(timeout=90, input=url)
    assert result.status == "ok", result.error
    got = [(a["action"], a["args"].get("x"), a["args"].get("y"), a["args"].get("button"))
           for a in result.actions]
    assert got == [("double_click", 645, 360, "left"), ("click", 310, 190, "right"),
                   ("move", 640, 360, None)]
    assert result.nodes["switch"]["status"] == "skipped"


def test_detection_flow_without_the_label_switches_windows(tmp_path: Path, dialog_url: str,
                                                          dryrun: tuple[str, Any]) -> None:
    from .conftest import make_yolo_model

    url, driver = dryrun
    icons_only = make_yolo_model(tmp_path / "icons.onnx", [(10, 20, 4, 4, 0.1, 0.8)])
    flow = Flow.from_dict(load_doc("detection", IMAGE_URL=dialog_url, MODEL_PATH=str(icons_only)))
    result = flow.run(timeout=90, input=url)
    assert result.status == "ok", result.error
    assert [a["node"] for a in result.actions] == ["switch"]
    assert keys_down(driver) == ["Alt_L", "Tab"]


def test_kvm_source_reports_the_plain_password() -> None:
    flow = Flow.from_dict(load_doc("kvm_password"))
    assert flow.source == "rtsp://admin:hunter2-secret@192.168.1.50:554/1"
    assert flow["kvm"].url == ""  # the flow's one device: the node reads the flow's source
    assert flow["kvm"].wait_new_frame is True
    warned = {(w.node, w.field): w.message for w in flow.import_warnings}
    assert "${env:KVMRPA_KVM_PASSWORD}" in warned[("kvm", "properties.password")]
    assert "hunter2" not in " ".join(str(w) for w in flow.import_warnings)
    assert flow["build"].match_mode == "regex" and flow["build"].text == r"Build \d+"
    assert (flow["enter"].key, flow["desktop"].hotkey, flow["help"].key) == ("ENTER", "win+d", "F1")
    with pytest.raises(FlowValidationError, match="plain-text password"):
        flow.save(Path("/nonexistent/never-written.json"))


def test_blackboard_reads_become_edges(dialog: Screen, dialog_url: str,
                                       dryrun: tuple[str, Any]) -> None:
    url, _driver = dryrun
    doc = load_doc("blackboard", IMAGE_URL=dialog_url)
    native, warnings, problems = import_original(doc)  # runs the blackboard pass
    assert problems == []
    assert {"source": "ocr", "target": "click"} in native["edges"]
    board = [w for w in warnings if "blackboard" in w.message]
    assert [(w.node, "node ocr" in w.message) for w in board] == [("click", True)]
    assert resolve_blackboard(native) == ([], [])  # idempotent: nothing left to resolve
    assert native["source"] == dialog_url
    flow = Flow.from_dict(native)
    result = flow.run(timeout=90, input=url)
    assert result.status == "ok", result.error
    (click,) = result.actions
    assert dialog.contains("cancel", (click["args"]["x"], click["args"]["y"]))


def test_blackboard_flow_also_runs_as_loaded(dialog: Screen, dialog_url: str,
                                             dryrun: tuple[str, Any]) -> None:
    # Loaded directly (kvmrpa run): the click reads the screen itself, with the same result.
    result = Flow.from_dict(load_doc("blackboard", IMAGE_URL=dialog_url)).run(
        timeout=90, input=dryrun[0])
    assert result.status == "ok", result.error
    (click,) = result.actions
    assert dialog.contains("cancel", (click["args"]["x"], click["args"]["y"]))


def test_reading_a_blackboard_nobody_wrote_is_a_problem_naming_the_node(dialog_url: str) -> None:
    native, _w, _p = import_original(load_doc("no_ocr", IMAGE_URL=dialog_url))
    _warnings, problems = resolve_blackboard(native)
    assert sorted((p.node, p.message.split(",")[0]) for p in problems) == [
        ("click_ok", "reads the texts of an ocr_recognition node"),
        ("found", "reads the detections of an yolo_detection node")]


def test_unmappable_properties_are_reported(yolo_model: Path, dialog_url: str) -> None:
    flow = Flow.from_dict(load_doc("unmappable", IMAGE_URL=dialog_url, MODEL_PATH=str(yolo_model)))
    warned = {(w.node, w.field) for w in flow.import_warnings}
    assert {("ocr", "properties.backend"), ("ocr", "properties.det_model"),
            ("ocr", "properties.rec_model"), ("ocr", "properties.char_dict_path"),
            ("yolo", "properties.backend"), ("yolo", "properties.dev_id"),
            ("move", "properties.smooth_ms"), ("src", "properties.resolution")} <= warned
    assert flow["ocr"].det_model == "" and flow["ocr"].rec_model == ""
    with pytest.raises(FlowValidationError) as info:
        Flow.from_dict(load_doc("unmappable", IMAGE_URL=dialog_url,
                                MODEL_PATH="/opt/models/yolov8n.rknn"))
    fields = {(p.node, p.field) for p in info.value.problems}
    assert ("yolo", "properties.model_path") in fields


def _one(type_name: str, **props: Any) -> tuple[dict[str, Any], list[Any], list[Any]]:
    doc = {"id": "f", "name": "one", "version": "1.0", "nodes": [
        {"id": "n", "type": type_name, "label": "", "x": 0, "y": 0, "properties": props}],
        "edges": [], "variables": {}, "created_at": "", "updated_at": ""}
    native, warnings, problems = import_original(doc)
    _one.source = native.get("source")  # type: ignore[attr-defined]
    # One node alone reads a blackboard nobody wrote; that pass has its own tests above.
    problems = [p for p in problems if "no frame to read" not in p.message
                and "runs before it" not in p.message]
    warnings = [w for w in warnings if "blackboard" not in w.message]
    return (native["nodes"][0] if native["nodes"] else {}), warnings, problems


def test_mapper_details() -> None:
    node, warnings, problems = _one("kvm_source", ip="10.0.0.9", port="8554", channel="live",
                                    username="ops", password="${env:KVM_PW}", wait_new_frame=False)
    # the flow's one device becomes the flow's source; the node reads the flow's source
    assert node["params"] == {"wait_new_frame": False}
    assert _one.source == "rtsp://ops:${env:KVM_PW}@10.0.0.9:8554/live"  # type: ignore[attr-defined]
    assert problems == [] and not any(w.field == "properties.password" for w in warnings)
    node, warnings, _ = _one("rtsp_source", url="rtsp://u:pw@cam/1")
    assert [w.field for w in warnings] == ["properties.url"]
    node, warnings, problems = _one("image_crop", x="10", y=20, width=30, height="40", save_original=False)
    assert node["params"] == {"x": 10, "y": 20, "width": 30, "height": 40}
    assert warnings == [] and problems == []
    _node, _w, problems = _one("image_crop", x=-1, width=0)
    assert {p.field for p in problems} == {"properties.x", "properties.width"}
    node, warnings, _ = _one("preprocessing", resize=False, target_width=0, target_height=0,
                             denoise=False, sharpen="true")
    assert node["params"] == {"sharpen": True} and warnings == []
    node, _w, _p = _one("keyboard_action", action_type="hotkey", hotkey="ctrl+c", text="", key="")
    assert node["params"] == {"action": "hotkey", "hotkey": "ctrl+c"}
    _node, _w, problems = _one("keyboard_action", action_type="macro")
    assert [p.field for p in problems] == ["properties.action_type"]
    node, warnings, problems = _one("mouse_action", action_type="click", button="right",
                                    position_mode="fixed", x="15", y=25, target_text="",
                                    detection_label="", match_mode="contains")
    assert node["params"] == {"action": "click", "button": "right", "target": "point",
                              "x": 15.0, "y": 25.0}
    assert warnings == [] and problems == []
    _node, _w, problems = _one("mouse_action", position_mode="somewhere")
    assert [p.field for p in problems] == ["properties.position_mode"]
    node, _w, problems = _one("condition", condition_type="ocr_text_found", target_text="OK",
                              match_mode="regexp", variable_name="", expression="")
    assert node["params"] == {"kind": "text_found", "text": "OK", "match_mode": "regex"}
    assert problems == []
    node, _w, _p = _one("condition", condition_type="variable", variable_name="n",
                        compare_operator=">", compare_value=2)
    assert node["type"] == "condition"  # the engine's own mapper keeps the logic kinds


def _device_doc(*sources: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    nodes = [{"id": nid, "type": kind, "x": 0, "y": 0, "properties": props}
             for nid, (kind, props) in zip(("cam", "cam2"), sources, strict=False)]
    nodes.append({"id": "crop", "type": "image_crop", "x": 1, "y": 0,
                  "properties": {"x": 0, "y": 0, "width": 8, "height": 8}})
    edges = [{"source": n["id"], "target": "crop"} for n in nodes[:-1]]
    return {"id": "dev", "name": "dev", "version": "1.0", "nodes": nodes, "edges": edges}


def test_an_imported_flow_runs_on_the_source_given_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kvmrpa.cli import main

    path = tmp_path / "kvm.json"
    # a KVM nobody listens on: the flow can only pass when --source replaces it
    path.write_text(json.dumps(_device_doc(("kvm_source", {"ip": "127.0.0.1", "port": 9}))),
                    "utf-8")
    flow = Flow.load(path)
    assert flow.source == "rtsp://127.0.0.1:9" and flow["cam"].url == ""
    assert main(["run", str(path), "--source", "sim://scenario1", "--json", "--no-record"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok", out["error"]
    assert out["nodes"]["cam"]["status"] == "done" and out["nodes"]["crop"]["status"] == "done"


def test_a_flow_reading_several_sources_takes_node_equals_url(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kvmrpa.cli import main

    path = tmp_path / "two.json"
    path.write_text(json.dumps(_device_doc(("rtsp_source", {"url": "rtsp://127.0.0.1:9/a"}),
                                           ("rtsp_source", {"url": "rtsp://127.0.0.1:9/b"}))),
                    "utf-8")
    flow = Flow.load(path)
    assert (flow["cam"].url, flow["cam2"].url) == ("rtsp://127.0.0.1:9/a", "rtsp://127.0.0.1:9/b")
    assert main(["run", str(path), "--source", "sim://scenario1", "--no-record"]) != 0
    err = capsys.readouterr().err
    assert "several sources" in err and "cam (" in err and "cam2 (" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["run", str(path), "--source", "cam=sim://scenario1", "--source",
                 "cam2=sim://scenario1", "--json", "--no-record"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok", out["error"]
    assert main(["run", str(path), "--source", "nope=sim://scenario1", "--no-record"]) != 0
    assert "no source node 'nope' (source nodes: cam, cam2)" in capsys.readouterr().err

"""Fuzzing the flow loader and the original-format importer (Hypothesis).

Whatever the bytes or the document, loading either gives a :class:`~kvmrpa.Flow` or
raises a :class:`~kvmrpa.KvmrpaError` (a format or validation error naming where);
never any other exception, never a hang. The functions are called directly (no
subprocess) so that thousands of examples stay fast.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvmrpa import Flow
from kvmrpa._errors import FlowFormatError, FlowValidationError, KvmrpaError
from kvmrpa.engine._validate import parse_document
from kvmrpa.nodes._registry import get_node_class, node_types

FUZZ = settings(max_examples=1000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: For the variations of the two main fuzzers above.
FEWER = settings(FUZZ, max_examples=200)

# JSON values with the awkward cases: huge and non-finite numbers, deep nesting, odd text
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "${env:X}", "\x1b[31m", "../../etc/passwd", "((a*)*)*b", "NaN",
                     "rtsp://u:p@h/x", "9" * 400, "-1", "1e999", "\n", "\u202e"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)

NATIVE_TYPES = sorted(node_types())
ids = st.one_of(st.sampled_from(["a", "b", "c", "n1"]), st.text(max_size=6))


def _outcome(call: Any) -> Flow | None:
    """Run ``call``: a Flow, or None when it raised one of kvmrpa's errors."""
    try:
        flow = call()
    except KvmrpaError as exc:
        assert str(exc)  # a message, always
        if isinstance(exc, FlowValidationError):
            assert exc.problems
        return None
    assert isinstance(flow, Flow)
    return flow


@st.composite
def native_nodes(draw: st.DrawFn) -> dict[str, Any]:
    type_name = draw(st.one_of(st.sampled_from(NATIVE_TYPES), st.text(max_size=6)))
    cls = get_node_class(type_name)
    names = list(cls.param_names()) if cls is not None else []
    keys = st.one_of(st.sampled_from(names), st.text(max_size=6)) if names else st.text(max_size=6)
    node: dict[str, Any] = {"id": draw(ids), "type": type_name}
    if draw(st.booleans()):
        node["params"] = draw(st.one_of(st.dictionaries(keys, json_values, max_size=5),
                                        json_values))
    if draw(st.booleans()):
        node["position"] = draw(st.one_of(st.lists(scalars, max_size=3), scalars))
    if draw(st.booleans()):
        node[draw(st.sampled_from(["label", "extra", "id"]))] = draw(json_values)
    return node


@st.composite
def native_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema_version": draw(st.one_of(st.just(1), scalars)),
                           "name": draw(st.one_of(st.text(max_size=10), scalars)),
                           "nodes": draw(st.lists(native_nodes(), max_size=5))}
    node_ids = [n.get("id") for n in doc["nodes"]] or ["a"]
    doc["edges"] = draw(st.lists(st.fixed_dictionaries(
        {"source": st.sampled_from(node_ids), "target": st.sampled_from(node_ids)},
        optional={"branch": st.one_of(st.sampled_from(["true", "false", "error", "done"]),
                                      scalars)}), max_size=5))
    for key in draw(st.sets(st.sampled_from(["run", "variables", "source", "input",
                                             "metadata", "description", "bogus"]))):
        doc[key] = draw(st.one_of(
            st.fixed_dictionaries({}, optional={"passes": scalars, "interval": scalars}),
            json_values))
    return doc


ORIGINAL_TYPES = ["wait", "variable", "condition", "loop", "rtsp_source", "kvm_source",
                  "image_crop", "preprocessing", "yolo_detection", "ocr_recognition",
                  "mouse_action", "keyboard_action", "start", "end", "teleport"]
_PROPS = (
    "action_type backend button channel char_dict_path class_names compare_operator "
    "compare_value condition condition_type count denoise detection_label dev_id "
    "duration_ms expression fps hotkey invert ip key loop_type match_mode model_path "
    "names_path operation password position_mode resize resolution save_original sharpen "
    "target_label target_labels target_text target_width text url use_angle_cls username "
    "value variable variable_name wait_new_frame while_condition x y offset_x offset_y "
    "conf_threshold det_model rec_model cls_model")
ORIGINAL_PROPS = _PROPS.split()


@st.composite
def original_nodes(draw: st.DrawFn) -> dict[str, Any]:
    node: dict[str, Any] = {"id": draw(ids),
                            "type": draw(st.one_of(st.sampled_from(ORIGINAL_TYPES), scalars))}
    for key in draw(st.sets(st.sampled_from(["x", "y", "label", "text", "width", "zIndex"]))):
        node[key] = draw(st.one_of(scalars, st.fixed_dictionaries(
            {}, optional={"x": scalars, "y": scalars, "value": scalars})))
    node["properties"] = draw(st.one_of(
        st.dictionaries(st.one_of(st.sampled_from(ORIGINAL_PROPS), st.text(max_size=5)),
                        json_values, max_size=6),
        scalars))
    return node


@st.composite
def original_docs(draw: st.DrawFn) -> dict[str, Any]:
    nodes = draw(st.lists(original_nodes(), min_size=1, max_size=6))
    node_ids = [n["id"] for n in nodes]
    edge = st.fixed_dictionaries(
        {"source": st.one_of(st.sampled_from(node_ids), scalars),
         "target": st.one_of(st.sampled_from(node_ids), scalars)},
        optional={"id": scalars, "type": st.just("polyline"), "sourceAnchor": scalars,
                  "properties": st.one_of(
                      st.fixed_dictionaries({}, optional={"branch": scalars}), scalars)})
    doc: dict[str, Any] = {"id": "flow_1", "name": draw(st.text(max_size=8)),
                           "version": "1.0", "nodes": nodes,
                           "edges": draw(st.lists(edge, max_size=6))}
    for key in draw(st.sets(st.sampled_from(["variables", "description", "created_at",
                                             "updated_at", "extra"]))):
        doc[key] = draw(json_values)
    return doc


@FEWER
@given(st.binary(max_size=300))
def test_the_loader_survives_any_bytes(data: bytes) -> None:
    _outcome(lambda: Flow.from_json(data, origin="fuzz.json"))


@FUZZ
@given(native_docs())
def test_the_loader_survives_any_native_document(doc: dict[str, Any]) -> None:
    flow = _outcome(lambda: Flow.from_dict(doc, origin="fuzz.json"))
    if flow is not None:  # what loads saves as strict JSON and loads again the same
        again = Flow.from_json(flow.to_json(), origin="again.json")
        assert again.to_dict()["nodes"] == flow.to_dict()["nodes"]


@FEWER
@given(native_docs())
def test_the_loader_survives_the_json_text_of_any_document(doc: dict[str, Any]) -> None:
    text = json.dumps(doc, allow_nan=True)  # NaN, Infinity as Python writes them
    _outcome(lambda: Flow.from_dict(parse_document(text), origin="fuzz.json"))


@FUZZ
@given(original_docs())
def test_the_importer_survives_any_original_document(doc: dict[str, Any]) -> None:
    _outcome(lambda: Flow.from_dict(doc, origin="original.json"))


@FEWER
@given(original_docs(), st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "9" * 400]))
def test_the_importer_names_non_finite_numbers(doc: dict[str, Any], token: str) -> None:
    doc["nodes"][0]["x"] = "@@"
    text = json.dumps(doc).replace('"@@"', token)
    try:
        Flow.from_dict(parse_document(text), origin="original.json")
    except FlowValidationError as exc:
        assert any(p.field == "x" for p in exc.problems), exc.problems
    except FlowFormatError:
        raise AssertionError("a number out of range must be named by node and field") from None
    else:
        raise AssertionError(f"{token} in x was accepted")


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(string.printable, max_size=40))
def test_user_regexes_compile_or_fail_cleanly_and_stay_in_budget(pattern: str) -> None:
    from kvmrpa._errors import PatternTimeoutError, VisionError
    from kvmrpa.vision._text import compile_user_regex

    try:
        rx = compile_user_regex(pattern, field="value")
    except VisionError:
        return
    try:
        rx.search("a" * 200 + "x" * 200)
    except PatternTimeoutError as exc:
        assert exc.field == "value"

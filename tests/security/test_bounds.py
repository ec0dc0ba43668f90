"""Bounded use of user input, secrets refused on save, and bounded run records."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from kvmrpa import Flow, FlowValidationError
from kvmrpa._errors import PatternTimeoutError, VisionError
from kvmrpa._limits import (
    NonFinite,
    check_image_header,
    dumps_strict,
    loads_strict,
    model_file_problem,
    number_problem,
)
from kvmrpa._settings import configure, load_settings, unknown_env, warn_unknown_env
from kvmrpa.vision._text import compile_text_matcher, compile_user_regex

from .test_corpus import write_bomb_png


# -- regexes ---------------------------------------------------------------------------
def test_a_catastrophic_regex_fails_within_its_budget_naming_the_field() -> None:
    rx = compile_user_regex("(x+x+)+y", field="text")
    with pytest.raises(PatternTimeoutError, match="100 ms budget") as info:
        rx.search("x" * 5000)
    assert info.value.field == "text"
    matcher = compile_text_matcher("(x+x+)+y", "regex", field="target_text")
    with pytest.raises(PatternTimeoutError) as info:
        matcher("x" * 5000)
    assert info.value.field == "target_text"


@pytest.mark.parametrize(("pattern", "why"), [
    ("(", "invalid regex"), ("a{1001}", "exceeds 1000"), ("(a{500}){500}", "product"),
    ("x" * 5000, "limit"), ("a{99999999999999999999999}", "exceeds"),
])
def test_unbounded_regexes_are_refused_before_they_run(pattern: str, why: str) -> None:
    with pytest.raises(VisionError, match=why):
        compile_user_regex(pattern)


def test_ordinary_regexes_still_match() -> None:
    assert compile_user_regex(r"\d{4}-\d{2}", ignore_case=True).search("on 2024-05")
    assert not compile_user_regex("^OK$").search("not ok")
    assert compile_user_regex("^ok$", ignore_case=True).search("OK")


def test_a_condition_node_fails_naming_the_field_when_its_regex_runs_too_long() -> None:
    flow = Flow("regex")
    flow.variables["s"] = "x" * 5000
    flow.add("condition", "c", mode="variable", variable="s", operator="matches",
             value="(x+x+)+y")
    result = flow.run(timeout=60, record=False)
    assert result.status == "failed"
    assert "node c: value:" in result.error and "budget" in result.error


# -- images and models -----------------------------------------------------------------
def test_an_image_header_is_checked_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    write_bomb_png(bomb, side=3000)
    with pytest.raises(ValueError, match="3000x3000"):
        check_image_header(bomb, "template", max_pixels=1_000_000)
    assert check_image_header(bomb, "template", max_pixels=10_000_000) == (3000, 3000)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        check_image_header(tmp_path / "text.png", "template")


def test_templates_and_image_sources_refuse_a_bomb(tmp_path: Path) -> None:
    from kvmrpa._errors import SourceOpenError
    from kvmrpa.capture._files import ImageSource
    from kvmrpa.vision import load_template

    bomb = tmp_path / "bomb.png"
    write_bomb_png(bomb, side=2000)
    configure(vision__max_pixels=1_000_000)
    try:
        with pytest.raises(VisionError, match="2000x2000"):
            load_template(bomb)
        with pytest.raises(SourceOpenError, match="2000x2000"):
            ImageSource(str(bomb))
    finally:
        configure(vision__max_pixels=50_000_000)


def test_model_paths_are_checked(tmp_path: Path) -> None:
    assert "not an ONNX model" in model_file_problem("/etc/passwd", "det model")
    assert "folder" in model_file_problem(str(tmp_path), "det model")
    assert "not on disk" in model_file_problem(str(tmp_path / "x.onnx"), "det model")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07\x12\x0c")
    assert model_file_problem(str(tmp_path / "m.onnx"), "det model") is None
    flow = Flow("ocr")
    flow.add("ocr", "o", det_model="../../../../../../../etc/passwd")
    assert any(p.node == "o" and p.field == "params.det_model" for p in flow.problems())


# -- numbers and JSON ------------------------------------------------------------------
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300, 10**400,
                                   NonFinite("Infinity")])
def test_numbers_out_of_range_are_named(value: object) -> None:
    assert number_problem(value)


def test_strict_json_in_and_out() -> None:
    doc = loads_strict('{"a": NaN, "b": Infinity, "c": 1e999, "d": 1.5, "e": ' + "9" * 500 + "}")
    assert all(isinstance(doc[k], NonFinite) for k in "abce") and doc["d"] == 1.5
    assert dumps_strict({"x": math.nan, "y": [math.inf], "z": 1}) == '{"x": null, "y": [null], "z": 1}'


def test_a_flow_built_in_code_with_infinity_is_named_by_field() -> None:
    flow = Flow("inf")
    flow.add("mouse", "m", x=1.0)
    flow["m"].x = math.inf
    flow.interval = math.nan
    fields = {(p.node, p.field) for p in flow.problems()}
    assert ("m", "params.x") in fields and (None, "run.interval") in fields
    with pytest.raises(FlowValidationError):
        flow.to_json()


# -- secrets on save -------------------------------------------------------------------
@pytest.mark.parametrize(("place", "value"), [
    ("source", " rtsp://admin:pw@cam/x"),
    ("source", "\nrtsp://admin:p/ss@cam/x"),
    ("source", "rtsp://admin:p?ss@cam/x"),
    ("input", "http+keys://h/type?token=abc123"),
    ("input", "vnc://secret@127.0.0.1"),
    ("variables", {"db_password": "hunter2"}),
    ("variables", {"apiKey": "k-123"}),
    ("variables", {"creds": {"token": "t"}}),
    ("variables", {"camera": "rtsp://u:pw@h/x"}),
    ("keyboard", "hunter2"),
])
def test_plain_secrets_are_refused_on_save(tmp_path: Path, place: str, value: object) -> None:
    flow = Flow("secrets")
    if place == "variables":
        flow.variables.update(value)  # type: ignore[arg-type]
    elif place == "keyboard":
        flow.add("keyboard", "k", text=value, secret=True)
    else:
        setattr(flow, place, value)
    with pytest.raises(FlowValidationError, match="env:NAME"):
        flow.save(tmp_path / "f.json")
    assert not (tmp_path / "f.json").exists()


def test_env_references_are_accepted_everywhere(tmp_path: Path) -> None:
    flow = Flow("refs", source="rtsp://admin:${env:CAM_PW}@cam/x",
                input="http+keys://h/type?token=${env:KEYS_TOKEN}")
    flow.variables.update(password="${env:DB_PW}", count=3, hotkey="ctrl+c")
    flow.add("keyboard", "k", text="${env:LOGIN_PW}")
    assert flow["k"].secret
    flow.add("keyboard", "plain", text="hello")  # not secret: allowed
    flow.save(tmp_path / "f.json")
    assert Flow.load(tmp_path / "f.json").variables["password"] == "${env:DB_PW}"


def test_env_references_resolve_at_run_time_and_stay_out_of_records(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kvmrpa.engine._records import read_run

    monkeypatch.setenv("B2_LOGIN_PW", "S3cret-typed-pw")
    monkeypatch.setenv("B2_VAR_PW", "S3cret-variable")
    flow = Flow("typing", input="dryrun://b2-typing")
    flow.variables["password"] = "${env:B2_VAR_PW}"
    flow.add("keyboard", "k", text="${env:B2_LOGIN_PW}")
    flow.add("condition", "c", expression="password == 'S3cret-variable'")
    flow.connect("k", "c")
    result = flow.run(timeout=60)
    assert result.status == "ok", result.error
    assert result.nodes["c"]["status"] == "done"
    text = Path(result.record).read_text(encoding="utf-8")
    assert "S3cret" not in text
    assert read_run(result.record)


# -- settings --------------------------------------------------------------------------
def test_unknown_environment_variables_name_the_closest_setting() -> None:
    env = {"KVMRPA_CAPTURE_STAL_TIMEOUT": "1", "KVMRPA_VISON_MAX_PIXELS": "5",
           "KVMRPA_CAM_PASSWORD": "x", "KVMRPA_HOME": "/tmp", "KVMRPA_CAPTURE_STALL_TIMEOUT": "2"}
    assert unknown_env(env) == [("KVMRPA_CAPTURE_STAL_TIMEOUT", "KVMRPA_CAPTURE_STALL_TIMEOUT"),
                                ("KVMRPA_VISON_MAX_PIXELS", "KVMRPA_VISION_MAX_PIXELS")]
    assert "did you mean KVMRPA_CAPTURE_STALL_TIMEOUT?" in warn_unknown_env(env)[0]


def test_the_store_path_is_shown_as_used() -> None:
    settings = load_settings(env={})
    assert settings.display_value("store.home") == repr(str(settings.store.home_path))


def test_a_config_directory_is_a_clean_error(tmp_path: Path) -> None:
    from kvmrpa._errors import ConfigError

    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path, env={})


# -- run records -----------------------------------------------------------------------
def _write_passes(record, passes: int, fail_at: set[int]) -> None:  # type: ignore[no-untyped-def]
    record.write({"kind": "run", "run_id": "r", "flow": "f"})
    for i in range(passes):
        record.write({"kind": "pass_started", "pass_index": i, "t": i})
        record.write({"kind": "node_finished", "node": "a", "pass_index": i, "t": i})
        if i in fail_at:
            record.write({"kind": "node_failed", "node": "b", "pass_index": i, "t": i,
                          "error": "boom"})
        record.write({"kind": "action", "t": i, "action": "click"})
        record.write({"kind": "pass_finished", "pass_index": i, "t": i,
                      "status": "failed" if i in fail_at else "ok"})
    record.write({"kind": "flow_finished", "status": "ok", "passes": passes})


def test_loop_runs_keep_detail_for_the_first_and_failed_passes(tmp_path: Path) -> None:
    from kvmrpa.engine._records import RunStore, list_runs, read_run

    configure(store__home=str(tmp_path), store__record_detail_passes=3)
    try:
        store = RunStore()
        record = store.open("20260101-000000-loop", "loop")
        _write_passes(record, 1000, fail_at={500, 501})
        record.close()
        assert record.wait_closed(30)
        lines = read_run(record.path)
    finally:
        configure(store__home=None, store__record_detail_passes=10)
    detailed = {d["pass_index"] for d in lines if d["kind"] == "pass_started"}
    assert detailed == {0, 1, 2, 500, 501}
    summaries = [d for d in lines if d["kind"] == "pass_summary"]
    assert sum(s["passes"] for s in summaries) == 995
    assert sum(s["counts"]["action"] for s in summaries) == 995
    assert lines[-1]["kind"] == "flow_finished"
    assert list_runs(folder=tmp_path / "runs")[0]["status"] == "ok"


def test_records_rotate_by_size_and_keep_the_run_header(tmp_path: Path) -> None:
    from kvmrpa.engine._records import RunStore, list_runs, read_run

    configure(store__home=str(tmp_path), store__record_max_bytes=4096,
              store__record_detail_passes=10**6)
    try:
        store = RunStore()
        record = store.open("20260101-000000-rot", "rot")
        _write_passes(record, 200, fail_at=set())
        record.close()
        assert record.wait_closed(30)
    finally:
        configure(store__home=None, store__record_max_bytes=64 * 2**20,
                  store__record_detail_passes=10)
    parts = sorted(p for p in (tmp_path / "runs").iterdir() if ".jsonl." in p.name)
    assert len(parts) > 5
    assert all(p.stat().st_size <= 4096 + 200 for p in [*parts, record.path])
    assert all(read_run(p)[0]["kind"] == "run" for p in [*parts, record.path])
    runs = list_runs(folder=tmp_path / "runs")
    assert len(runs) == 1 and runs[0]["status"] == "ok"
    total = sum(len(read_run(p)) for p in [*parts, record.path]) - len(parts)
    assert total == 1 + 200 * 4 + 1


def test_an_unwritable_store_is_reported_not_lost(tmp_path: Path) -> None:
    from kvmrpa._errors import KvmrpaError
    from kvmrpa.engine._records import RunStore

    blocker = tmp_path / "file"
    blocker.write_text("x")
    configure(store__home=str(blocker))
    try:
        store = RunStore()
        with pytest.raises(KvmrpaError, match="not writable"):
            store.check_writable()
        record = store.open("20260101-000000-lost", "lost")
        record.write({"kind": "run"})
        record.close()
        assert record.wait_closed(30)
        assert record.error and "cannot be written" in record.error
        assert store.errors[str(record.path)] == record.error
    finally:
        configure(store__home=None)
    assert json.loads(dumps_strict({"ok": os.sep}))


def test_kvmrpa_runs_escapes_control_characters_in_flow_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kvmrpa.cli import main

    configure(store__home=str(tmp_path))
    try:
        flow = Flow("\x1b[31mred\r\nFAKE: ok\x9b2J")
        flow.add("wait", "w", ms=1)
        assert flow.run(timeout=60).status == "ok"
        assert main(["runs"]) == 0
    finally:
        configure(store__home=None)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x9b" not in out
    assert "\\x1b[31mred\\r\\nFAKE: ok\\x9b2J" in out
    assert len(out.strip().splitlines()) == 1

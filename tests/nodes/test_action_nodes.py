"""mouse and keyboard: where they act, and what reaches a (dry-run) input driver when
they run in a flow; source and wait_until in flows with a scripted source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from kvmrpa import FlowValidationError, NodeError
from kvmrpa.engine import Flow
from kvmrpa.nodes.actions import Keyboard, Mouse, place
from kvmrpa.vision import Detection, Detections, Match, Matches, TextBox, TextBoxes

from ._screens import Screen, blank, render

BOX = (100.0, 200.0, 80.0, 40.0)  # centre (140, 220)


@pytest.mark.parametrize(("position", "distance", "expected"), [
    ("center", 0, (140, 220)), ("below", 15, (140, 255)), ("above", 15, (140, 185)),
    ("left", 15, (85, 220)), ("right", 15, (195, 220)),
])
def test_place_relative_to_a_box(position: str, distance: float, expected: tuple[int, int]) -> None:
    assert place(BOX, position, distance) == expected


def test_mouse_locates_text_match_detection_and_point() -> None:
    texts = TextBoxes([TextBox("确定", 0.7, (600, 300, 80, 40)), TextBox("确定", 0.99, (100, 500, 80, 40)),
                       TextBox("取消", 0.9, (400, 300, 80, 40))])
    first = Mouse(target="text", text="确定").locate(texts=texts)
    assert first == (640, 320)  # reading order: the upper one
    best = Mouse(target="text", text="确定", pick="best").locate(texts=texts)
    assert best == (140, 520)
    below = Mouse(target="text", text="取消", anchor="below", distance=20, offset_x=3).locate(texts=texts)
    assert below == (443, 360)
    dets = Detections([Detection("icon", 1, 0.8, (10, 10, 20, 20)), Detection("button", 0, 0.9, (50, 60, 40, 20))])
    assert Mouse(target="detection", object_label="button").locate(detections=dets) == (70, 70)
    matches = Matches([Match((300, 300, 50, 50), 0.9, 1.0, "tile", (5, 5))])
    assert Mouse(target="match").locate(matches=matches) == (305, 305)  # the template's click offset
    assert Mouse(target="point", x=12, y=34, offset_y=-4).locate() == (12, 30)
    assert Mouse(target="upstream").locate(point=(7, 8)) == (7, 8)
    with pytest.raises(LookupError, match=r"text '下一步' .* not found"):
        Mouse(target="text", text="下一步").locate(texts=texts)
    with pytest.raises(LookupError, match="no detection of 'cat'"):
        Mouse(target="detection", object_label="cat").locate(detections=dets)


def test_mouse_try_on_reads_the_frame(dialog: Screen) -> None:
    out = Mouse(target="text", text="请输入", anchor="below", distance=20).try_on(dialog.frame())
    assert dialog.contains("input", out["point"], margin=0)


def test_keyboard_check_names_bad_keys() -> None:
    assert Keyboard(action="key", key="ENTER").check() == []
    assert Keyboard(action="hotkey", hotkey="ctrl+alt+Delete").check() == []
    problems = Keyboard(action="key", key="NoSuchKey").check()
    assert [p[0] for p in problems] == ["key"] and "NoSuchKey" in problems[0][1]
    assert Keyboard(action="hotkey").check() == [("hotkey", "is required for action 'hotkey'")]


def _run(flow: Flow, **options: Any) -> Any:
    return flow.run(timeout=90, **options)


def test_flow_clicks_text_below_a_label_and_types(dialog: Screen, dialog_url: str,
                                                  dryrun: tuple[str, Any]) -> None:
    url, driver = dryrun
    flow = Flow("form", source=dialog_url, input=url)
    flow.add("source", "src")
    flow.add("crop", "form", x=40, y=400, width=600, height=200)
    flow.add("ocr", "read")
    flow.add("mouse", "focus", target="text", text="请输入", match_mode="exact",
             anchor="below", distance=20)
    flow.add("keyboard", "type", action="type", text="测试3")
    flow.add("keyboard", "submit", action="hotkey", hotkey="ctrl+Return")
    for a, b in (("src", "form"), ("form", "read"), ("read", "focus"), ("focus", "type"),
                 ("type", "submit")):
        flow.connect(a, b)
    result = _run(flow)
    assert result.status == "ok", result.error
    click = [a for a in result.actions if a["action"] == "click"]
    assert len(click) == 1 and click[0]["node"] == "focus"
    assert dialog.contains("input", (click[0]["args"]["x"], click[0]["args"]["y"]), margin=0)
    typed = [a for a in result.actions if a["action"] == "type"]
    assert typed[0]["args"]["text"] == "测试3" and typed[0]["node"] == "type"
    ops = driver.actions
    downs = [o["key"] for o in ops if o.get("op") == "key" and o["down"]]
    assert downs == ["Control_L", "Return"]
    move = next(o for o in ops if o["op"] == "move")
    assert dialog.contains("input", (move["x"], move["y"]), margin=0)
    assert [o for o in ops if o["op"] == "text"] == [{"op": "text", "text": "测试3"}]


def test_mouse_without_ocr_upstream_reads_the_screen_or_fails(dialog_url: str, dialog: Screen,
                                                              dryrun: tuple[str, Any]) -> None:
    url, _driver = dryrun
    flow = Flow("direct", source=dialog_url, input=url)
    flow.add("source", "src")
    flow.add("mouse", "ok", target="text", text="确定", action="double_click")
    flow.connect("src", "ok")
    result = _run(flow)
    assert result.status == "ok", result.error
    (action,) = result.actions
    assert action["action"] == "double_click"
    assert dialog.contains("ok", (action["args"]["x"], action["args"]["y"]))
    flow["ok"].read_if_missing = False
    failed = _run(flow)
    assert failed.status == "failed"
    assert "node ok" in failed.error and "no ocr node upstream" in failed.error
    flow["ok"].read_if_missing = True
    flow["ok"].text = "下一步"
    missing = _run(flow)
    assert missing.status == "failed" and "node ok" in missing.error and "下一步" in missing.error


def test_validation_names_node_and_field(dialog_url: str) -> None:
    flow = Flow("bad", source=dialog_url)
    flow.add("keyboard", "k", action="key", key="Entr")
    flow.add("mouse", "m", target="text")
    with pytest.raises(FlowValidationError) as info:
        flow.validate()
    lines = [str(p) for p in info.value.problems]
    assert any(line.startswith("node k: params.key:") and "Entr" in line for line in lines), lines
    assert "node m: params.text: is required for target 'text'" in lines


def _switch(after: int, first: np.ndarray, then: np.ndarray) -> Callable[[int], np.ndarray]:
    return lambda n: first if n <= after else then


SMALL = ((("go", "确定", (40, 30)),), (320, 120))


def _small(text: bool) -> np.ndarray:
    items, size = SMALL
    return (render(items=items, size=size, input_box=None) if text
            else blank(size)).image


def test_wait_until_text_appears_then_disappears(scripted_source: Callable[..., str],
                                                dryrun: tuple[str, Any]) -> None:
    url = scripted_source(_switch(6, _small(False), _small(True)))
    flow = Flow("appear", source=url, input=dryrun[0])
    flow.add("wait_until", "w", kind="text_appears", text="确定", wait_timeout=60, poll_interval=0)
    flow.add("mouse", "click", target="text", text="确定")
    flow.connect("w", "click")
    result = _run(flow)
    assert result.status == "ok", result.error
    (click,) = result.actions
    assert 40 <= click["args"]["x"] <= 130 and 25 <= click["args"]["y"] <= 80
    gone = scripted_source(_switch(6, _small(True), _small(False)))
    flow2 = Flow("disappear", source=gone)
    flow2.add("wait_until", "w", kind="text_disappears", text="确定", wait_timeout=60, poll_interval=0)
    assert _run(flow2).status == "ok"


def test_wait_until_times_out_naming_itself(scripted_source: Callable[..., str]) -> None:
    url = scripted_source(lambda n: _small(False))
    flow = Flow("never", source=url)
    flow.add("wait_until", "watch", kind="text_appears", text="确定", wait_timeout=1.0)
    result = _run(flow)
    assert result.status == "failed"
    assert "node watch" in result.error and "'确定' did not appear within 1 s" in result.error


def test_wait_until_screen_stable(scripted_source: Callable[..., str]) -> None:
    rng = np.random.default_rng(1)
    noise = [rng.integers(0, 255, (120, 320, 3), dtype=np.uint8) for _ in range(15)]
    still = _small(True)
    url = scripted_source(lambda n: noise[n - 1] if n <= 15 else still)
    flow = Flow("stable", source=url)
    flow.add("wait_until", "calm", kind="screen_stable", stable_seconds=0.3, wait_timeout=60)
    flow.add("ocr", "read")
    flow.add("python", "keep", code="variables['read'] = texts.texts", inputs=["texts"])
    flow.connect("calm", "read")
    flow.connect("read", "keep")
    result = _run(flow)
    assert result.status == "ok", result.error
    # it returned a frame of the still picture, read by the next node
    assert result.variables["read"] == ["确定"]
    restless = scripted_source(lambda n: noise[n % 15])
    flow2 = Flow("restless", source=restless)
    flow2.add("wait_until", "calm", kind="screen_stable", stable_seconds=0.3, wait_timeout=1.5)
    failed = _run(flow2)
    assert failed.status == "failed" and "not stable for 0.3 s" in failed.error


def test_source_node_waits_for_a_new_frame_each_pass(scripted_source: Callable[..., str]) -> None:
    url = scripted_source(lambda n: np.full((40, 60, 3), n % 256, np.uint8))
    flow = Flow("fresh")
    flow.add("source", "src", url=url)
    flow.add("python", "seen", code="variables.setdefault('seqs', []).append(frame.seq)",
             inputs=["frame"])
    flow.connect("src", "seen")
    result = _run(flow, passes=3)
    assert result.status == "ok", result.error
    seqs = result.variables["seqs"]
    assert len(seqs) == 3 and seqs == sorted(set(seqs))


def test_source_node_fails_naming_itself_without_frames(tmp_path: Any) -> None:
    from kvmrpa.capture import FrameSource, register_source

    class Silent(FrameSource):
        def _start(self) -> None: ...
        def _stop(self) -> None: ...

    register_source("silentnodetest", Silent)
    flow = Flow("silent")
    flow.add("source", "cam", url="silentnodetest://x", frame_timeout=0.3)
    result = _run(flow)
    assert result.status == "failed"
    assert "node cam" in result.error and "no frame" in result.error


def test_node_error_type_is_public() -> None:
    assert issubclass(NodeError, Exception)


class _Flaky:
    """Counts sends; every pointer move fails as if the connection dropped."""

    attempts = 0


def _flaky_driver(url: str) -> Any:
    from kvmrpa.kvm import InputDriver

    class FlakyDriver(InputDriver):
        async def _move(self, x: int, y: int) -> None:
            _Flaky.attempts += 1
            raise ConnectionRefusedError("target went away")

        async def _button(self, button: Any, down: bool) -> None: ...
        async def _scroll(self, dx: int, dy: int) -> None: ...
        async def _key(self, key: str, down: bool) -> None: ...

    return FlakyDriver(url)


def test_failed_click_names_node_and_is_retried_only_when_asked() -> None:
    from kvmrpa.kvm import register_driver

    register_driver("flakynodetest", _flaky_driver)
    flow = Flow("flaky", input="flakynodetest://t1")
    flow.add("mouse", "press", target="point", x=5, y=5)
    _Flaky.attempts = 0
    result = _run(flow)
    assert result.status == "failed"
    assert "node press" in result.error and "click at (5, 5) failed" in result.error
    assert _Flaky.attempts == 1
    assert [(a["node"], a["action"], a["ok"]) for a in result.actions] == [("press", "click", False)]
    flow["press"].retry_click = True
    _Flaky.attempts = 0
    assert _run(flow).status == "failed"
    assert _Flaky.attempts > 1


def test_every_mouse_action_reaches_the_driver(dryrun: tuple[str, Any]) -> None:
    url, driver = dryrun
    flow = Flow("mice", input=url)
    flow.add("mouse", "right", action="right_click", x=10, y=20)
    flow.add("mouse", "drag", action="drag", x=100, y=100, to_x=200, to_y=150)
    flow.add("mouse", "wheel", action="scroll", x=300, y=300, scroll_dy=2)
    flow.add("mouse", "hover", action="move", x=5, y=6, offset_x=1)
    flow.connect("right", "drag")
    flow.connect("drag", "wheel")
    flow.connect("wheel", "hover")
    result = _run(flow)
    assert result.status == "ok", result.error
    assert [a["action"] for a in result.actions] == ["click", "drag", "scroll", "move"]
    ops = driver.actions
    buttons = [(o["button"], o["down"]) for o in ops if o["op"] == "button"]
    assert buttons == [("right", True), ("right", False), ("left", True), ("left", False)]
    moves = [(o["x"], o["y"]) for o in ops if o["op"] == "move"]
    assert moves[0] == (10, 20) and moves[1] == (100, 100) and (200, 150) in moves
    assert moves[-1] == (6, 6)
    assert [o for o in ops if o["op"] == "scroll"] == [{"op": "scroll", "dx": 0, "dy": 2}]


def test_a_typed_secret_stays_out_of_the_run_record(dryrun: tuple[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url, driver = dryrun
    monkeypatch.setenv("KVMRPA_TEST_LOGIN_PW", "pa55-w0rd")
    flow = Flow("login", input=url)
    node = flow.add("keyboard", "pw", action="type", text="${env:KVMRPA_TEST_LOGIN_PW}")
    assert node.secret is True
    assert node.values()["text"] == "${env:KVMRPA_TEST_LOGIN_PW}"
    result = _run(flow)
    assert result.status == "ok", result.error
    assert "pa55" not in repr(result.actions) and "pa55" not in repr(result.nodes)
    assert result.actions[0]["args"]["length"] == 9
    assert [o for o in driver.actions if o["op"] == "text"] == [{"op": "text", "text": "pa55-w0rd"}]
    from pathlib import Path

    assert result.record is not None
    record = Path(result.record).read_text(encoding="utf-8")
    assert '"length": 9' in record and "pa55" not in record

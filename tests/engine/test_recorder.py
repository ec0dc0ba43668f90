"""The recorder: console actions on one simulator seed become a flow that passes on others.

The acceptance tests act as a person at the live view's console would: each browser-style
event goes to the ``sim://`` driver and, with the frame on screen, to the recorder; the
recorded flow then runs on five other seeds, whose layouts differ, and must reach the
scenario's end state there.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from kvmrpa import FlowStateError, Frame, run_sync
from kvmrpa.capture import open_source, release_source
from kvmrpa.engine import Flow, Recorder
from kvmrpa.kvm import open_driver, release_driver
from kvmrpa.kvm.keys import browser_key
from kvmrpa.nodes import Mouse
from kvmrpa.sim import get_desktop
from kvmrpa.vision import load_template, match_template

REPLAY_SEEDS = (201, 202, 203, 204, 205)

END_STATE: dict[str, Callable[[dict[str, Any]], bool]] = {
    "scenario1": lambda st: st["page"] == "confirmed" and st["status"] == "已确定",
    "scenario2": lambda st: st["page"] == "step2" and st["status"] == "第2步",
    "scenario3": lambda st: st["entries"].get("entry") == "测试3" and st["page"] == "submitted",
}


def wait_for(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)


class Console:
    """The live view's console mode without a browser: every event goes to the driver
    (move, then press or release; key down / up by the key table's browser names, a
    character no key types as text) and, with the frame on screen, to the recorder."""

    def __init__(self, url: str, scenario: str) -> None:
        self.url = url
        self.desktop = get_desktop(url)
        self.src = open_source(url)
        self.drv = None
        try:
            frame = self.src.wait_frame(None, 20)
            self.drv = open_driver(url, frame_size=frame.size)
            self.rec = Recorder(self.src, name=f"recorded-{scenario}",
                                source_url=f"sim://{scenario}", input_url=f"sim://{scenario}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.drv is not None:
            release_driver(self.drv)
        release_source(self.src)

    def fresh(self) -> Frame:
        """A frame captured after now (what the person sees after the last action)."""
        now = time.monotonic()
        frame = self.src.wait_frame(None, 10)
        while frame.captured <= now:
            frame = self.src.wait_frame(frame.seq, 10)
        return frame

    def send(self, event: dict[str, Any]) -> None:
        self.rec.feed(event, self.src.latest())
        drv, kind, action = self.drv, event["kind"], event.get("action")
        if kind == "mouse":
            run_sync(drv.move(event["x"], event["y"]))
            if action == "down":
                run_sync(drv.press(event.get("button", "left")))
            elif action == "up":
                run_sync(drv.release(event.get("button", "left")))
        elif kind == "key":
            name = browser_key(event["key"])
            assert name is not None, event
            if len(name) == 1 and not name.isascii():  # as the live view: typed as text
                if action == "down":
                    run_sync(drv.type_text(name))
            else:
                run_sync(drv.key_down(name) if action == "down" else drv.key_up(name))

    def click(self, x: float, y: float) -> None:
        self.send({"kind": "mouse", "action": "move", "x": x, "y": y})
        self.send({"kind": "mouse", "action": "down", "x": x, "y": y, "button": "left"})
        self.send({"kind": "mouse", "action": "up", "x": x, "y": y, "button": "left"})

    def press(self, key: str) -> None:
        self.send({"kind": "key", "action": "down", "key": key})
        self.send({"kind": "key", "action": "up", "key": key})

    def type(self, text: str) -> None:
        for ch in text:
            self.press(ch)


@pytest.fixture
def console() -> Iterator[Callable[[str, int], Console]]:
    made: list[Console] = []

    def make(scenario: str, seed: int) -> Console:
        c = Console(f"sim://{scenario}?seed={seed}", scenario)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


def replay(flow: Flow, scenario: str, tmp_path: Path) -> None:
    """The flow, saved and loaded again, passes on every replay seed."""
    path = flow.save(tmp_path / f"{flow.name}.json")
    loaded = Flow.load(path)
    for seed in REPLAY_SEEDS:
        url = f"sim://{scenario}?seed={seed}"
        desktop = get_desktop(url)  # held so that the run's desktop can be inspected
        result = loaded.run(timeout=90, source=url, input=url, record=False)
        assert result.status == "ok", (seed, result.error)
        assert END_STATE[scenario](desktop.state()), (seed, desktop.state())


def chain(flow: Flow) -> list[tuple[str, dict[str, Any]]]:
    """The nodes in edge order: (type, params)."""
    targets = {e.target for e in flow.edges}
    nxt = {e.source: e.target for e in flow.edges}
    node = next(n for n in flow.nodes if n not in targets)
    out = []
    while node is not None:
        fn = flow.nodes[node]
        out.append((fn.type, fn.node.values()))
        node = nxt.get(node)
    return out


# -- the three reference scenarios, recorded once, replayed on five other seeds ---------------
@pytest.mark.timeout(300)  # five replays with OCR on two shared cores
def test_scenario3_click_below_the_label_type_and_enter(console, tmp_path) -> None:
    c = console("scenario3", 7)
    label, entry = c.desktop.find("label"), c.desktop.find("entry")
    x, y = centre(label)[0], centre(entry)[1]  # below 请输入, in the box
    c.fresh()
    c.click(x, y)
    wait_for(lambda: c.desktop.state()["focused"] == "entry", what="the box focused")
    c.type("测试3")
    wait_for(lambda: c.desktop.state()["entries"]["entry"] == "测试3", what="测试3 typed")
    c.fresh()  # the person sees it typed
    c.press("Enter")
    wait_for(lambda: c.desktop.state()["page"] == "submitted", what="submitted")
    flow = c.rec.stop(c.fresh())

    steps = chain(flow)
    assert [t for t, _ in steps] == ["wait_until", "mouse", "keyboard", "keyboard",
                                     "wait_until"], steps
    assert steps[0][1]["text"] == "请输入" and steps[0][1]["match_mode"] == "exact"
    click = steps[1][1]
    assert click["target"] == "text" and click["text"] == "请输入"
    assert click["anchor"] == "below" and 5 <= click["distance"] <= 60
    assert steps[2][1] == {"text": "测试3"}  # merged into one type node
    assert steps[3][1] == {"action": "key"} and flow["key_1"].key == "Return"
    assert steps[4][1]["text"] == "已提交"
    assert not c.rec.fragile and flow.metadata["recording"]["fragile"] == []
    assert "Click below 请输入" in [fn.label for fn in flow]
    replay(flow, "scenario3", tmp_path)


@pytest.mark.timeout(300)  # five replays with OCR on two shared cores
def test_scenario1_click_confirm(console, tmp_path) -> None:
    c = console("scenario1", 7)
    c.fresh()
    c.click(*centre(c.desktop.find("ok")))
    wait_for(lambda: c.desktop.state()["page"] == "confirmed", what="confirmed")
    flow = c.rec.stop(c.fresh())
    steps = chain(flow)
    assert [t for t, _ in steps] == ["wait_until", "mouse", "wait_until"], steps
    assert steps[1][1]["text"] == "确定" and steps[1][1]["match_mode"] == "exact"
    assert steps[1][1].get("anchor", "center") == "center"
    assert steps[2][1]["text"] == "已确定"
    replay(flow, "scenario1", tmp_path)


@pytest.mark.timeout(300)  # five replays with OCR on two shared cores
def test_scenario2_click_next(console, tmp_path) -> None:
    c = console("scenario2", 7)
    c.fresh()
    c.click(*centre(c.desktop.find("next")))
    wait_for(lambda: c.desktop.state()["page"] == "step2", what="step 2")
    flow = c.rec.stop(c.fresh())
    steps = chain(flow)
    assert [t for t, _ in steps] == ["wait_until", "mouse", "wait_until"], steps
    assert steps[1][1]["text"] == "下一步"
    assert steps[2][1]["text"] == "第2步"
    replay(flow, "scenario2", tmp_path)


# -- secrets ---------------------------------------------------------------------------------
def test_secret_text_becomes_an_env_reference_and_is_never_kept(console, tmp_path, caplog,
                                                                monkeypatch) -> None:
    caplog.set_level(logging.DEBUG, logger="kvmrpa")
    c = console("scenario3", 11)
    c.fresh()
    c.click(centre(c.desktop.find("label"))[0], centre(c.desktop.find("entry"))[1])
    wait_for(lambda: c.desktop.state()["focused"] == "entry", what="the box focused")
    with c.rec.secret("REC_PASSWORD"):
        c.type("pw4711x")
    wait_for(lambda: c.desktop.state()["entries"]["entry"] == "pw4711x", what="typed")
    c.press("Enter")
    wait_for(lambda: c.desktop.state()["page"] == "submitted", what="submitted")
    assert "pw4711x" not in repr(c.rec.steps) + repr(c.rec)
    flow = c.rec.stop(c.fresh())
    typed = [fn for fn in flow if fn.type == "keyboard" and fn.node.action == "type"]
    assert len(typed) == 1
    assert typed[0].node.text == "${env:REC_PASSWORD}" and typed[0].node.secret
    text = flow.to_json()
    assert "pw4711x" not in text and "4711" not in text  # not as an anchor or a wait either
    assert "pw4711x" not in caplog.text
    assert flow.plain_secrets() == []
    # it replays with the secret from the environment
    monkeypatch.setenv("REC_PASSWORD", "s3cr3t!")
    url = "sim://scenario3?seed=212"
    desktop = get_desktop(url)
    result = Flow.load(flow.save(tmp_path / "secret.json")).run(
        timeout=90, source=url, input=url, record=False)
    assert result.status == "ok", result.error
    assert desktop.state()["vars"]["submitted"] == "s3cr3t!"


# -- keys and text, without a screen ----------------------------------------------------------
def feed_keys(rec: Recorder, keys: list[tuple[str, str]], t0: float = 100.0,
              dt: float = 0.05) -> float:
    t = t0
    for action, key in keys:
        rec.feed({"kind": "key", "action": action, "key": key}, at=t)
        t += dt
    return t


def press_all(text: str) -> list[tuple[str, str]]:
    return [(a, ch) for ch in text for a in ("down", "up")]


def test_typing_merges_backspace_edits_shortcuts_and_keys() -> None:
    rec = Recorder(name="keys")
    keys = [*press_all("abx"), ("down", "Backspace"), ("up", "Backspace"),
            ("down", "Shift"), ("down", "C"), ("up", "C"), ("up", "Shift"),
            ("down", "Control"), ("down", "a"), ("up", "a"), ("up", "Control"),
            ("down", "Control"), ("down", "Shift"), ("down", "Escape"), ("up", "Escape"),
            ("up", "Shift"), ("up", "Control"),
            ("down", "Tab"), ("up", "Tab"), ("down", "Tab"), ("up", "Tab"),
            ("down", "Meta"), ("up", "Meta"),
            ("down", "Unidentified"), ("up", "Unidentified"),
            *press_all(" 1")]
    feed_keys(rec, keys)
    flow = rec.stop()
    assert chain(flow) == [
        ("keyboard", {"text": "abC"}),
        ("keyboard", {"action": "hotkey", "hotkey": "ctrl+a"}),
        ("keyboard", {"action": "hotkey", "hotkey": "ctrl+shift+Escape"}),
        ("keyboard", {"action": "key", "key": "Tab", "repeat": 2}),
        ("keyboard", {"action": "key", "key": "Super_L"}),
        ("keyboard", {"text": " 1"}),
    ]
    assert flow.validate() is flow


def test_idle_without_a_screen_change_is_a_fixed_wait_with_one_a_wait_until() -> None:
    blank = np.full((360, 640, 3), 40, np.uint8)
    boxed = blank.copy()
    cv2.rectangle(boxed, (100, 100), (300, 200), (255, 255, 255), -1)
    f_blank, f_boxed = Frame.from_array(blank), Frame.from_array(boxed)
    rec = Recorder(name="idle", min_idle=0.8)
    rec.key("Tab", frame=f_blank, at=10.0)
    rec.key("Tab", frame=f_blank, at=12.5)          # 2.5 s, nothing changed
    rec.key("Escape", frame=f_boxed, at=15.0)       # 2.5 s, the screen changed
    rec.key("Return", frame=f_boxed, at=15.3)       # too quick for a wait
    flow = rec.stop(frame=f_boxed, at=20.0)         # nothing changed since: no last wait
    steps = chain(flow)
    assert [t for t, _ in steps] == ["keyboard", "wait", "keyboard", "wait_until", "keyboard",
                                     "keyboard"], steps
    assert steps[1][1] == {"ms": 2500}
    assert steps[3][1]["kind"] == "screen_stable"  # no text appeared: wait for it to settle
    assert flow["settle_1"].wait_timeout >= 10


def test_layout_is_one_row_per_step(tmp_path) -> None:
    rec = Recorder(name="rows")
    frame = Frame.from_array(np.full((200, 300, 3), 90, np.uint8))
    rec.key("Tab", frame=frame, at=1.0)
    rec.click(150, 100, frame=frame, at=3.0)   # flat screen: fixed point
    rec.type("hello", frame=frame, at=5.0)
    flow = rec.stop(frame=frame, at=6.0)
    pos = {fn.id: fn.position for fn in flow}
    assert len(set(pos.values())) == len(pos)
    rows = sorted({p[1] for p in pos.values()})
    assert len(rows) == 3 and all(p[0] in (0.0, 240.0) for p in pos.values())
    actions = [fn for fn in flow if fn.type in ("mouse", "keyboard")]
    assert all(fn.position[0] == 240.0 for fn in actions)


# -- anchors without text ---------------------------------------------------------------------
def icon_screen(at: tuple[int, int], size: tuple[int, int] = (800, 500)) -> Frame:
    img = np.full((size[1], size[0], 3), 210, np.uint8)
    x, y = at
    cv2.circle(img, (x + 20, y + 20), 18, (30, 90, 200), -1)
    cv2.rectangle(img, (x + 8, y + 14), (x + 32, y + 26), (250, 250, 250), -1)
    cv2.line(img, (x, y + 44), (x + 40, y + 36), (20, 20, 20), 3)
    return Frame.from_array(img)


def test_click_with_no_text_near_uses_a_template_cut_around_the_point(tmp_path) -> None:
    rec = Recorder(name="tpl", template_dir=str(tmp_path / "templates"))
    rec.click(320 + 25, 200 + 22, frame=icon_screen((320, 200)), at=1.0)
    flow = rec.stop(at=2.0)
    wait, click = (flow.nodes[n].node for n in ("wait_1", "click_1"))
    assert wait.kind == "image_appears" and Path(wait.template).is_file()
    assert click.target == "match" and not rec.fragile
    tpl = load_template(wait.template)
    assert tpl.capture_size == (800, 500) and tpl.click_offset is not None
    assert Path(wait.template).with_suffix(".json").is_file()  # the capture metadata
    assert flow.metadata["recording"]["templates"] == [wait.template]
    # on another layout the click lands on the same spot of the icon
    moved = icon_screen((610, 380))
    found = match_template(moved, tpl).to_source(moved)
    x, y = Mouse(**click.values()).locate(matches=found)
    assert abs(x - (610 + 25)) <= 2 and abs(y - (380 + 22)) <= 2


def test_click_on_a_flat_area_falls_back_to_a_flagged_point(tmp_path) -> None:
    rec = Recorder(name="flat", template_dir=str(tmp_path / "t"))
    rec.click(400, 250, frame=Frame.from_array(np.full((500, 800, 3), 128, np.uint8)), at=1.0)
    flow = rec.stop(at=1.5)
    (nid, fn), = ((n, fn) for n, fn in flow.nodes.items() if fn.type == "mouse")
    assert fn.node.target == "point" and (fn.node.x, fn.node.y) == (400.0, 250.0)
    assert rec.fragile == [nid] == flow.metadata["recording"]["fragile"]
    assert "fragile" in fn.label and "fragile" in flow.description
    assert not (tmp_path / "t").exists()


def test_double_click_drag_and_scroll() -> None:
    flat = Frame.from_array(np.full((300, 400, 3), 128, np.uint8))
    rec = Recorder(name="mouse")
    for t in (1.0, 1.2):
        rec.feed({"kind": "mouse", "action": "down", "x": 50, "y": 60}, flat, at=t)
        rec.feed({"kind": "mouse", "action": "up", "x": 51, "y": 60}, flat, at=t + 0.05)
    rec.feed({"kind": "mouse", "action": "down", "x": 100, "y": 100}, flat, at=3.0)
    rec.feed({"kind": "mouse", "action": "move", "x": 150, "y": 120}, flat, at=3.1)
    rec.feed({"kind": "mouse", "action": "up", "x": 200, "y": 140}, flat, at=3.2)
    for t in (5.0, 5.1, 5.2):
        rec.feed({"kind": "wheel", "x": 30, "y": 30, "dy": 1}, flat, at=t)
    flow = rec.stop(frame=flat, at=6.0)
    mice = [fn.node for fn in flow if fn.type == "mouse"]
    assert [m.action for m in mice] == ["double_click", "drag", "scroll"]
    assert (mice[1].to_x, mice[1].to_y) == (200.0, 140.0) and mice[2].scroll_dy == 3
    assert len(rec.fragile) == 3


def test_stopped_recorder_refuses_actions_and_returns_its_flow() -> None:
    rec = Recorder(name="done")
    rec.type("x", at=1.0)
    flow = rec.stop()
    assert rec.stop() is flow and rec.flow is flow and not rec.recording
    with pytest.raises(FlowStateError, match="stopped"):
        rec.type("y")


def test_steps_are_bounded(caplog) -> None:
    rec = Recorder(name="bounded", max_steps=3)
    for i in range(6):
        rec.key("Tab" if i % 2 else "Escape", at=float(i * 2))
    assert len(rec.steps) == 3
    assert "dropping later actions" in caplog.text
    assert json.loads(rec.stop().to_json())["nodes"][-1]["params"]["key"] == "Escape"


def test_listeners_hear_each_new_step() -> None:
    rec = Recorder(name="heard")
    heard: list[int] = []
    unsubscribe = rec.on_change(lambda: heard.append(len(rec.steps)))
    rec.type("ab", at=1.0)          # one step, however many characters
    rec.key("Tab", at=2.0)
    unsubscribe()
    rec.key("Escape", at=3.0)
    assert heard == [1, 2]

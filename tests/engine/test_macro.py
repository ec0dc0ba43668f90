"""Macro text (DuckyScript-like): import to a flow, export back, line-numbered errors,
and a macro that drives the simulated desktop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kvmrpa import Flow, FlowError, KvmrpaError
from kvmrpa.cli import main
from kvmrpa.engine._macro import MAX_LINES, flow_to_macro, macro_to_flow, read_macro
from kvmrpa.sim import get_desktop, reset

MACRO = """\
REM open the run dialog
GUI r
DELAY 500
STRING notepad
ENTER
STRINGLN hello  world, 中文
CTRL ALT DELETE
TAB
REPEAT 2
CLICK 10 20
RIGHTCLICK 5 6
DOUBLECLICK 7 8
MOVE 9 9
ESC
UPARROW
PAGEDOWN
F5
SPACE
"""


def meaning(flow: Flow) -> list[tuple[str, dict[str, Any]]]:
    """What the flow does, step by step: a type followed by Enter is one typed line."""
    out: list[tuple[str, dict[str, Any]]] = []
    order = [e.source for e in flow.edges] + [flow.edges[-1].target] if flow.edges \
        else list(flow.nodes)
    for nid in order:
        fn = flow.nodes[nid]
        out.append((fn.type, fn.node.values()))  # the parameters that differ from defaults
    return out


def test_import_export_import_keeps_the_meaning() -> None:
    first = macro_to_flow(MACRO, name="demo")
    steps = meaning(first)
    assert steps[0] == ("keyboard", {"action": "hotkey", "hotkey": "Super_L+r"})
    assert first.nodes["hotkey1"].label == "open the run dialog"
    assert steps[1] == ("wait", {"ms": 500})
    assert steps[2:4] == [("keyboard", {"text": "notepad"}), ("keyboard", {"action": "key"})]
    assert ("keyboard", {"text": "hello  world, 中文"}) in steps  # (type is the default)
    assert ("keyboard", {"action": "hotkey", "hotkey": "Control_L+Alt_L+Delete"}) in steps
    assert ("keyboard", {"action": "key", "key": "Tab", "repeat": 3}) in steps
    assert ("mouse", {"x": 10.0, "y": 20.0}) in steps
    assert ("mouse", {"action": "right_click", "x": 5.0, "y": 6.0}) in steps
    assert ("keyboard", {"action": "key", "key": "Up"}) in steps
    text = flow_to_macro(first)
    assert "STRINGLN notepad" in text and "REPEAT 2" in text and "CTRL ALT DELETE" in text
    again = macro_to_flow(text, name="demo")
    assert meaning(again) == steps
    assert flow_to_macro(again) == text


def test_default_delay_and_repeat_expand_to_steps() -> None:
    flow = macro_to_flow("DEFAULT_DELAY 50\nCLICK 1 2\nREPEAT 2\nSTRING a\n")
    steps = meaning(flow)
    assert [t for t, _p in steps] == ["mouse", "wait"] * 3 + ["keyboard", "wait"]
    assert all(p == {"ms": 50} for t, p in steps if t == "wait")


@pytest.mark.parametrize(("text", "line", "says"), [
    ("ENTER\nFOO\n", 2, "unknown command or key 'FOO'"),
    ("GUI nosuchkey\n", 1, "unknown key 'nosuchkey'"),
    ("DELAY soon\n", 1, "not a whole number of milliseconds"),
    ("DELAY 99999999999\n", 1, "not a whole number"),
    ("DELAY 90000000\n", 1, "over the limit"),
    ("REM c\n\nSTRING\n", 3, "needs the text"),
    ("CLICK 10\n", 1, "takes two numbers"),
    ("CLICK -1 5\n", 1, "not a pixel coordinate"),
    ("REPEAT 2\n", 1, "no previous step"),
    ("TAB\nREPEAT 100000\n", 2, "not a count"),
])
def test_bad_macro_is_one_line_naming_the_line(text: str, line: int, says: str) -> None:
    with pytest.raises(KvmrpaError) as info:
        macro_to_flow(text, origin="m.txt")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"m.txt:{line}: ") and says in message


def test_sizes_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(KvmrpaError, match="lines is over the limit"):
        macro_to_flow("TAB\n" * (MAX_LINES + 1))
    with pytest.raises(KvmrpaError, match="more than 10000 steps"):
        macro_to_flow("TAB\nDELAY 1\n" + "REPEAT 1000\n" * 11)
    big = tmp_path / "big.txt"
    big.write_bytes(b"REM " + b"x" * (1 << 20) + b"\n")
    with pytest.raises(KvmrpaError, match="byte limit"):
        read_macro(big)
    with pytest.raises(KvmrpaError, match="line of 9000 characters"):
        macro_to_flow("STRING " + "x" * 8993)
    with pytest.raises(KvmrpaError, match="no step"):
        macro_to_flow("REM only a comment\n\n")


def test_export_refuses_what_macro_text_cannot_hold() -> None:
    flow = Flow("vision")
    flow.add("keyboard", "k", action="key", key="Tab")
    flow.add("ocr", "read")
    flow.connect("k", "read")
    with pytest.raises(FlowError, match=r"node read \(ocr\): has no macro form"):
        flow_to_macro(flow)
    flow = Flow("text")
    flow.add("mouse", "click", target="text", text="OK")
    with pytest.raises(FlowError, match=r"node click \(mouse\): target: 'text'"):
        flow_to_macro(flow)
    flow = Flow("secret")
    flow.add("keyboard", "pw", text="hunter2", secret=True)
    with pytest.raises(FlowError, match="node pw: text: text marked secret is in plain text"):
        flow_to_macro(flow)
    flow = Flow("forks")
    for nid in ("a", "b", "c"):
        flow.add("wait", nid, ms=1)
    flow.connect("a", "b")
    flow.connect("a", "c")
    with pytest.raises(FlowError, match="node a: joins or forks"):
        flow_to_macro(flow)


def test_cli_converts_both_ways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "login.txt"
    src.write_text(MACRO, encoding="utf-8")
    assert main(["convert", str(src)]) == 0
    assert (tmp_path / "login.json").is_file()
    flow = Flow.load(tmp_path / "login.json")
    assert meaning(flow) == meaning(macro_to_flow(MACRO))
    out = tmp_path / "back.txt"
    assert main(["convert", str(tmp_path / "login.json"), "-o", str(out)]) == 0
    assert meaning(read_macro(out)) == meaning(flow)
    bad = tmp_path / "bad.txt"
    bad.write_text("STRING ok\nCTRL NOPE\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["convert", str(bad), "-o", str(tmp_path / "bad.json")]) == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [lines[0]] and "bad.txt:2: unknown key 'NOPE'" in lines[0]
    assert not (tmp_path / "bad.json").exists()


def test_a_macro_drives_the_simulator(tmp_path: Path) -> None:
    url = "sim://scenario3?seed=11"
    reset(url)
    desktop = get_desktop(url)
    x, y, w, h = desktop.find("entry")
    macro = tmp_path / "fill.txt"
    macro.write_text(f"REM focus the box\nCLICK {x + w // 2} {y + h // 2}\nDELAY 50\n"
                     "STRING 测试3\nENTER\n", encoding="utf-8")
    flow = read_macro(macro, input=url)
    result = flow.run(timeout=60)
    assert result.status == "ok", result.error
    state = desktop.state()
    assert state["page"] == "submitted"
    assert desktop.vars["submitted"] == "测试3"


def test_macro_key_spellings_go_through_the_one_key_table() -> None:
    from kvmrpa.engine._macro import _NAMES
    from kvmrpa.kvm.keys import normalize_key

    assert {canon: normalize_key(name) for canon, name in _NAMES.items()} == \
        {canon: canon for canon in _NAMES}

"""Macro text: a DuckyScript-like script imported to a flow and exported back.

One command a line (case-insensitive commands; blank lines ignored)::

    REM open the run dialog          a comment (it labels the next step)
    DEFAULT_DELAY 100                milliseconds waited after each following step
    GUI r                            a key, or keys pressed together (a hotkey)
    DELAY 500                        wait so many milliseconds
    STRING notepad                   type the rest of the line as it is
    STRINGLN hello                   type it, then press Enter
    ENTER                            TAB, ESC, SPACE, BACKSPACE, DELETE, F1 … F24, UPARROW …
    CTRL ALT DELETE                  CTRL, ALT, SHIFT, GUI (WINDOWS, COMMAND) with any key
    REPEAT 3                         the previous step 3 more times
    CLICK 400 300                    RIGHTCLICK, MIDDLECLICK, DOUBLECLICK, MOVE x y (pixels)

Key names go through :mod:`kvmrpa.kvm.keys` (the one key table), so ``ENTER``,
``UPARROW``, ``PAGEUP``, ``CAPSLOCK``, ``PRINTSCREEN`` and every alias it knows work.
:func:`macro_to_flow` builds a chain of ``keyboard``, ``mouse`` (a fixed point) and
``wait`` nodes; :func:`flow_to_macro` writes such a chain back (a type node followed by
an Enter key is one ``STRINGLN``). Bad input is one :class:`~kvmrpa.FlowFormatError`
naming the file and line; a flow with a step macro text cannot hold is one
:class:`~kvmrpa.FlowError` naming the node and field. Sizes are bounded
(:data:`MAX_BYTES`, :data:`MAX_LINES`, :data:`MAX_STEPS`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .._errors import FlowError, FlowFormatError, UnsupportedActionError
from ..kvm.keys import normalize_key, parse_hotkey
from ._flow import Flow

__all__ = ["MACRO_SUFFIXES", "MAX_BYTES", "MAX_LINES", "MAX_STEPS", "flow_to_macro",
           "is_macro_path", "macro_to_flow", "read_macro"]

#: Largest macro file read, in bytes.
MAX_BYTES = 1 << 20
#: Most lines in one macro.
MAX_LINES = 20_000
#: Most steps (nodes) one macro may expand to (``REPEAT`` and ``DEFAULT_DELAY`` count).
MAX_STEPS = 10_000
#: File suffixes read as macro text by ``kvmrpa convert``.
MACRO_SUFFIXES = frozenset({".txt", ".ducky", ".macro", ".dd"})

_MAX_LINE = 8192
_MAX_MS = 86_400_000
_MAX_REPEAT = 1000
_MAX_COORD = 100_000
_SPACING = 90.0

#: canonical key name -> the name macro text writes
_NAMES = {
    "Return": "ENTER", "Escape": "ESC", "Tab": "TAB", "space": "SPACE",
    "BackSpace": "BACKSPACE", "Delete": "DELETE", "Insert": "INSERT", "Home": "HOME",
    "End": "END", "Page_Up": "PAGEUP", "Page_Down": "PAGEDOWN", "Up": "UPARROW",
    "Down": "DOWNARROW", "Left": "LEFTARROW", "Right": "RIGHTARROW",
    "Control_L": "CTRL", "Control_R": "RCTRL", "Alt_L": "ALT", "Alt_R": "RALT",
    "Shift_L": "SHIFT", "Shift_R": "RSHIFT", "Super_L": "GUI", "Super_R": "RWIN",
    "Caps_Lock": "CAPSLOCK", "Num_Lock": "NUMLOCK", "Scroll_Lock": "SCROLLLOCK",
    "Print": "PRINTSCREEN", "Pause": "PAUSE", "Menu": "MENU",
}
_CLICKS = {"CLICK": ("click", "left"), "RIGHTCLICK": ("right_click", "right"),
           "MIDDLECLICK": ("click", "middle"), "DOUBLECLICK": ("double_click", "left"),
           "MOVE": ("move", "left")}
_COMMANDS = {"REM", "DELAY", "DEFAULT_DELAY", "DEFAULTDELAY", "STRING", "STRINGLN", "REPEAT",
             "REPLAY", *_CLICKS}


def is_macro_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``kvmrpa convert`` reads or writes ``path`` as macro text (by suffix)."""
    return Path(path).suffix.lower() in MACRO_SUFFIXES


def read_macro(path: str | os.PathLike[str], *, name: str | None = None,
               input: str | None = None) -> Flow:
    """The flow of a macro file (see :func:`macro_to_flow`); the file is bounded to
    :data:`MAX_BYTES` and must be UTF-8."""
    p = Path(path)
    where = p.name
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise FlowFormatError(f"{where}: {size} bytes is over the {MAX_BYTES}-byte limit "
                                  "of a macro")
        data = p.read_bytes()
    except OSError as exc:
        raise FlowFormatError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FlowFormatError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    return macro_to_flow(text, name=name or p.stem, origin=where, input=input)


def _ms(value: str, where: str, cmd: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value):
        raise FlowFormatError(f"{where}: {cmd}: {value!r} is not a whole number of "
                              "milliseconds")
    ms = int(value)
    if ms > _MAX_MS:
        raise FlowFormatError(f"{where}: {cmd}: {ms} ms is over the limit of {_MAX_MS} "
                              "(one day)")
    return ms


def _coord(value: str, where: str, cmd: str, axis: str) -> int:
    if not re.fullmatch(r"\d{1,6}", value) or int(value) > _MAX_COORD:
        raise FlowFormatError(f"{where}: {cmd}: {axis} {value!r} is not a pixel coordinate "
                              f"(a whole number 0 … {_MAX_COORD})")
    return int(value)


def macro_to_flow(text: str, *, name: str = "macro", origin: str = "<macro>",
                  input: str | None = None) -> Flow:
    """A flow of ``keyboard`` / ``mouse`` / ``wait`` nodes in a chain, one step per
    command; ``input`` is the flow's input driver URL (none: given at run time)."""
    if len(text) > MAX_BYTES:
        raise FlowFormatError(f"{origin}: {len(text)} characters is over the limit of a macro")
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise FlowFormatError(f"{origin}: {len(lines)} lines is over the limit of {MAX_LINES}")
    steps: list[tuple[str, dict[str, Any], str, int]] = []  # (type, params, label, line)
    comments: list[str] = []
    default_delay = 0
    last: list[tuple[str, dict[str, Any]]] = []  # the previous command's steps

    def add(items: list[tuple[str, dict[str, Any]]], lineno: int, where: str) -> None:
        nonlocal comments, last
        label = " ".join(comments)[:200]
        comments = []
        steps.extend((t, p, label if i == 0 else "", lineno) for i, (t, p) in enumerate(items))
        if default_delay:
            steps.append(("wait", {"ms": default_delay}, "", lineno))
        last = items
        if len(steps) > MAX_STEPS:
            raise FlowFormatError(f"{where}: the macro expands to more than {MAX_STEPS} steps")

    for lineno, raw in enumerate(lines, 1):
        where = f"{origin}:{lineno}"
        if len(raw) > _MAX_LINE:
            raise FlowFormatError(f"{where}: line of {len(raw)} characters is over the limit "
                                  f"of {_MAX_LINE}")
        line = raw.lstrip()
        if not line.strip():
            continue
        head, _sep, rest = line.partition(" ")
        cmd = head.upper()
        arg = rest.strip()
        if cmd == "REM":
            comments.append(rest.strip())
            continue
        if cmd in ("DEFAULT_DELAY", "DEFAULTDELAY"):
            default_delay = _ms(arg, where, cmd)
            continue
        if cmd == "DELAY":
            add([("wait", {"ms": _ms(arg, where, cmd)})], lineno, where)
        elif cmd in ("STRING", "STRINGLN"):
            if not rest:
                raise FlowFormatError(f"{where}: {cmd} needs the text to type after it")
            items: list[tuple[str, dict[str, Any]]] = [
                ("keyboard", {"action": "type", "text": rest})]
            if cmd == "STRINGLN":
                items.append(("keyboard", {"action": "key", "key": "Return"}))
            add(items, lineno, where)
        elif cmd in ("REPEAT", "REPLAY"):
            if not re.fullmatch(r"\d{1,4}", arg) or not 1 <= int(arg) <= _MAX_REPEAT:
                raise FlowFormatError(f"{where}: {cmd}: {arg!r} is not a count 1 … {_MAX_REPEAT}")
            if not last:
                raise FlowFormatError(f"{where}: {cmd} has no previous step to repeat")
            times = int(arg)
            if len(last) == 1 and last[0][0] == "keyboard" and not default_delay \
                    and last[0][1].get("repeat", 1) + times <= _MAX_REPEAT:
                last[0][1]["repeat"] = last[0][1].get("repeat", 1) + times
                continue
            body = last
            for _ in range(times):
                add([(t, dict(p)) for t, p in body], lineno, where)
        elif cmd in _CLICKS:
            parts = arg.split()
            if len(parts) != 2:
                raise FlowFormatError(f"{where}: {cmd} takes two numbers, x and y "
                                      f"(got {arg!r})")
            x, y = (_coord(v, where, cmd, a) for v, a in zip(parts, ("x", "y"), strict=True))
            action, button = _CLICKS[cmd]
            params = {"action": action, "target": "point", "x": float(x), "y": float(y)}
            if button != "left" and action == "click":
                params["button"] = button
            add([("mouse", params)], lineno, where)
        else:
            tokens = [t for t in re.split(r"[\s+]+", line.strip()) if t]
            keys: list[str] = []
            for n, tok in enumerate(tokens):
                try:
                    key = normalize_key(tok, action="macro")
                except UnsupportedActionError:
                    what = "command or key" if n == 0 else "key"
                    raise FlowFormatError(f"{where}: unknown {what} {tok!r} (commands: "
                                          f"{', '.join(sorted(_COMMANDS))}; or key names "
                                          "such as ENTER, TAB, ESC, GUI r, CTRL ALT DELETE)"
                                          ) from None
                if key not in keys:
                    keys.append(key)
            if len(keys) == 1:
                add([("keyboard", {"action": "key", "key": keys[0]})], lineno, where)
            else:
                combo = "+".join(k.lower() if len(k) == 1 and k.isalpha() else k for k in keys)
                add([("keyboard", {"action": "hotkey", "hotkey": combo})], lineno, where)
    if not steps:
        raise FlowFormatError(f"{origin}: the macro has no step (only comments or blank lines)")
    flow = Flow(name=name, input=input,
                description="imported from macro text" + (f": {origin}" if origin else ""))
    prev: str | None = None
    counts: dict[str, int] = {}
    for i, (ntype, params, label, lineno) in enumerate(steps):
        kind = _kind(ntype, params)
        counts[kind] = counts.get(kind, 0) + 1
        nid = f"{kind}{counts[kind]}"
        try:
            flow.add(ntype, nid, label=label, position=(0.0, i * _SPACING), **params)
        except (ValueError, FlowError) as exc:
            raise FlowFormatError(f"{origin}:{lineno}: {' '.join(str(exc).split())}",
                                  flow=name) from None
        if prev is not None:
            flow.connect(prev, nid)
        prev = nid
    problems = flow.problems()
    if problems:
        first = problems[0]
        raise FlowFormatError(f"{origin}: {first}", flow=name)
    return flow


def _kind(ntype: str, params: dict[str, Any]) -> str:
    if ntype == "wait":
        return "delay"
    if ntype == "mouse":
        return str(params.get("action", "click")).replace("_", "")
    return {"type": "string", "key": "key", "hotkey": "hotkey"}[params.get("action", "type")]


def _key_name(canon: str) -> str:
    if canon in _NAMES:
        return _NAMES[canon]
    return canon if len(canon) == 1 else canon.upper()


def _chain(flow: Flow) -> list[str]:
    """The node ids of ``flow`` in order, when it is one unbranched chain."""
    preds: dict[str, list[str]] = {nid: [] for nid in flow.nodes}
    succs: dict[str, list[str]] = {nid: [] for nid in flow.nodes}
    for e in flow.edges:
        if e.branch is not None:
            raise FlowError(f"flow {flow.name!r}: edge {e.source} → {e.target}: a branch "
                            f"({e.branch!r}) has no macro form (macro text is one chain of "
                            "steps)", flow=flow.name)
        preds[e.target].append(e.source)
        succs[e.source].append(e.target)
    for nid in flow.nodes:
        if len(preds[nid]) > 1 or len(succs[nid]) > 1:
            raise FlowError(f"flow {flow.name!r}: node {nid}: joins or forks have no macro "
                            "form (macro text is one chain of steps)", flow=flow.name)
    roots = [nid for nid in flow.nodes if not preds[nid]]
    if len(roots) != 1:
        raise FlowError(f"flow {flow.name!r}: {len(roots)} first steps; macro text is one "
                        "chain of steps", flow=flow.name)
    order = [roots[0]]
    while succs[order[-1]]:
        order.append(succs[order[-1]][0])
    return order


def flow_to_macro(flow: Flow) -> str:
    """Macro text for a chain of ``keyboard``, ``wait`` and fixed-point ``mouse`` nodes
    (raises :class:`~kvmrpa.FlowError` naming the first node that has no macro form)."""
    out: list[str] = []
    order = _chain(flow)
    for problem in flow.plain_secrets():  # macro text is written as plain as a flow file
        raise FlowError(f"flow {flow.name!r}: {problem}", flow=flow.name)
    i = 0
    while i < len(order):
        nid = order[i]
        fn = flow.nodes[nid]
        node: Any = fn.node  # its type's parameters (keyboard, mouse, wait)

        def bad(field: str, why: str, nid: str = nid, t: str = fn.type) -> FlowError:
            return FlowError(f"flow {flow.name!r}: node {nid} ({t}): {field}: {why}",
                             flow=flow.name)

        if fn.label:
            out.append(f"REM {' '.join(fn.label.split())}")
        lines: list[str]
        if fn.type == "wait":
            lines = [f"DELAY {int(node.ms)}"]
        elif fn.type == "keyboard":
            if node.action == "type":
                text = node.text
                if not text:
                    raise bad("text", "empty text has no macro form")
                parts = text.replace("\r\n", "\n").split("\n")
                enter_next = False
                if i + 1 < len(order):
                    nxt = flow.nodes[order[i + 1]]
                    after: Any = nxt.node
                    enter_next = (nxt.type == "keyboard" and after.action == "key"
                                  and after.repeat == 1 and not nxt.label and
                                  _canon(after.key) == "Return")
                lines = []
                for j, part in enumerate(parts):
                    last_part = j == len(parts) - 1
                    if not last_part:
                        if not part:
                            lines.append("ENTER")
                        else:
                            lines.append(f"STRINGLN {part}")
                    elif part and enter_next:
                        lines.append(f"STRINGLN {part}")
                        i += 1
                    elif part:
                        lines.append(f"STRING {part}")
                if node.repeat > 1:
                    if len(lines) != 1 or lines[0].startswith("STRINGLN"):
                        raise bad("repeat", "repeated text over several lines has no "
                                            "macro form")
                    lines.append(f"REPEAT {node.repeat - 1}")
                out.extend(lines)
                i += 1
                continue
            if node.action == "key":
                try:
                    lines = [_key_name(_canon(node.key))]
                except UnsupportedActionError as exc:
                    raise bad("key", str(exc)) from None
            else:
                try:
                    keys = parse_hotkey(node.hotkey)
                except UnsupportedActionError as exc:
                    raise bad("hotkey", str(exc)) from None
                lines = [" ".join(_key_name(k) for k in keys)]
            if node.repeat > 1:
                lines.append(f"REPEAT {node.repeat - 1}")
        elif fn.type == "mouse":
            if node.target != "point":
                raise bad("target", f"{node.target!r} has no macro form (only a fixed "
                                    "point: CLICK x y)")
            x, y = node.x + node.offset_x, node.y + node.offset_y
            if x < 0 or y < 0 or x != int(x) or y != int(y):
                raise bad("x", f"({x:g}, {y:g}) is not a point of whole pixels")
            cmd = {("click", "left"): "CLICK", ("click", "right"): "RIGHTCLICK",
                   ("click", "middle"): "MIDDLECLICK", ("right_click", "left"): "RIGHTCLICK",
                   ("right_click", "right"): "RIGHTCLICK",
                   ("right_click", "middle"): "RIGHTCLICK",
                   ("double_click", "left"): "DOUBLECLICK"}.get((node.action, node.button))
            if node.action == "move":
                cmd = "MOVE"
            if cmd is None:
                raise bad("action", f"{node.action} ({node.button} button) has no macro form")
            lines = [f"{cmd} {int(x)} {int(y)}"]
        else:
            raise FlowError(f"flow {flow.name!r}: node {nid} ({fn.type}): has no macro form "
                            "(macro text holds keyboard, wait and fixed-point mouse steps)",
                            flow=flow.name)
        out.extend(lines)
        i += 1
    return "\n".join(out) + "\n"


def _canon(key: str) -> str:
    return normalize_key(key, action="macro")

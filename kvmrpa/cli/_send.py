"""``kvmrpa send INPUT_URL ACTION [ARGS] [, ACTION [ARGS]]…``: quick manual input checks.

Actions: ``click X Y [--button left|right|middle] [--double]``, ``move X Y``,
``type TEXT…``, ``key NAME``, ``hotkey ctrl+a``, ``scroll DY [DX]``; chain several with a
lone ``,`` argument. Coordinates are frame pixels; ``--frame-size WxH`` says the frame's
size when it differs from the target's (without it, coordinates are target pixels).
Exit 0 when every action was delivered, 2 with a one-line reason otherwise (actions after
a failed one are not sent).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .._errors import InputError

USAGE_ACTIONS = ("click X Y [--button B] [--double] | move X Y | type TEXT | key NAME | "
                 "hotkey KEYS | scroll DY [DX]")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "send", help="send mouse/keyboard actions to an input target",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="kvmrpa send [--frame-size WxH] INPUT_URL ACTION [ARGS] [, ACTION [ARGS]]...")
    p.add_argument("--frame-size", metavar="WxH",
                   help="size of the frame the coordinates refer to (default: the target's)")
    p.add_argument("url", metavar="INPUT_URL",
                   help="vnc://…, pikvm+https://…, ch9329:///dev/ttyUSB0, http+keys://…, dryrun://")
    p.add_argument("actions", nargs=argparse.REMAINDER, metavar="ACTION",
                   help=USAGE_ACTIONS)
    p.set_defaults(func=run)


def _split(tokens: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for t in tokens:
        if t == ",":
            groups.append([])
        else:
            groups[-1].append(t)
    return groups


#: Largest coordinate and scroll step accepted (anything larger is a typo or an attack).
MAX_COORDINATE = 1_000_000
MAX_SCROLL = 10_000


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"send: {what} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value) or abs(value) > MAX_COORDINATE:
        raise InputError(f"send: {what} must be a finite number within ±{MAX_COORDINATE}, "
                         f"got {text[:40]!r}")
    return int(value) if value.is_integer() else value


def _integer(text: str, what: str) -> int:
    try:
        value = int(text) if len(text) <= 20 else MAX_SCROLL + 1
    except ValueError:
        raise InputError(f"send: {what} must be an integer, got {text[:40]!r}") from None
    if abs(value) > MAX_SCROLL:
        raise InputError(f"send: {what} must be within ±{MAX_SCROLL}, got {text[:40]!r}")
    return value


Step = tuple[str, Callable[[Any], Coroutine[Any, Any, None]]]


def _parse_action(words: list[str]) -> Step:
    if not words:
        raise InputError(f"send: empty action (two ',' in a row, or a trailing ','); actions: {USAGE_ACTIONS}")
    name, args = words[0].lower(), words[1:]
    shown = " ".join(words)
    if name == "click":
        button, double, pos = "left", False, []
        it = iter(args)
        for a in it:
            if a == "--double":
                double = True
            elif a == "--button" or a.startswith("--button="):
                button = a.partition("=")[2] if "=" in a else next(it, "")
                if button not in ("left", "right", "middle"):
                    raise InputError(f"send: click: --button must be left, right or middle, got {button!r}")
            elif a.startswith("--"):
                raise InputError(f"send: click: unknown option {a!r} (--button B, --double)")
            else:
                pos.append(a)
        if len(pos) not in (0, 2):
            raise InputError(f"send: click takes X Y (or nothing for the pointer's place), got {pos}")
        x = _number(pos[0], "click X") if pos else None
        y = _number(pos[1], "click Y") if pos else None
        return shown, lambda d: d.click(x, y, button=button, double=double)
    if name == "move":
        if len(args) != 2:
            raise InputError(f"send: move takes X Y, got {args}")
        mx, my = _number(args[0], "move X"), _number(args[1], "move Y")
        return shown, lambda d: d.move(mx, my)
    if name == "type":
        if not args:
            raise InputError("send: type needs the text to type")
        text = " ".join(args)
        return shown, lambda d: d.type_text(text)
    if name == "key":
        if len(args) != 1:
            raise InputError(f"send: key takes one key name, got {args}")
        return shown, lambda d: d.key(args[0])
    if name == "hotkey":
        if not args:
            raise InputError("send: hotkey needs keys, e.g. hotkey ctrl+a")
        return shown, lambda d: d.hotkey(*args)
    if name == "scroll":
        if len(args) not in (1, 2):
            raise InputError(f"send: scroll takes DY [DX], got {args}")
        dy = _integer(args[0], "scroll DY")
        dx = _integer(args[1], "scroll DX") if len(args) == 2 else 0
        return shown, lambda d: d.scroll(dy, dx)
    raise InputError(f"send: unknown action {words[0]!r}; actions: {USAGE_ACTIONS}")


def run(args: argparse.Namespace) -> int:
    from .._runtime import run_sync
    from ..kvm import open_driver, parse_size, release_driver

    tokens = list(args.actions)
    frame_size_text = args.frame_size
    while tokens and tokens[0].startswith("--frame-size"):
        tok = tokens.pop(0)
        frame_size_text = tok.partition("=")[2] if "=" in tok else (tokens.pop(0) if tokens else "")
    frame_size = parse_size(frame_size_text, "--frame-size") if frame_size_text else None
    if not tokens:
        raise InputError(f"send: no action given; actions: {USAGE_ACTIONS}")
    steps = [_parse_action(g) for g in _split(tokens)]  # all checked before anything is sent
    driver = open_driver(args.url, frame_size=frame_size)
    try:
        for i, (shown, make) in enumerate(steps, 1):
            start = time.monotonic()
            try:
                run_sync(make(driver))
            except InputError as exc:
                where = f"action {i} of {len(steps)} ({shown})" if len(steps) > 1 else shown
                raise InputError(f"{where}: {exc}") from exc
            print(f"sent {shown} ({(time.monotonic() - start) * 1000:.1f} ms)", file=sys.stdout)
    finally:
        release_driver(driver)
    return 0

"""The Python face of the lab's Tk test application (``_tkapp.py``).

Protocol: the app appends one JSON object per line to an events file; every object has
``type``, ``seq`` (1, 2, …) and ``t`` (wall time). Types:

- ``ready``: at start, with ``screen: [w, h]`` and ``widgets: {name: {x, y, w, h, text}}``
  (screen coordinates);
- ``button``: a button was activated: ``name``, ``text``;
- ``entry``: the entry's content changed: ``text``;
- ``key`` / ``key_release``: ``keysym``, ``char``, ``keycode``, ``modifiers``
  (``["ctrl", "shift", "alt", "super", "lock"]`` subset), ``widget``;
- ``click`` / ``release`` / ``double_click``: ``x``, ``y`` (screen), ``button``, ``widget``;
- ``scroll``: ``x``, ``y``, ``direction`` (``up``/``down``/``left``/``right``);
- ``ack``: answer to a command: ``id``, ``cmd``, ``ok`` (and ``error`` or results).

Commands go to the app's stdin as JSON lines: ``set_text`` (``name``, ``text``, ``fg``,
``bg``), ``set_bg``, ``focus``, ``geometry``, ``pointer``, ``reset``, ``quit``.
Element names: ``big``, ``line0``…, the button names (``ok``, ``cancel``, ``confirm`` =
确定, ``dismiss`` = 取消), ``entry_label``, ``entry``, ``status``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._errors import LabError
from ._process import SYSTEM_PYTHON, ManagedProcess
from ._xvfb import XvfbDisplay

__all__ = ["LabApp"]

log = logging.getLogger("kvmrpa.lab")

Event = dict[str, Any]
_SCRIPT = Path(__file__).with_name("_tkapp.py")


class LabApp:
    """The Tk test app on a display: start/stop, events, commands, element geometry.

    ``lines`` and ``buttons`` (``[(name, text), …]``) override the defaults; the default
    screen shows "KVMRPA LAB", "Hello kvmrpa 123", "测试", "请输入 Chinese 中文", buttons
    OK / Cancel / 确定 / 取消, an entry and a status label.
    """

    def __init__(
        self, display: XvfbDisplay, *, lines: Sequence[str] | None = None,
        buttons: Sequence[tuple[str, str]] | None = None, big: str | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self.display = display
        config: dict[str, Any] = {}
        if lines is not None:
            config["lines"] = list(lines)
        if buttons is not None:
            config["buttons"] = [list(b) for b in buttons]
        if big is not None:
            config["big"] = big
        self._config = config
        self.start_timeout = start_timeout
        self._proc: ManagedProcess | None = None
        self._events_path: Path | None = None
        self._events: list[Event] = []
        self._offset = 0
        self._partial = b""
        self._base = 0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._geometry: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> LabApp:
        if not Path(SYSTEM_PYTHON).exists():
            raise LabError(f"{SYSTEM_PYTHON} not found; the lab app needs the system python3-tk")
        fd, path = tempfile.mkstemp(prefix="kvmrpa-lab-events-", suffix=".jsonl")
        os.close(fd)
        self._events_path = Path(path)
        self._proc = ManagedProcess(
            "lab-app",
            [SYSTEM_PYTHON, "-u", str(_SCRIPT), "--events", path,
             "--config", json.dumps(self._config, ensure_ascii=False)],
            env=self.display.env, stdin_pipe=True,
        )
        try:
            self._proc.start()
            ready = self.wait_event(lambda e: e["type"] == "ready", self.start_timeout,
                                    all_events=True)
            self._geometry = {"screen": ready["screen"], "widgets": ready["widgets"]}
        except BaseException:
            self.stop()
            raise
        log.info("lab app started on %s (pid %s)", self.display.display, self._proc.pid)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.running() and proc.popen.stdin is not None:
            try:
                proc.popen.stdin.write(b'{"cmd": "quit"}\n')
                proc.popen.stdin.flush()
                proc.popen.wait(2.0)
            except Exception:  # broken pipe, timeout: stop() below handles it
                pass
        proc.stop()
        proc.remove_log()
        if self._events_path is not None:
            with contextlib.suppress(OSError):
                self._events_path.unlink()

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    def __enter__(self) -> LabApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- events --------------------------------------------------------------------
    def _read(self) -> None:
        if self._events_path is None:
            return
        with self._lock:
            try:
                with self._events_path.open("rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except OSError:
                return
            self._offset += len(data)
            data = self._partial + data
            *lines, self._partial = data.split(b"\n")
            for line in lines:
                if line.strip():
                    try:
                        self._events.append(json.loads(line))
                    except ValueError:
                        log.warning("lab app wrote a bad event line: %r", line[:200])

    def events(self, type: str | None = None, *, all_events: bool = False) -> list[Event]:
        """Events since the last :meth:`mark` (or all), optionally of one ``type``."""
        self._read()
        with self._lock:
            evs = self._events if all_events else self._events[self._base:]
            return [e for e in evs if type is None or e["type"] == type]

    def mark(self) -> int:
        """Forget earlier events for :meth:`events`/:meth:`wait_event`; returns the count."""
        self._read()
        with self._lock:
            self._base = len(self._events)
            return self._base

    def wait_event(
        self, pred: Callable[[Event], bool] | str, timeout: float = 5.0, *,
        all_events: bool = False,
    ) -> Event:
        """The first event (since :meth:`mark`) matching ``pred`` (a predicate or a type
        name); waits up to ``timeout`` seconds, else :class:`LabError` listing what came."""
        test = (lambda e: e["type"] == pred) if isinstance(pred, str) else pred
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events(all_events=all_events):
                if test(e):
                    return e
            if self._proc is None or not self._proc.running():
                code = None if self._proc is None else self._proc.poll()
                tail = "" if self._proc is None else self._proc.log_tail()
                raise LabError(f"lab app is not running (status {code}): {tail}")
            if time.monotonic() >= deadline:
                seen = [e["type"] + (f" {e['text']!r}" if "text" in e else "")
                        for e in self.events(all_events=all_events)][-20:]
                raise LabError(f"lab app: no matching event within {timeout:g} s; recent: {seen}")
            time.sleep(0.02)

    # -- commands ------------------------------------------------------------------
    def command(self, cmd: str, timeout: float = 5.0, **args: Any) -> Event:
        """Send a command and wait for its ``ack``; :class:`LabError` if it failed."""
        proc = self._proc
        if proc is None or not proc.running() or proc.popen.stdin is None:
            raise LabError(f"lab app is not running; cannot send {cmd!r}")
        ident = next(self._ids)
        line = json.dumps({"id": ident, "cmd": cmd, **args}, ensure_ascii=False) + "\n"
        try:
            proc.popen.stdin.write(line.encode("utf-8"))
            proc.popen.stdin.flush()
        except OSError as exc:
            raise LabError(f"lab app: cannot send {cmd!r}: {exc}") from exc
        ack = self.wait_event(lambda e: e["type"] == "ack" and e.get("id") == ident, timeout,
                              all_events=True)
        if not ack.get("ok"):
            raise LabError(f"lab app: command {cmd!r} failed: {ack.get('error')}")
        return ack

    def set_text(self, name: str, text: str | None = None, *, fg: str | None = None,
                 bg: str | None = None) -> None:
        """Change an element's text and/or colours (``#rrggbb`` or a Tk colour name)."""
        self.command("set_text", name=name, text=text, fg=fg, bg=bg)

    def set_background(self, color: str) -> None:
        self.command("set_bg", color=color)

    def focus(self, name: str = "entry") -> None:
        self.command("focus", name=name)

    def reset(self) -> int:
        """Restore every element, clear the entry, focus it; then :meth:`mark`."""
        self.command("reset")
        return self.mark()

    def pointer(self) -> tuple[int, int]:
        """Where the X pointer is now (screen pixels)."""
        ack = self.command("pointer")
        return int(ack["x"]), int(ack["y"])

    def refresh_geometry(self) -> dict[str, Any]:
        ack = self.command("geometry")
        self._geometry = {"screen": ack["screen"], "widgets": ack["widgets"]}
        return self._geometry

    @property
    def geometry(self) -> dict[str, Any]:
        """``{"screen": [w, h], "widgets": {name: {x, y, w, h, text}}}`` at start."""
        return self._geometry

    def element_box(self, name: str) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of an element in screen pixels."""
        widgets = self._geometry.get("widgets", {})
        if name not in widgets:
            raise LabError(f"lab app has no element {name!r}; have {sorted(widgets)}")
        g = widgets[name]
        return int(g["x"]), int(g["y"]), int(g["w"]), int(g["h"])

    def element_centre(self, name: str) -> tuple[int, int]:
        """Centre of an element in screen pixels."""
        x, y, w, h = self.element_box(name)
        return x + w // 2, y + h // 2

    def __repr__(self) -> str:
        return f"LabApp(display={self.display.number}, running={self.running()})"

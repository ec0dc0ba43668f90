"""The recorder: what a person does through a console, turned into anchored flow steps.

:class:`Recorder` is fed console actions — a click at a point of the frame it was made
on, key presses, typed text, wheel turns, each with its time — and builds a
:class:`~kvmrpa.engine.Flow` that does it again wherever the layout puts things:

* a click becomes a ``wait_until`` for its anchor, then a ``mouse`` node on the anchor:
  the OCR text under the point (``anchor`` / ``distance`` / offsets when the click is
  beside the text, as "click below 请输入"), else a template cut around the point
  (saved as a PNG with its capture metadata), else the plain point — flagged fragile in
  its label and in the flow's ``metadata["recording"]["fragile"]``;
* typed characters merge into one ``keyboard`` type node; keys and shortcuts become key
  and hotkey nodes (names from :mod:`kvmrpa.kvm.keys`); text typed while
  :attr:`Recorder.secret_env` names a variable becomes ``${env:NAME}``: its characters
  are kept in no step, node, log or repr;
* idle time before a step becomes a ``wait_until`` on what changed on the screen (a text
  that appeared, else a stable screen); a fixed ``wait`` only where nothing changed.

Recording is cheap (frames are kept, nothing is recognised); :meth:`Recorder.stop`
recognises them (OCR, template checks: blocking, about a second per click) and returns
the flow, its nodes laid out one step per row.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import param

from .._errors import FlowError, FlowStateError, KvmrpaError
from .._frame import Frame
from .._redact import register_secret
from ..kvm.keys import MODIFIERS, browser_key, key_char, normalize_key
from ..nodes import Mouse
from ..nodes.vision import find_texts, read_texts
from ..vision import Template, TextBox, TextBoxes, match_template
from ._flow import Flow
from ._templates import TemplateStore

__all__ = ["Recorder"]

log = logging.getLogger("kvmrpa.engine.recorder")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Text made only of digits, separators and punctuation changes by itself (clocks,
#: counters): never an anchor, never an outcome to wait for.
_VOLATILE = re.compile(r"^[\d\s:./\-,%+()]*$")
_UNICODE_KEY = re.compile(r"^U[0-9A-F]{4,6}$")
_CLICK_SLOP = 6.0       # pixels a press may move and still be a click
_DOUBLE_S = 0.5         # seconds between the clicks of a double click
_THUMB_W = 320          # width of the thumbnails screen changes are measured on
_CHANGE_LEVEL = 24      # grey levels a thumbnail pixel must move to count as changed
_HOTKEY_NAMES = {"Control_L": "ctrl", "Control_R": "ctrl", "Alt_L": "alt", "Alt_R": "alt",
                 "Super_L": "win", "Super_R": "win", "Shift_L": "shift", "Shift_R": "shift"}
_SHIFTS = {"Shift_L", "Shift_R"}
_ROW_DX, _ROW_DY = 240.0, 110.0


@dataclass
class _Step:
    """One recorded action (a text step covers a run of typed characters)."""

    kind: str                       # click double_click right_click scroll drag text key hotkey
    at: float                       # time of its first event
    frame: Frame | None             # the frame it was made on
    thumb: np.ndarray | None
    end: float = 0.0                # time of its last event
    point: tuple[float, float] | None = None
    to: tuple[float, float] | None = None
    button: str = "left"
    text: str = ""                  # plain typed text (never a secret's)
    env: str | None = None          # the variable a secret text step refers to
    key: str = ""                   # canonical key, or a hotkey combination
    repeat: int = 1
    dy: int = 0
    secret: list[str] = field(default_factory=list, repr=False)  # only while recording

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "at": self.at}
        if self.point is not None:
            out["point"] = self.point
        if self.kind == "text":
            out["text"] = f"${{env:{self.env}}}" if self.env else self.text
        if self.key:
            out["key"] = self.key
        if self.repeat > 1:
            out["repeat"] = self.repeat
        if self.kind == "scroll":
            out["dy"] = self.dy
        return out


def _thumb(frame: Frame | None) -> np.ndarray | None:
    if frame is None:
        return None
    gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
    h = max(1, round(gray.shape[0] * _THUMB_W / gray.shape[1]))
    return cv2.resize(gray, (_THUMB_W, h), interpolation=cv2.INTER_AREA).astype(np.int16)


def _char_of(key: str, shift: bool) -> str | None:
    """The character a canonical key name types (``U6D4B`` is 测), if any."""
    ch = key_char(key, shift=shift)
    if ch is None and _UNICODE_KEY.match(key):
        ch = chr(int(key[1:], 16))
        if not ch.isprintable():
            return None
    return ch


def _gap(bbox: tuple[float, float, float, float], x: float, y: float) -> tuple[float, float]:
    """Horizontal and vertical distance from a point to a box (0 inside it)."""
    bx, by, bw, bh = bbox
    return max(bx - x, 0.0, x - (bx + bw)), max(by - y, 0.0, y - (by + bh))


def _placement(bbox: tuple[float, float, float, float], x: float,
               y: float) -> dict[str, Any]:
    """``mouse`` parameters putting the point at ``(x, y)`` relative to ``bbox``."""
    bx, by, bw, bh = bbox
    cx, cy = bx + bw / 2, by + bh / 2
    gx, gy = _gap(bbox, x, y)
    r = lambda v: round(float(v), 1)  # noqa: E731
    if gx == 0 and gy == 0:
        return {"anchor": "center", "offset_x": r(x - cx), "offset_y": r(y - cy)}
    if gy >= gx:
        side = "below" if y > by + bh else "above"
        return {"anchor": side, "distance": r(gy), "offset_x": r(x - cx), "offset_y": 0.0}
    side = "right" if x > bx + bw else "left"
    return {"anchor": side, "distance": r(gx), "offset_x": 0.0, "offset_y": r(y - cy)}


def _describe(place: dict[str, Any], text: str) -> str:
    anchor = place.get("anchor", "center")
    return f"{text}" if anchor == "center" else f"{anchor} {text}"


class Recorder(param.Parameterized):
    """Record console actions; :meth:`stop` returns them as an anchored flow.

    Feed it with :meth:`feed` (the live view's console events) or with :meth:`click`,
    :meth:`key`, :meth:`hotkey`, :meth:`type`, :meth:`scroll`; each takes the frame the
    action was made on (``frame``; default: the newest frame of :attr:`source`) and its
    time (``at``, ``time.monotonic()`` seconds; default: now). Points are pixels of
    that frame. Thread-safe.
    """

    name = param.String(default="recording", doc="Name of the recorded flow.")
    source_url = param.String(default=None, allow_None=True, doc="""
        The recorded flow's source URL.""")
    input_url = param.String(default=None, allow_None=True, doc="""
        The recorded flow's input URL.""")
    secret_env = param.String(default="", regex=r"^([A-Za-z_][A-Za-z0-9_]*)?$", doc="""
        While set, typed text is recorded as ${env:<this name>}, never as the characters
        typed.""")
    anchor_radius = param.Number(default=80.0, bounds=(0.0, 2000.0), doc="""
        Farthest a text may be from a click (pixels) to anchor it.""")
    template_size = param.Integer(default=64, bounds=(8, 512), doc="""
        Side of the template cut around a click with no text near it (pixels).""")
    template_dir = param.String(default="", doc="""
        Folder for the templates of template anchors; empty: <settings.store
        templates_dir>/<name>.""")
    min_idle = param.Number(default=0.8, bounds=(0.0, 3600.0), doc="""
        Shortest pause (seconds) before a key or text step that becomes a wait.""")
    wait_timeout = param.Number(default=10.0, bounds=(0.1, 86400.0), doc="""
        Least wait_timeout of the waits the recording makes (longer after a longer
        pause).""")
    change_pixels = param.Integer(default=12, bounds=(0, 100000), doc="""
        Thumbnail pixels (320 wide) that must change for the screen to count as changed
        (a clock's tick changes fewer).""")
    max_steps = param.Integer(default=200, bounds=(1, 10000), doc="""
        Most steps recorded (each keeps its frame until stop); later actions are
        dropped with a warning.""")

    def __init__(self, source: Any = None, **params: Any) -> None:
        super().__init__(**params)
        #: Where frames come from when an action gives none (a FrameSource or None).
        self.source = source
        self._lock = threading.RLock()
        self._steps: list[_Step] = []
        self._started = time.monotonic()
        self._start_frame: Frame | None = None
        self._start_thumb: np.ndarray | None = None
        self._stopped = False
        self._press: tuple[float, float, str, Frame | None, float] | None = None
        self._mods: list[str] = []
        self._lone_mod: str | None = None
        self._warned_full = False
        self._listeners: list[Callable[[], None]] = []
        #: The flow :meth:`stop` built (None before).
        self.flow: Flow | None = None
        #: Node ids of the steps anchored on plain coordinates (after :meth:`stop`).
        self.fragile: list[str] = []
        first = self._frame(None)
        self._start_frame, self._start_thumb = first, _thumb(first)

    # -- state ---------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return not self._stopped

    @property
    def steps(self) -> list[dict[str, Any]]:
        """What was recorded so far, one dict per step (secret text as its reference)."""
        with self._lock:
            return [s.summary() for s in self._steps]

    def __repr__(self) -> str:
        state = "recording" if self.recording else "stopped"
        return f"Recorder({self.name!r}, {len(self._steps)} steps, {state})"

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after each new step (on the thread that fed it; keep it
        short); returns the function that unsubscribes it."""
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    @contextlib.contextmanager
    def secret(self, env: str) -> Iterator[Recorder]:
        """Record the text typed inside the block as ``${env:<env>}``."""
        if not _ENV_NAME.match(env):
            raise FlowError(f"recorder: {env!r} is not an environment variable name",
                            flow=self.name)
        old = self.secret_env
        self.secret_env = env
        try:
            yield self
        finally:
            self.secret_env = old

    # -- feeding -------------------------------------------------------------------------
    def _frame(self, frame: Frame | None) -> Frame | None:
        if frame is not None or self.source is None:
            return frame
        try:
            return self.source.latest()
        except KvmrpaError:
            return None

    def _check(self) -> None:
        if self._stopped:
            raise FlowStateError(f"recorder {self.name!r} is stopped", flow=self.name)

    def _add(self, step: _Step) -> _Step | None:
        if len(self._steps) >= self.max_steps:
            if not self._warned_full:
                self._warned_full = True
                log.warning("recorder %s: %d steps recorded, dropping later actions",
                            self.name, self.max_steps)
            return None
        step.end = step.at
        self._close_text()
        self._steps.append(step)
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("recorder %s: a change listener failed", self.name)
        return step

    def _new(self, kind: str, frame: Frame | None, at: float | None, **kw: Any) -> _Step:
        frame = self._frame(frame)
        return _Step(kind, time.monotonic() if at is None else float(at), frame,
                     _thumb(frame), **kw)

    def _close_text(self) -> None:
        last = self._steps[-1] if self._steps else None
        if last is not None and last.kind == "text" and last.secret:
            value = "".join(last.secret)
            register_secret(value)  # hidden from every log line from now on
            last.secret = [value]

    def _open_text(self) -> _Step | None:
        last = self._steps[-1] if self._steps else None
        if last is not None and last.kind == "text" and \
                (last.env or None) == (self.secret_env or None):
            return last
        return None

    def feed(self, event: Mapping[str, Any], frame: Frame | None = None,
             at: float | None = None) -> None:
        """One console event, as the live view sends them: ``{"kind": "mouse",
        "action": "down"|"up"|"move", "x", "y", "button"}``, ``{"kind": "wheel", "x",
        "y", "dy"}`` or ``{"kind": "key", "action": "down"|"up", "key": <browser
        KeyboardEvent.key>}``. Unknown events are ignored."""
        kind, action = event.get("kind"), event.get("action")
        try:
            if kind == "mouse" and action in ("down", "up"):
                x, y = float(event["x"]), float(event["y"])
                button = str(event.get("button", "left"))
                if action == "down":
                    self.mouse_down(x, y, button, frame=frame, at=at)
                else:
                    self.mouse_up(x, y, button, at=at)
            elif kind == "wheel":
                self.scroll(int(event.get("dy", 0)), float(event["x"]), float(event["y"]),
                            frame=frame, at=at)
            elif kind == "key" and action in ("down", "up"):
                name = browser_key(str(event.get("key", "")))
                if name is None:
                    return
                if action == "down":
                    self.key_down(name, frame=frame, at=at)
                else:
                    self.key_up(name, at=at)
        except (KeyError, TypeError, ValueError):
            log.debug("recorder %s: ignoring malformed event", self.name)

    def mouse_down(self, x: float, y: float, button: str = "left", *,
                   frame: Frame | None = None, at: float | None = None) -> None:
        """A button pressed at ``(x, y)``; the click is recorded when it is released."""
        with self._lock:
            self._check()
            frame = self._frame(frame)
            self._press = (x, y, button, frame, time.monotonic() if at is None else at)

    def mouse_up(self, x: float, y: float, button: str = "left", *,
                 at: float | None = None) -> None:
        """A button released: a click where it was pressed, or a drag to ``(x, y)``."""
        with self._lock:
            self._check()
            press, self._press = self._press, None
            if press is None:
                return
            x0, y0, b, frame, t0 = press
            if math.hypot(x - x0, y - y0) <= _CLICK_SLOP:
                self.click(x0, y0, frame=frame, button=b, at=t0)
                return
            step = self._add(_Step("drag", t0, frame, _thumb(frame), point=(x0, y0),
                                   to=(x, y), button=b))
            if step is not None and at is not None:
                step.end = at

    def click(self, x: float, y: float, *, frame: Frame | None = None,
              button: str = "left", double: bool = False, at: float | None = None) -> None:
        """A click at ``(x, y)`` of ``frame`` (two quick clicks at one spot make a
        double click; the right button a right click)."""
        with self._lock:
            self._check()
            t = time.monotonic() if at is None else float(at)
            last = self._steps[-1] if self._steps else None
            if not double and button == "left" and last is not None and last.kind == "click" \
                    and last.point is not None and t - last.end <= _DOUBLE_S \
                    and math.hypot(x - last.point[0], y - last.point[1]) <= _CLICK_SLOP:
                last.kind, last.end = "double_click", t
                return
            kind = "double_click" if double else ("right_click" if button == "right" else "click")
            self._add(self._new(kind, frame, t, point=(float(x), float(y)), button=button))

    def scroll(self, dy: int, x: float, y: float, *, frame: Frame | None = None,
               at: float | None = None) -> None:
        """Wheel steps at ``(x, y)`` (positive: down); quick turns at one spot merge."""
        with self._lock:
            self._check()
            t = time.monotonic() if at is None else float(at)
            last = self._steps[-1] if self._steps else None
            if last is not None and last.kind == "scroll" and last.point is not None \
                    and t - last.end <= 1.0 and \
                    math.hypot(x - last.point[0], y - last.point[1]) <= 4 * _CLICK_SLOP:
                last.dy = max(-1000, min(1000, last.dy + int(dy)))
                last.end = t
                return
            self._add(self._new("scroll", frame, t, point=(float(x), float(y)),
                                dy=max(-1000, min(1000, int(dy)))))

    def key_down(self, name: str, *, frame: Frame | None = None,
                 at: float | None = None) -> None:
        """A key pressed (any name :func:`kvmrpa.kvm.normalize_key` takes). Characters
        typed without Ctrl/Alt/Win held join the text being typed; with them held the
        key makes a shortcut; other keys are key steps."""
        with self._lock:
            self._check()
            key = normalize_key(name)
            t = time.monotonic() if at is None else float(at)
            if key in MODIFIERS:
                if key not in self._mods:
                    self._mods.append(key)
                self._lone_mod = key
                return
            self._lone_mod = None
            held = [m for m in self._mods if m not in _SHIFTS]
            shift = any(m in _SHIFTS for m in self._mods)
            if held:
                names = list(dict.fromkeys(_HOTKEY_NAMES[m] for m in self._mods))
                base = key.lower() if len(key) == 1 and key.isascii() else key
                self._key_step("hotkey", "+".join([*names, base]), frame, t)
                return
            ch = _char_of(key, shift)
            if ch is not None:
                self._char(ch, frame, t)
                return
            if key == "BackSpace":
                run = self._open_text()
                if run is not None and (run.secret or run.text):
                    if run.env:
                        run.secret.pop()
                    else:
                        run.text = run.text[:-1]
                    run.end = t
                    if not run.secret and not run.text:
                        self._steps.pop()
                    return
            self._key_step("key", key, frame, t)

    def key_up(self, name: str, *, at: float | None = None) -> None:
        """A key released; a modifier pressed and released alone (Win, Alt) is a key
        step of its own (Shift alone is not)."""
        with self._lock:
            self._check()
            key = normalize_key(name)
            if key in self._mods:
                self._mods.remove(key)
                if self._lone_mod == key and key not in _SHIFTS:
                    self._key_step("key", key, None, time.monotonic() if at is None else at)
                self._lone_mod = None

    def _key_step(self, kind: str, key: str, frame: Frame | None, t: float) -> None:
        last = self._steps[-1] if self._steps else None
        if last is not None and last.kind == kind and last.key == key and t - last.end <= 1.0:
            last.repeat = min(1000, last.repeat + 1)
            last.end = t
            return
        self._add(self._new(kind, frame, t, key=key))

    def _char(self, ch: str, frame: Frame | None, t: float) -> None:
        run = self._open_text()
        if run is None:
            run = self._add(self._new("text", frame, t, env=self.secret_env or None))
            if run is None:
                return
        if run.env:
            run.secret.append(ch)
        else:
            run.text += ch
        run.end = t

    def key(self, name: str, *, frame: Frame | None = None, at: float | None = None) -> None:
        """A key pressed and released (``Return``, ``ENTER``, ``Tab``, ``a``…)."""
        with self._lock:
            self.key_down(name, frame=frame, at=at)
            self.key_up(name, at=at)

    def hotkey(self, combo: str, *, frame: Frame | None = None,
               at: float | None = None) -> None:
        """A shortcut (``ctrl+c``, ``alt+tab``) as one step."""
        from ..kvm import parse_hotkey

        with self._lock:
            self._check()
            parse_hotkey([combo])  # a clear error for a wrong name, now
            self._key_step("hotkey", combo, frame, time.monotonic() if at is None else at)

    def type(self, text: str, *, frame: Frame | None = None, at: float | None = None) -> None:
        """Text typed (joins the text being typed; secret while :attr:`secret_env`)."""
        with self._lock:
            self._check()
            t = time.monotonic() if at is None else float(at)
            for ch in text:
                self._char(ch, frame, t)

    # -- building ------------------------------------------------------------------------
    def stop(self, frame: Frame | None = None, at: float | None = None) -> Flow:
        """End the recording and build its flow (blocking: recognises the frames).

        ``frame`` is the screen at the end (default: the newest frame of
        :attr:`source`): what appeared on it since the last action becomes the flow's
        last wait. Returns the flow (also :attr:`flow`); a second call returns it again.
        """
        with self._lock:
            if self._stopped:
                if self.flow is None:
                    raise FlowStateError(f"recorder {self.name!r} is being stopped",
                                         flow=self.name)
                return self.flow
            self._stopped = True
            self._close_text()
            end_frame = self._frame(frame)
            end_at = time.monotonic() if at is None else float(at)
            steps = list(self._steps)
        try:
            flow = _Builder(self, steps, end_frame, end_at).build()
        finally:
            for s in steps:  # frames and secrets are not kept past the build
                s.frame = None
                s.secret = []
            self._start_frame = None
        self.flow = flow
        self.fragile = list(flow.metadata.get("recording", {}).get("fragile", []))
        return flow

    def _start_state(self) -> tuple[Frame | None, np.ndarray | None, float]:
        return self._start_frame, self._start_thumb, self._started


class _Builder:
    """Turns recorded steps into nodes (one build; caches OCR per frame)."""

    def __init__(self, rec: Recorder, steps: list[_Step], end_frame: Frame | None,
                 end_at: float) -> None:
        self.rec = rec
        self.steps = steps
        self.end_frame, self.end_thumb, self.end_at = end_frame, _thumb(end_frame), end_at
        self._texts: dict[int, TextBoxes] = {}
        self.secrets = [v for s in steps for v in s.secret if v]
        self.flow = Flow(rec.name, source=rec.source_url, input=rec.input_url)
        self.prev: str | None = None
        self.row = 0
        self.fragile: list[str] = []
        self.templates: list[str] = []
        self.counts: dict[str, int] = {}

    # -- recognition -----------------------------------------------------------------------
    def texts(self, frame: Frame) -> TextBoxes:
        key = id(frame)
        if key not in self._texts:
            self._texts[key] = read_texts(frame)
        return self._texts[key]

    def usable(self, text: str) -> bool:
        t = text.strip()
        if not t or _VOLATILE.match(t):
            return False
        return not any(s in t or (len(t) >= 3 and t in s) for s in self.secrets)

    def changed(self, a: np.ndarray | None, b: np.ndarray | None) -> bool | None:
        if a is None or b is None:
            return None
        if a.shape != b.shape:
            return True
        return int((np.abs(a - b) > _CHANGE_LEVEL).sum()) > self.rec.change_pixels

    def appeared(self, before: Frame | None, after: Frame | None) -> str | None:
        """A text on ``after`` that was not on ``before``, if any: one not typed in the
        recording before one that was, then the longest, then the first in reading
        order."""
        if before is None or after is None:
            return None
        old = {t.text.strip() for t in self.texts(before)}
        new = [t for t in self.texts(after).reading_order()
               if self.usable(t.text) and t.text.strip() not in old]
        if not new:
            return None
        typed = [s.text for s in self.steps if s.kind == "text" and s.text]
        # what the person typed shows up too; the outcome of an action is something else
        return max(new, key=lambda t: (not any(t.text.strip() in x for x in typed),
                                       len(t.text.strip()))).text.strip()

    # -- nodes -----------------------------------------------------------------------------
    def node_id(self, stem: str) -> str:
        n = self.counts.get(stem, 0) + 1
        self.counts[stem] = n
        return f"{stem}_{n}"

    def add(self, type_name: str, stem: str, label: str, column: int,
            **params: Any) -> str:
        nid = self.node_id(stem)
        self.flow.add(type_name, nid, label=label,
                      position=(column * _ROW_DX, self.row * _ROW_DY), **params)
        if self.prev is not None:
            self.flow.connect(self.prev, nid)
        self.prev = nid
        return nid

    def timeout(self, gap: float) -> float:
        return float(min(86400.0, max(self.rec.wait_timeout, math.ceil(gap * 1.5 + 1))))

    def add_wait(self, before: Frame | None, after: Frame | None, changed: bool | None,
                 gap: float, *, fixed_ok: bool) -> None:
        """The wait for the screen change seen between two moments."""
        if changed is False:
            if fixed_ok and gap >= self.rec.min_idle:
                ms = int(round(gap, 1) * 1000)
                self.add("wait", "wait", f"Wait {ms / 1000:g} s (nothing changed)", 0, ms=ms)
            return
        text = self.appeared(before, after) if changed else None
        if text is not None:
            self.add("wait_until", "wait", f"Wait for {text}", 0, text=text,
                     match_mode="exact", wait_timeout=self.timeout(gap), poll_interval=0.1)
        else:
            self.add("wait_until", "settle", "Wait for the screen to settle", 0,
                     kind="screen_stable", stable_seconds=0.5,
                     wait_timeout=self.timeout(gap), poll_interval=0.1)

    def text_anchor(self, frame: Frame, x: float, y: float,
                    action: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        texts = self.texts(frame)
        radius = self.rec.anchor_radius
        near: list[tuple[float, TextBox]] = []
        for t in texts:
            if not self.usable(t.text):
                continue
            gx, gy = _gap(t.bbox, x, y)
            d = math.hypot(gx, gy)
            if d <= radius:
                near.append((d, t))
        near.sort(key=lambda p: p[0])
        for _d, t in near:
            text = t.text.strip()
            same = find_texts(texts, text, "exact")
            place = _placement(t.bbox, x, y)
            for pick in ("first", "last"):
                params = {**action, "target": "text", "text": text, "match_mode": "exact",
                          "pick": pick, **place}
                try:
                    px, py = Mouse(**params).locate(texts=texts)
                except (LookupError, ValueError):
                    continue
                if math.hypot(px - x, py - y) <= 2.0:
                    if len(same) > 1:
                        params["pick"] = pick
                    else:
                        params.pop("pick")
                    return params, text
        return None

    def template_anchor(self, frame: Frame, fx: float, fy: float, nid: str,
                        action: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        """A template cut around ``(fx, fy)`` (pixels of ``frame``) when it is found
        there, and only there, on that frame."""
        x, y = frame.to_source(fx, fy)
        half = self.rec.template_size // 2
        x0 = max(0, min(frame.width - 1, round(fx) - half))
        y0 = max(0, min(frame.height - 1, round(fy) - half))
        w = min(frame.width - x0, self.rec.template_size)
        h = min(frame.height - y0, self.rec.template_size)
        if w < 8 or h < 8:
            return None
        region = (x0, y0, w, h)
        offset = (round(fx) - x0, round(fy) - y0)
        try:
            tpl = Template.from_frame(frame, region, name=nid, click_offset=offset)
            if float(cv2.cvtColor(tpl.image, cv2.COLOR_BGR2GRAY).std()) < 8.0:
                return None  # a flat patch matches everywhere
            found = match_template(frame, tpl, max_results=2).to_source(frame)
        except KvmrpaError as exc:
            log.debug("recorder: no template at (%d, %d): %s", fx, fy, exc)
            return None
        if len(found) != 1:
            return None  # not found again, or found twice: no anchor
        params = {**action, "target": "match", "anchor": "center"}
        try:
            px, py = Mouse(**params).locate(matches=found)
        except LookupError:
            return None
        if math.hypot(px - x, py - y) > 2.0:
            return None
        path = save_template_anchor(frame, region, nid, offset, self.template_dir())
        self.templates.append(str(path))
        return params, str(path)

    def template_dir(self) -> Path:
        if self.rec.template_dir:
            return Path(self.rec.template_dir).expanduser()
        from .._settings import get_settings

        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.rec.name).strip("._") or "recording"
        return Path(get_settings().store.templates_dir) / safe

    def pointer_step(self, step: _Step, gap: float, before: Frame | None,
                     changed: bool | None, first: bool) -> None:
        assert step.point is not None
        x, y = step.point
        if step.frame is not None:
            x, y = step.frame.to_source(x, y)
        verb = {"click": "Click", "double_click": "Double-click", "right_click": "Right-click",
                "scroll": "Scroll", "drag": "Drag"}[step.kind]
        action: dict[str, Any] = {"action": step.kind}
        if step.kind in ("click", "double_click", "drag") and step.button != "left":
            action["button"] = step.button
        if step.kind == "scroll":
            action["scroll_dy"] = step.dy
        if step.kind == "drag" and step.to is not None:
            tx, ty = step.frame.to_source(*step.to) if step.frame is not None else step.to
            action.update(to_x=max(0.0, round(tx, 1)), to_y=max(0.0, round(ty, 1)))
        stem = step.kind.replace("double_click", "dclick").replace("right_click", "rclick")
        frame = step.frame
        fx, fy = step.point
        anchored = None
        if frame is not None and step.kind != "drag":
            anchored = self.text_anchor(frame, x, y, action)
            if anchored is not None:
                params, text = anchored
                self.add("wait_until", "wait", f"Wait for {text}", 0, text=text,
                         match_mode="exact", wait_timeout=self.timeout(gap), poll_interval=0.1)
                where = _describe(params, text)
                self.add("mouse", stem, f"{verb} {where}", 1, **params)
                self.row += 1
                return
            nid_hint = f"{stem}_{self.counts.get(stem, 0) + 1}"
            anchored = self.template_anchor(frame, fx, fy, nid_hint, action)
            if anchored is not None:
                params, path = anchored
                self.add("wait_until", "wait", f"Wait for the image of {nid_hint}", 0,
                         kind="image_appears", template=path,
                         wait_timeout=self.timeout(gap), poll_interval=0.1)
                self.add("mouse", stem, f"{verb} on the image {Path(path).name}", 1, **params)
                self.row += 1
                return
        if not first:
            self.add_wait(before, frame, changed, gap, fixed_ok=True)
        nid = self.add("mouse", stem, f"{verb} at ({round(x)}, {round(y)}) — fragile: fixed "
                       "point", 1, target="point", x=max(0.0, round(x, 1)),
                       y=max(0.0, round(y, 1)), **action)
        self.fragile.append(nid)
        self.row += 1

    def key_step(self, step: _Step) -> None:
        if step.kind == "text":
            if step.env:
                self.add("keyboard", "type", f"Type ${{env:{step.env}}}", 1, action="type",
                         text=f"${{env:{step.env}}}", secret=True)
            else:
                self.add("keyboard", "type", f"Type {step.text}", 1, action="type",
                         text=step.text)
        elif step.kind == "key":
            label = f"Press {step.key}" + (f" ×{step.repeat}" if step.repeat > 1 else "")
            self.add("keyboard", "key", label, 1, action="key", key=step.key,
                     repeat=step.repeat)
        else:
            label = f"Press {step.key}" + (f" ×{step.repeat}" if step.repeat > 1 else "")
            self.add("keyboard", "hotkey", label, 1, action="hotkey", hotkey=step.key,
                     repeat=step.repeat)
        self.row += 1

    def build(self) -> Flow:
        start_frame, start_thumb, started = self.rec._start_state()
        prev_frame, prev_thumb, prev_end = start_frame, start_thumb, started
        for i, step in enumerate(self.steps):
            gap = max(0.0, step.at - prev_end)
            changed = self.changed(prev_thumb, step.thumb)
            if step.point is not None:
                self.pointer_step(step, gap, prev_frame, changed, i == 0)
            else:
                if i > 0 and gap >= self.rec.min_idle:
                    self.add_wait(prev_frame, step.frame, changed, gap, fixed_ok=True)
                self.key_step(step)
            prev_frame, prev_thumb, prev_end = step.frame, step.thumb, step.end
        if self.steps:
            changed = self.changed(prev_thumb, self.end_thumb)
            if changed or (changed is None and self.end_frame is not None):
                self.add_wait(prev_frame, self.end_frame, changed, self.end_at - prev_end,
                              fixed_ok=False)
        flow = self.flow
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        n = len(self.steps)
        flow.description = (f"Recorded {now[:16].replace('T', ' ')} UTC: {n} step"
                            f"{'' if n == 1 else 's'}"
                            + (f", {len(self.fragile)} on fixed points (fragile)"
                               if self.fragile else "") + ".")
        flow.metadata["recording"] = {"recorded": now, "steps": n, "fragile": self.fragile,
                                      "templates": self.templates}
        return flow


def save_template_anchor(frame: Frame, region: tuple[int, int, int, int], name: str,
                         click_offset: tuple[int, int], folder: Path) -> Path:
    """Save the template of a template anchor — ``region`` of ``frame`` (its pixels) —
    in the template store of ``folder`` under ``name`` (made unique); returns the PNG's
    path."""
    x, y, w, h = region
    sx, sy = frame.to_source(x, y)
    src_region = (sx, sy, w / frame.scale, h / frame.scale)
    return TemplateStore(folder).save(frame, src_region, name, click_offset=click_offset).path

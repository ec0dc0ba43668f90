"""The simulated desktop's model: windows, focus, pointer, keyboard, pages, and rendering.

:class:`SimDesktop` holds everything the screen shows and reacts to exactly the
primitives an input driver sends (pointer move, button down/up, scroll, key down/up,
Unicode text). It renders a clean RGB image on demand, only when something changed
(:attr:`version`, the clock's second); the realism pass and the frame cadence belong to
the source. One lock guards the state; a render copies the scene under it and draws
outside it, so the driver (event loop thread) is never held up by the source's render
thread. The pointer is drawn, and hidden while typing into a field until it moves again,
as desktops do ("hide pointer while typing").
"""

from __future__ import annotations

import collections
import copy
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..kvm.keys import key_char
from ._fonts import find_font, load_font
from ._widgets import Button, Checkbox, TextInput, Widget, Window

__all__ = ["DesktopOptions", "SimDesktop"]

log = logging.getLogger("kvmrpa.sim")

_SHIFT = {"Shift_L", "Shift_R"}
_CTRL = {"Control_L", "Control_R"}
_ALT = {"Alt_L", "Alt_R", "Meta_L", "Meta_R"}
_SUPER = {"Super_L", "Super_R"}
_MODIFIERS = _SHIFT | _CTRL | _ALT | _SUPER | {"Caps_Lock", "ISO_Level3_Shift"}


@dataclass(frozen=True)
class _Scene:
    """A copy of what the screen shows, taken under the lock and drawn outside it."""

    windows: list[tuple[Window, list[tuple[Widget, bool, bool, bool]]]]
    status: str
    status_x: int
    pointer: tuple[int, int] | None


@dataclass(frozen=True)
class DesktopOptions:
    """What a ``sim://`` URL asks for (validated by :func:`kvmrpa.sim.parse_sim_url`)."""

    scenario: str = "desktop"
    seed: int = 0
    width: int = 1280
    height: int = 720
    fps: float = 20.0
    realism: bool = True
    reset: float = 0.0


class SimDesktop:
    """A small desktop that reacts to pointer and keyboard primitives.

    Test-only inspection: :meth:`state` (page, entries, focus, last clicked element…)
    and :meth:`find` (an element's rectangle). Flows never see this object: they get
    frames from the ``sim://`` source and send actions through the ``sim://`` driver.
    """

    def __init__(self, options: DesktopOptions, build: Callable[[SimDesktop], None],
                 key: str = "") -> None:
        find_font()  # a missing font is a clear error at creation, not a blank screen later
        self.options = options
        self.url = key or f"sim://{options.scenario}"
        self.size: tuple[int, int] = (options.width, options.height)
        self.unit = max(0.5, min(options.width / 1280, options.height / 720))
        self.rng = random.Random(options.seed)
        self._lock = threading.RLock()
        self._version = 0
        self._windows: list[Window] = []
        # The pointer starts on the empty middle of the taskbar, away from any window.
        self._pointer = (options.width * 3 // 4, options.height - self.u(20))
        self._buttons_down: set[str] = set()
        self._pressed: Widget | None = None
        self._focused: TextInput | None = None
        self._mods: set[str] = set()
        self._last_clicked: str | None = None
        self._last_click_at: float | None = None
        self._clicks: collections.deque[str] = collections.deque(maxlen=100)
        self._scrolled = (0, 0)
        self._status = ""
        self.page = ""
        self.vars: dict[str, Any] = {}
        self._timers: list[tuple[float, Callable[[SimDesktop], None]]] = []
        self._resets = 0
        self._background: Image.Image | None = None
        self._rendered: tuple[tuple[int, str], np.ndarray] | None = None
        self.show_clock = options.realism
        self.show_pointer = True
        self._pointer_hidden = False  # hidden while typing, like "hide pointer while typing"
        self._build = build  # the scenario: puts its windows on the desktop
        with self._lock:
            self._build(self)

    # -- scenario building API -----------------------------------------------------------
    def u(self, value: float) -> int:
        """Scale a length given for a 1280x720 screen to this screen."""
        return max(1, round(value * self.unit))

    def add_window(self, window: Window) -> Window:
        """Put a window on top of the others."""
        with self._lock:
            self._windows.append(window)
            self._touch()
        return window

    def close_window(self, window_id: str) -> None:
        """Hide a window (a dialog closing)."""
        self.set_window_visible(window_id, False)

    def set_window_visible(self, window_id: str, visible: bool = True) -> None:
        """Show or hide a window (scenario code, tests and benchmarks: a screen change)."""
        with self._lock:
            for window in self._windows:
                if window.id == window_id:
                    window.visible = visible
                    if visible:
                        self._raise(window)
                    elif self._focused is not None and self._focused in window.widgets:
                        self._focused = None
                    self._touch()
                    return
        raise KeyError(f"{self.url}: no window {window_id!r}")

    def set_status(self, text: str) -> None:
        """Show ``text`` in the taskbar's message area."""
        with self._lock:
            self._status = text
            self._touch()

    @property
    def status(self) -> str:
        """The taskbar's message."""
        return self._status

    def after(self, seconds: float, fn: Callable[[SimDesktop], None]) -> None:
        """Run ``fn(desktop)`` (under the lock) once ``seconds`` have passed (checked on
        every tick and every input event)."""
        with self._lock:
            self._timers.append((time.monotonic() + seconds, fn))

    def reset(self, *, restart: bool = False) -> None:
        """Rebuild the scenario: nothing pressed, focused or typed, no message.

        By default the positions are new ones from the seeded generator (a scenario
        starting over). With ``restart`` the desktop goes back to exactly how it was
        created: the same positions (the generator re-seeded), the pointer on the
        taskbar, no buttons or modifiers held, no clicks recorded.
        """
        with self._lock:
            self._windows.clear()
            self._pressed = None
            self._focused = None
            self._timers.clear()
            self._status = ""
            self.page = ""
            self.vars.clear()
            if restart:
                w, h = self.size
                self.rng = random.Random(self.options.seed)
                self._pointer = (w * 3 // 4, h - self.u(20))
                self._pointer_hidden = False
                self._buttons_down.clear()
                self._mods.clear()
                self._last_clicked = None
                self._last_click_at = None
                self._clicks.clear()
                self._scrolled = (0, 0)
            self._resets += 1
            self._build(self)
            self._touch()

    def finished(self) -> None:
        """A scenario reached a result: reset after ``options.reset`` seconds when set."""
        if self.options.reset > 0:
            self.after(self.options.reset, SimDesktop.reset)

    def _touch(self) -> None:
        self._version += 1

    @property
    def version(self) -> int:
        """Increases on every change of what the screen shows."""
        return self._version

    # -- input primitives (screen pixels) ------------------------------------------------------
    def pointer_move(self, x: int, y: int) -> None:
        """Move the pointer (clamped to the screen); shows it again after typing."""
        with self._lock:
            w, h = self.size
            self._pointer = (max(0, min(w - 1, int(x))), max(0, min(h - 1, int(y))))
            self._pointer_hidden = False
            self._run_timers()
            self._touch()

    def mouse_button(self, button: str, down: bool) -> None:
        """Press or release a button where the pointer is. Left: a press focuses a text
        box and arms a button or check box (drawn pressed); the release over the same
        element clicks it. Right and middle are only recorded."""
        with self._lock:
            self._run_timers()
            if down:
                self._buttons_down.add(button)
            else:
                self._buttons_down.discard(button)
            if button != "left":
                self._touch()
                return
            x, y = self._pointer
            window, widget = self._hit(x, y)
            if down:
                if window is not None:
                    self._raise(window)
                self._pressed = widget
                if isinstance(widget, TextInput):
                    self._focused = widget
                    widget.move_caret(len(widget.text))
                elif widget is None or not isinstance(widget, Button | Checkbox):
                    self._focused = None
            else:
                pressed, self._pressed = self._pressed, None
                if pressed is not None and pressed is widget:
                    self._click(widget)
            self._touch()

    def scroll(self, dx: int, dy: int) -> None:
        """Wheel steps, positive ``dy`` down and ``dx`` right (recorded in
        ``state()["scrolled"]``; no scenario scrolls)."""
        with self._lock:
            sx, sy = self._scrolled
            self._scrolled = (sx + dx, sy + dy)
            self._touch()

    def key(self, key: str, down: bool) -> None:
        """One key by its X keysym name (``Return``, ``a``, ``Control_L``…)."""
        with self._lock:
            self._run_timers()
            if key in _MODIFIERS:
                (self._mods.add if down else self._mods.discard)(key)
                return
            if not down:
                return
            field = self._focused
            if field is not None:
                self._pointer_hidden = True
            ctrl = bool(self._mods & _CTRL)
            if ctrl:
                if key.lower() == "a" and field is not None:
                    field.select_all()
                self._touch()
                return
            if key in ("Return", "KP_Enter"):
                if field is not None and field.on_submit is not None:
                    field.on_submit(self, field.text)
            elif key == "Tab":
                self._focus_next(backwards=bool(self._mods & _SHIFT))
            elif key == "Escape":
                self._focused = None
            elif field is not None:
                self._edit(field, key)
            self._touch()

    def type_text(self, text: str) -> None:
        """Type Unicode text into the focused box (``\\n`` is Enter, ``\\t`` is Tab)."""
        with self._lock:
            self._run_timers()
            if self._focused is not None:
                self._pointer_hidden = True
            for ch in text:
                if ch == "\n":
                    self.key("Return", True)
                elif ch == "\t":
                    self.key("Tab", True)
                elif self._focused is not None and ch.isprintable():
                    self._focused.insert(ch)
            self._touch()

    def _edit(self, field: TextInput, key: str) -> None:
        if key == "BackSpace":
            field.backspace()
        elif key in ("Delete", "KP_Delete"):
            field.delete()
        elif key in ("Left", "KP_Left"):
            field.move_caret(field.caret - 1)
        elif key in ("Right", "KP_Right"):
            field.move_caret(field.caret + 1)
        elif key in ("Home", "KP_Home"):
            field.move_caret(0)
        elif key in ("End", "KP_End"):
            field.move_caret(len(field.text))
        else:
            ch = self._char_for(key)
            if ch is not None:
                field.insert(ch)

    def _char_for(self, key: str) -> str | None:
        return key_char(key, shift=bool(self._mods & _SHIFT))  # the one key table (US layout)

    def _focus_next(self, backwards: bool) -> None:
        fields = [w for win in self._windows if win.visible for w in win.widgets
                  if w.visible and w.focusable]
        if not fields:
            return
        if self._focused in fields:
            i = fields.index(self._focused) + (-1 if backwards else 1)
        else:
            i = -1 if backwards else 0
        nxt = fields[i % len(fields)]
        assert isinstance(nxt, TextInput)
        self._focused = nxt
        nxt.move_caret(len(nxt.text))

    def _click(self, widget: Widget) -> None:
        self._last_clicked = widget.id
        self._last_click_at = time.monotonic()
        self._clicks.append(widget.id)
        if isinstance(widget, Checkbox):
            widget.checked = not widget.checked
            if widget.on_change is not None:
                widget.on_change(self, widget.checked)
        elif isinstance(widget, Button) and widget.on_click is not None:
            widget.on_click(self)

    def _hit(self, x: int, y: int) -> tuple[Window | None, Widget | None]:
        for window in reversed(self._windows):
            if window.contains(x, y):
                return window, window.widget_at(x, y)
        return None, None

    def _raise(self, window: Window) -> None:
        if self._windows and self._windows[-1] is not window:
            self._windows.remove(window)
            self._windows.append(window)

    def _run_timers(self) -> None:
        if not self._timers:
            return
        now = time.monotonic()
        due = [t for t in self._timers if t[0] <= now]
        if due:
            self._timers = [t for t in self._timers if t[0] > now]
            for _, fn in due:
                fn(self)
            self._touch()

    # -- rendering --------------------------------------------------------------------------
    def clock_text(self) -> str:
        """The taskbar clock (``HH:MM:SS``), empty when realism is off."""
        return time.strftime("%H:%M:%S") if self.show_clock else ""

    def render_key(self) -> tuple[int, str]:
        """Changes exactly when the rendered image would change."""
        with self._lock:
            self._run_timers()
            return self._version, self.clock_text()

    def render(self) -> tuple[tuple[int, str], np.ndarray]:
        """``(key, RGB image)`` of the current screen, rendered only when it changed.

        The lock is held only to copy what is shown (microseconds); drawing happens
        outside it, so input events are never held up by a render."""
        with self._lock:
            key = self.render_key()
            if self._rendered is not None and self._rendered[0] == key:
                return self._rendered
            scene = self._scene()
        image = self._draw(scene, key[1])
        with self._lock:
            if self._rendered is None or self._rendered[0][0] <= key[0]:
                self._rendered = (key, image)
        return key, image

    def snapshot(self) -> np.ndarray:
        """The clean screen as a BGR ``uint8`` array (no realism), for tests."""
        return np.ascontiguousarray(self.render()[1][:, :, ::-1])

    def _scene(self) -> _Scene:
        hover = self._hit(*self._pointer)[1]
        windows = []
        for window in self._windows:
            if not window.visible:
                continue
            widgets = [(copy.copy(w), w is hover, w is self._pressed and w is hover,
                        w is self._focused) for w in window.widgets if w.visible]
            windows.append((copy.copy(window), widgets))
        return _Scene(windows, self._status, self.vars.get("status_x", self.u(140)),
                      self._pointer if self.show_pointer and not self._pointer_hidden else None)

    def _draw(self, scene: _Scene, clock: str) -> np.ndarray:
        w, h = self.size
        if self._background is None:
            self._background = self._make_background()
        img = self._background.copy()
        d = ImageDraw.Draw(img)
        bar = self.u(40)
        d.rectangle((0, h - bar, w, h), fill=(32, 36, 48))
        d.rectangle((self.u(8), h - bar + self.u(6), self.u(80), h - self.u(6)), fill=(58, 96, 160))
        d.text((self.u(44), h - bar // 2), "开始", fill=(255, 255, 255),
               font=load_font(self.u(16)), anchor="mm")
        if scene.status:
            d.text((scene.status_x, h - bar // 2), scene.status,
                   fill=(255, 255, 255), font=load_font(self.u(20)), anchor="lm")
        if clock:
            d.text((w - self.u(16), h - bar // 2), clock, fill=(230, 230, 230),
                   font=load_font(self.u(16)), anchor="rm")
        for window, widgets in scene.windows:
            window.draw_frame(d)
            for widget, hover, pressed, focused in widgets:
                widget.draw(d, hover=hover, pressed=pressed, focused=focused)
        if scene.pointer is not None:
            self._draw_pointer(d, scene.pointer)
        return np.asarray(img)

    def _make_background(self) -> Image.Image:
        w, h = self.size
        ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
        xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
        r = 40 + 30 * ys + 10 * xs
        g = 90 + 40 * ys + 20 * xs
        b = 130 + 50 * ys - 10 * xs
        rgb = np.stack(np.broadcast_arrays(r, g, b), axis=-1).clip(0, 255).astype(np.uint8)
        return Image.fromarray(rgb, "RGB")

    def _draw_pointer(self, d: ImageDraw.ImageDraw, pointer: tuple[int, int]) -> None:
        x, y = pointer
        s = self.unit
        shape = [(0, 0), (0, 17), (4, 13), (7, 19), (9, 18), (6, 12), (12, 12)]
        d.polygon([(x + px * s, y + py * s) for px, py in shape], fill=(255, 255, 255),
                  outline=(0, 0, 0))

    # -- test-only inspection ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What the screen shows, for tests of the simulator itself (never given to flows)."""
        with self._lock:
            self._run_timers()
            entries = {w.id: w.text for win in self._windows for w in win.widgets
                       if isinstance(w, TextInput)}
            entry = (self._focused.text if self._focused is not None
                     else next(iter(entries.values()), None))
            return {
                "scenario": self.options.scenario,
                "seed": self.options.seed,
                "size": self.size,
                "page": self.page,
                "status": self._status,
                "entry": entry,
                "entries": entries,
                "selected_all": {w.id: w.selected_all for win in self._windows
                                 for w in win.widgets if isinstance(w, TextInput)},
                "focused": None if self._focused is None else self._focused.id,
                "last_clicked": self._last_clicked,
                "last_click_at": self._last_click_at,
                "clicks": list(self._clicks),
                "checked": {w.id: w.checked for win in self._windows for w in win.widgets
                            if isinstance(w, Checkbox)},
                "windows": [win.id for win in self._windows if win.visible],
                "pointer": self._pointer,
                "pointer_hidden": self._pointer_hidden,
                "buttons_down": sorted(self._buttons_down),
                "pressed": None if self._pressed is None else self._pressed.id,
                "scrolled": self._scrolled,
                "resets": self._resets,
                "vars": dict(self.vars),
            }

    def find(self, widget_id: str) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of a visible element, for tests of the simulator itself."""
        with self._lock:
            for window in self._windows:
                if window.visible and window.id == widget_id:
                    return window.x, window.y, window.w, window.h
                for widget in window.widgets:
                    if window.visible and widget.visible and widget.id == widget_id:
                        return widget.x, widget.y, widget.w, widget.h
        raise KeyError(f"{self.url}: no visible element {widget_id!r}")

    def __repr__(self) -> str:
        return f"SimDesktop({self.url!r}, page={self.page!r})"

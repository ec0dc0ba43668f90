"""The simulated desktop's widgets: windows, labels, buttons, text inputs, checkboxes.

Each widget knows its rectangle in screen pixels, how to draw itself with Pillow and
how it reacts to input; behaviour that changes the page (what a button does) is a
callback the scenario sets. Nothing here is thread-safe on its own: the desktop holds
its lock around every call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import ImageDraw

from ._fonts import load_font

__all__ = ["Button", "Checkbox", "Label", "TextInput", "Widget", "Window"]

# Callbacks receive the desktop instead of closing over it, so a desktop holds no
# reference cycle and is freed as soon as its last user lets go of it.
Action = Callable[[Any], None]

# A restrained, Windows-like palette (RGB).
TEXT = (30, 30, 30)
WINDOW_BG = (240, 240, 240)
TITLE_BG = (43, 87, 154)
TITLE_FG = (255, 255, 255)
BORDER = (120, 120, 120)
BUTTON_BG = (225, 225, 225)
BUTTON_BORDER = (173, 173, 173)
BUTTON_HOVER_BG = (229, 241, 251)
BUTTON_HOVER_BORDER = (0, 120, 215)
BUTTON_PRESSED_BG = (204, 228, 247)
BUTTON_PRESSED_BORDER = (0, 84, 153)
FOCUS = (0, 120, 215)
SELECTION_BG = (0, 120, 215)
SELECTION_FG = (255, 255, 255)


@dataclass(eq=False)
class Widget:
    """A rectangle of a window, in screen pixels."""

    id: str
    x: int
    y: int
    w: int
    h: int
    visible: bool = True
    font_size: int = 20

    def contains(self, px: int, py: int) -> bool:
        return self.visible and self.x <= px < self.x + self.w and self.y <= py < self.y + self.h

    @property
    def focusable(self) -> bool:
        return False

    def draw(self, d: ImageDraw.ImageDraw, *, hover: bool, pressed: bool, focused: bool) -> None:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": type(self).__name__.lower(), "bbox": (self.x, self.y, self.w, self.h)}


@dataclass(eq=False)
class Label(Widget):
    """Static text, left-aligned and vertically centred in its box."""

    text: str = ""
    color: tuple[int, int, int] = TEXT

    def draw(self, d: ImageDraw.ImageDraw, *, hover: bool, pressed: bool, focused: bool) -> None:
        if self.text:
            d.text((self.x, self.y + self.h // 2), self.text, fill=self.color,
                   font=load_font(self.font_size), anchor="lm")


@dataclass(eq=False)
class Button(Widget):
    """A push button: hover and pressed looks; ``on_click(desktop)`` runs on release over it."""

    text: str = ""
    on_click: Action | None = None

    def draw(self, d: ImageDraw.ImageDraw, *, hover: bool, pressed: bool, focused: bool) -> None:
        if pressed:
            bg, border, shift = BUTTON_PRESSED_BG, BUTTON_PRESSED_BORDER, 1
        elif hover:
            bg, border, shift = BUTTON_HOVER_BG, BUTTON_HOVER_BORDER, 0
        else:
            bg, border, shift = BUTTON_BG, BUTTON_BORDER, 0
        box = (self.x, self.y, self.x + self.w - 1, self.y + self.h - 1)
        d.rounded_rectangle(box, radius=max(2, self.h // 10), fill=bg, outline=border,
                            width=2 if pressed else 1)
        d.text((self.x + self.w // 2 + shift, self.y + self.h // 2 + shift), self.text,
               fill=TEXT, font=load_font(self.font_size), anchor="mm")


@dataclass(eq=False)
class Checkbox(Widget):
    """A check box with its label; a click anywhere on it toggles ``checked``."""

    text: str = ""
    checked: bool = False
    on_change: Callable[[Any, bool], None] | None = None

    def draw(self, d: ImageDraw.ImageDraw, *, hover: bool, pressed: bool, focused: bool) -> None:
        side = max(10, int(self.h * 0.6))
        top = self.y + (self.h - side) // 2
        fill = BUTTON_PRESSED_BG if pressed else (255, 255, 255)
        d.rectangle((self.x, top, self.x + side, top + side), fill=fill,
                    outline=FOCUS if hover else BORDER, width=2 if hover else 1)
        if self.checked:
            s = side
            d.line([(self.x + s * 0.2, top + s * 0.55), (self.x + s * 0.42, top + s * 0.78),
                    (self.x + s * 0.82, top + s * 0.25)], fill=FOCUS, width=max(2, s // 6))
        d.text((self.x + side + max(6, side // 2), self.y + self.h // 2), self.text, fill=TEXT,
               font=load_font(self.font_size), anchor="lm")


@dataclass(eq=False)
class TextInput(Widget):
    """A one-line text box: caret, any Unicode text, backspace/delete, select-all, Enter."""

    text: str = ""
    caret: int = 0
    selected_all: bool = False
    placeholder: str = ""
    on_submit: Callable[[Any, str], None] | None = None

    @property
    def focusable(self) -> bool:
        return True

    # -- editing -----------------------------------------------------------------------
    def _replace_selection(self) -> None:
        if self.selected_all:
            self.text, self.caret, self.selected_all = "", 0, False

    def insert(self, s: str) -> None:
        self._replace_selection()
        self.text = self.text[: self.caret] + s + self.text[self.caret :]
        self.caret += len(s)

    def backspace(self) -> None:
        if self.selected_all:
            self._replace_selection()
        elif self.caret > 0:
            self.text = self.text[: self.caret - 1] + self.text[self.caret :]
            self.caret -= 1

    def delete(self) -> None:
        if self.selected_all:
            self._replace_selection()
        elif self.caret < len(self.text):
            self.text = self.text[: self.caret] + self.text[self.caret + 1 :]

    def select_all(self) -> None:
        self.selected_all = bool(self.text)
        self.caret = len(self.text)

    def move_caret(self, to: int) -> None:
        self.selected_all = False
        self.caret = max(0, min(len(self.text), to))

    # -- drawing -----------------------------------------------------------------------
    def draw(self, d: ImageDraw.ImageDraw, *, hover: bool, pressed: bool, focused: bool) -> None:
        font = load_font(self.font_size)
        d.rectangle((self.x, self.y, self.x + self.w - 1, self.y + self.h - 1), fill=(255, 255, 255),
                    outline=FOCUS if focused else (BUTTON_HOVER_BORDER if hover else BORDER),
                    width=2 if focused else 1)
        pad = max(4, self.h // 5)
        inner = self.w - 2 * pad
        cy = self.y + self.h // 2
        shown, start = self.text, 0
        while shown and font.getlength(shown) > inner:  # keep the caret's end visible
            start += 1
            shown = self.text[start:]
        tx = self.x + pad
        if not self.text and self.placeholder and not focused:
            d.text((tx, cy), self.placeholder, fill=(150, 150, 150), font=font, anchor="lm")
        elif self.selected_all and shown:
            width = font.getlength(shown)
            top, bottom = cy - self.font_size * 0.65, cy + self.font_size * 0.65
            d.rectangle((tx, top, tx + width, bottom), fill=SELECTION_BG)
            d.text((tx, cy), shown, fill=SELECTION_FG, font=font, anchor="lm")
        elif shown:
            d.text((tx, cy), shown, fill=TEXT, font=font, anchor="lm")
        if focused and not self.selected_all:
            cx = tx + font.getlength(self.text[start : max(start, self.caret)])
            half = self.font_size * 0.6
            d.line([(cx, cy - half), (cx, cy + half)], fill=TEXT, width=1)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(text=self.text, caret=self.caret, selected_all=self.selected_all)
        return out


@dataclass(eq=False)
class Window:
    """A top-level window or dialog: title bar, body, widgets (screen coordinates)."""

    id: str
    title: str
    x: int
    y: int
    w: int
    h: int
    widgets: list[Widget] = field(default_factory=list)
    visible: bool = True
    title_size: int = 16

    @property
    def title_h(self) -> int:
        return max(18, int(self.title_size * 1.9))

    def contains(self, px: int, py: int) -> bool:
        return self.visible and self.x <= px < self.x + self.w and self.y <= py < self.y + self.h

    def widget_at(self, px: int, py: int) -> Widget | None:
        for widget in reversed(self.widgets):
            if widget.contains(px, py):
                return widget
        return None

    def add(self, widget: Widget) -> Widget:
        self.widgets.append(widget)
        return widget

    def draw_frame(self, d: ImageDraw.ImageDraw) -> None:
        x, y, w, h = self.x, self.y, self.w, self.h
        d.rectangle((x + 4, y + 4, x + w + 3, y + h + 3), fill=(60, 60, 70))  # shadow
        d.rectangle((x, y, x + w - 1, y + h - 1), fill=WINDOW_BG, outline=BORDER)
        d.rectangle((x, y, x + w - 1, y + self.title_h), fill=TITLE_BG)
        d.text((x + self.title_size // 2 + 4, y + self.title_h // 2), self.title, fill=TITLE_FG,
               font=load_font(self.title_size), anchor="lm")

"""USB HID keyboard tables shared by the hardware drivers (PiKVM, CH9329).

One row per physical key of a US keyboard: the canonical X keysym name kvmrpa uses,
the web ``KeyboardEvent.code`` name PiKVM's API expects, and the USB HID usage ID a
keyboard report carries (page 0x07). Modifiers are not usages in a boot report but bits
of its first byte: :data:`MODIFIER_BITS`.
"""

from __future__ import annotations

__all__ = ["MODIFIER_BITS", "USB_USAGE", "WEB_CODE", "in_table"]

#: canonical name -> bit of the modifier byte of a boot keyboard report
MODIFIER_BITS: dict[str, int] = {
    "Control_L": 0x01, "Shift_L": 0x02, "Alt_L": 0x04, "Super_L": 0x08,
    "Control_R": 0x10, "Shift_R": 0x20, "Alt_R": 0x40, "Super_R": 0x80,
}

_ROWS: list[tuple[str, str | None, int]] = [
    *[(chr(c), f"Key{chr(c).upper()}", 0x04 + c - ord("a")) for c in range(ord("a"), ord("z") + 1)],
    *[(str(d), f"Digit{d}", 0x1E + (d - 1) % 10) for d in (1, 2, 3, 4, 5, 6, 7, 8, 9, 0)],
    ("Return", "Enter", 0x28), ("Escape", "Escape", 0x29), ("BackSpace", "Backspace", 0x2A),
    ("Tab", "Tab", 0x2B), ("space", "Space", 0x2C), ("minus", "Minus", 0x2D),
    ("equal", "Equal", 0x2E), ("bracketleft", "BracketLeft", 0x2F),
    ("bracketright", "BracketRight", 0x30), ("backslash", "Backslash", 0x31),
    ("semicolon", "Semicolon", 0x33), ("apostrophe", "Quote", 0x34), ("grave", "Backquote", 0x35),
    ("comma", "Comma", 0x36), ("period", "Period", 0x37), ("slash", "Slash", 0x38),
    ("Caps_Lock", "CapsLock", 0x39),
    *[(f"F{n}", f"F{n}", 0x3A + n - 1) for n in range(1, 13)],
    ("Print", "PrintScreen", 0x46), ("Scroll_Lock", "ScrollLock", 0x47), ("Pause", "Pause", 0x48),
    ("Insert", "Insert", 0x49), ("Home", "Home", 0x4A), ("Page_Up", "PageUp", 0x4B),
    ("Delete", "Delete", 0x4C), ("End", "End", 0x4D), ("Page_Down", "PageDown", 0x4E),
    ("Right", "ArrowRight", 0x4F), ("Left", "ArrowLeft", 0x50), ("Down", "ArrowDown", 0x51),
    ("Up", "ArrowUp", 0x52), ("Num_Lock", "NumLock", 0x53), ("KP_Divide", "NumpadDivide", 0x54),
    ("KP_Multiply", "NumpadMultiply", 0x55), ("KP_Subtract", "NumpadSubtract", 0x56),
    ("KP_Add", "NumpadAdd", 0x57), ("KP_Enter", "NumpadEnter", 0x58),
    *[(f"KP_{d}", f"Numpad{d}", 0x59 + (d - 1) % 10) for d in (1, 2, 3, 4, 5, 6, 7, 8, 9, 0)],
    ("KP_Decimal", "NumpadDecimal", 0x63), ("Menu", "ContextMenu", 0x65),
    *[(f"F{n}", "F20" if n == 20 else None, 0x68 + n - 13) for n in range(13, 25)],
    ("Control_L", "ControlLeft", 0xE0), ("Shift_L", "ShiftLeft", 0xE1), ("Alt_L", "AltLeft", 0xE2),
    ("Super_L", "MetaLeft", 0xE3), ("Control_R", "ControlRight", 0xE4),
    ("Shift_R", "ShiftRight", 0xE5), ("Alt_R", "AltRight", 0xE6), ("Super_R", "MetaRight", 0xE7),
]

#: canonical name -> USB HID usage ID (keyboard page)
USB_USAGE: dict[str, int] = {name: usage for name, _web, usage in _ROWS}

#: canonical name -> web KeyboardEvent.code (PiKVM's key names)
WEB_CODE: dict[str, str] = {name: web for name, web, _usage in _ROWS if web is not None}


def in_table(key: str, table: dict[str, object]) -> bool:
    """Whether the canonical key ``key`` can be sent with ``table`` (:data:`WEB_CODE` or
    :data:`USB_USAGE`): directly, or as a shifted character of a key it has (``A``,
    ``plus``)."""
    from .._errors import InputError
    from .keys import keys_for_char, keysym_char

    if key in table:
        return True
    ch = keysym_char(key)
    if ch is None:
        return False
    try:
        base, _shift = keys_for_char(ch)
    except InputError:
        return False
    return base in table

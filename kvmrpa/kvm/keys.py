"""Key names: one canonical spelling (X keysym names) for every driver.

Users write ``enter``, ``ENTER``, ``Return``, ``ctrl``, ``win``, ``cmd``, ``esc``,
``PgUp``, ``ArrowUp``, ``KeyA`` or a character such as ``+``; :func:`normalize_key`
turns any of them into the canonical X keysym name (``Return``, ``Control_L``,
``Super_L``, ``Escape``, ``Page_Up``, ``Up``, ``a``, ``plus``), which is what every
driver's ``_key`` receives. Unknown names raise :class:`UnsupportedActionError` naming
the key, the driver and the closest known names.

Rules:

* a single character is case-sensitive (``a`` and ``A`` are different keysyms);
* longer names match exactly first, then case-insensitively ignoring ``_``, ``-`` and
  spaces (``page_up`` = ``PageUp`` = ``pgup``);
* in a hotkey (:func:`parse_hotkey`) letters are lower-cased, so ``ctrl+A`` is Ctrl+A
  on the keyboard, not Ctrl+Shift+A; write ``ctrl+shift+a`` for that.

Text typing on keyboard-emulating drivers uses a US layout: :func:`keys_for_char` gives
the key and whether Shift is needed; :func:`check_typable` refuses, before anything is
sent, text with characters the driver cannot type, naming every one of them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from .._errors import UnsupportedActionError

__all__ = [
    "BROWSER_KEYS",
    "CANONICAL_KEYS",
    "MODIFIERS",
    "USB_USAGE",
    "WEB_CODE",
    "browser_key",
    "char_keysym",
    "check_typable",
    "key_char",
    "keys_for_char",
    "keysym_char",
    "normalize_key",
    "parse_hotkey",
]

# -- the key table ------------------------------------------------------------------------
# One row per physical key of a US keyboard: the canonical X keysym name kvmrpa uses, the
# web ``KeyboardEvent.code`` (PiKVM's key names, and what a browser reports), and the USB
# HID usage ID a keyboard report carries (page 0x07). Every other key mapping (HID
# reports, PiKVM, the simulated desktop, the browser live view) is derived from it.
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

#: canonical name -> web ``KeyboardEvent.code`` (PiKVM's key names)
WEB_CODE: dict[str, str] = {name: web for name, web, _usage in _ROWS if web is not None}


#: ASCII punctuation -> X keysym name
_PUNCT: dict[str, str] = {
    " ": "space", "!": "exclam", '"': "quotedbl", "#": "numbersign", "$": "dollar",
    "%": "percent", "&": "ampersand", "'": "apostrophe", "(": "parenleft", ")": "parenright",
    "*": "asterisk", "+": "plus", ",": "comma", "-": "minus", ".": "period", "/": "slash",
    ":": "colon", ";": "semicolon", "<": "less", "=": "equal", ">": "greater", "?": "question",
    "@": "at", "[": "bracketleft", "\\": "backslash", "]": "bracketright", "^": "asciicircum",
    "_": "underscore", "`": "grave", "{": "braceleft", "|": "bar", "}": "braceright",
    "~": "asciitilde",
}
_PUNCT_NAME_TO_CHAR = {v: k for k, v in _PUNCT.items()}

#: control characters that type as keys
_CONTROL_CHARS: dict[str, str] = {"\n": "Return", "\r": "Return", "\t": "Tab", "\b": "BackSpace"}

#: shifted character (US layout) -> unshifted base key name
_US_SHIFTED: dict[str, str] = {
    "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9",
    ")": "0", "_": "minus", "+": "equal", "{": "bracketleft", "}": "bracketright",
    "|": "backslash", ":": "semicolon", '"': "apostrophe", "~": "grave", "<": "comma",
    ">": "period", "?": "slash",
}

#: The canonical names of the modifier keys.
MODIFIERS: frozenset[str] = frozenset({
    "Control_L", "Control_R", "Shift_L", "Shift_R", "Alt_L", "Alt_R", "Super_L", "Super_R",
})

#: browser ``KeyboardEvent.key`` of a non-character key -> canonical name: the named keys
#: are called by their ``code``; a modifier's ``key`` does not say which side (left here)
BROWSER_KEYS: dict[str, str] = {
    **{web: name for name, web in WEB_CODE.items()
       if len(name) > 1 and name not in _PUNCT.values() and name not in MODIFIERS
       and not web.startswith("Numpad")},
    **{web.removesuffix("Left"): name for name, web in WEB_CODE.items()
       if name in MODIFIERS and web.endswith("Left")},
    "Meta": "Super_L", " ": "space",
}

#: every canonical name kvmrpa knows without a driver's help
CANONICAL_KEYS: frozenset[str] = frozenset(USB_USAGE) | frozenset(_PUNCT.values()) | frozenset(
    chr(c) for c in range(ord("A"), ord("Z") + 1))


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def _build_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    # canonical X names and PiKVM/web codes, case-insensitive
    for canon in CANONICAL_KEYS:
        if len(canon) > 1:
            aliases[_squash(canon)] = canon
    for canon, web in WEB_CODE.items():
        aliases.setdefault(_squash(web), canon)
    groups = {
        "Return": "enter return cr ret newline",
        "KP_Enter": "kpenter numpadenter",
        "Escape": "esc escape",
        "space": "space spacebar",
        "BackSpace": "backspace bs bksp back",
        "Delete": "del delete",
        "Insert": "ins insert",
        "Page_Up": "pgup pageup prior",
        "Page_Down": "pgdn pgdown pagedown next",
        "Up": "up arrowup uparrow",
        "Down": "down arrowdown downarrow",
        "Left": "left arrowleft leftarrow",
        "Right": "right arrowright rightarrow",
        "Control_L": "ctrl control lctrl leftctrl ctrll controll controlleft leftcontrol",
        "Control_R": "rctrl rightctrl ctrlr controlr controlright rightcontrol",
        "Shift_L": "shift lshift leftshift shiftl shiftleft",
        "Shift_R": "rshift rightshift shiftr shiftright",
        "Alt_L": "alt lalt leftalt altl altleft option opt",
        "Alt_R": "ralt rightalt altr altright altgr",
        "Super_L": "win windows super cmd command meta gui lwin leftwin superl metaleft lcmd",
        "Super_R": "rwin rightwin superr metaright rcmd",
        "Caps_Lock": "caps capslock",
        "Num_Lock": "numlock",
        "Scroll_Lock": "scrolllock scrlk",
        "Print": "print printscreen prtsc prtscr prntscrn sysrq",
        "Pause": "pause break",
        "Menu": "menu apps application contextmenu",
    }
    for canon, words in groups.items():
        for w in words.split():
            aliases[w] = canon
    return aliases


_ALIASES = _build_aliases()


def _driver_name(driver: Any) -> str:
    return getattr(driver, "display_url", None) or "input"


def _unknown(name: str, driver: Any, action: str) -> UnsupportedActionError:
    pool = sorted({*(k for k in CANONICAL_KEYS if len(k) > 1), *_ALIASES})
    close = difflib.get_close_matches(_squash(name), pool, n=3, cutoff=0.7)
    hint = f"; did you mean {', '.join(_ALIASES.get(c, c) for c in close)}?" if close else ""
    return UnsupportedActionError(
        f"{_driver_name(driver)}: {action}: unknown key name {name!r}{hint}")


def char_keysym(ch: str) -> str:
    """The X keysym name of one character: ``a``, ``plus``, ``space``, ``U4E2D``."""
    if len(ch) != 1:
        raise ValueError(f"expected one character, got {ch!r}")
    if ch in _CONTROL_CHARS:
        return _CONTROL_CHARS[ch]
    if ch in _PUNCT:
        return _PUNCT[ch]
    if ch.isascii() and ch.isalnum():
        return ch
    try:  # named Latin-1 and other keysyms (eacute, Cyrillic_a, …) from the keysym table
        from keysymdef import keysymdef
    except ImportError:  # pragma: no cover - keysymdef comes with asyncvnc
        keysymdef = []
    for kname, _code, char in keysymdef:
        if char == ord(ch):
            return kname
    return f"U{ord(ch):04X}"


def normalize_key(name: str, driver: Any = None, action: str = "key") -> str:
    """The canonical X keysym name for ``name``; checks the driver supports it.

    Raises :class:`UnsupportedActionError` naming the key for unknown names and for
    keys the driver cannot send.
    """
    if not isinstance(name, str) or (not name.strip() and name != " "):
        raise UnsupportedActionError(f"{_driver_name(driver)}: {action}: empty key name {name!r}")
    canon: str | None = None
    if name in CANONICAL_KEYS:
        canon = name
    elif len(name) == 1:
        canon = char_keysym(name)
    else:
        stripped = name.strip()
        canon = _ALIASES.get(_squash(stripped))
        if canon is None and len(stripped) == 1:
            canon = char_keysym(stripped)
        if canon is None and re.fullmatch(r"(?i)U\+?[0-9A-F]{4,6}", stripped):
            canon = "U" + stripped.upper().lstrip("U+").zfill(4)
        if canon is None:
            extra = getattr(driver, "extra_key", None)
            canon = extra(stripped) if extra is not None else None
        if canon is None:
            raise _unknown(name, driver, action)
    supports = getattr(driver, "supports_key", None)
    if supports is not None and not supports(canon):
        raise UnsupportedActionError(
            f"{_driver_name(driver)}: {action}: key {name!r} ({canon}) cannot be sent by this driver")
    return canon


def _split_combo(combo: str) -> list[str]:
    text = combo.strip()
    if text == "+":
        return ["+"]
    tail: list[str] = []
    if text.endswith("++"):
        text, tail = text[:-2], ["+"]
    parts = [p.strip() for p in text.split("+")] if text else []
    return [*parts, *tail]


def parse_hotkey(names: Iterable[str] | str, driver: Any = None) -> list[str]:
    """Canonical keys of a combination: ``"ctrl+shift+a"``, ``("ctrl", "a")``.

    Letters are lower-cased (``ctrl+A`` is Ctrl+A). Every part is checked; unknown or
    unsupported names raise :class:`UnsupportedActionError` naming them.
    """
    if isinstance(names, str):
        names = [names]
    parts: list[str] = []
    for n in names:
        if not isinstance(n, str):
            raise UnsupportedActionError(f"{_driver_name(driver)}: hotkey: not a key name: {n!r}")
        split = _split_combo(n)
        if not split or any(p == "" for p in split):
            raise UnsupportedActionError(
                f"{_driver_name(driver)}: hotkey: malformed combination {n!r}")
        parts.extend(split)
    if not parts:
        raise UnsupportedActionError(f"{_driver_name(driver)}: hotkey: no keys given")
    keys: list[str] = []
    for p in parts:
        p = p.lower() if len(p) == 1 and p.isalpha() and p.isascii() else p
        k = normalize_key(p, driver, action="hotkey")
        if k not in keys:
            keys.append(k)
    return keys


def keys_for_char(ch: str, driver: Any = None) -> tuple[str, bool]:
    """The US-layout key for a character and whether Shift is held: ``'A' -> ('a', True)``.

    Raises :class:`UnsupportedActionError` for characters a US keyboard cannot type.
    """
    if ch in _CONTROL_CHARS:
        return _CONTROL_CHARS[ch], False
    if len(ch) == 1 and ch.isascii():
        if ch.islower() or ch.isdigit():
            return ch, False
        if ch.isupper():
            return ch.lower(), True
        if ch in _US_SHIFTED:
            return _US_SHIFTED[ch], True
        if ch in _PUNCT:
            return _PUNCT[ch], False
    raise UnsupportedActionError(
        f"{_driver_name(driver)}: type: character {ch!r} (U+{ord(ch[:1] or ' '):04X}) "
        "cannot be typed on a US keyboard layout")


def keysym_char(name: str) -> str | None:
    """The character a canonical key name types, if any (``plus -> '+'``)."""
    if len(name) == 1:
        return name
    return _PUNCT_NAME_TO_CHAR.get(name)


#: unshifted character -> the character Shift gives on a US layout (``1 -> !``)
_SHIFT_OF: dict[str, str] = {keysym_char(base) or base: shifted
                             for shifted, base in _US_SHIFTED.items()}


def key_char(name: str, shift: bool = False) -> str | None:
    """The character a canonical key types on a US layout, with Shift held when
    ``shift`` (``a -> A``, ``1 -> !``, ``KP_1 -> 1``); ``None`` for keys that type none."""
    if name.startswith("KP_") and name[3:].isdigit():
        return name[3:]
    ch = keysym_char(name)
    if ch is None or not ch.isprintable():
        return None
    if not shift:
        return ch
    return ch.upper() if ch.isalpha() else _SHIFT_OF.get(ch, ch)


def browser_key(key: str) -> str | None:
    """The canonical name of a browser ``KeyboardEvent.key`` (``PageUp -> Page_Up``,
    ``Control -> Control_L``, ``a -> a``); ``None`` for keys kvmrpa does not send."""
    if key in BROWSER_KEYS:
        return BROWSER_KEYS[key]
    if len(key) == 1:
        return key
    if key.startswith("F") and key[1:].isdigit():
        return key
    return None


def check_typable(text: str, driver: Any = None, secret: bool = False) -> None:
    """Refuse, before anything is sent, text with characters the driver cannot type.

    The error names every offending character (with its code point) and the driver;
    for ``secret`` text (a password) it only counts them.
    """
    if not isinstance(text, str):
        raise UnsupportedActionError(f"{_driver_name(driver)}: type: text must be a string, got {type(text).__name__}")
    can_type = getattr(driver, "can_type", None)
    bad: list[str] = []
    for ch in dict.fromkeys(text):
        ok = can_type(ch) if can_type is not None else _us_typable(ch)
        if not ok:
            bad.append(ch)
    if bad:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in bad[:20])
        more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
        if secret:
            shown, more = f"{len(bad)} distinct character(s) of the secret text", ""
        caps = getattr(driver, "capabilities", None)
        why = ("this driver types only US-layout ASCII"
               if caps is not None and not caps.unicode_text else "the driver cannot send them")
        raise UnsupportedActionError(
            f"{_driver_name(driver)}: type: cannot type {shown}{more}: {why}")


def _us_typable(ch: str) -> bool:
    try:
        keys_for_char(ch)
    except UnsupportedActionError:
        return False
    return True

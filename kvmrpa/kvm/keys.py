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
from ._hid import USB_USAGE

__all__ = [
    "CANONICAL_KEYS",
    "MODIFIERS",
    "char_keysym",
    "check_typable",
    "keys_for_char",
    "normalize_key",
    "parse_hotkey",
]

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

MODIFIERS: frozenset[str] = frozenset({
    "Control_L", "Control_R", "Shift_L", "Shift_R", "Alt_L", "Alt_R", "Super_L", "Super_R",
})

#: every canonical name kvmrpa knows without a driver's help
CANONICAL_KEYS: frozenset[str] = frozenset(USB_USAGE) | frozenset(_PUNCT.values()) | frozenset(
    chr(c) for c in range(ord("A"), ord("Z") + 1))


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def _build_aliases() -> dict[str, str]:
    from ._hid import WEB_CODE

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

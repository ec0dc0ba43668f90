"""Key names: aliases to canonical X keysym names, hotkeys, US-layout typing, errors."""

from __future__ import annotations

import pytest

from kvmrpa import UnsupportedActionError
from kvmrpa.kvm import check_typable, keys_for_char, normalize_key, parse_hotkey
from kvmrpa.kvm._ch9329 import Ch9329Driver
from kvmrpa.kvm._pikvm import PiKvmDriver
from kvmrpa.kvm._vnc import VncDriver


@pytest.mark.parametrize(("name", "canonical"), [
    ("Return", "Return"), ("enter", "Return"), ("ENTER", "Return"), ("Enter", "Return"),
    ("esc", "Escape"), ("Escape", "Escape"), ("ctrl", "Control_L"), ("Control_L", "Control_L"),
    ("rctrl", "Control_R"), ("alt", "Alt_L"), ("AltGr", "Alt_R"), ("shift", "Shift_L"),
    ("win", "Super_L"), ("cmd", "Super_L"), ("Meta", "Super_L"), ("tab", "Tab"),
    ("space", "space"), (" ", "space"), ("backspace", "BackSpace"), ("del", "Delete"),
    ("PgUp", "Page_Up"), ("page_down", "Page_Down"), ("Prior", "Page_Up"),
    ("up", "Up"), ("ArrowLeft", "Left"), ("f1", "F1"), ("F12", "F12"), ("f24", "F24"),
    ("KeyA", "a"), ("Digit7", "7"), ("ControlLeft", "Control_L"), ("NumpadEnter", "KP_Enter"),
    ("a", "a"), ("A", "A"), ("1", "1"), ("+", "plus"), ("-", "minus"), ("/", "slash"),
    ("plus", "plus"), ("PrintScreen", "Print"), ("menu", "Menu"), ("caps lock", "Caps_Lock"),
])
def test_aliases_become_canonical_x_names(name: str, canonical: str) -> None:
    assert normalize_key(name) == canonical


def test_unknown_key_names_the_key_and_suggests() -> None:
    with pytest.raises(UnsupportedActionError) as err:
        normalize_key("entr")
    assert "'entr'" in str(err.value)
    assert "Return" in str(err.value)
    with pytest.raises(UnsupportedActionError, match="empty key name"):
        normalize_key("")
    with pytest.raises(UnsupportedActionError, match="'NoSuchKey'"):
        normalize_key("NoSuchKey")


def test_hotkey_parsing() -> None:
    assert parse_hotkey("ctrl+shift+a") == ["Control_L", "Shift_L", "a"]
    assert parse_hotkey(("ctrl", "alt", "Delete")) == ["Control_L", "Alt_L", "Delete"]
    assert parse_hotkey("Ctrl+A") == ["Control_L", "a"]  # Ctrl+A, not Ctrl+Shift+A
    assert parse_hotkey("ctrl++") == ["Control_L", "plus"]
    assert parse_hotkey("ctrl + c") == ["Control_L", "c"]
    assert parse_hotkey("ctrl+ctrl+c") == ["Control_L", "c"]
    for bad in ("ctrl+", "+a", "", "ctrl++a+"):
        with pytest.raises(UnsupportedActionError):
            parse_hotkey(bad)
    with pytest.raises(UnsupportedActionError, match="'foo'"):
        parse_hotkey("ctrl+foo")


def test_us_layout_characters() -> None:
    assert keys_for_char("a") == ("a", False)
    assert keys_for_char("A") == ("a", True)
    assert keys_for_char("!") == ("1", True)
    assert keys_for_char("?") == ("slash", True)
    assert keys_for_char(" ") == ("space", False)
    assert keys_for_char("\n") == ("Return", False)
    assert keys_for_char("'") == ("apostrophe", False)
    with pytest.raises(UnsupportedActionError, match="U\\+4E2D"):
        keys_for_char("中")


def test_check_typable_names_every_bad_character_and_the_driver() -> None:
    drv = PiKvmDriver("pikvm+http://admin:pw@127.0.0.1:1")
    check_typable("Hello, world!\n", drv)
    with pytest.raises(UnsupportedActionError) as err:
        check_typable("ok 中文 é", drv)
    msg = str(err.value)
    assert "pikvm+http://admin:***@127.0.0.1:1" in msg and "pw" not in msg.replace("pikvm", "")
    for part in ("'中'", "'文'", "'é'", "U+4E2D", "U+00E9"):
        assert part in msg


def test_driver_specific_key_support() -> None:
    pikvm = PiKvmDriver("pikvm+http://127.0.0.1:1")
    ch = Ch9329Driver("ch9329:///dev/null")
    vnc = VncDriver("vnc://127.0.0.1:1")
    # F13 is a USB key (CH9329) but not in PiKVM's web key names
    assert normalize_key("F13", ch) == "F13"
    with pytest.raises(UnsupportedActionError, match="cannot be sent"):
        normalize_key("F13", pikvm)
    # any X keysym name works over VNC, not over HID
    assert normalize_key("KP_Home", vnc) == "KP_Home"
    with pytest.raises(UnsupportedActionError, match="KP_Home"):
        normalize_key("KP_Home", pikvm)
    # shifted characters are keys on every driver
    assert normalize_key("A", pikvm) == "A"
    assert normalize_key("@", ch) == "at"
    # non-Latin characters: VNC sends Unicode keysyms, HID drivers refuse
    assert normalize_key("中", vnc) == "U4E2D"
    with pytest.raises(UnsupportedActionError):
        normalize_key("中", ch)


def test_vnc_unicode_capability_switch() -> None:
    check_typable("测试3", VncDriver("vnc://127.0.0.1:1"))
    with pytest.raises(UnsupportedActionError, match="'测'"):
        check_typable("测试3", VncDriver("vnc://127.0.0.1:1?unicode=0"))
    check_typable("café", VncDriver("vnc://127.0.0.1:1?unicode=0"))  # Latin-1 keysyms

"""USB HID keyboard reports for the hardware drivers (PiKVM, CH9329).

The key table itself (canonical name, web ``KeyboardEvent.code``, USB HID usage) is the
one in :mod:`kvmrpa.kvm.keys`; this module adds what only a HID report needs.
Modifiers are not usages in a boot report but bits of its first byte:
:data:`MODIFIER_BITS`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._errors import InputError
from . import keys

__all__ = ["MODIFIER_BITS", "USB_USAGE", "WEB_CODE", "in_table"]

#: canonical name -> bit of the modifier byte of a boot keyboard report
MODIFIER_BITS: dict[str, int] = {
    "Control_L": 0x01, "Shift_L": 0x02, "Alt_L": 0x04, "Super_L": 0x08,
    "Control_R": 0x10, "Shift_R": 0x20, "Alt_R": 0x40, "Super_R": 0x80,
}

#: canonical name -> USB HID usage ID (keyboard page) and web ``KeyboardEvent.code``,
#: from the one key table in :mod:`kvmrpa.kvm.keys`
USB_USAGE = keys.USB_USAGE
WEB_CODE = keys.WEB_CODE


def in_table(key: str, table: Mapping[str, object]) -> bool:
    """Whether the canonical key ``key`` can be sent with ``table`` (:data:`WEB_CODE` or
    :data:`USB_USAGE`): directly, or as a shifted character of a key it has (``A``,
    ``plus``)."""
    if key in table:
        return True
    ch = keys.keysym_char(key)
    if ch is None:
        return False
    try:
        base, _shift = keys.keys_for_char(ch)
    except InputError:
        return False
    return base in table

"""Input drivers: keyboard and mouse injection into a target, in frame pixels.

``open_driver(url, frame_size=None)`` returns the shared driver for a target from the
hub (``release_driver`` gives it back); schemes: ``vnc://``, ``pikvm+https://`` /
``pikvm+http://``, ``ch9329://``, ``http+keys://`` / ``https+keys://``, ``dryrun://``,
and any registered with ``register_driver(scheme, factory)`` or declared in the
entry-point group ``kvmrpa.drivers`` (``sim://`` by :mod:`kvmrpa.sim`);
``with use_driver(url) as drv:`` releases it when the block ends. Key names are
canonical X keysym names; see :mod:`kvmrpa.kvm.keys`.
"""

from ._driver import ActionRecord, Calibration, DriverCapabilities, InputDriver, MouseButton
from ._gate import InputGate, bind_gate, current_gate, unbind_gate
from ._hub import (
    DRIVERS,
    DriverHub,
    get_hub,
    open_driver,
    parse_size,
    register_driver,
    registered_schemes,
    release_driver,
    unregister_driver,
    use_driver,
)
from .keys import check_typable, keys_for_char, normalize_key, parse_hotkey

__all__ = [
    "DRIVERS",
    "ActionRecord",
    "Calibration",
    "DriverCapabilities",
    "DriverHub",
    "InputDriver",
    "InputGate",
    "MouseButton",
    "bind_gate",
    "check_typable",
    "current_gate",
    "get_hub",
    "keys_for_char",
    "normalize_key",
    "open_driver",
    "parse_hotkey",
    "parse_size",
    "register_driver",
    "registered_schemes",
    "release_driver",
    "unbind_gate",
    "unregister_driver",
    "use_driver",
]

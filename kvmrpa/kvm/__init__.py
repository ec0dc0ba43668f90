"""Input drivers: keyboard and mouse injection into a target, in frame pixels.

``open_driver(url, frame_size=None)`` returns the shared driver for a target from the
hub (``release_driver`` gives it back); schemes: ``vnc://``, ``pikvm+https://`` /
``pikvm+http://``, ``ch9329://``, ``http+keys://`` / ``https+keys://``, ``dryrun://``,
and any registered with ``register_driver(scheme, factory)`` (``sim://`` by
:mod:`kvmrpa.sim`). Key names are canonical X keysym names; see :mod:`kvmrpa.kvm.keys`.
"""

from ._driver import ActionRecord, Calibration, DriverCapabilities, InputDriver, MouseButton
from ._hub import (
    DriverHub,
    get_hub,
    open_driver,
    parse_size,
    register_driver,
    registered_schemes,
    release_driver,
)
from .keys import check_typable, keys_for_char, normalize_key, parse_hotkey

__all__ = [
    "ActionRecord",
    "Calibration",
    "DriverCapabilities",
    "DriverHub",
    "InputDriver",
    "MouseButton",
    "check_typable",
    "get_hub",
    "keys_for_char",
    "normalize_key",
    "open_driver",
    "parse_hotkey",
    "parse_size",
    "register_driver",
    "registered_schemes",
    "release_driver",
]

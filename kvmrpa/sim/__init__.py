"""The simulated desktop: a ``sim://`` video source and input driver with no hardware.

A small desktop (windows, dialogs, labels, buttons with a pressed look, text inputs,
check boxes, a taskbar with a clock) rendered with real CJK fonts, reacting to the same
pointer and keyboard primitives a real target gets. ``sim://<scenario>`` names one
shared desktop as a source (:class:`SimSource`, frames only) and as an input driver
(:class:`SimDriver`). Scenarios: ``desktop`` (default), ``scenario1``, ``scenario2``,
``scenario3`` (see :mod:`kvmrpa.sim._scenarios`). Importing this package registers the
``sim`` scheme with the capture and kvm hubs.

:func:`get_desktop` and :meth:`SimDesktop.state` are for tests of the simulator itself;
flows only ever get frames.
"""

from __future__ import annotations

import logging

from ._desktop import DesktopOptions, SimDesktop
from ._endpoints import SimDriver, SimSource
from ._flows import EXAMPLE_FLOWS, flow_path
from ._fonts import find_font, load_font
from ._realism import Realism
from ._registry import get_desktop, parse_sim_url, sim_key
from ._scenarios import scenario_names

__all__ = [
    "EXAMPLE_FLOWS",
    "DesktopOptions",
    "Realism",
    "SimDesktop",
    "SimDriver",
    "SimSource",
    "find_font",
    "flow_path",
    "get_desktop",
    "load_font",
    "parse_sim_url",
    "register",
    "scenario_names",
    "sim_key",
]

log = logging.getLogger("kvmrpa.sim")


def register() -> None:
    """Register the ``sim`` scheme with the source and driver hubs (done on import)."""
    try:
        from ..capture import register_source
    except ImportError:  # the hub is not there (partial install): sources still construct
        log.debug("kvmrpa.capture has no register_source; sim:// source not registered")
    else:
        register_source("sim", SimSource)
    try:
        from ..kvm import register_driver
    except ImportError:
        log.debug("kvmrpa.kvm has no register_driver; sim:// driver not registered")
    else:
        register_driver("sim", SimDriver)


register()

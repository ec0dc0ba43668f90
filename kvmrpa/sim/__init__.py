"""The simulated desktop: a ``sim://`` video source and input driver with no hardware.

A small desktop (windows, dialogs, labels, buttons with a pressed look, text inputs,
check boxes, a taskbar with a clock) rendered with real CJK fonts, reacting to the same
pointer and keyboard primitives a real target gets. ``sim://<scenario>`` names one
shared desktop as a source (:class:`SimSource`, frames only) and as an input driver
(:class:`SimDriver`). Scenarios: ``desktop`` (default), ``scenario1``, ``scenario2``,
``scenario3`` (see :mod:`kvmrpa.sim._scenarios`). The ``sim`` scheme reaches the
capture and kvm hubs through the entry points this package declares
(``kvmrpa.sources`` and ``kvmrpa.drivers`` in ``pyproject.toml``).

:func:`reset` puts the desktop a URL addresses back to how it was created (the notebooks
call it first, so that "Run all" a second time sees the same screen as the first).
:func:`get_desktop` and :meth:`SimDesktop.state` are for tests of the simulator itself;
flows only ever get frames.
"""

from __future__ import annotations

from ._desktop import DesktopOptions, SimDesktop
from ._endpoints import SimDriver, SimSource
from ._flows import EXAMPLE_FLOWS, flow_path
from ._fonts import find_font, load_font
from ._realism import Realism
from ._registry import get_desktop, parse_sim_url, reset, sim_key
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
    "reset",
    "scenario_names",
    "sim_key",
]

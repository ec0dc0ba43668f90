"""Fleets: one flow on many KVM targets, run on Dask distributed (``kvmrpa[fleet]``).

* :class:`Target`, :func:`load_targets` — the targets file (TOML): id, source, input,
  labels, variables, secrets as ``${env:NAME}``;
* :func:`check_targets` — probe every target's source and input at once;
* :class:`Fleet` — ``Fleet(targets).run(flow)`` runs the flow on every selected target,
  each pinned to one Dask worker for its whole run, and returns a table;
  :meth:`Fleet.execute` returns the :class:`FleetReport`; :meth:`Fleet.stop` stops
  every target, or some;
* :class:`FleetBoard` — the fleet dashboard's model (a grid of targets: state, last
  outcome, pass rate, thumbnails encoded on each target's worker; start/stop), on a
  :class:`DaskBackend`; the Panel page over it is ``kvmrpa.widgets.FleetDashboard``.

Importing this package does not import Dask; a run does (a one-line
:class:`~kvmrpa.FleetError` when it is not installed).
"""

from __future__ import annotations

from ._board import DaskBackend, FleetBoard
from ._check import check_target, check_targets
from ._fleet import Fleet, FleetReport, TargetResult
from ._targets import Target, load_targets, parse_selector, parse_targets, select

__all__ = [
    "DaskBackend",
    "Fleet",
    "FleetBoard",
    "FleetReport",
    "Target",
    "TargetResult",
    "check_target",
    "check_targets",
    "load_targets",
    "parse_selector",
    "parse_targets",
    "select",
]

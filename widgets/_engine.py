"""Where the widgets find the engine: one place, imported lazily.

The widgets depend on :mod:`kvmrpa.engine` (Flow, FlowRun, FlowManager); importing it
here, on first use, keeps ``import kvmrpa.widgets`` cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["flow_class", "flow_manager_class", "flow_run_class"]


def flow_class() -> Any:
    """:class:`kvmrpa.engine.Flow`."""
    from kvmrpa.engine import Flow

    return Flow


def flow_run_class() -> Any:
    """:class:`kvmrpa.engine.FlowRun`."""
    from kvmrpa.engine import FlowRun

    return FlowRun


def flow_manager_class() -> Any:
    """:class:`kvmrpa.engine.FlowManager`."""
    from kvmrpa.engine import FlowManager

    return FlowManager

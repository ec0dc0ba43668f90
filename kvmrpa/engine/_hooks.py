"""The execution-gate protocol: how a debugger (or any controller) takes part in
scheduling without reaching into the executor.

A :class:`FlowRun` asks its attached gate one question, at the moment a node becomes
ready: :meth:`ExecutionGate.hold`. A held node waits in :attr:`FlowRun.held` until the
gate lets it go through the run's public gate API:

* :meth:`FlowRun.offer_held` — ask the gate again about every held node (those it no
  longer holds start), in a given order;
* :meth:`FlowRun.start_held` — start some held nodes regardless;
* :meth:`FlowRun.set_paused` / :meth:`FlowRun.set_resumed` — the run's status, the
  ``paused`` / ``resumed`` events and its input gate (a paused run sends no input);
* :meth:`FlowRun.in_flight`, :attr:`FlowRun.settled`, :meth:`FlowRun.wait_until`,
  :meth:`FlowRun.notify`, :meth:`FlowRun.on_loop` — observing the run and waiting;
* :meth:`FlowRun.run_node_again`, :meth:`FlowRun.run_again_from`,
  :meth:`FlowRun.refresh_node` — re-runs after an edit.

Every hook and call happens on the runtime loop. With no gate attached the executor's
check is a single ``is None``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ExecutionGate"]


@runtime_checkable
class ExecutionGate(Protocol):
    """What a run asks the controller attached to it (see the module docstring)."""

    def hold(self, node_id: str) -> bool:
        """``node_id`` is ready to start: return True to hold it (it then waits in
        :attr:`FlowRun.held`), False to let it start now. Called on the runtime loop."""
        ...

    @property
    def paused(self) -> bool:
        """Whether the controller holds the run paused."""
        ...

    @property
    def paused_at(self) -> str | None:
        """The node the run is paused before (``None``: a plain pause, or not paused)."""
        ...

"""Recording a run: its run record (header, events, actions, errors, the stop and what it
released) and each pass's outcome in words.

:class:`RunRecorder` is what the executor writes through; it owns the run's
:class:`~kvmrpa.engine._records.RunRecord` (the writer thread belongs to the run store,
so writing never blocks the loop nor needs a pool thread) and, when ``store.frames`` is on,
the run's :class:`~kvmrpa.engine._evidence.RunEvidence` (the frames vision nodes decided
on, for reports and replay). :func:`pass_outcome` is the
short, human summary of a pass (``ok · 2 actions``) carried by ``pass_finished`` /
``flow_finished`` events, the run's result and so the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._settings import get_settings
from .._urls import redact_url
from ._events import Event, NodeStatus
from ._evidence import RunEvidence
from ._records import RunRecord, get_run_store

if TYPE_CHECKING:  # pragma: no cover
    from . import NodeRecord  # the package's name: the executor imports this module
    from ._scheduler import Graph

__all__ = ["RunRecorder", "pass_outcome"]

DONE, SKIPPED, STOPPED = NodeStatus.DONE, NodeStatus.SKIPPED, NodeStatus.STOPPED


class RunRecorder:
    """The run record of one run (every method is a no-op without a record)."""

    __slots__ = ("_clock", "evidence", "record")

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self.record: RunRecord | None = None
        #: What vision nodes decided on (``None``: no record, or ``store.frames`` off).
        self.evidence: RunEvidence | None = None

    @property
    def path(self) -> str | None:
        return str(self.record.path) if self.record else None

    def open(self, run_id: str, flow: str, started: float, passes: int, source: str | None,
             input: str | None, nodes: int, graph: Any = None) -> None:
        self.record = get_run_store().open(run_id, flow)
        head: dict[str, Any] = {
            "kind": "run", "run_id": run_id, "flow": flow, "started": started,
            "passes": passes, "pid": os.getpid(), "host": socket.gethostname(),
            "source": redact_url(source) if source else None,
            "input": redact_url(input) if input else None, "nodes": nodes}
        if graph is not None:  # the shape of the flow (no parameters: they may hold secrets)
            head["graph"] = {
                "nodes": [{"id": fn.id, "type": fn.type, "label": fn.label[:200],
                           "position": list(fn.position)}
                          for fn in list(graph.nodes.values())[:2000]],
                "edges": [e.to_dict() for e in graph.edges[:5000]]}
        self.record.write(head)

    def watch(self, t0: float, types: Mapping[str, str]) -> frozenset[str]:
        """Start keeping evidence of the nodes ``types`` names (id → type); returns the
        ids watched (none without a record or with ``store.frames`` off)."""
        store = get_settings().store
        if self.record is None or not store.frames:
            return frozenset()
        self.evidence = RunEvidence(self.record, t0, types, store.record_detail_passes,
                                    store.frames_max_bytes, store.frame_quality)
        return self.evidence.watched

    def event(self, event: Event) -> None:
        """The event bus's sink: every event goes to the record."""
        if self.record is not None:
            self.record.write(event.as_dict())

    def action(self, data: Mapping[str, Any]) -> None:
        if self.record is not None:
            self.record.write({"kind": "action", "t": self._clock(), **data})

    def error(self, pass_index: int, node: str | None, error: str,
              cause: BaseException | None) -> None:
        if self.record is not None:
            self.record.write({"kind": "error", "t": self._clock(), "pass_index": pass_index,
                               "node": node, "error": error,
                               "cause": repr(cause) if cause else None})

    def stop_requested(self, reason: str, wall: float | None) -> None:
        """The moment input was cut (``wall``: when the input gate closed)."""
        if self.record is not None:
            self.record.write({"kind": "stop_requested", "t": self._clock(), "reason": reason,
                               "wall": wall})

    def input_released(self, released: list[str], still_held: list[str], refused: int) -> None:
        if self.record is not None:
            self.record.write({"kind": "input_released", "t": self._clock(),
                               "released": released, "still_held": still_held,
                               "refused": refused})

    async def aclose(self, timeout: float = 5.0) -> None:
        """Flush and close, waiting on the loop (never on a pool thread, which may all be
        stuck in nodes)."""
        if self.record is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.record.aclose(), timeout)


def pass_outcome(status: str, graph: Graph, nodes: Mapping[str, NodeRecord], actions: int,
                 error: BaseException | None = None) -> str:
    """A pass in a few words: ``ok · 2 actions``, ``ok · nothing done (trigger → false;
    3 skipped)``, ``ok · no actions (3 nodes done)``, ``failed · node read: …``,
    ``stopped · click cut; 1 action``."""
    acted = f"{actions} action{'s' if actions != 1 else ''}"
    if status == "failed":
        why = str(error) if error is not None else "a node failed"
        why = why.split(": ", 1)[1] if why.startswith("flow ") and ": " in why else why
        return f"failed · {_clip(why)}"
    if status == "stopped":
        cut = [nid for nid in graph.order if nodes[nid].status == STOPPED]
        head = f"{', '.join(cut[:3])} cut; " if cut else ""
        return f"stopped · {head}{acted}"
    if actions:
        return f"ok · {acted}"
    skipped = [nid for nid in graph.order if nodes[nid].status == SKIPPED]
    if skipped:
        turns = []
        for nid in graph.order:
            rec = nodes[nid]
            if rec.status == DONE and rec.branch is not None and any(
                    nodes[t].status == SKIPPED for t, _b in graph.out[nid]):
                turns.append(f"{nid} → {rec.branch}")
        why = "; ".join([*turns[:3], f"{len(skipped)} skipped"])
        return f"ok · nothing done ({why})"
    done = sum(1 for nid in graph.order if nodes[nid].status == DONE)
    return f"ok · no actions ({done} node{'s' if done != 1 else ''} done)"


def _clip(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

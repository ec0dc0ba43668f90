"""The pass scheduler: which nodes of a flow are ready, resolved or skipped — pure and
synchronous (no asyncio, no threads), so it can be tested and reasoned about alone.

:class:`Graph` is a flow's structure compiled once per run. :class:`Scheduler` is one
pass's bookkeeping over it:

* a node is **ready** when every incoming edge is resolved;
* an edge is *live* when its source finished (``done``) and the edge has no branch label
  or the label the source returned; an ``error`` edge is live when its source failed;
  a failed node whose policy is ``continue`` keeps its unlabelled edges live; any other
  edge resolves as *skipped*;
* a node whose incoming edges are all skipped is **skipped** and propagates the skip;
  a **join** becomes ready when its last input resolves, with the live ones as inputs.

The executor tells the scheduler what happened to a node (:meth:`Scheduler.done`,
:meth:`Scheduler.failed`) and gets back the nodes that became ready and those that were
skipped, in a deterministic order (edge order, depth first along skips).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

from ._events import NodeStatus
from ._flow import Flow

__all__ = ["Graph", "Scheduler"]

DONE, FAILED, SKIPPED = NodeStatus.DONE, NodeStatus.FAILED, NodeStatus.SKIPPED

#: ``remaining`` of a node that must never become ready by itself (a re-run reuses it).
_NEVER = 1 << 60


class Graph:
    """The structure of a flow, compiled once per run."""

    __slots__ = ("blocking", "indeg", "order", "out", "policy", "preds", "types")

    def __init__(self, flow: Flow) -> None:
        self.order: list[str] = list(flow.nodes)
        self.types = {nid: fn.type for nid, fn in flow.nodes.items()}
        self.blocking = {nid: fn.node.is_blocking() for nid, fn in flow.nodes.items()}
        #: (attempts, timeout, retry_delay, continue_on_error, has_env_refs) per node,
        #: read once: param attribute access is too slow for the hot path.
        self.policy: dict[str, tuple[int, float, float, bool, bool]] = {}
        for nid in self.order:
            self.refresh(flow, nid)
        self.preds: dict[str, list[str]] = {nid: [] for nid in self.order}
        self.out: dict[str, list[tuple[str, str | None]]] = {nid: [] for nid in self.order}
        self.indeg: dict[str, int] = dict.fromkeys(self.order, 0)
        for e in flow.edges:
            self.out[e.source].append((e.target, e.branch))
            self.indeg[e.target] += 1
            if e.source not in self.preds[e.target]:
                self.preds[e.target].append(e.source)

    def refresh(self, flow: Flow, nid: str) -> None:
        """Re-read a node's execution policy (after its parameters changed)."""
        node = flow.nodes[nid].node
        self.policy[nid] = (node.retries + 1, float(node.timeout), float(node.retry_delay),
                            node.on_error == "continue", bool(node.env_refs()))

    def handled(self, nid: str) -> bool:
        """Whether a failure of ``nid`` is handled (policy ``continue`` or an ``error`` edge)."""
        return self.policy[nid][3] or any(b == "error" for _t, b in self.out[nid])

    def descendants(self, start: str) -> set[str]:
        """``start`` and every node reachable from it."""
        seen = {start}
        stack = [start]
        while stack:
            for target, _b in self.out[stack.pop()]:
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen

    def topological(self) -> list[str]:
        indeg = dict(self.indeg)
        queue = collections.deque(n for n in self.order if indeg[n] == 0)
        order = []
        while queue:
            n = queue.popleft()
            order.append(n)
            for t, _b in self.out[n]:
                indeg[t] -= 1
                if indeg[t] == 0:
                    queue.append(t)
        return order


class Scheduler:
    """One pass over a :class:`Graph`: readiness, resolution, skips and joins."""

    __slots__ = ("error", "error_in", "graph", "live", "outputs", "outstanding", "remaining")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.remaining = dict(graph.indeg)
        self.live = dict.fromkeys(graph.order, 0)
        #: The failure each node received over an ``error`` (or ``continue``) edge.
        self.error_in: dict[str, BaseException] = {}
        #: Outputs of the nodes resolved so far (None for a handled failure).
        self.outputs: dict[str, dict[str, Any] | None] = {}
        #: Nodes not resolved yet (neither done, failed nor skipped).
        self.outstanding = len(graph.order)
        #: The unhandled failure that ended the pass (fail fast), if any.
        self.error: BaseException | None = None

    @property
    def complete(self) -> bool:
        """Every node is resolved, or an unhandled failure ended the pass."""
        return self.outstanding == 0 or self.error is not None

    def roots(self) -> list[str]:
        """The nodes ready at the start of the pass (no incoming edges)."""
        return [nid for nid in self.graph.order if self.remaining[nid] == 0]

    def done(self, nid: str, output: dict[str, Any] | None,
             ready: list[str], skipped: list[str]) -> None:
        """``nid`` finished with ``output``; appends to ``ready`` / ``skipped`` the nodes
        that became ready or were skipped because of it."""
        self.outputs[nid] = output
        self.outstanding -= 1
        branch = output.get("branch") if output else None
        self._resolve(nid, DONE, branch, False, None, ready, skipped)

    def failed(self, nid: str, error: BaseException,
               ready: list[str], skipped: list[str]) -> bool:
        """``nid`` failed; returns False when the failure is unhandled (the pass fails
        fast: nothing more becomes ready), else resolves its edges like :meth:`done`."""
        self.outstanding -= 1
        if not self.graph.handled(nid):
            if self.error is None:
                self.error = error
            return False
        self.outputs[nid] = None
        self._resolve(nid, FAILED, None, self.graph.policy[nid][3], error, ready, skipped)
        return True

    def reuse(self, outcomes: Mapping[str, tuple[str, dict[str, Any] | None, BaseException | None]],
              ready: list[str], skipped: list[str]) -> None:
        """Start a pass that reuses the outcomes (status, output, error) of some nodes
        (a re-run from a node): they resolve upstream first; the others are scheduled by
        the normal rules. The reused nodes themselves are not reported as skipped."""
        for nid in outcomes:
            self.remaining[nid] = _NEVER
        for nid in self.graph.topological():
            if nid not in outcomes:
                continue
            status, output, error = outcomes[nid]
            self.outstanding -= 1
            if status == DONE:
                self.outputs[nid] = output
                self._resolve(nid, DONE, output.get("branch") if output else None, False,
                              None, ready, skipped)
            elif status == FAILED:
                self.outputs[nid] = None
                self._resolve(nid, FAILED, None, self.graph.policy[nid][3], error, ready,
                              skipped)
            else:
                self._resolve(nid, SKIPPED, None, False, None, ready, skipped)
        for nid in self.graph.order:
            if nid not in outcomes and self.graph.indeg[nid] == 0:
                ready.append(nid)

    def _resolve(self, nid: str, outcome: str, branch: str | None, cont: bool,
                 error: BaseException | None, ready: list[str], skipped: list[str]) -> None:
        out = self.graph.out
        remaining, live = self.remaining, self.live
        stack = [(nid, outcome, branch, cont, error)]
        while stack:
            src, outcome, branch, cont, err = stack.pop()
            for target, label in out[src]:
                if outcome == DONE:
                    is_live = label is None or (label == branch and label != "error")
                elif outcome == FAILED:
                    is_live = label == "error" or (cont and label is None)
                else:
                    is_live = False
                if is_live:
                    live[target] += 1
                    if outcome == FAILED and err is not None:
                        self.error_in[target] = err
                remaining[target] -= 1
                if remaining[target] == 0:
                    if live[target]:
                        ready.append(target)
                    else:
                        self.outstanding -= 1
                        skipped.append(target)
                        stack.append((target, SKIPPED, None, False, None))

"""FlowView: a flow's graph, laid out automatically, with live node states.

An ESM component (``_flowview.js``) draws the nodes and edges as SVG. Each node is a
``<g role="button" data-node=… data-state=…>``; clicking it sets :attr:`selected`.
States come from :attr:`states` (set by the Debugger / Dashboard from the run's events).
Editing in code always works: call :meth:`refresh` after changing the flow.

The Debugger and the Dashboard show :class:`~kvmrpa.widgets.FlowCanvas` (the editable
canvas); FlowView stays as the light, read-only view (and the canvas benchmark's baseline).
"""

from __future__ import annotations

from typing import Any, ClassVar

import param
from panel.custom import JSComponent

from ._params import BrowserParams
from ._resources import NotebookFallback
from ._runstate import NODE_STATES, layered_layout

__all__ = ["FlowView", "graph_of"]


def graph_of(flow: Any) -> dict[str, Any]:
    """The drawable graph of a flow: nodes with positions from :func:`layered_layout`."""
    ids = list(flow.nodes) if flow is not None else []
    edges = [(e.source, e.target) for e in flow.edges] if flow is not None else []
    pos = layered_layout(ids, edges)
    nodes = []
    for nid in ids:
        fn = flow.nodes[nid]
        nodes.append({"id": nid, "type": str(getattr(fn, "type", "")),
                      "label": getattr(fn, "label", "") or nid, "x": pos[nid][0], "y": pos[nid][1]})
    return {
        "nodes": nodes,
        "edges": [{"source": e.source, "target": e.target, "branch": e.branch}
                  for e in (flow.edges if flow is not None else [])],
    }


class FlowView(NotebookFallback, BrowserParams, JSComponent):
    """The graph of a flow with live node states; click a node to select it."""

    flow = param.Parameter(default=None, doc="""
        The kvmrpa.engine.Flow shown (call refresh() after editing it in code).""")
    states = param.Dict(default={}, doc=f"""
        State of each node by id: one of {', '.join(NODE_STATES)}.""")
    breakpoints = param.List(default=[], item_type=str, doc="""
        Ids of the nodes with a breakpoint (drawn with a red dot).""")
    selected = param.String(default=None, allow_None=True, doc="""
        Id of the selected node (set by clicking it).""")
    graph = param.Dict(default={"nodes": [], "edges": []}, doc="""
        The laid-out graph sent to the browser (derived from flow).""")

    _esm: ClassVar[str] = "_flowview.js"
    _rename: ClassVar[dict[str, str | None]] = {"flow": None}

    def __init__(self, flow: Any = None, **params: Any) -> None:
        params.setdefault("sizing_mode", "stretch_width")
        params.setdefault("min_height", 120)
        super().__init__(flow=flow, **params)
        self.refresh()
        self.param.watch(lambda *_: self.refresh(), ["flow"])

    def refresh(self) -> None:
        """Re-read the flow's nodes and edges (after editing it in code)."""
        graph = graph_of(self.flow)
        ids = [n["id"] for n in graph["nodes"]]
        states = {n: self.states.get(n, "pending") for n in ids}
        self.param.update(graph=graph, states=states)
        if self.selected not in ids:
            self.selected = ids[0] if ids else None

"""FlowCanvas: build and watch a flow on a drag-and-drop canvas (React Flow).

Two parts:

* :class:`CanvasDocument` — the edits of one :class:`~kvmrpa.engine.Flow` with undo and
  redo, no UI. Every edit goes through the flow's own API (``add``, ``connect``,
  ``remove`` …); a connection is tried on the graph with the new edge added and checked by
  the engine's validation (:func:`kvmrpa.engine._validate.graph_problems`), so a cycle or a
  branch the node cannot produce is refused with the engine's own reason. The history
  holds exact copies of the nodes and edges; an edit made elsewhere (the parameter form,
  code) becomes an undo step of its own before the next canvas edit.
* :class:`FlowCanvas` — the Panel component: a palette of every registered node type
  (grouped by category, searchable, the docstring as tooltip; code-bearing types only
  where the user may create them), drag to add, wiring from per-branch ports, move,
  multi-select, delete, copy/paste, undo/redo, auto-layout, zoom/pan/fit, validation
  problems on their node or edge, and during a run the live node states (the running
  node highlighted) and breakpoints toggled by clicking a node's marker.

The JavaScript is a bundle of React Flow built at development time (``./dev bundle``,
sources in ``widgets/canvas/``) and shipped in the package: nothing loads from a CDN.
Each node element carries ``data-node`` and ``data-state``; the graph element has
``aria-label="Flow graph"``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import param
from panel.custom import ReactComponent

from kvmrpa._errors import FlowError, KvmrpaError

from ._auth import can, is_code_type, palette_types, require
from ._params import BrowserParams
from ._resources import NotebookFallback
from ._runstate import NODE_STATES, RunState, StateMark, layered_layout

__all__ = ["CanvasDocument", "FlowCanvas", "canvas_positions", "node_palette"]

log = logging.getLogger("kvmrpa.widgets.flowcanvas")

#: Undo steps kept per document.
HISTORY = 100
#: Spacing of the auto-layout (a node is about 150 × 50 px on the canvas).
LAYOUT_DX, LAYOUT_DY = 230.0, 90.0
#: Most nodes one paste may copy.
MAX_PASTE = 200


def _doc_line(cls: type) -> str:
    text = (cls.__doc__ or "").strip()
    return " ".join(text.split("\n\n")[0].split())[:400]


def node_palette() -> list[dict[str, str]]:
    """Every node type the current user may create: type, category and docstring."""
    from kvmrpa.nodes import node_types

    types = node_types()
    return [{"type": name, "category": str(getattr(types[name], "category", "misc")),
             "doc": _doc_line(types[name])}
            for name in palette_types(sorted(types))]


def _outs(node: Any) -> list[dict[str, str]]:
    """The output ports of a node: the plain one, one per declared branch, ``error``."""
    from kvmrpa.nodes import ANY_BRANCH

    branches = tuple(getattr(node, "branches", ()))
    named = [] if branches == ANY_BRANCH else [b for b in branches if b != "error"]
    return [{"id": "out"}, *({"id": b} for b in named), {"id": "error"}]


def canvas_positions(flow: Any) -> dict[str, tuple[float, float]]:
    """Where each node is drawn: its saved position, or (when every node sits on the same
    point, as in a flow built in code or imported from the original format) the
    left-to-right layered layout."""
    nodes = flow.nodes if flow is not None else {}
    if len(nodes) > 1 and len({tuple(fn.position) for fn in nodes.values()}) == 1:
        return layered_layout(list(nodes), [(e.source, e.target) for e in flow.edges],
                              dx=LAYOUT_DX, dy=LAYOUT_DY)
    return {nid: (float(fn.position[0]), float(fn.position[1])) for nid, fn in nodes.items()}


@dataclass(frozen=True)
class _Snapshot:
    nodes: tuple[Any, ...]  # FlowNode copies
    edges: tuple[Any, ...]
    key: str


def _edge_index(field: str | None) -> int | None:
    if field and field.startswith("edges["):
        try:
            return int(field[6:field.index("]")])
        except ValueError:
            return None
    return None


class CanvasDocument:
    """The edits of one flow with undo and redo (the flow is changed in place)."""

    def __init__(self, flow: Any, *, history: int = HISTORY) -> None:
        self.flow = flow
        self._limit = max(1, int(history))
        self._undo: list[_Snapshot] = []
        self._redo: list[_Snapshot] = []
        self._last = self._snapshot()

    # -- history ------------------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        from kvmrpa.engine import FlowNode

        flow = self.flow
        if flow is None:
            return _Snapshot((), (), "")
        nodes = tuple(FlowNode(fn.id, fn.node.copy(), fn.label, tuple(fn.position))
                      for fn in flow.nodes.values())
        edges = tuple(flow.edges)
        key = json.dumps([[fn.to_dict() for fn in nodes], [e.to_dict() for e in edges]],
                         sort_keys=True, default=repr)
        return _Snapshot(nodes, edges, key)

    def _restore(self, snap: _Snapshot) -> None:
        from kvmrpa.engine import FlowNode

        self.flow.nodes = {fn.id: FlowNode(fn.id, fn.node.copy(), fn.label, tuple(fn.position))
                           for fn in snap.nodes}
        self.flow.edges = list(snap.edges)

    def _checkpoint(self) -> _Snapshot:
        """The state before an edit; an edit made outside the canvas since the last one
        becomes an undo step of its own."""
        now = self._snapshot()
        if now.key != self._last.key:
            self._push(self._undo, self._last)
            self._redo.clear()
        self._last = now
        return now

    def _push(self, stack: list[_Snapshot], snap: _Snapshot) -> None:
        stack.append(snap)
        del stack[:-self._limit]

    def _edit(self, action: Callable[[], Any]) -> Any:
        if self.flow is None:
            raise FlowError("no flow to edit")
        before = self._checkpoint()
        try:
            out = action()
        except BaseException:
            self._restore(before)
            raise
        after = self._snapshot()
        if after.key != before.key:
            self._push(self._undo, before)
            self._redo.clear()
        self._last = after
        return out

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) or (self.flow is not None and self._snapshot().key != self._last.key)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Go back one edit; False when there is none."""
        if self.flow is None:
            return False
        self._checkpoint()
        if not self._undo:
            return False
        self._push(self._redo, self._last)
        snap = self._undo.pop()
        self._restore(snap)
        self._last = self._snapshot()
        return True

    def redo(self) -> bool:
        """Redo the last undone edit; False when there is none."""
        if self.flow is None:
            return False
        self._checkpoint()
        if not self._redo:
            return False
        self._push(self._undo, self._last)
        self._restore(self._redo.pop())
        self._last = self._snapshot()
        return True

    def reset_history(self) -> None:
        """Forget the history (a different flow was loaded)."""
        self._undo.clear()
        self._redo.clear()
        self._last = self._snapshot()

    # -- checks -------------------------------------------------------------------------
    def _graph_problems(self, extra: Sequence[tuple[str, str, str | None]] = ()) -> list[Any]:
        from kvmrpa.engine._validate import graph_problems

        flow = self.flow
        edges = [(i, e.source, e.target, e.branch) for i, e in enumerate(flow.edges)]
        edges += [(len(edges) + j, s, t, b) for j, (s, t, b) in enumerate(extra)]
        return graph_problems({nid: fn.node for nid, fn in flow.nodes.items()}, edges)

    def refusal(self, source: str, target: str, branch: str | None = None) -> str | None:
        """Why the engine's validation rejects the edge ``source → target`` (on
        ``branch``) added to the flow, or None when it accepts it."""
        if source not in self.flow.nodes or target not in self.flow.nodes:
            missing = source if source not in self.flow.nodes else target
            return f"no node {missing!r} in the flow"
        before = {str(p) for p in self._graph_problems()}
        after = self._graph_problems([(source, target, branch)])
        new = [p.message for p in after if str(p) not in before]
        return new[0] if new else None

    def refusals(self, source: str, branch: str | None = None) -> dict[str, str]:
        """``{target: reason}`` for every node the engine refuses as the target of a new
        edge from ``source`` (on ``branch``)."""
        from kvmrpa.engine._validate import graph_problems

        flow = self.flow
        if source not in flow.nodes:
            return {}
        nodes = {nid: fn.node for nid, fn in flow.nodes.items()}
        base = [(i, e.source, e.target, e.branch) for i, e in enumerate(flow.edges)]
        before = {str(p) for p in graph_problems(nodes, base)}
        out: dict[str, str] = {}
        for target in flow.nodes:
            found = graph_problems(nodes, [*base, (len(base), source, target, branch)])
            new = [p.message for p in found if str(p) not in before]
            if new:
                out[target] = new[0]
        return out

    # -- edits --------------------------------------------------------------------------
    def add(self, node_type: str, position: Sequence[float] = (0.0, 0.0),
            node_id: str | None = None, **params: Any) -> str:
        """Add a node of ``node_type`` at ``position``; returns its id."""
        require("edit", self.flow.name if self.flow else None, code=is_code_type(node_type),
                detail={"node_type": str(node_type)[:64]})

        def act() -> str:
            self._fix_positions()
            node = self.flow.add(node_type, node_id, position=(position[0], position[1]),
                                 **params)
            return self.flow.id_of(node)

        return self._edit(act)

    def connect(self, source: str, target: str, branch: str | None = None) -> None:
        """Add the edge ``source → target`` unless the engine's validation refuses it
        (raises :class:`~kvmrpa.FlowError` with the reason)."""
        require("edit", self.flow.name if self.flow else None)
        branch = branch or None
        why = self.refusal(source, target, branch)
        if why is not None:
            label = f" on {branch}" if branch else ""
            raise FlowError(f"cannot connect {source} → {target}{label}: {why}",
                            flow=self.flow.name)
        self._edit(lambda: self.flow.connect(source, target, branch=branch))

    def delete(self, nodes: Iterable[str] = (), edges: Iterable[int] = ()) -> None:
        """Remove nodes (with their edges) and edges (by index in ``flow.edges``)."""
        require("edit", self.flow.name if self.flow else None)
        ids = [n for n in nodes if n in self.flow.nodes]
        drop = {int(i) for i in edges}

        def act() -> None:
            self.flow.edges = [e for i, e in enumerate(self.flow.edges) if i not in drop]
            for nid in ids:
                self.flow.remove(nid)

        self._edit(act)

    def move(self, positions: dict[str, Sequence[float]]) -> None:
        """Set node positions (canvas coordinates)."""
        require("edit", self.flow.name if self.flow else None)

        def act() -> None:
            self._fix_positions()
            for nid, pos in positions.items():
                fn = self.flow.nodes.get(nid)
                if fn is None:
                    continue
                x, y = float(pos[0]), float(pos[1])
                if not (abs(x) < 1e7 and abs(y) < 1e7):
                    raise FlowError(f"node {nid}: position ({x}, {y}) is out of range",
                                    flow=self.flow.name)
                fn.position = (x, y)

        self._edit(act)

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set one parameter of a node (refused when the node's parameter rejects it)."""
        from kvmrpa.engine._validate import _coerce

        require("edit", self.flow.name if self.flow else None)
        fn = self.flow.nodes.get(node_id)
        if fn is None:
            raise FlowError(f"no node {node_id!r} in the flow", flow=self.flow.name)
        if name not in fn.node.param_names():
            raise FlowError(f"node {node_id}: {fn.type!r} has no parameter {name!r}",
                            flow=self.flow.name)

        def act() -> None:
            try:
                setattr(fn.node, name, _coerce(fn.node.param[name], value))
            except (TypeError, ValueError) as exc:
                raise FlowError(f"node {node_id}: {name}: {' '.join(str(exc).split())}",
                                flow=self.flow.name) from None

        self._edit(act)

    def paste(self, ids: Iterable[str], offset: Sequence[float] = (40.0, 40.0)) -> list[str]:
        """Copy nodes (and the edges between them) with new ids; returns the new ids."""
        src = [n for n in list(ids)[:MAX_PASTE] if n in self.flow.nodes]
        code = any(self.flow.nodes[n].node.evaluates_code for n in src)
        require("edit", self.flow.name if self.flow else None, code=code)

        def act() -> list[str]:
            self._fix_positions()
            mapping: dict[str, str] = {}
            for nid in src:
                fn = self.flow.nodes[nid]
                pos = (fn.position[0] + offset[0], fn.position[1] + offset[1])
                node = self.flow.add(fn.node.copy(), label=fn.label, position=pos)
                mapping[nid] = self.flow.id_of(node)
            for e in list(self.flow.edges):
                if e.source in mapping and e.target in mapping:
                    self.flow.connect(mapping[e.source], mapping[e.target], branch=e.branch)
            return list(mapping.values())

        return self._edit(act)

    def layout(self) -> None:
        """Lay the nodes out left to right (layers by longest path from a start node)."""
        require("edit", self.flow.name if self.flow else None)

        def act() -> None:
            pos = layered_layout(list(self.flow.nodes),
                                 [(e.source, e.target) for e in self.flow.edges],
                                 dx=LAYOUT_DX, dy=LAYOUT_DY)
            for nid, (x, y) in pos.items():
                self.flow.nodes[nid].position = (x, y)

        self._edit(act)

    def _fix_positions(self) -> None:
        """Give the nodes the positions they are drawn at (see :func:`canvas_positions`)
        before an edit that places or moves one."""
        for nid, pos in canvas_positions(self.flow).items():
            self.flow.nodes[nid].position = pos

    # -- the document the browser draws -----------------------------------------------------
    def graph(self) -> dict[str, Any]:
        """Nodes (with ports, problems, positions), edges (with problems) and the flow's
        other problems, as the canvas draws them."""
        from kvmrpa.nodes import node_types

        flow = self.flow
        if flow is None:
            return {"nodes": [], "edges": [], "problems": []}
        try:
            problems = flow.problems()
        except Exception as exc:  # validation must never break the view
            log.debug("validation failed", exc_info=True)
            problems = []
            flow_level = [f"validation failed: {type(exc).__name__}"]
        else:
            flow_level = []
        by_node: dict[str, list[str]] = {}
        by_edge: dict[int, list[str]] = {}
        for p in problems:
            index = _edge_index(p.field)
            text = f"{p.field}: {p.message}" if p.field else p.message
            if index is not None:
                by_edge.setdefault(index, []).append(p.message)
            elif p.node is not None and p.node in flow.nodes:
                by_node.setdefault(p.node, []).append(text)
            else:
                flow_level.append(str(p))
        types = node_types()
        pos = canvas_positions(flow)
        nodes = []
        for nid, fn in flow.nodes.items():
            cls = types.get(fn.type)
            nodes.append({"id": nid, "type": fn.type, "label": fn.label,
                          "category": str(getattr(fn.node, "category", "misc")),
                          "doc": _doc_line(cls) if cls is not None else "",
                          "x": pos[nid][0], "y": pos[nid][1], "outs": _outs(fn.node),
                          "problems": by_node.get(nid, [])})
        edges = [{"id": f"e{i}:{e.source}:{e.target}:{e.branch or ''}", "index": i,
                  "source": e.source, "target": e.target, "branch": e.branch,
                  "problems": by_edge.get(i, [])}
                 for i, e in enumerate(flow.edges)]
        return {"nodes": nodes, "edges": edges, "problems": flow_level}


#: The bundle built by ``./dev bundle`` from ``widgets/canvas/`` (shipped in the package).
BUNDLE_NAME = "_flowcanvas.bundle.js"


class FlowCanvas(NotebookFallback, BrowserParams, ReactComponent):
    """A flow on a drag-and-drop canvas with live node states; click a node to select
    it. Edits in code: change the flow, then call :meth:`refresh`, or use
    :meth:`set_param` (which records an undo step and redraws)."""

    flow = param.Parameter(default=None, doc="""
        The kvmrpa.engine.Flow shown and edited (call refresh() after editing it in code).""")
    states = param.Dict(default={}, doc=f"""
        State of each node by id: one of {', '.join(NODE_STATES)}. A run's states are
        best shown with show_run_state(), which sets only those that changed.""")
    breakpoints = param.List(default=[], item_type=str, doc="""
        Ids of the nodes with a breakpoint (a red marker; click it to toggle).""")
    selected = param.String(default=None, allow_None=True, doc="""
        Id of the selected node (set by clicking it).""")
    locked = param.Boolean(default=False, doc="""
        Refuse edits (set while a run of the flow is active).""")
    editable = param.Boolean(default=True, doc="""
        Show the palette and editing tools (off: a view with live states only).""")
    message = param.String(default="", doc="What the last edit did, or why it was refused.")
    message_kind: param.Selector[str] = param.Selector(default="info", objects=["info", "error"], doc="""
        Whether :attr:`message` reports a refusal.""")
    can_undo = param.Boolean(default=False, doc="Whether there is an edit to undo.")
    can_redo = param.Boolean(default=False, doc="Whether there is an undone edit to redo.")
    graph_json = param.String(default="", doc="""
        The drawn document (nodes, edges, problems) as JSON (derived from flow).""")
    palette_json = param.String(default="[]", doc="""
        The node types of the palette as JSON (derived from the registry and the role).""")
    refusals_json = param.String(default="", doc="""
        The targets the engine refuses for the wire being dragged, as JSON.""")
    states_json = param.String(default='{"full":{}}', doc="""
        :attr:`states` as the browser receives it, one JSON string (derived):
        ``{"full": base}`` sets the base states, ``{"set": changes}`` the states that
        differ from that base now (the page shows base + changes). Only what changed since
        the base is sent, and a new base once that is a quarter of the nodes. A string is
        one value to Bokeh, where a dict of a thousand states is walked entry by entry on
        every change, stalling the server's loop during a long run.""")

    _esm: ClassVar[str] = "canvas/src/FlowCanvas.jsx"
    _bundle: ClassVar[str] = BUNDLE_NAME
    _rename: ClassVar[dict[str, str | None]] = {"flow": None, "states": None}

    def __init__(self, flow: Any = None, *, on_change: Callable[[], None] | None = None,
                 **params: Any) -> None:
        params.setdefault("sizing_mode", "stretch_width")
        params.setdefault("height", 460)
        params.setdefault("editable", can("edit"))
        super().__init__(flow=flow, palette_json=json.dumps(node_palette()), **params)
        #: Called after every edit made on the canvas (the flow changed in place).
        self.on_change = on_change
        self.document = CanvasDocument(flow)
        self._fit = 0
        self._base: dict[str, str] = {}
        self._changes: dict[str, str] = {}
        self._hint: dict[str, str] | None = None
        self._mark: tuple[StateMark, tuple[str, ...]] | None = None
        self.refresh()
        self._on_states()
        self.param.watch(self._on_flow, ["flow"])
        # not onlychanged: param's deep comparison of a thousand states costs more than
        # the JSON text compared below
        self.param.watch(self._on_states, ["states"], onlychanged=False)

    @property
    def _synced_params(self) -> list[str]:
        # states reach the browser as states_json only (Panel would otherwise watch the
        # dict too, comparing it deeply on every change)
        return [p for p in super()._synced_params if p != "states"]

    def update_states(self, changes: dict[str, str]) -> None:
        """Set the state of the nodes in ``changes`` (others keep theirs; unknown ids are
        ignored). Costs the number of changes, not of nodes: what a live view does many
        times a second during a long run."""
        current = self.states
        changes = {k: v for k, v in changes.items() if k in current and current[k] != v}
        if not changes:
            return
        self._hint = changes
        try:
            self.states = {**current, **changes}
        finally:
            self._hint = None

    def show_run_state(self, state: RunState) -> None:
        """Show the node states of ``state`` (a run's :class:`RunState`): the nodes set
        since the last call, or all of them after a new run, pass or graph."""
        ids = tuple(self.states)
        mark = self._mark[0] if self._mark is not None and self._mark[1] == ids else None
        answer = state.state_changes(mark)
        if answer.full is not None:
            states = {n: answer.full.get(n, "pending") for n in ids}
            if states != self.states:
                self.states = states
        else:
            self.update_states(answer.changed)
        self._mark = (answer.mark, ids)

    def _on_states(self, *_: Any) -> None:
        states = self.states
        base = self._base
        hint = self._hint
        changes: dict[str, str] | None = None
        if hint is not None and len(states) == len(base) and all(k in base for k in hint):
            changes = dict(self._changes)  # update_states: only the hinted nodes changed
            for k in hint:
                if base[k] == states[k]:
                    changes.pop(k, None)
                else:
                    changes[k] = states[k]
        elif states.keys() == base.keys():
            changes = {k: v for k, v in states.items() if base[k] != v}
        if changes is not None and len(changes) > max(8, len(states) // 4):
            changes = None
        if changes is None:  # a new base (other nodes, or too much changed)
            self._base, self._changes = dict(states), {}
            text = _json({"full": self._base})
        else:
            self._changes = changes
            text = _json({"set": changes})
        if text != self.states_json:  # unchanged states are not sent again
            self.states_json = text

    def _get_model(self, doc: Any, root: Any = None, parent: Any = None,
                   comm: Any = None) -> Any:
        model = super()._get_model(doc, root, parent, comm)
        # Panel looks every changed data property up on the outer model too
        # (panel.io.document.freeze_doc: getattr(model, key, None)); there the lookup of
        # states_json fails, and Bokeh's AttributeError computes spelling suggestions
        # with difflib: a third of a state push's time. A plain attribute answers it
        # (Bokeh serialises only declared properties; this one is not).
        object.__setattr__(model, "states_json", None)
        return model

    def _init_params(self) -> dict[str, Any]:
        # a view made now (a new page, a notebook output) gets the base and the changes
        params = super()._init_params()
        if "states_json" in params and hasattr(self, "_base"):
            params["states_json"] = _json({"full": self._base, "set": self._changes})
        return params

    def _on_flow(self, *_: Any) -> None:
        self.document = CanvasDocument(self.flow)
        self._fit += 1
        self.refresh()

    @property
    def graph(self) -> dict[str, Any]:
        """The drawn document as a dict."""
        return json.loads(self.graph_json) if self.graph_json else {}

    def refresh(self) -> None:
        """Redraw from the flow (after editing it in code)."""
        doc = self.document
        if doc.flow is not self.flow:
            doc = self.document = CanvasDocument(self.flow)
        graph = doc.graph()
        graph["fit"] = self._fit
        ids = [n["id"] for n in graph["nodes"]]
        states = {n: self.states.get(n, "pending") for n in ids}
        self.param.update(graph_json=json.dumps(graph, ensure_ascii=False, default=repr),
                          states=states, can_undo=doc.can_undo, can_redo=doc.can_redo,
                          breakpoints=[b for b in self.breakpoints if b in ids])
        if self.selected not in ids:
            self.selected = ids[0] if ids else None

    # -- edits (from the browser, or from code) -------------------------------------------
    def _tell(self, text: str, kind: str = "info") -> None:
        self.param.update(message=" ".join(str(text).split())[:500], message_kind=kind)

    def _changed(self, text: str) -> None:
        self.refresh()
        self._tell(text)
        if self.on_change is not None:
            self.on_change()

    def _guard(self, action: Callable[[], str | None]) -> bool:
        if self.flow is None:
            self._tell("no flow", "error")
            return False
        if self.locked:
            self._tell("stop the run before editing the flow", "error")
            return False
        try:
            text = action()
        except (KvmrpaError, KeyError, TypeError, ValueError, IndexError) as exc:
            self._tell(exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc),
                       "error")
            self.refresh()
            return False
        if text is not None:
            self._changed(text)
        return True

    def add_node(self, node_type: str, position: Sequence[float] = (0.0, 0.0),
                 node_id: str | None = None) -> bool:
        def act() -> str:
            nid = self.document.add(node_type, position, node_id)
            self.selected = nid
            return f"added {nid} ({node_type})"
        return self._guard(act)

    def connect(self, source: str, target: str, branch: str | None = None) -> bool:
        def act() -> str:
            self.document.connect(source, target, branch)
            return f"connected {source} → {target}" + (f" on {branch}" if branch else "")
        return self._guard(act)

    def delete(self, nodes: Iterable[str] = (), edges: Iterable[int] = ()) -> bool:
        nodes, edges = list(nodes), list(edges)

        def act() -> str:
            self.document.delete(nodes, edges)
            parts = ([f"deleted {', '.join(nodes)}"] if nodes else []) + (
                [f"{len(edges)} edge(s)"] if edges else [])
            return " and ".join(parts) or "nothing to delete"
        return self._guard(act)

    def move(self, positions: dict[str, Sequence[float]]) -> bool:
        def act() -> str:
            self.document.move(positions)
            return f"moved {', '.join(list(positions)[:5])}"
        return self._guard(act)

    def set_param(self, node_id: str, name: str, value: Any) -> bool:
        """Set a node's parameter (an undo step), redraw, and tell :attr:`on_change`."""
        def act() -> str:
            self.document.set_param(node_id, name, value)
            return f"set {node_id}.{name}"
        return self._guard(act)

    def paste(self, ids: Iterable[str]) -> bool:
        def act() -> str:
            new = self.document.paste(ids)
            return f"pasted {', '.join(new)}" if new else "nothing to paste"
        return self._guard(act)

    def layout(self) -> bool:
        def act() -> str:
            self.document.layout()
            self._fit += 1
            return "laid out"
        return self._guard(act)

    def undo(self) -> bool:
        return self._guard(lambda: "undone" if self.document.undo() else "nothing to undo")

    def redo(self) -> bool:
        return self._guard(lambda: "redone" if self.document.redo() else "nothing to redo")

    def probe(self, source: str, branch: str | None = None) -> dict[str, str]:
        """Ask the engine which targets it refuses for a new edge from ``source`` (the
        wire being dragged); the answer goes to the browser."""
        out = self.document.refusals(source, branch) if self.flow is not None else {}
        self.refusals_json = json.dumps({"key": f"{source}|{branch or ''}", "targets": out},
                                        ensure_ascii=False)
        return out

    def _handle_msg(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        op = msg.get("op")
        try:
            if op == "probe":
                self.probe(str(msg.get("source")), msg.get("branch") or None)
            elif op == "add":
                self.add_node(str(msg.get("node_type")), _pair(msg.get("position")))
            elif op == "connect":
                self.connect(str(msg.get("source")), str(msg.get("target")),
                             msg.get("branch") or None)
            elif op == "delete":
                self.delete([str(n) for n in msg.get("nodes") or []][:10_000],
                            [int(i) for i in msg.get("edges") or []][:10_000])
            elif op == "move":
                positions = msg.get("positions") or {}
                self.move({str(k): _pair(v) for k, v in list(positions.items())[:10_000]})
            elif op == "paste":
                self.paste([str(n) for n in msg.get("ids") or []])
            elif op == "layout":
                self.layout()
            elif op == "undo":
                self.undo()
            elif op == "redo":
                self.redo()
        except (TypeError, ValueError, AttributeError) as exc:
            self._tell(f"bad request from the page: {exc}", "error")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _pair(value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"a position is two numbers, got {value!r}")
    x, y = float(value[0]), float(value[1])
    if not (abs(x) < 1e7 and abs(y) < 1e7):
        raise ValueError(f"position ({x}, {y}) is out of range")
    return x, y


#: Where the bundle lives.
BUNDLE = Path(__file__).with_name(BUNDLE_NAME)

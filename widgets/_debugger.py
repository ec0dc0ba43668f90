"""Debugger: run a flow step by step from the browser or a notebook.

Buttons named exactly **Run**, **Pause**, **Step**, **Continue**, **Stop**; a breakpoint
toggle per node; a timeline of the last pass (one bar per node, so parallel branches
show as overlapping bars); an inspector of the selected node's inputs and outputs (the
output image with overlays, and JSON); the flow status (``aria-label="Flow status"``).

It drives the engine's own executor (:class:`kvmrpa.engine.FlowRun` with its debugger
attached), never a second code path. The UI is refreshed by a periodic callback in the
session's thread, reading the run's node records; nothing here touches a Panel object
from the runtime thread.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import panel as pn
import param

from kvmrpa._errors import KvmrpaError
from kvmrpa._runtime import get_runtime

from ._engine import flow_run_class
from ._floweditor import FlowEditor
from ._flowview import FlowView
from ._nodeeditor import NodeEditor
from ._overlays import png_bytes, result_image, to_jsonable
from ._runstate import RunState

__all__ = ["Debugger", "status_html"]

log = logging.getLogger("kvmrpa.widgets.debugger")

_STATE_OF = {"held": "paused", "created": "pending"}
_BAR = {"running": "#fbc02d", "done": "#43a047", "failed": "#e53935", "skipped": "#90a4ae",
        "paused": "#1e88e5", "pending": "#cfd8dc"}


def status_html(status: str) -> str:
    """The status element: ``<span role="status" aria-label="Flow status">``."""
    colour = ("#2e7d32" if status == "ok" else "#c62828" if status.startswith("failed")
              else "#1565c0" if status == "paused" else "#37474f")
    return (f'<span role="status" aria-label="Flow status" style="font:bold 14px sans-serif;'
            f'color:{colour}">{html.escape(status)}</span>')


class Debugger(pn.viewable.Viewer):
    """Step-through debugging of one flow: Run, Pause, Step, Continue, Stop,
    breakpoints, a timeline of the last pass, and an inspector."""

    flow = param.Parameter(default=None, doc="The kvmrpa.engine.Flow to debug.")
    source = param.String(default=None, allow_None=True, doc="""
        Source URL overriding the flow's own (None: the flow's).""")
    input = param.String(default=None, allow_None=True, doc="""
        Input driver URL overriding the flow's own (None: the flow's).""")
    passes = param.Integer(default=1, bounds=(0, None), doc="""
        Passes per Run (0: until stopped).""")
    breakpoints = param.ListSelector(default=[], objects=[], doc="""
        Ids of the nodes the run pauses before.""")
    selected = param.String(default=None, allow_None=True, doc="""
        Id of the node shown in the inspector (also set by clicking it in the graph).""")
    status = param.String(default="idle", doc="""
        The flow status: idle, running, paused, ok, stopped or 'failed: <node> <reason>'.""")
    refresh_ms = param.Integer(default=200, bounds=(50, 5000), doc="""
        Milliseconds between UI refreshes while displayed.""")

    def __init__(self, flow: Any = None, **params: Any) -> None:
        run = None
        if flow is not None and hasattr(flow, "debugger") and hasattr(flow, "flow"):
            run, flow = flow, flow.flow  # Debugger(run): follow a run started elsewhere
        super().__init__(flow=flow, **params)
        self.run: Any = None
        self.state = RunState()
        self._unsubscribe: Any = None
        self._inspected: tuple[Any, ...] = ()
        self._callback: Any = None
        self._temp_breakpoints: set[str] = set()
        self.flow_view = FlowView(flow)
        self.flow_view.param.watch(lambda e: setattr(self, "selected", e.new), ["selected"])
        self.param.watch(lambda e: setattr(self.flow_view, "selected", e.new), ["selected"])
        self.buttons = {name: pn.widgets.Button(label=name, color=kind, width=90)
                        for name, kind in (("Run", "primary"), ("Pause", "default"),
                                           ("Step", "default"), ("Continue", "success"),
                                           ("Stop", "danger"))}
        self.buttons["Run"].on_click(lambda _: self.start())
        self.buttons["Pause"].on_click(lambda _: self.pause())
        self.buttons["Step"].on_click(lambda _: self.step())
        self.buttons["Continue"].on_click(lambda _: self.resume())
        self.buttons["Stop"].on_click(lambda _: self.stop())
        self.breakpoint_toggles = pn.widgets.CheckBoxGroup(
            label="Breakpoints", options=[], inline=False)
        self.breakpoint_toggles.param.watch(
            lambda e: setattr(self, "breakpoints", list(e.new)), ["value"])
        self.param.watch(self._on_breakpoints, ["breakpoints"])
        self.status_pane = pn.pane.HTML(status_html(self.status), margin=(5, 10))
        self.timeline = pn.pane.HTML("", sizing_mode="stretch_width")
        self.inspector_image = pn.pane.PNG(None, sizing_mode="stretch_width", max_height=360)
        self.inspector_json = pn.pane.JSON({}, depth=3, sizing_mode="stretch_width")
        self.error = pn.pane.Alert("", alert_type="danger", visible=False)
        #: The selected node's parameter form with "Run on current frame" (give it a
        #: ``source`` to run on live frames; the Dashboard does).
        self.editor = NodeEditor(None)
        #: Palette and graph edits of the flow (locked while a run is active).
        self.flow_editor = FlowEditor(flow, on_change=self._on_flow)
        self.param.watch(self._on_selected, ["selected"])
        self.param.watch(lambda e: setattr(self.status_pane, "object", status_html(e.new)),
                         ["status"])
        self.param.watch(self._on_flow, ["flow"])
        self._on_flow()
        self._on_selected()
        if run is not None:
            self.attach(run)
            self.refresh(force=True)

    # -- flow ---------------------------------------------------------------------------
    def _on_flow(self, *_: Any) -> None:
        ids = list(self.flow.nodes) if self.flow is not None else []
        self.param.breakpoints.objects = ids
        self.breakpoints = [b for b in self.breakpoints if b in ids]
        self.breakpoint_toggles.options = ids
        if self.flow_view.flow is self.flow:
            self.flow_view.refresh()  # edited in place
        else:
            self.flow_view.flow = self.flow
        if hasattr(self, "flow_editor") and self.flow_editor.flow is not self.flow:
            self.flow_editor.flow = self.flow
        self.state.reset(ids)
        if self.selected not in ids:
            self.selected = ids[0] if ids else None
        self.refresh(force=True)

    def _on_selected(self, *_: Any) -> None:
        flow = self.flow
        fn = flow.nodes.get(self.selected) if flow is not None and self.selected else None
        self.editor.node = None if fn is None else fn.node

    def _on_breakpoints(self, event: param.parameterized.Event) -> None:
        if list(self.breakpoint_toggles.value) != list(event.new):
            self.breakpoint_toggles.value = list(event.new)
        self.flow_view.breakpoints = list(event.new)
        if self.active:
            dbg = self.run.debugger
            removed = set(event.old) - set(event.new)
            added = set(event.new) - set(event.old)

            def apply() -> None:  # on the runtime loop, where the executor reads them
                for nid in removed:
                    dbg.remove_breakpoint(nid)
                for nid in added:
                    dbg.add_breakpoint(nid)

            get_runtime().call_soon(apply)

    # -- controls -----------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether a run is in progress."""
        return self.run is not None and not self.run.done

    def start(self, paused: bool = False) -> Any:
        """Start a new run with the debugger attached (Run); with ``paused``, it pauses
        before its first nodes. Returns the FlowRun (None if the flow is invalid)."""
        if self.flow is None:
            return None
        if self.active:
            return self.run
        self._show_error(None)
        breakpoints = set(self.breakpoints)
        self._temp_breakpoints = set()
        if paused:
            targets = {e.target for e in self.flow.edges}
            roots = [nid for nid in self.flow.nodes if nid not in targets]
            self._temp_breakpoints = set(roots) - breakpoints
            breakpoints |= self._temp_breakpoints
        try:
            run = self._launch(sorted(breakpoints))
        except KvmrpaError as exc:
            self._show_error(str(exc))
            self.status = f"failed: {' '.join(str(exc).split())}"
            return None
        self.status = "running"
        return run

    def _launch(self, breakpoints: list[str]) -> Any:
        """Create, attach and start a debuggable run (a subclass may route it elsewhere)."""
        FlowRun = flow_run_class()
        run = FlowRun(self.flow, passes=self.passes, source=self.source, input=self.input,
                      debug=True, breakpoints=breakpoints)
        self.attach(run)
        run.start()
        return run

    def attach(self, run: Any) -> None:
        """Show and control ``run`` (a FlowRun of this flow started elsewhere, e.g. by
        ``flow.start(debug=True)`` or a FlowManager)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.run = run
        self.state.reset(list(self.flow.nodes))
        self._unsubscribe = run.on_event(self.state.apply)

    def _submit(self, coro: Any) -> None:
        fut = get_runtime().submit(coro)
        fut.add_done_callback(_log_failure)

    def pause(self) -> None:
        """Let in-flight nodes finish and start no new one (Pause)."""
        if self.active:
            self._submit(self.run.debugger.apause(wait=False))

    def step(self) -> None:
        """Start exactly one ready node, then pause (Step). With no run, starts one paused
        before its first node."""
        if not self.active:
            self.start(paused=True)
            return
        self._submit(self.run.debugger.astep())

    def resume(self) -> None:
        """Continue until the next breakpoint or the end (Continue)."""
        if self.active:
            self._submit(self.run.debugger.aresume())

    def stop(self) -> None:
        """Stop the run at once (Stop); returns without waiting."""
        if self.active:
            self._submit(self.run.astop())

    def close(self) -> None:
        """Stop the run and the refresh callback."""
        self.stop()
        self.detach()

    def detach(self) -> None:
        """Stop refreshing and following the run's events; the run itself goes on
        (a page closing while others still show the run)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _show_error(self, text: str | None) -> None:
        self.error.object = text or ""
        self.error.visible = bool(text)

    # -- refresh ------------------------------------------------------------------------
    def node_states(self) -> dict[str, str]:
        """Each node's state now: from the run's records, paused where the debugger holds."""
        run = self.run
        if run is None:
            return dict(self.state.states)
        states = {nid: _STATE_OF.get(rec.status, rec.status) for nid, rec in run.nodes.items()}
        paused_at = self._paused_at()
        if paused_at in states and states[paused_at] == "pending":
            states[paused_at] = "paused"
        return states

    def _paused_at(self) -> str | None:
        run = self.run
        return None if run is None else run.paused_at

    def current_status(self) -> str:
        """The status text for the status element."""
        run = self.run
        if run is None:
            return "idle" if not self.status.startswith("failed") else self.status
        if run.done:
            status = str(run.status)
            if status == "failed":
                failed = [nid for nid, rec in run.nodes.items() if rec.status == "failed"]
                err = next((rec.error for rec in run.nodes.values() if rec.error is not None), None)
                reason = " ".join(str(err or run.error or "error").split())
                return f"failed: {failed[0] if failed else '?'} {reason}"[:300]
            return status
        if self._is_paused():
            return "paused"
        return "running"

    def _is_paused(self) -> bool:
        run = self.run
        return run is not None and run.paused

    def refresh(self, force: bool = False) -> None:
        """Bring the graph, status, timeline and inspector up to date."""
        self.flow_editor.locked = self.active
        if self._temp_breakpoints and self._is_paused() and self.active:
            temp, self._temp_breakpoints = self._temp_breakpoints, set()
            dbg = self.run.debugger
            get_runtime().call_soon(lambda: [dbg.remove_breakpoint(n) for n in temp])
        states = self.node_states()
        if states != self.flow_view.states:
            self.flow_view.states = states
        status = self.current_status()
        if status != self.status:
            self.status = status
        timeline = self._timeline_html(states)
        if force or timeline != self.timeline.object:
            self.timeline.object = timeline
        self._refresh_inspector(force)

    def _timeline_html(self, states: dict[str, str]) -> str:
        run = self.run
        if run is None:
            return '<div style="color:#78909c;font:12px sans-serif">no run yet</div>'
        spans = {nid: (rec.started, rec.finished) for nid, rec in run.nodes.items()}
        ends = [e for s, e in spans.values() if e is not None] + [
            s for s, _ in spans.values() if s is not None]
        t0 = min((s for s, _ in spans.values() if s is not None), default=0.0)
        total = max(max(ends, default=0.0) - t0, 1e-3)
        rows = []
        for nid, (s, e) in spans.items():
            state = states.get(nid, "pending")
            if s is None:
                bar = ""
            else:
                end = e if e is not None else s + total * 0.02
                left = (s - t0) / total * 100
                width = max(0.8, (end - s) / total * 100)
                dur = f"{(e - s) * 1000:.0f} ms" if e is not None else "…"
                bar = (f'<div title="{html.escape(nid)} {dur}" style="position:absolute;'
                       f'left:{left:.2f}%;width:{width:.2f}%;top:2px;bottom:2px;'
                       f'background:{_BAR.get(state, "#90a4ae")};border-radius:2px"></div>')
            rows.append(
                f'<div data-node="{html.escape(nid)}" data-state="{state}" style="display:flex;'
                f'align-items:center;height:18px"><span style="width:120px;overflow:hidden;'
                f'font:11px monospace">{html.escape(nid)}</span><div style="position:relative;'
                f'flex:1;height:16px;background:#f5f5f5">{bar}</div></div>')
        return (f'<div role="list" aria-label="Timeline" style="font:11px sans-serif">'
                f'{"".join(rows)}<div style="text-align:right;color:#78909c">'
                f'{total * 1000:.0f} ms</div></div>')

    def inspect(self, node_id: str | None = None) -> dict[str, Any]:
        """The selected (or given) node's inputs and output, as JSON-able data."""
        node_id = node_id or self.selected
        run = self.run
        if run is None or node_id is None or node_id not in run.nodes:
            return {}
        rec = run.nodes[node_id]
        inputs = {k: to_jsonable(v) for k, v in (rec.inputs or {}).items()}
        return {"node": node_id, "type": rec.type, "status": _STATE_OF.get(rec.status, rec.status),
                "runs": rec.runs, "inputs": inputs, "output": to_jsonable(rec.output),
                "branch": rec.branch, "error": None if rec.error is None else str(rec.error)}

    def _refresh_inspector(self, force: bool) -> None:
        run = self.run
        rec = run.nodes.get(self.selected) if run is not None and self.selected else None
        key = (self.selected, None if rec is None else (rec.status, rec.runs, id(rec.output)))
        if not force and key == self._inspected:
            return
        self._inspected = key
        self.inspector_json.object = self.inspect()
        image = None
        if rec is not None and rec.status in ("done", "failed"):
            try:
                image = result_image(rec.output, rec.inputs)
            except Exception:  # inspection must never break the UI
                log.debug("no result image for %s", self.selected, exc_info=True)
        self.inspector_image.object = None if image is None else png_bytes(image)

    def _start_refresh(self) -> None:
        if self._callback is not None:
            return
        try:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.refresh_ms)
        except RuntimeError:  # no event loop to drive it (plain script): refresh() by hand
            self._callback = None

    def __panel__(self) -> pn.viewable.Viewable:
        self._start_refresh()
        controls = pn.Row(*self.buttons.values(), self.status_pane, sizing_mode="stretch_width")
        return pn.Column(
            controls, self.error,
            pn.Row(pn.Column("**Breakpoints**", self.breakpoint_toggles, width=170),
                   self.flow_view, sizing_mode="stretch_width"),
            "**Timeline of the last pass**", self.timeline,
            pn.Tabs(("Inspector", pn.Row(self.inspector_image, self.inspector_json,
                                         sizing_mode="stretch_width")),
                    ("Edit node", self.editor), ("Edit flow", self.flow_editor),
                    sizing_mode="stretch_width"),
            sizing_mode="stretch_width")


def _log_failure(fut: Any) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        log.warning("debugger command failed: %s", exc)

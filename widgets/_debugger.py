"""Debugger: run a flow step by step from the browser or a notebook.

Buttons **Run once**, **Run in a loop**, **Pause**, **Step**, **Continue**, **Stop** (each
with a tooltip); a breakpoint toggle per node; a timeline of the last pass (one bar per
node, so parallel branches show as overlapping bars); an inspector of the selected
node's inputs and outputs (the output image with overlays, and JSON); the flow status
(``aria-label="Flow status"``) and the outcome of the last pass (``aria-label="Outcome"``).

It drives the engine's own executor (:class:`kvmrpa.engine.FlowRun` with its debugger
attached), never a second code path. Everything it shows is rendered from the run's
events folded into a :class:`~kvmrpa.widgets._runstate.RunState` and pushed to the page
(:class:`~kvmrpa.widgets._push.Pusher`) as they happen; nothing is polled.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import Any

import panel as pn
import param

from kvmrpa._errors import KvmrpaError
from kvmrpa._redact import redact_data
from kvmrpa._runtime import get_runtime

from ._auth import can, requires
from ._engine import flow_run_class
from ._flowcanvas import FlowCanvas
from ._floweditor import FlowEditor
from ._markup import LiveHTML
from ._nodeeditor import NodeEditor
from ._overlays import png_bytes, result_image, to_jsonable
from ._push import Pusher
from ._resources import NotebookFallback
from ._runstate import FlowFeed, RunState

__all__ = ["Debugger", "outcome_html", "status_html"]

#: One Debugger render at a time (see :meth:`Debugger.refresh`).
_REFRESH_LOCK = threading.RLock()

log = logging.getLogger("kvmrpa.widgets.debugger")

_STATE_OF = {"held": "paused", "created": "pending"}
_BAR = {"running": "#fbc02d", "done": "#43a047", "failed": "#e53935", "skipped": "#90a4ae",
        "paused": "#1e88e5", "pending": "#cfd8dc", "stopped": "#8d6e63"}
_TIPS = {
    "Run once": "Run one pass of the flow (the debugger attached: breakpoints apply)",
    "Run in a loop": "Run passes one after another until Stop",
    "Pause": "Let running nodes finish and start no new one",
    "Step": "Start exactly one ready node, then pause (with no run: start paused)",
    "Continue": "Go on until the next breakpoint or the end",
    "Stop": "Stop now: no further input reaches the target",
}


def _colour(kind: str) -> str:
    return {"ok": "#2e7d32", "failed": "#c62828", "paused": "#1565c0",
            "running": "#e65100"}.get(kind, "#455a64")  # idle, stopped, nothing: neutral


def status_html(status: str, wall: float | None = None) -> str:
    """The status element: ``<span role="status" aria-label="Flow status">``."""
    kind = status.split(":")[0]
    stamp = "" if wall is None else f' data-wall="{wall:.6f}"'
    return (f'<span role="status" aria-label="Flow status" data-kind="{html.escape(kind)}"'
            f'{stamp} style="font:bold 14px sans-serif;color:{_colour(kind)}">'
            f'{html.escape(status)}</span>')


def outcome_html(outcome: str, kind: str) -> str:
    """The outcome of the last pass; "nothing done" in a neutral colour."""
    colour = _colour("nothing" if kind == "nothing" else kind)
    return (f'<span aria-label="Outcome" data-kind="{html.escape(kind)}" style="font:13px '
            f'sans-serif;color:{colour}">{html.escape(outcome)}</span>')


class Debugger(NotebookFallback, pn.viewable.Viewer):
    """Step-through debugging of one flow: Run once, Run in a loop, Pause, Step,
    Continue, Stop, breakpoints, a timeline of the last pass, and an inspector."""

    flow = param.Parameter(default=None, doc="The kvmrpa.engine.Flow to debug.")
    source = param.String(default=None, allow_None=True, doc="""
        Source URL overriding the flow's own (None: the flow's).""")
    input = param.String(default=None, allow_None=True, doc="""
        Input driver URL overriding the flow's own (None: the flow's).""")
    passes = param.Integer(default=1, bounds=(0, None), doc="""
        Passes of Run once (Run in a loop always runs until stopped).""")
    breakpoints = param.ListSelector(default=[], objects=[], doc="""
        Ids of the nodes the run pauses before.""")
    selected = param.String(default=None, allow_None=True, doc="""
        Id of the node shown in the inspector (also set by clicking it in the graph).""")
    status = param.String(default="idle", doc="""
        The flow status: idle, running, paused, ok, stopped or 'failed: <node> <reason>'.""")
    outcome = param.String(default="", doc="""
        What the last pass did, e.g. 'ok · 1 action' or 'ok · nothing done (…)'.""")

    def __init__(self, flow: Any = None, *, feed: FlowFeed | None = None, **params: Any) -> None:
        run = None
        if flow is not None and hasattr(flow, "debugger") and hasattr(flow, "flow"):
            run, flow = flow, flow.flow  # Debugger(run): follow a run started elsewhere
        super().__init__(flow=flow, **params)
        #: Where the runs' events are folded (shared by every view of the flow when given).
        self.feed = feed or FlowFeed(getattr(flow, "name", "flow"),
                                     list(flow.nodes) if flow is not None else [])
        self._own_feed = feed is None
        self._inspected: tuple[Any, ...] = ()
        self._temp_breakpoints: set[str] = set()
        self._launch_error: str | None = None
        self.pusher = Pusher(self.refresh)
        self._unsubscribe: Any = self.state.subscribe(self.pusher.poke)
        #: The flow on the canvas (live states, breakpoint markers, editing).
        self.flow_view = FlowCanvas(flow, on_change=self._on_canvas_edit)
        self.flow_view.param.watch(lambda e: setattr(self, "selected", e.new), ["selected"])
        self.flow_view.param.watch(self._on_canvas_breakpoints, ["breakpoints"])
        self.param.watch(lambda e: setattr(self.flow_view, "selected", e.new), ["selected"])
        kinds = {"Run once": "primary", "Run in a loop": "primary", "Continue": "success",
                 "Stop": "danger"}
        self.buttons = {name: pn.widgets.Button(label=name, color=kinds.get(name, "default"),
                                                description=tip, width=110 if " " in name else 82,
                                                margin=(5, 3))
                        for name, tip in _TIPS.items()}
        self.buttons["Run once"].on_click(lambda _: self.start())
        self.buttons["Run in a loop"].on_click(lambda _: self.start(loop=True))
        self.buttons["Pause"].on_click(lambda _: self.pause())
        self.buttons["Step"].on_click(lambda _: self.step())
        self.buttons["Continue"].on_click(lambda _: self.resume())
        self.buttons["Stop"].on_click(lambda _: self.stop())
        for button in self.buttons.values():  # the handlers check again (server-side)
            button.disabled = not can("run")
        self.breakpoint_toggles = pn.widgets.CheckBoxGroup(
            label="Breakpoints", options=[], inline=True)
        self.breakpoint_toggles.param.watch(
            lambda e: setattr(self, "breakpoints", list(e.new)), ["value"])
        self.param.watch(self._on_breakpoints, ["breakpoints"])
        self.breakpoint_toggles.disabled = not can("run")
        self.status_pane = LiveHTML(status_html(self.status), margin=(10, 8))
        self.outcome_pane = LiveHTML("", margin=(11, 4))
        self.timeline = LiveHTML("", sizing_mode="stretch_width")
        self.inspector_image = pn.pane.PNG(None, sizing_mode="stretch_width", max_height=360)
        self.inspector_json = pn.pane.JSON({}, depth=3, sizing_mode="stretch_width")
        #: The inspector, collapsed at first: its image is made only while it is open
        #: (encoding a frame as PNG must not delay the states pushed with it).
        self.inspector_card = pn.Card(
            pn.Row(self.inspector_image, self.inspector_json, sizing_mode="stretch_width"),
            title="Inspector", collapsed=True, sizing_mode="stretch_width")

        def opened(event: Any) -> None:
            if not event.new:  # collapsed is now False
                self._refresh_inspector(True)

        self.inspector_card.param.watch(opened, ["collapsed"])
        self.error = pn.pane.Alert("", alert_type="danger", visible=False)
        #: The selected node's parameter form with "Run on current frame" (give it a
        #: ``source`` to run on live frames; the Dashboard does).
        self.editor = NodeEditor(None, on_edit=lambda _field: self.flow_view.refresh())
        #: Palette and graph edits of the flow (locked while a run is active).
        self.flow_editor = FlowEditor(flow, on_change=self._on_flow)
        self.param.watch(self._on_selected, ["selected"])
        self.param.watch(self._on_flow, ["flow"])
        self._on_flow()
        self._on_selected()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            self.pusher.bind()  # made inside a served session: push there
        if run is not None:
            self.attach(run)
            self.refresh(force=True)

    @property
    def state(self) -> RunState:
        """The folded state of the flow's runs this view renders."""
        return self.feed.state

    @property
    def run(self) -> Any:
        """The run shown (the current or last one), None before any."""
        return self.feed.run

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
        if self._own_feed and not self.active:
            types = {nid: fn.type for nid, fn in self.flow.nodes.items()} if self.flow else {}
            self.state.reset(ids, types)
        if self.selected not in ids:
            self.selected = ids[0] if ids else None
        self._on_selected()
        self.refresh(force=True)

    def _on_selected(self, *_: Any) -> None:
        flow = self.flow
        fn = flow.nodes.get(self.selected) if flow is not None and self.selected else None
        if hasattr(self, "editor"):
            self.editor.node = None if fn is None else fn.node
            self.editor.node_id = self.selected
        if hasattr(self, "inspector_json"):
            self._refresh_inspector(True)

    def _on_breakpoints(self, event: param.parameterized.Event) -> None:
        if list(self.breakpoint_toggles.value) != list(event.new):
            self.breakpoint_toggles.value = list(event.new)
        self.flow_view.breakpoints = list(event.new)
        if self.active and can("run"):
            dbg = self.run.debugger
            removed = set(event.old) - set(event.new)
            added = set(event.new) - set(event.old)

            def apply() -> None:  # on the runtime loop, where the executor reads them
                for nid in removed:
                    dbg.remove_breakpoint(nid)
                for nid in added:
                    dbg.add_breakpoint(nid)

            get_runtime().call_soon(apply)

    def _on_canvas_edit(self) -> None:
        """An edit made on the canvas: the same follow-up as one made in the form editor."""
        self.flow_editor._sync_options()
        if self.flow_editor._on_change is not None:
            self.flow_editor._on_change()

    def _on_canvas_breakpoints(self, event: param.parameterized.Event) -> None:
        ids = list(self.flow.nodes) if self.flow is not None else []
        wanted = [b for b in event.new if b in ids]
        if not can("run"):
            self.flow_view.breakpoints = list(self.breakpoints)
        elif wanted != list(self.breakpoints):
            self.breakpoints = wanted

    # -- controls -----------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether a run is in progress."""
        run = self.run
        return run is not None and not run.done

    @requires("run")
    def start(self, paused: bool = False, loop: bool = False) -> Any:
        """Start a new run with the debugger attached (Run once; Run in a loop with
        ``loop``); with ``paused``, it pauses before its first nodes. Returns the FlowRun
        (None if the flow is invalid)."""
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
        passes = 0 if loop else self.passes
        try:
            coro = self._alaunch(sorted(breakpoints), passes)  # snapshots the flow now
            doc = self.pusher._doc
            if doc is not None and pn.state.curdoc is doc:
                # a click on a served page: never block the page's event loop on it
                fut = get_runtime().submit(coro)
                fut.add_done_callback(self._launched)
                return None
            run = get_runtime().run(coro, timeout=60)
        except KvmrpaError as exc:
            self._failed_to_start(exc)
            return None
        self.refresh()
        return run

    def _launched(self, fut: Any) -> None:  # on the runtime loop
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None:
            if not isinstance(exc, KvmrpaError):
                log.warning("starting %s failed: %s", getattr(self.flow, "name", "?"), exc)
            self._launch_error = " ".join(str(exc).split()) or type(exc).__name__
            self.pusher.poke()

    def _failed_to_start(self, exc: BaseException) -> None:
        text = " ".join(str(exc).split())
        self._show_error(text)
        self.status = f"failed: {text}"

    def _alaunch(self, breakpoints: list[str], passes: int) -> Any:
        """A coroutine that creates, attaches and starts a debuggable run of a snapshot
        of the flow taken now (a subclass may route it elsewhere)."""
        FlowRun = flow_run_class()
        flow = snapshot(self.flow)
        source, input_ = self.source, self.input

        async def launch() -> Any:
            run = await get_runtime().to_thread(
                lambda: FlowRun(flow, passes=passes, source=source, input=input_, debug=True,
                                breakpoints=breakpoints))
            self.feed.follow(run)
            await run.astart()
            return run

        return launch()

    def attach(self, run: Any) -> None:
        """Show and control ``run`` (a FlowRun of this flow started elsewhere, e.g. by
        ``flow.start(debug=True)`` or a FlowManager)."""
        self.feed.follow(run)

    def indicate(self, view: Any, **params: Any) -> Any:
        """An :class:`~kvmrpa.widgets.Indicator` linking ``view`` (a LiveView) to this
        debugger's selected node: regions, clicks on text and captured templates on the
        view edit that node (display it next to the view)."""
        from ._indicate import Indicator

        if self.editor.source is None:
            self.editor.source = view.source  # "Run on current frame" reads the same video
        return Indicator(view, self, **params)

    def _submit(self, coro: Any) -> None:
        fut = get_runtime().submit(coro)
        fut.add_done_callback(_log_failure)

    @requires("pause")
    def pause(self) -> None:
        """Let in-flight nodes finish and start no new one (Pause)."""
        if self.active:
            self._submit(self.run.debugger.apause(wait=False))

    @requires("step")
    def step(self) -> None:
        """Start exactly one ready node, then pause (Step). With no run, starts one paused
        before its first node."""
        if not self.active:
            self.start(paused=True)
            return
        self._submit(self.run.debugger.astep())

    @requires("run")
    def resume(self) -> None:
        """Continue until the next breakpoint or the end (Continue)."""
        if self.active:
            self._submit(self.run.debugger.aresume())

    @requires("stop")
    def stop(self) -> None:
        """Stop the run (Stop); returns without waiting."""
        if self.active:
            self._submit(self.run.astop())

    def close(self) -> None:
        """Stop the run and stop following it."""
        self.stop()
        self.detach()

    def detach(self) -> None:
        """Stop rendering and following the run's events; the run itself goes on
        (a page closing while others still show the run)."""
        self.pusher.close()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._own_feed:
            self.feed.close()

    def _show_error(self, text: str | None) -> None:
        self.error.object = text or ""
        self.error.visible = bool(text)

    # -- rendering ----------------------------------------------------------------------
    def node_states(self) -> dict[str, str]:
        """Each node's state now (from the run's events)."""
        return dict(self.state.snapshot()["states"])

    def current_status(self) -> str:
        """The status text for the status element."""
        return self.state.snapshot()["status"]

    def refresh(self, force: bool = False) -> None:
        """Render the graph, status, outcome, timeline and inspector from the state.

        Called from the pusher and from a cell's thread (``start``): one render at a
        time, each from a snapshot taken inside it, so an older snapshot is never
        drawn over a newer one."""
        with _REFRESH_LOCK:
            self._refresh(force)

    def _refresh(self, force: bool) -> None:
        if self._launch_error:
            error, self._launch_error = self._launch_error, None
            self._show_error(error)
            self.status = f"failed: {error}"
            return
        snap = self.state.snapshot()
        active = self.active
        self.flow_editor.locked = active
        self.flow_view.locked = active
        if self._temp_breakpoints and active and snap["status"] == "paused":
            temp, self._temp_breakpoints = self._temp_breakpoints, set()
            dbg = self.run.debugger
            get_runtime().call_soon(lambda: [dbg.remove_breakpoint(n) for n in temp])
        self.flow_view.show_run_state(self.state)  # the nodes changed since the last render
        states = self.flow_view.states
        status = snap["status"]
        if status == "idle" and self.status.startswith("failed") and self.run is None:
            status = self.status  # a run that could not start
        self.status = status
        self.outcome = snap["outcome"]
        html_ = status_html(status, snap["last_wall"] or None)
        if html_ != self.status_pane.object:
            self.status_pane.object = html_
        shown = snap["outcome"]
        if shown.startswith(f"{status} · "):  # "ok" beside "ok · 1 action": say it once
            shown = shown[len(status) + 1:]
        elif shown == status:
            shown = ""
        outcome = outcome_html(shown, snap["outcome_kind"]) if shown else ""
        if outcome != self.outcome_pane.object:
            self.outcome_pane.object = outcome
        timeline = self._timeline_html(states, snap["timing"])
        if force or timeline != self.timeline.object:
            self.timeline.object = timeline
        self._refresh_inspector(force, states)

    def _timeline_html(self, states: dict[str, str],
                       timing: dict[str, tuple[float | None, float | None]]) -> str:
        if self.run is None:
            return '<div style="color:#78909c;font:12px sans-serif">no run yet</div>'
        spans = {nid: timing.get(nid, (None, None)) for nid in states}
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
                f'text-overflow:ellipsis;white-space:nowrap;font:11px monospace">'
                f'{html.escape(nid)}</span><div style="position:relative;'
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
        status = str(getattr(rec.status, "value", rec.status))
        inputs = {k: to_jsonable(v) for k, v in (rec.inputs or {}).items()}
        # what a page shows passes the one redaction (secrets resolved at run time too)
        return redact_data({"node": node_id, "type": rec.type,
                            "status": _STATE_OF.get(status, status), "runs": rec.runs,
                            "inputs": inputs, "output": to_jsonable(rec.output),
                            "branch": rec.branch,
                            "error": None if rec.error is None else str(rec.error)})

    def _refresh_inspector(self, force: bool, states: dict[str, str] | None = None) -> None:
        run = self.run
        state = (states or {}).get(self.selected) if self.selected else None
        rec = run.nodes.get(self.selected) if run is not None and self.selected else None
        key = (self.selected, id(run), state, None if rec is None else (rec.runs, id(rec.output)))
        if not force and key == self._inspected:
            return
        if getattr(self, "inspector_card", None) is not None and self.inspector_card.collapsed \
                and self.pusher.bound:
            self._inspected = ()  # shown when opened
            return
        self._inspected = key
        self.inspector_json.object = self.inspect()
        image = None
        if rec is not None and state in ("done", "failed"):
            try:
                image = result_image(rec.output, rec.inputs)
            except Exception:  # inspection must never break the UI
                log.debug("no result image for %s", self.selected, exc_info=True)
        self.inspector_image.object = None if image is None else png_bytes(image)

    def controls(self) -> pn.Row:
        """The run controls with the status and outcome."""
        return pn.Row(*self.buttons.values(), self.status_pane, self.outcome_pane,
                      sizing_mode="stretch_width", styles={"flex-wrap": "wrap"})

    def __panel__(self) -> pn.viewable.Viewable:
        self.pusher.bind()
        self.refresh(force=True)
        return pn.Column(
            self.controls(), self.error,
            pn.Row(self.flow_view, self.editor.beside(height=self.flow_view.height or 460),
                   sizing_mode="stretch_width"),
            pn.Row(pn.pane.HTML("<b>Breakpoints</b>", margin=(8, 10)), self.breakpoint_toggles,
                   sizing_mode="stretch_width"),
            pn.Card(self.timeline, title="Timeline of the last pass", collapsed=False,
                    sizing_mode="stretch_width"),
            self.inspector_card,
            pn.Card(self.flow_editor, title="Edit flow", collapsed=True,
                    sizing_mode="stretch_width"),
            sizing_mode="stretch_width")


def snapshot(flow: Any) -> Any:
    """An independent copy of ``flow`` (what a run uses: later edits do not reach it)."""
    if flow is None:
        return None
    Flow = type(flow)
    copy = Flow.from_dict(flow.to_dict(), origin=f"<snapshot of {flow.name}>")
    for fld in ("created", "updated"):
        setattr(copy, fld, getattr(flow, fld, None))
    return copy


def _log_failure(fut: Any) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        log.warning("debugger command failed: %s", exc)

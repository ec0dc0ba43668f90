"""Dashboard: the app-mode page (``kvmrpa serve``), and the app object behind it.

:class:`DashboardApp` is process-wide: it loads the flows of a folder, owns the runs
started from any browser session (one current run per flow; a run started in one tab
is seen in every tab) and the shared video sources, and stops and releases them all in
:meth:`DashboardApp.close`. :class:`Dashboard` is one session's page: the flows list
with start / stop / pause and each flow's state, the live view of the selected flow's
source (with the latest results drawn over it), the FlowView + Debugger of the selected
flow, the run-log tail and metrics (fps, frame age, reconnects, passes/min, failures).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from pathlib import Path
from typing import Any

import panel as pn
import param

from kvmrpa._errors import KvmrpaError
from kvmrpa._runtime import get_runtime
from kvmrpa._urls import redact_url

from ._debugger import Debugger, _log_failure
from ._engine import flow_class, flow_manager_class
from ._liveview import LiveView

__all__ = ["Dashboard", "DashboardApp"]

log = logging.getLogger("kvmrpa.widgets.dashboard")

DEFAULT_SOURCE = "sim://desktop"


class DashboardApp(param.Parameterized):
    """The process-wide state of the dashboard: flows, their runs, shared sources."""

    flows_dir = param.Path(default=None, allow_None=True, check_exists=False, doc="""
        Folder whose ``*.json`` flow files are listed (None: no flows).""")
    source_url = param.String(default=DEFAULT_SOURCE, doc="""
        Source for flows that name none, and shown when no flow is selected.""")
    input_url = param.String(default=None, allow_None=True, doc="""
        Input driver for flows that name none, and for console mode.""")
    override = param.Boolean(default=False, doc="""
        Run every flow on source_url / input_url instead of the flow's own URLs.""")

    def __init__(self, flows_dir: str | Path | None = None, **params: Any) -> None:
        super().__init__(flows_dir=None if flows_dir is None else str(flows_dir), **params)
        self._lock = threading.RLock()
        self.flows: dict[str, Any] = {}
        self.flow_files: dict[str, Path] = {}
        self.load_errors: dict[str, str] = {}
        self.manager = flow_manager_class()()
        self._started: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._sources: dict[str, Any] = {}
        self._drivers: dict[str, Any] = {}
        self._closed = False
        self.reload()

    # -- flows --------------------------------------------------------------------------
    def reload(self) -> None:
        """(Re)read the flows folder; a file that does not load is listed with its error."""
        Flow = flow_class()
        flows: dict[str, Any] = {}
        files: dict[str, Path] = {}
        errors: dict[str, str] = {}
        folder = Path(self.flows_dir) if self.flows_dir else None
        for path in sorted(folder.glob("*.json")) if folder and folder.is_dir() else []:
            try:
                flow = Flow.load(path)
            except KvmrpaError as exc:
                errors[path.stem] = " ".join(str(exc).split())
                log.warning("dashboard: %s", exc)
                continue
            name = flow.name or path.stem
            if name in flows:
                name = path.stem
            flows[name] = flow
            files[name] = path
        with self._lock:
            self.flows, self.flow_files, self.load_errors = flows, files, errors
        for flow in flows.values():
            self.manager.add(flow, replace=True)

    @property
    def display_source(self) -> str:
        return redact_url(self.source_url)

    def source_of(self, name: str | None) -> str:
        """The source URL the named flow runs on (and the live view shows)."""
        flow = self.flows.get(name) if name else None
        if flow is None or self.override or not flow.source:
            return self.source_url
        return flow.source

    def input_of(self, name: str | None) -> str | None:
        flow = self.flows.get(name) if name else None
        if flow is None or self.override or not flow.input:
            if self.input_url:
                return self.input_url
            src = self.source_of(name)
            return src if src.startswith("sim://") else None
        return flow.input

    # -- runs (owned by the engine's FlowManager) ------------------------------------------
    def current_run(self, name: str) -> Any | None:
        """The latest run of the named flow (running or finished), if any."""
        return self.manager.run_of(name)

    def _count(self, name: str, event: Any) -> None:
        if getattr(event, "kind", None) == "pass_finished" and getattr(event, "status", "") == "failed":
            with self._lock:
                self._failures[name] = self._failures.get(name, 0) + 1

    def launch(self, name: str, *, passes: int = 0, breakpoints: list[str] | None = None) -> Any:
        """Start a debuggable run of the named flow on its source and input through the
        FlowManager; raises :class:`~kvmrpa.FlowStateError` when it already runs."""
        run = self.manager.start(name, passes=passes, source=self.source_of(name),
                                 input=self.input_of(name), debug=True,
                                 breakpoints=breakpoints or [])
        with self._lock:
            self._started[name] = time.monotonic()
            self._failures[name] = 0
        run.on_event(lambda ev, name=name: self._count(name, ev))
        return run

    def start(self, name: str, passes: int = 0) -> Any:
        """Start the named flow (loop mode by default) unless it is running."""
        run = self.current_run(name)
        if run is not None and not run.done:
            return run
        try:
            return self.launch(name, passes=passes)
        except KvmrpaError as exc:  # another session started it just now
            log.info("dashboard: %s", exc)
            return self.current_run(name)

    def stop(self, name: str) -> None:
        """Stop the named flow's run (returns at once)."""
        get_runtime().submit(self.manager.astop(name)).add_done_callback(_log_failure)

    def pause(self, name: str) -> None:
        """Pause (or resume, when paused) the named flow's run."""
        run = self.current_run(name)
        if run is None or run.done:
            return
        paused = run.paused
        coro = self.manager.aresume(name) if paused else self.manager.apause(name)
        get_runtime().submit(coro).add_done_callback(_log_failure)

    def flow_state(self, name: str) -> str:
        """idle, running, paused, ok, stopped or failed."""
        run = self.current_run(name)
        if run is None:
            return "idle"
        if run.paused:
            return "paused"
        return "running" if not run.done else str(run.status)

    def metrics(self, name: str | None) -> dict[str, Any]:
        """Passes, passes/min and failures of the flow; fps, age, reconnects of its source."""
        out: dict[str, Any] = {}
        src = self._sources.get(self.source_of(name))
        if src is not None:
            m = src.metrics()
            out.update(fps=round(m.fps, 1), frame_age_ms=None if m.age_s is None else round(m.age_s * 1000),
                       reconnects=m.reconnects, source_state=str(m.state))
        run = self.current_run(name) if name else None
        if run is not None:
            minutes = max((time.monotonic() - self._started.get(name, time.monotonic())) / 60, 1e-6)
            out.update(passes=run.passes, passes_per_min=round(run.passes / minutes, 1),
                       failures=self._failures.get(name, 0))
        return out

    # -- shared sources -----------------------------------------------------------------
    def source(self, url: str) -> Any | None:
        """The shared, started source for ``url`` (opened once; released by close)."""
        with self._lock:
            if self._closed:
                return None
            src = self._sources.get(url)
            if src is None:
                from kvmrpa.capture import open_source

                try:
                    src = open_source(url)
                except KvmrpaError as exc:
                    log.warning("dashboard: cannot open %s: %s", redact_url(url), exc)
                    return None
                self._sources[url] = src
            return src

    def driver(self, url: str | None, source: Any | None = None) -> Any | None:
        """The shared input driver for console mode (opened once; released by close).

        ``source`` is the source whose frames the console's clicks are in: the driver
        maps from the size of its latest frame (the live view keeps that up to date when
        the capture resolution changes later).
        """
        if not url:
            return None
        latest = source.latest() if source is not None else None
        frame_size = None if latest is None else latest.size
        with self._lock:
            drv = self._drivers.get(url)
            if drv is not None and frame_size is not None and drv.frame_size != frame_size:
                log.info("dashboard: input %s now maps from %dx%d frames", drv.display_url,
                         *frame_size)
                drv.frame_size = frame_size
            if drv is None and not self._closed:
                from kvmrpa.kvm import open_driver

                try:
                    drv = open_driver(url, frame_size=frame_size)
                except KvmrpaError as exc:
                    log.warning("dashboard: cannot open input %s: %s", redact_url(url), exc)
                    return None
                self._drivers[url] = drv
            return drv

    def view(self, close_app: bool = False) -> Dashboard:
        """A new page for one browser session (what ``pn.serve`` calls).

        Under a server, the page's refresh callbacks and streaming stop when its session
        ends. With ``close_app`` the app itself is closed then too (its runs stopped, its
        sources released): for an app made per session, as a notebook served with
        ``panel serve`` does, where nothing else would ever close it.
        """
        dash = Dashboard(app=self)
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            def destroyed(_ctx: Any) -> None:  # on the server's loop: nothing long here
                dash.close()
                if close_app:  # stopping runs and joining source threads takes a while
                    threading.Thread(target=self.close, name="kvmrpa-dashboard-close",
                                     daemon=True).start()

            pn.state.on_session_destroyed(destroyed)
        return dash

    def close(self) -> None:
        """Stop every run and release every source and driver (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sources, self._sources = list(self._sources.values()), {}
            drivers, self._drivers = list(self._drivers.values()), {}
        try:
            self.manager.stop_all(timeout=10)
        except Exception:
            log.exception("dashboard: stopping the flows failed")
        from kvmrpa.capture import release_source

        for src in sources:
            release_source(src)
        if drivers:
            from kvmrpa.kvm import release_driver

            for drv in drivers:
                release_driver(drv)


class _HostedDebugger(Debugger):
    """A Debugger whose runs are the app's (shared by every session)."""

    def __init__(self, app: DashboardApp, name: str, **params: Any) -> None:
        self._app = app
        self._name = name
        super().__init__(app.flows[name], source=app.source_of(name), input=app.input_of(name),
                         **params)

    def _launch(self, breakpoints: list[str]) -> Any:
        run = self._app.launch(self._name, passes=self.passes, breakpoints=breakpoints)
        self.attach(run)
        return run

    def refresh(self, force: bool = False) -> None:
        run = self._app.current_run(self._name)
        if run is not None and run is not self.run:
            self.attach(run)
            force = True
        super().refresh(force)


class Dashboard(pn.viewable.Viewer):
    """The app-mode page: flows, live view, graph + debugger, run log, metrics."""

    app = param.ClassSelector(class_=DashboardApp, doc="The process-wide app state.")
    selected = param.Selector(default=None, objects=[], allow_None=True, doc="""
        Name of the selected flow (the first one at start).""")
    refresh_ms = param.Integer(default=250, bounds=(50, 5000), doc="""
        Milliseconds between refreshes of the flows list, log and metrics.""")

    def __init__(self, app: DashboardApp | None = None, **params: Any) -> None:
        app = app or DashboardApp()
        names = list(app.flows)
        super().__init__(app=app, **params)
        self.param.selected.objects = names
        if self.selected is None and names:
            self.selected = names[0]
        self._debuggers: dict[str, _HostedDebugger] = {}
        self._callback: Any = None
        self.flow_list = pn.widgets.RadioBoxGroup(label="Flows", options=names,
                                                  value=self.selected, inline=False)
        self.flow_list.link(self, value="selected", bidirectional=True)
        self.flow_states = pn.pane.HTML("", sizing_mode="stretch_width")
        self.start_button = pn.widgets.Button(label="Start flow", color="primary")
        self.stop_button = pn.widgets.Button(label="Stop flow", color="danger")
        self.pause_button = pn.widgets.Button(label="Pause flow")
        self.start_button.on_click(lambda _: self.selected and self.app.start(self.selected))
        self.stop_button.on_click(lambda _: self.selected and self.app.stop(self.selected))
        self.pause_button.on_click(lambda _: self.selected and self.app.pause(self.selected))
        self.live = LiveView(None, min_height=300)
        self.metrics = pn.pane.HTML("", sizing_mode="stretch_width")
        self.run_log = pn.pane.HTML("", sizing_mode="stretch_width", max_height=220,
                                    styles={"overflow-y": "auto"})
        self.debugger_area = pn.Column(sizing_mode="stretch_width")
        self.param.watch(self._on_selected, ["selected"])
        self._on_selected()

    @property
    def debugger(self) -> Debugger | None:
        """The Debugger of the selected flow."""
        return self._debuggers.get(self.selected) if self.selected else None

    def _on_selected(self, *_: Any) -> None:
        name = self.selected
        url = self.app.source_of(name)
        src = self.app.source(url)
        if src is not self.live.source:
            self.live.param.update(source=src, overlays=[], point=None, region=None)
        self.live.driver = self.app.driver(self.app.input_of(name), src)
        if name is None:
            self.debugger_area.objects = [pn.pane.Markdown("*no flow loaded*")]
            return
        dbg = self._debuggers.get(name)
        if dbg is None:
            dbg = self._debuggers[name] = _HostedDebugger(self.app, name,
                                                          refresh_ms=self.refresh_ms)
        dbg.editor.source = src
        path = self.app.flow_files.get(name)
        dbg.flow_editor.path = None if path is None else str(path)
        self.debugger_area.objects = [dbg]
        self.refresh()

    def refresh(self) -> None:
        """Update flow states, metrics, log tail and live-view overlays."""
        rows = []
        for name in self.app.flows:
            state = self.app.flow_state(name)
            rows.append(f'<tr data-flow="{html.escape(name)}"><td>{html.escape(name)}</td>'
                        f'<td aria-label="state of {html.escape(name)}">{state}</td></tr>')
        for name, err in self.app.load_errors.items():
            rows.append(f'<tr><td>{html.escape(name)}</td><td style="color:#c62828">'
                        f'not loaded: {html.escape(err)}</td></tr>')
        table = f'<table style="font:12px sans-serif">{"".join(rows)}</table>'
        if table != self.flow_states.object:
            self.flow_states.object = table
        m = self.app.metrics(self.selected)
        metrics = " · ".join(f"{k.replace('_', ' ')}: {v}" for k, v in m.items() if v is not None)
        metrics_html = f'<div aria-label="Metrics" style="font:12px monospace">{html.escape(metrics)}</div>'
        if metrics_html != self.metrics.object:
            self.metrics.object = metrics_html
        dbg = self.debugger
        if dbg is not None:
            lines = dbg.state.snapshot()["log"][-20:]
            log_html = ('<pre aria-label="Run log" style="font:11px monospace;margin:0">'
                        + html.escape("\n".join(lines) or "no run yet") + "</pre>")
            if log_html != self.run_log.object:
                self.run_log.object = log_html
            self._show_results(dbg)

    def _show_results(self, dbg: Debugger) -> None:
        run = dbg.run
        if run is None:
            return
        latest: dict[str, Any] = {}
        for rec in run.nodes.values():
            out = rec.output or {}
            if rec.status != "done" or not isinstance(out, dict):
                continue
            for key in ("texts", "matches", "detections", "point"):
                finished = rec.finished or 0.0
                if out.get(key) is not None and finished >= latest.get(key, (-1.0,))[0]:
                    latest[key] = (finished, out[key])  # node outputs are in source pixels
        key = tuple(sorted((k, id(v[1])) for k, v in latest.items()))
        if key == getattr(self, "_shown_key", None):
            return
        self._shown_key = key
        self.live.show(*(latest[k][1] for k in ("texts", "matches", "detections") if k in latest),
                       point=latest["point"][1] if "point" in latest else None)

    def _start_refresh(self) -> None:
        if self._callback is not None:
            return
        try:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.refresh_ms)
        except RuntimeError:
            self._callback = None

    def close(self) -> None:
        """Stop this page's refresh callbacks and streaming (runs keep going)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        for dbg in self._debuggers.values():
            dbg.detach()
        self.live.close()

    def __panel__(self) -> pn.viewable.Viewable:
        self._start_refresh()
        sidebar = pn.Column(
            "### Flows", self.flow_list, self.flow_states,
            pn.Row(self.start_button, self.stop_button, self.pause_button),
            "### Metrics", self.metrics, "### Run log", self.run_log,
            width=330)
        main = pn.Column(self.live, self.debugger_area, sizing_mode="stretch_width")
        return pn.Row(sidebar, main, sizing_mode="stretch_width")

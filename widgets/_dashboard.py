"""Dashboard: the app-mode page (``kvmrpa serve``), and the app object behind it.

:class:`DashboardApp` is process-wide: it loads the flows of a folder, owns the runs
started from any browser session (one current run per flow, through the engine's
FlowManager), one :class:`~kvmrpa.widgets._runstate.FlowFeed` per flow (the state, log
and metrics every tab renders, fed by the runs' events), the shared video sources, and
saves flows (atomically, through ``Flow.save``). :meth:`DashboardApp.close` stops and
releases everything.

:class:`Dashboard` is one session's page: the flows as tabs (each with its state), the
selected flow's description, its draft (edits stay in this session until Apply — this
session's next run — or Save; Revert drops them; a save from another session shows
"changed in another session — reload"), one set of run controls, the live view with the
results of this session's runs drawn over it (they fade when the screen changes, and
after ``settings.stream.overlay_ttl``), the graph, the run log (one per flow, the last
500 lines) and the metrics. Everything is pushed from the engine's events.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import panel as pn
import param
from panel.custom import JSComponent

from kvmrpa._errors import KvmrpaError
from kvmrpa._runtime import get_runtime
from kvmrpa._urls import redact_url

from ._auth import can, require, requires
from ._debugger import Debugger, _log_failure, snapshot
from ._engine import flow_class, flow_manager_class
from ._floweditor import FlowFiles
from ._indicate import Indicator
from ._liveview import LiveView
from ._markup import LiveHTML
from ._overlays import OverlayStamp, overlays_from
from ._params import BrowserParams
from ._push import Pusher
from ._recorder import RecorderControls
from ._resources import NotebookFallback
from ._runs import RunsView
from ._runstate import FlowFeed

__all__ = ["Dashboard", "DashboardApp", "FlowTabs"]

log = logging.getLogger("kvmrpa.widgets.dashboard")

DEFAULT_SOURCE = "sim://desktop"
TITLE = "kvmrpa dashboard"


def _comparable(flow: Any) -> dict[str, Any]:
    data = flow.to_dict()
    data.pop("created", None)
    data.pop("updated", None)
    return data


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
        #: Bumped each time a flow is saved or reloaded (drafts compare against it).
        self.versions: dict[str, int] = {}
        self.feeds: dict[str, FlowFeed] = {}
        self.manager = flow_manager_class()()
        self._sources: dict[str, Any] = {}
        self._drivers: dict[str, Any] = {}
        self._saved_listeners: list[Callable[[str, Any], None]] = []
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
                flow.name = name
            flows[name] = flow
            files[name] = path
        with self._lock:
            self.flows, self.flow_files, self.load_errors = flows, files, errors
            for name, flow in flows.items():
                self.versions[name] = self.versions.get(name, 0) + 1
                if name not in self.feeds:
                    self.feeds[name] = FlowFeed(name, list(flow.nodes),
                                                {n: fn.type for n, fn in flow.nodes.items()})
        for flow in flows.values():
            self.manager.add(flow, replace=True)

    def on_saved(self, listener: Callable[[str, Any], None]) -> Callable[[], None]:
        """Call ``listener(name, by)`` when a flow is saved (``by``: the saving session's
        token); returns an unsubscribe function."""
        with self._lock:
            self._saved_listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._saved_listeners:
                    self._saved_listeners.remove(listener)

        return unsubscribe

    def save_flow(self, name: str, flow: Any, by: Any = None) -> Path:
        """Save ``flow`` (a session's draft) as the named flow: atomically to its file,
        then it is what every session's next run without a draft uses."""
        require("save", name)
        path = self.flow_files.get(name)
        if path is None:
            raise KvmrpaError(f"flow {name!r} has no file to save to")
        copy = snapshot(flow)
        copy.name = name
        saved = copy.save(path)
        with self._lock:
            self.flows[name] = copy
            self.versions[name] = self.versions.get(name, 0) + 1
            listeners = list(self._saved_listeners)
        self.feeds[name].state.note(f"   saved to {saved.name}")
        for listener in listeners:
            try:
                listener(name, by)
            except Exception:
                log.debug("save listener failed", exc_info=True)
        return saved

    def add_draft(self, flow: Any) -> str:
        """Add an unsaved flow (a recording) to the list under a free name, its file to
        be ``<flows_dir>/<name>.json`` when saved; returns the name. The caller checks
        the ``edit`` permission."""
        base = flow.name or "recorded"
        folder = Path(self.flows_dir) if self.flows_dir else None
        with self._lock:
            name, n = base, 1
            while name in self.flows or name in self.load_errors or (
                    folder is not None and (folder / f"{name}.json").exists()):
                n += 1
                name = f"{base}-{n}"
            flow.name = name
            self.flows[name] = flow
            if folder is not None:
                self.flow_files[name] = folder / f"{name}.json"
            self.versions[name] = self.versions.get(name, 0) + 1
            self.feeds[name] = FlowFeed(name, list(flow.nodes),
                                        {n: fn.type for n, fn in flow.nodes.items()})
        self.manager.add(flow, replace=True)
        return name

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

    def launch(self, name: str, *, passes: int = 0, breakpoints: list[str] | None = None,
               flow: Any = None) -> Any:
        """Start a debuggable run of a snapshot of ``flow`` (default: the saved flow) on the
        named flow's source and input; raises :class:`~kvmrpa.FlowStateError` when it
        already runs. Every view of the flow follows the run from its first event."""
        return get_runtime().run(self.alaunch(name, passes=passes, breakpoints=breakpoints,
                                              flow=flow), timeout=60)

    def alaunch(self, name: str, *, passes: int = 0, breakpoints: list[str] | None = None,
                flow: Any = None) -> Any:
        """The coroutine of :meth:`launch` (for the runtime loop); the snapshot of the
        flow is taken now, by the caller."""
        run_flow = snapshot(flow if flow is not None else self.flows[name])
        run_flow.name = name
        manager = self.manager
        feed = self.feeds[name]
        options = {"passes": passes, "source": self.source_of(name), "input": self.input_of(name),
                   "debug": True, "breakpoints": breakpoints or []}

        async def start() -> Any:  # on the runtime loop: nothing runs in between
            await manager.aadd(run_flow, replace=True)
            run = await manager.astart(name, **options)
            feed._follow(run)
            return run

        return start()

    @requires("run")
    def start(self, name: str, passes: int = 0, flow: Any = None) -> Any:
        """Start the named flow (loop mode by default) unless it is running."""
        run = self.current_run(name)
        if run is not None and not run.done:
            return run
        try:
            return self.launch(name, passes=passes, flow=flow)
        except KvmrpaError as exc:  # another session started it just now
            log.info("dashboard: %s", exc)
            return self.current_run(name)

    @requires("stop")
    def stop(self, name: str) -> None:
        """Stop the named flow's run (the request is made at once; returns without
        waiting for the run to wind down)."""
        get_runtime().submit(self.manager.astop(name)).add_done_callback(_log_failure)

    @requires("pause")
    def pause(self, name: str) -> None:
        """Pause (or resume, when paused) the named flow's run."""
        run = self.current_run(name)
        if run is None or run.done:
            return
        coro = self.manager.aresume(name) if run.paused else self.manager.apause(name)
        get_runtime().submit(coro).add_done_callback(_log_failure)

    def flow_state(self, name: str) -> str:
        """idle, running, paused, ok, stopped or failed (from the flow's events)."""
        feed = self.feeds.get(name)
        if feed is None:
            return "idle"
        return feed.state.status.split(":")[0]

    def metrics(self, name: str | None) -> dict[str, Any]:
        """Passes, passes/min (over a sliding window of completed passes), failures and
        the last outcome of the flow; state and reconnects of its source."""
        out: dict[str, Any] = {}
        feed = self.feeds.get(name) if name else None
        if feed is not None:
            snap = feed.state.snapshot()
            rate = snap["passes_per_min"]
            out.update(passes=snap["passes"],
                       passes_per_min=None if rate is None else round(rate, 1),
                       failures=snap["failures"])
        src = self._sources.get(self.source_of(name))
        if src is not None:
            m = src.metrics()
            out.update(source=str(getattr(m.state, "value", m.state)), reconnects=m.reconnects)
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

        Under a server, the page stops rendering and streaming when its session ends.
        With ``close_app`` the app itself is closed then too (its runs stopped, its
        sources released): for an app made per session, as a notebook served with
        ``panel serve`` does, where nothing else would ever close it.
        """
        dash = Dashboard(app=self)
        doc = pn.state.curdoc
        if doc is not None:
            doc.title = TITLE
        if doc is not None and doc.session_context is not None:
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
        for feed in self.feeds.values():
            feed.close()
        from kvmrpa.capture import release_source

        for src in sources:
            release_source(src)
        if drivers:
            from kvmrpa.kvm import release_driver

            for drv in drivers:
                release_driver(drv)


class FlowTabs(BrowserParams, JSComponent):
    """The flows as ARIA tabs (``role=tab`` in a ``role=tablist``), each with its state."""

    value = param.String(default=None, allow_None=True, doc="Name of the selected flow.")
    items = param.List(default=[], item_type=dict, doc="""
        One dict per flow: name, state (idle, running, …) and title (the tooltip).""")

    _esm: ClassVar[str] = """
const COLOURS = {ok: "#2e7d32", failed: "#c62828", running: "#e65100", paused: "#1565c0"}
function get(o, k) { return o instanceof Map ? o.get(k) : o[k] }
export function render({ model, el }) {
  const list = document.createElement("div")
  list.setAttribute("role", "tablist")
  list.setAttribute("aria-label", "Flows")
  list.style.cssText = "display:flex;flex-wrap:wrap;gap:4px;font:13px sans-serif"
  el.appendChild(list)
  function draw() {
    list.replaceChildren()
    const items = model.items || []
    items.forEach((it, i) => {
      const name = get(it, "name"), state = get(it, "state") || "idle"
      const b = document.createElement("button")
      b.type = "button"
      b.setAttribute("role", "tab")
      b.id = `kv-tab-${i}`
      b.dataset.flow = name
      b.dataset.state = state
      const selected = model.value === name
      b.setAttribute("aria-selected", String(selected))
      b.tabIndex = selected ? 0 : -1
      b.title = get(it, "title") || name
      b.style.cssText = "padding:5px 10px;border:1px solid #b0bec5;border-radius:6px 6px 0 0;" +
        "cursor:pointer;background:" + (selected ? "#fff" : "#eceff1") + ";border-bottom:" +
        (selected ? "2px solid #1565c0" : "1px solid #b0bec5") + ";font-weight:" + (selected ? "bold" : "normal")
      const label = document.createElement("span")
      label.textContent = name
      const badge = document.createElement("span")
      badge.textContent = ` · ${state}`
      badge.setAttribute("aria-label", `state of ${name}`)
      badge.style.cssText = `font-weight:normal;color:${COLOURS[state] || "#546e7a"}`
      b.append(label, badge)
      b.addEventListener("click", () => { model.value = name })
      b.addEventListener("keydown", (ev) => {
        const d = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0
        if (!d) return
        const next = items[(i + d + items.length) % items.length]
        model.value = get(next, "name")
        setTimeout(() => { const t = list.querySelector('[aria-selected="true"]'); if (t) t.focus() }, 50)
      })
      list.appendChild(b)
    })
  }
  model.on(["items", "value"], draw)
  draw()
}
"""


class _HostedDebugger(Debugger):
    """A Debugger of a session's draft whose runs are the app's (seen by every session)."""

    def __init__(self, dash: Dashboard, name: str, **params: Any) -> None:
        self._dash = dash
        self._app = dash._app
        self._name = name
        app = self._app
        super().__init__(dash.draft(name), feed=app.feeds[name], source=app.source_of(name),
                         input=app.input_of(name), **params)

        def edited(_field: str) -> None:
            self.flow_view.refresh()
            dash._draft_changed(name)

        self.editor.on_edit = edited
        # one push per page: the page's pusher renders this debugger first, then the rest
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.pusher.close()
        self.pusher = dash.pusher
        self._unsubscribe = None
        on_flow = self._on_flow

        def changed() -> None:
            on_flow()
            dash._draft_changed(name)

        self.flow_editor._on_change = changed

    def _alaunch(self, breakpoints: list[str], passes: int) -> Any:
        return self._app.alaunch(self._name, passes=passes, breakpoints=breakpoints,
                                 flow=self._dash.run_flow(self._name))

    def stop(self) -> None:
        self._app.stop(self._name)


class Dashboard(NotebookFallback, pn.viewable.Viewer):
    """The app-mode page: flows, draft, run controls, live view, graph, run log, metrics."""

    app = param.ClassSelector(class_=DashboardApp, doc="The process-wide app state.")
    selected: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True, doc="""
        Name of the selected flow (the first one at start).""")

    @property
    def _app(self) -> DashboardApp:
        """:attr:`app`, which ``__init__`` always sets."""
        assert self.app is not None
        return self.app

    def __init__(self, app: DashboardApp | None = None, **params: Any) -> None:
        app = app or DashboardApp()
        names = list(app.flows)
        super().__init__(app=app, **params)
        self.param.selected.objects = names
        if self.selected is None and names:
            self.selected = names[0]
        self._opened = time.time()
        self._token = object()  # this session, in the app's save notices
        self._drafts: dict[str, Any] = {}
        self._draft_versions: dict[str, int] = {}
        self._applied: dict[str, Any] = {}
        self._stale: set[str] = set()
        self._debuggers: dict[str, _HostedDebugger] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._overlay: OverlayStamp | None = None
        self._overlay_cb: Any = None
        self._shown_key: Any = None
        self._draft_dirty = True
        self._log_key: Any = None
        self._select_next: str | None = None  # a recorded flow, selected on the next push
        self.pusher = Pusher(self.refresh)
        self.tabs = FlowTabs(value=self.selected, sizing_mode="stretch_width")
        self.tabs.link(self, value="selected", bidirectional=True)
        self.title = pn.pane.HTML(
            f'<h1 style="font:bold 18px sans-serif;margin:4px 12px 0 0;white-space:nowrap">'
            f'{TITLE}</h1>', margin=(5, 5))
        #: Flows (the default) or Runs (recorded runs and their reports).
        self.pages = pn.widgets.RadioButtonGroup(options=["Flows", "Runs"], value="Flows",
                                                 color="light", margin=(8, 10))
        self.description = LiveHTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.modified = LiveHTML("", margin=(10, 6))
        tip = {"Apply": "Use this draft for the next run started from this tab",
               "Save": "Write the draft to the flow file (every tab's next run uses it)",
               "Revert": "Drop this tab's edits and show the saved flow"}
        self.apply_button = pn.widgets.Button(label="Apply", description=tip["Apply"], width=70)
        self.save_button = pn.widgets.Button(label="Save", description=tip["Save"], width=70)
        self.revert_button = pn.widgets.Button(label="Revert", description=tip["Revert"],
                                               width=70)
        self.reload_button = pn.widgets.Button(label="Reload", color="warning",
                                               visible=False, width=80,
                                               description="Load the flow as saved in another tab")
        self.notice = LiveHTML("", margin=(10, 6), visible=False)
        self.apply_button.on_click(lambda _: self.apply_draft())
        self.save_button.on_click(lambda _: self.save_draft())
        self.revert_button.on_click(lambda _: self.revert_draft())
        self.reload_button.on_click(lambda _: self.revert_draft())
        self.apply_button.disabled = not can("edit")  # the handlers check again
        self.save_button.disabled = not can("save")
        self.message = pn.pane.Alert("", alert_type="danger", visible=False)
        #: New flow, Open (upload), Save as.
        self.files = FlowFiles(self)
        self.live = LiveView(None, min_height=150, sizing_mode="stretch_width",
                             styles={"max-width": "calc((100vh - 330px) * 16 / 9)"})
        self.metrics = LiveHTML("", sizing_mode="stretch_width")
        self.run_log = LiveHTML("", sizing_mode="stretch_width", max_height=260,
                                styles={"overflow-y": "auto"})
        self.controls_area = pn.Row(sizing_mode="stretch_width")
        self.debugger_area = pn.Column(sizing_mode="stretch_width")
        #: Indicate on screen: the live view edits the selected node of the flow shown.
        self.indicator = Indicator(self.live, None)
        #: Record: the console's actions become a new draft flow in the list.
        self.recorder_controls = RecorderControls(self.live, on_recorded=self._recorded,
                                                  recorder_params=self._recorder_params)
        for feed in app.feeds.values():
            self._unsubscribe.append(feed.state.subscribe(self.pusher.poke))
        self._unsubscribe.append(app.on_saved(self._on_saved))
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            self.pusher.bind()
        self.param.watch(self._on_selected, ["selected"])
        self._on_selected()

    # -- drafts -------------------------------------------------------------------------
    def draft(self, name: str) -> Any:
        """This session's draft of the named flow (a copy of the saved flow at first)."""
        if name not in self._drafts:
            self._drafts[name] = snapshot(self._app.flows[name])
            self._draft_versions[name] = self._app.versions.get(name, 0)
        return self._drafts[name]

    def is_modified(self, name: str) -> bool:
        """Whether this session's draft differs from the saved flow."""
        draft = self._drafts.get(name)
        return draft is not None and _comparable(draft) != _comparable(self._app.flows[name])

    def run_flow(self, name: str) -> Any:
        """What this session's next run of ``name`` uses: the applied draft, or the saved
        flow."""
        return self._applied.get(name) or self._app.flows[name]

    def _draft_changed(self, name: str) -> None:
        self._render_draft()

    @requires("edit")
    def apply_draft(self) -> None:
        """Use the selected flow's draft for this session's next runs."""
        name = self.selected
        if name is None:
            return
        try:
            self.draft(name).validate()
        except KvmrpaError as exc:
            self._tell(" ".join(str(exc).split()))
            return
        self._applied[name] = snapshot(self.draft(name))
        self._tell(None)
        self._render_draft()

    def save_draft(self) -> None:
        """Save the selected flow's draft to its file (atomically)."""
        name = self.selected
        if name is None:
            return
        try:
            self._app.save_flow(name, self.draft(name), by=self._token)
        except KvmrpaError as exc:
            self._tell(" ".join(str(exc).split()))
            return
        self._applied.pop(name, None)
        self._draft_versions[name] = self._app.versions.get(name, 0)
        self._stale.discard(name)
        self._tell(None)
        self._render_draft()

    def revert_draft(self) -> None:
        """Drop this session's edits of the selected flow (also: reload after another
        session saved it)."""
        name = self.selected
        if name is None:
            return
        self._drafts.pop(name, None)
        self._applied.pop(name, None)
        self._stale.discard(name)
        dbg = self._debuggers.get(name)
        if dbg is not None:
            dbg.flow = self.draft(name)
        self._tell(None)
        self._render_draft()

    def _on_saved(self, name: str, by: Any) -> None:
        if by is self._token:
            return
        if name in self._drafts:
            self._stale.add(name)
        self._draft_dirty = True
        self.pusher.poke()

    def _tell(self, text: str | None) -> None:
        self.message.object = text or ""
        self.message.visible = bool(text)

    def _render_draft(self) -> None:
        name = self.selected
        if name is None:
            return
        modified = self.is_modified(name)
        applied = name in self._applied
        if modified and applied:
            text, colour = "● modified (applied to this tab's runs, not saved)", "#e65100"
        elif modified:
            text, colour = "● modified (not applied, not saved)", "#e65100"
        else:
            text, colour = "saved", "#607d8b"
        path = self._app.flow_files.get(name)
        if path is None or not path.exists():
            text, colour = "● new (not saved)", "#e65100"
        marker = (f'<span aria-label="Draft state" data-modified="{str(modified).lower()}" '
                  f'style="font:12px sans-serif;color:{colour}">{html.escape(text)}</span>')
        if marker != self.modified.object:
            self.modified.object = marker
        stale = name in self._stale
        self.notice.object = ('<span role="alert" style="font:bold 12px sans-serif;'
                              'color:#e65100">changed in another session — reload</span>')
        self.notice.visible = stale
        self.reload_button.visible = stale
        flow = self._app.flows[name]
        desc = html.escape(flow.description or "no description")
        self.description.object = (f'<p aria-label="Flow description" style="font:13px '
                                   f'sans-serif;color:#37474f;margin:4px 0">{desc}</p>')

    # -- selection ----------------------------------------------------------------------
    @property
    def debugger(self) -> Debugger | None:
        """The Debugger of the selected flow."""
        return self._debuggers.get(self.selected) if self.selected else None

    def _on_selected(self, *_: Any) -> None:
        name = self.selected
        url = self._app.source_of(name)
        src = self._app.source(url)
        if src is not self.live.source:
            self.live.param.update(source=src, overlays=[], point=None, region=None)
        self.live.driver = self._app.driver(self._app.input_of(name), src)
        self._clear_overlays()
        if name is None:
            self.debugger_area.objects = [pn.pane.Markdown("*no flow loaded*")]
            self.controls_area.objects = []
            return
        dbg = self._debuggers.get(name)
        if dbg is None:
            dbg = self._debuggers[name] = _HostedDebugger(self, name)
        dbg.editor.source = src
        path = self._app.flow_files.get(name)
        self.indicator.param.update(debugger=dbg, flow_path=None if path is None else str(path))
        dbg.flow_editor.path = None
        dbg.flow_editor.on_save = self.save_draft
        self.controls_area.objects = [dbg.controls()]
        self.debugger_area.objects = [
            pn.Row(dbg.flow_view, dbg.editor.beside(height=dbg.flow_view.height or 460),
                   sizing_mode="stretch_width"),
            pn.Card(dbg.breakpoint_toggles, title="Breakpoints", collapsed=False,
                    sizing_mode="stretch_width"),
            pn.Card(dbg.timeline, title="Timeline of the last pass", collapsed=True,
                    sizing_mode="stretch_width"),
            dbg.inspector_card,
            pn.Card(dbg.flow_editor, title="Edit flow", collapsed=True,
                    sizing_mode="stretch_width"),
        ]
        self._draft_dirty = True
        dbg.refresh(force=True)
        self.refresh()

    # -- recording ----------------------------------------------------------------------
    def _recorder_params(self) -> dict[str, Any]:
        name = self.selected
        folder = self._app.flows_dir
        return {"source_url": self._app.source_of(name), "input_url": self._app.input_of(name),
                **({"template_dir": str(Path(folder) / "templates")} if folder else {})}

    def _recorded(self, flow: Any) -> None:  # on a worker thread
        self._select_next = self._app.add_draft(flow)
        self.pusher.poke()

    def _adopt_flows(self) -> bool:
        """Take flows added since (recordings) into this page; select this page's own
        new recording. True when that selection rendered the page."""
        names = list(self._app.flows)
        if names != self.param.selected.objects:
            for name in set(names) - set(self.param.selected.objects):
                self._unsubscribe.append(self._app.feeds[name].state.subscribe(self.pusher.poke))
            self.param.selected.objects = names
        pick, self._select_next = self._select_next, None
        if pick in names and pick != self.selected:
            self.selected = pick
            return True
        return False

    # -- rendering (pushed) -------------------------------------------------------------
    def refresh(self) -> None:
        """Render the selected flow's debugger (graph, status, outcome), then the tabs,
        draft state, metrics, log and overlays, from the flows' state."""
        if self._adopt_flows():
            return
        dbg = self.debugger
        if dbg is not None:
            dbg.refresh()
        items = []
        for name, flow in self._app.flows.items():
            state = self._app.flow_state(name)
            title = flow.description or name
            items.append({"name": name, "state": state, "title": title})
        for name, err in self._app.load_errors.items():
            items.append({"name": name, "state": "not loaded", "title": err})
        if items != self.tabs.items:
            self.tabs.items = items
        if self._draft_dirty:
            self._draft_dirty = False
            self._render_draft()
        name = self.selected
        if name is None:
            return
        m = self._app.metrics(name)
        parts = []
        for key, label in (("passes", "passes"), ("passes_per_min", "passes/min"),
                           ("failures", "failures"), ("source", "source"),
                           ("reconnects", "reconnects")):
            value = m.get(key)
            parts.append(f"<span>{label}: <b>{html.escape('–' if value is None else str(value))}"
                         "</b></span>")
        metrics_html = ('<div aria-label="Metrics" style="font:12px sans-serif;display:flex;'
                        f'flex-wrap:wrap;gap:4px 12px">{"".join(parts)}</div>')
        if metrics_html != self.metrics.object:
            self.metrics.object = metrics_html
        snap = self._app.feeds[name].state.snapshot()
        log_key = (name, len(snap["log"]), snap["log"][-1] if snap["log"] else None)
        if log_key != self._log_key:
            self._log_key = log_key
            self._render_log(snap)
        self._show_results(name, snap)

    def _render_log(self, snap: dict[str, Any]) -> None:
        lines = snap["log"][::-1]
        log_html = ('<pre aria-label="Run log" style="font:11px monospace;margin:0;'
                    'white-space:pre-wrap;overflow-wrap:anywhere">'
                    + html.escape("\n".join(lines) or "no run yet") + "</pre>")
        if log_html != self.run_log.object:
            self.run_log.object = log_html

    # -- overlays -----------------------------------------------------------------------
    def _show_results(self, name: str, snap: dict[str, Any]) -> None:
        """Draw the newest results of this session's time over the live view, stamped
        with the frame they were computed on."""
        run = self._app.current_run(name)
        if run is None:
            return
        latest: dict[str, tuple[float, Any, Any]] = {}
        walls = snap["finished_wall"]
        for nid, rec in list(run.nodes.items()):
            wall = walls.get(nid, 0.0)
            out = rec.output or {}
            if wall < self._opened or str(getattr(rec.status, "value", rec.status)) != "done" \
                    or not isinstance(out, dict):
                continue
            for key in ("texts", "matches", "detections", "point"):
                if out.get(key) is not None and wall >= latest.get(key, (-1.0,))[0]:
                    latest[key] = (wall, out[key], _frame_of(rec))
        if not latest:
            return
        shown = tuple(sorted((k, id(v[1])) for k, v in latest.items()))
        if shown == self._shown_key:
            return
        self._shown_key = shown
        frame = max(latest.values(), key=lambda v: v[0])[2]
        shapes = overlays_from(*(latest[k][1] for k in ("texts", "matches", "detections")
                                 if k in latest),
                               point=latest["point"][1] if "point" in latest else None)
        self._overlay = OverlayStamp(frame)
        self.live.overlays = self._overlay.stamp(shapes)
        self._watch_overlays()

    def _watch_overlays(self) -> None:
        """While results are drawn: fade them once the screen changed, drop them after
        the TTL (a light check of the latest frame; stops with the overlays)."""
        if self._overlay_cb is not None or not self.pusher.bound:
            return
        try:
            self._overlay_cb = pn.state.add_periodic_callback(self._age_overlays, period=300)
        except RuntimeError:
            self._overlay_cb = None

    def _age_overlays(self) -> None:
        stamp = self._overlay
        src = self.live.source
        if stamp is None:
            self._clear_overlays()
            return
        verdict = stamp.verdict(None if src is None else src.latest())
        if verdict == "expired":
            self._clear_overlays()
        elif verdict == "faded" and not stamp.faded:
            stamp.faded = True
            self.live.overlays = stamp.fade(self.live.overlays)

    def _clear_overlays(self) -> None:
        self._overlay = None
        if self._overlay_cb is not None:
            self._overlay_cb.stop()
            self._overlay_cb = None
        if self.live.overlays:
            self.live.overlays = []

    def close(self) -> None:
        """Stop rendering and streaming this page (runs keep going)."""
        self.pusher.close()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._overlay_cb is not None:
            self._overlay_cb.stop()
            self._overlay_cb = None
        for dbg in self._debuggers.values():
            dbg.detach()
        self.live.close()

    def __panel__(self) -> pn.viewable.Viewable:
        self.pusher.bind()
        self._draft_dirty = True
        doc = pn.state.curdoc
        if doc is not None:
            doc.title = TITLE
        self.refresh()
        header = pn.Row(self.title, self.pages, self.tabs, sizing_mode="stretch_width")
        draft_bar = pn.Row(self.description, self.modified, self.apply_button,
                           self.save_button, self.revert_button, self.notice,
                           self.reload_button, self.files, sizing_mode="stretch_width",
                           styles={"flex-wrap": "wrap"})
        side = pn.Column(
            self.recorder_controls,
            pn.pane.HTML('<h2 style="font:bold 13px sans-serif;margin:4px 0">Metrics</h2>'),
            self.metrics,
            pn.Card(self.indicator, title="Indicate on screen", collapsed=False,
                    sizing_mode="stretch_width"),
            pn.Card(self.run_log, title="Run log (newest first)", collapsed=False,
                    sizing_mode="stretch_width"),
            width=320, margin=(0, 0, 0, 10))
        top = pn.Row(self.live, side, sizing_mode="stretch_width")
        flows = pn.Column(draft_bar, self.message, self.controls_area, top,
                          self.debugger_area, sizing_mode="stretch_width")
        runs = pn.Column(sizing_mode="stretch_width", visible=False)

        def page(event: Any) -> None:  # the Runs tab: recorded runs and their reports
            flows.visible = self.tabs.visible = event.new == "Flows"
            runs.visible = event.new == "Runs"
            if runs.visible:
                if not runs.objects:
                    runs.objects = [RunsView()]
                else:
                    runs.objects[0].refresh()

        self.pages.param.watch(page, "value")
        return pn.Column(header, flows, runs, sizing_mode="stretch_width",
                         styles={"max-width": "100vw", "overflow-x": "hidden"})


def _frame_of(rec: Any) -> Any:
    out = rec.output or {}
    frame = out.get("frame") if isinstance(out, dict) else None
    if frame is None and rec.inputs is not None:
        try:
            frame = rec.inputs.frame()
        except Exception:  # no upstream frame
            frame = None
    return frame

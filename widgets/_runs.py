"""RunsView: the recorded runs of the run store, filtered, with one run's report.

The dashboard's Runs tab (and a notebook cell: ``RunsView()``). Filters: flow, status
(``ok``, ``failed``, ``stopped``, ``running``, ``interrupted``) and time (the last
hour, day, week). Choosing a run shows the same page ``kvmrpa report`` writes (frames
with what was recognised drawn over them, the graph with node states, timings,
actions, errors), read from the record in a pool thread; **Save report** downloads it
as one HTML file. Nothing here changes a run.
"""

from __future__ import annotations

import html
import io
import logging
import time
from typing import Any

import panel as pn
import param

from kvmrpa._errors import KvmrpaError
from kvmrpa._runtime import get_runtime

from ._markup import LiveHTML

__all__ = ["RunsView"]

log = logging.getLogger("kvmrpa.widgets.runs")

_ANY = "any"
_STATUSES = [_ANY, "ok", "failed", "stopped", "running", "interrupted"]
_TIMES = {"any time": None, "last hour": 3600.0, "last day": 86400.0,
          "last week": 7 * 86400.0}
#: Runs listed at most.
LIMIT = 500


def _label(run: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started"])) \
        if isinstance(run.get("started"), int | float) else "?"
    return f"{started} · {run.get('status')} · {run.get('flow')} · {run.get('id')}"


class RunsView(pn.viewable.Viewer):
    """Recorded runs, filtered by flow, status and time, and the chosen run's report."""

    flow: param.Selector[str] = param.Selector(default=_ANY, objects=[_ANY], doc="Only the runs of this flow.")
    status: param.Selector[str] = param.Selector(default=_ANY, objects=_STATUSES, doc="Only the runs that ended so.")
    since: param.Selector[str] = param.Selector(default="any time", objects=list(_TIMES), doc="Only the runs started in this period.")
    run = param.String(default="", doc="The id of the run whose report is shown.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._runs: list[dict[str, Any]] = []
        self._report: Any = None
        self.flow_select = pn.widgets.Select.from_param(self.param.flow, label="Flow", width=180)
        self.status_select = pn.widgets.Select.from_param(self.param.status, label="Status",
                                                          width=130)
        self.since_select = pn.widgets.Select.from_param(self.param.since, label="Started",
                                                         width=130)
        self.refresh_button = pn.widgets.Button(label="Refresh", width=90, margin=(24, 5, 5, 5))
        self.refresh_button.on_click(lambda _e: self.refresh())
        self.list = pn.widgets.Select(label="Runs", options={}, size=12,
                                      sizing_mode="stretch_width")
        self.list.param.watch(self._chosen, "value")
        self.count = LiveHTML("", margin=(0, 5))
        self.report = LiveHTML("<p style='font:13px sans-serif;color:#757575'>Choose a run "
                               "to see its report.</p>", sizing_mode="stretch_width")
        self.download = pn.widgets.FileDownload(callback=self._page, filename="report.html",
                                                label="Save report", color="primary",
                                                disabled=True, width=140, margin=(24, 5, 5, 5))
        self.param.watch(lambda _e: self._show_list(), ["flow", "status", "since"])
        self.refresh()

    # -- the list --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the run store's list again (newest first)."""
        from kvmrpa.engine import list_runs

        try:
            self._runs = list_runs(limit=LIMIT)
        except OSError as exc:
            self._runs = []
            self.count.object = f"<p>cannot read the run store: {html.escape(str(exc))}</p>"
        flows = sorted({str(r.get("flow")) for r in self._runs if r.get("flow")})
        self.param.flow.objects = [_ANY, *flows]
        if self.flow not in self.param.flow.objects:
            self.flow = _ANY
        self._show_list()

    def visible_runs(self) -> list[dict[str, Any]]:
        """The runs the filters let through, newest first."""
        horizon = _TIMES[self.since]
        now = time.time()
        out = []
        for r in self._runs:
            if self.flow != _ANY and r.get("flow") != self.flow:
                continue
            if self.status != _ANY and r.get("status") != self.status:
                continue
            started = r.get("started")
            if horizon is not None and (not isinstance(started, int | float)
                                        or now - started > horizon):
                continue
            out.append(r)
        return out

    def _show_list(self) -> None:
        runs = self.visible_runs()
        self.list.options = {_label(r): str(r.get("id")) for r in runs}
        self.count.object = (f"<p style='font:12px sans-serif;color:#616161;margin:2px 0'>"
                             f"{len(runs)} of {len(self._runs)} runs</p>")

    # -- the report ------------------------------------------------------------------------
    def _chosen(self, event: Any) -> None:
        if event.new:
            self.open_run(str(event.new))

    def open_run(self, run_id: str) -> None:
        """Show the report of ``run_id`` (read in a pool thread)."""
        self.run = run_id
        self.report.object = "<p style='font:13px sans-serif'>Reading the run record…</p>"
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:  # a notebook cell, a test
            self._landed(run_id, *self._load(run_id))
            return

        async def load() -> None:
            report, page = await get_runtime().to_thread(self._load, run_id)
            self._landed(run_id, report, page)

        pn.state.execute(load)

    @staticmethod
    def _load(run_id: str) -> tuple[Any, str]:
        from kvmrpa.engine._report import RunReport

        try:
            report = RunReport.load(run_id)
            return report, report._repr_html_()
        except (KvmrpaError, OSError) as exc:
            return None, f"<p class='error'>{html.escape(str(exc))}</p>"

    def _landed(self, run_id: str, report: Any, page: str) -> None:
        if run_id != self.run:
            return  # another run was chosen meanwhile
        self._report = report
        self.report.object = page
        self.download.filename = f"{run_id}.html"
        self.download.disabled = report is None

    def _page(self) -> io.BytesIO:
        report = self._report
        return io.BytesIO(report.page().encode("utf-8") if report is not None else b"")

    def __panel__(self) -> pn.viewable.Viewable:
        filters = pn.Row(self.flow_select, self.status_select, self.since_select,
                         self.refresh_button, self.download, sizing_mode="stretch_width")
        return pn.Column(filters, self.count, self.list, self.report,
                         sizing_mode="stretch_width")

"""Fleet dashboard: a grid of a fleet's targets (``kvmrpa serve --fleet FILE``, or a cell).

:class:`FleetDashboard` renders a :class:`~kvmrpa.fleet._board.FleetBoard`: one card
per target with the thumbnail of its screen (encoded on the worker that owns the
source, at most once a second), its state, last outcome and pass rate; a label
filter; Start / Stop per target, for the selected targets and for every target shown
(Stop is the fleet's stop: the engine's stop on each worker, no input after it); a link
to Dask's own dashboard; and "Open", a closer look at one target: a larger live
picture from its worker, its last outcome and the last lines of its run record. The
step debugger needs the run in this process, so it stays with local runs (``kvmrpa
serve``'s dashboard).

One board serves every session (``kvmrpa serve``); each session's page polls it
twice a second on the server's loop (a copy under a lock, never a cluster call: the
board's own thread talks to the workers). Mutating handlers check the user's role
with :func:`~kvmrpa.widgets._auth.require`.
"""

from __future__ import annotations

import base64
import html
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import panel as pn

from kvmrpa._errors import AccessDenied, KvmrpaError

from ._auth import can, require

__all__ = ["FleetApp", "FleetDashboard", "load_flows", "open_fleet_board"]

log = logging.getLogger("kvmrpa.widgets.fleet")

TITLE = "kvmrpa fleet"
#: Milliseconds between two looks of a page at the board.
POLL_MS = 500
#: Width of the closer look's picture.
DETAIL_WIDTH = 640
#: The passes a start may ask for (-1: as many as the flow says).
PASSES = {"as the flow says": -1, "1": 1, "10": 10, "until stopped": 0}
#: Run-record lines the closer look shows.
DETAIL_LINES = 12

_STATE_COLOURS = {
    "idle": "#9e9e9e", "queued": "#8d6e63", "running": "#1e88e5", "stopping": "#fb8c00",
    "ok": "#2e7d32", "failed": "#c62828", "stopped": "#6d4c41", "interrupted": "#ad1457",
}


def open_fleet_board(targets: Sequence[Any] | str | Path, *, flows: Mapping[str, Any] | None = None,
                     scheduler: str | None = None, local: int = 2, threads: int = 1,
                     reruns: int = 1, thumb_fps: float = 1.0) -> Any:
    """A started :class:`~kvmrpa.fleet._board.FleetBoard` on a LocalCluster of
    ``local`` workers (its Dask dashboard on loopback), or on ``scheduler``."""
    from kvmrpa.fleet import load_targets
    from kvmrpa.fleet._board import DaskBackend, FleetBoard

    chosen = load_targets(targets) if isinstance(targets, str | Path) else list(targets)
    backend = DaskBackend(scheduler, local=local, threads=threads, reruns=reruns)
    board = FleetBoard(chosen, backend, flows=flows, thumb_fps=thumb_fps)
    return board.open()


def load_flows(folder: str | Path | None) -> dict[str, Any]:
    """The flows of a folder's ``*.json`` files by name (a file that does not load is
    logged and left out)."""
    from kvmrpa.engine import Flow

    flows: dict[str, Any] = {}
    if folder is None:
        return flows
    for path in sorted(Path(folder).glob("*.json")):
        try:
            flow = Flow.load(path)
        except KvmrpaError as exc:
            log.warning("fleet dashboard: flow %s left out: %s", path.name, exc)
            continue
        flows.setdefault(flow.name, flow)
    return flows


class FleetApp:
    """What ``kvmrpa serve --fleet FILE`` serves: one board for every session, a
    :class:`FleetDashboard` page per session (its polling ends with the session)."""

    def __init__(self, board: Any, origin: str = "") -> None:
        self.board = board
        self.display_source = f"fleet {origin}: {len(board.targets)} target(s), " \
                              f"Dask dashboard {board.dashboard_link or 'off'}"

    @classmethod
    def open(cls, targets_file: str | Path, *, flows_dir: str | Path | None = None,
             scheduler: str | None = None, local: int = 2) -> FleetApp:
        board = open_fleet_board(targets_file, flows=load_flows(flows_dir),
                                 scheduler=scheduler, local=local)
        return cls(board, str(targets_file))

    def view(self) -> FleetDashboard:
        dash = FleetDashboard(self.board)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            pn.state.on_session_destroyed(lambda _ctx: dash.close())
        return dash

    def close(self) -> None:
        """Stop every run the board started and close its cluster (idempotent)."""
        self.board.close()


def _handler(call: Callable[[], object]) -> Callable[[Any], None]:
    """A button's click handler that calls ``call()`` and drops what it returns."""
    def handle(_event: Any) -> None:
        call()
    return handle


def _jpeg_uri(jpeg: bytes | None) -> str | None:
    return None if not jpeg else "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def _rate(tile: Any) -> str:
    rate = tile.pass_rate
    if rate is None:
        return "–"
    return f"{rate * 100:.0f}% of {tile.runs} run" + ("s" if tile.runs != 1 else "")


def card_html(tile: Any) -> str:
    """One target's card (thumbnail, id, state, last outcome, pass rate, labels)."""
    esc = html.escape
    colour = _STATE_COLOURS.get(tile.state, "#555")
    uri = _jpeg_uri(tile.thumb)
    if uri:
        w, h = tile.thumb_size
        picture = (f'<img class="thumb" alt="screen of {esc(tile.id)}" src="{uri}" '
                   f'data-seq="{tile.thumb_seq}" width="{w}" height="{h}" '
                   'style="width:240px;height:auto;display:block;background:#222">')
    else:
        why = tile.thumb_error or "waiting for the first frame"
        picture = ('<div class="thumb-missing" style="width:240px;height:150px;'
                   'background:#333;color:#ddd;font:12px sans-serif;display:flex;'
                   f'align-items:center;justify-content:center;text-align:center">{esc(why)}</div>')
    last = tile.last
    if last is None:
        outcome = "no run yet"
    else:
        outcome = f"{last.status}, {last.passes} pass(es)"
        if last.error:
            outcome += f": {last.error[:120]}"
    labels = " ".join(f'<span style="background:#eceff1;border-radius:3px;padding:0 3px">'
                      f'{esc(k)}={esc(v)}</span>' for k, v in sorted(tile.labels.items()))
    worker = esc(tile.worker or "no worker")
    return (f'<div class="fleet-card" data-target="{esc(tile.id)}" data-state="{esc(tile.state)}" '
            f'style="font:12px sans-serif;width:240px">{picture}'
            f'<div style="display:flex;justify-content:space-between;margin-top:3px">'
            f'<b class="target-id">{esc(tile.id)}</b>'
            f'<span class="state" style="color:#fff;background:{colour};border-radius:3px;'
            f'padding:0 4px">{esc(tile.state)}</span></div>'
            f'<div class="outcome" title="{esc(outcome)}" style="white-space:nowrap;'
            f'overflow:hidden;text-overflow:ellipsis">last: {esc(outcome)}</div>'
            f'<div class="pass-rate">pass rate: {esc(_rate(tile))}</div>'
            f'<div style="color:#666;white-space:nowrap;overflow:hidden;'
            f'text-overflow:ellipsis" title="{worker}">on {worker}</div>'
            f'<div style="margin-top:2px">{labels}</div></div>')


class _Card:
    """The widgets of one target's card."""

    def __init__(self, dash: FleetDashboard, tile: Any) -> None:
        self.tid = tile.id
        self.version = -1
        self.body = pn.pane.HTML("", width=244, margin=(2, 4))
        self.pick = pn.widgets.Checkbox(name="select", value=False, width=60, margin=(2, 4))
        self.start = pn.widgets.Button(name="Start", button_type="success", width=58,
                                       margin=(2, 2), description=f"start {tile.id}")
        self.stop = pn.widgets.Button(name="Stop", button_type="danger", width=52,
                                      margin=(2, 2), description=f"stop {tile.id}")
        self.open = pn.widgets.Button(name="Open", width=52, margin=(2, 2),
                                      description=f"a closer look at {tile.id}")
        self.start.on_click(_handler(lambda: dash.start([self.tid])))
        self.stop.on_click(_handler(lambda: dash.stop([self.tid])))
        self.open.on_click(_handler(lambda: dash.focus(self.tid)))
        self.view = pn.Column(self.body, pn.Row(self.pick, self.start, self.stop, self.open),
                              width=262, margin=4, css_classes=["fleet-tile"],
                              styles={"border": "1px solid #cfd8dc", "border-radius": "4px",
                                      "padding": "2px"})

    def update(self, tile: Any, allowed: bool) -> None:
        if tile.version != self.version:
            self.version = tile.version
            self.body.object = card_html(tile)
        self.start.disabled = tile.active or not allowed
        self.stop.disabled = not tile.active or not allowed


class FleetDashboard(pn.viewable.Viewer):
    """The fleet grid of one page (a session or a notebook cell) over ``board``.

    ``close_board``: close the board when :meth:`close` is called (a board made for
    this component alone, as in a notebook).
    """

    def __init__(self, board: Any, *, close_board: bool = False, **params: Any) -> None:
        super().__init__(**params)
        self.board = board
        self.close_board = close_board
        self._cards: dict[str, _Card] = {}
        self._shown: list[str] = []
        self._focus: str | None = None
        self._detail_version = (-1, -1)
        self._callback: Any = None
        self._lock = threading.Lock()
        flows = sorted(board.flows)
        self.title = pn.pane.HTML(self._title_html(), sizing_mode="stretch_width")
        self.flow = pn.widgets.Select(name="Flow", options=flows, value=flows[0] if flows else None,
                                      width=220)
        self.passes = pn.widgets.Select(name="Passes", options=PASSES, value=-1, width=170)
        self.filter = pn.widgets.MultiChoice(name="Filter by label", options=board.labels(),
                                             width=320, placeholder="every target")
        self.start_shown = pn.widgets.Button(name="Start all shown", button_type="success")
        self.stop_shown = pn.widgets.Button(name="Stop all shown", button_type="danger")
        self.start_picked = pn.widgets.Button(name="Start selected", button_type="success",
                                              button_style="outline")
        self.stop_picked = pn.widgets.Button(name="Stop selected", button_type="danger",
                                             button_style="outline")
        self.pick_shown = pn.widgets.Button(name="Select all shown", button_style="outline")
        self.message = pn.pane.Alert("", alert_type="danger", visible=False,
                                     sizing_mode="stretch_width")
        self.start_shown.on_click(_handler(lambda: self.start(self._shown)))
        self.stop_shown.on_click(_handler(lambda: self.stop(self._shown)))
        self.start_picked.on_click(_handler(lambda: self.start(self._picked())))
        self.stop_picked.on_click(_handler(lambda: self.stop(self._picked())))
        self.pick_shown.on_click(_handler(self._pick_all))
        self.filter.param.watch(lambda _e: self.refresh(), "value")
        self.grid = pn.FlexBox(sizing_mode="stretch_width")
        self.detail_body = pn.pane.HTML("", sizing_mode="stretch_width")
        self.detail_close = pn.widgets.Button(name="Close", width=80)
        self.detail_close.on_click(_handler(lambda: self.focus(None)))
        self.detail = pn.Column(self.detail_body, self.detail_close, visible=False,
                                sizing_mode="stretch_width",
                                styles={"border": "1px solid #90a4ae", "padding": "6px"})
        self.refresh()

    # -- actions ---------------------------------------------------------------------------
    def _show_error(self, text: str) -> None:
        self.message.object = text
        self.message.visible = bool(text)

    def _picked(self) -> list[str]:
        return [tid for tid in self._shown if self._cards[tid].pick.value]

    def _pick_all(self) -> None:
        for tid in self._shown:
            self._cards[tid].pick.value = True

    def start(self, ids: Iterable[str]) -> list[str]:
        """Start the page's flow on ``ids`` (the operator role)."""
        ids = list(ids)
        if not ids:
            return []
        try:
            require("run", ",".join(ids)[:200], detail={"flow": self.flow.value,
                                                        "targets": len(ids)})
            if not self.flow.value:
                raise KvmrpaError("no flow to run: start the dashboard with flows")
            passes = None if self.passes.value < 0 else int(self.passes.value)
            started = self.board.start(ids, self.flow.value, passes=passes)
        except (AccessDenied, KvmrpaError) as exc:
            self._show_error(str(exc))
            return []
        self._show_error("")
        self.refresh()
        return started

    def stop(self, ids: Iterable[str]) -> list[str]:
        """Stop ``ids`` with the fleet's stop (the operator role)."""
        ids = list(ids)
        if not ids:
            return []
        try:
            require("stop", ",".join(ids)[:200], detail={"targets": len(ids)})
        except AccessDenied as exc:
            self._show_error(str(exc))
            return []
        asked = self.board.stop(ids)
        self.refresh()
        return asked

    def focus(self, tid: str | None) -> None:
        """Show a closer look at ``tid`` (None hides it); watching needs no role."""
        self._focus = tid
        self.board.focus(tid, DETAIL_WIDTH)
        self._detail_version = (-1, -1)
        self.detail.visible = tid is not None
        self.refresh()

    # -- rendering -------------------------------------------------------------------------
    def _title_html(self) -> str:
        counts = self.board.counts()
        parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        link = self.board.dashboard_link
        dask = (f' · <a href="{html.escape(link)}" target="_blank" rel="noopener" '
                f'class="dask-dashboard">Dask dashboard</a>' if link else "")
        workers = self.board.backend.workers()
        return (f'<h2 style="font:bold 16px sans-serif;margin:4px 0">{TITLE}: '
                f'{len(self.board.targets)} target(s) on {len(workers)} worker(s)</h2>'
                f'<div class="fleet-counts" style="font:12px sans-serif">{html.escape(parts)}'
                f'{dask}</div>')

    def refresh(self) -> None:
        """Bring the page up to date with the board (cheap: a copy of its tiles)."""
        with self._lock:
            try:
                tiles = self.board.snapshot(self.filter.value)
            except KvmrpaError as exc:
                self._show_error(str(exc))
                return
            allowed = can("run")
            for tile in tiles:
                card = self._cards.get(tile.id)
                if card is None:
                    card = self._cards[tile.id] = _Card(self, tile)
                card.update(tile, allowed)
            ids = [t.id for t in tiles]
            if ids != self._shown:
                self._shown = ids
                self.grid.objects = [self._cards[tid].view for tid in ids]
            for button in (self.start_shown, self.start_picked):
                button.disabled = not allowed
            for button in (self.stop_shown, self.stop_picked):
                button.disabled = not can("stop")
            title = self._title_html()
            if self.title.object != title:
                self.title.object = title
            if self._focus is not None:
                self._render_detail()
            errors = self.board.take_errors()
            if errors:
                self._show_error(errors[-1])

    def _render_detail(self) -> None:
        tile = self.board.tile(self._focus)
        big = self.board.detail()
        version = (tile.version, big["seq"] if big else -1)
        if version == self._detail_version:
            return
        self._detail_version = version
        esc = html.escape
        uri = _jpeg_uri(big["jpeg"]) if big else None
        picture = (f'<img class="detail-screen" alt="live screen of {esc(tile.id)}" src="{uri}" '
                   f'style="width:{DETAIL_WIDTH}px;height:auto;background:#222">' if uri else
                   f'<div style="width:{DETAIL_WIDTH}px;height:400px;background:#333;color:#ddd">'
                   'waiting for a frame</div>')
        rows = []
        last = tile.last
        if last is not None and last.record:
            rows = _record_tail(last.record)
        table = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
        info = [("state", tile.state), ("worker", tile.worker or "–"),
                ("pass rate", _rate(tile))]
        if last is not None:
            info += [("last outcome", last.status), ("passes", str(last.passes)),
                     ("actions", str(last.actions)), ("error", last.error or "–"),
                     ("record", last.record or "–")]
        facts = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(v)}</td></tr>"
                        for k, v in info)
        self.detail_body.object = (
            f'<div class="fleet-detail" data-target="{esc(tile.id)}" style="font:12px sans-serif">'
            f'<h3 style="margin:2px 0">{esc(tile.id)}</h3>'
            f'<div style="display:flex;gap:12px;flex-wrap:wrap">{picture}'
            f'<div><table>{facts}</table>'
            f'<p style="color:#666;max-width:420px">The step debugger works on runs in '
            f'this process: open the flow in <code>kvmrpa serve</code> (or a notebook) '
            f'on this target\'s URLs to debug it.</p>'
            f'<h4 style="margin:4px 0">Last run record</h4><table>{table}</table></div>'
            f'</div></div>')

    def __panel__(self) -> pn.viewable.Viewable:
        doc = pn.state.curdoc
        if doc is not None:
            doc.title = TITLE
            if self._callback is None:
                try:
                    self._callback = pn.state.add_periodic_callback(self.refresh,
                                                                    period=POLL_MS)
                except RuntimeError:  # no running document: nothing polls
                    self._callback = None
        controls = pn.Row(self.flow, self.passes, self.filter, sizing_mode="stretch_width",
                          styles={"flex-wrap": "wrap"})
        buttons = pn.Row(self.start_shown, self.stop_shown, self.pick_shown,
                         self.start_picked, self.stop_picked, styles={"flex-wrap": "wrap"})
        return pn.Column(self.title, controls, buttons, self.message, self.detail,
                         self.grid, sizing_mode="stretch_width")

    def close(self) -> None:
        """Stop polling (and close the board when this page owns it)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self.close_board:
            self.board.close()


def _record_tail(path: str) -> list[tuple[str, str]]:
    """The last node and fleet lines of a run record, as (what, detail) rows."""
    from kvmrpa.engine import read_run

    try:
        lines = read_run(path)
    except (OSError, ValueError, KvmrpaError):
        return [("record", "cannot be read")]
    rows = []
    for line in lines:
        kind = str(line.get("kind"))
        if kind.startswith("node_") and kind != "node_started":
            what = kind[5:] + (f" (pass {line['pass_index'] + 1})"
                               if isinstance(line.get("pass_index"), int) else "")
            rows.append((f"node {line.get('node', '?')}",
                         what + (f": {line['error']}" if line.get("error") else "")))
        elif kind == "action":
            rows.append(("action", " ".join(str(line.get(k)) for k in ("driver", "action")
                                            if line.get(k))))
        elif kind in ("fleet", "flow_finished", "stop_requested"):
            rows.append((kind, str(line.get("event") or line.get("status")
                                   or line.get("reason") or "")))
    return rows[-DETAIL_LINES:]

"""Run reports: one self-contained HTML page per run, from its run record.

:func:`find_record` finds a run's record (by id, or a path); :func:`load_record` reads
it (rotated parts included); :class:`RunReport` turns it into HTML: the outcome, the
flow graph with each node's state, a timeline of node durations, every kept frame
(embedded as a ``data:`` URI) with the texts, matches, detections and click points
drawn over it and listed beside it, the actions sent, the errors and the event log.
The page needs nothing else (no script, no network): it opens offline and can be
attached to a ticket. Every text in it is redacted (:func:`kvmrpa._redact.redact`)
and HTML-escaped. ``RunReport`` displays inline in a notebook (``_repr_html_``) and
:meth:`RunReport.save` writes the file atomically.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._errors import KvmrpaError
from .._redact import redact
from .._settings import get_settings
from ._records import frames_dir

__all__ = ["RunReport", "find_record", "load_record"]

_RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
#: Frames embedded in one report at most (the rest are counted).
MAX_FRAMES = 200
_MAX_LOG = 3000
_STATE_COLOURS = {"done": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e",
                  "running": "#1565c0", "stopped": "#ef6c00", "pending": "#bdbdbd"}


def find_record(run: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None) -> Path:
    """The record of ``run``: a path to a ``.jsonl`` file, or a run id (or the start of
    one) in the run store. Raises :class:`KvmrpaError` (one line) when there is none."""
    text = os.fspath(run)
    p = Path(text)
    if text.endswith(".jsonl") and p.is_file():
        return p
    directory = Path(folder) if folder else get_settings().store.runs_dir
    if not _RUN_ID.fullmatch(text) or ".." in text:
        raise KvmrpaError(f"{text!r} is not a run id (letters, digits, '-', '_', '.') nor a "
                          "record file")
    matches = sorted(directory.glob(f"{text}*.jsonl"))
    if not matches:
        raise KvmrpaError(f"no run record {text!r} in {directory} (kvmrpa runs lists them)")
    if len(matches) > 1 and not any(m.name.startswith(f"{text}-") for m in matches[:1]):
        raise KvmrpaError(f"run id {text!r} is ambiguous: {', '.join(m.name for m in matches[:4])}")
    return matches[0]


def load_record(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of a record, its rotated parts (``<name>.jsonl.<n>``) first, the run's
    first line once."""
    p = Path(path)
    parts = sorted((q for q in p.parent.glob(f"{p.name}.*") if q.suffix[1:].isdigit()),
                   key=lambda q: int(q.suffix[1:]))
    out: list[dict[str, Any]] = []
    head_seen = False
    for f in [*parts, p]:
        try:
            fh = open(f, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise KvmrpaError(f"cannot read run record {f}: {exc.strerror or exc}") from None
        with fh:
            for line in fh:
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(data, dict):
                    continue
                if data.get("kind") == "run":
                    if head_seen:
                        continue
                    head_seen = True
                out.append(data)
    return out


def _e(value: Any) -> str:
    """Redacted and escaped text for the page."""
    return html.escape(str(redact("" if value is None else str(value))), quote=True)


def _num(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if out == out and abs(out) < 1e9 else default


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return "?"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class RunReport:
    """The report of one run (see the module docstring)."""

    def __init__(self, lines: Iterable[Mapping[str, Any]], frames: Path | None = None,
                 *, title: str | None = None) -> None:
        self.lines = [dict(x) for x in lines]
        self.frames = frames
        head = next((x for x in self.lines if x.get("kind") == "run"), {})
        tail = next((x for x in reversed(self.lines) if x.get("kind") == "flow_finished"), None)
        self.head = head
        #: The run's id, flow name, status (``running`` while no end is recorded).
        self.run_id: str = str(head.get("run_id") or "")
        self.flow: str = str(head.get("flow") or "")
        self.status: str = str(tail.get("status")) if tail else "running"
        self.outcome: str = str((tail or {}).get("outcome") or "")
        self.error: str | None = (tail or {}).get("error")
        self.passes = (tail or {}).get("passes")
        self.title = title or f"kvmrpa run {self.run_id} · {self.flow}"

    @classmethod
    def load(cls, run: str | os.PathLike[str]) -> RunReport:
        """The report of ``run`` (an id in the run store or a record path)."""
        path = find_record(run)
        return cls(load_record(path), frames_dir(path))

    # -- the parts -----------------------------------------------------------------------
    def evidence(self) -> list[dict[str, Any]]:
        """The ``evidence`` lines: what each watched node decided on, pass by pass."""
        return [x for x in self.lines if x.get("kind") == "evidence"]

    def texts(self, node: str | None = None) -> list[str]:
        """Every text recognised (by ``node``, or by any node), in record order."""
        out: list[str] = []
        for ev in self.evidence():
            if node is None or ev.get("node") == node:
                out += [str(t.get("text", "")) for t in ev.get("texts") or ()
                        if isinstance(t, Mapping)]
        return out

    def _frame_lines(self) -> dict[str, dict[str, Any]]:
        return {str(x.get("file")): x for x in self.lines if x.get("kind") == "frame"}

    def _image_uri(self, name: str) -> str | None:
        if self.frames is None or not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}\.jpg", name):
            return None
        try:
            data = (self.frames / name).read_bytes()
        except OSError:
            return None
        if not data.startswith(b"\xff\xd8"):
            return None
        return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")

    def _states(self) -> dict[int, dict[str, tuple[str, float | None, str | None]]]:
        """pass → node → (state, duration, error)."""
        out: dict[int, dict[str, tuple[str, float | None, str | None]]] = {}
        for x in self.lines:
            kind = x.get("kind")
            index = x.get("pass_index")
            node = x.get("node")
            if not isinstance(index, int) or not isinstance(node, str):
                continue
            states = out.setdefault(index, {})
            if kind == "node_started":
                states[node] = ("running", None, None)
            elif kind == "node_finished":
                states[node] = ("done", _num(x.get("duration")), None)
            elif kind == "node_failed":
                states[node] = ("failed", _num(x.get("duration")), x.get("error"))
            elif kind == "node_skipped":
                states[node] = ("skipped", None, None)
            elif kind == "node_stopped":
                states[node] = ("stopped", _num(x.get("duration")), None)
        return out

    def _graph_svg(self, states: Mapping[str, tuple[str, float | None, str | None]]) -> str:
        graph = self.head.get("graph") or {}
        nodes = [n for n in graph.get("nodes") or () if isinstance(n, Mapping)]
        edges = [e for e in graph.get("edges") or () if isinstance(e, Mapping)]
        if not nodes:
            return "<p class='muted'>The record holds no flow graph.</p>"
        ids = [str(n.get("id")) for n in nodes]
        preds: dict[str, list[str]] = {i: [] for i in ids}
        for e in edges:
            if str(e.get("target")) in preds and str(e.get("source")) in preds:
                preds[str(e["target"])].append(str(e["source"]))
        depth: dict[str, int] = {}

        def level(nid: str, seen: frozenset[str] = frozenset()) -> int:
            if nid in depth:
                return depth[nid]
            if nid in seen:
                return 0
            d = max((level(p, seen | {nid}) + 1 for p in preds[nid]), default=0)
            depth[nid] = d
            return d

        for nid in ids:
            level(nid)
        rows: dict[int, int] = {}
        pos: dict[str, tuple[float, float]] = {}
        bw, bh, gx, gy = 150, 44, 60, 26
        for nid in ids:
            d = depth[nid]
            r = rows.get(d, 0)
            rows[d] = r + 1
            pos[nid] = (10 + d * (bw + gx), 10 + r * (bh + gy))
        width = 20 + (max(depth.values()) + 1) * (bw + gx)
        height = 20 + max(rows.values()) * (bh + gy)
        parts = [f"<svg class='graph' viewBox='0 0 {width} {height}' width='{width}' "
                 f"height='{height}' role='img' aria-label='flow graph'>",
                 "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' "
                 "markerWidth='7' markerHeight='7' orient='auto'><path d='M0,0L10,5L0,10z' "
                 "fill='#777'/></marker></defs>"]
        for e in edges:
            s, t = str(e.get("source")), str(e.get("target"))
            if s not in pos or t not in pos:
                continue
            (x1, y1), (x2, y2) = pos[s], pos[t]
            x1, y1, x2, y2 = x1 + bw, y1 + bh / 2, x2, y2 + bh / 2
            parts.append(f"<line x1='{x1:.0f}' y1='{y1:.0f}' x2='{x2:.0f}' y2='{y2:.0f}' "
                         "stroke='#777' stroke-width='1.5' marker-end='url(#arrow)'/>")
            if e.get("branch") is not None:
                parts.append(f"<text x='{(x1 + x2) / 2:.0f}' y='{(y1 + y2) / 2 - 4:.0f}' "
                             f"class='branch'>{_e(e.get('branch'))}</text>")
        types = {str(n.get("id")): str(n.get("type")) for n in nodes}
        for nid in ids:
            x, y = pos[nid]
            state, duration, _err = states.get(nid, ("pending", None, None))
            colour = _STATE_COLOURS.get(state, "#bdbdbd")
            took = f" · {duration:.2f} s" if duration is not None else ""
            parts.append(
                f"<g class='node state-{_e(state)}' data-node='{_e(nid)}'>"
                f"<title>{_e(nid)} ({_e(types[nid])}): {_e(state)}{took}</title>"
                f"<rect x='{x}' y='{y}' width='{bw}' height='{bh}' rx='6' fill='#fff' "
                f"stroke='{colour}' stroke-width='3'/>"
                f"<text x='{x + 8}' y='{y + 18}' class='nid'>{_e(nid[:20])}</text>"
                f"<text x='{x + 8}' y='{y + 35}' class='ntype'>{_e(types[nid][:16])} · "
                f"{_e(state)}</text></g>")
        parts.append("</svg>")
        return "".join(parts)

    def _timeline(self, index: int) -> str:
        rows = []
        starts: dict[str, float] = {}
        for x in self.lines:
            if x.get("pass_index") != index or not isinstance(x.get("node"), str):
                continue
            if x.get("kind") == "node_started":
                starts[x["node"]] = _num(x.get("t"))
            elif x.get("kind") in ("node_finished", "node_failed", "node_stopped"):
                t1 = _num(x.get("t"))
                dur = _num(x.get("duration"))
                rows.append((x["node"], starts.get(x["node"], t1 - dur), dur,
                             {"node_finished": "done", "node_failed": "failed"}.get(
                                 x["kind"], "stopped")))
        if not rows:
            return ""
        t0 = min(r[1] for r in rows)
        span = max(max(r[1] + r[2] for r in rows) - t0, 1e-3)
        out = ["<table class='timeline'><tr><th>node</th><th>state</th><th>took</th>"
               "<th class='bars'>time in the pass</th></tr>"]
        for node, start, dur, state in rows:
            left = 100 * (start - t0) / span
            w = max(0.5, 100 * dur / span)
            out.append(f"<tr><td>{_e(node)}</td><td class='st-{state}'>{state}</td>"
                       f"<td>{dur:.3f} s</td><td class='bars'><div class='bar st-{state}' "
                       f"style='margin-left:{left:.2f}%;width:{w:.2f}%'></div></td></tr>")
        out.append("</table>")
        return "".join(out)

    def _overlay(self, width: int, height: int, items: list[dict[str, Any]]) -> str:
        shapes = []
        for ev in items:
            node = _e(ev.get("node"))
            for kind, colour in (("texts", "#00c853"), ("matches", "#2962ff"),
                                 ("detections", "#ff6d00"), ("found", "#ffd600")):
                for it in (ev.get(kind) or ())[:300]:
                    box = it.get("bbox") if isinstance(it, Mapping) else None
                    if not isinstance(box, list | tuple) or len(box) != 4:
                        continue
                    x, y, w, h = (_num(v) for v in box)
                    label = it.get("text") or it.get("label") or ""
                    shapes.append(f"<rect x='{x:.0f}' y='{y:.0f}' width='{w:.0f}' "
                                  f"height='{h:.0f}' fill='none' stroke='{colour}' "
                                  f"stroke-width='{3 if kind == 'found' else 2}'>"
                                  f"<title>{node}: {_e(label)}</title></rect>")
            point = ev.get("point")
            if isinstance(point, list | tuple) and len(point) == 2:
                px, py = _num(point[0]), _num(point[1])
                r = max(8, height // 60)
                shapes.append(f"<g class='point'><title>{node}: {_e(ev.get('action') or 'point')}"
                              f" at ({px:.0f}, {py:.0f})</title>"
                              f"<circle cx='{px:.0f}' cy='{py:.0f}' r='{r}' fill='none' "
                              f"stroke='#ff1744' stroke-width='3'/>"
                              f"<line x1='{px - 2 * r:.0f}' y1='{py:.0f}' x2='{px + 2 * r:.0f}' "
                              f"y2='{py:.0f}' stroke='#ff1744' stroke-width='2'/>"
                              f"<line x1='{px:.0f}' y1='{py - 2 * r:.0f}' x2='{px:.0f}' "
                              f"y2='{py + 2 * r:.0f}' stroke='#ff1744' stroke-width='2'/></g>")
        return (f"<svg class='overlay' viewBox='0 0 {width} {height}' "
                f"preserveAspectRatio='none'>{''.join(shapes)}</svg>")

    def _details(self, ev: Mapping[str, Any]) -> str:
        status = str(ev.get("status"))
        out = [f"<div class='ev st-{_e(status)}' data-node='{_e(ev.get('node'))}'>"
               f"<h4>{_e(ev.get('node'))} <span class='muted'>({_e(ev.get('type'))})</span> "
               f"<span class='badge st-{_e(status)}'>{_e(status)}</span></h4>"]
        if ev.get("error"):
            out.append(f"<p class='error'>{_e(ev['error'])}</p>")
        facts = []
        for k in ("branch", "result", "count", "waited_s", "action"):
            if k in ev:
                facts.append(f"{k}: <b>{_e(ev[k])}</b>")
        point = ev.get("point")
        if isinstance(point, list | tuple) and len(point) == 2:
            facts.append(f"point: <b>({_num(point[0]):.0f}, {_num(point[1]):.0f})</b>")
        if ev.get("started_s") is not None and ev.get("finished_s") is not None:
            facts.append(f"took: <b>{_num(ev['finished_s']) - _num(ev['started_s']):.3f} s</b>")
        if facts:
            out.append(f"<p>{' · '.join(facts)}</p>")
        for kind, title in (("texts", "recognised texts"), ("found", "found"),
                            ("matches", "template matches"), ("detections", "detections")):
            items = [it for it in (ev.get(kind) or ()) if isinstance(it, Mapping)]
            if not items:
                continue
            out.append(f"<p class='muted'>{title} ({len(items)})</p><ol class='{kind}'>")
            for it in items[:300]:
                name = it.get("text") if kind in ("texts", "found") and "text" in it else (
                    it.get("label") or it.get("text") or "")
                score = it.get("confidence", it.get("score"))
                box = it.get("bbox") or ()
                where = ", ".join(f"{_num(v):.0f}" for v in box) if len(box) == 4 else ""
                out.append(f"<li><span class='txt'>{_e(name)}</span> "
                           f"<span class='muted'>{_num(score):.2f} · [{where}]</span></li>"
                           if score is not None else
                           f"<li><span class='txt'>{_e(name)}</span> "
                           f"<span class='muted'>[{where}]</span></li>")
            out.append("</ol>")
        out.append("</div>")
        return "".join(out)

    def _frames_section(self, index: int, budget: list[int]) -> str:
        evs = [e for e in self.evidence() if e.get("pass_index") == index]
        if not evs:
            return ""
        frames = self._frame_lines()
        groups: dict[str | None, list[dict[str, Any]]] = {}
        for ev in evs:
            groups.setdefault(ev.get("frame"), []).append(ev)
            for seen in ev.get("looked_at") or ():  # earlier frames a wait looked at
                if isinstance(seen, Mapping) and seen.get("frame") and \
                        seen.get("frame") != ev.get("frame"):
                    groups.setdefault(seen["frame"], []).append(
                        {**seen, "node": ev.get("node"), "type": ev.get("type"),
                         "status": "looked", "kind": "looked"})
        out = []
        for name, items in groups.items():
            meta = frames.get(str(name), {})
            uri = self._image_uri(str(name)) if name else None
            if uri is not None and budget[0] <= 0:
                uri, omitted = None, True
            else:
                omitted = False
            if uri is not None:
                budget[0] -= 1
            w, h = int(_num(meta.get("width"), 1280)), int(_num(meta.get("height"), 720))
            used = ", ".join(_e(i.get("node")) for i in items)
            failed = any(i.get("status") == "failed" for i in items)
            out.append(f"<section class='frame{' failed' if failed else ''}' "
                       f"data-frame='{_e(name)}'><h3>frame {_e(name or '–')} "
                       f"<span class='muted'>· seen by {used}"
                       + (f" · t = {_num(meta.get('t')):.3f} s" if meta else "")
                       + (f" · {w}×{h}" if meta else "") + "</span></h3>"
                       "<div class='cols'><div class='shot'>")
            if uri is not None:
                out.append(f"<div class='imgbox'><img src='{uri}' alt='frame {_e(name)}' "
                           f"width='{w}' height='{h}'>{self._overlay(w, h, items)}</div>")
            elif omitted:
                out.append(f"<p class='muted'>image left out: more than {MAX_FRAMES} "
                           "frames in this report</p>")
            else:
                out.append("<p class='muted'>no image kept for this step (over the frame "
                           "budget, or deleted by retention)</p>")
            out.append("</div><div class='facts'>")
            out.extend(self._details(i) for i in items if i.get("kind") != "looked")
            for i in items:
                if i.get("kind") == "looked":
                    out.append(self._details(i))
            out.append("</div></div></section>")
        return "".join(out)

    def html(self) -> str:
        """The whole page."""
        states = self._states()
        passes = sorted(states)
        kept = {int(e["pass_index"]) for e in self.evidence()
                if isinstance(e.get("pass_index"), int)}
        failed = {int(x["pass_index"]) for x in self.lines
                  if x.get("kind") == "error" and isinstance(x.get("pass_index"), int)}
        shown = sorted(kept | set(passes[-1:]) | failed)
        head = self.head
        status = self.status
        out = [f"<div class='kvmrpa-report' data-status='{_e(status)}'>",
               f"<h1>{_e(self.flow)} <span class='badge st-{_e(status)}'>{_e(status)}</span></h1>",
               "<table class='facts'>",
               f"<tr><th>run</th><td>{_e(self.run_id)}</td></tr>",
               f"<tr><th>started</th><td>{_e(_when(head.get('started')))}</td></tr>",
               f"<tr><th>outcome</th><td>{_e(self.outcome or '–')}</td></tr>",
               f"<tr><th>passes</th><td>{_e(self.passes if self.passes is not None else '–')}</td></tr>",
               f"<tr><th>source</th><td>{_e(head.get('source') or '–')}</td></tr>",
               f"<tr><th>input</th><td>{_e(head.get('input') or '–')}</td></tr>"]
        finished = next((x for x in reversed(self.lines) if x.get("kind") == "flow_finished"), None)
        if finished is not None:
            out.append(f"<tr><th>took</th><td>{_num(finished.get('t')):.2f} s</td></tr>")
        out.append("</table>")
        if self.error:
            out.append(f"<p class='error run-error'>{_e(self.error)}</p>")
        errors = [x for x in self.lines if x.get("kind") == "error"]
        if errors:
            out.append("<h2>Errors</h2><ul class='errors'>")
            out += [f"<li>pass {_e(x.get('pass_index'))} · node {_e(x.get('node'))}: "
                    f"{_e(x.get('error'))}</li>" for x in errors[:200]]
            out.append("</ul>")
        budget = [MAX_FRAMES]
        for index in shown:
            finish = next((x for x in self.lines if x.get("kind") == "pass_finished"
                           and x.get("pass_index") == index), {})
            out.append(f"<h2 class='pass'>Pass {index} <span class='badge "
                       f"st-{_e(finish.get('status', 'running'))}'>"
                       f"{_e(finish.get('status', 'running'))}</span> "
                       f"<span class='muted'>{_e(finish.get('outcome') or '')}</span></h2>")
            out.append(f"<div class='graphbox'>{self._graph_svg(states.get(index, {}))}</div>")
            out.append(self._timeline(index))
            out.append(self._frames_section(index, budget))
        summaries = [x for x in self.lines if x.get("kind") == "pass_summary"]
        if summaries:
            total = sum(int(_num(x.get("passes"))) for x in summaries)
            out.append(f"<p class='muted'>{total} passes that went well are kept as counters "
                       "only (store.record_detail_passes).</p>")
        actions = [x for x in self.lines if x.get("kind") == "action"]
        if actions:
            out.append(f"<h2>Actions ({len(actions)})</h2><table class='actions'><tr>"
                       "<th>t</th><th>node</th><th>action</th><th>where</th><th>ok</th>"
                       "<th>latency</th></tr>")
            for a in actions[:2000]:
                args: Mapping[str, Any] = a["args"] if isinstance(a.get("args"), Mapping) else {}
                where = ", ".join(f"{k}={_e(v)}" for k, v in list(args.items())[:6])
                out.append(f"<tr><td>{_num(a.get('t')):.3f}</td><td>{_e(a.get('node'))}</td>"
                           f"<td>{_e(a.get('action'))}</td><td>{where}</td>"
                           f"<td>{'yes' if a.get('ok', True) else 'no'}</td>"
                           f"<td>{_num(a.get('latency_ms')):.1f} ms</td></tr>")
            out.append("</table>")
        log = [x for x in self.lines if x.get("kind") not in ("frame", "evidence")]
        out.append(f"<details><summary>Event log ({len(log)} lines)</summary><pre class='log'>")
        out += [_e(json.dumps(x, ensure_ascii=False)[:600]) + "\n" for x in log[:_MAX_LOG]]
        if len(log) > _MAX_LOG:
            out.append(f"… {len(log) - _MAX_LOG} more lines in the record\n")
        out.append("</pre></details></div>")
        return "".join(out)

    def page(self) -> str:
        """The report as a standalone HTML document."""
        return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                f"<title>{_e(self.title)}</title><style>{_CSS}</style></head><body>"
                f"{self.html()}</body></html>\n")

    def _repr_html_(self) -> str:
        return f"<style>{_CSS}</style>{self.html()}"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`page` to ``path`` atomically; returns the path."""
        from ._flow import atomic_write

        target = Path(path)
        atomic_write(target, self.page().encode("utf-8"))
        return target

    def __repr__(self) -> str:
        return f"RunReport({self.run_id!r}, flow={self.flow!r}, status={self.status})"


_CSS = """
.kvmrpa-report{font:14px/1.45 system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC',sans-serif;
 color:#212121;max-width:1400px;margin:0 auto;padding:12px}
.kvmrpa-report h1{font-size:22px;margin:4px 0 10px}
.kvmrpa-report h2{font-size:18px;margin:22px 0 8px;border-bottom:1px solid #ddd}
.kvmrpa-report h3{font-size:15px;margin:6px 0}
.kvmrpa-report h4{font-size:14px;margin:4px 0}
.kvmrpa-report .muted{color:#757575;font-weight:normal}
.kvmrpa-report .badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
 font-size:12px;background:#757575;vertical-align:middle}
.kvmrpa-report .badge.st-ok,.kvmrpa-report .badge.st-done{background:#2e7d32}
.kvmrpa-report .badge.st-failed{background:#c62828}
.kvmrpa-report .badge.st-stopped{background:#ef6c00}
.kvmrpa-report table.facts th{text-align:left;padding-right:14px;color:#616161}
.kvmrpa-report .error{color:#b71c1c;background:#ffebee;padding:6px 8px;border-radius:4px;
 white-space:pre-wrap;word-break:break-word}
.kvmrpa-report .graphbox{overflow-x:auto}
.kvmrpa-report svg.graph text.nid{font-size:13px;font-weight:600}
.kvmrpa-report svg.graph text.ntype{font-size:11px;fill:#616161}
.kvmrpa-report svg.graph text.branch{font-size:11px;fill:#6a1b9a}
.kvmrpa-report table.timeline{border-collapse:collapse;width:100%;margin:8px 0}
.kvmrpa-report table.timeline td,.kvmrpa-report table.timeline th{padding:2px 6px;
 text-align:left;font-size:13px}
.kvmrpa-report td.bars{width:55%}
.kvmrpa-report .bar{height:12px;border-radius:3px;background:#2e7d32}
.kvmrpa-report .bar.st-failed{background:#c62828}.kvmrpa-report .bar.st-stopped{background:#ef6c00}
.kvmrpa-report td.st-failed{color:#c62828}
.kvmrpa-report section.frame{border:1px solid #e0e0e0;border-radius:6px;padding:8px;margin:10px 0}
.kvmrpa-report section.frame.failed{border-color:#c62828;box-shadow:0 0 0 2px #ffcdd2}
.kvmrpa-report .cols{display:flex;gap:14px;flex-wrap:wrap}
.kvmrpa-report .shot{flex:3 1 560px;min-width:320px}
.kvmrpa-report .facts{flex:2 1 320px}
.kvmrpa-report .imgbox{position:relative;line-height:0}
.kvmrpa-report .imgbox img{width:100%;height:auto;display:block}
.kvmrpa-report .imgbox svg.overlay{position:absolute;left:0;top:0;width:100%;height:100%}
.kvmrpa-report .ev{border-left:4px solid #2e7d32;padding:2px 8px;margin:6px 0}
.kvmrpa-report .ev.st-failed{border-color:#c62828}
.kvmrpa-report .ev.st-looked{border-color:#9e9e9e}
.kvmrpa-report ol{margin:2px 0 6px 18px;padding:0}
.kvmrpa-report .txt{font-weight:600}
.kvmrpa-report table.actions{border-collapse:collapse;font-size:13px}
.kvmrpa-report table.actions td,.kvmrpa-report table.actions th{border-bottom:1px solid #eee;
 padding:2px 8px;text-align:left}
.kvmrpa-report pre.log{font-size:11px;max-height:400px;overflow:auto;background:#fafafa;
 padding:6px;white-space:pre-wrap;word-break:break-all}
"""

"""Benchmark group ``canvas``: a 200-node flow in headless Chromium, FlowCanvas next to
FlowView; and the server's loop while a 1,000-node chain runs with a FlowCanvas attached.

Browser figures: each component is saved as a standalone page (inline resources: nothing
from the network) and opened in the system Chromium.

* ``first_render_ms_200``: milliseconds from navigation until every node element is in
  the page (this includes loading the page and BokehJS, ~600 ms that both pay).
* ``component_render_ms_200``: the component's own render, from the moment BokehJS
  attaches the component's shadow root (its view is built; nothing of it is drawn yet)
  until every node element is in the page and a frame was painted. Recorded from the
  page with an init script (``attachShadow`` stamped, nodes counted every animation
  frame), the same way for FlowCanvas and FlowView.
* ``first_node_ms_200``: the same start, until the first node is painted.
* ``render_to_paint_ms_200`` (FlowCanvas): from its model's ``render()`` start to the first
  frame painted with its nodes (performance marks ``kvmrpa:flowcanvas:render`` and
  ``kvmrpa:flowcanvas:painted`` set by the bundle).
* ``pan_zoom_fps_200``: frames per second while the view is zoomed and panned for a while
  (FlowCanvas: wheel events on React Flow's pane; FlowView, which cannot pan or zoom
  itself: its SVG viewBox changed every frame).

Loop figures (no browser): a 1,000-node chain of ``wait(ms=1)`` runs on the runtime
loop while a 1 ms ticker runs on another loop standing for the server's (where a served
page renders); ``canvas.live_loop_p99_ms_1000`` is that ticker's p99 lateness with a
FlowCanvas in a Bokeh document following the run exactly as the Debugger does (a
coalescing Pusher on that loop calling ``FlowCanvas.show_run_state``: the states set
since its last push),
``canvas.live_loop_p99_ms_1000_no_canvas`` the same run with nothing attached (this
machine's floor), and ``canvas.live_loop_p99_ms_1000_debugger`` the whole Debugger
(canvas, timeline, status) attached; ``canvas.live_push_ms_p50_1000`` is the median time
one canvas push takes on that loop, ``canvas.live_renders_per_run_1000*`` how many pushes
a run made. The document has no session: Panel applies the changes to the Bokeh models
but no websocket message is written (the states go as one short JSON string).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from . import BenchSkipped

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

# Milliseconds since navigation when `want` node elements are in the page (searched
# through shadow roots every animation frame).
_FIRST_RENDER = """async ([sel, want, limit]) => {
  function count(root) {
    let n = root.querySelectorAll(sel).length
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) n += count(el.shadowRoot)
    return n
  }
  return await new Promise((resolve) => {
    const tick = () => {
      if (count(document) >= want) resolve(performance.now())
      else if (performance.now() > limit) resolve(null)
      else requestAnimationFrame(tick)
    }
    tick()
  })
}"""

# Stamp every shadow root BokehJS attaches (a component's view is built): performance.now()
# on the host element. Installed before the page's scripts run.
_STAMP_SHADOWS = """(() => {
  const attach = Element.prototype.attachShadow
  Element.prototype.attachShadow = function (init) {
    this.__kvShadowAt = performance.now()
    return attach.call(this, init)
  }
})()"""

# The component's own render: [ms from its shadow root to the first node painted, ms
# from it to `want` nodes painted] (the host is the shadow host holding the nodes).
_COMPONENT_RENDER = """async ([sel, want, limit]) => {
  function hosts(root, out) {
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) {
      out.push(el); hosts(el.shadowRoot, out) }
    return out
  }
  const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())))
  let first = null
  while (performance.now() < limit) {
    const t = await frame()
    for (const h of hosts(document, [])) {
      const n = h.shadowRoot.querySelectorAll(sel).length
      if (n > 0 && first === null) first = t - h.__kvShadowAt
      if (n >= want) return [first, t - h.__kvShadowAt]
    }
  }
  return [first, null]
}"""

# FlowCanvas's own marks: from its render() start to the first frame painted with nodes.
_MARKS = """() => {
  const at = (name) => { const m = performance.getEntriesByName('kvmrpa:flowcanvas:' + name);
                         return m.length ? m[m.length - 1].startTime : null }
  const start = at('render'), end = at('painted')
  return start === null || end === null ? null : end - start
}"""

_FPS = """async ([kind, ms]) => {
  function find(root, sel) {
    const hit = root.querySelector(sel)
    if (hit) return hit
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) {
      const s = find(el.shadowRoot, sel); if (s) return s }
    return null
  }
  const target = kind === 'canvas' ? find(document, '.react-flow__pane') : find(document, 'svg[aria-label="Flow graph"]')
  if (!target) return null
  const box = target.getBoundingClientRect()
  const vb = kind === 'canvas' ? null : target.getAttribute('viewBox').split(' ').map(Number)
  let frames = 0
  const t0 = performance.now()
  return await new Promise((resolve) => {
    const step = () => {
      frames += 1
      const t = performance.now() - t0
      if (t >= ms) { resolve(frames * 1000 / t); return }
      if (kind === 'canvas') {
        target.dispatchEvent(new WheelEvent('wheel', {deltaY: (frames % 40 < 20 ? 40 : -40),
          clientX: box.left + box.width / 2 + (frames % 7) * 10, clientY: box.top + box.height / 2,
          bubbles: true, cancelable: true}))
      } else {
        const s = 1 + 0.3 * Math.sin(frames / 10)
        target.setAttribute('viewBox', `${(frames % 50) * 4} 0 ${vb[2] / s} ${vb[3] / s}`)
      }
      requestAnimationFrame(step)
    }
    requestAnimationFrame(step)
  })
}"""


def _flow(n: int) -> Any:
    from kvmrpa.engine import Flow

    flow = Flow("bench200")
    for i in range(n):
        flow.add("wait", f"n{i}", position=((i % 20) * 220.0, (i // 20) * 90.0), ms=1)
    for i in range(1, n):
        flow.connect(f"n{(i - 1) // 2}", f"n{i}")  # a binary tree: wide and deep
    return flow


def _save(component: Any, path: Path) -> None:
    from bokeh.resources import INLINE

    component.save(str(path), resources=INLINE, embed=False)


def run(quick: bool) -> dict[str, float | None]:
    out = live(quick)
    if not Path(CHROMIUM).exists():
        if out:
            return out
        raise BenchSkipped("no Chromium at /usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        return out
    out.update(browser(quick))
    return out


def browser(quick: bool) -> dict[str, float | None]:
    """The browser figures (headless Chromium)."""
    from playwright.sync_api import sync_playwright

    from kvmrpa.widgets import FlowCanvas, FlowView

    n = 200
    ms = 1000 if quick else 3000
    reps = 3 if quick else 7
    out: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="kvmrpa-bench-canvas-") as tmp:
        pages = {"canvas": Path(tmp) / "canvas.html", "flowview": Path(tmp) / "flowview.html"}
        _save(FlowCanvas(_flow(n), height=700, sizing_mode="fixed", width=1200, min_height=700), pages["canvas"])
        _save(FlowView(_flow(n), sizing_mode="fixed", width=1200), pages["flowview"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                for kind, page_path in pages.items():
                    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                    try:
                        ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
                            ("file:", "data:", "blob:")) else r.abort())
                        ctx.add_init_script(_STAMP_SHADOWS)
                        page = ctx.new_page()
                        page.goto(page_path.as_uri(), wait_until="commit")
                        sel = ".kv-node[data-node]" if kind == "canvas" else "g[data-node]"
                        first = page.evaluate(_FIRST_RENDER, [sel, n, 60_000])
                        owns, firsts, marks = [], [], []
                        for _ in range(reps):  # the component alone, again (median)
                            page.reload(wait_until="commit")
                            own_first, own = page.evaluate(_COMPONENT_RENDER, [sel, n, 60_000])
                            owns.append(own)
                            firsts.append(own_first)
                            if kind == "canvas":
                                marks.append(page.evaluate(_MARKS))
                        page.wait_for_timeout(300)
                        fps = page.evaluate(_FPS, [kind, ms])
                    finally:
                        ctx.close()
                    prefix = "canvas" if kind == "canvas" else "canvas.flowview"
                    out[f"{prefix}.first_render_ms_200"] = _round(first)
                    out[f"{prefix}.component_render_ms_200"] = _median(owns)
                    out[f"{prefix}.first_node_ms_200"] = _median(firsts)
                    if kind == "canvas":
                        out["canvas.render_to_paint_ms_200"] = _median(marks)
                    out[f"{prefix}.pan_zoom_fps_200"] = _round(fps)
            finally:
                browser.close()
    return out


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return None if len(got) < len(values) or not got else _round(statistics.median(got))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- the server's loop during a 1,000-node-chain run ----------------------------------------
def _chain(n: int) -> Any:
    from kvmrpa.engine import Flow

    flow = Flow(f"chain{n}")
    for i in range(n):
        flow.add("wait", f"n{i}", ms=1)
        if i:
            flow.connect(f"n{i - 1}", f"n{i}")
    return flow


async def _ticker(done: Any, lateness: list[float]) -> None:
    while not done():
        t = time.monotonic()
        await asyncio.sleep(0.001)
        lateness.append(max(0.0, time.monotonic() - t - 0.001))


def _p99_ms(values: list[float]) -> float | None:
    if len(values) < 10:
        return None
    return statistics.quantiles(values, n=100)[98] * 1000


async def _live_once(n: int, attach: str,
                     pushes: list[float] | None = None) -> tuple[list[float], int]:
    """One run of an ``n``-node chain, a 1 ms ticker on this loop meanwhile; ``attach``:
    ``none``, ``canvas`` (a FlowCanvas following the run as the Debugger does) or
    ``debugger``. Returns the ticker's lateness and how many renders the pusher made;
    ``pushes`` gets the seconds each canvas push took (``canvas``)."""
    from bokeh.document import Document

    from kvmrpa._runtime import get_runtime
    from kvmrpa.engine import FlowRun
    from kvmrpa.widgets import Debugger, FlowCanvas
    from kvmrpa.widgets._push import Pusher
    from kvmrpa.widgets._runstate import FlowFeed

    runtime = get_runtime()
    flow = _chain(n)
    closers: list[Any] = []
    pusher: Pusher | None = None
    if attach == "debugger":
        dbg = Debugger(flow)
        doc = Document()
        doc.add_root(dbg.__panel__().get_root(doc))  # binds its pusher to this loop
        pusher, feed = dbg.pusher, dbg.feed
        closers.append(dbg.pusher.close)
    else:
        feed = FlowFeed(flow.name, list(flow.nodes))
        if attach == "canvas":
            canvas = FlowCanvas(flow, editable=False)
            doc = Document()
            doc.add_root(canvas.get_root(doc))

            def render() -> None:  # Debugger.refresh's part for the canvas
                t0 = time.perf_counter()
                canvas.show_run_state(feed.state)
                if pushes is not None:
                    pushes.append(time.perf_counter() - t0)

            pusher = Pusher(render)
            pusher.bind()
            closers.append(pusher.close)
            closers.append(feed.state.subscribe(pusher.poke))
    run = FlowRun(flow, passes=1, record=False, debug=True)
    await asyncio.wrap_future(runtime.submit(_follow_and_start(feed, run)))
    lateness: list[float] = []
    renders = pusher.renders if pusher is not None else 0
    try:
        await _ticker(lambda: run.done, lateness)
        await asyncio.sleep(0.1)  # the last render
    finally:
        for close in closers:
            close()
    result = await asyncio.wrap_future(runtime.submit(run.aresult()))
    if result.status != "ok":
        raise RuntimeError(f"benchmark flow failed: {result.error}")
    return lateness, (pusher.renders - renders) if pusher is not None else 0


async def _follow_and_start(feed: Any, run: Any) -> None:
    feed.follow(run)
    await run.astart()


def live(quick: bool) -> dict[str, float | None]:
    """The loop figures (no browser)."""
    n = 1000
    reps = 1 if quick else 3
    out: dict[str, float | None] = {}

    async def measure() -> None:
        await _live_once(200, "canvas")  # warm-up: imports, first models
        for attach in ("none", "canvas", "debugger"):
            lateness: list[float] = []
            pushes: list[float] = []
            renders = 0
            for _ in range(reps):
                late, count = await _live_once(n, attach, pushes)
                lateness += late
                renders += count
            suffix = {"none": "_no_canvas", "canvas": "", "debugger": "_debugger"}[attach]
            out[f"canvas.live_loop_p99_ms_1000{suffix}"] = _round3(_p99_ms(lateness))
            if attach != "none":
                out[f"canvas.live_renders_per_run_1000{suffix}"] = renders / reps
            if pushes:
                out["canvas.live_push_ms_p50_1000"] = _round3(statistics.median(pushes) * 1000)

    asyncio.run(measure())
    return out


def _round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

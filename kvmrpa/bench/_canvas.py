"""Benchmark group ``canvas``: a 200-node flow in headless Chromium, FlowCanvas next to
FlowView.

Each component is saved as a standalone page (inline resources: nothing from the
network) and opened in the system Chromium. Figures: the milliseconds from navigation
until every node element is in the page (``first_render_ms``), and the frames per second
while the view is zoomed and panned for a while (FlowCanvas: wheel events on React Flow's
pane; FlowView, which cannot pan or zoom itself: its SVG viewBox changed every frame).
"""

from __future__ import annotations

import tempfile
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
    if not Path(CHROMIUM).exists():
        raise BenchSkipped("no Chromium at /usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BenchSkipped("Playwright is not installed (kvmrpa[test])") from None
    from kvmrpa.widgets import FlowCanvas, FlowView

    n = 200
    ms = 1000 if quick else 3000
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
                        page = ctx.new_page()
                        page.goto(page_path.as_uri(), wait_until="commit")
                        sel = ".kv-node[data-node]" if kind == "canvas" else "g[data-node]"
                        first = page.evaluate(_FIRST_RENDER, [sel, n, 60_000])
                        page.wait_for_timeout(300)
                        fps = page.evaluate(_FPS, [kind, ms])
                    finally:
                        ctx.close()
                    prefix = "canvas" if kind == "canvas" else "canvas.flowview"
                    out[f"{prefix}.first_render_ms_200"] = None if first is None else round(first, 1)
                    out[f"{prefix}.pan_zoom_fps_200"] = None if fps is None else round(fps, 1)
            finally:
                browser.close()
    return out

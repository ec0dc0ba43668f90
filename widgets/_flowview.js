// FlowView: the flow graph as SVG, node colours from live states, click to select.

const FILL = {pending: "#eceff1", running: "#fff59d", done: "#a5d6a7", failed: "#ef9a9a",
              stopped: "#d7ccc8", skipped: "#cfd8dc", paused: "#90caf9"}
const GAP = 44
const NS = "http://www.w3.org/2000/svg"
const MIN_W = 120, H = 46, PAD = 14
const measurer = document.createElement("canvas").getContext("2d")
function textWidth(text, font) { measurer.font = font; return measurer.measureText(text).width }

function get(o, k) { return o instanceof Map ? o.get(k) : o[k] }

export function render({ model, el }) {
  const wrap = document.createElement("div")
  wrap.style.cssText = "overflow:hidden;width:100%;font:12px sans-serif"
  const svg = document.createElementNS(NS, "svg")
  svg.setAttribute("role", "group")
  svg.setAttribute("aria-label", "Flow graph")
  wrap.appendChild(svg)
  el.appendChild(wrap)

  function mk(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag)
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
    parent.appendChild(e)
    return e
  }

  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild)
    const graph = model.graph || {}
    const nodes = get(graph, "nodes") || []
    const edges = get(graph, "edges") || []
    const states = model.states || {}
    const bps = new Set(model.breakpoints || [])
    // Boxes fit their text; columns (nodes of one x) are as wide as their widest box.
    const width = {}
    const columns = new Map()
    for (const n of nodes) {
      const id = get(n, "id")
      const typeW = Math.max(...["pending", "running", "stopped", "skipped"].map(
        (st) => textWidth(`${get(n, "type")} · ${st}`, "12px sans-serif")))
      width[id] = Math.ceil(Math.max(MIN_W, textWidth(id, "bold 12px sans-serif"), typeW) + 2 * PAD)
      const x = get(n, "x")
      columns.set(x, Math.max(columns.get(x) || 0, width[id]))
    }
    const colX = new Map()
    let cx = 12
    for (const x of [...columns.keys()].sort((a, b) => a - b)) { colX.set(x, cx); cx += columns.get(x) + GAP }
    const pos = {}
    let maxX = 200, maxY = 60
    for (const n of nodes) {
      const id = get(n, "id")
      const x = colX.get(get(n, "x")), y = get(n, "y") - 8
      pos[id] = [x, y, width[id]]
      maxX = Math.max(maxX, x + width[id] + 12)
      maxY = Math.max(maxY, y + H + 12)
    }
    // Scaled down (never up) to the width available: the graph is never cut off.
    svg.setAttribute("viewBox", `0 0 ${maxX} ${maxY}`)
    svg.setAttribute("width", "100%")
    svg.style.maxWidth = `${maxX}px`
    svg.style.display = "block"
    const defs = mk("defs", {}, svg)
    const marker = mk("marker", {id: "kv-arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
                                 markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse"}, defs)
    mk("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#607d8b"}, marker)
    for (const e of edges) {
      const a = pos[get(e, "source")], b = pos[get(e, "target")]
      if (!a || !b) continue
      const x1 = a[0] + a[2], y1 = a[1] + H / 2, x2 = b[0], y2 = b[1] + H / 2
      const mx = (x1 + x2) / 2
      mk("path", {d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, fill: "none",
                  stroke: "#607d8b", "stroke-width": "1.5", "marker-end": "url(#kv-arrow)"}, svg)
      const branch = get(e, "branch")
      if (branch) {
        const t = mk("text", {x: mx, y: (y1 + y2) / 2 - 4, "text-anchor": "middle", fill: "#455a64"}, svg)
        t.textContent = branch
      }
    }
    for (const n of nodes) {
      const id = get(n, "id")
      const state = get(states, id) || "pending"
      const [x, y, W] = pos[id]
      const g = mk("g", {role: "button", tabindex: "0", "data-node": id, "data-state": state,
                         "aria-label": `node ${id} ${state}`, style: "cursor:pointer"}, svg)
      const selected = model.selected === id
      mk("rect", {x, y, width: W, height: H, rx: 6, fill: FILL[state] || "#fff",
                  stroke: selected ? "#1565c0" : "#546e7a", "stroke-width": selected ? 3 : 1}, g)
      const label = get(n, "label")
      if (label && label !== id) mk("title", {}, g).textContent = `${id}: ${label}`
      if (bps.has(id)) mk("circle", {cx: x + 7, cy: y + 8, r: 4.5, fill: "#d32f2f"}, g)
      const t1 = mk("text", {x: x + PAD, y: y + 19, "font-weight": "bold"}, g)
      t1.textContent = id
      const t2 = mk("text", {x: x + PAD, y: y + 36, fill: "#37474f"}, g)
      t2.textContent = `${get(n, "type")} · ${state}`
      const select = () => { model.selected = id }
      g.addEventListener("click", select)
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") select() })
    }
  }
  model.on(["graph", "states", "breakpoints", "selected"], draw)
  draw()
}

// LiveView: draws JPEG frames on a canvas, with overlays, a badge, hold/zoom,
// click-to-point, drag-to-region and an optional console mode that forwards
// mouse and keyboard events to the Python side. Frames come in Panel's custom
// messages, or, once the server granted this view its frame route (a "route"
// message), on that websocket: one binary message per frame (see _frameroute.py).
// A frame is whole, or patches (JPEGs of the parts that changed) over the frame
// `base`: the picture lives in an off-screen canvas the patches are drawn into, and a
// patch whose base is not the picture on screen is dropped and a whole frame asked for.

function get(msg, key) {
  if (msg == null) return undefined
  return msg instanceof Map ? msg.get(key) : msg[key]
}

function toBytes(buf) {
  if (buf instanceof ArrayBuffer) return new Uint8Array(buf)
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  if (typeof buf === "string") {  // base64 (only if a transport could not send binary)
    const bin = atob(buf)
    const out = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out
  }
  return null
}

// _frameroute.HEADER: "KVF1", stream u32, seq u64, width, height, frame_width,
// frame_height u32, wall f64 (little-endian), then the JPEG.
const MAGIC = 0x3146564b
const HEADER_BYTES = 40

// _frameroute.PATCH_HEADER: "KVP1", stream u32, seq u64, base u64, width, height,
// frame_width, frame_height u32, wall f64, count u32; then count entries of x, y, w, h,
// nbytes (u32 each), then the patches' JPEGs in that order.
const PATCH_MAGIC = 0x3150564b
const PATCH_HEADER_BYTES = 52
const PATCH_ENTRY_BYTES = 20

function parsePatches(buf, dv) {
  if (buf.byteLength < PATCH_HEADER_BYTES) return null
  const count = dv.getUint32(48, true)
  let at = PATCH_HEADER_BYTES + count * PATCH_ENTRY_BYTES
  if (count > 4096 || at > buf.byteLength) return null
  const patches = []
  for (let i = 0; i < count; i++) {
    const e = PATCH_HEADER_BYTES + i * PATCH_ENTRY_BYTES
    const n = dv.getUint32(e + 16, true)
    if (at + n > buf.byteLength) return null
    patches.push({x: dv.getUint32(e, true), y: dv.getUint32(e + 4, true), w: dv.getUint32(e + 8, true),
                  h: dv.getUint32(e + 12, true), jpeg: new Uint8Array(buf, at, n)})
    at += n
  }
  return {
    kind: "frame", via: "route", stream: dv.getUint32(4, true), seq: Number(dv.getBigUint64(8, true)),
    base: Number(dv.getBigUint64(16, true)), width: dv.getUint32(24, true), height: dv.getUint32(28, true),
    frame_width: dv.getUint32(32, true), frame_height: dv.getUint32(36, true),
    wall: dv.getFloat64(40, true), patches,
  }
}

function parsePacket(buf) {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength < HEADER_BYTES) return null
  const dv = new DataView(buf)
  if (dv.getUint32(0, true) === PATCH_MAGIC) return parsePatches(buf, dv)
  if (dv.getUint32(0, true) !== MAGIC) return null
  return {
    kind: "frame", via: "route", stream: dv.getUint32(4, true), seq: Number(dv.getBigUint64(8, true)),
    width: dv.getUint32(16, true), height: dv.getUint32(20, true),
    frame_width: dv.getUint32(24, true), frame_height: dv.getUint32(28, true),
    wall: dv.getFloat64(32, true), jpeg: new Uint8Array(buf, HEADER_BYTES),
  }
}

const COLORS = {text: "#00e676", match: "#ffca28", detection: "#40c4ff", point: "#ff1744", region: "#e040fb"}

export function render({ model, el }) {
  const root = document.createElement("div")
  root.className = "kv-live"
  root.style.cssText = "display:flex;flex-direction:column;width:100%;font:12px sans-serif;box-sizing:border-box"

  const bar = document.createElement("div")
  bar.style.cssText = "display:flex;gap:4px;align-items:center;padding:2px 0"
  const mkButton = (text, label) => {
    const b = document.createElement("button")
    b.type = "button"
    b.textContent = text
    b.setAttribute("aria-label", label)
    b.title = label
    b.style.cssText = "padding:1px 6px;cursor:pointer"
    bar.appendChild(b)
    return b
  }
  const hold = mkButton("hold", "Hold video")
  const zoomOut = mkButton("−", "Zoom out")
  const zoomFit = mkButton("fit", "Zoom to fit")
  const zoomIn = mkButton("+", "Zoom in")
  const consoleBtn = mkButton("console", "Console mode")
  const templateBtn = mkButton("template", "Save region as template")
  const badge = document.createElement("span")
  badge.setAttribute("aria-label", "Stream status")
  badge.style.cssText = "margin-left:auto;min-width:0;font-family:monospace;color:#555;white-space:nowrap;overflow:hidden;text-overflow:ellipsis"
  badge.textContent = "waiting for frames"
  bar.appendChild(badge)
  let noteUntil = 0
  function note(text) { badge.textContent = text; noteUntil = performance.now() + 3000 }

  const viewport = document.createElement("div")
  viewport.style.cssText = "position:relative;overflow:auto;width:100%;background:#111;line-height:0;display:flex"
  const canvas = document.createElement("canvas")
  canvas.setAttribute("aria-label", "Live view")
  canvas.setAttribute("role", "img")
  canvas.tabIndex = 0
  canvas.dataset.frameSeq = "0"
  canvas.width = 640
  canvas.height = 360
  canvas.style.cssText = "display:block;flex:none;margin:auto;cursor:crosshair;outline:none"
  viewport.appendChild(canvas)
  root.appendChild(bar)
  root.appendChild(viewport)
  el.appendChild(root)

  const ctx = canvas.getContext("2d")
  const picture = document.createElement("canvas")  // the frame on screen, patches drawn in
  const pctx = picture.getContext("2d")
  let hasPicture = false
  let info = null           // {stream, seq, fw, fh, w, h, wall}
  let decoding = false
  const waiting = []        // undecoded messages while decoding: a whole frame, then patches
  let keyframeAsked = -Infinity
  const arrivals = []
  let drag = null           // {x0, y0, x1, y1} in frame pixels while dragging
  let lastMove = 0
  let alive = true
  let drawn = 0
  let dragged = false       // a region was drawn here (its echo from the server may lag)

  function frameScale() { return info ? info.w / info.fw : 1 }

  function toFrame(ev) {
    const rect = canvas.getBoundingClientRect()
    const fw = info ? info.fw : canvas.width
    const fh = info ? info.fh : canvas.height
    const x = (ev.clientX - rect.left) / Math.max(rect.width, 1) * fw
    const y = (ev.clientY - rect.top) / Math.max(rect.height, 1) * fh
    return [Math.max(0, Math.min(fw - 1, Math.round(x))), Math.max(0, Math.min(fh - 1, Math.round(y)))]
  }

  function strokeBox(x, y, w, h, color, label) {
    const s = frameScale()
    ctx.strokeStyle = color
    ctx.lineWidth = 2
    ctx.strokeRect(x * s, y * s, w * s, h * s)
    if (label) {
      ctx.font = "14px sans-serif"
      const tw = ctx.measureText(label).width
      ctx.fillStyle = "rgba(0,0,0,0.6)"
      ctx.fillRect(x * s, Math.max(0, y * s - 17), tw + 6, 17)
      ctx.fillStyle = color
      ctx.fillText(label, x * s + 3, Math.max(13, y * s - 4))
    }
  }

  function draw() {
    // A frame covers the whole canvas; without one, clear it so overlays never pile up.
    if (hasPicture) ctx.drawImage(picture, 0, 0, canvas.width, canvas.height)
    else ctx.clearRect(0, 0, canvas.width, canvas.height)
    const overlays = model.overlays || []
    for (const o of overlays) {
      ctx.globalAlpha = get(o, "alpha") == null ? 1 : Math.max(0.05, Math.min(1, Number(get(o, "alpha"))))
      const kind = get(o, "kind") || "text"
      const bbox = get(o, "bbox")
      if (kind === "point") {
        const p = get(o, "point") || bbox
        if (p) drawPoint(p[0], p[1], get(o, "color") || COLORS.point)
        continue
      }
      if (!bbox) continue
      strokeBox(bbox[0], bbox[1], bbox[2], bbox[3], get(o, "color") || COLORS[kind] || "#fff", get(o, "label"))
    }
    ctx.globalAlpha = 1
    const r = drag ? [Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1),
                      Math.abs(drag.x1 - drag.x0), Math.abs(drag.y1 - drag.y0)] : model.region
    if (r && r.length === 4) {
      ctx.setLineDash([6, 4])
      strokeBox(r[0], r[1], r[2], r[3], COLORS.region, null)
      ctx.setLineDash([])
    }
    const p = model.point
    if (p && p.length === 2) drawPoint(p[0], p[1], COLORS.point)
  }

  function drawPoint(x, y, color) {
    const s = frameScale()
    ctx.strokeStyle = color
    ctx.lineWidth = 2
    ctx.beginPath()
    ctx.arc(x * s, y * s, 7, 0, 2 * Math.PI)
    ctx.moveTo(x * s - 11, y * s); ctx.lineTo(x * s + 11, y * s)
    ctx.moveTo(x * s, y * s - 11); ctx.lineTo(x * s, y * s + 11)
    ctx.stroke()
  }

  function updateBadge() {
    const now = performance.now()
    if (now < noteUntil) return
    while (arrivals.length && now - arrivals[0] > 2000) arrivals.shift()
    const fps = arrivals.length > 1 ? (arrivals.length - 1) * 1000 / (arrivals[arrivals.length - 1] - arrivals[0]) : 0
    const age = info ? Math.max(0, Date.now() - info.wall * 1000) : null
    const state = model.paused ? "held" : "live"
    badge.textContent = info ? `${state} · ${fps.toFixed(1)} fps · ${age == null ? "?" : age.toFixed(0)} ms · #${info.seq}` : "waiting for frames"
  }

  async function show(msg) {
    const seq = Number(get(msg, "seq"))
    const stream = Number(get(msg, "stream") || 0)
    // Streams are numbered in order and seqs increase within one: a late frame of an
    // earlier stream is dropped, a newer stream (another source) starts afresh.
    if (info && (stream < info.stream || (stream === info.stream && seq <= info.seq))) return
    const w = Number(get(msg, "width")), h = Number(get(msg, "height"))
    const base = get(msg, "base")
    if (base != null) {  // patches: only over the picture they were made for
      if (!info || !hasPicture || stream !== info.stream || Number(base) !== info.seq
          || picture.width !== w || picture.height !== h) { askKeyframe(); return }
      const patches = Array.from(get(msg, "patches") || [])
      const bitmaps = await Promise.all(patches.map((p) => {
        const bytes = toBytes(get(p, "jpeg"))
        return bytes ? createImageBitmap(new Blob([bytes], {type: "image/jpeg"})) : null
      }))
      if (!alive || info.seq !== Number(base)) { bitmaps.forEach((b) => b && b.close()); return }
      patches.forEach((p, i) => {
        const bmp = bitmaps[i]
        if (!bmp) return
        pctx.drawImage(bmp, Number(get(p, "x")), Number(get(p, "y")))
        bmp.close()
      })
    } else {
      const bytes = toBytes(get(msg, "jpeg"))
      if (!bytes) return
      const bmp = await createImageBitmap(new Blob([bytes], {type: "image/jpeg"}))
      if (!alive) { bmp.close(); return }
      if (picture.width !== w || picture.height !== h) { picture.width = w; picture.height = h }
      pctx.drawImage(bmp, 0, 0)
      bmp.close()
      hasPicture = true
    }
    const resized = canvas.width !== w || canvas.height !== h
    if (resized) { canvas.width = w; canvas.height = h }
    const ratio = info ? info.fw / info.fh : 0
    info = {stream, seq, w, h, fw: Number(get(msg, "frame_width")), fh: Number(get(msg, "frame_height")), wall: Number(get(msg, "wall"))}
    if (resized || info.fw / info.fh !== ratio) layout()
    arrivals.push(performance.now())
    draw()
    canvas.dataset.frameSeq = String(seq)
    const kind = base != null ? "patch" : "whole"  // how the last frame came
    if (canvas.dataset.frameKind !== kind) canvas.dataset.frameKind = kind
    const via = get(msg, "via") === "route" ? "route" : "bokeh"  // which path it came on
    if (canvas.dataset.frameVia !== via) canvas.dataset.frameVia = via
    updateBadge()
    // Acknowledge every other frame: the server keeps at most a few frames in flight,
    // and half the acks halve their cost on the server.
    drawn += 1
    if (drawn % 2 === 0) {
      if (get(msg, "via") === "route" && ws && ws.readyState === 1) ws.send("a" + seq)
      else model.send_msg({kind: "ack", seq})
    }
  }

  // The frame route: a websocket of this view's own, opened with the token the server
  // granted this model. When it closes the server sends frames on Bokeh's path again;
  // a socket that had opened is asked for again a few times, one that never opened
  // (a server without the route) is not.
  let ws = null
  let routeRetries = 0
  function openRoute(msg) {
    if (!alive || typeof WebSocket === "undefined") return
    const token = String(get(msg, "token") || "")
    if (!token || (ws && ws.readyState <= 1)) return
    const url = new URL(String(get(msg, "path")), window.location.href)
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
    let sock
    try { sock = new WebSocket(url.href, [String(get(msg, "protocol")), token]) } catch (err) {
      console.warn("kvmrpa LiveView: no frame route", err)
      return
    }
    sock.binaryType = "arraybuffer"
    ws = sock
    let opened = false
    sock.onopen = () => { opened = true; routeRetries = 0 }
    sock.onmessage = (ev) => { const m = parsePacket(ev.data); if (m) pump(m) }
    sock.onclose = () => {
      if (ws === sock) ws = null
      if (!alive || !opened || routeRetries >= 5) return
      routeRetries += 1
      setTimeout(() => { if (alive && !ws) model.send_msg({kind: "hello"}) }, 1000 * routeRetries)
    }
  }

  function askKeyframe() {
    const now = performance.now()
    if (now - keyframeAsked < 500) return
    keyframeAsked = now
    model.send_msg({kind: "keyframe"})
  }

  // Frames wait in order while one is decoded: a whole frame replaces all that wait
  // (a slow browser skips frames), a patch waits behind them (it is drawn over the one
  // before); too many patches waiting are dropped and a whole frame asked for.
  async function pump(msg) {
    if (get(msg, "base") == null) waiting.length = 0
    else if (waiting.length >= 32) { waiting.length = 0; askKeyframe(); return }
    waiting.push(msg)
    if (decoding) return
    decoding = true
    try {
      while (waiting.length && alive) {
        const next = waiting.shift()
        try { await show(next) } catch (err) { console.warn("kvmrpa LiveView: cannot draw frame", err) }
      }
    } finally { decoding = false }
  }

  model.on("msg:custom", (msg) => {
    if (get(msg, "kind") === "note") { note(String(get(msg, "text"))); return }
    if (get(msg, "kind") === "route") { openRoute(msg); return }
    if (get(msg, "kind") !== "frame") return
    pump(msg)
  })
  model.on(["overlays", "point", "region"], () => draw())
  model.on("paused", () => { hold.textContent = model.paused ? "live" : "hold"; hold.setAttribute("aria-label", model.paused ? "Resume video" : "Hold video"); updateBadge() })
  model.on("console", () => { consoleBtn.style.fontWeight = model.console ? "bold" : "normal"; consoleBtn.setAttribute("aria-pressed", String(!!model.console)) })
  model.on(["zoom", "fit", "height_bound"], () => layout())

  // Sizing: the picture always keeps the frame's proportions. Filling the width, the
  // view is as tall as the picture; containing (a view whose height is bound), the whole
  // frame fits inside the view's width and height. Zoom scales that size (scrolling).
  function contains() { return model.fit === "contain" || (model.fit !== "width" && !!model.height_bound) }
  function layout() {
    const fw = info ? info.fw : canvas.width, fh = info ? info.fh : canvas.height
    const ratio = fw > 0 && fh > 0 ? fw / fh : 16 / 9
    const boxed = contains()
    root.style.height = boxed ? "100%" : ""
    viewport.style.flex = boxed ? "1 1 0" : "none"
    viewport.style.minHeight = boxed ? "0" : ""
    const W = viewport.clientWidth
    let w = W
    if (boxed && viewport.clientHeight > 0) w = Math.min(W, viewport.clientHeight * ratio)
    w = Math.max(1, Math.floor(w * (model.zoom || 1)))
    canvas.style.width = `${w}px`
    canvas.style.height = `${Math.max(1, Math.floor(w / ratio))}px`
    reportWidth(w)
  }
  let reported = 0
  function reportWidth(cssWidth) {
    const w = Math.round(cssWidth * (window.devicePixelRatio || 1))
    if (w > 0 && Math.abs(w - reported) >= 16) { reported = w; model.view_width = w }
  }
  let lastBox = ""
  const ro = new ResizeObserver(() => {
    // Only a change of the space given to the view counts (not the canvas it holds).
    const box = `${viewport.clientWidth}x${contains() ? viewport.clientHeight : 0}`
    if (box !== lastBox) { lastBox = box; layout() }
  })
  ro.observe(viewport)

  hold.addEventListener("click", () => { model.paused = !model.paused })
  zoomIn.addEventListener("click", () => { model.zoom = Math.min(8, (model.zoom || 1) * 1.25) })
  zoomOut.addEventListener("click", () => { model.zoom = Math.max(0.25, (model.zoom || 1) / 1.25) })
  zoomFit.addEventListener("click", () => { model.zoom = 1 })
  consoleBtn.addEventListener("click", () => { model.console = !model.console })
  templateBtn.addEventListener("click", () => {
    // The region message goes before this one on the same socket, so a region drawn
    // a moment ago counts even before the server echoes it back.
    if (!model.region && !dragged) { note("drag a region first"); return }
    const name = window.prompt("Template name", "template")
    if (name) model.send_msg({kind: "save_template", name})
  })

  const BUTTONS = ["left", "middle", "right"]
  canvas.addEventListener("contextmenu", (ev) => { if (model.console) ev.preventDefault() })
  canvas.addEventListener("mousedown", (ev) => {
    const [x, y] = toFrame(ev)
    canvas.focus({preventScroll: true})  // a scroll between press and release would move the release
    if (model.console) {
      ev.preventDefault()
      model.send_msg({kind: "mouse", action: "down", x, y, button: BUTTONS[ev.button] || "left"})
      return
    }
    drag = {x0: x, y0: y, x1: x, y1: y, cx: ev.clientX, cy: ev.clientY}
  })
  canvas.addEventListener("mousemove", (ev) => {
    const [x, y] = toFrame(ev)
    if (model.console) {
      const now = performance.now()
      if (now - lastMove > 40) { lastMove = now; model.send_msg({kind: "mouse", action: "move", x, y}) }
      return
    }
    if (drag) { drag.x1 = x; drag.y1 = y; draw() }
  })
  const finish = (ev) => {
    const [x, y] = toFrame(ev)
    if (model.console) {
      model.send_msg({kind: "mouse", action: "up", x, y, button: BUTTONS[ev.button] || "left"})
      return
    }
    if (!drag) return
    const d = drag
    drag = null
    if (Math.abs(ev.clientX - d.cx) < 4 && Math.abs(ev.clientY - d.cy) < 4) {
      model.send_msg({kind: "point", x: d.x0, y: d.y0})
    } else {
      model.send_msg({kind: "region", x: Math.min(d.x0, x), y: Math.min(d.y0, y), w: Math.abs(x - d.x0), h: Math.abs(y - d.y0)})
      dragged = true
    }
    draw()
  }
  canvas.addEventListener("mouseup", finish)
  canvas.addEventListener("mouseleave", (ev) => { if (drag) finish(ev) })
  canvas.addEventListener("wheel", (ev) => {
    if (!model.console) return
    ev.preventDefault()
    if (!ev.deltaY) return
    const [x, y] = toFrame(ev)
    // one notch per event; positive is down, as deltaY and InputDriver.scroll both say
    model.send_msg({kind: "wheel", x, y, dy: ev.deltaY > 0 ? 1 : -1})
  }, {passive: false})
  const onKey = (action) => (ev) => {
    if (!model.console) return
    ev.preventDefault()
    model.send_msg({kind: "key", action, key: ev.key, code: ev.code})
  }
  canvas.addEventListener("keydown", onKey("down"))
  canvas.addEventListener("keyup", onKey("up"))

  const ticker = setInterval(updateBadge, 500)
  model.on("remove", () => {
    alive = false
    clearInterval(ticker)
    if (ws) { ws.close(); ws = null }
    ro.disconnect()
    waiting.length = 0
    picture.width = picture.height = 0
  })
  layout()
  draw()
  model.send_msg({kind: "hello"})
}

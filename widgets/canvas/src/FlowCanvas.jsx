// FlowCanvas: a flow drawn and edited with React Flow (@xyflow/react).
//
// The document (nodes, edges, problems) comes from the server as JSON; every edit is a
// message to the server (model.send_msg), which applies it through the flow's own API,
// checks it with the engine's validation and sends the new document back. Nothing here
// decides whether an edit is allowed: while a wire is dragged the server is asked which
// targets it refuses (and why), and a drop on one of them asks the server again so that
// the refusal and its reason are the engine's.
import * as React from "react"
import {
  ReactFlow, ReactFlowProvider, Background, Controls, MiniMap, Handle, Position,
  MarkerType, applyNodeChanges, applyEdgeChanges, useReactFlow, useConnection,
} from "@xyflow/react"
import flowCss from "@xyflow/react/dist/style.css"

const CSS = `
.kv-root{display:flex;width:100%;height:100%;min-height:320px;font:12px sans-serif;color:#263238;
  box-sizing:border-box;border:1px solid #cfd8dc;border-radius:4px;background:#fff}
.kv-root:focus{outline:2px solid #90caf9}
.kv-palette{width:178px;flex:none;overflow-y:auto;border-right:1px solid #cfd8dc;padding:4px;
  background:#fafafa;box-sizing:border-box}
.kv-palette input{width:100%;box-sizing:border-box;margin:0 0 4px;padding:3px 5px;font:12px sans-serif}
.kv-cat{font:bold 11px sans-serif;color:#607d8b;text-transform:uppercase;margin:6px 2px 2px}
.kv-item{padding:4px 6px;margin:2px 0;border:1px solid #b0bec5;border-radius:4px;background:#fff;
  cursor:grab;user-select:none;touch-action:none}
.kv-item:hover,.kv-item:focus{background:#e3f2fd;border-color:#1e88e5;outline:none}
.kv-main{flex:1;display:flex;flex-direction:column;min-width:0}
.kv-bar{display:flex;flex-wrap:wrap;gap:4px;align-items:center;padding:3px 4px;border-bottom:1px solid #eceff1}
.kv-bar button{font:12px sans-serif;padding:2px 8px;border:1px solid #b0bec5;border-radius:4px;
  background:#fff;cursor:pointer}
.kv-bar button:disabled{color:#b0bec5;cursor:default}
.kv-msg{flex:1;min-width:120px;color:#37474f;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.kv-msg[data-kind=error]{color:#c62828;font-weight:bold}
.kv-flow{flex:1;position:relative;min-height:240px}
.kv-node{box-sizing:border-box;min-width:140px;max-width:200px;padding:5px 12px 5px 16px;
  border:1px solid #546e7a;border-radius:6px;background:#eceff1;white-space:nowrap;position:relative}
.kv-node>div{overflow:hidden;text-overflow:ellipsis}
.kv-node .kv-id{font-weight:bold}
.kv-node .kv-type{color:#37474f;font-size:11px}
.kv-pending{background:#eceff1}.kv-running{background:#fff59d;border:3px solid #f57f17;
  box-shadow:0 0 0 4px rgba(245,127,23,.35)}
.kv-done{background:#a5d6a7}.kv-failed{background:#ef9a9a}.kv-stopped{background:#d7ccc8}
.kv-skipped{background:#cfd8dc}.kv-paused{background:#90caf9;border:3px solid #1565c0}
.kv-sel{outline:3px solid #1565c0;outline-offset:1px}
.react-flow__node.selected .kv-node{box-shadow:0 0 0 2px #42a5f5}
.kv-bad{border:2px solid #d32f2f}
.kv-warn{position:absolute;right:3px;top:2px;color:#d32f2f;font-weight:bold;cursor:help}
.kv-bp{position:absolute;left:3px;top:4px;width:9px;height:9px;border-radius:50%;
  border:1px solid #b0bec5;background:transparent;cursor:pointer;padding:0}
.kv-bp:hover{border-color:#d32f2f}
.kv-bp[data-on=true]{background:#d32f2f;border-color:#d32f2f}
.kv-hl{position:absolute;left:9px;top:-7px;font:10px sans-serif;color:#455a64;pointer-events:none;
  background:rgba(255,255,255,.8);padding:0 1px}
.react-flow__handle.kv-h{width:9px;height:9px}
.react-flow__handle.kv-h-error{background:#d32f2f}.react-flow__handle.kv-h-true{background:#2e7d32}
.react-flow__handle.kv-h-false{background:#ef6c00}.react-flow__handle.kv-h-branch{background:#6a1b9a}
.kv-hint{position:absolute;left:8px;bottom:8px;z-index:10;padding:4px 8px;background:#ffebee;
  color:#b71c1c;border:1px solid #e57373;border-radius:4px;font-weight:bold;pointer-events:none}
.kv-problems{max-height:60px;overflow-y:auto;color:#c62828;padding:2px 6px;border-top:1px solid #eceff1}
.kv-ghost{position:fixed;z-index:1000;pointer-events:none;padding:4px 8px;border:1px dashed #1e88e5;
  background:#e3f2fd;border-radius:4px;font:12px sans-serif}
`

// A flow with more nodes than this draws only what is in view, without the minimap.
const BIG = 100
const FIT = { padding: 0.15, maxZoom: 1.2 }

const COLOUR = { none: "#607d8b", true: "#2e7d32", false: "#ef6c00", error: "#d32f2f", branch: "#6a1b9a" }
const kindOf = (branch) => !branch ? "none" : (branch in COLOUR ? branch : "branch")
const handleBranch = (h) => (!h || h === "out") ? null : h

function plain(v) {
  if (v instanceof Map) { const o = {}; for (const [k, x] of v) o[k] = plain(x); return o }
  if (Array.isArray(v)) return v.map(plain)
  return v
}
function parse(text, fallback) {
  try { return text ? JSON.parse(text) : fallback } catch (e) { return fallback }
}

const Ctx = React.createContext(null)

// The live part of the view (node states, breakpoints, the selected node) in a small
// store: a node subscribes to its own entries and re-renders only when they change, so a
// state update during a run of a thousand nodes re-renders the few nodes it concerns.
function liveStore() {
  const listeners = new Set()
  const store = {
    states: {}, breakpoints: new Set(), selected: null,
    subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn) },
    set(patch) { Object.assign(store, patch); for (const fn of listeners) fn() },
  }
  return store
}
function useLive(store, pick) {
  return React.useSyncExternalStore(store.subscribe, () => pick(store))
}

// Performance marks (for the benchmark and the browser's profiler): the model's render()
// start and the first frame painted with nodes.
const MARK = "kvmrpa:flowcanvas:"
function mark(name) { try { performance.mark(MARK + name) } catch (e) { /* no timing API */ } }

const KvNode = React.memo(function KvNode({ id, data }) {
  const ctx = React.useContext(Ctx)
  const state = useLive(ctx.live, (s) => s.states[id] || "pending")
  const bp = useLive(ctx.live, (s) => s.breakpoints.has(id))
  const isSelected = useLive(ctx.live, (s) => s.selected === id)
  const outs = data.outs
  const height = Math.max(50, 20 + outs.length * 15)
  const cls = `kv-node kv-${state}` + (isSelected ? " kv-sel" : "") +
    (data.problems.length ? " kv-bad" : "")
  const tip = [data.label && data.label !== id ? `${id}: ${data.label}` : id, data.doc,
               ...data.problems.map((p) => "⚠ " + p)].filter(Boolean).join("\n")
  return (
    <div className={cls} data-node={id} data-state={state} data-type={data.type}
         role="button" tabIndex={0} aria-label={`node ${id} ${state}`} title={tip}
         style={{ minHeight: height }}>
      <Handle type="target" position={Position.Left} id="in" className="kv-h" />
      <button type="button" className="kv-bp nodrag" data-on={String(bp)} role="switch"
              aria-checked={bp} aria-label={`breakpoint ${id}`} title="Toggle breakpoint"
              onClick={(e) => { e.stopPropagation(); ctx.toggleBreakpoint(id) }} />
      <div className="kv-id">{id}</div>
      <div className="kv-type">{data.type} · {state}</div>
      {data.label && data.label !== id ? <div className="kv-type">{data.label}</div> : null}
      {data.problems.length ? <span className="kv-warn" aria-label={`problems of ${id}`}
        data-problems={data.problems.join("; ")}>⚠</span> : null}
      {outs.map((o, i) => (
        <Handle key={o.id} type="source" position={Position.Right} id={o.id}
                className={`kv-h kv-h-${kindOf(handleBranch(o.id))}`}
                style={{ top: `${((i + 1) / (outs.length + 1)) * 100}%` }}
                title={o.id === "out" ? "next" : `branch ${o.id}`} data-branch={o.id}>
          {o.id === "out" ? null : <span className="kv-hl">{o.id}</span>}
        </Handle>
      ))}
    </div>
  )
})

const NODE_TYPES = { kv: KvNode }

function Hint({ refusalsRef }) {
  const c = useConnection()
  if (!c.inProgress || !c.toNode || c.isValid !== false) return null
  const r = refusalsRef.current
  const branch = handleBranch(c.fromHandle && c.fromHandle.id)
  const key = `${c.fromNode.id}|${branch || ""}`
  const reason = (r && r.key === key && r.targets[c.toNode.id]) ||
    (c.fromNode.id === c.toNode.id ? "a node cannot connect to itself" : "refused")
  return <div className="kv-hint" role="alert" aria-label="Connection refused">✖ {reason}</div>
}

function Palette({ items, onAdd, onDragStart }) {
  const [query, setQuery] = React.useState("")
  const q = query.trim().toLowerCase()
  const shown = items.filter((it) => !q || it.type.toLowerCase().includes(q) ||
    (it.doc || "").toLowerCase().includes(q) || it.category.toLowerCase().includes(q))
  const groups = {}
  for (const it of shown) (groups[it.category] = groups[it.category] || []).push(it)
  return (
    <div className="kv-palette" role="list" aria-label="Node palette">
      <input type="search" placeholder="Search nodes" aria-label="Palette search"
             value={query} onChange={(e) => setQuery(e.target.value)} />
      {Object.keys(groups).sort().map((cat) => (
        <div key={cat} role="group" aria-label={`category ${cat}`}>
          <div className="kv-cat">{cat}</div>
          {groups[cat].map((it) => (
            <div key={it.type} className="kv-item" role="listitem" tabIndex={0}
                 data-palette-type={it.type} title={it.doc} aria-label={`add ${it.type}`}
                 onPointerDown={(e) => onDragStart(e, it.type)}
                 onKeyDown={(e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onAdd(it.type) } }}>
              {it.type}
            </div>
          ))}
        </div>
      ))}
    </div>
  )
}

function toNodes(doc, selected) {
  return doc.nodes.map((n) => ({ id: n.id, type: "kv", position: { x: n.x, y: n.y }, data: n,
                                 selected: selected.has(n.id) }))
}
function toEdges(doc, selected) {
  return doc.edges.map((e) => {
    const kind = kindOf(e.branch)
    const bad = e.problems.length > 0
    const colour = bad ? "#b71c1c" : COLOUR[kind]
    return {
      id: e.id, source: e.source, target: e.target, sourceHandle: e.branch || "out",
      targetHandle: "in", label: (e.branch || "") + (bad ? " ⚠" : ""), data: e,
      selected: selected.has(e.id), className: `kv-edge kv-e-${kind}` + (bad ? " kv-e-bad" : ""),
      ariaLabel: `edge ${e.source} to ${e.target}` + (e.branch ? ` on ${e.branch}` : "") +
        (bad ? `: ${e.problems.join("; ")}` : ""),
      markerEnd: { type: MarkerType.ArrowClosed, color: colour },
      style: { stroke: colour, strokeWidth: bad ? 3 : 1.8,
               strokeDasharray: kind === "error" ? "6 4" : undefined },
      labelStyle: { fill: colour, fontWeight: 600 },
    }
  })
}

function Canvas({ model }) {
  const [graphJson] = model.useState("graph_json")
  const [paletteJson] = model.useState("palette_json")
  const [refusalsJson] = model.useState("refusals_json")
  const [statesJson] = model.useState("states_json")
  const [bpRaw, setBreakpoints] = model.useState("breakpoints")
  const [selected, setSelected] = model.useState("selected")
  const [message] = model.useState("message")
  const [messageKind] = model.useState("message_kind")
  const [canUndo] = model.useState("can_undo")
  const [canRedo] = model.useState("can_redo")
  const [locked] = model.useState("locked")
  const [editable] = model.useState("editable")
  const doc = React.useMemo(() => parse(graphJson, { nodes: [], edges: [], problems: [], fit: 0 }), [graphJson])
  const palette = React.useMemo(() => parse(paletteJson, []), [paletteJson])
  const refusalsRef = React.useRef(null)
  refusalsRef.current = parse(refusalsJson, null)
  const breakpoints = React.useMemo(() => plain(bpRaw) || [], [bpRaw])
  const live = React.useMemo(liveStore, [])
  // states_json: {"full": base} sets the base, {"set": changes} what differs from it now
  const base = React.useRef({})
  React.useLayoutEffect(() => {
    const msg = parse(statesJson, {})
    if (msg.full) base.current = msg.full
    live.set({ states: msg.set ? { ...base.current, ...msg.set } : base.current })
  }, [live, statesJson])
  React.useLayoutEffect(() => { live.set({ breakpoints: new Set(breakpoints) }) }, [live, breakpoints])
  React.useLayoutEffect(() => { live.set({ selected }) }, [live, selected])
  const canEdit = editable && !locked
  const rf = useReactFlow()
  const flowBox = React.useRef(null)
  const rootRef = React.useRef(null)
  const clipboard = React.useRef([])
  const [ghost, setGhost] = React.useState(null)
  const send = React.useCallback((msg) => model.send_msg(msg), [model])

  // The document's nodes and edges drawn from the first render on (not one effect later)
  const [nodes, setNodes] = React.useState(() => toNodes(doc, new Set()))
  const [edges, setEdges] = React.useState(() => toEdges(doc, new Set()))
  const drawn = React.useRef(doc)
  React.useEffect(() => {
    if (drawn.current === doc) return
    drawn.current = doc
    setNodes((prev) => toNodes(doc, new Set(prev.filter((n) => n.selected).map((n) => n.id))))
    setEdges((prev) => toEdges(doc, new Set(prev.filter((e) => e.selected).map((e) => e.id))))
  }, [doc])

  // Fit the flow in view when one is loaded or laid out (doc.fit counts those), not when
  // a node is added: an empty flow keeps the viewport it has.
  const fitted = React.useRef(doc.fit)  // the first one: ReactFlow's fitView prop
  // (fixed at mount: flipped later, React Flow would fit again once its nodes are measured)
  const fitOnInit = React.useRef(doc.nodes.length > 0).current
  const fitSeq = doc.fit
  const hasNodes = doc.nodes.length > 0
  React.useEffect(() => {
    if (fitted.current === fitSeq) return
    fitted.current = fitSeq
    if (!hasNodes) return
    setTimeout(() => rf.fitView({ padding: 0.15, maxZoom: 1.2 }), 80)
  }, [fitSeq, hasNodes, rf])

  const onNodesChange = React.useCallback((changes) => setNodes((ns) => applyNodeChanges(
    changes.filter((c) => c.type !== "remove"), ns)), [])
  const onEdgesChange = React.useCallback((changes) => setEdges((es) => applyEdgeChanges(
    changes.filter((c) => c.type !== "remove"), es)), [])

  const addAt = React.useCallback((type, clientX, clientY) => {
    let pos
    if (clientX === undefined) {
      const box = flowBox.current.getBoundingClientRect()
      pos = rf.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 })
    } else {
      pos = rf.screenToFlowPosition({ x: clientX, y: clientY })
    }
    send({ op: "add", node_type: type, position: [Math.round(pos.x - 75), Math.round(pos.y - 25)] })
  }, [rf, send])

  const onDragStart = React.useCallback((e, type) => {
    if (!canEdit || e.button !== 0) return
    e.preventDefault()
    setGhost({ type, x: e.clientX, y: e.clientY })
    const move = (ev) => setGhost({ type, x: ev.clientX, y: ev.clientY })
    const up = (ev) => {
      window.removeEventListener("pointermove", move)
      window.removeEventListener("pointerup", up)
      setGhost(null)
      const box = flowBox.current && flowBox.current.getBoundingClientRect()
      if (box && ev.clientX >= box.left && ev.clientX <= box.right && ev.clientY >= box.top &&
          ev.clientY <= box.bottom) addAt(type, ev.clientX, ev.clientY)
    }
    window.addEventListener("pointermove", move)
    window.addEventListener("pointerup", up)
  }, [canEdit, addAt])

  const selectedIds = () => nodes.filter((n) => n.selected).map((n) => n.id)
  const deleteSelected = () => {
    const ids = selectedIds()
    const es = edges.filter((e) => e.selected).map((e) => e.data.index)
    if (!ids.length && !es.length && selected) ids.push(selected)
    if (ids.length || es.length) send({ op: "delete", nodes: ids, edges: es })
  }
  const onKeyDown = (e) => {
    const tag = (e.target && e.target.tagName) || ""
    if (tag === "INPUT" || tag === "TEXTAREA") return
    const mod = e.ctrlKey || e.metaKey
    const key = e.key.toLowerCase()
    if (!canEdit) return
    if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); deleteSelected() }
    else if (mod && key === "z" && !e.shiftKey) { e.preventDefault(); send({ op: "undo" }) }
    else if (mod && (key === "y" || (key === "z" && e.shiftKey))) { e.preventDefault(); send({ op: "redo" }) }
    else if (mod && key === "c") { clipboard.current = selectedIds().length ? selectedIds() : (selected ? [selected] : []) }
    else if (mod && key === "v" && clipboard.current.length) { e.preventDefault(); send({ op: "paste", ids: clipboard.current }) }
    else if (mod && key === "a") { e.preventDefault(); setNodes((ns) => ns.map((n) => ({ ...n, selected: true }))) }
  }

  const onConnectStart = React.useCallback((ev, p) => {
    if (p.handleType === "source") send({ op: "probe", source: p.nodeId, branch: handleBranch(p.handleId) })
  }, [send])
  const isValidConnection = React.useCallback((c) => {
    if (c.source === c.target) return false
    const r = refusalsRef.current
    const key = `${c.source}|${handleBranch(c.sourceHandle) || ""}`
    return !(r && r.key === key && r.targets[c.target])
  }, [])
  const onConnect = React.useCallback((c) => send({
    op: "connect", source: c.source, target: c.target, branch: handleBranch(c.sourceHandle) }), [send])
  const onConnectEnd = React.useCallback((ev, st) => {
    if (st && st.toNode && st.fromNode && st.isValid === false) {
      // dropped on a refused target: the server says why (and refuses it again)
      const fromSource = !st.fromHandle || st.fromHandle.type !== "target"
      const [s, t] = fromSource ? [st.fromNode.id, st.toNode.id] : [st.toNode.id, st.fromNode.id]
      const h = fromSource ? st.fromHandle : st.toHandle
      send({ op: "connect", source: s, target: t, branch: handleBranch(h && h.id) })
    }
  }, [send])
  const onNodeDragStop = React.useCallback((ev, node, dragged) => {
    const list = dragged && dragged.length ? dragged : [node]
    send({ op: "move", positions: Object.fromEntries(list.map((n) => [n.id, [Math.round(n.position.x), Math.round(n.position.y)]])) })
  }, [send])
  const onNodeClick = React.useCallback((ev, node) => setSelected(node.id), [setSelected])

  const bpRef = React.useRef(breakpoints)
  bpRef.current = breakpoints
  const toggleBreakpoint = React.useCallback((id) => {
    const bps = bpRef.current
    setBreakpoints(bps.includes(id) ? bps.filter((b) => b !== id) : [...bps, id])
  }, [setBreakpoints])
  // stable: a change of states, breakpoints or selection reaches the nodes through `live`
  const ctx = React.useMemo(() => ({ live, toggleBreakpoint }), [live, toggleBreakpoint])

  // first frame painted with nodes (see mark)
  const painted = React.useRef(false)
  React.useEffect(() => {
    if (painted.current || !nodes.length) return
    painted.current = true
    requestAnimationFrame(() => mark("painted"))
  }, [nodes])

  return (
    <Ctx.Provider value={ctx}>
      <style>{flowCss}</style>
      <style>{CSS}</style>
      <div className="kv-root" ref={rootRef} tabIndex={0} onKeyDown={onKeyDown}
           role="group" aria-label="Flow graph" data-editable={String(canEdit)}
           data-nodes={doc.nodes.length} data-edges={doc.edges.length}>
        {editable ? <Palette items={palette} onAdd={(t) => canEdit && addAt(t)} onDragStart={onDragStart} /> : null}
        <div className="kv-main">
          <div className="kv-bar" role="toolbar" aria-label="Canvas tools">
            {editable ? <>
              <button type="button" disabled={!canEdit || !canUndo} onClick={() => send({ op: "undo" })} title="Undo (Ctrl+Z)">Undo</button>
              <button type="button" disabled={!canEdit || !canRedo} onClick={() => send({ op: "redo" })} title="Redo (Ctrl+Shift+Z)">Redo</button>
              <button type="button" disabled={!canEdit} onClick={deleteSelected} title="Delete the selected nodes and edges (Delete)">Delete</button>
              <button type="button" disabled={!canEdit} onClick={() => send({ op: "layout" })} title="Lay the flow out left to right">Auto-layout</button>
            </> : null}
            <button type="button" onClick={() => rf.fitView({ padding: 0.15, maxZoom: 1.2 })} title="Fit the flow in view">Fit</button>
            <span className="kv-msg" role="status" aria-label="Canvas message" data-kind={messageKind} title={message}>{message}</span>
          </div>
          <div className="kv-flow" ref={flowBox}>
            <ReactFlow nodes={nodes} edges={edges} nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange} onEdgesChange={onEdgesChange}
              onConnect={onConnect} onConnectStart={onConnectStart} onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection} onNodeDragStop={onNodeDragStop}
              onNodeClick={onNodeClick} nodesDraggable={canEdit} nodesConnectable={canEdit}
              deleteKeyCode={null} selectionKeyCode="Shift" multiSelectionKeyCode={["Meta", "Control"]}
              connectionRadius={28} minZoom={0.05} maxZoom={3}
              onlyRenderVisibleElements={doc.nodes.length > BIG}
              fitView={fitOnInit} fitViewOptions={FIT}>
              <Background gap={16} size={1} />
              <Controls showInteractive={false} />
              {doc.nodes.length <= BIG ? <MiniMap pannable zoomable style={{ width: 120, height: 80 }} /> : null}
              <Hint refusalsRef={refusalsRef} />
            </ReactFlow>
          </div>
          {doc.problems.length ? <div className="kv-problems" aria-label="Flow problems">
            {doc.problems.map((p, i) => <div key={i}>⚠ {p}</div>)}</div> : null}
        </div>
        {ghost ? <div className="kv-ghost" style={{ left: ghost.x + 8, top: ghost.y + 8 }}>{ghost.type}</div> : null}
      </div>
    </Ctx.Provider>
  )
}

export function render({ model }) {
  mark("render")
  return <ReactFlowProvider><Canvas model={model} /></ReactFlowProvider>
}

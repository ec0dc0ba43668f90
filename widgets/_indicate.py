"""Indicator: edit the selected node by pointing at the live view ("indicate on screen").

An :class:`Indicator` links a :class:`~kvmrpa.widgets.LiveView` and a
:class:`~kvmrpa.widgets.Debugger` (its ``selected`` node and its ``editor``), whatever
graph view shows the flow. With a node selected:

* a region drawn on the live view becomes the node's ``roi`` (``crop``: ``x``, ``y``,
  ``width``, ``height``), in the pixels the node reads — the source's, through
  :meth:`kvmrpa.Frame.to_source` / :meth:`~kvmrpa.Frame.from_source`, whatever the
  view's zoom or the frame's crop;
* a click on text reads the line under the pointer (OCR of a band around it, in the
  runtime's pool, never on the event loop) and sets the node's ``text`` and
  ``match_mode`` (``exact`` for a confident read, ``fuzzy`` otherwise), turning a
  mouse node's ``target`` / a condition's or wait's ``kind`` to text;
* **Capture template** cuts the last region into the flow's template store
  (:class:`kvmrpa.engine.TemplateStore`, ``templates/`` beside the flow file), sets
  the node's ``template``, and runs the node on the next frame to show it is found;
* the gallery lists the store's templates: pick one for the node, preview, rename.

Every change goes through ``require("edit")`` and then the debugger's editor
``on_edit`` callback (the Dashboard's draft machinery marks the draft modified).
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn
import param
from panel.io.state import set_curdoc

from kvmrpa._errors import AccessDenied, KvmrpaError
from kvmrpa._frame import Frame
from kvmrpa._runtime import get_runtime
from kvmrpa._settings import get_settings
from kvmrpa.engine import TemplateInfo, TemplateStore

from ._auth import can, require
from ._liveview import LiveView
from ._markup import LiveHTML
from ._overlays import png_bytes
from ._resources import NotebookFallback

__all__ = ["Indicator", "map_region", "text_changes"]

log = logging.getLogger("kvmrpa.widgets.indicate")

#: Fields summarised in the panel, when the node has them.
_SHOWN = ("kind", "target", "roi", "x", "y", "width", "height", "text", "match_mode",
          "template")
#: Confidence from which a read is trusted as it is (match mode ``exact``).
CONFIDENT = 0.9


def map_region(region: tuple[float, float, float, float], shown: Frame | None,
               target: Frame | None = None) -> tuple[int, int, int, int]:
    """A region ``(x, y, w, h)`` in the pixels of the ``shown`` frame, in the pixels of
    the ``target`` frame (what the node reads; None: full source pixels). Both ways go
    through the frames' own mapping."""
    x, y, w, h = (float(v) for v in region)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise KvmrpaError(f"region {region!r} is not finite")
    x0, y0, x1, y1 = x, y, x + w, y + h
    if shown is not None:
        x0, y0 = shown.to_source(x0, y0)
        x1, y1 = shown.to_source(x1, y1)
    if target is not None:
        x0, y0 = target.from_source(x0, y0)
        x1, y1 = target.from_source(x1, y1)
    ix, iy = max(0, round(x0)), max(0, round(y0))
    return ix, iy, max(1, round(x1) - ix), max(1, round(y1) - iy)


def text_changes(node: Any, text: str, confidence: float) -> dict[str, Any]:
    """The parameter changes that make ``node`` look for ``text`` (empty when the node
    has no text target: its type lacks ``text`` + ``match_mode``)."""
    names = node.param
    if "text" not in names or "match_mode" not in names:
        return {}
    changes: dict[str, Any] = {}
    target = getattr(names, "target", None)
    if target is not None and "text" in (target.objects or []):
        changes["target"] = "text"
    kind = getattr(names, "kind", None)
    if kind is not None and not str(node.kind).startswith("text"):
        text_kinds = [k for k in kind.objects if str(k).startswith("text")]
        if text_kinds:
            changes["kind"] = text_kinds[0]
    changes["text"] = text
    changes["match_mode"] = "exact" if confidence >= CONFIDENT else "fuzzy"
    return changes


def _box(value: Any) -> tuple[float, float, float, float] | None:
    """The live view's region (a 4-tuple, or None)."""
    return None if value is None else (float(value[0]), float(value[1]),
                                       float(value[2]), float(value[3]))


def _point(value: Any) -> tuple[float, float] | None:
    """The live view's clicked point (a 2-tuple, or None)."""
    return None if value is None else (float(value[0]), float(value[1]))


def _box_at(texts: Any, x: float, y: float, reach: float) -> Any:
    """The box containing ``(x, y)``, else the nearest within ``reach`` pixels."""
    best, best_d = None, reach
    for box in texts:
        bx, by, bw, bh = box.bbox
        dx = max(bx - x, 0.0, x - (bx + bw))
        dy = max(by - y, 0.0, y - (by + bh))
        d = math.hypot(dx, dy)
        if d <= best_d and box.text.strip():
            best, best_d = box, d
            if d == 0:
                break
    return best


class Indicator(NotebookFallback, pn.viewable.Viewer):
    """Edit the debugger's selected node by pointing at a live view (see the module)."""

    view = param.ClassSelector(class_=LiveView, default=None, allow_None=True, doc="""
        The live view whose regions and clicks are taken.""")
    debugger = param.Parameter(default=None, doc="""
        The kvmrpa.widgets.Debugger whose selected node is edited (its editor's on_edit
        is told of every change).""")
    active = param.Boolean(default=True, doc="""
        Whether regions and clicks on the live view edit the selected node.""")
    flow_path = param.String(default=None, allow_None=True, doc="""
        The flow's file: templates go to the templates/ folder beside it (None: the
        folder setting, else settings.store.templates_dir).""")
    folder = param.String(default=None, allow_None=True, doc="""
        Templates folder overriding the one beside flow_path.""")
    message = param.String(default="", doc="What the last indication did (or why not).")

    def __init__(self, view: LiveView | None = None, debugger: Any = None,
                 **params: Any) -> None:
        params.setdefault("active", can("edit"))
        super().__init__(view=view, debugger=debugger, **params)
        self._lock = threading.Lock()
        self._reading = False
        self._auto_roi: tuple[str | None, Any, Any, tuple[float, ...]] | None = None
        self._view_watchers: list[tuple[Any, Any]] = []
        self._dbg_watcher: tuple[Any, Any] | None = None
        self._node_watcher: tuple[Any, Any] | None = None
        self._syncing = False  # the node choice is being set from the debugger
        editable = can("edit")
        self.toggle = pn.widgets.Checkbox(label="Indicate on screen", value=self.active,
                                          disabled=not editable)
        self.toggle.link(self, value="active", bidirectional=True)
        self.node_select = pn.widgets.Select(label="Node to edit", options=[], sizing_mode="stretch_width")
        self.node_select.param.watch(self._on_node_select, ["value"])
        self.summary = LiveHTML("", sizing_mode="stretch_width")
        self.status = LiveHTML("", sizing_mode="stretch_width")
        self.capture_button = pn.widgets.Button(
            label="Capture template", color="primary", disabled=not can("template"),
            description="Save the last region drawn on the live view as the node's template")
        self.capture_button.on_click(self._click_capture)
        self.gallery = pn.widgets.Select(label="Templates", options=[], size=5,
                                         sizing_mode="stretch_width")
        self.gallery.param.watch(lambda _e: self._preview(), ["value"])
        self.preview = pn.pane.PNG(None, max_height=120, sizing_mode="stretch_width")
        self.use_button = pn.widgets.Button(label="Use for node", disabled=not editable,
                                            description="Set the picked template as the node's")
        self.use_button.on_click(self._click_use)
        self.new_name = pn.widgets.TextInput(label="New name", placeholder="new name",
                                             sizing_mode="stretch_width")
        self.rename_button = pn.widgets.Button(label="Rename", disabled=not can("template"),
                                               align="end")
        self.rename_button.on_click(self._click_rename)
        self.param.watch(self._bind_view, ["view"])
        self.param.watch(self._bind_debugger, ["debugger"])
        self.param.watch(lambda _e: self.refresh(), ["flow_path", "folder"])
        self.param.watch(self._show_message, ["message"])
        self._bind_view()
        self._bind_debugger()

    # -- wiring ---------------------------------------------------------------------------
    def _bind_view(self, *_: Any) -> None:
        for obj, w in self._view_watchers:
            obj.param.unwatch(w)
        self._view_watchers = []
        if self.view is not None:
            self._view_watchers = [
                (self.view, self.view.param.watch(self._on_region, ["region"])),
                (self.view, self.view.param.watch(self._on_point, ["point"])),
            ]

    def _bind_debugger(self, *_: Any) -> None:
        if self._dbg_watcher is not None:
            obj, w = self._dbg_watcher
            obj.param.unwatch(w)
            self._dbg_watcher = None
        self._auto_roi = None
        dbg = self.debugger
        if dbg is not None:
            self._dbg_watcher = (dbg, dbg.param.watch(self._on_debugger, ["selected", "flow"]))
        self.refresh()

    def _on_debugger(self, *events: param.parameterized.Event) -> None:
        if any(ev.name == "flow" for ev in events):
            self._auto_roi = None  # another flow (a reverted draft): its nodes are new
        self.refresh()

    def _watch_node(self, node: Any) -> None:
        """Follow the shown fields of ``node`` (edited in the form as well as here)."""
        if self._node_watcher is not None and self._node_watcher[0] is node:
            return
        if self._node_watcher is not None:
            obj, w = self._node_watcher
            obj.param.unwatch(w)
            self._node_watcher = None
        if node is not None:
            names = [n for n in _SHOWN if n in node.param]
            if names:
                self._node_watcher = (node, node.param.watch(lambda *_: self.refresh(), names))

    def _click_capture(self, _event: Any) -> None:
        self.capture_template()

    def _click_use(self, _event: Any) -> None:
        self.use_template(self.gallery.value)

    def _click_rename(self, _event: Any) -> None:
        self.rename_template(self.gallery.value, self.new_name.value)

    def _on_node_select(self, event: param.parameterized.Event) -> None:
        dbg = self.debugger
        if not self._syncing and dbg is not None and event.new and event.new != dbg.selected:
            dbg.selected = event.new

    # -- what is edited -------------------------------------------------------------------
    @property
    def node_id(self) -> str | None:
        """The id of the node edited (the debugger's selected one)."""
        dbg = self.debugger
        return None if dbg is None else dbg.selected

    @property
    def node(self) -> Any:
        """The node edited (a kvmrpa.nodes.Node of the debugger's flow), None if none."""
        dbg = self.debugger
        flow = None if dbg is None else dbg.flow
        nid = self.node_id
        fn = flow.nodes.get(nid) if flow is not None and nid else None
        return None if fn is None else fn.node

    @property
    def store(self) -> TemplateStore:
        """Where templates are saved: ``folder``, else ``templates/`` beside the flow
        file, else settings.store.templates_dir."""
        if self.folder:
            return TemplateStore(self.folder)
        if self.flow_path:
            return TemplateStore.beside(self.flow_path)
        return TemplateStore(get_settings().store.templates_dir)

    def _node_frame(self, node_id: str) -> Frame | None:
        """The frame the node read in its last run (its crop/scale), None if unknown or
        if it reads the source itself."""
        dbg = self.debugger
        run = None if dbg is None else dbg.run
        rec = None if run is None else run.nodes.get(node_id)
        node = self.node
        if rec is None or node is None or getattr(node, "type_name", "") == "wait_until":
            return None  # wait_until watches the source's frames
        try:
            frame = rec.inputs.frame() if rec.inputs is not None else None
        except Exception:  # no upstream frame
            frame = None
        return frame if isinstance(frame, Frame) else None

    def _frame(self) -> Frame | None:
        return None if self.view is None else self.view.current_frame()

    def _apply(self, changes: dict[str, Any], node: Any = None, node_id: str | None = None,
               checked: bool = False) -> bool:
        """Set ``changes`` on the node (after the edit check) and tell the editor."""
        node = self.node if node is None else node
        node_id = self.node_id if node_id is None else node_id
        if node is None or not changes:
            return False
        if not checked:
            try:
                require("edit", node_id, detail={"fields": sorted(changes), "via": "indicate"})
            except AccessDenied as exc:
                self.message = str(exc)
                return False
        ordered: dict[str, Any] = {k: changes[k] for k in ("target", "kind") if k in changes}
        ordered.update({k: v for k, v in changes.items() if k not in ordered})
        try:
            node.param.update(**ordered)
        except (ValueError, TypeError) as exc:
            self.message = f"{node_id}: {' '.join(str(exc).split())[:200]}"
            return False
        editor = getattr(self.debugger, "editor", None)
        on_edit: Callable[[str], None] | None = getattr(editor, "on_edit", None)
        if on_edit is not None:
            for name in ordered:
                on_edit(name)
        self.refresh()
        return True

    # -- region -> roi --------------------------------------------------------------------
    def _on_region(self, event: param.parameterized.Event) -> None:
        if not self.active or event.new is None or self.node is None:
            return
        try:
            self.set_roi(event.new)
        except KvmrpaError as exc:
            self.message = " ".join(str(exc).split())

    def roi_changes(self, region: tuple[float, float, float, float]) -> dict[str, Any]:
        """The changes that make the node read ``region`` (in the view's frame pixels)."""
        node, nid = self.node, self.node_id
        if node is None or nid is None:
            return {}
        x, y, w, h = map_region(region, self._frame(), self._node_frame(nid))
        names = node.param
        if "roi" in names:
            return {"roi": (x, y, w, h)}
        if all(n in names for n in ("x", "y", "width", "height")) and \
                getattr(node, "type_name", "") == "crop":
            return {"x": x, "y": y, "width": w, "height": h}
        return {}

    def set_roi(self, region: tuple[float, float, float, float] | None = None) -> Any:
        """Make ``region`` (default: the view's) the selected node's roi; returns what
        was set (None when the node has no roi)."""
        if region is None and self.view is not None:
            region = _box(self.view.region)
        node, nid = self.node, self.node_id
        if region is None or node is None:
            return None
        changes = self.roi_changes(region)
        if not changes:
            self.message = f"{nid} ({node.type_name}) has no roi; the region is kept for " \
                           "Capture template"
            return None
        before = {k: getattr(node, k) for k in changes}
        if not self._apply(changes):
            return None
        self._auto_roi = (nid, before, dict(changes), tuple(region))
        shown = changes.get("roi") or tuple(changes.values())
        self.message = f"{nid}: roi set to {', '.join(str(v) for v in shown)} (source pixels)"
        return shown

    # -- click -> text ----------------------------------------------------------------------
    def _on_point(self, event: param.parameterized.Event) -> None:
        node = self.node
        if not self.active or event.new is None or node is None:
            return
        if "text" not in node.param or "match_mode" not in node.param:
            return  # nothing to fill; the click stays a point for the view
        nid = self.node_id
        try:
            require("edit", nid, detail={"fields": ["text", "match_mode"], "via": "indicate"})
        except AccessDenied as exc:
            self.message = str(exc)
            return
        frame = self._frame()
        if frame is None:
            self.message = "no frame yet to read"
            return
        with self._lock:
            if self._reading:
                self.message = "still reading the previous click…"
                return
            self._reading = True
        point = (float(event.new[0]), float(event.new[1]))
        self.message = f"reading the text at {round(point[0])}, {round(point[1])}…"
        self._dispatch(lambda: self.text_at(point, frame),
                       lambda found: self._apply_text(found, node, nid, point))

    def text_at(self, point: tuple[float, float], frame: Frame | None = None) -> Any:
        """The OCR box (a TextBox in source pixels) under ``point`` (in the view's frame
        pixels), or the nearest within a few pixels; None when there is no text.
        Blocking: OCR of a band of the frame around the point, shared through the
        recognition cache (a second click on the same frame and band reads nothing new)."""
        from kvmrpa.vision import shared_ocr

        frame = frame if frame is not None else self._frame()
        if frame is None:
            return None
        px, py = point
        band = max(48, round(frame.height * 0.08))
        top = max(0, round(py) - band)
        roi = (0, top, frame.width, min(frame.height, round(py) + band) - top)
        texts = shared_ocr(frame, roi, min_confidence=0.3).to_source(frame)
        sx, sy = frame.to_source(px, py)
        return _box_at(texts, sx, sy, reach=max(6.0, 12.0 / frame.scale))

    def read_text_at(self, point: tuple[float, float] | None = None) -> dict[str, Any]:
        """Read the text under ``point`` (default: the view's) and set it as the
        selected node's target text; blocking (a notebook cell). Returns the changes."""
        if point is None and self.view is not None:
            point = _point(self.view.point)
        node, nid = self.node, self.node_id
        if point is None or node is None:
            return {}
        found = self.text_at(point)
        return self._apply_text(found, node, nid, point, checked=False)

    def _apply_text(self, found: Any, node: Any, nid: str | None,
                    point: tuple[float, ...], checked: bool = True) -> dict[str, Any]:
        with self._lock:
            self._reading = False
        if isinstance(found, BaseException):
            self.message = f"reading the text failed: {' '.join(str(found).split())[:200]}"
            return {}
        if found is None:
            self.message = f"no text at {round(point[0])}, {round(point[1])}"
            return {}
        changes = text_changes(node, found.text.strip(), float(found.confidence))
        if not changes:
            self.message = f"{nid} ({node.type_name}) has no text target"
            return {}
        if self._apply(changes, node, nid, checked=checked):
            self.message = (f"{nid}: text {changes['text']!r} ({changes['match_mode']}, "
                            f"confidence {float(found.confidence):.2f})")
            return changes
        return {}

    def _dispatch(self, work: Callable[[], Any], done: Callable[[Any], Any]) -> None:
        """Run blocking ``work`` in the runtime's pool and ``done(result or exception)``
        back on this session (the served page's loop, the notebook's loop; inline with
        neither)."""
        doc = pn.state.curdoc
        served = doc is not None and doc.session_context is not None
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if not served and loop is None:
            try:
                result = work()
            except Exception as exc:  # shown, not raised into the caller's watcher
                result = exc
            done(result)
            return

        def finish(fut: Any) -> None:  # in a pool thread
            try:
                result = fut.exception() or fut.result()
            except BaseException as exc:  # cancelled (the runtime stopping)
                result = exc
            try:
                if doc is not None and served:
                    def tick() -> None:
                        with set_curdoc(doc):
                            done(result)
                    doc.add_next_tick_callback(tick)
                else:
                    assert loop is not None  # neither served nor on a loop: ran inline
                    loop.call_soon_threadsafe(done, result)
            except Exception:  # the page or loop is gone: nothing to show it on
                log.debug("indicate: cannot deliver a result", exc_info=True)
                with self._lock:
                    self._reading = False

        try:
            get_runtime().pool.submit(work).add_done_callback(finish)
        except KvmrpaError as exc:
            done(exc)

    # -- templates --------------------------------------------------------------------------
    def capture_template(self, name: str | None = None) -> TemplateInfo | None:
        """Save the view's last region as a template (named after the node unless
        ``name``) in :attr:`store`, set it as the node's template, then run the node on
        the next frame to show it is found. Returns the stored template."""
        node, nid = self.node, self.node_id
        region: Any = self.view.region if self.view is not None else None
        if node is None or nid is None:
            self.message = "select a node first"
            return None
        if "template" not in node.param:
            self.message = f"{nid} ({node.type_name}) takes no template"
            return None
        if region is None:
            self.message = "draw a region on the live view first"
            return None
        frame = self._frame()
        if frame is None:
            self.message = "no frame yet to cut a template from"
            return None
        try:
            require("template", nid)
            require("edit", nid, detail={"fields": ["template"], "via": "indicate"})
        except AccessDenied as exc:
            self.message = str(exc)
            return None
        src_region = map_region(region, frame)
        try:
            info = self.store.save(frame, src_region, name or nid)
        except (KvmrpaError, OSError) as exc:
            self.message = f"{nid}: {' '.join(str(exc).split())[:200]}"
            return None
        changes: dict[str, Any] = {"template": str(info.path)}
        auto = self._auto_roi
        if auto is not None and auto[0] == nid and auto[3] == tuple(region) and \
                all(getattr(node, k) == v for k, v in auto[2].items()):
            changes.update(auto[1])  # that region was for the template, not a roi
        kind = getattr(node.param, "kind", None)
        if kind is not None and not str(node.kind).startswith("image"):
            image_kinds = [k for k in kind.objects if str(k).startswith("image_appears")]
            if image_kinds:
                changes["kind"] = image_kinds[0]
        self._auto_roi = None
        self._apply(changes, node, nid, checked=True)
        log.info("template %s saved to %s for %s", info.name, info.path, nid)
        self.message = f"{nid}: template {info.name} saved ({info.size[0]}x{info.size[1]})"
        self.refresh()
        self.gallery.value = info.name
        self._check_found(node, nid, frame, info)
        return info

    def _check_found(self, node: Any, nid: str, frame: Frame, info: TemplateInfo) -> None:
        src = None if self.view is None else self.view.source
        timeout = get_settings().capture.next_frame_timeout

        def work() -> Any:
            nxt = src.wait_frame(frame.seq, timeout) if src is not None else frame
            out = node.try_on(nxt) or {}
            return nxt, out

        def done(result: Any) -> None:
            if isinstance(result, BaseException):
                self.message = f"{nid}: template {info.name} saved; trying it failed: " \
                               f"{' '.join(str(result).split())[:160]}"
                return
            nxt, out = result
            matches = out.get("matches") or []
            if len(matches):
                m = matches[0]
                self.message = (f"{nid}: template {info.name} saved; found on frame "
                                f"#{nxt.seq} at {', '.join(str(round(v)) for v in m.bbox)} "
                                f"(score {float(m.score):.2f})")
            else:
                self.message = f"{nid}: template {info.name} saved; not found on frame #{nxt.seq}"

        if callable(getattr(node, "try_on", None)):
            self._dispatch(work, done)

    def use_template(self, name: str | None) -> bool:
        """Set stored template ``name`` as the selected node's template."""
        node, nid = self.node, self.node_id
        if not name or node is None or "template" not in node.param:
            self.message = "pick a template and a node that takes one"
            return False
        try:
            path = self.store.path_of(name)
        except KvmrpaError as exc:
            self.message = str(exc)
            return False
        if self._apply({"template": str(path)}, node, nid):
            self.message = f"{nid}: template {name}"
            return True
        return False

    def rename_template(self, old: str | None, new: str | None) -> TemplateInfo | None:
        """Rename a stored template; a node of the flow that used it follows."""
        if not old or not (new or "").strip():
            self.message = "pick a template and type its new name"
            return None
        try:
            require("template", old)
            info = self.store.rename(old, str(new))
        except (KvmrpaError, OSError) as exc:
            self.message = " ".join(str(exc).split())[:200]
            return None
        old_path = str(self.store.folder / f"{old}.png")
        flow = None if self.debugger is None else self.debugger.flow
        for fn in (flow.nodes.values() if flow is not None else []):
            if "template" in fn.node.param and fn.node.template == old_path:
                self._apply({"template": str(info.path)}, fn.node, fn.id)
        self.message = f"template {old} renamed to {info.name}"
        self.refresh()
        self.gallery.value = info.name
        return info

    def _preview(self) -> None:
        name = self.gallery.value
        image = None
        if name:
            try:
                image = self.store.image(name)
            except KvmrpaError:
                image = None
        self.preview.object = None if image is None else png_bytes(image)
        if name:
            self.new_name.value = name

    # -- rendering --------------------------------------------------------------------------
    def _show_message(self, *_: Any) -> None:
        self.status.object = (f'<div role="status" aria-label="Indicate status" style="font:12px '
                              f'sans-serif;color:#37474f;overflow-wrap:anywhere">'
                              f'{html.escape(self.message)}</div>')

    def refresh(self) -> None:
        """Render the node choice, the node's indicated fields and the gallery."""
        dbg = self.debugger
        flow = None if dbg is None else dbg.flow
        ids = list(flow.nodes) if flow is not None else []
        self._syncing = True
        try:
            if self.node_select.options != ids:
                self.node_select.options = ids
            if self.node_id in ids and self.node_select.value != self.node_id:
                self.node_select.value = self.node_id
        finally:
            self._syncing = False
        node, nid = self.node, self.node_id
        self._watch_node(node)
        if node is None:
            body = '<i>select a node</i>'
        else:
            rows = [f"<dt>node</dt><dd>{html.escape(str(nid))} ({html.escape(node.type_name)})</dd>"]
            for name in _SHOWN:
                if name in node.param and (node.param[name].precedence is None
                                           or node.param[name].precedence >= 0):
                    value = getattr(node, name)
                    if isinstance(value, tuple):
                        value = ", ".join(str(v) for v in value)
                    if name == "template" and value:
                        value = Path(str(value)).name
                    rows.append(f'<dt>{name}</dt><dd data-field="{name}">'
                                f'{html.escape("" if value is None else str(value))}</dd>')
            body = "<dl>" + "".join(rows) + "</dl>"
        summary = (f'<div aria-label="Indicated node" style="font:12px sans-serif">'
                   f'<style>.kv-ind dt{{float:left;clear:left;width:80px;color:#607d8b}}'
                   f'.kv-ind dd{{margin:0 0 2px 84px;min-height:15px;overflow-wrap:anywhere}}</style>'
                   f'<div class="kv-ind">{body}</div></div>')
        if summary != self.summary.object:
            self.summary.object = summary
        takes = node is not None and "template" in node.param
        self.capture_button.disabled = not (takes and can("template"))
        self.use_button.disabled = not (takes and can("edit"))
        try:
            names = self.store.names()
        except (KvmrpaError, OSError):
            names = []
        if list(self.gallery.options) != names:
            keep = self.gallery.value if self.gallery.value in names else None
            self.gallery.options = names
            self.gallery.value = keep

    def __panel__(self) -> pn.viewable.Viewable:
        self.refresh()
        self._show_message()
        hint = pn.pane.Markdown(
            "Draw a region on the live view: it becomes the node's roi. Click a text: "
            "it becomes the node's target text.", styles={"font-size": "11px"},
            margin=(0, 5))
        return pn.Column(
            self.toggle, self.node_select, hint, self.summary, self.capture_button,
            self.status,
            pn.Card(self.gallery, self.preview, self.use_button,
                    pn.Row(self.new_name, self.rename_button, sizing_mode="stretch_width"),
                    title="Template gallery", collapsed=True, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

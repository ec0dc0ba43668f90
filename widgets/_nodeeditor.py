"""NodeEditor: a node's parameter form, and "Run on current frame".

The form is generated from the node's param declarations by ``pn.Param`` (docs as
tooltips, bounds as widget limits; parameters declared with ``precedence < 0`` stay out).
A node that changes precedences by mode (``Node.show_params``) shows only what matters:
the fields it hides are in the form too, hidden, and appear the moment a choice (a
``match_mode``, a target, a branch field) makes them relevant. The node type's own
parameters come first; the common execution policy (timeout, retries, retry_delay,
on_error) is grouped in a collapsed card. "Run on current frame" calls
``node.try_on(frame)`` off the event loop and shows the result image with overlays and
the output as JSON. :meth:`NodeEditor.beside` is the form as a panel to set beside a
canvas (the Debugger and the Dashboard do).

The widgets edit a form object that mirrors the node's parameters (tuples and lists as
text such as ``10, 20, 300, 40``), and each change is applied to the node here: a
cleared field sets the parameter's default (None where allowed), a value the node
refuses is reported on one line naming node and field, and the form shows the node's
value again — nothing raises into the server.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from kvmrpa._errors import AccessDenied, KvmrpaError
from kvmrpa._frame import Frame
from kvmrpa._runtime import get_runtime
from kvmrpa.capture import FrameSource

from ._auth import can, is_code_type, require, requires
from ._overlays import png_bytes, result_image, to_jsonable
from ._resources import NotebookFallback

__all__ = ["NodeEditor"]

log = logging.getLogger("kvmrpa.widgets.nodeeditor")

_COMMON = ("timeout", "retries", "retry_delay", "on_error")


def _form_params(node: param.Parameterized) -> tuple[list[str], list[str]]:
    """The node's own and common parameters in the form: every one but ``name`` and the
    internal ones (declared with ``precedence < 0`` on the class). A parameter the node
    hides for its current mode (a negative precedence on the instance only) is in the form
    too, hidden, so that it appears at once when a choice makes it relevant."""
    own: list[str] = []
    common: list[str] = []
    declared = type(node).param
    for name in node.param.objects("existing"):
        p = declared[name]
        if name == "name" or (p.precedence is not None and p.precedence < 0):
            continue
        (common if name in _COMMON else own).append(name)
    return own, common


_TEXT_TYPES = (param.NumericTuple, param.Tuple, param.List)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _as_text(p: param.Parameter, value: Any) -> str:
    if value is None:
        return ""  # a text box holds a string: empty means default / None
    if isinstance(p, param.List):
        return ", ".join(str(v) for v in value)
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)


def _parse_text(p: param.Parameter, text: str) -> Any:
    parts = [t for t in re.split(r"[,\s]+", text.strip().strip("()[]")) if t]
    if isinstance(p, param.List):
        return parts
    values: list[float | int] = []
    for t in parts:
        if not _NUMBER.match(t):
            raise ValueError(f"{t!r} is not a number")
        v = float(t)
        values.append(int(v) if v.is_integer() else v)
    length = getattr(p, "length", None)
    if length and len(values) != length:
        raise ValueError(f"needs {length} numbers ({len(values)} given)")
    return tuple(values)


def form_object(node: param.Parameterized, names: list[str]) -> param.Parameterized:
    """A Parameterized mirroring ``names`` of ``node`` for the form widgets: every field
    may be empty, tuples and lists are text."""
    params: dict[str, param.Parameter] = {}
    for name in names:
        p = node.param[name]
        if isinstance(p, _TEXT_TYPES):
            q: param.Parameter = param.String(default=None, allow_None=True, doc=p.doc,
                                              label=p.label, precedence=p.precedence)
        else:
            q = copy.copy(p)
            q.allow_None = True
            if getattr(q, "bounds", None) is not None and hasattr(q, "softbounds"):
                # widgets keep the limits; the node itself refuses what is out of them
                q.softbounds = q.softbounds or q.bounds
                q.bounds = None
        params[name] = q
    cls = type(f"{type(node).__name__}Form", (param.Parameterized,), params)
    form = cls(name=getattr(node, "name", None) or cls.__name__)
    with param.parameterized.discard_events(form):
        for name in names:
            p = node.param[name]
            value = getattr(node, name)
            setattr(form, name, _as_text(p, value) if isinstance(p, _TEXT_TYPES) else value)
    return form


def _widgets(node: param.Parameterized, names: list[str], disabled: bool) -> dict[str, Any]:
    """Widget overrides for the form: a number that may be empty (None) gets a number box,
    not a slider (a slider cannot show None: its value would be unset in the browser);
    every field disabled without the role to edit."""
    out: dict[str, Any] = {}
    for name in names:
        p = node.param[name]
        spec: dict[str, Any] = {"disabled": True} if disabled else {}
        if isinstance(p, param.Number) and p.allow_None:
            kind = pn.widgets.IntInput if isinstance(p, param.Integer) else pn.widgets.FloatInput
            spec["type"] = kind
            lo, hi = p.bounds or (None, None)
            spec.update({k: v for k, v in (("start", lo), ("end", hi)) if v is not None})
        if spec:
            out[name] = spec
    return out


class NodeEditor(NotebookFallback, pn.viewable.Viewer):
    """The parameter form of one node, with "Run on current frame"."""

    node = param.Parameter(default=None, doc="The node (a kvmrpa.nodes.Node) being edited.")
    source = param.ClassSelector(class_=FrameSource, default=None, doc="""
        Where "current frame" comes from (its latest frame).""")
    frame = param.ClassSelector(class_=Frame, default=None, allow_None=True, doc="""
        A fixed frame to run on instead of the source's latest one.""")
    output = param.Parameter(default=None, doc="""
        The output of the last "Run on current frame" (a dict), None before.""")
    running = param.Boolean(default=False, doc="True while the node runs on a frame.")
    node_id = param.String(default=None, allow_None=True, doc="""
        Id of the node in its flow (named in messages).""")

    def __init__(self, node: Any = None, on_edit: Callable[[str], None] | None = None,
                 **params: Any) -> None:
        super().__init__(node=node, **params)
        #: Called with the field's name after a change was applied to the node.
        self.on_edit = on_edit
        self.form: param.Parameterized | None = None
        self._syncing = False
        self._node_watchers: list[Any] = []
        self.message = pn.pane.Alert("", alert_type="warning", visible=False)
        self.run_button = pn.widgets.Button(label="Run on current frame", color="primary")
        self.run_button.on_click(self._on_click)
        self.image = pn.pane.PNG(None, sizing_mode="stretch_width", max_height=400)
        self.json = pn.pane.JSON({}, depth=3, sizing_mode="stretch_width")
        self.error = pn.pane.Alert("", alert_type="danger", visible=False)
        self._form = pn.Column(sizing_mode="stretch_width")
        self.param.watch(lambda *_: self._build_form(), ["node"])
        self._build_form()

    def _unwatch(self) -> None:
        for obj, w in self._node_watchers:
            try:
                obj.param.unwatch(w)
            except Exception:
                log.debug("unwatch failed", exc_info=True)
        self._node_watchers = []

    def _build_form(self) -> None:
        self._unwatch()
        node = self.node
        if node is None:
            self.form = None
            self._form.objects = [pn.pane.Markdown("*no node*")]
            return
        own, common = _form_params(node)
        form = self.form = form_object(node, own + common)
        names = own + common
        self._node_watchers = [
            (form, form.param.watch(self._from_form, names)),
            (node, node.param.watch(self._from_node, names)),
            (node, node.param.watch(self._precedence, names, what="precedence")),
        ]
        doc = (type(node).__doc__ or "").strip().split("\n\n")[0]
        title = getattr(node, "type_name", "") or type(node).__name__
        parts: list[Any] = [pn.pane.Markdown(f"**{title}** — {doc}" if doc else f"**{title}**")]
        code = is_code_type(node)  # read-only without the role (and _from_form refuses)
        locked = _widgets(node, names, disabled=not can("edit", code=code))
        self.run_button.disabled = not can("try", code=code)
        if own:
            parts.append(pn.Param(form, parameters=own, show_name=False, widgets=locked,
                                  sizing_mode="stretch_width"))
        if common:
            parts.append(pn.Card(pn.Param(form, parameters=common, show_name=False, widgets=locked,
                                          sizing_mode="stretch_width"),
                                 title="Execution", collapsed=True,
                                 sizing_mode="stretch_width"))
        self._form.objects = parts
        self._tell(None)

    # -- form <-> node ------------------------------------------------------------------
    def _tell(self, text: str | None) -> None:
        self.message.object = text or ""
        self.message.visible = bool(text)

    def _from_form(self, *events: param.parameterized.Event) -> None:
        if self._syncing or self.node is None:
            return
        try:
            require("edit", self.node_id, code=is_code_type(self.node),
                    detail={"fields": [ev.name for ev in events]})
        except AccessDenied as exc:
            self._tell(str(exc))
            for ev in events:
                self._show_node_value(ev.name)
            return
        node = self.node
        for ev in events:
            name = ev.name
            p = node.param[name]
            value = ev.new
            try:
                if value is None or (isinstance(value, str) and not value.strip()
                                     and (isinstance(p, _TEXT_TYPES) or not p.allow_None)):
                    value = None if p.allow_None else copy.deepcopy(p.default)
                elif isinstance(p, _TEXT_TYPES):
                    value = _parse_text(p, value)
                setattr(node, name, value)
            except (ValueError, TypeError) as exc:
                who = self.node_id or getattr(node, "type_name", type(node).__name__)
                reason = " ".join(str(exc).split())
                reason = re.sub(r"^\w+ parameter '[^']+' ", "", reason)
                self._tell(f"{who}.{name}: {reason[:200]}")
                self._show_node_value(name)
                continue
            self._tell(None)
            self._show_node_value(name)
            if self.on_edit is not None:
                self.on_edit(name)

    def _show_node_value(self, name: str) -> None:
        node, form = self.node, self.form
        if node is None or form is None:
            return
        p = node.param[name]
        value = getattr(node, name)
        shown = _as_text(p, value) if isinstance(p, _TEXT_TYPES) else value
        if getattr(form, name) != shown:
            self._syncing = True
            try:
                setattr(form, name, shown)
            finally:
                self._syncing = False

    def _from_node(self, *events: param.parameterized.Event) -> None:
        for ev in events:
            self._show_node_value(ev.name)

    def _precedence(self, *events: param.parameterized.Event) -> None:
        form = self.form
        if form is None:
            return
        for ev in events:
            form.param[ev.name].precedence = ev.new

    def current_frame(self) -> Frame | None:
        """The frame "Run on current frame" uses."""
        if self.frame is not None:
            return self.frame
        return None if self.source is None else self.source.latest()

    @requires("try", code=lambda self, *a, **k: is_code_type(self.node))
    def try_on(self, frame: Frame | None = None) -> dict[str, Any] | None:
        """Run the node on ``frame`` (default: the current frame) and show the result.
        Blocking; from a notebook cell or script. Raises the node's error."""
        frame = frame or self.current_frame()
        if frame is None:
            raise KvmrpaError("no frame to run on: give a frame or a source with frames")
        try:
            output = self._call_try_on(frame)
        except Exception as exc:
            self._show(None, frame, exc)
            raise
        self._show(output, frame, None)
        return output

    def _call_try_on(self, frame: Frame) -> dict[str, Any] | None:
        fn = getattr(self.node, "try_on", None)
        if not callable(fn):
            raise KvmrpaError(f"node type {getattr(self.node, 'type_name', type(self.node).__name__)}"
                              " cannot run outside a flow (no try_on)")
        return fn(frame)

    @requires("try", code=lambda self, *a, **k: is_code_type(self.node))
    async def _on_click(self, _: Any = None) -> None:
        frame = self.current_frame()
        if frame is None:
            self._show_error("no frame yet: the source has not delivered one")
            return
        self.running = True
        self.run_button.loading = True
        try:
            fut = get_runtime().pool.submit(self._call_try_on, frame)
            output = await asyncio.wrap_future(fut)
        except Exception as exc:
            self._show(None, frame, exc)
        else:
            self._show(output, frame, None)
        finally:
            self.running = False
            self.run_button.loading = False

    def _show_error(self, text: str | None) -> None:
        self.error.object = text or ""
        self.error.visible = bool(text)

    def _show(self, output: Any, frame: Frame, error: BaseException | None) -> None:
        self.output = output
        if error is not None:
            log.info("node %s failed on frame %d: %s", getattr(self.node, "type_name", "?"),
                     frame.seq, error)
            self._show_error(" ".join(str(error).split()) or type(error).__name__)
            self.json.object = {"error": str(error)}
            return
        self._show_error(None)
        self.json.object = to_jsonable(output) if output is not None else {}
        out = dict(output or {})
        out.setdefault("frame", frame)
        image = result_image(out)
        self.image.object = None if image is None else png_bytes(image)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._form, self.message, self.run_button, self.error,
                         self.image, self.json, sizing_mode="stretch_width")

    def beside(self, height: int = 460, width: int = 340) -> pn.Column:
        """The form as a panel to set beside a canvas: an "Edit node" heading, the form,
        "Run on current frame" and its result image, scrolling within ``height``."""
        head = pn.pane.HTML('<h3 class="kv-edit-node" style="font:bold 14px sans-serif;'
                            'margin:2px 0 0;color:#263238">Edit node</h3>', margin=(4, 10, 0, 10))
        return pn.Column(head, self, width=width, height=height, scroll=True,
                         margin=(5, 0, 5, 6), css_classes=["kv-node-panel"],
                         styles={"border": "1px solid #cfd8dc", "border-radius": "4px",
                                 "background": "#fff"})

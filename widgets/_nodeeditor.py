"""NodeEditor: a node's parameter form, and "Run on current frame".

The form is generated from the node's param declarations by ``pn.Param`` (docs as
tooltips, bounds as widget limits; parameters hidden by ``precedence < 0`` stay hidden,
and a node that changes precedences by mode shows only what matters). The node type's
own parameters come first; the common execution policy (timeout, retries, retry_delay,
on_error) is grouped in a collapsed card. "Run on current frame" calls
``node.try_on(frame)`` off the event loop and shows the result image with overlays and
the output as JSON.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import panel as pn
import param

from kvmrpa._errors import KvmrpaError
from kvmrpa._frame import Frame
from kvmrpa._runtime import get_runtime
from kvmrpa.capture import FrameSource

from ._overlays import png_bytes, result_image, to_jsonable

__all__ = ["NodeEditor"]

log = logging.getLogger("kvmrpa.widgets.nodeeditor")

_COMMON = ("timeout", "retries", "retry_delay", "on_error")


def _form_params(node: param.Parameterized) -> tuple[list[str], list[str]]:
    own, common = [], []
    for name, p in node.param.objects("existing").items():
        if name == "name" or (p.precedence is not None and p.precedence < 0):
            continue
        (common if name in _COMMON else own).append(name)
    return own, common


class NodeEditor(pn.viewable.Viewer):
    """The parameter form of one node, with "Run on current frame"."""

    node = param.Parameter(default=None, doc="The node (a kvmrpa.nodes.Node) being edited.")
    source = param.ClassSelector(class_=FrameSource, default=None, allow_None=True, doc="""
        Where "current frame" comes from (its latest frame).""")
    frame = param.ClassSelector(class_=Frame, default=None, allow_None=True, doc="""
        A fixed frame to run on instead of the source's latest one.""")
    output = param.Parameter(default=None, doc="""
        The output of the last "Run on current frame" (a dict), None before.""")
    running = param.Boolean(default=False, doc="True while the node runs on a frame.")

    def __init__(self, node: Any = None, **params: Any) -> None:
        super().__init__(node=node, **params)
        self.run_button = pn.widgets.Button(label="Run on current frame", color="primary")
        self.run_button.on_click(self._on_click)
        self.image = pn.pane.PNG(None, sizing_mode="stretch_width", max_height=400)
        self.json = pn.pane.JSON({}, depth=3, sizing_mode="stretch_width")
        self.error = pn.pane.Alert("", alert_type="danger", visible=False)
        self._form = pn.Column(sizing_mode="stretch_width")
        self.param.watch(lambda *_: self._build_form(), ["node"])
        self._build_form()

    def _build_form(self) -> None:
        node = self.node
        if node is None:
            self._form.objects = [pn.pane.Markdown("*no node*")]
            return
        own, common = _form_params(node)
        doc = (type(node).__doc__ or "").strip().split("\n\n")[0]
        title = getattr(node, "type_name", "") or type(node).__name__
        parts: list[Any] = [pn.pane.Markdown(f"**{title}** — {doc}" if doc else f"**{title}**")]
        if own:
            parts.append(pn.Param(node, parameters=own, show_name=False,
                                  sizing_mode="stretch_width"))
        if common:
            parts.append(pn.Card(pn.Param(node, parameters=common, show_name=False,
                                          sizing_mode="stretch_width"),
                                 title="Execution", collapsed=True,
                                 sizing_mode="stretch_width"))
        self._form.objects = parts

    def current_frame(self) -> Frame | None:
        """The frame "Run on current frame" uses."""
        if self.frame is not None:
            return self.frame
        return None if self.source is None else self.source.latest()

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
        return pn.Column(self._form, self.run_button, self.error,
                         pn.Row(self.image, self.json, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")

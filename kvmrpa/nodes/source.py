"""The ``source`` node: a frame from a video source into the flow.

The source is opened through the flow's shared resources (the capture hub: one decode
per URL however many flows and viewers use it) and released when the run ends.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import param

from .._errors import FrameTimeoutError, NodeError
from .._urls import redact_url
from ._base import Node
from ._registry import register_node

if TYPE_CHECKING:  # pragma: no cover
    from ..engine._context import Inputs, NodeContext

__all__ = ["Source"]


def _ref(obj: Any) -> Callable[[], Any]:
    """A weak reference to ``obj`` (a strong one for objects that cannot have one)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


@register_node
class Source(Node):
    """Take a frame from a video source.

    ``url`` is any source URL (``rtsp://…``, ``file:///…png``, ``sim://…``, a device);
    empty means the flow's own source. With ``wait_new_frame`` the node waits for a
    frame newer than the one it returned in the previous pass (each pass sees a fresh
    screen); otherwise it takes the latest frame at once.
    Inputs: none. Outputs: ``{"frame": Frame}`` (the full source frame).
    """

    type_name: ClassVar[str] = "source"
    category: ClassVar[str] = "source"

    url = param.String(default="", doc="Source URL (rtsp://, file://, sim://, device); empty for the flow's source. Secrets as ${env:NAME}.")
    wait_new_frame = param.Boolean(default=True, doc="Wait for a frame newer than the one used in the previous pass.")
    frame_timeout = param.Number(default=5.0, bounds=(0.0, 3600.0), inclusive_bounds=(False, True), doc="Seconds to wait for a frame before failing.")

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        src = await ctx.source(self.url or None)
        state = ctx.state
        # frame numbers are per source object: one opened again (a debugger re-run after
        # the run released it) counts from 1, so the last number seen does not apply
        seen = state.get("source")
        same = seen is not None and seen() is src
        after = state.get("seq") if self.wait_new_frame and same else None
        frame = None if self.wait_new_frame else src.latest()
        if frame is None:
            try:
                frame = await src.next_frame(after, self.frame_timeout)
            except FrameTimeoutError as exc:
                shown = redact_url(self.url) if self.url else "the flow's source"
                raise NodeError(f"no {'new ' if after is not None else ''}frame from {shown} "
                                f"within {self.frame_timeout:g} s", node_id=ctx.node_id,
                                flow=ctx.flow_name, field="frame_timeout", cause=exc) from exc
        state["seq"], state["source"] = frame.seq, _ref(src)
        return {"frame": frame}

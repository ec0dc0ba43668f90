"""The ``source`` node: a frame from a video source into the flow.

The source is opened through the flow's shared resources (the capture hub: one decode
per URL however many flows and viewers use it) and released when the run ends.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import param

from .._errors import FrameTimeoutError, NodeError
from .._urls import redact_url
from ._base import Node
from ._registry import register_node

if TYPE_CHECKING:  # pragma: no cover
    from ._base import Inputs, NodeContext

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
    empty means the flow's own source. With ``wait_new_frame`` (the default) the node
    waits for a frame captured after it started, and newer than the one it returned in
    the previous pass: each pass, the first one included, sees the screen as it is now,
    never a frame that predates an action just done (by the previous pass, a previous run
    or a person). That costs up to one frame period. Otherwise it takes the latest frame
    at once, which may be that old.
    Inputs: none. Outputs: ``{"frame": Frame}`` (the full source frame).
    """

    type_name: ClassVar[str] = "source"
    category: ClassVar[str] = "source"

    url = param.String(default="", doc="Source URL (rtsp://, file://, sim://, device); empty for the flow's source. Secrets as ${env:NAME}.")
    wait_new_frame = param.Boolean(default=True, doc="Wait for a frame captured after this node started (and newer than the one used in the previous pass), so the flow never acts on a screen from before its last action; off: take the latest frame at once, however old.")
    frame_timeout = param.Number(default=5.0, bounds=(0.0, 3600.0), inclusive_bounds=(False, True), doc="Seconds to wait for a frame before failing.")

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        entered = time.monotonic()
        src = await ctx.source(self.url or None)
        state = ctx.state
        # frame numbers are per source object: one opened again (a debugger re-run after
        # the run released it) counts from 1, so the last number seen does not apply
        seen = state.get("source")
        same = seen is not None and seen() is src
        after = state.get("seq") if self.wait_new_frame and same else None
        frame = None if self.wait_new_frame else src.latest()
        if frame is None:
            deadline = time.monotonic() + self.frame_timeout
            try:
                frame = await src.next_frame(after, self.frame_timeout)
                while self.wait_new_frame and frame.captured < entered:  # predates this node
                    frame = await src.next_frame(frame.seq, max(0.0, deadline - time.monotonic()))
            except FrameTimeoutError as exc:
                shown = redact_url(self.url) if self.url else "the flow's source"
                new = "new " if self.wait_new_frame and src.latest() is not None else ""
                err = src.metrics().last_error
                why = f" (last error: {err})" if err else ""
                raise NodeError(f"no {new}frame from {shown} "
                                f"within {self.frame_timeout:g} s{why}", node_id=ctx.node_id,
                                flow=ctx.flow_name, field="frame_timeout", cause=exc) from exc
        state["seq"], state["source"] = frame.seq, _ref(src)
        return {"frame": frame}

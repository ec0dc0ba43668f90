"""What a streamed frame costs on the websocket, on both of the live view's paths.

:func:`frame_wire_bytes` builds the PATCH-DOC message the Panel server sends for one
LiveView frame (a custom ESM message whose JPEG travels as a binary buffer) and counts
every websocket frame it becomes: header, metadata, content, and per buffer its JSON
reference plus the raw bytes. :func:`route_wire_bytes` counts the frame route's one
binary message (its header, the JPEG, and the websocket frame's own header). Used by
the ``stream`` benchmark.
"""

from __future__ import annotations

import json

from bokeh.document import Document
from bokeh.document.events import MessageSentEvent
from bokeh.protocol import Protocol
from panel.models.esm import ESMEvent

from ._encoder import EncodedFrame
from ._frameroute import frame_packet
from ._liveview import LiveView, frame_message

__all__ = ["frame_wire_bytes", "route_wire_bytes"]


def _ws_frame_header(payload: int) -> int:
    """Bytes of a server-to-client websocket frame's header (RFC 6455, unmasked)."""
    return 2 if payload < 126 else 4 if payload < 2 ** 16 else 10


def route_wire_bytes(encoded: EncodedFrame) -> int:
    """Bytes on the frame route's websocket for sending ``encoded`` to one view."""
    payload = len(frame_packet(encoded, 1))
    return _ws_frame_header(payload) + payload


def frame_wire_bytes(encoded: EncodedFrame) -> int:
    """Bytes on the websocket for sending ``encoded`` to one LiveView in a live session."""
    view = LiveView()
    doc = Document()
    root = view.get_root(doc)
    doc.add_root(root)
    doc.models.flush_synced()  # the browser already has the document, as in a session
    event = ESMEvent(model=root, data=frame_message(encoded))
    msg = Protocol().create("PATCH-DOC", [MessageSentEvent(doc, "bokeh_event", event)])
    total = len(msg.header_json) + len(msg.metadata_json) + len(msg.content_json)
    for buf in msg.buffers:
        total += len(json.dumps(buf.ref)) + len(buf.to_bytes())
    view._cleanup(root)
    return total

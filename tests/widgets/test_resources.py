"""What goes over a notebook comm: changes made before the page opened the comm go out
in order once it opens, and panes changed after their first render carry this
installation's stylesheets, not CDN links (the page may have no internet)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from kvmrpa.widgets._markup import LiveHTML
from kvmrpa.widgets._resources import atomic_comm_sends
from panel.io.model import add_to_doc


class KernelComm:
    """ipykernel's side of an open comm: records what is sent."""

    def __init__(self, sent: list[Any]) -> None:
        self.sent = sent

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.sent.append(data)


class Comm:
    """A pyviz_comms JupyterComm as Panel uses it: ``_comm`` is None until the page's
    side opens and calls ``init``."""

    def __init__(self) -> None:
        self.id = "comm-1"
        self._comm: KernelComm | None = None
        self.sent: list[Any] = []

    def init(self) -> None:
        self._comm = KernelComm(self.sent)

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = ()) -> None:
        if self._comm is None:
            self.init()
        self._comm.send(data, metadata, buffers)

    def patches(self) -> list[dict[str, Any]]:
        """The content part of each patch message sent."""
        out = []
        for part in self.sent:
            if isinstance(part, str) and part.startswith("{") and '"events"' in part:
                out.append(json.loads(part))
        return out


def open_comm(comm: Comm) -> None:
    """The page opens the comm (on the kernel's event loop, as ipykernel runs it); what
    was waiting goes out just after."""

    async def opened() -> None:
        comm.init()
        await asyncio.sleep(0.3)

    asyncio.run(opened())


def png(value: int) -> bytes:
    return cv2.imencode(".png", np.full((8, 8, 3), value, np.uint8))[1].tobytes()


@pytest.fixture
def shown() -> Iterator[tuple[pn.Column, Document, Comm]]:
    """A column rendered into a notebook document (held, as Panel holds it) with a
    comm the page has not opened yet."""
    atomic_comm_sends()
    was = pn.config.inline
    pn.config.inline = True
    comm, doc = Comm(), Document()
    col = pn.Column(pn.pane.Markdown("first"), pn.pane.PNG(None, width=80))
    root = col.get_root(doc, comm)
    add_to_doc(root, doc, True)
    try:
        yield col, doc, comm
    finally:
        col._cleanup(root)
        pn.config.inline = was


def refs_in_order(patch: dict[str, Any], known: set[str]) -> list[str]:
    """Ids referred to before (or without) their definition in this message."""
    unknown: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "object" and "id" in value:
                known.add(value["id"])
            elif set(value) == {"id"} and value["id"] not in known:
                unknown.append(value["id"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(patch)
    return unknown


def test_changes_before_the_comm_opens_go_out_in_order_when_it_opens(shown) -> None:
    col, doc, comm = shown
    known = {m.id for m in doc.models}  # sent with the output's first render
    col[1].object = png(10)             # new stylesheet models
    col.append(pn.pane.JSON({"a": 1}))  # a new pane ...
    col[2].object = {"b": 2}            # ... changed again
    col[0].object = "second"
    assert comm.sent == []  # nothing serialised while the page cannot take it
    open_comm(comm)
    patches = comm.patches()
    assert len(patches) == 1, patches
    assert refs_in_order(patches[0], known) == []
    assert "second" in json.dumps(patches[0]) and '\\"b\\": 2' in json.dumps(patches[0])
    assert "init" not in vars(comm)  # the hook is gone: later pushes go out at once
    col[0].object = "third"
    assert len(comm.patches()) == 2 and "third" in json.dumps(comm.patches()[1])


def test_panes_changed_after_the_first_render_get_local_stylesheets(shown) -> None:
    col, _doc, comm = shown
    comm.init()
    col[1].object = png(20)
    col.append(pn.pane.JSON({"a": 1}))  # Panel re-sends the siblings' stylesheets
    col[2].object = {"b": 2}
    sent = json.dumps(comm.patches())
    assert '"attr": "stylesheets"' in sent
    assert "cdn.holoviz.org" not in sent and "ImportedStyleSheet" not in sent
    assert '"name": "InlineStyleSheet"' in sent


def test_custom_messages_made_before_the_comm_opens_are_dropped() -> None:
    atomic_comm_sends()
    comm, doc = Comm(), Document()
    view = LiveHTML("x")
    root = view.get_root(doc, comm)
    add_to_doc(root, doc, True)
    try:
        for i in range(100):  # a live view's frames while the page is not there yet
            view._send_msg({"n": i})
        view.object = "shown"
        assert comm.sent == []
        open_comm(comm)
        events = [e for p in comm.patches() for e in p["events"]]
        assert [e["kind"] for e in events] == ["ModelChanged"] and "shown" in json.dumps(events)
        view._send_msg({"n": 100})  # once open, they go out at once
        assert '["n", 100]' in json.dumps(comm.patches()[-1])
    finally:
        view._cleanup(root)

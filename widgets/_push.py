"""Server-side push: render a view on its own session when its state changed.

A :class:`Pusher` is poked from any thread (the runtime loop folding a run's events) and
renders its view on the view's session: under a server with Panel's
``state.execute(..., schedule=True)`` (Bokeh's thread-safe next-tick callback, with the
document lock held, so the change goes out on the websocket at once), in a notebook on
the kernel's event loop, elsewhere inline. Pokes coalesce: one render per tick however
many events arrived, and at most one every ``min_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import panel as pn
from panel.io.state import set_curdoc

__all__ = ["Pusher"]

log = logging.getLogger("kvmrpa.widgets.push")



class Pusher:
    """Coalescing, thread-safe scheduling of ``render()`` on the view's session."""

    def __init__(self, render: Callable[[], None], min_interval: float = 0.04) -> None:
        self._render = render
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._doc: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._last = 0.0
        self._closed = False
        #: How many renders ran (for tests).
        self.renders = 0

    def bind(self) -> None:
        """Render on the current session (a served page) or the current event loop (a
        notebook); call where the view is displayed."""
        doc = pn.state.curdoc
        with self._lock:
            self._closed = False
            if doc is not None and doc.session_context is not None:
                self._doc = doc
                registered = True
            else:
                registered = False
                try:
                    self._loop = asyncio.get_running_loop()
                except RuntimeError:
                    self._loop = None
        if registered:
            # a page that never opens its websocket (a bare HTTP GET) is never rendered;
            # one that opens it gets the state of that moment
            pn.state.onload(self.poke)

    @property
    def bound(self) -> bool:
        return self._doc is not None or self._loop is not None

    def close(self) -> None:
        """Render no more (the page closed)."""
        with self._lock:
            self._closed = True
            self._doc = None
            self._loop = None

    def poke(self) -> None:
        """The state changed: schedule a render (thread-safe, cheap, coalesced)."""
        with self._lock:
            if self._closed or self._scheduled:
                return
            doc, loop = self._doc, self._loop
            if doc is None and loop is None:
                return  # not displayed: refresh() by hand
            if doc is not None:
                with set_curdoc(doc):
                    if not pn.state.loaded:
                        return  # rendered once loaded (see bind)
            self._scheduled = True
        try:
            if doc is not None:
                # Bokeh's one thread-safe Document method; the callback runs on the
                # server's loop with the document locked, and with the session as Panel's
                # current document, so the changes go out directly (not rescheduled)
                doc.add_next_tick_callback(lambda: self._tick_in(doc))
            else:
                loop.call_soon_threadsafe(self._tick)  # type: ignore[union-attr]
        except Exception:  # the session or loop is gone
            log.debug("cannot schedule a render", exc_info=True)
            with self._lock:
                self._scheduled = False

    def _tick_in(self, doc: Any) -> None:
        with set_curdoc(doc):
            self._tick()

    def _tick(self) -> None:
        wait = self._last + self.min_interval - time.monotonic()
        if wait > 0:
            doc = self._doc
            if doc is not None:
                doc.add_timeout_callback(lambda: self._tick_in(doc), int(wait * 1000) + 1)
                return
            if self._loop is not None:
                self._loop.call_later(wait, self._tick)
                return
        with self._lock:
            self._scheduled = False
            if self._closed:
                return
        self._last = time.monotonic()
        self.renders += 1
        try:
            with pn.io.hold():  # one websocket message for all the changes of a render
                self._render()
        except Exception:
            log.exception("rendering a view failed")

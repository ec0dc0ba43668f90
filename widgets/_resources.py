"""Where the browser gets BokehJS, Panel's JS/CSS and kvmrpa's own JS: the local
installation, never a CDN, unless the ``stream.cdn_resources`` setting asks for one.

:func:`use_local_resources` runs when :mod:`kvmrpa.widgets` is imported. It turns on
Panel's inline resources (``pn.config.inline``, the documented switch behind
``PANEL_INLINE``) and, inside a Jupyter kernel, loads Panel's notebook extension with
them, so a notebook needs no ``pn.extension()`` cell and renders with no internet
(JupyterLab 4, Notebook 7); a server (``kvmrpa serve``) serves every file from its own
routes already and is left alone. An explicit
``PANEL_INLINE`` in the environment wins over the setting.

:func:`atomic_comm_sends` keeps the messages sent over a Jupyter comm whole, in order
(also those made before the page opened the comm) and free of CDN stylesheet links;
``_commqueue.js``, placed in each component's output, keeps them on the page until the
output's views are built (Panel drops what arrives earlier).
:class:`NotebookFallback` gives every kvmrpa component's notebook output a plain-words
notice that stays visible only while the JavaScript has not drawn the component (an
untrusted notebook, a blocked script, a CDN that cannot be reached).
"""

from __future__ import annotations

import html
import os
import sys
import threading
import uuid
import weakref
from pathlib import Path
from typing import Any

import panel as pn

from kvmrpa._settings import get_settings

__all__ = ["FALLBACK_TEXT", "NotebookFallback", "atomic_comm_sends", "in_kernel",
           "load_for_this_page", "use_local_resources"]

FALLBACK_TEXT = (
    "kvmrpa: this view is drawn by JavaScript (BokehJS and Panel) that has not loaded in "
    "this browser. Run the notebook's cells again (importing kvmrpa.widgets loads them "
    "from this installation, no internet needed); if it stays, check that the notebook is "
    "trusted and look at the browser console.")


def in_kernel() -> bool:
    """True inside a Jupyter kernel (not a plain Python or IPython terminal)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        ip = ipython.get_ipython()
    except Exception:  # pragma: no cover - IPython half-imported
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


_send_lock = threading.RLock()
_inline_css: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def atomic_comm_sends() -> None:
    """Make each change Panel pushes over a Jupyter comm leave whole, in order and with
    this installation's stylesheets.

    Panel's ``push`` takes the document's pending changes (``diff``) and sends them as
    several comm messages (header, metadata, content, then each binary buffer). The live
    view sends frames and the debugger renders its state from other threads while a cell
    changes parameters on the kernel's main thread; interleaved, the browser rejects the
    messages ("Expected binary fragment but received text fragment", "buffer … not
    found") and the views stop updating. One lock around ``push`` (in every Panel module
    that imported it) and ``send`` makes each diff-and-send atomic; a push is a few queue
    writes, never a wait on the page.

    Until the page opens an output's comm (during "Run All" the kernel handles the
    browser's comm-open only after the last cell), Panel serialises each push at once
    and retries each message on its own 0.1 s timer, so they go out in any order; a
    message that refers to a model defined by a later one is refused ("reference … isn't
    known") and the view goes stale. Here the model changes stay held in the document
    instead and go out as one message the moment the comm opens.

    Panel inlines stylesheets only in an output's first render: a model whose
    stylesheets change later (a pane given a new object) would get ``ImportedStyleSheet``
    links to the CDN, which an offline page cannot load. With inline resources they are
    replaced by this installation's files before the change is sent.
    """
    from panel.io import notebook

    if getattr(notebook.push, "_kvmrpa_atomic", False):
        return
    push, send = notebook.push, notebook.send

    def locked_push(doc: Any, comm: Any, binary: bool = True, msg: Any = None) -> None:
        with _send_lock:
            if msg is None and getattr(comm, "_comm", True) is None:
                _send_when_open(doc, comm, binary, locked_push)
                return
            if msg is None and pn.config.inline:
                _inline_stylesheets(doc)
            push(doc, comm, binary, msg)

    def locked_send(comm: Any, msg: Any) -> None:
        with _send_lock:
            send(comm, msg)

    locked_push._kvmrpa_atomic = locked_send._kvmrpa_atomic = True  # type: ignore[attr-defined]
    notebook.send = locked_send
    for name, module in list(sys.modules.items()):
        if name.startswith("panel.") and getattr(module, "push", None) is push:
            module.push = locked_push  # type: ignore[attr-defined]


def _send_when_open(doc: Any, comm: Any, binary: bool, push: Any) -> None:
    """Leave ``doc``'s model changes held and push them the moment ``comm`` opens (its
    ``init``, called when the page's side of the comm opens); custom messages made
    meanwhile (a live view's frames: the next one replaces them) are dropped. Called
    with the send lock held."""
    from bokeh.document.events import MessageSentEvent

    held = doc.callbacks._held_events
    if any(isinstance(e, MessageSentEvent) for e in held):
        held[:] = [e for e in held if not isinstance(e, MessageSentEvent)]
    waiting = comm.__dict__.setdefault("_kvmrpa_waiting", [])
    if doc not in waiting:
        waiting.append(doc)
    if "init" in comm.__dict__:
        return  # already hooked
    init = comm.init

    def init_then_push(*args: Any, **kwargs: Any) -> Any:
        out = init(*args, **kwargs)
        # at once: a message from the page (handled with the document unheld) would
        # otherwise dispatch the held changes without sending them
        with _send_lock:
            del comm.init  # back to the class's method
            docs, comm._kvmrpa_waiting = comm._kvmrpa_waiting, []
            for d in docs:
                push(d, comm, binary)
        return out

    comm.init = init_then_push


def _inline_stylesheets(doc: Any) -> None:
    """Replace the CDN ``ImportedStyleSheet`` links that ``doc``'s pending changes would
    send with this installation's CSS (one ``InlineStyleSheet`` per file and document)."""
    from bokeh.document.events import ModelChangedEvent
    from bokeh.model import Model
    from bokeh.models import ImportedStyleSheet
    from bokeh.models.ui import UIElement
    from panel.io.notebook import replace_inline_css

    cache = _inline_css.setdefault(doc, {})

    def local(sheet: Any) -> Any:
        if not isinstance(sheet, ImportedStyleSheet):
            return sheet
        url = sheet.url
        if url not in cache:
            inline = replace_inline_css(sheet)
            if inline is sheet:
                return sheet  # not one of Panel's files
            cache[url] = inline
        return cache[url]

    for event in list(doc.callbacks._held_events):
        if not isinstance(event, ModelChangedEvent):
            continue
        if event.attr == "stylesheets":
            models = [event.model]
        else:  # new children, panes, …: their own stylesheets are sent with them
            new = event.new if isinstance(event.new, (list, tuple)) else [event.new]
            models = [s for m in new if isinstance(m, Model) for s in m.select({"type": UIElement})]
        for model in models:
            if not isinstance(model, UIElement):
                continue
            sheets = list(model.stylesheets)
            patched = [local(s) for s in sheets]
            if any(a is not b for a, b in zip(patched, sheets, strict=True)):
                model.stylesheets = patched


def use_local_resources(*, load: bool | None = None) -> bool:
    """In a Jupyter kernel (or when ``load`` is true): inline Panel's resources from
    this installation (unless ``stream.cdn_resources``) and load Panel's notebook
    extension with them; Panel handles a repeated load. A server process is left as it
    is: ``kvmrpa serve`` and ``panel serve`` serve BokehJS and Panel from their own
    routes. Returns whether resources are inline.
    """
    load = in_kernel() if load is None else load
    if not load:  # a server (kvmrpa serve, panel serve) serves its own files already
        return bool(pn.config.inline)
    if "PANEL_INLINE" not in os.environ:
        # panel's config takes "inline" through its __setattr__ (into _inline); its type
        # stubs declare only the read-only property.
        config: Any = pn.config
        config.inline = not get_settings().stream.cdn_resources
    atomic_comm_sends()
    pn.extension()
    _loaded_pages.add(_page_session())
    return bool(pn.config.inline)


#: The Jupyter client sessions (one per browser page's kernel connection) that have been
#: sent Panel's notebook extension by this kernel.
_loaded_pages: set[str | None] = set()


def _page_session() -> str | None:
    """The client session of the message this kernel is handling (a page reloaded, or
    the notebook opened in a second page or in Notebook 7, is a new one); None outside
    a kernel request."""
    ipython = sys.modules.get("IPython")
    try:
        kernel = getattr(ipython.get_ipython(), "kernel", None) if ipython else None
        header = kernel.get_parent().get("header", {}) if kernel is not None else {}
    except Exception:  # pragma: no cover - no kernel, or a kernel without parents
        return None
    session = header.get("session") if isinstance(header, dict) else None
    return str(session) if session else None


def load_for_this_page() -> None:
    """Send Panel's notebook extension (BokehJS and Panel, inline) to the page asking
    for this output if this kernel has not sent it to that page yet: importing
    :mod:`kvmrpa.widgets` loads it once per kernel, and a page that connects later (a
    reload, a second tab, Notebook 7) would otherwise render nothing. Panel's own
    answer is to run ``pn.extension()`` again; this does that, once per page."""
    if not in_kernel():
        return
    page = _page_session()
    if page is None or page in _loaded_pages:
        return
    _loaded_pages.add(page)
    pn.extension()


_CHECK_JS = """(function () {
  var note = document.getElementById(%(note)s), tries = 0;
  function drawn() {
    var box = document.getElementById(%(target)s);
    var root = box && box.querySelector("[data-root-id]");
    return !!(window.Bokeh && root && (root.shadowRoot || root.children.length ||
              (root.nextElementSibling && root.nextElementSibling.shadowRoot)));
  }
  var timer = setInterval(function () {
    tries += 1;
    if (!note || !note.isConnected || tries > 7200) { clearInterval(timer); return; }
    if (drawn()) { note.remove(); clearInterval(timer); }
  }, 250);
})();"""


_COMM_QUEUE_JS = (Path(__file__).with_name("_commqueue.js")).read_text(encoding="utf-8")


def fallback_html(note_id: str, target: str) -> str:
    """The notice placed before a component's output, the script that removes it once
    the component is drawn, and ``_commqueue.js``, which keeps the kernel's messages for
    the output until the page has built its views."""
    return (f'<script type="text/javascript">{_COMM_QUEUE_JS}</script>'
            f'<div id="{note_id}" class="kvmrpa-nojs" role="status" style="padding:8px 12px;'
            'border:1px solid #e0a800;background:#fff8e1;color:#5d4037;font:13px sans-serif">'
            f'{html.escape(FALLBACK_TEXT)}</div>'
            f'<script type="text/javascript">{_CHECK_JS % {"note": repr(note_id), "target": repr(target)}}</script>')


class NotebookFallback:
    """Mixin for a kvmrpa component: its notebook output starts with a plain-words
    notice that the JavaScript removes once it has drawn the component."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        load_for_this_page()
        out = super()._repr_mimebundle_(include, exclude)  # type: ignore[misc]
        if not isinstance(out, tuple) or not out or not isinstance(out[0], dict):
            return out
        data, meta = out[0], out[1] if len(out) > 1 and isinstance(out[1], dict) else {}
        target = next((m["id"] for m in meta.values() if isinstance(m, dict) and "id" in m), None)
        if "text/html" in data and target:
            note = f"kvmrpa-nojs-{uuid.uuid4().hex[:12]}"
            data = {**data, "text/html": fallback_html(note, str(target)) + data["text/html"]}
            return (data, *out[1:])
        return out

"""FlowEditor: change a flow's graph from the UI — add a node from the palette, connect
two nodes (optionally on a branch label), delete a node or an edge, save the file (the
accessible, form-based companion of the canvas). FlowFiles: the dashboard's new flow,
open (upload a native or original-format file) and save as.

Every change goes through the flow's own API (``flow.add``, ``flow.connect``,
``flow.disconnect``, ``flow.remove``, ``flow.save``), exactly what code would call, and
the graph view is refreshed afterwards. Editing is refused while a run is active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import panel as pn
import param

from kvmrpa._errors import KvmrpaError

from ._auth import can, is_code_type, palette_types, require
from ._resources import NotebookFallback

__all__ = ["FlowEditor", "FlowFiles"]

log = logging.getLogger("kvmrpa.widgets.floweditor")


def _node_types() -> list[str]:
    from kvmrpa.nodes import node_types

    return palette_types(sorted(node_types()))  # code nodes only where allowed


class FlowEditor(NotebookFallback, pn.viewable.Viewer):
    """Palette and graph edits for one flow."""

    flow = param.Parameter(default=None, doc="The kvmrpa.engine.Flow being edited.")
    path = param.String(default=None, allow_None=True, doc="""
        File the flow is saved to by the Save button (None: no Save button action).""")
    locked = param.Boolean(default=False, doc="""
        Refuse edits (set while a run of the flow is active).""")

    def __init__(self, flow: Any = None, on_change: Callable[[], None] | None = None,
                 **params: Any) -> None:
        super().__init__(flow=flow, **params)
        self._on_change = on_change
        #: When set, the Save button calls it instead of saving to :attr:`path` (the
        #: Dashboard saves a session's draft through the app).
        self.on_save: Callable[[], Any] | None = None
        self.node_type = pn.widgets.Select(label="Node type", options=_node_types())
        self.node_id = pn.widgets.TextInput(label="Node id", placeholder="automatic")
        self.add_button = pn.widgets.Button(label="Add node")
        self.source_node = pn.widgets.Select(label="From", options=[])
        self.target_node = pn.widgets.Select(label="To", options=[])
        self.branch = pn.widgets.TextInput(label="Branch", placeholder="none")
        self.connect_button = pn.widgets.Button(label="Connect")
        self.disconnect_button = pn.widgets.Button(label="Disconnect")
        self.delete_node = pn.widgets.Select(label="Node", options=[])
        self.delete_button = pn.widgets.Button(label="Delete node", color="danger")
        self.save_button = pn.widgets.Button(label="Save flow")
        self.message = pn.pane.Alert("", alert_type="info", visible=False)
        self.add_button.on_click(lambda _: self._guard(self._add))
        self.connect_button.on_click(lambda _: self._guard(self._connect))
        self.disconnect_button.on_click(lambda _: self._guard(self._disconnect))
        self.delete_button.on_click(lambda _: self._guard(self._delete))
        self.save_button.on_click(lambda _: self._on_save_click())
        self.param.watch(lambda *_: self._sync_options(), ["flow"])
        self._sync_options()

    def _on_save_click(self) -> None:
        if self.on_save is not None:
            self.on_save()
            return
        self._guard(self._save, allow_locked=True)

    def _sync_options(self) -> None:
        ids = list(self.flow.nodes) if self.flow is not None else []
        for w in (self.source_node, self.target_node, self.delete_node):
            w.options = ids
        if len(ids) > 1 and self.target_node.value == self.source_node.value:
            self.target_node.value = ids[1]

    def _tell(self, text: str, kind: Literal["info", "success", "warning", "danger"] = "info") -> None:
        self.message.alert_type = kind
        self.message.object = text
        self.message.visible = bool(text)

    def _guard(self, action: Callable[[], str], allow_locked: bool = False) -> None:
        if self.flow is None:
            self._tell("no flow", "warning")
            return
        if self.locked and not allow_locked:
            self._tell("stop the run before editing the flow", "warning")
            return
        try:
            text = action()
        except (KvmrpaError, KeyError, TypeError, ValueError) as exc:
            self._tell(" ".join(str(exc).split()), "danger")
            return
        self._sync_options()
        if self._on_change is not None:
            self._on_change()
        self._tell(text, "success")

    # -- actions (also callable from code) ----------------------------------------------
    def _add(self) -> str:
        require("edit", self.flow.name, code=is_code_type(self.node_type.value),
                detail={"node_type": str(self.node_type.value)[:64]})
        node = self.flow.add(self.node_type.value, (self.node_id.value or "").strip() or None)
        self.node_id.value = ""
        return f"added {self.flow.id_of(node)} ({self.node_type.value})"

    def _connect(self) -> str:
        require("edit", self.flow.name)
        s, t = self.source_node.value, self.target_node.value
        if not s or not t or s == t:
            raise ValueError("choose two different nodes to connect")
        branch = (self.branch.value or "").strip() or None
        self.flow.connect(s, t, branch=branch)
        return f"connected {s} → {t}" + (f" on {branch}" if branch else "")

    def _disconnect(self) -> str:
        require("edit", self.flow.name)
        s, t = self.source_node.value, self.target_node.value
        before = len(self.flow.edges)
        self.flow.disconnect(s, t)
        if len(self.flow.edges) == before:
            raise ValueError(f"no edge {s} → {t}")
        return f"disconnected {s} → {t}"

    def _delete(self) -> str:
        require("edit", self.flow.name)
        nid = self.delete_node.value
        if not nid:
            raise ValueError("choose a node to delete")
        self.flow.remove(nid)
        return f"deleted {nid}"

    def _save(self) -> str:
        require("save", self.flow.name)
        if not self.path:
            raise ValueError("this flow has no file to save to")
        saved = self.flow.save(Path(self.path))
        return f"saved {saved.name}"

    def __panel__(self) -> pn.viewable.Viewable:
        if not can("edit"):
            return pn.pane.Markdown("*Editing flows needs the editor role.*")
        return pn.Column(
            pn.Row(self.node_type, self.node_id, self.add_button),
            pn.Row(self.source_node, self.target_node, self.branch, self.connect_button,
                   self.disconnect_button),
            pn.Row(self.delete_node, self.delete_button, self.save_button),
            self.message, sizing_mode="stretch_width")


#: Largest flow file accepted by Open (an upload, read into memory).
MAX_UPLOAD = 5 * 1024 * 1024


class FlowFiles(NotebookFallback, pn.viewable.Viewer):
    """New flow, Open (upload) and Save as for a Dashboard: each writes a new file in the
    app's flows folder (atomically, through ``Flow.save``), lists it in every session
    and selects it in this one. An opened file in the original format is imported and
    laid out left to right."""

    def __init__(self, dashboard: Any, **params: Any) -> None:
        super().__init__(**params)
        self._dash = dashboard
        self.name_input = pn.widgets.TextInput(placeholder="flow name", width=150,
                                               margin=(5, 3))
        self.new_button = pn.widgets.Button(label="New flow", width=85, margin=(5, 3),
                                            description="Create an empty flow with this name")
        self.save_as_button = pn.widgets.Button(
            label="Save as", width=75, margin=(5, 3),
            description="Save this tab's draft as a new flow with this name")
        self.open_input = pn.widgets.FileInput(accept=".json", width=190, margin=(5, 3),
                                               description="Open a flow file (native or original format)")
        self.message = pn.pane.Alert("", alert_type="info", visible=False, margin=(0, 5))
        self.new_button.on_click(lambda _: self._guard(self.new_flow))
        self.save_as_button.on_click(lambda _: self._guard(self.save_as))
        self.open_input.param.watch(lambda _: self._guard(self._open_upload), ["value"])
        for w in (self.new_button, self.save_as_button, self.open_input):
            w.disabled = not can("save")  # the handlers check again

    def _tell(self, text: str, kind: Literal["info", "success", "warning", "danger"] = "info") -> None:
        self.message.alert_type = kind
        self.message.object = text
        self.message.visible = bool(text)

    def _guard(self, action: Callable[[], str]) -> None:
        try:
            text = action()
        except (KvmrpaError, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            self._tell(" ".join(str(exc).split())[:500], "danger")
            return
        self._tell(text, "success")

    def _name(self) -> str:
        from kvmrpa.engine._flow import _ID

        name = (self.name_input.value or "").strip()
        if not name:
            raise ValueError("type a name for the flow first")
        if not _ID.match(name):
            raise ValueError(f"flow name {name!r}: letters, digits and _ . : - only")
        return name

    def _add(self, flow: Any) -> str:
        """Save ``flow`` as a new flow of the app and select it here; returns its name."""
        app = self._dash.app
        require("save", flow.name)
        if not app.flows_dir:
            raise KvmrpaError("this dashboard has no flows folder to save into")
        name = app.add_draft(flow)
        try:
            app.save_flow(name, flow, by=self._dash._token)
        except BaseException:
            with app._lock:  # not saved: not listed either
                app.flows.pop(name, None)
                app.flow_files.pop(name, None)
            raise
        self._dash._select_next = name
        self._dash.refresh()
        return name

    def new_flow(self) -> str:
        """An empty flow named after the name field, on the selected flow's source."""
        from kvmrpa.engine import Flow

        name = self._name()
        current = self._dash.app.flows.get(self._dash.selected)
        flow = Flow(name, source=getattr(current, "source", None),
                    input=getattr(current, "input", None))
        added = self._add(flow)
        return f"created {added}"

    def save_as(self) -> str:
        """This tab's draft of the selected flow, saved under the name field."""
        name = self._name()
        current = self._dash.selected
        if current is None:
            raise ValueError("no flow to save")
        draft = self._dash.draft(current)
        copy = type(draft).from_dict(draft.to_dict(), origin=f"<draft of {current}>")
        copy.name = name
        copy.created = None
        added = self._add(copy)
        return f"saved as {added}"

    def open_bytes(self, data: bytes, filename: str = "flow.json") -> str:
        """Import a flow file's content (native or original format) as a new flow."""
        from kvmrpa.engine import Flow

        from ._flowcanvas import canvas_positions

        if len(data) > MAX_UPLOAD:
            raise ValueError(f"{filename}: {len(data)} bytes; the limit is {MAX_UPLOAD}")
        flow = Flow.from_json(data, origin=filename)
        if not flow.name or flow.name == "flow":
            flow.name = Path(filename).stem or "opened"
        for nid, pos in canvas_positions(flow).items():  # the original format has no layout
            flow.nodes[nid].position = pos
        added = self._add(flow)
        warnings = len(getattr(flow, "import_warnings", []) or [])
        return f"opened {filename} as {added}" + (
            f" ({warnings} import warning(s))" if warnings else "")

    def _open_upload(self) -> str:
        data = self.open_input.value
        if not data:
            return ""
        return self.open_bytes(bytes(data), self.open_input.filename or "flow.json")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.name_input, self.new_button, self.save_as_button,
                                self.open_input, styles={"flex-wrap": "wrap"}),
                         self.message)

"""Panel components for kvmrpa (installed as ``kvmrpa.widgets``).

* :class:`LiveView` — live video of a source on a canvas: overlays, hold, zoom, click
  for a point, drag for a region, "save as template", console mode;
* :class:`NodeEditor` — a node's parameter form and "Run on current frame";
* :class:`RecorderControls` — Record / Secret toggles for a live view in console mode:
  the console's actions become a flow (``LiveView.record()`` from code);
* :class:`Indicator` — edit the selected node by pointing at a live view: a region
  becomes its roi, a click on text its target text, "Capture template" its template;
* :class:`FlowCanvas` — a flow on a drag-and-drop canvas (React Flow, bundled): palette,
  wiring per branch, undo/redo, auto-layout, problems on their node, live node states,
  breakpoint markers; click to select (the Debugger and the Dashboard use it);
* :class:`FlowView` — a flow's graph with live node states; click to select;
* :class:`FlowEditor` — add a node from the palette, connect, disconnect, delete, save;
* :class:`Debugger` — Run / Pause / Step / Continue / Stop, breakpoints, timeline,
  inspector;
* :class:`Dashboard` / :class:`DashboardApp` — the app-mode page ``kvmrpa serve`` shows.
* :class:`FleetDashboard` / :class:`FleetApp` — the grid of a fleet's targets
  (``kvmrpa serve --fleet FILE``): thumbnails, states, pass rates, start/stop.

Each works in JupyterLab, under ``panel serve`` and inside ipywidgets layouts through
``pn.ipywidget``. The streaming service they share (one JPEG encode per frame however
many viewers, none without viewers, never on the event loop) is
:mod:`kvmrpa.widgets._encoder`, which needs no UI package.

Importing this package makes every component render with no internet: BokehJS, Panel's
JS/CSS and kvmrpa's JS come from this installation (Panel's inline resources), and in a
Jupyter kernel Panel's notebook extension is loaded with them, so no ``pn.extension()``
cell is needed. Set ``KVMRPA_STREAM_CDN_RESOURCES=1`` (or ``[stream] cdn_resources =
true``) to load them from a CDN instead; ``PANEL_INLINE`` in the environment wins.
"""

from ._dashboard import Dashboard, DashboardApp
from ._debugger import Debugger
from ._encoder import EncodedFrame, FrameEncoder, FrameStreamer, get_encoder
from ._fleet import FleetApp, FleetDashboard, open_fleet_board
from ._flowcanvas import FlowCanvas
from ._floweditor import FlowEditor
from ._flowview import FlowView
from ._indicate import Indicator
from ._liveview import LiveView
from ._nodeeditor import NodeEditor
from ._overlays import draw_overlays, overlays_from
from ._recorder import RecorderControls
from ._resources import use_local_resources
from ._runstate import RunState, layered_layout

use_local_resources()

__all__ = [
    "Dashboard",
    "DashboardApp",
    "Debugger",
    "EncodedFrame",
    "FleetApp",
    "FleetDashboard",
    "FlowCanvas",
    "FlowEditor",
    "FlowView",
    "FrameEncoder",
    "FrameStreamer",
    "Indicator",
    "LiveView",
    "NodeEditor",
    "RecorderControls",
    "RunState",
    "draw_overlays",
    "get_encoder",
    "layered_layout",
    "open_fleet_board",
    "overlays_from",
    "use_local_resources",
]

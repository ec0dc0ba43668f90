"""The notebooks run top to bottom in a real kernel; every component renders through
``pn.ipywidget`` in a real kernel."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01-explore", "02-debug", "03-dashboard"]


def execute(nb: nbformat.NotebookNode, timeout: int = 150) -> nbformat.NotebookNode:
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def outputs_of(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean_and_says_what_it_needs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "What you need" in first.source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not cleared"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name: str) -> None:
    nb = execute(nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4))
    outs = outputs_of(nb)
    assert not [o for o in outs if o.get("output_type") == "error"]
    if name == "03-dashboard":
        text = "".join(o.get("text", "") for o in outs if o.get("output_type") == "stream")
        assert "scenario1" in text


IPYWIDGET_CELLS = [
    """import panel as pn
pn.extension()
import numpy as np
from kvmrpa import Frame
from kvmrpa.capture import open_source
from kvmrpa.engine import Flow
from kvmrpa.nodes import get_node_class
from kvmrpa.widgets import Dashboard, DashboardApp, Debugger, FlowView, LiveView, NodeEditor
source = open_source("sim://scenario1")
frame = source.wait_frame(timeout=15)
flow = Flow.load("flows/scenario1.json")
components = {
    "LiveView": LiveView(source),
    "NodeEditor": NodeEditor(get_node_class("ocr")(roi=(0, 0, 100, 50)), frame=frame),
    "FlowView": FlowView(flow),
    "Debugger": Debugger(flow),
    "Dashboard": DashboardApp("flows").view(),
}""",
    """widgets = {}
for name, component in components.items():
    widgets[name] = pn.ipywidget(component)
    display(widgets[name])
print({n: type(w).__name__ for n, w in widgets.items()})""",
    """import time
live = components["LiveView"]
deadline = time.monotonic() + 30
while live.frames_sent < 3 and time.monotonic() < deadline:
    time.sleep(0.1)
print("frames_sent", live.frames_sent)
assert live.frames_sent >= 3""",
]


@pytest.mark.timeout(300)
def test_components_render_as_ipywidgets_in_a_real_kernel() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in IPYWIDGET_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute(nb)
    outs = outputs_of(nb)
    assert not [o for o in outs if o.get("output_type") == "error"]
    views = [o for o in outs if o.get("output_type") == "display_data"
             and "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 5
    printed = "".join(o.get("text", "") for o in outs if o.get("output_type") == "stream")
    kinds = json.loads(printed.splitlines()[0].replace("'", '"'))
    assert set(kinds) == {"LiveView", "NodeEditor", "FlowView", "Debugger", "Dashboard"}
    assert all(k == "BokehModel" for k in kinds.values())
    assert "frames_sent" in printed

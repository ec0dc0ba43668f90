"""FlowCanvas in a JupyterLab notebook, with no internet: add a node from the palette,
wire it, run the flow from the Debugger and see the states on the canvas."""

from __future__ import annotations

import os
from collections.abc import Iterator

import nbformat
import pytest

from .conftest import Lab
from .test_canvas import add_from_palette, edge_count, node_ids, wire
from .test_jupyterlab import LabNotebook, node_states, wait_for

pytestmark = pytest.mark.browser

CELLS = [
    "import kvmrpa.widgets as kw\nfrom kvmrpa.engine import Flow",
    'flow = Flow("canvas_lab", source="sim://scenario1", input="sim://scenario1")\n'
    'flow.add("source", "grab", position=(0, 0))\n'
    "dbg = kw.Debugger(flow)\ndbg",
]


@pytest.fixture
def canvas_notebook(jupyterlab: Lab, chromium: object) -> Iterator[LabNotebook]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(jupyterlab.root / "canvas-lab.ipynb"))
    opened = LabNotebook(jupyterlab, chromium, "canvas-lab")
    try:
        opened.open()
        yield opened
    finally:
        opened.close()


def test_canvas_in_jupyterlab_add_wire_run(canvas_notebook: LabNotebook, artifacts_dir) -> None:
    nb = canvas_notebook
    p = nb.page
    nb.run_all()
    nb.wait_done()
    wait_for(lambda: node_ids(p) == ["grab"], timeout=60, what="the canvas drawn")
    p.get_by_label("Flow graph").scroll_into_view_if_needed()
    added = add_from_palette(p, "ocr", 320, 80)
    wire(p, "grab", added)
    assert edge_count(p) == 1
    p.get_by_role("button", name="Run once", exact=True).click()
    wait_for(lambda: node_states(p) == {"grab": "done", added: "done"}, timeout=120,
             what=f"states on the canvas (now {node_states(p)})")
    p.get_by_label("Flow graph").screenshot(
        path=os.path.join(artifacts_dir, "jupyterlab-canvas-ran.png"))
    nb.assert_clean()

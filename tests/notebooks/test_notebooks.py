"""The notebooks run top to bottom in a real kernel, twice in the same kernel (a second
"Run all"), in a copy of the notebooks folder; every component renders through
``pn.ipywidget`` in a real kernel. (What a person sees in JupyterLab is tested in
``tests/browser/test_jupyterlab.py``.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01-explore", "02-debug", "03-dashboard"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the notebooks folder (the notebooks write ``my-flows/`` beside them)."""
    root = tmp_path_factory.mktemp("notebooks") / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints",
                                                                   "my-flows"))
    return root


def execute(nb: nbformat.NotebookNode, path: Path, timeout: int = 150,
            times: int = 1) -> list[nbformat.NotebookNode]:
    """Run every cell ``times`` times over in one kernel; the outputs of each run."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path)}})
    runs = []
    with client.setup_kernel():
        for _ in range(times):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            runs.append(nbformat.from_dict(json.loads(json.dumps(nb))))
    return runs


def outputs_of(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def printed(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in outputs_of(nb) if o.get("output_type") == "stream")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean_and_says_what_it_teaches(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    for heading in ("What you will learn", "Time:", "What you need"):
        assert heading in first.source, f"{name}: the first cell lacks {heading!r}"
    assert "minute" in first.source
    sources = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "pn.extension" not in sources, f"{name}: kvmrpa.widgets loads Panel by itself"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not cleared"


@pytest.mark.timeout(600)
def test_the_notebooks_tell_one_story_and_run_twice_in_one_kernel(workdir: Path) -> None:
    """01 saves the flow, 02 debugs that file, 03 serves the folder holding it; each
    notebook runs twice in the same kernel."""
    for name in NAMES:
        nb = nbformat.read(workdir / f"{name}.ipynb", as_version=4)
        runs = execute(nb, workdir, times=2)
        for i, run in enumerate(runs, 1):
            errors = [o for o in outputs_of(run) if o.get("output_type") == "error"]
            assert not errors, f"{name}, run {i}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        text = printed(runs[-1])
        if name == "01-explore":
            saved = workdir / "my-flows" / "confirm.json"
            assert saved.is_file() and "saved my-flows/confirm.json" in text
        elif name == "02-debug":
            assert "not found" not in text and "ok ok" in text
        else:
            assert "['confirm']" in text


IPYWIDGET_CELLS = [
    """import panel as pn
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
def test_components_render_as_ipywidgets_in_a_real_kernel(workdir: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in IPYWIDGET_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (nb,) = execute(nb, workdir)
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

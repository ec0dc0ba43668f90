"""``widgets/_commqueue.js`` in Chromium: the kernel's messages for a notebook output
wait, in order, until the output's views are in ``Bokeh.index``, and the queue is
bounded. The comm manager and ``Bokeh.index`` are stand-ins with the shapes Panel's
page side uses (``register_target(plot_id, comm_id, handler)``, ``plot_id in index``);
the JupyterLab tests run the script with the real ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from kvmrpa.widgets._resources import fallback_html

from .conftest import Page

pytestmark = pytest.mark.browser

SCRIPT = (Path(__file__).resolve().parents[2] / "widgets" / "_commqueue.js").read_text()

STAND_INS = """
window.delivered = [];
window.Bokeh = {index: {}};
function Manager() {}
Manager.prototype.register_target = function (plotId, commId, handler) {
  this.targets = this.targets || {};
  this.targets[plotId] = handler;
};
window.PyViz = {comm_manager: new Manager(), plot_index: {}};
"""


def _install(page: Page) -> None:
    page.page.set_content("<html><body></body></html>")
    page.page.evaluate(STAND_INS)
    page.page.add_script_tag(content=SCRIPT)
    page.page.evaluate("""() => PyViz.comm_manager.register_target('p1', 'c1',
        (msg) => window.delivered.push(msg))""")


def test_messages_wait_for_the_views_then_arrive_in_order(page: Page) -> None:
    _install(page)
    p = page.page
    p.evaluate("() => { for (const m of ['header', 'meta', 'content']) "
               "PyViz.comm_manager.targets.p1(m) }")
    p.wait_for_timeout(200)
    assert p.evaluate("() => window.delivered") == []  # views not built: held
    p.evaluate("() => { Bokeh.index.p1 = {}; PyViz.comm_manager.targets.p1('buffer') }")
    p.wait_for_function("() => window.delivered.length === 4")
    assert p.evaluate("() => window.delivered") == ["header", "meta", "content", "buffer"]
    p.evaluate("() => PyViz.comm_manager.targets.p1('next')")  # built: straight through
    assert p.evaluate("() => window.delivered.at(-1)") == "next"
    assert page.errors == []


def test_installed_once_per_manager_and_bounded(page: Page) -> None:
    _install(page)
    p = page.page
    p.add_script_tag(content=SCRIPT)  # a second output's copy: not wrapped twice
    p.evaluate("() => PyViz.comm_manager.register_target('p2', 'c2', "
               "(m) => window.delivered.push(m))")
    p.evaluate("() => { for (let i = 0; i < 2001; i++) PyViz.comm_manager.targets.p2(i) }")
    p.evaluate("() => { Bokeh.index.p2 = {}; PyViz.comm_manager.targets.p2('after') }")
    p.wait_for_function("() => window.delivered.includes('after')")
    # the 2,001st message found the queue full: the queue was dropped, with a warning
    assert p.evaluate("() => window.delivered") == ["after"]


def test_big_buffers_are_bounded_and_a_removed_output_is_not_waited_for(page: Page) -> None:
    _install(page)
    p = page.page
    # frames of 1 MB each: the queue holds at most 32 MB of buffers; the 33rd (n=32)
    # overflows it and goes with it, the rest wait
    p.evaluate("""() => { for (let i = 0; i < 40; i++)
        PyViz.comm_manager.targets.p1({n: i, buffers: [new ArrayBuffer(1 << 20)]}) }""")
    p.evaluate("() => { Bokeh.index.p1 = {} }")
    p.wait_for_function("() => window.delivered.length > 0")
    assert p.evaluate("() => window.delivered.map(m => m.n)") == list(range(33, 40))
    # the output's views are removed (its cell was run again): its messages are not held
    p.evaluate("() => { delete Bokeh.index.p1; PyViz.comm_manager.targets.p1('late') }")
    assert p.evaluate("() => window.delivered.at(-1)") == "late"


def test_every_component_output_carries_it() -> None:
    out = fallback_html("note-1", "root-1")
    assert out.index(SCRIPT.strip()[:40]) < out.index('id="note-1"')

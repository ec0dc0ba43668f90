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


BOKEH_JS = Path(__import__("bokeh").__file__).parent / "server" / "static" / "js"
PANEL_JS = Path(__import__("panel").__file__).parent / "dist" / "panel.min.js"

# Panel's own CommManager (BokehJS and Panel's bundle as the notebook loads them), its
# comm manager stood in for: the first registration of a comm keeps it (a comm that is
# open already is not handed to a later registration, as in JupyterLab).
REAL_MANAGER = """
window.Bokeh.index = window.Bokeh.index || {};
function Manager() { this.targets = {} }
Manager.prototype.register_target = function (plotId, commId, handler) {
  this.targets[plotId] = this.targets[plotId] || handler;
};
Manager.prototype.get_client_comm = function () {
  return {active: true, connected: true, send: function () {}};
};
window.PyViz = {comm_manager: new Manager(), plot_index: {}, kernels: {}};
window.fragment = function (data) {
  return typeof data === "string" ? {content: {data: data}, metadata: {}, buffers: []}
    : {content: {data: {}}, metadata: {}, buffers: [new DataView(data)]};
};
window.message = function (id, buffers) {
  var out = [JSON.stringify({msgid: id, msgtype: "PATCH-DOC", num_buffers: buffers}),
             "{}", JSON.stringify({events: []})];
  for (var i = 0; i < buffers; i++) out.push(JSON.stringify({id: id + "-b" + i}), new ArrayBuffer(8));
  return out.map(window.fragment);
};
"""


def test_an_output_drawn_again_joins_its_comm_between_messages(page: Page) -> None:
    """JupyterLab draws an output again with the same id: the second CommManager joins
    the first's comm (Panel hands it every message) possibly in the middle of a
    message. It starts at the next message instead of reading the rest as a new one."""
    p = page.page
    p.set_content("<html><body></body></html>")
    for name in ("bokeh.min.js", "bokeh-widgets.min.js", "bokeh-tables.min.js"):
        p.add_script_tag(path=str(BOKEH_JS / name))
    p.add_script_tag(path=str(PANEL_JS))
    p.evaluate(REAL_MANAGER)
    p.add_script_tag(content=SCRIPT)
    got = p.evaluate("""async () => {
      const CM = Bokeh.Models.get("panel.models.comm_manager.CommManager")
      for (let i = 0; i < 40 && !CM.prototype.__kvmrpaInStep; i++)
        await new Promise((r) => setTimeout(r, 50))
      Bokeh.index.p1 = {}
      const first = new CM({plot_id: "p1", comm_id: "c1", client_comm_id: "k1"})
      const send = (m) => PyViz.comm_manager.targets.p1(m)
      const one = message("m1", 1)
      send(one[0]); send(one[1])
      const second = new CM({plot_id: "p1", comm_id: "c1", client_comm_id: "k1"})
      one.slice(2).forEach(send)              // second joined mid-way through m1
      const seen = {first: [], second: []}
      const note = () => {
        for (const [k, v] of [["first", first], ["second", second]]) {
          const m = v._receiver.message
          if (m != null) seen[k].push(m.header.msgid)
        }
      }
      note()
      message("m2", 2).forEach(send); note()
      message("m3", 0).forEach(send); note()
      return {wrapped: !!CM.prototype.__kvmrpaInStep, seen}
    }""")
    assert got["wrapped"]
    assert got["seen"]["first"] == ["m1", "m2", "m3"]
    assert got["seen"]["second"] == ["m2", "m3"]  # m1 skipped, whole messages after it
    assert page.errors == []

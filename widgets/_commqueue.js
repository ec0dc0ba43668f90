// Keeps the kernel's messages for a notebook output until the page can read them, and
// every view of an output reading them in step.
//
// Panel's page side (its CommManager) opens an output's comm as soon as it has read the
// output's document, but drops every message that arrives before the output's views are
// built and registered in Bokeh.index (a dashboard with the flow canvas takes a while to
// load its module). A dropped fragment puts the next message out of step ("Expected text
// fragment but received binary fragment", "s is not iterable") and the output stops
// updating. Wrapped here: the comm manager's register_target queues an output's
// messages, in order, until its plot is in Bokeh.index, then hands them on. An output
// whose views were built and are gone again (a re-run cell replaced it) is not waited
// for: its messages go straight on, and Panel drops them as before. The queue is
// bounded (MAX_QUEUED messages, MAX_BYTES of buffers, MAX_WAIT_MS): past any, it is
// dropped with one console warning. Installed once per comm manager (Panel makes a new
// one when its extension is loaded again); idempotent.
//
// Each Bokeh message is several comm messages (header, metadata, content, then a text
// and a binary fragment per buffer), and every CommManager of an output (JupyterLab
// draws an output again with the same id: a second one joins the first's comm) feeds
// them to its own receiver. One that joins between two fragments, or missed one, would
// read the rest of that message as the start of the next, and every message after it
// out of step. So CommManager.msg_handler is wrapped once: a receiver starts afresh at
// each header (the fragment that starts {"msgid":) and skips fragments of a message
// whose header it did not see.
(function () {
  var MAX_QUEUED = 2000, MAX_BYTES = 32 * 1024 * 1024, MAX_WAIT_MS = 120000, POLL_MS = 20;
  var PyViz = window.PyViz;
  var manager = PyViz && PyViz.comm_manager;
  if (!manager || manager.__kvmrpaQueued) return;
  manager.__kvmrpaQueued = true;
  var register = manager.register_target;
  function viewsBuilt(plotId) {
    var Bokeh = window.Bokeh;
    return !!(Bokeh && Bokeh.index && plotId in Bokeh.index) ||
           !!(PyViz.plot_index && PyViz.plot_index[plotId] != null);
  }
  manager.register_target = function (plotId, commId, handler) {
    var queue = [], bytes = 0, timer = null, since = 0, built = false;
    function flush() {
      bytes = 0;
      while (queue.length) {
        try { handler(queue.shift()); } catch (e) { console.error(e); }
      }
    }
    function poll() {
      if (viewsBuilt(plotId)) {
        built = true; clearInterval(timer); timer = null; flush();
      } else if (Date.now() - since > MAX_WAIT_MS) {
        clearInterval(timer); timer = null;
        console.warn("kvmrpa: output " + plotId + " was never drawn; dropped " +
                     queue.length + " queued messages");
        queue = []; bytes = 0;
      }
    }
    function size(msg) {
      var n = 0, buffers = msg && msg.buffers;
      for (var i = 0; buffers && i < buffers.length; i++) {
        n += (buffers[i] && (buffers[i].byteLength || (buffers[i].buffer && buffers[i].buffer.byteLength))) || 0;
      }
      return n;
    }
    function queued(msg) {
      if (!queue.length && (built || viewsBuilt(plotId))) { built = true; handler(msg); return; }
      var n = size(msg);
      if (queue.length >= MAX_QUEUED || bytes + n > MAX_BYTES) {
        console.warn("kvmrpa: output " + plotId + " not drawn after " + queue.length +
                     " messages; dropping its queue");
        queue = []; bytes = 0;
        return;
      }
      queue.push(msg); bytes += n;
      if (timer === null) { since = Date.now(); timer = setInterval(poll, POLL_MS); }
    }
    return register.call(this, plotId, commId, queued);
  };
})();
(function () {
  var QUALIFIED = "panel.models.comm_manager.CommManager", tries = 0;
  function isHeader(data) {
    return typeof data === "string" && data.slice(0, 9) === '{"msgid":';
  }
  function wrap(proto) {
    if (proto.__kvmrpaInStep) return;
    proto.__kvmrpaInStep = true;
    var handle = proto.msg_handler;
    proto.msg_handler = function (msg) {
      var kind = msg && msg.metadata && msg.metadata.msg_type;
      var data = msg && msg.content && msg.content.data;
      if (kind === "Ready" || kind === "Error") {  // no fragment: Panel reads its metadata
        return handle.call(this, msg);
      }
      if (isHeader(data)) {
        var header = null;
        try { header = JSON.parse(data); } catch (e) { header = null; }
        // the fragments that follow: metadata, content, two per buffer
        this.__kvmrpaLeft = 2 + 2 * ((header && header.num_buffers) || 0);
        this._receiver = new Bokeh.protocol.Receiver();
      } else if (!(this.__kvmrpaLeft > 0)) {
        return;  // a fragment of a message whose header this view did not see
      } else {
        this.__kvmrpaLeft -= 1;
      }
      try {
        return handle.call(this, msg);
      } catch (e) {
        this.__kvmrpaLeft = 0;  // the rest of this message is skipped; the next starts afresh
        throw e;
      }
    };
  }
  function install() {
    var Models = window.Bokeh && window.Bokeh.Models;
    var CM = Models && typeof Models.get === "function" ? Models.get(QUALIFIED) : null;
    if (CM && CM.prototype && CM.prototype.msg_handler) { wrap(CM.prototype); return; }
    if (++tries < 2400) setTimeout(install, 50);  // until Panel's bundle is loaded (2 min)
  }
  install();
})();

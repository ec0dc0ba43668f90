"""LiveView: live video of a FrameSource drawn on a canvas, with overlays and input.

The browser side (``_liveview.js``) draws JPEG frames on a ``<canvas aria-label="Live
view">`` whose ``data-frame-seq`` is the seq of the frame on screen. Under a server with
the frame route (:mod:`kvmrpa.widgets._frameroute`, as ``kvmrpa serve`` has) each
displayed model gets a token for it and frames travel there, one binary websocket
message each; elsewhere (notebooks), and for a model until its route socket is open,
they travel as binary buffers in Panel's custom messages (no base64). The Python side
runs one :class:`~kvmrpa.widgets._encoder.FrameStreamer` while at least one view of the
component is displayed and not held; every viewer of the same source and size shares
one JPEG encode. A frame travels whole or as patches, JPEGs of what changed since the
frame the view has (see :class:`~kvmrpa.widgets._encoder.FrameStreamer`); a view that
cannot draw a patch over its picture drops it and asks for a whole frame.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from pathlib import Path
from typing import Any, ClassVar

import param
from panel.custom import JSComponent

from kvmrpa._errors import KvmrpaError, VisionError
from kvmrpa._frame import Frame
from kvmrpa._runtime import get_runtime
from kvmrpa._settings import get_settings
from kvmrpa.capture import FrameSource
from kvmrpa.kvm import InputDriver
from kvmrpa.kvm.keys import browser_key  # the key table's browser names

from ._auth import require, requires
from ._encoder import EncodedFrame, FrameStreamer
from ._frameroute import (
    PATH,
    SUBPROTOCOL,
    FrameSocket,
    Grant,
    frame_packet,
    grant,
    route_installed,
)
from ._overlays import overlays_from
from ._params import BrowserParams
from ._recorder import RecordingMixin
from ._resources import NotebookFallback

__all__ = ["LiveView", "browser_key"]

log = logging.getLogger("kvmrpa.widgets.liveview")


def _base_url() -> str:
    """The server's base URL of the current session (``/`` without a prefix)."""
    from panel.io.state import state

    return str(state.base_url or "/")


def frame_message(enc: EncodedFrame, stream: int = 0) -> dict[str, Any]:
    """The custom message carrying one frame; ``jpeg`` is sent as a binary buffer.

    ``stream`` numbers the streamer that sent it: seqs only increase within one stream,
    so the browser drops an older frame only when it comes from the same stream (after
    the view switches to another source, whose seqs may be lower, frames still show).
    """
    msg: dict[str, Any] = {
        "kind": "frame", "stream": stream, "seq": enc.seq, "jpeg": enc.jpeg, "width": enc.width,
        "height": enc.height, "frame_width": enc.frame_width,
        "frame_height": enc.frame_height, "wall": enc.wall,
    }
    if enc.base_seq is not None:  # patches over frame base (see EncodedFrame)
        msg["base"] = enc.base_seq
        msg["patches"] = [{"x": p.x, "y": p.y, "w": p.width, "h": p.height, "jpeg": p.jpeg}
                          for p in enc.patches]
    return msg


class LiveView(RecordingMixin, NotebookFallback, BrowserParams, JSComponent):
    """Live video of a source on a canvas, with overlays, hold, zoom, point and region.

    Click the video to set :attr:`point`, drag to set :attr:`region` (both in frame
    pixels). :meth:`show` draws vision results over the video. With :attr:`console`
    on, mouse and keyboard events on the view are sent to :attr:`driver`; pointer
    positions are frame pixels, and the driver's ``frame_size`` is kept equal to the size
    of the source's latest frame so that they land on the right target pixel.
    :meth:`record` records the console's actions as a flow (``stop_recording()``).
    """

    source = param.ClassSelector(class_=FrameSource, default=None, doc="""
        The frame source shown (a started FrameSource, e.g. from kvmrpa.capture.open_source).""")
    driver = param.ClassSelector(class_=InputDriver, default=None, doc="""
        Input driver that console mode forwards mouse and keyboard events to.""")
    paused = param.Boolean(default=False, doc="""
        Hold the picture: no frame is encoded or sent while held.""")
    zoom = param.Number(default=1.0, bounds=(0.25, 8.0), doc="""
        Displayed size relative to the width of the view (1 = fit).""")
    console = param.Boolean(default=False, doc="""
        Forward mouse and keyboard events on the view to the input driver.""")
    point = param.NumericTuple(default=None, length=2, allow_None=True, doc="""
        The last point clicked on the video, (x, y) in frame pixels.""")
    region = param.NumericTuple(default=None, length=4, allow_None=True, doc="""
        The last region dragged on the video, (x, y, w, h) in frame pixels; usable as a
        crop or OCR region.""")
    overlays = param.List(default=[], item_type=dict, doc="""
        Shapes drawn over the video: dicts with kind (text, match, detection, point,
        region), bbox (x, y, w, h in frame pixels) and label. See show().""")
    quality = param.Integer(default=None, allow_None=True, bounds=(1, 100), doc="""
        JPEG quality of the stream; None uses settings.stream.jpeg_quality.""")
    fps = param.Number(default=None, allow_None=True, bounds=(0.5, 120), doc="""
        Display frame-rate cap; None uses settings.stream.display_fps.""")
    view_width = param.Integer(default=0, bounds=(0, None), doc="""
        Displayed width in device pixels, reported by the browser; frames are
        downscaled to it.""")
    fit: param.Selector[str] = param.Selector(default="auto", objects=["auto", "width", "contain"], doc="""
        How the video fills the view, always at the frame's proportions: 'width' fills the
        width (the view is as tall as the picture), 'contain' shows the whole frame inside
        the view's height and width; 'auto' contains when the view's height is bound
        (height, max_height or a sizing mode that stretches the height), else fills the
        width.""")
    height_bound = param.Boolean(default=False, doc="""
        Whether the view's height is bound (derived from height, max_height and
        sizing_mode; 'auto' fit contains the frame then).""")
    frame_route = param.Boolean(default=True, doc="""
        Send frames on the server's frame route (a websocket of their own) where the
        server has one; off, or where it has none, frames travel in Bokeh messages.""")

    _esm: ClassVar[str] = "_liveview.js"
    _rename: ClassVar[dict[str, str | None]] = {"source": None, "driver": None,
                                                "quality": None, "fps": None,
                                                "frame_route": None}

    def __init__(self, source: FrameSource | None = None, **params: Any) -> None:
        params.setdefault("sizing_mode", "stretch_width")
        params.setdefault("min_height", 200)
        super().__init__(source=source, **params)
        self._streamer: FrameStreamer | None = None
        self._stream_id = 0  # numbers the streamers, see frame_message
        self._stream_lock = threading.Lock()
        self._pending_input = 0
        # Made on the runtime loop (again if the runtime was restarted with a new loop).
        self._input_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.frames_sent = 0
        self.last_sent: EncodedFrame | None = None
        #: Route grants by model ref, and the sockets open on them (see _frameroute).
        self._grants: dict[str, Grant] = {}
        self._sockets: dict[str, FrameSocket] = {}
        self.param.watch(self._update_streaming, ["paused", "source"])
        self.param.watch(self._update_height_bound, ["height", "max_height", "sizing_mode"])
        self._update_height_bound()

    def _update_height_bound(self, *_: Any) -> None:
        mode = self.sizing_mode or ""
        self.height_bound = bool(self.height or self.max_height
                                 or mode in ("stretch_height", "stretch_both", "scale_height",
                                             "scale_both"))

    # -- streaming ------------------------------------------------------------------
    @property
    def watching(self) -> bool:
        """True while some view of this component is displayed and it is not held."""
        return bool(self._models) and not self.paused and self.source is not None

    @property
    def streaming(self) -> bool:
        s = self._streamer
        return s is not None and s.running

    def _update_streaming(self, *_: Any) -> None:
        with self._stream_lock:
            want = self.watching
            s = self._streamer
            if s is not None and (not want or s.source is not self.source):
                s.stop()
                self._streamer = s = None
            if want and s is None and self.source is not None:
                self._stream_id += 1
                self._streamer = FrameStreamer(
                    self.source, functools.partial(self._send_frame, stream=self._stream_id),
                    width=lambda: self.view_width or None,
                    quality=lambda: self.quality, fps=lambda: self.fps, max_in_flight=4)
                self._streamer.start()

    def _send_frame(self, enc: EncodedFrame, stream: int = 0) -> None:
        self.frames_sent += 1
        self.last_sent = enc
        with self._stream_lock:
            sockets = list(self._sockets.values())
            models = len(self._models)
        if sockets:
            packet = frame_packet(enc, stream)
            for sock in sockets:
                sock.offer(packet, whole=enc.whole)
        if models > len(sockets):  # a model without a route socket (yet): Bokeh's path
            self._send_msg(frame_message(enc, stream))

    @property
    def route_sockets(self) -> int:
        """How many displayed models receive frames on the frame route."""
        return len(self._sockets)

    # -- the frame route (see _frameroute) -------------------------------------------
    def _offer_route(self, model: Any) -> None:
        """Grant ``model`` (a displayed model of this view that said hello) a token for
        the frame route and send it that token, where the server has the route."""
        doc = getattr(model, "document", None)
        ctx = getattr(doc, "session_context", None) if doc is not None else None
        if not self.frame_route or not route_installed() or doc is None or ctx is None:
            return
        ref = next((r for r, (m, _) in list(self._models.items()) if m is model), None)
        if ref is None:
            return
        from panel.io.state import set_curdoc
        from panel.models.esm import ESMEvent

        from kvmrpa._auth import role_at_least

        from ._auth import ACTIONS, current_principal

        request = getattr(ctx, "request", None)
        cookies = getattr(request, "cookies", None) or {}
        with set_curdoc(doc):
            who = current_principal()
            base = _base_url()
        if not role_at_least(who.role, ACTIONS["watch"]):  # fails closed, as the page does
            return
        with self._stream_lock:
            g = self._grants.get(ref)
            if g is None or g.revoked:
                g = self._grants[ref] = grant(self, ref, cookies.get("user"), who.user)
        event = ESMEvent(model=model, data={
            "kind": "route", "path": base.rstrip("/") + PATH, "protocol": SUBPROTOCOL,
            "token": g.token})
        doc.add_next_tick_callback(functools.partial(doc.callbacks.send_event, event))

    def _route_attached(self, g: Grant) -> None:
        with self._stream_lock:
            if self._grants.get(g.ref) is not g or g.socket is None:
                return
            self._sockets[g.ref] = g.socket
            s = self._streamer
        if s is not None:  # its first frame on the route is drawn over nothing
            s.want_keyframe()

    def _route_detached(self, g: Grant) -> None:
        with self._stream_lock:
            if self._grants.get(g.ref) is g:
                self._sockets.pop(g.ref, None)

    def _route_ack(self, seq: int) -> None:
        s = self._streamer
        if s is not None:
            s.ack(seq)

    def _revoke(self, ref: str | None = None) -> None:
        """Revoke the route grant of model ``ref`` (None: all), closing its socket."""
        with self._stream_lock:
            refs = list(self._grants) if ref is None else [ref]
            gone = [g for r in refs if (g := self._grants.pop(r, None)) is not None]
            for r in refs:
                self._sockets.pop(r, None)
        for g in gone:
            g.revoke()

    def _process_event(self, event: Any) -> None:
        data = getattr(event, "data", None)
        if isinstance(data, dict) and data.get("kind") == "hello":
            try:
                self._offer_route(event.model)
            except Exception:  # the page still gets frames on Bokeh's path
                log.exception("live view: cannot offer the frame route")
        super()._process_event(event)

    def _get_model(self, doc: Any, root: Any = None, parent: Any = None, comm: Any = None) -> Any:
        model = super()._get_model(doc, root, parent, comm)
        self._update_streaming()
        return model

    def _cleanup(self, root: Any = None) -> None:
        super()._cleanup(root)
        if root is not None:
            self._revoke(root.ref["id"])
        self._update_streaming()

    def close(self) -> None:
        """Stop streaming and close the frame route's sockets (the view can be shown
        again later: a page that says hello again gets a new grant)."""
        with self._stream_lock:
            if self._streamer is not None:
                self._streamer.stop()
                self._streamer = None
        self._revoke()

    # -- messages from the browser ---------------------------------------------------
    def _handle_msg(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        kind = data.get("kind")
        if kind == "ack":
            s = self._streamer
            if s is not None:
                s.ack(int(data.get("seq", 0)))
        elif kind in ("hello", "keyframe"):  # a new view, or one that lost a patch
            self._update_streaming()
            s = self._streamer
            if s is not None:
                s.want_keyframe()
        elif kind == "point":
            self.point = (float(data["x"]), float(data["y"]))
        elif kind == "region":
            w, h = float(data["w"]), float(data["h"])
            if w >= 1 and h >= 1:
                self.region = (float(data["x"]), float(data["y"]), w, h)
        elif kind in ("mouse", "key", "wheel") and self.console:
            self.forward_input(data)
        elif kind == "save_template":
            try:
                path = self.save_template(str(data.get("name", "")))
            except KvmrpaError as exc:
                self._send_msg({"kind": "note", "text": str(exc)})
            else:
                self._send_msg({"kind": "note", "text": f"saved {path.name}"})

    # -- console mode ----------------------------------------------------------------
    @requires("console")
    def forward_input(self, event: dict[str, Any]) -> bool:
        """Send one browser input event to :attr:`driver` on the runtime loop.

        Returns False when it was dropped (no driver, unknown key, or a pointer move
        while the previous action is still in flight). Events reach the driver one at a
        time, in the order they came from the browser.
        """
        drv = self.driver
        if drv is None:
            return False
        kind, action = event.get("kind"), event.get("action")
        if self.recorder is not None and action != "move":
            self._record_input(event, self.current_frame())  # see record()
        if kind == "mouse" and action == "move" and self._pending_input > 0:
            return False
        if self._pending_input > 32:
            log.warning("console: input to %s is backed up; dropping %s %s",
                        drv.display_url, kind, action)
            return False

        async def send() -> None:
            # Sends start in submission order and this lock is FIFO, so one event's
            # steps (move, then press) are never interleaved with the next event's.
            loop = asyncio.get_running_loop()
            if self._input_lock is None or self._input_lock[0] is not loop:
                self._input_lock = (loop, asyncio.Lock())
            try:
                async with self._input_lock[1]:
                    await deliver()
            except KvmrpaError as exc:
                log.warning("console: %s", exc)
            finally:
                self._input_done()

        async def deliver() -> None:
            if kind in ("mouse", "wheel"):
                self._sync_frame_size(drv)
            if kind == "mouse":
                x, y = float(event["x"]), float(event["y"])
                button = event.get("button", "left")
                await drv.move(x, y)
                if action == "down":
                    await drv.press(button)
                elif action == "up":
                    await drv.release(button)
            elif kind == "wheel":
                await drv.scroll(int(event.get("dy", 0)), x=float(event["x"]),
                                 y=float(event["y"]))
            elif kind == "key":
                name = browser_key(str(event.get("key", "")))
                if name is None:
                    return
                if len(name) == 1 and not name.isascii():
                    if action == "down":  # a character no key of the table types
                        await drv.type_text(name)
                elif action == "down":
                    await drv.key_down(name)
                else:
                    await drv.key_up(name)

        if kind == "key" and browser_key(str(event.get("key", ""))) is None:
            return False
        with self._stream_lock:
            self._pending_input += 1
        try:
            get_runtime().submit(send())
        except KvmrpaError:
            self._input_done()
            return False
        return True

    def _sync_frame_size(self, drv: InputDriver) -> None:
        """Make the driver map from the size of the frames shown now.

        Pointer coordinates from the view are pixels of the source's frames; the driver
        maps them to the target through its ``frame_size``. A capture whose resolution
        changed (or a driver opened before the first frame) is caught up here.
        """
        frame = self.current_frame()
        if frame is not None and drv.frame_size != frame.size:
            was = "unset" if drv.frame_size is None else "{}x{}".format(*drv.frame_size)
            log.info("console: %s now maps from %dx%d frames (was %s)", drv.display_url,
                     frame.width, frame.height, was)
            drv.frame_size = frame.size

    def _input_done(self) -> None:
        with self._stream_lock:
            self._pending_input -= 1

    # -- results and templates -------------------------------------------------------
    def show(self, *results: Any, point: tuple[float, float] | None = None) -> None:
        """Draw vision results (TextBoxes, Matches, Detections, single results, overlay
        dicts) and optionally a point over the video; replaces the previous overlays."""
        self.overlays = overlays_from(*results, point=point)

    def clear(self) -> None:
        """Remove the overlays, the point and the region."""
        self.param.update(overlays=[], point=None, region=None)

    def current_frame(self) -> Frame | None:
        """The newest frame of the source (``None`` before the first one)."""
        return None if self.source is None else self.source.latest()

    def snapshot(self, region: bool = False) -> Frame | None:
        """The newest frame, cropped to :attr:`region` when ``region`` is true."""
        frame = self.current_frame()
        if frame is None or not region or self.region is None:
            return frame
        x, y, w, h = (round(v) for v in self.region)
        crop = frame.image[max(0, y):y + h, max(0, x):x + w]
        if crop.size == 0:
            where = self.source.display_url if self.source is not None else "no source"
            raise VisionError(f"live view of {where}: region {self.region} "
                              f"is outside the {frame.width}x{frame.height} frame")
        ox, oy = frame.to_source(max(0, x), max(0, y))  # a scaled frame's crop too
        return frame.derive(crop, offset=(round(ox), round(oy)))

    def save_template(self, name: str, folder: str | Path | None = None) -> Path:
        """Write the current :attr:`region` of the newest frame as template ``name``:
        ``<folder>/<name>.png`` with its metadata (kvmrpa.vision's Template format, plus
        a sidecar ``<name>.json``). Returns the PNG path.

        ``folder`` defaults to settings.store.templates_dir.
        """
        from kvmrpa.vision import Template

        require("template", name)
        if not name or any(c in name for c in "/\\:") or name.startswith("."):
            raise VisionError(f"template name {name!r} must be a plain file name")
        if self.region is None:
            raise VisionError(f"live view: draw a region before saving template {name!r}")
        frame = self.current_frame()
        if frame is None:
            raise VisionError(f"live view: no frame yet to save template {name!r} from")
        x, y, w, h = (round(v) for v in self.region)
        template = Template.from_frame(frame, (x, y, w, h), name=name)
        folder = Path(folder) if folder is not None else get_settings().store.templates_dir
        png = template.save(folder / f"{name}.png", sidecar=True)
        log.info("template %s saved to %s (seq %d of %s)", name, png, frame.seq,
                 self.source.display_url if self.source is not None else "?")
        return png

"""Recording from a live view's console: the Record / Secret controls and the live
view's hook.

:class:`RecordingMixin` gives :class:`~kvmrpa.widgets.LiveView` ``record()`` /
``stop_recording()`` and feeds its console events, with the frame on screen, to an
engine :class:`~kvmrpa.engine.Recorder` while one records. :class:`RecorderControls`
shows, while the view is in console mode, a Record toggle, a Secret toggle with the
name of the environment variable the typed text becomes, and the recording's progress.
Stopping builds the flow in a worker thread (it reads the recorded frames) and hands it
to :attr:`RecorderControls.flow` and to ``on_recorded(flow)``. Recording needs the
``edit`` permission (it makes a flow); console input needs ``console``.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from kvmrpa._errors import FlowStateError, KvmrpaError
from kvmrpa._redact import plain_secret_in_url
from kvmrpa._runtime import get_runtime
from kvmrpa.engine import Flow, Recorder

from ._auth import can, require
from ._markup import LiveHTML
from ._push import Pusher

__all__ = ["RecorderControls", "RecordingMixin"]

log = logging.getLogger("kvmrpa.widgets.recorder")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _plain_url(obj: Any) -> str | None:
    """The URL of a source or driver, unless it holds a secret in plain text."""
    url = getattr(obj, "url", None)
    if not isinstance(url, str) or plain_secret_in_url(url) is not None:
        return None
    return url


class RecordingMixin:
    """The live view's side of recording (``record`` / ``stop_recording``, the hook)."""

    #: The recorder fed with this view's console events while it records.
    recorder: Recorder | None = None

    def record(self, name: str = "recording", **params: Any) -> Recorder:
        """Start recording this view's console actions as flow ``name``; returns the
        :class:`~kvmrpa.engine.Recorder` (``stop_recording()`` ends it). ``params`` go
        to the recorder (``source_url``, ``input_url``, ``template_dir``…; the URLs
        default to the view's source and driver)."""
        require("edit", name)
        current = self.recorder
        if current is not None and current.recording:
            raise FlowStateError(f"live view: already recording {current.name!r}", flow=name)
        source = getattr(self, "source", None)
        params.setdefault("source_url", _plain_url(source))
        params.setdefault("input_url", _plain_url(getattr(self, "driver", None)))
        self.recorder = Recorder(source, name=name, **params)
        return self.recorder

    def stop_recording(self) -> Flow | None:
        """End the recording and return its flow (blocking: it reads the recorded
        frames); None when nothing was recorded."""
        rec = self.recorder
        return None if rec is None else rec.stop()

    def _record_input(self, event: dict[str, Any], frame: Any) -> None:
        """Feed one console event (and the frame on screen) to the recorder."""
        rec = self.recorder
        if rec is None or not rec.recording:
            return
        try:
            rec.feed(event, frame)
        except KvmrpaError as exc:
            log.warning("recorder: %s", exc)


class RecorderControls(pn.viewable.Viewer):
    """Record / Secret toggles for a live view, shown while it is in console mode."""

    view = param.Parameter(default=None, doc="The LiveView whose console is recorded.")
    name = param.String(default="recorded", doc="Name given to the recorded flows.")
    template_dir = param.String(default="", doc="""
        Folder for template anchors; empty: the recorder's default.""")
    flow = param.ClassSelector(class_=Flow, default=None, allow_None=True, doc="""
        The last flow recorded (set when a recording stops and its flow is built).""")

    def __init__(self, view: Any = None, *,
                 on_recorded: Callable[[Flow], None] | None = None,
                 recorder_params: Callable[[], dict[str, Any]] | None = None,
                 **params: Any) -> None:
        super().__init__(view=view, **params)
        self.on_recorded = on_recorded
        self._recorder_params = recorder_params
        self._lock = threading.Lock()
        self._status = ""
        self._built: Flow | None = None
        self._busy = False
        self.record_toggle = pn.widgets.Toggle(label="● Record", color="danger",
                                               variant="outline", width=95)
        # on: typed text is recorded as ${env:<name>}, never as the characters typed
        self.secret_toggle = pn.widgets.Toggle(label="Secret", width=70)
        self.secret_name = pn.widgets.TextInput(value="SECRET", width=120,
                                                placeholder="environment variable")
        self.status = LiveHTML("", sizing_mode="stretch_width", margin=(8, 6))
        self.record_toggle.disabled = not can("edit")  # the handler checks again
        self.record_toggle.param.watch(self._on_record, "value")
        self.secret_toggle.param.watch(self._on_secret, "value")
        self.secret_name.param.watch(self._on_secret, "value")
        self.pusher = Pusher(self._render)
        self._row = pn.Column(pn.Row(self.record_toggle, self.secret_toggle, self.secret_name),
                              self.status, sizing_mode="stretch_width", visible=False)
        if view is not None:
            view.param.watch(self._on_console, "console")
            self._on_console()

    # -- handlers -----------------------------------------------------------------------
    def _on_console(self, *_: Any) -> None:
        self._row.visible = bool(getattr(self.view, "console", False)) or self.recording

    @property
    def recording(self) -> bool:
        rec = getattr(self.view, "recorder", None)
        return rec is not None and rec.recording

    def _on_record(self, event: Any) -> None:
        if event.new and not self.recording:
            self.start()
        elif not event.new and self.recording:
            self.stop()

    def _on_secret(self, *_: Any) -> None:
        rec = getattr(self.view, "recorder", None)
        env = (self.secret_name.value or "").strip()
        if self.secret_toggle.value and not _ENV_NAME.match(env):
            self._tell(f"{env!r} is not an environment variable name")
            self.secret_toggle.value = False
            return
        if rec is not None and rec.recording:
            rec.secret_env = env if self.secret_toggle.value else ""
        self._tell(self._progress())

    def start(self) -> Recorder | None:
        """Start recording the view's console (needs the edit permission)."""
        try:
            require("edit", self.name)
            params = self._recorder_params() if self._recorder_params else {}
            if self.template_dir:
                params.setdefault("template_dir", self.template_dir)
            rec = self.view.record(params.pop("name", self.name), **params)
        except KvmrpaError as exc:
            self._tell(" ".join(str(exc).split()))
            self.record_toggle.value = False
            return None
        self._on_secret()
        self._on_console()
        self._tell("recording: click and type on the live view")
        rec.on_change(self._stepped)
        return rec

    def _stepped(self) -> None:  # a step was recorded (on the thread that fed it)
        self._set_status(self._progress())

    def stop(self) -> None:
        """Stop recording; the flow is built in a worker thread, then shown."""
        rec = getattr(self.view, "recorder", None)
        if rec is None or not rec.recording:
            return
        with self._lock:
            if self._busy:
                return
            self._busy = True
        self._tell(f"building the flow of {len(rec.steps)} steps…")
        runtime = get_runtime()
        future = runtime.submit(runtime.to_thread(rec.stop))
        future.add_done_callback(self._built_flow)

    def _built_flow(self, future: Any) -> None:  # on a worker thread
        with self._lock:
            self._busy = False
        try:
            flow = future.result()
        except Exception as exc:  # the recording is lost; say why
            log.warning("recorder: building the flow failed: %s", exc)
            self._set_status(f"recording failed: {' '.join(str(exc).split())}")
            return
        if self.on_recorded is not None:  # it may rename the flow (a free name)
            try:
                self.on_recorded(flow)
            except Exception:
                log.exception("recorder: on_recorded failed")
        fragile = len(flow.metadata.get("recording", {}).get("fragile", []))
        self._built = flow
        self._set_status(f"new flow {flow.name}: {len(flow)} nodes"
                         + (f", {fragile} on fixed points (fragile)" if fragile else ""))

    # -- rendering ----------------------------------------------------------------------
    def _progress(self) -> str:
        rec = getattr(self.view, "recorder", None)
        if rec is None or not rec.recording:
            return self._status
        secret = f" — typing as ${{env:{rec.secret_env}}}" if rec.secret_env else ""
        n = len(rec.steps)
        return f"recording: {n} step{'' if n == 1 else 's'}{secret}"

    def _tell(self, text: str) -> None:
        self._status = text
        self.status.object = (f'<span aria-label="Recorder status" style="font:12px '
                              f'sans-serif;color:#b71c1c">{html.escape(text)}</span>')

    def _set_status(self, text: str) -> None:
        """From any thread: show ``text`` (and the built flow) on the view's session."""
        self._status = text
        if self.pusher.bound:
            self.pusher.poke()
        else:
            self._render()

    def _render(self) -> None:
        self._tell(self._status)
        built, self._built = self._built, None
        if built is not None:
            self.flow = built
            self.record_toggle.value = False
        self._on_console()

    def __panel__(self) -> pn.viewable.Viewable:
        self.pusher.bind()
        return self._row

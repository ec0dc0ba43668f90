"""``kvmrpa serve`` in headless Chromium: the live view's frames travel on the frame
route (a websocket of their own), clicks and hold still work, and with an auth file (over
HTTPS, so the route is a wss:// socket) the route opens only for the login the page was
granted it for."""

from __future__ import annotations

import base64
import os
import threading

import cv2
import numpy as np
import pytest

from kvmrpa import get_settings
from kvmrpa._auth import set_account
from kvmrpa.capture import FrameSource

from .conftest import free_port, new_page, wait_for
from .test_auth_tls import self_signed

pytestmark = pytest.mark.browser

#: Records the frame route sockets the page opens (their URL and subprotocols).
SPY = """(() => {
  const Orig = window.WebSocket
  window.kvRoutes = []
  window.WebSocket = class extends Orig {
    constructor(url, protocols) {
      super(url, protocols)
      if (Array.isArray(protocols) && protocols[0] === "kvmrpa-frames")
        window.kvRoutes.push({url: String(url), protocols})
    }
  }
})()"""

#: Opens the route with the given subprotocols; resolves "open" or "refused".
TRY_ROUTE = """([url, protocols]) => new Promise((resolve) => {
  const ws = new WebSocket(url, protocols)
  ws.binaryType = "arraybuffer"
  const timer = setTimeout(() => { ws.close(); resolve("timeout") }, 15000)
  ws.onmessage = () => { clearTimeout(timer); ws.close(); resolve("frames") }
  ws.onclose = () => { clearTimeout(timer); resolve("refused") }
})"""

POINT = """() => [...Bokeh.documents[0].all_models].some(
  m => Array.isArray(m.point) && m.point.length === 2)"""



def seq(canvas) -> int:
    return int(canvas.get_attribute("data-frame-seq") or 0)


def test_frames_come_on_the_route_and_the_view_still_works(serve_dashboard, page,
                                                           artifacts_dir) -> None:
    with serve_dashboard() as server:
        p = page.page
        p.add_init_script(SPY)
        p.goto(server.url)
        canvas = p.get_by_label("Live view")
        canvas.wait_for(timeout=60_000)
        wait_for(lambda: canvas.get_attribute("data-frame-via") == "route",
                 what="a frame on the route")
        s0 = seq(canvas)
        p.wait_for_timeout(2000)
        s1 = seq(canvas)
        assert s1 - s0 >= 20, f"data-frame-seq advanced by {s1 - s0} in 2 s on the route"
        assert canvas.get_attribute("data-frame-via") == "route"
        routes = p.evaluate("window.kvRoutes")
        assert len(routes) == 1 and routes[0]["url"].endswith("/kvmrpa/frames")
        assert len(routes[0]["protocols"][1]) >= 40  # the token, not in the URL
        # A click on the video sets the point (its message goes on Bokeh's socket).
        box = canvas.bounding_box()
        p.mouse.click(box["x"] + 120, box["y"] + 80)
        p.wait_for_function(POINT, timeout=30_000)
        # Hold stops the picture, resuming brings it back on the route.
        p.get_by_role("button", name="Hold video").click()
        p.get_by_role("button", name="Resume video").wait_for(timeout=30_000)
        p.wait_for_timeout(1000)  # frames already in flight land
        held = seq(canvas)
        p.wait_for_timeout(1500)
        assert seq(canvas) == held
        p.get_by_role("button", name="Resume video").click()
        wait_for(lambda: seq(canvas) > held, timeout=30, what="frames after resuming")
        assert canvas.get_attribute("data-frame-via") == "route"
        p.screenshot(path=os.path.join(artifacts_dir, "stream_route.png"))
        assert page.errors == []
        # A made-up token is refused (Chromium reports the failed handshake).
        assert p.evaluate(TRY_ROUTE, [routes[0]["url"], ["kvmrpa-frames", "x" * 43]]) == "refused"
        assert all("404" in e for e in page.errors), page.errors
        assert "Traceback" not in server.output()


def login(chromium, url: str, user: str, password: str):
    context, page = new_page(chromium, ignore_https_errors=True)
    p = page.page
    p.add_init_script(SPY)
    p.goto(url)
    p.fill("#username", user)
    p.fill("#password", password)
    p.click("button[type=submit]")
    p.get_by_label("Live view").wait_for(timeout=90_000)
    return context, page


def test_with_an_auth_file_the_route_opens_only_for_its_login(serve_dashboard, chromium,
                                                             tmp_path) -> None:
    users = tmp_path / "users"
    set_account(users, "vera", "vera-pw", "viewer")
    set_account(users, "otto", "otto-pw", "operator")
    env = {**os.environ, "KVMRPA_HOME": str(tmp_path / "home")}
    cert, key = self_signed(tmp_path)
    with serve_dashboard("--auth-file", str(users), "--tls-cert", str(cert), "--tls-key",
                         str(key), ready_status=(302,), env=env) as server:
        context, page = login(chromium, server.url, "vera", "vera-pw")
        try:
            p = page.page
            canvas = p.get_by_label("Live view")
            wait_for(lambda: canvas.get_attribute("data-frame-via") == "route",
                     what="a frame on the route")
            route = p.evaluate("window.kvRoutes")[0]
            assert route["url"].startswith("wss://127.0.0.1:")
            # Another login, with vera's token: refused (the token is bound to her login).
            other, other_page = login(chromium, server.url, "otto", "otto-pw")
            try:
                assert other_page.page.evaluate(TRY_ROUTE, [route["url"], route["protocols"]]) \
                    == "refused"
            finally:
                other.close()
            # No login at all (a page of the server that needs none: the login form).
            anon, anon_page = new_page(chromium, ignore_https_errors=True)
            try:
                anon_page.page.goto(server.url)
                assert anon_page.page.evaluate(TRY_ROUTE, [route["url"], route["protocols"]]) \
                    == "refused"
            finally:
                anon.close()
            assert page.errors == []
        finally:
            context.close()
        out = server.output()
        assert route["protocols"][1] not in out  # the token is never logged
        assert "refused a connection" in out


class TickingDesktop(FrameSource):
    """A 720p desktop whose clock ticks ``fps`` times a second, until frozen."""

    def __init__(self, fps: float = 20.0) -> None:
        super().__init__("desk://browser-test")
        self._fps = fps
        self._halt = threading.Event()
        self.frozen = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="desk-test", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        i = 0
        while not self._halt.is_set():
            if not self.frozen.is_set():
                img = np.full((720, 1280, 3), (140, 100, 40), np.uint8)
                cv2.rectangle(img, (60, 60), (480, 280), (236, 236, 236), -1)
                cv2.putText(img, "Hello kvmrpa", (80, 150), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                            (20, 20, 20), 2)
                cv2.putText(img, f"12:00:{i % 60:02d}.{i % 10}", (1100, 700),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.7, (230, 230, 230), 2)
                cv2.circle(img, (200 + (i * 7) % 800, 400), 12, (0, 0, 255), -1)
                self._publish(img)
                i += 1
            self._halt.wait(1 / self._fps)


def canvas_picture(canvas) -> np.ndarray:
    url = canvas.evaluate("(c) => c.toDataURL('image/png')")
    data = base64.b64decode(url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize("route", [True, False], ids=["route", "bokeh"])
def test_patches_build_the_sources_picture_and_a_lost_one_is_repaired(page, route,
                                                                      artifacts_dir) -> None:
    # on the frame route (kvmrpa serve) and in Bokeh messages (a notebook's path)
    import panel as pn
    from kvmrpa.widgets import LiveView
    from kvmrpa.widgets._frameroute import frame_route_patterns

    src = TickingDesktop().start()
    views: list[LiveView] = []
    sent: list[tuple[int, bool]] = []
    dropped: list[int] = []

    def app():
        view = LiveView(src, fps=30.0, width=1280, height=760, sizing_mode="fixed",
                        frame_route=route)
        real = view._send_frame

        def send(enc, stream=0):
            patches = [s for s, whole in sent if not whole]
            if not enc.whole and len(patches) == 30 and not dropped:
                dropped.append(enc.seq)  # lost on the way: the view must notice and ask
                sent.append((enc.seq, False))
                return
            sent.append((enc.seq, enc.whole))
            real(enc, stream)

        view._send_frame = send
        views.append(view)
        return view

    # no whole frames by the clock: after the lost patch only the view's request brings one
    stream = get_settings().stream
    interval, stream.keyframe_interval = stream.keyframe_interval, 3600.0
    port = free_port()
    server = pn.serve(app, address="127.0.0.1", port=port, threaded=True, show=False,
                      websocket_origin=[f"127.0.0.1:{port}"], verbose=False,
                      extra_patterns=frame_route_patterns())
    try:
        p = page.page
        p.set_viewport_size({"width": 1300, "height": 820})
        wait_for(lambda: _reachable(port), timeout=30, what="the server")
        p.goto(f"http://127.0.0.1:{port}/")
        canvas = p.get_by_label("Live view")
        canvas.wait_for(timeout=60_000)
        via = "route" if route else "bokeh"
        wait_for(lambda: canvas.get_attribute("data-frame-via") == via
                 and canvas.get_attribute("data-frame-kind") == "patch",
                 timeout=60, what=f"patches on the {via} path")
        # (waits on this process's state keep Playwright's client running meanwhile:
        # the page's websockets pass through it, see conftest.offline)
        def served(cond):
            return lambda: (p.wait_for_timeout(50), cond())[1]

        wait_for(served(lambda: dropped), timeout=60, what="a patch to drop")
        # the view asked for a whole frame and drew patches over it again
        wait_for(served(lambda: any(whole and s > dropped[0] for s, whole in sent)),
                 timeout=30, what="a whole frame after the lost patch")
        after = next(s for s, whole in sent if whole and s > dropped[0])
        wait_for(served(lambda: any(not whole and s > after for s, whole in sent)),
                 timeout=30, what="patches again")
        wait_for(lambda: seq(canvas) > after, timeout=30, what="the view to draw on")
        assert canvas.get_attribute("data-frame-kind") == "patch"
        whole_before = [s for s, whole in sent if whole and s < dropped[0]]
        assert whole_before and len([s for s, w in sent if not w]) > len(whole_before) * 5
        # Freeze the screen: the picture on the canvas is the source's last frame.
        src.frozen.set()
        p.wait_for_timeout(300)
        last = src.latest()
        wait_for(lambda: seq(canvas) == last.seq, timeout=30, what="the last frame drawn")
        drawn = canvas_picture(canvas)
        assert drawn.shape == last.image.shape
        diff = np.abs(drawn.astype(int) - last.image.astype(int))
        assert diff.mean() < 2.0, diff.mean()
        # every part of the screen is as right as a whole frame's JPEG would draw it, the
        # moving dot and the clock included (a stale dot would be off by about 100)
        from kvmrpa.capture._encoder import encode_jpeg

        whole = cv2.imdecode(np.frombuffer(encode_jpeg(last.image, 1280, 80)[0], np.uint8),
                             cv2.IMREAD_COLOR)
        jpeg_error = np.abs(whole.astype(int) - last.image.astype(int))
        cells = diff.reshape(45, 16, 80, 16, 3).mean(axis=(1, 3, 4))
        allowed = jpeg_error.reshape(45, 16, 80, 16, 3).mean(axis=(1, 3, 4)) + 4
        worst = np.unravel_index((cells - allowed).argmax(), cells.shape)
        assert (cells <= allowed).all(), (worst, cells[worst], allowed[worst])
        p.screenshot(path=os.path.join(artifacts_dir, f"stream_patches_{via}.png"))
        assert views[-1].route_sockets == int(route)
        assert canvas.get_attribute("data-frame-via") == via
        assert page.errors == []
    finally:
        for view in views:
            view.close()
        server.stop()
        src.stop()
        stream.keyframe_interval = interval


def _reachable(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0

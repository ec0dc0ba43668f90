"""``kvmrpa serve`` in headless Chromium: the live view's frames travel on the frame
route (a websocket of their own), clicks and hold still work, and with an auth file (over
HTTPS, so the route is a wss:// socket) the route opens only for the login the page was
granted it for."""

from __future__ import annotations

import os

import pytest

from kvmrpa._auth import set_account

from .conftest import new_page, wait_for
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

"""Browser-test harness: ``kvmrpa serve`` on a free loopback port, and headless Chromium.

The server runs as a real subprocess (``python -m kvmrpa serve``) and is stopped on every
path; Chromium is the system browser (/usr/bin/chromium) driven by Playwright, never a
downloaded one. Each page records console errors and page errors so tests can assert
there were none.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def serve(*args: str, tmp: Path, ready_status: tuple[int, ...] = (200,),
          timeout: float = 90.0, command: list[str] | None = None,
          path: str = "", cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Iterator[Server]:
    """Run ``kvmrpa serve --port <free> *args`` (or ``command`` + ``--port <free>``)
    until the block ends; ``path`` is appended to the URL; ``cwd`` (default: the
    repository) and ``env`` (default: this process's) are the server's."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
    argv = ([*command, "--port", str(port), *args] if command else
            [sys.executable, "-m", "kvmrpa", "serve", "--port", str(port), *args])
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd or ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    scheme = "https" if "--tls-cert" in args else "http"  # a test's self-signed certificate
    url = f"{scheme}://127.0.0.1:{port}/{path}"
    server = Server(proc, url, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"kvmrpa serve exited with {proc.returncode}:\n{server.output()}")
            try:
                r = httpx.get(url, timeout=5, follow_redirects=False, verify=False)
                if r.status_code in ready_status:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"kvmrpa serve not ready in {timeout} s:\n{server.output()}")
            time.sleep(0.3)
        yield server
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def serve_dashboard(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[Server]]:
    def start(*args: str, **kw: object) -> contextlib.AbstractContextManager[Server]:
        return serve(*args, tmp=tmp_path, **kw)  # type: ignore[arg-type]
    return start


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    # Module scope, not session: Playwright's sync API keeps an event loop marked as
    # running in the main thread while it is open, which would break asyncio.run() in
    # every test that runs after the browser tests.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for(pred: Callable[[], bool], timeout: float = 60.0, what: str = "condition",
             every: float = 0.2) -> None:
    """Poll ``pred`` every ``every`` seconds until it is true; AssertionError naming
    ``what`` after ``timeout`` seconds (the browser tests' one wait)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(every)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(url: str) -> bool:
    """True for a URL the tests may reach: loopback http(s)/ws(s), or no network at all
    (data:, blob:, about:)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS


def offline(context: object, blocked: list[str]) -> None:
    """Abort every request (and websocket) of ``context`` to a non-loopback host, as on
    a machine without internet; the URLs tried are appended to ``blocked``."""

    def route(r: object) -> None:
        url = r.request.url
        if is_loopback(url):
            r.continue_()
        else:
            blocked.append(url)
            r.abort("internetdisconnected")

    def route_ws(ws: object) -> None:
        blocked.append(ws.url)
        ws.close()

    context.route("**/*", route)
    # Only non-loopback websockets are routed: a routed websocket is proxied through this
    # (Python) client, whose frames then stall whenever the test thread sleeps.
    context.route_web_socket(lambda url: not is_loopback(url), route_ws)


class Page:
    """A Playwright page plus the console errors it reported and the non-loopback
    requests that were aborted."""

    def __init__(self, page: object, blocked: list[str] | None = None) -> None:
        self.page = page
        self.errors: list[str] = []
        self.blocked = blocked if blocked is not None else []
        # Panel reports a Python exception in a notebook callback as a console warning
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" or m.text.startswith("Python failed") else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))


def new_page(browser: object, **context_args: object) -> tuple[object, Page]:
    """A fresh context (no internet) and its page; close the context when done."""
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 1000}, **context_args})
    blocked: list[str] = []
    offline(context, blocked)
    return context, Page(context.new_page(), blocked)


@pytest.fixture
def page(chromium: object) -> Iterator[Page]:
    context, pg = new_page(chromium)
    try:
        yield pg
    finally:
        context.close()


# -- JupyterLab ---------------------------------------------------------------------------
NOTEBOOKS = ROOT / "notebooks"

# User settings for the test's JupyterLab: every cell stays in the page (no windowing, so
# locators find cells that are scrolled away) and nothing is fetched from the internet.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}
LAB_CONFIG = {
    "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
               "extension_manager": "readonly"},
    "ServerApp": {"open_browser": False},
}


class Lab:
    """A running JupyterLab: its base URL, token, root folder and log."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, token: str, root: Path,
                 log: Path) -> None:
        self.proc, self.url, self.token, self.root, self.log = proc, url, token, root, log

    def notebook_url(self, name: str, workspace: str) -> str:
        """A fresh workspace showing only notebook ``name``."""
        return f"{self.url}lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _stop_lab(proc: subprocess.Popen[bytes], url: str, token: str) -> None:
    # Kernels may run in sessions of their own: shut them down through the server first.
    if proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            params = {"token": token}
            for k in httpx.get(f"{url}api/kernels", params=params, timeout=5).json():
                httpx.delete(f"{url}api/kernels/{k['id']}", params=params, timeout=15)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
    # The kernels are children of the server, in its process group: make sure they go.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


@contextlib.contextmanager
def jupyterlab_server(tmp: Path, timeout: float = 120.0) -> Iterator[Lab]:
    """JupyterLab from this environment on a free loopback port, token-protected, on a
    temporary root folder holding copies of the notebooks (and their flows); stopped
    with its kernels on every path."""
    import json
    import secrets
    import shutil

    root = tmp / "root"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints",
                                                                   "my-flows"))
    home = tmp / "jupyter"
    settings = home / "lab-settings"
    for rel, value in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps(LAB_CONFIG))
    port, token = free_port(), secrets.token_hex(16)
    log = tmp / f"jupyterlab-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:  # containers and CI run as root
        argv.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    lab = Lab(proc, url, token, root, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{lab.output()}")
            try:
                r = httpx.get(f"{url}api/status", params={"token": token}, timeout=5)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab not ready in {timeout} s:\n{lab.output()}")
            time.sleep(0.3)
        yield lab
    finally:
        _stop_lab(proc, url, token)


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One JupyterLab per test module (starting one costs seconds on two cores)."""
    with jupyterlab_server(tmp_path_factory.mktemp("jupyterlab")) as lab:
        yield lab

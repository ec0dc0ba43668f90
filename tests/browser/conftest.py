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
          path: str = "") -> Iterator[Server]:
    """Run ``kvmrpa serve --port <free> *args`` (or ``command`` + ``--port <free>``)
    until the block ends; ``path`` is appended to the URL."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = ([*command, "--port", str(port), *args] if command else
            [sys.executable, "-m", "kvmrpa", "serve", "--port", str(port), *args])
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/{path}"
    server = Server(proc, url, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"kvmrpa serve exited with {proc.returncode}:\n{server.output()}")
            try:
                r = httpx.get(url, timeout=5, follow_redirects=False)
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


class Page:
    """A Playwright page plus the console errors it reported."""

    def __init__(self, page: object) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))


@pytest.fixture
def page(chromium: object) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield Page(context.new_page())
    finally:
        context.close()

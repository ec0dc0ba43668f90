"""``wait_until`` and ``source`` never decide on a frame captured before they started.

The screen here is live (a source republishing the current picture every 50 ms, its
capture time taken before the picture is read, as a real capture does) and a key press
through the flow's input driver changes the picture at once: so the newest frame when
the next node starts shows the screen from before the key press.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from kvmrpa.capture import FrameSource, open_source, register_source, release_source
from kvmrpa.engine import Flow
from kvmrpa.kvm import register_driver
from kvmrpa.kvm._driver import InputDriver, MouseButton

from ._screens import blank, render

_counter = itertools.count(1)
SIZE = (320, 120)


def _picture(text: bool) -> np.ndarray:
    return (render(items=(("go", "确定", (40, 30)),), size=SIZE, input_box=None) if text
            else blank(SIZE)).image


class _Screen:
    """A target screen: the picture shown now, the one a key press brings, and when the
    last key press happened."""

    screens: ClassVar[dict[str, _Screen]] = {}

    def __init__(self, now: np.ndarray, after_key: np.ndarray) -> None:
        self.now, self.after_key = now, after_key
        self.pressed: float | None = None
        self.frozen = False  # publish nothing (a stalled capture)
        self.lock = threading.Lock()

    @classmethod
    def of(cls, url: str) -> _Screen:
        return cls.screens[url.split("://", 1)[1]]


class LiveScreen(FrameSource):
    """Republishes the screen's current picture every 50 ms."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._screen = _Screen.of(url)
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name="live-screen", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._halt.is_set():
            captured = time.monotonic()
            with self._screen.lock:
                picture, frozen = self._screen.now, self._screen.frozen
            if not frozen:
                self._publish(picture, captured)
            self._halt.wait(0.05)

    def _stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(5)


class ScreenKeys(InputDriver):
    """Any key press shows the screen's ``after_key`` picture; the mouse does nothing."""

    scheme = "freshtest"

    async def _move(self, x: int, y: int) -> None:
        pass

    async def _button(self, button: MouseButton, down: bool) -> None:
        pass

    async def _scroll(self, dx: int, dy: int) -> None:
        pass

    async def _key(self, key: str, down: bool) -> None:
        if down:
            screen = _Screen.of(self.url)
            with screen.lock:
                screen.now = screen.after_key
                screen.pressed = time.monotonic()


register_source("freshtest", LiveScreen)
register_driver("freshtest", ScreenKeys)


@pytest.fixture
def screen() -> Any:
    """``make(now, after_key) -> (url, screen)``: a live screen for this test."""
    names: list[str] = []

    def make(now: np.ndarray, after_key: np.ndarray) -> tuple[str, _Screen]:
        name = f"s{next(_counter)}"
        names.append(name)
        _Screen.screens[name] = _Screen(now, after_key)
        return f"freshtest://{name}", _Screen.screens[name]

    yield make
    for name in names:
        _Screen.screens.pop(name, None)


def _press_then(url: str, node_type: str, **params: Any) -> Flow:
    """Press Return, then run ``node_type``, then keep what the frame it gave showed."""
    flow = Flow("fresh", source=url, input=url)
    flow.add("keyboard", "press", action="key", key="Return")
    flow.add(node_type, "look", **params)
    flow.add("python", "keep", inputs=["frame"],
             code="variables['captured'] = frame.captured\n"
                  "variables['level'] = int(frame.image.min())")
    flow.connect("press", "look")
    flow.connect("look", "keep")
    return flow


@contextlib.contextmanager
def _held(url: str) -> Iterator[FrameSource]:
    """The shared source of ``url``, held (so the run finds frames of before the key
    press in its mailbox) once it has published a frame."""
    src = open_source(url)
    try:
        src.wait_frame(timeout=10)
        yield src
    finally:
        release_source(src)


def test_wait_until_text_appears_ignores_the_frame_from_before_the_action(screen: Any) -> None:
    """确定 was on screen until the key press removed it: the frame of before is no
    evidence that it appeared."""
    url, _ = screen(_picture(True), _picture(False))
    flow = Flow("gone", source=url, input=url)
    flow.add("keyboard", "press", action="key", key="Return")
    flow.add("wait_until", "look", kind="text_appears", text="确定", wait_timeout=1.0,
             poll_interval=0)
    flow.connect("press", "look")
    with _held(url):  # its newest frame shows 确定 when the run starts
        result = flow.run(timeout=90, record=False)
    assert result.status == "failed"
    assert "node look" in result.error and "'确定' did not appear within 1 s" in result.error


def test_wait_until_answers_with_a_frame_captured_after_the_action(screen: Any) -> None:
    url, scr = screen(_picture(False), _picture(True))
    with _held(url):
        result = _press_then(url, "wait_until", kind="text_appears", text="确定",
                             wait_timeout=60, poll_interval=0).run(timeout=90, record=False)
    assert result.status == "ok", result.error
    assert scr.pressed is not None and result.variables["captured"] >= scr.pressed
    assert result.variables["level"] < 128  # the text's ink is in it


def test_screen_stable_counts_only_frames_from_after_the_node_started(screen: Any) -> None:
    """The screen has been still for a while: the wait still lasts ``stable_seconds``
    of frames captured after it started, not of frames from before."""
    still = _picture(True)
    url, scr = screen(still, still)
    with _held(url):
        time.sleep(0.5)  # still for longer than stable_seconds before the run starts
        result = _press_then(url, "wait_until", kind="screen_stable", stable_seconds=0.3,
                             wait_timeout=60).run(timeout=90, record=False)
    assert result.status == "ok", result.error
    assert scr.pressed is not None and result.variables["captured"] - scr.pressed >= 0.3


@pytest.mark.parametrize("passes", [1, 2])
def test_source_node_takes_a_frame_captured_after_it_started(screen: Any, passes: int) -> None:
    """A source node after an action sees the screen the action brought, in the first
    pass as in later ones."""
    url, scr = screen(_picture(False), _picture(True))
    with _held(url):
        result = _press_then(url, "source").run(timeout=90, record=False, passes=passes)
    assert result.status == "ok", result.error
    assert scr.pressed is not None and result.variables["captured"] >= scr.pressed
    assert result.variables["level"] < 128  # the picture with 确定, not the blank one


def test_source_node_without_wait_new_frame_takes_the_latest_however_old(screen: Any) -> None:
    """A screen that stopped publishing: off, the node takes its last frame at once; on,
    it waits for a frame captured after it started, and fails naming itself."""
    url, scr = screen(_picture(True), _picture(True))
    flow = Flow("latest", source=url, input=url)
    flow.add("source", "look", wait_new_frame=False, frame_timeout=0.5)
    flow.add("python", "keep", inputs=["frame"], code="variables['seq'] = frame.seq")
    flow.connect("look", "keep")
    with _held(url) as src:
        scr.frozen = True
        time.sleep(0.2)  # the publisher has seen the flag
        last = src.latest()
        assert last is not None
        old = flow.run(timeout=90, record=False)
        flow["look"].wait_new_frame = True
        fresh = flow.run(timeout=90, record=False)
    assert old.status == "ok", old.error
    assert old.variables["seq"] == last.seq
    assert fresh.status == "failed"
    assert "node look" in fresh.error and "no new frame" in fresh.error

"""Helpers shared by the capture tests."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kvmrpa.capture import FrameSource, SourceState


class ManualSource(FrameSource):
    """A source whose frames the test publishes by hand (no thread of its own)."""

    def __init__(self, url: str = "manual://test") -> None:
        super().__init__(url)
        self.starts = 0
        self.stops = 0

    def _start(self) -> None:
        self.starts += 1

    def _stop(self) -> None:
        self.stops += 1

    def push(self, value: int = 0) -> int:
        img = np.full((4, 6, 3), value % 256, dtype=np.uint8)
        return self._publish(img).seq


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``pred`` until true; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def sockets_to(port: int) -> int:
    """How many of this process's descriptors are TCP sockets to 127.0.0.1:``port``."""
    inodes = set()
    with open("/proc/net/tcp", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in inodes:
                count += 1
        except OSError:
            continue
    return count


def own_threads(url: str) -> list[str]:
    """Names of live threads that belong to the source of ``url``."""
    return [t.name for t in threading.enumerate() if url in t.name]


class StateLog:
    """Records ``(monotonic time, state)`` of every transition of a source."""

    def __init__(self, src: FrameSource) -> None:
        self.items: list[tuple[float, SourceState]] = []
        self._lock = threading.Lock()
        self.unsubscribe = src.on_state(self._add)

    def _add(self, state: SourceState) -> None:
        with self._lock:
            self.items.append((time.monotonic(), state))

    def states(self) -> list[SourceState]:
        with self._lock:
            return [s for _, s in self.items]

    def first_after(self, t: float, state: SourceState) -> float | None:
        with self._lock:
            for ts, s in self.items:
                if ts >= t and s == state:
                    return ts
        return None


@pytest.fixture
def manual_source() -> Iterator[ManualSource]:
    src = ManualSource()
    src.start()
    try:
        yield src
    finally:
        src.stop()

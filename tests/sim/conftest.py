"""Fixtures for the simulator's tests: desktops by URL, and a driver/source pair."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kvmrpa import run_sync
from kvmrpa.sim import SimDesktop, SimDriver, SimSource, get_desktop


def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


@pytest.fixture
def desk() -> Iterator[tuple[SimDesktop, SimDriver]]:
    """``scenario1`` seed 5 without realism, with its driver (closed afterwards)."""
    url = "sim://scenario1?seed=5&realism=0"
    drv = SimDriver(url)
    yield get_desktop(url), drv
    run_sync(drv.aclose())


@pytest.fixture
def source_factory() -> Iterator[object]:
    """Start ``SimSource`` objects; every one is stopped at the end of the test."""
    started: list[SimSource] = []

    def make(url: str) -> SimSource:
        src = SimSource(url)
        started.append(src)
        return src.start()  # type: ignore[return-value]

    yield make
    for src in started:
        src.stop()

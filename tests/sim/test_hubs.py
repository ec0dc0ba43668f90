"""sim:// through the capture and kvm hubs: one desktop behind the source and the driver."""

from __future__ import annotations

import time

import numpy as np

from kvmrpa import run_sync
from kvmrpa.capture import open_source, release_source
from kvmrpa.kvm import open_driver, release_driver
from kvmrpa.sim import SimDriver, SimSource, get_desktop

from .conftest import centre


def test_hub_source_and_driver_share_one_desktop() -> None:
    src = open_source("sim://scenario1?seed=31&realism=0&fps=30")
    drv = None
    try:
        assert isinstance(src, SimSource)
        assert open_source("sim://scenario1?seed=31&realism=0&fps=30") is src
        release_source(src)
        frame = src.wait_frame(timeout=10)
        drv = open_driver("sim://scenario1?fps=30&realism=0&seed=31", frame.size)
        assert isinstance(drv, SimDriver) and drv.frame_size == (1280, 720)
        desktop = get_desktop("sim://scenario1?seed=31&realism=0&fps=30")
        x, y, w, h = desktop.find("dialog")
        run_sync(drv.click(*centre(desktop.find("ok"))))
        clicked = time.monotonic()
        # A frame captured after the click (frames newer than `frame` but rendered before
        # the click may already be waiting).
        after = src.wait_frame(frame.seq, timeout=10)
        while after.captured < clicked:
            after = src.wait_frame(after.seq, timeout=10)
        assert desktop.state()["page"] == "confirmed"
        region = (slice(y, y + h), slice(x, x + w))
        assert np.abs(after.image[region].astype(int) - frame.image[region].astype(int)).mean() > 20
    finally:
        if drv is not None:
            release_driver(drv)
        release_source(src)


def test_importing_kvmrpa_sim_registers_the_scheme_with_both_hubs() -> None:
    from kvmrpa.capture import registered_schemes as source_schemes
    from kvmrpa.kvm import registered_schemes as driver_schemes

    assert "sim" in source_schemes() and "sim" in driver_schemes()

"""The ``input`` benchmark group in quick mode on the real lab: a ratio, never wall time."""

from __future__ import annotations

import pytest

from kvmrpa.bench import EXTRA_KEYS
from kvmrpa.bench._input import run

pytestmark = [pytest.mark.bench, pytest.mark.lab]


def test_vnc_click_latency_next_to_xdotool() -> None:
    out = run(quick=True)
    # outside the --json contract since the bench runner split KEYS / EXTRA_KEYS
    assert set(EXTRA_KEYS["input"]) <= set(out) and out["input.samples"] == 10
    vnc, xdo = out["input.vnc_click_ms_p50"], out["input.xdotool_click_ms_p50"]
    assert vnc is not None and xdo is not None and vnc > 0 and xdo > 0
    # a click over VNC (x11vnc -nonap) reaches the app about as fast as xdotool run on
    # the display itself (target 2x; loose here, these machines are noisy)
    assert vnc <= 4 * xdo

"""The ``capture`` benchmark group in quick mode, on the real lab: ratios, never wall time."""

from __future__ import annotations

import pytest

from kvmrpa.bench import KEYS
from kvmrpa.bench._capture import run

pytestmark = [pytest.mark.bench, pytest.mark.lab]


def test_capture_group_figures() -> None:
    out = run(quick=True)
    assert set(KEYS["capture"]) <= set(out)
    assert out["capture.samples"] >= 8  # nearly every display change was seen by both
    age, bare = out["capture.frame_age_ms_p50"], out["capture.bare_loop_frame_age_ms_p50"]
    assert age is not None and bare is not None and bare > 0
    # The mailbox and the hop to an event loop add next to nothing to a bare read loop
    # (target +2 ms; loose here because two connections of one stream drift apart).
    assert age <= 1.3 * bare
    # Short probing opens far faster than FFmpeg's default probing (target 0.3x).
    assert out["capture.open_s"] <= 0.5 * out["capture.open_s_default_options"]
    # The reader thread and watchdog cost about what a bare loop costs (target 1.1x).
    assert out["capture.process_cpu_ratio"] <= 1.5

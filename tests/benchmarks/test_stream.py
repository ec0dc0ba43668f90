"""The ``stream`` benchmark group in quick mode: ratios, never wall time."""

from __future__ import annotations

import pytest

from kvmrpa.bench import KEYS
from kvmrpa.bench._stream import run


@pytest.mark.bench
def test_stream_group_figures() -> None:
    out = run(quick=True)
    assert set(KEYS["stream"]) <= set(out)
    assert out["stream.encodes_per_frame_4_viewers"] == pytest.approx(1.0, abs=0.05)
    assert out["stream.encodes_per_frame_no_viewer"] == 0.0
    # Loop lateness is a speed figure: compared with its inline baseline by `kvmrpa bench`
    # (TARGETS), not asserted here, where two busy cores make either side win.
    for key in ("stream.loop_stall_p99_ms", "stream.loop_stalled_ms_per_s",
                "stream.loop_stalled_ms_per_s_inline_baseline"):
        assert out[key] is not None and out[key] >= 0.0, key
    assert out["stream.wire_bytes_per_jpeg_byte"] <= 1.05
    # a clock ticking on a desktop goes as a patch: a small part of the whole frame's bytes
    assert out["stream.patch_bytes_per_whole_frame_byte"] < 0.2


def test_a_stall_is_lateness_beyond_the_floor_by_more_than_a_millisecond() -> None:
    from kvmrpa.bench._stream import _stalled_ms_per_s

    floor = 0.0003
    jitter = [floor + 0.0008] * 1000  # the loop's own scheduling: no stall
    assert _stalled_ms_per_s(jitter, floor, 2.0) == 0.0
    # one 5 ms stall counts whole (from the floor), per second of the run
    assert _stalled_ms_per_s([*jitter, floor + 0.005], floor, 2.0) == pytest.approx(2.5)

"""The end-to-end benchmark, quick mode (simulator and real lab): ratios, never wall time."""

from __future__ import annotations

import pytest

from kvmrpa.bench import KEYS
from kvmrpa.bench._e2e import SKIPPED_REASONS, run

pytestmark = [pytest.mark.bench, pytest.mark.lab]


def _check_parts(r: dict[str, float | None], prefix: str, samples: int) -> None:
    assert r[f"e2e.{prefix}_samples"] == samples
    reaction = r[f"e2e.{prefix}_reaction_ms_p50"]
    assert reaction is not None and reaction > 0
    # The parts explain the total: waiting and OCR dominate, deciding is tiny.
    assert r[f"e2e.{prefix}_decision_ms_p50"] < r[f"e2e.{prefix}_ocr_ms_p50"]
    parts = sum(r[f"e2e.{prefix}_{k}_ms_p50"] for k in ("frame_wait", "ocr", "decision", "input"))
    assert 0.5 * reaction <= parts <= 2.0 * reaction
    assert r[f"e2e.{prefix}_reaction_ms_p90"] >= reaction


def test_e2e_reaction_quick() -> None:
    r = run(quick=True)
    for key in KEYS["e2e"]:
        assert key in r
    assert SKIPPED_REASONS == {}, SKIPPED_REASONS  # the lab runs here: never skipped
    _check_parts(r, "sim", 8)
    _check_parts(r, "lab", 5)
    # In-process input is far cheaper than OCR; against an ideal consumer (half a frame
    # + one ROI OCR, measured side by side) the loop loses at most a small factor.
    assert r["e2e.sim_input_ms_p50"] < r["e2e.sim_ocr_ms_p50"]
    assert 0.3 <= r["e2e.sim_ratio_to_baseline"] <= 5.0
    # The real capture path adds latency the simulator does not have.
    assert r["e2e.lab_frame_wait_ms_p50"] > r["e2e.sim_frame_period_ms"] / 2

"""The ``vision`` benchmark group in quick mode: ratios, never wall time."""

from __future__ import annotations

import pytest

from kvmrpa.bench import KEYS
from kvmrpa.bench._vision import run


@pytest.mark.bench
def test_vision_group_figures() -> None:
    out = run(quick=True)
    assert set(out) == set(KEYS["vision"])
    assert all(isinstance(v, float) and v > 0 for v in out.values())
    # OCR: a single-line region costs a fraction of the whole screen, and recognition
    # alone less than detection + recognition on that region
    assert out["vision.ocr_roi_ms"] < 0.5 * out["vision.ocr_full_720p_ms"]
    assert out["vision.ocr_rec_only_ms"] < out["vision.ocr_roi_ms"]
    # template matching: an ROI and coarse-to-fine both beat the exhaustive search
    assert out["vision.match_roi_ms"] < 0.5 * out["vision.match_full_720p_ms"]
    assert out["vision.match_coarse_to_fine_720p_ms"] < 0.5 * out["vision.match_full_720p_ms"]

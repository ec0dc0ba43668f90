"""The ``recognition`` benchmark group's plumbing (the group itself takes minutes; its
figures are ratios read from ``kvmrpa bench``): keys and targets registered, a wrong
read fails the group instead of timing it, settings changed for a phase come back."""

from __future__ import annotations

import pytest

from kvmrpa._settings import get_settings
from kvmrpa.bench import KEYS, TARGETS
from kvmrpa.bench._recognition import _check_exact, _vision


def test_keys_and_targets_are_registered() -> None:
    keys = KEYS["recognition"]
    for key in ("recognition.cpu_s_per_min_10_flows", "recognition.static_wait_core_pct",
                "recognition.ocr_full_720p_ms", "recognition.reaction_ms_p50_10_watchers"):
        assert key in keys and key in TARGETS
    ratio = TARGETS["recognition.cpu_s_per_min_10_flows"]
    assert ratio.mode == "ratio" and ratio.baseline in keys and ratio.limit == 1.3
    assert TARGETS["recognition.reaction_ms_p50_10_watchers"].baseline in keys


def test_a_wrong_read_fails_instead_of_being_timed() -> None:
    _check_exact("x", ["Network 网络  Display", "确定"], ["确定", "Network 网络 Display"])
    with pytest.raises(RuntimeError, match="expected"):
        _check_exact("x", ["确定OK"], ["确定 OK"])


def test_phase_settings_come_back() -> None:
    vs = get_settings().vision
    before = (vs.cache, vs.change_detection)
    with _vision(cache=not before[0], change_detection=not before[1]):
        assert (vs.cache, vs.change_detection) == (not before[0], not before[1])
    assert (vs.cache, vs.change_detection) == before

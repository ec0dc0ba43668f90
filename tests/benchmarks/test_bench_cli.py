"""``kvmrpa bench``: the JSON contract and the table, on the cheapest group."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kvmrpa.bench import EXTRA_KEYS, KEYS, TARGETS, Target, run_groups


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kvmrpa", "bench", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ})


@pytest.mark.bench
def test_json_has_exactly_the_contract_keys_of_the_groups_run() -> None:
    out = _bench("--only", "executor", "--quick", "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert list(figures) == list(KEYS["executor"])
    assert all(isinstance(v, float | int) for v in figures.values()), figures
    assert figures["executor.parallel_speedup_2"] > 1.5


def test_a_group_that_cannot_run_reports_nulls_and_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from kvmrpa import bench

    def broken(quick: bool) -> dict[str, float]:
        raise bench.BenchSkipped("no RTSP server here")

    import kvmrpa.bench._capture as capture_group

    monkeypatch.setattr(capture_group, "run", broken)
    (res,) = run_groups(("capture",), quick=True)
    assert res.skipped == "no RTSP server here"
    assert res.values == dict.fromkeys(KEYS["capture"])


def test_targets_compare_absolute_ratio_and_difference() -> None:
    figs = {"a": 3.0, "b": 2.0}
    assert Target(">=", 1.9).met(figs, "a") is True
    assert Target("<=", 1.2, "b", "ratio").met(figs, "a") is False  # 1.5 > 1.2
    assert Target("<=", 1.0, "b", "delta").met(figs, "a") is True  # 3 - 2 <= 1
    assert Target("<=", 1.0, "missing", "ratio").met(figs, "a") is None
    every_key = {k for keys in (*KEYS.values(), *EXTRA_KEYS.values()) for k in keys}
    assert set(TARGETS) <= every_key

"""The performance suite behind ``kvmrpa bench``.

Each group is a module ``_<group>.py`` with ``run(quick: bool) -> dict[str, float | None]``
that measures every figure next to its baseline in the same run (these machines are
noisy: the ratio is what counts). A group that cannot run here raises
:class:`BenchSkipped` with the reason.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["GROUPS", "KEYS", "TARGETS", "BenchSkipped", "GroupResult", "run_groups"]

log = logging.getLogger("kvmrpa.bench")


class BenchSkipped(Exception):  # noqa: N818 - reads as "the bench was skipped"
    """A benchmark group cannot run here; the message says why."""


#: Group name → the keys it must report (the exact ``--json`` contract).
KEYS: dict[str, tuple[str, ...]] = {
    "executor": (
        "executor.parallel_speedup_2", "executor.parallel_speedup_8",
        "executor.overhead_us_per_node_chain", "executor.overhead_us_per_node_fanout",
        "executor.asyncio_task_baseline_us", "executor.debug_attached_ratio",
    ),
    "capture": (
        "capture.frame_age_ms_p50", "capture.bare_loop_frame_age_ms_p50",
        "capture.open_s", "capture.open_s_default_options",
    ),
    "stream": (
        "stream.encodes_per_frame_4_viewers", "stream.encodes_per_frame_no_viewer",
        "stream.loop_stall_p99_ms", "stream.loop_stall_p99_ms_inline_baseline",
        "stream.wire_bytes_per_jpeg_byte",
    ),
    "vision": (
        "vision.ocr_full_720p_ms", "vision.ocr_roi_ms", "vision.ocr_rec_only_ms",
        "vision.match_full_720p_ms", "vision.match_roi_ms", "vision.match_coarse_to_fine_720p_ms",
    ),
    "e2e": ("e2e.sim_reaction_ms_p50", "e2e.lab_reaction_ms_p50"),
}
GROUPS: tuple[str, ...] = tuple(KEYS)

#: key → (comparison, target, baseline key or None) for the table.
TARGETS: dict[str, tuple[str, float, str | None]] = {
    "executor.parallel_speedup_2": (">=", 1.9, None),
    "executor.parallel_speedup_8": (">=", 7.0, None),
    "executor.overhead_us_per_node_chain": ("<=", 15.0, "executor.asyncio_task_baseline_us"),
    "executor.overhead_us_per_node_fanout": ("<=", 15.0, "executor.asyncio_task_baseline_us"),
    "executor.debug_attached_ratio": ("<=", 1.1, None),
    "capture.frame_age_ms_p50": ("<=", 2.0, "capture.bare_loop_frame_age_ms_p50"),
    "capture.open_s": ("<=", 0.3, "capture.open_s_default_options"),
    "stream.encodes_per_frame_4_viewers": ("<=", 1.0, None),
    "stream.encodes_per_frame_no_viewer": ("<=", 0.0, None),
    "stream.loop_stall_p99_ms": ("<=", 1.5, "stream.loop_stall_p99_ms_inline_baseline"),
    "stream.wire_bytes_per_jpeg_byte": ("<=", 1.05, None),
    "vision.ocr_roi_ms": ("<=", 80.0, "vision.ocr_full_720p_ms"),
    "vision.match_roi_ms": ("<=", 3.0, "vision.match_full_720p_ms"),
    "vision.match_coarse_to_fine_720p_ms": ("<=", 5.0, "vision.match_full_720p_ms"),
    "e2e.sim_reaction_ms_p50": ("<=", 150.0, None),
    "e2e.lab_reaction_ms_p50": ("<=", 400.0, None),
}


@dataclass
class GroupResult:
    """What one group reported, or why it was skipped."""

    group: str
    values: dict[str, float | None] = field(default_factory=dict)
    extra: dict[str, float | None] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0


def run_groups(groups: tuple[str, ...] = GROUPS, quick: bool = False,
               progress: Callable[[str], None] | None = None) -> list[GroupResult]:
    """Run the named groups in order; a failing or skipped group never stops the rest."""
    results = []
    for group in groups:
        if group not in KEYS:
            raise ValueError(f"unknown benchmark group {group!r}; groups: {', '.join(GROUPS)}")
        if progress:
            progress(group)
        res = GroupResult(group)
        start = time.monotonic()
        try:
            module = importlib.import_module(f"{__name__}._{group}")
            values = module.run(quick)
        except BenchSkipped as exc:
            res.skipped = str(exc) or "skipped"
            values = {}
        except ModuleNotFoundError as exc:
            res.skipped = f"not available: {exc}"
            values = {}
        except Exception as exc:
            log.exception("benchmark group %s failed", group)
            res.skipped = f"failed: {type(exc).__name__}: {exc}"
            values = {}
        res.seconds = time.monotonic() - start
        for key in KEYS[group]:
            res.values[key] = values.get(key)
        res.extra = {k: v for k, v in values.items() if k not in KEYS[group]}
        results.append(res)
    return results

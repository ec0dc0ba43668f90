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

__all__ = [
    "EXTRA_KEYS", "GROUPS", "KEYS", "TARGETS", "BenchSkipped", "GroupResult", "Target", "run_groups",
]

log = logging.getLogger("kvmrpa.bench")


class BenchSkipped(Exception):
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
        "stream.loop_stalled_ms_per_s", "stream.loop_stalled_ms_per_s_inline_baseline",
        "stream.wire_bytes_per_jpeg_byte",
        # 720p30 to headless Chromium: frames on the frame route, next to Bokeh's path
        "stream.server_cpu_pct", "stream.server_cpu_pct_bokeh_baseline",
    ),
    "vision": (
        "vision.ocr_full_720p_ms", "vision.ocr_roi_ms", "vision.ocr_rec_only_ms",
        "vision.match_full_720p_ms", "vision.match_roi_ms", "vision.match_coarse_to_fine_720p_ms",
    ),
    "e2e": ("e2e.sim_reaction_ms_p50", "e2e.lab_reaction_ms_p50"),
    "recognition": (
        "recognition.cpu_s_per_min_10_flows", "recognition.cpu_s_per_min_1_flow",
        "recognition.cpu_s_per_min_10_flows_uncached", "recognition.static_wait_core_pct",
        "recognition.static_wait_core_pct_every_frame", "recognition.ocr_full_720p_ms",
        "recognition.ocr_full_720p_ms_rapidocr_defaults", "recognition.ocr_full_720p_exact",
        "recognition.change_test_ms_720p", "recognition.reaction_ms_p50_10_watchers",
        "recognition.reaction_ms_p50_1_watcher",
    ),
    "fleet": (
        "fleet.passes_per_min_2_workers", "fleet.passes_per_min_1_worker", "fleet.scaling_ratio",
        "fleet.local_manager_passes_per_min", "fleet.overhead_ms_per_target", "fleet.local_run_ms",
        "fleet.scheduler_kib_per_target",
    ),
}
#: Groups whose figures are shown in the table but are not part of the ``--json`` contract.
EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    # a 200-node flow in headless Chromium: FlowCanvas next to FlowView (first render
    # with the page's load, then the component's own), and a 1,000-node chain's run
    # with a canvas attached next to none (the server loop's lateness)
    "canvas": (
        "canvas.first_render_ms_200", "canvas.flowview.first_render_ms_200",
        "canvas.component_render_ms_200", "canvas.flowview.component_render_ms_200",
        "canvas.pan_zoom_fps_200", "canvas.flowview.pan_zoom_fps_200",
        "canvas.live_loop_p99_ms_1000", "canvas.live_loop_p99_ms_1000_no_canvas",
    ),
    "input": (
        "input.vnc_click_ms_p50", "input.vnc_click_ms_p90",
        "input.xdotool_click_ms_p50", "input.xdotool_click_ms_p90",
    ),
}
#: Every benchmark group, in the order they run.
GROUPS: tuple[str, ...] = (*KEYS, *EXTRA_KEYS)


@dataclass(frozen=True)
class Target:
    """A figure's target: ``value <op> limit`` (``abs``), ``value / baseline <op> limit``
    (``ratio``) or ``value - baseline <op> limit`` (``delta``)."""

    op: str
    limit: float
    baseline: str | None = None
    mode: str = "abs"

    def measure(self, figures: dict[str, float | None], key: str) -> float | None:
        value = figures.get(key)
        base = figures.get(self.baseline) if self.baseline else None
        if value is None or (self.mode != "abs" and base is None):
            return None
        if self.mode == "ratio":
            return value / base if base else None
        if self.mode == "delta":
            return value - base if base is not None else None
        return value

    def met(self, figures: dict[str, float | None], key: str) -> bool | None:
        got = self.measure(figures, key)
        if got is None:
            return None
        return got >= self.limit if self.op == ">=" else got <= self.limit

    def __str__(self) -> str:
        what = {"abs": "", "ratio": "ratio ", "delta": "diff "}[self.mode]
        return f"{what}{self.op}{self.limit:g}"


#: The target of each figure that has one.
TARGETS: dict[str, Target] = {
    "executor.parallel_speedup_2": Target(">=", 1.9),
    "executor.parallel_speedup_8": Target(">=", 7.0),
    "executor.overhead_us_per_node_chain": Target("<=", 15.0, "executor.asyncio_task_baseline_us"),
    "executor.overhead_us_per_node_fanout": Target("<=", 15.0, "executor.asyncio_task_baseline_us"),
    "executor.debug_attached_ratio": Target("<=", 1.1),
    "capture.frame_age_ms_p50": Target("<=", 2.0, "capture.bare_loop_frame_age_ms_p50", "delta"),
    "capture.open_s": Target("<=", 0.3, "capture.open_s_default_options"),
    "stream.encodes_per_frame_4_viewers": Target("<=", 1.0),
    "stream.encodes_per_frame_no_viewer": Target("<=", 0.0),
    "stream.loop_stall_p99_ms": Target("<=", 1.5, "stream.loop_stall_p99_ms_inline_baseline"),
    "stream.loop_stalled_ms_per_s": Target("<=", 0.5,
                                           "stream.loop_stalled_ms_per_s_inline_baseline",
                                           "ratio"),
    "stream.wire_bytes_per_jpeg_byte": Target("<=", 1.05),
    "stream.server_cpu_pct": Target("<=", 10.0),
    "canvas.component_render_ms_200": Target("<=", 500.0),
    "canvas.pan_zoom_fps_200": Target(">=", 30.0),
    "canvas.live_loop_p99_ms_1000": Target("<=", 2.0),
    "vision.ocr_roi_ms": Target("<=", 80.0, "vision.ocr_full_720p_ms"),
    "vision.match_roi_ms": Target("<=", 3.0, "vision.match_full_720p_ms"),
    "vision.match_coarse_to_fine_720p_ms": Target("<=", 5.0, "vision.match_full_720p_ms"),
    "e2e.sim_reaction_ms_p50": Target("<=", 150.0),
    "recognition.cpu_s_per_min_10_flows": Target("<=", 1.3, "recognition.cpu_s_per_min_1_flow", "ratio"),
    "recognition.static_wait_core_pct": Target("<=", 5.0),
    "recognition.ocr_full_720p_ms": Target("<=", 300.0),
    "recognition.ocr_full_720p_exact": Target(">=", 1.0),
    "recognition.change_test_ms_720p": Target("<=", 1.0),
    "recognition.reaction_ms_p50_10_watchers": Target("<=", 1.2, "recognition.reaction_ms_p50_1_watcher", "ratio"),
    "e2e.lab_reaction_ms_p50": Target("<=", 400.0),
    "fleet.scaling_ratio": Target(">=", 1.5),
    "input.vnc_click_ms_p50": Target("<=", 2.0, "input.xdotool_click_ms_p50", "ratio"),
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
        if group not in GROUPS:
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
        keys = KEYS.get(group) or EXTRA_KEYS[group]
        for key in keys:
            res.values[key] = values.get(key)
        res.extra = {k: v for k, v in values.items() if k not in keys}
        results.append(res)
    return results

"""Benchmark group ``fleet``: a flow on many simulated targets through Dask.

* ``fleet.passes_per_min_2_workers`` / ``fleet.passes_per_min_1_worker``: the reference
  scenario-1 flow (OCR, a click, a wait for the confirmation) once on each of N
  simulated targets, on a warm LocalCluster of 2 worker processes and of 1;
  ``fleet.scaling_ratio`` is their ratio (bounded by the cores: 2 here);
* ``fleet.local_manager_passes_per_min``: the same N targets run by one
  :class:`~kvmrpa.engine.FlowManager` in this process (the baseline without Dask);
* ``fleet.overhead_ms_per_target``: a one-node flow on one target through the warm
  2-worker fleet (placement, the task, the result, the record written here) minus
  ``fleet.local_run_ms``, the same flow run by a local :class:`~kvmrpa.engine.FlowRun`;
* ``fleet.scheduler_kib_per_target``: how much the scheduler's process grows (peak
  RSS during the run over before it) per target, for M targets of that one-node flow
  in one run (a LocalCluster's scheduler lives in the caller's process, so this also
  counts the caller's bookkeeping of each target).

The clusters are the fleet's own (:func:`~kvmrpa.fleet._fleet.local_cluster`): each
worker's native thread pools (onnxruntime, OpenCV, OpenMP) sized to its one thread.

Quick mode: 4 targets, 3 overhead samples, M = 100; full: 16 targets, 7 samples, M = 400.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

from . import BenchSkipped

KEYS = (
    "fleet.passes_per_min_2_workers", "fleet.passes_per_min_1_worker", "fleet.scaling_ratio",
    "fleet.local_manager_passes_per_min", "fleet.overhead_ms_per_target", "fleet.local_run_ms",
    "fleet.scheduler_kib_per_target",
)


@contextlib.contextmanager
def _cluster(workers: int) -> Iterator[Any]:
    import distributed

    from ..fleet._fleet import local_cluster, quiet_dask_logs

    cluster = local_cluster(workers, 1)
    try:
        quiet_dask_logs()
        client = distributed.Client(cluster)
        try:
            client.wait_for_workers(workers, timeout=120)
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _targets(n: int, first_seed: int) -> list[Any]:
    from ..fleet import Target

    return [Target(f"bench-{i:03d}", f"sim://scenario1?seed={first_seed + i}",
                   f"sim://scenario1?seed={first_seed + i}") for i in range(n)]


def _passes_per_min(client: Any, flow: Any, n: int, seed: int) -> float:
    from ..fleet import Fleet

    workers = len(client.nthreads())
    # warm every worker: imports, the OCR models, the first desktop
    Fleet(_targets(workers, seed + 5000), scheduler=client).execute(flow)
    report = Fleet(_targets(n, seed), scheduler=client).execute(flow)
    bad = [r for r in report.results if not r.ok]
    if bad:
        raise RuntimeError(f"fleet bench: target {bad[0].target} {bad[0].status}: {bad[0].error}")
    return n * 60.0 / report.duration


def _local_manager(flow: Any, n: int, seed: int) -> float:
    from ..engine import Flow, FlowManager

    manager = FlowManager(record=False)
    targets = _targets(n, seed)
    for t in targets:
        copy = Flow.from_dict({**flow.to_dict(), "name": t.id})
        manager.add(copy)
    # warm this process the same way as the workers
    Flow.from_dict(flow.to_dict()).run(timeout=120, source="sim://scenario1?seed=9999",
                                       input="sim://scenario1?seed=9999", record=False)
    start = time.perf_counter()
    runs = [manager.start(t.id, source=t.source, input=t.input) for t in targets]
    for run in runs:
        res = run.result(timeout=300)
        if not res.ok:
            raise RuntimeError(f"fleet bench: local run {res.flow} {res.status}: {res.error}")
    return n * 60.0 / (time.perf_counter() - start)


def _overhead(client: Any, samples: int) -> tuple[float, float]:
    from ..engine import Flow, FlowRun
    from ..fleet import Fleet, Target

    flow = Flow("bench-overhead")
    flow.add("variable", "set", variable="x", value=1)
    target = [Target("overhead", "sim://desktop?seed=1", "sim://desktop?seed=1")]
    fleet = Fleet(target, scheduler=client)
    fleet.execute(flow)  # warm
    remote, local = [], []
    for _ in range(samples):
        start = time.perf_counter()
        report = fleet.execute(flow)
        remote.append(time.perf_counter() - start)
        if not report.results[0].ok:
            raise RuntimeError(f"fleet bench: overhead run {report.results[0].error}")
        start = time.perf_counter()
        FlowRun(flow, source=target[0].source, input=target[0].input).start().result(60)
        local.append(time.perf_counter() - start)
    local_ms = statistics.median(local) * 1000
    return statistics.median(remote) * 1000 - local_ms, local_ms


def _scheduler_kib_per_target(client: Any, n: int) -> float:
    import threading

    from ..engine import Flow
    from ..fleet import Fleet, Target

    def rss() -> int:
        # the scheduler's own process monitor (psutil, which distributed depends on)
        return int(client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.monitor.proc.memory_info().rss))

    flow = Flow("bench-memory")
    flow.add("variable", "set", variable="x", value=1)
    targets = [Target(f"m{i:04d}", "sim://desktop?seed=1", "sim://desktop?seed=1")
               for i in range(n)]
    Fleet(targets[:2], scheduler=client).execute(flow)  # warm
    base = peak = rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, rss())

    sampler = threading.Thread(target=sample, name="kvmrpa-bench-rss", daemon=True)
    sampler.start()
    try:
        report = Fleet(targets, scheduler=client).execute(flow)
    finally:
        done.set()
        sampler.join(5)
    peak = max(peak, rss())
    bad = [r for r in report.results if not r.ok]
    if bad:
        raise RuntimeError(f"fleet bench: memory run {bad[0].target}: {bad[0].error}")
    return max(0, peak - base) / 1024 / n


def run(quick: bool) -> dict[str, float | None]:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise BenchSkipped("Dask distributed is not installed (pip install 'kvmrpa[fleet]')") \
            from None
    from ..engine import Flow
    from ..sim import flow_path

    n = 4 if quick else 16
    flow = Flow.load(flow_path("scenario1"))
    out: dict[str, float | None] = dict.fromkeys(KEYS)
    with _cluster(2) as client:
        out["fleet.passes_per_min_2_workers"] = _passes_per_min(client, flow, n, 100)
        overhead, local_ms = _overhead(client, 3 if quick else 7)
        out["fleet.overhead_ms_per_target"] = overhead
        out["fleet.local_run_ms"] = local_ms
        out["fleet.scheduler_kib_per_target"] = _scheduler_kib_per_target(
            client, 100 if quick else 400)
    with _cluster(1) as client:
        out["fleet.passes_per_min_1_worker"] = _passes_per_min(client, flow, n, 100)
    out["fleet.local_manager_passes_per_min"] = _local_manager(flow, n, 100)
    one = out["fleet.passes_per_min_1_worker"]
    two = out["fleet.passes_per_min_2_workers"]
    out["fleet.scaling_ratio"] = two / one if one and two else None
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}

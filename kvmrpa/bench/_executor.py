"""Executor benchmarks: parallel speedup, scheduling overhead, debugger cost.

Every figure is measured next to its baseline in the same process and run:

* ``executor.parallel_speedup_2`` / ``_8``: a pass of 2 (8) independent ``wait`` branches
  against the same waits chained one after another (the serial order the original
  system used): serial time / parallel time (ideal 2 and 8);
* ``executor.overhead_us_per_node_chain`` / ``_fanout``: pass time per node of a
  1,000-node chain and a 1,000-node fan-out/fan-in of ``wait(ms=0)`` nodes (each
  yields to the loop once), records off, no subscribers;
* ``executor.asyncio_task_baseline_us``: ``await asyncio.create_task(...)`` of a
  coroutine that yields once, per task, on the same loop: the floor for the above;
* ``executor.debug_attached_ratio``: the chain pass with a debugger attached and no
  breakpoints, divided by the same pass without one.

Timed figures are the best of several alternating repetitions (as ``timeit`` reports),
which is what the work costs when the machine does not interfere.
"""

from __future__ import annotations

import asyncio
import time

from .._runtime import run_sync
from ..engine import Flow, FlowRun

__all__ = ["run"]


def _parallel(branches: int, ms: int) -> Flow:
    flow = Flow(f"parallel-{branches}")
    for i in range(branches):
        flow.add("wait", f"w{i}", ms=ms)
    return flow


def _serial(branches: int, ms: int) -> Flow:
    flow = Flow(f"serial-{branches}")
    for i in range(branches):
        flow.add("wait", f"w{i}", ms=ms)
        if i:
            flow.connect(f"w{i - 1}", f"w{i}")
    return flow


def _chain(n: int) -> Flow:
    flow = Flow(f"chain-{n}")
    prev = None
    for i in range(n):
        nid = f"n{i}"
        flow.add("wait", nid, ms=0)
        if prev is not None:
            flow.connect(prev, nid)
        prev = nid
    return flow


def _fanout(n: int) -> Flow:
    flow = Flow(f"fanout-{n}")
    flow.add("wait", "root", ms=0)
    flow.add("wait", "join", ms=0)
    for i in range(n):
        nid = f"n{i}"
        flow.add("wait", nid, ms=0)
        flow.connect("root", nid)
        flow.connect(nid, "join")
    return flow


async def _pass_time(flow: Flow, debug: bool = False) -> float:
    run = FlowRun(flow, passes=1, record=False, debug=debug)
    await run.astart()
    result = await run.aresult()
    if result.status != "ok":
        raise RuntimeError(f"benchmark flow {flow.name!r} failed: {result.error}")
    assert run.last_pass_duration is not None
    return run.last_pass_duration


async def _baseline(n: int) -> float:
    async def one() -> None:
        await asyncio.sleep(0)

    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.create_task(one())
    return time.perf_counter() - t0


async def _measure(quick: bool) -> dict[str, float | None]:
    ms = 200 if quick else 1000
    reps = 7 if quick else 11
    n = 1000
    out: dict[str, float | None] = {}
    for branches in (2, 8):
        par = min([await _pass_time(_parallel(branches, ms)) for _ in range(2)])
        ser = await _pass_time(_serial(branches, ms))
        out[f"executor.parallel_speedup_{branches}"] = round(ser / par, 3)
    chain, fan = _chain(n), _fanout(n)
    await _pass_time(chain)  # warm-up
    chain_t, fan_t, base_t, plain, debug = [], [], [], [], []
    for _ in range(reps):
        base_t.append(await _baseline(n))
        chain_t.append(await _pass_time(chain))
        fan_t.append(await _pass_time(fan))
        plain.append(await _pass_time(chain))
        debug.append(await _pass_time(chain, debug=True))
    # best of N (as timeit does): the least disturbed run of a fixed amount of work
    out["executor.overhead_us_per_node_chain"] = round(min(chain_t) / n * 1e6, 2)
    out["executor.overhead_us_per_node_fanout"] = round(min(fan_t) / (n + 2) * 1e6, 2)
    out["executor.asyncio_task_baseline_us"] = round(min(base_t) / n * 1e6, 2)
    out["executor.debug_attached_ratio"] = round(min(debug) / min(plain), 3)
    return out


def run(quick: bool = True) -> dict[str, float | None]:
    """Measure the executor figures (``quick``: shorter waits, fewer repetitions)."""
    return run_sync(_measure(quick))

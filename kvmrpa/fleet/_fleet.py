"""The caller's side of a fleet run: :class:`Fleet` places targets on Dask workers.

Each target's whole run is one Dask task pinned to one worker (``workers=[address]``
with ``allow_other_workers=False``; targets are spread evenly over the workers alive
when the run starts). The caller watches the futures and the scheduler's worker set:

* a target's task ends → its outcome comes back, and its run record (spooled on the
  worker) is written into the caller's run store, with a ``fleet`` field on the first
  line (target, worker, attempt, ``rerun_of``);
* a target's worker leaves mid-run (killed, lost) → that attempt is written as a record
  whose status is ``interrupted``, and the target runs again on another live worker,
  up to ``reruns`` times (default 1);
* :meth:`Fleet.stop` (or Ctrl-C in :meth:`Fleet.execute`) sets each target's Dask
  :class:`distributed.Event` (one per target, so ``stop(["b2-01"])`` stops that one
  alone): the target's run stops with the engine's stop, and what it reports comes
  back and is recorded as usual; a stopped target is never re-run.

With no scheduler address, a :class:`distributed.LocalCluster` of worker processes on
loopback (no dashboard unless asked, on loopback then) is started for the run and
closed after it. Every client and cluster is closed on every path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import FleetError
from ._targets import Target, load_targets, parse_selector, select

__all__ = ["Fleet", "FleetReport", "TargetResult", "local_cluster", "quiet_dask_logs",
           "worker_env"]

log = logging.getLogger("kvmrpa.fleet")
#: Seconds between looks at the futures and the worker set.
_TICK = 0.25
#: Statuses a target's outcome may have.
STATUSES = ("ok", "failed", "stopped", "interrupted")


def _require_dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise FleetError("fleet runs need Dask distributed: pip install 'kvmrpa[fleet]'") from None
    return distributed


def quiet_dask_logs(level: int = logging.ERROR) -> None:
    """Raise the level of Dask's loggers in this process (it logs every lost worker,
    closed connection and retired worker at INFO/WARNING)."""
    _require_dask()
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(level)


def worker_env(threads: int = 1) -> dict[str, str]:
    """The environment of a fleet's worker processes: a worker of ``threads`` threads
    uses that many cores. The kvmrpa runtime's CPU pool (OCR, matching, JPEG: calls that
    release the GIL) has ``threads`` threads, not the default 4, else one worker process
    runs 4 recognitions at once and fills every core by itself; and each native
    library's thread pool is sized to it too (OpenMP/BLAS, OpenCV and onnxruntime would
    each start one thread per core in every worker process, and those threads
    spin-wait)."""
    n = str(max(1, int(threads)))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "KVMRPA_RUNTIME_NATIVE_THREADS": n, "KVMRPA_RUNTIME_POOL_SIZE": n}


def local_cluster(workers: int, threads: int = 1, *, dashboard: bool = False,
                  home: str | None = None) -> Any:
    """A :class:`distributed.LocalCluster` of ``workers`` processes on loopback, set up as
    fleet runs need it (the worker preload, :func:`worker_env`, ``home`` as the workers'
    ``KVMRPA_HOME``); the scheduler's HTTP server (health, and the Dask dashboard when
    ``dashboard``) on loopback, on a free port. The caller closes it."""
    distributed = _require_dask()
    env = worker_env(threads)
    if home is not None:
        env["KVMRPA_HOME"] = home
    return distributed.LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True,
        host="127.0.0.1", protocol="tcp://", dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": bool(dashboard)},
        worker_dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR, env=env,
        preload=["kvmrpa.fleet._preload"])


def _new_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"


@dataclass
class TargetResult:
    """One target's outcome in a fleet run."""

    target: str
    status: str
    passes: int = 0
    error: str | None = None
    worker: str | None = None
    attempts: int = 1
    run_id: str | None = None
    record: str | None = None
    duration: float = 0.0
    actions: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    interrupted: list[dict[str, Any]] = field(default_factory=list)
    stopped_at: float | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """The ``kvmrpa fleet run --json`` object of this target."""
        return {"kind": "target", "target": self.target, "status": self.status,
                "passes": self.passes, "error": self.error, "worker": self.worker,
                "attempts": self.attempts, "run_id": self.run_id, "record": self.record,
                "duration": round(self.duration, 4), "actions": self.actions,
                "labels": self.labels, "interrupted": self.interrupted,
                "stopped_at": self.stopped_at}


@dataclass
class FleetReport:
    """Every selected target's result, and a summary."""

    flow: str
    results: list[TargetResult]
    duration: float
    workers: list[str]
    stopped: bool = False

    def summary(self) -> dict[str, Any]:
        counts = {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}
        passes = sum(r.passes for r in self.results if r.status in ("ok", "stopped"))
        return {"kind": "summary", "flow": self.flow, "targets": len(self.results), **counts,
                "reruns": sum(r.attempts - 1 for r in self.results),
                "passes": passes, "duration": round(self.duration, 4),
                "passes_per_min": round(passes * 60.0 / self.duration, 3) if self.duration else None,
                "workers": len(self.workers), "stop_requested": self.stopped}

    def table(self) -> Any:
        """A pandas DataFrame (one row per target) when pandas is installed, else the
        list of :class:`TargetResult`."""
        try:
            import pandas as pd
        except ImportError:
            return list(self.results)
        rows = [r.as_dict() for r in self.results]
        for row in rows:
            row.pop("kind")
        return pd.DataFrame(rows).set_index("target") if rows else pd.DataFrame()


@dataclass
class _Attempt:
    target: Target
    number: int
    worker: str
    attempt_id: str
    submitted: float
    rerun_of: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


# -- records -------------------------------------------------------------------------------
def _write_record(run_id: str, flow: str, target: str, lines: Sequence[dict[str, Any]]) -> str:
    """Write record lines into this process's run store; returns the file's path."""
    from ..engine._records import get_run_store

    record = get_run_store().open(run_id, f"{flow}@{target}")
    for line in lines:
        record.write(line)
    record.close()
    record.wait_closed(10.0)
    return str(record.path)


def _fleet_info(att: _Attempt, worker: str | None) -> dict[str, Any]:
    return {"target": att.target.id, "attempt": att.number, "worker": worker,
            "rerun_of": att.rerun_of, "labels": dict(att.target.labels)}


def _record_from_worker(att: _Attempt, flow: str, data: Mapping[str, Any]) -> str | None:
    lines = []
    for raw in data.get("record_lines") or ():
        with contextlib.suppress(json.JSONDecodeError):
            lines.append(json.loads(raw))
    if not lines:
        return None
    if lines[0].get("kind") == "run":
        lines[0]["fleet"] = _fleet_info(att, data.get("worker"))
    extra = [{"kind": "fleet", "event": "stopped", "wall": data["stopped_at"]}] \
        if data.get("stopped_at") else []
    if extra:  # before the flow_finished line, which closes the run's story
        ends = [i for i, line in enumerate(lines) if line.get("kind") == "flow_finished"]
        at = ends[-1] if ends else len(lines)
        lines[at:at] = extra
    return _write_record(data.get("run_id") or att.attempt_id, flow, att.target.id, lines)


def _record_interrupted(att: _Attempt, flow: str, why: str) -> str:
    now = time.time()
    lines = [
        {"kind": "run", "run_id": att.attempt_id, "flow": flow, "started": att.submitted,
         "passes": None, "source": None, "input": None, "fleet": _fleet_info(att, att.worker)},
        {"kind": "fleet", "event": "interrupted", "wall": now, "worker": att.worker,
         "reason": why},
        {"kind": "flow_finished", "flow": flow, "run_id": att.attempt_id,
         "t": now - att.submitted, "wall": now, "status": "interrupted", "passes": None,
         "error": why},
    ]
    return _write_record(att.attempt_id, flow, att.target.id, lines)


# -- the fleet -----------------------------------------------------------------------------
class Fleet:
    """Run one flow on many targets through Dask distributed.

    ``targets``: a list of :class:`Target` or a targets file path. ``scheduler``: a
    scheduler address (``tcp://host:8786``) or an existing ``distributed.Client``; none
    starts a ``LocalCluster`` of ``local`` worker processes (``threads`` each) for each
    run. ``wait_workers``: workers of a running cluster to wait for before the targets
    are placed (a LocalCluster waits for all of its own).
    ``reruns``: how often a target whose worker was lost runs again elsewhere.
    ``dashboard``: serve the LocalCluster's Dask dashboard on loopback.
    """

    def __init__(self, targets: Sequence[Target] | str | Path, *, scheduler: Any = None,
                 local: int = 2, threads: int = 1, reruns: int = 1, dashboard: bool = False,
                 stop_timeout: float = 30.0, connect_timeout: float = 30.0,
                 wait_workers: int = 1) -> None:
        self.targets: list[Target] = (load_targets(targets) if isinstance(targets, str | Path)
                                      else list(targets))
        if not 1 <= local <= 256:
            raise FleetError(f"local: {local} workers is outside [1, 256]")
        if not 1 <= threads <= 64:
            raise FleetError(f"threads: {threads} is outside [1, 64]")
        if not 1 <= wait_workers <= 10_000:
            raise FleetError(f"wait_workers: {wait_workers} is outside [1, 10000]")
        if not 0 <= reruns <= 10:
            raise FleetError(f"reruns: {reruns} is outside [0, 10]")
        if not 0 < stop_timeout <= 3600 or not 0 < connect_timeout <= 3600:
            raise FleetError("stop_timeout and connect_timeout must be in (0, 3600] seconds")
        self.scheduler = scheduler
        self.local = local
        self.threads = threads
        self.reruns = reruns
        self.dashboard = dashboard
        self.stop_timeout = stop_timeout
        self.connect_timeout = connect_timeout
        self.wait_workers = wait_workers
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: Targets asked to stop (``stop(ids)``), kept until the run ends.
        self._stop_ids: set[str] = set()
        #: The current run's stop events, by target id (set at most once each).
        self._events: dict[str, Any] = {}
        self._deadlines: dict[str, float] = {}
        #: The Dask dashboard of the current run's cluster, when there is one.
        self.dashboard_link: str | None = None

    # -- cluster ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _client(self) -> Iterator[Any]:
        distributed = _require_dask()
        if self.scheduler is not None and not isinstance(self.scheduler, str):
            yield self.scheduler  # the caller's client: the caller closes it
            return
        cluster = client = None
        spool = None
        try:
            if self.scheduler is None:
                spool = tempfile.mkdtemp(prefix="kvmrpa-fleet-spool-")
                cluster = local_cluster(self.local, self.threads, dashboard=self.dashboard,
                                        home=spool)
                client = distributed.Client(cluster, timeout=self.connect_timeout)
            else:
                try:
                    client = distributed.Client(self.scheduler, timeout=self.connect_timeout)
                except (OSError, TimeoutError) as exc:
                    raise FleetError(f"cannot reach the Dask scheduler {self.scheduler}: "
                                     f"{exc}") from None
            self.dashboard_link = client.dashboard_link if self.dashboard or cluster is None \
                else None
            yield client
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close(timeout=10)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close(timeout=10)
            if spool is not None:
                shutil.rmtree(spool, ignore_errors=True)

    # -- control ---------------------------------------------------------------------------
    def stop(self, targets: Iterable[str] | None = None) -> None:
        """Stop every target's run of the current :meth:`execute`, or only those of
        ``targets`` (ids). Thread-safe; with no ``targets`` also safe in a signal
        handler: it only raises a flag the run looks at every tick."""
        if targets is None:
            self._stop.set()
            return
        with self._lock:
            self._stop_ids.update(str(t) for t in targets)

    # -- running ---------------------------------------------------------------------------
    def run(self, flow: Any, *, progress: bool = True, **options: Any) -> Any:
        """Run ``flow`` on the selected targets (options as for :meth:`execute`); a table
        of results (see :meth:`FleetReport.table`). ``progress`` prints one line as each
        target ends (in a notebook: under the cell, while it runs)."""
        if progress and "on_result" not in options:
            total = len(select(self.targets, parse_selector(options.get("select_labels"))))
            count = [0]

            def _show(res: TargetResult) -> None:
                count[0] += 1
                print(f"[{count[0]}/{total}] {res.target}: {res.status}"
                      + (f" ({res.error})" if res.error else ""), flush=True)

            options["on_result"] = _show
        return self.execute(flow, **options).table()

    def execute(self, flow: Any, *, select_labels: Mapping[str, str] | str | None = None,
                passes: int | None = None, duration: float | None = None,
                interval: float | None = None,
                on_result: Callable[[TargetResult], None] | None = None,
                on_start: Callable[[dict[str, Any]], None] | None = None,
                placement: Mapping[str, str] | None = None) -> FleetReport:
        """Run ``flow`` (a :class:`~kvmrpa.engine.Flow` or a flow file) on every target
        matching ``select_labels``; blocks until every target ended; returns the report.
        ``on_start({"workers", "dashboard"})`` is called once the workers are there,
        ``on_result(result)`` as each target ends. ``placement`` (target id → worker
        address) pins a target to that worker when it is alive (else targets are
        spread evenly). Ctrl-C (``KeyboardInterrupt``) stops every target and still
        returns the report."""
        from ..engine import Flow

        if not isinstance(flow, Flow):
            flow = Flow.load(flow)
        flow.validate()
        chosen = select(self.targets, parse_selector(select_labels))
        if not chosen:
            raise FleetError(f"no target matches {select_labels!r}")
        distributed = _require_dask()
        self._stop.clear()
        start = time.monotonic()
        try:
            return self._execute(distributed, flow, chosen, start, passes, duration,
                                 interval, on_result, on_start, placement)
        finally:
            with self._lock:
                self._stop_ids.clear()
                self._events = {}

    def _execute(self, distributed: Any, flow: Any, chosen: list[Target], start: float,
                 passes: int | None, duration: float | None, interval: float | None,
                 on_result: Callable[[TargetResult], None] | None,
                 on_start: Callable[[dict[str, Any]], None] | None,
                 placement: Mapping[str, str] | None) -> FleetReport:
        early: list[TargetResult] = []
        with self._client() as client:
            with self._lock:
                stop_ids = set(self._stop_ids)
            if self._stop.is_set() or stop_ids:  # stopped while the cluster started
                early = [TargetResult(t.id, "stopped", labels=dict(t.labels))
                         for t in chosen if self._stop.is_set() or t.id in stop_ids]
                for res in early:
                    if on_result is not None:
                        on_result(res)
                chosen = [t for t in chosen if not self._stop.is_set() and t.id not in stop_ids]
                if not chosen:
                    return FleetReport(flow.name, early, time.monotonic() - start, [],
                                       stopped=self._stop.is_set())
            want = self.local if isinstance(self.scheduler, type(None)) else self.wait_workers
            try:
                client.wait_for_workers(want, timeout=self.connect_timeout)
            except TimeoutError:
                raise FleetError(f"fewer than {want} Dask worker(s) joined within "
                                 f"{self.connect_timeout:g} s") from None
            if on_start is not None:
                on_start({"workers": sorted(client.nthreads()),
                          "dashboard": self.dashboard_link})
            stop_name = f"kvmrpa-fleet-stop-{secrets.token_hex(8)}"
            with self._lock:
                self._events = {t.id: distributed.Event(f"{stop_name}-{t.id}", client=client)
                                for t in chosen}
            try:
                results, workers, stopped = self._drive(client, distributed, flow, chosen,
                                                        stop_name, {"passes": passes,
                                                                    "duration": duration,
                                                                    "interval": interval},
                                                        on_result, placement or {})
            finally:
                with self._lock:
                    events, self._events = list(self._events.values()), {}
                for event in events:
                    with contextlib.suppress(Exception):
                        event.clear()
        results = early + results
        order = {t.id: i for i, t in enumerate(chosen)}
        results.sort(key=lambda r: order.get(r.target, -1))
        return FleetReport(flow.name, results, time.monotonic() - start, workers, stopped)

    def _signal(self, ids: Iterable[str]) -> None:
        """Set the stop events of ``ids`` (each one round trip to the scheduler)."""
        with self._lock:
            events = [self._events.get(i) for i in ids]
        for event in events:
            if event is None:
                continue
            try:
                event.set()
            except Exception as exc:  # the scheduler is gone: the runs are too
                log.warning("fleet: cannot signal the stop: %s", exc)

    def _drive(self, client: Any, distributed: Any, flow: Any, chosen: list[Target],
               stop_name: str, options: dict[str, Any],
               on_result: Callable[[TargetResult], None] | None,
               placement: Mapping[str, str],
               ) -> tuple[list[TargetResult], list[str], bool]:
        from ._worker import run_target

        flow_doc = flow.to_dict()
        workers = sorted(client.nthreads())
        load: dict[str, int] = dict.fromkeys(workers, 0)
        pending: dict[Any, _Attempt] = {}
        results: list[TargetResult] = []
        stopping = False
        #: Targets whose stop was signalled, with the time by which they must end.
        self._deadlines = {}

        def submit(target: Target, worker: str, number: int, rerun_of: str | None,
                   history: list[dict[str, Any]]) -> None:
            att = _Attempt(target, number, worker, _new_id(), time.time(), rerun_of, history)
            fut = client.submit(run_target, flow_doc, target.to_wire(), options,
                                f"{stop_name}-{target.id}",
                                key=f"kvmrpa-fleet-{target.id}-{att.attempt_id}",
                                workers=[worker], allow_other_workers=False, pure=False,
                                retries=0)
            pending[fut] = att
            load[worker] = load.get(worker, 0) + 1

        def finish(att: _Attempt, res: TargetResult) -> None:
            res.attempts, res.interrupted = att.number, att.history
            res.labels = dict(att.target.labels)
            results.append(res)
            if on_result is not None:
                try:
                    on_result(res)
                except Exception:
                    log.exception("fleet: on_result callback failed")

        def interrupted(fut: Any, att: _Attempt, why: str, alive: list[str]) -> None:
            pending.pop(fut, None)
            load[att.worker] = max(0, load.get(att.worker, 1) - 1)
            with contextlib.suppress(Exception):
                fut.cancel()
            path = _record_interrupted(att, flow.name, why)
            entry = {"run_id": att.attempt_id, "worker": att.worker, "reason": why,
                     "record": path}
            history = [*att.history, entry]
            others = [w for w in alive if w != att.worker]
            stopped = self._stop.is_set() or att.target.id in self._deadlines
            if not stopped and att.number <= self.reruns and others:
                target_worker = min(others, key=lambda w: (load.get(w, 0), w))
                submit(att.target, target_worker, att.number + 1, att.attempt_id, history)
            else:
                res = TargetResult(att.target.id, "interrupted", error=why, worker=att.worker,
                                   run_id=att.attempt_id, record=path)
                att.history = history[:-1]
                finish(att, res)

        try:
            spread = 0
            for target in chosen:
                where = placement.get(target.id)
                if where not in load:
                    where = workers[spread % len(workers)]
                    spread += 1
                submit(target, where, 1, None, [])
            while pending:
                try:
                    stopping = self._tick(client, distributed, flow, pending, stopping,
                                          finish, interrupted, load)
                except KeyboardInterrupt:
                    self.stop()
        finally:
            if pending:  # leaving early (an error): no run may go on without its caller
                self._signal({att.target.id for att in pending.values()})
                for fut in list(pending):
                    with contextlib.suppress(Exception):
                        fut.cancel()
        return results, workers, stopping

    def _tick(self, client: Any, distributed: Any, flow: Any, pending: dict[Any, _Attempt],
              stopping: bool, finish: Callable[..., None],
              interrupted: Callable[..., None], load: dict[str, int]) -> bool:
        """One look at the futures and the workers; returns whether every target was
        asked to stop."""
        stopping = stopping or self._stop.is_set()
        with self._lock:
            wanted = set(self._stop_ids)
        fresh = {att.target.id for att in pending.values()
                 if (stopping or att.target.id in wanted) and att.target.id not in self._deadlines}
        if fresh:
            deadline = time.monotonic() + self.stop_timeout
            self._deadlines.update(dict.fromkeys(fresh, deadline))
            self._signal(sorted(fresh))
        try:
            done, _ = distributed.wait(list(pending), timeout=_TICK,
                                       return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = set()
        alive = sorted(client.nthreads()) if pending else []
        for fut in list(done):
            att = pending.get(fut)
            if att is None:
                continue
            if fut.status == "finished":
                try:
                    data = fut.result(timeout=30)
                except Exception as exc:  # the result was lost with its worker
                    interrupted(fut, att, f"result lost: {type(exc).__name__}", alive)
                    continue
                pending.pop(fut)
                load[att.worker] = max(0, load.get(att.worker, 1) - 1)
                path = _record_from_worker(att, flow.name, data)
                finish(att, TargetResult(
                    att.target.id, data["status"], passes=data["passes"],
                    error=data["error"], worker=data["worker"] or att.worker,
                    run_id=data["run_id"], record=path, duration=data["duration"],
                    actions=data["actions"], stopped_at=data["stopped_at"],
                    variables=data.get("variables") or {}))
            else:
                exc = None
                with contextlib.suppress(Exception):
                    exc = fut.exception(timeout=1)
                killed = type(exc).__name__ == "KilledWorker" or fut.status == "cancelled"
                if killed:
                    interrupted(fut, att, f"worker {att.worker} was lost mid-run", alive)
                else:
                    pending.pop(fut)
                    load[att.worker] = max(0, load.get(att.worker, 1) - 1)
                    why = f"target {att.target.id!r}: task failed: {type(exc).__name__}: {exc}"
                    path = _record_interrupted(att, flow.name, why)
                    finish(att, TargetResult(att.target.id, "failed", error=why,
                                             worker=att.worker, run_id=att.attempt_id,
                                             record=path))
        alive_set = set(alive)
        for fut, att in list(pending.items()):
            if att.worker not in alive_set:
                interrupted(fut, att, f"worker {att.worker} was lost mid-run", alive)
        if pending and not alive_set and not stopping:
            # every worker is gone: wait for one to join, else give up
            try:
                client.wait_for_workers(1, timeout=self.connect_timeout)
            except TimeoutError:
                for fut, att in list(pending.items()):
                    interrupted(fut, att, "no Dask worker left", [])
        now = time.monotonic()
        for fut, att in list(pending.items()):
            if now > self._deadlines.get(att.target.id, float("inf")):
                interrupted(fut, att, f"did not stop within {self.stop_timeout:g} s", [])
        return stopping

"""The fleet dashboard's model, without UI packages: a grid of targets on a Dask cluster.

:class:`FleetBoard` holds one :class:`Tile` per target (state, last outcome, pass
rate, the latest thumbnail of its screen, the worker it is placed on) and does what
the dashboard's buttons ask:

* :meth:`FleetBoard.start` runs a flow on some targets: one :class:`~kvmrpa.fleet.Fleet`
  execution per start, in a thread the board owns, each target pinned to its tile's
  worker (so its run and its thumbnail share one source on that worker);
* :meth:`FleetBoard.stop` stops some targets through their execution's
  :meth:`Fleet.stop` (the engine's stop on the worker: no input after it);
* while anyone looks (:meth:`FleetBoard.snapshot` called within :data:`WATCH_TTL`
  seconds), a thread asks each worker's :class:`~kvmrpa.fleet._thumbs.Thumbnailer`
  actor for its targets' thumbnails, at most ``thumb_fps`` (≤ 1) times a second. The
  board owns the thumbnail sources it asked for (:attr:`FleetBoard.held`): once nobody
  looks, it releases them all, and a target that left a worker (or a closer look that
  closed) has its source there released at the next refresh, so a thumbnail never keeps
  a target's source (a simulated desktop, a decoder) open between runs for nobody.

The cluster side is a backend (:class:`DaskBackend`: a LocalCluster or a running
scheduler); tests give a stand-in with the same methods.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .._errors import FleetError
from ._fleet import Fleet, TargetResult, local_cluster, quiet_dask_logs
from ._targets import Target

__all__ = ["DaskBackend", "FleetBoard", "Tile", "label_filter", "matches_filter"]

log = logging.getLogger("kvmrpa.fleet")

#: States a tile may show; ``queued``/``running``/``stopping`` while a run is active.
STATES = ("idle", "queued", "running", "stopping", "ok", "failed", "stopped", "interrupted")
ACTIVE = frozenset({"queued", "running", "stopping"})
#: Seconds after the last snapshot during which thumbnails keep being refreshed.
WATCH_TTL = 5.0
#: Most thumbnail refreshes per second (the dashboard's promise: at most 1 fps).
MAX_THUMB_FPS = 1.0


@dataclass(frozen=True)
class Tile:
    """What the grid shows of one target (an immutable snapshot)."""

    id: str
    labels: Mapping[str, str]
    state: str = "idle"
    worker: str | None = None
    last: TargetResult | None = None
    runs: int = 0
    oks: int = 0
    thumb: bytes | None = None
    thumb_seq: int = -1
    thumb_size: tuple[int, int] = (0, 0)
    thumb_error: str | None = None
    #: Changes whenever anything the grid shows changes.
    version: int = 0

    @property
    def pass_rate(self) -> float | None:
        """Ok runs over finished runs that were not stopped by a user (None before any)."""
        return self.oks / self.runs if self.runs else None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def label_filter(chips: Iterable[str]) -> dict[str, set[str]]:
    """``["room=b2", "room=a1", "os=win11"]`` → ``{"room": {"b2", "a1"}, "os": {"win11"}}``
    (a one-line :class:`FleetError` for a chip that is not ``label=value``)."""
    out: dict[str, set[str]] = {}
    for chip in chips:
        key, sep, value = str(chip).partition("=")
        if not sep or not key.strip():
            raise FleetError(f"label filter {chip!r}: expected LABEL=VALUE")
        out.setdefault(key.strip(), set()).add(value.strip())
    return out


def matches_filter(tile_id: str, labels: Mapping[str, str],
                   wanted: Mapping[str, set[str]]) -> bool:
    """Every label of ``wanted`` has one of its values (values of one label: any of
    them; different labels: all of them); ``id`` filters by id."""
    for key, values in wanted.items():
        have = tile_id if key == "id" else labels.get(key)
        if have not in values:
            return False
    return True


class Backend(Protocol):
    """The cluster side of a board. ``fleet(targets)`` returns what runs them: an object
    with :class:`~kvmrpa.fleet.Fleet`'s ``execute(flow, **options)`` and
    ``stop(ids=None)``."""

    dashboard_link: str | None

    def open(self) -> None: ...
    def workers(self) -> list[str]: ...
    def fleet(self, targets: Sequence[Target]) -> Any: ...
    def thumbnails(self, assignment: Mapping[str, Mapping[str, str]], width: int,
                   quality: int) -> dict[str, dict[str, Any]]: ...
    def release_thumbnails(self, keep: Mapping[str, Collection[str]] | None) -> None: ...
    def close(self) -> None: ...


class DaskBackend:
    """A long-lived Dask client for a board: a LocalCluster of ``local`` worker processes
    (its Dask dashboard on loopback) when ``scheduler`` is None, else the scheduler at
    that address; one :class:`~kvmrpa.fleet._thumbs.Thumbnailer` actor per worker."""

    def __init__(self, scheduler: str | None = None, *, local: int = 2, threads: int = 1,
                 reruns: int = 1, connect_timeout: float = 60.0, wait_workers: int = 1,
                 dashboard: bool = True) -> None:
        self.scheduler, self.local, self.threads = scheduler, local, threads
        self.reruns, self.connect_timeout, self.wait_workers = reruns, connect_timeout, wait_workers
        self.dashboard = dashboard
        self.dashboard_link: str | None = None
        self._cluster: Any = None
        self._client: Any = None
        self._spool: str | None = None
        self._actors: dict[str, tuple[Any, Any]] = {}  # worker → (future, actor)
        self._lock = threading.Lock()

    def open(self) -> None:
        import shutil
        import tempfile

        from ._fleet import _require_dask

        distributed = _require_dask()
        try:
            if self.scheduler is None:
                self._spool = tempfile.mkdtemp(prefix="kvmrpa-fleet-spool-")
                self._cluster = local_cluster(self.local, self.threads,
                                              dashboard=self.dashboard, home=self._spool)
                self._client = distributed.Client(self._cluster, timeout=self.connect_timeout)
                want = self.local
            else:
                try:
                    self._client = distributed.Client(self.scheduler,
                                                      timeout=self.connect_timeout)
                except (OSError, TimeoutError) as exc:
                    raise FleetError(f"cannot reach the Dask scheduler {self.scheduler}: "
                                     f"{exc}") from None
                want = self.wait_workers
            quiet_dask_logs()
            try:
                self._client.wait_for_workers(want, timeout=self.connect_timeout)
            except TimeoutError:
                raise FleetError(f"fewer than {want} Dask worker(s) joined within "
                                 f"{self.connect_timeout:g} s") from None
            self.dashboard_link = self._client.dashboard_link if self.dashboard else None
        except BaseException:
            self.close()
            if self._spool:
                shutil.rmtree(self._spool, ignore_errors=True)
            raise

    def workers(self) -> list[str]:
        return sorted(self._client.nthreads()) if self._client is not None else []

    def fleet(self, targets: Sequence[Target]) -> Fleet:
        return Fleet(targets, scheduler=self._client, reruns=self.reruns)

    def _actor(self, worker: str) -> Any:
        from ._thumbs import Thumbnailer

        with self._lock:
            have = self._actors.get(worker)
        if have is not None:
            return have[1]
        fut = self._client.submit(Thumbnailer, actor=True, workers=[worker],
                                  allow_other_workers=False, pure=False)
        actor = fut.result(timeout=self.connect_timeout)
        with self._lock:
            self._actors[worker] = (fut, actor)
        return actor

    def thumbnails(self, assignment: Mapping[str, Mapping[str, str]], width: int,
                   quality: int) -> dict[str, dict[str, Any]]:
        """Ask every worker's thumbnailer at once; a worker that fails answers errors."""
        calls = {}
        out: dict[str, dict[str, Any]] = {}
        for worker, sources in assignment.items():
            try:
                calls[worker] = (self._actor(worker).grab(dict(sources), width, quality),
                                 sources)
            except Exception as exc:
                self._drop(worker)
                out.update({tid: {"error": f"worker {worker}: {type(exc).__name__}"}
                            for tid in sources})
        for worker, (pending, sources) in calls.items():
            try:
                out.update(pending.result())
            except Exception as exc:  # the worker left: its actor with it
                self._drop(worker)
                out.update({tid: {"error": f"worker {worker}: {type(exc).__name__}"}
                            for tid in sources})
        return out

    def release_thumbnails(self, keep: Mapping[str, Collection[str]] | None) -> None:
        """Have every worker's thumbnailer give back its sources except those of
        ``keep[worker]`` (None: every source on every worker)."""
        with self._lock:
            actors = {w: a for w, (_f, a) in self._actors.items()}
        calls = []
        for worker, actor in actors.items():
            ids = sorted((keep or {}).get(worker, ()))
            try:
                calls.append((worker, actor.release(ids)))
            except Exception as exc:
                log.debug("fleet board: release on %s failed: %s", worker, exc)
                self._drop(worker)
        for worker, pending in calls:
            try:
                pending.result()
            except Exception as exc:  # the worker left: its sources with it
                log.debug("fleet board: release on %s failed: %s", worker, exc)
                self._drop(worker)

    def _drop(self, worker: str) -> None:
        with self._lock:
            have = self._actors.pop(worker, None)
        if have is not None:
            with contextlib.suppress(Exception):
                have[0].release()

    def close(self) -> None:
        """Close every thumbnailer (its sources released), the client and the cluster."""
        import shutil

        with self._lock:
            actors, self._actors = list(self._actors.values()), {}
        for fut, actor in actors:
            with contextlib.suppress(Exception):
                actor.close().result()
            with contextlib.suppress(Exception):
                fut.release()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close(timeout=10)
            self._client = None
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close(timeout=10)
            self._cluster = None
        if self._spool:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None


@dataclass
class _Start:
    fleet: Any
    ids: set[str]
    thread: threading.Thread | None = None
    error: str | None = None
    done: bool = False
    stop_ids: set[str] = field(default_factory=set)


class FleetBoard:
    """The grid of ``targets`` on ``backend`` (opened here, closed by :meth:`close`).

    ``flows``: the flows a start may name (by name). ``thumb_width`` / ``thumb_quality``
    size the thumbnails; ``thumb_fps`` (at most 1) their refresh rate.
    """

    def __init__(self, targets: Sequence[Target], backend: Backend, *,
                 flows: Mapping[str, Any] | None = None, thumb_width: int = 240,
                 thumb_quality: int = 60, thumb_fps: float = 1.0,
                 on_change: Callable[[], None] | None = None) -> None:
        if not targets:
            raise FleetError("a fleet dashboard needs at least one target")
        if not 0 < thumb_fps <= MAX_THUMB_FPS:
            raise FleetError(f"thumb_fps {thumb_fps} is outside (0, {MAX_THUMB_FPS:g}]")
        if not 32 <= thumb_width <= 1280:
            raise FleetError(f"thumb_width {thumb_width} is outside [32, 1280]")
        self.targets = {t.id: t for t in targets}
        self.backend = backend
        self.flows: dict[str, Any] = dict(flows or {})
        self.thumb_width, self.thumb_quality, self.thumb_fps = thumb_width, thumb_quality, thumb_fps
        self.on_change = on_change
        self._tiles = {t.id: Tile(t.id, dict(t.labels)) for t in targets}
        self._lock = threading.RLock()
        self._starts: list[_Start] = []
        self._closed = threading.Event()
        self._watched = 0.0
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # the latest problems to show (bounded)
        self._focus: tuple[str, int] | None = None  # (target, width) of the closer look
        self._detail: dict[str, Any] | None = None
        #: worker → the thumbnail ids whose sources the board holds there
        self._held: dict[str, frozenset[str]] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> FleetBoard:
        """Start (or reach) the cluster, place the targets, start the thumbnail thread."""
        self.backend.open()
        self._place()
        self._thread = threading.Thread(target=self._thumb_loop, name="kvmrpa-fleet-thumbs",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 60.0) -> None:
        """Stop every active run and wait for it (up to ``timeout``), stop the thumbnail
        thread, close the backend (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            starts = list(self._starts)
        for st in starts:  # by id: a stop asked before the execution began still holds
            with contextlib.suppress(Exception):
                st.fleet.stop(sorted(st.ids))
        deadline = time.monotonic() + timeout
        for st in starts:
            if st.thread is not None:
                st.thread.join(max(0.1, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(10)
        self.backend.close()

    @property
    def dashboard_link(self) -> str | None:
        return self.backend.dashboard_link

    @property
    def held(self) -> dict[str, frozenset[str]]:
        """Worker → the thumbnail ids (a target, or ``<target>@detail``) whose sources
        the board holds open there (empty while nobody watches)."""
        with self._lock:
            return dict(self._held)

    def release_thumbnails(self) -> None:
        """Give back every thumbnail source the board holds (nobody watches)."""
        with self._lock:
            held, self._held = self._held, {}
        if held:
            self.backend.release_thumbnails(None)

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self, chips: Iterable[str] = ()) -> list[Tile]:
        """The tiles the filter ``chips`` (``label=value``) lets through, in file order;
        marks the board as watched (thumbnails keep coming for a while)."""
        wanted = label_filter(chips)
        self._watched = time.monotonic()
        with self._lock:
            return [t for t in self._tiles.values() if matches_filter(t.id, t.labels, wanted)]

    def tile(self, tid: str) -> Tile:
        with self._lock:
            try:
                return self._tiles[tid]
            except KeyError:
                raise FleetError(f"no target {tid!r} on this dashboard") from None

    def labels(self) -> list[str]:
        """Every ``label=value`` some target has (and nothing else), sorted."""
        return sorted({f"{k}={v}" for t in self.targets.values() for k, v in t.labels.items()})

    def take_errors(self) -> list[str]:
        """The problems since the last call (a start that could not run, ...)."""
        with self._lock:
            errors, self.errors = self.errors, []
        return errors

    def focus(self, tid: str | None, width: int = 640) -> None:
        """Also fetch a ``width``-wide picture of ``tid`` (None: of no target) with the
        thumbnails, for a closer look (:meth:`detail`)."""
        if tid is not None:
            self.tile(tid)
            if not 32 <= width <= 1280:
                raise FleetError(f"detail width {width} is outside [32, 1280]")
        with self._lock:
            self._focus = None if tid is None else (tid, int(width))
            self._detail = None

    def detail(self) -> dict[str, Any] | None:
        """The closer look's latest picture: ``{"target", "seq", "jpeg", "width",
        "height"}``, or None."""
        with self._lock:
            return self._detail

    def counts(self) -> dict[str, int]:
        with self._lock:
            tiles = list(self._tiles.values())
        return {s: sum(1 for t in tiles if t.state == s) for s in STATES}

    # -- changing --------------------------------------------------------------------------
    def _set(self, tid: str, **changes: Any) -> None:
        with self._lock:
            old = self._tiles[tid]
            self._tiles[tid] = replace(old, version=old.version + 1, **changes)
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("fleet board: on_change failed")

    def _note(self, text: str) -> None:
        with self._lock:
            self.errors = [*self.errors, text][-20:]

    def _place(self) -> None:
        """Give every target a live worker: keep where it is when that worker is alive,
        else the least loaded one."""
        workers = self.backend.workers()
        if not workers:
            return
        with self._lock:
            load = dict.fromkeys(workers, 0)
            for t in self._tiles.values():
                if t.worker in load:
                    load[t.worker] += 1
            moves = {}
            for t in self._tiles.values():
                if t.worker not in load:
                    where = min(workers, key=lambda w: (load[w], w))
                    load[where] += 1
                    moves[t.id] = where
        for tid, where in moves.items():
            self._set(tid, worker=where)

    def start(self, ids: Iterable[str], flow: Any, *, passes: int | None = None) -> list[str]:
        """Run ``flow`` (a flow, or the name of one of :attr:`flows`) on the targets of
        ``ids`` that are not running already; returns the ids started."""
        if self._closed.is_set():
            raise FleetError("the fleet dashboard is closed")
        if isinstance(flow, str):
            if flow not in self.flows:
                raise FleetError(f"no flow {flow!r} on this dashboard; have: "
                                 f"{', '.join(sorted(self.flows)) or 'none'}")
            flow = self.flows[flow]
        if passes is not None and not 0 <= passes <= 1_000_000:
            raise FleetError(f"passes {passes} is outside [0, 1000000]")
        flow.validate()
        with self._lock:
            chosen = [tid for tid in dict.fromkeys(ids)
                      if tid in self._tiles and not self._tiles[tid].active]
            unknown = [tid for tid in ids if tid not in self._tiles]
            if unknown:
                raise FleetError(f"no target {unknown[0]!r} on this dashboard")
            if not chosen:
                return []
            placement = {tid: self._tiles[tid].worker for tid in chosen
                         if self._tiles[tid].worker}
            fleet = self.backend.fleet([self.targets[tid] for tid in chosen])
            st = _Start(fleet, set(chosen))
            self._starts.append(st)
        for tid in chosen:
            self._set(tid, state="queued")

        def on_start(_info: dict[str, Any]) -> None:
            for tid in chosen:
                if self.tile(tid).state == "queued":
                    self._set(tid, state="running")

        def on_result(res: TargetResult) -> None:
            old = self.tile(res.target)
            counted = res.status != "stopped"
            self._set(res.target, state=res.status, last=res,
                      runs=old.runs + (1 if counted else 0),
                      oks=old.oks + (1 if res.status == "ok" else 0),
                      worker=res.worker or old.worker)

        def body() -> None:
            try:
                fleet.execute(flow, passes=passes, on_start=on_start, on_result=on_result,
                              placement=placement)
            except Exception as exc:
                st.error = " ".join(str(exc).split())
                self._note(f"start on {len(chosen)} target(s): {st.error}")
                log.warning("fleet board: %s", st.error)
            finally:
                for tid in chosen:  # a target the run never reported on
                    if self.tile(tid).active:
                        self._set(tid, state="failed",
                                  last=TargetResult(tid, "failed", error=st.error))
                with self._lock:
                    st.done = True
                    self._starts.remove(st)

        st.thread = threading.Thread(target=body, name="kvmrpa-fleet-start", daemon=True)
        st.thread.start()
        return chosen

    def stop(self, ids: Iterable[str] | None = None) -> list[str]:
        """Stop the active targets of ``ids`` (all active ones when None) with the
        fleet's stop; returns the ids asked to stop."""
        with self._lock:
            want = set(self._tiles) if ids is None else set(ids)
            by_start = [(st, sorted(st.ids & want)) for st in self._starts]
        asked = []
        for st, tids in by_start:
            tids = [t for t in tids if self.tile(t).active]
            if not tids:
                continue
            st.fleet.stop(tids)
            asked.extend(tids)
            for tid in tids:
                self._set(tid, state="stopping")
        return sorted(asked)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no start is active (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._starts:
                    return True
            time.sleep(0.05)
        return False

    # -- thumbnails ------------------------------------------------------------------------
    def refresh_thumbnails(self) -> int:
        """Ask the workers for every target's latest thumbnail now; returns how many
        tiles got a new picture."""
        self._place()
        with self._lock:
            assignment: dict[str, dict[str, str]] = {}
            for t in self._tiles.values():
                if t.worker:
                    assignment.setdefault(t.worker, {})[t.id] = self.targets[t.id].source
            focus = self._focus
            wanted = {w: set(ids) for w, ids in assignment.items()}
            if focus is not None and self._tiles[focus[0]].worker:
                wanted.setdefault(str(self._tiles[focus[0]].worker), set()).add(
                    f"{focus[0]}@detail")
            keep = {w: frozenset(ids) for w, ids in wanted.items()}
            stale = any(ids - keep.get(w, frozenset()) for w, ids in self._held.items())
            self._held = keep
        if stale:  # a target moved, a closer look closed: give back what nobody shows
            self.backend.release_thumbnails(keep)
        got = self.backend.thumbnails(assignment, self.thumb_width, self.thumb_quality)
        if focus is not None:
            self._refresh_detail(*focus)
        fresh = 0
        for tid, data in got.items():
            if tid not in self._tiles:
                continue
            if "error" in data:
                if self.tile(tid).thumb_error != data["error"]:
                    self._set(tid, thumb_error=str(data["error"]))
            elif "jpeg" in data:
                self._set(tid, thumb=data["jpeg"], thumb_seq=int(data["seq"]),
                          thumb_size=(int(data["width"]), int(data["height"])),
                          thumb_error=None)
                fresh += 1
        return fresh

    def _refresh_detail(self, tid: str, width: int) -> None:
        worker = self.tile(tid).worker
        if not worker:
            return
        key = f"{tid}@detail"
        got = self.backend.thumbnails({worker: {key: self.targets[tid].source}}, width,
                                      self.thumb_quality).get(key, {})
        if "jpeg" in got:
            with self._lock:
                if self._focus == (tid, width):
                    self._detail = {"target": tid, "seq": int(got["seq"]), "jpeg": got["jpeg"],
                                    "width": int(got["width"]), "height": int(got["height"])}

    def _thumb_loop(self) -> None:
        period = 1.0 / self.thumb_fps
        while not self._closed.is_set():
            began = time.monotonic()
            try:
                if began - self._watched <= WATCH_TTL:
                    self.refresh_thumbnails()
                else:  # nobody looks: the sources go back (a no-op when none are held)
                    self.release_thumbnails()
            except Exception as exc:  # the cluster is briefly away: try next period
                log.debug("fleet board: thumbnails failed: %s", exc)
            self._closed.wait(max(0.05, period - (time.monotonic() - began)))

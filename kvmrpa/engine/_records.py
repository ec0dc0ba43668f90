"""Run records: one JSONL file per run under ``settings.store.runs_dir``.

A record's first line describes the run (``kind: "run"``); then every event, input
action (``kind: "action"``) and error follows, one JSON object a line, each flushed as
it is written; the last line is the ``flow_finished`` event. Writing happens in one
writer thread owned by :class:`RunStore` (it exits when no record is open), fed through
a bounded buffer per record, so the event loop never waits on the disk; lines that do
not fit are counted and the count is written before the file closes. Lines are
redacted and strict JSON. A record over ``store.record_max_bytes`` continues in a fresh
file (the full one is kept as ``<name>.jsonl.<n>``); a loop run keeps every line of its
first ``store.record_detail_passes`` passes and of failed passes, and counters
(``pass_summary`` lines) for the rest. A record that cannot be written says so in one
log line and in :attr:`RunRecord.error`. Frames a run keeps (:meth:`RunRecord.write_frame`,
see :mod:`._evidence`) are JPEG-encoded by the same writer thread into the folder
``<name>.frames/`` beside the record, each image before its ``frame`` line. After a record closes, retention deletes the oldest records beyond ``store.runs_keep`` and those older
than ``store.runs_max_age_days``. :func:`list_runs` reads them back; a record without a
``flow_finished`` line whose writer (``pid`` and ``host`` on its first line) is gone is
listed as ``interrupted`` (the process died: ``os._exit``, a signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._limits import dumps_strict
from .._redact import redact_data
from .._settings import get_settings

__all__ = ["RunRecord", "RunStore", "frames_dir", "get_run_store", "list_runs", "read_run"]

log = logging.getLogger("kvmrpa.engine")
_MAX_LINES = 100_000
#: Frames waiting for the writer thread per record (more are counted and dropped).
_MAX_FRAMES_PENDING = 64
#: Summarised passes counted into one ``pass_summary`` line.
_SUMMARY_EVERY = 600
#: Lines of one summarised pass held back before the pass is kept whole instead.
_MAX_HELD = 5000
#: The kinds of line a summarised pass is made of (any other keeps the pass whole).
_PER_PASS = frozenset({"pass_started", "pass_finished", "node_started", "node_finished",
                       "node_skipped", "action"})


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return repr(value)


class RunRecord:
    """One run's JSONL file; :meth:`write` never blocks."""

    def __init__(self, store: RunStore, path: Path) -> None:
        self.path = path
        self._store = store
        self._lines: deque[str] = deque()
        self._closing = False
        self._closed = _Closed()
        self._fh: Any = None
        #: Lines dropped because the writer fell behind.
        self.dropped = 0
        #: Why the record could not be written (``None`` while it can).
        self.error: str | None = None
        self._loop = _LoopSummary(get_settings().store.record_detail_passes)
        self._head: str | None = None
        self._size = 0
        self._parts = 0
        self._frames: deque[tuple[str, Any, int, Mapping[str, Any]]] = deque()
        #: Bytes of frames written so far (JPEG files in :attr:`frames_dir`).
        self.frame_bytes = 0
        #: Frames not kept because the writer fell behind.
        self.frames_dropped = 0
        self._frames_queued = 0  # counted by the caller's thread
        self._frames_done = 0  # counted by the writer thread

    @property
    def frames_pending(self) -> int:
        """Frames queued by :meth:`write_frame` whose bytes are not counted yet."""
        return max(0, self._frames_queued - self._frames_done)

    @property
    def frames_dir(self) -> Path:
        """The folder of this record's frames (``<name>.frames``)."""
        return frames_dir(self.path)

    def write_frame(self, name: str, image: Any, quality: int,
                    line: Mapping[str, Any]) -> None:
        """Queue ``image`` (BGR) to be written as ``frames_dir/name`` (JPEG, by the writer
        thread), then ``line`` (which names it); never blocks."""
        if self._closing:
            return
        if len(self._frames) >= _MAX_FRAMES_PENDING:
            self.frames_dropped += 1
            return
        self._frames_queued += 1
        self._frames.append((name, image, quality, line))
        self._store._wake.set()

    def write(self, data: Mapping[str, Any]) -> None:
        if self._closing:
            return
        for item in self._loop.admit(data):
            try:  # secrets redacted, strict JSON (NaN/Infinity written as null)
                line = dumps_strict(redact_data(item), ensure_ascii=False,
                                    default=lambda v: redact_data(_default(v)))
            except (TypeError, ValueError) as exc:
                line = json.dumps({"kind": "record_error", "error": str(exc)})
            if len(self._lines) >= _MAX_LINES:
                self.dropped += 1
                continue
            self._lines.append(line)
        self._store._wake.set()

    def close(self) -> None:
        """Ask the writer to flush and close the file (non-blocking)."""
        if not self._closing:
            for item in self._loop.flush():
                self._lines.append(dumps_strict(redact_data(item), ensure_ascii=False,
                                                default=repr))
        self._closing = True
        self._store._wake.set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the file is written and closed."""
        return self._closed.wait(timeout)

    async def aclose(self) -> None:
        """Close, and wait on the event loop (not in a pool thread) until written."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not fut.done():
                fut.set_result(None)

        def landed() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone
                loop.call_soon_threadsafe(resolve)

        self._closed.then(landed)
        self.close()
        await fut

    # -- writer thread side --------------------------------------------------------------
    def _drain(self) -> bool:
        """Write pending lines; returns True once the record is closed."""
        if self._fh is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across drains
            except OSError as exc:
                self._fail(exc, f"{len(self._lines)} lines not written")
                return True
        closing = self._closing
        limit = get_settings().store.record_max_bytes
        try:
            while self._frames:  # the image lands before its ``frame`` line
                name, image, quality, fline = self._frames.popleft()
                if self._write_jpeg(name, image, quality):
                    self._lines.append(dumps_strict(redact_data(fline), ensure_ascii=False,
                                                    default=repr))
                self._frames_done += 1
            while self._lines:
                line = self._lines.popleft() + "\n"
                if self._head is None:
                    self._head = line
                elif self._size + len(line) > limit:
                    self._rotate()
                self._fh.write(line)
                self._size += len(line)
                self._fh.flush()
            if closing:
                if self.dropped:
                    self._fh.write(json.dumps({"kind": "dropped", "lines": self.dropped}) + "\n")
                self._fh.close()
                self._closed.set()
                return True
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fail(exc, f"{len(self._lines) + 1} lines not written")
            return True
        return False

    def _write_jpeg(self, name: str, image: Any, quality: int) -> bool:
        import cv2

        folder = self.frames_dir
        try:
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
            if not ok:
                return False
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data.tobytes())
            os.replace(tmp, folder / name)
        except (OSError, cv2.error) as exc:
            log.warning("run record %s: frame %s not written: %s", self.path.name, name, exc)
            return False
        self.frame_bytes += int(data.size)
        return True

    def _rotate(self) -> None:
        """Continue in a fresh file: the full one becomes ``<name>.jsonl.<n>`` and the
        record's path starts again with the run's first line (so it still says which
        run it is)."""
        self._fh.close()
        self._parts += 1
        os.replace(self.path, self.path.with_name(f"{self.path.name}.{self._parts}"))
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across drains
        self._fh.write(self._head or "")
        self._size = len(self._head or "")

    def _fail(self, exc: OSError, lost: str) -> None:
        """The record cannot be written: say so once, in one line, and keep the reason."""
        self.error = f"run record {self.path} cannot be written: {exc.strerror or exc} ({lost})"
        log.error("%s", self.error)
        self._store.errors[str(self.path)] = self.error
        while len(self._store.errors) > 100:
            self._store.errors.pop(next(iter(self._store.errors)))
        self._lines.clear()
        self._frames.clear()
        self._closed.set()


class _LoopSummary:
    """Which lines of a loop run are kept: every line of the first ``detail`` passes and
    of failed passes; for the other passes only counters, written as one
    ``pass_summary`` line every :data:`_SUMMARY_EVERY` passes and at the end."""

    def __init__(self, detail: int) -> None:
        self.detail = detail
        self._pass: int | None = None
        self._held: list[Mapping[str, Any]] = []
        self._counts: dict[str, int] = {}
        self._passes = 0
        self._first: int | None = None

    def admit(self, data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        kind = data.get("kind")
        index = data.get("pass_index")
        if kind == "pass_started" and isinstance(index, int) and index >= self.detail:
            out = self._release()
            self._pass = index
            self._held = [data]
            return out
        if kind == "flow_finished":  # the counters go before the last line
            return [*self.flush(), data]
        if self._pass is None:
            return [data]
        if kind not in _PER_PASS:  # a stop, an error, a pause: this pass is kept whole
            return [*self._release(), data]
        if len(self._held) >= _MAX_HELD:  # an enormous pass: keep it all
            return [*self._release(), data]
        self._held.append(data)
        if kind == "pass_finished" and index == self._pass:
            failed = data.get("status") not in (None, "ok") or any(
                d.get("kind") in ("node_failed", "error") for d in self._held)
            if failed:
                return self._release()
            for d in self._held:
                k = str(d.get("kind"))
                self._counts[k] = self._counts.get(k, 0) + 1
            self._first = self._pass if self._first is None else self._first
            self._passes += 1
            self._pass, self._held = None, []
            if self._passes >= _SUMMARY_EVERY:
                return self.flush()
        return []

    def _release(self) -> list[Mapping[str, Any]]:
        out, self._pass, self._held = self._held, None, []
        return out

    def flush(self) -> list[Mapping[str, Any]]:
        """The held lines and the counters not yet written."""
        out = self._release()
        if self._passes:
            out.insert(0, {"kind": "pass_summary", "passes": self._passes,
                           "first_pass": self._first, "time": time.time(),
                           "counts": dict(self._counts)})
            self._counts, self._passes, self._first = {}, 0, None
        return out


class RunStore:
    """Owner of the run-record writer thread and of retention."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[RunRecord] = []
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        #: Records that could not be written (path → why), most recent 100.
        self.errors: dict[str, str] = {}

    @property
    def directory(self) -> Path:
        return get_settings().store.runs_dir

    def open(self, run_id: str, flow_name: str) -> RunRecord:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", flow_name)[:60] or "flow"
        record = RunRecord(self, self.directory / f"{run_id}-{slug}.jsonl")
        with self._lock:
            self._open.append(record)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="kvmrpa-run-records",
                                                daemon=True)
                self._thread.start()
        self._wake.set()
        return record

    def _serve(self) -> None:
        try:
            while True:
                self._wake.wait(0.5)
                self._wake.clear()
                with self._lock:
                    records = list(self._open)
                closed = [r for r in records if r._drain()]
                if closed:
                    with self._lock:
                        for r in closed:
                            self._open.remove(r)
                    try:
                        self.prune()
                    except Exception:  # retention must never stop the writer
                        log.exception("run record retention failed")
                with self._lock:
                    if not self._open:
                        self._thread = None
                        return
        except BaseException:
            log.exception("the run record writer failed; open records are abandoned")
            with self._lock:
                abandoned, self._open = self._open, []
                self._thread = None  # the next open() starts a new writer
            for r in abandoned:
                r._closing = True
                r._closed.set()

    def check_writable(self) -> None:
        """Raise :class:`~kvmrpa.KvmrpaError` (one line) when records cannot be written
        to :attr:`directory` (a run would lose its record)."""
        import tempfile

        from .._errors import KvmrpaError

        folder = self.directory
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise KvmrpaError(f"the run store {folder} is not writable "
                              f"({exc.strerror or exc}); set store.home (KVMRPA_STORE_HOME) "
                              "or pass --no-record") from None

    def idle(self) -> bool:
        """True when no record is open and the writer thread has exited."""
        with self._lock:
            return not self._open and self._thread is None

    def prune(self) -> list[Path]:
        """Delete records beyond ``store.runs_keep`` or older than the age limit."""
        store = get_settings().store
        folder = self.directory
        if not folder.is_dir():
            return []
        with self._lock:
            busy = {r.path for r in self._open}
        files = []
        for p in folder.glob("*.jsonl"):
            with contextlib.suppress(OSError):
                files.append((p.stat().st_mtime, p))
        files.sort(reverse=True)
        cutoff = time.time() - store.runs_max_age_days * 86400 if store.runs_max_age_days > 0 else None
        removed = []
        for i, (mtime, p) in enumerate(files):
            if p in busy:
                continue
            if i >= store.runs_keep or (cutoff is not None and mtime < cutoff):
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
        for part in folder.glob("*.jsonl.*"):  # rotated parts go with their record
            if part.is_dir():
                continue
            if part.with_name(part.name.rpartition(".")[0]) not in busy and \
                    not part.with_name(part.name.rpartition(".")[0]).exists():
                with contextlib.suppress(OSError):
                    part.unlink()
                    removed.append(part)
        removed += _prune_frames(folder, busy, store.frames_total_bytes)
        return removed


def frames_dir(record: str | os.PathLike[str]) -> Path:
    """The folder holding the frames of the run record at ``record``."""
    p = Path(record)
    return p.with_name(p.name.removesuffix(".jsonl") + ".frames")


def _prune_frames(folder: Path, busy: set[Path], budget: int) -> list[Path]:
    """Delete frame folders whose record is gone, then the oldest ones until the frames
    of the whole store fit in ``budget`` bytes (the records themselves stay)."""
    import shutil

    removed: list[Path] = []
    dirs = []
    for d in folder.glob("*.frames"):
        record = d.with_name(d.name.removesuffix(".frames") + ".jsonl")
        if record in busy:
            continue
        if not record.exists():
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
            continue
        size = 0
        with contextlib.suppress(OSError):
            size = sum(f.stat().st_size for f in d.iterdir())
        with contextlib.suppress(OSError):
            dirs.append((record.stat().st_mtime, size, d))
    total = sum(size for _m, size, _d in dirs)
    for _mtime, size, d in sorted(dirs):
        if total <= budget:
            break
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
        total -= size
    return removed


_store: RunStore | None = None
_store_lock = threading.Lock()


def get_run_store() -> RunStore:
    """The process-wide run store."""
    global _store
    with _store_lock:
        if _store is None:
            _store = RunStore()
        return _store


def read_run(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of a run record (a partly written last line is left out)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _last_line(path: Path) -> dict[str, Any] | None:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read().decode("utf-8", "replace").strip().splitlines()
    for line in reversed(tail):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if data.get("kind") == "flow_finished":
            return data
    return None


class _Closed(threading.Event):
    """Set when a record is closed; :meth:`then` callbacks run at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self._then: list[Any] = []
        self._then_lock = threading.Lock()

    def then(self, callback: Any) -> None:
        with self._then_lock:
            if not self.is_set():
                self._then.append(callback)
                return
        callback()

    def set(self) -> None:
        with self._then_lock:
            super().set()
            callbacks, self._then = self._then, []
        for cb in callbacks:
            cb()


def _writer_gone(head: Mapping[str, Any]) -> bool:
    """Whether the process that wrote a record (``pid`` on ``host``) no longer runs."""
    pid, host = head.get("pid"), head.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False  # an older record, or another machine's: cannot tell
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    try:  # a zombie (dead, not reaped yet) is gone too
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def list_runs(limit: int = 20, folder: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The most recent runs, newest first: id, flow, started, status, passes, error, path."""
    directory = Path(folder) if folder else get_settings().store.runs_dir
    if not directory.is_dir():
        return []
    files = []
    for p in directory.glob("*.jsonl"):
        with contextlib.suppress(OSError):
            files.append((p.stat().st_mtime, p))
    files.sort(reverse=True)
    out = []
    for _mtime, p in files[:limit]:
        try:
            with open(p, encoding="utf-8") as fh:
                head = json.loads(fh.readline() or "{}")
            tail = _last_line(p)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        out.append({
            "id": head.get("run_id"), "flow": head.get("flow"), "started": head.get("started"),
            "status": tail.get("status") if tail else (
                "interrupted" if _writer_gone(head) else "running"),
            "passes": tail.get("passes") if tail else None,
            "error": tail.get("error") if tail else None,
            "outcome": tail.get("outcome") if tail else None,
            "path": str(p),
        })
    return out

"""Run records: one JSONL file per run under ``settings.store.runs_dir``.

A record's first line describes the run (``kind: "run"``); then every event, input
action (``kind: "action"``) and error follows, one JSON object a line, each flushed as
it is written; the last line is the ``flow_finished`` event. Writing happens in one
writer thread owned by :class:`RunStore` (it exits when no record is open), fed through
a bounded buffer per record, so the event loop never waits on the disk; lines that do
not fit are counted and the count is written before the file closes. After a record
closes, retention deletes the oldest records beyond ``store.runs_keep`` and those older
than ``store.runs_max_age_days``. :func:`list_runs` reads them back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._settings import get_settings

__all__ = ["RunRecord", "RunStore", "get_run_store", "list_runs", "read_run"]

log = logging.getLogger("kvmrpa.engine")
_MAX_LINES = 100_000


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
        self._closed = threading.Event()
        self._fh: Any = None
        #: Lines dropped because the writer fell behind.
        self.dropped = 0

    def write(self, data: Mapping[str, Any]) -> None:
        if self._closing:
            return
        try:
            line = json.dumps(data, ensure_ascii=False, default=_default)
        except (TypeError, ValueError) as exc:
            line = json.dumps({"kind": "record_error", "error": str(exc)})
        if len(self._lines) >= _MAX_LINES:
            self.dropped += 1
            return
        self._lines.append(line)
        self._store._wake.set()

    def close(self) -> None:
        """Ask the writer to flush and close the file (non-blocking)."""
        self._closing = True
        self._store._wake.set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the file is written and closed."""
        return self._closed.wait(timeout)

    # -- writer thread side --------------------------------------------------------------
    def _drain(self) -> bool:
        """Write pending lines; returns True once the record is closed."""
        if self._fh is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across drains
            except OSError:
                log.exception("cannot open run record %s", self.path)
                self._lines.clear()
                self._closed.set()
                return True
        closing = self._closing
        try:
            while self._lines:
                self._fh.write(self._lines.popleft() + "\n")
                self._fh.flush()
            if closing:
                if self.dropped:
                    self._fh.write(json.dumps({"kind": "dropped", "lines": self.dropped}) + "\n")
                self._fh.close()
                self._closed.set()
                return True
        except OSError:
            log.exception("cannot write run record %s", self.path)
            with contextlib.suppress(OSError):
                self._fh.close()
            self._closed.set()
            return True
        return False


class RunStore:
    """Owner of the run-record writer thread and of retention."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[RunRecord] = []
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

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
            "status": tail.get("status") if tail else "running",
            "passes": tail.get("passes") if tail else None,
            "error": tail.get("error") if tail else None,
            "path": str(p),
        })
    return out

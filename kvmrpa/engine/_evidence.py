"""Run evidence: the frame each vision node decided on, its results and each action's
point, kept in the run record for reports (:mod:`._report`) and ``replay://``.

:class:`RunEvidence` holds, for the pass running now, what the watched nodes (vision
nodes, ``source`` and ``mouse``) saw: the frame of a finished node's output (else its
nearest upstream frame), the frames a node reported while it looked
(``ctx.observe(frame, texts=…)``: the first and the last per node, so a ``wait_until``
that timed out shows what it was looking at), and the texts / matches / detections /
point / branch / error. When the pass ends it is kept or dropped: failed passes are
always kept; the others while the run is within ``store.record_detail_passes`` (as the
record's own lines) and ``store.frames_max_bytes``. Kept frames are JPEG-encoded by the
run store's writer thread (never on the loop) into ``<record>.frames/``; the record gets
one ``frame`` line per image and one ``evidence`` line per node, after the pass's
``pass_finished`` line.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._frame import Frame

if TYPE_CHECKING:  # pragma: no cover
    from ._context import Inputs
    from ._records import RunRecord

__all__ = ["EVIDENCE_TYPES", "RunEvidence"]

#: Node types whose decisions are kept (with their frames) in run records.
EVIDENCE_TYPES = frozenset({"source", "ocr", "match_template", "detect", "vision_condition",
                            "wait_until", "mouse"})
_RESULT_KEYS = ("texts", "matches", "detections")
_MAX_OBSERVED = 2  # the first and the last frame a node reported while looking
_MAX_ITEMS = 500  # results kept per kind and node
_MAX_NODES_PER_PASS = 2000


def _key(frame: Frame) -> tuple[str, int]:
    return (frame.source_id, frame.seq)


def _results(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in _RESULT_KEYS:
        value = data.get(k)
        if value is not None and hasattr(value, "as_dicts"):
            out[k] = value.as_dicts()[:_MAX_ITEMS]
    found = data.get("found")
    if isinstance(found, list):
        out["found"] = found[:_MAX_ITEMS]
    point = data.get("point")
    if isinstance(point, tuple | list) and len(point) == 2:
        out["point"] = [float(point[0]), float(point[1])]
    for k in ("branch", "result", "count", "waited_s", "action", "text"):
        v = data.get(k)
        if isinstance(v, str | int | float | bool) and (k != "text" or len(str(v)) < 4000):
            out[k] = v
    return out


class RunEvidence:
    """What one run's watched nodes decided on (see the module docstring)."""

    def __init__(self, record: RunRecord, t0: float, types: Mapping[str, str],
                 detail_passes: int, max_bytes: int, quality: int) -> None:
        self._record = record
        self._t0 = t0
        self._types = dict(types)
        #: The ids of the nodes whose decisions are kept.
        self.watched = frozenset(nid for nid, t in types.items() if t in EVIDENCE_TYPES)
        self._detail = detail_passes
        self._max_bytes = max_bytes
        self._quality = quality
        self._pass: int | None = None
        self._frames: dict[tuple[str, int], Frame] = {}
        self._items: list[dict[str, Any]] = []
        self._observed: dict[str, list[tuple[Frame, dict[str, Any]]]] = {}
        self._written: dict[tuple[str, int], str] = {}  # frames already in the record
        self._count = 0
        self._guess = 0.0
        #: Passes whose evidence was dropped (over the budget or summarised).
        self.dropped_passes = 0

    def _begin(self, pass_index: int) -> None:
        if self._pass != pass_index:
            self._pass = pass_index
            self._frames.clear()
            self._items.clear()
            self._observed.clear()

    def _keep_frame(self, frame: Any) -> tuple[str, int] | None:
        if not isinstance(frame, Frame):
            return None
        key = _key(frame)
        have = self._frames.get(key)
        if have is None or (frame.offset == (0, 0) and frame.scale == 1.0 and (
                have.offset != (0, 0) or have.scale != 1.0)):
            self._frames[key] = frame  # a full source frame wins over a crop of it
        return key

    def observe(self, pass_index: int, node_id: str, frame: Any,
                results: Mapping[str, Any]) -> None:
        """A node reports a frame it looked at (and what it found there)."""
        if node_id not in self.watched or not isinstance(frame, Frame):
            return
        self._begin(pass_index)
        seen = self._observed.setdefault(node_id, [])
        entry = (frame, _results(results))
        if len(seen) < _MAX_OBSERVED:
            seen.append(entry)
        else:
            seen[-1] = entry

    def node(self, pass_index: int, node_id: str, inputs: Inputs | None,
             output: Mapping[str, Any] | None, error: BaseException | None,
             started: float | None, finished: float | None) -> None:
        """A watched node of pass ``pass_index`` ended (``output`` or ``error``)."""
        self._begin(pass_index)
        if len(self._items) >= _MAX_NODES_PER_PASS:
            return
        data: dict[str, Any] = dict(output) if output else {}
        upstream: dict[str, Any] = {}
        if inputs is not None:
            for k in ("frame", *_RESULT_KEYS, "point"):
                if k not in data:
                    v = inputs.nearest(k)
                    if v is not None:
                        upstream[k] = v
        observed = self._observed.pop(node_id, [])
        frames: list[dict[str, Any]] = []
        for frame, found in observed:
            key = self._keep_frame(frame)
            if key is not None:
                frames.append({"frame": f"{key[0]}#{key[1]}", **found})
        decided = data.get("frame")
        if not isinstance(decided, Frame):
            decided = upstream.get("frame")
        key = self._keep_frame(decided)
        results = _results(data)
        if error is not None:  # a failed node: what it looked at last, else what it got
            if observed:
                last = observed[-1]
                key = _key(last[0])
                for k, v in last[1].items():
                    results.setdefault(k, v)
            else:
                for k in _RESULT_KEYS:
                    if k not in results and k in upstream:
                        results.update(_results({k: upstream[k]}))
        item: dict[str, Any] = {
            "kind": "evidence", "pass_index": pass_index, "node": node_id,
            "type": self._types.get(node_id), "status": "failed" if error else "done",
            "started_s": None if started is None else round(started, 4),
            "finished_s": None if finished is None else round(finished, 4),
            "frame": None if key is None else f"{key[0]}#{key[1]}",
            **results}
        if error is not None:
            item["error"] = " ".join(str(error).split())[:2000]
        if frames:
            item["looked_at"] = frames
        self._items.append(item)

    def _used(self) -> float:
        """Bytes of frames this run keeps: written, plus an estimate of those queued."""
        rec = self._record
        written = self._count - rec.frames_pending
        avg = rec.frame_bytes / written if written > 0 else self._guess
        return rec.frame_bytes + rec.frames_pending * avg

    def pass_end(self, pass_index: int, status: str) -> None:
        """Keep (write) or drop what pass ``pass_index`` decided on."""
        if self._pass != pass_index:
            return
        failed = status == "failed" or any(i["status"] == "failed" for i in self._items)
        within = pass_index < self._detail and self._used() < self._max_bytes
        if not self._items or not (failed or within):
            if self._items:
                self.dropped_passes += 1
            self._begin(-1)
            return
        names: dict[str, str] = {}
        for key, frame in self._frames.items():
            ref = f"{key[0]}#{key[1]}"
            if key in self._written:
                names[ref] = self._written[key]
                continue
            self._count += 1
            self._guess = max(self._guess, frame.image.nbytes / 8)  # JPEG of a screen
            name = f"p{pass_index:05d}-{self._count:05d}.jpg"
            names[ref] = name
            self._written[key] = name
            if len(self._written) > 4096:
                self._written.pop(next(iter(self._written)))
            captured = frame.captured - self._t0
            self._record.write_frame(name, frame.image, self._quality, {
                "kind": "frame", "pass_index": pass_index, "file": name, "ref": ref,
                "source": frame.source_id, "seq": frame.seq,
                "t": round(captured, 4), "wall": frame.wall,
                "width": frame.width, "height": frame.height,
                "offset": list(frame.offset), "scale": frame.scale,
                "full": frame.offset == (0, 0) and frame.scale == 1.0})
        for item in self._items:
            item = dict(item)
            item["frame"] = names.get(item["frame"]) if item["frame"] else None
            if "looked_at" in item:
                item["looked_at"] = [{**f, "frame": names.get(f["frame"])}
                                     for f in item["looked_at"]]
            item["time"] = time.time()
            self._record.write(item)
        self._begin(-1)

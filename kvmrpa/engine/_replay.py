"""``replay://RUN_ID``: a video source that plays the frames a recorded run kept.

The frames a run's vision nodes decided on (see :mod:`._evidence`) are played again
with their original timing, so a flow (or an edited version of it) runs against exactly
what the target showed, without the target; a run whose source is ``replay://`` gets
the ``dryrun://`` input unless one is given (nothing is sent anywhere). After the last
frame the source keeps showing it (as a screen that did not change), republished
``hold_fps`` times a second so that waits for a fresh frame still work. Options:

- ``speed``: ``1`` (default, the original timing), any factor (``2`` twice as fast), or
  ``max``: the next frame as soon as the previous one was taken;
- ``loop``: ``1`` plays the frames again from the start instead of holding the last;
- ``hold_fps``: republishing rate of the last frame (default ``capture.default_fps``);
- ``play``: names one playing; a run on ``replay://`` gets its own (``play=<run id>``,
  :func:`own_player`), so each run sees the recording from its start, never the end of
  a replay another run left lingering in the hub.

The scheme reaches the capture hub through the ``kvmrpa.sources`` entry point (the
capture layer never imports the engine). The frames are decoded one by one in the
player thread the source owns; a missing record or one with no frames is a
:class:`~kvmrpa.SourceOpenError` when the source is built.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import param

from .._errors import KvmrpaError, SourceOpenError, UrlError
from .._limits import check_image_header
from .._options import url_option
from .._settings import get_settings
from .._urls import query_params, split_url
from ..capture import PlayerSource, SourceState
from ._records import frames_dir
from ._report import find_record, load_record

__all__ = ["ReplaySource", "is_replay_url", "own_player", "replay_frames"]

log = logging.getLogger("kvmrpa.engine")

#: Most frames one replay plays (a record holds at most what its budget allowed).
MAX_FRAMES = 20_000
_OPTIONS = ("speed", "loop", "hold_fps", "play")
_LOOP = param.Boolean()


def is_replay_url(url: str | None) -> bool:
    """Whether ``url`` is a ``replay://`` source URL."""
    return isinstance(url, str) and url.strip().lower().startswith("replay://")


def own_player(url: str, token: str) -> str:
    """``url`` with ``play=token`` (unless it names a playing already): a player of its
    own, which starts from the first frame."""
    if "play" in query_params(url):
        return url
    return f"{url}{'&' if '?' in url else '?'}play={token}"


def replay_frames(run: str) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """``(run header, frame lines in capture order, frames folder)`` of a run's record.

    Only full source frames count (a crop is not what the target showed); when the
    record has frames of several sources, those of the run's own source."""
    path = find_record(run)
    lines = load_record(path)
    head = next((x for x in lines if x.get("kind") == "run"), {})
    frames = [x for x in lines if x.get("kind") == "frame" and x.get("full")
              and isinstance(x.get("file"), str) and isinstance(x.get("t"), int | float)]
    own = [x for x in frames if x.get("source") == head.get("source")]
    frames = own or frames
    seen: set[str] = set()
    ordered = []
    for x in sorted(frames, key=lambda x: (float(x["t"]), int(x.get("seq") or 0))):
        if x["file"] not in seen:
            seen.add(x["file"])
            ordered.append(x)
    return head, ordered[:MAX_FRAMES], frames_dir(path)


class ReplaySource(PlayerSource):
    """Plays a recorded run's frames (see the module docstring)."""

    thread_kind = "replay"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = split_url(url)
        run = (parts.netloc + parts.path).strip("/")
        if not run:
            raise UrlError(f"{self.display_url}: name the run: replay://RUN_ID")
        params = query_params(url)
        unknown = sorted(set(params) - set(_OPTIONS))
        if unknown:
            raise UrlError(f"{self.display_url}: unknown parameter(s) {', '.join(unknown)}; "
                           f"known: {', '.join(_OPTIONS)}")
        speed = params.get("speed", "1").strip().lower()
        if speed == "max":
            self.speed: float | None = None
        else:
            try:
                self.speed = float(speed)
            except ValueError:
                self.speed = -1.0
            if not 0.01 <= self.speed <= 1000:
                raise UrlError(f"{self.display_url}: speed must be 'max' or a factor "
                               f"0.01 … 1000, got {speed!r}")
        self.loop = url_option(url, "loop", _LOOP, False, query=params)
        hold = params.get("hold_fps")
        try:
            self.hold_fps = float(hold) if hold is not None else float(
                get_settings().capture.default_fps)
        except ValueError:
            self.hold_fps = -1.0
        if not 0.1 <= self.hold_fps <= 120:
            raise UrlError(f"{self.display_url}: hold_fps must be 0.1 … 120, got {hold!r}")
        try:
            self.head, self.frames, self.folder = replay_frames(run)
        except SourceOpenError:
            raise
        except KvmrpaError as exc:
            raise SourceOpenError(f"{self.display_url}: {exc}") from None
        if not self.frames:
            raise SourceOpenError(
                f"{self.display_url}: run {run!r} kept no frames (store.frames off, only "
                "passes recorded in full keep them, or retention deleted them)")
        missing = [f["file"] for f in self.frames if not (self.folder / f["file"]).is_file()]
        if missing:
            raise SourceOpenError(f"{self.display_url}: {len(missing)} of the run's "
                                  f"{len(self.frames)} frames are gone from {self.folder} "
                                  f"(first: {missing[0]})")
        #: The run being replayed.
        self.run_id = str(self.head.get("run_id") or run)
        #: Frames of the record played so far (the held last frame not counted again).
        self.played = 0

    def _read(self, name: str) -> np.ndarray:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}\.jpg", name):
            raise SourceOpenError(f"{self.display_url}: bad frame name {name!r} in the record")
        path = self.folder / name
        check_image_header(path, f"{self.display_url}: frame", SourceOpenError)
        data = np.fromfile(str(path), dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if img is None:
            raise SourceOpenError(f"{self.display_url}: frame {name} is not a readable image")
        img.flags.writeable = False
        return img

    def _taken(self) -> bool:
        with self._lock:
            return self._consumed_seq >= self._seq

    def _play(self) -> None:
        image: np.ndarray | None = None
        while not self._stop_evt.is_set():
            start = time.monotonic()
            t0 = float(self.frames[0]["t"])
            for meta in self.frames:
                if self.speed is None:  # as fast as consumers take them
                    while self._seq and not self._taken():
                        if self._stop_evt.wait(0.002):
                            return
                else:
                    delay = start + (float(meta["t"]) - t0) / self.speed - time.monotonic()
                    if delay > 0 and self._stop_evt.wait(delay):
                        return
                if self._stop_evt.is_set():
                    return
                try:
                    image = self._read(meta["file"])
                except SourceOpenError as exc:
                    log.warning("%s", exc)
                    self._note_error(str(exc))
                    continue
                self._publish(image)
                self.played += 1
            if not self.loop:
                break
        if image is None:
            self._set_state(SourceState.STOPPED, "no readable frame in the record")
            return
        period = 1.0 / self.hold_fps
        while not self._stop_evt.wait(period):  # the screen as it was last seen
            self._publish(image)

    def __repr__(self) -> str:
        return f"ReplaySource({self.display_url!r}, frames={len(self.frames)})"

"""Replay sources for offline debugging: a video file, a single image, an image folder.

Addressed as plain paths or ``file://`` URLs; the kind is chosen by what the path is
(a folder, an image, a video). Query parameters of ``file://`` URLs:

- video: ``realtime`` (``1`` paces at the file's fps, ``0`` as fast as possible; default
  1), ``loop`` (default 0), ``fps`` (overrides the file's rate for pacing);
- image: ``fps`` (the same image is republished at this rate so that waiting for a
  fresh frame works; default ``capture.default_fps``);
- folder: ``fps`` (images per second, default 1), ``loop`` (default 1).

Missing, empty or unreadable inputs raise :class:`SourceOpenError` when the source is
built, naming the path.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np
import param

from .._errors import SourceOpenError, UrlError
from .._limits import check_image_header
from .._options import url_option
from .._settings import get_settings
from . import _native
from ._source import FrameSource, SourceState

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderSource",
    "ImageSource",
    "PlayerSource",
    "VideoFileSource",
    "file_source",
    "parse_file_url",
]

log = logging.getLogger("kvmrpa.capture")

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp",
                              ".pbm", ".pgm", ".ppm", ".pnm", ".jp2", ".sr", ".ras"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".ts",
                              ".mpg", ".mpeg", ".flv", ".wmv", ".h264", ".264", ".mjpeg"})


def parse_file_url(url: str) -> tuple[Path, dict[str, str]]:
    """``(path, query)`` of a plain path or a ``file://`` URL."""
    if "://" not in url:
        return Path(url).expanduser().absolute(), {}
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UrlError(f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() != "file":
        raise UrlError(f"not a file URL: {url!r}")
    host = parts.netloc
    path = unquote(parts.path)
    if host and host.lower() != "localhost":
        path = host + path  # file://videos/a.mp4: a relative path
    if not path:
        raise UrlError(f"file URL {url!r} names no path")
    from urllib.parse import parse_qs

    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return Path(path).expanduser().absolute(), query


def _flag(query: dict[str, str], key: str, default: bool, url: str) -> bool:
    return url_option(url, key, _BOOLEAN, default, query=query)


_BOOLEAN = param.Boolean()


def _number(query: dict[str, str], key: str, default: float | None, url: str) -> float | None:
    raw = query.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UrlError(f"{url}: {key}={raw!r} is not a number") from None
    if not value > 0:
        raise UrlError(f"{url}: {key} must be > 0, got {raw}")
    return value


def read_image(path: Path, url: str) -> np.ndarray:
    """Decode an image file to BGR, or :class:`SourceOpenError` naming the path.

    The header is checked against ``settings.vision.max_pixels`` before decoding."""
    check_image_header(path, f"{url}: image", SourceOpenError)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SourceOpenError(f"{url}: cannot read {path}: {exc.strerror or exc}") from exc
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise SourceOpenError(f"{url}: {path} is not a readable image")
    return img


class PlayerSource(FrameSource):
    """A source fed by one producer thread (``_play``) that this object owns and joins
    on stop; ``_pace`` keeps a frame rate without bursting."""

    #: The producer thread's name: ``kvmrpa-<thread_kind> <url>``.
    thread_kind = "player"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._stop_evt = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._stop_evt.clear()
        self._thread = threading.Thread(target=self._guarded, daemon=True,
                                        name=f"kvmrpa-{self.thread_kind} {self.display_url}")
        self._thread.start()

    def _stop(self) -> None:
        self._stop_evt.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def threads(self) -> list[threading.Thread]:
        return [t for t in (self._thread,) if t is not None and t.is_alive()]

    def _guarded(self) -> None:
        try:
            self._play()
        except Exception as exc:
            log.exception("source %s: %s failed", self.display_url, self.thread_kind)
            self._set_state(SourceState.STOPPED, f"{type(exc).__name__}: {exc}")

    def _play(self) -> None:
        raise NotImplementedError

    def _pace(self, start: float, index: int, fps: float) -> bool:
        """Sleep until frame ``index`` is due; False if stopped. Never bursts to catch up."""
        due = start + index / fps
        delay = due - time.monotonic()
        if delay > 0:
            return not self._stop_evt.wait(delay)
        return not self._stop_evt.is_set()


class VideoFileSource(PlayerSource):
    """Replays a video file at its own rate (or as fast as possible), optionally looping."""

    def __init__(self, url: str, path: Path | None = None, *, realtime: bool | None = None,
                 loop: bool | None = None, fps: float | None = None) -> None:
        super().__init__(url)
        qpath, query = parse_file_url(url) if path is None else (path, {})
        self.path = qpath
        self.realtime = _flag(query, "realtime", True, url) if realtime is None else realtime
        self.loop = _flag(query, "loop", False, url) if loop is None else loop
        fps = _number(query, "fps", None, url) if fps is None else fps
        if not self.path.is_file():
            raise SourceOpenError(f"{self.display_url}: no such file {self.path}")
        with _native.opening():  # FFmpeg's and OpenCV's lines to the kvmrpa.native loggers
            cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise SourceOpenError(f"{self.display_url}: {self.path} is not a readable video")
            ok, first = cap.read()
            if not ok or first is None:
                raise SourceOpenError(f"{self.display_url}: {self.path} has no decodable frame")
            file_fps = cap.get(cv2.CAP_PROP_FPS)
            self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.size = (int(first.shape[1]), int(first.shape[0]))
        finally:
            cap.release()
        default = get_settings().capture.default_fps
        self.fps = float(fps or (file_fps if file_fps and 0 < file_fps <= 1000 else default))

    def _play(self) -> None:
        cap = cv2.VideoCapture(str(self.path))
        try:
            start, index = time.monotonic(), 0
            while not self._stop_evt.is_set():
                ok, image = cap.read()
                if not ok or image is None:
                    if not self.loop:
                        self._set_state(SourceState.STOPPED, f"end of file {self.path.name}")
                        return
                    cap.release()
                    cap = cv2.VideoCapture(str(self.path))
                    ok, image = cap.read()
                    if not ok or image is None:
                        self._set_state(SourceState.STOPPED, f"{self.path} cannot be reread")
                        return
                if self.realtime and not self._pace(start, index, self.fps):
                    return
                if self.realtime and time.monotonic() - (start + index / self.fps) > 1 / self.fps:
                    start, index = time.monotonic(), 0  # fell behind: restart the schedule
                self._publish(image)
                index += 1
        finally:
            cap.release()


class ImageSource(PlayerSource):
    """One image, republished at ``fps`` so that a wait for a fresh frame succeeds."""

    def __init__(self, url: str, path: Path | None = None, *, fps: float | None = None) -> None:
        super().__init__(url)
        qpath, query = parse_file_url(url) if path is None else (path, {})
        self.path = qpath
        fps = _number(query, "fps", None, url) if fps is None else fps
        self.fps = float(fps or get_settings().capture.default_fps)
        if not self.path.is_file():
            raise SourceOpenError(f"{self.display_url}: no such file {self.path}")
        self.image = read_image(self.path, self.display_url)
        self.image.flags.writeable = False

    def _play(self) -> None:
        start, index = time.monotonic(), 0
        while self._pace(start, index, self.fps):
            self._publish(self.image)
            index += 1


class ImageFolderSource(PlayerSource):
    """The images of a folder in name order, ``fps`` per second, looping by default.
    Unreadable files are skipped and reported in ``metrics().last_error``."""

    def __init__(self, url: str, path: Path | None = None, *, fps: float | None = None,
                 loop: bool | None = None) -> None:
        super().__init__(url)
        qpath, query = parse_file_url(url) if path is None else (path, {})
        self.path = qpath
        self.fps = float((_number(query, "fps", 1.0, url) if fps is None else fps) or 1.0)
        self.loop = _flag(query, "loop", True, url) if loop is None else loop
        if not self.path.is_dir():
            raise SourceOpenError(f"{self.display_url}: no such folder {self.path}")
        self.files = sorted(p for p in self.path.iterdir()
                            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self.files:
            raise SourceOpenError(f"{self.display_url}: no image files in {self.path} "
                                  f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")

    def _play(self) -> None:
        start, index = time.monotonic(), 0
        while not self._stop_evt.is_set():
            shown = 0
            for file in self.files:
                try:
                    image = read_image(file, self.display_url)
                except SourceOpenError as exc:
                    log.warning("%s", exc)
                    self._note_error(str(exc))
                    continue
                if not self._pace(start, index, self.fps):
                    return
                self._publish(image)
                shown += 1
                index += 1
            if not shown:
                self._set_state(SourceState.STOPPED, f"no readable image in {self.path}")
                return
            if not self.loop:
                self._set_state(SourceState.STOPPED, f"end of folder {self.path.name}")
                return


def file_source(url: str) -> FrameSource:
    """The factory for plain paths and ``file://`` URLs: folder, image or video."""
    path, _query = parse_file_url(url)
    shown = url
    if path.is_dir():
        return ImageFolderSource(url)
    if not path.exists():
        raise SourceOpenError(f"{shown}: no such file or folder {path}")
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return ImageSource(url)
    if ext in VIDEO_EXTENSIONS:
        return VideoFileSource(url)
    with contextlib.suppress(cv2.error):
        if cv2.haveImageReader(str(path)):
            return ImageSource(url)
    return VideoFileSource(url)

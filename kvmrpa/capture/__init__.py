"""Video sources: the latest-frame mailbox contract, its implementations and the hub.

- :class:`FrameSource`: ``latest()`` (never blocks), ``await next_frame(after_seq,
  timeout)``, ``wait_frame`` (sync), ``state`` / ``on_state``, ``metrics()``.
- :class:`StreamSource`: RTSP/HTTP/… through OpenCV's FFmpeg backend on a reader thread
  with a watchdog and reconnect; :class:`DeviceSource`: V4L2 devices;
  :class:`VncSource`: a VNC server's framebuffer.
- :class:`VideoFileSource`, :class:`ImageSource`, :class:`ImageFolderSource`: replay.
- :class:`PatternSource`: ``pattern://bars|noise|counter?width=1280&height=720&fps=30``,
  a synthetic moving picture with the frame number drawn on it (like GStreamer's
  ``videotestsrc``), from a thread the source owns: the live view, the dashboard and
  benchmarks without hardware.
- :func:`open_source` / :func:`release_source`: shared, reference-counted sources from
  the :class:`SourceHub` (``with open_source(url) as src:`` releases it when the block
  ends); :func:`register_source` adds a URL scheme, as do other packages through the
  entry-point group ``kvmrpa.sources``.
"""

from ._files import ImageFolderSource, ImageSource, PlayerSource, VideoFileSource
from ._hub import (
    SOURCES,
    SourceHub,
    get_hub,
    open_source,
    register_source,
    registered_schemes,
    release_source,
    source_key,
    unregister_source,
)
from ._pattern import PATTERNS, PatternSource
from ._reader import DeviceSource, ReaderOptions, StreamSource
from ._source import FrameSource, SourceMetrics, SourceState
from ._vnc import VncSource

__all__ = [
    "PATTERNS",
    "SOURCES",
    "DeviceSource",
    "FrameSource",
    "ImageFolderSource",
    "ImageSource",
    "PatternSource",
    "PlayerSource",
    "ReaderOptions",
    "SourceHub",
    "SourceMetrics",
    "SourceState",
    "StreamSource",
    "VideoFileSource",
    "VncSource",
    "get_hub",
    "open_source",
    "register_source",
    "registered_schemes",
    "release_source",
    "source_key",
    "unregister_source",
]

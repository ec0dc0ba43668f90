"""The lab's RTSP server: an X display published as H.264 with GStreamer's RTSP server.

Standalone script run by the SYSTEM interpreter (/usr/bin/python3 has python3-gi; the
project's venv does not). It binds 127.0.0.1 only, on ``--port`` (0 picks a free one),
and prints ``READY <port>`` on stdout once it listens. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any


def _gi() -> tuple[Any, Any, Any]:
    """GLib, Gst, GstRtspServer (python3-gi exists for the system interpreter only)."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    return GLib, Gst, GstRtspServer


def launch_line(display: str, fps: int, bitrate: int, width: int, height: int) -> str:
    scale = f"! videoscale ! video/x-raw,width={width},height={height} " if width and height else ""
    return (
        f"( ximagesrc display-name={display} use-damage=0 show-pointer=true "
        f"! video/x-raw,framerate={fps}/1 {scale}! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        f"bitrate={bitrate} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def check_display(Gst: Any, display: str) -> str | None:
    """Grab one frame of ``display``; the error text, or None when it works."""
    pipeline = Gst.parse_launch(f"ximagesrc display-name={display} num-buffers=1 ! fakesink")
    pipeline.set_state(Gst.State.PLAYING)
    try:
        msg = pipeline.get_bus().timed_pop_filtered(
            10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is None:
            return f"no frame from display {display} within 10 s"
        if msg.type == Gst.MessageType.ERROR:
            err, _debug = msg.parse_error()
            return f"cannot capture display {display}: {err.message}"
        return None
    finally:
        pipeline.set_state(Gst.State.NULL)


def main() -> int:
    parser = argparse.ArgumentParser(description="kvmrpa lab RTSP server for an X display")
    parser.add_argument("--display", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mount", default="/screen")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--bitrate", type=int, default=4000, help="kbit/s")
    parser.add_argument("--width", type=int, default=0, help="scale to this width (0: as is)")
    parser.add_argument("--height", type=int, default=0)
    args = parser.parse_args()

    GLib, Gst, GstRtspServer = _gi()
    Gst.init(None)
    problem = check_display(Gst, args.display)
    if problem:
        print(f"FAILED {problem}", flush=True)
        return 3
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.display, args.fps, args.bitrate, args.width, args.height))
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.mount, factory)
    loop = GLib.MainLoop()
    try:
        source_id = server.attach(None)
    except GLib.Error as exc:
        print(f"FAILED {exc}", flush=True)
        return 3
    if not source_id:
        print(f"FAILED cannot listen on 127.0.0.1:{args.port}", flush=True)
        return 3
    port = server.get_bound_port()
    if port <= 0:
        print(f"FAILED cannot bind 127.0.0.1:{args.port}", flush=True)
        return 3
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    print(f"READY {port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

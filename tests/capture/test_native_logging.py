"""FFmpeg's and OpenCV's own lines go through the kvmrpa.native loggers (silent by
default, shown at their level with debug logging), and the cause FFmpeg names (refused,
authentication failed, not found…) reaches the source's last error and the node's
frame-timeout message."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from kvmrpa.capture import SourceState, StreamSource
from kvmrpa.capture._native import cause
from kvmrpa.engine import Flow

from .conftest import wait_until

RAW = ("[tcp @", "[rtsp @", "[ WARN:", "[ERROR:", "[ INFO:")


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``argv`` in a process group of its own, killed as a group on every path."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(10)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open_refused(debug: bool) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter opens a refused RTSP URL once (native state is per process)."""
    code = textwrap.dedent(f"""
        import logging, sys
        if {debug!r}:
            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                                format="%(levelname)s %(name)s: %(message)s")
        from kvmrpa.capture import StreamSource
        from kvmrpa.capture._reader import open_ffmpeg, ffmpeg_options
        said = []
        url = "rtsp://127.0.0.1:{_free_port()}/screen"
        cap = open_ffmpeg(url, ffmpeg_options(url, StreamSource(url).options), 1.0, 1.0,
                          messages=said)
        assert not cap.isOpened()
        cap.release()
        print("SAID", said)
    """)
    return _run([sys.executable, "-c", code])


def test_native_lines_are_silent_by_default_but_still_name_the_cause() -> None:
    proc = _open_refused(debug=False)
    assert proc.returncode == 0, proc.stderr
    assert not any(raw in proc.stderr for raw in RAW), proc.stderr
    assert "kvmrpa.native" not in proc.stderr
    said = next(ln for ln in proc.stdout.splitlines() if ln.startswith("SAID"))
    assert "Connection refused" in said  # collected for the cause all the same


def test_native_lines_are_log_records_at_their_level_with_debug() -> None:
    proc = _open_refused(debug=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert not [ln for ln in lines if ln.startswith(RAW)], proc.stderr
    assert any(ln.startswith("ERROR kvmrpa.native.ffmpeg: [tcp] Connection to")
               and "Connection refused" in ln for ln in lines), proc.stderr
    assert any(ln.startswith("WARNING kvmrpa.native.opencv:") and "cap.cpp" in ln
               for ln in lines), proc.stderr
    assert any(ln.startswith("DEBUG kvmrpa.native.ffmpeg:") for ln in lines)


def test_other_stderr_output_passes_through_while_opencv_is_read() -> None:
    # the fd-2 window used under debug must not swallow what others write meanwhile
    code = textwrap.dedent("""
        import logging, os, sys
        logging.basicConfig(level=logging.DEBUG)
        from kvmrpa.capture import _native
        with _native.opening():
            os.write(2, b"someone else's line\\n")
            os.write(2, b"[ WARN:0@0.1] global x.cpp:1 an OpenCV line\\n")
        print("done", file=sys.stderr)
    """)
    proc = _run([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert "someone else's line" in err and err[-1] == "done"
    assert "WARNING:kvmrpa.native.opencv:global x.cpp:1 an OpenCV line" in err
    assert not any(ln.startswith("[ WARN") for ln in err)


@pytest.mark.parametrize(("line", "expected"), [
    ("[tcp] Connection to tcp://127.0.0.1:1?timeout=0 failed: Connection refused",
     "connection refused"),
    ("[rtsp] method OPTIONS failed: 401 (Unauthorized)", "authentication failed"),
    ("[rtsp] method DESCRIBE failed: 404 (Not Found)", "stream not found"),
    ("[tcp] Connection to tcp://10.1.2.3:554?timeout=0 failed: No route to host",
     "host unreachable"),
    ("[tcp] Failed to resolve hostname cam.invalid: Name or service not known",
     "unknown host"),
    ("[tcp] Connection to tcp://10.1.2.3:554?timeout=3000000 failed: Connection timed out",
     "timed out"),
    ("[h264] error while decoding MB 3 4", None),
])
def test_cause_names_what_ffmpeg_said(line: str, expected: str | None) -> None:
    assert cause(["[rtsp] unrelated", line]) == expected


@contextlib.contextmanager
def rtsp_answering(status: str) -> Iterator[str]:
    """A loopback RTSP server that answers every request with ``status``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    while not stop.is_set():
                        data = conn.recv(4096)
                        if not data:
                            break
                        cseq = next((ln.split(":", 1)[1].strip() for ln in
                                     data.decode("latin-1").splitlines()
                                     if ln.lower().startswith("cseq:")), "1")
                        conn.sendall(f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n"
                                     'WWW-Authenticate: Basic realm="kvm"\r\n'
                                     "Content-Length: 0\r\n\r\n".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"rtsp://127.0.0.1:{listener.getsockname()[1]}/screen"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize(("status", "expected"), [
    ("401 Unauthorized", "authentication failed"),
    ("404 Not Found", "stream not found"),
])
def test_the_source_error_names_what_the_server_answered(status: str, expected: str) -> None:
    with rtsp_answering(status) as url:
        src = StreamSource(url, open_timeout=2.0, read_timeout=2.0, reconnect_initial=0.5)
        with src:
            wait_until(lambda: src.state == SourceState.RECONNECTING, 10, "a failed open")
            err = src.metrics().last_error or ""
    assert "could not be opened" in err and expected in err, err


def test_frame_timeout_message_carries_the_last_capture_error() -> None:
    url = f"rtsp://127.0.0.1:{_free_port()}/screen"
    flow = Flow("unreachable", source=url)
    flow.add("source", "grab", frame_timeout=1.5)
    result = flow.run(timeout=30, record=False)
    assert result.status == "failed"
    assert "grab" in result.error and "frame_timeout" in result.error
    assert "within 1.5 s (last error:" in result.error, result.error
    assert "connection refused" in result.error, result.error


@pytest.mark.parametrize("debug", [False, True], ids=["default", "debug"])
def test_the_cli_is_silent_about_native_lines_unless_debug(debug: bool) -> None:
    url = f"rtsp://127.0.0.1:{_free_port()}/screen"
    argv = [sys.executable, "-m", "kvmrpa", *(["--debug"] if debug else []), "probe",
            "--seconds", "1", url]
    proc = _run(argv)
    assert "connection refused" in proc.stdout, proc.stdout + proc.stderr
    raw = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith(RAW)]
    assert raw == []
    routed = [ln for ln in proc.stderr.splitlines() if " kvmrpa.native.ffmpeg: " in ln]
    if debug:
        assert any(" ERROR kvmrpa.native.ffmpeg: " in ln and "Connection refused" in ln
                   for ln in routed), proc.stderr
    else:
        assert routed == []

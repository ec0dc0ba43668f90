"""Reader options, FFmpeg option composition and the process-wide variable's lock."""

from __future__ import annotations

import os
import threading

import pytest

from kvmrpa import ConfigError, configure
from kvmrpa.capture import ReaderOptions
from kvmrpa.capture._reader import _OPEN_LOCK, FFMPEG_OPTIONS_VAR, ffmpeg_options, open_ffmpeg


def test_options_come_from_settings_with_overrides() -> None:
    settings = configure()
    old = settings.capture.stall_timeout
    try:
        configure(capture__stall_timeout=7.5)
        opts = ReaderOptions.from_settings(open_timeout=1.5)
        assert opts.stall_timeout == 7.5 and opts.open_timeout == 1.5
    finally:
        configure(capture__stall_timeout=old)


@pytest.mark.parametrize("bad", [{"stall_timeout": 0}, {"transport": "sctp"}, {"nope": 1}])
def test_bad_options_are_config_errors(bad: dict) -> None:
    with pytest.raises(ConfigError):
        ReaderOptions.from_settings(**bad)


def test_ffmpeg_options_use_tcp_and_short_probing_for_rtsp_only() -> None:
    opts = ReaderOptions.from_settings(transport="tcp")
    rtsp = ffmpeg_options("rtsp://h/x", opts)
    assert rtsp is not None
    assert rtsp.startswith("rtsp_transport;tcp|") and "probesize;" in rtsp
    http = ffmpeg_options("http://h/x.mjpg", opts)
    assert http is not None and "rtsp_transport" not in http
    assert ffmpeg_options("rtsp://h/x", ReaderOptions.from_settings(probe_options=None)) == \
        "rtsp_transport;tcp"


def test_open_sets_the_variable_only_while_opening_and_keeps_the_users(monkeypatch) -> None:
    # The variable is process-wide: set it while no other thread (a reader of an earlier
    # test reconnecting in the background) is inside an open, as a user setting it would.
    with _OPEN_LOCK:
        monkeypatch.setenv(FFMPEG_OPTIONS_VAR, "stimeout;5")
    seen: list[str | None] = []
    cap = open_ffmpeg("rtsp://127.0.0.1:1/none", "rtsp_transport;tcp", 0.5, 0.5,
                      on_locked=lambda: seen.append(os.environ.get(FFMPEG_OPTIONS_VAR)))
    try:
        assert not cap.isOpened()
    finally:
        cap.release()
    assert seen == ["stimeout;5"]  # on_locked runs before ours is set
    assert os.environ[FFMPEG_OPTIONS_VAR] == "stimeout;5"
    with _OPEN_LOCK:
        monkeypatch.delenv(FFMPEG_OPTIONS_VAR)
    cap = open_ffmpeg("rtsp://127.0.0.1:1/none", "rtsp_transport;tcp", 0.5, 0.5)
    cap.release()
    assert FFMPEG_OPTIONS_VAR not in os.environ


def test_opens_are_serialised_by_the_lock() -> None:
    inside = 0
    most = 0
    lock = threading.Lock()

    def locked() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        threading.Event().wait(0.02)
        with lock:
            inside -= 1

    def opener() -> None:
        open_ffmpeg("rtsp://127.0.0.1:1/none", None, 0.5, 0.5, on_locked=locked).release()

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1


def test_reader_option_defaults_are_the_capture_settings_defaults() -> None:
    from dataclasses import fields

    from kvmrpa._settings import CaptureSettings
    from kvmrpa.capture import ReaderOptions

    defaults = ReaderOptions()
    for f in fields(ReaderOptions):
        assert getattr(defaults, f.name) == CaptureSettings.param[f.name].default, f.name

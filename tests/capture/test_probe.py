"""``kvmrpa probe``: the health report of a source, on the real lab stream."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kvmrpa.cli import main
from kvmrpa.lab import free_port


@pytest.mark.lab
def test_probe_reports_a_live_rtsp_stream(lab_rtsp: str, capsys: pytest.CaptureFixture) -> None:
    code = main(["probe", lab_rtsp, "--seconds", "1.5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["url"] == lab_rtsp and report["state"] == "live"
    assert report["resolution"] == [1280, 720]
    assert 10 <= report["fps"] <= 20 and report["frames"] >= 10
    assert report["frame_age_ms_p50"] is not None and report["frame_age_ms_p50"] >= 0
    assert report["reconnects"] == 0 and report["error"] is None
    assert [s for _, s in report["transitions"]][-1] == "live"


@pytest.mark.lab
def test_probe_of_a_dead_address_exits_2_with_the_reason(capsys: pytest.CaptureFixture) -> None:
    url = f"rtsp://user:pw-secret@127.0.0.1:{free_port()}/x"
    code = main(["probe", url, "--seconds", "0.8", "--json"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 2
    assert report["frames"] == 0 and report["resolution"] is None
    assert report["state"] == "reconnecting"
    assert "refused" in report["error"]
    assert "pw-secret" not in out


def test_probe_text_output_for_an_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), np.zeros((20, 30, 3), np.uint8))
    code = main(["probe", str(path), "--seconds", "0.5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "resolution  30x20" in out and "state       live" in out


def test_probe_of_a_garbage_scheme_is_an_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["probe", "garbage://x", "--seconds", "0.2"]) == 2
    assert "garbage" in capsys.readouterr().err

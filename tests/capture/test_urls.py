"""URL helpers shared by sources and drivers: redaction of credentials, VNC addresses."""

from __future__ import annotations

import pytest

from kvmrpa import UrlError
from kvmrpa._urls import is_secret_param, redact_url, split_url, vnc_address
from kvmrpa.capture import StreamSource
from kvmrpa.kvm._dryrun import DryRunDriver


@pytest.mark.parametrize(("url", "shown"), [
    ("rtsp://admin:p@ss@10.0.0.1:554/live", "rtsp://admin:***@10.0.0.1:554/live"),
    ("rtsp://admin:a@b@c@cam/x?y=1", "rtsp://admin:***@cam/x?y=1"),
    ("vnc://se@cret@127.0.0.1:5900", "vnc://***@127.0.0.1:5900"),
    # a password may hold "/": after "user:" the credentials run to the last "@"
    ("rtsp://u:pw@h/a@b", "rtsp://u:***@b"),
    ("rtsp://u:p/w#x?y z@h/a", "rtsp://u:***@h/a"),
    ("rtsp://h/p@x", "rtsp://h/p@x"),
    ("http://h/?access_token=zz&a=1", "http://h/?access_token=***&a=1"),
    ("http://h/?api_key=k#top", "http://h/?api_key=***#top"),
    ("http://h/?keyframe=1&user=bob", "http://h/?keyframe=1&user=bob"),
])
def test_redaction_hides_the_whole_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    password = split_url(url).password
    if password:
        assert password not in redact_url(url)


def test_redaction_inside_a_message_errs_on_the_side_of_hiding() -> None:
    # a password may hold spaces: a later "@" on the same line hides what is between
    text = "cannot open rtsp://u:p@ss@cam/x: write to ops@example.org"
    assert redact_url(text) == "cannot open rtsp://u:***@example.org"
    # a URL without credentials is left alone, and so is the next line
    assert redact_url("rtsp://cam/x: ask ops@example.org") == "rtsp://cam/x: ask ops@example.org"
    assert redact_url("rtsp://u:p@cam/x\nops@example.org") == "rtsp://u:***@cam/x\nops@example.org"


def test_secret_parameter_names() -> None:
    assert all(map(is_secret_param, ["token", "access_token", "API_KEY", "password",
                                     "passwd", "pwd", "secret", "auth"]))
    assert not any(map(is_secret_param, ["size", "fps", "keyframe", "user", "baud"]))


def test_sources_and_drivers_never_show_a_password_with_an_at_sign() -> None:
    src = StreamSource("rtsp://admin:p@ss@127.0.0.1:9/live")
    assert "ss@" not in src.display_url and "p@ss" not in repr(src)
    drv = DryRunDriver("dryrun://x?access_token=hunter2")
    assert "hunter2" not in drv.display_url
    assert "hunter2" in drv.secrets()


def test_vnc_address_forms() -> None:
    assert vnc_address("vnc://127.0.0.1") == ("127.0.0.1", 5900, None, None)
    assert vnc_address("vnc://s%40cret@h:5901") == ("h", 5901, None, "s@cret")
    assert vnc_address("vnc://bob:pw@h") == ("h", 5900, "bob", "pw")
    with pytest.raises(UrlError, match="no host"):
        vnc_address("vnc://:5900")
    with pytest.raises(UrlError, match=r"bad port") as info:
        vnc_address("vnc://secret@h:99999")
    assert "secret" not in str(info.value)

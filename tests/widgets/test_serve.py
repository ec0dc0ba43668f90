"""``kvmrpa serve`` argument handling that needs no server: refusals and auth files."""

from __future__ import annotations

import pytest

from kvmrpa import ConfigError
from kvmrpa.cli import main
from kvmrpa.cli._serve import default_flows_dir, is_loopback, read_auth_file


def test_refuses_non_loopback_without_auth(capsys) -> None:
    assert main(["serve", "--address", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "0.0.0.0" in err[0] and "--auth-file" in err[0]


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")


def test_auth_file(tmp_path) -> None:
    from kvmrpa._auth import hash_password

    f = tmp_path / "users"
    f.write_text(f"# comment\n\nalice:{hash_password('pa:ss')}:editor\n", encoding="utf-8")
    assert read_auth_file(f) == {"alice": "editor"}
    f.write_text("alice\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1"):
        read_auth_file(f)
    f.write_text("alice:s3cret\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"plain-text password.*kvmrpa passwd alice"):
        read_auth_file(f)
    with pytest.raises(ConfigError, match="cannot read"):
        read_auth_file(tmp_path / "missing")


def test_bad_auth_file_is_one_line_error(tmp_path, capsys) -> None:
    f = tmp_path / "users"
    f.write_text("nobody\n", encoding="utf-8")
    assert main(["serve", "--address", "0.0.0.0", "--auth-file", str(f), "--port", "1",
                 "--insecure-http"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected 'user:hash:role'" in err[0]


def test_refuses_plain_http_off_loopback(tmp_path, capsys) -> None:
    from kvmrpa._auth import hash_password

    f = tmp_path / "users"
    f.write_text(f"alice:{hash_password('x')}:admin\n", encoding="utf-8")
    assert main(["serve", "--address", "0.0.0.0", "--auth-file", str(f), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plain HTTP" in err[0] and "--tls-cert" in err[0]
    assert main(["serve", "--address", "0.0.0.0", "--auth-file", str(f), "--port", "1",
                 "--tls-cert", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tls-key" in err[0]
    assert main(["serve", "--address", "0.0.0.0", "--auth-file", str(f), "--port", "1",
                 "--tls-cert", str(f), "--tls-key", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a PEM certificate" in err[0]


def test_default_flows_are_a_copy_of_the_scenarios_in_the_home(tmp_path) -> None:
    """The demo serves the user's copy, so Save never writes into the package; a flow
    the user changed is kept, a shipped one missing from the copy is added."""
    from kvmrpa._settings import get_settings
    from kvmrpa.sim import flow_path

    store = get_settings().store
    before = store.home
    store.home = str(tmp_path / "home")
    try:
        flows = default_flows_dir()
        assert flows == tmp_path / "home" / "flows"
        assert {p.stem for p in flows.glob("*.json")} >= {"scenario1", "scenario2", "scenario3"}
        shipped = flow_path("scenario1")
        assert (flows / "scenario1.json").read_bytes() == shipped.read_bytes()
        (flows / "scenario1.json").write_text("{}", encoding="utf-8")
        (flows / "scenario2.json").unlink()
        assert default_flows_dir() == flows
        assert (flows / "scenario1.json").read_text(encoding="utf-8") == "{}"
        assert (flows / "scenario2.json").read_bytes() == flow_path("scenario2").read_bytes()
        assert not list(flows.glob(".*.tmp"))
    finally:
        store.home = before


def test_websocket_origins_match_what_a_browser_sends() -> None:
    import socket

    from kvmrpa.cli._serve import websocket_origins

    assert websocket_origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"]
    assert "[::1]:5006" in websocket_origins("::1", 5006)
    assert websocket_origins("192.168.1.2", 8080) == ["192.168.1.2:8080"]
    # A wildcard bind: browsers name the machine, never 0.0.0.0.
    wild = websocket_origins("0.0.0.0", 5006)
    assert "0.0.0.0:5006" not in wild
    assert f"{socket.gethostname()}:5006" in wild and "localhost:5006" in wild

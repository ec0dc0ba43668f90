"""PiKVM HTTP HID API driver against a loopback server that implements kvmd's endpoints."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from kvmrpa import CoordinateError, DriverConnectionError, InputError, UnsupportedActionError
from kvmrpa.kvm import ActionRecord
from kvmrpa.kvm._pikvm import PiKvmDriver, to_pikvm

from ._support import LoopbackHTTP, Request, closed_port

USER, PASSWORD = "admin", "s3cr3t-pw"
ENDPOINTS = {"/api/hid/events/send_key", "/api/hid/events/send_mouse_button",
             "/api/hid/events/send_mouse_move", "/api/hid/events/send_mouse_wheel",
             "/api/hid/print"}


def kvmd(req: Request) -> tuple[int, Any]:
    """A tiny kvmd: checks the auth headers and the parameters like the real validators."""
    if req.headers.get("x-kvmd-user") != USER or req.headers.get("x-kvmd-passwd") != PASSWORD:
        return 403, {"ok": False, "result": {"error": "ForbiddenError", "error_msg": "Forbidden"}}
    if req.method == "GET" and req.path == "/api/hid":
        return 200, {"ok": True, "result": {"online": True, "mouse": {"absolute": True}}}
    if req.method != "POST" or req.path not in ENDPOINTS:
        return 404, {"ok": False, "result": {"error": "NotFound", "error_msg": req.path}}
    p = req.params
    if req.path.endswith("send_mouse_move"):
        for k in ("to_x", "to_y"):
            if not -32768 <= int(p[k]) <= 32767:
                return 400, {"ok": False, "result": {"error": "ValidationError", "error_msg": k}}
    if req.path.endswith("send_key") and p.get("key") == "KeyQ":
        return 400, {"ok": False, "result": {"error": "ValidationError",
                                             "error_msg": "Invalid key: 'KeyQ'"}}
    return 200, {"ok": True, "result": {}}


def events(server: LoopbackHTTP) -> list[tuple[str, dict[str, str]]]:
    return [(r.path.rsplit("/", 1)[-1], r.params) for r in server.requests if r.method == "POST"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def url(server: LoopbackHTTP, user: str = USER, pw: str = PASSWORD, query: str = "") -> str:
    return f"pikvm+http://{user}:{pw}@127.0.0.1:{server.port}{query}"


def test_int16_mapping() -> None:
    assert to_pikvm(0, 1920) == -32768
    assert to_pikvm(1919, 1920) == 32767
    assert abs(to_pikvm(960, 1920)) < 40
    assert to_pikvm(5000, 1920) == 32767  # clamped


def test_click_key_hotkey_scroll_and_print(http_server: Any, fast_input: Any) -> None:
    srv = http_server(kvmd)
    drv = PiKvmDriver(url(srv), frame_size=(1280, 720))
    records: list[ActionRecord] = []
    drv.on_action(records.append)

    async def main() -> None:
        await drv.click(0, 0)
        await drv.click(1279, 719, button="right")
        await drv.move(640, 360)
        await drv.key("enter")
        await drv.hotkey("ctrl+a")
        await drv.scroll(3)
        await drv.type_text("Hello, PiKVM!\n")
        await drv.key("A")
        await drv.aclose()

    run(main())
    ev = events(srv)
    assert ev[0] == ("send_mouse_move", {"to_x": "-32768", "to_y": "-32768"})
    assert ev[1:3] == [("send_mouse_button", {"button": "left", "state": "true"}),
                       ("send_mouse_button", {"button": "left", "state": "false"})]
    assert ev[3] == ("send_mouse_move", {"to_x": "32767", "to_y": "32767"})
    assert ev[4][1]["button"] == "right"
    mx, my = int(ev[6][1]["to_x"]), int(ev[6][1]["to_y"])
    assert abs(mx) < 60 and abs(my) < 60  # the centre of the screen is near 0
    assert ev[7:9] == [("send_key", {"key": "Enter", "state": "true"}),
                       ("send_key", {"key": "Enter", "state": "false"})]
    assert [(e[1]["key"], e[1]["state"]) for e in ev[9:13]] == [
        ("ControlLeft", "true"), ("KeyA", "true"), ("KeyA", "false"), ("ControlLeft", "false")]
    assert ev[13] == ("send_mouse_wheel", {"delta_x": "0", "delta_y": "-3"})
    assert ev[14] == ("print", {"limit": "0"})
    printed = next(r for r in srv.requests if r.path == "/api/hid/print")
    assert printed.body.decode() == "Hello, PiKVM!\n"
    assert printed.headers["content-type"].startswith("text/plain")
    assert [(e[1]["key"], e[1]["state"]) for e in ev[15:19]] == [
        ("ShiftLeft", "true"), ("KeyA", "true"), ("KeyA", "false"), ("ShiftLeft", "false")]
    assert all(r.ok for r in records) and len(records) == 8
    assert PASSWORD not in repr([r.as_dict() for r in records])


def test_screen_size_from_url(http_server: Any, fast_input: Any) -> None:
    srv = http_server(kvmd)
    drv = PiKvmDriver(url(srv, query="?size=1920x1080"))
    run(drv.move(1919, 0))
    assert events(srv)[-1] == ("send_mouse_move", {"to_x": "32767", "to_y": "-32768"})
    no_size = PiKvmDriver(url(srv))
    with pytest.raises(CoordinateError, match="size is unknown"):
        run(no_size.move(10, 10))


def test_wrong_password_is_a_clear_error_and_not_retried(http_server: Any, fast_input: Any) -> None:
    srv = http_server(kvmd)
    drv = PiKvmDriver(url(srv, pw="wrong-pw"), frame_size=(100, 100))
    with pytest.raises(DriverConnectionError) as err:
        run(drv.move(1, 1))  # moves are retry-safe, auth failures are not transient
    msg = str(err.value)
    assert "authentication failed for user 'admin'" in msg and "HTTP 403" in msg
    assert "wrong-pw" not in msg and "pikvm+http://admin:***@127.0.0.1" in msg
    assert len(srv.requests) == 1


def test_rejected_and_failing_requests(http_server: Any, fast_input: Any) -> None:
    srv = http_server(kvmd)
    drv = PiKvmDriver(url(srv), frame_size=(100, 100))
    with pytest.raises(InputError, match=r"rejected \(HTTP 400\): Invalid key: 'KeyQ'"):
        run(drv.key("q"))
    with pytest.raises(UnsupportedActionError, match="'中'"):
        run(drv.type_text("中"))
    assert not [r for r in srv.requests if r.path == "/api/hid/print"]

    calls = {"n": 0}

    def flaky(req: Request) -> tuple[int, Any]:
        if req.path.endswith("send_mouse_move"):
            calls["n"] += 1
            return 503, {"ok": False, "result": {"error": "HidError", "error_msg": "HID busy"}}
        return kvmd(req)

    srv2 = http_server(flaky)
    drv2 = PiKvmDriver(url(srv2), frame_size=(100, 100))
    with pytest.raises(DriverConnectionError, match="HTTP 503: HID busy"):
        run(drv2.move(5, 5))
    assert calls["n"] == 3  # a move is retried (retries=2)
    calls["n"] = 0
    with pytest.raises(DriverConnectionError, match="click"):
        run(drv2.click(5, 5))
    assert calls["n"] == 1  # a click is not


def test_closed_port_and_unreachable_host(blackhole: int, fast_input: Any) -> None:
    fast_input.connect_timeout = 0.5
    drv = PiKvmDriver(f"pikvm+http://{USER}:{PASSWORD}@127.0.0.1:{closed_port()}", frame_size=(10, 10))
    with pytest.raises(DriverConnectionError, match="cannot connect"):
        run(drv.click(1, 1))
    start = time.monotonic()
    drv = PiKvmDriver(f"pikvm+http://{USER}:{PASSWORD}@127.0.0.1:{blackhole}", frame_size=(10, 10))
    with pytest.raises(DriverConnectionError, match=r"no connection within 0.5 s"):
        run(drv.click(1, 1))
    assert time.monotonic() - start < 30  # bounded by the connect timeout, not hanging


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_is_verified_unless_opted_out(http_server: Any, fast_input: Any, tmp_path: Path) -> None:
    srv = http_server(kvmd)
    cert, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.server.socket = ctx.wrap_socket(srv.server.socket, server_side=True)
    base = f"pikvm+https://{USER}:{PASSWORD}@127.0.0.1:{srv.port}"
    with pytest.raises(DriverConnectionError, match=r"certificate.*\?verify=0"):
        run(PiKvmDriver(base, frame_size=(10, 10)).key("a"))
    drv = PiKvmDriver(base + "?verify=0", frame_size=(10, 10))
    run(drv.key("a"))
    assert events(srv)[-1] == ("send_key", {"key": "KeyA", "state": "false"})

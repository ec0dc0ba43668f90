"""HTTPS and login limits in headless Chromium: ``kvmrpa serve --tls-cert/--tls-key`` on
loopback with a self-signed certificate made here; the session cookie is Secure, HttpOnly
and SameSite=Strict; after 20 wrong passwords the right one is accepted only after the
policy's delay, and the delay is logged."""

from __future__ import annotations

import datetime
import ipaddress
import os
import time
from pathlib import Path

import pytest

from kvmrpa._auth import LoginThrottle, set_account

from .conftest import new_page

pytestmark = pytest.mark.browser

DELAY, DELAY_MAX = 0.1, 1.0  # the test's login policy (settings.server.login_delay*)


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def submit(p, user: str, password: str) -> None:
    p.fill("#username", user)
    p.fill("#password", password)
    p.click("button[type=submit]")


@pytest.mark.timeout(240)
def test_https_login_secure_cookie_and_throttle(serve_dashboard, chromium, tmp_path,
                                                artifacts_dir) -> None:
    cert, key = self_signed(tmp_path)
    users = tmp_path / "users"
    set_account(users, "alice", "right-password", "operator")
    env = {**os.environ, "KVMRPA_HOME": str(tmp_path / "home"),
           "KVMRPA_SERVER_LOGIN_DELAY": str(DELAY), "KVMRPA_SERVER_LOGIN_DELAY_MAX": str(DELAY_MAX)}
    with serve_dashboard("--auth-file", str(users), "--tls-cert", str(cert), "--tls-key", str(key),
                         ready_status=(302,), env=env) as server:
        assert server.url.startswith("https://127.0.0.1:")
        context, page = new_page(chromium, ignore_https_errors=True)
        p = page.page
        try:
            p.goto(server.url)
            p.locator("#username").wait_for()
            assert p.url.startswith("https://") and "/login" in p.url
            for _ in range(20):
                submit(p, "alice", "wrong-password")
                p.get_by_text("Invalid username or password.").wait_for(timeout=30_000)
            p.screenshot(path=os.path.join(artifacts_dir, "browser-auth-tls-refused.png"))
            t0 = time.monotonic()
            submit(p, "alice", "right-password")
            p.get_by_label("Live view").wait_for(timeout=90_000)
            took = time.monotonic() - t0
            p.screenshot(path=os.path.join(artifacts_dir, "browser-auth-tls-in.png"))
            cookies = {c["name"]: c for c in context.cookies()}
            assert page.blocked == []
        finally:
            context.close()
        # the policy: 5 free failures a minute, then DELAY doubling per failure, capped
        expected = LoginThrottle(free=5, window=60, delay=DELAY, max_delay=DELAY_MAX).delay_for(20)
        assert expected == DELAY_MAX
        assert took >= expected, f"the right password after 20 wrong ones took {took:.2f} s"
        user = cookies["user"]
        assert user["secure"] and user["httpOnly"] and user["sameSite"] == "Strict"
        assert all(c["secure"] and c["httpOnly"] and c["sameSite"] == "Strict"
                   for c in cookies.values())
        out = server.output()
        delayed = [line for line in out.splitlines() if "login: delaying the attempt" in line]
        assert len(delayed) >= 15 and "'alice'" in delayed[-1] and "127.0.0.1" in delayed[-1]
        assert f"by {DELAY_MAX:.2f} s" in delayed[-1]
        assert "right-password" not in out and "wrong-password" not in out
        assert "https://127.0.0.1" in out


@pytest.mark.timeout(180)
def test_insecure_http_shows_a_warning_banner(serve_dashboard, chromium, tmp_path,
                                              artifacts_dir) -> None:
    users = tmp_path / "users"
    set_account(users, "bob", "pw-bob", "viewer")
    env = {**os.environ, "KVMRPA_HOME": str(tmp_path / "home")}
    with serve_dashboard("--auth-file", str(users), "--insecure-http", ready_status=(302,),
                         env=env) as server:
        context, page = new_page(chromium)
        p = page.page
        try:
            p.goto(server.url)
            assert "Plain HTTP (--insecure-http)" in p.get_by_role("alert").inner_text()
            submit(p, "bob", "pw-bob")
            p.get_by_label("Live view").wait_for(timeout=90_000)
            banner = p.get_by_label("Insecure connection")
            assert "plain HTTP" in banner.inner_text() and banner.is_visible()
            assert "signed in as bob (viewer)" in p.get_by_label("Signed in").inner_text()
            p.screenshot(path=os.path.join(artifacts_dir, "browser-auth-insecure-banner.png"))
            user = {c["name"]: c for c in context.cookies()}["user"]
            assert user["httpOnly"] and user["sameSite"] == "Strict" and not user["secure"]
        finally:
            context.close()

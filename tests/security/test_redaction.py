"""One redaction function for every output: property tests over generated credentials.

Hypothesis builds passwords (with ``/ # ? @ %`` and spaces, raw or percent-encoded),
URLs of many schemes (IPv6 hosts too) and secret query values, then sends them through
each output path they can reach: messages, log records (with tracebacks), errors raised
by the URL parsers, sources and drivers, the command line's error line and
``probe --json``, and run records. The secret must never come out.
"""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kvmrpa._errors import KvmrpaError, UrlError
from kvmrpa._redact import (
    SECRET_KEYS,
    is_secret_name,
    password_span,
    plain_secret_in_url,
    redact,
    redact_data,
    register_secret,
)
from kvmrpa._urls import split_url, vnc_address

_PW_CHARS = "abcdefghijkLMNOPQRSTUVWXYZ0123456789/#?@% :!$&'()+,;=~-._"
_TOKEN_CHARS = "abcdefghijkLMNOPQRSTUVWXYZ0123456789-._~%"

# a distinctive prefix: a generated secret cannot be a piece of the host or user
passwords = st.text(_PW_CHARS, min_size=6, max_size=24).map(lambda s: "Zq" + s)
tokens = st.text(_TOKEN_CHARS, min_size=6, max_size=24).map(lambda s: "Zq" + s)
users = st.text("abcdefgh", min_size=1, max_size=8)
hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z]{2,5})?", fullmatch=True),
    st.sampled_from(["[::1]", "[fe80::1%25eth0]", "127.0.0.1", "0"]))
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
paths = st.sampled_from(["", "/", "/live", "/Streaming/Channels/101", "/a/b?x=1"])
schemes = st.sampled_from(["rtsp", "rtsps", "vnc", "device", "sim", "http", "https",
                           "pikvm+https", "http+keys", "dryrun", "ch9329", "file", "x-custom"])
keys = st.sampled_from(SECRET_KEYS).flatmap(
    lambda k: st.sampled_from([k, k.upper(), k.title(), f"access_{k}", f"X-{k}"]))


def _forms(secret: str) -> list[str]:
    """The ways a secret could show: as written, percent-encoded, decoded."""
    return [s for s in {secret, quote(secret, safe=""), unquote(secret)} if len(s) >= 6]


def assert_hidden(secret: str, *outputs: object) -> None:
    for out in outputs:
        text = str(out)
        for form in _forms(secret):
            assert form not in text, f"secret {form!r} leaked in {text!r}"


@st.composite
def credential_urls(draw: st.DrawFn) -> tuple[str, str]:
    """``(url, secret)``: a URL whose password is the secret (raw or encoded)."""
    pw = draw(passwords)
    assume("://" not in pw)
    written = draw(st.sampled_from([pw, quote(pw, safe="")]))
    scheme, user, host = draw(schemes), draw(users), draw(hosts)
    cred = f"{written}@" if scheme == "vnc" and draw(st.booleans()) else f"{user}:{written}@"
    return f"{scheme}://{cred}{host}{draw(ports)}{draw(paths)}", pw


@st.composite
def token_urls(draw: st.DrawFn) -> tuple[str, str]:
    """``(url, secret)``: a URL with a secret query value."""
    token = draw(tokens)
    scheme, host = draw(schemes), draw(hosts)
    extra = draw(st.sampled_from(["", "a=1&", "fps=5;"]))
    tail = draw(st.sampled_from(["", "&b=2", "#frag"]))
    return f"{scheme}://{host}{draw(ports)}/p?{extra}{draw(keys)}={token}{tail}", token


any_secret_url = st.one_of(credential_urls(), token_urls())
messages = st.sampled_from(["{u}", "cannot open {u}: timed out", "{u!r} failed", "a\n{u}\nb",
                            "source={u} input={u}", "[{u}]", "url {u} (retry 2)"])


@settings(max_examples=600, deadline=None)
@given(any_secret_url, messages)
def test_redact_hides_every_secret_in_any_message(case: tuple[str, str], form: str) -> None:
    url, secret = case
    text = form.format(u=url)
    assert_hidden(secret, redact(text), redact(redact(text)))


@settings(max_examples=300, deadline=None)
@given(case=any_secret_url)
def test_a_url_with_a_plain_secret_is_refused_on_save(case: tuple[str, str]) -> None:
    url, _secret = case
    assert plain_secret_in_url(url) is not None
    assert plain_secret_in_url(" \n" + url) is not None  # whitespace does not hide it


@settings(max_examples=300, deadline=None)
@given(case=any_secret_url)
def test_structured_output_is_redacted(case: tuple[str, str]) -> None:
    url, secret = case
    data = {"url": url, "nested": [{"error": f"open {url} failed"}], url: 1,
            "password": secret}
    out = json.dumps(redact_data(data))
    assert_hidden(secret, out)


@settings(max_examples=200, deadline=None)
@given(case=any_secret_url)
def test_every_kvmrpa_log_record_is_redacted(case: tuple[str, str]) -> None:
    url, secret = case
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    log = logging.getLogger("kvmrpa.test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("cannot open %s", url)
        log.warning(f"direct {url}")
        log.warning("as data %r", {"url": url})
        try:
            raise UrlError(f"bad URL {url}")
        except UrlError:
            log.exception("failed on %s", url)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert stream.getvalue().count("cannot open") == 1
    assert_hidden(secret, stream.getvalue())


def _user_only_vnc(url: str) -> bool:
    """``vnc://secret@host``: only vnc:// has a password where the user would be, so
    moving such a URL to another scheme makes its secret a user name."""
    span = password_span(url)
    return url.startswith("vnc://") and span is not None and span[0] == len("vnc://")


def _library_errors(url: str) -> list[str]:
    """Messages of the errors the URL parsers, sources and drivers raise for ``url``."""
    from kvmrpa.capture import open_source, release_source
    from kvmrpa.kvm import open_driver, release_driver
    from kvmrpa.sim._registry import parse_sim_url

    out: list[str] = []
    calls = [
        lambda: split_url(url.split("://", 1)[1]),                # no scheme
        lambda: vnc_address(url.replace("://", "://", 1) + ":99999"),
        lambda: parse_sim_url("sim" + url[url.index("://"):]),
        lambda: open_driver("nosuch" + url[url.index("://"):]),
        lambda: open_source("nosuch" + url[url.index("://"):]),
        lambda: open_source("pattern" + url[url.index("://"):]),
    ]
    for call in calls:
        try:
            got = call()
        except (KvmrpaError, ValueError) as exc:
            out.append(str(exc))
        else:  # opened after all: give it back
            with __import__("contextlib").suppress(Exception):
                (release_source if hasattr(got, "wait_frame") else release_driver)(got)
    return out


@settings(max_examples=150, deadline=None)
@given(case=any_secret_url)
def test_errors_raised_for_a_url_never_hold_its_secret(case: tuple[str, str]) -> None:
    url, secret = case
    assume(not _user_only_vnc(url))
    errors = _library_errors(url)
    assert errors  # each of these URLs is refused somewhere
    assert_hidden(secret, *errors)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=any_secret_url)
def test_the_command_line_never_prints_a_secret(case: tuple[str, str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from kvmrpa.cli import main

    url, secret = case
    assume(not _user_only_vnc(url))
    bad = "nosuch" + url[url.index("://"):]
    assert main(["probe", bad, "--seconds", "0.1", "--json"]) == 2
    assert main(["send", bad, "key", "a"]) == 2
    out = capsys.readouterr()
    assert "error:" in out.err and "Traceback" not in out.err
    assert_hidden(secret, out.out, out.err)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=any_secret_url)
def test_probe_json_is_redacted(case: tuple[str, str], capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from kvmrpa.cli import _probe, main

    url, secret = case
    report = {"url": url, "state": "failed", "resolution": None, "fps": float("nan"),
              "frames": 0, "frame_age_ms_p50": None, "frame_age_ms_p95": float("inf"),
              "reconnects": 0, "transitions": [[0.0, f"failed: {url}"]],
              "error": f"cannot open {url}"}
    monkeypatch.setattr(_probe, "probe", lambda _url, _seconds: report)
    assert main(["probe", "sim://desktop", "--json"]) == 2
    out = capsys.readouterr().out
    parsed = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    assert parsed["frames"] == 0 and parsed["fps"] is None
    assert_hidden(secret, out)


@settings(max_examples=25, deadline=None)
@given(case=any_secret_url)
def test_run_records_are_redacted(case: tuple[str, str]) -> None:
    from kvmrpa.engine._records import RunStore

    url, secret = case
    store = RunStore()
    record = store.open("20260101-000000-redact", "redaction")
    record.write({"kind": "run", "source": url, "input": {"url": url}})
    record.write({"kind": "error", "error": f"cannot open {url}", "password": secret})
    record.close()
    assert record.wait_closed(10)
    try:
        text = record.path.read_text(encoding="utf-8")
    finally:
        record.path.unlink()
    assert text.count("\n") == 2
    assert_hidden(secret, text)


def test_secrets_resolved_at_run_time_are_hidden_everywhere() -> None:
    register_secret("hunter2-the-pass")
    assert redact("typed hunter2-the-pass into the field") == "typed *** into the field"
    assert redact("hunter2-the-pass".replace("-", "%2D")) != ""  # other spellings pass
    register_secret("abc")  # too short to hide safely: ignored
    assert redact("abc") == "abc"


@pytest.mark.parametrize(("name", "secret"), [
    ("password", True), ("db_pass", True), ("apiKey", True), ("AUTH_TOKEN", True),
    ("secret", True), ("signature", True), ("count", False), ("hotkey", False),
    ("passes", False), ("key", False), ("keyboard", False), ("monkey", False),
])
def test_which_names_look_secret(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(("url", "shown"), [
    ("device://admin:SECRET@0", "device://admin:***@0"),
    ("sim://admin:SeCrEt@desktop", "sim://admin:***@desktop"),
    ("rtsp://admin:p/ss word#x?y@[::1]:554/live", "rtsp://admin:***@[::1]:554/live"),
    ("http://h/x?sig=abc&Signature=def&ok=1", "http://h/x?sig=***&Signature=***&ok=1"),
    ("http://h/x?apikey=1&API_KEY=2&pwd=3&pass=4&auth=5&key=6&secret=7",
     "http://h/x?apikey=***&API_KEY=***&pwd=***&pass=***&auth=***&key=***&secret=***"),
    ("http://h/x?keyframe=1&user=bob", "http://h/x?keyframe=1&user=bob"),
])
def test_documented_forms(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_the_sim_error_does_not_echo_the_password_lower_cased() -> None:
    from kvmrpa.sim._registry import parse_sim_url

    with pytest.raises(UrlError) as info:
        parse_sim_url("sim://admin:SeCrEtPw@nosuch")
    assert "secretpw" not in str(info.value).lower()

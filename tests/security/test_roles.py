"""App-mode roles without a browser: password hashes, the auth file, ``kvmrpa passwd``,
the login throttle, and every mutating dashboard handler checked against each role and
audited (the handlers are called directly, as a crafted browser message would)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from kvmrpa import ConfigError
from kvmrpa._auth import (
    AuthFile,
    LoginThrottle,
    hash_password,
    parse_auth_file,
    role_at_least,
    set_account,
    verify_password,
)
from kvmrpa.cli import main

ROOT = Path(__file__).resolve().parents[2]


# -- hashes and the auth file ---------------------------------------------------------------
def test_hash_is_salted_self_describing_and_verified_in_constant_time() -> None:
    h1, h2 = hash_password("correct horse"), hash_password("correct horse")
    assert h1 != h2 and h1.startswith("$scrypt$n=32768,r=8,p=1$") and ":" not in h1
    assert verify_password("correct horse", h1) and verify_password("correct horse", h2)
    assert not verify_password("correct hors", h1)
    assert not verify_password("x", "plain")
    # a hostile line asking scrypt for gigabytes is refused, not computed
    assert not verify_password("x", "$scrypt$n=1073741824,r=8,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")


def test_plain_text_and_unknown_roles_are_refused_naming_the_command(tmp_path) -> None:
    f = tmp_path / "users"
    f.write_text("alice:s3cret\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 1: user 'alice' has a plain-text password.*"
                                          r"kvmrpa passwd alice --role ROLE"):
        parse_auth_file(f)
    f.write_text("alice:s3cret:editor\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="kvmrpa passwd alice --role editor"):
        parse_auth_file(f)
    f.write_text(f"alice:{hash_password('x')}:root\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="role 'root' is not one of viewer, operator"):
        parse_auth_file(f)


def test_roles_are_ordered() -> None:
    assert role_at_least("admin", "viewer") and role_at_least("editor", "operator")
    assert not role_at_least("operator", "editor") and not role_at_least(None, "viewer")
    assert not role_at_least("root", "viewer")


def test_passwd_command_creates_updates_and_keeps_other_lines(tmp_path, monkeypatch, capsys) -> None:
    f = tmp_path / "users"
    f.write_text("# the team\n", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO("first pw\n"))
    assert main(["passwd", "alice", "--role", "operator", "--stdin", str(f)]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("bob pw\n"))
    assert main(["passwd", "bob", "--role", "viewer", "--stdin", str(f)]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("second pw\n"))
    assert main(["passwd", "alice", "--role", "editor", "--stdin", str(f)]) == 0
    text = f.read_text(encoding="utf-8")
    assert text.startswith("# the team\n") and "pw" not in text
    accounts = AuthFile(f)
    assert accounts.role_of("alice") == "editor" and accounts.role_of("bob") == "viewer"
    assert accounts.check("alice", "second pw") and not accounts.check("alice", "first pw")
    assert accounts.check("bob", "bob pw") and not accounts.check("carol", "bob pw")
    assert (f.stat().st_mode & 0o007) == 0  # not readable by others
    assert not list(tmp_path.glob(".users.*"))  # no temporary file left
    capsys.readouterr()
    # a new user needs a role; an empty password is refused; one line each, exit 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    assert main(["passwd", "carol", "--stdin", str(f)]) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert main(["passwd", "bob", "--stdin", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "give --role" in err[0] and "empty" in err[1]
    assert AuthFile(f).check("bob", "bob pw")


def test_role_change_applies_without_restart(tmp_path) -> None:
    f = tmp_path / "users"
    set_account(f, "alice", "pw", "viewer")
    accounts = AuthFile(f)
    assert accounts.role_of("alice") == "viewer"
    set_account(f, "alice", "pw", "admin")
    assert accounts.role_of("alice") == "admin"


def test_passwd_imports_no_ui_package(tmp_path) -> None:
    code = ("import sys; from kvmrpa.cli import main\n"
            f"rc = main(['passwd', 'u', '--role', 'viewer', '--stdin', {str(tmp_path / 'u')!r}])\n"
            "print(rc, sorted(m for m in ('panel', 'bokeh', 'tornado') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         input="pw\n", timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0 []"
    assert AuthFile(tmp_path / "u").check("u", "pw")




# -- throttle -------------------------------------------------------------------------------
def test_throttle_free_attempts_then_exponential_delay_capped() -> None:
    t = LoginThrottle(free=5, window=60, delay=1.0, max_delay=8.0)
    keys = ["user:alice", "addr:10.0.0.1"]
    now = 1000.0
    waits = []
    for _ in range(9):
        wait = t.reserve(keys, now=now)
        waits.append(wait)
        now += wait
        t.failed(keys, now=now)
    assert waits == [0, 0, 0, 0, 0, 1.0, 2.0, 4.0, 8.0]
    assert t.reserve(keys, now=now) == 8.0  # capped
    # another address for the same user is delayed too (per user), a fresh key is not
    assert t.reserve(["user:alice", "addr:10.0.0.2"], now=now + 100) == 0  # window passed
    assert t.reserve(["user:bob", "addr:10.0.0.3"], now=now) == 0


def test_throttle_queues_parallel_attempts_and_refuses_a_long_queue() -> None:
    t = LoginThrottle(free=1, window=60, delay=1.0, max_delay=2.0)
    keys = ["user:a"]
    t.failed(keys, now=0.0)
    t.failed(keys, now=0.0)
    slots = [t.reserve(keys, now=0.0) for _ in range(5)]
    assert slots == [2.0, 4.0, 6.0, 8.0, float("inf")]  # max_wait = 4 * max_delay
    t.succeeded(keys)
    assert t.reserve(keys, now=0.0) == 0


# -- the handlers, per role -----------------------------------------------------------------
ROLES = ("viewer", "operator", "editor", "admin")


@pytest.fixture
def app_mode(tmp_path, monkeypatch):
    """A configured policy with one user per role, and ``login(user)`` making the current
    session that user's (a signed ``user`` cookie, as the browser sends)."""
    import kvmrpa.widgets._auth as auth
    from tornado.web import create_signed_value

    f = tmp_path / "users"
    for role in ROLES:
        set_account(f, role, f"{role}-pw", role)
    secret = "s" * 32
    audit = auth.AuditLog(tmp_path / "audit.jsonl", coalesce_s=0.0)
    state = SimpleNamespace(request=None)
    monkeypatch.setattr(auth, "_session_request", lambda: state.request)

    def login(user: str | None, allow_code: bool = False) -> None:
        auth.configure(auth.Policy(accounts=AuthFile(f), allow_code=allow_code, audit=audit,
                                   cookie_secret=secret))
        cookies = {} if user is None else {
            "user": create_signed_value(secret, "user", user).decode()}
        state.request = SimpleNamespace(cookies=cookies, remote_ip="127.0.0.1")

    yield SimpleNamespace(login=login, audit=audit, auth=auth)
    auth.configure(None)


def _flow_with_code(tmp_path: Path):
    from kvmrpa.widgets._engine import flow_class

    Flow = flow_class()
    flow = Flow("f")
    flow.add("wait", "w", ms=1)
    flow.add("python", "py", code=f"with open({str(tmp_path / 'marker')!r}, 'a') as f: f.write('x')")
    flow.connect("w", "py")
    return flow


def test_palette_hides_code_nodes_unless_admin_with_allow_code(app_mode) -> None:
    from kvmrpa.widgets._floweditor import FlowEditor

    for role in ROLES:
        for allow in (False, True):
            app_mode.login(role, allow_code=allow)
            options = FlowEditor(None).node_type.options
            assert "wait" in options
            assert ("python" in options) == (role == "admin" and allow), (role, allow)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("allow_code", [False, True])
def test_code_nodes_cannot_be_created_edited_or_tried_without_admin_and_allow_code(
        app_mode, tmp_path, role, allow_code) -> None:
    from kvmrpa.widgets._floweditor import FlowEditor
    from kvmrpa.widgets._nodeeditor import NodeEditor

    app_mode.login(role, allow_code=allow_code)
    may = role == "admin" and allow_code
    flow = _flow_with_code(tmp_path)
    editor = FlowEditor(flow)
    # create: the handler, as a crafted message would reach it (value forced past the palette)
    editor.node_type.param.update(options=[*editor.node_type.options, "python"])
    editor.node_type.value = "python"
    editor.node_id.value = "evil"
    editor._guard(editor._add)
    assert ("evil" in flow.nodes) == may
    if not may:
        assert "may not edit" in editor.message.object
    # edit the code of the node from the file
    node = flow.nodes["py"].node
    before = node.code
    ne = NodeEditor(node, node_id="py")
    ne.form.code = "import os; os.system('id')"
    assert (node.code != before) == may
    if not may:
        assert ne.form.code == before and "may not edit py" in ne.message.object
        assert ne.run_button.disabled
    # try it on a frame
    import numpy as np

    from kvmrpa._frame import Frame

    with contextlib.suppress(Exception):  # the admin's try fails: python has no try_on
        ne.try_on(Frame(np.zeros((8, 8, 3), np.uint8)))
    assert not (tmp_path / "marker").exists()  # no try_on for python: never runs here
    if not may:
        assert "may not try" in ne.error.object
    records = app_mode.audit.read()
    codes = [r for r in records if r.get("detail", {}).get("code")]
    assert codes and all(r["allowed"] == may and r["user"] == role for r in codes)
    assert {r["action"] for r in codes} >= {"edit", "try"}


def test_non_code_edits_need_editor_and_are_audited(app_mode, tmp_path) -> None:
    from kvmrpa.widgets._floweditor import FlowEditor
    from kvmrpa.widgets._nodeeditor import NodeEditor

    for role in ROLES:
        app_mode.login(role)
        flow = _flow_with_code(tmp_path)
        editor = FlowEditor(flow, path=str(tmp_path / f"{role}.json"))
        editor.node_type.value = "wait"
        editor.node_id.value = "w2"
        editor._guard(editor._add)
        editor._guard(editor._save, allow_locked=True)
        may = role in ("editor", "admin")
        assert ("w2" in flow.nodes) == may
        assert (tmp_path / f"{role}.json").exists() == may
        ne = NodeEditor(flow.nodes["w"].node, node_id="w")
        ne.form.ms = 250
        assert (flow.nodes["w"].node.ms == 250) == may
    records = app_mode.audit.read()
    by = {(r["user"], r["action"]): r["allowed"] for r in records}
    for role in ROLES:
        may = role in ("editor", "admin")
        assert by[(role, "edit")] == may and by[(role, "save")] == may
    assert all({"ts", "user", "role", "address", "action", "allowed"} <= set(r) for r in records)


def test_run_controls_console_and_templates_per_role(app_mode, tmp_path, monkeypatch) -> None:
    from kvmrpa.widgets import LiveView
    from kvmrpa.widgets._debugger import Debugger

    sent: list[dict] = []
    for role in ROLES:
        app_mode.login(role)
        dbg = Debugger(_flow_with_code(tmp_path))
        assert dbg.buttons["Run once"].disabled == (role == "viewer")
        run = dbg.start()  # the flow's own Python node (not made in a browser) runs
        assert (run is None) == (role == "viewer")
        dbg.detach()
        lv = LiveView(None)
        monkeypatch.setattr(lv, "_send_msg", sent.append)
        lv.forward_input({"kind": "key", "action": "down", "key": "a"})
        lv._handle_msg({"kind": "save_template", "name": f"t_{role}"})
    by = {}
    for r in app_mode.audit.read():
        by.setdefault((r["user"], r["action"]), r["allowed"])
    assert by[("viewer", "run")] is False and by[("operator", "run")] is True
    assert by[("viewer", "console")] is False and by[("operator", "console")] is True
    assert by[("operator", "template")] is False and by[("editor", "template")] is True
    notes = [m["text"] for m in sent if m.get("kind") == "note"]
    assert any("viewer (viewer) may not console" in n for n in notes)
    assert any("operator (operator) may not template" in n for n in notes)


def test_no_valid_login_is_refused_everything(app_mode, tmp_path) -> None:
    from kvmrpa.widgets._floweditor import FlowEditor
    from tornado.web import create_signed_value

    app_mode.login(None)
    flow = _flow_with_code(tmp_path)
    editor = FlowEditor(flow)
    editor.node_type.value = "wait"
    editor._guard(editor._add)
    assert len(flow.nodes) == 2 and "anonymous (no role)" in editor.message.object
    # a cookie signed with another secret, or naming a user not in the file
    app_mode.login("admin")
    req = app_mode.auth._session_request()
    req.cookies["user"] = create_signed_value("other" * 8, "user", "admin").decode()
    assert app_mode.auth.current_principal().role is None
    req.cookies["user"] = create_signed_value("s" * 32, "user", "mallory").decode()
    assert app_mode.auth.current_principal().role is None


def test_without_auth_file_the_local_user_is_admin(tmp_path) -> None:
    import kvmrpa.widgets._auth as auth

    try:
        auth.configure(auth.Policy(accounts=None, allow_code=False,
                                   audit=auth.AuditLog(tmp_path / "a.jsonl")))
        assert auth.current_principal().role == "admin"
        assert auth.can("save") and not auth.can("code")
        auth.configure(auth.Policy(accounts=None, allow_code=True))
        assert auth.can("code")
    finally:
        auth.configure(None)
    assert auth.can("code")  # notebook mode: the kernel's user


def test_audit_coalesces_console_and_refusals_and_rotates(tmp_path) -> None:
    import kvmrpa.widgets._auth as auth

    log = auth.AuditLog(tmp_path / "audit.jsonl", max_bytes=2000, coalesce_s=3600)
    who = auth.Principal("bob", "operator", "127.0.0.1")
    for _ in range(50):
        log.write(who, "console", True)
        log.write(who, "edit", False)
    records = log.read()
    assert [r["action"] for r in records] == ["console", "edit"]
    for i in range(30):
        log.write(who, "run", True, f"flow{i}")
    assert (tmp_path / "audit.jsonl.1").exists()
    assert (tmp_path / "audit.jsonl").stat().st_size <= 2000


def test_audit_counts_the_end_of_a_burst(tmp_path) -> None:
    """Coalesced lines with no later line of their own are counted by a summary line: on
    a later write once the window passed, and on flush (the server stopping)."""
    import kvmrpa.widgets._auth as auth

    log = auth.AuditLog(tmp_path / "audit.jsonl", coalesce_s=3600)
    eve = auth.Principal("eve", "viewer", "127.0.0.1")
    for _ in range(7):
        log.write(eve, "run", False, "flow")
    assert [r.get("coalesced") for r in log.read()] == [None]
    log.flush()
    summary = log.read()[-1]
    assert (summary["user"], summary["action"], summary["allowed"]) == ("eve", "run", False)
    assert summary["coalesced"] == 6 and summary["summary"] is True
    log.flush()
    assert len(log.read()) == 2  # nothing counted twice

    quick = auth.AuditLog(tmp_path / "quick.jsonl", coalesce_s=0.05)
    for _ in range(3):
        quick.write(eve, "console", True)
    time.sleep(0.1)
    quick.write(auth.Principal("bob", "operator", None), "save", True)
    lines = [(r["user"], r["action"], r.get("coalesced")) for r in quick.read()]
    assert lines == [("eve", "console", None), ("bob", "save", None), ("eve", "console", 2)]

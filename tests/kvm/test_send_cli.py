"""``kvmrpa send``: chained actions against a loopback keystroke service, exit codes."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from kvmrpa.cli import main

from ._support import Request, closed_port

TOKEN = "cli-token-42"


def service(req: Request) -> tuple[int, Any]:
    if req.headers.get("authorization") != f"Bearer {TOKEN}":
        return 401, {"error": "bad token"}
    return 200, {"ok": True}


def test_chained_actions_are_sent_in_order(http_server: Any, fast_input: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    srv = http_server(service)
    url = f"http+keys://127.0.0.1:{srv.port}/keys?token={TOKEN}&size=1920x1080"
    rc = main(["send", "--frame-size", "1280x720", url,
               "click", "640", "360", "--button", "right", "--double", ",",
               "move", "0", "0", ",", "type", "hello", "world", ",", "key", "Enter", ",",
               "hotkey", "ctrl+a", ",", "scroll", "3"])
    assert rc == 0
    cmds = [r.json() for r in srv.requests]
    assert cmds[0] == {"type": "move", "x": 960, "y": 540}
    assert [c.get("button") for c in cmds[1:5]] == ["right"] * 4
    assert cmds[5] == {"type": "move", "x": 0, "y": 0}
    assert cmds[6] == {"type": "text", "text": "hello world"}
    assert [c["key"] for c in cmds[7:9]] == ["Return", "Return"]
    assert [(c["key"], c["down"]) for c in cmds[9:13]] == [
        ("Control_L", True), ("a", True), ("a", False), ("Control_L", False)]
    assert cmds[13] == {"type": "scroll", "dx": 0, "dy": 3}
    out = capsys.readouterr()
    assert out.out.count("sent ") == 6 and TOKEN not in out.out + out.err


@pytest.mark.parametrize(("argv", "message"), [
    (["click", "1"], "click takes X Y"),
    (["key", "entr"], "unknown key name 'entr'"),
    (["jump"], "unknown action 'jump'"),
    (["click", "1", "2", ",", ",", "key", "a"], "empty action"),
    (["scroll", "x"], "scroll DY must be an integer"),
    ([], "no action given"),
])
def test_bad_actions_exit_2_with_one_line(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "dryrun://", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("kvmrpa send: error:") and message in err


def test_failed_delivery_names_the_action(http_server: Any, fast_input: Any,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    srv = http_server(service)
    url = f"http+keys://127.0.0.1:{srv.port}/?token=wrong-token"
    assert main(["send", url, "key", "a", ",", "type", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "action 1 of 2 (key a)" in err and "refused the token" in err
    assert "wrong-token" not in err and "\n" not in err
    assert len(srv.requests) == 1  # nothing after the failed action
    assert main(["send", "--frame-size", "100x100", "dryrun://", "click", "100", "5"]) == 2
    assert "outside the 100x100 frame" in capsys.readouterr().err
    # --frame-size may also follow the URL
    assert main(["send", "dryrun://", "--frame-size=100x100", "click", "5", "100"]) == 2
    assert "outside the 100x100 frame" in capsys.readouterr().err
    assert main(["send", "dryrun://", "--frame-size", "100x", "click", "5", "5"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_console_script_unreachable_target() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from kvmrpa.cli import main; sys.exit(main())",
         "send", f"vnc://127.0.0.1:{closed_port()}", "click", "10", "20"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0] and "click 10 20" in lines[0]

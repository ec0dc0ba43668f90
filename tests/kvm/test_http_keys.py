"""Generic HTTP keystroke service driver against a loopback service written here."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kvmrpa import DriverConnectionError, InputError
from kvmrpa.kvm import ActionRecord
from kvmrpa.kvm._http import HttpKeysDriver

from ._support import LoopbackHTTP, Request, closed_port

TOKEN = "tok-123456"


def service(req: Request) -> tuple[int, Any]:
    if req.headers.get("authorization") != f"Bearer {TOKEN}":
        return 401, {"ok": False, "error": "bad token"}
    cmd = req.json()
    if cmd.get("type") == "key" and cmd.get("key") == "F24":
        return 422, {"ok": False, "error": "key F24 not on this keyboard"}
    return 200, {"ok": True}


def commands(srv: LoopbackHTTP) -> list[dict[str, Any]]:
    return [r.json() for r in srv.requests]


def test_json_commands(http_server: Any, fast_input: Any) -> None:
    srv = http_server(service)
    drv = HttpKeysDriver(f"http+keys://127.0.0.1:{srv.port}/inject?token={TOKEN}&size=1920x1080",
                         frame_size=(1280, 720))
    records: list[ActionRecord] = []
    drv.on_action(records.append)

    async def main() -> None:
        await drv.click(640, 360)
        await drv.type_text("测试3 ok")
        await drv.hotkey("ctrl", "s")
        await drv.scroll(-2)
        await drv.aclose()

    asyncio.run(main())
    assert {r.path for r in srv.requests} == {"/inject"}
    assert all(r.headers["content-type"] == "application/json" for r in srv.requests)
    assert commands(srv) == [
        {"type": "move", "x": 960, "y": 540},
        {"type": "button", "button": "left", "down": True},
        {"type": "button", "button": "left", "down": False},
        {"type": "text", "text": "测试3 ok"},
        {"type": "key", "key": "Control_L", "down": True},
        {"type": "key", "key": "s", "down": True},
        {"type": "key", "key": "s", "down": False},
        {"type": "key", "key": "Control_L", "down": False},
        {"type": "scroll", "dx": 0, "dy": -2},
    ]
    assert all(r.ok for r in records)
    assert TOKEN not in repr([r.as_dict() for r in records])
    assert "token=***" in records[0].driver


def test_token_from_settings_and_errors(http_server: Any, fast_input: Any) -> None:
    srv = http_server(service)
    fast_input.http_token = TOKEN
    drv = HttpKeysDriver(f"http+keys://127.0.0.1:{srv.port}")
    asyncio.run(drv.key("Return"))
    assert srv.requests[-1].path == "/"
    assert commands(srv)[-2:] == [{"type": "key", "key": "Return", "down": True},
                                  {"type": "key", "key": "Return", "down": False}]
    with pytest.raises(InputError, match=r"rejected \(HTTP 422\): key F24 not on this keyboard"):
        asyncio.run(drv.key("F24"))

    fast_input.http_token = ""
    bad = HttpKeysDriver(f"http+keys://127.0.0.1:{srv.port}/?token=nope-wrong")
    n = len(srv.requests)
    with pytest.raises(DriverConnectionError, match="refused the token") as err:
        asyncio.run(bad.move(1, 1))
    assert "nope-wrong" not in str(err.value)
    assert len(srv.requests) == n + 1  # a bad token is not retried

    down = HttpKeysDriver(f"http+keys://127.0.0.1:{closed_port()}/?token={TOKEN}")
    with pytest.raises(DriverConnectionError, match="cannot reach the keystroke service") as err:
        asyncio.run(down.key("a"))
    assert TOKEN not in str(err.value)

"""The InputDriver contract on the dry-run driver: mapping, arbitration, retries, audit,
capabilities, the hub and the sync face."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from kvmrpa import (
    ArbitrationTimeoutError,
    CoordinateError,
    DriverConnectionError,
    InputError,
    UnsupportedActionError,
    UrlError,
)
from kvmrpa.kvm import (
    ActionRecord,
    Calibration,
    InputDriver,
    get_hub,
    open_driver,
    register_driver,
    registered_schemes,
    release_driver,
)
from kvmrpa.kvm._dryrun import DryRunDriver


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Flaky(DryRunDriver):
    """Fails the first ``fail`` primitives with a transport error."""

    def __init__(self, url: str = "dryrun://flaky", fail: int = 0,
                 exc: type[BaseException] = ConnectionResetError) -> None:
        super().__init__(url)
        self.fail = fail
        self.exc = exc
        self.connects = 0
        self.closes = 0

    async def _connect(self) -> None:
        self.connects += 1

    async def _close(self) -> None:
        self.closes += 1

    def _maybe_fail(self) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise self.exc("link down")

    async def _move(self, x: int, y: int) -> None:
        self._maybe_fail()
        await super()._move(x, y)

    async def _button(self, button: Any, down: bool) -> None:
        self._maybe_fail()
        await super()._button(button, down)


class Slow(DryRunDriver):
    """Yields to the loop inside every primitive so interleaving would show."""

    async def _button(self, button: Any, down: bool) -> None:
        await asyncio.sleep(0.002)
        await super()._button(button, down)

    async def _type_text(self, text: str) -> None:
        for ch in text:
            await asyncio.sleep(0.001)
            self._actions.append({"op": "text", "text": ch})


def test_frame_pixels_map_to_target_pixels() -> None:
    drv = DryRunDriver("dryrun://?size=1920x1080", frame_size=(1280, 720))
    run(drv.click(640, 360))
    run(drv.move(1279, 719))
    assert drv.actions[0] == {"op": "move", "x": 960, "y": 540}
    assert drv.actions[-1] == {"op": "move", "x": 1918, "y": 1078}
    # explicit calibration in the URL: target = frame * scale + offset
    cal = DryRunDriver("dryrun://?size=1920x1080&calibration=1.5,1.5,10,-5", frame_size=(1280, 720))
    assert cal.calibration == Calibration(1.5, 1.5, 10, -5)
    run(cal.move(100, 100))
    assert cal.actions == [{"op": "move", "x": 160, "y": 145}]
    with pytest.raises(UrlError, match="calibration"):
        DryRunDriver("dryrun://?calibration=abc")


def test_points_outside_the_frame_are_refused_before_sending() -> None:
    drv = DryRunDriver("dryrun://?size=800x600", frame_size=(400, 300))
    for x, y in ((400, 10), (10, 300), (-1, 5), (float("nan"), 1)):
        with pytest.raises(CoordinateError) as err:
            run(drv.click(x, y))
        assert "dryrun://" in str(err.value)
    with pytest.raises(CoordinateError, match="outside the 400x300 frame"):
        run(drv.drag(1, 1, 500, 1))
    with pytest.raises(CoordinateError, match="both x and y"):
        run(drv.click(10, None))
    assert drv.actions == []
    # a calibration that maps past the target's screen is caught by the driver
    bad = DryRunDriver("dryrun://?size=800x600&calibration=3,3,0,0", frame_size=(400, 300))
    with pytest.raises(CoordinateError, match="outside the 800x600 screen"):
        run(bad.move(300, 10))


def test_actions_and_capabilities() -> None:
    drv = DryRunDriver("dryrun://")
    run(drv.click(5, 6, button="right", double=True))
    run(drv.hotkey("ctrl", "shift", "Escape"))
    run(drv.key_down("shift"))
    run(drv.key_up("shift"))
    run(drv.drag(0, 0, 10, 0, steps=2))
    ops = [(a["op"], a.get("button") or a.get("key"), a.get("down")) for a in drv.actions]
    assert ops[:5] == [("move", None, None), ("button", "right", True), ("button", "right", False),
                       ("button", "right", True), ("button", "right", False)]
    assert ops[5:11] == [("key", "Control_L", True), ("key", "Shift_L", True), ("key", "Escape", True),
                         ("key", "Escape", False), ("key", "Shift_L", False), ("key", "Control_L", False)]
    assert ops[11:13] == [("key", "Shift_L", True), ("key", "Shift_L", False)]
    assert drv.actions[-1] == {"op": "button", "button": "left", "down": False}
    assert [a["x"] for a in drv.actions if a["op"] == "move"][-3:] == [0, 5, 10]
    with pytest.raises(UnsupportedActionError, match="unknown mouse button 'side'"):
        run(drv.click(1, 1, button="side"))  # type: ignore[arg-type]


def test_unsupported_capabilities_raise_before_sending() -> None:
    from kvmrpa.kvm._ch9329 import Ch9329Driver

    ch = Ch9329Driver("ch9329:///dev/null-kvmrpa-test")
    with pytest.raises(UnsupportedActionError, match="horizontally"):
        run(ch.scroll(0, dx=2))
    with pytest.raises(UnsupportedActionError, match="'中'"):
        run(ch.type_text("a中"))
    assert not ch.connected  # nothing was attempted


def test_safe_actions_are_retried_and_unsafe_ones_are_not(fast_input: Any) -> None:
    records: list[ActionRecord] = []
    drv = Flaky(fail=2)
    drv.on_action(records.append)
    run(drv.move(1, 2))  # fails twice, third attempt lands
    assert drv.actions == [{"op": "move", "x": 1, "y": 2}]
    assert drv.connects == 3 and drv.closes == 2
    assert records[-1].ok and records[-1].action == "move"

    drv = Flaky(fail=1)
    drv.on_action(records.append)
    with pytest.raises(DriverConnectionError) as err:
        run(drv.click(3, 4))
    assert "dryrun://flaky" in str(err.value) and "click" in str(err.value)
    assert "link down" in str(err.value)
    assert drv.connects == 1  # not retried
    assert not records[-1].ok and "link down" in (records[-1].error or "")

    drv = Flaky(fail=1)
    run(drv.click(3, 4, retry=True))  # the node asked for it
    assert drv.connects == 2
    assert [a["op"] for a in drv.actions] == ["move", "button", "button"]

    drv = Flaky(fail=10)
    with pytest.raises(DriverConnectionError, match="after 3 attempts"):
        run(drv.release())
    assert drv.connects == 3  # retries=2 -> 3 attempts


def test_permanent_connection_errors_are_not_retried(fast_input: Any) -> None:
    class BadAuth(Flaky):
        async def _connect(self) -> None:
            self.connects += 1
            exc = DriverConnectionError(f"{self.display_url}: connect: authentication failed")
            exc.transient = False  # type: ignore[attr-defined]
            raise exc

    drv = BadAuth()
    with pytest.raises(DriverConnectionError, match="authentication failed"):
        run(drv.move(1, 1))
    assert drv.connects == 1


def test_slow_action_times_out_with_clear_error(fast_input: Any) -> None:
    fast_input.action_timeout = 0.2

    class Stuck(DryRunDriver):
        async def _key(self, key: str, down: bool) -> None:
            await asyncio.sleep(30)

    with pytest.raises(DriverConnectionError, match=r"dryrun://stuck: key timed out after 0.2 s"):
        run(Stuck("dryrun://stuck").key("a"))


def test_audit_records_redact_secrets() -> None:
    drv = DryRunDriver("dryrun://user:hunter2@box?token=s3cret")
    records: list[dict[str, Any]] = []
    unsubscribe = drv.on_action(lambda r: records.append(r.as_dict()))
    run(drv.type_text("my password is hunter2"))
    run(drv.type_text("topsecret", secret=True))
    run(drv.key("Return"))
    unsubscribe()
    run(drv.key("a"))
    assert len(records) == 3
    text = repr(records)
    assert "hunter2" not in text and "s3cret" not in text and "topsecret" not in text
    first = records[0]
    assert first["driver"] == "dryrun://user:***@box?token=***"
    assert first["action"] == "type" and first["args"] == {"text": "my password is ***"}
    assert first["ok"] is True and first["latency_ms"] >= 0 and first["time"] > 0
    assert records[1]["args"] == {"text": "***", "length": 9}
    assert records[2]["args"] == {"key": "Return"}
    # the driver still sent the real text
    assert drv.actions[1] == {"op": "text", "text": "topsecret"}


def test_sessions_of_two_flows_do_not_interleave() -> None:
    drv = Slow("dryrun://slow")

    async def flow(tag: str) -> None:
        async with drv.session():
            await drv.click(1, 1)
            await drv.type_text(tag * 5)

    async def main() -> None:
        await asyncio.gather(flow("a"), flow("b"), flow("c"))

    run(main())
    seq = [a.get("text") or a["op"][0] for a in drv.actions]
    # each flow's click (m, b, b) is followed by its own five characters
    blocks = ["".join(seq[i:i + 8]) for i in range(0, len(seq), 8)]
    assert blocks == ["mbbaaaaa", "mbbbbbbb", "mbbccccc"]


def test_lock_order_is_fair_and_reentrant() -> None:
    drv = DryRunDriver("dryrun://fair")
    order: list[str] = []

    async def main() -> None:
        go = asyncio.Event()
        queued = {"B": asyncio.Event(), "C": asyncio.Event()}

        async def holder(tag: str) -> None:
            for i in range(3):
                if tag in queued and i == 0:
                    queued[tag].set()  # then asks for the lock in this same step
                async with drv.session(), drv.session():  # re-entrant within one task
                    order.append(tag)
                    await drv.key("a")
                    if tag == "A" and i == 0:
                        await go.wait()  # hold until B and C are queued
                    await asyncio.sleep(0)

        tasks = [asyncio.create_task(holder("A"))]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(holder("B")), asyncio.create_task(holder("C"))]
        await queued["B"].wait()
        await queued["C"].wait()
        go.set()
        await asyncio.gather(*tasks)

    run(main())
    # A asking again goes to the back of the queue: nobody starves
    assert order == ["A", "B", "C"] * 3
    assert len(drv.actions) == 18


def test_lock_timeout_names_the_target(fast_input: Any) -> None:
    fast_input.lock_timeout = 0.1
    drv = DryRunDriver("dryrun://busy")

    async def click_from_other_task() -> None:
        async with drv.session():
            task = asyncio.create_task(drv.click(1, 1))
            with pytest.raises(ArbitrationTimeoutError, match=r"dryrun://busy.*0.1 s"):
                await task
            other = asyncio.create_task(drv.type_text("x"))
            await asyncio.sleep(0)
        await other

    run(click_from_other_task())
    assert drv.actions == [{"op": "text", "text": "x"}]


def test_hub_shares_and_counts() -> None:
    url = "dryrun://hub-test?size=100x100"
    a = open_driver(url)
    b = open_driver("DRYRUN://hub-test?size=100x100", frame_size=(50, 50))
    try:
        assert a is b and get_hub().refs(a) == 2 and a.frame_size == (50, 50)
        with pytest.raises(InputError, match="already shared with frame size 50x50"):
            open_driver(url, frame_size=(60, 60))
        b.sync.click(25, 25)
        assert a.actions[0] == {"op": "move", "x": 50, "y": 50}
    finally:
        release_driver(b)
    assert get_hub().refs(a) == 1
    release_driver(a)
    assert get_hub().refs(a) == 0
    with pytest.raises(InputError, match="released more often"):
        release_driver(a)
    c = open_driver(url)
    try:
        assert c is not a  # a fresh driver once the last user left
    finally:
        release_driver(c)


def test_hub_schemes_and_registration() -> None:
    for scheme in ("vnc", "pikvm+https", "pikvm+http", "ch9329", "http+keys", "dryrun"):
        assert scheme in registered_schemes()
    with pytest.raises(UrlError, match=r"no input driver.*known schemes"):
        open_driver("gopher://x:pw@host")
    with pytest.raises(UrlError):
        open_driver("not a url")

    class Custom(DryRunDriver):
        pass

    register_driver("custom-test", lambda url: Custom(url))
    drv = open_driver("custom-test://x")
    try:
        assert isinstance(drv, Custom) and isinstance(drv, InputDriver)
    finally:
        release_driver(drv)


def test_sync_face_works_from_any_thread() -> None:
    drv = open_driver("dryrun://sync-test")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            drv.sync.type_text("x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        drv.sync.click(1, 2)
        t = threading.Thread(target=worker)
        t.start()
        t.join(10)
        assert not errors
        assert [a["op"] for a in drv.actions] == ["move", "button", "button", "text"]
    finally:
        release_driver(drv)


def test_single_actions_of_another_flow_wait_for_a_held_session() -> None:
    # A flow holding the target (click, then type) must not see another flow's single
    # key, move, scroll, press/release or key_down/key_up land in the middle.
    drv = Slow("dryrun://held")

    async def holder(started: asyncio.Event) -> None:
        async with drv.session():
            await drv.click(1, 1)
            started.set()
            for _ in range(5):
                await asyncio.sleep(0.001)
            await drv.type_text("zz")

    async def intruder() -> None:
        await drv.key("a")
        await drv.move(2, 2)
        await drv.scroll(1)
        await drv.key_down("b")
        await drv.key_up("b")
        await drv.press()
        await drv.release()

    async def main() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(holder(started))
        await started.wait()
        await intruder()
        await task

    run(main())
    ops = [a.get("text") or a["op"] for a in drv.actions]
    # the holder's click and text come first, uninterrupted
    assert ops[:5] == ["move", "button", "button", "z", "z"]
    assert ops[5:] == ["key", "key", "move", "scroll", "key", "key", "button", "button"]


def test_untypable_secret_text_is_refused_without_showing_it() -> None:
    from kvmrpa.kvm._ch9329 import Ch9329Driver

    drv = Ch9329Driver("ch9329:///dev/null-kvmrpa-test")  # US ASCII only; nothing opened
    with pytest.raises(UnsupportedActionError) as info:
        run(drv.type_text("pässwörd", secret=True))
    msg = str(info.value)
    assert "ä" not in msg and "ö" not in msg and "U+00E4" not in msg
    assert "2 distinct character(s) of the secret text" in msg and "type" in msg
    with pytest.raises(UnsupportedActionError, match=r"'ä' \(U\+00E4\)"):
        run(drv.type_text("pässwörd"))  # not secret: the characters are named


def test_a_cancelled_action_still_leaves_an_audit_record() -> None:
    # a flow stopped while a node types: the run record shows the action, not nothing
    drv = Slow("dryrun://cancel?token=s3cret")
    records: list[ActionRecord] = []
    drv.on_action(records.append)

    async def main() -> None:
        task = asyncio.create_task(drv.type_text("a long line of text s3cret"))
        while not drv.actions:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert 0 < len(drv.actions) < len("a long line of text s3cret")
    (rec,) = records
    assert rec.action == "type" and rec.ok is False
    assert rec.error == "dryrun://cancel?token=***: type: cancelled"
    assert "s3cret" not in repr(rec)

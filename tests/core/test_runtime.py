"""The background runtime: blocking facade in a script, a kernel cell and other threads."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

import pytest

from kvmrpa import Runtime, RuntimeClosedError, get_runtime, run_sync


async def _where() -> str:
    await asyncio.sleep(0.01)
    return threading.current_thread().name


def test_run_executes_on_the_runtime_thread() -> None:
    rt = Runtime(pool_size=2, name="t-run")
    try:
        assert rt.run(_where(), timeout=5) == "t-run-loop"
        fut = rt.submit(_where())
        assert fut.result(5) == "t-run-loop"
    finally:
        rt.shutdown()


def test_run_from_many_threads() -> None:
    rt = Runtime(pool_size=2, name="t-threads")
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(rt.run(_where(), timeout=10))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    rt.shutdown()
    assert errors == []
    assert results == ["t-threads-loop"] * 8


def test_run_inside_a_running_loop_of_another_thread() -> None:
    # A notebook cell runs while the kernel's own loop is running in that thread.
    rt = Runtime(pool_size=1, name="t-nested")

    async def cell() -> str:
        return rt.run(_where(), timeout=5)

    try:
        assert asyncio.run(cell()) == "t-nested-loop"
    finally:
        rt.shutdown()


def test_run_from_the_loop_thread_itself_does_not_deadlock() -> None:
    rt = Runtime(pool_size=1, name="t-self")

    async def outer() -> int:
        # A sync API called from code already on the runtime loop.
        return rt.run(asyncio.sleep(0.01, result=42), timeout=5)

    try:
        assert rt.run(outer(), timeout=10) == 42
    finally:
        rt.shutdown()


def test_timeout_cancels_the_coroutine() -> None:
    rt = Runtime(pool_size=1, name="t-timeout")
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        with pytest.raises(TimeoutError):
            rt.run(slow(), timeout=0.1)
        assert cancelled.wait(5)
    finally:
        rt.shutdown()


def test_to_thread_uses_the_bounded_pool() -> None:
    rt = Runtime(pool_size=2, name="t-pool")

    async def main() -> set[str]:
        names = await asyncio.gather(*[rt.to_thread(lambda: threading.current_thread().name)
                                       for _ in range(20)])
        return set(names)

    try:
        names = rt.run(main(), timeout=10)
        assert names and all(n.startswith("t-pool-worker") for n in names)
        assert len(names) <= 2
    finally:
        rt.shutdown()


def test_shutdown_cancels_tasks_and_is_idempotent() -> None:
    rt = Runtime(pool_size=1, name="t-shutdown")
    fut = rt.submit(asyncio.sleep(60))
    rt.shutdown()
    rt.shutdown()
    assert fut.cancelled() or fut.done()
    assert not rt.thread.is_alive()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeClosedError):
        rt.submit(coro)


def test_process_wide_runtime_and_run_sync() -> None:
    assert get_runtime() is get_runtime()
    assert run_sync(asyncio.sleep(0, result="ok"), timeout=5) == "ok"


def test_plain_script_exits_cleanly_with_work_in_flight() -> None:
    script = textwrap.dedent("""
        import asyncio
        from kvmrpa import get_runtime, run_sync
        print(run_sync(asyncio.sleep(0.01, result="script-ok"), timeout=5))
        get_runtime().submit(asyncio.sleep(3600))   # still running at exit
        get_runtime().shutdown()
        get_runtime  # a second shutdown happens at exit through atexit
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "script-ok"
    assert "Traceback" not in out.stderr


@pytest.mark.notebook
def test_blocking_facade_in_a_real_kernel_cell() -> None:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = textwrap.dedent("""
            import asyncio, threading
            from kvmrpa import run_sync
            async def probe():
                await asyncio.sleep(0.01)
                return threading.current_thread().name
            kernel_loop_running = asyncio.get_event_loop().is_running()
            print("RESULT", run_sync(probe(), timeout=10), kernel_loop_running)
        """)
        reply = kc.execute_interactive(code, timeout=60, output_hook=_collect)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert _OUTPUT[-1].split() == ["RESULT", "kvmrpa-loop", "True"]
        # Top-level await in the same cell works next to the facade.
        reply = kc.execute_interactive("print('AWAIT', await probe())", timeout=60,
                                       output_hook=_collect)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert _OUTPUT[-1].split()[0] == "AWAIT"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


_OUTPUT: list[str] = []


def _collect(msg: dict) -> None:
    if msg["msg_type"] == "stream":
        _OUTPUT.extend(line for line in msg["content"]["text"].splitlines() if line)


def test_a_timeout_error_raised_by_the_coroutine_passes_through() -> None:
    from kvmrpa import FrameTimeoutError

    rt = Runtime(pool_size=1, name="t-own-timeout")

    async def fails() -> None:
        raise FrameTimeoutError("no frame newer than 3")

    try:
        with pytest.raises(FrameTimeoutError, match="no frame newer than 3"):
            rt.run(fails(), timeout=5)
    finally:
        rt.shutdown()

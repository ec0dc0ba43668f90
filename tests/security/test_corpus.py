"""The hostile-input corpus: malformed and hostile flows, settings and URLs, each run
through the command line in its own process under time and memory limits.

``corpus/cases.json`` lists each case: the ``kvmrpa`` arguments (``{corpus}``,
``{bomb}``, ``{bombdir}``, ``{silent}``, ``{home}`` are filled in here), the expected
exit code (``null``: the run fails, 1 or 2), text the output must name (the node and
field), text it must not show (secrets, raw control characters), and optional limits
(``max_s``, ``max_rss_mb``, ``env``). Every case also must print no traceback.
Cases run in children forked from one server that has imported kvmrpa once
(``_cli_server.py``); ``fresh`` cases (the memory targets) start a new interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
DEFAULT_MAX_S = 60.0
DEFAULT_MAX_RSS_MB = 600.0


def write_bomb_png(path: Path, side: int = 12000) -> None:
    """A small PNG declaring ``side`` x ``side`` grey pixels (all zero, so it compresses
    to about 140 KB): a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    comp = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    block = row * 64
    parts = [comp.compress(block) for _ in range(side // 64)]
    parts.append(comp.compress(row * (side % 64)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    (root / "home").mkdir()
    (root / "bombs").mkdir()
    write_bomb_png(root / "bomb.png")
    (root / "bombs" / "a.png").write_bytes((root / "bomb.png").read_bytes())
    return root


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel completes them) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "KVMRPA_HOME": str(workdir / "home")}
    env.pop("KVMRPA_CONFIG", None)
    proc = subprocess.Popen([sys.executable, str(HERE / "_cli_server.py")], cwd=HERE.parents[1],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"ready": True}
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, sub in names.items():
            value = value.replace("{" + key + "}", sub)
        return value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _run_fresh(case: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """One case in a new interpreter (``python -m kvmrpa``), peak RSS from wait4."""
    limit = int(case.get("max_as_mb", 4096)) * 2**20
    env = {**os.environ, "KVMRPA_HOME": str(workdir / "home"), **case.get("env", {})}
    env.pop("KVMRPA_CONFIG", None)
    with open(case["stdout"], "wb") as out, open(case["stderr"], "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kvmrpa", *case["args"]], cwd=case["cwd"], env=env,
            stdout=out, stderr=err, start_new_session=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    start = time.monotonic()
    deadline = start + float(case.get("max_s", DEFAULT_MAX_S))
    killed = False
    hwm_kb = 0
    try:
        while True:
            hwm_kb = max(hwm_kb, _vm_hwm_kb(proc.pid))
            pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline and not killed:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.01)
    finally:
        proc.returncode = 0  # reaped above: keep Popen from waiting again
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return {"rc": os.waitstatus_to_exitcode(status), "wall": time.monotonic() - start,
            "rss_mb": hwm_kb / 1024, "killed": killed}


def _vm_hwm_kb(pid: int) -> int:
    """The peak RSS of ``pid``'s own address space (``VmHWM``), 0 once it is gone.

    Not ``wait4``'s ``ru_maxrss``: Linux carries the parent's high-water mark into a
    forked child across ``exec``, so under a large pytest process every child would
    report the parent's size.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c["id"] for c in CASES}) == len(CASES)
    kinds = {c["args"][0] if not c["args"][0].startswith("--") else c["args"][2] for c in CASES}
    assert {"validate", "run", "config", "probe", "send"} <= kinds


@pytest.mark.parametrize("spec", CASES, ids=[c["id"] for c in CASES])
def test_hostile_input(spec: dict[str, Any], workdir: Path, silent_port: int,
                       server: subprocess.Popen[str]) -> None:
    names = {"corpus": str(CORPUS), "bomb": str(workdir / "bomb.png"),
             "bombdir": str(workdir / "bombs"), "silent": str(silent_port),
             "home": str(workdir / "home")}
    case = _fill(spec, names)
    case.update(cwd=str(workdir), stdout=str(workdir / f"{spec['id']}.out"),
                stderr=str(workdir / f"{spec['id']}.err"))
    case.setdefault("max_s", DEFAULT_MAX_S)
    if case.get("fresh"):
        result = _run_fresh(case, workdir)
    else:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(json.dumps(case) + "\n")
        server.stdin.flush()
        result = json.loads(server.stdout.readline())
    out = Path(case["stdout"]).read_text("utf-8", "replace")
    err = Path(case["stderr"]).read_text("utf-8", "replace")
    both = out + err
    shown = f"exit {result['rc']}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    assert not result["killed"], f"ran past {case['max_s']} s\n{shown}"
    assert "Traceback" not in both, shown
    if case["exit"] is None:
        assert result["rc"] in (1, 2), shown
    else:
        assert result["rc"] == case["exit"], shown
    for text in case["expect"]:
        assert text in both, f"{text!r} not in the output\n{shown}"
    for text in case["absent"]:
        assert text not in both, f"{text!r} in the output\n{shown}"
    max_rss = float(case.get("max_rss_mb", DEFAULT_MAX_RSS_MB))
    assert result["rss_mb"] < max_rss, f"peak RSS {result['rss_mb']:.0f} MB\n{shown}"
    if result["rc"] == 2 and not out.strip():
        # the error policy: one line on stderr saying what is wrong
        lines = [line for line in err.splitlines() if "error:" in line]
        assert len(lines) == 1, shown

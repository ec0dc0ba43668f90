"""Packaging harness: build the sdist and wheel from a copy of the working tree, and
install the wheel into a fresh virtual environment, with no network.

The build runs ``python -m build --no-isolation`` (this environment's setuptools) on a
copy of the working tree as it is (untracked files and caches included), so the test
sees what a build of a developer's checkout ships. The virtual environment gets the project's
dependencies through a ``.pth`` line naming this environment's site-packages (a plain
path: the editable install's own ``.pth`` hook there is not run), and kvmrpa itself
only from the wheel (``pip install --no-deps --no-index``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.conftest import chromium  # noqa: F401 - the browser fixture, shared

ROOT = Path(__file__).resolve().parents[2]

#: Never copied for the build: the environment, the VCS, earlier build outputs, and the
#: folders that only grow (screenshots, Hypothesis' database); the caches inside the
#: package folders (__pycache__) are copied, so the sdist test sees them left out.
NOT_COPIED = (".venv", ".git", "build", "dist", "*.egg-info", "test-artifacts", ".hypothesis")


@dataclass(frozen=True)
class Built:
    src: Path  # the copy of the tree it was built from
    sdist: Path
    wheel: Path
    output: str


@dataclass(frozen=True)
class Installed:
    venv: Path
    bin: Path
    python: Path
    env: dict[str, str]
    work: Path  # a working folder outside the repository

    def run(self, *argv: str | Path, timeout: float = 120, check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        proc = run_group([str(a) for a in argv], cwd=cwd or self.work, env=self.env,
                         timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} exited with {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc


def run_group(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
              timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a process group of its own, killed as a group on every path."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(10)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def build_env() -> dict[str, str]:
    """This environment without what would change the build's output."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "SOURCE_DATE_EPOCH")}
    env["PIP_NO_INDEX"] = "1"  # never the network
    return env


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """An environment for the installed copy: its bin first, no PYTHONPATH, no kvmrpa
    settings of the developer's, a home of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "KVMRPA_", "VIRTUAL_ENV", "PIP_"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", HOME=str(home),
               VIRTUAL_ENV=str(venv), PYTHONUNBUFFERED="1", PIP_NO_INDEX="1")
    return env


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("build")
    src, out = tmp / "src", tmp / "dist"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    proc = run_group([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                      str(src)], cwd=tmp, env=build_env(), timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, (sdists, wheels, output)
    return Built(src, sdists[0], wheels[0], output)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    made = run_group([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp,
                     timeout=120)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = run_group([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                         "['purelib'])"], cwd=tmp, timeout=60).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "_kvmrpa_test_deps.pth").write_text("\n".join(deps) + "\n")
    (tmp / "home").mkdir()
    (tmp / "work").mkdir()
    inst = Installed(venv, venv / "bin", python, clean_env(venv, tmp / "home"), tmp / "work")
    # pip itself comes from the project's environment through the .pth line
    inst.run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--ignore-installed", "--disable-pip-version-check", built.wheel, timeout=300)
    return inst

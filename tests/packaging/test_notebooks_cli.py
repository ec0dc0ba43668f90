"""``kvmrpa notebooks`` and ``kvmrpa --version`` (from this checkout; the installed wheel
is covered by test_installed.py)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from kvmrpa.cli import main

from .conftest import ROOT

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
FLOWS = sorted(p.name for p in (ROOT / "kvmrpa" / "sim" / "flows").glob("*.json"))


def _copied(folder: Path) -> tuple[list[str], list[str]]:
    return (sorted(p.name for p in folder.glob("*.ipynb")),
            sorted(p.name for p in (folder / "flows").glob("*.json")))


def test_notebooks_copies_notebooks_and_flows_and_says_how_to_open_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "my examples"
    assert main(["notebooks", str(target)]) == 0
    out = capsys.readouterr().out
    assert _copied(target) == (NOTEBOOKS, FLOWS)
    assert len(NOTEBOOKS) == 3 and len(FLOWS) == 3
    for name in NOTEBOOKS:
        assert (target / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes()
    for name in FLOWS:
        assert (target / "flows" / name).read_bytes() == (
            ROOT / "kvmrpa" / "sim" / "flows" / name).read_bytes()
    assert f"jupyter lab '{target}'" in out


def test_notebooks_refuses_to_overwrite_without_force(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "flows").mkdir()
    mine = tmp_path / "flows" / "scenario1.json"
    mine.write_text("my edits")
    assert main(["notebooks", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "already there" in err[0] and "--force" in err[0], err
    assert "flows/scenario1.json" in err[0]
    assert mine.read_text() == "my edits"
    assert not list(tmp_path.glob("*.ipynb"))  # nothing copied at all
    assert main(["notebooks", "--force", str(tmp_path)]) == 0
    assert mine.read_bytes() == (ROOT / "kvmrpa" / "sim" / "flows" / "scenario1.json").read_bytes()
    assert "overwriting" in capsys.readouterr().out


def test_notebooks_into_a_file_is_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    assert main(["notebooks", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"kvmrpa {metadata.version('kvmrpa')}"

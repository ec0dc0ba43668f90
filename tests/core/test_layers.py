"""The layers hold: the import-linter contracts in pyproject.toml, with no exceptions."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def _lint_imports(cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the tree at ``cwd`` (its packages found there first)."""
    code = ("import sys; sys.path.insert(0, '.'); "
            "from importlinter.cli import lint_imports_command; lint_imports_command()")
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, timeout=110, start_new_session=True)


def test_the_layer_contracts_hold() -> None:
    out = _lint_imports()
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in out.stdout


def test_the_contracts_have_no_exceptions_and_cover_every_module() -> None:
    config = PYPROJECT["tool"]["importlinter"]
    contracts = config["contracts"]
    assert all("ignore_imports" not in c for c in contracts)
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    named = {m.strip() for row in layers for m in row.split("|")}
    code = {f"kvmrpa.{p.name}" for p in (ROOT / "kvmrpa").iterdir()
            if p.is_dir() and any(p.glob("*.py"))}
    code |= {f"kvmrpa.{p.stem}" for p in (ROOT / "kvmrpa").glob("_*.py")
             if p.stem not in ("__init__", "__main__")}
    code |= {"widgets"}
    assert code <= named, f"give these a layer in pyproject.toml: {sorted(code - named)}"
    assert layers.index("kvmrpa.engine") < layers.index("kvmrpa.legacy") < layers.index("kvmrpa.nodes")
    # every package's modules form a DAG: no package is left out of the cycle contract
    acyclic = next(c for c in contracts if c["type"] == "acyclic_siblings")["ancestors"]
    packages = {f"kvmrpa.{p.name}" for p in (ROOT / "kvmrpa").iterdir()
                if (p / "__init__.py").is_file()} | {"widgets"}
    assert packages <= set(acyclic), sorted(packages - set(acyclic))


def test_the_contract_catches_an_upward_import(tmp_path: Path) -> None:
    # Guards the tests above: on a copy of the tree where a lower layer names a higher
    # one, the same check fails and names the import.
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.json", "*.js", "*.png", "*.onnx")
    for part in ("kvmrpa", "widgets"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "kvmrpa" / "nodes" / "_layer_probe.py").write_text(
        "from kvmrpa.engine import Flow  # noqa: F401\n", "utf-8")
    out = _lint_imports(cwd=tmp_path)
    assert out.returncode != 0
    assert "kvmrpa.nodes is not allowed to import kvmrpa.engine" in out.stdout
    assert "kvmrpa.nodes._layer_probe -> kvmrpa.engine" in out.stdout


def test_only_the_layers_above_the_widgets_import_them() -> None:
    # grimp analyses widgets/ as the package "widgets", so imports of kvmrpa.widgets from
    # kvmrpa/ are checked here.
    importers = set()
    for path in (ROOT / "kvmrpa").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                names = [".".join(p for p in (base, node.module or "") if p)]
            if any(n == "kvmrpa.widgets" or n.startswith("kvmrpa.widgets.") for n in names):
                importers.add(".".join(path.relative_to(ROOT).parts[:2]))
    assert importers <= {"kvmrpa.cli", "kvmrpa.bench"}, sorted(importers)
    assert "kvmrpa.bench" in importers  # the check sees relative imports too


def test_both_hubs_list_the_plugin_schemes_after_import_kvmrpa() -> None:
    code = ("import kvmrpa\nfrom kvmrpa import capture, kvm\n"
            "print(sorted(set(kvm.registered_schemes()) & set(capture.registered_schemes())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=110, start_new_session=True)
    assert "'sim'" in out.stdout and "'vnc'" in out.stdout

"""Honest dependencies: every third-party import of ``kvmrpa/`` and ``widgets/`` is
declared in pyproject.toml (core or an extra), and environment.yml lists the same set."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT

SCANNED = ("kvmrpa", "widgets")

#: PyPI name → conda-forge name, where they differ.
CONDA_NAMES = {"opencv-python-headless": "py-opencv", "build": "python-build"}
#: environment.yml entries that are not project dependencies.
ENV_ONLY = {"python", "pip"}
#: Imports that are not the package's to declare: (module, file) → why.
NOT_DEPENDENCIES = {
    ("gi", "kvmrpa/lab/_rtsp_server.py"):
        "a script the lab runs with the system python3 (Debian's python3-gi)",
}


def _literal_import(node: ast.AST) -> bool:
    """``importlib.import_module("name")`` or ``__import__("name")`` with a literal name."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def imported_modules(root: Path) -> dict[str, set[str]]:
    """Top-level names of the absolute imports under ``root`` → files importing them."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif _literal_import(node):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(root)))
    return found


def third_party(found: dict[str, set[str]]) -> dict[str, set[str]]:
    skip = set(sys.stdlib_module_names) | {"__future__", "kvmrpa"}
    return {m: files for m, files in found.items() if m not in skip}


def requirements(extras: set[str] | None = None) -> list[Requirement]:
    """The requirements of pyproject.toml: the core and the named extras (all if None)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    for name, extra in project.get("optional-dependencies", {}).items():
        if extras is None or name in extras:
            reqs += extra
    return [Requirement(r) for r in reqs]


def declared(extras: set[str] | None = None) -> set[str]:
    """Canonical names of the requirements (all of them: what environment.yml lists)."""
    return {canonicalize_name(r.name) for r in requirements(extras)}


def provided(extras: set[str] | None = None) -> set[str]:
    """What the requirements bring, with the extras they ask for (``dask[distributed]``
    declares ``distributed``)."""
    names = declared(extras)
    for req in requirements(extras):
        if not req.extras:
            continue
        for spec in metadata.requires(req.name) or []:
            sub = Requirement(spec)
            if sub.marker and any(sub.marker.evaluate({"extra": e}) for e in req.extras):
                names.add(canonicalize_name(sub.name))
    return names


def undeclared(modules: dict[str, set[str]], names: set[str]) -> list[str]:
    """Imports no declared distribution provides, as readable lines."""
    dists = metadata.packages_distributions()
    out = []
    for module, files in sorted(modules.items()):
        provided = {canonicalize_name(d) for d in dists.get(module, [])}
        if not provided & names:
            by = ", ".join(sorted(provided)) or "no installed distribution"
            out.append(f"{module} (from {by}) imported by {', '.join(sorted(files))}")
    return out


def test_every_third_party_import_is_declared() -> None:
    modules: dict[str, set[str]] = {}
    for folder in SCANNED:
        for module, files in third_party(imported_modules(ROOT / folder)).items():
            files = {f"{folder}/{f}" for f in files} - {
                path for (name, path) in NOT_DEPENDENCIES if name == module}
            if files:
                modules.setdefault(module, set()).update(files)
    assert {"numpy", "cv2", "param", "yaml"} <= set(modules)  # the scan sees real imports
    missing = undeclared(modules, provided())
    assert missing == [], "declare in pyproject.toml:\n" + "\n".join(missing)


def test_every_third_party_import_of_the_tests_is_in_the_test_extra() -> None:
    # ./dev installs the core and the test extra: that is what the tests may import
    modules = third_party(imported_modules(ROOT / "tests"))
    modules.pop("tests", None)  # the test package itself
    assert {"pytest", "playwright"} <= set(modules)
    missing = undeclared(modules, provided({"test"}))
    assert missing == [], "declare in pyproject.toml (the test extra):\n" + "\n".join(missing)


def test_the_import_check_reports_an_undeclared_import(tmp_path: Path) -> None:
    # guards the test above on a package of two files
    (tmp_path / "a.py").write_text("import os\nimport yaml\nfrom numpy import array\n"
                                   "from . import b\n")
    (tmp_path / "b.py").write_text("import cv2.utils\nimport importlib\n"
                                   "importlib.import_module('simpleeval')\n")
    modules = third_party(imported_modules(tmp_path))
    assert set(modules) == {"yaml", "numpy", "cv2", "simpleeval"}
    missing = undeclared(modules, {"numpy", "opencv-python-headless", "simpleeval"})
    assert len(missing) == 1 and missing[0].startswith("yaml (from pyyaml) imported by a.py")


def _env_names(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip())
    assert match, f"environment.yml: cannot read {spec!r}"
    return canonicalize_name(match.group(0))


def environment() -> tuple[set[str], set[str]]:
    """(conda-forge names, pip names) of environment.yml, canonical."""
    doc = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda, pip = set(), set()
    for entry in doc["dependencies"]:
        if isinstance(entry, dict):
            for spec in entry.get("pip", []):
                if not spec.startswith("-"):  # "-e ." installs kvmrpa itself
                    pip.add(_env_names(spec))
        else:
            conda.add(_env_names(entry))
    return conda - ENV_ONLY, pip


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    conda, pip = environment()
    assert not conda & pip, f"listed both for conda and pip: {sorted(conda & pip)}"
    def conda_name(name: str) -> str:
        return canonicalize_name(CONDA_NAMES.get(name, name))

    want = {conda_name(n) for n in declared()}
    allowed = {conda_name(n) for n in provided()}  # dask[distributed]: distributed too
    have = conda | {conda_name(n) for n in pip}
    extra = have - allowed
    assert extra == set(), f"in environment.yml, not in pyproject.toml: {sorted(extra)}"
    assert want - have == set(), f"in pyproject.toml, not in environment.yml: {sorted(want - have)}"

"""``python -m build``: no warnings from the backend; the sdist holds what builds the wheel
and nothing else; the wheel holds the package, its data, the notebooks and the licence."""

from __future__ import annotations

import email
import re
import tarfile
import tomllib
import zipfile
from fnmatch import fnmatch

from .conftest import ROOT, Built

WARNING = re.compile(r"(?i)\bwarn(ing)?s?\b|deprecat")
#: Lines that only name a file (whose name may contain those words).
FILE_LINE = re.compile(r"^(copying|adding|creating|writing|removing|reading|hard linking) ")

#: Top-level files of the sdist besides the package folders.
SDIST_TOP = {"PKG-INFO", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"}


def _package_data() -> list[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [pat for pats in cfg["tool"]["setuptools"]["package-data"].values() for pat in pats]


def test_the_build_prints_no_warning(built: Built) -> None:
    lines = [ln.strip() for ln in built.output.splitlines()]
    warnings = [ln for ln in lines if WARNING.search(ln) and not FILE_LINE.match(ln)]
    assert warnings == [], "\n".join(warnings)


def test_the_warning_filter_sees_setuptools_warnings() -> None:
    # guards the test above: what setuptools prints for a deprecated table licence
    assert WARNING.search("SetuptoolsDeprecationWarning: License classifiers are deprecated.")
    assert WARNING.search("warning: no previously-included files matching '*.pyc' found")
    assert not WARNING.search("copying kvmrpa/_errors.py -> build/lib/kvmrpa")


def test_the_sdist_holds_sources_and_declared_data_only(built: Built) -> None:
    with tarfile.open(built.sdist) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    prefix = built.sdist.name.removesuffix(".tar.gz") + "/"
    assert all(n.startswith(prefix) for n in names), names
    rel = [n.removeprefix(prefix) for n in names]
    data = [*_package_data(), "*.ipynb"]
    unexpected = []
    for name in rel:
        top, _, rest = name.partition("/")
        if not rest:
            ok = name in SDIST_TOP
        elif top == "kvmrpa.egg-info":
            ok = "/" not in rest
        elif top in ("kvmrpa", "widgets", "notebooks"):
            leaf = rest.rsplit("/", 1)[-1]
            ok = ("__pycache__" not in rest and ".ipynb_checkpoints" not in rest
                  and (leaf.endswith(".py") or any(fnmatch(leaf, p) for p in data)))
        else:
            ok = False
        if not ok:
            unexpected.append(name)
    assert unexpected == [], f"the sdist should not hold: {unexpected}"
    # and what the wheel needs is there
    assert "kvmrpa/__init__.py" in rel and "widgets/__init__.py" in rel
    assert {f"kvmrpa/sim/flows/scenario{i}.json" for i in (1, 2, 3)} <= set(rel)
    assert {f"notebooks/{p.name}" for p in (built.src / "notebooks").glob("*.ipynb")} <= set(rel)
    assert not any(n.startswith(("tests/", "notebooks/flows/")) for n in rel)


def test_the_wheel_ships_the_package_data_notebooks_and_licence(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as whl:
        names = set(whl.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(whl.read(meta_name))
        notebooks = {n for n in names if n.startswith("kvmrpa/_notebooks/")}
        for path in (built.src / "notebooks").glob("*.ipynb"):
            assert whl.read(f"kvmrpa/_notebooks/{path.name}") == path.read_bytes()
        for path in (built.src / "kvmrpa" / "sim" / "flows").glob("*.json"):
            assert whl.read(f"kvmrpa/sim/flows/{path.name}") == path.read_bytes()
    shipped = {f"kvmrpa/_notebooks/{p.name}" for p in (built.src / "notebooks").glob("*.ipynb")}
    assert notebooks == shipped
    assert "kvmrpa/widgets/__init__.py" in names and "kvmrpa/engine/flow.schema.json" in names
    assert not any(n.startswith("tests/") or "__pycache__" in n for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["License-Expression"] == "Apache-2.0"
    init = (built.src / "kvmrpa" / "__init__.py").read_text(encoding="utf-8")
    assert f'__version__ = "{meta["Version"]}"' in init
    requires = {re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0].lower()
                for r in meta.get_all("Requires-Dist") or []}
    assert "pyyaml" in requires


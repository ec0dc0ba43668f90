"""The core library never loads UI packages; widgets do, and live under kvmrpa.widgets."""

from __future__ import annotations

import json
import subprocess
import sys

UI_MODULES = ("panel", "bokeh", "ipywidgets", "IPython", "jupyter_client", "ipykernel")

CORE_MODULES = (
    "kvmrpa",
    "kvmrpa.capture",
    "kvmrpa.kvm",
    "kvmrpa.vision",
    "kvmrpa.nodes",
    "kvmrpa.engine",
    "kvmrpa.sim",
    "kvmrpa.cli",
)


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_core_leaves_ui_packages_unloaded() -> None:
    code = "\n".join(f"import {m}" for m in CORE_MODULES)
    loaded = _loaded_after(code)
    leaked = sorted(m for m in loaded if m.split(".")[0] in UI_MODULES)
    assert leaked == [], f"core imports pulled in UI modules: {leaked}"


def test_the_probe_can_see_ui_modules_when_they_are_imported() -> None:
    # Guards the test above: the same probe does report panel once widgets load.
    loaded = _loaded_after("import kvmrpa.widgets, panel")
    assert "panel" in loaded


def test_widgets_are_installed_as_a_subpackage() -> None:
    import kvmrpa.widgets

    assert kvmrpa.widgets.__name__ == "kvmrpa.widgets"
    assert kvmrpa.widgets.__file__ is not None
    assert "widgets" in kvmrpa.widgets.__file__


def test_every_package_folder_is_listed_in_pyproject() -> None:
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "kvmrpa").rglob("__init__.py")}
    found |= {"kvmrpa." + ".".join(p.parent.relative_to(root).parts)
              for p in (root / "widgets").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"

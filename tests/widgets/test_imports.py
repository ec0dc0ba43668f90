"""Import boundaries: the encoder needs no UI package; serve and the stream benchmark
import Panel only when they run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_encoder_imports_only_numpy_cv2_stdlib_and_core() -> None:
    tree = ast.parse((ROOT / "kvmrpa" / "capture" / "_encoder.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    third_party = {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party <= {"numpy", "cv2", "kvmrpa"}, third_party
    assert not any(n.startswith("kvmrpa.widgets") for n in names)


def test_cli_and_bench_do_not_import_ui_packages() -> None:
    code = ("import sys, kvmrpa.cli, kvmrpa.cli._serve, kvmrpa.bench._stream\n"
            "from kvmrpa.cli import build_parser; build_parser()\n"
            "print(sorted(m for m in ('panel', 'bokeh', 'ipywidgets', 'IPython') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

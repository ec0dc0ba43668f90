"""The public surface: curated names at the top, subpackages on first use, every public
name documented, no name meaning two things."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PUBLIC_MODULES = ("kvmrpa", "kvmrpa.capture", "kvmrpa.kvm", "kvmrpa.kvm.keys", "kvmrpa.vision",
                  "kvmrpa.nodes", "kvmrpa.engine", "kvmrpa.legacy", "kvmrpa.sim", "kvmrpa.lab",
                  "kvmrpa.bench")

NOTEBOOK_NAMES = ("Flow", "load_flow", "FlowRun", "RunResult", "FlowDebugger", "FlowManager",
                  "Node", "register_node", "Source", "Crop", "Preprocess", "Ocr",
                  "MatchTemplate", "Detect", "VisionCondition", "WaitUntil", "Mouse", "Keyboard",
                  "Wait", "Variable", "Condition", "Loop", "PythonCode", "open_source",
                  "open_driver", "release_source", "release_driver", "Frame", "get_settings",
                  "configure", "load_settings", "Settings", "KvmrpaError")


def _sources(module: object) -> str:
    path = Path(module.__file__)  # type: ignore[attr-defined]
    files = path.parent.rglob("*.py") if path.name == "__init__.py" else [path]
    return "\n".join(p.read_text("utf-8") for p in files)


def _documented(module: object, name: str, text: str) -> bool:
    obj = getattr(module, name)
    if inspect.isclass(obj):
        return bool((obj.__dict__.get("__doc__") or "").strip())
    if inspect.ismodule(obj) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__"):
        return bool((getattr(obj, "__doc__", None) or "").strip())
    # data: a ``#:`` comment on the line(s) before its assignment
    return re.search(rf"(^\s*#:[^\n]*\n)+^\s*{re.escape(name)}\b\s*[:=]", text, re.M) is not None


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no docstring"
    text = _sources(module)
    missing = [n for n in module.__all__ if not _documented(module, n, text)]
    assert missing == [], f"{module_name}: document {missing} (a docstring, or #: before data)"


def test_the_top_level_has_the_notebook_names_and_loads_the_rest_lazily() -> None:
    code = ("import sys, json, kvmrpa\n"
            "before = sorted(m for m in ('kvmrpa.engine', 'kvmrpa.capture', 'kvmrpa.nodes', "
            "'kvmrpa.vision') if m in sys.modules)\n"
            "names = {n: getattr(kvmrpa, n).__module__ for n in "
            f"{list(NOTEBOOK_NAMES)!r}}}\n"
            "subs = [getattr(kvmrpa, s).__name__ for s in ('capture', 'kvm', 'vision', 'sim', "
            "'nodes', 'engine', 'legacy')]\n"
            "print(json.dumps([before, names, subs]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=110, start_new_session=True)
    before, names, subs = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == []  # nothing heavy until used
    assert names["Flow"] == "kvmrpa.engine._flow" and names["Ocr"] == "kvmrpa.nodes.vision"
    assert subs == ["kvmrpa.capture", "kvmrpa.kvm", "kvmrpa.vision", "kvmrpa.sim",
                    "kvmrpa.nodes", "kvmrpa.engine", "kvmrpa.legacy"]
    import kvmrpa

    assert set(NOTEBOOK_NAMES) <= set(kvmrpa.__all__) and set(kvmrpa.__all__) <= set(dir(kvmrpa))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kvmrpa.nope  # noqa: B018


def test_one_name_one_thing() -> None:
    import kvmrpa
    from kvmrpa import engine, widgets

    assert "Debugger" not in kvmrpa.__all__  # the engine's is FlowDebugger, the widget's Debugger
    assert kvmrpa.FlowDebugger is engine.FlowDebugger
    assert widgets.Debugger is not engine.FlowDebugger
    assert not hasattr(engine, "register_import_mapper")  # one place: kvmrpa.legacy
    assert not hasattr(kvmrpa.nodes, "register_import_mapper")
    assert kvmrpa.legacy.register_import_mapper.__module__ == "kvmrpa.legacy._registry"


def test_readme_and_notebooks_take_flow_from_the_top_level() -> None:
    texts = [(ROOT / "README.md").read_text("utf-8")]
    texts += [p.read_text("utf-8") for p in (ROOT / "notebooks").glob("*.ipynb")]
    assert all("from kvmrpa.engine import Flow" not in t for t in texts)
    assert any("from kvmrpa import Flow" in t for t in texts[1:])


def test_vision_exports_its_api_and_keeps_its_parts_private() -> None:
    from kvmrpa import vision

    loose = sorted(n for n, v in vars(vision).items() if not n.startswith("_")
                   and n not in vision.__all__ and n != "annotations" and not inspect.ismodule(v))
    assert loose == [], f"kvmrpa.vision: list these in __all__ or keep them private: {loose}"
    assert {"ocr", "match_template", "detect", "Template", "annotate", "TextBoxes"} <= set(vision.__all__)
    # the engines' parts (decoding, geometry, text distances) stay in their modules
    assert not {"letterbox", "nms", "iou", "edit_distance", "RapidOcrEngine"} & set(dir(vision))

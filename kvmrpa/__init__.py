"""kvmrpa: visual RPA over KVM, from a Jupyter notebook or a dashboard.

The names a notebook uses are here::

    from kvmrpa import Flow, Ocr, Mouse, open_source, open_driver

* flows: :class:`Flow` (build, load, save, run), :func:`load_flow`, :class:`FlowRun`,
  :class:`RunResult`, :class:`FlowDebugger`, :class:`FlowManager`;
* node types: :class:`Node` (the base, with :func:`register_node`) and the library —
  :class:`Source`, :class:`Crop`, :class:`Preprocess`, :class:`Ocr`,
  :class:`MatchTemplate`, :class:`Detect`, :class:`VisionCondition`, :class:`WaitUntil`,
  :class:`Mouse`, :class:`Keyboard`, :class:`Wait`, :class:`Variable`,
  :class:`Condition`, :class:`Loop`, :class:`PythonCode`;
* the target: :func:`open_source` / :func:`open_driver` (shared, reference-counted;
  ``with open_source(url) as src:`` gives the reference back at the end of the block),
  :func:`release_source` / :func:`release_driver`;
* :class:`Frame`, the settings (:func:`get_settings`, :func:`configure`,
  :func:`load_settings`, :class:`Settings`), the runtime (:func:`get_runtime`,
  :func:`run_sync`) and the error tree (:class:`KvmrpaError` and its subclasses).

The subpackages (``kvmrpa.capture``, ``kvmrpa.kvm``, ``kvmrpa.vision``,
``kvmrpa.nodes``, ``kvmrpa.engine``, ``kvmrpa.legacy``, ``kvmrpa.sim``,
``kvmrpa.widgets``, …) and the names above load on first use, so ``import kvmrpa`` is
cheap. Nothing outside :mod:`kvmrpa.widgets` imports panel, bokeh, ipywidgets or
IPython.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._errors import *  # noqa: F403 - the error tree is part of the public API
from ._errors import __all__ as _error_names
from ._frame import Frame
from ._runtime import Runtime, get_runtime, run_sync
from ._settings import Settings, configure, get_settings, load_settings

if TYPE_CHECKING:  # pragma: no cover - what the lazy names are, for type checkers
    from .capture import open_source, release_source
    from .engine import Debugger as FlowDebugger
    from .engine import Flow, FlowManager, FlowRun, RunResult, load_flow
    from .kvm import open_driver, release_driver
    from .nodes import (
        Condition,
        Crop,
        Detect,
        Keyboard,
        Loop,
        MatchTemplate,
        Mouse,
        Node,
        Ocr,
        Preprocess,
        PythonCode,
        Source,
        Variable,
        VisionCondition,
        Wait,
        WaitUntil,
        register_node,
    )

#: The installed release.
__version__ = "0.1.0"

logging.getLogger("kvmrpa").addHandler(logging.NullHandler())

#: Lazily loaded names: name -> (module, attribute in it).
_LAZY: dict[str, tuple[str, str]] = {
    **{n: ("kvmrpa.engine", n) for n in ("Flow", "FlowManager", "FlowRun", "RunResult",
                                         "load_flow")},
    "FlowDebugger": ("kvmrpa.engine", "Debugger"),
    **{n: ("kvmrpa.nodes", n) for n in (
        "Node", "register_node", "Source", "Crop", "Preprocess", "Ocr", "MatchTemplate",
        "Detect", "VisionCondition", "WaitUntil", "Mouse", "Keyboard", "Wait", "Variable",
        "Condition", "Loop", "PythonCode")},
    "open_source": ("kvmrpa.capture", "open_source"),
    "release_source": ("kvmrpa.capture", "release_source"),
    "open_driver": ("kvmrpa.kvm", "open_driver"),
    "release_driver": ("kvmrpa.kvm", "release_driver"),
}

#: Subpackages loaded on first attribute access (``kvmrpa.capture``).
_SUBPACKAGES = ("bench", "capture", "cli", "engine", "fleet", "kvm", "lab", "legacy", "nodes",
                "sim", "vision", "widgets")

__all__ = [
    *_error_names,
    "Condition",
    "Crop",
    "Detect",
    "Flow",
    "FlowDebugger",
    "FlowManager",
    "FlowRun",
    "Frame",
    "Keyboard",
    "Loop",
    "MatchTemplate",
    "Mouse",
    "Node",
    "Ocr",
    "Preprocess",
    "PythonCode",
    "RunResult",
    "Runtime",
    "Settings",
    "Source",
    "Variable",
    "VisionCondition",
    "Wait",
    "WaitUntil",
    "__version__",
    "configure",
    "get_runtime",
    "get_settings",
    "load_flow",
    "load_settings",
    "open_driver",
    "open_source",
    "register_node",
    "release_driver",
    "release_source",
    "run_sync",
]


def __getattr__(name: str) -> Any:
    """Load a lazy name or subpackage on first use (PEP 562)."""
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'kvmrpa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBPACKAGES})

"""kvmrpa: visual RPA over KVM, from a Jupyter notebook or a dashboard.

The core library: frames and sources, input drivers, vision, nodes, flows and their
executor. It never imports panel, bokeh, ipywidgets or IPython; the UI lives in
:mod:`kvmrpa.widgets`.
"""

from __future__ import annotations

import logging

from ._errors import *  # noqa: F403 - the error tree is part of the public API
from ._errors import __all__ as _error_names
from ._frame import Frame
from ._runtime import Runtime, get_runtime, run_sync
from ._settings import Settings, configure, get_settings, load_settings
from .engine import Debugger, Flow, FlowManager, FlowRun, RunResult, load_flow
from .nodes import Node, register_node

__version__ = "0.1.0"

logging.getLogger("kvmrpa").addHandler(logging.NullHandler())

__all__ = [
    *_error_names,
    "Debugger",
    "Flow",
    "FlowManager",
    "FlowRun",
    "Frame",
    "Node",
    "Runtime",
    "RunResult",
    "Settings",
    "__version__",
    "configure",
    "get_runtime",
    "get_settings",
    "load_flow",
    "load_settings",
    "register_node",
    "run_sync",
]

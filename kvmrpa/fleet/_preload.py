"""Dask worker preload of the LocalCluster a fleet run starts: its worker processes
ignore SIGINT, so a Ctrl-C in the terminal (which reaches the whole process group)
stops the targets' runs through the caller, with the engine's stop, instead of killing
the workers mid-action."""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

"""Dask worker preload of the LocalCluster a fleet run starts.

* Its worker processes ignore SIGINT, so a Ctrl-C in the terminal (which reaches the
  whole process group) stops the targets' runs through the caller, with the engine's
  stop, instead of killing the workers mid-action.
* OpenCV's thread pool is sized to ``settings.runtime.native_threads`` (set for the
  workers by :func:`kvmrpa.fleet._fleet.worker_env`, as onnxruntime's), so that worker
  processes sharing the cores do not each start one thread per core.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def apply_native_threads() -> None:
    """Size OpenCV's thread pool to ``settings.runtime.native_threads`` (when set) in
    this process; a target's run and the thumbnailer call it too, for workers started
    without this preload (``dask worker`` on another machine)."""
    from .._settings import get_settings

    threads = get_settings().runtime.native_threads
    if threads:
        import cv2

        if cv2.getNumThreads() != threads:
            cv2.setNumThreads(threads)


def dask_setup(worker: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    apply_native_threads()

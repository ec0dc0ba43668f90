"""Fixtures for the node tests: rendered screens, an image file source, a scripted
source whose picture changes after a number of frames, a tiny YOLO ONNX model with a
known output, and a dry-run input driver per test."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from kvmrpa.capture import FrameSource, register_source
from kvmrpa.kvm import open_driver, release_driver

from ._screens import Screen, render

_counter = itertools.count(1)


class ScriptedSource(FrameSource):
    """Publishes ``script(n)`` as frame ``n`` (1, 2, …) every ``period`` seconds."""

    scripts: ClassVar[dict[str, Callable[[int], np.ndarray]]] = {}

    def __init__(self, url: str, period: float = 0.04) -> None:
        super().__init__(url)
        self._script = self.scripts[url]
        self._period = period
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name="scripted-source", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        n = 0
        while not self._halt.is_set():
            n += 1
            self._publish(self._script(n))
            self._halt.wait(self._period)

    def _stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(5)


register_source("nodetest", ScriptedSource)


@pytest.fixture
def scripted_source() -> Iterator[Callable[[Callable[[int], np.ndarray]], str]]:
    """``make(script) -> url``: a source URL publishing ``script(n)`` as frame n."""
    urls: list[str] = []

    def make(script: Callable[[int], np.ndarray]) -> str:
        url = f"nodetest://s{next(_counter)}"
        ScriptedSource.scripts[url] = script
        urls.append(url)
        return url

    yield make
    for url in urls:
        ScriptedSource.scripts.pop(url, None)


@pytest.fixture(scope="session")
def dialog() -> Screen:
    """The reference dialog: 测试, buttons 取消 / 确定, 请输入 above an input box."""
    return render()


@pytest.fixture
def dialog_url(dialog: Screen, tmp_path: Path) -> str:
    """A ``file://`` URL of the dialog as a PNG (an image source)."""
    return dialog.save(tmp_path / "dialog.png")


@pytest.fixture
def dryrun() -> Iterator[tuple[str, object]]:
    """``(url, driver)``: a fresh dry-run driver (1280x720 target) for this test."""
    url = f"dryrun://nodes{next(_counter)}?size=1280x720"
    driver = open_driver(url)
    try:
        yield url, driver
    finally:
        release_driver(driver)


def make_yolo_model(path: Path, rows: list[tuple[float, float, float, float, float, float]],
                    size: int = 64) -> Path:
    """A YOLOv8-layout ONNX model (classes ``button``, ``icon``) whose output is always
    ``rows`` = ``(cx, cy, w, h, score_button, score_icon)`` in letterboxed input pixels."""
    import onnx
    from onnx import TensorProto, helper

    const = np.array(rows, dtype=np.float32).T[None]  # [1, 6, N]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["table", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(const.shape))],
        initializer=[helper.make_tensor("table", TensorProto.FLOAT, const.shape, const.ravel()),
                     helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta = model.metadata_props.add()
    meta.key, meta.value = "names", "{0: 'button', 1: 'icon'}"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def yolo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 'button' at (cx 32, cy 32, w 10, h 4) with 0.9 and one 'icon' at (10, 20, 4, 4)
    with 0.8, in a 64x64 letterbox: on a 1280x720 frame (ratio 0.05, top pad 14) the
    button is (540, 320, 200, 80) and the icon (160, 80, 80, 80)."""
    return make_yolo_model(tmp_path_factory.mktemp("yolo") / "tiny.onnx",
                           [(32, 32, 10, 4, 0.9, 0.0), (10, 20, 4, 4, 0.1, 0.8)])

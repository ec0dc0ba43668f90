"""Small real FrameSource and InputDriver subclasses for widget tests."""

from __future__ import annotations

import cv2
import numpy as np

from kvmrpa.capture import FrameSource
from kvmrpa.kvm import InputDriver


def picture(i: int, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 30 + (i * 7) % 200, np.uint8)
    cv2.putText(img, f"frame {i}", (20, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
    return img


class ManualSource(FrameSource):
    """Publishes a frame each time :meth:`push` is called."""

    def __init__(self, url: str = "manual://test", size: tuple[int, int] = (640, 360)) -> None:
        super().__init__(url)
        self.size = size
        self._i = 0

    def _start(self) -> None:
        pass

    def _stop(self) -> None:
        pass

    def push(self) -> int:
        self._i += 1
        return self._publish(picture(self._i, self.size)).seq


class RecordingDriver(InputDriver):
    """Records the primitives it is asked to send, in target pixels."""

    scheme = "record"

    def __init__(self) -> None:
        super().__init__("record://test", frame_size=(640, 360))
        self.sent: list[tuple] = []

    async def _move(self, x: int, y: int) -> None:
        self.sent.append(("move", x, y))

    async def _button(self, button: str, down: bool) -> None:
        self.sent.append(("button", button, down))

    async def _scroll(self, dx: int, dy: int) -> None:
        self.sent.append(("scroll", dx, dy))

    async def _key(self, key: str, down: bool) -> None:
        self.sent.append(("key", key, down))

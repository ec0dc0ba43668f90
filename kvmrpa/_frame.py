"""Frame: the immutable image every source delivers and every vision step reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Frame"]


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image: BGR ``uint8`` array of shape ``(h, w, 3)``, read-only.

    ``seq`` increases by one per frame of a source; ``captured`` is ``time.monotonic()``
    at capture and ``wall`` is ``time.time()``. ``offset`` and ``scale`` record how this
    image relates to the full source frame (a crop keeps its offset, a resize its
    scale), so a point found here maps back with :meth:`to_source`.
    """

    image: np.ndarray
    seq: int = 0
    captured: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)
    source_id: str = "array"
    offset: tuple[int, int] = (0, 0)
    scale: float = 1.0

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray):
            raise TypeError(f"Frame.image must be a numpy array, got {type(img).__name__}")
        if img.dtype != np.uint8:
            raise ValueError(f"Frame.image must be uint8, got {img.dtype}")
        if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"Frame.image must have shape (h, w, 3), got {img.shape}")
        if self.seq < 0:
            raise ValueError(f"Frame.seq must be >= 0, got {self.seq}")
        if not self.scale > 0:
            raise ValueError(f"Frame.scale must be > 0, got {self.scale}")
        if img.flags.writeable:
            view = img.view()
            view.flags.writeable = False
            object.__setattr__(self, "image", view)

    @classmethod
    def from_array(
        cls, array: np.ndarray, *, seq: int = 0, source_id: str = "array", copy: bool = True
    ) -> Frame:
        """Build a frame from a BGR, BGRA or grayscale array (converted to BGR)."""
        import cv2

        arr = np.asarray(array)
        if arr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {arr.dtype}")
        if arr.ndim == 2:
            arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
        elif copy:
            arr = arr.copy()
        return cls(np.ascontiguousarray(arr), seq=seq, source_id=source_id)

    @classmethod
    def from_file(cls, path: str, *, source_id: str | None = None) -> Frame:
        """Read an image file (PNG, JPEG, …) into a frame."""
        import cv2

        from ._errors import CaptureError

        data = np.fromfile(path, dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if img is None:
            raise CaptureError(f"cannot read image {path!r}: not a readable image file")
        return cls(img, source_id=source_id or f"file://{path}")

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.width, self.height

    def age(self) -> float:
        """Seconds since capture."""
        return time.monotonic() - self.captured

    def derive(self, image: np.ndarray, *, offset: tuple[int, int] | None = None,
               scale: float | None = None) -> Frame:
        """A new frame from the same capture with another image (crop, resize, filter)."""
        if image.ndim == 2:
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return Frame(
            np.ascontiguousarray(image), seq=self.seq, captured=self.captured, wall=self.wall,
            source_id=self.source_id, offset=self.offset if offset is None else offset,
            scale=self.scale if scale is None else scale,
        )

    def from_source(self, x: float, y: float) -> tuple[float, float]:
        """A point in full source pixels in this frame's pixels (:meth:`to_source`
        inverted): the one place crop offset and scale map that way."""
        return (x - self.offset[0]) * self.scale, (y - self.offset[1]) * self.scale

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        """Map a point of this image to the full source frame's pixels."""
        return self.offset[0] + x / self.scale, self.offset[1] + y / self.scale

    def __repr__(self) -> str:
        return (f"Frame(seq={self.seq}, size={self.width}x{self.height}, "
                f"source={self.source_id!r}, age={self.age():.3f}s)")

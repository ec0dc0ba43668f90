"""Input images for vision: a :class:`~kvmrpa.Frame` or a numpy array, and ROI crops."""

from __future__ import annotations

import cv2
import numpy as np

from .._errors import VisionError
from .._frame import Frame
from ._geometry import Box, clip_roi

__all__ = ["ImageLike", "crop", "to_bgr"]

ImageLike = Frame | np.ndarray


def to_bgr(image: ImageLike, what: str = "image") -> np.ndarray:
    """The BGR ``uint8`` array of a frame or array (grayscale and BGRA are converted)."""
    if isinstance(image, Frame):
        return image.image
    if not isinstance(image, np.ndarray):
        raise VisionError(f"{what} must be a Frame or a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise VisionError(f"{what} must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3 and image.shape[0] and image.shape[1]:
        return image
    raise VisionError(f"{what} must have shape (h, w), (h, w, 3) or (h, w, 4), got {image.shape}")


def crop(image: np.ndarray, roi: object | None) -> tuple[np.ndarray, Box]:
    """``image[roi]`` (a view) and the clipped ROI; the whole image when ``roi`` is None."""
    h, w = image.shape[:2]
    if roi is None:
        return image, (0, 0, w, h)
    x, y, rw, rh = clip_roi(roi, w, h)
    return image[y:y + rh, x:x + rw], (x, y, rw, rh)

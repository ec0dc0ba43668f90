"""Image nodes ``crop`` and ``preprocess``, and :class:`FrameNode`, the base of every node
that computes on a frame (these two and the vision nodes).

A frame node finds its frame as the nearest upstream ``frame`` output, or, when nothing
upstream produced one, the latest frame of the flow's video source (the original
system's "last frame on the blackboard"). Its CPU work runs in the runtime's worker pool,
never on the event loop. Outside a flow, :meth:`FrameNode.try_on` runs the same work on a
given frame (the widgets' "run on current frame").

Coordinates: every frame keeps ``offset`` and ``scale`` relative to the full source
frame (:meth:`kvmrpa.Frame.to_source`). ``crop`` adds its origin to the offset and
``preprocess`` multiplies the scale when it resizes, so a text found in a cropped,
upscaled image still maps back to the right pixel of the screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np
import param

from .._errors import FrameTimeoutError, KvmrpaError, NodeError
from .._frame import Frame
from .._settings import get_settings
from ._base import Node
from ._registry import register_node

if TYPE_CHECKING:  # pragma: no cover
    from ._base import Inputs, NodeContext

__all__ = ["Crop", "FrameNode", "Preprocess", "as_frame", "frame_from_context"]


def as_frame(image: Frame | np.ndarray) -> Frame:
    """A :class:`Frame` from a frame or a BGR / BGRA / grayscale ``uint8`` array."""
    if isinstance(image, Frame):
        return image
    if isinstance(image, np.ndarray):
        return Frame.from_array(image, source_id="try_on")
    raise TypeError(f"expected a Frame or a numpy image, got {type(image).__name__}")


async def frame_from_context(inputs: Inputs, ctx: NodeContext, *, field: str = "frame") -> Frame:
    """The nearest upstream frame, else the latest frame of the flow's source.

    Raises :class:`NodeError` naming the node when neither gives a frame in time.
    """
    frame = inputs.frame()
    if isinstance(frame, Frame):
        return frame
    src = await ctx.source()
    latest = src.latest()
    if latest is not None:
        return latest
    timeout = get_settings().capture.next_frame_timeout
    try:
        return await src.next_frame(None, timeout)
    except FrameTimeoutError as exc:
        err = src.metrics().last_error
        why = f" (last error: {err})" if err else ""
        raise NodeError(f"no frame upstream and none from the flow's source within {timeout:g} s"
                        f"{why}", node_id=ctx.node_id, flow=ctx.flow_name, field=field,
                        cause=exc) from exc


class FrameNode(Node):
    """Base of nodes that compute on one frame (crop, preprocess, OCR, matching, detection).

    Subclasses implement :meth:`process` — blocking, pure, given the frame — and get
    ``run`` (the frame from upstream or the source, the work offloaded to the pool) and
    :meth:`try_on` for free.
    """

    category: ClassVar[str] = "vision"

    def process(self, frame: Frame) -> dict[str, Any]:  # pragma: no cover - abstract
        """Compute the node's outputs from ``frame`` (blocking; runs in a worker thread)."""
        raise NotImplementedError(f"node type {self.type_name!r} does not implement process()")

    def try_on(self, frame: Frame | np.ndarray) -> dict[str, Any]:
        """Run this node on ``frame`` outside any flow and return its outputs.

        Blocking (it does the CPU work in the calling thread); from async code use
        :meth:`atry_on`.
        """
        return self.process(as_frame(frame))

    async def atry_on(self, frame: Frame | np.ndarray) -> dict[str, Any]:
        """:meth:`try_on` in the runtime's worker pool."""
        from .._runtime import get_runtime

        return await get_runtime().to_thread(self.try_on, frame)

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        frame = await frame_from_context(inputs, ctx)
        try:
            return await ctx.runtime.to_thread(self.process, frame)
        except NodeError:
            raise
        except (KvmrpaError, ValueError) as exc:
            raise NodeError(str(exc), node_id=ctx.node_id, flow=ctx.flow_name,
                            cause=exc) from exc


def _offset(x: float, y: float) -> tuple[Any, Any]:
    """A point as whole numbers when it is whole (the common, unscaled case)."""

    def one(v: float) -> float | int:
        return int(v) if float(v).is_integer() else float(v)

    return one(x), one(y)


@register_node
class Crop(FrameNode):
    """Cut a region out of the frame, keeping where it came from.

    Inputs: the nearest upstream ``frame`` (else the flow source's latest frame).
    Outputs: ``{"frame": cropped Frame, "region": [x, y, w, h]}`` — the cropped frame's
    ``offset`` locates it in the full source frame, so points found in it map back;
    ``region`` is the part actually cut (clipped to the frame), in source pixels.
    ``x``/``y``/``width``/``height`` are in the pixels of the incoming frame.
    """

    type_name: ClassVar[str] = "crop"

    x = param.Integer(default=0, bounds=(0, None), doc="Left edge of the region, in pixels of the incoming frame.")
    y = param.Integer(default=0, bounds=(0, None), doc="Top edge of the region, in pixels of the incoming frame.")
    width = param.Integer(default=100, bounds=(1, None), doc="Width of the region in pixels (clipped to the frame).")
    height = param.Integer(default=100, bounds=(1, None), doc="Height of the region in pixels (clipped to the frame).")

    def process(self, frame: Frame) -> dict[str, Any]:
        x0, y0 = min(self.x, frame.width), min(self.y, frame.height)
        x1, y1 = min(self.x + self.width, frame.width), min(self.y + self.height, frame.height)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"crop ({self.x}, {self.y}, {self.width}, {self.height}) lies "
                             f"outside the {frame.width}x{frame.height} frame")
        origin = _offset(*frame.to_source(x0, y0))
        size = _offset((x1 - x0) / frame.scale, (y1 - y0) / frame.scale)
        cropped = frame.derive(frame.image[y0:y1, x0:x1], offset=origin)
        return {"frame": cropped, "region": [*origin, *size]}


@register_node
class Preprocess(FrameNode):
    """Clean up an image for OCR or matching: resize, gray, denoise, sharpen, threshold,
    invert (applied in that order).

    Inputs: the nearest upstream ``frame`` (else the flow source's latest frame).
    Outputs: ``{"frame": processed Frame}``; a resize keeps the aspect ratio and
    multiplies the frame's ``scale``, so points found in the result map back to the
    source. Gray and thresholded results are stored as 3-channel BGR.
    """

    type_name: ClassVar[str] = "preprocess"

    resize: param.Selector[str] = param.Selector(default="none", objects=["none", "scale", "fit"], doc="'scale' multiplies both sides by scale_factor; 'fit' scales (keeping the aspect ratio) to fit target_width x target_height (0 = unconstrained side).")
    scale_factor = param.Number(default=2.0, bounds=(0.05, 8.0), doc="Resize factor (resize 'scale').", precedence=0.11)
    target_width = param.Integer(default=0, bounds=(0, 16384), doc="Largest width after resizing, 0 for no limit (resize 'fit').", precedence=0.12)
    target_height = param.Integer(default=0, bounds=(0, 16384), doc="Largest height after resizing, 0 for no limit (resize 'fit').", precedence=0.13)
    gray = param.Boolean(default=False, doc="Convert to grayscale.")
    denoise: param.Selector[str] = param.Selector(default="none", objects=["none", "median", "gaussian", "bilateral", "nlmeans"], doc="Noise filter (nlmeans is best and slowest).")
    denoise_strength = param.Integer(default=3, bounds=(1, 31), doc="Kernel size (median/gaussian, made odd), diameter (bilateral) or strength h (nlmeans).", precedence=0.21)
    sharpen = param.Boolean(default=False, doc="Unsharp-mask sharpening.")
    sharpen_amount = param.Number(default=1.0, bounds=(0.0, 5.0), doc="Strength of the sharpening.", precedence=0.31)
    threshold: param.Selector[str] = param.Selector(default="none", objects=["none", "binary", "otsu", "adaptive"], doc="Binarise the (grayscale) image.")
    threshold_value = param.Integer(default=128, bounds=(0, 255), doc="Cut-off for 'binary' thresholding.", precedence=0.41)
    invert = param.Boolean(default=False, doc="Invert the image (light text on dark becomes dark on light).")

    @param.depends("resize", "denoise", "sharpen", "threshold", watch=True, on_init=True)
    def _show_relevant(self) -> None:
        self.show_params((("scale_factor", self.resize == "scale"),
                          ("target_width", self.resize == "fit"),
                          ("target_height", self.resize == "fit"),
                          ("denoise_strength", self.denoise != "none"),
                          ("sharpen_amount", self.sharpen),
                          ("threshold_value", self.threshold == "binary")))

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.resize == "fit" and not (self.target_width or self.target_height):
            out.append(("target_width", "resize 'fit' needs target_width or target_height"))
        return out

    def _factor(self, w: int, h: int) -> float:
        if self.resize == "scale":
            return float(self.scale_factor)
        if self.resize == "fit":
            factors = [self.target_width / w] if self.target_width else []
            if self.target_height:
                factors.append(self.target_height / h)
            return min(factors) if factors else 1.0
        return 1.0

    def process(self, frame: Frame) -> dict[str, Any]:
        img: np.ndarray = frame.image
        h, w = img.shape[:2]
        f = self._factor(w, h)
        if f != 1.0:
            size = (max(1, round(w * f)), max(1, round(h * f)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)
            f = size[0] / w
        gray = self.gray or self.threshold != "none"
        if gray:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        k = self.denoise_strength
        if self.denoise == "median":
            img = cv2.medianBlur(img, k | 1)
        elif self.denoise == "gaussian":
            img = cv2.GaussianBlur(img, (k | 1, k | 1), 0)
        elif self.denoise == "bilateral":
            img = cv2.bilateralFilter(img, k, 50, 50)
        elif self.denoise == "nlmeans":
            img = (cv2.fastNlMeansDenoising(img, None, float(k)) if img.ndim == 2
                   else cv2.fastNlMeansDenoisingColored(img, None, float(k), float(k)))
        if self.sharpen and self.sharpen_amount > 0:
            blur = cv2.GaussianBlur(img, (0, 0), 1.5)
            img = cv2.addWeighted(img, 1 + self.sharpen_amount, blur, -self.sharpen_amount, 0)
        if self.threshold == "binary":
            img = cv2.threshold(img, self.threshold_value, 255, cv2.THRESH_BINARY)[1]
        elif self.threshold == "otsu":
            img = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
        elif self.threshold == "adaptive":
            img = cv2.adaptiveThreshold(img, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C,
                                        cv2.THRESH_BINARY, 31, 10)
        if self.invert:
            img = cv2.bitwise_not(img)
        if img is frame.image:
            return {"frame": frame}
        return {"frame": frame.derive(np.ascontiguousarray(img), scale=frame.scale * f)}


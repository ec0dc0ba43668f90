"""Object detection with YOLO-family ONNX models on onnxruntime.

Two output layouts are decoded: YOLOv5 ``[1, N, 5 + C]`` (box, objectness, class
scores; confidence = objectness x class score) and YOLOv8/v11 ``[1, 4 + C, N]`` (box,
class scores). Boxes are ``(cx, cy, w, h)`` in the letterboxed input's pixels and are
mapped back through the letterbox (scale, then padding) to the image given. Class
names come from the model's metadata (``names``, as Ultralytics writes it) or a names
file (``.txt`` one per line, ``.json`` / ``.yaml`` list or ``{id: name}``).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from .._errors import ModelNotFoundError, VisionError
from .._runtime import get_runtime
from .._settings import get_settings
from ._geometry import nms
from ._image import ImageLike, crop, to_bgr
from ._results import Detections

__all__ = [
    "Letterbox",
    "YoloDetector",
    "adetect",
    "detect",
    "get_detector",
    "letterbox",
    "load_names",
]

log = logging.getLogger("kvmrpa.vision.detect")

Layout = Literal["auto", "v5", "v8"]


class Letterbox:
    """How an image was fitted into the model input: ``ratio`` then ``pad`` (left, top)."""

    __slots__ = ("pad", "ratio", "shape")

    def __init__(self, ratio: float, pad: tuple[int, int], shape: tuple[int, int]) -> None:
        self.ratio = ratio
        self.pad = pad
        self.shape = shape  # (h, w) of the original image

    def to_image(self, xyxy: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` corner boxes from input pixels to original-image pixels (clipped)."""
        out = np.asarray(xyxy, dtype=np.float64).copy().reshape(-1, 4)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad[0]) / self.ratio
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad[1]) / self.ratio
        h, w = self.shape
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
        return out

    def __repr__(self) -> str:
        return f"Letterbox(ratio={self.ratio:g}, pad={self.pad}, shape={self.shape})"


def letterbox(image: np.ndarray, size: tuple[int, int], color: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` to fit ``size`` ``(w, h)`` keeping its aspect, pad the rest with
    ``color`` evenly on both sides (Ultralytics' rule), and say how."""
    h, w = image.shape[:2]
    tw, th = size
    r = min(tw / w, th / h)
    nw, nh = round(w * r), round(h * r)
    dw, dh = (tw - nw) / 2, (th - nh) / 2
    left, top = round(dw - 0.1), round(dh - 0.1)
    right, bottom = tw - nw - left, th - nh - top
    if (nw, nh) != (w, h):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                             value=(color, color, color))
    return out, Letterbox(r, (left, top), (h, w))


def _parse_names(raw: Any, origin: str) -> dict[int, str]:
    if isinstance(raw, str):
        text = raw.strip()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            try:
                raw = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raw = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if isinstance(raw, Mapping):
        if "names" in raw and not all(str(k).lstrip("-").isdigit() for k in raw):
            return _parse_names(raw["names"], origin)
        try:
            return {int(k): str(v) for k, v in raw.items()}
        except (TypeError, ValueError):
            raise VisionError(f"class names in {origin}: keys must be class ids") from None
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        return {i: str(v) for i, v in enumerate(raw)}
    raise VisionError(f"class names in {origin}: expected a list or a mapping, got {type(raw).__name__}")


def load_names(path: str | os.PathLike[str]) -> dict[int, str]:
    """Class names from a file: ``.txt`` (one per line), ``.json`` or ``.yaml``/``.yml``
    (a list, a ``{id: name}`` mapping, or either under a ``names`` key)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelNotFoundError(f"class names file {str(p)!r} is not on disk")
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    if suffix == ".json":
        return _parse_names(json.loads(text), str(p))
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # PyYAML, installed with rapidocr (through omegaconf)
        except ImportError:  # pragma: no cover - present wherever rapidocr is
            raise VisionError(f"class names file {str(p)!r}: reading YAML needs PyYAML") from None
        return _parse_names(yaml.safe_load(text), str(p))
    return {i: ln.strip() for i, ln in enumerate(t for t in text.splitlines() if t.strip())}


class YoloDetector:
    """A YOLO-family ONNX model ready to detect (the session is built once, here).

    ``names``: class names (list, ``{id: name}``, or a names file path); default from
    the model's ``names`` metadata, else the class id as text. ``layout``: ``"v5"``,
    ``"v8"`` (also v11) or ``"auto"`` (from the output shape and the class count).
    ``input_size`` ``(w, h)`` is needed only when the model's input is dynamic.
    onnxruntime sessions are safe to run from several threads at once.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        names: Sequence[str] | Mapping[int, str] | str | os.PathLike[str] | None = None,
        layout: Layout = "auto",
        input_size: tuple[int, int] | None = None,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        class_agnostic: bool = False,
        threads: int = 0,
    ) -> None:
        p = Path(model).expanduser()
        if not p.is_file():
            raise ModelNotFoundError(f"detection model {str(p)!r} is not on disk")
        if layout not in ("auto", "v5", "v8"):
            raise VisionError(f"detector {p.name}: layout must be auto, v5 or v8, got {layout!r}")
        for what, v in (("conf_threshold", conf_threshold), ("iou_threshold", iou_threshold)):
            if not 0.0 <= float(v) <= 1.0:
                raise VisionError(f"detector {p.name}: {what} must be within [0, 1], got {v!r}")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        threads = threads or get_settings().runtime.native_threads
        if threads:
            opts.intra_op_num_threads = int(threads)
        try:
            self._session = ort.InferenceSession(str(p), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise VisionError(f"detection model {str(p)!r} cannot be loaded: {exc}") from None
        self.path = str(p)
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self._input_dtype: type[np.floating[Any]] = (
            np.float16 if "float16" in inp.type else np.float32)
        shape = list(inp.shape)
        if input_size is not None:
            self.input_size = (int(input_size[0]), int(input_size[1]))
        elif len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
            self.input_size = (int(shape[3]), int(shape[2]))
        else:
            self.input_size = (640, 640)
        meta = self._session.get_modelmeta().custom_metadata_map or {}
        if names is None:
            self.names = _parse_names(meta["names"], f"{p.name} metadata") if "names" in meta else {}
        elif isinstance(names, str | os.PathLike):
            self.names = load_names(names)
        else:
            self.names = _parse_names(names, "names argument")
        self.layout = layout
        self.conf_threshold = float(conf_threshold)
        self.iou_threshold = float(iou_threshold)
        self.class_agnostic = bool(class_agnostic)

    # -- decoding -------------------------------------------------------------------------
    def _resolve_layout(self, out: np.ndarray) -> Literal["v5", "v8"]:
        if self.layout != "auto":
            return self.layout
        a, b = out.shape[1], out.shape[2]
        if a < 5 or b < 6:  # only one layout is possible at all
            return "v8" if b < 6 else "v5"
        c = len(self.names)
        if c:
            v8, v5 = a - 4 == c, b - 5 == c
            if v8 != v5:
                return "v8" if v8 else "v5"
        return "v8" if a < b else "v5"

    def decode(self, output: np.ndarray, box: Letterbox, *, conf: float | None = None,
               iou: float | None = None) -> Detections:
        """Turn the raw output ``[1, …]`` into detections in original-image pixels."""
        out = np.asarray(output, dtype=np.float32)
        if out.ndim == 2:
            out = out[None]
        if out.ndim != 3 or out.shape[0] != 1:
            raise VisionError(f"detector {Path(self.path).name}: unexpected output shape "
                              f"{list(out.shape)}; expected [1, N, 5+C] or [1, 4+C, N]")
        conf = self.conf_threshold if conf is None else conf
        iou = self.iou_threshold if iou is None else iou
        layout = self._resolve_layout(out)
        rows = out[0] if layout == "v5" else out[0].T
        need = 6 if layout == "v5" else 5
        if rows.shape[1] < need:
            raise VisionError(f"detector {Path(self.path).name}: output {list(out.shape)} too "
                              f"narrow for the {layout} layout")
        # v5: class score x objectness; v8/v11: class scores as they are.
        cls_scores = rows[:, 5:] * rows[:, 4:5] if layout == "v5" else rows[:, 4:]
        ids = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(rows)), ids]
        if scores.size and (float(scores.max()) > 1.0 + 1e-3 or float(scores.min()) < -1e-3):
            raise VisionError(
                f"detector {Path(self.path).name}: class scores outside 0..1 (max "
                f"{float(scores.max()):g}) with the {layout} layout; set layout= or export "
                "the model with its final sigmoid")
        keep = scores >= conf
        rows, ids, scores = rows[keep], ids[keep], scores[keep]
        if not len(rows):
            return Detections()
        cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        xyxy = box.to_image(xyxy)
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        order = nms(xywh, scores, iou, None if self.class_agnostic else ids)
        return Detections.from_xyxy(xyxy[order], scores[order], ids[order], self.names)

    # -- running --------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """Letterbox, BGR→RGB, scale to 0..1, NCHW."""
        boxed, lb = letterbox(image, self.input_size)
        blob = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(blob, dtype=self._input_dtype) / self._input_dtype(255), lb

    def detect(
        self,
        image: ImageLike,
        roi: tuple[int, int, int, int] | None = None,
        *,
        conf: float | None = None,
        iou: float | None = None,
        labels: Iterable[str] | None = None,
    ) -> Detections:
        """Detect objects in ``image`` (or its ``roi``); boxes in image pixels.
        ``labels`` keeps only those class names."""
        img = to_bgr(image)
        part, (x, y, _w, _h) = crop(img, roi)
        blob, lb = self.preprocess(part)
        try:
            outputs = self._session.run(None, {self._input_name: blob})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise VisionError(f"detector {Path(self.path).name} failed: {exc}") from None
        dets = self.decode(outputs[0], lb, conf=conf, iou=iou)
        if labels is not None:
            dets = dets.filter(label=list(labels))
        return dets.shifted(x, y)

    def __repr__(self) -> str:
        return (f"YoloDetector({Path(self.path).name!r}, input={self.input_size}, "
                f"classes={len(self.names)}, layout={self.layout})")


_detectors: dict[tuple[Any, ...], YoloDetector] = {}
_detectors_lock = threading.Lock()


def get_detector(model: str | os.PathLike[str], **options: Any) -> YoloDetector:
    """The process-wide detector for ``model`` and ``options`` (built once, shared)."""
    p = Path(model).expanduser()
    try:
        stamp = p.stat().st_mtime_ns
    except FileNotFoundError:
        raise ModelNotFoundError(f"detection model {str(p)!r} is not on disk") from None
    key = (str(p.resolve()), stamp, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _detectors_lock:
        det = _detectors.get(key)
        if det is None:
            det = YoloDetector(p, **options)
            _detectors[key] = det
        return det


def detect(
    image: ImageLike,
    model: str | os.PathLike[str] | YoloDetector,
    roi: tuple[int, int, int, int] | None = None,
    *,
    conf: float | None = None,
    iou: float | None = None,
    labels: Iterable[str] | None = None,
    **options: Any,
) -> Detections:
    """Detect with ``model`` (a path, built once per process, or a :class:`YoloDetector`).
    Blocking CPU work: from async code use :func:`adetect`."""
    det = model if isinstance(model, YoloDetector) else get_detector(model, **options)
    return det.detect(image, roi, conf=conf, iou=iou, labels=labels)


async def adetect(
    image: ImageLike,
    model: str | os.PathLike[str] | YoloDetector,
    roi: tuple[int, int, int, int] | None = None,
    **kwargs: Any,
) -> Detections:
    """:func:`detect` run in the runtime's worker pool."""
    return await get_runtime().to_thread(detect, image, model, roi, **kwargs)

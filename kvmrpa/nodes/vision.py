"""Vision nodes: ``ocr``, ``match_template``, ``detect``, ``vision_condition`` and
``wait_until``.

Results leave these nodes in **full source pixels** (``TextBoxes.to_source(frame)``):
whatever crop or resize ran upstream, a box can be clicked as it is. The frame the
node read is passed on unchanged under ``frame``. OCR, matching and detection run in
the runtime's worker pool, shared through :func:`kvmrpa.vision.shared_ocr` and its
siblings: every node, flow and view asking for the same frame, region, engine and
parameters gets one computation, and a region whose pixels did not change since it was
last recognised is not recognised again. Models and templates are checked when the flow
is validated, before any frame is read.

``vision_condition`` is the vision half of the original ``condition`` node (text found,
any text, match found, detection found); the engine's ``condition`` keeps the variable
and expression kinds. A text condition or a text ``mouse`` action with no ``ocr`` node
upstream reads the frame itself (``read_if_missing``), which is how the original
system's shared "last OCR result" behaved for flows that relied on it.

Importing this module also registers the source, image and action node types.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np
import param

from .._errors import FrameTimeoutError, KvmrpaError, NodeError, NodeTimeoutError
from .._frame import Frame
from .._limits import model_file_problem, text_file_problem
from ..vision import (
    MATCH_MODES,
    Detections,
    Matches,
    OcrEngine,
    TextBoxes,
    ashared_ocr,
    compile_text_matcher,
    get_detector,
    get_ocr_engine,
    load_template,
    shared_detect,
    shared_match_template,
    shared_ocr,
)
from ._registry import register_node
from .image import Crop, FrameNode, Preprocess, as_frame, frame_from_context

if TYPE_CHECKING:  # pragma: no cover
    from ._base import Inputs, NodeContext

__all__ = [
    "Crop",
    "Detect",
    "MatchTemplate",
    "Ocr",
    "Preprocess",
    "VisionCondition",
    "WaitUntil",
    "aread_texts",
    "find_texts",
    "read_texts",
    "text_problems",
]

_ROI_DOC = "Region (x, y, width, height) to search, in pixels of the incoming frame; empty for the whole frame."


def _roi(value: Any) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    x, y, w, h = (int(v) for v in value)
    return x, y, w, h


def _path_problem(path: str, what: str) -> str | None:
    if path and not Path(os.path.expanduser(path)).is_file():
        return f"{what} {path!r} is not on disk"
    return None


def find_texts(texts: TextBoxes, pattern: str, mode: str = "contains", *,
               max_distance: int | None = None, ignore_case: bool = False) -> TextBoxes:
    """The boxes of ``texts`` matching ``pattern`` (contains / exact / regex / fuzzy), in
    reading order (top to bottom, left to right)."""
    return texts.filter(pattern, mode, max_distance=max_distance,  # type: ignore[arg-type]
                        ignore_case=ignore_case).reading_order()


def text_problems(text: str, match_mode: str, max_distance: int | None,
                  needed_for: str) -> list[tuple[str, str]]:
    """``check`` problems of a text to look for: it is required (for ``needed_for``, as
    ``"kind 'text_found'"``) and must be a valid pattern for ``match_mode``."""
    if not text:
        return [("text", f"is required for {needed_for}")]
    try:
        compile_text_matcher(text, match_mode, max_distance=max_distance)  # type: ignore[arg-type]
    except KvmrpaError as exc:
        return [("text", str(exc))]
    return []


def read_texts(frame: Frame, engine: str | OcrEngine | None = None,
               min_confidence: float = 0.5) -> TextBoxes:
    """OCR of a whole frame, boxes in source pixels (blocking; shared with every other
    reader of this frame, see :func:`kvmrpa.vision.shared_ocr`)."""
    return shared_ocr(frame, engine=engine, min_confidence=min_confidence).to_source(frame)


async def aread_texts(frame: Frame, engine: str | OcrEngine | None = None,
                      min_confidence: float = 0.5) -> TextBoxes:
    """:func:`read_texts` for coroutines (a result already read or being read costs no
    pool thread)."""
    boxes = await ashared_ocr(frame, engine=engine, min_confidence=min_confidence)
    return boxes.to_source(frame)


# -- ocr ------------------------------------------------------------------------------------
@register_node
class Ocr(FrameNode):
    """Read the text of the frame (or of a region of it).

    Inputs: the nearest upstream ``frame`` (else the flow source's latest frame).
    Outputs: ``{"frame": the frame read, "texts": TextBoxes in source pixels,
    "text": all text in reading order, one line per box}``.
    """

    type_name: ClassVar[str] = "ocr"

    roi = param.NumericTuple(default=None, length=4, allow_None=True, doc=_ROI_DOC)
    engine: param.Selector[str] = param.Selector(default="default", objects=["default", "rapidocr", "tesseract"], doc="OCR engine; 'default' is the settings' vision.ocr_engine (RapidOCR unless changed).")
    rec_only = param.Boolean(default=False, doc="Treat the region as one line of text and skip detection (much faster for a known single-line field).")
    min_confidence = param.Number(default=0.5, bounds=(0.0, 1.0), doc="Drop lines read with a lower confidence.")
    use_cls = param.Boolean(default=False, doc="RapidOCR: also run the text orientation classifier (rarely needed on screens).", precedence=0.81)
    det_model = param.String(default="", doc="RapidOCR: detection model (.onnx) replacing the bundled one; empty for bundled.", precedence=0.82)
    rec_model = param.String(default="", doc="RapidOCR: recognition model (.onnx) replacing the bundled one; empty for bundled.", precedence=0.83)
    cls_model = param.String(default="", doc="RapidOCR: orientation classifier model (.onnx); empty for bundled.", precedence=0.84)
    rec_keys = param.String(default="", doc="RapidOCR: character dictionary of rec_model; empty for bundled.", precedence=0.85)

    _RAPID_ONLY: ClassVar[tuple[str, ...]] = ("use_cls", "det_model", "rec_model", "cls_model", "rec_keys")

    @param.depends("engine", watch=True, on_init=True)
    def _show_relevant(self) -> None:
        tesseract = self.engine == "tesseract" or (
            self.engine == "default" and _settings_engine() == "tesseract")
        self.show_params((name, not tesseract) for name in self._RAPID_ONLY)

    def _engine(self) -> OcrEngine:
        name = None if self.engine == "default" else self.engine
        if (name or _settings_engine()) == "rapidocr":
            opts: dict[str, Any] = {"use_cls": self.use_cls}
            for field, key in (("det_model", "det_model"), ("rec_model", "rec_model"),
                               ("cls_model", "cls_model"), ("rec_keys", "rec_keys")):
                if getattr(self, field):
                    opts[key] = os.path.expanduser(getattr(self, field))
            return get_ocr_engine("rapidocr", **opts)
        return get_ocr_engine(name)

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        for field in ("det_model", "rec_model", "cls_model", "rec_keys"):
            path, what = getattr(self, field), field.replace("_", " ")
            why = None if not path else (text_file_problem(path, what) if field == "rec_keys"
                                         else model_file_problem(path, what))
            if why is not None:
                out.append((field, why))
        if not out:
            try:
                self._engine()
            except KvmrpaError as exc:
                out.append(("engine", str(exc)))
        return out

    def process(self, frame: Frame) -> dict[str, Any]:
        boxes = shared_ocr(frame, _roi(self.roi), engine=self._engine(),
                           rec_only=self.rec_only, min_confidence=self.min_confidence)
        texts = boxes.to_source(frame)
        return {"frame": frame, "texts": texts, "text": texts.text}


def _settings_engine() -> str:
    from .._settings import get_settings

    return str(get_settings().vision.ocr_engine)


# -- match_template ---------------------------------------------------------------------------
@register_node
class MatchTemplate(FrameNode):
    """Find a template image in the frame (TM_CCOEFF_NORMED; grayscale unless ``color``).

    Inputs: the nearest upstream ``frame`` (else the flow source's latest frame).
    Outputs: ``{"frame": the frame searched, "matches": Matches in source pixels, best
    first}``. Templates saved with their capture resolution are rescaled to the
    current one.
    """

    type_name: ClassVar[str] = "match_template"
    required: ClassVar[tuple[str, ...]] = ("template",)

    template = param.String(default="", doc="Template image (PNG, with its metadata when saved by kvmrpa).")
    roi = param.NumericTuple(default=None, length=4, allow_None=True, doc=_ROI_DOC)
    threshold = param.Number(default=None, allow_None=True, bounds=(0.0, 1.0), doc="Lowest score accepted; empty uses the template's own or settings vision.match_threshold.")
    max_results = param.Integer(default=1, bounds=(1, 1000), doc="Most matches returned (non-overlapping, best first).")
    nms_iou = param.Number(default=0.3, bounds=(0.0, 1.0), doc="Matches overlapping more than this (IoU) are the same match.")
    color = param.Boolean(default=False, doc="Compare colours (slower) instead of grayscale.")
    scales = param.List(default=[], item_type=float, doc="Extra size factors to try, e.g. [0.9, 1.0, 1.1]; empty for 1.0 only.")
    coarse_to_fine = param.Boolean(default=True, doc="Search a downscaled image first, then refine (faster).")

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.template:
            try:
                load_template(os.path.expanduser(self.template))
            except KvmrpaError as exc:
                out.append(("template", str(exc)))
        if any(s <= 0 for s in self.scales):
            out.append(("scales", "every scale must be > 0"))
        return out

    def process(self, frame: Frame) -> dict[str, Any]:
        tpl = load_template(os.path.expanduser(self.template))
        found = shared_match_template(frame, tpl, _roi(self.roi), threshold=self.threshold,
                               max_results=self.max_results, nms_iou=self.nms_iou,
                               color=self.color, scales=self.scales or None,
                               coarse_to_fine=self.coarse_to_fine)
        return {"frame": frame, "matches": found.to_source(frame)}


# -- detect -----------------------------------------------------------------------------------
@register_node
class Detect(FrameNode):
    """Detect objects with a YOLO-family ONNX model (v5 or v8/v11 output layout).

    Inputs: the nearest upstream ``frame`` (else the flow source's latest frame).
    Outputs: ``{"frame": the frame searched, "detections": Detections in source
    pixels}``.
    """

    type_name: ClassVar[str] = "detect"
    required: ClassVar[tuple[str, ...]] = ("model",)

    model = param.String(default="", doc="YOLO ONNX model file.")
    names = param.String(default="", doc="Class names file (.txt one per line, .json, .yaml); empty uses the model's metadata.")
    conf_threshold = param.Number(default=0.25, bounds=(0.0, 1.0), doc="Lowest confidence kept.")
    iou_threshold = param.Number(default=0.45, bounds=(0.0, 1.0), doc="Boxes of one class overlapping more than this (IoU) are merged (NMS).")
    labels = param.List(default=[], item_type=str, doc="Keep only these class names; empty keeps all.")
    roi = param.NumericTuple(default=None, length=4, allow_None=True, doc=_ROI_DOC)

    def _detector(self) -> Any:
        opts: dict[str, Any] = {}
        if self.names:
            opts["names"] = os.path.expanduser(self.names)
        return get_detector(os.path.expanduser(self.model), **opts)

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if (why := _path_problem(self.names, "names file")) is not None:
            out.append(("names", why))
        if self.model and (why := model_file_problem(self.model, "model")) is not None:
            out.append(("model", why))
        if self.model and not out:
            try:
                self._detector()
            except KvmrpaError as exc:
                out.append(("model", str(exc)))
        return out

    def process(self, frame: Frame) -> dict[str, Any]:
        found = shared_detect(frame, self._detector(), _roi(self.roi), conf=self.conf_threshold,
                              iou=self.iou_threshold, labels=self.labels or None)
        return {"frame": frame, "detections": found.to_source(frame)}


# -- vision_condition -----------------------------------------------------------------------------
_TEXT_KINDS = ("text_found", "any_text")


@register_node
class VisionCondition(FrameNode):
    """Choose a branch from what vision found upstream: ``true`` or ``false``.

    Kinds: ``text_found`` (an OCR line matches ``text`` by contains / exact / regex /
    fuzzy), ``any_text`` (OCR read anything), ``match_found`` (a template match, of
    ``object_label`` when given), ``detection_found`` (a detection of ``object_label`` when given); at
    least ``min_count`` of them.
    Inputs: the nearest upstream ``texts`` / ``matches`` / ``detections``; for the text
    kinds with no OCR upstream, the frame is read here when ``read_if_missing``.
    Outputs: ``{"branch": "true"|"false", "result": bool, "count": n, "found": [items as
    dicts]}``.
    """

    type_name: ClassVar[str] = "vision_condition"
    branches: ClassVar[tuple[str, ...]] = ("true", "false")

    kind: param.Selector[str] = param.Selector(default="text_found", objects=["text_found", "any_text", "match_found", "detection_found"], doc="What must have been found.")
    text = param.String(default="", doc="Text to look for (kind text_found).", precedence=0.11)
    match_mode: param.Selector[str] = param.Selector(default="contains", objects=list(MATCH_MODES), doc="How text is compared: contains, exact, regex or fuzzy (edit distance).", precedence=0.12)
    max_distance = param.Integer(default=None, allow_None=True, bounds=(0, 100), doc="Fuzzy: most edits allowed; empty allows one per four characters.", precedence=0.13)
    ignore_case = param.Boolean(default=False, doc="Compare text ignoring case.", precedence=0.14)
    object_label = param.String(default="", doc="Template or class label required (kinds match_found / detection_found); empty accepts any.", precedence=0.15)
    min_count = param.Integer(default=1, bounds=(1, 10000), doc="How many must be found for 'true'.")
    read_if_missing = param.Boolean(default=True, doc="Text kinds: when no OCR node runs upstream, read the frame here (default engine).", precedence=0.16)

    @param.depends("kind", "match_mode", watch=True, on_init=True)
    def _show_relevant(self) -> None:
        text = self.kind in _TEXT_KINDS
        self.show_params((("text", self.kind == "text_found"),
                          ("match_mode", self.kind == "text_found"),
                          ("max_distance", self.kind == "text_found" and self.match_mode == "fuzzy"),
                          ("ignore_case", self.kind == "text_found"),
                          ("object_label", not text), ("read_if_missing", text)))

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.kind == "text_found":
            out += text_problems(self.text, self.match_mode, self.max_distance, "kind 'text_found'")
        return out

    def evaluate(self, texts: TextBoxes | None = None, matches: Matches | None = None,
                 detections: Detections | None = None) -> dict[str, Any]:
        """The outputs for the given results (blocking only in that it is CPU work)."""
        found: Any
        if self.kind == "text_found":
            found = find_texts(texts or TextBoxes(), self.text, self.match_mode,
                               max_distance=self.max_distance, ignore_case=self.ignore_case)
        elif self.kind == "any_text":
            found = (texts or TextBoxes()).where(lambda b: bool(b.text.strip()))
        elif self.kind == "match_found":
            found = (matches or Matches()).filter(label=self.object_label or None)
        else:
            found = (detections or Detections()).filter(label=self.object_label or None)
        result = len(found) >= self.min_count
        return {"branch": "true" if result else "false", "result": result,
                "count": len(found), "found": found.as_dicts()}

    def process(self, frame: Frame) -> dict[str, Any]:
        """On a frame alone (``try_on``): text kinds read it; the others find nothing."""
        texts = read_texts(frame) if self.kind in _TEXT_KINDS else None
        return self.evaluate(texts=texts)

    def try_on(self, frame: Frame | np.ndarray | None = None, *,
               texts: TextBoxes | None = None, matches: Matches | None = None,
               detections: Detections | None = None) -> dict[str, Any]:
        """Evaluate outside a flow, on given results (or on ``frame``, read by OCR)."""
        if texts is None and frame is not None and self.kind in _TEXT_KINDS:
            texts = read_texts(as_frame(frame))
        return self.evaluate(texts=texts, matches=matches, detections=detections)

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        texts, matches, detections = inputs.texts(), inputs.matches(), inputs.detections()
        if self.kind in _TEXT_KINDS and texts is None:
            if not self.read_if_missing:
                raise NodeError("no ocr node upstream produced texts (connect one, or turn "
                                "read_if_missing on)", node_id=ctx.node_id, flow=ctx.flow_name,
                                field="kind")
            frame = await frame_from_context(inputs, ctx)
            texts = await aread_texts(frame)
            ctx.observe(frame, texts=texts)  # what it read, for the run's report
        elif self.kind == "match_found" and matches is None:
            raise NodeError("no match_template node upstream produced matches",
                            node_id=ctx.node_id, flow=ctx.flow_name, field="kind")
        elif self.kind == "detection_found" and detections is None:
            raise NodeError("no detect node upstream produced detections",
                            node_id=ctx.node_id, flow=ctx.flow_name, field="kind")
        return self.evaluate(texts, matches, detections)


# -- wait_until ---------------------------------------------------------------------------------
@register_node
class WaitUntil(FrameNode):
    """Wait until a text or an image appears or disappears, or the screen is stable.

    Polls fresh frames of the flow's source (or ``source_url``), each newer than the
    last one checked, for at most ``wait_timeout`` seconds; then fails, naming itself.
    Only frames captured after the node started count (like SikuliX's ``wait`` /
    ``waitVanish``): the newest frame at that moment may predate the click or the typing
    the flow just did, so it can neither satisfy the wait nor start the "screen stable"
    period.
    Inputs: none needed. Outputs: ``{"frame": the frame that satisfied the wait,
    "waited_s": seconds}`` plus ``"texts"`` (kinds text_*) or ``"matches"`` (kinds
    image_*) found in that frame, in source pixels.
    """

    type_name: ClassVar[str] = "wait_until"
    category: ClassVar[str] = "vision"

    kind: param.Selector[str] = param.Selector(default="text_appears", objects=["text_appears", "text_disappears", "image_appears", "image_disappears", "screen_stable"], doc="What to wait for.")
    text = param.String(default="", doc="Text to wait for (kinds text_*).", precedence=0.11)
    match_mode: param.Selector[str] = param.Selector(default="contains", objects=list(MATCH_MODES), doc="How text is compared (kinds text_*).", precedence=0.12)
    max_distance = param.Integer(default=None, allow_None=True, bounds=(0, 100), doc="Fuzzy: most edits allowed.", precedence=0.13)
    template = param.String(default="", doc="Template image (kinds image_*).", precedence=0.14)
    threshold = param.Number(default=None, allow_None=True, bounds=(0.0, 1.0), doc="Lowest match score (kinds image_*); empty for the template's or the settings' default.", precedence=0.15)
    roi = param.NumericTuple(default=None, length=4, allow_None=True, doc="Region (x, y, width, height) of the source frame to watch; empty for all of it.")
    stable_seconds = param.Number(default=1.0, bounds=(0.0, 3600.0), doc="Screen stable: how long nothing may change.", precedence=0.16)
    stable_tolerance = param.Number(default=2.0, bounds=(0.0, 255.0), doc="Screen stable: mean absolute pixel difference still counted as 'no change'.", precedence=0.17)
    wait_timeout = param.Number(default=10.0, bounds=(0.0, 86400.0), inclusive_bounds=(False, True), doc="Seconds to wait before failing.")
    poll_interval = param.Number(default=0.2, bounds=(0.0, 60.0), doc="Least seconds between two checks (OCR is expensive).")
    source_url = param.String(default="", doc="Source to watch; empty for the flow's source.")

    @param.depends("kind", "match_mode", watch=True, on_init=True)
    def _show_relevant(self) -> None:
        text = self.kind.startswith("text")
        image = self.kind.startswith("image")
        stable = self.kind == "screen_stable"
        self.show_params((("text", text), ("match_mode", text),
                          ("max_distance", text and self.match_mode == "fuzzy"),
                          ("template", image), ("threshold", image),
                          ("stable_seconds", stable), ("stable_tolerance", stable)))

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.kind.startswith("text"):
            out += text_problems(self.text, self.match_mode, self.max_distance, f"kind {self.kind!r}")
        elif self.kind.startswith("image"):
            if not self.template:
                out.append(("template", f"is required for kind {self.kind!r}"))
            else:
                try:
                    load_template(os.path.expanduser(self.template))
                except KvmrpaError as exc:
                    out.append(("template", str(exc)))
        return out

    def _look(self, frame: Frame) -> tuple[bool, dict[str, Any]]:
        """Whether the appear/disappear condition holds on ``frame`` (blocking)."""
        roi = _roi(self.roi)
        if self.kind.startswith("text"):
            return self._judge(shared_ocr(frame, roi, min_confidence=0.5).to_source(frame))
        tpl = load_template(os.path.expanduser(self.template))
        matches = shared_match_template(frame, tpl, roi, threshold=self.threshold).to_source(frame)
        present = len(matches) > 0
        return present == (self.kind == "image_appears"), {"matches": matches}

    def _judge(self, texts: TextBoxes) -> tuple[bool, dict[str, Any]]:
        found = find_texts(texts, self.text, self.match_mode, max_distance=self.max_distance)
        present = len(found) > 0
        return present == (self.kind == "text_appears"), {"texts": texts}

    async def _alook(self, frame: Frame, runtime: Any) -> tuple[bool, dict[str, Any]]:
        """:meth:`_look` from the loop: the text read is shared (a frame another watcher
        already read, or whose region did not change, costs no OCR and no pool thread);
        a user regex, fuzzy matching and template matching run in the pool."""
        if not self.kind.startswith("text"):
            return await runtime.to_thread(self._look, frame)
        boxes = await ashared_ocr(frame, _roi(self.roi), min_confidence=0.5)
        texts = boxes.to_source(frame)
        if self.match_mode not in ("contains", "exact"):
            return await runtime.to_thread(self._judge, texts)
        return self._judge(texts)

    def _small(self, frame: Frame) -> np.ndarray:
        img = frame.image
        if self.roi is not None:
            x, y, w, h = _roi(self.roi)  # type: ignore[misc]
            img = img[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]
            if img.size == 0:
                raise ValueError(f"roi {self.roi} lies outside the {frame.width}x{frame.height} frame")
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        f = min(1.0, 320 / max(gray.shape))
        if f < 1.0:
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        return gray.astype(np.int16)

    def process(self, frame: Frame) -> dict[str, Any]:
        """On one frame (``try_on``): whether the condition already holds there."""
        if self.kind == "screen_stable":
            raise ValueError("wait_until screen_stable needs a stream of frames, not one frame")
        ok, extra = self._look(frame)
        return {"frame": frame, "result": ok, **extra}

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        entered = time.monotonic()  # frames captured before this are not evidence
        src = await ctx.source(self.source_url or None)
        start = time.monotonic()
        deadline = start + self.wait_timeout
        after: int | None = None
        stable_since: float | None = None
        ref: np.ndarray | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                frame = await src.next_frame(after, remaining)
            except FrameTimeoutError:
                break
            after = frame.seq
            if frame.captured < entered:
                continue  # it may show the screen before the preceding action: not evidence
            checked = time.monotonic()
            try:
                if self.kind == "screen_stable":
                    small = await ctx.runtime.to_thread(self._small, frame)
                    if ref is None or ref.shape != small.shape or \
                            float(np.abs(small - ref).mean()) > self.stable_tolerance:
                        ref, stable_since = small, frame.captured
                    elif frame.captured - (stable_since or frame.captured) >= self.stable_seconds:
                        return {"frame": frame, "waited_s": round(time.monotonic() - start, 3)}
                    continue
                ok, extra = await self._alook(frame, ctx.runtime)
                ctx.observe(frame, **extra)  # what it saw, for the run's report
            except (KvmrpaError, ValueError) as exc:
                raise NodeError(str(exc), node_id=ctx.node_id, flow=ctx.flow_name,
                                cause=exc) from exc
            if ok:
                return {"frame": frame, "waited_s": round(time.monotonic() - start, 3), **extra}
            pause = self.poll_interval - (time.monotonic() - checked)
            if pause > 0:
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        what = {"text_appears": f"text {self.text!r} did not appear",
                "text_disappears": f"text {self.text!r} did not disappear",
                "image_appears": f"image {self.template!r} did not appear",
                "image_disappears": f"image {self.template!r} did not disappear",
                "screen_stable": f"the screen was not stable for {self.stable_seconds:g} s"}[self.kind]
        raise NodeTimeoutError(f"wait_until: {what} within {self.wait_timeout:g} s",
                               node_id=ctx.node_id, flow=ctx.flow_name, field="wait_timeout")



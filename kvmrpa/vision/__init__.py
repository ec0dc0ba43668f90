"""kvmrpa.vision: seeing the target's screen.

Owns the typed results (:class:`TextBox`/:class:`TextBoxes` from OCR,
:class:`Match`/:class:`Matches` from template matching,
:class:`Detection`/:class:`Detections` from an object detector), the engines that
produce them — :func:`ocr` (RapidOCR by default, Tesseract as an alternative),
:func:`match_template` with :class:`Template`, :func:`detect` with YOLO ONNX models —
text matching helpers, and :func:`annotate`, the one function that draws any of them.

Every function takes a :class:`~kvmrpa.Frame` or a BGR array and returns boxes in that
image's pixels; ``results.to_source(frame)`` maps them to full source pixels. Each
blocking function has an ``a``-prefixed async twin that runs it in the runtime's pool.
"""

from __future__ import annotations

from ._annotate import annotate, find_cjk_font
from ._detect import Letterbox, YoloDetector, adetect, detect, get_detector, letterbox, load_names
from ._geometry import iou, nms
from ._match import amatch_template, match_template
from ._ocr import OCR_ENGINES, OcrEngine, RapidOcrEngine, TesseractEngine, aocr, get_ocr_engine, ocr
from ._results import Detection, Detections, Match, Matches, TextBox, TextBoxes
from ._template import Template, load_template
from ._text import (
    MATCH_MODES,
    MatchMode,
    compile_text_matcher,
    edit_distance,
    normalize_text,
    substring_distance,
    text_matches,
)

__all__ = [
    "MATCH_MODES",
    "OCR_ENGINES",
    "Detection",
    "Detections",
    "Letterbox",
    "Match",
    "MatchMode",
    "Matches",
    "OcrEngine",
    "RapidOcrEngine",
    "Template",
    "TesseractEngine",
    "TextBox",
    "TextBoxes",
    "YoloDetector",
    "adetect",
    "amatch_template",
    "annotate",
    "aocr",
    "compile_text_matcher",
    "detect",
    "edit_distance",
    "find_cjk_font",
    "get_detector",
    "get_ocr_engine",
    "iou",
    "letterbox",
    "load_names",
    "load_template",
    "match_template",
    "nms",
    "normalize_text",
    "ocr",
    "substring_distance",
    "text_matches",
]

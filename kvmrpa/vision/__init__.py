"""kvmrpa.vision: seeing the target's screen.

Owns the typed results (:class:`TextBox`/:class:`TextBoxes` from OCR,
:class:`Match`/:class:`Matches` from template matching,
:class:`Detection`/:class:`Detections` from an object detector), the engines that
produce them — :func:`ocr` (RapidOCR by default, Tesseract as an alternative),
:func:`match_template` with :class:`Template`, :func:`detect` with YOLO ONNX models —
text matching helpers, and :func:`annotate`, the one function that draws any of them.
The ``shared_*`` functions (:mod:`._cache`) compute each result once per frame, region,
engine and parameters for every caller, and reuse a region's last result while its
pixels have not changed (:func:`region_signature`).

Every function takes a :class:`~kvmrpa.Frame` or a BGR array and returns boxes in that
image's pixels; ``results.to_source(frame)`` maps them to full source pixels. Each
blocking function has an ``a``-prefixed async twin that runs it in the runtime's pool.
"""

from __future__ import annotations

from ._annotate import annotate, find_cjk_font
from ._cache import (
    RecognitionCache,
    ashared_detect,
    ashared_match_template,
    ashared_ocr,
    get_recognition_cache,
    shared_detect,
    shared_match_template,
    shared_ocr,
)
from ._change import Signature, changed_boxes, region_signature
from ._detect import YoloDetector, adetect, detect, get_detector
from ._match import amatch_template, match_template
from ._ocr import OcrEngine, aocr, get_ocr_engine, ocr
from ._results import Detection, Detections, Match, Matches, TextBox, TextBoxes
from ._template import Template, load_template
from ._text import MATCH_MODES, MatchMode, compile_text_matcher, text_matches

__all__ = [
    "MATCH_MODES",
    "Detection",
    "Detections",
    "Match",
    "MatchMode",
    "Matches",
    "OcrEngine",
    "RecognitionCache",
    "Signature",
    "Template",
    "TextBox",
    "TextBoxes",
    "YoloDetector",
    "adetect",
    "amatch_template",
    "annotate",
    "aocr",
    "ashared_detect",
    "ashared_match_template",
    "ashared_ocr",
    "changed_boxes",
    "compile_text_matcher",
    "detect",
    "find_cjk_font",
    "get_detector",
    "get_ocr_engine",
    "get_recognition_cache",
    "load_template",
    "match_template",
    "ocr",
    "region_signature",
    "shared_detect",
    "shared_match_template",
    "shared_ocr",
    "text_matches",
]

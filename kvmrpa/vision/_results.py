"""Vision results as validated, immutable values, and list containers over them.

``TextBox`` (OCR), ``Match`` (template matching) and ``Detection`` (object detector)
each carry a ``bbox`` ``(x, y, w, h)`` in integer pixels of the image they were computed
on, and a derived ``centre``. ``TextBoxes``, ``Matches`` and ``Detections`` are
read-only sequences with filtering, ``best()``, ``from_*`` constructors for outside data
(RapidOCR output, Tesseract TSV, an OpenCV score map, arrays of boxes), ``to_source``
(map through a :class:`~kvmrpa.Frame`'s ``offset``/``scale`` to full source pixels) and
``as_dicts()`` for JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

import numpy as np

from .._frame import Frame
from ._geometry import Box, as_box, nms, peaks, round_box
from ._text import MatchMode, compile_text_matcher

__all__ = [
    "Detection",
    "Detections",
    "Match",
    "Matches",
    "TextBox",
    "TextBoxes",
]

Point = tuple[int, int]
_EPS = 1e-3


def _unit(value: object, what: str, lo: float = 0.0, hi: float = 1.0) -> float:
    """A finite float in ``[lo, hi]``; values a rounding error outside are clamped."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < lo - _EPS or v > hi + _EPS:
        raise ValueError(f"{what} must be within [{lo:g}, {hi:g}], got {value!r}")
    return min(hi, max(lo, v))


def _point(value: object, what: str) -> Point:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{what} must be (x, y), got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise ValueError(f"{what} must be two integers, got {value!r}")
    return int(value[0]), int(value[1])


def _centre(bbox: Box) -> Point:
    return bbox[0] + bbox[2] // 2, bbox[1] + bbox[3] // 2


def _map_box(bbox: Box, offset: tuple[float, float], scale: float) -> Box:
    x, y, w, h = bbox
    return round_box(offset[0] + x / scale, offset[1] + y / scale, w / scale, h / scale)


def _map_point(p: Point, offset: tuple[float, float], scale: float) -> Point:
    return round(offset[0] + p[0] / scale), round(offset[1] + p[1] / scale)


def _rect_polygon(bbox: Box) -> tuple[Point, ...]:
    x, y, w, h = bbox
    return (x, y), (x + w, y), (x + w, y + h), (x, y + h)


# -- single results ----------------------------------------------------------------------
@dataclass(frozen=True)
class TextBox:
    """One line of text read by OCR.

    ``polygon`` is the detector's quadrilateral (clockwise from top-left) in the same
    pixels as ``bbox``; when not given it is the rectangle of ``bbox``.
    """

    text: str
    confidence: float
    bbox: Box
    polygon: tuple[Point, ...] = ()

    kind: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValueError(f"TextBox.text must be a string, got {self.text!r}")
        object.__setattr__(self, "confidence", _unit(self.confidence, "TextBox.confidence"))
        bbox = as_box(self.bbox, "TextBox.bbox")
        object.__setattr__(self, "bbox", bbox)
        poly = self.polygon
        if isinstance(poly, np.ndarray):
            poly = poly.tolist()
        pts = tuple(_point(p, "TextBox.polygon point") for p in poly) if len(poly) else ()
        if pts and len(pts) < 3:
            raise ValueError(f"TextBox.polygon needs at least 3 points, got {len(pts)}")
        object.__setattr__(self, "polygon", pts or _rect_polygon(bbox))

    @property
    def centre(self) -> Point:
        """Centre of ``bbox`` in integer pixels."""
        return _centre(self.bbox)

    @property
    def score(self) -> float:
        """The value ``best()`` ranks by (the confidence)."""
        return self.confidence

    @property
    def label(self) -> str:
        """The caption an overlay shows (the text)."""
        return self.text

    def _mapped(self, offset: tuple[float, float], scale: float) -> TextBox:
        return TextBox(self.text, self.confidence, _map_box(self.bbox, offset, scale),
                       tuple(_map_point(p, offset, scale) for p in self.polygon))

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(self.confidence, 6),
                "bbox": list(self.bbox), "polygon": [list(p) for p in self.polygon],
                "centre": list(self.centre)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextBox:
        return cls(str(data["text"]), data["confidence"], tuple(data["bbox"]),
                   tuple(tuple(p) for p in data.get("polygon") or ()))


@dataclass(frozen=True)
class Match:
    """One place where a template was found.

    ``score`` is the TM_CCOEFF_NORMED value (-1..1); ``scale`` is the size of the match
    relative to the template's own pixels (capture-resolution rescale times any
    multi-scale factor). ``click_offset``, when the template defines one, is the point
    to act on relative to the top-left of ``bbox``; :attr:`target` applies it.
    """

    bbox: Box
    score: float
    scale: float = 1.0
    label: str = ""
    click_offset: Point | None = None

    kind: ClassVar[str] = "match"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bbox", as_box(self.bbox, "Match.bbox"))
        object.__setattr__(self, "score", _unit(self.score, "Match.score", -1.0, 1.0))
        if isinstance(self.scale, bool) or not isinstance(self.scale, Real) \
                or not math.isfinite(float(self.scale)) or float(self.scale) <= 0:
            raise ValueError(f"Match.scale must be a number > 0, got {self.scale!r}")
        object.__setattr__(self, "scale", float(self.scale))
        if not isinstance(self.label, str):
            raise ValueError(f"Match.label must be a string, got {self.label!r}")
        if self.click_offset is not None:
            object.__setattr__(self, "click_offset", _point(self.click_offset, "Match.click_offset"))

    @property
    def centre(self) -> Point:
        return _centre(self.bbox)

    @property
    def confidence(self) -> float:
        """The score clamped to 0..1 (for code that treats all results alike)."""
        return max(0.0, self.score)

    @property
    def target(self) -> Point:
        """The point to act on: ``bbox`` origin + ``click_offset``, else the centre."""
        if self.click_offset is None:
            return self.centre
        return self.bbox[0] + self.click_offset[0], self.bbox[1] + self.click_offset[1]

    def _mapped(self, offset: tuple[float, float], scale: float) -> Match:
        click = None if self.click_offset is None else (
            round(self.click_offset[0] / scale), round(self.click_offset[1] / scale))
        return Match(_map_box(self.bbox, offset, scale), self.score, self.scale / scale,
                     self.label, click)

    def as_dict(self) -> dict[str, Any]:
        return {"bbox": list(self.bbox), "score": round(self.score, 6),
                "scale": round(self.scale, 6), "label": self.label,
                "click_offset": None if self.click_offset is None else list(self.click_offset),
                "centre": list(self.centre), "target": list(self.target)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Match:
        click = data.get("click_offset")
        return cls(tuple(data["bbox"]), data["score"], data.get("scale", 1.0),
                   str(data.get("label", "")), None if click is None else tuple(click))


@dataclass(frozen=True)
class Detection:
    """One object found by a detector: class ``label`` (name) and ``class_id``."""

    label: str
    class_id: int
    confidence: float
    bbox: Box

    kind: ClassVar[str] = "detection"

    def __post_init__(self) -> None:
        if not isinstance(self.label, str):
            raise ValueError(f"Detection.label must be a string, got {self.label!r}")
        if isinstance(self.class_id, bool) or not isinstance(self.class_id, Integral) \
                or self.class_id < 0:
            raise ValueError(f"Detection.class_id must be an integer >= 0, got {self.class_id!r}")
        object.__setattr__(self, "class_id", int(self.class_id))
        object.__setattr__(self, "confidence", _unit(self.confidence, "Detection.confidence"))
        object.__setattr__(self, "bbox", as_box(self.bbox, "Detection.bbox"))

    @property
    def centre(self) -> Point:
        return _centre(self.bbox)

    @property
    def score(self) -> float:
        return self.confidence

    def _mapped(self, offset: tuple[float, float], scale: float) -> Detection:
        return Detection(self.label, self.class_id, self.confidence,
                         _map_box(self.bbox, offset, scale))

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "class_id": self.class_id,
                "confidence": round(self.confidence, 6), "bbox": list(self.bbox),
                "centre": list(self.centre)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Detection:
        return cls(str(data["label"]), int(data["class_id"]), data["confidence"],
                   tuple(data["bbox"]))


# -- containers --------------------------------------------------------------------------
T = TypeVar("T", TextBox, Match, Detection)


@dataclass(frozen=True, eq=True, repr=False)
class _Results(Sequence[T], Generic[T]):
    items: tuple[T, ...] = field(default=())

    item_type: ClassVar[type[Any]]  # TextBox, Match or Detection: the T of the subclass

    def __init__(self, items: Iterable[T] = ()) -> None:
        items = tuple(items)
        for i, it in enumerate(items):
            if not isinstance(it, self.item_type):
                raise TypeError(f"{type(self).__name__}[{i}] must be a "
                                f"{self.item_type.__name__}, got {type(it).__name__}")
        object.__setattr__(self, "items", items)

    # sequence protocol
    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Self: ...
    def __getitem__(self, index: int | slice) -> T | Self:
        if isinstance(index, slice):
            return type(self)(self.items[index])
        return self.items[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __add__(self, other: Iterable[T]) -> Self:
        return type(self)(self.items + tuple(other))

    def __repr__(self) -> str:
        inner = ", ".join(repr(i) for i in self.items[:5])
        more = f", … {len(self.items) - 5} more" if len(self.items) > 5 else ""
        return f"{type(self).__name__}([{inner}{more}])"

    # selection
    def where(self, predicate: Callable[[T], bool]) -> Self:
        """The items for which ``predicate(item)`` is true."""
        return type(self)(i for i in self.items if predicate(i))

    def _common_filter(self, min_score: float | None, region: Sequence[int] | None,
                       where: Callable[[T], bool] | None) -> list[T]:
        out = list(self.items)
        if min_score is not None:
            out = [i for i in out if i.score >= min_score]
        if region is not None:
            rx, ry, rw, rh = as_box(tuple(region), "region")
            out = [i for i in out
                   if rx <= i.centre[0] < rx + rw and ry <= i.centre[1] < ry + rh]
        if where is not None:
            out = [i for i in out if where(i)]
        return out

    def best(self) -> T | None:
        """The item with the highest score (confidence), or None when empty."""
        if not self.items:
            return None
        return max(self.items, key=lambda i: i.score)

    def sorted(self, key: Callable[[T], Any] | None = None, reverse: bool | None = None) -> Self:
        """Sorted by ``key``; by default best score first."""
        if key is None:
            return type(self)(sorted(self.items, key=lambda i: -i.score))
        return type(self)(sorted(self.items, key=key, reverse=bool(reverse)))

    def to_source(self, frame: Frame) -> Self:
        """Map every box from ``frame``'s pixels to the full source frame's pixels."""
        if not isinstance(frame, Frame):
            raise TypeError(f"to_source needs a Frame, got {type(frame).__name__}")
        return self._mapped(frame.offset, frame.scale)

    def from_source(self, frame: Frame) -> Self:
        """Map every box from the full source frame's pixels into ``frame``'s pixels
        (:meth:`to_source` inverted, through :meth:`Frame.from_source`'s mapping)."""
        if not isinstance(frame, Frame):
            raise TypeError(f"from_source needs a Frame, got {type(frame).__name__}")
        ox, oy = frame.from_source(0, 0)
        return self._mapped((ox, oy), 1.0 / frame.scale)

    def _mapped(self, offset: tuple[float, float], scale: float) -> Self:
        if offset == (0, 0) and scale == 1.0:
            return self
        return type(self)(i._mapped(offset, scale) for i in self.items)

    def shifted(self, dx: int, dy: int) -> Self:
        """Every box moved by ``(dx, dy)`` pixels (for example from an ROI to its image)."""
        return self._mapped((dx, dy), 1.0)

    @property
    def bboxes(self) -> list[Box]:
        return [i.bbox for i in self.items]

    def as_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready list of plain dicts."""
        return [i.as_dict() for i in self.items]

    @classmethod
    def from_dicts(cls, data: Iterable[Mapping[str, Any]]) -> Self:
        """Inverse of :meth:`as_dicts`."""
        return cls(cls.item_type.from_dict(d) for d in data)


class TextBoxes(_Results[TextBox]):
    """OCR results: a read-only sequence of :class:`TextBox`."""

    item_type = TextBox

    @property
    def texts(self) -> list[str]:
        return [b.text for b in self.items]

    def filter(
        self,
        text: str | None = None,
        mode: MatchMode = "contains",
        *,
        max_distance: int | None = None,
        ignore_case: bool = False,
        min_confidence: float | None = None,
        region: Sequence[int] | None = None,
        where: Callable[[TextBox], bool] | None = None,
    ) -> TextBoxes:
        """Boxes whose text matches ``text`` under ``mode`` (contains / exact / regex / fuzzy),
        with at least ``min_confidence``, whose centre lies in ``region`` ``(x, y, w, h)``."""
        out = self._common_filter(min_confidence, region, where)
        if text is not None:
            match = compile_text_matcher(text, mode, max_distance=max_distance,
                                         ignore_case=ignore_case)
            out = [b for b in out if match(b.text)]
        return TextBoxes(out)

    def reading_order(self, line_tolerance: float = 0.5) -> TextBoxes:
        """Sorted top to bottom, then left to right within a line (boxes whose vertical
        centres differ by less than ``line_tolerance`` x their height share a line)."""
        rest = sorted(self.items, key=lambda b: (b.centre[1], b.bbox[0]))
        lines: list[list[TextBox]] = []
        for b in rest:
            if lines:
                ref = lines[-1][0]
                if abs(b.centre[1] - ref.centre[1]) < line_tolerance * max(1, ref.bbox[3]):
                    lines[-1].append(b)
                    continue
            lines.append([b])
        return TextBoxes(b for line in lines for b in sorted(line, key=lambda b: b.bbox[0]))

    @property
    def text(self) -> str:
        """All text in reading order, one line per box."""
        return "\n".join(self.reading_order().texts)

    @classmethod
    def from_rapidocr(cls, output: Any, *, min_confidence: float = 0.0,
                      offset: tuple[int, int] = (0, 0)) -> TextBoxes:
        """From RapidOCR output: a 3.x ``RapidOCROutput`` (``boxes``/``txts``/``scores``) or
        the 1.x list ``[[polygon, text, score], ...]``. ``offset`` is added to every
        point (the origin of the ROI the OCR ran on)."""
        if output is None:
            return cls()
        if isinstance(output, list | tuple):
            rows = [(r[0], r[1], r[2]) for r in output]
        else:
            boxes = getattr(output, "boxes", None)
            txts = getattr(output, "txts", None)
            scores = getattr(output, "scores", None)
            if boxes is None or txts is None or scores is None:
                return cls()
            rows = list(zip(boxes, txts, scores, strict=True))
        out: list[TextBox] = []
        ox, oy = offset
        for poly, text, score in rows:
            pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            if not str(text).strip() or float(score) < min_confidence or len(pts) < 3:
                continue
            ipts = tuple((round(px) + ox, round(py) + oy) for px, py in pts)
            x1, y1 = np.floor(pts.min(axis=0)).astype(int)
            x2, y2 = np.ceil(pts.max(axis=0)).astype(int)
            bbox = (int(x1) + ox, int(y1) + oy, int(x2 - x1), int(y2 - y1))
            out.append(TextBox(str(text), float(score), bbox, ipts))
        return cls(out)

    @classmethod
    def from_tesseract_tsv(cls, tsv: str, *, min_confidence: float = 0.0,
                           offset: tuple[int, int] = (0, 0), scale: float = 1.0) -> TextBoxes:
        """From ``tesseract … tsv`` output: words grouped into lines (block, paragraph,
        line); confidence is the mean word confidence / 100. Boxes are divided by
        ``scale`` (when the image was enlarged before OCR) and shifted by ``offset``."""
        lines: dict[tuple[str, str, str, str], list[tuple[str, float, Box]]] = {}
        for row in tsv.splitlines()[1:]:
            cols = row.split("\t")
            if len(cols) < 12 or cols[0] != "5":
                continue
            word = cols[11].strip()
            conf = float(cols[10])
            if not word or conf < 0:
                continue
            box = (int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]))
            lines.setdefault((cols[1], cols[2], cols[3], cols[4]), []).append((word, conf, box))
        out: list[TextBox] = []
        for words in lines.values():
            words.sort(key=lambda w: w[2][0])
            text = _join_words([w[0] for w in words])
            conf = sum(w[1] for w in words) / len(words) / 100.0
            if conf < min_confidence:
                continue
            x1 = min(w[2][0] for w in words)
            y1 = min(w[2][1] for w in words)
            x2 = max(w[2][0] + w[2][2] for w in words)
            y2 = max(w[2][1] + w[2][3] for w in words)
            bbox = round_box(offset[0] + x1 / scale, offset[1] + y1 / scale,
                             (x2 - x1) / scale, (y2 - y1) / scale)
            out.append(TextBox(text, conf, bbox))
        return cls(out)


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x2E80 <= o <= 0x9FFF) or (0xF900 <= o <= 0xFAFF) or (0xFF00 <= o <= 0xFFEF) \
        or (0x3000 <= o <= 0x303F) or (0x20000 <= o <= 0x2FA1F)


def _join_words(words: list[str]) -> str:
    """Join OCR words with spaces, except between two CJK characters."""
    out = ""
    for w in words:
        if out and not (_is_cjk(out[-1]) and _is_cjk(w[0])):
            out += " "
        out += w
    return out


class Matches(_Results[Match]):
    """Template matching results: a read-only sequence of :class:`Match`."""

    item_type = Match

    def filter(
        self,
        min_score: float | None = None,
        *,
        label: str | None = None,
        region: Sequence[int] | None = None,
        where: Callable[[Match], bool] | None = None,
    ) -> Matches:
        """Matches with ``score >= min_score``, of template ``label``, centred in ``region``."""
        out = self._common_filter(min_score, region, where)
        if label is not None:
            out = [m for m in out if m.label == label]
        return Matches(out)

    @classmethod
    def from_score_map(
        cls,
        scores: np.ndarray,
        template_size: tuple[int, int],
        *,
        threshold: float,
        max_results: int = 1,
        nms_iou: float = 0.3,
        offset: tuple[int, int] = (0, 0),
        scale: float = 1.0,
        label: str = "",
        click_offset: Point | None = None,
    ) -> Matches:
        """From an OpenCV ``matchTemplate`` TM_CCOEFF_NORMED score map: local maxima at or
        above ``threshold``, non-maximum suppressed (IoU > ``nms_iou`` between
        template-sized boxes), best first, at most ``max_results``. ``template_size`` is
        ``(w, h)``; ``offset`` shifts every box (the ROI origin)."""
        cands = peaks(scores, threshold, template_size, limit=max(64, 8 * max_results))
        tw, th = template_size
        boxes = np.array([(x, y, tw, th) for x, y, _ in cands], dtype=np.float64).reshape(-1, 4)
        vals = np.array([s for _, _, s in cands], dtype=np.float64)
        keep = nms(boxes, vals, nms_iou)[:max_results]
        return cls(Match((int(cands[k][0]) + offset[0], int(cands[k][1]) + offset[1], tw, th),
                         float(vals[k]), scale, label, click_offset) for k in keep)


class Detections(_Results[Detection]):
    """Object detector results: a read-only sequence of :class:`Detection`."""

    item_type = Detection

    @property
    def labels(self) -> list[str]:
        return [d.label for d in self.items]

    def filter(
        self,
        label: str | Iterable[str] | None = None,
        *,
        class_id: int | Iterable[int] | None = None,
        min_confidence: float | None = None,
        region: Sequence[int] | None = None,
        where: Callable[[Detection], bool] | None = None,
    ) -> Detections:
        """Detections of ``label`` (a name or several), ``class_id`` (one or several),
        with at least ``min_confidence``, centred in ``region``."""
        out = self._common_filter(min_confidence, region, where)
        if label is not None:
            labels = {label} if isinstance(label, str) else set(label)
            out = [d for d in out if d.label in labels]
        if class_id is not None:
            ids = ({int(class_id)} if isinstance(class_id, (int, Integral))
                   else {int(c) for c in class_id})
            out = [d for d in out if d.class_id in ids]
        return Detections(out)

    @classmethod
    def from_xyxy(
        cls,
        xyxy: np.ndarray | Sequence[Sequence[float]],
        confidence: np.ndarray | Sequence[float],
        class_id: np.ndarray | Sequence[int],
        names: Mapping[int, str] | Sequence[str] | None = None,
    ) -> Detections:
        """From arrays of corner boxes ``(x1, y1, x2, y2)`` (floats, rounded to pixels),
        confidences and class ids; ``names`` maps ids to labels (else the id as text)."""
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
        ids = np.asarray(class_id).reshape(-1).astype(np.int64)
        if not (len(boxes) == len(conf) == len(ids)):
            raise ValueError(f"from_xyxy: {len(boxes)} boxes, {len(conf)} confidences, "
                             f"{len(ids)} class ids")
        out = []
        for (x1, y1, x2, y2), c, k in zip(boxes, conf, ids, strict=True):
            out.append(Detection(_name(names, int(k)), int(k), float(c),
                                 round_box(x1, y1, x2 - x1, y2 - y1)))
        return cls(out)


def _name(names: Mapping[int, str] | Sequence[str] | None, k: int) -> str:
    if names is None:
        return str(k)
    if isinstance(names, Mapping):
        return str(names.get(k, k))
    return str(names[k]) if 0 <= k < len(names) else str(k)

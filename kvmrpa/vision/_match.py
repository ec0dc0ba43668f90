"""Template matching: TM_CCOEFF_NORMED over a frame, an ROI, several scales.

Grayscale by default (OpenCV's IPP path, about 11x faster than colour here), colour on
request; an optional mask; multiple matches with non-maximum suppression; and a
coarse-to-fine search that matches on a downscaled pyramid level first and then refines
each candidate at full resolution in a small window (same result, a fraction of the
work). The template is rescaled when the current capture resolution differs from the
one it was cut at (see :class:`~kvmrpa.vision.Template`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import cv2
import numpy as np

from .._errors import VisionError
from .._frame import Frame
from .._runtime import get_runtime
from .._settings import get_settings
from ._geometry import nms, peaks
from ._image import ImageLike, crop, to_bgr
from ._results import Match, Matches
from ._template import Template, load_template

__all__ = ["amatch_template", "match_template"]

TemplateLike = Template | np.ndarray | str | os.PathLike

log = logging.getLogger("kvmrpa.vision.match")

#: Smallest template side (pixels) kept at the coarse level of coarse-to-fine.
_COARSE_MIN_SIDE = 12
#: How far below the threshold a coarse candidate may score and still be refined.
_COARSE_MARGIN = 0.25


def _as_template(template: TemplateLike) -> Template:
    if isinstance(template, Template):
        return template
    if isinstance(template, np.ndarray):
        return Template(template)
    if isinstance(template, str | os.PathLike):
        return load_template(template)
    raise VisionError(f"template must be a Template, an image array or a path, "
                      f"got {type(template).__name__}")


def _factors(image: ImageLike, tpl: Template, rescale: bool,
             source_size: tuple[int, int] | None) -> tuple[float, float]:
    """``(fx, fy)`` bringing the template's pixels to the pixels of ``image``.

    The whole capture measures ``source_size`` source pixels (times the frame's scale),
    else the frame itself when it is not a crop. A crop of unknown source size is taken
    to be at the template's capture resolution, times the frame's own scale.
    """
    if not rescale or tpl.capture_size is None:
        return 1.0, 1.0
    if isinstance(image, Frame):
        if source_size is not None:
            return tpl.scale_for((source_size[0] * image.scale, source_size[1] * image.scale))
        if image.offset == (0, 0):
            return tpl.scale_for(image.size)
        return image.scale, image.scale
    if source_size is not None:
        return tpl.scale_for((source_size[0], source_size[1]))
    return tpl.scale_for((image.shape[1], image.shape[0]))


def _prepare(img: np.ndarray, color: bool) -> np.ndarray:
    return img if color else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def _score_map(img: np.ndarray, tpl: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return cv2.matchTemplate(img, tpl, cv2.TM_CCOEFF_NORMED)
    if tpl.ndim == 3 and mask.ndim == 2:
        mask = cv2.merge([mask] * tpl.shape[2])
    res = cv2.matchTemplate(img, tpl, cv2.TM_CCOEFF_NORMED, mask=mask)
    return np.nan_to_num(res, nan=-1.0, posinf=-1.0, neginf=-1.0)


def _coarse_factor(tw: int, th: int, iw: int, ih: int) -> int:
    """Largest downscale (1, 2, 4 or 8) keeping the template's short side >= 12 px."""
    d = 1
    for cand in (2, 4, 8):
        if min(tw, th) // cand >= _COARSE_MIN_SIDE and iw // cand > tw // cand \
                and ih // cand > th // cand:
            d = cand
    return d


def _search(
    img: np.ndarray, tpl: np.ndarray, mask: np.ndarray | None, *,
    threshold: float, max_results: int, nms_iou: float, coarse: bool,
) -> list[tuple[int, int, float]]:
    """Best ``(x, y, score)`` of ``tpl`` in ``img`` (both gray, or both BGR)."""
    th, tw = tpl.shape[:2]
    ih, iw = img.shape[:2]
    d = _coarse_factor(tw, th, iw, ih) if coarse else 1
    if d == 1:
        scores = _score_map(img, tpl, mask)
        cands = peaks(scores, threshold, (tw, th), limit=max(64, 8 * max_results))
    else:
        small = cv2.resize(img, (iw // d, ih // d), interpolation=cv2.INTER_AREA)
        stw, sth = max(1, round(tw / d)), max(1, round(th / d))
        stpl = cv2.resize(tpl, (stw, sth), interpolation=cv2.INTER_AREA)
        smask = None if mask is None else cv2.resize(mask, (stw, sth),
                                                     interpolation=cv2.INTER_NEAREST)
        cscores = _score_map(small, stpl, smask)
        limit = 4 * max_results + 4
        coarse_cands = peaks(cscores, threshold - _COARSE_MARGIN, (stw, sth), limit=limit)
        if not coarse_cands:  # still refine the best coarse place: detail lost by downscaling
            _, cbest, _, (cx, cy) = cv2.minMaxLoc(cscores)
            coarse_cands = [(cx, cy, float(cbest))]
        # Refine each coarse candidate at full resolution in a window of +-(d + 1) px.
        pad = d + 1
        cands = []
        for cx, cy, _s in coarse_cands[:limit]:
            x0, y0 = max(0, cx * d - pad), max(0, cy * d - pad)
            x1, y1 = min(iw - tw, cx * d + pad), min(ih - th, cy * d + pad)
            if x1 < x0 or y1 < y0:
                continue
            res = _score_map(img[y0:y1 + th, x0:x1 + tw], tpl, mask)
            _, best, _, (bx, by) = cv2.minMaxLoc(res)
            if best >= threshold:
                cands.append((x0 + bx, y0 + by, float(best)))
    if not cands:
        return []
    # Equal scores (identical icons) rank in reading order, so full and coarse-to-fine
    # searches keep the same ones.
    cands.sort(key=lambda c: (-round(c[2], 4), c[1], c[0]))
    boxes = np.array([(x, y, tw, th) for x, y, _ in cands], dtype=np.float64)
    keep = nms(boxes, np.array([round(s, 4) for _, _, s in cands]), nms_iou)
    return [cands[k] for k in keep[:max_results]]


def match_template(
    image: ImageLike,
    template: TemplateLike,
    roi: tuple[int, int, int, int] | None = None,
    *,
    threshold: float | None = None,
    max_results: int = 1,
    nms_iou: float = 0.3,
    color: bool = False,
    mask: np.ndarray | None = None,
    scales: Sequence[float] | None = None,
    coarse_to_fine: bool = True,
    rescale: bool = True,
    source_size: tuple[int, int] | None = None,
) -> Matches:
    """Find ``template`` in ``image`` (a :class:`~kvmrpa.Frame` or BGR array).

    - ``template``: a :class:`Template`, a BGR array, or a PNG path.
    - ``roi`` ``(x, y, w, h)``: search only there (boxes come back in image pixels).
    - ``threshold``: minimum TM_CCOEFF_NORMED score (default: the template's own, else
      ``settings.vision.match_threshold``).
    - ``max_results`` matches at most, best first, none overlapping by IoU > ``nms_iou``.
    - ``color``: compare in BGR instead of grayscale. ``mask``: pixels that count
      (default: the template's mask).
    - ``scales``: extra size factors to try (multi-scale), e.g. ``(0.9, 1.0, 1.1)``.
    - ``coarse_to_fine``: search a downscaled level first, then refine (when the
      template is large enough; otherwise a full search).
    - ``rescale``: adapt the template to the current capture resolution; the full
      capture size is the frame's own (if not cropped) or ``source_size`` (source
      pixels). A cropped frame without ``source_size`` is assumed to be at the
      template's resolution.

    Blocking CPU work: from async code use :func:`amatch_template`.
    """
    tpl = _as_template(template)
    if max_results < 1:
        raise VisionError(f"match_template: max_results must be >= 1, got {max_results}")
    if not 0.0 <= nms_iou <= 1.0:
        raise VisionError(f"match_template: nms_iou must be within [0, 1], got {nms_iou}")
    if threshold is None:
        threshold = tpl.threshold if tpl.threshold is not None \
            else get_settings().vision.match_threshold
    if not -1.0 <= threshold <= 1.0:
        raise VisionError(f"match_template: threshold must be within [-1, 1], got {threshold}")
    img = to_bgr(image)
    part, (rx, ry, rw, rh) = crop(img, roi)
    fx, fy = _factors(image, tpl, rescale, source_size)
    factors = [1.0] if not scales else [float(s) for s in scales]
    if any(not s > 0 for s in factors):
        raise VisionError(f"match_template: scales must be > 0, got {list(factors)}")
    use_mask = tpl.mask if mask is None else mask
    base = Template(tpl.image, mask=use_mask, name=tpl.name)

    start = time.perf_counter()
    pimg = _prepare(part, color)
    found: list[tuple[int, int, int, int, float, float]] = []
    for s in factors:
        timg, tmask = base.resized(fx * s, fy * s)
        th, tw = timg.shape[:2]
        if tw > rw or th > rh or min(tw, th) < 3:
            continue
        for x, y, score in _search(pimg, _prepare(timg, color), tmask,
                                   threshold=threshold, max_results=max_results,
                                   nms_iou=nms_iou, coarse=coarse_to_fine):
            found.append((x + rx, y + ry, tw, th, score, float(np.sqrt(fx * fy)) * s))
    log.debug("template %r (x%.3g, %s) in %dx%d at (%d, %d): %d candidates in %.2f ms",
              tpl.name, float(np.sqrt(fx * fy)), "colour" if color else "gray", rw, rh, rx, ry,
              len(found), (time.perf_counter() - start) * 1000)
    if not found:
        return Matches()
    if len(factors) > 1:
        keep = nms(np.array([f[:4] for f in found], dtype=np.float64),
                   np.array([f[4] for f in found]), nms_iou)
        found = [found[k] for k in keep]
    # best first; equal scores (identical icons) in reading order, so results are stable
    found.sort(key=lambda f: (-round(f[4], 4), f[1], f[0]))
    out = []
    for x, y, tw, th, score, sc in found[:max_results]:
        click = None
        if tpl.click_offset is not None:
            click = (round(tpl.click_offset[0] * tw / tpl.width),
                     round(tpl.click_offset[1] * th / tpl.height))
        out.append(Match((x, y, tw, th), score, sc, tpl.name, click))
    return Matches(out)


async def amatch_template(
    image: ImageLike,
    template: TemplateLike,
    roi: tuple[int, int, int, int] | None = None,
    **options: object,
) -> Matches:
    """:func:`match_template` run in the runtime's worker pool."""
    return await get_runtime().to_thread(match_template, image, template, roi, **options)

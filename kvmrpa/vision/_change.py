"""Change detection: whether a region of a frame changed since a reference, in well under
a millisecond, and where.

A :class:`Signature` is the region seen through a coarse grid: the mean colour of each
``cell`` x ``cell`` block (one OpenCV area resize, integer factor). Two signatures of the
same region differ where some cell's mean moved by more than a threshold in any
channel. Averaging 64 pixels per cell (the default 8 px cell) flattens sensor noise and
JPEG ringing to a grey level or two, while a glyph stroke crossing a cell moves its mean
by several levels (a small clock digit ticking: 7 or more, a new line of text: tens); the
threshold (``settings.vision.change_threshold``) sits between.
A change that only touches one cell (a clock's digit) is found as well as a full repaint:
the test takes the largest cell difference, not the mean over the region.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .._settings import get_settings
from ._geometry import Box
from ._image import ImageLike, crop, to_bgr

__all__ = ["Signature", "changed_boxes", "region_signature"]


@dataclass(frozen=True, eq=False)
class Signature:
    """Cell means of ``region`` (x, y, w, h, in image pixels) of an image of ``shape``;
    ``grid`` is a ``uint8`` array ``(rows, cols, 3)``, cell ``(r, c)`` covering
    ``origin + (c * cell, r * cell)`` to ``+ cell`` (clipped to the region)."""

    grid: np.ndarray
    region: Box
    origin: tuple[int, int]
    cell: int
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(self.grid.nbytes) + 128

    def comparable(self, other: Signature) -> bool:
        """Both describe the same region of same-sized images with the same grid."""
        return (self.region == other.region and self.shape == other.shape
                and self.cell == other.cell and self.origin == other.origin
                and self.grid.shape == other.grid.shape)

    def diff(self, other: Signature) -> np.ndarray:
        """The largest channel difference of each cell (``uint8``, rows x cols)."""
        d = cv2.absdiff(self.grid.reshape(self.grid.shape[0], -1),
                        other.grid.reshape(other.grid.shape[0], -1))
        return d.reshape(self.grid.shape).max(axis=2)

    def changed(self, other: Signature | None, threshold: float | None = None) -> bool:
        """Whether ``other`` (a signature of the same region) differs from this one;
        ``None`` or an incomparable one counts as changed."""
        if other is None or not self.comparable(other):
            return True
        limit = get_settings().vision.change_threshold if threshold is None else threshold
        return bool(self.diff(other).max() > limit)


def region_signature(image: ImageLike, roi: Box | tuple[int, int, int, int] | None = None,
                     cell: int | None = None) -> Signature:
    """The :class:`Signature` of ``roi`` of ``image`` (whole image when ``None``).

    The sampled block is the region grown to whole cells, within the image (so the
    resize factor is an integer, OpenCV's fast path); a region narrower than one cell
    keeps its own size.
    """
    img = to_bgr(image)
    c = int(cell or get_settings().vision.change_cell)
    ih, iw = img.shape[:2]
    _part, (x, y, w, h) = crop(img, roi)
    cols, rows = -(-w // c), -(-h // c)
    bw, bh = cols * c, rows * c
    x0 = max(0, min(x, iw - bw)) if bw <= iw else 0
    y0 = max(0, min(y, ih - bh)) if bh <= ih else 0
    block = img[y0:y0 + bh, x0:x0 + bw]
    if block.shape[0] != bh or block.shape[1] != bw:  # image smaller than whole cells
        grid = cv2.resize(block, (cols, rows), interpolation=cv2.INTER_AREA)
    elif c == 1:
        grid = np.ascontiguousarray(block)
    else:
        grid = cv2.resize(block, (cols, rows), interpolation=cv2.INTER_AREA)
    grid = grid.reshape(rows, cols, 3)
    return Signature(grid, (x, y, w, h), (x0, y0), c, tuple(img.shape))


def changed_boxes(before: Signature, after: Signature, threshold: float | None = None,
                  margin: int = 0) -> list[Box]:
    """The boxes (image pixels, clipped to the region) around connected groups of
    changed cells, each grown by ``margin`` pixels; all of the region when the two are
    not comparable."""
    if not before.comparable(after):
        return [after.region]
    limit = get_settings().vision.change_threshold if threshold is None else threshold
    mask = (before.diff(after) > limit).astype(np.uint8)
    if not mask.any():
        return []
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    rx, ry, rw, rh = after.region
    ox, oy, c = after.origin[0], after.origin[1], after.cell
    out: list[Box] = []
    for i in range(1, count):
        cx, cy, cw, ch = (int(v) for v in stats[i, :4])
        x1 = max(rx, ox + cx * c - margin)
        y1 = max(ry, oy + cy * c - margin)
        x2 = min(rx + rw, ox + (cx + cw) * c + margin)
        y2 = min(ry + rh, oy + (cy + ch) * c + margin)
        if x2 > x1 and y2 > y1:
            out.append((x1, y1, x2 - x1, y2 - y1))
    return out

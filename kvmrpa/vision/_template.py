"""Templates for image matching: the picture plus what is needed to find it again.

A :class:`Template` keeps the capture resolution it was cut at, the region it came
from, an optional click offset, threshold and mask. It is saved as a PNG whose ``tEXt``
chunk ``kvmrpa-template`` holds that metadata as JSON (the mask is the PNG's alpha
channel); a sidecar ``<name>.json`` is read too, for templates made by other tools.
When the current capture resolution differs from the template's, matching rescales
the template by the ratio, so a template cut at 1920x1080 still matches at 1280x720.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .._errors import ModelNotFoundError, VisionError
from .._frame import Frame
from .._limits import check_image_header, loads_strict
from ._geometry import Box, as_box, clip_roi
from ._image import ImageLike, to_bgr

__all__ = ["Template", "load_template"]

_CHUNK = "kvmrpa-template"
#: Largest side (and click offset) a template's metadata may name, in pixels.
_MAX_SIDE = 100_000
_FORMAT = 1


def _size(value: Any, what: str) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise VisionError(f"template {what} must be (width, height), got {value!r}") from None
    if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE):
        raise VisionError(f"template {what} must be within 1..{_MAX_SIDE}, got {value!r}")
    return w, h


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Template:
    """An image to find, with the metadata that makes it portable.

    ``image`` is BGR ``uint8``; ``mask`` (same height/width, ``uint8``) marks the pixels
    that count (non-zero). ``capture_size`` ``(w, h)`` is the size of the full image the
    template was cut from (None: never rescale). ``region`` is where it was cut, in
    those pixels. ``click_offset`` is the point to act on relative to the template's
    top-left (default: its centre). ``threshold`` overrides the default match threshold.
    """

    image: np.ndarray
    mask: np.ndarray | None = None
    name: str = ""
    capture_size: tuple[int, int] | None = None
    region: Box | None = None
    click_offset: tuple[int, int] | None = None
    threshold: float | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        img = to_bgr(self.image, f"template {self.name!r} image")
        h, w = img.shape[:2]
        object.__setattr__(self, "image", _readonly(img))
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.ndim == 3:
                m = m[:, :, 0]
            if m.shape != (h, w):
                raise VisionError(f"template {self.name!r}: mask shape {m.shape} differs from "
                                  f"image {(h, w)}")
            m = (m > 0).astype(np.uint8) * 255
            object.__setattr__(self, "mask", None if m.all() else _readonly(m))
        object.__setattr__(self, "capture_size", _size(self.capture_size, "capture_size"))
        if self.region is not None:
            try:
                object.__setattr__(self, "region", as_box(tuple(self.region), "region"))
            except (TypeError, ValueError) as exc:
                raise VisionError(f"template {self.name!r}: {exc}") from None
        if self.click_offset is not None:
            try:
                cx, cy = (int(v) for v in self.click_offset)
                if abs(cx) > _MAX_SIDE or abs(cy) > _MAX_SIDE:
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                raise VisionError(f"template {self.name!r}: click_offset must be (x, y), "
                                  f"got {self.click_offset!r}") from None
            object.__setattr__(self, "click_offset", (cx, cy))
        try:
            threshold = None if self.threshold is None else float(self.threshold)
        except (TypeError, ValueError, OverflowError):
            threshold = math.nan
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise VisionError(f"template {self.name!r}: threshold must be within [-1, 1], "
                              f"got {self.threshold!r}")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: ImageLike,
        region: tuple[int, int, int, int],
        *,
        name: str = "",
        click_offset: tuple[int, int] | None = None,
        threshold: float | None = None,
        mask: np.ndarray | None = None,
        capture_size: tuple[int, int] | None = None,
    ) -> Template:
        """Cut ``region`` ``(x, y, w, h)`` out of a frame or array.

        ``capture_size`` defaults to the image's size (for a cropped frame, whose full
        size is unknown, pass the source size in the frame's pixels, or leave None to
        never rescale).
        """
        img = to_bgr(frame)
        h, w = img.shape[:2]
        x, y, rw, rh = clip_roi(region, w, h)
        ox = oy = 0
        full = True
        if isinstance(frame, Frame):
            full = frame.offset == (0, 0)
            # the crop's origin in source pixels (the frame's one mapping), at the
            # frame's scale: the template's own pixels
            ox, oy = (round(v * frame.scale) for v in frame.to_source(0, 0))
        if capture_size is None and full:
            capture_size = (w, h)
        return cls(img[y:y + rh, x:x + rw].copy(), mask=mask, name=name,
                   capture_size=capture_size, region=(x + ox, y + oy, rw, rh),
                   click_offset=click_offset, threshold=threshold)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Template:
        """Read a template PNG (metadata from its text chunk or a sidecar ``.json``).
        Missing file: :class:`~kvmrpa.ModelNotFoundError`. Cached by path and mtime."""
        return load_template(path)

    # -- properties -----------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in the template's own pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def metadata(self) -> dict[str, Any]:
        """The JSON metadata saved next to the pixels."""
        return {
            "format": _FORMAT,
            "name": self.name,
            "size": list(self.size),
            "capture_size": None if self.capture_size is None else list(self.capture_size),
            "region": None if self.region is None else list(self.region),
            "click_offset": None if self.click_offset is None else list(self.click_offset),
            "threshold": self.threshold,
        }

    def with_(self, **changes: Any) -> Template:
        """A copy with some fields changed (``name``, ``click_offset``, ``threshold``…)."""
        return replace(self, **changes)

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, sidecar: bool = False) -> Path:
        """Write the template as PNG with its metadata (and a sidecar JSON if asked).
        Written to a temporary file and renamed, so a reader never sees half a file."""
        from PIL import Image, PngImagePlugin

        p = Path(path)
        if p.suffix.lower() != ".png":
            raise VisionError(f"template {self.name!r}: save path {str(p)!r} must end in .png")
        p.parent.mkdir(parents=True, exist_ok=True)
        rgb = cv2.cvtColor(np.asarray(self.image), cv2.COLOR_BGR2RGB)
        if self.mask is not None:
            pil = Image.fromarray(np.dstack([rgb, self.mask]), "RGBA")
        else:
            pil = Image.fromarray(rgb, "RGB")
        info = PngImagePlugin.PngInfo()
        meta = json.dumps(self.metadata(), ensure_ascii=False, allow_nan=False)
        info.add_itxt(_CHUNK, meta)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            pil.save(tmp, format="PNG", pnginfo=info)
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)
        if sidecar:
            p.with_suffix(".json").write_text(meta + "\n", encoding="utf-8")
        return p

    # -- rescaling ------------------------------------------------------------------------
    def scale_for(self, full_size: tuple[float, float] | None) -> tuple[float, float]:
        """The ``(fx, fy)`` factors that bring the template to a full image of
        ``full_size`` ``(w, h)``; ``(1, 1)`` without ``capture_size`` or ``full_size``."""
        if self.capture_size is None or full_size is None:
            return 1.0, 1.0
        return full_size[0] / self.capture_size[0], full_size[1] / self.capture_size[1]

    def resized(self, fx: float, fy: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Image and mask resized by ``(fx, fy)`` (area filter when shrinking)."""
        fy = fx if fy is None else fy
        w, h = self.size
        nw, nh = max(1, round(w * fx)), max(1, round(h * fy))
        if (nw, nh) == (w, h):
            return self.image, self.mask
        interp = cv2.INTER_AREA if nw * nh < w * h else cv2.INTER_CUBIC
        img = cv2.resize(self.image, (nw, nh), interpolation=interp)
        mask = None if self.mask is None else cv2.resize(self.mask, (nw, nh),
                                                         interpolation=cv2.INTER_NEAREST)
        return img, mask

    def __repr__(self) -> str:
        w, h = self.size
        return (f"Template(name={self.name!r}, size={w}x{h}, capture_size={self.capture_size}, "
                f"click_offset={self.click_offset})")


_cache: dict[str, tuple[tuple[int, int], Template]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 128


def load_template(path: str | os.PathLike[str]) -> Template:
    """Read a template PNG; see :meth:`Template.load`."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelNotFoundError(f"template image {str(p)!r} is not on disk") from None
    stamp = (st.st_mtime_ns, st.st_size)
    key = str(p.resolve())
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    check_image_header(p, "template", VisionError)  # before anything is decoded
    try:
        with Image.open(p) as pil:
            pil.load()
            text = dict(getattr(pil, "text", {}) or {})
            mode = pil.mode
            arr = np.asarray(pil.convert("RGBA" if "A" in mode or "transparency" in pil.info
                                         else "RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise VisionError(f"template {str(p)!r} is not a readable image: {exc}") from None
    meta: Any = {}
    try:
        if _CHUNK in text:
            meta = loads_strict(text[_CHUNK])
        elif p.with_suffix(".json").is_file():
            meta = loads_strict(p.with_suffix(".json").read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError) as exc:
        raise VisionError(f"template {str(p)!r}: unreadable metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise VisionError(f"template {str(p)!r}: its metadata is not a JSON object")
    mask = None
    if arr.shape[2] == 4:
        mask = arr[:, :, 3]
        arr = arr[:, :, :3]
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    try:
        tpl = Template(bgr, mask=mask, name=str(meta.get("name") or p.stem),
                       capture_size=meta.get("capture_size"), region=meta.get("region"),
                       click_offset=meta.get("click_offset"), threshold=meta.get("threshold"),
                       path=str(p))
    except VisionError as exc:
        raise VisionError(f"template {str(p)!r}: {exc}") from None
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (stamp, tpl)
    return tpl

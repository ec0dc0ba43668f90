"""Fonts for the simulated desktop: find Noto Sans CJK (Simplified Chinese face) and cache sizes."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from PIL import ImageFont

from .._errors import ConfigError
from .._settings import get_settings

__all__ = ["find_font", "load_font"]

_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


def find_font() -> str:
    """Path of a CJK font: ``settings.vision.font_path``, the vision helper's lookup, or
    the usual Noto Sans CJK locations. Raises :class:`ConfigError` when none exists."""
    configured = get_settings().vision.font_path
    if configured:
        if not os.path.isfile(configured):
            raise ConfigError(f"setting vision.font_path: font file {configured!r} does not exist")
        return configured
    try:  # the vision part owns the shared lookup when it is there
        from ..vision import find_cjk_font  # type: ignore[attr-defined]
    except ImportError:
        find_cjk_font = None
    if find_cjk_font is not None:
        try:
            found = find_cjk_font()
        except Exception:
            found = None
        if found and os.path.isfile(str(found)):
            return str(found)
    for path in _CANDIDATES:
        if Path(path).is_file():
            return path
    raise ConfigError(
        "the simulated desktop needs a CJK font (Noto Sans CJK): none found at "
        + ", ".join(_CANDIDATES[:3])
        + "; install fonts-noto-cjk or set vision.font_path (KVMRPA_VISION_FONT_PATH)"
    )


def _face_index(path: str) -> int:
    """Index of the Simplified Chinese face in a collection (Noto's .ttc holds JP, KR, SC…)."""
    if not path.lower().endswith(".ttc"):
        return 0
    for index in range(12):
        try:
            family = ImageFont.truetype(path, 12, index=index).getname()[0]
        except OSError:
            break
        if "SC" in family.split() and "Mono" not in family:
            return index
    return 0


@functools.lru_cache(maxsize=64)
def _load(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=_face_index_cached(path))


@functools.lru_cache(maxsize=8)
def _face_index_cached(path: str) -> int:
    return _face_index(path)


def load_font(size: int, path: str | None = None) -> ImageFont.FreeTypeFont:
    """The CJK font at ``size`` pixels (cached)."""
    return _load(path or find_font(), max(6, int(size)))

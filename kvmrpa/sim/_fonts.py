"""Fonts for the simulated desktop: find Noto Sans CJK (Simplified Chinese face) and cache sizes."""

from __future__ import annotations

import functools

from PIL import ImageFont

from .._errors import ConfigError, ModelNotFoundError
from .._settings import get_settings
from ..vision import find_cjk_font

__all__ = ["find_font", "load_font"]

def find_font() -> str:
    """Path of a CJK font (the vision part's lookup: ``settings.vision.font_path`` or an
    installed Noto Sans CJK). Raises :class:`ConfigError` when none exists."""
    try:
        return find_cjk_font()
    except ModelNotFoundError as exc:
        if get_settings().vision.font_path:
            raise ConfigError(f"setting vision.font_path: font file "
                              f"{get_settings().vision.font_path!r} does not exist") from None
        raise ConfigError(f"the simulated desktop needs a CJK font: {exc}") from None


def _face_index(path: str) -> int:
    """Index of the Simplified Chinese face in a collection (Noto's .ttc holds JP, KR, SC…)."""
    if not path.lower().endswith(".ttc"):
        return 0
    for index in range(12):
        try:
            family = ImageFont.truetype(path, 12, index=index).getname()[0] or ""
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

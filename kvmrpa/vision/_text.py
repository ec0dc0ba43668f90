"""Text matching for OCR results: contains, exact, regex and fuzzy (edit distance).

OCR confuses similar glyphs, inserts or drops spaces and mixes full-width and half-width
forms, so every mode but ``regex`` compares *normalised* text: Unicode NFKC (full-width
``ＯＫ：`` becomes ``OK:``), whitespace runs collapsed to one space, optionally case
folded. ``fuzzy`` also ignores whitespace and accepts the pattern anywhere in the text
within ``max_distance`` edits (insertions, deletions, substitutions).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Literal

from .._errors import VisionError

__all__ = [
    "MATCH_MODES",
    "MatchMode",
    "compile_text_matcher",
    "edit_distance",
    "normalize_text",
    "substring_distance",
    "text_matches",
]

MatchMode = Literal["contains", "exact", "regex", "fuzzy"]
MATCH_MODES: tuple[str, ...] = ("contains", "exact", "regex", "fuzzy")

_SPACE = re.compile(r"\s+")


def normalize_text(text: str, *, ignore_case: bool = False, drop_spaces: bool = False) -> str:
    """NFKC-normalise ``text`` and collapse (or drop) whitespace; optionally case fold."""
    out = unicodedata.normalize("NFKC", text)
    out = _SPACE.sub("" if drop_spaces else " ", out).strip()
    return out.casefold() if ignore_case else out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between ``a`` and ``b`` (unit costs)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def substring_distance(pattern: str, text: str) -> int:
    """Fewest edits turning ``pattern`` into some substring of ``text`` (Sellers).

    0 means ``pattern`` occurs in ``text``; an empty pattern is found everywhere.
    """
    if not pattern:
        return 0
    # Row over text positions: a match may start anywhere, so row 0 is all zeros.
    prev = [0] * (len(text) + 1)
    for i, cp in enumerate(pattern, 1):
        cur = [i]
        for j, ct in enumerate(text, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (cp != ct)))
        prev = cur
    return min(prev)


def compile_text_matcher(
    pattern: str,
    mode: MatchMode = "contains",
    *,
    max_distance: int | None = None,
    ignore_case: bool = False,
) -> Callable[[str], bool]:
    """Build a predicate ``text -> bool`` for ``pattern`` under ``mode``.

    ``max_distance`` is used by ``fuzzy`` only; its default allows one edit per four
    characters of the (normalised) pattern, and at least one. A bad mode or regex
    raises :class:`VisionError` here, before any frame is read, so that a node can
    report it at validation.
    """
    if not isinstance(pattern, str):
        raise VisionError(f"text pattern must be a string, got {type(pattern).__name__}")
    if mode == "regex":
        try:
            rx = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise VisionError(f"invalid regex {pattern!r}: {exc}") from None
        return lambda text: rx.search(text) is not None
    if mode == "exact":
        want = normalize_text(pattern, ignore_case=ignore_case)
        return lambda text: normalize_text(text, ignore_case=ignore_case) == want
    if mode == "contains":
        want = normalize_text(pattern, ignore_case=ignore_case)
        return lambda text: want in normalize_text(text, ignore_case=ignore_case)
    if mode == "fuzzy":
        want = normalize_text(pattern, ignore_case=ignore_case, drop_spaces=True)
        if max_distance is None:
            limit = max(1, len(want) // 4)
        elif isinstance(max_distance, bool) or not isinstance(max_distance, int) or max_distance < 0:
            raise VisionError(f"max_distance must be an integer >= 0, got {max_distance!r}")
        else:
            limit = max_distance

        def fuzzy(text: str) -> bool:
            got = normalize_text(text, ignore_case=ignore_case, drop_spaces=True)
            return substring_distance(want, got) <= limit

        return fuzzy
    raise VisionError(f"unknown text match mode {mode!r}; expected one of {', '.join(MATCH_MODES)}")


def text_matches(
    text: str,
    pattern: str,
    mode: MatchMode = "contains",
    *,
    max_distance: int | None = None,
    ignore_case: bool = False,
) -> bool:
    """Whether ``text`` matches ``pattern`` under ``mode`` (see :func:`compile_text_matcher`)."""
    return compile_text_matcher(pattern, mode, max_distance=max_distance,
                                ignore_case=ignore_case)(text)

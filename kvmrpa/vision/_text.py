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

import regex as _regex

from .._errors import PatternTimeoutError, VisionError

__all__ = [
    "MATCH_MODES",
    "MAX_PATTERN",
    "MatchMode",
    "UserRegex",
    "compile_text_matcher",
    "compile_user_regex",
    "edit_distance",
    "normalize_text",
    "substring_distance",
    "text_matches",
]

#: How a text is compared with the wanted one.
MatchMode = Literal["contains", "exact", "regex", "fuzzy"]
#: The :data:`MatchMode` values, in the order forms show them.
MATCH_MODES: tuple[str, ...] = ("contains", "exact", "regex", "fuzzy")

_SPACE = re.compile(r"\s+")

#: Longest text pattern or regular expression accepted.
MAX_PATTERN = 4096
#: Largest count in ``{m,n}``, and the largest product of all counts of one pattern.
MAX_REPEAT = 1000
MAX_REPEAT_PRODUCT = 100_000
_COUNTED = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")


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


class UserRegex:
    """A user-supplied regular expression that runs with a time budget.

    Compiled with the ``regex`` module (the syntax of :mod:`re`), each :meth:`search`
    may take ``settings.vision.regex_timeout`` seconds (100 ms at most) before it raises
    :class:`PatternTimeoutError` naming the field; a catastrophic pattern such as
    ``((.*)*)*X`` fails its node instead of freezing the process.
    """

    __slots__ = ("_rx", "field", "pattern")

    def __init__(self, pattern: str, *, ignore_case: bool = False, field: str = "pattern") -> None:
        if not isinstance(pattern, str):
            raise VisionError(f"a regular expression must be a string, "
                              f"got {type(pattern).__name__}")
        if len(pattern) > MAX_PATTERN:
            raise VisionError(f"regular expression of {len(pattern)} characters; "
                              f"the limit is {MAX_PATTERN}")
        repeat = 1
        for m in _COUNTED.finditer(pattern):
            count = max(int(n) if len(n) <= 9 else MAX_REPEAT + 1 for n in m.groups() if n)
            if count > MAX_REPEAT:
                raise VisionError(f"repetition {m.group(0)} in {pattern!r} exceeds "
                                  f"{MAX_REPEAT}")
            repeat *= max(count, 1)
            if repeat > MAX_REPEAT_PRODUCT:
                raise VisionError(f"too many counted repetitions in {pattern!r} "
                                  f"(their product exceeds {MAX_REPEAT_PRODUCT})")
        try:
            self._rx = _regex.compile(pattern, _regex.IGNORECASE if ignore_case else 0)
        except (_regex.error, OverflowError, ValueError, RecursionError) as exc:
            raise VisionError(f"invalid regex {pattern!r}: {exc}") from None
        self.pattern = pattern
        self.field = field

    def search(self, text: str) -> bool:
        """Whether the pattern occurs in ``text`` (within the time budget)."""
        from .._settings import get_settings

        budget = min(0.1, float(get_settings().vision.regex_timeout))
        try:
            return self._rx.search(str(text), timeout=budget) is not None
        except TimeoutError:
            raise PatternTimeoutError(
                f"regular expression {self.pattern!r} ran past its "
                f"{budget * 1000:g} ms budget on a text of {len(str(text))} characters",
                field=self.field) from None


def compile_user_regex(pattern: str, *, ignore_case: bool = False,
                       field: str = "pattern") -> UserRegex:
    """A :class:`UserRegex` for ``pattern``; a bad pattern raises :class:`VisionError`
    naming ``field``."""
    return UserRegex(pattern, ignore_case=ignore_case, field=field)


def compile_text_matcher(
    pattern: str,
    mode: MatchMode = "contains",
    *,
    max_distance: int | None = None,
    ignore_case: bool = False,
    field: str = "text",
) -> Callable[[str], bool]:
    """Build a predicate ``text -> bool`` for ``pattern`` under ``mode``.

    ``max_distance`` is used by ``fuzzy`` only; its default allows one edit per four
    characters of the (normalised) pattern, and at least one. A bad mode or regex
    raises :class:`VisionError` here, before any frame is read, so that a node can
    report it at validation. A regex runs under :func:`compile_user_regex`'s time budget
    (:class:`PatternTimeoutError` naming ``field`` when exceeded).
    """
    if not isinstance(pattern, str):
        raise VisionError(f"text pattern must be a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise VisionError(f"text pattern is {len(pattern)} characters; the limit is {MAX_PATTERN}")
    if mode == "regex":
        return compile_user_regex(pattern, ignore_case=ignore_case, field=field).search
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

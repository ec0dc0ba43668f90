"""URL options (``?loop=0&fps=15``) read by the types of the settings' parameters.

:func:`url_option` reads one query parameter of a source or driver URL as a
``param`` parameter describes it (``param.Boolean``: 1/true/yes/on or 0/false/no/off;
``param.Integer`` / ``param.Number`` within the parameter's bounds), with one clear
error naming the URL and the option otherwise. A setting's own parameter
(``SimSettings.param.realism``) can describe the option of the same meaning.
"""

from __future__ import annotations

from typing import Any

import param

from ._errors import UrlError
from ._settings import coerce_value
from ._urls import query_params, redact_url

__all__ = ["url_option"]

_MISSING: Any = object()


def url_option(url: str, name: str, kind: param.Parameter, default: Any = _MISSING,
               *, query: dict[str, str] | None = None) -> Any:
    """The value of ``?name=…`` in ``url`` as ``kind`` describes it.

    Absent: ``default`` (the parameter's own default when not given). ``query`` is the
    already-parsed query of ``url``, when the caller has it.
    """
    raw = (query_params(url) if query is None else query).get(name)
    if raw is None:
        return kind.default if default is _MISSING else default
    try:
        value = coerce_value(kind, raw)
    except (TypeError, ValueError):
        value = _MISSING
    bounds = getattr(kind, "bounds", None)
    if value is not _MISSING and bounds is not None and isinstance(value, int | float):
        lo, hi = bounds
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            value = _MISSING
    if value is _MISSING:
        raise UrlError(f"{redact_url(url)}: {name}={raw!r} must be {_describe(kind)}")
    return value


def _describe(kind: param.Parameter) -> str:
    if isinstance(kind, param.Boolean):
        return "0 or 1 (or true/false, yes/no, on/off)"
    what = "an integer" if isinstance(kind, param.Integer) else "a number"
    lo, hi = getattr(kind, "bounds", None) or (None, None)
    if lo is not None and hi is not None:
        return f"{what} within [{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{what} >= {lo:g}"
    if hi is not None:
        return f"{what} <= {hi:g}"
    return what

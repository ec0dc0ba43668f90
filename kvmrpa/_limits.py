"""Bounds on user input before it is used: image headers, model files, numbers, JSON.

* :func:`check_image_header` reads an image's width and height from its header (Pillow
  opens lazily) and refuses one over ``settings.vision.max_pixels`` before anything is
  decoded, so a small file declaring a huge canvas costs nothing.
* :func:`model_file_problem` says why a path is not a usable ONNX model (missing, a
  folder, not a protobuf file) at validate time.
* :func:`number_problem` says why a number is out of range (NaN, ±Infinity, an
  integer too large for any coordinate or count).
* :func:`loads_strict` parses JSON refusing ``NaN``/``Infinity`` and overflowing
  numbers; :func:`dumps_strict` never emits them (they become ``null``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

__all__ = ["MAX_ABS_NUMBER", "NonFinite", "check_image_header", "dumps_strict", "finite_or_none",
           "loads_strict", "model_file_problem", "number_problem", "text_file_problem"]

#: Largest magnitude accepted for a number in a flow (coordinates, counts, seconds).
MAX_ABS_NUMBER = 1e15
#: Longest integer literal parsed from JSON (digits).
_MAX_INT_DIGITS = 400


def check_image_header(path: str | os.PathLike[str], what: str,
                       error: type[Exception] = ValueError,
                       max_pixels: int | None = None) -> tuple[int, int]:
    """``(width, height)`` from the header of the image at ``path``.

    Raises ``error`` (naming ``what`` and the path) when the file is not an image Pillow
    can identify or declares more than ``max_pixels`` (default
    ``settings.vision.max_pixels``) pixels; nothing is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    if max_pixels is None:
        from ._settings import get_settings

        max_pixels = int(get_settings().vision.max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        raise error(f"{what} {str(path)!r} declares an image too large to read "
                    f"(limit {max_pixels} pixels, settings vision.max_pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise error(f"{what} {str(path)!r} is not a readable image: {exc}") from None
    if width * height > max_pixels:
        raise error(f"{what} {str(path)!r} declares {width}x{height} pixels, more than the "
                    f"limit of {max_pixels} (settings vision.max_pixels)")
    return width, height


def model_file_problem(path: str, what: str) -> str | None:
    """Why ``path`` is not an ONNX model file (``None`` when it looks like one).

    An ONNX model is a protobuf ``ModelProto`` whose first field is ``ir_version``
    (byte ``0x08``); a text file, a folder or ``/etc/passwd`` is refused here rather
    than at run time.
    """
    p = Path(os.path.expanduser(path))
    try:
        if p.is_dir():
            return f"{what} {path!r} is a folder, not a model file"
        if not p.is_file():
            return f"{what} {path!r} is not on disk"
        with open(p, "rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        return f"{what} {path!r} cannot be read: {exc.strerror or exc}"
    if len(head) < 2 or head[0] != 0x08:
        return f"{what} {path!r} is not an ONNX model file"
    return None


def text_file_problem(path: str, what: str, max_bytes: int = 16 * 2**20) -> str | None:
    """Why ``path`` is not a UTF-8 text file of at most ``max_bytes`` (``None`` if it is)."""
    p = Path(os.path.expanduser(path))
    try:
        if not p.is_file():
            return f"{what} {path!r} is not on disk"
        if p.stat().st_size > max_bytes:
            return f"{what} {path!r} is larger than {max_bytes} bytes"
        p.read_bytes().decode("utf-8")
    except OSError as exc:
        return f"{what} {path!r} cannot be read: {exc.strerror or exc}"
    except UnicodeDecodeError:
        return f"{what} {path!r} is not a UTF-8 text file"
    return None


class NonFinite(str):
    """What :func:`loads_strict` puts where a document had ``NaN``, ``Infinity`` or a
    number too large, so that validation can name the field (it is a ``str`` of the
    original spelling)."""


def number_problem(value: Any) -> str | None:
    """Why a number is out of range (``None`` for anything else or a fine number)."""
    if isinstance(value, NonFinite):
        return f"{str(value)[:40]} is not a finite number"
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if abs(value) > MAX_ABS_NUMBER:
            return f"{value:g} is out of range (at most {MAX_ABS_NUMBER:g} in magnitude)"
    elif isinstance(value, int) and abs(value) > MAX_ABS_NUMBER:
        digits = len(str(abs(value))) if abs(value) < 10 ** 4000 else "many"
        return f"an integer of {digits} digits is out of range (at most {MAX_ABS_NUMBER:g})"
    return None


def finite_or_none(value: Any) -> Any:
    """A copy of a JSON-like value with NaN/±Infinity floats replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def _parse_float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def _parse_int(text: str) -> int | NonFinite:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return NonFinite(f"{text[:12]}… ({len(text)} digits)")
    return int(text)


def loads_strict(text: str) -> Any:
    """``json.loads`` where ``NaN``, ``Infinity``, ``-Infinity``, ``1e999`` and integers
    of more than 400 digits become :class:`NonFinite` markers (validation reports them
    by field); everything else as :func:`json.loads`."""
    return json.loads(text, parse_constant=NonFinite, parse_float=_parse_float,
                      parse_int=_parse_int)


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity`` (they become ``null``)."""
    kwargs["allow_nan"] = False
    try:
        return json.dumps(value, **kwargs)
    except ValueError:
        return json.dumps(finite_or_none(value), **kwargs)

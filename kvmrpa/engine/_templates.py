"""Template store: the template images of a flow, in a ``templates/`` folder beside it.

A template is cut from a :class:`~kvmrpa.Frame` at a region given in **source pixels**
(whatever crop or scale the frame carries) and kept as ``<name>.png`` — the image
format of :class:`kvmrpa.vision.Template`, whose PNG text chunk holds the capture
resolution, so matching rescales it when the capture resolution changes — plus a
sidecar ``<name>.json`` with where it came from: the source size, the region in source
pixels, the frame's seq, source and wall time, and when it was saved.

    store = TemplateStore.beside("flows/login.json")     # flows/templates/
    info = store.save(frame, (x, y, w, h), "click_ok")   # -> TemplateInfo, unique name
    node.template = str(info.path)
    store.list(); store.rename("click_ok", "ok_button"); store.delete("ok_button")
    tpl = store.load("click_ok")                         # a kvmrpa.vision.Template

Names are safe file names derived from what is given (a node id, usually): letters,
digits, ``-``, ``_`` and ``.`` (not leading), at most :data:`MAX_NAME` characters;
:meth:`TemplateStore.save` picks ``name-2``, ``name-3``… when the name is taken (unless
``replace``). Writes are atomic (temporary file, then rename), and templates are
bounded: a side of at most :data:`MAX_SIDE` pixels, at most :data:`MAX_TEMPLATES` in
a folder.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import VisionError
from .._frame import Frame
from .._limits import loads_strict
from ..vision import Template, load_template

__all__ = ["MAX_NAME", "MAX_SIDE", "MAX_TEMPLATES", "TemplateInfo", "TemplateStore",
           "safe_template_name"]

#: Longest template name (characters, before ``.png``).
MAX_NAME = 64
#: Longest side of a template, in source pixels; smallest side is 4.
MAX_SIDE = 4096
MIN_SIDE = 4
#: Most templates one folder holds (and lists).
MAX_TEMPLATES = 1000
_SIDECAR_MAX = 64 * 1024
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}


def safe_template_name(text: str) -> str:
    """A safe file name (no suffix) from ``text``: other characters become ``_``,
    no leading dot or dash, at most :data:`MAX_NAME` characters; ``template`` when
    nothing is left."""
    text = unicodedata.normalize("NFC", str(text)).strip()
    name = re.sub(r"[^\w.\-]+", "_", text, flags=re.UNICODE)
    name = re.sub(r"_+", "_", name).strip("._-")[:MAX_NAME].rstrip("._-")
    if not name or name.lower().split(".")[0] in _RESERVED:
        name = f"template_{name}" if name else "template"
    return name[:MAX_NAME]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name != safe_template_name(name):
        raise VisionError(f"template name {name!r} is not a plain file name (letters, digits, "
                          f"'-', '_', '.', at most {MAX_NAME} characters; e.g. "
                          f"{safe_template_name(str(name))!r})")
    return name


@dataclass(frozen=True)
class TemplateInfo:
    """One stored template: its name, PNG path, size, and where it was cut."""

    name: str
    path: Path
    #: ``(width, height)`` of the image, in its own pixels.
    size: tuple[int, int]
    #: Size of the full source frame it was cut from (None when unknown).
    source_size: tuple[int, int] | None
    #: ``(x, y, w, h)`` it was cut at, in source pixels (None when unknown).
    region: tuple[int, int, int, int] | None
    #: ``time.time()`` when it was saved (the file's mtime for foreign files).
    saved: float
    #: The capture it came from: ``source_id``, ``seq``, ``wall`` (may be empty).
    capture: dict[str, Any]

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".json")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "size": list(self.size),
                "source_size": None if self.source_size is None else list(self.source_size),
                "region": None if self.region is None else list(self.region),
                "saved": self.saved, "capture": dict(self.capture)}


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _ints(value: Any, n: int) -> tuple[int, ...] | None:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if len(out) == n and all(abs(v) <= 1_000_000 for v in out) else None


def _size(value: Any) -> tuple[int, int] | None:
    """A stored (width, height), or None when it is not two bounded integers."""
    out = _ints(value, 2)
    return None if out is None else (out[0], out[1])


def _box(value: Any) -> tuple[int, int, int, int] | None:
    """A stored (x, y, w, h), or None when it is not four bounded integers."""
    out = _ints(value, 4)
    return None if out is None else (out[0], out[1], out[2], out[3])


class TemplateStore:
    """The templates of one folder (see the module docs). Thread-safe."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()
        self._lock = threading.RLock()

    @classmethod
    def beside(cls, flow_path: str | os.PathLike[str]) -> TemplateStore:
        """The store of a flow file: the ``templates/`` folder next to it."""
        return cls(Path(flow_path).expanduser().parent / "templates")

    def __repr__(self) -> str:
        return f"TemplateStore({str(self.folder)!r})"

    # -- names --------------------------------------------------------------------------
    def path_of(self, name: str) -> Path:
        """The PNG path of template ``name`` (which need not exist)."""
        return self.folder / f"{_check_name(name)}.png"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name == safe_template_name(name) \
            and self.path_of(name).is_file()

    def unique_name(self, base: str) -> str:
        """``safe_template_name(base)``, or with ``-2``, ``-3``… when that is taken."""
        stem = safe_template_name(base)
        with self._lock:
            if stem not in self:
                return stem
            for n in range(2, MAX_TEMPLATES + 2):
                suffix = f"-{n}"
                name = stem[:MAX_NAME - len(suffix)] + suffix
                if name not in self:
                    return name
        raise VisionError(f"templates {str(self.folder)!r}: no free name for {base!r}")

    # -- writing ------------------------------------------------------------------------
    def save(self, frame: Frame, region: tuple[float, float, float, float], name: str, *,
             source_size: tuple[int, int] | None = None, replace: bool = False,
             click_offset: tuple[int, int] | None = None,
             threshold: float | None = None) -> TemplateInfo:
        """Cut ``region`` ``(x, y, w, h)`` — in source pixels — out of ``frame`` and store
        it under ``name`` (made safe; made unique unless ``replace``). ``source_size``
        is the full source frame's size (default: the frame's own when it is not a crop).
        Returns the stored template's :class:`TemplateInfo`."""
        if not isinstance(frame, Frame):
            raise VisionError(f"template {name!r}: needs a Frame, got {type(frame).__name__}")
        try:
            x, y, w, h = (float(v) for v in region)
        except (TypeError, ValueError):
            raise VisionError(f"template {name!r}: region must be (x, y, w, h), "
                              f"got {region!r}") from None
        if not all(np.isfinite([x, y, w, h])):
            raise VisionError(f"template {name!r}: region {region!r} is not finite")
        # source pixels -> this frame's pixels (the one mapping: Frame.from_source)
        fx0, fy0 = frame.from_source(x, y)
        fx1, fy1 = frame.from_source(x + w, y + h)
        ix0, iy0 = max(0, round(fx0)), max(0, round(fy0))
        ix1, iy1 = min(frame.width, round(fx1)), min(frame.height, round(fy1))
        if ix1 - ix0 < MIN_SIDE or iy1 - iy0 < MIN_SIDE:
            raise VisionError(f"template {name!r}: region {tuple(round(v) for v in (x, y, w, h))}"
                              f" leaves less than {MIN_SIDE}x{MIN_SIDE} pixels of the "
                              f"{frame.width}x{frame.height} frame")
        if ix1 - ix0 > MAX_SIDE or iy1 - iy0 > MAX_SIDE:
            raise VisionError(f"template {name!r}: {ix1 - ix0}x{iy1 - iy0} pixels is larger "
                              f"than {MAX_SIDE} on a side")
        if source_size is None and frame.offset == (0, 0) and frame.scale == 1.0:
            source_size = frame.size
        src_x, src_y = frame.to_source(ix0, iy0)
        src_region = tuple(round(v) for v in (src_x, src_y,
                                               (ix1 - ix0) / frame.scale,
                                               (iy1 - iy0) / frame.scale))
        # capture_size is in the template's own pixels (the frame's scale)
        capture = None if source_size is None else (
            max(1, round(source_size[0] * frame.scale)), max(1, round(source_size[1] * frame.scale)))
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            if replace:
                name = _check_name(safe_template_name(name))
            else:
                name = self.unique_name(name)
                if len(self._pngs()) >= MAX_TEMPLATES:
                    raise VisionError(f"templates {str(self.folder)!r}: already "
                                      f"{MAX_TEMPLATES} templates; delete some first")
            tpl = Template(frame.image[iy0:iy1, ix0:ix1].copy(), name=name,
                           capture_size=capture,
                           region=(round(src_x * frame.scale), round(src_y * frame.scale),
                                   ix1 - ix0, iy1 - iy0),
                           click_offset=click_offset, threshold=threshold)
            path = tpl.save(self.path_of(name))
            meta = {**tpl.metadata(),
                    "source_size": None if source_size is None else list(source_size),
                    "source_region": list(src_region),
                    "saved": time.time(),
                    "capture": {"source_id": frame.source_id, "seq": frame.seq,
                                "wall": frame.wall}}
            _atomic_write(path.with_suffix(".json"),
                          (json.dumps(meta, ensure_ascii=False, allow_nan=False, indent=1)
                           + "\n").encode("utf-8"))
        return self.info(name)

    def rename(self, old: str, new: str) -> TemplateInfo:
        """Rename template ``old`` to ``new`` (made safe; an error when taken)."""
        _check_name(old)
        new = safe_template_name(new)
        with self._lock:
            src = self.path_of(old)
            if not src.is_file():
                raise VisionError(f"templates {str(self.folder)!r}: no template {old!r}")
            if new == old:
                return self.info(old)
            if new in self:
                raise VisionError(f"templates {str(self.folder)!r}: {new!r} exists already")
            tpl = load_template(src).with_(name=new, path=None)
            tpl.save(self.path_of(new))  # the name inside the PNG follows
            meta = self._sidecar(old)
            if meta:
                meta["name"] = new
                _atomic_write(self.path_of(new).with_suffix(".json"),
                              (json.dumps(meta, ensure_ascii=False, allow_nan=False, indent=1)
                               + "\n").encode("utf-8"))
            self.delete(old)
        return self.info(new)

    def delete(self, name: str) -> None:
        """Remove template ``name`` (its PNG and sidecar); nothing when it is not there."""
        path = self.path_of(name)
        with self._lock:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)

    # -- reading ------------------------------------------------------------------------
    def _pngs(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        out = []
        for p in self.folder.iterdir():
            if p.suffix.lower() == ".png" and not p.name.startswith(".") and \
                    p.stem == safe_template_name(p.stem) and p.is_file():
                out.append(p)
                if len(out) > MAX_TEMPLATES:
                    break
        return out

    def _sidecar(self, name: str) -> dict[str, Any]:
        side = self.path_of(name).with_suffix(".json")
        try:
            if side.stat().st_size > _SIDECAR_MAX:
                return {}
            meta = loads_strict(side.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def names(self) -> list[str]:
        """The stored templates' names, sorted."""
        return sorted(p.stem for p in self._pngs()[:MAX_TEMPLATES])

    def info(self, name: str) -> TemplateInfo:
        """What is known of template ``name`` (from its PNG and sidecar)."""
        path = self.path_of(name)
        tpl = load_template(path)
        meta = self._sidecar(name)
        source_size = _size(meta.get("source_size"))
        region = _box(meta.get("source_region"))
        if source_size is None and tpl.capture_size is not None and region is None:
            source_size = tpl.capture_size
        if region is None and tpl.region is not None:
            region = tpl.region
        raw = meta.get("capture")
        capture: dict[str, Any] = raw if isinstance(raw, dict) else {}
        saved = meta.get("saved")
        if not isinstance(saved, (int, float)):
            saved = path.stat().st_mtime
        return TemplateInfo(name=name, path=path, size=tpl.size,
                            source_size=source_size, region=region,
                            saved=float(saved),
                            capture={k: capture[k] for k in ("source_id", "seq", "wall")
                                     if k in capture})

    def list(self) -> list[TemplateInfo]:
        """Every readable template of the folder, sorted by name (unreadable files are
        left out)."""
        out = []
        for name in self.names():
            try:
                out.append(self.info(name))
            except VisionError:
                continue
        return out

    def load(self, name: str) -> Template:
        """Template ``name`` as a :class:`kvmrpa.vision.Template` (for matching)."""
        return load_template(self.path_of(name))

    def image(self, name: str) -> np.ndarray:
        """The BGR pixels of template ``name`` (for a preview)."""
        return np.asarray(self.load(name).image)

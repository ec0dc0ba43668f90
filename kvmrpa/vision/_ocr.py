"""OCR: the :class:`OcrEngine` interface, RapidOCR (default) and Tesseract engines,
and the ``ocr`` / ``aocr`` functions every node calls.

Engines are built once per process and option set by :func:`get_ocr_engine` (a
thread-safe lazy registry). A RapidOCR engine loads its ONNX models on first use and
serialises inference with a lock (RapidOCR keeps per-call switches on the instance, so
it is not safe to call concurrently); Tesseract runs as a subprocess per call and needs
no lock. A model, binary or language that is not on disk raises
:class:`~kvmrpa.ModelNotFoundError` when the engine is built, not at the first frame.

Results are in the pixels of the image given (an ROI is transparent: its origin is
added back). Map them to source pixels with ``TextBoxes.to_source(frame)``.
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from .._errors import ModelNotFoundError, VisionError
from .._runtime import get_runtime
from .._settings import get_settings
from ._image import ImageLike, crop, to_bgr
from ._results import TextBox, TextBoxes

__all__ = [
    "OCR_ENGINES",
    "OcrEngine",
    "RapidOcrEngine",
    "TesseractEngine",
    "aocr",
    "get_ocr_engine",
    "ocr",
]

log = logging.getLogger("kvmrpa.vision.ocr")


class _RapidOcrToDebug(logging.Handler):
    """Re-logs the records of RapidOCR's own logger on ``kvmrpa.vision.ocr``: below ERROR
    at DEBUG ("The text detection result is empty" comes for every region without text,
    many times a second in a flow), errors as errors."""

    def emit(self, record: logging.LogRecord) -> None:
        level = logging.DEBUG if record.levelno < logging.ERROR else record.levelno
        if not log.isEnabledFor(level):
            return
        try:
            log.log(level, "RapidOCR: %s", record.getMessage())
        except Exception:  # a bad format string in a third-party record
            self.handleError(record)


_rapid_log_lock = threading.Lock()


def _route_rapidocr_log() -> None:
    """Take RapidOCR's console handler (a plain ``StreamHandler`` it adds when imported)
    off its ``RapidOCR`` logger, which does not propagate and would print a coloured line
    per empty region, and send its records to ``kvmrpa.vision.ocr`` instead; idempotent.
    Other handlers someone put there stay; the root logger is not touched."""
    rapid = logging.getLogger("RapidOCR")
    with _rapid_log_lock:
        if any(isinstance(h, _RapidOcrToDebug) for h in rapid.handlers):
            return
        for handler in list(rapid.handlers):
            if type(handler) is logging.StreamHandler:
                rapid.removeHandler(handler)
        rapid.addHandler(_RapidOcrToDebug())
        rapid.propagate = False


class OcrEngine(abc.ABC):
    """Reads text from a BGR ``uint8`` image.

    :meth:`read` finds and reads every line; :meth:`read_line` treats the whole image as
    one line of text (recognition only, much faster for a known single-line region).
    Both return boxes in the pixels of the image given.
    """

    name: ClassVar[str] = "ocr"

    @abc.abstractmethod
    def read(self, image: np.ndarray) -> TextBoxes:
        """Detect and recognise every line of text in ``image``."""

    @abc.abstractmethod
    def read_line(self, image: np.ndarray) -> TextBoxes:
        """Recognise ``image`` as one line of text (zero or one box)."""

    def load(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Load models now instead of at the first call (optional)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """The box around the text ink of a single-line crop (Otsu; ink is the minority)."""
    h, w = image.shape[:2]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if int(gray.max()) - int(gray.min()) < 16:
        return 0, 0, w, h
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if np.count_nonzero(binary) > binary.size // 2:
        binary = 255 - binary
    x, y, bw, bh = cv2.boundingRect(binary)
    if bw == 0 or bh == 0:
        return 0, 0, w, h
    pad = 2
    x1, y1 = max(0, x - pad), max(0, y - pad)
    x2, y2 = min(w, x + bw + pad), min(h, y + bh + pad)
    return x1, y1, x2 - x1, y2 - y1


def _without_spinning(part: Any, cfg: Mapping[str, Any]) -> None:
    """Rebuild the onnxruntime session of a loaded RapidOCR part with its worker threads
    sleeping between runs instead of spinning (RapidOCR offers no such option): on a busy
    machine spinning threads burn a core while the next frame is awaited. Same model,
    threads, arena and graph optimisation; left as it is if that cannot be done."""
    wrapper = getattr(part, "session", None)
    old = getattr(wrapper, "session", None)
    path = getattr(old, "_model_path", None)
    if wrapper is None or old is None or not path:
        return
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        opts.enable_cpu_mem_arena = bool(cfg.get("enable_cpu_mem_arena", True))
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for name in ("intra_op_num_threads", "inter_op_num_threads"):
            n = int(cfg.get(name, -1))
            if 1 <= n <= (os.cpu_count() or 1):
                setattr(opts, name, n)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        wrapper.session = ort.InferenceSession(path, sess_options=opts,
                                               providers=old.get_providers())
    except Exception as exc:  # keep RapidOCR's own session: slower, still correct
        log.debug("RapidOCR session kept as built (%s: %s)", type(exc).__name__, exc)


def _check_file(path: str | os.PathLike[str] | None, what: str) -> str | None:
    if path is None or path == "":
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelNotFoundError(f"OCR {what} {str(p)!r} is not on disk")
    return str(p)


class RapidOcrEngine(OcrEngine):
    """RapidOCR 3.x on onnxruntime with its bundled PP-OCR models (Chinese + English).

    ``det_model`` / ``rec_model`` / ``cls_model`` / ``rec_keys`` replace the bundled
    files; each must exist. ``det_limit_type`` ``"max"`` (default, from settings) never
    scales a small crop up; ``use_cls`` adds the 180° orientation classifier (screens
    rarely need it). ``text_score`` drops lines RapidOCR reads with less confidence.
    ``params`` passes further RapidOCR settings (``{"Rec.ocr_version": "PP-OCRv5"}``);
    a model they select must be on disk too.
    """

    name = "rapidocr"

    def __init__(
        self,
        *,
        det_model: str | os.PathLike[str] | None = None,
        rec_model: str | os.PathLike[str] | None = None,
        cls_model: str | os.PathLike[str] | None = None,
        rec_keys: str | os.PathLike[str] | None = None,
        det_limit_type: str | None = None,
        det_limit_side_len: int | None = None,
        use_cls: bool = False,
        text_score: float = 0.5,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        vs = get_settings().vision
        limit_type = det_limit_type or vs.det_limit_type
        if limit_type not in ("max", "min"):
            raise VisionError(f"RapidOCR det_limit_type must be 'max' or 'min', got {limit_type!r}")
        side = int(det_limit_side_len or vs.det_limit_side_len)
        if side < 32:
            raise VisionError(f"RapidOCR det_limit_side_len must be >= 32, got {side}")
        if not 0.0 <= float(text_score) <= 1.0:
            raise VisionError(f"RapidOCR text_score must be within [0, 1], got {text_score!r}")
        self._params: dict[str, Any] = {
            "Global.log_level": "warning",
            "Global.text_score": float(text_score),
            "Global.use_cls": bool(use_cls),
            "Det.limit_type": limit_type,
            "Det.limit_side_len": side,
            # Measured on the simulated desktop at 720p (2 cores): recognition batches
            # of 2 pad lines less than RapidOCR's 6 (faster, and the padding no longer
            # costs a space between CJK and Latin words); onnxruntime's memory arena on
            # saves an allocation per tensor. Together about 40 % less CPU per read.
            "Rec.rec_batch_num": 2,
            "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
        }
        native = get_settings().runtime.native_threads
        if native:  # rapidocr applies it within [1, cores]
            self._params["EngineConfig.onnxruntime.intra_op_num_threads"] = native
            self._params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        for key, path, what in (("Det.model_path", det_model, "detection model"),
                                ("Rec.model_path", rec_model, "recognition model"),
                                ("Cls.model_path", cls_model, "classifier model"),
                                ("Rec.rec_keys_path", rec_keys, "character dictionary")):
            checked = _check_file(path, what)
            if checked:
                self._params[key] = checked
        for key, value in (params or {}).items():
            self._params[str(key)] = value
        self.use_cls = bool(use_cls)
        self._engine: Any = None
        self._loaded = False
        self._lock = threading.Lock()
        self._check_bundled_models()

    def _make(self) -> Any:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ModelNotFoundError(f"the rapidocr package is not installed: {exc}") from exc
        from rapidocr.utils.typings import EngineType, ModelType, OCRVersion, TaskType

        _route_rapidocr_log()  # its console handler exists once rapidocr is imported
        enums: dict[str, Any] = {"engine_type": EngineType, "model_type": ModelType,
                                 "ocr_version": OCRVersion, "task_type": TaskType}
        params = {}
        for key, value in self._params.items():
            kind = enums.get(key.rsplit(".", 1)[-1])
            try:
                params[key] = kind(value) if kind is not None and isinstance(value, str) else value
            except ValueError as exc:
                raise VisionError(f"RapidOCR parameter {key}: {exc}") from None
        try:
            return RapidOCR(params=params)
        except (ValueError, TypeError, KeyError) as exc:
            raise VisionError(f"RapidOCR parameters {sorted(params)}: {exc}") from None

    def _check_bundled_models(self) -> None:
        """Every model this configuration would use is already on disk (RapidOCR would
        otherwise try to download it at the first frame and fail offline)."""
        engine = self._make()
        try:
            from rapidocr.inference_engine.base import FileInfo, InferSession
        except ImportError:  # pragma: no cover - internal layout changed; load will tell
            self._engine = engine
            return
        cfg = engine.cfg
        root = Path(cfg.Global.model_root_dir)
        tasks = [("Det", "detection"), ("Rec", "recognition")]
        if self.use_cls:
            tasks.append(("Cls", "classifier"))
        for section, what in tasks:
            sec = cfg[section]
            if sec.get("model_path"):
                continue
            try:
                info = InferSession.get_model_url(FileInfo(
                    engine_type=sec.engine_type, ocr_version=sec.ocr_version,
                    task_type=sec.task_type, lang_type=sec.lang_type,
                    model_type=sec.model_type))
            except ValueError as exc:
                raise ModelNotFoundError(f"RapidOCR {what} model: {exc}") from None
            path = root / Path(str(info["model_dir"])).name
            if not path.is_file():
                raise ModelNotFoundError(
                    f"RapidOCR {what} model {path.name} ({sec.ocr_version.value}, "
                    f"{sec.model_type.value}) is not on disk under {root}; it would be "
                    "downloaded at the first frame")
        self._engine = engine

    def load(self) -> None:
        """Load the ONNX sessions now (they otherwise load on the first call)."""
        with self._lock:
            self._load()

    def _load(self) -> None:  # with self._lock
        if self._loaded:
            return
        eng = self._engine
        parts = [(eng._load_det_model(), "Det"), (eng._load_rec_model(), "Rec")]
        if self.use_cls:
            parts.append((eng._load_cls_model(), "Cls"))
        for part, section in parts:
            _without_spinning(part, eng.cfg[section].get("engine_cfg") or {})
        self._loaded = True

    def read(self, image: np.ndarray) -> TextBoxes:
        with self._lock:
            self._load()
            out = self._engine(image, use_det=True, use_cls=self.use_cls, use_rec=True)
        return TextBoxes.from_rapidocr(out)

    def read_line(self, image: np.ndarray) -> TextBoxes:
        with self._lock:
            self._load()
            out = self._engine(image, use_det=False, use_cls=False, use_rec=True)
        txts: Sequence[Any] = getattr(out, "txts", None) or ()
        scores: Sequence[Any] = getattr(out, "scores", None) or ()
        if not txts or not str(txts[0]).strip():
            return TextBoxes()
        return TextBoxes([TextBox(str(txts[0]), float(scores[0]), _ink_box(image))])

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._params.items() if not k.startswith("Global.log")}
        return f"RapidOcrEngine({shown})"


_TESS_LANGS: dict[str, frozenset[str]] = {}
_TESS_LOCK = threading.Lock()


def _tesseract_langs(binary: str) -> frozenset[str]:
    with _TESS_LOCK:
        if binary not in _TESS_LANGS:
            out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True,
                                 timeout=30, check=False)
            lines = (out.stdout + out.stderr).splitlines()
            _TESS_LANGS[binary] = frozenset(ln.strip() for ln in lines[1:] if ln.strip()
                                            and not ln.startswith("List of"))
        return _TESS_LANGS[binary]


class TesseractEngine(OcrEngine):
    """Tesseract 5 through its command-line binary (no Python binding needed).

    ``lang`` is Tesseract's ``-l`` value (default ``chi_sim+eng``); ``psm`` the page
    segmentation mode for :meth:`read` (:meth:`read_line` uses 7, one line);
    ``upscale`` enlarges the image first (Tesseract prefers text taller than screen
    text usually is). English reads well; Chinese poorly — prefer RapidOCR for it.
    """

    name = "tesseract"

    def __init__(self, *, lang: str = "chi_sim+eng", psm: int = 3, upscale: float = 2.0,
                 binary: str = "tesseract", timeout: float = 60.0) -> None:
        path = shutil.which(binary)
        if path is None:
            raise ModelNotFoundError(f"the tesseract binary {binary!r} is not installed "
                                     "(Debian: tesseract-ocr)")
        have = _tesseract_langs(path)
        missing = [lang_ for lang_ in lang.split("+") if lang_ not in have]
        if missing:
            raise ModelNotFoundError(
                f"tesseract language data {', '.join(missing)} is not installed "
                f"(have: {', '.join(sorted(have)) or 'none'})")
        if psm not in range(0, 14):
            raise VisionError(f"tesseract psm must be 0..13, got {psm!r}")
        if not 0.25 <= upscale <= 8:
            raise VisionError(f"tesseract upscale must be within [0.25, 8], got {upscale!r}")
        self.binary, self.lang, self.psm = path, lang, psm
        self.upscale, self.timeout = float(upscale), float(timeout)

    def _run(self, image: np.ndarray, psm: int) -> TextBoxes:
        img = image
        if self.upscale != 1.0:
            img = cv2.resize(image, None, fx=self.upscale, fy=self.upscale,
                             interpolation=cv2.INTER_CUBIC)
        ok, png = cv2.imencode(".png", img)
        if not ok:
            raise VisionError("tesseract: cannot encode the image as PNG")
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            out = subprocess.run(
                [self.binary, "stdin", "stdout", "-l", self.lang, "--psm", str(psm), "tsv"],
                input=png.tobytes(), capture_output=True, timeout=self.timeout, env=env,
                check=False)
        except subprocess.TimeoutExpired:
            raise VisionError(f"tesseract did not finish within {self.timeout:g} s") from None
        if out.returncode != 0:
            err = out.stderr.decode("utf-8", "replace").strip()
            raise VisionError(f"tesseract failed (exit {out.returncode}): {err[-300:]}")
        return TextBoxes.from_tesseract_tsv(out.stdout.decode("utf-8", "replace"),
                                            scale=self.upscale)

    def read(self, image: np.ndarray) -> TextBoxes:
        return self._run(image, self.psm)

    def read_line(self, image: np.ndarray) -> TextBoxes:
        boxes = self._run(image, 7)
        if len(boxes) <= 1:
            return boxes
        # psm 7 can still split a line; join it back into one box.
        ordered = boxes.sorted(key=lambda b: b.bbox[0])
        text = " ".join(b.text for b in ordered)
        conf = sum(b.confidence for b in ordered) / len(ordered)
        x1 = min(b.bbox[0] for b in ordered)
        y1 = min(b.bbox[1] for b in ordered)
        x2 = max(b.bbox[0] + b.bbox[2] for b in ordered)
        y2 = max(b.bbox[1] + b.bbox[3] for b in ordered)
        return TextBoxes([TextBox(text, conf, (x1, y1, x2 - x1, y2 - y1))])

    def __repr__(self) -> str:
        return f"TesseractEngine(lang={self.lang!r}, psm={self.psm}, upscale={self.upscale:g})"


#: OCR engine name -> its class (``settings.vision.ocr_engine`` names one).
OCR_ENGINES: dict[str, type[OcrEngine]] = {
    "rapidocr": RapidOcrEngine,
    "tesseract": TesseractEngine,
}

_engines: dict[tuple[str, Hashable], OcrEngine] = {}
_engines_lock = threading.Lock()


def get_ocr_engine(name: str | None = None, **options: Any) -> OcrEngine:
    """The process-wide engine ``name`` (default from settings) with ``options``.

    Built once per (name, options) and shared; building checks that every model is on
    disk (:class:`~kvmrpa.ModelNotFoundError` otherwise). Thread-safe.
    """
    name = name or get_settings().vision.ocr_engine
    cls = OCR_ENGINES.get(name)
    if cls is None:
        raise VisionError(f"unknown OCR engine {name!r}; expected one of {', '.join(OCR_ENGINES)}")
    key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            try:
                engine = cls(**options)
            except TypeError as exc:
                raise VisionError(f"OCR engine {name!r}: {exc}") from None
            _engines[key] = engine
            log.debug("built OCR engine %r", engine)
        return engine


def ocr(
    image: ImageLike,
    roi: tuple[int, int, int, int] | None = None,
    *,
    engine: str | OcrEngine | None = None,
    rec_only: bool = False,
    min_confidence: float = 0.0,
) -> TextBoxes:
    """Read the text of ``image`` (a :class:`~kvmrpa.Frame` or BGR array).

    ``roi`` ``(x, y, w, h)`` limits reading to a region (clipped to the image; boxes
    come back in whole-image pixels). ``rec_only`` treats the region as one line and
    skips detection (the box is the ink of the region). ``engine`` is a name or an
    :class:`OcrEngine` (default: the settings' engine). Blocking CPU work: from async
    code use :func:`aocr`.
    """
    img = to_bgr(image)
    part, (x, y, w, h) = crop(img, roi)
    eng = engine if isinstance(engine, OcrEngine) else get_ocr_engine(engine)
    start = time.perf_counter()
    boxes = eng.read_line(part) if rec_only else eng.read(part)
    log.debug("%s %s on %dx%d at (%d, %d): %d boxes in %.1f ms", eng.name,
              "rec-only" if rec_only else "read", w, h, x, y, len(boxes),
              (time.perf_counter() - start) * 1000)
    if min_confidence > 0:
        boxes = boxes.filter(min_confidence=min_confidence)
    return boxes.shifted(x, y)


async def aocr(
    image: ImageLike,
    roi: tuple[int, int, int, int] | None = None,
    *,
    engine: str | OcrEngine | None = None,
    rec_only: bool = False,
    min_confidence: float = 0.0,
) -> TextBoxes:
    """:func:`ocr` run in the runtime's worker pool (never blocks the event loop)."""
    return await get_runtime().to_thread(ocr, image, roi, engine=engine, rec_only=rec_only,
                                         min_confidence=min_confidence)

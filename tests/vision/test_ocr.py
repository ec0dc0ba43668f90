"""OCR on rendered English and Chinese lines: full frame, ROI, recognition only, both
engines, async and concurrent use, and models that are not on disk.

Full-frame OCR costs about a second here, so it runs once per module.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from kvmrpa import Frame, ModelNotFoundError, VisionError, run_sync
from kvmrpa.vision import OcrEngine, TextBoxes, aocr, get_ocr_engine, ocr
from kvmrpa.vision._geometry import iou
from kvmrpa.vision._ocr import RapidOcrEngine, TesseractEngine

from ._render import render_lines, text_box

LINES = [
    ("Hello kvmrpa 123", (30, 30), 28),
    ("测试", (30, 100), 28),
    ("Cancel OK 确定", (420, 100), 26),
    ("请输入 Chinese 中文", (30, 170), 28),
]
SIZE = (800, 260)


def _roi(line: tuple[str, tuple[int, int], int], margin: int = 10) -> tuple[int, int, int, int]:
    x, y, w, h = text_box(*line)
    return x - margin, y - margin, w + 2 * margin, h + 2 * margin


def _covers(found: tuple[int, int, int, int], ink: tuple[int, int, int, int],
            slack: int = 16) -> bool:
    """``found`` contains ``ink`` (2 px tolerance) and overshoots it by <= ``slack`` px."""
    fx, fy, fw, fh = found
    ix, iy, iw, ih = ink
    gaps = (ix - fx, iy - fy, fx + fw - ix - iw, fy + fh - iy - ih)
    return all(-2 <= g <= slack for g in gaps)


@pytest.fixture(scope="module")
def screen() -> np.ndarray:
    return render_lines(LINES, SIZE)


@pytest.fixture(scope="module")
def full_read(screen: np.ndarray) -> TextBoxes:
    return ocr(Frame(screen))


def test_full_frame_reads_every_line_exactly(full_read: TextBoxes) -> None:
    assert sorted(full_read.texts) == sorted(t for t, _, _ in LINES)
    for line in LINES:
        found = full_read.filter(line[0], "exact")
        assert len(found) == 1
        ink = text_box(*line)
        # the box found covers the rendered ink, with the detector's margin
        assert _covers(found[0].bbox, ink), (found[0].bbox, ink)
        assert found[0].confidence > 0.8
    assert full_read.reading_order().texts == [LINES[0][0], LINES[1][0], LINES[2][0], LINES[3][0]]


def test_roi_reads_only_that_region_in_image_pixels(screen: np.ndarray) -> None:
    line = LINES[3]
    got = ocr(screen, _roi(line))
    assert got.texts == [line[0]]
    assert _covers(got[0].bbox, text_box(*line))


def test_rec_only_reads_a_single_line_and_boxes_its_ink(screen: np.ndarray) -> None:
    for line in (LINES[0], LINES[2]):
        got = ocr(screen, _roi(line), rec_only=True)
        assert got.texts == [line[0]]
        assert iou(got[0].bbox, text_box(*line)) > 0.7, (got[0].bbox, text_box(*line))
    blank = ocr(screen, (700, 200, 90, 50), rec_only=True)
    assert len(blank) == 0


def test_ocr_on_a_cropped_frame_maps_back_to_the_source(screen: np.ndarray) -> None:
    frame = Frame(screen)
    x, y, w, h = _roi(LINES[1], 12)
    crop = frame.derive(screen[y:y + h, x:x + w], offset=(x, y))
    got = ocr(crop, rec_only=True)
    assert got.texts == ["测试"]
    ink = text_box(*LINES[1])
    assert got[0].bbox[0] < ink[0] - x + 4  # in the crop's pixels...
    assert iou(got.to_source(crop)[0].bbox, ink) > 0.7  # ...and mapped to the source


def test_engine_is_shared_and_safe_from_many_threads(screen: np.ndarray) -> None:
    engine = get_ocr_engine()
    assert isinstance(engine, RapidOcrEngine) and engine is get_ocr_engine("rapidocr")
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def read(i: int) -> None:
        try:
            line = LINES[i % len(LINES)]
            for _ in range(2):
                results.setdefault(i, []).extend(ocr(screen, _roi(line), rec_only=True).texts)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for i in range(6):
        assert results[i] == [LINES[i % len(LINES)][0]] * 2


def test_aocr_runs_in_the_runtime_pool(screen: np.ndarray) -> None:
    seen: list[str] = []

    class Spy(OcrEngine):
        def read(self, image: np.ndarray) -> TextBoxes:
            seen.append(threading.current_thread().name)
            return get_ocr_engine().read(image)

        def read_line(self, image: np.ndarray) -> TextBoxes:
            seen.append(threading.current_thread().name)
            return get_ocr_engine().read_line(image)

    got = run_sync(aocr(screen, _roi(LINES[0]), engine=Spy(), rec_only=True), timeout=60)
    assert got.texts == [LINES[0][0]]
    assert seen and "worker" in seen[0]


def test_models_not_on_disk_fail_at_construction(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="recognition model"):
        RapidOcrEngine(rec_model=tmp_path / "missing.onnx")
    # a model RapidOCR would download at the first frame (offline: fails then)
    with pytest.raises(ModelNotFoundError, match="not on disk"):
        RapidOcrEngine(params={"Rec.ocr_version": "PP-OCRv5", "Rec.model_type": "mobile"})
    with pytest.raises(ModelNotFoundError, match="language data xyz"):
        TesseractEngine(lang="eng+xyz")
    with pytest.raises(ModelNotFoundError, match="not installed"):
        TesseractEngine(binary="tesseract-does-not-exist")
    with pytest.raises(VisionError, match="unknown OCR engine"):
        get_ocr_engine("easyocr")
    with pytest.raises(VisionError, match="outside"):
        ocr(np.zeros((50, 50, 3), np.uint8), (100, 100, 10, 10))


def test_tesseract_reads_an_english_line(screen: np.ndarray) -> None:
    engine = get_ocr_engine("tesseract", lang="eng")
    assert isinstance(engine, TesseractEngine)
    got = ocr(screen, _roi(LINES[0]), engine=engine, rec_only=True)
    assert got.texts == [LINES[0][0]]
    assert iou(got[0].bbox, text_box(*LINES[0])) > 0.8
    assert 0 < got[0].confidence <= 1


def test_tesseract_full_read_groups_words_into_lines() -> None:
    lines = [("Open the settings", (20, 20), 26), ("Network status: connected", (20, 90), 26)]
    img = render_lines(lines, (520, 150))
    got = ocr(img, engine=get_ocr_engine("tesseract", lang="eng")).reading_order()
    assert got.texts == [t for t, _, _ in lines]
    for box, line in zip(got, lines, strict=True):
        assert iou(box.bbox, text_box(*line)) > 0.8


def test_ocr_of_an_empty_image_is_silent_at_the_default_log_level() -> None:
    """RapidOCR's "text detection result is empty" (one per empty region) reaches neither
    stdout nor stderr of a plain script; the root logger is left as it was."""
    import subprocess
    import sys

    script = (
        "import logging, numpy as np\n"
        "from kvmrpa.vision import ocr, get_ocr_engine\n"
        "blank = np.full((120, 240, 3), 255, np.uint8)\n"
        "assert len(ocr(blank)) == 0 and len(ocr(blank, roi=(10, 10, 100, 50))) == 0\n"
        "assert len(get_ocr_engine().read_line(blank)) == 0\n"
        "root = logging.getLogger()\n"
        "assert root.handlers == [] and root.level == logging.WARNING\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_rapidocr_messages_go_to_the_kvmrpa_ocr_logger_at_debug(
        caplog: pytest.LogCaptureFixture) -> None:
    import logging

    get_ocr_engine()  # built: RapidOCR's logger is routed
    rapid = logging.getLogger("RapidOCR")
    assert not any(type(h) is logging.StreamHandler for h in rapid.handlers), rapid.handlers
    with caplog.at_level(logging.DEBUG, logger="kvmrpa.vision.ocr"):
        assert len(ocr(np.full((120, 240, 3), 255, np.uint8))) == 0
    routed = [r for r in caplog.records if r.name == "kvmrpa.vision.ocr"
              and "RapidOCR: The text detection result is empty" in r.getMessage()]
    assert routed and all(r.levelno == logging.DEBUG for r in routed)

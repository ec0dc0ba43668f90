"""The template store: crops of frames saved beside a flow, with their capture metadata."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from kvmrpa import Frame
from kvmrpa._errors import VisionError
from kvmrpa.engine import TemplateStore, safe_template_name
from kvmrpa.engine._templates import MAX_NAME, MAX_SIDE
from kvmrpa.vision import match_template


def screen(w: int = 640, h: int = 360) -> np.ndarray:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.rectangle(img, (200, 100), (260, 140), (0, 0, 255), -1)
    cv2.putText(img, "OK", (210, 130), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return img


def test_save_writes_png_and_sidecar_beside_the_flow(tmp_path) -> None:
    flow = tmp_path / "flows" / "login.json"
    store = TemplateStore.beside(flow)
    assert store.folder == tmp_path / "flows" / "templates"
    frame = Frame(screen(), seq=42, source_id="sim://x")
    info = store.save(frame, (200, 100, 61, 41), "click ok")
    assert info.name == "click_ok"
    assert info.path == tmp_path / "flows" / "templates" / "click_ok.png"
    assert info.size == (61, 41) and info.region == (200, 100, 61, 41)
    assert info.source_size == (640, 360)
    assert info.capture == {"source_id": "sim://x", "seq": 42, "wall": frame.wall}
    meta = json.loads(info.sidecar.read_text(encoding="utf-8"))
    assert meta["source_size"] == [640, 360] and meta["source_region"] == [200, 100, 61, 41]
    assert meta["capture_size"] == [640, 360] and meta["name"] == "click_ok"
    assert meta["saved"] >= frame.wall
    # the pixels are the region's, and matching finds them where they were cut
    tpl = store.load("click_ok")
    assert np.array_equal(tpl.image, frame.image[100:141, 200:261])
    assert tpl.capture_size == (640, 360)
    best = match_template(frame, tpl)[0]
    assert best.bbox[:2] == (200, 100) and best.score > 0.99
    # no temporary file is left behind
    assert sorted(p.name for p in store.folder.iterdir()) == ["click_ok.json", "click_ok.png"]


def test_region_is_in_source_pixels_whatever_the_frame_crop_and_scale(tmp_path) -> None:
    full = Frame(screen())
    # a frame cropped at (150, 80) and upscaled 2x, as crop + preprocess make it
    part = full.image[80:200, 150:350]
    derived = full.derive(cv2.resize(part, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST),
                          offset=(150, 80), scale=2.0)
    store = TemplateStore(tmp_path)
    info = store.save(derived, (200, 100, 60, 40), "button", source_size=(640, 360))
    assert info.region == (200, 100, 60, 40)
    assert info.size == (120, 80)  # in the derived frame's pixels
    assert info.source_size == (640, 360)
    tpl = store.load("button")
    assert tpl.capture_size == (1280, 720)  # the full size in the template's own pixels
    # rescaled to the full frame, it is found where it was cut there
    best = match_template(full, tpl)[0]
    assert abs(best.bbox[0] - 200) <= 1 and abs(best.bbox[1] - 100) <= 1


def test_names_are_safe_and_unique(tmp_path) -> None:
    assert safe_template_name("../../etc/passwd") == "etc_passwd"
    assert safe_template_name("请输入 框") == "请输入_框"
    assert safe_template_name(".hidden") == "hidden"
    assert safe_template_name("") == "template"
    assert safe_template_name("CON") == "template_CON"
    assert len(safe_template_name("x" * 500)) == MAX_NAME
    store = TemplateStore(tmp_path)
    frame = Frame(screen())
    names = [store.save(frame, (10, 10, 20, 20), "focus").name for _ in range(3)]
    assert names == ["focus", "focus-2", "focus-3"]
    assert store.names() == ["focus", "focus-2", "focus-3"]
    # replace overwrites in place
    assert store.save(frame, (30, 30, 20, 20), "focus", replace=True).name == "focus"
    assert store.info("focus").region == (30, 30, 20, 20)
    with pytest.raises(VisionError, match="plain file name"):
        store.path_of("../x")


def test_concurrent_saves_get_distinct_names(tmp_path) -> None:
    store = TemplateStore(tmp_path)
    frame = Frame(screen())
    got: list[str] = []
    lock = threading.Lock()

    def save() -> None:
        name = store.save(frame, (0, 0, 16, 16), "same").name
        with lock:
            got.append(name)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == sorted(store.names()) and len(set(got)) == 6


def test_rename_list_delete(tmp_path) -> None:
    store = TemplateStore(tmp_path)
    frame = Frame(screen())
    store.save(frame, (200, 100, 61, 41), "a")
    store.save(frame, (0, 0, 30, 30), "b")
    info = store.rename("a", "ok button")
    assert info.name == "ok_button" and info.region == (200, 100, 61, 41)
    assert store.load("ok_button").name == "ok_button"  # the name inside the PNG follows
    assert [i.name for i in store.list()] == ["b", "ok_button"]
    assert "a" not in store and not (tmp_path / "a.json").exists()
    with pytest.raises(VisionError, match="exists already"):
        store.rename("b", "ok_button")
    with pytest.raises(VisionError, match="no template"):
        store.rename("gone", "x")
    store.delete("b")
    store.delete("b")  # nothing left: no error
    assert store.names() == ["ok_button"]


def test_bad_regions_and_files_are_refused_or_skipped(tmp_path) -> None:
    store = TemplateStore(tmp_path)
    frame = Frame(screen())
    with pytest.raises(VisionError, match="less than 4x4"):
        store.save(frame, (700, 10, 50, 50), "outside")
    with pytest.raises(VisionError, match="less than 4x4"):
        store.save(frame, (10, 10, 2, 50), "thin")
    with pytest.raises(VisionError, match="not finite"):
        store.save(frame, (float("nan"), 0, 10, 10), "nan")
    with pytest.raises(VisionError, match="region must be"):
        store.save(frame, (1, 2), "short")  # type: ignore[arg-type]
    big = Frame(np.zeros((MAX_SIDE + 10, 64, 3), np.uint8))
    with pytest.raises(VisionError, match=f"larger than {MAX_SIDE}"):
        store.save(big, (0, 0, 64, MAX_SIDE + 10), "big")
    assert store.names() == []
    # a clipped region keeps what is inside the frame
    assert store.save(frame, (620, 340, 100, 100), "corner").region == (620, 340, 20, 20)
    # a broken PNG and a foreign file are left out of the list; a bad sidecar is ignored
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "corner.json").write_text("{not json")
    assert [i.name for i in store.list()] == ["corner"]
    assert store.info("corner").region == (620, 340, 20, 20)  # from the PNG's own metadata


def test_a_flow_names_its_templates_relative_to_its_file(tmp_path, monkeypatch) -> None:
    """A template saved beside the flow is written relative to the flow file and read
    from there wherever the flow is loaded from (the flow folder can be moved)."""
    import shutil

    import numpy as np

    from kvmrpa import Flow
    from kvmrpa._frame import Frame
    from kvmrpa.engine import TemplateStore

    folder = tmp_path / "flows"
    store = TemplateStore.beside(folder / "f.json")
    image = np.zeros((60, 80, 3), np.uint8)
    image[10:30, 20:50] = (0, 200, 255)
    info = store.save(Frame(image, seq=1, source_id="t"), (20, 10, 30, 20), "ok")
    flow = Flow("f")
    flow.add("match_template", "m", template=str(info.path))
    flow.save(folder / "f.json")
    saved = (folder / "f.json").read_text(encoding="utf-8")
    assert '"template": "templates/ok.png"' in saved and str(tmp_path) not in saved

    moved = tmp_path / "elsewhere"
    shutil.copytree(folder, moved)
    shutil.rmtree(folder)
    monkeypatch.chdir(tmp_path)
    again = Flow.load(moved / "f.json")
    assert again.nodes["m"].node.template == str((moved / "templates" / "ok.png").resolve())
    assert again.problems() == []
    # a template outside the flow's folder stays absolute; an unknown relative one as is
    flow.add("match_template", "n", template="missing.png")
    flow.save(tmp_path / "g.json")
    doc = (tmp_path / "g.json").read_text(encoding="utf-8")
    assert '"template": "missing.png"' in doc

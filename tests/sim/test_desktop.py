"""The simulated desktop's behaviour, driven through the real InputDriver API."""

from __future__ import annotations

import numpy as np
import pytest

from kvmrpa import ConfigError, UrlError, configure, get_settings, run_sync
from kvmrpa.sim import SimDriver, get_desktop, parse_sim_url, scenario_names, sim_key
from kvmrpa.sim._fonts import find_font, load_font

from .conftest import centre


def drive(url: str) -> tuple[object, SimDriver]:
    return get_desktop(url), SimDriver(url)


# -- URLs and sharing -------------------------------------------------------------------------
def test_url_parsing_and_errors() -> None:
    opts, key = parse_sim_url("sim://Scenario2?width=800&height=600&fps=10&seed=7&realism=0")
    assert (opts.scenario, opts.width, opts.height, opts.fps, opts.seed, opts.realism) == (
        "scenario2", 800, 600, 10.0, 7, False)
    assert key == "sim://scenario2?fps=10&height=600&realism=0&seed=7&width=800"
    assert parse_sim_url("sim://")[0].scenario == "desktop"
    assert set(scenario_names()) == {"desktop", "scenario1", "scenario2", "scenario3"}
    with pytest.raises(UrlError, match=r"unknown scenario 'nope'.*scenario1"):
        parse_sim_url("sim://nope")
    with pytest.raises(UrlError, match=r"unknown parameter.*colour"):
        parse_sim_url("sim://scenario1?colour=red")
    with pytest.raises(UrlError, match="width=10 is outside"):
        parse_sim_url("sim://scenario1?width=10")
    with pytest.raises(UrlError, match="seed='x' is not an integer"):
        parse_sim_url("sim://scenario1?seed=x")
    with pytest.raises(UrlError, match="realism='maybe'"):
        parse_sim_url("sim://scenario1?realism=maybe")


def test_one_desktop_per_normalized_url() -> None:
    a = get_desktop("sim://scenario1?seed=3&realism=0")
    b = get_desktop("SIM://scenario1?realism=0&seed=3")
    c = get_desktop("sim://scenario1?seed=4&realism=0")
    assert a is b and a is not c
    assert sim_key("sim://scenario1?seed=3&realism=0") == a.url
    drv = SimDriver("sim://scenario1?realism=0&seed=3")
    assert drv.target_size() == (1280, 720) and drv.capabilities.unicode_text
    run_sync(drv.click(*centre(a.find("ok"))))
    assert b.state()["page"] == "confirmed"
    run_sync(drv.aclose())


def test_seed_varies_positions_and_is_deterministic() -> None:
    boxes = set()
    for seed in range(20):
        d = get_desktop(f"sim://scenario1?seed={seed}&realism=0")
        boxes.add((d.find("ok"), d.find("cancel"), d.find("label")))
    assert len(boxes) == 20
    one = get_desktop("sim://scenario3?seed=11&realism=0&fps=5").find("entry")
    two = get_desktop("sim://scenario3?seed=11&realism=0&fps=6").find("entry")
    assert one == two
    unseeded = {get_desktop(f"sim://scenario2?width={640 + i}").find("next") for i in range(6)}
    assert len(unseeded) > 1  # no seed: a random layout per desktop


# -- scenario behaviour ------------------------------------------------------------------------
def test_scenario1_ok_and_cancel() -> None:
    d, drv = drive("sim://scenario1?seed=1&realism=0")
    assert d.state()["page"] == "dialog" and d.state()["windows"] == ["dialog"]
    run_sync(drv.click(*centre(d.find("ok"))))
    st = d.state()
    assert (st["page"], st["status"], st["last_clicked"], st["windows"]) == (
        "confirmed", "已确定", "ok", [])
    d2, drv2 = drive("sim://scenario1?seed=2&realism=0")
    run_sync(drv2.click(*centre(d2.find("cancel"))))
    assert (d2.state()["page"], d2.state()["status"]) == ("cancelled", "已取消")
    run_sync(drv.aclose())
    run_sync(drv2.aclose())


def test_click_on_label_or_background_does_nothing() -> None:
    d, drv = drive("sim://scenario1?seed=9&realism=0")
    run_sync(drv.click(*centre(d.find("label"))))
    run_sync(drv.click(3, 3))
    st = d.state()
    assert st["page"] == "dialog" and st["status"] == "" and st["clicks"] == ["label"]
    run_sync(drv.aclose())


def test_pressed_state_is_visible_and_release_elsewhere_cancels(desk) -> None:
    d, drv = desk
    x, y, w, h = d.find("ok")
    run_sync(drv.move(x + w / 2, y + h / 2))
    hover = d.snapshot()[y : y + h, x : x + w].astype(int)
    run_sync(drv.press())
    assert d.state()["pressed"] == "ok" and d.state()["buttons_down"] == ["left"]
    pressed = d.snapshot()[y : y + h, x : x + w].astype(int)
    assert np.abs(pressed - hover).mean() > 2  # a visibly different look
    run_sync(drv.move(5, 5))  # leave the button before releasing: no click
    run_sync(drv.release())
    st = d.state()
    assert st["page"] == "dialog" and st["last_clicked"] is None and st["pressed"] is None


def test_scenario2_steps() -> None:
    d, drv = drive("sim://scenario2?seed=4&realism=0")
    assert d.state()["page"] == "step1"
    run_sync(drv.click(*centre(d.find("next"))))
    assert (d.state()["page"], d.state()["status"]) == ("step2", "第2步")
    run_sync(drv.click(*centre(d.find("prev"))))
    run_sync(drv.click(*centre(d.find("prev"))))
    assert (d.state()["page"], d.state()["status"]) == ("step0", "第0步")
    run_sync(drv.click(*centre(d.find("prev"))))
    assert d.state()["page"] == "step0"  # never below 0
    run_sync(drv.aclose())


def test_scenario3_focus_typing_editing_and_submit() -> None:
    d, drv = drive("sim://scenario3?seed=6&realism=0")
    lx, ly, _lw, lh = d.find("label")
    run_sync(drv.type_text("lost"))  # nothing focused: goes nowhere
    assert d.state()["entry"] == "" and d.state()["focused"] is None
    run_sync(drv.click(lx + 20, ly + lh + 14))  # just below the label
    assert d.state()["focused"] == "entry"
    run_sync(drv.type_text("测试3"))
    assert d.state()["entry"] == "测试3"
    run_sync(drv.key("BackSpace"))
    run_sync(drv.key_down("shift"))
    run_sync(drv.key("a"))
    run_sync(drv.key("1"))
    run_sync(drv.key_up("shift"))
    run_sync(drv.key("space"))
    run_sync(drv.key("Left"))
    run_sync(drv.key("b"))
    assert d.state()["entry"] == "测试A!b "
    run_sync(drv.hotkey("ctrl+a"))
    assert d.state()["selected_all"]["entry"] is True
    run_sync(drv.type_text("Ünïcode ✓ 你好"))
    assert d.state()["entry"] == "Ünïcode ✓ 你好"
    run_sync(drv.hotkey("ctrl", "a"))
    run_sync(drv.key("BackSpace"))
    assert d.state()["entry"] == ""
    run_sync(drv.type_text("测试3"))
    run_sync(drv.key("Return"))
    st = d.state()
    assert (st["page"], st["status"], st["vars"]["submitted"]) == ("submitted", "已提交", "测试3")
    run_sync(drv.click(3, 3))  # clicking away takes the focus
    run_sync(drv.type_text("x"))
    assert d.state()["focused"] is None and d.state()["entry"] == "测试3"
    run_sync(drv.aclose())


def test_typed_text_is_drawn_with_caret() -> None:
    d, drv = drive("sim://scenario3?seed=8&realism=0")
    x, y, w, h = d.find("entry")
    empty = d.snapshot()[y : y + h, x : x + w].copy()
    run_sync(drv.click(x + w / 2, y + h / 2))
    focused = d.snapshot()[y : y + h, x : x + w].copy()
    run_sync(drv.type_text("测试3"))
    typed = d.snapshot()[y : y + h, x : x + w]
    assert (focused != empty).any()  # focus ring and caret
    dark = (typed.mean(axis=2) < 100).sum()
    assert dark > (focused.mean(axis=2) < 100).sum() + 50  # glyphs appeared
    run_sync(drv.aclose())


def test_tab_focus_and_checkbox_on_desktop() -> None:
    d, drv = drive("sim://desktop?seed=2&realism=0&reset=0.01")
    assert d.state()["checked"] == {"auto_reset": True}
    run_sync(drv.click(*centre(d.find("auto_reset"))))
    assert d.state()["checked"] == {"auto_reset": False}
    box = d.find("auto_reset")
    unchecked = d.snapshot()[box[1] : box[1] + box[3], box[0] : box[0] + box[3]].copy()
    run_sync(drv.click(*centre(box)))
    checked = d.snapshot()[box[1] : box[1] + box[3], box[0] : box[0] + box[3]]
    assert d.state()["checked"] == {"auto_reset": True} and (checked != unchecked).any()
    run_sync(drv.key("Tab"))
    assert d.state()["focused"] == "entry"
    run_sync(drv.key("Escape"))
    assert d.state()["focused"] is None
    run_sync(drv.scroll(-3))
    assert d.state()["scrolled"] == (0, -3)
    run_sync(drv.click(*centre(d.find("ok"))))
    assert d.state()["status"] == "已确定" and "dialog" not in d.state()["windows"]
    run_sync(drv.aclose())


def test_auto_reset_brings_the_scenario_back() -> None:
    import time

    d, drv = drive("sim://scenario2?seed=3&realism=0&reset=0.05")
    first = d.find("next")
    run_sync(drv.click(*centre(first)))
    assert d.state()["page"] == "step2"
    deadline = time.monotonic() + 10
    while d.state()["resets"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    st = d.state()
    assert st["resets"] == 1 and st["page"] == "step1" and st["status"] == ""
    run_sync(drv.aclose())


def test_driver_maps_frame_pixels_to_the_screen() -> None:
    url = "sim://scenario1?seed=12&realism=0"
    d = get_desktop(url)
    drv = SimDriver(url, frame_size=(640, 360))
    cx, cy = centre(d.find("ok"))
    run_sync(drv.click(cx / 2, cy / 2))
    assert d.state()["page"] == "confirmed"
    run_sync(drv.aclose())


def test_small_screen_layout_fits() -> None:
    for name in scenario_names():
        d = get_desktop(f"sim://{name}?seed=1&width=640&height=400&realism=0")
        w, h = d.size
        for wid in d.state()["windows"]:
            x, y, ww, hh = d.find(wid)
            assert x >= 0 and y >= 0 and x + ww <= w and y + hh <= h - d.u(40) + 1, (name, wid)


# -- fonts ----------------------------------------------------------------------------------------
def test_font_is_noto_cjk_and_missing_font_is_a_clear_error() -> None:
    assert "NotoSansCJK" in find_font() or "Noto" in load_font(20).getname()[0]
    assert load_font(20).getname()[0] == "Noto Sans CJK SC"
    settings = get_settings()
    old = settings.vision.font_path
    try:
        configure(vision__font_path="/nonexistent/font.ttc")
        with pytest.raises(ConfigError, match=r"vision.font_path.*does not exist"):
            get_desktop("sim://scenario1?seed=999&realism=0&fps=3")
    finally:
        configure(vision__font_path=old)


def test_pointer_is_drawn_and_hidden_while_typing() -> None:
    d, drv = drive("sim://scenario3?seed=19&realism=0")
    x, y, _w, h = d.find("entry")
    px, py = x + 30, y + h // 2
    run_sync(drv.move(px, py))
    region = (slice(py, py + 12), slice(px, px + 8))
    with_pointer = d.snapshot()[region].copy()
    run_sync(drv.click(px, py))
    run_sync(drv.type_text("x"))
    assert d.state()["pointer_hidden"] is True
    assert (d.snapshot()[region] != with_pointer).any()
    run_sync(drv.move(px, py))
    assert d.state()["pointer_hidden"] is False
    run_sync(drv.aclose())


def test_public_reset_restores_the_desktop_as_created() -> None:
    from kvmrpa import sim

    url = "sim://scenario1?seed=21&realism=0"
    d, drv = drive(url)
    before = (d.find("ok"), d.find("cancel"), d.find("label"), d.state()["pointer"])
    page = d.state()["page"]
    run_sync(drv.click(*centre(d.find("ok"))))
    assert d.state()["page"] == "confirmed" and d.status == "已确定"
    assert sim.reset("SIM://scenario1?realism=0&seed=21") is True
    st = d.state()
    assert st["page"] == page and st["status"] == "" and st["clicks"] == []
    assert (d.find("ok"), d.find("cancel"), d.find("label"), st["pointer"]) == before
    run_sync(drv.click(*centre(d.find("ok"))))  # the scenario works again after a reset
    assert d.state()["page"] == "confirmed"
    assert sim.reset("sim://scenario2?seed=987654") is False  # nothing open: nothing to do
    with pytest.raises(UrlError, match="unknown scenario"):
        sim.reset("sim://nope")
    run_sync(drv.aclose())

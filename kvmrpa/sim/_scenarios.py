"""The scenarios the simulated desktop ships: the three reference scenarios and ``desktop``.

Every position comes from the desktop's seeded generator, so a flow has to find things
by looking (OCR, matching) and cannot hard-code coordinates:

* ``scenario1``: label 测试, buttons 取消 / 确定 (random order); 确定 closes the dialog and
  shows 已确定 in the taskbar, 取消 closes it and shows 已取消.
* ``scenario2``: label 测试2, a step indicator (第1步) and buttons 上一步 / 下一步; 下一步 shows
  第2步, 上一步 shows 第0步 (in the dialog and in the taskbar).
* ``scenario3``: label 请输入 directly above an input box; clicking just below the label
  focuses the box and typed text appears in it; Enter or 提交 shows 已提交.
* ``desktop``: all three windows at once plus a control window (自动重置 check box,
  重置 button); a finished scenario starts over after a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from ._desktop import SimDesktop
from ._widgets import Button, Checkbox, Label, TextInput, Window

__all__ = ["SCENARIOS", "scenario_names"]

# Callbacks take the desktop as an argument (no closure over it: no reference cycle).
Done = Callable[["SimDesktop"], None]


def _place(d: SimDesktop, w: int, h: int, area: tuple[int, int, int, int] | None = None) -> tuple[int, int]:
    """A random top-left corner for a ``w``x``h`` window inside ``area`` (x, y, w, h)."""
    sw, sh = d.size
    ax, ay, aw, ah = area or (0, 0, sw, sh - d.u(40))
    margin = d.u(12)
    x_hi = max(ax + margin, ax + aw - w - margin)
    y_hi = max(ay + margin, ay + ah - h - margin)
    return d.rng.randint(ax + margin, x_hi), d.rng.randint(ay + margin, y_hi)


def _status_x(d: SimDesktop) -> None:
    d.vars["status_x"] = d.rng.randint(d.u(120), max(d.u(121), d.size[0] // 2))


def _window(d: SimDesktop, wid: str, title: str, w: int, h: int,
            area: tuple[int, int, int, int] | None) -> Window:
    x, y = _place(d, w, h, area)
    return Window(wid, title, x, y, w, h, title_size=d.u(16))


def build_dialog(d: SimDesktop, area: tuple[int, int, int, int] | None = None,
                 done: Done | None = None) -> Window:
    """Scenario 1: 测试 with 取消 / 确定."""
    u, rng = d.u, d.rng
    win = _window(d, "dialog", "提示", u(rng.randint(360, 420)), u(rng.randint(190, 220)), area)
    body_y = win.y + win.title_h
    win.add(Label("label", win.x + u(rng.randint(24, 120)), body_y + u(rng.randint(18, 40)),
                  u(120), u(40), font_size=u(26), text="测试"))
    bw, bh = u(100), u(38)
    gap = u(rng.randint(16, 60))
    left = win.x + u(rng.randint(20, 60))
    by = win.y + win.h - bh - u(rng.randint(14, 24))
    order = ["ok", "cancel"] if rng.random() < 0.5 else ["cancel", "ok"]

    def choose(dk: SimDesktop, result: str, page: str) -> None:
        dk.close_window("dialog")
        dk.page = page
        dk.set_status(result)
        if done is not None:
            done(dk)

    texts = {"ok": "确定", "cancel": "取消"}
    actions = {"ok": lambda dk: choose(dk, "已确定", "confirmed"),
               "cancel": lambda dk: choose(dk, "已取消", "cancelled")}
    for i, bid in enumerate(order):
        win.add(Button(bid, left + i * (bw + gap), by, bw, bh, font_size=u(20),
                       text=texts[bid], on_click=actions[bid]))
    return win


def build_wizard(d: SimDesktop, area: tuple[int, int, int, int] | None = None,
                 done: Done | None = None) -> Window:
    """Scenario 2: 测试2 with 上一步 / 下一步 and a step indicator."""
    u, rng = d.u, d.rng
    win = _window(d, "wizard", "向导", u(rng.randint(380, 440)), u(rng.randint(210, 240)), area)
    body_y = win.y + win.title_h
    win.add(Label("label", win.x + u(rng.randint(24, 100)), body_y + u(rng.randint(14, 30)),
                  u(140), u(40), font_size=u(26), text="测试2"))
    step = Label("step", win.x + u(rng.randint(200, 260)), body_y + u(rng.randint(14, 30)),
                 u(100), u(40), font_size=u(22), text="第1步")
    win.add(step)
    d.vars["step"] = 1
    bw, bh = u(110), u(38)
    left = win.x + u(rng.randint(20, 60))
    gap = u(rng.randint(16, 60))
    by = win.y + win.h - bh - u(rng.randint(14, 24))

    def go(dk: SimDesktop, delta: int) -> None:
        n = max(0, dk.vars.get("step", 1) + delta)
        dk.vars["step"] = n
        step.text = f"第{n}步"
        dk.page = f"step{n}"
        dk.set_status(f"第{n}步")
        if done is not None:
            done(dk)

    win.add(Button("prev", left, by, bw, bh, font_size=u(20), text="上一步",
                   on_click=lambda dk: go(dk, -1)))
    win.add(Button("next", left + bw + gap, by, bw, bh, font_size=u(20), text="下一步",
                   on_click=lambda dk: go(dk, +1)))
    return win


def build_form(d: SimDesktop, area: tuple[int, int, int, int] | None = None,
               done: Done | None = None) -> Window:
    """Scenario 3: 请输入 above an input box (and a 提交 button)."""
    u, rng = d.u, d.rng
    inset = u(rng.randint(24, 70))
    ew = u(rng.randint(230, 280))
    width = inset + ew + u(12 + 76 + rng.randint(16, 40))
    win = _window(d, "form", "信息录入", width, u(rng.randint(200, 230)), area)
    body_y = win.y + win.title_h
    lx = win.x + inset
    ly = body_y + u(rng.randint(16, 36))
    label_h = u(36)
    win.add(Label("label", lx, ly, u(120), label_h, font_size=u(24), text="请输入"))
    ey = ly + label_h + u(rng.randint(0, 6))

    def submit(dk: SimDesktop, text: str) -> None:
        dk.page = "submitted"
        dk.vars["submitted"] = text
        dk.set_status("已提交")
        if done is not None:
            done(dk)

    entry = TextInput("entry", lx - u(4), ey, ew, u(42), font_size=u(22), on_submit=submit)
    win.add(entry)
    bx = entry.x + entry.w + u(12)
    win.add(Button("submit", bx, ey + u(2), u(76), u(38), font_size=u(20), text="提交",
                   on_click=lambda dk: submit(dk, entry.text)))
    return win


def scenario1(d: SimDesktop) -> None:
    d.page = "dialog"
    _status_x(d)
    d.add_window(build_dialog(d, done=SimDesktop.finished))


def scenario2(d: SimDesktop) -> None:
    d.page = "step1"
    _status_x(d)
    d.add_window(build_wizard(d, done=SimDesktop.finished))


def scenario3(d: SimDesktop) -> None:
    d.page = "form"
    _status_x(d)
    d.add_window(build_form(d, done=SimDesktop.finished))


def desktop(d: SimDesktop) -> None:
    """All three scenarios in the quadrants of the screen, plus a control window."""
    sw, sh = d.size
    usable = sh - d.u(40)
    cells = [(0, 0, sw // 2, usable // 2), (sw // 2, 0, sw - sw // 2, usable // 2),
             (0, usable // 2, sw // 2, usable - usable // 2),
             (sw // 2, usable // 2, sw - sw // 2, usable - usable // 2)]
    d.rng.shuffle(cells)
    d.page = "desktop"
    _status_x(d)
    persist = d.__dict__.setdefault("_persist", {"auto_reset": True})

    def done(dk: SimDesktop) -> None:
        if persist["auto_reset"]:
            dk.after(dk.options.reset or 3.0, SimDesktop.reset)

    d.add_window(build_dialog(d, cells[0], done))
    d.add_window(build_wizard(d, cells[1], done))
    d.add_window(build_form(d, cells[2], done))
    u = d.u
    ctl = _window(d, "control", "控制面板", u(300), u(150), cells[3])
    body_y = ctl.y + ctl.title_h

    def set_auto(_dk: SimDesktop, checked: bool) -> None:
        persist["auto_reset"] = checked

    ctl.add(Checkbox("auto_reset", ctl.x + u(20), body_y + u(14), u(200), u(34),
                     font_size=u(20), text="自动重置", checked=persist["auto_reset"],
                     on_change=set_auto))
    ctl.add(Button("reset", ctl.x + u(20), body_y + u(60), u(90), u(36), font_size=u(20),
                   text="重置", on_click=lambda dk: dk.after(0, SimDesktop.reset)))
    d.add_window(ctl)


SCENARIOS: dict[str, Callable[[SimDesktop], None]] = {
    "desktop": desktop,
    "scenario1": scenario1,
    "scenario2": scenario2,
    "scenario3": scenario3,
}


def scenario_names() -> list[str]:
    """Names accepted as ``sim://<scenario>``."""
    return list(SCENARIOS)
